"""Compiled (numba) kernels of :mod:`leukfeat.segment` (private).

Imported on the first segmentation (through :func:`leukfeat._numba.companion`),
so that ``import leukfeat`` does not import numba; compiled once with
``cache=True`` and reused by later processes (e.g. joblib workers), as
:mod:`leukfeat._numba` describes.

Each kernel does exactly the arithmetic of the numpy code it replaces, in
the same order, so the results are identical; the numpy forms are kept in
``tests/test_segment.py`` as references. They exist because the arrays
involved are small (a 256-bin histogram, k = 4 centres) or the work is a
couple of passes over a label image, where numpy's per-call overhead and
temporary arrays cost more than the arithmetic.

The kernels of the nucleus-anchored segmenter (:mod:`leukfeat.segment._anchored`,
from :func:`ray_bounds` on) are its polar-grid contour search and the
per-pixel and per-label passes around it; each is tested against its
numpy, scipy or OpenCV counterpart where one exists
(``tests/test_nucleus_anchored.py``).
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["lloyd_on_histogram", "otsu_from_hist", "drop_specks", "channel_histogram",
           "split_by_threshold", "label_counts", "label_boxes", "ray_bounds", "ring",
           "closed_contour", "gauss_fit", "gauss_loglik_max", "polar_grid", "cell_contour",
           "blue_ratio_u8", "label_means", "label_max", "label_histograms", "darker_part",
           "cell_polygon", "gauss_fit_groups", "seeded_mask", "label_areas_means", "apply_lut",
           "light_medians", "contrasted_cuts"]

_OPTS = dict(cache=True, nogil=True, error_model="numpy")


@numba.njit(inline="always")
def _cuts(c, nc, n, cuts):
    """Cluster boundaries of the sorted centres ``c[:nc]`` on levels ``0..n-1``."""
    cuts[0] = 0
    for j in range(nc - 1):
        cuts[j + 1] = min(max(math.floor((c[j + 1] + c[j]) / 2.0) + 1, 0), n)
    cuts[nc] = n


@numba.njit(**_OPTS)
def lloyd_on_histogram(cw, cs, init, max_iter):
    """Lloyd's algorithm on a histogram given its cumulative sums.

    ``cw[v]`` is the number and ``cs[v]`` the sum of the values below level
    ``v`` (both of length ``n + 1``, starting at 0); cluster ``j`` holds the
    levels ``cuts[j] <= v < cuts[j + 1]``, each step costs O(k). Clusters
    left empty are dropped. Stops when the cuts repeat or after
    ``max_iter`` steps (then the cuts of the last centres). Returns the
    centres and the ``len(centres) + 1`` cuts.
    """
    n = cw.size - 1
    k = init.size
    c = init.copy()
    nxt = np.empty(k)
    nc = k
    cuts = np.empty(k + 1, np.int64)
    prev = np.empty(k + 1, np.int64)
    n_prev = -1
    done = False
    for _ in range(max_iter):
        _cuts(c, nc, n, cuts)
        if n_prev == nc + 1:
            same = True
            for j in range(nc + 1):
                if cuts[j] != prev[j]:
                    same = False
                    break
            if same:
                done = True
                break
        prev[:nc + 1] = cuts[:nc + 1]
        n_prev = nc + 1
        m = 0
        for j in range(nc):
            a = cuts[j]
            b = cuts[j + 1]
            if cw[b] - cw[a] > 0:
                nxt[m] = (cs[b] - cs[a]) / (cw[b] - cw[a])
                m += 1
        c[:m] = nxt[:m]
        nc = m
    if not done:
        _cuts(c, nc, n, cuts)
    return c[:nc].copy(), cuts[:nc + 1].copy()


@numba.njit(**_OPTS)
def otsu_from_hist(hist):
    """Otsu's threshold level of a histogram (NaN for fewer than two
    occupied bins): the first maximum of the between-class variance
    ``w0 w1 (mu0 - mu1)^2`` over the cuts with both classes non-empty."""
    nz = 0
    for v in range(hist.size):
        if hist[v] != 0:
            nz += 1
    if nz < 2:
        return np.nan
    w_all = 0.0
    m_all = 0.0
    for v in range(hist.size):
        w_all += hist[v]
        m_all += hist[v] * float(v)
    w0 = 0.0
    m0 = 0.0
    best = -np.inf
    arg = 0
    for v in range(hist.size):
        w0 += hist[v]
        m0 += hist[v] * float(v)
        w1 = w_all - w0
        if w0 == 0 or w1 == 0:
            between = -1.0
        else:
            d = m0 / max(w0, 1e-300) - (m_all - m0) / max(w1, 1e-300)
            between = w0 * w1 * (d * d)
        if between > best:
            best = between
            arg = v
    return float(arg)


@numba.njit(**_OPTS)
def drop_specks(parts, m, cells, min_fraction, out):
    """``out = parts > 0 & m`` without the pieces smaller than
    ``max(2, floor(min_fraction * area of their cell))`` pixels.

    ``parts`` labels the pieces, ``cells`` the cells (cell areas are counted
    over ``m``). Returns False, leaving ``out`` undefined, when a piece
    overlaps two cells: the caller then measures each (piece, cell) part
    separately.
    """
    p_flat = parts.ravel()
    m_flat = m.ravel()
    c_flat = cells.ravel()
    o_flat = out.ravel()
    n_parts = 0
    n_cells = 0
    for p in range(p_flat.size):
        n_parts = max(n_parts, p_flat[p])
        n_cells = max(n_cells, c_flat[p])
    cell_area = np.zeros(n_cells + 1, np.int64)
    piece_area = np.zeros(n_parts + 1, np.int64)
    piece_cell = np.full(n_parts + 1, -1, np.int64)
    for p in range(p_flat.size):
        if m_flat[p]:
            c = c_flat[p]
            cell_area[c] += 1
            q = p_flat[p]
            if q > 0:
                if piece_cell[q] < 0:
                    piece_cell[q] = c
                elif piece_cell[q] != c:
                    return False
                piece_area[q] += 1
    for p in range(p_flat.size):
        keep = False
        q = p_flat[p]
        if q > 0 and m_flat[p]:
            keep = piece_area[q] >= max(2.0, math.floor(min_fraction * cell_area[c_flat[p]]))
        o_flat[p] = keep
    return True


@numba.njit(**_OPTS)
def channel_histogram(img, c):
    """256-bin histogram (float64 counts) of channel ``c`` of a (H, W, C)
    uint8 image."""
    hist = np.zeros(256, np.int64)
    for y in range(img.shape[0]):
        for x in range(img.shape[1]):
            hist[img[y, x, c]] += 1
    return hist.astype(np.float64)


@numba.njit(**_OPTS)
def split_by_threshold(lab, cut, raw):
    """``raw = 255 * (a* >= cut)`` (uint8) for an 8-bit CIELAB image, and the
    float64 256-bin b* histograms of the pixels with a* >= cut and a* < cut."""
    b_in = np.zeros(256, np.int64)
    b_out = np.zeros(256, np.int64)
    for y in range(lab.shape[0]):
        for x in range(lab.shape[1]):
            b = lab[y, x, 2]
            if lab[y, x, 1] >= cut:
                raw[y, x] = 255
                b_in[b] += 1
            else:
                raw[y, x] = 0
                b_out[b] += 1
    return b_in.astype(np.float64), b_out.astype(np.float64)


@numba.njit(**_OPTS)
def label_counts(labels, nucleus, n):
    """Pixels of each label ``0..n`` and of the nucleus inside it, in one pass.

    ``labels`` and ``nucleus`` are C-contiguous. Returns ``(areas,
    nucleus_areas)`` (int64, length ``n + 1``), or two empty arrays when a
    label lies outside ``0..n`` (the caller then counts with numpy).
    Counts are accumulated along runs of equal labels (cells are runs of
    pixels along a row), not pixel by pixel into memory.
    """
    lab = labels.ravel()
    nu = nucleus.ravel()
    areas = np.zeros(n + 1, np.int64)
    nuc = np.zeros(n + 1, np.int64)
    prev = 0
    run = 0
    run_nuc = 0
    for p in range(lab.size):
        v = lab[p]
        if v != prev:
            if prev != 0:
                areas[prev] += run
                nuc[prev] += run_nuc
            if v < 0 or v > n:
                return np.zeros(0, np.int64), np.zeros(0, np.int64)
            prev = v
            run = 0
            run_nuc = 0
        if v != 0:
            run += 1
            run_nuc += nu[p]
    if prev != 0:
        areas[prev] += run
        nuc[prev] += run_nuc
    areas[0] = lab.size - areas[1:].sum()
    nz = 0
    for p in range(nu.size):    # np.count_nonzero(nu): a loop compiles faster
        nz += nu[p]
    nuc[0] = nz - nuc[1:].sum()
    return areas, nuc


@numba.njit(**_OPTS)
def label_boxes(labels, n):
    """Bounding box ``(r0, r1, c0, c1)`` (exclusive ends) of each label
    ``0..n`` of a C-contiguous label image, as an (n + 1, 4) int64 array;
    a label that does not occur gets ``(0, 0, 0, 0)``. Returns an empty
    (0, 4) array when a label lies outside ``0..n``."""
    h, w = labels.shape
    box = np.empty((n + 1, 4), np.int64)
    for v in range(n + 1):
        box[v, 0] = h
        box[v, 1] = 0
        box[v, 2] = w
        box[v, 3] = 0
    for y in range(h):
        x = 0
        while x < w:
            v = labels[y, x]
            x0 = x
            while x < w and labels[y, x] == v:       # one run of equal labels
                x += 1
            if v < 0 or v > n:
                return np.zeros((0, 4), np.int64)
            box[v, 0] = min(box[v, 0], y)
            box[v, 1] = max(box[v, 1], y + 1)
            box[v, 2] = min(box[v, 2], x0)
            box[v, 3] = max(box[v, 3], x)
    for v in range(n + 1):
        if box[v, 1] == 0:
            box[v, 0] = 0
            box[v, 2] = 0
    return box


# --------------------------------------------------------------------------
# nucleus-anchored segmenter (leukfeat._anchored): star-shaped cell contours
# --------------------------------------------------------------------------
@numba.njit(**_OPTS)
def ray_bounds(labels, own, nuclei_stop):
    """Range of the contour radius on each ray of a polar grid of labels
    (K rays x J radii; -1 outside the image, 0 background, > 0 nuclei):
    from just outside the outermost pixel of label ``own`` to the first pixel
    beyond it outside the image or (with ``nuclei_stop``) in another
    nucleus, else the last radius. Also returns the label that stops each
    ray (-1 image border, 0 none)."""
    k_rays, j_max = labels.shape
    lo = np.empty(k_rays, np.int64)
    hi = np.empty(k_rays, np.int64)
    stopper = np.zeros(k_rays, np.int64)
    for k in range(k_rays):
        last = 0
        for j in range(j_max):
            if labels[k, j] == own:
                last = j + 1
        lo[k] = max(last, 1)
        h = j_max - 1
        for j in range(lo[k], j_max):
            v = labels[k, j]
            if v < 0 or (nuclei_stop and v != 0 and v != own):
                h = j
                stopper[k] = v
                break
        hi[k] = max(h, lo[k])
    return lo, hi, stopper


@numba.njit(**_OPTS)
def ring(lo, hi, width, j_max):
    """Polar mask (``lo.size`` rays x ``j_max`` radii) of the radii
    ``lo[k] <= j < min(lo[k] + width, hi[k])`` of each ray ``k``."""
    k_rays = lo.size
    out = np.zeros((k_rays, j_max), np.bool_)
    for k in range(k_rays):
        for j in range(lo[k], min(lo[k] + width, hi[k], j_max)):
            out[k, j] = True
    return out


@numba.njit(**_OPTS)
def closed_contour(score, lo, hi, delta, beta):
    """Best closed star-shaped contour on a polar grid.

    ``score[k, j]`` is the evidence that pixel ``j`` of ray ``k`` lies
    inside the cell (positive) or outside (negative). The contour puts its
    radius ``rho[k]`` in ``lo[k]..hi[k]``, changes it by at most ``delta``
    between neighbouring rays at a cost of ``beta`` per unit, and maximises
    ``sum_k (sum_{j < rho[k]} score[k, j] - sum_{j >= rho[k]} score[k, j])``
    minus the change costs. Dynamic programming over one and a half turns
    of the rays, starting anywhere on the first ray, returns the radii of
    the last full turn (rays ``K/2 .. 3K/2``): both of its ends follow half a
    turn of context, which closes the contour in practice.
    """
    k_rays, j_max = score.shape
    # reward of each radius: inside minus outside evidence along the ray
    reward = np.empty((k_rays, j_max))
    for k in range(k_rays):
        total = 0.0
        for j in range(j_max):
            total += score[k, j]
        before = 0.0
        for j in range(j_max):
            reward[k, j] = 2.0 * before - total
            before += score[k, j]
    neg = -1e300
    n = k_rays + k_rays // 2
    acc = np.full((n, j_max), neg)
    back = np.zeros((n, j_max), np.int64)
    for j in range(lo[0], hi[0] + 1):
        acc[0, j] = reward[0, j]
    for t in range(1, n):
        k = t % k_rays
        kp = (t - 1) % k_rays
        for j in range(lo[k], hi[k] + 1):
            best = neg
            arg = -1
            # only radii lo..hi of the previous ray can hold a value
            for jj in range(max(j - delta, lo[kp], 0), min(j + delta, hi[kp], j_max - 1) + 1):
                if acc[t - 1, jj] > neg:
                    v = acc[t - 1, jj] - beta * abs(jj - j)
                    if v > best:
                        best = v
                        arg = jj
            if arg >= 0:
                acc[t, j] = best + reward[k, j]
                back[t, j] = arg
    j = lo[(n - 1) % k_rays]
    best = neg
    for jj in range(j_max):
        if acc[n - 1, jj] > best:
            best = acc[n - 1, jj]
            j = jj
    rho = np.empty(k_rays, np.int64)
    for t in range(n - 1, n - 1 - k_rays, -1):
        rho[t % k_rays] = j
        j = back[t, j]
    return rho


@numba.njit(inline="always")
def _inv3(c, out):
    """Inverse of the symmetric 3x3 matrix ``c`` into ``out``; returns
    log(det c) (``c`` is positive definite: a covariance plus a ridge)."""
    a00, a01, a02 = c[0, 0], c[0, 1], c[0, 2]
    a11, a12, a22 = c[1, 1], c[1, 2], c[2, 2]
    m00 = a11 * a22 - a12 * a12
    m01 = a02 * a12 - a01 * a22
    m02 = a01 * a12 - a02 * a11
    det = a00 * m00 + a01 * m01 + a02 * m02
    out[0, 0] = m00 / det
    out[0, 1] = m01 / det
    out[0, 2] = m02 / det
    out[1, 0] = m01 / det
    out[1, 1] = (a00 * a22 - a02 * a02) / det
    out[1, 2] = (a02 * a01 - a00 * a12) / det
    out[2, 0] = m02 / det
    out[2, 1] = out[1, 2]
    out[2, 2] = (a00 * a11 - a01 * a01) / det
    return math.log(det)


@numba.njit(**_OPTS)
def gauss_fit(x, sel, ridge, extra):
    """Mean ``(3,)``, inverse covariance ``(3, 3)`` and log-determinant of
    the colours ``x[..., :3]`` (float32, (H, W, C>=3)) where ``sel`` is true,
    with ``ridge`` added to the covariance's diagonal and the (3, 3) matrix
    ``extra`` to the covariance. ``n`` is returned first; with ``n < 2`` the
    other results are meaningless."""
    h, w = sel.shape
    n = 0
    s = np.zeros(3)
    for y in range(h):
        for z in range(w):
            if sel[y, z]:
                n += 1
                for c in range(3):
                    s[c] += x[y, z, c]
    mu = s / max(n, 1)
    cov = np.zeros((3, 3))
    for y in range(h):
        for z in range(w):
            if sel[y, z]:
                for a in range(3):
                    da = x[y, z, a] - mu[a]
                    for b in range(a, 3):
                        cov[a, b] += da * (x[y, z, b] - mu[b])
    for a in range(3):
        for b in range(a, 3):
            cov[a, b] /= max(n - 1, 1)
            cov[b, a] = cov[a, b]
        cov[a, a] += ridge
    for a in range(3):
        for b in range(3):
            cov[a, b] += extra[a, b]
    ci = np.empty((3, 3))
    ld = _inv3(cov, ci)
    return n, mu, ci, ld


@numba.njit(**_OPTS)
def gauss_loglik_max(x, mus, cis, lds, lo, hi, out):
    """``out[y, z] = max_m log N(x[y, z, :3] | mus[m], cis[m]^-1)`` up to the
    common constant ``-1.5 log(2 pi)``, for the float32 image ``x`` and M
    Gaussian models (means, inverse covariances, log-determinants), on the
    columns ``lo[y]..hi[y]`` of each row ``y`` only (the rest of ``out`` is
    left as it is); ``-inf`` for M = 0."""
    h = out.shape[0]
    for y in range(h):
        for z in range(lo[y], hi[y] + 1):
            out[y, z] = -np.inf
    for m in range(mus.shape[0]):
        m0, m1, m2 = mus[m, 0], mus[m, 1], mus[m, 2]
        c00, c11, c22 = cis[m, 0, 0], cis[m, 1, 1], cis[m, 2, 2]
        c01, c02, c12 = 2.0 * cis[m, 0, 1], 2.0 * cis[m, 0, 2], 2.0 * cis[m, 1, 2]
        ld = lds[m]
        for y in range(h):
            for z in range(lo[y], hi[y] + 1):
                d0 = x[y, z, 0] - m0
                d1 = x[y, z, 1] - m1
                d2 = x[y, z, 2] - m2
                q = (c00 * d0 * d0 + c11 * d1 * d1 + c22 * d2 * d2
                     + c01 * d0 * d1 + c02 * d0 * d2 + c12 * d1 * d2)
                v = -0.5 * (q + ld)
                if v > out[y, z]:
                    out[y, z] = v


@numba.njit(**_OPTS)
def polar_grid(lab, labels, cx, cy, cos, sin, j_max):
    """Sample a CIELAB image (float32, or uint8 read as the same values;
    bilinear, border replicated) and its
    nucleus labels (nearest; -1 outside the image) on a polar grid of
    ``cos.size`` rays x ``j_max`` radii (one pixel apart) around ``(cx, cy)``."""
    h, w = labels.shape
    k_rays = cos.size
    pol = np.empty((k_rays, j_max, 3), np.float32)
    lab_pol = np.empty((k_rays, j_max), np.int64)
    for k in range(k_rays):
        for j in range(j_max):
            x = cx + cos[k] * j
            y = cy + sin[k] * j
            xi = int(math.floor(x + 0.5))
            yi = int(math.floor(y + 0.5))
            if 0 <= xi < w and 0 <= yi < h:
                lab_pol[k, j] = labels[yi, xi]
            else:
                lab_pol[k, j] = -1
            xn = min(max(xi, 0), w - 1)
            yn = min(max(yi, 0), h - 1)
            for c in range(3):
                pol[k, j, c] = lab[yn, xn, c]
    return pol, lab_pol


# inlined into cell_polygon, its only caller: compiled once there, instead of
# once alone and again (optimised and linked) inside cell_polygon
@numba.njit(inline="always")
def cell_contour(lab, labels, cx, cy, cos, sin, j_max, own, nuclei_stop, mus, cis, lds,
                 width, delta, beta, clip, ridge, iters, has_bg, bg_spread):
    """Contour of the cell around nucleus ``own`` on a polar grid.

    The grid (:func:`polar_grid`) of the float32 CIELAB image ``lab`` and
    the nucleus labels ``labels`` has ``cos.size`` rays around ``(cx, cy)``
    and ``j_max`` radii. ``mus``, ``cis``, ``lds`` are the Gaussian models
    of what is not cytoplasm (:func:`gauss_loglik_max`, at least one; the
    background's first when ``has_bg``). The cytoplasm's Gaussian model,
    its covariance plus ``bg_spread`` times the background's, is fitted first
    to the ``width`` pixels beyond the nucleus on each ray, then to the cell
    found, ``iters`` times; each
    time the score of a free pixel is its log-likelihood ratio (cytoplasm
    against the best other model) clipped to +-``clip``, ``clip`` on the own
    nucleus and 0 on other nuclei and outside the image, and the contour is
    :func:`closed_contour`.

    Returns ``rho`` (the first radius outside the cell on each ray) and the
    labels of the nuclei that the contour presses against (reaches on at
    least half, and at least two, of the rays that they stop).
    """
    pol, grid = polar_grid(lab, labels, cx, cy, cos, sin, j_max)
    k_rays = cos.size
    lo, hi, stopper = ray_bounds(grid, own, nuclei_stop)
    # only the radii the contour may take matter: the pixels before lo are
    # inside and those after hi outside whatever the contour
    other = np.zeros((k_rays, j_max), np.float32)
    gauss_loglik_max(pol, mus, cis, lds, lo, hi, other)
    inside = ring(lo, hi, width, j_max)
    zero = np.zeros(k_rays, np.int64)
    rho = lo.copy()
    score = np.zeros((k_rays, j_max))
    sel = np.empty((k_rays, j_max), np.bool_)
    one_mu = np.empty((1, 3))
    one_ci = np.empty((1, 3, 3))
    one_ld = np.empty(1)
    # the cytoplasm's model is at least bg_spread times as broad as the
    # background's (the first model, when has_bg): fitted to a ring of
    # near-background pixels it must not beat the background model on the
    # background itself
    extra = np.zeros((3, 3))
    if has_bg:
        _inv3(cis[0], extra)
        for a in range(3):
            for b in range(3):
                extra[a, b] *= bg_spread
    for _ in range(iters):
        for k in range(k_rays):
            for j in range(j_max):
                sel[k, j] = inside[k, j] and grid[k, j] == 0
        n, mu, ci, ld = gauss_fit(pol, sel, ridge, extra)
        if n < 20:
            break
        for a in range(3):      # element-wise: an array assignment would compile
            one_mu[0, a] = mu[a]    # numba's shape-mismatch message (slow to compile)
            for b in range(3):
                one_ci[0, a, b] = ci[a, b]
        one_ld[0] = ld
        gauss_loglik_max(pol, one_mu, one_ci, one_ld, lo, hi, score)
        for k in range(k_rays):
            for j in range(lo[k], hi[k] + 1):
                v = grid[k, j]
                if v == own:
                    score[k, j] = clip
                elif v != 0:
                    score[k, j] = 0.0
                else:
                    score[k, j] = min(max(score[k, j] - other[k, j], -clip), clip)
        rho = closed_contour(score, lo, hi, delta, beta)
        inside = ring(zero, rho, j_max, j_max)
    # the nuclei pressed against: stopped rays reached on half of them
    touching = np.zeros(k_rays, np.int64)
    n_touch = 0
    for k in range(k_rays):
        v = stopper[k]
        if v <= 0:
            continue
        seen = False
        for t in range(n_touch):
            if touching[t] == v:
                seen = True
        if seen:
            continue
        rays = 0
        reached = 0
        for kk in range(k_rays):
            if stopper[kk] == v:
                rays += 1
                if rho[kk] >= hi[kk]:
                    reached += 1
        if rays >= 2 and 2 * reached >= rays:
            touching[n_touch] = v
            n_touch += 1
    return rho, touching[:n_touch]


@numba.njit(**_OPTS)
def blue_ratio_u8(rgb, ref_g, ref_b, light):
    """The white-balanced blue ratio ``(b - g) / (b + g)`` of an RGB uint8
    image, ``g = (G + 1) / ref_g`` and ``b = (B + 1) / ref_b``, on the 8-bit
    scale ``(ratio + 1) * 127.5`` (truncated), with its 256-bin histograms
    over all pixels and over the pixels that are not ``light``."""
    h, w = rgb.shape[:2]
    out = np.empty((h, w), np.uint8)
    hist_all = np.zeros(256)
    hist_stained = np.zeros(256)
    # g and b of each 8-bit level, computed once (the same divisions), and
    # the ratio of each (G, B) pair the first time it occurs
    lut_g = np.empty(256)
    lut_b = np.empty(256)
    for v in range(256):
        lut_g[v] = (v + 1.0) / ref_g
        lut_b[v] = (v + 1.0) / ref_b
    pair = np.full(65536, -1, np.int16)
    for y in range(h):
        for x in range(w):
            gi = rgb[y, x, 1]
            bi = rgb[y, x, 2]
            key = np.int64(gi) * 256 + np.int64(bi)
            v = np.int64(pair[key])
            if v < 0:
                g = lut_g[gi]
                b = lut_b[bi]
                v = int(min(max(((b - g) / (b + g) + 1.0) * 127.5, 0.0), 255.0))
                pair[key] = v
            out[y, x] = v
            hist_all[v] += 1.0
            if not light[y, x]:
                hist_stained[v] += 1.0
    return out, hist_all, hist_stained


@numba.njit(**_OPTS)
def label_means(labels, values, n):
    """Mean of ``values`` over each label ``0..n`` (0 where it is absent)."""
    s = np.zeros(n + 1)
    c = np.zeros(n + 1)
    h, w = labels.shape
    for y in range(h):
        for x in range(w):
            lab = labels[y, x]
            s[lab] += values[y, x]
            c[lab] += 1.0
    for i in range(n + 1):
        if c[i] > 0:
            s[i] /= c[i]
    return s


@numba.njit(**_OPTS)
def label_histograms(labels, channel, n):
    """256-bin histogram of the uint8 ``channel`` over each label ``0..n``,
    as an (n + 1, 256) float64 array."""
    out = np.zeros((n + 1, 256))
    h, w = labels.shape
    for y in range(h):
        for x in range(w):
            out[labels[y, x], channel[y, x]] += 1.0
    return out


@numba.njit(**_OPTS)
def label_max(labels, values, n):
    """Largest of ``values`` (float32) over each label ``0..n``."""
    out = np.zeros(n + 1)
    h, w = labels.shape
    for y in range(h):
        for x in range(w):
            v = values[y, x]
            lab = labels[y, x]
            if v > out[lab]:
                out[lab] = v
    return out


@numba.njit(**_OPTS)
def darker_part(lightness, labels, nucleus, cut):
    """``nucleus & (lightness <= cut[labels]) & (labels > 0)``."""
    h, w = labels.shape
    out = np.zeros((h, w), np.bool_)
    for y in range(h):
        for x in range(w):
            g = labels[y, x]
            out[y, x] = g > 0 and nucleus[y, x] and lightness[y, x] <= cut[g]
    return out


# --------------------------------------------------------------------------
# fused passes of the nucleus-anchored segmenter: each gives exactly the
# values of the numpy/OpenCV steps it replaces (see _anchored)
# --------------------------------------------------------------------------
@numba.njit(**_OPTS)
def cell_polygon(lab, labels, cx, cy, cos, sin, j_max, own, nuclei_stop, mus, cis, lds,
                 width, delta, beta, clip, ridge, iters, has_bg, bg_spread, x0, y0):
    """:func:`cell_contour`, with the contour as the int32 points of
    ``cv2.fillPoly(..., shift=4)``: ``np.round(16 * (x0 + cos * (rho - 1),
    y0 + sin * (rho - 1)))`` (the last pixel inside on each ray, in the
    window whose corner is ``(cx - x0, cy - y0)``). Returns the points and
    the nuclei pressed against."""
    rho, touching = cell_contour(lab, labels, cx, cy, cos, sin, j_max, own, nuclei_stop, mus,
                                 cis, lds, width, delta, beta, clip, ridge, iters, has_bg,
                                 bg_spread)
    k_rays = rho.size
    pts = np.empty((k_rays, 2), np.int32)
    for k in range(k_rays):
        r = rho[k] - 1.0
        px = x0 + cos[k] * r
        py = y0 + sin[k] * r
        pts[k, 0] = np.int32(np.rint(px * 16.0))
        pts[k, 1] = np.int32(np.rint(py * 16.0))
    return pts, touching


@numba.njit(**_OPTS)
def gauss_fit_groups(x, groups, k, ridge):
    """:func:`gauss_fit` (no extra covariance) of the float32 colours
    ``x`` (N, 3) of each group ``groups == j``, ``j < k``. Returns the pixel
    counts, means, inverse covariances and log-determinants."""
    n_px = x.shape[0]
    xs = x.reshape((n_px, 1, 3))
    sel = np.empty((n_px, 1), np.bool_)
    extra = np.zeros((3, 3))
    ns = np.zeros(k, np.int64)
    mus = np.zeros((k, 3))
    cis = np.zeros((k, 3, 3))
    lds = np.zeros(k)
    for j in range(k):
        for i in range(n_px):
            sel[i, 0] = groups[i] == j
        n, mu, ci, ld = gauss_fit(xs, sel, ridge, extra)
        ns[j] = n
        for a in range(3):      # element-wise (see cell_contour)
            mus[j, a] = mu[a]
            for b in range(3):
                cis[j, a, b] = ci[a, b]
        lds[j] = ld
    return ns, mus, cis, lds


@numba.njit(**_OPTS)
def seeded_mask(comp, q, t_hi, n):
    """uint8 mask (0/1) of the components ``1..n-1`` of ``comp`` that hold a
    pixel with ``q > t_hi``."""
    h, w = comp.shape
    seeded = np.zeros(n, np.bool_)
    for y in range(h):
        for x in range(w):
            if q[y, x] > t_hi:
                seeded[comp[y, x]] = True
    seeded[0] = False
    out = np.empty((h, w), np.uint8)
    for y in range(h):
        for x in range(w):
            out[y, x] = 1 if seeded[comp[y, x]] else 0
    return out


@numba.njit(**_OPTS)
def label_areas_means(labels, values, n):
    """Pixel count (float64) and mean of the integer ``values`` (as
    :func:`label_means`: the sums are exact integers) of each label
    ``0..n`` of a C-contiguous label image, accumulated along runs of equal
    labels."""
    lab = labels.ravel()
    val = values.ravel()
    si = np.zeros(n + 1, np.int64)
    ci = np.zeros(n + 1, np.int64)
    prev = lab[0] if lab.size else 0
    run = 0
    run_sum = 0
    for p in range(lab.size):
        v = lab[p]
        if v != prev:
            si[prev] += run_sum
            ci[prev] += run
            prev = v
            run = 0
            run_sum = 0
        run += 1
        run_sum += np.int64(val[p])
    if lab.size:
        si[prev] += run_sum
        ci[prev] += run
    c = np.zeros(n + 1)
    s = np.zeros(n + 1)
    for i in range(n + 1):
        c[i] = float(ci[i])
        s[i] = float(si[i])
        if c[i] > 0:
            s[i] /= c[i]
    return c, s


@numba.njit(**_OPTS)
def apply_lut(lut, labels):
    """``lut[labels]`` (int32) of a 2-D label image."""
    h, w = labels.shape
    out = np.empty((h, w), np.int32)
    for y in range(h):
        for x in range(w):
            out[y, x] = lut[labels[y, x]]
    return out


@numba.njit(inline="always")
def _median_level(hist, total):
    """First level whose cumulative count reaches ``total / 2``."""
    half = total / 2.0
    cum = 0
    for v in range(hist.size):
        cum += hist[v]
        if cum >= half:
            return v
    return hist.size


@numba.njit(**_OPTS)
def light_medians(rgb, light):
    """Median level (the first whose cumulative count reaches half the
    pixels) of the green and of the blue channel of an RGB uint8 image over
    the ``light`` pixels, or over all pixels when none is light."""
    h, w = light.shape
    hg = np.zeros(256, np.int64)
    hb = np.zeros(256, np.int64)
    n = 0
    for y in range(h):
        for x in range(w):
            if light[y, x]:
                hg[rgb[y, x, 1]] += 1
                hb[rgb[y, x, 2]] += 1
                n += 1
    if n == 0:
        for y in range(h):
            for x in range(w):
                hg[rgb[y, x, 1]] += 1
                hb[rgb[y, x, 2]] += 1
                n += 1
    return float(_median_level(hg, n)), float(_median_level(hb, n))


@numba.njit(**_OPTS)
def contrasted_cuts(hists, min_contrast):
    """Per row ``g >= 1`` of 256-bin float64 histograms (integer counts),
    :func:`leukfeat.segment._threshold.contrasted_otsu`, 255 where it gives
    None (row 0 too). Sums of integer counts are exact in any order."""
    n = hists.shape[0]
    cut = np.full(n, 255, np.int64)
    for g in range(1, n):
        hist = hists[g]
        t = otsu_from_hist(hist)
        if np.isnan(t):
            continue
        ti = int(t)
        w_lo = 0.0
        w_hi = 0.0
        s_lo = 0.0
        s_hi = 0.0
        for v in range(hist.size):
            if v <= ti:
                w_lo += hist[v]
                s_lo += hist[v] * float(v)
            else:
                w_hi += hist[v]
                s_hi += hist[v] * float(v)
        if w_lo == 0 or w_hi == 0:
            continue
        if s_hi / w_hi - s_lo / w_lo < min_contrast:
            continue
        cut[g] = ti
    return cut
