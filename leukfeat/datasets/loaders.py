"""Data set loaders: find the images of a data set on disk and their labels.

Part of :mod:`leukfeat.datasets` (import the public names from there).
"""

from __future__ import annotations

import errno
import numbers
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, cast

import numpy as np

from .._validation import check_int
from ..io import IMAGE_EXTENSIONS, ListingWarning, is_image_file, list_images
from ._checks import root_seed

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from numpy.typing import ArrayLike

    from .._typing import StrPath

# =============================================================================
# Folder loaders
# =============================================================================

class DatasetLayoutError(ValueError):
    """A folder does not have the layout a data set loader expects.

    Raised, for example, when a folder holds no class sub-folders with
    images, only one class, none of the class folders of a known data set,
    or files whose names contradict their folder. The message names the
    folder and shows the expected layout. It is a :class:`ValueError`, so
    ``except ValueError`` catches it too.

    Examples
    --------
    >>> import tempfile
    >>> from leukfeat.datasets import DatasetLayoutError, load_folder
    >>> try:
    ...     load_folder(tempfile.mkdtemp())
    ... except DatasetLayoutError as err:
    ...     print("<root>/<class>/<image>" in str(err))
    True
    """


class DatasetWarning(ListingWarning):
    """Something in a data set folder was skipped while loading it.

    Issued for image files whose names do not follow a data set's naming
    scheme, for unrecognised sub-folders next to the class folders, for
    images lying outside any class folder, for entries that cannot be
    followed where class folders are looked for (symbolic links that loop
    or dangle) and, through :func:`leukfeat.io.list_images`, for folders
    that cannot be listed. The warning says how many files or folders were
    skipped and gives examples. A subclass of
    :class:`leukfeat.io.ListingWarning`.
    """


@dataclass(frozen=True, eq=False, repr=False)
class LabelledImages:
    """Image files found on disk with their labels (and patient ids).

    Returned by the loaders (:func:`load_folder`, :func:`load_taleghani`,
    :func:`load_cnmc`, :func:`load_allidb`, :func:`load_pbc`,
    :func:`load_dataset`). Nothing is read from the images; use
    :func:`leukfeat.io.read_image` or :func:`leukfeat.io.iter_images` on
    :attr:`paths`. The constructor takes the attributes below as arguments
    (sequences are converted: ``paths`` to a list of str, ``labels`` and
    ``groups`` to read-only unicode arrays).

    Attributes
    ----------
    paths : list of str
        The image files, ``str(path)`` of each, ``root``-joined (absolute
        only when ``root`` was), in a deterministic order documented by each
        loader.
    labels : numpy.ndarray of str, shape (N,)
        The class of each image (a unicode ``'<U'`` array, read-only).
    groups : numpy.ndarray of str, shape (N,), or None
        The patient id of each image where the data set has them (C-NMC),
        for patient-wise splits (e.g. ``GroupKFold``); None otherwise. Read
        only.
    class_names : list of str
        The classes, in a fixed order: sorted for :func:`load_folder`,
        :func:`load_cnmc` and :func:`load_allidb`, the canonical order of the
        data set for :func:`load_taleghani` (Benign, Early, Pre, Pro) and
        :func:`load_pbc`. Every label is in it; a subset keeps the
        ``class_names`` of its parent, so a class may have no image in it.
    name : str
        The loader that produced it (``"folder"``, ``"taleghani"``, ...).
    root : str
        The folder that was passed to the loader, as ``str(Path(root))``.

    Raises
    ------
    ValueError
        If the fields are inconsistent: lengths differ, a label is not in
        ``class_names``, ``class_names`` repeats a name, or an array is not
        one-dimensional.

    Examples
    --------
    >>> from leukfeat.datasets import LabelledImages
    >>> ds = LabelledImages(paths=["a/1.png", "a/2.png", "b/3.png"],
    ...                     labels=["a", "a", "b"], groups=None,
    ...                     class_names=["a", "b"], name="folder", root=".")
    >>> len(ds), ds.class_counts
    (3, {'a': 2, 'b': 1})
    >>> ds.subset([2, 0]).paths
    ['b/3.png', 'a/1.png']
    """

    paths: list[str]
    labels: np.ndarray
    groups: np.ndarray | None
    class_names: list[str]
    name: str
    root: str

    if TYPE_CHECKING:
        # what the generated __init__ accepts (__post_init__ converts)
        def __init__(self, paths: Sequence[StrPath], labels: ArrayLike,
                     groups: ArrayLike | None, class_names: Iterable[str], name: str,
                     root: StrPath) -> None: ...

    def __post_init__(self) -> None:
        paths = [str(os.fsdecode(os.fspath(p))) for p in self.paths]
        n = len(paths)
        labels = _readonly_str_array(self.labels, "labels")
        if len(labels) != n:
            raise ValueError(f"labels: expected {n} entries (one per path), got {len(labels)}")
        groups = self.groups
        if groups is not None:
            groups = _readonly_str_array(groups, "groups")
            if len(groups) != n:
                raise ValueError(f"groups: expected {n} entries (one per path), "
                                 f"got {len(groups)}")
        class_names = [str(c) for c in self.class_names]
        if len(set(class_names)) != len(class_names):
            raise ValueError(f"class_names: names must be unique, got {class_names}")
        unknown = sorted(set(labels.tolist()) - set(class_names))
        if unknown:
            raise ValueError(f"labels: {unknown} not in class_names {class_names}")
        object.__setattr__(self, "paths", paths)
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "groups", groups)
        object.__setattr__(self, "class_names", class_names)
        object.__setattr__(self, "name", str(self.name))
        object.__setattr__(self, "root", str(self.root))

    def __len__(self) -> int:
        return len(self.paths)

    def __repr__(self) -> str:
        n_groups = "None" if self.groups is None else f"{len(set(self.groups.tolist()))} groups"
        return (f"LabelledImages(name={self.name!r}, n_images={len(self)}, "
                f"class_counts={self.class_counts}, groups={n_groups}, root={self.root!r})")

    @property
    def class_counts(self) -> dict[str, int]:
        """Number of images of each class, in ``class_names`` order (a dict)."""
        counts = {c: 0 for c in self.class_names}
        for label in self.labels.tolist():
            counts[label] += 1
        return counts

    def subset(self, indices: ArrayLike | slice) -> "LabelledImages":
        """Select images by position.

        Parameters
        ----------
        indices : sequence of int, integer array, boolean mask or slice
            Positions to keep, in the order given (negative positions count
            from the end; repeats are kept), or a boolean mask of length
            ``len(self)``.

        Returns
        -------
        LabelledImages
            The selected images with their labels and groups; ``class_names``,
            ``name`` and ``root`` are those of ``self``.

        Raises
        ------
        IndexError
            If a position is out of range, a mask has the wrong length, or
            `indices` is not integers or booleans.
        """
        n = len(self)
        sel: Any
        if isinstance(indices, slice):
            sel = np.arange(n)[indices]
        else:
            sel = np.asarray(indices)
            if sel.dtype == bool:
                if sel.shape != (n,):
                    raise IndexError(f"boolean index must have shape ({n},), got {sel.shape}")
                sel = np.flatnonzero(sel)
            elif sel.size == 0 and sel.ndim == 1:
                sel = sel.astype(np.intp)
            elif sel.ndim != 1 or not np.issubdtype(sel.dtype, np.integer):
                raise IndexError("indices: expected a 1-D sequence of integers, a boolean "
                                 f"mask or a slice, got {indices!r}")
            bad = sel[(sel < -n) | (sel >= n)]
            if bad.size:
                raise IndexError(f"index {int(bad[0])} is out of range for {n} images")
            sel = sel % max(n, 1)
        sel = [int(i) for i in sel]
        return LabelledImages(
            paths=[self.paths[i] for i in sel], labels=self.labels[sel],
            groups=None if self.groups is None else self.groups[sel],
            class_names=self.class_names, name=self.name, root=self.root)

    def stratified_subset(self, n: int, random_state: int | np.random.Generator
                          | np.random.SeedSequence | None = 0) -> "LabelledImages":
        """A random subset of about `n` images keeping the class proportions.

        Each class present gets ``n * count / len(self)`` images rounded by
        largest remainder, and at least one, so the result has exactly `n`
        images when ``n_classes <= n < len(self)`` (``n_classes`` if `n` is
        smaller; everything if ``n >= len(self)``). Images are drawn without
        replacement and returned in their original order. Groups are not
        taken into account.

        Parameters
        ----------
        n : int
            Target number of images (>= 1).
        random_state : None, int, numpy.random.Generator or numpy.random.SeedSequence, default 0
            Seed of the draw; the same seed gives the same subset.

        Returns
        -------
        LabelledImages

        Raises
        ------
        ValueError
            If `n` is not a positive integer or `random_state` is invalid.

        Examples
        --------
        >>> from leukfeat.datasets import LabelledImages
        >>> ds = LabelledImages(paths=[f"{i}.png" for i in range(10)],
        ...                     labels=["a"] * 7 + ["b"] * 3, groups=None,
        ...                     class_names=["a", "b"], name="folder", root=".")
        >>> ds.stratified_subset(4).class_counts
        {'a': 3, 'b': 1}
        """
        n = check_int(n, "n", 1)
        total = len(self)
        if n >= total:
            return self.subset(np.arange(total))
        classes, inverse, counts = np.unique(self.labels, return_inverse=True,
                                             return_counts=True)
        target = max(n, len(classes))
        exact = counts * (n / total)
        quota = np.minimum(np.maximum(np.floor(exact).astype(np.int64), 1), counts)
        while quota.sum() < target:  # largest remainder first
            room = np.where(quota < counts, exact - quota, -np.inf)
            quota[int(np.argmax(room))] += 1
        while quota.sum() > target:  # the minimum of one pushed us over
            excess = np.where(quota > 1, quota - exact, -np.inf)
            quota[int(np.argmax(excess))] -= 1
        rng = np.random.default_rng(root_seed(random_state))
        chosen = [rng.choice(np.flatnonzero(inverse == c), size=int(q), replace=False)
                  for c, q in enumerate(quota)]
        return self.subset(np.sort(np.concatenate(chosen)))


def _readonly_str_array(values: ArrayLike, name: str) -> np.ndarray:
    arr = np.array(values, dtype=str, copy=True)
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D sequence, got shape {arr.shape}")
    arr.setflags(write=False)
    return arr


# -- private helpers of the loaders -------------------------------------------

_EXTENSIONS_TEXT = ", ".join(sorted(IMAGE_EXTENSIONS))
_MAX_EXAMPLES = 5


def _check_root(root: StrPath) -> Path:
    """Path of an existing folder, or FileNotFoundError / NotADirectoryError."""
    try:
        fspath = os.fspath(root)
    except TypeError:
        raise TypeError("root: expected a str or os.PathLike folder path, "
                        f"got {type(root).__name__}") from None
    path = Path(os.fsdecode(fspath))
    if not path.exists():
        raise FileNotFoundError(errno.ENOENT, "data set folder not found", str(path))
    if not path.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "data set root is not a folder", str(path))
    return path


def _entry_is_dir(entry: os.DirEntry[str]) -> bool:
    """``entry.is_dir()`` following links; False for a link that loops or
    cannot be followed (ELOOP, EACCES, ...) rather than an error."""
    try:
        return entry.is_dir(follow_symlinks=True)
    except OSError:
        return False


def _scan(folder: Path) -> list[os.DirEntry[str]]:
    """The entries of `folder`; a folder that cannot be listed is warned about."""
    try:
        return list(os.scandir(folder))
    except OSError as exc:
        _warn(f"{folder}: skipped a folder that cannot be listed ({exc.strerror or exc})")
        return []


def _subdirs(folder: Path) -> list[Path]:
    """Non-hidden sub-folders (symbolic links followed), sorted by name. A
    symbolic link that loops or dangles is not a folder: it is warned about
    unless its name is that of an image file (then reading it reports it)."""
    out: list[Path] = []
    broken: list[str] = []
    for e in _scan(folder):
        if e.name.startswith("."):
            continue
        if _entry_is_dir(e):
            out.append(Path(e.path))
        elif e.is_symlink() and not is_image_file(e.name) and not os.path.exists(e.path):
            broken.append(e.name)
    if broken:
        _warn(f"{folder}: skipped {len(broken)} symbolic link(s) that loop or point to "
              f"nothing: {_examples(sorted(broken))}")
    return sorted(out, key=lambda p: p.name)


def _loose_images(folder: Path) -> list[Path]:
    """Entries named like image files directly inside `folder` (not in a
    sub-folder), readable or not."""
    return sorted(Path(e.path) for e in _scan(folder)
                  if is_image_file(e.name) and not _entry_is_dir(e))


def _examples(items: Iterable[object], limit: int = _MAX_EXAMPLES) -> str:
    texts = [str(i) for i in items]
    text = ", ".join(repr(i) for i in texts[:limit])
    return text + (f", ... ({len(texts) - limit} more)" if len(texts) > limit else "")


def _warn(message: str) -> None:
    warnings.warn(message, DatasetWarning, stacklevel=3)


def _normalise_name(name: str) -> str:
    """Case-fold and turn brackets, dashes and underscores into single spaces."""
    return " ".join(re.sub(r"[\[\]()_\-]+", " ", name.casefold()).split())


def _class_folders(folder: Path, match: Callable[[str], str | None]
                   ) -> tuple[dict[str, Path], list[Path]]:
    """Map class -> sub-folder of `folder` via ``match(name)``; also the unmatched ones.

    Raises DatasetLayoutError when two sub-folders map to the same class.
    """
    found: dict[str, Path] = {}
    unmatched: list[Path] = []
    for sub in _subdirs(folder):
        cls = match(sub.name)
        if cls is None:
            unmatched.append(sub)
        elif cls in found:
            raise DatasetLayoutError(
                f"{folder}: both {found[cls].name!r} and {sub.name!r} are folders of class "
                f"{cls!r}; keep one of them")
        else:
            found[cls] = sub
    return found, unmatched


def _locate(root: Path, match: Callable[[str], str | None], max_depth: int = 2) -> list[Path]:
    """Shallowest folders (root, children, grandchildren) holding class folders."""
    level = [root]
    for _ in range(max_depth + 1):
        hits = [f for f in level if any(match(s.name) is not None for s in _subdirs(f))]
        if hits:
            return hits
        level = [s for f in level for s in _subdirs(f)]
    return []


def _ambiguous(root: Path, hits: list[Path], what: str) -> DatasetLayoutError:
    rel = [str(h.relative_to(root)) for h in hits]
    return DatasetLayoutError(
        f"{root}: found {what} in several folders ({_examples(rel)}); point root at "
        "the one to load")


def _load_class_folders(root: Path, data: Path, match: Callable[[str], str | None],
                        canonical: Sequence[str], name: str,
                        layout: str) -> LabelledImages:
    """Shared body of the loaders with one folder per (known) class."""
    folders, unmatched = _class_folders(data, match)
    if unmatched:
        _warn(f"{data}: ignored {len(unmatched)} sub-folder(s) that are not {name} class "
              f"folders: {_examples(s.name for s in unmatched)}")
    paths: list[str] = []
    labels: list[str] = []
    for cls in canonical:
        if cls in folders:
            files = list_images(folders[cls])
            paths += [str(f) for f in files]
            labels += [cls] * len(files)
    if not paths:
        raise DatasetLayoutError(
            f"{data}: the {name} class folders hold no images "
            f"(extensions {_EXTENSIONS_TEXT}); expected {layout}")
    present = [c for c in canonical if c in set(labels)]
    return LabelledImages(paths=paths, labels=labels, groups=None, class_names=present,
                          name=name, root=str(root))


# -- load_folder -----------------------------------------------------------------

_FOLDER_LAYOUT = ("the layout <root>/<class>/<image> (one sub-folder per class, at least "
                  f"two classes, image extensions {_EXTENSIONS_TEXT})")


def load_folder(root: StrPath) -> LabelledImages:
    """Load a data set stored as one sub-folder per class.

    The layout is ``<root>/<class>/<image>``: every non-hidden sub-folder of
    `root` that holds at least one image is a class, named after the folder
    (exactly as spelled, so ``Blast`` and ``blast`` would be two classes).
    Images in nested folders inside a class folder
    (``<root>/<class>/<any>/<image>``) belong to that class. An image is a
    file whose extension, in any letter case, is one of
    :data:`leukfeat.io.IMAGE_EXTENSIONS` (see :func:`leukfeat.io.list_images`);
    other files, hidden files and hidden folders (names starting with ``.``)
    are ignored. Symbolic links to class folders are followed; links to
    folders inside a class folder are not.

    Parameters
    ----------
    root : str or os.PathLike
        The data set folder.

    Returns
    -------
    LabelledImages
        ``name="folder"``, ``groups=None``, ``class_names`` sorted; paths
        sorted by class folder name, then by their path inside it.

    Raises
    ------
    FileNotFoundError
        If `root` does not exist (the message names it).
    NotADirectoryError
        If `root` is a file.
    DatasetLayoutError
        If fewer than two sub-folders hold images; the message shows the
        expected layout.
    TypeError
        If `root` is not a path.

    Warns
    -----
    DatasetWarning
        If images lie directly in `root`, outside any class folder (they are
        ignored).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from leukfeat.datasets import load_folder
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ["blast/a.PNG", "blast/b.jpg", "normal/c.tif", "normal/notes.txt"]:
    ...     (root / name).parent.mkdir(exist_ok=True)
    ...     _ = (root / name).write_bytes(b"")
    >>> ds = load_folder(root)
    >>> ds.class_names, ds.labels.tolist()
    (['blast', 'normal'], ['blast', 'blast', 'normal'])
    """
    root_path = _check_root(root)
    paths: list[str] = []
    labels: list[str] = []
    for sub in _subdirs(root_path):
        files = list_images(sub)
        paths += [str(f) for f in files]
        labels += [sub.name] * len(files)
    classes = sorted(set(labels))
    loose = _loose_images(root_path)
    if not classes:
        extra = (f" (found {len(loose)} image(s) directly in the root folder: move them "
                 "into one sub-folder per class)" if loose else "")
        raise DatasetLayoutError(
            f"{root_path}: no class sub-folders with images found{extra}; expected "
            f"{_FOLDER_LAYOUT}")
    if len(classes) == 1:
        raise DatasetLayoutError(
            f"{root_path}: only one class sub-folder with images ({classes[0]!r}); expected "
            f"{_FOLDER_LAYOUT}. Is root a class folder rather than the data set folder?")
    if loose:
        _warn(f"{root_path}: ignored {len(loose)} image(s) outside the class sub-folders: "
              f"{_examples(p.name for p in loose)}")
    return LabelledImages(paths=paths, labels=labels, groups=None, class_names=classes,
                          name="folder", root=str(root_path))


# -- load_taleghani --------------------------------------------------------------

# (public as leukfeat.datasets.TALEGHANI_CLASSES, documented in the package's __init__.py)
TALEGHANI_CLASSES = ["Benign", "Early", "Pre", "Pro"]

_TALEGHANI_ALIASES = {
    "benign": "Benign",
    "early": "Early", "early pre b": "Early", "malignant early pre b": "Early",
    "pre": "Pre", "pre b": "Pre", "malignant pre b": "Pre",
    "pro": "Pro", "pro b": "Pro", "malignant pro b": "Pro",
}

_TALEGHANI_LAYOUT = (
    "<root>/<class>/<image> with class folders Benign, Early, Pre, Pro (or the original "
    "download names 'Benign', '[Malignant] early Pre-B', '[Malignant] Pre-B', "
    "'[Malignant] Pro-B'; any letter case), possibly under <root>/Original/ and "
    "<root>/Segmented/")


def _taleghani_class(name: str) -> str | None:
    return _TALEGHANI_ALIASES.get(_normalise_name(name))


def load_taleghani(root: StrPath, *, segmented: bool = False) -> LabelledImages:
    """Load the Taleghani ALL data set (Benign / Early / Pre / Pro).

    The peripheral-blood-smear images of acute lymphoblastic leukaemia from
    Taleghani Hospital (Aria et al., 2021; Ghaderzadeh et al., 2022), four
    classes: Benign (hematogones) and the malignant Early Pre-B, Pre-B and
    Pro-B ALL. Accepted layouts:

    * ``<root>/{Benign,Early,Pre,Pro}/<image>`` (the widely used form);
    * the original download names ``Benign``, ``[Malignant] early Pre-B``,
      ``[Malignant] Pre-B`` and ``[Malignant] Pro-B``, which map to Benign,
      Early, Pre and Pro (folder names are matched ignoring letter case,
      brackets, dashes and underscores; ``Pre-B``, ``Early Pre-B``, ... work
      too);
    * a root holding ``Original/`` and ``Segmented/`` copies, each with the
      class folders: ``Original`` is loaded unless ``segmented=True``.

    The class folders may also be one or two folder levels below `root`
    (e.g. ``<root>/images/Original/Benign``). Images nested inside a class
    folder belong to it; hidden and non-image files are ignored (as in
    :func:`load_folder`). Classes whose folders are missing or empty are
    left out (no error as long as one class has images). No patient ids are
    available, so ``groups`` is None: splits are image-level.

    Parameters
    ----------
    root : str or os.PathLike
        The data set folder.
    segmented : bool, default False
        Load the ``Segmented`` copy instead of the ``Original`` one. With
        True, a ``Segmented`` folder must exist (or `root` must be it).

    Returns
    -------
    LabelledImages
        ``name="taleghani"``, ``groups=None``, labels among ``"Benign"``,
        ``"Early"``, ``"Pre"``, ``"Pro"``; ``class_names`` the classes found,
        in that canonical order; paths ordered by class, then by path.

    Raises
    ------
    FileNotFoundError
        If `root` does not exist.
    NotADirectoryError
        If `root` is a file.
    DatasetLayoutError
        If none of the four class folders is found (the message lists the
        expected folder names), if they hold no images, if two folders map
        to the same class, if the requested Original / Segmented copy is
        missing, or if class folders are found in several unrelated places.

    Warns
    -----
    DatasetWarning
        For sub-folders next to the class folders that are not Taleghani
        classes (they are ignored).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from leukfeat.datasets import load_taleghani
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ["Benign/a.jpg", "[Malignant] Pro-B/b.jpg"]:
    ...     (root / name).parent.mkdir(exist_ok=True)
    ...     _ = (root / name).write_bytes(b"")
    >>> load_taleghani(root).labels.tolist()
    ['Benign', 'Pro']
    """
    root_path = _check_root(root)
    hits = _locate(root_path, _taleghani_class)
    if not hits:
        raise DatasetLayoutError(
            f"{root_path}: none of the Taleghani class folders found; expected "
            f"{_TALEGHANI_LAYOUT}")
    want = "segmented" if segmented else "original"
    if hits == [root_path]:
        data = root_path
        if segmented and root_path.name.casefold() != "segmented":
            raise DatasetLayoutError(
                f"{root_path}: segmented=True but the class folders are directly in root "
                "and there is no Segmented/ copy; expected <root>/Segmented/<class>/<image> "
                "(or root pointing at the Segmented folder)")
    else:
        by_name = {h.name.casefold(): h for h in hits}
        if want in by_name:
            data = by_name[want]
        elif {"original", "segmented"} & set(by_name):
            raise DatasetLayoutError(
                f"{root_path}: no {want.capitalize()}/ copy of the class folders found "
                f"(found {_examples(str(h.relative_to(root_path)) for h in hits)}); "
                f"expected <root>/{want.capitalize()}/<class>/<image>"
                + ("" if segmented else "; pass segmented=True to load the segmented copy"))
        elif len(hits) > 1:
            raise _ambiguous(root_path, hits, "Taleghani class folders")
        elif segmented:
            raise DatasetLayoutError(
                f"{root_path}: segmented=True but no Segmented/ folder was found; expected "
                "<root>/Segmented/<class>/<image>")
        else:
            data = hits[0]
    return _load_class_folders(root_path, data, _taleghani_class, TALEGHANI_CLASSES,
                               "taleghani", _TALEGHANI_LAYOUT)


# -- load_cnmc ---------------------------------------------------------------------

_CNMC_NAME = re.compile(r"UID_(H?\d+)_(\d+)_(\d+)_(all|hem)", re.IGNORECASE)
_CNMC_FOLD = re.compile(r"fold_.+", re.IGNORECASE)
_CNMC_LAYOUT = ("<root>/training_data/fold_<k>/{all,hem}/UID_<patient>_<image>_<cell>_all.bmp "
                "and UID_H<patient>_<image>_<cell>_hem.bmp (root may also be the "
                "training_data folder itself, or its parent's parent)")


def _cnmc_fold(name: str) -> str | None:
    return name if _CNMC_FOLD.fullmatch(name) else None


def load_cnmc(root: StrPath) -> LabelledImages:
    """Load the C-NMC 2019 (ISBI) training data, with patient ids.

    The layout of the challenge's training data is
    ``training_data/fold_<k>/{all,hem}/<name>.bmp`` with names
    ``UID_<patient>_<image>_<cell>_all.bmp`` for leukaemic (ALL) blasts and
    ``UID_H<patient>_<image>_<cell>_hem.bmp`` for normal (hematogone) cells.
    `root` may be the folder holding ``training_data``, ``training_data``
    itself (the folder holding the ``fold_*`` folders), or a folder one level
    above (e.g. the folder holding ``C-NMC_Leukemia/training_data``). Fold
    and class folder names are matched ignoring letter case; images nested
    inside a class folder are included. The validation and test sets of the
    challenge (labels in a CSV file) are not handled.

    The label comes from the folder (``"all"`` or ``"hem"``) and is
    cross-checked with the suffix of the file name: a file whose suffix
    contradicts its folder is an **error** (:class:`DatasetLayoutError`
    listing the offending files), because a silently mislabelled cell would
    bias every result. Image files whose names do not follow the pattern
    are **skipped with a** :class:`DatasetWarning` that counts them (their
    patient is unknown, so they could not be split patient-wise).

    The patient id is the second field of the name, as written, with an
    ``h`` prefix upper-cased: ``UID_11_10_1_all.bmp`` is patient ``"11"``,
    ``UID_H10_43_1_hem.bmp`` patient ``"H10"`` (ALL patients and normal
    subjects are numbered separately, hence the prefix). They are returned as
    ``groups``, so that e.g. ``GroupKFold`` keeps each patient in one fold.
    The challenge's own folds are not returned; they follow from the paths.

    Parameters
    ----------
    root : str or os.PathLike
        The data set folder (see above).

    Returns
    -------
    LabelledImages
        ``name="cnmc"``, labels ``"all"`` / ``"hem"``, ``class_names`` the
        classes found (sorted), ``groups`` the patient ids; paths ordered by
        fold, class folder and file path.

    Raises
    ------
    FileNotFoundError
        If `root` does not exist.
    NotADirectoryError
        If `root` is a file.
    DatasetLayoutError
        If no ``fold_*`` folder is found, no image with a C-NMC name is
        found in their ``all`` / ``hem`` folders, a file name's class suffix
        contradicts its folder, or ``fold_*`` folders are found in several
        unrelated places.

    Warns
    -----
    DatasetWarning
        For image files whose names do not follow the C-NMC pattern (they
        are skipped) and for ``fold_*`` sub-folders other than ``all`` and
        ``hem``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from leukfeat.datasets import load_cnmc
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ["fold_0/all/UID_11_10_1_all.bmp", "fold_0/hem/UID_H10_43_1_hem.bmp"]:
    ...     (root / name).parent.mkdir(parents=True, exist_ok=True)
    ...     _ = (root / name).write_bytes(b"")
    >>> ds = load_cnmc(root)
    >>> ds.labels.tolist(), ds.groups.tolist()
    (['all', 'hem'], ['11', 'H10'])
    """
    root_path = _check_root(root)
    hits = _locate(root_path, _cnmc_fold)
    if not hits:
        raise DatasetLayoutError(f"{root_path}: no fold_* folders found; expected "
                                 f"{_CNMC_LAYOUT}")
    if len(hits) > 1:
        raise _ambiguous(root_path, hits, "fold_* folders")
    base = hits[0]
    paths: list[str] = []
    labels: list[str] = []
    groups: list[str] = []
    skipped: list[str] = []
    mismatched: list[str] = []
    other_dirs: list[str] = []
    for fold in (d for d in _subdirs(base) if _cnmc_fold(d.name)):
        for class_dir in _subdirs(fold):
            label = class_dir.name.casefold()
            if label not in ("all", "hem"):
                other_dirs.append(f"{fold.name}/{class_dir.name}")
                continue
            for file in list_images(class_dir):
                m = _CNMC_NAME.fullmatch(file.stem)
                if m is None:
                    skipped.append(str(file.relative_to(base)))
                    continue
                if m.group(4).casefold() != label:
                    mismatched.append(str(file.relative_to(base)))
                    continue
                paths.append(str(file))
                labels.append(label)
                groups.append(m.group(1).upper())
    if mismatched:
        raise DatasetLayoutError(
            f"{base}: {len(mismatched)} file(s) whose name suffix (_all / _hem) contradicts "
            f"their class folder: {_examples(mismatched)}; expected {_CNMC_LAYOUT}")
    if other_dirs:
        _warn(f"{base}: ignored {len(other_dirs)} folder(s) inside fold_* other than all/ "
              f"and hem/: {_examples(other_dirs)}")
    if skipped:
        _warn(f"{base}: skipped {len(skipped)} image file(s) whose names do not follow "
              f"UID_<patient>_<image>_<cell>_<all|hem>: {_examples(skipped)}")
    if not paths:
        raise DatasetLayoutError(f"{base}: no C-NMC images found in fold_*/all or "
                                 f"fold_*/hem; expected {_CNMC_LAYOUT}")
    return LabelledImages(paths=paths, labels=labels, groups=groups,
                          class_names=sorted(set(labels)), name="cnmc", root=str(root_path))


# -- load_allidb -------------------------------------------------------------------

_ALLIDB_NAME = re.compile(r"Im(\d+)_([01])", re.IGNORECASE)
_ALLIDB_EXTENSIONS = {1: (".jpg", ".jpeg"), 2: (".tif", ".tiff")}
_ALLIDB_LAYOUT = ("ALL-IDB1 images ImNNN_Y.jpg or ALL-IDB2 images ImNNN_Y.tif anywhere under "
                  "root (Y = 1: blast(s), Y = 0: normal), e.g. <root>/ALL_IDB2/img/Im001_1.tif")


def load_allidb(root: StrPath, *, version: str | int = "auto") -> LabelledImages:
    """Load ALL-IDB1 or ALL-IDB2 (Labati, Piuri and Scotti, 2011).

    Images are found anywhere under `root` (recursively; hidden and
    non-image files ignored) by their names ``ImNNN_Y.<ext>``, where ``Y``
    is the label (matched ignoring letter case):

    * **ALL-IDB2** -- ``ImNNN_Y.tif``: one cropped cell per image;
      ``Y = 1`` a lymphoblast (label ``"blast"``), ``Y = 0`` a normal cell
      (``"normal"``).
    * **ALL-IDB1** -- ``ImNNN_Y.jpg``: whole smear fields; ``Y = 1`` means
      the image *contains* blasts (``"blast"``), ``Y = 0`` that it contains
      none (``"normal"``). The ``.xyc`` blast-centre files are not read.

    The version is told by the extension: ``.jpg``/``.jpeg`` is ALL-IDB1,
    ``.tif``/``.tiff`` is ALL-IDB2 (convert files of other formats back, or
    use :func:`load_folder`).

    Parameters
    ----------
    root : str or os.PathLike
        A folder holding the images (e.g. ``ALL_IDB2/img``), or a parent of
        it.
    version : {"auto", 1, 2}, default "auto"
        Which data set to load. ``"auto"`` takes the one whose images are
        present and raises if both are (pass 1 or 2 then).

    Returns
    -------
    LabelledImages
        ``name="allidb"``, labels ``"blast"`` / ``"normal"``,
        ``class_names`` the classes found (sorted), ``groups=None`` (the
        data set gives no patient ids); paths sorted by their path under
        `root`.

    Raises
    ------
    FileNotFoundError
        If `root` does not exist.
    NotADirectoryError
        If `root` is a file.
    ValueError
        If `version` is not one of the accepted values.
    DatasetLayoutError
        If no image of the requested version is found, or, with
        ``version="auto"``, if both versions are found.

    Warns
    -----
    DatasetWarning
        For image files whose names do not follow ``ImNNN_Y`` with a .jpg
        or .tif extension (they are skipped).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from leukfeat.datasets import load_allidb
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ["Im001_1.tif", "Im131_0.tif"]:
    ...     _ = (root / name).write_bytes(b"")
    >>> load_allidb(root).labels.tolist()
    ['blast', 'normal']
    """
    if isinstance(version, str) and version.strip().casefold() == "auto":
        version = "auto"
    elif isinstance(version, (str, numbers.Integral)) and not isinstance(version, bool) \
            and str(version).strip() in ("1", "2"):
        version = int(str(version).strip())
    else:
        raise ValueError(f"version: expected 'auto', 1 or 2, got {version!r}")
    root_path = _check_root(root)
    found: dict[int, list[tuple[Path, str]]] = {1: [], 2: []}
    skipped: list[str] = []
    for file in list_images(root_path):
        m = _ALLIDB_NAME.fullmatch(file.stem)
        ext = file.suffix.casefold()
        v = next((k for k, exts in _ALLIDB_EXTENSIONS.items() if ext in exts), None)
        if m is None or v is None:
            skipped.append(str(file.relative_to(root_path)))
        else:
            found[v].append((file, "blast" if m.group(2) == "1" else "normal"))
    if version == "auto":
        present = [v for v in (1, 2) if found[v]]
        if len(present) == 2:
            raise DatasetLayoutError(
                f"{root_path}: found both ALL-IDB1 (ImNNN_Y.jpg, {len(found[1])} images) and "
                f"ALL-IDB2 (ImNNN_Y.tif, {len(found[2])} images); pass version=1 or "
                "version=2, or point root at one of them")
        version = present[0] if present else None  # type: ignore[assignment]
    items = found[cast(int, version)] if version is not None else []
    if not items:
        which = "" if version is None else f" ALL-IDB{version}"
        extra = (f" (skipped {len(skipped)} image file(s) with other names: "
                 f"{_examples(skipped)})" if skipped else "")
        raise DatasetLayoutError(f"{root_path}: no{which} images found{extra}; expected "
                                 f"{_ALLIDB_LAYOUT}")
    if skipped:
        _warn(f"{root_path}: skipped {len(skipped)} image file(s) whose names are not "
              f"ImNNN_Y.jpg / ImNNN_Y.tif: {_examples(skipped)}")
    labels = [label for _, label in items]
    return LabelledImages(paths=[str(f) for f, _ in items], labels=labels, groups=None,
                          class_names=sorted(set(labels)), name="allidb",
                          root=str(root_path))


# -- load_pbc ----------------------------------------------------------------------

# (public as leukfeat.datasets.PBC_CLASSES, documented in the package's __init__.py)
PBC_CLASSES = ["basophil", "eosinophil", "erythroblast", "ig", "lymphocyte", "monocyte",
               "neutrophil", "platelet"]

_PBC_LAYOUT = ("<root>/<class>/<image>.jpg with class folders " + ", ".join(PBC_CLASSES)
               + " (any letter case), or the same under <root>/PBC_dataset_normal_DIB/")


def _pbc_class(name: str) -> str | None:
    name = name.casefold()
    return name if name in PBC_CLASSES else None


def load_pbc(root: StrPath) -> LabelledImages:
    """Load the PBC data set of normal peripheral blood cells (Barcelona).

    Acevedo et al., Data in Brief 30:105474 (2020): 17,092 single-cell JPEG
    images in eight folders ``basophil``, ``eosinophil``, ``erythroblast``,
    ``ig`` (immature granulocytes), ``lymphocyte``, ``monocyte``,
    ``neutrophil`` and ``platelet``, matched ignoring letter case. `root`
    may hold the class folders or be a parent of them, such as the folder
    holding the download's ``PBC_dataset_normal_DIB`` (up to two folder
    levels are searched). Images nested inside a class folder belong to it;
    hidden and non-image files are ignored. Missing or empty class folders
    are left out.

    Parameters
    ----------
    root : str or os.PathLike
        The data set folder.

    Returns
    -------
    LabelledImages
        ``name="pbc"``, lower-case labels, ``class_names`` the classes found
        in the canonical order of :data:`PBC_CLASSES`, ``groups=None``;
        paths ordered by class, then by path.

    Raises
    ------
    FileNotFoundError
        If `root` does not exist.
    NotADirectoryError
        If `root` is a file.
    DatasetLayoutError
        If none of the eight class folders is found (the message lists their
        names), they hold no images, two folders map to the same class, or
        class folders are found in several unrelated places.

    Warns
    -----
    DatasetWarning
        For sub-folders next to the class folders that are not PBC classes
        (they are ignored).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from leukfeat.datasets import load_pbc
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ["PBC_dataset_normal_DIB/IG/a.jpg", "PBC_dataset_normal_DIB/basophil/b.jpg"]:
    ...     (root / name).parent.mkdir(parents=True, exist_ok=True)
    ...     _ = (root / name).write_bytes(b"")
    >>> load_pbc(root).class_names
    ['basophil', 'ig']
    """
    root_path = _check_root(root)
    hits = _locate(root_path, _pbc_class)
    if not hits:
        raise DatasetLayoutError(f"{root_path}: none of the PBC class folders found; "
                                 f"expected {_PBC_LAYOUT}")
    if len(hits) > 1:
        raise _ambiguous(root_path, hits, "PBC class folders")
    return _load_class_folders(root_path, hits[0], _pbc_class, PBC_CLASSES, "pbc",
                               _PBC_LAYOUT)


# -- dispatch ------------------------------------------------------------------------

# (public as leukfeat.datasets.LOADERS, documented in the package's __init__.py)
LOADERS: dict[str, Callable[..., LabelledImages]] = {"folder": load_folder, "taleghani": load_taleghani, "cnmc": load_cnmc,
           "allidb": load_allidb, "pbc": load_pbc}


def load_dataset(root: StrPath, loader: str = "folder", **kwargs: Any) -> LabelledImages:
    """Load a data set with the loader of the given name.

    Parameters
    ----------
    root : str or os.PathLike
        The data set folder.
    loader : str, default "folder"
        A key of :data:`LOADERS`: ``"folder"``, ``"taleghani"``, ``"cnmc"``,
        ``"allidb"`` or ``"pbc"`` (letter case and surrounding spaces are
        ignored).
    **kwargs
        Passed to the loader (e.g. ``segmented=True`` for ``"taleghani"``,
        ``version=2`` for ``"allidb"``).

    Returns
    -------
    LabelledImages

    Raises
    ------
    ValueError
        If `loader` is not a known name (the message lists the valid ones).
    TypeError
        If a keyword argument is not accepted by the loader.
    FileNotFoundError, NotADirectoryError, DatasetLayoutError
        As raised by the loader.

    Examples
    --------
    >>> from leukfeat.datasets import load_dataset
    >>> load_dataset(".", loader="imagenet")
    Traceback (most recent call last):
    ...
    ValueError: loader: unknown loader 'imagenet'; expected one of: folder, taleghani, cnmc, allidb, pbc
    """
    key = loader.strip().casefold() if isinstance(loader, str) else None
    if key not in LOADERS:
        raise ValueError(f"loader: unknown loader {loader!r}; expected one of: "
                         + ", ".join(LOADERS))
    return LOADERS[key](root, **kwargs)
