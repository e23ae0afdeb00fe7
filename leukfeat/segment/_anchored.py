"""The nucleus-anchored white-cell segmenter (private; the public face and
the full description is :func:`leukfeat.segment.nucleus_anchored`).

Every Romanowsky-type stain (Wright, Giemsa, May-Grünwald-Giemsa, Leishman,
rapid stains) makes the white cell the only object of a smear with a dark
blue-purple nucleus, whatever the hue of the background, the red cells or
the cytoplasm. So the segmenter works outwards from the nucleus:

1. Nucleus pieces: the white-balanced blue ratio, split by a hysteresis pair
   of the image's own Otsu thresholds (:func:`_nucleus_pieces`).
2. One cell per nucleus: pieces whose cells hold each other are joined;
   nuclei too small for a white cell are dropped (:func:`anchored_labels`).
3. Cytoplasm: a closed star-shaped contour around each nucleus, found by
   dynamic programming on a polar grid (:meth:`_Field.cell`,
   :func:`leukfeat.segment._kernels.cell_contour`).

Sizes are relative to each nucleus (its convex hull radius) or to the
field's red cells, never pixels, so the same defaults serve 100-pixel
single-cell crops and 640x480 smear fields.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from .._numba import companion
from ._morphology import fill_holes_u8
from ._threshold import otsu_from_hist, otsu_threshold

__all__ = ["anchored_labels", "blue_ratio", "nucleus_channel", "MIN_BLUE"]

_kernels = companion("leukfeat.segment._kernels")

#: Smallest mean white-balanced blue ratio ``(b - g) / (b + g)`` of a
#: nucleus piece. The blue-purple nuclei of every stain measured (Zheng
#: rapid stain and CellaVision, BCCD, Taleghani) lie above 0.12 (99 %); the
#: bluish rims of red cells in fields without white cells below 0.12 (99 %).
MIN_BLUE = 0.10

_MIN_RED = 0.4       # a nucleus is at least this many red-cell radii wide ...
_RESCUE_RED = 0.5    # ... and one this wide is kept beside a much larger one
_MIN_REDS = 3        # red cells needed to measure their radius
_NEUTRAL_REACH = 2.0  # reach of the contour, in max_extent, when testing containment
_ANCHOR = 0.1        # pieces this large (of the largest) grow a cell to join others
_BG_SPREAD = 0.5     # the cytoplasm model is at least this broad, of the background's
_CLIP = 6.0          # cap of the per-pixel log-likelihood ratio (nats)
_REG = 4.0           # ridge added to each colour covariance (CIELAB units^2)
_MAX_FIT = 1000      # pixels clustered at most for the models of other objects
_EXACT_F32 = 1 << 24  # OpenCV's float32 histograms count exactly below this many pixels


# ---------------------------------------------------------------- colour models
def _fit(x, sel):
    """(mean, inverse covariance, log-determinant) of the colours ``x[sel]``
    (``x`` float32 (..., C >= 3)), or None for fewer than 20 pixels."""
    # float32 (exact for the 8-bit values), the type the contour kernels pass:
    # one compiled gauss_fit instead of two
    x = np.ascontiguousarray(x, np.float32)
    n, mu, ci, ld = _kernels().gauss_fit(x, sel, _REG, np.zeros((3, 3)))
    return (mu, ci, ld) if n >= 20 else None


def _kmeans_models(x, k):
    """Gaussian models of the ``k`` K-means clusters of the colours ``x``
    (float32, (N, 3))."""
    if x.shape[0] > _MAX_FIT:
        x = x[:: x.shape[0] // _MAX_FIT + 1]
    x = np.ascontiguousarray(x, np.float32)
    k = min(k, x.shape[0] // 20)
    if k < 1:
        return []
    # deterministic start, without OpenCV's random generator: k groups of
    # equal size in the order of lightness
    lab = np.empty(x.shape[0], np.int32)
    lab[np.argsort(x[:, 0], kind="stable")] = np.arange(x.shape[0]) * k // x.shape[0]
    if k > 1:
        crit = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.5)
        lab = cv2.kmeans(x, k, lab.reshape(-1, 1), crit, 1,
                         cv2.KMEANS_USE_INITIAL_LABELS)[1].ravel()
    ns, mus, cis, lds = _kernels().gauss_fit_groups(x, np.ascontiguousarray(lab, np.int32).ravel(),
                                                    k, _REG)
    return [(mus[j], cis[j], lds[j]) for j in range(k) if ns[j] >= 20]


def _stack(models):
    """Models as the arrays of :func:`leukfeat.segment._kernels.gauss_loglik_max`."""
    if not models:
        return np.zeros((0, 3)), np.zeros((0, 3, 3)), np.zeros(0)
    return (np.array([m[0] for m in models]), np.array([m[1] for m in models]),
            np.array([m[2] for m in models]))


# ---------------------------------------------------------------- geometry
def _hull_geometries(labels, mask, n):
    """``geo[i] = (centre x, centre y, equivalent radius, largest vertex
    distance)`` of the convex hull of each label ``1..n`` of ``labels``
    (``mask`` is ``labels > 0``); several objects of one label share a hull."""
    contours, _ = cv2.findContours(mask.view(np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_SIMPLE)
    points = [[] for _ in range(n + 1)]
    for c in contours:
        x, y = c[0, 0]
        points[labels[y, x]].append(c)
    geo = [None] * (n + 1)
    for i in range(1, n + 1):
        pts = points[i][0] if len(points[i]) == 1 else np.concatenate(points[i])
        hull = cv2.convexHull(pts)
        area = cv2.contourArea(hull) + 0.5 * cv2.arcLength(hull, True) + 1.0
        m = cv2.moments(hull)
        if m["m00"] > 0:
            cx, cy = m["m10"] / m["m00"], m["m01"] / m["m00"]
        else:
            cx, cy = (float(v) for v in hull.reshape(-1, 2).mean(0))
        hp = hull.reshape(-1, 2)
        rmax = max(map(math.hypot, (hp[:, 0] - cx).tolist(), (hp[:, 1] - cy).tolist()))
        geo[i] = (float(cx), float(cy), math.sqrt(area / math.pi), rmax)
    return geo


class _Field:
    """Per-image data shared by every cell: the blurred CIELAB image, the
    nucleus labels ``groups`` with the hull geometry of each, and the
    Gaussian colour models of what is not cytoplasm: the background (the
    ``light`` pixels) and up to ``k_other`` K-means clusters of the stained
    pixels beyond the reach of any cytoplasm (red cells, platelets)."""

    def __init__(self, lab, light, groups, n_rays, max_extent, k_other=3):
        self.groups = groups
        self.n = int(groups.max())
        self.n_rays = n_rays
        self.max_extent = max_extent
        self.geo = _hull_geometries(groups, groups > 0, self.n)
        # the background model is fitted outside a halo of half a nucleus
        # radius around each nucleus' hull, the model of the other stained
        # objects beyond the reach of any cytoplasm; on every other
        # row and column, which is plenty for a Gaussian
        sub = (slice(None, None, 2), slice(None, None, 2))
        halo = np.zeros(groups.shape, np.uint8)
        reach = np.zeros(groups.shape, np.uint8)
        for cx, cy, rh, rmax in self.geo[1:]:
            centre = (int(round(cx)), int(round(cy)))
            cv2.circle(halo, centre, int(math.ceil(rmax + 0.5 * rh)), 1, -1)
            cv2.circle(reach, centre, int(math.ceil(rmax + max_extent * rh)), 1, -1)
        lab_s = lab[sub]
        bg = light[sub] & (halo[sub] == 0)
        other = ~light[sub] & (reach[sub] == 0)
        models = [m for m in [_fit(lab_s, bg)] if m is not None]
        self.has_bg = bool(models)
        models += _kmeans_models(lab_s[other], k_other)
        self.lab = lab
        theta = np.arange(n_rays) * (2.0 * math.pi / n_rays)
        self.cos = np.cos(theta)
        self.sin = np.sin(theta)
        self.models = _stack(models)

    def cell(self, i, neutral=False):
        """The cell around nucleus ``i``.

        Returns the window ``(row slice, column slice)`` of the image that
        holds the cell, the cell's mask in that window (the nucleus and the
        inside of its contour) and the labels of the nuclei that the contour
        presses against on at least half of the rays that they stop. The
        contour may not cross another nucleus, unless ``neutral``: then the
        other nuclei count neither as cytoplasm nor as outside.
        """
        cx, cy, rh, rmax = self.geo[i]
        # a piece may hold others farther out than a nucleus' cytoplasm
        # reaches: neutrophil lobes are small against their cell
        extent = self.max_extent * (_NEUTRAL_REACH if neutral else 1.0)
        j = int(math.ceil(rmax + extent * rh)) + 2
        h, w = self.groups.shape
        win = (slice(max(int(cy) - j, 0), min(int(cy) + j + 2, h)),
               slice(max(int(cx) - j, 0), min(int(cx) + j + 2, w)))
        own = self.groups[win] == i
        if not self.models[2].size:
            return win, own, []
        # the radius may change between rays by at most the arc between them
        # (the contour turns at most 45 degrees from a circle), at a cost of
        # one nat per pixel
        delta = max(1, int(math.ceil(2.0 * math.pi * (rmax + 0.5 * rh) / self.n_rays)))
        # the polygon through the last pixel inside on each ray
        pts, touching = _kernels().cell_polygon(
            self.lab, self.groups, cx, cy, self.cos, self.sin, j, i, not neutral,
            *self.models, max(2, int(round(0.3 * rh))), delta, 1.0, _CLIP, _REG,
            1 if neutral else 2, self.has_bg, _BG_SPREAD, cx - win[1].start, cy - win[0].start)
        m = np.zeros(own.shape, np.uint8)
        cv2.fillPoly(m, [pts], 1, shift=4)
        return win, m.view(bool) | own, touching.tolist()


# ---------------------------------------------------------------- the segmenter
def _prepare(rgb, sigma):
    """The RGB image blurred by a Gaussian of ``sigma`` pixels, its 8-bit
    CIELAB and Otsu's threshold of its L* (NaN for a single level): the
    lighter class is the background."""
    blur = cv2.GaussianBlur(rgb, (0, 0), sigma)
    lab8 = cv2.cvtColor(blur, cv2.COLOR_RGB2LAB)
    if lab8.shape[0] * lab8.shape[1] >= _EXACT_F32:
        return blur, lab8, otsu_threshold(lab8[..., 0])
    hist = cv2.calcHist([lab8], [0], None, [256], [0, 256]).ravel().astype(np.float64)
    return blur, lab8, otsu_from_hist(hist)


def blue_ratio(rgb, sigma=1.0):
    """The blue ratio of :func:`nucleus_channel` in [-1, 1] (float32), of an
    RGB uint8 image blurred by ``sigma``, white-balanced by its light
    class."""
    blur, lab8, cut = _prepare(rgb, sigma)
    light = lab8[..., 0] > cut if np.isfinite(cut) else np.ones(rgb.shape[:2], bool)
    return nucleus_channel(blur, light)[0].astype(np.float32) / np.float32(127.5) - np.float32(1.0)


def nucleus_channel(rgb_blur, light):
    """The white-balanced blue ratio ``(b - g) / (b + g)`` on the 8-bit scale
    ``(ratio + 1) * 127.5`` (uint8), with ``b`` and ``g`` the blue and green
    channels plus one divided by the median of the ``light`` (background)
    pixels plus one: the scale means the same in every image. Also returns
    its histograms over all pixels and over the stained (not light) ones."""
    if light.shape[0] * light.shape[1] < _EXACT_F32:
        # the same medians from exact integer counts, in one pass
        return _kernels().blue_ratio_u8(rgb_blur, *(v + 1.0 for v in _kernels().light_medians(
            rgb_blur, light)), light)
    ref = []
    for c in (1, 2):
        hist = cv2.calcHist([rgb_blur], [c], light.view(np.uint8), [256], [0, 256]).ravel()
        if hist.sum() == 0:
            hist = cv2.calcHist([rgb_blur], [c], None, [256], [0, 256]).ravel()
        ref.append(float(np.searchsorted(np.cumsum(hist), hist.sum() / 2.0)) + 1.0)
    return _kernels().blue_ratio_u8(rgb_blur, *ref, light)


def anchored_labels(rgb, *, min_blue=MIN_BLUE, min_nucleus=0.2, max_extent=1.2, n_rays=48,
                    sigma=1.0, contain=0.5):
    """White-cell labels and nucleus mask of an RGB uint8 image.

    Returns ``(labels int32, nucleus bool, info dict)``; labels are numbered
    from the largest nucleus down. See the module docstring for the method
    and :func:`leukfeat.segment.nucleus_anchored` for the parameters.
    """
    h, w = rgb.shape[:2]
    blur, lab8, light_cut = _prepare(rgb, sigma)
    info = {"light_threshold": float(light_cut)}
    empty = (np.zeros((h, w), np.int32), np.zeros((h, w), bool), info)
    if np.isnan(light_cut):
        return empty
    light = lab8[..., 0] > light_cut
    pieces, area = _nucleus_pieces(blur, light, min_blue, info)
    n = area.size - 1
    if n == 0:
        return empty
    # the kernels read the 8-bit CIELAB values as the float32 ones (exactly)
    lab = lab8
    field = _Field(lab, light, pieces, n_rays, max_extent)
    # one cell per nucleus: a piece joins another when the other's cell
    # contour presses against it and, free to pass over it, holds at least
    # half of it (lobes, chromatin fragments); nuclei of neighbouring cells
    # have background or red cells between them
    cells = [None] * (n + 1)
    parent = np.arange(n + 1)
    # only pieces of a fair size can hold others (small ones are joined to
    # them or get their cell at the end if kept)
    for i in np.flatnonzero(area >= _ANCHOR * area.max()):
        win, cell, touching = field.cell(i)
        cells[i] = win, cell
        if touching:
            win, cell, _ = field.cell(i, neutral=True)
            inside = np.bincount(pieces[win][cell], minlength=n + 1)
            for j in touching:
                if inside[j] >= contain * area[j]:
                    parent[_root(parent, j)] = _root(parent, i)
    roots = np.array([_root(parent, i) for i in range(n + 1)])
    garea = np.bincount(roots, weights=area, minlength=n + 1)
    garea[0] = 0
    # nuclei much smaller than the largest are dropped (platelets, specks);
    # with the field's red cells as a ruler (it is no ruler unless between
    # 0.3 and 2 times as wide as the largest nucleus: specks between light
    # red cells, clumps of overlapping red cells), a nucleus must be at least
    # _MIN_RED red-cell radii wide, and one _RESCUE_RED wide is kept however
    # large the largest (small lymphocytes, haematogones beside blasts)
    big = (garea >= min_nucleus * garea.max()) & (garea > 0)
    r_red = _red_cell_radius(light, pieces > 0)
    if 0.3 <= r_red / math.sqrt(garea.max() / math.pi) <= 2.0:
        info["red_cell_radius"] = r_red
        r_eq = np.sqrt(garea / math.pi)
        big = (big | (r_eq >= _RESCUE_RED * r_red)) & (r_eq >= _MIN_RED * r_red)
    kept = np.flatnonzero(big)
    kept = kept[np.argsort(-garea[kept], kind="stable")]
    new_id = np.zeros(n + 1, np.int32)
    new_id[kept] = np.arange(1, kept.size + 1)
    groups = _kernels().apply_lut(new_id[roots], pieces)
    info["n_nucleus_pieces"] = n
    n_pieces = np.bincount(roots[1:], minlength=n + 1)
    regrouped = bool((n_pieces[kept] > 1).any())
    if regrouped:
        # the colour models change with the nuclei's sizes, the cells of
        # joined pieces with their nucleus
        field = _Field(lab, light, groups, n_rays, max_extent)
    labels = np.zeros((h, w), np.int32)
    for g, root in enumerate(kept, start=1):
        if n_pieces[root] > 1 or cells[root] is None:
            win, cell = field.cell(g if regrouped else root)[:2]
        else:
            win, cell = cells[root]
        free = labels[win] == 0
        labels[win][cell & free] = g
    nuc = _darker_part(lab8[..., 0], labels, groups > 0)
    # numbered from the largest nucleus down
    area = np.bincount(labels[nuc], minlength=len(kept) + 1)[1:]
    order = np.argsort(-area, kind="stable")
    new_id = np.zeros(len(kept) + 1, np.int32)
    new_id[order + 1] = np.arange(1, len(kept) + 1)
    return _kernels().apply_lut(new_id, labels), nuc, info


def _darker_part(lightness, labels, nuc, min_contrast=12.0):
    """Of the nucleus of each cell, the part in the darker Otsu class of the
    cell's own L* histogram, holes filled: a blue cytoplasm (lymphocytes,
    blasts) is as blue as the nucleus but never as dark. Cells whose two
    classes differ by less than ``min_contrast`` L* levels (8-bit), or
    whose nucleus has no pixel in the darker class (something darker than
    the nucleus lies in the cell), keep their nucleus whole: the step trims
    a nucleus, it never removes one."""
    n = int(labels.max())
    hists = _kernels().label_histograms(labels, lightness, n)
    cut = _kernels().contrasted_cuts(hists, float(min_contrast))
    dark = _kernels().darker_part(lightness, labels, nuc, cut)
    lost = (np.bincount(labels[dark], minlength=n + 1) == 0) & (cut < 255)
    lost[0] = False
    if lost.any():
        cut[lost] = 255
        dark = _kernels().darker_part(lightness, labels, nuc, cut)
    # holes (paler chromatin) are filled within the nucleus only
    return (fill_holes_u8(dark.view(np.uint8)) > 0) & nuc


def _root(parent, a):
    while parent[a] != a:
        parent[a] = parent[parent[a]]
        a = parent[a]
    return a


def _nucleus_pieces(blur, light, min_blue, info):
    """Label image of the nucleus pieces and their areas (float64, 0 first).

    The blue ratio (:func:`nucleus_channel`) is split by two Otsu
    thresholds: over the stained (not ``light``) pixels, which seeds the
    nuclei, and the midpoint between that one and the threshold over all
    pixels (when lower), which grows them over pale chromatin (hysteresis).
    Holes are filled; pieces with a mean blue ratio below ``min_blue`` and
    pieces smaller than 5 % of the largest remaining one (or 4 pixels) are
    dropped.
    """
    q, hist_all, hist_stained = nucleus_channel(blur, light)
    t_all = otsu_from_hist(hist_all)
    t_stained = otsu_from_hist(hist_stained)
    if np.isnan(t_all) or np.isnan(t_stained):
        return np.zeros(q.shape, np.int32), np.zeros(1)
    t_hi = int(t_stained)
    t_lo = int((min(t_all, t_stained) + t_stained) / 2.0)
    pieces, area = _hysteresis_pieces(q, t_lo, t_hi, min_blue)
    info["nucleus_thresholds"] = (t_lo / 127.5 - 1.0, t_hi / 127.5 - 1.0)
    return pieces, area


def _hysteresis_pieces(q, t_lo, t_hi, min_blue):
    """The filled 8-connected components of ``q > t_lo`` that hold a pixel
    ``> t_hi``, without those of mean below ``min_blue`` (on the ratio's
    scale) and then those under 5 % of the largest (or 4 pixels), labelled
    ``1..n``, with their areas (float64, ``n + 1`` values, 0 first)."""
    n, comp = cv2.connectedComponents(cv2.compare(q, t_lo, cv2.CMP_GT), connectivity=8,
                                      ltype=cv2.CV_32S)
    nuc = fill_holes_u8(_kernels().seeded_mask(comp, q, t_hi, n))
    n, pieces = cv2.connectedComponents(nuc, connectivity=8, ltype=cv2.CV_32S)
    if n <= 1:
        return np.zeros(q.shape, np.int32), np.zeros(1)
    area, blue = _kernels().label_areas_means(pieces, q, n - 1)
    sizes = area.copy()
    blue = blue / 127.5 - 1.0
    area[0] = 0
    area[blue < min_blue] = 0
    keep = area >= max(0.05 * area.max(), 4)
    keep[0] = False
    lut = np.zeros(n, np.int32)
    lut[keep] = np.arange(1, int(keep.sum()) + 1)
    sizes[0] = 0.0
    return _kernels().apply_lut(lut, pieces), np.concatenate([sizes[:1], sizes[keep]])


def _red_cell_radius(light, nuc):
    """Typical red-cell radius in pixels, or NaN.

    The stained objects that are not nuclei and touch none (holes filled)
    are taken as red cells, alone or in clumps; the radius is the
    area-weighted median of their inscribed radii (the largest distance to
    their outline, which in a clump is about that of its largest cell),
    measured when there are at least three of them. A ruler needs no full
    resolution: it is measured on every other row and column.
    """
    light, nuc = light[::2, ::2], nuc[::2, ::2]
    stained = fill_holes_u8((~light & ~nuc).view(np.uint8))
    n, lab = cv2.connectedComponents(stained, connectivity=8, ltype=cv2.CV_32S)
    ok = np.ones(n, bool)
    ok[0] = False
    ok[np.bincount(lab[cv2.dilate(nuc.view(np.uint8), np.ones((3, 3), np.uint8)) > 0],
                   minlength=n) > 0] = False
    if ok.sum() < _MIN_REDS:
        return math.nan
    dist = cv2.distanceTransform(stained, cv2.DIST_L2, 5)
    radius = _kernels().label_max(lab, dist, n - 1)[ok]
    order = np.argsort(radius, kind="stable")
    cum = np.cumsum(np.bincount(lab.ravel(), minlength=n)[ok][order].astype(np.float64))
    return 2.0 * float(radius[order][np.searchsorted(cum, cum[-1] / 2.0)])
