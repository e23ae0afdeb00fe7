"""Honest evaluation of blood-cell image classifiers.

Leukaemia image sets are small, often hold the same image twice and are
often imaged one class at a time.  Plain k-fold accuracy then measures
memorised duplicates and acquisition differences as much as cytology.  This
module gives the evaluation a haematology-imaging reviewer expects:

find_duplicates
    Exact duplicates (SHA-256 of the file bytes) and near duplicates
    (re-encoded, resized or slightly edited copies: a 64-bit perceptual DCT
    hash, :func:`phash`, within a Hamming distance), grouped transitively.
cross_validate
    Stratified k-fold cross-validation of any scikit-learn classifier or
    pipeline that keeps patients and duplicate groups inside one fold, with
    out-of-fold metrics (accuracy, balanced accuracy, F1, per-class
    sensitivity/specificity, confusion matrix, one-vs-rest ROC AUC),
    per-fold values and percentile-bootstrap confidence intervals, in a
    :class:`CVReport`.
compare
    Several models on exactly the same folds, as one table.
confound_check
    Can the class be predicted from the *background* alone (the pixels
    outside every white cell)?  If it can, the classes differ in acquisition
    (stain, illumination, scanner) and a classifier may learn that instead
    of the cells.

Conventions
-----------
Labels may be strings or integers; estimators are always trained on the
integers ``0..K-1`` (a :class:`~sklearn.preprocessing.LabelEncoder` fitted
on ``y``, so XGBoost-like estimators work), and reports name the classes as
strings in sorted label order.  Every metric is computed on the pooled
out-of-fold predictions unless its name starts with ``fold_``.  Arguments
are checked up front and a wrong value raises :class:`ValueError` (or
:class:`TypeError` for a wrong type) naming the argument.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import os
import time
from dataclasses import dataclass, fields
from typing import Any, NamedTuple

import cv2
import numpy as np
from joblib import Parallel, delayed
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from .._validation import as_uint8_rgb, check_image
from ..io import ImageReadError, read_image

__all__ = [
    "phash",
    "find_duplicates",
    "DuplicateGroups",
    "cross_validate",
    "CVReport",
    "compare",
    "Comparison",
    "background_features",
    "BACKGROUND_FEATURE_NAMES",
    "confound_check",
    "ConfoundReport",
    "RIVAL_SHARE",
]

#: Metrics that get a bootstrap confidence interval (when computable).
CI_METRICS = ("accuracy", "balanced_accuracy", "f1_macro", "f1_weighted", "roc_auc_ovr")

_CI_LEVEL = 0.95


# --------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------
def _check_int(value, name: str, *, low: int | None = None, high: int | None = None) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name}: expected an integer, got {value!r}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        raise ValueError(f"{name}: expected an integer in [{lo}, {hi}], got {value}")
    return value


def _is_path(x) -> bool:
    return isinstance(x, (str, os.PathLike))


def _is_image_array(x) -> bool:
    return isinstance(x, np.ndarray) and x.ndim in (2, 3) and x.size > 0


def _display(x) -> str:
    if _is_path(x):
        return os.fsdecode(x)
    if isinstance(x, np.ndarray):
        return f"<array {x.shape} {x.dtype}>"
    return repr(x)


def _n_samples(X, name: str = "X") -> int:
    shape = getattr(X, "shape", None)
    if shape is not None and len(shape) > 0:
        return int(shape[0])
    try:
        return len(X)
    except TypeError:
        raise TypeError(f"{name}: expected an array, a DataFrame or a sequence, "
                        f"got {type(X).__name__}") from None


def _jsonable(obj):
    """Plain-Python, JSON-serialisable copy of ``obj`` (NaN/inf -> None)."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, os.PathLike):
        return os.fsdecode(obj)
    return str(obj)


def _estimator_name(estimator) -> str:
    steps = getattr(estimator, "steps", None)
    if isinstance(steps, list) and steps:
        inner = ", ".join(_estimator_name(s[1]) if not isinstance(s[1], str) else s[1]
                          for s in steps)
        return f"{type(estimator).__name__}({inner})"
    return type(estimator).__name__


# --------------------------------------------------------------------------
# perceptual hash and duplicates
# --------------------------------------------------------------------------
def phash(image, hash_size: int = 8) -> np.ndarray:
    """Perceptual DCT hash (pHash) of an image.

    The standard pHash of Zauner (2010) as popularised by ``imagehash``:
    the grey-level image is resized to ``4 * hash_size`` pixels square
    (area interpolation), its 2-D DCT is taken, the ``hash_size x hash_size``
    block of lowest frequencies is kept and each coefficient becomes one bit,
    set when it is above the median of the block.  Re-encoding, resizing,
    mild blur or noise and small brightness changes flip few bits; different
    images differ in about half of them.

    Parameters
    ----------
    image : ndarray, shape (H, W) or (H, W, 3)
        Grey or RGB image (any numeric dtype; the hash ignores the intensity
        scale).
    hash_size : int, default 8
        Side of the hash; the hash has ``hash_size ** 2`` bits (64 by
        default).

    Returns
    -------
    ndarray of bool, shape (hash_size, hash_size)
        The hash bits, lowest frequencies top left.

    Raises
    ------
    ValueError
        If `image` is not an image or `hash_size` is not an integer >= 2.

    Notes
    -----
    The DCT is OpenCV's orthonormal DCT-II, so hashes are close to but not
    bit-identical with ``imagehash.phash`` (which scales the first row and
    column differently and resizes with Pillow's Lanczos filter).

    Examples
    --------
    >>> import numpy as np
    >>> from leukfeat.evaluate import phash
    >>> rng = np.random.default_rng(0)
    >>> image = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    >>> h = phash(image)
    >>> h.shape, h.dtype, int(h.sum())
    ((8, 8), dtype('bool'), 32)
    >>> brighter = np.clip(image.astype(int) + 10, 0, 255).astype(np.uint8)
    >>> int((phash(brighter) != h).sum()) <= 4
    True
    """
    hash_size = _check_int(hash_size, "hash_size", low=2)
    arr = check_image(image, "image")
    arr = arr.astype(np.float32)
    if arr.ndim == 3:
        grey = arr @ np.float32([0.299, 0.587, 0.114])
    else:
        grey = arr
    side = 4 * hash_size
    small = cv2.resize(np.ascontiguousarray(grey), (side, side), interpolation=cv2.INTER_AREA)
    low = cv2.dct(small)[:hash_size, :hash_size]
    return low > np.median(low)


def _hash_item(item, hash_size: int):
    """(sha256 hex, packed phash bits) or (None, None, error message)."""
    try:
        if isinstance(item, np.ndarray):
            arr = np.ascontiguousarray(item)
            digest = hashlib.sha256(f"{arr.shape}|{arr.dtype}|".encode())
            digest.update(arr.data)
            image = arr
        else:
            image = read_image(item)
            digest = hashlib.sha256()
            with open(item, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(chunk)
        bits = np.packbits(phash(image, hash_size).ravel())
    except (ImageReadError, OSError, ValueError) as exc:
        return None, None, str(exc)
    return digest.hexdigest(), bits, None


if hasattr(np, "bitwise_count"):  # numpy >= 2.0
    def _popcount(x):
        return np.bitwise_count(x)
else:  # pragma: no cover - numpy < 2
    _POPCOUNT8 = np.array([bin(i).count("1") for i in range(256)], np.uint8)

    def _popcount(x):
        b = x.view(np.uint8).reshape(x.shape + (x.dtype.itemsize,))
        return _POPCOUNT8[b].sum(-1)


def _close_pairs(packed: np.ndarray, max_distance: int):
    """Pairs (i < j) of rows of ``packed`` whose Hamming distance <= max_distance.

    Vectorised: the bits are packed into uint64 words, XOR-ed block by block
    against all rows and counted with a popcount.
    """
    n, nbytes = packed.shape
    if n < 2:
        return np.empty(0, np.intp), np.empty(0, np.intp), np.empty(0, np.intp)
    nwords = -(-nbytes // 8)
    buf = np.zeros((n, nwords * 8), np.uint8)
    buf[:, :nbytes] = packed
    words = buf.view(np.uint64)
    block = max(1, (1 << 22) // (n * nwords))
    out_i, out_j, out_d = [], [], []
    for start in range(0, n - 1, block):
        stop = min(n, start + block)
        x = words[start:stop, None, :] ^ words[None, start + 1:, :]
        d = _popcount(x).sum(axis=2, dtype=np.int64)
        r, c = np.nonzero(d <= max_distance)
        c = c + start + 1
        r_abs = r + start
        keep = c > r_abs
        out_i.append(r_abs[keep])
        out_j.append(c[keep])
        out_d.append(d[r[keep], c[keep] - start - 1])
    return np.concatenate(out_i), np.concatenate(out_j), np.concatenate(out_d)


def _components(n: int, i, j) -> np.ndarray:
    """Connected components (union-find) of ``n`` nodes linked by edges (i, j).

    Component ids are numbered 0, 1, ... in order of their smallest member.
    """
    i = np.asarray(i, np.intp)
    j = np.asarray(j, np.intp)
    if i.size == 0:
        return np.arange(n, dtype=np.intp)
    graph = sparse.coo_matrix((np.ones(i.size, np.int8), (i, j)), shape=(n, n)).tocsr()
    _, labels = connected_components(graph, directed=False)
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.argsort(np.argsort(first, kind="stable"), kind="stable")
    return rank[inverse.ravel()].astype(np.intp)


@dataclass(frozen=True)
class DuplicateGroups:
    """Result of :func:`find_duplicates`.

    Attributes
    ----------
    paths : list
        The items as given (paths, or ``None`` for in-memory images).
    group_ids : ndarray of int, shape (n,)
        Group of each item. Items in the same group are duplicates of each
        other, directly or through a chain of duplicates; every other item
        has its own id. Ids are numbered from 0 in order of first
        appearance.
    exact_pairs : list of (int, int)
        Every pair ``(i, j)``, ``i < j``, of byte-identical files (or equal
        arrays).
    near_pairs : list of (int, int, int)
        Every pair ``(i, j, distance)``, ``i < j``, of items that are not
        byte-identical but whose perceptual hashes differ in at most
        ``max_distance`` bits.
    errors : dict of int to str
        Items that could not be read, by index, with the reason. Each is
        alone in its group.
    hash_size, max_distance : int
        The parameters used.
    near : bool
        Whether near duplicates were searched for.

    Examples
    --------
    >>> import numpy as np
    >>> from leukfeat.evaluate import find_duplicates
    >>> a = np.zeros((32, 32), np.uint8); a[:16] = 200
    >>> b = np.eye(32, dtype=np.uint8) * 255
    >>> dups = find_duplicates([a, b, a.copy(), "missing.png"])
    >>> dups.group_ids.tolist(), dups.groups(), dups.n_groups_with_duplicates
    ([0, 1, 0, 2], [[0, 2]], 1)
    >>> dups.exact_pairs, sorted(dups.errors)
    ([(0, 2)], [3])
    """

    paths: list
    group_ids: np.ndarray
    exact_pairs: list
    near_pairs: list
    errors: dict
    hash_size: int = 8
    max_distance: int = 4
    near: bool = True

    def __len__(self) -> int:
        return int(self.group_ids.size)

    def groups(self) -> list:
        """Indices of every group of two or more items.

        Returns
        -------
        list of list of int
            One sorted list per group, groups in order of their first member.
        """
        return _groups_from_ids(self.group_ids)

    def exact_groups(self) -> list:
        """Like :meth:`groups`, but linking byte-identical items only."""
        if not self.exact_pairs:
            return []
        i, j = np.array(self.exact_pairs).T
        return _groups_from_ids(_components(len(self), i, j))

    @property
    def n_groups_with_duplicates(self) -> int:
        """Number of groups of two or more items."""
        counts = np.bincount(self.group_ids) if self.group_ids.size else np.zeros(0, int)
        return int((counts >= 2).sum())

    @property
    def n_duplicates(self) -> int:
        """Items that are redundant: group members beyond the first of each group."""
        counts = np.bincount(self.group_ids) if self.group_ids.size else np.zeros(0, int)
        return int((counts[counts >= 2] - 1).sum())

    def summary(self) -> str:
        """One line: items, groups, exact and near pairs, unreadable items."""
        return (f"{len(self)} images: {self.n_groups_with_duplicates} groups of duplicates "
                f"({self.n_duplicates} redundant images; {len(self.exact_pairs)} exact pairs, "
                f"{len(self.near_pairs)} near pairs with pHash distance <= "
                f"{self.max_distance}/{self.hash_size ** 2}); {len(self.errors)} unreadable")

    def __repr__(self) -> str:
        return f"DuplicateGroups({self.summary()})"


def _groups_from_ids(ids: np.ndarray) -> list:
    if ids.size == 0:
        return []
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    bounds = np.flatnonzero(np.diff(sorted_ids)) + 1
    out = [g.tolist() for g in np.split(order, bounds) if g.size >= 2]
    return sorted(out, key=lambda g: g[0])


def _as_items(paths, name: str = "paths") -> list:
    if isinstance(paths, (str, bytes, os.PathLike)):
        raise TypeError(f"{name}: expected a sequence of paths or images, got a single "
                        f"path ({_display(paths)!r}); wrap it in a list")
    if isinstance(paths, np.ndarray) and paths.ndim >= 3:
        return list(paths)
    try:
        items = list(paths)
    except TypeError:
        raise TypeError(f"{name}: expected a sequence of paths or images, "
                        f"got {type(paths).__name__}") from None
    for k, item in enumerate(items):
        if not (_is_path(item) or isinstance(item, np.ndarray)):
            raise TypeError(f"{name}: item {k} is neither a path nor an image array "
                            f"({type(item).__name__})")
    return items


def find_duplicates(paths, *, near: bool = True, hash_size: int = 8, max_distance: int = 4,
                    n_jobs=None) -> DuplicateGroups:
    """Group exact and near-duplicate images.

    Two items are *exact* duplicates when their file bytes have the same
    SHA-256 digest (for in-memory arrays: same shape, dtype and values).
    They are *near* duplicates when their perceptual hashes (:func:`phash`)
    differ in at most `max_distance` bits: a JPEG re-encoding, a resized or
    slightly brightened copy.  Groups are transitive (union-find): if A
    duplicates B and B duplicates C, all three share a group even if A and C
    are further apart.

    Parameters
    ----------
    paths : sequence of str, os.PathLike or ndarray
        Image files (read with :func:`leukfeat.io.read_image`) or images.
    near : bool, default True
        Also group near duplicates. Files are decoded either way, so that
        unreadable files are reported.
    hash_size : int, default 8
        Side of the perceptual hash (``hash_size ** 2`` bits).
    max_distance : int, default 4
        Largest Hamming distance between the hashes of near duplicates, in
        bits. The default, 4 of 64 bits, catches re-encoded and resized
        copies while unrelated images of one kind (smears of one stain)
        typically differ in 20 or more bits. Raise it to catch crops and
        edits at the cost of false matches; inspect ``near_pairs`` to choose.
        With the median threshold every hash has exactly half its bits set,
        so distances are even: 4 means two coefficients swapped sides.
    n_jobs : int, optional
        Threads used to read and hash the images (joblib semantics: ``None``
        is 1 unless inside a ``joblib.parallel_config`` context, ``-1`` all
        cores).

    Returns
    -------
    DuplicateGroups
        ``group_ids``, ``groups()``, ``exact_pairs``, ``near_pairs``,
        ``errors``; see :class:`DuplicateGroups`.

    Raises
    ------
    TypeError
        If `paths` is a single path or holds something other than paths and
        arrays.
    ValueError
        If `hash_size` or `max_distance` is out of range.

    Notes
    -----
    Unreadable items never raise: each is recorded in ``errors`` with the
    reason and kept alone in its group. The Hamming comparison of all pairs
    is vectorised (uint64 XOR and popcount, in blocks), so thousands of
    images take well under a second after reading.

    Examples
    --------
    >>> import tempfile, shutil, os
    >>> from leukfeat.datasets import make_cells
    >>> from leukfeat.evaluate import find_duplicates
    >>> root = tempfile.mkdtemp()
    >>> paths = make_cells(4, 2, 64, random_state=0).save(root)
    >>> copy = os.path.join(root, "copy.png")
    >>> _ = shutil.copy(paths[1], copy)
    >>> dups = find_duplicates(paths + [copy])
    >>> dups.groups(), dups.exact_pairs
    ([[1, 4]], [(1, 4)])
    """
    items = _as_items(paths)
    hash_size = _check_int(hash_size, "hash_size", low=2)
    max_distance = _check_int(max_distance, "max_distance", low=0, high=hash_size ** 2)
    if not isinstance(near, (bool, np.bool_)):
        raise ValueError(f"near: expected True or False, got {near!r}")

    n = len(items)
    results = Parallel(n_jobs=n_jobs, prefer="threads")(
        delayed(_hash_item)(item, hash_size) for item in items)

    errors = {k: r[2] for k, r in enumerate(results) if r[2] is not None}
    ok = np.array([r[2] is None for r in results], bool)
    ok_idx = np.flatnonzero(ok)

    # exact: equal digests among readable items
    digests = np.array([r[0] if r[0] is not None else "" for r in results], dtype=object)
    exact_pairs = []
    if ok_idx.size:
        _, inverse = np.unique(digests[ok_idx].astype(str), return_inverse=True)
        for g in _groups_from_ids(inverse.ravel()):
            members = ok_idx[g]
            exact_pairs.extend((int(a), int(b)) for k, a in enumerate(members)
                               for b in members[k + 1:])
    exact_pairs.sort()

    near_pairs = []
    if near and ok_idx.size >= 2:
        packed = np.stack([results[k][1] for k in ok_idx])
        i, j, d = _close_pairs(packed, max_distance)
        gi, gj = ok_idx[i], ok_idx[j]
        distinct = digests[gi] != digests[gj]
        near_pairs = sorted((int(a), int(b), int(c))
                            for a, b, c in zip(gi[distinct], gj[distinct], d[distinct]))

    edges = exact_pairs + [p[:2] for p in near_pairs]
    if edges:
        ei, ej = np.array(edges, np.intp).T
    else:
        ei = ej = np.empty(0, np.intp)
    group_ids = _components(n, ei, ej)
    return DuplicateGroups(
        paths=[item if _is_path(item) else None for item in items],
        group_ids=group_ids, exact_pairs=exact_pairs, near_pairs=near_pairs,
        errors=errors, hash_size=hash_size, max_distance=max_distance, near=bool(near))


# --------------------------------------------------------------------------
# metrics
# --------------------------------------------------------------------------
def _confusion(y, pred, k: int) -> np.ndarray:
    return np.bincount(y * k + pred, minlength=k * k).reshape(k, k)


def _cm_scores(cm) -> dict:
    """Metrics from confusion matrices of shape (..., K, K) (rows true).

    Matches scikit-learn: balanced accuracy averages recall over the classes
    present in the true labels; F1 macro/weighted use the classes present in
    the true or predicted labels; undefined precision counts as 0.
    """
    cm = np.asarray(cm, np.float64)
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    support = cm.sum(-1)
    predicted = cm.sum(-2)
    n = support.sum(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        accuracy = tp.sum(-1) / n
        present = support > 0
        recall = np.where(present, tp / np.where(present, support, 1), np.nan)
        balanced = np.where(present, recall, 0.0).sum(-1) / present.sum(-1)
        denom = support + predicted
        used = denom > 0
        f1 = np.where(used, 2.0 * tp / np.where(used, denom, 1), np.nan)
        f1_macro = np.where(used, f1, 0.0).sum(-1) / used.sum(-1)
        f1_weighted = (np.where(used, f1, 0.0) * support).sum(-1) / n
        precision = np.where(predicted > 0, tp / np.where(predicted > 0, predicted, 1), 0.0)
        fp = predicted - tp
        tn = n[..., None] - support - fp
        specificity = np.where(tn + fp > 0, tn / np.where(tn + fp > 0, tn + fp, 1), np.nan)
    return {"accuracy": accuracy, "balanced_accuracy": balanced, "f1_macro": f1_macro,
            "f1_weighted": f1_weighted, "precision": precision, "recall": recall,
            "specificity": specificity}


def _auc_ovr(y, proba, k: int, weights=None):
    """Macro one-vs-rest ROC AUC (exact Mann-Whitney, ties count one half).

    ``weights`` of shape (b, n) gives b weighted (bootstrap) versions at once;
    the result then has shape (b,). Binary problems use the AUC of class 1,
    as :func:`sklearn.metrics.roc_auc_score` does.
    """
    n = y.size
    if proba is None or not np.all(np.isfinite(proba)):
        return np.nan if weights is None else np.full(len(weights), np.nan)
    # samples along axis 0, resamples along axis 1 (row gathers are cheap)
    w = np.ones((n, 1)) if weights is None else np.ascontiguousarray(
        np.asarray(weights, np.float64).T)
    aucs = []
    for c in ([1] if k == 2 else range(k)):
        order = np.argsort(proba[:, c], kind="mergesort")
        s = proba[order, c]
        starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])   # runs of tied scores
        ws = w[order]
        wpos = ws * (y[order] == c)[:, None]
        wp = np.add.reduceat(wpos, starts, axis=0)
        wn = np.add.reduceat(ws - wpos, starts, axis=0)
        below = np.cumsum(wn, axis=0) - wn
        num = (wp * (below + 0.5 * wn)).sum(axis=0)
        den = wp.sum(axis=0) * wn.sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            aucs.append(np.where(den > 0, num / np.where(den > 0, den, 1), np.nan))
    out = np.mean(aucs, axis=0)
    return float(out[0]) if weights is None else out


def _bootstrap_ci(y, pred, proba, k: int, n_bootstrap: int, seed) -> dict:
    """Percentile bootstrap intervals over samples for :data:`CI_METRICS`."""
    n = y.size
    if n_bootstrap == 0 or n == 0:
        return {}
    rng = np.random.default_rng(seed)
    values = {m: [] for m in CI_METRICS}
    batch = max(1, min(n_bootstrap, 2_000_000 // n))
    done = 0
    while done < n_bootstrap:
        b = min(batch, n_bootstrap - done)
        idx = rng.integers(0, n, size=(b, n))
        codes = y[idx] * k + pred[idx] + (np.arange(b) * (k * k))[:, None]
        cm = np.bincount(codes.ravel(), minlength=b * k * k).reshape(b, k, k)
        sc = _cm_scores(cm)
        for m in ("accuracy", "balanced_accuracy", "f1_macro", "f1_weighted"):
            values[m].append(sc[m])
        if proba is not None:
            w = np.bincount((idx + (np.arange(b) * n)[:, None]).ravel(),
                            minlength=b * n).reshape(b, n)
            values["roc_auc_ovr"].append(_auc_ovr(y, proba, k, w))
        done += b
    alpha = 100 * (1 - _CI_LEVEL) / 2
    ci = {}
    for m, v in values.items():
        if not v:
            continue
        v = np.concatenate(v)
        v = v[np.isfinite(v)]
        if v.size:
            lo, hi = np.percentile(v, [alpha, 100 - alpha])
            ci[m] = (float(lo), float(hi))
    return ci


# --------------------------------------------------------------------------
# cross-validation
# --------------------------------------------------------------------------
@dataclass
class CVReport:
    """Cross-validated performance of one classifier (see :func:`cross_validate`).

    All metrics come from the pooled out-of-fold predictions unless their name
    starts with ``fold_``. Per-class values are dicts keyed by class name.

    Attributes
    ----------
    estimator : str
        Name of the estimator, e.g. ``"Pipeline(StandardScaler, SVC)"`` (the
        model name given to :func:`compare`).
    classes : list of str
        Class names, in the order of the confusion matrix and probabilities.
    n_images : int
        Number of samples.
    cv : int
        Number of folds.
    split : str
        ``"stratified"``, ``"stratified-group (patients)"``,
        ``"stratified-group (duplicates)"`` or
        ``"stratified-group (patients+duplicates)"``.
    n_duplicate_groups : int or None
        Groups of two or more duplicate images kept inside one fold; ``None``
        when duplicates were not searched for (no paths or images, or
        ``dedupe=False``).
    n_groups : int or None
        Number of groups the grouped splitter saw (``None`` for plain
        stratified folds).
    random_state : int or None
        Seed of the folds and the bootstrap (``None`` if not an int).
    accuracy, balanced_accuracy, f1_macro, f1_weighted : float
        Pooled out-of-fold scores.
    precision, recall, specificity : dict of str to float
        Per class, one-vs-rest. ``recall`` is the sensitivity;
        specificity is TN / (TN + FP). Precision of a never-predicted class
        is 0, as in scikit-learn.
    precision_macro, recall_macro, specificity_macro : float
        Unweighted means over the classes.
    roc_auc_ovr : float
        Macro one-vs-rest ROC AUC of the pooled out-of-fold probabilities
        (the class-1 AUC for two classes); NaN when the estimator has no
        ``predict_proba``.
    confusion_matrix : ndarray of int, shape (K, K)
        Rows are true classes, columns predicted classes, in `classes` order.
    fold_accuracy, fold_balanced_accuracy, fold_f1_macro : list of float
        The same scores on each held-out fold.
    ci : dict of str to (float, float)
        95 % percentile-bootstrap intervals (resampling images of the pooled
        out-of-fold predictions) for accuracy, balanced_accuracy, f1_macro,
        f1_weighted and, with probabilities, roc_auc_ovr. Empty when
        ``n_bootstrap=0``.
    n_bootstrap : int
        Number of bootstrap resamples.
    fit_time, predict_time : list of float
        Seconds per fold (predict time includes ``predict_proba``).
    fold_of_sample : ndarray of int, shape (n_images,)
        Index of the fold in which each sample was held out.
    y_true, y_pred : ndarray or None
        True and out-of-fold predicted labels (original label values), with
        ``return_predictions=True``.
    y_proba : ndarray of shape (n_images, K) or None
        Out-of-fold probabilities, columns in `classes` order, with
        ``return_predictions=True`` and an estimator with ``predict_proba``.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> from leukfeat.evaluate import cross_validate
    >>> X, y = make_classification(200, 8, random_state=0)
    >>> report = cross_validate(LogisticRegression(), X, y, n_bootstrap=200)
    >>> round(report.accuracy, 3), report.split, int(report.confusion_matrix.sum())
    (0.935, 'stratified', 200)
    >>> sorted(report.to_dict())[:3]
    ['accuracy', 'balanced_accuracy', 'ci']
    """

    estimator: str
    classes: list
    n_images: int
    cv: int
    split: str
    n_duplicate_groups: int | None
    n_groups: int | None
    random_state: int | None
    accuracy: float
    balanced_accuracy: float
    f1_macro: float
    f1_weighted: float
    precision: dict
    recall: dict
    specificity: dict
    precision_macro: float
    recall_macro: float
    specificity_macro: float
    roc_auc_ovr: float
    confusion_matrix: np.ndarray
    fold_accuracy: list
    fold_balanced_accuracy: list
    fold_f1_macro: list
    ci: dict
    n_bootstrap: int
    fit_time: list
    predict_time: list
    fold_of_sample: np.ndarray
    y_true: np.ndarray | None = None
    y_pred: np.ndarray | None = None
    y_proba: np.ndarray | None = None

    @property
    def sensitivity(self) -> dict:
        """Per-class sensitivity (the same as `recall`)."""
        return self.recall

    @property
    def sensitivity_macro(self) -> float:
        """Macro sensitivity (the same as `recall_macro`)."""
        return self.recall_macro

    def to_dict(self) -> dict:
        """All fields as plain JSON-serialisable Python values.

        Arrays become lists, NaN becomes ``None``; fields that are ``None``
        (e.g. predictions not requested) are kept as ``None``.

        Returns
        -------
        dict
        """
        return {f.name: _jsonable(getattr(self, f.name)) for f in fields(self)}

    def to_json(self, path) -> None:
        """Write :meth:`to_dict` as an indented JSON file at `path`."""
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(self.to_dict(), fh, indent=2, allow_nan=False)
            fh.write("\n")

    def _rows(self):
        rows = [("accuracy", self.accuracy), ("balanced accuracy", self.balanced_accuracy),
                ("F1 macro", self.f1_macro), ("F1 weighted", self.f1_weighted),
                ("ROC AUC (OvR, macro)", self.roc_auc_ovr),
                ("sensitivity (macro)", self.recall_macro),
                ("specificity (macro)", self.specificity_macro),
                ("precision (macro)", self.precision_macro)]
        keys = ["accuracy", "balanced_accuracy", "f1_macro", "f1_weighted", "roc_auc_ovr",
                None, None, None]
        return [(name, value, self.ci.get(key) if key else None)
                for (name, value), key in zip(rows, keys)]

    def _header(self) -> str:
        dup = ("" if self.n_duplicate_groups is None
               else f", {self.n_duplicate_groups} duplicate groups kept within folds")
        return (f"{self.estimator}: {self.cv}-fold {self.split} CV, {self.n_images} images, "
                f"{len(self.classes)} classes ({', '.join(self.classes)}){dup}")

    def summary(self) -> str:
        """A short multi-line text summary.

        Returns
        -------
        str
        """
        lines = [self._header()]
        for name, value, ci in self._rows():
            text = "n/a" if not np.isfinite(value) else f"{value:.3f}"
            if ci is not None:
                text += f"  (95% CI {ci[0]:.3f}-{ci[1]:.3f})"
            lines.append(f"  {name:<22}{text}")
        lines.append("  per-fold accuracy     "
                     + " ".join(f"{v:.3f}" for v in self.fold_accuracy))
        lines.append(f"  time per fold         fit {np.mean(self.fit_time):.2f} s, "
                     f"predict {np.mean(self.predict_time):.2f} s")
        return "\n".join(lines)

    def to_markdown(self) -> str:
        """A small Markdown table of the headline metrics with their CIs.

        Returns
        -------
        str
        """
        lines = [f"**{self._header()}**", "", "| metric | value | 95 % CI |",
                 "|---|---|---|"]
        for name, value, ci in self._rows():
            text = "n/a" if not np.isfinite(value) else f"{value:.3f}"
            cit = "" if ci is None else f"{ci[0]:.3f}–{ci[1]:.3f}"
            lines.append(f"| {name} | {text} | {cit} |")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"CVReport({self.estimator}, {self.cv}-fold {self.split}, n={self.n_images}, "
                f"accuracy={self.accuracy:.3f}, balanced_accuracy={self.balanced_accuracy:.3f}, "
                f"f1_macro={self.f1_macro:.3f})")


@dataclass
class _Plan:
    """Everything that does not depend on the estimator: labels and folds."""

    X: Any
    y: np.ndarray            # encoded 0..K-1
    y_original: np.ndarray
    classes: list
    fold_of_sample: np.ndarray
    split: str
    n_duplicate_groups: int | None
    n_groups: int | None
    cv: int
    random_state: Any
    boot_seed: Any


def _looks_like_items(X):
    """The list of paths/images in X when X is such a sequence, else None."""
    if isinstance(X, np.ndarray):
        if X.ndim >= 3:
            return list(X)
        if X.ndim == 1 and X.dtype == object and X.size and all(_is_path(x) or _is_image_array(x)
                                                                 for x in X):
            return list(X)
        if X.ndim == 1 and X.dtype.kind == "U":
            return list(X)
        return None
    if hasattr(X, "iloc"):
        if getattr(X, "ndim", 2) == 1 and len(X) and all(_is_path(x) for x in X):
            return list(X)
        return None
    if isinstance(X, (list, tuple)) and X and all(_is_path(x) or _is_image_array(x)
                                                 for x in X):
        return list(X)
    return None


def _plan(X, y, *, groups, cv, dedupe, paths, random_state, n_jobs) -> _Plan:
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
    from sklearn.preprocessing import LabelEncoder
    from sklearn.utils import check_random_state

    if X is None:
        raise ValueError("X: expected features, paths or images, got None")
    if not (hasattr(X, "shape") or hasattr(X, "__getitem__")):
        try:
            X = list(X)
        except TypeError:
            raise TypeError(f"X: expected an array, a DataFrame or a sequence, "
                            f"got {type(X).__name__}") from None
    y_arr = np.asarray(y)
    if y_arr.ndim != 1:
        raise ValueError(f"y: expected a 1-D sequence of labels, got shape {y_arr.shape}")
    n = y_arr.size
    if _n_samples(X) != n:
        raise ValueError(f"X and y: expected the same number of samples, got "
                         f"{_n_samples(X)} and {n}")
    cv = _check_int(cv, "cv", low=2)
    if cv > n:
        raise ValueError(f"cv: cannot have more folds ({cv}) than samples ({n})")
    if not isinstance(dedupe, (bool, np.bool_)):
        raise ValueError(f"dedupe: expected True or False, got {dedupe!r}")
    try:
        encoder = LabelEncoder().fit(y_arr)
    except TypeError as exc:
        raise ValueError(f"y: labels cannot be sorted ({exc})") from None
    y_enc = encoder.transform(y_arr).astype(np.intp)
    classes = [str(c) for c in encoder.classes_]
    if len(classes) < 2:
        raise ValueError(f"y: need at least 2 classes, got {len(classes)} ({classes})")

    # duplicate groups
    items = None
    if paths is not None:
        items = _as_items(paths)
        if len(items) != n:
            raise ValueError(f"paths: expected {n} items (one per sample), got {len(items)}")
    elif dedupe:
        items = _looks_like_items(X)
    dup_ids = None
    n_dup = None
    if dedupe and items is not None:
        dups = find_duplicates(items, n_jobs=n_jobs)
        n_dup = dups.n_groups_with_duplicates
        if n_dup:
            dup_ids = dups.group_ids

    # patient groups
    patient_ids = None
    if groups is not None:
        g = np.asarray(groups)
        if g.ndim != 1 or g.size != n:
            raise ValueError(f"groups: expected one group label per sample ({n}), "
                             f"got shape {g.shape}")
        try:
            _, patient_ids = np.unique(g, return_inverse=True)
        except TypeError:
            _, patient_ids = np.unique(g.astype(str), return_inverse=True)
        patient_ids = patient_ids.ravel()

    if patient_ids is None and dup_ids is None:
        split, split_groups = "stratified", None
    else:
        kinds = [k for k, ids in (("patients", patient_ids), ("duplicates", dup_ids))
                 if ids is not None]
        split = f"stratified-group ({'+'.join(kinds)})"
        split_groups = _combine_groups(n, [ids for ids in (patient_ids, dup_ids)
                                           if ids is not None])

    rs = check_random_state(random_state) if not isinstance(random_state, numbers.Integral) \
        else int(random_state)
    if split_groups is None:
        splitter = StratifiedKFold(n_splits=cv, shuffle=True, random_state=rs)
        n_groups = None
    else:
        n_groups = int(split_groups.max()) + 1
        if cv > n_groups:
            raise ValueError(f"cv: cannot have more folds ({cv}) than groups ({n_groups}; "
                             f"split {split})")
        splitter = StratifiedGroupKFold(n_splits=cv, shuffle=True, random_state=rs)
    fold_of_sample = np.full(n, -1, np.intp)
    for f, (_, test) in enumerate(splitter.split(np.zeros((n, 1)), y_enc, split_groups)):
        fold_of_sample[test] = f
    if (fold_of_sample < 0).any() or np.bincount(fold_of_sample, minlength=cv).min() == 0:
        raise RuntimeError("internal error: the splitter left a sample or a fold unused")
    if split_groups is not None:
        pairs = np.unique(np.stack([split_groups, fold_of_sample], axis=1), axis=0)
        if pairs.shape[0] != n_groups:
            raise RuntimeError("internal error: a group straddles two folds")

    if isinstance(random_state, numbers.Integral):
        boot_seed = int(random_state)
    else:
        boot_seed = int(check_random_state(random_state).randint(0, 2 ** 31 - 1))
    return _Plan(X=X, y=y_enc, y_original=y_arr, classes=classes,
                 fold_of_sample=fold_of_sample, split=split, n_duplicate_groups=n_dup,
                 n_groups=n_groups, cv=cv,
                 random_state=int(random_state) if isinstance(random_state, numbers.Integral)
                 else None, boot_seed=boot_seed)


def _combine_groups(n: int, id_arrays) -> np.ndarray:
    """Samples share a group when they share any of the given group ids."""
    if len(id_arrays) == 1:
        return np.unique(id_arrays[0], return_inverse=True)[1].ravel()
    # bipartite graph: sample nodes 0..n-1, then one node per id of each kind
    i, j, offset = [], [], n
    for ids in id_arrays:
        i.append(np.arange(n))
        j.append(offset + ids)
        offset += int(ids.max()) + 1
    comp = _components(offset, np.concatenate(i), np.concatenate(j))[:n]
    return np.unique(comp, return_inverse=True)[1].ravel()


def _take(X, idx):
    from sklearn.utils import _safe_indexing
    if isinstance(X, (list, tuple)):
        return [X[i] for i in idx]
    return _safe_indexing(X, idx)


def _fit_fold(estimator, X, y, train, test, n_classes: int):
    from sklearn.base import clone
    from sklearn.pipeline import Pipeline

    est = clone(estimator)
    X_train, X_test = _take(X, train), _take(X, test)
    t0 = time.perf_counter()
    est.fit(X_train, y[train])
    fit_time = time.perf_counter() - t0

    t0 = time.perf_counter()
    final, X_final = est, X_test
    if isinstance(est, Pipeline) and len(est.steps) > 1 and not isinstance(est.steps[-1][1], str):
        # transform once, then predict and predict_proba on the features
        X_final = est[:-1].transform(X_test)
        final = est.steps[-1][1]
    pred = np.asarray(final.predict(X_final)).ravel()
    proba = None
    if hasattr(final, "predict_proba"):
        p = np.asarray(final.predict_proba(X_final), np.float64)
        cols = np.asarray(getattr(final, "classes_", np.arange(p.shape[1]))).astype(np.intp)
        proba = np.zeros((len(test), n_classes))
        proba[:, cols] = p
    predict_time = time.perf_counter() - t0

    if pred.size != len(test):
        raise ValueError(f"estimator: predict returned {pred.size} values for {len(test)} "
                         "samples")
    pred_int = pred.astype(np.intp) if np.issubdtype(pred.dtype, np.number) else None
    if pred_int is None or not np.array_equal(pred_int, pred) or pred_int.min() < 0 \
            or pred_int.max() >= n_classes:
        raise ValueError("estimator: predict must return the integer class codes it was "
                         f"trained on (0..{n_classes - 1}); got {pred[:5]!r}")
    return pred_int, proba, fit_time, predict_time


def _run(estimators: list, plan: _Plan, n_jobs):
    """Fit every estimator on every fold; results[e][f]."""
    k = len(plan.classes)
    folds = [(np.flatnonzero(plan.fold_of_sample != f), np.flatnonzero(plan.fold_of_sample == f))
             for f in range(plan.cv)]
    out = Parallel(n_jobs=n_jobs)(
        delayed(_fit_fold)(est, plan.X, plan.y, train, test, k)
        for est in estimators for train, test in folds)
    return [[(folds[f][1],) + out[e * plan.cv + f] for f in range(plan.cv)]
            for e in range(len(estimators))]


def _report(name: str, plan: _Plan, fold_results, *, n_bootstrap: int,
            return_predictions: bool) -> CVReport:
    k = len(plan.classes)
    n = plan.y.size
    pred = np.empty(n, np.intp)
    has_proba = all(r[2] is not None for r in fold_results)
    proba = np.zeros((n, k)) if has_proba else None
    fold_scores = []
    for test, p, pr, _, _ in fold_results:
        pred[test] = p
        if has_proba:
            proba[test] = pr
        fold_scores.append(_cm_scores(_confusion(plan.y[test], p, k)))
    cm = _confusion(plan.y, pred, k)
    s = _cm_scores(cm)
    per_class = {m: {c: float(v) for c, v in zip(plan.classes, s[m])}
                 for m in ("precision", "recall", "specificity")}
    ci = _bootstrap_ci(plan.y, pred, proba, k, n_bootstrap, plan.boot_seed)
    y_pred_orig = None
    if return_predictions:
        # map codes back to the original label values
        lookup = np.empty(k, dtype=plan.y_original.dtype)
        lookup[plan.y] = plan.y_original
        y_pred_orig = lookup[pred]
    return CVReport(
        estimator=name, classes=list(plan.classes), n_images=int(n), cv=plan.cv,
        split=plan.split, n_duplicate_groups=plan.n_duplicate_groups, n_groups=plan.n_groups,
        random_state=plan.random_state,
        accuracy=float(s["accuracy"]), balanced_accuracy=float(s["balanced_accuracy"]),
        f1_macro=float(s["f1_macro"]), f1_weighted=float(s["f1_weighted"]),
        precision=per_class["precision"], recall=per_class["recall"],
        specificity=per_class["specificity"],
        precision_macro=float(np.mean(s["precision"])), recall_macro=float(np.mean(s["recall"])),
        specificity_macro=float(np.mean(s["specificity"])),
        roc_auc_ovr=float(_auc_ovr(plan.y, proba, k)) if has_proba else float("nan"),
        confusion_matrix=cm,
        fold_accuracy=[float(f["accuracy"]) for f in fold_scores],
        fold_balanced_accuracy=[float(f["balanced_accuracy"]) for f in fold_scores],
        fold_f1_macro=[float(f["f1_macro"]) for f in fold_scores],
        ci=ci, n_bootstrap=int(n_bootstrap),
        fit_time=[float(r[3]) for r in fold_results],
        predict_time=[float(r[4]) for r in fold_results],
        fold_of_sample=plan.fold_of_sample.copy(),
        y_true=plan.y_original.copy() if return_predictions else None,
        y_pred=y_pred_orig if return_predictions else None,
        y_proba=proba if return_predictions else None,
    )


def cross_validate(estimator, X, y, *, groups=None, cv: int = 5, dedupe: bool = True,
                   paths=None, random_state=0, n_bootstrap: int = 1000, n_jobs=None,
                   return_predictions: bool = False) -> CVReport:
    """Cross-validate a classifier with patient- and duplicate-aware folds.

    Folds are :class:`~sklearn.model_selection.StratifiedKFold` (shuffled)
    when there are no groups, and
    :class:`~sklearn.model_selection.StratifiedGroupKFold` (shuffled) when
    `groups` are given or duplicates are found; no group is ever split
    between folds. A clone of `estimator` is fitted on each training part
    and predicts (and, when it can, gives probabilities for) its held-out
    fold. Metrics are computed on the pooled out-of-fold predictions, plus
    per-fold values and percentile-bootstrap confidence intervals.

    Parameters
    ----------
    estimator : scikit-learn classifier or Pipeline
        Cloned for every fold; trained on integer labels ``0..K-1``.
    X : array_like, DataFrame or sequence
        A feature matrix, or the paths or images of a pipeline that extracts
        its own features (e.g. starting with ``leukfeat.FeatureExtractor``).
        Rows are selected with scikit-learn's safe indexing (lists stay
        lists).
    y : array_like of shape (n_samples,)
        Class labels (strings or integers), at least two classes.
    groups : array_like of shape (n_samples,), optional
        Group labels, e.g. patient ids: samples of one group are held out
        together.
    cv : int, default 5
        Number of folds (>= 2).
    dedupe : bool, default True
        Find exact and near duplicates (:func:`find_duplicates` with its
        defaults) among `paths`, or among the items of `X` when `X` is a
        sequence of paths or images, and keep each duplicate group in one
        fold. A sample then shares a group with another when they share a
        patient or a duplicate group (transitively).
    paths : sequence of str, os.PathLike or ndarray, optional
        The image behind each row of `X` (needed to find duplicates when `X`
        is a feature matrix).
    random_state : int or None, default 0
        Seeds the shuffled folds and the bootstrap.
    n_bootstrap : int, default 1000
        Bootstrap resamples for the 95 % confidence intervals (0: none).
    n_jobs : int, optional
        Folds fitted in parallel (joblib processes) and threads for finding
        duplicates.
    return_predictions : bool, default False
        Keep ``y_true``, ``y_pred`` and ``y_proba`` in the report.

    Returns
    -------
    CVReport
        Metrics, confusion matrix, per-fold values, confidence intervals,
        timings and ``fold_of_sample``; see :class:`CVReport`.

    Raises
    ------
    ValueError
        If an argument is invalid (the message names it), e.g. more folds
        than samples or groups, fewer than two classes, or mismatched
        lengths.

    Notes
    -----
    The bootstrap resamples images, so with strongly clustered data (many
    images per patient) the intervals are too narrow; the per-fold spread
    is then a useful second opinion. Pooled ROC AUC mixes the probability
    scales of the fold models, the usual convention for out-of-fold AUC.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.ensemble import RandomForestClassifier
    >>> from leukfeat.evaluate import cross_validate
    >>> X, y = make_classification(120, 6, n_informative=4, n_classes=3, random_state=0)
    >>> names = np.array(["Benign", "Early", "Pre"])[y]
    >>> patients = np.arange(120) // 4
    >>> report = cross_validate(RandomForestClassifier(50, random_state=0), X, names,
    ...                         groups=patients, n_bootstrap=200)
    >>> report.split, report.classes, report.confusion_matrix.shape
    ('stratified-group (patients)', ['Benign', 'Early', 'Pre'], (3, 3))
    >>> lo, hi = report.ci["accuracy"]
    >>> bool(lo <= report.accuracy <= hi)
    True
    >>> print(report.summary().splitlines()[0])  # doctest: +ELLIPSIS
    RandomForestClassifier: 5-fold stratified-group (patients) CV, 120 images, ...
    """
    n_bootstrap = _check_int(n_bootstrap, "n_bootstrap", low=0)
    _check_estimator(estimator, "estimator")
    plan = _plan(X, y, groups=groups, cv=cv, dedupe=dedupe, paths=paths,
                 random_state=random_state, n_jobs=n_jobs)
    results = _run([estimator], plan, n_jobs)[0]
    return _report(_estimator_name(estimator), plan, results, n_bootstrap=n_bootstrap,
                   return_predictions=bool(return_predictions))


def _check_estimator(estimator, name: str) -> None:
    if not (hasattr(estimator, "fit") and hasattr(estimator, "predict")
            and hasattr(estimator, "get_params")):
        raise TypeError(f"{name}: expected a scikit-learn classifier (with fit, predict and "
                        f"get_params), got {type(estimator).__name__}")


class Comparison(NamedTuple):
    """Result of :func:`compare`; unpacks as ``table, reports``.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per model (index ``model``, in the order given).
    reports : dict of str to CVReport
        The full report of each model.
    """

    table: Any
    reports: dict

    @classmethod
    def from_reports(cls, reports) -> "Comparison":
        """A Comparison of reports computed elsewhere, e.g. a model's and a confound check's.

        Parameters
        ----------
        reports : dict of str to CVReport
            Reports by row name, in the order of the table.

        Returns
        -------
        Comparison
            The table :func:`compare` would make of these reports (whether
            they share folds is up to the caller: compare their
            ``fold_of_sample``).

        Examples
        --------
        >>> from sklearn.datasets import make_classification
        >>> from sklearn.linear_model import LogisticRegression
        >>> from leukfeat.evaluate import Comparison, cross_validate
        >>> X, y = make_classification(100, 4, random_state=0)
        >>> a = cross_validate(LogisticRegression(), X, y, n_bootstrap=0)
        >>> b = cross_validate(LogisticRegression(), X[:, :1], y, n_bootstrap=0)
        >>> list(Comparison.from_reports({"all": a, "first column": b}).table.index)
        ['all', 'first column']
        """
        import pandas as pd

        if not hasattr(reports, "items") or not reports or not all(
                isinstance(r, CVReport) for r in reports.values()):
            raise TypeError("reports: expected a non-empty dict of name -> CVReport")
        nan = float("nan")
        rows = []
        for name, r in reports.items():
            row = {"model": str(name)}
            for m in CI_METRICS:
                row[m] = getattr(r, m)
                lo, hi = r.ci.get(m, (nan, nan))
                row[f"{m}_ci_low"], row[f"{m}_ci_high"] = lo, hi
            row["fit_time"] = float(np.mean(r.fit_time))
            row["predict_time"] = float(np.mean(r.predict_time))
            row["split"] = r.split
            row["n_duplicate_groups"] = r.n_duplicate_groups
            rows.append(row)
        return cls(pd.DataFrame(rows).set_index("model"), dict(reports))

    def to_markdown(self, floatfmt: str = ".3f") -> str:
        """The table as Markdown (metric with its 95 % CI, mean fit time)."""
        metrics = [("accuracy", "accuracy"), ("balanced_accuracy", "balanced accuracy"),
                   ("f1_macro", "F1 macro"), ("f1_weighted", "F1 weighted"),
                   ("roc_auc_ovr", "ROC AUC")]
        head = "| model | " + " | ".join(t for _, t in metrics) + " | fit s/fold |"
        lines = [head, "|---" * (len(metrics) + 2) + "|"]
        for model, row in self.table.iterrows():
            cells = []
            for m, _ in metrics:
                v, lo, hi = row[m], row[f"{m}_ci_low"], row[f"{m}_ci_high"]
                if not np.isfinite(v):
                    cells.append("n/a")
                elif np.isfinite(lo):
                    cells.append(f"{v:{floatfmt}} ({lo:{floatfmt}}–{hi:{floatfmt}})")
                else:
                    cells.append(f"{v:{floatfmt}}")
            lines.append(f"| {model} | " + " | ".join(cells) + f" | {row['fit_time']:.2f} |")
        return "\n".join(lines)


def compare(estimators, X, y, *, groups=None, cv: int = 5, dedupe: bool = True, paths=None,
            random_state=0, n_bootstrap: int = 1000, n_jobs=None,
            return_predictions: bool = False) -> Comparison:
    """Cross-validate several models on exactly the same folds.

    The folds (and duplicate search) are computed once and reused for every
    model, and the bootstrap uses the same resamples for every model, so
    differences between rows are paired comparisons.

    Parameters
    ----------
    estimators : dict of str to estimator
        Models by name, e.g. ``{"svm": ..., "xgboost": ...}``.
    X, y
        As in :func:`cross_validate`.
    groups : array_like of shape (n_samples,), optional
        Group labels, e.g. patient ids: samples of one group are held out
        together.
    cv : int, default 5
        Number of folds (>= 2).
    dedupe : bool, default True
        Find exact and near duplicates (:func:`find_duplicates` with its
        defaults) among `paths`, or among the items of `X` when `X` is a
        sequence of paths or images, and keep each duplicate group in one
        fold. A sample then shares a group with another when they share a
        patient or a duplicate group (transitively).
    paths : sequence of str, os.PathLike or ndarray, optional
        The image behind each row of `X` (needed to find duplicates when `X`
        is a feature matrix).
    random_state : int or None, default 0
        Seeds the shuffled folds and the bootstrap.
    n_bootstrap : int, default 1000
        Bootstrap resamples for the 95 % confidence intervals (0: none).
    n_jobs : int, optional
        Folds fitted in parallel (joblib processes) and threads for finding
        duplicates.
    return_predictions : bool, default False
        Keep ``y_true``, ``y_pred`` and ``y_proba`` in the report.

    Returns
    -------
    Comparison
        A named tuple ``(table, reports)``: ``table`` is a
        :class:`pandas.DataFrame` with one row per model (index ``model``)
        and columns ``accuracy``, ``balanced_accuracy``, ``f1_macro``,
        ``f1_weighted``, ``roc_auc_ovr``, each with ``<metric>_ci_low`` and
        ``<metric>_ci_high``, then ``fit_time`` and ``predict_time`` (mean
        seconds per fold), ``split`` and ``n_duplicate_groups``; ``reports``
        maps each name to its :class:`CVReport`.

    Raises
    ------
    ValueError
        If `estimators` is empty or not a dict of named estimators, or any
        other argument is invalid.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> from leukfeat.evaluate import compare
    >>> X, y = make_classification(150, 6, random_state=1)
    >>> table, reports = compare({"logreg": LogisticRegression(),
    ...                           "knn": KNeighborsClassifier()}, X, y, n_bootstrap=100)
    >>> list(table.index), "balanced_accuracy_ci_low" in table.columns
    (['logreg', 'knn'], True)
    >>> bool((reports["logreg"].fold_of_sample == reports["knn"].fold_of_sample).all())
    True
    """
    if not hasattr(estimators, "items") or len(estimators) == 0:
        raise ValueError("estimators: expected a non-empty dict of name -> estimator, "
                         f"got {type(estimators).__name__}")
    for name, est in estimators.items():
        if not isinstance(name, str):
            raise ValueError(f"estimators: names must be strings, got {name!r}")
        _check_estimator(est, f"estimators[{name!r}]")
    n_bootstrap = _check_int(n_bootstrap, "n_bootstrap", low=0)
    plan = _plan(X, y, groups=groups, cv=cv, dedupe=dedupe, paths=paths,
                 random_state=random_state, n_jobs=n_jobs)
    names = list(estimators)
    results = _run([estimators[k] for k in names], plan, n_jobs)
    reports = {name: _report(name, plan, res,
                             n_bootstrap=n_bootstrap,
                             return_predictions=bool(return_predictions))
               for name, res in zip(names, results)}
    return Comparison.from_reports(reports)


# --------------------------------------------------------------------------
# confound check
# --------------------------------------------------------------------------
_BG_CHANNELS = ("R", "G", "B", "L", "a", "b")
_BG_STATS = ("mean", "std", "p10", "p50", "p90")

#: Names of the 30 :func:`background_features`, ``background_<channel>_<stat>``
#: for the channels R, G, B (0..255) and CIELAB L* (0..100), a*, b*.
BACKGROUND_FEATURE_NAMES = tuple(f"background_{c}_{s}" for c in _BG_CHANNELS
                                 for s in _BG_STATS)

_MIN_BACKGROUND = 64  # pixels

#: :meth:`ConfoundReport.rivals`: the share of a model's balanced accuracy
#: above chance that a flagged background classifier must reach for the
#: model's score to be called within its reach.
RIVAL_SHARE = 0.8


def _cell_mask(image, segmenter):
    from ..segment import Segmentation, segment

    if segmenter is None or isinstance(segmenter, str):
        seg = segment(image) if segmenter is None else segment(image, segmenter)
    else:
        seg = segmenter(image)
    mask = seg.mask if isinstance(seg, Segmentation) else np.asarray(seg)
    if mask.shape != image.shape[:2]:
        raise ValueError(f"segmenter: returned a mask of shape {mask.shape} for an image of "
                         f"shape {image.shape[:2]}")
    return mask.astype(bool)


def background_features(image, *, segmenter=None, dilate: int = 5) -> np.ndarray:
    """Colour statistics of the background: every pixel outside the white cells.

    The white cells are segmented (default :data:`leukfeat.segment.DEFAULT_METHOD`),
    their mask is dilated by `dilate` pixels to drop halos and anti-aliased
    edges, and the remaining pixels (plasma background and red cells) are
    summarised per channel. Features that only see the background should not
    predict a leukaemia subtype; when they do, the classes differ in
    acquisition (see :func:`confound_check`).

    Parameters
    ----------
    image : ndarray, shape (H, W, 3)
        RGB image (uint8, or float in [0, 1]).
    segmenter : callable or str, optional
        ``image -> Segmentation`` (or a boolean cell mask), or a method name
        of :func:`leukfeat.segment.segment`. Default: the default segmenter.
    dilate : int, default 5
        Radius in pixels of the disk by which the cell mask is grown.

    Returns
    -------
    ndarray of float64, shape (30,)
        Mean, standard deviation and 10th/50th/90th percentiles of R, G, B
        (0..255) and CIELAB L* (0..100), a*, b*, in the order of
        :data:`BACKGROUND_FEATURE_NAMES`. If fewer than 64 pixels remain
        outside the dilated mask, the undilated mask is used; if the cells
        cover the whole image, all features are NaN.

    Raises
    ------
    ValueError
        If `image` is not an RGB image or `dilate` is negative.

    Examples
    --------
    >>> from leukfeat.datasets import make_cells
    >>> from leukfeat.evaluate import background_features, BACKGROUND_FEATURE_NAMES
    >>> image = make_cells(1, 1, 96, random_state=0).images[0]
    >>> f = background_features(image)
    >>> f.shape, BACKGROUND_FEATURE_NAMES[15]
    ((30,), 'background_L_mean')
    >>> bool(85 < f[15] < 95)  # pale background: high L*
    True
    """
    dilate = _check_int(dilate, "dilate", low=0)
    rgb = as_uint8_rgb(image, "image")
    if rgb.ndim != 3:
        raise ValueError(f"image: expected an RGB image (H, W, 3), got shape {rgb.shape}")
    mask = _cell_mask(rgb, segmenter)
    grown = mask
    if dilate and mask.any():
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * dilate + 1, 2 * dilate + 1))
        grown = cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)
    background = ~grown
    if background.sum() < _MIN_BACKGROUND:
        background = ~mask
    if not background.any():
        return np.full(len(BACKGROUND_FEATURE_NAMES), np.nan)
    lab = cv2.cvtColor(rgb.astype(np.float32) * np.float32(1 / 255), cv2.COLOR_RGB2Lab)
    pixels = np.concatenate([rgb[background].astype(np.float64),
                             lab[background].astype(np.float64)], axis=1)
    mean = pixels.mean(axis=0)
    std = pixels.std(axis=0)
    pct = np.percentile(pixels, [10, 50, 90], axis=0)
    return np.stack([mean, std, pct[0], pct[1], pct[2]], axis=1).ravel()


def _background_of(item, segmenter, dilate):
    image = read_image(item) if _is_path(item) else item
    return background_features(image, segmenter=segmenter, dilate=dilate)


@dataclass
class ConfoundReport:
    """Result of :func:`confound_check`.

    Attributes
    ----------
    accuracy, balanced_accuracy : float
        Cross-validated scores of the classifier that sees only the
        background features.
    chance : dict
        ``{"majority": rate of the largest class, "uniform": 1 / n_classes}``.
    margin : float
        Balanced accuracy above ``1 / n_classes`` needed to flag a confound.
    confounded : bool
        ``balanced_accuracy > 1 / n_classes + margin``.
    message : str
        What the result means and what to do.
    features : pandas.DataFrame
        The background features (one row per image, columns
        :data:`BACKGROUND_FEATURE_NAMES`).
    cv_report : CVReport
        The full cross-validation report of the background classifier.
        Compare a model with it through :meth:`rivals` / :meth:`warning`.
    n_images : int
        Number of images.
    classes : list of str
        Class names.
    """

    accuracy: float
    balanced_accuracy: float
    chance: dict
    margin: float
    confounded: bool
    message: str
    features: Any
    cv_report: CVReport
    n_images: int
    classes: list

    def summary(self) -> str:
        """A short multi-line summary (verdict, scores, message)."""
        ci = self.cv_report.ci.get("balanced_accuracy")
        cit = "" if ci is None else f" (95% CI {ci[0]:.3f}-{ci[1]:.3f})"
        verdict = "CONFOUNDED" if self.confounded else "no background confound detected"
        return "\n".join([
            f"Background-only classifier on {self.n_images} images, "
            f"{len(self.classes)} classes: {verdict}",
            f"  balanced accuracy {self.balanced_accuracy:.3f}{cit}; accuracy "
            f"{self.accuracy:.3f}",
            f"  chance: uniform {self.chance['uniform']:.3f}, majority "
            f"{self.chance['majority']:.3f}; flag above "
            f"{self.chance['uniform'] + self.margin:.3f}",
            "  " + self.message])

    def to_dict(self) -> dict:
        """JSON-serialisable dict (without the per-image features)."""
        return _jsonable({"accuracy": self.accuracy,
                          "balanced_accuracy": self.balanced_accuracy,
                          "chance": self.chance, "margin": self.margin,
                          "confounded": self.confounded, "message": self.message,
                          "n_images": self.n_images, "classes": self.classes,
                          "cv_report": self.cv_report.to_dict()})

    def rivals(self, balanced_accuracy: float) -> bool:
        """Whether the background alone comes close to a model's balanced accuracy.

        True when this check flags a confound (:attr:`confounded`) and the
        background classifier gets at least :data:`RIVAL_SHARE` (80 %) of
        the way from chance to the model's score::

            bg - 1/K >= 0.8 * (model - 1/K)

        with ``bg`` and ``model`` the two balanced accuracies on the same
        folds and ``K`` the number of classes. The model's accuracy then
        says little about the cells: most of it (or more) is within reach of
        the acquisition alone. A model at or below chance is always rivalled
        by a flagged background.

        Parameters
        ----------
        balanced_accuracy : float
            The model's cross-validated balanced accuracy.

        Returns
        -------
        bool

        Examples
        --------
        >>> from leukfeat.datasets import make_cells
        >>> from leukfeat.evaluate import confound_check
        >>> data = make_cells(40, 2, 64, random_state=0)
        >>> confound_check(list(data.images), data.labels, n_bootstrap=0).rivals(0.6)
        False
        """
        model = float(balanced_accuracy)
        if not math.isfinite(model):
            raise ValueError(f"balanced_accuracy: expected a finite number, got {model!r}")
        chance = self.chance["uniform"]
        return bool(self.confounded
                    and self.balanced_accuracy - chance >= RIVAL_SHARE * (model - chance))

    def warning(self, balanced_accuracy: float, model: str = "the model") -> str | None:
        """A one-line warning when the background rivals the model (:meth:`rivals`), else None.

        Parameters
        ----------
        balanced_accuracy : float
            The model's cross-validated balanced accuracy (same folds).
        model : str, default "the model"
            How to name the model in the warning.

        Returns
        -------
        str or None
        """
        if not self.rivals(balanced_accuracy):
            return None
        return (f"the background alone (pixels outside the white cells) scores balanced "
                f"accuracy {self.balanced_accuracy:.3f} against {model}'s "
                f"{float(balanced_accuracy):.3f} (chance {self.chance['uniform']:.3f}): "
                "this accuracy may reflect acquisition differences between the classes "
                "(stain, illumination, scanner), not the cells")

    def __repr__(self) -> str:
        return (f"ConfoundReport(confounded={self.confounded}, "
                f"balanced_accuracy={self.balanced_accuracy:.3f}, "
                f"chance={self.chance['uniform']:.3f})")


def confound_check(X_images_or_paths, y, *, segmenter=None, estimator=None, cv: int = 5,
                   random_state=0, n_jobs=None, groups=None, dedupe: bool = True,
                   dilate: int = 5, margin: float = 0.2,
                   n_bootstrap: int = 1000, paths=None) -> ConfoundReport:
    """Check whether the image background alone predicts the class.

    In a sound data set the background of a smear (plasma and red cells)
    carries no information about the white cell's subtype.  When each class
    was stained, scanned or photographed separately, it does, and any
    classifier (CNNs included) can score well by recognising the
    acquisition.  This function computes :func:`background_features`
    (30 colour statistics of the pixels outside the dilated white-cell
    mask) for every image and cross-validates a classifier on them alone.

    Parameters
    ----------
    X_images_or_paths : sequence of str, os.PathLike or ndarray
        Image files (read with :func:`leukfeat.io.read_image`) or RGB images.
    y : array_like of shape (n_images,)
        Class labels.
    segmenter : callable or str, optional
        White-cell segmenter, see :func:`background_features`. Default: the
        default segmenter (:data:`leukfeat.segment.DEFAULT_METHOD`).
    estimator : scikit-learn classifier, optional
        Default ``RandomForestClassifier(n_estimators=200,
        class_weight="balanced", random_state=random_state)``.
    cv : int, default 5
        Number of folds.
    random_state : int or None, default 0
        Seeds the folds, the bootstrap and the default forest.
    n_jobs : int, optional
        Threads for reading and measuring images, and parallel folds.
    groups : array_like, optional
        Patient ids, as in :func:`cross_validate`.
    dedupe : bool, default True
        Keep duplicate images in one fold (as in :func:`cross_validate`).
    paths : sequence of str, os.PathLike or ndarray, optional
        The files behind the images, searched for duplicates instead of the
        images themselves (e.g. when `X_images_or_paths` holds
        stain-normalised copies). Given the same `y`, `groups`, `cv`,
        `dedupe`, `random_state` and duplicate search as
        :func:`cross_validate` or :func:`compare`, the check runs on exactly
        the same folds (compare ``cv_report.fold_of_sample``).
    dilate : int, default 5
        Pixels by which the white-cell mask is grown before it is removed.
    margin : float, default 0.2
        The check flags a confound when the balanced accuracy exceeds
        ``1 / n_classes + margin``. 0.2 keeps false alarms rare on data sets
        of a few dozen images (where chance-level balanced accuracy easily
        strays by 0.1) while real acquisition differences usually give
        near-perfect scores.
    n_bootstrap : int, default 1000
        Bootstrap resamples for the confidence intervals of the report.

    Returns
    -------
    ConfoundReport
        ``accuracy``, ``balanced_accuracy``, ``chance``, ``confounded``,
        ``message``, the ``features`` table and the full ``cv_report``.

    Raises
    ------
    leukfeat.io.ImageReadError
        If an image file cannot be read.
    ValueError
        If an argument is invalid.

    Examples
    --------
    >>> from leukfeat.datasets import make_cells
    >>> from leukfeat.evaluate import confound_check
    >>> data = make_cells(40, 2, 64, random_state=0)
    >>> report = confound_check(list(data.images), data.labels, n_bootstrap=100)
    >>> report.confounded, report.chance["uniform"]
    (False, 0.5)
    """
    import pandas as pd

    items = _as_items(X_images_or_paths, "X_images_or_paths")
    margin = float(margin)
    if not (0.0 <= margin < 1.0):
        raise ValueError(f"margin: expected a number in [0, 1), got {margin!r}")
    dilate = _check_int(dilate, "dilate", low=0)
    y_arr = np.asarray(y)
    if y_arr.ndim != 1 or y_arr.size != len(items):
        raise ValueError(f"y: expected one label per image ({len(items)}), "
                         f"got shape {y_arr.shape}")
    if paths is not None:
        paths = _as_items(paths, "paths")
        if len(paths) != len(items):
            raise ValueError(f"paths: expected one per image ({len(items)}), got {len(paths)}")
    if estimator is None:
        from sklearn.ensemble import RandomForestClassifier
        estimator = RandomForestClassifier(
            n_estimators=200, class_weight="balanced",
            random_state=random_state if isinstance(random_state, numbers.Integral) else None)

    rows = Parallel(n_jobs=n_jobs, prefer="threads")(
        delayed(_background_of)(item, segmenter, dilate) for item in items)
    features = np.vstack(rows) if rows else np.empty((0, len(BACKGROUND_FEATURE_NAMES)))
    bad = ~np.isfinite(features)
    if bad.any():  # images whose cells fill the frame: median of the others
        med = np.nanmedian(np.where(bad, np.nan, features), axis=0)
        features = np.where(bad, np.nan_to_num(med)[None, :], features)

    report = cross_validate(estimator, features, y_arr, groups=groups, cv=cv, dedupe=dedupe,
                            paths=items if paths is None else paths,
                            random_state=random_state, n_bootstrap=n_bootstrap,
                            n_jobs=n_jobs)
    k = len(report.classes)
    uniform = 1.0 / k
    majority = float(np.max(report.confusion_matrix.sum(axis=1)) / report.n_images)
    threshold = uniform + margin
    ba = report.balanced_accuracy
    confounded = bool(ba > threshold)
    if confounded:
        message = (
            f"The background alone (pixels outside the white cells) predicts the class with "
            f"balanced accuracy {ba:.2f} against a chance level of {uniform:.2f}: the classes "
            "differ in acquisition (stain, illumination, background tint, scanner), and a "
            "classifier can learn that instead of the cells. Stain-normalise all images to "
            "one target (leukfeat.preprocess.reinhard or leukfeat.preprocess.macenko) and "
            "re-run this check, prefer nucleus-only and shape features over whole-image or "
            "background colour, find out whether each class was imaged separately (day, "
            "microscope, site), and report this check alongside your accuracy.")
    else:
        message = (
            f"The background alone predicts the class with balanced accuracy {ba:.2f}, not "
            f"more than {margin:.2f} above chance ({uniform:.2f}): no sign that the classes "
            "differ in acquisition. This does not rule out confounds inside the cells "
            "(e.g. class-specific staining of nuclei).")
    return ConfoundReport(
        accuracy=report.accuracy, balanced_accuracy=ba,
        chance={"majority": majority, "uniform": uniform}, margin=margin,
        confounded=confounded, message=message,
        features=pd.DataFrame(features, columns=list(BACKGROUND_FEATURE_NAMES)),
        cv_report=report, n_images=report.n_images, classes=report.classes)
