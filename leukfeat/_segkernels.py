"""Compiled (numba) kernels of :mod:`leukfeat.segment` (private).

Imported lazily by :mod:`leukfeat.segment` on the first segmentation, so that
``import leukfeat`` does not import numba; compiled once with
``cache=True`` and reused by later processes (e.g. joblib workers), like
:mod:`leukfeat.extract._kernels`.

Each kernel does exactly the arithmetic of the numpy code it replaces, in
the same order, so the results are identical; the numpy forms are kept in
``tests/test_segment.py`` as references. They exist because the arrays
involved are small (a 256-bin histogram, k = 4 centres) or the work is a
couple of passes over a label image, where numpy's per-call overhead and
temporary arrays cost more than the arithmetic.
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["lloyd_on_histogram", "otsu_from_hist", "drop_specks", "channel_histogram",
           "split_by_threshold", "label_counts", "label_boxes"]

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
    nuc[0] = np.count_nonzero(nu) - nuc[1:].sum()
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
