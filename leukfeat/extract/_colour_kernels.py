r"""Compiled (numba) kernels of :mod:`leukfeat.extract.colour`.

Private, like :mod:`._texture_kernels` (loaded by :mod:`leukfeat._numba`).

Colour moments
    :func:`row_moments` (float channels) and :func:`count_moments` (integer
    channels given their 256-bin counts) compute mean, standard deviation,
    skewness and kurtosis with two passes, in one call for every channel of
    a compartment, where the equivalent numpy code spends most of its time
    in per-call overhead on these small arrays. :mod:`~leukfeat.extract.colour`
    calls :func:`count_stats` and :func:`sorted_row_stats`, which add the
    linear-interpolation percentiles (from the 256-bin counts, or from the
    sorted rows) in the same call, exactly as ``numpy.percentile``;
    ``row_moments`` serves configurations without percentiles, and
    ``count_moments`` stays as the moments-only form.
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["row_moments", "count_moments", "count_stats", "sorted_row_stats",
           "partitioned_row_stats", "rgb_to_hsv",
           "split_compartments"]

_OPTS = dict(cache=True, nogil=True, error_model="numpy")


#: float64 machine epsilon (scipy's threshold for a "constant" sample)
_EPS = float(np.finfo(np.float64).eps)


@numba.njit(inline="always")
def _sample_moments(v, w, weighted, constant, out):
    """``out[:] = (mean, std, skewness, kurtosis)`` of the values ``v``.

    With ``weighted`` each ``v[c]`` counts ``w[c]`` times (``w`` is ignored
    otherwise) and a sample whose weight sits on one value is constant;
    ``constant`` marks samples already known to be constant. Two passes (the
    mean, then the central power sums); biased estimators as
    ``scipy.stats.skew/kurtosis(bias=True)``; constant samples, and samples
    whose variance is within round-off of 0 (scipy's rule), get std 0 and
    NaN skewness and kurtosis. The sample must not be empty.
    """
    n = 0.0
    s = 0.0
    used = 0
    for c in range(v.size):
        wc = w[c] if weighted else 1.0
        if wc != 0:
            n += wc
            s += wc * v[c]
            used += 1
    mean = s / n
    s2 = 0.0
    s3 = 0.0
    s4 = 0.0
    for c in range(v.size):
        wc = w[c] if weighted else 1.0
        if wc != 0:
            d = v[c] - mean
            d2 = d * d
            s2 += wc * d2
            s3 += wc * d2 * d
            s4 += wc * d2 * d2
    constant = constant or (weighted and used == 1)
    m2 = 0.0 if constant else s2 / n
    out[0] = mean
    out[1] = math.sqrt(m2)
    if constant or m2 <= (_EPS * mean) ** 2:
        out[2] = np.nan
        out[3] = np.nan
    else:
        out[2] = (s3 / n) / m2 ** 1.5
        out[3] = (s4 / n) / (m2 * m2) - 3.0


@numba.njit(**_OPTS)
def row_moments(x, constant, out):
    """``out[i] = (mean, std, skewness, kurtosis)`` of row ``i`` of ``x`` (k, n).

    ``constant[i]`` marks rows known to be constant (see
    :func:`_sample_moments`); ``n`` must be > 0.
    """
    for i in range(x.shape[0]):
        _sample_moments(x[i], x[i], False, constant[i], out[i])


@numba.njit(**_OPTS)
def count_moments(counts, values, out):
    """Moments of integer-coded samples from their value counts.

    ``counts`` (m, k, v) holds, for m samples of k channels, how many pixels
    have code ``c``, which stands for the value ``values[j, c]``; every
    sample must be non-empty. ``out`` (m, k, 4) receives mean, std,
    skewness and kurtosis as :func:`row_moments` on the expanded values
    (a sample whose pixels share one code is constant).
    """
    for a in range(counts.shape[0]):
        for j in range(counts.shape[1]):
            _sample_moments(values[j], counts[a, j], True, False, out[a, j])


@numba.njit(inline="always")
def _lerp(a, b, t):
    """numpy's ``_lerp``: ``a + (b - a) t``, as ``b - (b - a)(1 - t)`` for t >= 0.5."""
    return a + (b - a) * t if t < 0.5 else b - (b - a) * (1.0 - t)


@numba.njit(**_OPTS)
def count_stats(counts, values, percentiles, out):
    """Moments and percentiles of integer-coded samples from their counts.

    As :func:`count_moments` for ``out[..., :4]``; ``out[..., 4:4 + q]``
    receives ``numpy.percentile(x, percentiles)`` (linear) of the expanded
    values ``x`` (every sample non-empty; codes in increasing value order).
    The order statistic of rank ``r`` is the value of the first code whose
    cumulative count exceeds ``r``.
    """
    q = percentiles.size
    v = counts.shape[2]
    for a in range(counts.shape[0]):
        for j in range(counts.shape[1]):
            c = counts[a, j]
            _sample_moments(values[j], c, True, False, out[a, j])
            n = 0.0
            for k in range(v):
                n += c[k]
            for i in range(q):
                pos = percentiles[i] / 100.0 * (n - 1.0)
                lo = math.floor(pos)
                hi = min(lo + 1.0, n - 1.0)
                t = pos - lo
                # values of the order statistics of ranks lo and hi
                cum = 0.0
                va = np.nan
                vb = np.nan
                for k in range(v):
                    cum += c[k]
                    if cum > lo and np.isnan(va):
                        va = values[j, k]
                    if cum > hi:
                        vb = values[j, k]
                        break
                out[a, j, 4 + i] = _lerp(va, vb, t)


@numba.njit(**_OPTS)
def sorted_row_stats(x, xs, percentiles, out):
    """Moments (:func:`row_moments`) of the rows of ``x`` (k, n), n > 0, and
    their percentiles (``numpy.percentile``, linear) from the sorted rows
    ``xs``, into ``out[:, :4]`` and ``out[:, 4:4 + q]``; a row is constant
    when its smallest and largest values are equal."""
    n = x.shape[1]
    for r in range(x.shape[0]):
        _sample_moments(x[r], x[r], False, xs[r, 0] == xs[r, n - 1], out[r])
        for i in range(percentiles.size):
            pos = percentiles[i] / 100.0 * (n - 1)
            lo = int(math.floor(pos))
            hi = min(lo + 1, n - 1)
            out[r, 4 + i] = _lerp(xs[r, lo], xs[r, hi], pos - lo)


@numba.njit(**_OPTS)
def rgb_to_hsv(rgb_t, vmax, h, s):
    """Hue (degrees), saturation and ``vmax = max(R, G, B)`` of (3, n) uint8
    RGB, pixel by pixel, with the formulas, tie-breaking and float
    operations of :func:`leukfeat.extract.colour._rgb_to_hs` (blue wins over
    green over red; grey pixels get H = S = 0)."""
    for p in range(rgb_t.shape[1]):
        r = np.int16(rgb_t[0, p])
        g = np.int16(rgb_t[1, p])
        b = np.int16(rgb_t[2, p])
        v = max(r, g, b)
        delta = v - min(r, g, b)
        vmax[p] = v
        if delta == 0:
            h[p] = 0.0
            s[p] = 0.0
            continue
        if b == v:
            num = r - g
            sector = 4.0
        elif g == v:
            num = b - r
            sector = 2.0
        else:
            num = g - b
            sector = 0.0
        hp = sector + np.float64(num) / np.float64(delta)
        if hp < 0:
            hp = hp + 6.0
        h[p] = hp * 60.0
        s[p] = np.float64(delta) / np.float64(v)


@numba.njit(**_OPTS)
def split_compartments(codes, floats, in_nuc, counts, f_nuc, f_cyto):
    """The nucleus and cytoplasm of a cell's pixel rows in one pass.

    ``codes`` (k, n) uint8 and ``floats`` (f, n) are the cell's channel
    rows, ``in_nuc`` (n,) marks the nucleus pixels. ``counts`` (3, k, 256)
    receives the 256-bin counts of the codes of the nucleus, the cytoplasm
    and the cell; ``f_nuc`` (f, n_nuc) and ``f_cyto`` (f, n - n_nuc) the
    float rows of the nucleus and cytoplasm pixels, in raster order (as
    ``floats[:, in_nuc]`` and ``floats[:, ~in_nuc]``).
    """
    counts[:] = 0
    a = 0
    c = 0
    for p in range(in_nuc.size):
        part = 0 if in_nuc[p] else 1
        for j in range(codes.shape[0]):
            counts[part, j, codes[j, p]] += 1
        if part == 0:
            for j in range(floats.shape[0]):
                f_nuc[j, a] = floats[j, p]
            a += 1
        else:
            for j in range(floats.shape[0]):
                f_cyto[j, c] = floats[j, p]
            c += 1
    for j in range(codes.shape[0]):
        for v in range(256):
            counts[2, j, v] = counts[0, j, v] + counts[1, j, v]


@numba.njit(**_OPTS)
def partitioned_row_stats(x, xs, percentiles, out):
    """:func:`sorted_row_stats` from rows ``xs`` partitioned only at the
    ranks ``floor(p / 100 (n - 1))`` of the percentiles (``numpy.partition``):
    the value of the next rank is the smallest value after that position,
    and the row is constant when its smallest and largest values are equal,
    so every statistic is the one a full sort gives."""
    n = x.shape[1]
    for r in range(x.shape[0]):
        row = xs[r]
        lo_v = row[0]
        hi_v = row[0]
        for p in range(1, n):
            v = row[p]
            if v < lo_v:
                lo_v = v
            if v > hi_v:
                hi_v = v
        _sample_moments(x[r], x[r], False, lo_v == hi_v, out[r])
        for i in range(percentiles.size):
            pos = percentiles[i] / 100.0 * (n - 1)
            lo = int(math.floor(pos))
            hi = min(lo + 1, n - 1)
            b = row[lo]
            if hi > lo:
                b = row[hi]
                for p in range(hi + 1, n):
                    if row[p] < b:
                        b = row[p]
            out[r, 4 + i] = _lerp(row[lo], b, pos - lo)
