"""Morphology of 2-D boolean masks and label images, for :mod:`leukfeat.segment`
(private; the public names are documented there).

Public: :func:`fill_holes`, :func:`remove_small`, :func:`remove_small_holes`,
:func:`opening`, :func:`closing`, :func:`split_touching`. The other names
without an underscore are shared with the package's other modules: the
labelling, renumbering and clean-up steps every segmenter uses and the two
compiled passes over a label image behind ``Segmentation.areas`` and
``Segmentation.boxes``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np
from scipy import ndimage as ndi

from .._numba import companion
from .._validation import check_mask

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

_kernels = companion("leukfeat.segment._kernels")


def _as_mask(mask, name="mask") -> np.ndarray:
    return check_mask(mask, None, name)


def connected_labels(mask: np.ndarray, connectivity: int = 8) -> np.ndarray:
    """int32 labels ``1..n`` of the connected objects of ``mask`` (OpenCV's order)."""
    n, lab = cv2.connectedComponents(mask.astype(np.uint8), connectivity=connectivity,
                                     ltype=cv2.CV_32S)
    return lab.astype(np.int32, copy=False)


def fill_holes(mask: ArrayLike) -> np.ndarray:
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
    return fill_holes_u8(_as_mask(mask).view(np.uint8)) > 0


def fill_holes_u8(m: np.ndarray) -> np.ndarray:
    """:func:`fill_holes` of a 0/non-zero uint8 mask, as a 0/255 uint8 mask
    (one scanline flood fill of the background from a one-pixel frame)."""
    h, w = m.shape
    padded = np.zeros((h + 2, w + 2), np.uint8)
    np.minimum(m, 1, out=padded[1:-1, 1:-1])
    cv2.floodFill(padded, None, (0, 0), 2, flags=4)
    return cv2.compare(padded[1:-1, 1:-1], 2, cv2.CMP_NE)  # type: ignore[call-overload, unused-ignore]


def remove_small(mask: ArrayLike, min_size: int, connectivity: int = 8) -> np.ndarray:
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


def remove_small_holes(mask: ArrayLike, area_threshold: int) -> np.ndarray:
    """Fill holes smaller than ``area_threshold`` pixels (4-connected holes)."""
    m = _as_mask(mask)
    return ~remove_small(~m, area_threshold, connectivity=4)


def disk(radius: int) -> np.ndarray:
    """Disc structuring element of the given radius (uint8, OpenCV ellipse)."""
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def opening(mask: ArrayLike, radius: int = 1) -> np.ndarray:
    """Binary opening with a disc of the given radius (removes thin spurs)."""
    m = _as_mask(mask)
    if radius < 1:
        return m.copy()
    return cv2.morphologyEx(m.astype(np.uint8), cv2.MORPH_OPEN, disk(radius)).astype(bool)


def closing(mask: ArrayLike, radius: int = 1) -> np.ndarray:
    """Binary closing with a disc of the given radius (bridges small gaps).

    The image is padded by ``radius`` so that objects at the border are not
    eroded by the border.
    """
    m = _as_mask(mask)
    if radius < 1:
        return m.copy()
    p = np.pad(m.astype(np.uint8), radius)
    out = cv2.morphologyEx(p, cv2.MORPH_CLOSE, disk(radius))
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


def split_touching(mask: ArrayLike, min_distance: int | None = None, *, solidity: float = 0.9,
                   footprint_frac: float = 0.6, labels: np.ndarray | None = None) -> np.ndarray:
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
    labels = connected_labels(m) if labels is None else labels
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
            core = cv2.erode(core, disk(max(1, int(min_distance) // 2)))  # type: ignore[assignment, unused-ignore]
        n_mark, markers = cv2.connectedComponents(core, connectivity=8, ltype=cv2.CV_32S)
        if n_mark - 1 < 2:
            continue
        ws = watershed(-dist, markers, mask=pad.astype(bool))[1:-1, 1:-1]
        view = out[sl]
        for k in range(2, n_mark):
            view[ws == k] = nxt
            nxt += 1
    return relabel(out)


def relabel(labels: np.ndarray) -> np.ndarray:
    """Renumber labels consecutively from 1 (0 stays background)."""
    present = np.bincount(labels.ravel()) > 0
    present[0] = False
    lut = np.zeros(present.size, np.int32)
    lut[present] = np.arange(1, int(present.sum()) + 1, dtype=np.int32)
    return lut[labels]


def drop_border_cells(labels):
    """``labels`` without the cells that touch the image border, renumbered
    from 1 (unchanged when none does)."""
    edge = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    drop = np.bincount(edge, minlength=int(labels.max()) + 1) > 0
    drop[0] = False
    if not drop.any():
        return labels
    return relabel(np.where(drop[labels], 0, labels))


def clean_and_label(raw, min_size: int, open_radius: int):
    """Opening, hole filling, small-object removal and labelling in one pass.

    The outer contours (8-connected objects) of the opened mask whose filled
    area is at least ``min_size`` are drawn filled into a label image, one
    label per contour (in OpenCV's contour order), which fills every hole
    exactly as :func:`fill_holes` does. Returns None when nothing is left.
    """
    m = raw.view(np.uint8) if raw.dtype == bool else raw
    if open_radius:
        m = cv2.morphologyEx(m, cv2.MORPH_OPEN, disk(open_radius))
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


def label_counts(labels, nucleus, n):
    """Pixels of each label ``0..n`` of an int32 label image and of the bool
    ``nucleus`` inside it, in one compiled pass: two int64 arrays of length
    ``n + 1``, or two empty ones when a label lies outside ``0..n``."""
    return _kernels().label_counts(np.ascontiguousarray(labels), np.ascontiguousarray(nucleus), n)


def label_boxes(labels, n):
    """``(row0, row1, col0, col1)`` (ends exclusive) of each label ``0..n``
    of an integer label image, in one compiled pass: an (n + 1, 4) int64
    array (``(0, 0, 0, 0)`` for a label that does not occur), or an empty
    (0, 4) one when a label lies outside ``0..n``."""
    return _kernels().label_boxes(np.ascontiguousarray(labels, dtype=np.int32), n)
