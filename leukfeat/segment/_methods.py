"""The segmenters of :mod:`leukfeat.segment` (private; the public names are
documented there): :func:`nucleus_anchored` (the default, its algorithm in
:mod:`._anchored`), the colour-threshold recipes :func:`lab_kmeans`,
:func:`hsv_threshold` and :func:`otsu` with the clean-up they share, the
nucleus channel :func:`blue_ratio`, the choice by name (:data:`METHODS`,
:func:`segment`), :func:`cells` and :func:`log_edges`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import cv2
import numpy as np

from .._filters import log_raw, zero_crossings_raw
from .._numba import companion
from .._validation import as_uint8_rgb, check_image
from ._container import Segmentation
from ._morphology import clean_and_label, drop_border_cells, split_touching
from ._threshold import (check_rgb, kmeans_on_histogram, nucleus_from_channel, otsu_threshold,
                         to_lab8)

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from ._container import CellCrop

_kernels = companion("leukfeat.segment._kernels")


def _auto_min_size(shape, min_size) -> int:
    if min_size is None:
        return max(16, int(round(0.0015 * shape[0] * shape[1])))
    if min_size < 0:
        raise ValueError(f"min_size: expected a non-negative number, got {min_size!r}")
    return int(min_size)


def _finish(rgb, raw, *, method, min_size, open_radius, split, exclude_border,
            nucleus, info, lightness=None) -> Segmentation:
    """Clean a raw white-cell mask and build the Segmentation (shared by all
    segmenters): opening, hole filling, small-object removal, optional
    watershed split, optional border exclusion, nucleus split."""
    labels = clean_and_label(raw, min_size, open_radius)
    if labels is None:
        return Segmentation.empty(rgb.shape, method, info)
    if split:
        labels = split_touching(labels > 0, labels=labels)
    if exclude_border:
        labels = drop_border_cells(labels)
        if not labels.any():
            return Segmentation.empty(rgb.shape, method, info)
    m = labels > 0
    if nucleus:
        if lightness is None:
            lightness = to_lab8(rgb)[..., 0]
        nuc = nucleus_from_channel(lightness, m, labels)
    else:
        nuc = np.zeros_like(m)
    return Segmentation(m, nuc, labels.astype(np.int32, copy=False), method, info)


# --------------------------------------------------------------------------
# segmenters
# --------------------------------------------------------------------------
def lab_kmeans(image: ArrayLike, k: int = 4, *, min_stain: float = 8.0, min_blue: float = 2.0, min_size: int | None = None,
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
    rgb = check_rgb(image)
    ms = _auto_min_size(rgb.shape, min_size)
    if int(k) < 2:
        raise ValueError(f"k: expected an integer >= 2, got {k!r}")
    lab = to_lab8(rgb)
    kern = _kernels()
    centres, bounds, counts = kmeans_on_histogram(kern.channel_histogram(lab, 1), int(k))
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


def hsv_threshold(image: ArrayLike, lower: ArrayLike = HSV_LOWER,
                  upper: ArrayLike = HSV_UPPER, *, min_size: int | None = None,
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
    rgb = check_rgb(image)
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
    "a": (lambda rgb: to_lab8(rgb)[..., 1], "high"),
    "L": (lambda rgb: to_lab8(rgb)[..., 0], "low"),
    "gray": (lambda rgb: cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), "low"),
    "green": (lambda rgb: np.ascontiguousarray(rgb[..., 1]), "low"),
    "saturation": (lambda rgb: cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)[..., 1], "high"),
}


def otsu(image: ArrayLike, channel: str = "a", *, min_size: int | None = None,
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
    rgb = check_rgb(image)
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


def nucleus_anchored(image: ArrayLike, *, min_blue: float = 0.10, min_nucleus: float = 0.2,
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
    rgb = check_rgb(image)
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
        labels = drop_border_cells(labels)
    m = labels > 0
    nuc = (nuc & m) if nucleus else np.zeros_like(m)
    return Segmentation(m, nuc, labels, "nucleus_anchored", info)


def blue_ratio(image: ArrayLike, sigma: float = 1.0) -> np.ndarray:
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
    rgb = check_rgb(image)
    if not (np.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma: expected a positive number, got {sigma!r}")
    from ._anchored import blue_ratio as _blue_ratio

    return _blue_ratio(rgb, float(sigma))


METHODS: dict[str, Callable[..., Segmentation]] = {"nucleus_anchored": nucleus_anchored, "lab_kmeans": lab_kmeans,
           "hsv": hsv_threshold, "hsv_threshold": hsv_threshold, "otsu": otsu}


# the segmenter used wherever none is named (documented in leukfeat.segment)
DEFAULT_METHOD = "nucleus_anchored"


def segment(image: ArrayLike, method: str | Callable[..., Segmentation] = DEFAULT_METHOD,
            **kwargs: Any) -> Segmentation:
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


def cells(image: ArrayLike, method: str | Callable[..., Segmentation] = DEFAULT_METHOD, *,
          exclude_border: bool = False, margin: int = 4,
          min_area: int | None = None, **kwargs: Any) -> list[CellCrop]:
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
    rgb = check_rgb(image)
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
def log_edges(image: ArrayLike, sigma: float = 2.0, *,
              threshold: float | None = None) -> tuple[np.ndarray, np.ndarray]:
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
    resp = log_raw(np.ascontiguousarray(gray), float(sigma))
    if threshold is None:
        threshold = 0.1 * float(resp.std())
    edges = zero_crossings_raw(resp, float(threshold))
    return resp, edges


def _warm() -> None:
    """Call every segmentation kernel once (see :func:`leukfeat._numba.warm_kernels`)."""
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
