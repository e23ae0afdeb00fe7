"""Thresholds from 8-bit histograms, for :mod:`leukfeat.segment` (private; the
public names are documented there).

Public: :func:`kmeans_histogram` (exact K-means of an 8-bit channel on its
256-bin histogram), :func:`otsu_threshold` and :func:`split_nucleus` (the
nucleus as the darker Otsu class of each field's cells). Shared with the
package's other modules: the histogram forms of both (:func:`kmeans_on_histogram`,
:func:`otsu_from_hist`, :func:`contrasted_otsu`), the nucleus split of a
channel (:func:`nucleus_from_channel`) and the RGB input check and 8-bit
CIELAB conversion every segmenter starts with (:func:`check_rgb`,
:func:`to_lab8`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

from .._numba import companion
from .._validation import as_uint8_rgb, check_image, check_mask
from ._morphology import disk, fill_holes_u8

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

_kernels = companion("leukfeat.segment._kernels")


def check_rgb(image) -> np.ndarray:
    """The ``image`` argument of a segmenter as RGB uint8 (H, W, 3), or ValueError."""
    img = check_image(image, "image", ndim=(3,))
    return as_uint8_rgb(img, "image")


def to_lab8(rgb: np.ndarray) -> np.ndarray:
    """8-bit CIELAB as OpenCV defines it: L*255/100, a*+128, b*+128."""
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB)


def kmeans_histogram(channel: ArrayLike, k: int = 3, *, mask: ArrayLike | None = None,
                     max_iter: int = 100, init: ArrayLike | None = None
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
    return kmeans_on_histogram(hist, k, init=init, max_iter=max_iter)


def _initial_centres(hist: np.ndarray, k: int, init=None) -> np.ndarray:
    """``init``, or ``k`` centres spread evenly between the 0.5 % and 99.5 %
    quantiles of a non-empty float64 histogram (one when they coincide)."""
    if init is not None:
        return np.asarray(init, np.float64)
    cdf = np.cumsum(hist) / hist.sum()
    lo = float(np.searchsorted(cdf, 0.005))
    hi = float(np.searchsorted(cdf, 0.995))
    return np.linspace(lo, hi, k) if hi > lo else np.array([lo])


def kmeans_on_histogram(hist: np.ndarray, k: int, *, init=None, max_iter: int = 100):
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


def otsu_threshold(values: ArrayLike) -> float:
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
    return otsu_from_hist(np.bincount(v.ravel(), minlength=256).astype(np.float64))


def otsu_from_hist(hist: np.ndarray) -> float:
    """Otsu's threshold level of a float64 histogram (NaN if < 2 bins occupied)."""
    return _kernels().otsu_from_hist(np.ascontiguousarray(hist, dtype=np.float64))


def contrasted_otsu(hist, min_contrast):
    """Otsu's threshold level of a 256-bin float64 histogram (values ``<= t``
    form the lower class), or None when it has fewer than two levels or the
    means of its two classes differ by less than ``min_contrast`` levels."""
    t = otsu_from_hist(hist)
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


def split_nucleus(image: ArrayLike, mask: ArrayLike, *, channel: str = "L", min_contrast: float = 12.0,
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
    rgb = check_rgb(image)
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
        ch = to_lab8(rgb)[..., 0]
    elif channel == "gray":
        ch = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    elif channel == "green":
        ch = np.ascontiguousarray(rgb[..., 1])
    else:
        raise ValueError(f"channel: expected 'L', 'gray' or 'green', got {channel!r}")
    return nucleus_from_channel(ch, m, cells, min_contrast=min_contrast,
                                 min_fraction=min_fraction, smooth=smooth)


def nucleus_from_channel(ch, m, cells=None, *, min_contrast=12.0, min_fraction=0.02,
                          smooth=1):
    """Nucleus of the cells ``m`` (bool) from the dark Otsu class of ``ch``;
    ``cells`` is their label image (None: the 8-connected objects of ``m``)."""
    mu8 = np.ascontiguousarray(m).view(np.uint8)
    hist = cv2.calcHist([ch], [0], mu8, [256], [0, 256]).ravel().astype(np.float64)
    ti = contrasted_otsu(hist, min_contrast)
    if ti is None:
        return m.copy()
    dark = cv2.compare(ch, ti, cv2.CMP_LE)
    dark = cv2.bitwise_and(dark, dark, mask=mu8)
    if smooth:
        dark = cv2.morphologyEx(dark, cv2.MORPH_OPEN, disk(smooth))
    # pieces: the 8-connected objects with their holes filled; specks (at
    # least every single pixel) are dropped relative to their own cell
    _, parts = cv2.connectedComponents(fill_holes_u8(dark), connectivity=8, ltype=cv2.CV_32S)
    return _drop_specks(parts, m, cells, min_fraction)


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
