r"""Compiled (numba) kernels of :mod:`leukfeat.extract.edges`.

Private, like :mod:`._texture_kernels` (loaded by :mod:`leukfeat._numba`).

Edge statistics
    :func:`log_stats` and :func:`boundary_stats` gather the LoG response
    and the gradient magnitude of a cell (and of its boundary ring) and
    compute mean, standard deviation, 90th percentile and the zero-crossing
    edge densities in one call each, bit for bit as the numpy expressions
    they replace: :func:`pairwise_sum` reproduces numpy's pairwise
    summation (on an explicit stack: numba's on-disk cache cannot hold
    recursive functions; a cached recursive kernel crashed when loaded).
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["pairwise_sum", "select", "log_stats", "boundary_stats"]

_OPTS = dict(cache=True, nogil=True, error_model="numpy")


@numba.njit(inline="always")
def _lerp(a, b, t):
    """numpy's ``_lerp``: ``a + (b - a) t``, as ``b - (b - a)(1 - t)`` for t >= 0.5
    (as in :mod:`._colour_kernels`; a copy, so that numba's cache of this
    file depends on this file only)."""
    return a + (b - a) * t if t < 0.5 else b - (b - a) * (1.0 - t)


@numba.njit(inline="always")
def _pairwise_block(a, lo, n):
    """numpy's pairwise sum of ``a[lo:lo + n]`` for ``n <= 128`` (a leaf)."""
    if n < 8:
        res = 0.0
        for i in range(lo, lo + n):
            res += a[i]
        return res
    r0 = a[lo]
    r1 = a[lo + 1]
    r2 = a[lo + 2]
    r3 = a[lo + 3]
    r4 = a[lo + 4]
    r5 = a[lo + 5]
    r6 = a[lo + 6]
    r7 = a[lo + 7]
    i = lo + 8
    end = lo + n - (n % 8)
    while i < end:
        r0 += a[i]
        r1 += a[i + 1]
        r2 += a[i + 2]
        r3 += a[i + 3]
        r4 += a[i + 4]
        r5 += a[i + 5]
        r6 += a[i + 6]
        r7 += a[i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < lo + n:
        res += a[i]
        i += 1
    return res


@numba.njit(**_OPTS)
def pairwise_sum(a, lo, n):
    """``numpy.add.reduce(a[lo:lo + n])`` for contiguous float64, bit for bit.

    numpy's pairwise summation: fewer than 8 values are added in turn; up to
    128 go into 8 interleaved partial sums combined as
    ``((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))`` plus the rest;
    longer runs are split in two halves (the first a multiple of 8), summed
    alike and added. The recursion is run on an explicit stack (numba's
    on-disk cache does not support recursive functions).
    """
    # (n <= 128 is one leaf of the loop below: one inlined _pairwise_block,
    # which halves the compile time)
    # tasks (lo, n, phase): phase 0 sums a run, phase 1 adds the two partial
    # sums on top of the value stack (left below right)
    t_lo = np.empty(192, np.int64)
    t_n = np.empty(192, np.int64)
    t_ph = np.empty(192, np.int64)
    vals = np.empty(96)
    t_lo[0] = lo
    t_n[0] = n
    t_ph[0] = 0
    sp = 1
    vp = 0
    while sp > 0:
        sp -= 1
        l = t_lo[sp]
        m = t_n[sp]
        if t_ph[sp] == 1:
            vals[vp - 2] = vals[vp - 2] + vals[vp - 1]
            vp -= 1
        elif m <= 128:
            vals[vp] = _pairwise_block(a, l, m)
            vp += 1
        else:
            m2 = m // 2
            m2 -= m2 % 8
            t_lo[sp] = l                       # add, after both halves
            t_n[sp] = m
            t_ph[sp] = 1
            t_lo[sp + 1] = l + m2              # right half, second
            t_n[sp + 1] = m - m2
            t_ph[sp + 1] = 0
            t_lo[sp + 2] = l                   # left half, first
            t_n[sp + 2] = m2
            t_ph[sp + 2] = 0
            sp += 3
    return vals[0]


@numba.njit(**_OPTS)
def select(a, k, low, high):
    """Rearrange ``a[low:high + 1]`` in place as numba's ``np.partition(a,
    k)`` does and return ``a[k]``: the same quickselect (median-of-three
    pivot, the same swaps, NaN sorting last), hence the same arrangement.
    Used instead of ``np.partition``, whose numba implementation (the kth
    validated with ``np.unique``, a sort, error messages) takes seconds to
    compile; written in one loop with the comparisons spelled out, which
    compiles faster than small inlined helpers."""
    while True:
        # one partition step (numba's _partition_w_nan); x < y, NaN last:
        # x < y or (isnan(y) and not isnan(x))
        mid = (low + high) >> 1
        x = a[mid]
        y = a[low]
        if x < y or (np.isnan(y) and not np.isnan(x)):
            a[low] = x
            a[mid] = y
        x = a[high]
        y = a[mid]
        if x < y or (np.isnan(y) and not np.isnan(x)):
            a[high] = y
            a[mid] = x
        x = a[mid]
        y = a[low]
        if x < y or (np.isnan(y) and not np.isnan(x)):
            a[low] = x
            a[mid] = y
        pivot = a[mid]
        pnan = np.isnan(pivot)
        a[mid] = a[high]
        a[high] = pivot
        i = low
        j = high - 1
        while True:
            while i < high and (a[i] < pivot or (pnan and not np.isnan(a[i]))):
                i += 1
            while j >= low and (pivot < a[j] or (np.isnan(a[j]) and not pnan)):
                j -= 1
            if i >= j:
                break
            x = a[i]
            a[i] = a[j]
            a[j] = x
            i += 1
            j -= 1
        x = a[i]
        a[i] = a[high]
        a[high] = x
        # numba's _select: narrow to the side that holds k
        if i == k:
            return a[k]
        if i < k:
            low = i + 1
        else:
            high = i - 1


@numba.njit(**_OPTS)
def _mean_std_p90(v, n, tmp, out, j, p90_of_abs):
    """``out[j:j + 4]`` = mean and std (ddof 0) of ``v[:n]`` as numpy's
    ``v.mean()``, ``v.std()``; then, with ``p90_of_abs``, the mean of
    ``|v|`` and its 90th percentile, else (``out[j:j + 3]``) the 90th
    percentile of ``v`` (``numpy.percentile``, linear). ``tmp`` is scratch.
    An empty sample gives NaN."""
    if n == 0:
        for i in range(j, j + (4 if p90_of_abs else 3)):
            out[i] = np.nan
        return
    mean = pairwise_sum(v, np.int64(0), n) / n
    for i in range(n):
        d = v[i] - mean
        tmp[i] = d * d
    out[j] = mean
    out[j + 1] = math.sqrt(pairwise_sum(tmp, np.int64(0), n) / n)
    if p90_of_abs:
        for i in range(n):
            tmp[i] = abs(v[i])
        out[j + 2] = pairwise_sum(tmp, np.int64(0), n) / n
        k = j + 3
    else:
        for i in range(n):
            tmp[i] = v[i]
        k = j + 2
    pos = 0.9 * (n - 1)
    lo = int(math.floor(pos))
    t = pos - lo
    a = select(tmp, lo, 0, n - 1)      # np.partition(tmp[:n], lo), in place
    b = a
    if lo + 1 < n:
        b = tmp[lo + 1]
        for i in range(lo + 2, n):
            b = min(b, tmp[i])
    out[k] = _lerp(a, b, t)


@numba.njit(**_OPTS)
def log_stats(resp, m, out):
    """``out[:4]`` = mean, std, mean of ``|r|`` and 90th percentile of
    ``|r|`` over the response ``r = resp[m]`` (raster order), as
    ``r.mean(), r.std(), abs(r).mean(), numpy.percentile(abs(r), 90)``."""
    v = np.empty(resp.size)
    n = np.int64(0)     # not the literal 0: numba would also compile its callee for it
    for y in range(resp.shape[0]):
        for x in range(resp.shape[1]):
            if m[y, x]:
                v[n] = resp[y, x]
                n += 1
    _mean_std_p90(v, n, np.empty(n), out, np.int64(0), np.bool_(True))


@numba.njit(inline="always")
def _crossing(a, b, threshold):
    return a * b < 0 and abs(a - b) > threshold


@numba.njit(**_OPTS)
def boundary_stats(resp, gx, gy, m, eroded, threshold, out):
    """Edge densities and gradient statistics of a cell (see ``edge_features``).

    ``out[0:2]``: the fraction of the cell's pixels (``m``) and of its ring
    (``m`` and not ``eroded``) that are edge pixels: zero-crossings of
    ``resp`` (as ``_filters.zero_crossings_raw`` with threshold 0) whose
    gradient magnitude ``sqrt(gx^2 + gy^2) / 8`` is at least ``threshold``;
    ``out[2:5]`` and ``out[5:8]``: mean, std and 90th percentile of that
    magnitude over the cell and over the ring (numpy's arithmetic).
    """
    h, w = resp.shape
    cell = np.empty(resp.size)
    ring = np.empty(resp.size)
    nc = np.int64(0)    # see log_stats
    nr = np.int64(0)
    ec = 0
    er = 0
    for y in range(h):
        for x in range(w):
            if not m[y, x]:
                continue
            mag = math.sqrt(gx[y, x] * gx[y, x] + gy[y, x] * gy[y, x])
            mag *= 0.125
            r = resp[y, x]
            # marked by a crossing pair when it is the pixel nearer to zero
            # (the left/upper one on ties)
            edge = False
            if x > 0 and _crossing(resp[y, x - 1], r, 0.0) and not abs(resp[y, x - 1]) <= abs(r):
                edge = True
            elif x + 1 < w and _crossing(r, resp[y, x + 1], 0.0) and abs(r) <= abs(resp[y, x + 1]):
                edge = True
            elif y > 0 and _crossing(resp[y - 1, x], r, 0.0) and not abs(resp[y - 1, x]) <= abs(r):
                edge = True
            elif y + 1 < h and _crossing(r, resp[y + 1, x], 0.0) and abs(r) <= abs(resp[y + 1, x]):
                edge = True
            edge = edge and mag >= threshold
            cell[nc] = mag
            nc += 1
            ec += edge
            if eroded[y, x] == 0:
                ring[nr] = mag
                nr += 1
                er += edge
    out[0] = ec / nc if nc > 0 else np.nan
    out[1] = er / nr if nr > 0 else np.nan
    tmp = np.empty(nc)
    _mean_std_p90(cell, nc, tmp, out, np.int64(2), np.bool_(False))
    _mean_std_p90(ring, nr, tmp, out, np.int64(5), np.bool_(False))
