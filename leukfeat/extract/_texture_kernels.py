r"""Compiled (numba) kernels of :mod:`leukfeat.extract.texture`.

Private: loaded on first use, cached on disk and warmed as
:mod:`leukfeat._numba` describes (``cache=True``; ``nogil=True`` lets
threads run them in parallel).

GLCM / Haralick
    :func:`glcm_stats_u8` counts the unordered grey-level pairs of the four
    mahotas directions in **one** pass over a ``uint8`` image: row by row,
    the table cells of the four pairs of every pixel are computed in a
    vectorised loop, then counted into a flat int32 table, one
    ``256 x 256`` band-layout block per direction (cell
    ``256 * |a - b| + min(a, b)``). With a mask, the excluded pairs go to
    unused "trash" cells instead of a branch. A second pass reads the
    occupied cells (levels ``lo .. hi`` only), band by band, to form the
    sufficient statistics of every direction (row sums, ``p_{x-y}``,
    ``p_{x+y}``, :math:`\sum S^2`, :math:`\sum S \log_2 S` with a lookup
    table), clearing the table as it goes, so the table is allocated once
    per thread and never re-zeroed. :func:`haralick_from_stats` turns the
    statistics into the 13 features.

Local binary patterns
    :func:`lbp_hist` reproduces ``skimage.feature.local_binary_pattern``
    bit for bit (same sampling points, same bilinear interpolation
    expression evaluated in the same order at the same absolute positions,
    zero outside the image) on the pixels of a bounding box, vectorised
    along the rows, and histograms the codes inside a mask.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba.extending import intrinsic

__all__ = ["glcm_stats_u8", "haralick_from_stats", "xlog2x_table", "XLOG_TABLE", "lbp_padded",
           "lbp_hist", "LBP_METHOD_CODES"]

_OPTS = dict(cache=True, nogil=True, error_model="numpy")

#: size of the ``x log2 x`` lookup table (counts at or above it use log2)
XLOG_TABLE_SIZE = 4096

#: method name -> integer code understood by :func:`lbp_hist`
LBP_METHOD_CODES = {"uniform": 0, "nri_uniform": 1, "default": 2, "ror": 3}


def xlog2x_table() -> np.ndarray:
    """``c * log2(c)`` for the integer counts ``0 .. XLOG_TABLE_SIZE - 1`` (0 at 0)."""
    c = np.arange(XLOG_TABLE_SIZE, dtype=np.float64)
    out = np.zeros(XLOG_TABLE_SIZE)
    out[1:] = c[1:] * np.log2(c[1:])
    return out


#: :func:`xlog2x_table`, made once when the module is loaded
XLOG_TABLE = xlog2x_table()


# --------------------------------------------------------------------------- #
# GLCM: pass 1, counting
# --------------------------------------------------------------------------- #

#: int32 entries per direction in the count table: 256 x 256 cells plus a
#: little padding so that the four directions' cells of equal index do not
#: share their address modulo 4 KiB (which would serialise their updates)
DIR_STRIDE = 65536 + 80

#: first of the 64 "trash" cells that collect the pairs excluded by a mask:
#: cells ``256 * diff + m`` with ``m + diff > 255`` never hold a real pair
TRASH = 65536 - 64


@numba.njit(inline="always")
def _cell(a, b):
    """Band-layout cell of the unordered pair (a, b): ``256 * |a - b| + min(a, b)``."""
    return (abs(a - b) << 8) + min(a, b)


@numba.njit(inline="always")
def _pairs_edge(row, nrow, x, d, w, tab):
    """The pairs of pixel ``x`` of a row with a row below, with bounds checks."""
    a = np.int64(row[x])
    if x + d < w:
        tab[_cell(a, np.int64(row[x + d]))] += 1
        tab[DIR_STRIDE + _cell(a, np.int64(nrow[x + d]))] += 1
    tab[2 * DIR_STRIDE + _cell(a, np.int64(nrow[x]))] += 1
    if x >= d:
        tab[3 * DIR_STRIDE + _cell(a, np.int64(nrow[x - d]))] += 1


@numba.njit(inline="always")
def _add_keys(keys, n, tab):
    """``tab[k * DIR_STRIDE + keys[k, i]] += 1`` for the 4 directions, i < n.

    The directions alternate so that equal consecutive cells (flat areas)
    do not form one long store-to-load chain.
    """
    t0 = tab[0:DIR_STRIDE]
    t1 = tab[DIR_STRIDE:2 * DIR_STRIDE]
    t2 = tab[2 * DIR_STRIDE:3 * DIR_STRIDE]
    t3 = tab[3 * DIR_STRIDE:4 * DIR_STRIDE]
    k0 = keys[0]
    k1 = keys[1]
    k2 = keys[2]
    k3 = keys[3]
    for i in range(n):
        t0[np.uint64(k0[i])] += 1       # unsigned: no wraparound test
        t1[np.uint64(k1[i])] += 1
        t2[np.uint64(k2[i])] += 1
        t3[np.uint64(k3[i])] += 1


@numba.njit(inline="always")
def _pairs_interior(img, d, tab, keys):
    """Pairs of the pixels in rows ``[0, H - d)`` and columns ``[d, W - d)``.

    All four neighbours of these pixels are inside the image. Row by row,
    the cells are first computed into ``keys`` (a vectorised loop), then
    counted. Called with a literal ``d = 1`` (the common distance), which
    lets LLVM simplify the addressing (about 30% faster).
    """
    w = img.shape[1]
    n = w - 2 * d
    k0 = keys[0]
    k1 = keys[1]
    k2 = keys[2]
    k3 = keys[3]
    for y in range(img.shape[0] - d):
        row = img[y]
        nrow = img[y + d]
        for x in range(d, w - d):
            a = np.int32(row[x])
            b = np.int32(row[x + d])
            k0[x - d] = (abs(a - b) << 8) + min(a, b)
            b = np.int32(nrow[x + d])
            k1[x - d] = (abs(a - b) << 8) + min(a, b)
            b = np.int32(nrow[x])
            k2[x - d] = (abs(a - b) << 8) + min(a, b)
            b = np.int32(nrow[x - d])
            k3[x - d] = (abs(a - b) << 8) + min(a, b)
        _add_keys(keys, n, tab)


@numba.njit(**_OPTS)
def _count_pairs(img, d, tab):
    """Add the unordered pairs of the 4 directions of ``img`` to ``tab``.

    Direction ``k`` (offsets ``(0, d), (d, d), (d, 0), (d, -d)``) counts the
    pair ``{a, b}`` in ``tab[k * DIR_STRIDE + 256 * |a - b| + min(a, b)]``
    (a band layout: the cells of smooth images, near the diagonal, are
    close together). One pass over the image; returns ``(lo, hi,
    n_pixels)``.
    """
    h, w = img.shape
    lo = img[0, 0]
    hi = img[0, 0]
    for y in range(h):                  # uint8 min / max: vectorised
        row = img[y]
        for x in range(w):
            lo = min(lo, row[x])
            hi = max(hi, row[x])
    keys = np.empty((4, max(w, 1)), np.uint16)
    if d == 1:                          # the common case, specialised
        _pairs_interior(img, 1, tab, keys)
    else:
        _pairs_interior(img, d, tab, keys)
    # columns [0, xa) lack the 135-degree neighbour, [xb, w) the right ones;
    # [xa, xb) = [d, w - d) (or nothing) was counted above
    xa = min(d, w)
    xb = max(w - d, xa)
    for y in range(h):
        row = img[y]
        if y + d < h:
            nrow = img[y + d]
            for x in range(0, xa):
                _pairs_edge(row, nrow, x, d, w, tab)
            for x in range(xb, w):
                _pairs_edge(row, nrow, x, d, w, tab)
        else:                           # last rows: horizontal pairs only
            for x in range(0, w - d):
                tab[_cell(np.int64(row[x]), np.int64(row[x + d]))] += 1
    return np.int64(lo), np.int64(hi), h * w


@numba.njit(inline="always")
def _masked_key(a, b, valid, x):
    return ((abs(a - b) << 8) + min(a, b)) if valid else TRASH + (x & 63)


@numba.njit(**_OPTS)
def _count_pairs_masked(img, mask, d, tab):
    """:func:`_count_pairs` restricted to the pairs with both pixels in ``mask``.

    Works on a copy of the mask's bounding box padded with ``d`` masked-out
    columns left and right and ``d`` rows below, so that every pixel has its
    four neighbours; pairs that are not inside the mask are sent to the
    trash cells (no branch). Returns ``(lo, hi, n_pixels)`` of the pixels
    inside the mask (``n_pixels = 0``: nothing counted).
    """
    h, w = img.shape
    # bounding box (vectorised: row maxima, column-wise or)
    r0 = h
    r1 = 0
    cols = np.zeros(w, np.uint8)
    for y in range(h):
        mrow = mask[y]
        anyrow = np.uint8(0)
        for x in range(w):
            anyrow = max(anyrow, mrow[x])
        if anyrow:
            r0 = min(r0, y)
            r1 = y + 1
            for x in range(w):
                cols[x] |= mrow[x]
    if r1 == 0:
        return np.int64(0), np.int64(0), 0
    c0 = 0
    while cols[c0] == 0:
        c0 += 1
    c1 = w
    while cols[c1 - 1] == 0:
        c1 -= 1
    bh = r1 - r0
    bw = c1 - c0
    pw = bw + 2 * d
    pim = np.zeros((bh + d, pw), np.uint8)
    pm = np.zeros((bh + d, pw), np.uint8)
    lo = np.int32(255)
    hi = np.int32(0)
    npix = 0
    for y in range(bh):
        irow = img[r0 + y, c0:c1]
        mrow = mask[r0 + y, c0:c1]
        prow = pim[y, d:d + bw]
        pmrow = pm[y, d:d + bw]
        for x in range(bw):             # row views: vectorised
            v = irow[x]
            m = mrow[x] != 0
            prow[x] = v
            pmrow[x] = m
            lo = min(lo, np.int32(v) if m else 255)
            hi = max(hi, np.int32(v) if m else 0)
            npix += m
    keys = np.empty((4, bw), np.uint16)
    k0 = keys[0]
    k1 = keys[1]
    k2 = keys[2]
    k3 = keys[3]
    for y in range(bh):
        row = pim[y]
        nrow = pim[y + d]
        mrow = pm[y]
        mnext = pm[y + d]
        for x in range(d, d + bw):
            a = np.int32(row[x])
            m = mrow[x] != 0
            k0[x - d] = _masked_key(a, np.int32(row[x + d]), m & (mrow[x + d] != 0), x)
            k1[x - d] = _masked_key(a, np.int32(nrow[x + d]), m & (mnext[x + d] != 0), x)
            k2[x - d] = _masked_key(a, np.int32(nrow[x]), m & (mnext[x] != 0), x)
            k3[x - d] = _masked_key(a, np.int32(nrow[x - d]), m & (mnext[x - d] != 0), x)
        _add_keys(keys, bw, tab)
    for k in range(4):
        tab[k * DIR_STRIDE + TRASH:k * DIR_STRIDE + TRASH + 64] = 0
    return np.int64(lo), np.int64(hi), npix


# --------------------------------------------------------------------------- #
# GLCM: pass 2, statistics of the count tables
# --------------------------------------------------------------------------- #

@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc"})
def _table_stats(tab, lo, hi, xlog, want_dense):
    """Sufficient statistics of the 4 count tables over the levels ``[lo, hi]``.

    Reads the cells ``U[i, j]`` (``lo <= i <= j <= hi``) band by band
    (``j - i`` = 0, 1, ...) and sets them back to 0 (the counters write no
    other cell, or clear it: the trash cells), so the table is clean for the
    next call. Returns float64
    arrays ``n, sum_sq, sum_xl`` (4,), ``px`` (4, K) (row + column sums:
    symmetric-matrix units), ``pdiff`` (4, K) (per ``j - i``), ``psum``
    (4, 2K - 1) (per ``i + j - 2 lo``) and ``dense`` (4, K, K), the
    symmetric counts ``U + U^T`` (empty unless ``want_dense``). The float
    sum of ``u log2 u`` may be reassociated (vectorised): its terms are
    non-negative.
    """
    k = hi - lo + 1
    nt = xlog.shape[0]
    n = np.zeros(4)
    sum_sq = np.zeros(4)
    sum_xl = np.zeros(4)
    px = np.zeros((4, k))
    pdiff = np.zeros((4, k))
    psum = np.zeros((4, 2 * k - 1))
    dense = np.zeros((4, k, k) if want_dense else (4, 0, 0))
    # int32 sums (8 per vector): every partial sum is at most the number of
    # pairs, below 2**30 (see texture._MAX_KERNEL_PIXELS)
    rowpx = np.zeros(k, np.int32)       # sums over j of U[i, j]
    colpx = np.zeros(k, np.int32)       # sums over i of U[i, j]
    psum2 = np.zeros((2, k), np.int32)  # psum2[s & 1, s >> 1] = psum[s]
    for dd in range(4):
        rowpx[:] = 0
        colpx[:] = 0
        psum2[:] = 0
        sq = np.int64(0)
        xl = 0.0
        for df in range(k):
            m = k - df
            start = dd * DIR_STRIDE + (df << 8) + lo
            band = tab[start:start + m]     # U[lo + t, lo + t + df], t = 0 .. m - 1
            rs = np.int64(0)
            rq = np.int64(0)
            mx = np.int32(0)
            for t in range(m):              # reductions only: vectorised
                u = band[t]
                u64 = np.int64(u)
                rs += u64
                rq += u64 * u64
                mx = max(mx, u)
            if rs == 0:                     # most far bands of smooth images
                continue
            pdiff[dd, df] = rs
            sq += rq
            ra = rowpx[:m]
            ca = colpx[df:]
            sa = psum2[df & 1, df >> 1:]
            for t in range(m):
                u = band[t]
                ra[t] += u
                ca[t] += u
                sa[t] += u
            acc = 0.0
            if mx < nt:
                for t in range(m):
                    acc += xlog[band[t]]
            else:
                for t in range(m):
                    u = band[t]
                    if u < nt:
                        acc += xlog[u]
                    else:
                        fu = float(u)
                        acc += fu * math.log2(fu)
            xl += acc
            if df == 0:             # the diagonal of S holds 2 U[i, i]
                sq += rq
                xl += rs
            if want_dense:
                for t in range(m):
                    if df == 0:
                        dense[dd, t, t] = 2.0 * band[t]
                    else:
                        dense[dd, t, t + df] = band[t]
                        dense[dd, t + df, t] = band[t]
            band[:] = 0
        tot = np.int64(0)
        for i in range(k):
            px[dd, i] = np.int64(rowpx[i]) + np.int64(colpx[i])
            tot += rowpx[i]
        for s in range(2 * k - 1):
            psum[dd, s] = psum2[s & 1, s >> 1]
        n[dd] = tot
        sum_sq[dd] = sq
        sum_xl[dd] = xl
    return n, sum_sq, sum_xl, px, pdiff, psum, dense


def glcm_stats_u8(img, mask, use_mask, d, tab, xlog, want_dense):
    """Count (pass 1) and summarise (pass 2) the four directions of ``img``.

    A Python function calling the two compiled passes: compiled, it would
    optimise and link their machine code a second time (a second or more of
    the first compilation, for a microsecond per call).

    Parameters: ``img`` C-contiguous uint8 (H, W); ``mask`` C-contiguous
    uint8 (H, W), used when ``use_mask``; ``d`` the distance; ``tab`` a
    zeroed int32 table of ``4 * DIR_STRIDE`` entries, returned zeroed;
    ``xlog`` the table of :func:`xlog2x_table`. Returns ``(lo, hi, npix, n,
    sum_sq, sum_xl, px, pdiff, psum, dense)``, see :func:`_table_stats`.
    """
    if use_mask:
        lo, hi, npix = _count_pairs_masked(img, mask, d, tab)
    else:
        lo, hi, npix = _count_pairs(img, d, tab)
    if npix == 0:
        lo = 0
        hi = 0
    n, sum_sq, sum_xl, px, pdiff, psum, dense = _table_stats(tab, lo, hi, xlog, want_dense)
    return lo, hi, npix, n, sum_sq, sum_xl, px, pdiff, psum, dense


# --------------------------------------------------------------------------- #
# Haralick features from the statistics
# --------------------------------------------------------------------------- #

# not inlined: haralick_from_stats calls it three times (one compiled copy)
@numba.njit(**_OPTS)
def _entropy(c, total, xlog):
    r"""Entropy (base 2) of the integer counts ``c`` summing to ``total``.

    :math:`-\sum (c/N) \log_2 (c/N) = \log_2 N - \sum c \log_2 c / N`, with
    ``c log2 c`` from the lookup table below its size; exactly 0 for a
    single non-zero count, never negative.
    """
    nt = xlog.shape[0]
    acc = 0.0
    nz = 0
    for i in range(c.shape[0]):
        ci = c[i]
        if ci > 0:
            nz += 1
            if ci < nt:
                acc += xlog[np.int64(ci)]
            else:
                acc += ci * math.log2(ci)
    if nz <= 1:
        return 0.0
    return max(math.log2(total) - acc / total, 0.0)


@numba.njit(**_OPTS)
def haralick_from_stats(n, sum_sq, sum_xl, px, pdiff, psum, v, v0, maxv, nf, xlog):
    r"""The 13 Haralick features (mahotas' definitions) of each direction.

    ``n`` (D,) unordered pair counts; ``sum_sq`` :math:`\sum S^2 / 2`;
    ``sum_xl`` :math:`\sum S \log_2 S / 2`; ``px`` (D, K) row sums of
    :math:`S` over the levels ``v``; ``pdiff`` (D, span) counts per
    :math:`|i - j|`; ``psum`` (D, 2 span - 1) counts per
    :math:`i + j - 2 v_0` (all counts are integers); ``maxv`` mahotas'
    matrix size; ``xlog`` the table of :func:`xlog2x_table`. Returns a
    (D, nf) array; rows without pairs and the columns from 13 on are NaN.
    """
    nd = n.shape[0]
    out = np.full((nd, nf), np.nan)
    nk = px.shape[1]
    ns = pdiff.shape[1]
    for dd in range(nd):
        if not n[dd] > 0:
            continue
        nn = n[dd]
        t = 2.0 * nn
        # marginal: mean, variance, number of occupied levels
        mu = 0.0
        occ = 0
        for i in range(nk):
            q = px[dd, i] / t
            mu += q * v[i]
            occ += px[dd, i] > 0
        var = 0.0
        for i in range(nk):
            q = px[dd, i] / t
            dv = v[i] - mu
            var += q * dv * dv
        single = occ <= 1
        # difference histogram
        contrast = 0.0
        idm = 0.0
        dsum = 0.0
        for k in range(ns):
            q = pdiff[dd, k] / nn
            fk = float(k)
            contrast += q * (fk * fk)
            idm += q * (1.0 / (1.0 + fk * fk))
            dsum += q
        # sum histogram
        savg = 0.0
        for k in range(psum.shape[1]):
            savg += psum[dd, k] / nn * (2.0 * v0 + k)
        svar = 0.0
        for k in range(psum.shape[1]):
            ds = 2.0 * v0 + k - savg
            svar += psum[dd, k] / nn * (ds * ds)
        out[dd, 0] = 2.0 * sum_sq[dd] / (t * t)
        out[dd, 1] = contrast
        out[dd, 2] = np.nan if single else 1.0 - contrast / (2.0 * var)
        out[dd, 3] = var
        out[dd, 4] = idm
        out[dd, 5] = savg
        out[dd, 6] = svar
        out[dd, 7] = _entropy(psum[dd], nn, xlog)
        hxy = math.log2(t) - 2.0 * sum_xl[dd] / t
        hxy = max(hxy, 0.0)
        if single:
            hxy = 0.0   # one grey level: a single cell, exactly zero (not 1e-15)
        out[dd, 8] = hxy
        # mahotas: numpy.var of p_{x-y} as a vector of length maxv (zeros included)
        m = dsum / maxv
        acc = 0.0
        for k in range(ns):
            e = pdiff[dd, k] / nn - m
            acc += e * e
        out[dd, 9] = (acc + (maxv - ns) * m * m) / maxv
        out[dd, 10] = _entropy(pdiff[dd], nn, xlog)
        hx = _entropy(px[dd], t, xlog)
        out[dd, 11] = np.nan if single else (hxy - 2.0 * hx) / hx
        out[dd, 12] = math.sqrt(max(0.0, 1.0 - math.exp(-2.0 * (2.0 * hx - hxy))))
    return out


# --------------------------------------------------------------------------- #
# local binary patterns
# --------------------------------------------------------------------------- #

@numba.njit(**_OPTS)
def lbp_padded(img, y0, y1, x0, x1, margin):
    """float64 copy of ``img[y0 - margin:y1 + margin, x0 - margin:x1 + margin]``.

    Positions outside the image are 0 (scikit-image's constant mode).
    """
    h, w = img.shape
    out = np.zeros((y1 - y0 + 2 * margin, x1 - x0 + 2 * margin))
    for yy in range(out.shape[0]):
        y = y0 - margin + yy
        if y < 0 or y >= h:
            continue
        for xx in range(out.shape[1]):
            x = x0 - margin + xx
            if 0 <= x < w:
                out[yy, xx] = img[y, x]
    return out


@intrinsic
def _popcount(typingctx, v):
    """Number of set bits of an integer (LLVM ``ctpop``: one instruction,
    vectorised)."""
    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return v(v), codegen


@numba.njit(nogil=True)
def _lbp_code(pat, p, method):
    """scikit-image's code of the sign pattern ``pat`` (bit i = sample i >= centre)."""
    if method == 2:          # default
        return pat
    if method == 3:          # ror: smallest right rotation, on p bits
        best = pat
        cur = pat
        for _ in range(1, p):
            cur = (cur >> 1) | ((cur & 1) << (p - 1))
            best = min(best, cur)
        return best
    ones = _popcount(pat)
    # transitions between consecutive samples 0..p-1 (not circular, as skimage)
    changes = _popcount((pat ^ (pat >> 1)) & ((np.int64(1) << (p - 1)) - 1))
    if method == 0:          # uniform
        return ones if changes <= 2 else p + 1
    # nri_uniform
    if changes > 2:
        return p * (p - 1) + 2
    if ones == 0:
        return 0
    if ones == p:
        return p * (p - 1) + 1
    first_one = 0
    while not (pat >> first_one) & 1:
        first_one += 1
    first_zero = 0
    while (pat >> first_zero) & 1:
        first_zero += 1
    if first_one == 0:
        rot = ones - first_zero
    else:
        rot = p - first_one
    return 1 + (ones - 1) * p + rot


@numba.njit(**_OPTS)
def lbp_hist(pad, py0, px0, y0, y1, x0, x1, mask, use_mask, rp, cp, method, hist, codes_out):
    """Add the LBP codes of the pixels ``[y0, y1) x [x0, x1)`` inside ``mask`` to ``hist``.

    ``pad`` is :func:`lbp_padded` output whose element ``[0, 0]`` is the
    image position ``(py0, px0)``; it must cover every sample of the
    region. ``rp``, ``cp``: scikit-image's sampling offsets (rounded to 5
    decimals); ``method``: a :data:`LBP_METHOD_CODES` value. For each pixel
    ``(y, x)`` (absolute image coordinates: scikit-image's float rounding
    depends on them) and sample ``i``, with ``r = y + rp[i]``,
    ``c = x + cp[i]``, ``dr = r - floor(r)``, ``dc = c - floor(c)``::

        top = (1 - dc) * f(floor r, floor c) + dc * f(floor r, ceil c)
        bottom = (1 - dc) * f(ceil r, floor c) + dc * f(ceil r, ceil c)
        bit i = (1 - dr) * top + dr * bottom - f(y, x) >= 0

    which is scikit-image's expression evaluated in the same order (``a - b
    >= 0`` is ``a >= b`` in IEEE arithmetic). Samples at integer offsets
    (``dr = dc = 0``) reduce exactly to ``f(r, c) >= f(y, x)``.
    ``mask`` is indexed by image coordinates. ``codes_out``, an int64
    ``(y1 - y0, x1 - x0)`` array (or empty), receives the code of every
    pixel of the region. Returns False (and leaves ``hist`` alone) when the
    column offsets ``floor(c) - x`` are not constant over the region, which
    cannot happen for images narrower than 2**31.
    """
    p = rp.shape[0]
    nx = x1 - x0
    # column weights per sample: dc depends on the binade of c, hence on x;
    # the integer offsets floor(c) - x, ceil(c) - x are constant
    cmin = np.empty(p, np.int64)
    cmax = np.empty(p, np.int64)
    dct = np.empty((p, nx))
    omd = np.empty((p, nx))
    for i in range(p):
        for xx in range(nx):
            x = x0 + xx
            c = x + cp[i]
            mn = math.floor(c)
            mx = math.ceil(c)
            if xx == 0:
                cmin[i] = mn - x
                cmax[i] = mx - x
            elif mn - x != cmin[i] or mx - x != cmax[i]:
                return False
            dc = c - mn
            dct[i, xx] = dc
            omd[i, xx] = 1 - dc
    # samples on the pixel grid (the 4 axis points) and interpolated ones
    exact = np.empty(p, np.int64)
    interp = np.empty(p, np.int64)
    ne = 0
    ni = 0
    for i in range(p):
        if rp[i] == math.floor(rp[i]) and cmin[i] == cmax[i]:
            exact[ne] = i
            ne += 1
        else:
            interp[ni] = i
            ni += 1
    pat = np.zeros(nx, np.int64)
    codes = np.zeros(nx, np.int64)
    nb = hist.shape[0]
    sub = np.zeros((4, nb), np.int64)    # 4 interleaved histograms: no store chains
    coff = x0 - px0
    for y in range(y0, y1):
        pat[:] = 0
        ctr = pad[y - py0, coff:coff + nx]
        k = 0
        while k < ne:                   # grid samples, two at a time
            i = exact[k]
            j = exact[min(k + 1, ne - 1)]
            ca = coff + cmin[i]
            aa = pad[math.floor(y + rp[i]) - py0, ca:ca + nx]
            ca2 = coff + cmin[j]
            aa2 = pad[math.floor(y + rp[j]) - py0, ca2:ca2 + nx]
            bi = np.int64(1) << i
            bj = np.int64(1) << j
            for xx in range(nx):
                c = ctr[xx]
                pat[xx] |= (bi if aa[xx] >= c else 0) | (bj if aa2[xx] >= c else 0)
            k += 2
        # interpolated samples two at a time (one pass over pat and ctr);
        # contiguous views keep every index non-negative (no gathers)
        k = 0
        while k + 1 < ni:
            i = interp[k]
            j = interp[k + 1]
            r = y + rp[i]
            mnr = math.floor(r)
            mxr = math.ceil(r)
            dr = r - mnr
            omdr = 1 - dr
            ca = coff + cmin[i]
            cb = coff + cmax[i]
            aa = pad[mnr - py0, ca:ca + nx]
            ab = pad[mnr - py0, cb:cb + nx]
            ba = pad[mxr - py0, ca:ca + nx]
            bb = pad[mxr - py0, cb:cb + nx]
            dci = dct[i]
            omi = omd[i]
            r2 = y + rp[j]
            mnr2 = math.floor(r2)
            mxr2 = math.ceil(r2)
            dr2 = r2 - mnr2
            omdr2 = 1 - dr2
            ca2 = coff + cmin[j]
            cb2 = coff + cmax[j]
            aa2 = pad[mnr2 - py0, ca2:ca2 + nx]
            ab2 = pad[mnr2 - py0, cb2:cb2 + nx]
            ba2 = pad[mxr2 - py0, ca2:ca2 + nx]
            bb2 = pad[mxr2 - py0, cb2:cb2 + nx]
            dcj = dct[j]
            omj = omd[j]
            bi = np.int64(1) << i
            bj = np.int64(1) << j
            for xx in range(nx):
                c = ctr[xx]
                top = omi[xx] * aa[xx] + dci[xx] * ab[xx]
                bottom = omi[xx] * ba[xx] + dci[xx] * bb[xx]
                top2 = omj[xx] * aa2[xx] + dcj[xx] * ab2[xx]
                bottom2 = omj[xx] * ba2[xx] + dcj[xx] * bb2[xx]
                b = ((bi if omdr * top + dr * bottom >= c else 0)
                     | (bj if omdr2 * top2 + dr2 * bottom2 >= c else 0))
                pat[xx] |= b
            k += 2
        if k < ni:
            i = interp[k]
            r = y + rp[i]
            mnr = math.floor(r)
            mxr = math.ceil(r)
            dr = r - mnr
            omdr = 1 - dr
            ca = coff + cmin[i]
            cb = coff + cmax[i]
            aa = pad[mnr - py0, ca:ca + nx]
            ab = pad[mnr - py0, cb:cb + nx]
            ba = pad[mxr - py0, ca:ca + nx]
            bb = pad[mxr - py0, cb:cb + nx]
            dci = dct[i]
            omi = omd[i]
            bi = np.int64(1) << i
            for xx in range(nx):
                top = omi[xx] * aa[xx] + dci[xx] * ab[xx]
                bottom = omi[xx] * ba[xx] + dci[xx] * bb[xx]
                if omdr * top + dr * bottom >= ctr[xx]:
                    pat[xx] |= bi
        if method == 0:
            # uniform codes, vectorised: number of ones when at most two
            # transitions between consecutive samples (not circular), else p + 1
            low = (np.int64(1) << (p - 1)) - 1
            for xx in range(nx):
                v = pat[xx]
                ones = _popcount(v)
                changes = _popcount((v ^ (v >> 1)) & low)
                codes[xx] = ones if changes <= 2 else p + 1
        else:
            for xx in range(nx):
                codes[xx] = _lbp_code(pat[xx], p, method)
        if codes_out.shape[0] > 0:
            crow = codes_out[y - y0]
            for xx in range(nx):        # element-wise: an array assignment compiles
                crow[xx] = codes[xx]    # numba's shape-mismatch message (slow)
        if use_mask:
            mrow = mask[y, x0:x1]
            for xx in range(nx):
                if mrow[xx]:
                    sub[xx & 3, codes[xx]] += 1
        else:
            for xx in range(nx):
                sub[xx & 3, codes[xx]] += 1
    for b in range(nb):
        hist[b] += sub[0, b] + sub[1, b] + sub[2, b] + sub[3, b]
    return True
