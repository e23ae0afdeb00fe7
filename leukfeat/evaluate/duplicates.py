"""Exact and near-duplicate images.

A perceptual hash (:func:`phash`), pairs within a Hamming distance, and
transitive groups (:func:`find_duplicates`, :class:`DuplicateGroups`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
from joblib import Parallel, delayed
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from .._batch import as_batch, is_path
from .._validation import check_image, check_int
from ..io import ImageReadError, read_image

if TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import ArrayLike

    from .._typing import StrPath


def phash(image: ArrayLike, hash_size: int = 8) -> np.ndarray:
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
    hash_size = check_int(hash_size, "hash_size", low=2)
    arr = check_image(image, "image")
    arr = arr.astype(np.float32)
    if arr.ndim == 3:
        grey = arr @ np.float32([0.299, 0.587, 0.114])  # type: ignore[arg-type, unused-ignore]
    else:
        grey = arr
    side = 4 * hash_size
    small = cv2.resize(np.ascontiguousarray(grey), (side, side), interpolation=cv2.INTER_AREA)
    low = cv2.dct(small)[:hash_size, :hash_size]
    return low > np.median(low)


def _hash_item(item: Any, hash_size: int) -> tuple[str | None, np.ndarray | None, str | None]:
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
    def _popcount(x: np.ndarray) -> np.ndarray:
        return np.bitwise_count(x)
else:  # pragma: no cover - numpy < 2
    _POPCOUNT8 = np.array([bin(i).count("1") for i in range(256)], np.uint8)

    def _popcount(x: np.ndarray) -> np.ndarray:
        b = x.view(np.uint8).reshape(x.shape + (x.dtype.itemsize,))
        return _POPCOUNT8[b].sum(-1)


def _close_pairs(packed: np.ndarray, max_distance: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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


def union_components(n: int, i: ArrayLike, j: ArrayLike) -> np.ndarray:
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

    paths: list[Any]
    group_ids: np.ndarray
    exact_pairs: list[tuple[int, int]]
    near_pairs: list[tuple[int, int, int]]
    errors: dict[int, str]
    hash_size: int = 8
    max_distance: int = 4
    near: bool = True

    def __len__(self) -> int:
        return int(self.group_ids.size)

    def groups(self) -> list[list[int]]:
        """Indices of every group of two or more items.

        Returns
        -------
        list of list of int
            One sorted list per group, groups in order of their first member.
        """
        return _groups_from_ids(self.group_ids)

    def exact_groups(self) -> list[list[int]]:
        """Like :meth:`groups`, but linking byte-identical items only."""
        if not self.exact_pairs:
            return []
        i, j = np.array(self.exact_pairs).T
        return _groups_from_ids(union_components(len(self), i, j))

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


def _groups_from_ids(ids: np.ndarray) -> list[list[int]]:
    if ids.size == 0:
        return []
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    bounds = np.flatnonzero(np.diff(sorted_ids)) + 1
    out = [g.tolist() for g in np.split(order, bounds) if g.size >= 2]
    return sorted(out, key=lambda g: g[0])


def find_duplicates(paths: Sequence[StrPath | np.ndarray], *, near: bool = True,
                    hash_size: int = 8, max_distance: int = 4,
                    n_jobs: int | None = None) -> DuplicateGroups:
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
    items = as_batch(paths, "paths", check_items=True, allow_empty=True)
    hash_size = check_int(hash_size, "hash_size", low=2)
    max_distance = check_int(max_distance, "max_distance", low=0, high=hash_size ** 2)
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
    exact_pairs: list[tuple[int, int]] = []
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
    group_ids = union_components(n, ei, ej)
    return DuplicateGroups(
        paths=[item if is_path(item) else None for item in items],
        group_ids=group_ids, exact_pairs=exact_pairs, near_pairs=near_pairs,
        errors=errors, hash_size=hash_size, max_distance=max_distance, near=bool(near))
