"""The result of a segmentation, for :mod:`leukfeat.segment` (private; the public
names are documented there): :class:`Segmentation` (the masks, the labels and
the cells' boxes, :meth:`~Segmentation.iter_cells`), :class:`CellCrop` (one
cell cut out of a field) and :func:`from_mask` (a segmentation from your own
mask or label image).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from .._validation import as_uint8_rgb, check_image, check_mask
from . import _morphology, _threshold

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pathlib import Path

    from numpy.typing import ArrayLike

    from .._typing import StrPath

_OUTLINE_CELL = (0, 255, 0)

#: The files :meth:`Segmentation.save` writes, by key: ``<stem><suffix>``.
#: PNGs (8-bit, 255 = inside) of the cells, the nuclei and the outlines drawn
#: on the image; 16-bit TIFF label images of the cells and of their nuclei
#: (the nucleus of cell *k* labelled *k*), which napari, QuPath, Fiji and
#: CellProfiler open as labels.
SAVED_FILES = {"mask": "_mask.png", "nucleus": "_nucleus.png", "overlay": "_overlay.png",
               "labels": "_labels.tif", "nucleus_labels": "_nucleus_labels.tif"}
_OUTLINE_NUCLEUS = (255, 255, 0)


@dataclass(frozen=True, eq=False)
class CellCrop:
    """One white cell cut out of a field.

    Attributes
    ----------
    image : ndarray of uint8, shape (h, w, 3), or None
        The crop of the RGB image (bounding box plus margin); None when the
        cell was cut without an image (:meth:`Segmentation.iter_cells`).
    mask, nucleus, cytoplasm : ndarray of bool, shape (h, w)
        This cell's compartments inside the crop (other cells are excluded).
    bbox : tuple of int
        ``(row0, col0, row1, col1)`` of the crop in the field (half-open).
    label : int
        The cell's label in :attr:`Segmentation.labels`.
    touches_border : bool
        Whether the cell touches the border of the field (it may be cut).
    """

    image: np.ndarray | None
    mask: np.ndarray
    nucleus: np.ndarray
    cytoplasm: np.ndarray
    bbox: tuple[int, int, int, int]
    label: int
    touches_border: bool

    @property
    def area(self) -> int:
        """Number of pixels of the cell."""
        return int(self.mask.sum())


@dataclass(frozen=True, eq=False)
class Segmentation:
    """Result of a white-cell segmentation.

    Attributes
    ----------
    mask : ndarray of bool, shape (H, W)
        White cells (nucleus plus cytoplasm).
    nucleus : ndarray of bool, shape (H, W)
        Nuclei; always a subset of ``mask``.
    labels : ndarray of int32, shape (H, W)
        0 for background, ``1..n_cells`` for the cells.
    method : str
        Name of the segmenter that produced the result.
    info : dict
        Method details (thresholds, cluster centres, ...).

    Notes
    -----
    ``cytoplasm`` is derived as ``mask & ~nucleus``.
    """

    mask: np.ndarray
    nucleus: np.ndarray
    labels: np.ndarray
    method: str = ""
    info: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        # Every reader of a segmentation (cell="largest", "median", per-cell
        # rows) relies on labels >= 0 of the mask's shape: refuse the rest
        # here, once, rather than letting each reader treat it its own way.
        labels = np.asarray(self.labels)
        if labels.ndim != 2 or np.shape(self.mask) != labels.shape \
                or np.shape(self.nucleus) != labels.shape:
            raise ValueError(f"Segmentation: mask, nucleus and labels must have one 2-D "
                             f"shape, got {np.shape(self.mask)}, {np.shape(self.nucleus)} "
                             f"and {labels.shape}")
        if labels.dtype.kind not in "iub":
            raise ValueError(f"labels: expected an integer label image, got dtype "
                             f"{labels.dtype}")
        if labels.dtype.kind == "i" and labels.size and labels.min() < 0:
            raise ValueError(f"labels: cell labels must be positive (0 is background), "
                             f"got {labels.min()}")

    @classmethod
    def empty(cls, shape: tuple[int, ...], method: str = "",
              info: dict[str, Any] | None = None) -> "Segmentation":
        """An empty segmentation (no cell) of the given (H, W) shape."""
        shape = tuple(shape[:2])
        z = np.zeros(shape, bool)
        return cls(z, z.copy(), np.zeros(shape, np.int32), method, dict(info or {}))

    @classmethod
    def from_masks(cls, mask: ArrayLike, nucleus: ArrayLike | None = None,
                   labels: ArrayLike | None = None, method: str = "",
                   info: dict[str, Any] | None = None) -> "Segmentation":
        """Build a segmentation from user masks (e.g. ground truth).

        Parameters
        ----------
        mask : array_like of bool, shape (H, W)
            White cells.
        nucleus : array_like of bool, optional
            Nuclei; intersected with ``mask``. Default: empty.
        labels : array_like of int, optional
            Cell labels (0 background, one positive number per cell; only
            their values inside ``mask`` are used); default the connected
            components of ``mask``.

        Raises
        ------
        ValueError
            If a mask or `labels` has the wrong shape, or `labels` holds
            negative or non-integer values inside ``mask``.
        """
        mask = np.asarray(mask).astype(bool)
        if mask.ndim != 2:
            raise ValueError(f"mask: expected a 2-D array, got shape {mask.shape}")
        nucleus = (np.zeros_like(mask) if nucleus is None
                   else check_mask(nucleus, mask.shape, "nucleus") & mask)
        if labels is None:
            labels = _morphology.connected_labels(mask)
        else:
            raw = np.asarray(labels)
            if raw.shape != mask.shape:
                raise ValueError(f"labels: expected shape {mask.shape}, got {raw.shape}")
            if raw.dtype.kind not in "biuf":
                raise ValueError(f"labels: expected an integer label image, got dtype "
                                 f"{raw.dtype}")
            inside = raw[mask]
            if inside.size and inside.min() < 0:
                raise ValueError("labels: cell labels must be positive (0 is background), "
                                 f"got {inside.min()} inside the mask")
            if raw.dtype.kind == "f" and not np.array_equal(inside, np.floor(inside)):
                raise ValueError("labels: expected integer labels, got fractional values")
            labels = np.where(mask, raw, 0).astype(np.int32)
        return cls(mask, nucleus, labels, method, dict(info or {}))

    def cell_geometry(self) -> dict[int, tuple[float, float, int, int, int, int]]:
        """Centroid and bounding box of every cell.

        Returns
        -------
        dict
            ``label -> (centroid_row, centroid_col, min_row, min_col,
            max_row, max_col)`` for every cell label in increasing order,
            with the conventions of :func:`skimage.measure.regionprops`
            (``centroid`` in pixel coordinates, ``bbox`` max exclusive).
        """
        labels = np.asarray(self.labels)
        n = self.n_cells
        if n == 0:
            return {}
        flat = labels.ravel()
        rows, cols = np.indices(labels.shape)
        count = np.bincount(flat, minlength=n + 1).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            cr = np.bincount(flat, rows.ravel(), minlength=n + 1) / count
            cc = np.bincount(flat, cols.ravel(), minlength=n + 1) / count
        out = {}
        for lab, (r0, r1, c0, c1) in self.boxes.items():
            out[lab] = (float(cr[lab]), float(cc[lab]), r0, c0, r1, c1)
        return out

    @property
    def cytoplasm(self) -> np.ndarray:
        """Cytoplasm: ``mask & ~nucleus``."""
        return self.mask & ~self.nucleus

    @property
    def shape(self) -> tuple[int, int]:
        """(H, W) of the segmented image."""
        return self.mask.shape

    @property
    def n_cells(self) -> int:
        """Number of labelled white cells."""
        return int(self.labels.max()) if self.labels.size else 0

    def cell_ids(self) -> list[int]:
        """Labels of the cells present, sorted."""
        return [int(v) for v in np.unique(self.labels) if v != 0]

    def areas(self) -> np.ndarray:
        """Area in pixels of cells ``1..n_cells`` (index 0 is cell 1)."""
        return self.label_counts()[0][1:]

    def label_counts(self) -> tuple[np.ndarray, np.ndarray]:
        """Pixels of every label and of the nucleus inside it.

        Returns
        -------
        areas, nucleus_areas : ndarray of int64, shape (n_cells + 1,)
            ``areas[k]`` is the number of pixels labelled ``k`` and
            ``nucleus_areas[k]`` the number of those in :attr:`nucleus`;
            index 0 is the background. Computed in one compiled pass when
            the labels are ``int32`` (as :func:`segment` makes them).
        """
        lab = self.labels
        n = self.n_cells
        if lab.ndim == 2 and lab.dtype == np.int32 and n <= lab.size and \
                self.nucleus.shape == lab.shape and self.nucleus.dtype == bool:
            areas, nuc = _morphology.label_counts(lab, self.nucleus, n)
            if areas.size:
                return areas, nuc
        flat = lab.ravel()
        inside = flat > 0                    # label 0 counts everything else
        areas = np.bincount(flat[inside], minlength=n + 1)
        areas[0] = flat.size - int(inside.sum())
        in_nuc = np.asarray(self.nucleus, bool).ravel()
        nuc = np.bincount(flat[in_nuc & inside], minlength=n + 1)
        nuc[0] = int(in_nuc.sum()) - int(nuc[1:].sum())
        return areas, nuc

    def largest(self) -> int:
        """Label of the largest cell (0 when there is none)."""
        if self.n_cells == 0:
            return 0
        return int(np.argmax(self.areas()) + 1)

    def select(self, label: int) -> "Segmentation":
        """A segmentation that keeps only cell ``label``."""
        keep = self.labels == label
        return Segmentation(keep, self.nucleus & keep, np.where(keep, 1, 0).astype(np.int32),
                            self.method, dict(self.info, selected=int(label)))

    @cached_property
    def boxes(self) -> dict[int, tuple[int, ...]]:
        """Bounding box of every cell, computed once (one compiled pass).

        Returns
        -------
        dict
            ``label -> (row0, row1, col0, col1)`` (ends exclusive) for every
            label present, in increasing order.

        Notes
        -----
        Like every derived value, it assumes the arrays are not modified in
        place after the segmentation is made.
        """
        labels = self.labels
        n = self.n_cells
        if n == 0:
            return {}
        if labels.dtype.kind in "iu" and n <= labels.size:
            found = _morphology.label_boxes(labels, n)
            if found.size:
                return {lab: tuple(int(v) for v in found[lab])
                        for lab in range(1, n + 1) if found[lab, 1] > found[lab, 0]}
        out: dict[int, tuple[int, ...]] = {}
        for lab in self.cell_ids():
            x, y, w, h = cv2.boundingRect((labels == lab).astype(np.uint8))
            out[lab] = (y, y + h, x, x + w)
        return out

    def crop(self, label: int, image: np.ndarray | None = None, margin: int = 4) -> CellCrop:
        """Cut cell ``label`` (1-based) and its masks out of ``image``.

        Parameters
        ----------
        label : int
            Cell label, ``1 <= label <= n_cells``.
        image : ndarray, shape (H, W, 3) or (H, W), optional
            The image that was segmented (``CellCrop.image`` is None without).
        margin : int
            Pixels of context kept around the bounding box (clipped at the
            image border).

        Returns
        -------
        CellCrop
        """
        if image is not None:
            image = check_image(image, "image")
            if image.shape[:2] != self.shape:
                raise ValueError(f"image: shape {image.shape[:2]} does not match the "
                                 f"segmentation {self.shape}")
        if not (1 <= int(label) <= self.n_cells):
            raise IndexError(f"label: {label} is not a cell label (1..{self.n_cells})")
        box = self.boxes.get(int(label))
        if box is None:
            raise IndexError(f"label: cell {label} is empty")
        return self._crop_box(int(label), box, image, margin)

    def iter_cells(self, image: np.ndarray | None = None, margin: int = 4) -> Iterator[CellCrop]:
        """Every cell cut out with its masks, in label order: the one per-cell
        loop of leukfeat (feature extraction, :func:`cells`, embeddings).

        Parameters
        ----------
        image : ndarray, shape (H, W, 3) or (H, W), optional
            The image that was segmented (``CellCrop.image`` is None without).
        margin : int
            Pixels of context kept around each bounding box.

        Yields
        ------
        CellCrop
            Each crop costs the cell's box, not the whole field: the boxes
            are computed once (:attr:`boxes`) and only the box of the label
            image is compared with the label.
        """
        if image is not None:
            image = check_image(image, "image")
            if image.shape[:2] != self.shape:
                raise ValueError(f"image: shape {image.shape[:2]} does not match the "
                                 f"segmentation {self.shape}")
        for label, box in self.boxes.items():
            yield self._crop_box(label, box, image, margin)

    def _crop_box(self, label: int, box: tuple[int, ...], image: np.ndarray | None,
                  margin: int) -> CellCrop:
        h, w = self.shape
        r0, r1, c0, c1 = box
        margin = int(margin)
        sl = (slice(max(r0 - margin, 0), min(r1 + margin, h)),
              slice(max(c0 - margin, 0), min(c1 + margin, w)))
        m = self.labels[sl] == label
        nuc = np.ascontiguousarray(self.nucleus[sl]) & m
        touches = bool(r0 == 0 or c0 == 0 or r1 == h or c1 == w)
        return CellCrop(None if image is None else np.array(image[sl]), m, nuc,
                        m & ~nuc, (sl[0].start, sl[1].start, sl[0].stop, sl[1].stop),
                        int(label), touches)

    def masked(self, image: ArrayLike, fill: float = 0) -> np.ndarray:
        """The image with every pixel outside ``mask`` set to ``fill``.

        This is the last step of the published LAB K-means recipe (the mask
        ANDed with the image).
        """
        image = check_image(image, "image")
        out = np.array(image, copy=True)
        out[~self.mask] = fill
        return out

    def save(self, folder: StrPath, stem: str, image: ArrayLike | None = None) -> dict[str, Path]:
        """Write the masks, the label images and the outlines as files.

        Parameters
        ----------
        folder : str or os.PathLike
            An existing folder.
        stem : str
            The file name before the suffixes of :data:`SAVED_FILES`.
        image : array_like, optional
            The segmented RGB image; the overlay (``<stem>_overlay.png``) is
            written only when it is given.

        Returns
        -------
        dict
            ``{key: pathlib.Path}`` of the files written.

        Raises
        ------
        ValueError
            If there are more than 65,535 cells (a 16-bit label image).
        OSError
            If a file cannot be written. Each file is written whole or not at
            all (a temporary file renamed into place); existing files of the
            same names are replaced.

        Examples
        --------
        >>> import tempfile
        >>> import cv2, numpy as np
        >>> from leukfeat import segment
        >>> image = np.full((64, 64, 3), 230, np.uint8)
        >>> mask = np.zeros((64, 64), np.uint8)
        >>> mask[8:24, 8:24] = 1; mask[36:60, 30:50] = 1
        >>> seg = segment.from_mask(image, mask)
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     files = seg.save(tmp, "field", image)
        ...     labels = cv2.imread(str(files["labels"]), cv2.IMREAD_UNCHANGED)
        ...     names = sorted(f.name for f in files.values())
        >>> labels.dtype, int(labels.max()), bool((labels == seg.labels).all())
        (dtype('uint16'), 2, True)
        >>> names[:2]
        ['field_labels.tif', 'field_mask.png']
        """
        from pathlib import Path

        from .._atomic import atomic_path

        if self.n_cells > np.iinfo(np.uint16).max:  # pragma: no cover - 65535 cells
            raise ValueError(f"{self.n_cells} cells do not fit a 16-bit label image")
        labels = self.labels.astype(np.uint16)
        arrays: dict[str, np.ndarray] = {"mask": self.mask.astype(np.uint8) * 255,
                  "nucleus": self.nucleus.astype(np.uint8) * 255,
                  "labels": labels,
                  "nucleus_labels": np.where(self.nucleus, labels, 0).astype(np.uint16)}
        if image is not None:
            arrays["overlay"] = cv2.cvtColor(self.overlay(image), cv2.COLOR_RGB2BGR)
        folder = Path(folder)
        files = {}
        for key, suffix in SAVED_FILES.items():
            if key not in arrays:
                continue
            file = folder / f"{stem}{suffix}"
            # Deflate-compressed TIFF: small, and read by tifffile without
            # imagecodecs (OpenCV's default LZW is not), napari, QuPath, Fiji
            params = [cv2.IMWRITE_TIFF_COMPRESSION, 8] if suffix.endswith(".tif") else []
            ok, buf = cv2.imencode(suffix[suffix.rindex("."):], arrays[key], params)
            if not ok:  # pragma: no cover - encoding a uint8/uint16 array does not fail
                raise OSError(f"cannot encode {file}")
            with atomic_path(file) as tmp:
                tmp.write_bytes(buf.tobytes())
            files[key] = file
        return files

    def overlay(self, image: ArrayLike, *, cell_colour: tuple[int, int, int] = _OUTLINE_CELL,
                nucleus_colour: tuple[int, int, int] = _OUTLINE_NUCLEUS,
                thickness: int = 1) -> np.ndarray:
        """Draw cell and nucleus outlines on a copy of ``image``.

        Parameters
        ----------
        image : ndarray, shape (H, W, 3) or (H, W)
            The segmented image.
        cell_colour, nucleus_colour : tuple of int
            RGB colours of the outlines (green and yellow by default).
        thickness : int
            Outline thickness in pixels.

        Returns
        -------
        ndarray of uint8, shape (H, W, 3)
        """
        rgb = as_uint8_rgb(image, "image").copy()
        if rgb.shape[:2] != self.shape:
            raise ValueError(f"image: shape {rgb.shape[:2]} does not match the "
                             f"segmentation {self.shape}")
        for lab in self.cell_ids():
            m = (self.labels == lab).astype(np.uint8)
            cs, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
            cv2.drawContours(rgb, cs, -1, tuple(int(c) for c in cell_colour), thickness)
        nuc = self.nucleus.astype(np.uint8)
        cs, _ = cv2.findContours(nuc, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(rgb, cs, -1, tuple(int(c) for c in nucleus_colour), thickness)
        return rgb

    def __repr__(self) -> str:
        return (f"Segmentation(method={self.method!r}, shape={self.shape}, "
                f"n_cells={self.n_cells}, mask_px={int(self.mask.sum())}, "
                f"nucleus_px={int(self.nucleus.sum())})")


# how from_mask reads a mask (documented in leukfeat.segment)
MASK_KINDS = ("auto", "binary", "labels", "nucleus_cytoplasm")


def from_mask(image: ArrayLike, mask: ArrayLike, kind: str = "auto", *,
              method: str = "mask") -> Segmentation:
    """A segmentation from your own mask or label image (no segmenter runs).

    For masks made elsewhere: Cellpose, StarDist, QuPath or CellProfiler
    label images, hand annotation, expert ground truth, or
    :func:`leukfeat.io.read_mask` of ``leukfeat segment``'s
    ``<stem>_labels.tif``.

    Parameters
    ----------
    image : ndarray of uint8, shape (H, W, 3)
        The RGB image the mask belongs to (used to find the nucleus of each
        cell when the mask does not give it).
    mask : array_like of bool or int, shape (H, W)
        The white cells, coded as `kind` says.
    kind : {"auto", "binary", "labels", "nucleus_cytoplasm"}, default "auto"
        * ``"binary"``: non-zero is white cell; each 8-connected object is
          one cell.
        * ``"labels"``: a label image, 0 background and one positive number
          per cell (touching cells stay apart).
        * ``"nucleus_cytoplasm"``: three values, 0 background, the lower
          non-zero value cytoplasm, the higher nucleus (0/1/2, or 0/128/255
          as in the Zheng et al. 2018 masks); each 8-connected cell is one
          cell.
        * ``"auto"``: bool or two values is ``"binary"``; an 8-bit mask of
          exactly three values, 0 among them, is ``"nucleus_cytoplasm"``;
          anything else ``"labels"``. (An 8-bit label image of exactly two
          cells is therefore read as nucleus/cytoplasm: say
          ``kind="labels"``, or save labels as 16-bit as Cellpose does.)

        Unless the mask gives it (``"nucleus_cytoplasm"``), the nucleus of
        each cell is its darker part, :func:`split_nucleus`.
    method : str, default "mask"
        Recorded as :attr:`Segmentation.method`.

    Returns
    -------
    Segmentation
        Labels ``1..n`` (a label image is renumbered consecutively in the
        order of its labels; ``info["source_labels"]`` maps each new label
        to the label of the mask).

    Raises
    ------
    ValueError
        If `kind` is unknown, the mask's shape differs from the image's,
        the mask is not integer or boolean, holds negative labels, or is not
        three-valued for ``kind="nucleus_cytoplasm"``.

    Examples
    --------
    >>> import numpy as np
    >>> from leukfeat.segment import from_mask
    >>> image = np.full((20, 30, 3), 200, np.uint8); image[4:10, 4:10] = (90, 40, 140)
    >>> labels = np.zeros((20, 30), np.uint16); labels[2:12, 2:12] = 7; labels[5:15, 18:28] = 9
    >>> seg = from_mask(image, labels)
    >>> seg.n_cells, seg.info["source_labels"]
    (2, {1: 7, 2: 9})
    """
    rgb = _threshold.check_rgb(image)
    if kind not in MASK_KINDS:
        raise ValueError(f"kind: expected one of {MASK_KINDS}, got {kind!r}")
    arr = np.asarray(mask)
    if arr.shape != rgb.shape[:2]:
        raise ValueError(f"mask: expected the image's shape {rgb.shape[:2]}, got {arr.shape}")
    if arr.dtype.kind not in "biu":
        if arr.dtype.kind == "f" and np.isfinite(arr).all() \
                and np.array_equal(arr, np.rint(arr)):
            arr = arr.astype(np.int64)
        else:
            raise ValueError(f"mask: expected a boolean or integer mask, got dtype {arr.dtype}")
    if arr.dtype.kind == "i" and arr.size and arr.min() < 0:
        raise ValueError(f"mask: labels must not be negative, got {arr.min()}")
    values = np.unique(arr)
    if kind == "auto":
        if arr.dtype == bool or values.size <= 2:
            kind = "binary"
        elif arr.dtype == np.uint8 and values.size == 3 and values[0] == 0:
            kind = "nucleus_cytoplasm"
        else:
            kind = "labels"
    info: dict[str, Any] = {"mask_kind": kind}
    if kind == "nucleus_cytoplasm":
        if values.size != 3 or values[0] != 0:
            raise ValueError(f"mask: kind='nucleus_cytoplasm' needs exactly three values "
                             f"(0, cytoplasm, nucleus), got {values.tolist()[:10]}")
        cell = arr > 0
        labels = _morphology.connected_labels(cell)
        nucleus = arr == values[2]
        return Segmentation(cell, nucleus, labels, method, info)
    if kind == "binary":
        cell = arr > 0
        labels = _morphology.connected_labels(cell)
    else:
        present = values[values > 0]
        labels = np.zeros(arr.shape, np.int32)
        if present.size:
            lut_index = np.searchsorted(present, arr)
            labels = np.where(arr > 0, lut_index + 1, 0).astype(np.int32)
        info["source_labels"] = {i + 1: int(v) for i, v in enumerate(present)}
        cell = labels > 0
    nucleus = _threshold.split_nucleus(rgb, labels) if cell.any() else np.zeros_like(cell)
    return Segmentation(cell, nucleus & cell, labels, method, info)
