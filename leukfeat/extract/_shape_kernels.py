r"""Compiled (numba) kernels of :mod:`leukfeat.extract.shape`.

Private, like :mod:`._texture_kernels` (loaded by :mod:`leukfeat._numba`).

Nucleus lobe count
    :func:`lobe_count` counts, at each of a few levels of the distance
    transform, the components above the level that rise high enough above
    it, with one flood fill per level (same result as labelling each level
    with OpenCV and counting with ``bincount``, at a fraction of the cost
    on these small crops).

Region geometry
    :func:`region_geometry` measures, for one region of
    :mod:`leukfeat.extract.shape`, the convex perimeter and area, the Feret
    diameters, the elliptic Fourier amplitudes and the geometric moments
    behind the Zernike moments, in one pass over the hull, the contour and
    the crop instead of some sixty numpy calls on arrays of a few dozen
    elements.
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["lobe_count", "region_geometry", "perimeter_counts", "snap_distances"]

_OPTS = dict(cache=True, nogil=True, error_model="numpy")


# --------------------------------------------------------------------------- #
# Shape: nucleus lobe count (used by leukfeat.extract.shape)
# --------------------------------------------------------------------------- #

@numba.njit(**_OPTS)
def lobe_count(dist, dmax, depth, levels):
    """Lobe count of a region from its distance transform ``dist`` (float32).

    For the levels ``t = dmax * j / levels`` (``j = 0, 1, ...`` while
    ``t + h <= dmax``, ``h = depth * dmax``): the number of 8-connected
    components of ``{dist > t}`` holding a pixel with
    ``dist >= t + h - 1e-6 dmax``; returns the largest such number. Both
    thresholds are rounded to float32 before comparing, as numpy does when
    a float32 array meets a Python float. One flood fill per level over a
    label image, instead of an OpenCV labelling plus a bincount per level.
    """
    ny, nx = dist.shape
    n = ny * nx
    flat = dist.ravel()
    lab = np.empty(n, np.int32)
    stack = np.empty(n, np.int64)
    h = depth * dmax
    best = 0
    for j in range(levels):
        t = dmax * j / levels
        if t + h > dmax * (1.0 + 1e-9):
            break
        t32 = np.float32(t)
        r32 = np.float32(t + h - 1e-6 * dmax)
        lab[:] = 0
        count = 0
        for p in range(n):
            if lab[p] != 0 or not flat[p] > t32:
                continue
            lab[p] = 1
            top = 0
            stack[0] = p
            reaches = False
            while top >= 0:
                q = stack[top]
                top -= 1
                if flat[q] >= r32:
                    reaches = True
                qy = q // nx
                qx = q - qy * nx
                for dy in range(-1, 2):
                    yy = qy + dy
                    if yy < 0 or yy >= ny:
                        continue
                    for dx in range(-1, 2):
                        xx = qx + dx
                        if xx < 0 or xx >= nx:
                            continue
                        r = yy * nx + xx
                        if lab[r] == 0 and flat[r] > t32:
                            lab[r] = 1
                            top += 1
                            stack[top] = r
            if reaches:
                count += 1
        if count > best:
            best = count
    return best


@numba.njit(**_OPTS)
def region_geometry(u, contour, hull, dhull, cy, cx, n_fourier, degree, scalars, efd, geo):
    """Hull, caliper, Fourier and moment sums of one region, in one call.

    ``u`` is the padded uint8 crop of the region, ``contour`` its outer
    contour, ``hull`` the convex hull of the contour and ``dhull`` the hull
    of the pixel-edge midpoints in doubled coordinates (all (m, 2) int32,
    (x, y) = (col, row)); ``(cy, cx)`` is the centroid. Fills

    * ``scalars``: length of the closed ``hull`` polygon, number of pixel
      centres inside or on ``dhull`` (even lattice points), min and max
      caliper width of ``dhull / 2`` (rotating calipers, one caliper flush
      with an edge), largest centroid-to-``hull``-vertex distance;
    * ``efd``: elliptic Fourier amplitudes 2..n_fourier+1 relative to
      harmonic 1 (NaN when undefined), Kuhl & Giardina's sums accumulated
      along the contour with ``exp(i n phi)`` by repeated multiplication;
    * ``geo[b, a] = sum over region pixels of y^b x^a``, ``y = (row - cy) /
      r`` and ``x = (col - cx) / r`` with ``r = scalars[4]``, for ``a, b <=
      degree`` (only read by the caller where ``a + b <= degree``; zero
      when ``r`` is 0).

    One call instead of some sixty numpy calls on arrays of a few dozen
    elements; ``tests/test_shape.py`` keeps the numpy form of each part
    (the former implementation) and checks the kernel against it.
    """
    # -- convex perimeter: closed polygon through the hull vertices
    nh = hull.shape[0]
    per = 0.0
    if nh >= 2:
        for i in range(nh):
            k = i + 1 if i + 1 < nh else 0
            per += math.hypot(float(hull[k, 0] - hull[i, 0]), float(hull[k, 1] - hull[i, 1]))
    scalars[0] = per
    # -- convex area: lattice points of even coordinates inside dhull, row by row
    nd = dhull.shape[0]
    ymin = dhull[0, 1]
    ymax = dhull[0, 1]
    for i in range(nd):
        ymin = min(ymin, dhull[i, 1])
        ymax = max(ymax, dhull[i, 1])
    eps = 1e-9
    area = 0.0
    y = ymin + ymin % 2
    while y <= ymax:
        lo = np.inf
        hi = -np.inf
        for i in range(nd):
            k = i + 1 if i + 1 < nd else 0
            y0 = dhull[i, 1]
            y1 = dhull[k, 1]
            if (y < y0 and y < y1) or (y > y0 and y > y1):
                continue
            x0 = float(dhull[i, 0])
            x1 = float(dhull[k, 0])
            if y0 == y1:
                lo = min(lo, x0, x1)
                hi = max(hi, x0, x1)
            else:
                x = x0 + (x1 - x0) * (float(y - y0) / float(y1 - y0))
                lo = min(lo, x)
                hi = max(hi, x)
        if hi >= lo:
            c = math.floor(hi / 2.0 + eps) - math.ceil(lo / 2.0 - eps) + 1.0
            if c > 0:
                area += c
        y += 2
    scalars[1] = area
    # -- Feret diameters of dhull / 2
    d2max = 0.0
    for i in range(nd):
        xi = dhull[i, 0] / 2.0
        yi = dhull[i, 1] / 2.0
        for k in range(nd):
            dx = xi - dhull[k, 0] / 2.0
            dy = yi - dhull[k, 1] / 2.0
            d2max = max(d2max, dx * dx + dy * dy)
    dmin = np.inf
    for e in range(nd):
        k = e + 1 if e + 1 < nd else 0
        xe = dhull[e, 0] / 2.0
        ye = dhull[e, 1] / 2.0
        ex = dhull[k, 0] / 2.0 - xe
        ey = dhull[k, 1] / 2.0 - ye
        elen = math.hypot(ex, ey)
        if not elen > 0:
            continue
        far = 0.0
        for v in range(nd):
            far = max(far, abs(ex * (dhull[v, 1] / 2.0 - ye) - ey * (dhull[v, 0] / 2.0 - xe)))
        dmin = min(dmin, far / elen)
    scalars[2] = dmin
    scalars[3] = math.sqrt(d2max)
    # -- radius of the Zernike disc
    r2 = 0.0
    for i in range(nh):
        dy = hull[i, 1] - cy
        dx = hull[i, 0] - cx
        r2 = max(r2, dy * dy + dx * dx)
    radius = math.sqrt(r2)
    scalars[4] = radius
    # -- elliptic Fourier amplitudes
    efd[:] = np.nan
    m = contour.shape[0]
    if n_fourier > 0 and m >= 2:
        nn = n_fourier + 1
        dts = np.empty(m)                                # step lengths, closed contour
        period = 0.0
        used = 0
        for p in range(m):
            k = p + 1 if p + 1 < m else 0
            dts[p] = math.hypot(float(contour[k, 0] - contour[p, 0]),
                                float(contour[k, 1] - contour[p, 1]))
            if dts[p] > 0:
                period += dts[p]
                used += 1
        if used >= 2:
            cxs = np.zeros(nn, np.complex128)
            cys = np.zeros(nn, np.complex128)
            prev = np.ones(nn, np.complex128)            # exp(i n phi) at t = 0
            cur = np.empty(nn, np.complex128)
            w = 2.0 * np.pi / period
            t = 0.0
            for p in range(m):
                k = p + 1 if p + 1 < m else 0
                dt = dts[p]
                if not dt > 0:
                    continue
                ddx = float(contour[k, 0] - contour[p, 0])
                ddy = float(contour[k, 1] - contour[p, 1])
                t += dt
                e1 = np.exp(1j * (w * t))
                cur[0] = e1
                for i in range(1, nn):
                    cur[i] = cur[i - 1] * e1
                for i in range(nn):
                    de = cur[i] - prev[i]
                    cxs[i] += de * (ddx / dt)
                    cys[i] += de * (ddy / dt)
                    prev[i] = cur[i]
            amp0 = 0.0
            for i in range(nn):
                n = i + 1.0
                const = period / (2.0 * np.pi ** 2 * n * n)
                a = const * math.sqrt(cxs[i].real ** 2 + cxs[i].imag ** 2
                                      + cys[i].real ** 2 + cys[i].imag ** 2)
                if i == 0:
                    amp0 = a
                    if not amp0 > 1e-12 * period:
                        break
                else:
                    efd[i - 1] = a / amp0
    # -- geometric moments of the scaled pixel coordinates
    geo[:] = 0.0
    if radius > 0.0:
        h, wd = u.shape
        xpow = np.empty((wd, degree + 1))
        for c in range(wd):
            x = (c - cx) / radius
            xpow[c, 0] = 1.0
            for a in range(1, degree + 1):
                xpow[c, a] = xpow[c, a - 1] * x
        rows = np.empty(degree + 1)
        for r in range(h):
            rows[:] = 0.0
            for c in range(wd):
                if u[r, c]:
                    for a in range(degree + 1):
                        rows[a] += xpow[c, a]
            yb = 1.0
            yr = (r - cy) / radius
            for b in range(degree + 1):
                for a in range(degree + 1):
                    geo[b, a] += yb * rows[a]
                yb *= yr


# --------------------------------------------------------------------------- #
# Shape: perimeter codes and distance snapping (used by leukfeat.extract.shape)
# --------------------------------------------------------------------------- #

@numba.njit(**_OPTS)
def perimeter_counts(u, counts):
    """``counts[c]`` = number of border pixels of code ``c`` (0..49) of the
    zero-padded uint8 {0, 1} crop ``u``: what ``shape._perimeter`` computed
    with OpenCV (a border pixel is a pixel of the region with a 4-neighbour
    outside it, the crop's outside counting as background; its code is the
    sum over its 3 x 3 neighbourhood of border pixels weighted 1 (itself),
    2 (4-neighbours) and 10 (diagonals), as ``filter2D`` with
    ``shape._PERIM_KERNEL``)."""
    h, w = u.shape
    border = np.zeros((h + 2, w + 2), np.uint8)
    for r in range(h):
        for c in range(w):
            if u[r, c] != 0:
                inner = (r > 0 and c > 0 and r < h - 1 and c < w - 1
                         and u[r - 1, c] != 0 and u[r + 1, c] != 0
                         and u[r, c - 1] != 0 and u[r, c + 1] != 0)
                if not inner:
                    border[r + 1, c + 1] = 1
    counts[:] = 0
    for r in range(1, h + 1):
        for c in range(1, w + 1):
            if border[r, c]:
                code = (1 + 2 * (border[r - 1, c] + border[r + 1, c]
                                 + border[r, c - 1] + border[r, c + 1])
                        + 10 * (border[r - 1, c - 1] + border[r - 1, c + 1]
                                + border[r + 1, c - 1] + border[r + 1, c + 1]))
                counts[code] += 1


@numba.njit(**_OPTS)
def snap_distances(dist):
    """Replace each float32 distance ``d`` by the float32 of
    ``sqrt(rint(float64(d) ** 2))`` in place (``shape._lobe_count``) and
    return the largest (0.0 for an empty array)."""
    flat = dist.ravel()
    dmax = np.float32(0.0)
    for i in range(flat.size):
        d = np.float64(flat[i])
        v = np.float32(np.sqrt(np.rint(d * d)))
        flat[i] = v
        if i == 0 or v > dmax:
            dmax = v
    return np.float64(dmax)
