"""The body of :mod:`leukfeat.segment` (private; the package is its face)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import cv2
import numpy as np
from scipy import ndimage as ndi

from .._filters import _log, _zero_crossings
from .._validation import as_uint8_rgb, check_image, check_mask

__all__ = [
    "Segmentation",
    "CellCrop",
    "lab_kmeans",
    "hsv_threshold",
    "otsu",
    "nucleus_anchored",
    "blue_ratio",
    "segment",
    "from_mask",
    "MASK_KINDS",
    "cells",
    "kmeans_histogram",
    "otsu_threshold",
    "split_nucleus",
    "fill_holes",
    "remove_small",
    "remove_small_holes",
    "opening",
    "closing",
    "split_touching",
    "log_edges",
    "METHODS",
    "DEFAULT_METHOD",
]

_OUTLINE_CELL = (0, 255, 0)
_OUTLINE_NUCLEUS = (255, 255, 0)


# --------------------------------------------------------------------------
# result objects
# --------------------------------------------------------------------------
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

    image: np.ndarray
    mask: np.ndarray
    nucleus: np.ndarray
    cytoplasm: np.ndarray
    bbox: tuple
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
    info: dict = field(default_factory=dict, compare=False)

    def __post_init__(self):
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
    def empty(cls, shape, method: str = "", info: dict | None = None) -> "Segmentation":
        """An empty segmentation (no cell) of the given (H, W) shape."""
        shape = tuple(shape[:2])
        z = np.zeros(shape, bool)
        return cls(z, z.copy(), np.zeros(shape, np.int32), method, dict(info or {}))

    @classmethod
    def from_masks(cls, mask, nucleus=None, labels=None, method: str = "",
                   info: dict | None = None) -> "Segmentation":
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
            labels = _label(mask)
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

    def cell_geometry(self) -> dict:
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
    def shape(self) -> tuple:
        """(H, W) of the segmented image."""
        return self.mask.shape

    @property
    def n_cells(self) -> int:
        """Number of labelled white cells."""
        return int(self.labels.max()) if self.labels.size else 0

    def cell_ids(self) -> list:
        """Labels of the cells present, sorted."""
        return [int(v) for v in np.unique(self.labels) if v != 0]

    def areas(self) -> np.ndarray:
        """Area in pixels of cells ``1..n_cells`` (index 0 is cell 1)."""
        return self._label_counts()[0][1:]

    def _label_counts(self):
        """Pixels of each label ``0..n_cells`` and of the nucleus inside it
        (two int64 arrays), in one compiled pass when the labels allow."""
        lab = self.labels
        n = self.n_cells
        if lab.ndim == 2 and lab.dtype == np.int32 and n <= lab.size and \
                self.nucleus.shape == lab.shape and self.nucleus.dtype == bool:
            areas, nuc = _kernels().label_counts(np.ascontiguousarray(lab),
                                                 np.ascontiguousarray(self.nucleus), n)
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
    def boxes(self) -> dict:
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
            found = _kernels().label_boxes(np.ascontiguousarray(labels, dtype=np.int32), n)
            if found.size:
                return {lab: tuple(int(v) for v in found[lab])
                        for lab in range(1, n + 1) if found[lab, 1] > found[lab, 0]}
        out = {}
        for lab in self.cell_ids():
            x, y, w, h = cv2.boundingRect((labels == lab).astype(np.uint8))
            out[lab] = (y, y + h, x, x + w)
        return out

    def crop(self, label: int, image=None, margin: int = 4) -> CellCrop:
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

    def iter_cells(self, image=None, margin: int = 4):
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

    def _crop_box(self, label, box, image, margin) -> CellCrop:
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

    def masked(self, image, fill=0) -> np.ndarray:
        """The image with every pixel outside ``mask`` set to ``fill``.

        This is the last step of the published LAB K-means recipe (the mask
        ANDed with the image).
        """
        image = check_image(image, "image")
        out = np.array(image, copy=True)
        out[~self.mask] = fill
        return out

    def overlay(self, image, *, cell_colour=_OUTLINE_CELL,
                nucleus_colour=_OUTLINE_NUCLEUS, thickness: int = 1) -> np.ndarray:
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


# --------------------------------------------------------------------------
# morphology helpers (2-D boolean arrays)
# --------------------------------------------------------------------------
def _as_mask(mask, name="mask") -> np.ndarray:
    return check_mask(mask, None, name)


def _label(mask: np.ndarray, connectivity: int = 8):
    n, lab = cv2.connectedComponents(mask.astype(np.uint8), connectivity=connectivity,
                                     ltype=cv2.CV_32S)
    return lab.astype(np.int32, copy=False)


def fill_holes(mask) -> np.ndarray:
    """Fill every hole of a binary mask.

    A hole is a background region not connected (4-connectivity) to the image
    border, as in :func:`scipy.ndimage.binary_fill_holes`, computed with a
    flood fill from the border.

    Parameters
    ----------
    mask : array_like of bool, shape (H, W)

    Returns
    -------
    ndarray of bool

    Examples
    --------
    >>> import numpy as np
    >>> ring = np.zeros((5, 5), bool); ring[1:4, 1:4] = True; ring[2, 2] = False
    >>> bool(fill_holes(ring)[2, 2])
    True
    """
    return _fill_holes_u8(_as_mask(mask).view(np.uint8)) > 0


def _fill_holes_u8(m: np.ndarray) -> np.ndarray:
    """:func:`fill_holes` of a 0/non-zero uint8 mask, as a 0/255 uint8 mask
    (one scanline flood fill of the background from a one-pixel frame)."""
    h, w = m.shape
    padded = np.zeros((h + 2, w + 2), np.uint8)
    np.minimum(m, 1, out=padded[1:-1, 1:-1])
    cv2.floodFill(padded, None, (0, 0), 2, flags=4)
    return cv2.compare(padded[1:-1, 1:-1], 2, cv2.CMP_NE)


def remove_small(mask, min_size: int, connectivity: int = 8) -> np.ndarray:
    """Remove connected components smaller than ``min_size`` pixels.

    Parameters
    ----------
    mask : array_like of bool, shape (H, W)
    min_size : int
        Components with fewer pixels are removed.
    connectivity : {4, 8}
        Pixel connectivity.

    Returns
    -------
    ndarray of bool

    Examples
    --------
    >>> import numpy as np
    >>> m = np.zeros((6, 6), bool); m[0, 0] = True; m[2:5, 2:5] = True
    >>> int(remove_small(m, 4).sum())
    9
    """
    m = _as_mask(mask)
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity: expected 4 or 8, got {connectivity!r}")
    if min_size <= 1 or not m.any():
        return m.copy()
    n, lab, stats, _ = cv2.connectedComponentsWithStats(m.astype(np.uint8),
                                                        connectivity=connectivity)
    keep = stats[:, cv2.CC_STAT_AREA] >= min_size
    keep[0] = False
    return keep[lab]


def remove_small_holes(mask, area_threshold: int) -> np.ndarray:
    """Fill holes smaller than ``area_threshold`` pixels (4-connected holes)."""
    m = _as_mask(mask)
    return ~remove_small(~m, area_threshold, connectivity=4)


def _disk(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def opening(mask, radius: int = 1) -> np.ndarray:
    """Binary opening with a disc of the given radius (removes thin spurs)."""
    m = _as_mask(mask)
    if radius < 1:
        return m.copy()
    return cv2.morphologyEx(m.astype(np.uint8), cv2.MORPH_OPEN, _disk(radius)).astype(bool)


def closing(mask, radius: int = 1) -> np.ndarray:
    """Binary closing with a disc of the given radius (bridges small gaps).

    The image is padded by ``radius`` so that objects at the border are not
    eroded by the border.
    """
    m = _as_mask(mask)
    if radius < 1:
        return m.copy()
    p = np.pad(m.astype(np.uint8), radius)
    out = cv2.morphologyEx(p, cv2.MORPH_CLOSE, _disk(radius))
    return out[radius:-radius, radius:-radius].astype(bool)


def _solidity_by_label(labels: np.ndarray, areas: np.ndarray) -> np.ndarray:
    """Solidity (area / convex-hull area) of every label, one contour pass."""
    n = len(areas) - 1
    sol = np.ones(n + 1)
    cs, _ = cv2.findContours((labels > 0).astype(np.uint8), cv2.RETR_EXTERNAL,
                             cv2.CHAIN_APPROX_SIMPLE)
    for c in cs:
        x, y = c[0, 0]
        lab = labels[y, x]
        if lab == 0:
            continue
        hull = cv2.convexHull(c)
        # pixel-count area vs polygon area: add half the perimeter so that a
        # convex digital shape has solidity ~1
        hull_area = cv2.contourArea(hull) + 0.5 * cv2.arcLength(hull, True) + 1.0
        sol[lab] = min(1.0, areas[lab] / hull_area)
    return sol


def split_touching(mask, min_distance: int | None = None, *, solidity: float = 0.9,
                   footprint_frac: float = 0.6, labels=None) -> np.ndarray:
    """Label a mask, splitting touching round cells with a watershed.

    Only components whose solidity (area / convex-hull area) is below
    ``solidity`` are considered clumps and split; convex components keep a
    single label, so the common case costs one labelling and one contour
    pass. A clump is split by a marker-controlled watershed on the negated
    Euclidean distance transform; the markers are the connected "cores"
    where the distance exceeds ``footprint_frac`` times the component's
    largest inscribed radius (two touching discs have two cores joined only
    through their narrow neck).

    Parameters
    ----------
    mask : array_like of bool, shape (H, W)
    min_distance : int, optional
        If given, the cores are eroded by ``min_distance // 2`` first, which
        merges markers closer than about that distance.
    solidity : float
        Components less solid than this are split.
    footprint_frac : float
        Markers lower than this fraction of the component's maximum distance
        are ignored (suppresses spurious splits of irregular cells).
    labels : ndarray of int, optional
        Connected-component labels of ``mask`` if already computed.

    Returns
    -------
    ndarray of int32
        0 for background, consecutive labels from 1.
    """
    m = _as_mask(mask)
    labels = _label(m) if labels is None else labels
    n = int(labels.max())
    if n == 0:
        return labels.astype(np.int32)
    areas = np.bincount(labels.ravel(), minlength=n + 1)
    sol = _solidity_by_label(labels, areas)
    clumps = np.flatnonzero((sol < solidity) & (areas >= 50))
    clumps = clumps[clumps != 0]
    if clumps.size == 0:
        return labels.astype(np.int32)
    from skimage.segmentation import watershed

    out = labels.astype(np.int32, copy=True)
    nxt = n + 1
    objs = ndi.find_objects(labels)
    for i in clumps:
        sl = objs[i - 1]
        comp = labels[sl] == i
        pad = np.pad(comp, 1).astype(np.uint8)
        dist = cv2.distanceTransform(pad, cv2.DIST_L2, 5)
        dmax = float(dist.max())
        # markers: the cores of the distance map; touching round cells have
        # separate cores joined only through the narrow neck between them
        core = (dist > footprint_frac * dmax).astype(np.uint8)
        if min_distance:
            core = cv2.erode(core, _disk(max(1, int(min_distance) // 2)))
        n_mark, markers = cv2.connectedComponents(core, connectivity=8, ltype=cv2.CV_32S)
        if n_mark - 1 < 2:
            continue
        ws = watershed(-dist, markers, mask=pad.astype(bool))[1:-1, 1:-1]
        view = out[sl]
        for k in range(2, n_mark):
            view[ws == k] = nxt
            nxt += 1
    return _relabel(out)


# --------------------------------------------------------------------------
# thresholds
# --------------------------------------------------------------------------
def kmeans_histogram(channel, k: int = 3, *, mask=None, max_iter: int = 100,
                     init=None) -> tuple:
    """K-means (Lloyd) of an 8-bit channel, computed on its histogram.

    Pixels with the same value always fall in the same cluster, so Lloyd's
    algorithm on the 256-bin histogram (cluster means weighted by counts) is
    exactly Lloyd's algorithm on all pixels, at O(256 k) per iteration
    instead of O(N k).

    Parameters
    ----------
    channel : ndarray of uint8, shape (H, W)
        The channel to cluster.
    k : int
        Number of clusters (>= 2).
    mask : array_like of bool, optional
        Only pixels inside the mask are clustered.
    max_iter : int
        Iteration cap (Lloyd converges in a handful on 256 bins).
    init : array_like of float, optional
        Initial centres; default ``k`` values evenly spaced between the 0.5th
        and 99.5th percentiles, which is deterministic and robust to a few
        saturated pixels (scale bars, dust).

    Returns
    -------
    centres : ndarray of float64, shape (k,)
        Sorted cluster centres (empty clusters are dropped, so fewer than
        ``k`` can come back for images with fewer distinct values).
    thresholds : ndarray of float64, shape (len(centres) - 1,)
        Decision boundaries: a value ``v`` belongs to cluster ``j`` when
        ``thresholds[j-1] < v <= thresholds[j]`` (midpoints between centres).
    counts : ndarray of int64, shape (len(centres),)
        Pixels per cluster.
    """
    ch = np.asarray(channel)
    if ch.dtype != np.uint8:
        raise ValueError(f"channel: expected uint8, got {ch.dtype}")
    if int(k) < 2:
        raise ValueError(f"k: expected an integer >= 2, got {k!r}")
    k = int(k)
    vals = ch if mask is None else ch[np.asarray(mask, bool)]
    hist = np.bincount(vals.ravel(), minlength=256).astype(np.float64)
    if init is not None:
        init = np.sort(np.asarray(init, np.float64).ravel())
        if init.size != k:
            raise ValueError(f"init: expected {k} centres, got {init.size}")
    return _kmeans_on_histogram(hist, k, init=init, max_iter=max_iter)


def _initial_centres(hist: np.ndarray, k: int, init=None) -> np.ndarray:
    """``init``, or ``k`` centres spread evenly between the 0.5 % and 99.5 %
    quantiles of a non-empty float64 histogram (one when they coincide)."""
    if init is not None:
        return np.asarray(init, np.float64)
    cdf = np.cumsum(hist) / hist.sum()
    lo = float(np.searchsorted(cdf, 0.005))
    hi = float(np.searchsorted(cdf, 0.995))
    return np.linspace(lo, hi, k) if hi > lo else np.array([lo])


def _kmeans_on_histogram(hist: np.ndarray, k: int, *, init=None, max_iter: int = 100):
    """Lloyd's algorithm on a 256-bin histogram (see :func:`kmeans_histogram`)."""
    hist = np.asarray(hist, np.float64)
    total = hist.sum()
    levels = np.arange(hist.size, dtype=np.float64)
    if total == 0:
        return np.empty(0), np.empty(0), np.empty(0, np.int64)
    centres = _initial_centres(hist, k, init)
    # cluster j holds the levels v with bounds[j-1] < v <= bounds[j]; with
    # cumulative sums each Lloyd step costs O(k), not O(256) (compiled loop)
    cw = np.concatenate(([0.0], np.cumsum(hist)))
    cs = np.concatenate(([0.0], np.cumsum(hist * levels)))
    centres, cuts = _kernels().lloyd_on_histogram(cw, cs, np.ascontiguousarray(centres, np.float64),
                                                  int(max_iter))
    bounds = (centres[1:] + centres[:-1]) / 2.0
    counts = np.rint(np.diff(cw[cuts])).astype(np.int64)
    return centres, bounds, counts


def otsu_threshold(values) -> float:
    """Otsu's threshold of uint8 values (pixels ``> t`` form the upper class).

    Computed from the 256-bin histogram by maximising the between-class
    variance; equals :func:`skimage.filters.threshold_otsu` on integer data.

    Parameters
    ----------
    values : array_like of uint8

    Returns
    -------
    float
        The threshold, or NaN when there are fewer than two distinct values.
    """
    v = np.asarray(values)
    if v.dtype != np.uint8:
        raise ValueError(f"values: expected uint8, got {v.dtype}")
    return _otsu_from_hist(np.bincount(v.ravel(), minlength=256).astype(np.float64))


def _otsu_from_hist(hist: np.ndarray) -> float:
    """Otsu's threshold level of a float64 histogram (NaN if < 2 bins occupied)."""
    return _kernels().otsu_from_hist(np.ascontiguousarray(hist, dtype=np.float64))


_KERNELS = None


def _kernels():
    """The :mod:`._kernels` module, imported on first use (numba is slow to import)."""
    global _KERNELS
    if _KERNELS is None:
        from . import _kernels as k
        _KERNELS = k
    return _KERNELS


def _warm_kernels() -> None:
    """Load (or, on a cold numba cache, compile) the segmentation kernels."""
    k = _kernels()
    hist = np.arange(8, dtype=np.float64)
    k.lloyd_on_histogram(np.cumsum(hist), np.cumsum(hist * hist), np.array([1.0, 5.0]), 10)
    k.otsu_from_hist(hist)
    lab = np.ones((2, 2), np.int32)
    k.drop_specks(lab, lab > 0, lab, 0.02, np.empty((2, 2), bool))
    img = np.zeros((2, 2, 3), np.uint8)
    k.label_counts(lab, lab > 0, 1)
    k.label_boxes(lab, 1)
    k.channel_histogram(img, 1)
    k.split_by_threshold(img, 1, np.empty((2, 2), np.uint8))
    # the nucleus-anchored segmenter's kernels, on a tiny field with one
    # white cell (cream background, pink red cells, a purple nucleus in a
    # lilac cytoplasm) that goes through every step
    field = np.empty((40, 40, 3), np.uint8)
    field[:] = (236, 226, 214)
    yy, xx = np.mgrid[:40, :40]
    for cy, cx in ((8, 8), (8, 32), (32, 8), (32, 32)):
        field[(yy - cy) ** 2 + (xx - cx) ** 2 <= 25] = (205, 140, 150)
    field[(yy - 20) ** 2 + (xx - 20) ** 2 <= 64] = (190, 170, 215)
    field[(yy - 20) ** 2 + (xx - 20) ** 2 <= 20] = (90, 40, 140)
    nucleus_anchored(field)


# --------------------------------------------------------------------------
# shared pipeline pieces
# --------------------------------------------------------------------------
def _check_rgb(image) -> np.ndarray:
    img = check_image(image, "image", ndim=(3,))
    return as_uint8_rgb(img, "image")


def _auto_min_size(shape, min_size) -> int:
    if min_size is None:
        return max(16, int(round(0.0015 * shape[0] * shape[1])))
    if min_size < 0:
        raise ValueError(f"min_size: expected a non-negative number, got {min_size!r}")
    return int(min_size)


def _lab(rgb: np.ndarray) -> np.ndarray:
    # 8-bit CIELAB as OpenCV defines it: L*255/100, a*+128, b*+128
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB)


def split_nucleus(image, mask, *, channel: str = "L", min_contrast: float = 12.0,
                  min_fraction: float = 0.02, smooth: int = 1) -> np.ndarray:
    """Split the dark-stained nucleus from the paler cytoplasm.

    One Otsu threshold is computed on ``channel`` over the pixels of all the
    cells in ``mask`` (cells of one field share their staining); pixels darker
    than it are nucleus.  Holes inside each nucleus are filled, specks smaller
    than ``min_fraction`` of the area of the cell they lie in are dropped and
    the result is restricted to ``mask``.  The speck size is relative to each
    cell, not to all the cells of the field, so a field of many cells (e.g. a
    whole ALL-IDB1 smear) keeps every nucleus.

    When the two Otsu classes differ by less than ``min_contrast`` grey levels
    the cells have no distinguishable cytoplasm (e.g. blasts with scant
    cytoplasm at low magnification): the whole cell is nucleus.

    Parameters
    ----------
    image : ndarray of uint8, shape (H, W, 3)
        RGB image.
    mask : array_like of bool or int, shape (H, W)
        White cells: a boolean or 0/1 (0/255, ...) mask, each 8-connected
        object one cell, or an integer label image with several labels (0
        background, one positive label per cell, e.g. ``Segmentation.labels``
        after :func:`split_touching`).
    channel : {"L", "gray", "green"}
        Channel in which the nucleus is darker: CIELAB lightness (default),
        BT.601 grey or the green channel (haematoxylin/azure absorb green).
    min_contrast : float
        Minimum difference of the class means (8-bit units) for a split.
    min_fraction : float
        Nucleus fragments smaller than this fraction of their own cell's area
        are removed.
    smooth : int
        Radius of an opening applied to the nucleus mask (0 to disable).

    Returns
    -------
    ndarray of bool
        Nucleus mask, a subset of ``mask``.
    """
    rgb = _check_rgb(image)
    m = check_mask(mask, rgb.shape, "mask")
    cells = None
    arr = np.asarray(mask)
    if np.issubdtype(arr.dtype, np.integer):
        positive = arr[m]
        if positive.size and positive.min() != positive.max():   # a label image
            if (arr < 0).any():
                raise ValueError("mask: a label image must not hold negative labels")
            cells = arr.astype(np.int32, copy=False)
            m = cells > 0
    if not m.any():
        return np.zeros_like(m)
    if channel == "L":
        ch = _lab(rgb)[..., 0]
    elif channel == "gray":
        ch = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    elif channel == "green":
        ch = np.ascontiguousarray(rgb[..., 1])
    else:
        raise ValueError(f"channel: expected 'L', 'gray' or 'green', got {channel!r}")
    return _nucleus_from_channel(ch, m, cells, min_contrast=min_contrast,
                                 min_fraction=min_fraction, smooth=smooth)


def _nucleus_from_channel(ch, m, cells=None, *, min_contrast=12.0, min_fraction=0.02,
                          smooth=1):
    """Nucleus of the cells ``m`` (bool) from the dark Otsu class of ``ch``;
    ``cells`` is their label image (None: the 8-connected objects of ``m``)."""
    mu8 = np.ascontiguousarray(m).view(np.uint8)
    hist = cv2.calcHist([ch], [0], mu8, [256], [0, 256]).ravel().astype(np.float64)
    ti = _contrasted_otsu(hist, min_contrast)
    if ti is None:
        return m.copy()
    dark = cv2.compare(ch, ti, cv2.CMP_LE)
    dark = cv2.bitwise_and(dark, dark, mask=mu8)
    if smooth:
        dark = cv2.morphologyEx(dark, cv2.MORPH_OPEN, _disk(smooth))
    # pieces: the 8-connected objects with their holes filled; specks (at
    # least every single pixel) are dropped relative to their own cell
    _, parts = cv2.connectedComponents(_fill_holes_u8(dark), connectivity=8, ltype=cv2.CV_32S)
    return _drop_specks(parts, m, cells, min_fraction)


def _contrasted_otsu(hist, min_contrast):
    """Otsu's threshold level of a 256-bin float64 histogram (values ``<= t``
    form the lower class), or None when it has fewer than two levels or the
    means of its two classes differ by less than ``min_contrast`` levels."""
    t = _otsu_from_hist(hist)
    if np.isnan(t):
        return None
    ti = int(t)
    levels = np.arange(256, dtype=np.float64)
    w_lo, w_hi = hist[:ti + 1].sum(), hist[ti + 1:].sum()
    if w_lo == 0 or w_hi == 0:
        return None
    lo_mean = (hist[:ti + 1] * levels[:ti + 1]).sum() / w_lo
    hi_mean = (hist[ti + 1:] * levels[ti + 1:]).sum() / w_hi
    return None if hi_mean - lo_mean < min_contrast else ti


def _drop_specks(parts, m, cells, min_fraction):
    """``parts > 0`` inside ``m``, without the pieces (a part within one
    cell) smaller than ``min_fraction`` of that cell's area (at least 2 px)."""
    if cells is None:
        _, cells = cv2.connectedComponents(m.view(np.uint8), connectivity=8,
                                           ltype=cv2.CV_32S)
    out = np.empty(m.shape, bool)
    if _kernels().drop_specks(np.ascontiguousarray(parts), np.ascontiguousarray(m),
                              np.ascontiguousarray(cells), float(min_fraction), out):
        return out
    # a piece overlaps two cells (touching cells split by a watershed):
    # measure each (piece, cell) part on its own
    inside = (parts > 0) & m
    idx = np.flatnonzero(inside)
    if idx.size == 0:
        return inside
    flat = cells.ravel()
    cell_area = np.bincount(flat[m.ravel()])
    cell_of = flat[idx].astype(np.int64)
    key = parts.ravel()[idx].astype(np.int64) * cell_area.size + cell_of
    piece_area = np.bincount(key)
    keep = piece_area[key] >= np.maximum(2.0, np.floor(min_fraction * cell_area[cell_of]))
    out = np.zeros(m.size, bool)
    out[idx[keep]] = True
    return out.reshape(m.shape)


def _finish(rgb, raw, *, method, min_size, open_radius, split, exclude_border,
            nucleus, info, lightness=None) -> Segmentation:
    """Clean a raw white-cell mask and build the Segmentation (shared by all
    segmenters): opening, hole filling, small-object removal, optional
    watershed split, optional border exclusion, nucleus split."""
    labels = _clean_and_label(raw, min_size, open_radius)
    if labels is None:
        return Segmentation.empty(rgb.shape, method, info)
    if split:
        labels = split_touching(labels > 0, labels=labels)
    if exclude_border:
        labels = _drop_border_cells(labels)
        if not labels.any():
            return Segmentation.empty(rgb.shape, method, info)
    m = labels > 0
    if nucleus:
        if lightness is None:
            lightness = _lab(rgb)[..., 0]
        nuc = _nucleus_from_channel(lightness, m, labels)
    else:
        nuc = np.zeros_like(m)
    return Segmentation(m, nuc, labels.astype(np.int32, copy=False), method, info)


def _drop_border_cells(labels):
    """``labels`` without the cells that touch the image border, renumbered
    from 1 (unchanged when none does)."""
    edge = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    drop = np.bincount(edge, minlength=int(labels.max()) + 1) > 0
    drop[0] = False
    if not drop.any():
        return labels
    return _relabel(np.where(drop[labels], 0, labels))


def _clean_and_label(raw, min_size: int, open_radius: int):
    """Opening, hole filling, small-object removal and labelling in one pass.

    The outer contours (8-connected objects) of the opened mask whose filled
    area is at least ``min_size`` are drawn filled into a label image, one
    label per contour (in OpenCV's contour order), which fills every hole
    exactly as :func:`fill_holes` does. Returns None when nothing is left.
    """
    m = raw.view(np.uint8) if raw.dtype == bool else raw
    if open_radius:
        m = cv2.morphologyEx(m, cv2.MORPH_OPEN, _disk(open_radius))
    cs, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    # pixels of a filled outline = polygon area + boundary points / 2 + 1
    # (Pick's theorem; exact for simple outlines through pixel centres)
    cs = [c for c in cs if cv2.contourArea(c) + len(c) / 2.0 + 1.0 >= min_size]
    if not cs:
        return None
    labels = np.zeros(m.shape, np.int32)
    for i, c in enumerate(cs, start=1):
        cv2.drawContours(labels, [c], -1, i, thickness=-1)
    return labels


def _relabel(labels: np.ndarray) -> np.ndarray:
    """Renumber labels consecutively from 1 (0 stays background)."""
    present = np.bincount(labels.ravel()) > 0
    present[0] = False
    lut = np.zeros(present.size, np.int32)
    lut[present] = np.arange(1, int(present.sum()) + 1, dtype=np.int32)
    return lut[labels]


# --------------------------------------------------------------------------
# segmenters
# --------------------------------------------------------------------------
def lab_kmeans(image, k: int = 4, *, min_stain: float = 8.0, min_blue: float = 2.0, min_size: int | None = None,
               open_radius: int = 1, split: bool = False,
               exclude_border: bool = False, nucleus: bool = True) -> Segmentation:
    """Segment white cells by K-means on the CIELAB a* channel.

    The published recipe (e.g. Ghaderzadeh et al. 2022 on the Taleghani ALL
    set): convert RGB to CIELAB, cluster the a* (green–magenta) channel with
    K-means, keep the cluster(s) of the stained white cells, threshold to a
    binary mask, fill holes, remove small objects and small holes (every
    enclosed hole is filled, which subsumes small-hole removal).  Wright and
    Giemsa stains make leukocytes the most magenta objects of a smear.

    K-means runs on the 256-bin histogram of the 8-bit a* channel
    (:func:`kmeans_histogram`), which is exactly Lloyd's algorithm on all
    pixels. The most magenta cluster is kept, together with any other cluster
    whose centre lies nearer to it than to the most populous (background)
    cluster; the threshold is the boundary below the lowest kept cluster.

    Parameters
    ----------
    image : ndarray of uint8, shape (H, W, 3)
        RGB image.
    k : int
        Number of a* clusters. The default 4 leaves room for background, red
        cells, pale cytoplasm and nucleus; the published recipe used 3,
        which merges a pale cytoplasm with the red cells on smears where it
        is lightly stained. Which clusters count as white cell is decided by
        the rule above, not by ``k``.
    min_stain : float
        The kept clusters must be at least this many a* units more magenta
        than the background cluster; otherwise the image has no white cell
        and an empty segmentation is returned.
    min_blue : float
        The kept pixels must also be on average at least this many b* units
        bluer than the rest of the field (purple, not pink or red); otherwise
        the segmentation is empty. This rejects fields holding only pink
        erythrocytes or red annotations.
    min_size : int, optional
        Objects smaller than this (pixels) are removed; default
        ``max(16, 0.0015 * H * W)`` (platelets and specks at typical
        magnifications).
    open_radius : int
        Radius of a binary opening that detaches thin bridges (0 disables).
    split : bool
        Split touching cells with a watershed (:func:`split_touching`); off by
        default, as in the published recipe (:func:`cells` turns it on).
    exclude_border : bool
        Drop cells that touch the image border.
    nucleus : bool
        Compute the nucleus/cytoplasm split (:func:`split_nucleus`).

    Returns
    -------
    Segmentation
        ``info`` holds ``centres`` and ``threshold`` in 8-bit a* units
        (a* + 128).

    Examples
    --------
    >>> from leukfeat.datasets import make_cells
    >>> data = make_cells(2, random_state=0)
    >>> seg = lab_kmeans(data.images[0])
    >>> seg.n_cells >= 1
    True
    """
    rgb = _check_rgb(image)
    ms = _auto_min_size(rgb.shape, min_size)
    if int(k) < 2:
        raise ValueError(f"k: expected an integer >= 2, got {k!r}")
    lab = _lab(rgb)
    kern = _kernels()
    centres, bounds, counts = _kmeans_on_histogram(kern.channel_histogram(lab, 1), int(k))
    info = {"centres": centres.tolist(), "counts": counts.tolist()}
    if centres.size < 2:
        return Segmentation.empty(rgb.shape, "lab_kmeans", info)
    thr = _stained_threshold(centres, bounds, counts, min_stain)
    if thr is None:
        return Segmentation.empty(rgb.shape, "lab_kmeans", info)
    info["threshold"] = float(thr)
    cut = int(np.floor(thr)) + 1          # a > thr  <=>  a >= cut
    # Romanowsky stains make leukocytes purple: magenta *and* bluer than the
    # slide. Pink/red objects (erythrocytes in eosin-rich stains, scale-bar
    # text) are magenta but not blue; a field of them has no white cell.
    raw = np.empty(rgb.shape[:2], np.uint8)                  # 255 where a* >= cut
    b_in, b_out = kern.split_by_threshold(lab, cut, raw)    # b* histograms in / out
    levels = np.arange(256)
    b_mean_in = float((b_in * levels).sum() / max(b_in.sum(), 1))
    b_median_out = float(np.searchsorted(np.cumsum(b_out), b_out.sum() / 2.0))
    blueness = b_median_out - b_mean_in
    info["blueness"] = blueness
    if blueness < min_blue:
        return Segmentation.empty(rgb.shape, "lab_kmeans", info)
    return _finish(rgb, raw, method="lab_kmeans", min_size=ms,
                   open_radius=open_radius, split=split, exclude_border=exclude_border,
                   nucleus=nucleus, info=info, lightness=lab[..., 0])


def _stained_threshold(centres, bounds, counts, min_stain):
    """The a* threshold above which pixels belong to stained clusters.

    The most magenta cluster is kept, with every other cluster whose centre
    is nearer to it than to the most populous (background) cluster. Returns
    None when the kept clusters are not ``min_stain`` above the background.
    """
    bg = int(np.argmax(counts))
    top = len(centres) - 1
    if top == bg:
        return None
    keep = [j for j in range(len(centres)) if j == top or (
        j > bg and abs(centres[j] - centres[top]) < abs(centres[j] - centres[bg]))]
    lowest = min(keep)
    if lowest == 0 or centres[lowest] - centres[bg] < min_stain:
        return None
    return float(bounds[lowest - 1])


# default HSV box, in degrees (hue) and [0, 1] (saturation, value)
HSV_LOWER = (235.0, 0.18, 0.15)
HSV_UPPER = (330.0, 1.0, 1.0)


def hsv_threshold(image, lower=HSV_LOWER, upper=HSV_UPPER, *, min_size: int | None = None,
                  open_radius: int = 1, split: bool = False,
                  exclude_border: bool = False, nucleus: bool = True) -> Segmentation:
    """Segment white cells by thresholding in HSV space.

    Pixels with ``lower <= (H, S, V) <= upper`` are white-cell pixels. Hue is
    in degrees (0–360; a lower hue greater than the upper hue wraps through
    red), saturation and value in [0, 1]. The defaults select the purple to
    violet of Wright/Giemsa-stained nuclei and basophilic cytoplasm (hue
    235–330°) while excluding the pale background (low saturation), pink
    red cells (hue above 330° or below 235°), grey-blue red cells (low
    saturation) and black debris (low value). Value is not capped: brightly
    lit smears (Taleghani ALL) have white cells with V close to 1.

    Parameters
    ----------
    image : ndarray of uint8, shape (H, W, 3)
        RGB image.
    lower, upper : tuple of 3 floats
        HSV box corners.
    min_size, open_radius, split, exclude_border, nucleus
        As in :func:`lab_kmeans`.

    Returns
    -------
    Segmentation
    """
    rgb = _check_rgb(image)
    lower = np.asarray(lower, float)
    upper = np.asarray(upper, float)
    for name, v in (("lower", lower), ("upper", upper)):
        if v.shape != (3,) or not np.isfinite(v).all():
            raise ValueError(f"{name}: expected three finite numbers (H deg, S, V), got {v}")
    ms = _auto_min_size(rgb.shape, min_size)
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV_FULL)  # H in 0..255 for 0..360 deg
    h = hsv[..., 0].astype(np.float32) * (360.0 / 256.0)
    s = hsv[..., 1].astype(np.float32) / 255.0
    v = hsv[..., 2].astype(np.float32) / 255.0
    if lower[0] <= upper[0]:
        hue_ok = (h >= lower[0]) & (h <= upper[0])
    else:
        hue_ok = (h >= lower[0]) | (h <= upper[0])
    raw = hue_ok & (s >= lower[1]) & (s <= upper[1]) & (v >= lower[2]) & (v <= upper[2])
    info = {"lower": lower.tolist(), "upper": upper.tolist()}
    return _finish(rgb, raw, method="hsv_threshold", min_size=ms,
                   open_radius=open_radius, split=split, exclude_border=exclude_border,
                   nucleus=nucleus, info=info)


_OTSU_CHANNELS = {
    # name: (extractor, stained side is "high" or "low")
    "a": (lambda rgb: _lab(rgb)[..., 1], "high"),
    "L": (lambda rgb: _lab(rgb)[..., 0], "low"),
    "gray": (lambda rgb: cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), "low"),
    "green": (lambda rgb: np.ascontiguousarray(rgb[..., 1]), "low"),
    "saturation": (lambda rgb: cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)[..., 1], "high"),
}


def otsu(image, channel: str = "a", *, min_size: int | None = None,
         open_radius: int = 1, split: bool = False,
         exclude_border: bool = False, nucleus: bool = True) -> Segmentation:
    """Segment white cells with Otsu's threshold on one channel.

    Parameters
    ----------
    image : ndarray of uint8, shape (H, W, 3)
        RGB image.
    channel : {"a", "L", "gray", "green", "saturation"}
        Channel to threshold. Stained cells are the high side of ``a``
        (CIELAB a*) and ``saturation``, the low side of the others.
    min_size, open_radius, split, exclude_border, nucleus
        As in :func:`lab_kmeans`.

    Returns
    -------
    Segmentation
        ``info["threshold"]`` is the Otsu threshold on the 8-bit channel.

    Notes
    -----
    Otsu always splits an image into two classes; on a field of red cells and
    background only it will return them. Prefer :func:`lab_kmeans` on smears.
    """
    rgb = _check_rgb(image)
    if channel not in _OTSU_CHANNELS:
        raise ValueError(f"channel: expected one of {sorted(_OTSU_CHANNELS)}, got {channel!r}")
    fn, side = _OTSU_CHANNELS[channel]
    ch = fn(rgb)
    t = otsu_threshold(ch)
    info = {"threshold": t, "channel": channel}
    if np.isnan(t):
        return Segmentation.empty(rgb.shape, "otsu", info)
    raw = ch > t if side == "high" else ch <= t
    ms = _auto_min_size(rgb.shape, min_size)
    return _finish(rgb, raw, method="otsu", min_size=ms,
                   open_radius=open_radius, split=split, exclude_border=exclude_border,
                   nucleus=nucleus, info=info)


def nucleus_anchored(image, *, min_blue: float = 0.10, min_nucleus: float = 0.2,
                     max_extent: float = 1.2, n_rays: int = 48, exclude_border: bool = False,
                     nucleus: bool = True, split: bool = True) -> Segmentation:
    """Segment white cells outwards from their nuclei (the default segmenter).

    The white cell is the only object of a Romanowsky-stained smear (Wright,
    Giemsa, May-Grünwald-Giemsa, Leishman, rapid stains) with a dark
    blue-purple nucleus, whatever the stain's hue, the microscope or the
    camera. This segmenter finds the nuclei first, joins the pieces of each
    nucleus (neutrophil lobes, pale chromatin) into one cell, and grows the
    cytoplasm from each nucleus to the background and to the neighbouring red
    cells. Every threshold comes from the image's own statistics and every
    size is relative to the nucleus it belongs to or to the field's red
    cells, so the same defaults serve single-cell crops of 100 pixels and
    640x480 smear fields of any stain.

    1. **Nucleus.** The blue ratio (:func:`blue_ratio`) is high only where a
       nucleus absorbs green light and lets blue through. Otsu's threshold of
       it over the stained pixels (darker than Otsu's threshold of L*) seeds
       the nuclei; the midpoint between that threshold and Otsu's threshold
       over all pixels (when lower) grows them over pale chromatin
       (hysteresis). Holes are filled; pieces smaller than 5 % of the largest
       and pieces whose mean blue ratio is below ``min_blue`` (the bluish
       rims of red cells) are dropped.
    2. **One cell per nucleus.** A piece joins another when the other's
       cell contour (step 3) presses against it and, free to pass over it,
       holds at least half of it: lobes and fragments become one nucleus,
       while the nuclei of neighbouring cells have background or red cells
       between them. Nuclei smaller than ``min_nucleus`` times the largest
       are dropped (platelets, specks). Where the field's red cells can be
       measured (the area-weighted median inscribed radius of the stained
       objects that touch no nucleus; a ruler only when it lies between 0.3
       and 2 times the largest nucleus' radius, which clumps of overlapping
       red cells exceed), a nucleus must also be at least 0.4 red-cell radii
       wide, and one 0.5 radii wide is kept however large the largest (small
       lymphocytes beside blasts).
    3. **Cytoplasm.** Each cell is a closed star-shaped contour around its
       nucleus, found by dynamic programming over ``n_rays`` rays from the
       centre of the nucleus' convex hull (one and a half turns, which closes
       it; its radius may change between rays by at most the arc between
       them, at a cost of one unit per pixel). It maximises the evidence that
       the pixels inside are this cell's cytoplasm and the pixels outside are
       not: a log-likelihood ratio, clipped to +-6, between a Gaussian CIELAB
       model of the cell's cytoplasm (fitted first to a ring around the
       nucleus, then to the cell found; at least half as broad as the
       background's model, so that a ring of near-background pixels cannot
       claim the background) and Gaussian models of the image's background
       and of three K-means clusters of the stained pixels beyond the reach
       of any cytoplasm (red cells). The contour never leaves the image nor
       crosses another nucleus, and stays within ``max_extent`` hull radii of
       the nucleus.
    4. **Nucleus of each cell.** Of the nucleus, the part in the darker Otsu
       class of the cell's own L* is kept (holes filled) when the two classes
       differ by 12 levels or more: a blue cytoplasm (lymphocytes, blasts) is
       as blue as the nucleus but never as dark. A nucleus with no pixel in
       the darker class is kept whole, so every cell has a nucleus.

    Parameters
    ----------
    image : ndarray of uint8, shape (H, W, 3)
        RGB image: a single-cell crop or a smear field.
    min_blue : float
        Smallest mean blue ratio of a nucleus piece. The blue-purple nuclei
        of every stain measured lie above 0.12 (99 %), the bluish rims of
        red cells in fields without white cells below 0.12 (99 %).
    min_nucleus : float
        Nuclei smaller than this fraction of the largest nucleus' area are
        dropped (unless 0.5 red-cell radii wide).
    max_extent : float
        How far the cytoplasm may reach beyond the nucleus, in radii of the
        nucleus' convex hull.
    n_rays : int
        Rays of the contour (its angular resolution), at least 8.
    exclude_border : bool
        Drop cells that touch the image border.
    nucleus : bool
        Return the nucleus mask (otherwise ``nucleus`` is empty).
    split : bool
        Accepted for compatibility with the other segmenters (which
        :func:`cells` calls with ``split=True``); the cells are always
        separated by their nuclei.

    Returns
    -------
    Segmentation
        Cells labelled from the largest nucleus down; ``info`` holds
        ``light_threshold`` (8-bit L*), ``nucleus_thresholds`` (low and high,
        of the blue ratio), ``n_nucleus_pieces`` and, when measured,
        ``red_cell_radius`` in pixels.

    See Also
    --------
    lab_kmeans, hsv_threshold : the published colour-threshold recipes.
    blue_ratio : the nucleus channel.

    Notes
    -----
    Quality and speed on public expert-annotated sets are measured by
    ``benchmarks/segmentation_quality.py`` (see the documentation's
    segmentation page). Known limits: the nuclei of two cells pressed
    together with no gap between them form one piece and so one cell (dense
    fields of blasts); the granules of eosinophils and basophils can be as
    dark and blue as the nucleus and count as nucleus; a platelet lying alone
    in a field too small to measure its red cells is taken for a white cell.

    Examples
    --------
    >>> from leukfeat.datasets import make_cells
    >>> data = make_cells(2, random_state=0)
    >>> seg = nucleus_anchored(data.images[0])
    >>> seg.n_cells
    1
    """
    rgb = _check_rgb(image)
    if not (np.isfinite(min_blue) and -1.0 <= min_blue < 1.0):
        raise ValueError(f"min_blue: expected a number in [-1, 1), got {min_blue!r}")
    if not (np.isfinite(min_nucleus) and 0.0 <= min_nucleus <= 1.0):
        raise ValueError(f"min_nucleus: expected a number in [0, 1], got {min_nucleus!r}")
    if not (np.isfinite(max_extent) and max_extent > 0):
        raise ValueError(f"max_extent: expected a positive number, got {max_extent!r}")
    if int(n_rays) != n_rays or n_rays < 8:
        raise ValueError(f"n_rays: expected an integer >= 8, got {n_rays!r}")
    from ._anchored import anchored_labels

    labels, nuc, info = anchored_labels(rgb, min_blue=float(min_blue),
                                        min_nucleus=float(min_nucleus),
                                        max_extent=float(max_extent), n_rays=int(n_rays))
    if exclude_border:
        labels = _drop_border_cells(labels)
    m = labels > 0
    nuc = (nuc & m) if nucleus else np.zeros_like(m)
    return Segmentation(m, nuc, labels, "nucleus_anchored", info)


def blue_ratio(image, sigma: float = 1.0) -> np.ndarray:
    """The nucleus channel of :func:`nucleus_anchored`: the white-balanced
    blue ratio ``(b - g) / (b + g)``.

    ``b`` and ``g`` are the blue and green channels plus one, each divided by
    the median of the background plus one: the background is the lighter
    Otsu class of CIELAB L*. The ratio is 0 on the background of any stain,
    high where a blue-purple nucleus absorbs green light and lets blue
    through, and low on red cells, which absorb both. It is computed on the
    image blurred by a Gaussian of ``sigma`` pixels and quantised to
    1/127.5 (its 8-bit scale in the segmenter).

    Parameters
    ----------
    image : ndarray of uint8, shape (H, W, 3)
        RGB image.
    sigma : float
        Standard deviation of the Gaussian blur in pixels (> 0).

    Returns
    -------
    ndarray of float32, shape (H, W)
        Values in [-1, 1].

    Examples
    --------
    >>> import numpy as np
    >>> field = np.full((8, 8, 3), 230, np.uint8); field[2:6, 2:6] = (90, 40, 140)
    >>> r = blue_ratio(field)
    >>> bool(r[4, 4] > 0.3 > abs(r[0, 0]))
    True
    """
    rgb = _check_rgb(image)
    if not (np.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma: expected a positive number, got {sigma!r}")
    from ._anchored import blue_ratio as _blue_ratio

    return _blue_ratio(rgb, float(sigma))


METHODS = {"nucleus_anchored": nucleus_anchored, "lab_kmeans": lab_kmeans,
           "hsv": hsv_threshold, "hsv_threshold": hsv_threshold, "otsu": otsu}

#: The segmenter used wherever none is named: :func:`segment`, :func:`cells`,
#: :func:`leukfeat.extract.features`, the estimators and the command line.
DEFAULT_METHOD = "nucleus_anchored"


def segment(image, method: str = DEFAULT_METHOD, **kwargs) -> Segmentation:
    """Segment with a segmenter chosen by name (see :data:`METHODS`).

    Parameters
    ----------
    image : ndarray of uint8, shape (H, W, 3)
    method : {"nucleus_anchored", "lab_kmeans", "hsv", "otsu"} or callable
        A name or any callable ``image -> Segmentation``; default
        :data:`DEFAULT_METHOD` (:func:`nucleus_anchored`).
    **kwargs
        Passed to the segmenter.
    """
    if callable(method):
        seg = method(image, **kwargs)
        if not isinstance(seg, Segmentation):
            raise TypeError(f"method: callable returned {type(seg).__name__}, "
                            "expected a Segmentation")
        return seg
    try:
        fn = METHODS[method]
    except (KeyError, TypeError):
        raise ValueError(f"method: expected one of {sorted(METHODS)} or a callable, "
                         f"got {method!r}") from None
    return fn(image, **kwargs)


#: How :func:`from_mask` reads a mask (see there).
MASK_KINDS = ("auto", "binary", "labels", "nucleus_cytoplasm")


def from_mask(image, mask, kind: str = "auto", *, method: str = "mask") -> Segmentation:
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
    rgb = _check_rgb(image)
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
    info = {"mask_kind": kind}
    if kind == "nucleus_cytoplasm":
        if values.size != 3 or values[0] != 0:
            raise ValueError(f"mask: kind='nucleus_cytoplasm' needs exactly three values "
                             f"(0, cytoplasm, nucleus), got {values.tolist()[:10]}")
        cell = arr > 0
        labels = _label(cell)
        nucleus = arr == values[2]
        return Segmentation(cell, nucleus, labels, method, info)
    if kind == "binary":
        cell = arr > 0
        labels = _label(cell)
    else:
        present = values[values > 0]
        labels = np.zeros(arr.shape, np.int32)
        if present.size:
            lut_index = np.searchsorted(present, arr)
            labels = np.where(arr > 0, lut_index + 1, 0).astype(np.int32)
        info["source_labels"] = {i + 1: int(v) for i, v in enumerate(present)}
        cell = labels > 0
    nucleus = split_nucleus(rgb, labels) if cell.any() else np.zeros_like(cell)
    return Segmentation(cell, nucleus & cell, labels, method, info)


def cells(image, method=DEFAULT_METHOD, *, exclude_border: bool = False, margin: int = 4,
          min_area: int | None = None, **kwargs) -> list:
    """Find every white cell of a smear field and cut each one out.

    Parameters
    ----------
    image : ndarray of uint8, shape (H, W, 3)
        RGB smear field.
    method : str or callable
        Segmenter (see :func:`segment`).
    exclude_border : bool
        Leave out cells that touch the image border (they may be cut).
    margin : int
        Context pixels kept around each cell's bounding box.
    min_area : int, optional
        Leave out cells smaller than this (pixels); default none beyond the
        segmenter's own small-object removal.
    **kwargs
        Passed to the segmenter; touching cells are split
        (``split=True``) unless asked otherwise.

    Returns
    -------
    list of CellCrop
        Largest cell first.
    """
    rgb = _check_rgb(image)
    if isinstance(method, str):
        kwargs.setdefault("split", True)
    seg = segment(rgb, method, **kwargs)
    out = []
    for crop in seg.iter_cells(rgb, margin=margin):
        if exclude_border and crop.touches_border:
            continue
        if min_area is not None and crop.area < min_area:
            continue
        out.append(crop)
    out.sort(key=lambda c: -c.area)
    return out


# --------------------------------------------------------------------------
# edges
# --------------------------------------------------------------------------
def log_edges(image, sigma: float = 2.0, *, threshold: float | None = None) -> tuple:
    """Laplacian-of-Gaussian response and its zero-crossing edges.

    The response is the scale-normalised LoG ``sigma**2 * (G_sigma * I)''`` of
    the image as float in [0, 1] (grey, BT.601, for RGB), equal to
    ``sigma**2 * scipy.ndimage.gaussian_laplace`` (computed with separable
    OpenCV filters). Edges are the zero-crossings of the response whose jump
    exceeds ``threshold`` (see :func:`leukfeat.extract.edges.zero_crossings`;
    of each crossing pair the pixel nearer to zero is marked).

    Parameters
    ----------
    image : ndarray, shape (H, W) or (H, W, 3)
        uint8 image (or float in [0, 1]).
    sigma : float
        Gaussian scale in pixels (> 0).
    threshold : float, optional
        Minimum slope across a crossing; default ``0.1 * std(response)``, which
        suppresses the sign flicker of flat regions.

    Returns
    -------
    response : ndarray of float64, shape (H, W)
    edges : ndarray of bool, shape (H, W)
    """
    img = check_image(image, "image")
    if not (np.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma: expected a positive number, got {sigma!r}")
    if img.ndim == 3:
        gray = cv2.cvtColor(as_uint8_rgb(img), cv2.COLOR_RGB2GRAY).astype(np.float64) / 255.0
    elif img.dtype == np.uint8:
        gray = img.astype(np.float64) / 255.0
    else:
        gray = img.astype(np.float64)
    resp = _log(np.ascontiguousarray(gray), float(sigma))
    if threshold is None:
        threshold = 0.1 * float(resp.std())
    edges = _zero_crossings(resp, float(threshold))
    return resp, edges
