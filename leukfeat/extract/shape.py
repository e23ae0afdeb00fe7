"""Shape (morphometric) features of the cell and of its nucleus.

All features are computed from boolean masks only. Each compartment (cell,
nucleus) is described by the same set of size, boundary, convexity, moment,
Fourier and Zernike features; the nucleus additionally gets a lobe count and
the cell-level nucleus/cytoplasm ratios are appended.

Feature names follow the pyradiomics-like pattern
``{prefix}_{compartment}_{feature}[_{index}]``, e.g. ``shape_cell_area``,
``shape_nucleus_hu_3``, ``shape_cell_zernike_12``, ``shape_nc_ratio``.

Conventions shared by every feature (see :func:`shape_features`):

* lengths are in pixels, areas in pixels²;
* when a mask has several 8-connected components, the largest one is
  described (ties: the first in raster order); the lobe count and the
  nucleus/cytoplasm ratios use the whole masks;
* an empty mask gives NaN for every feature of that compartment; features
  that are undefined for tiny regions (a zero perimeter, a zero radius,
  a degenerate inertia tensor, ...) are NaN, never ``inf``;
* all work is done on the bounding-box crop of the region (1 px margin).
"""

from __future__ import annotations

import functools
import math
from numbers import Real
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from .._numba import companion
from .._validation import check_int, check_mask

if TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import ArrayLike

__all__ = ["shape_features", "shape_feature_names"]

_BASE_NAMES = (
    "area", "perimeter", "equivalent_diameter", "circularity", "eccentricity",
    "solidity", "extent", "convexity", "major_axis_length", "minor_axis_length",
    "min_feret", "max_feret",
)

# Benkrid & Crookes perimeter weights, identical to skimage.measure.perimeter
# (neighborhood=4): the code of a border pixel is 1 (itself) + 2 per border
# 4-neighbour + 10 per border diagonal neighbour.
_PERIM_WEIGHTS = np.zeros(50, dtype=np.float64)
_PERIM_WEIGHTS[[5, 7, 15, 17, 25, 27]] = 1.0
_PERIM_WEIGHTS[[21, 33]] = math.sqrt(2.0)
_PERIM_WEIGHTS[[13, 23]] = (1.0 + math.sqrt(2.0)) / 2.0
_PERIM_KERNEL = np.array([[10, 2, 10], [2, 1, 2], [10, 2, 10]], dtype=np.float32)
_CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
# Pixel-edge midpoints ("diamond") in doubled integer coordinates, as used by
# skimage.morphology.convex_hull_image(offset_coordinates=True).
_DIAMOND2 = np.array([[1, 0], [-1, 0], [0, 1], [0, -1]], dtype=np.int32)


_kernels = companion("leukfeat.extract._shape_kernels")


def _warm() -> None:
    """Call every shape kernel once (see :func:`leukfeat._numba.warm_kernels`)."""
    k = _kernels()
    k.lobe_count(np.ones((2, 2), np.float32), 1.0, 0.25, 10)
    k.perimeter_counts(np.ones((3, 3), np.uint8), np.empty(50, np.int64))
    k.snap_distances(np.ones((2, 2), np.float32))
    sq = np.array([[0, 0], [0, 1], [1, 1], [1, 0]], np.int32)
    k.region_geometry(np.ones((2, 2), np.uint8), sq, sq, 2 * sq, 0.5, 0.5, 10, 8,
                      np.empty(5), np.empty(10), np.empty((9, 9)))


# --------------------------------------------------------------------------
# argument checks and names
# --------------------------------------------------------------------------


def _check_params(n_fourier: int, zernike_degree: int, lobe_depth: float, prefix: str
                  ) -> tuple[int, int, float, str]:
    n_fourier = check_int(n_fourier, "n_fourier", 0)
    zernike_degree = check_int(zernike_degree, "zernike_degree", 0)
    if (isinstance(lobe_depth, bool) or not isinstance(lobe_depth, Real)
            or not 0.0 < float(lobe_depth) < 1.0):
        raise ValueError(f"lobe_depth: expected a number in (0, 1), got {lobe_depth!r}")
    if not isinstance(prefix, str) or not prefix:
        raise ValueError(f"prefix: expected a non-empty string, got {prefix!r}")
    return n_fourier, zernike_degree, float(lobe_depth), prefix


def _zernike_indices(degree: int) -> list[tuple[int, int]]:
    """(n, m) pairs in mahotas' order: n = 0..degree, m = 0..n, n - m even."""
    return [(n, m) for n in range(degree + 1) for m in range(n + 1) if (n - m) % 2 == 0]


@functools.lru_cache(maxsize=8)
def _n_zernike(degree: int) -> int:
    """``len(_zernike_indices(degree))``."""
    return len(_zernike_indices(degree))


#: (p, q, OpenCV key) of the normalised central moments nu[p, q], p + q in 2..3
_NU_KEYS = tuple((p, q, f"nu{q}{p}") for p in range(4) for q in range(4 - p) if p + q >= 2)


def _region_names(n_fourier: int, zernike_degree: int) -> list[str]:
    names = list(_BASE_NAMES)
    names += [f"hu_{i}" for i in range(1, 8)]
    names += [f"fourier_{i}" for i in range(1, n_fourier + 1)]
    names += [f"zernike_{i}" for i in range(len(_zernike_indices(zernike_degree)))]
    return names


def shape_feature_names(nucleus: bool = True, *, n_fourier: int = 10, zernike_degree: int = 8,
                        prefix: str = "shape") -> list[str]:
    """Names of the features returned by :func:`shape_features`, in order.

    Parameters
    ----------
    nucleus : bool, default True
        Whether a nucleus mask is given (adds the ``{prefix}_nucleus_*``
        features, ``{prefix}_nucleus_lobe_count``, ``{prefix}_nc_ratio`` and
        ``{prefix}_nucleus_fraction``).
    n_fourier : int, default 10
        Number of Fourier descriptors per compartment.
    zernike_degree : int, default 8
        Maximum Zernike degree; ``sum(n // 2 + 1 for n in range(degree + 1))``
        moments per compartment (25 for degree 8).
    prefix : str, default "shape"
        Group prefix of every name.

    Returns
    -------
    list of str
        ``54 + 55 + 2 = 111`` names with the defaults (54 without nucleus).

    Examples
    --------
    >>> shape_feature_names(nucleus=False)[:3]
    ['shape_cell_area', 'shape_cell_perimeter', 'shape_cell_equivalent_diameter']
    """
    n_fourier, zernike_degree, _, prefix = _check_params(n_fourier, zernike_degree, 0.5, prefix)
    return list(_names(bool(nucleus), n_fourier, zernike_degree, prefix))


@functools.lru_cache(maxsize=32)
def _names(nucleus: bool, n_fourier: int, zernike_degree: int, prefix: str) -> tuple[str, ...]:
    base = _region_names(n_fourier, zernike_degree)
    names = [f"{prefix}_cell_{b}" for b in base]
    if nucleus:
        names += [f"{prefix}_nucleus_{b}" for b in base]
        names += [f"{prefix}_nucleus_lobe_count", f"{prefix}_nc_ratio",
                  f"{prefix}_nucleus_fraction"]
    return tuple(names)


# --------------------------------------------------------------------------
# helpers (all operate on small cropped uint8 {0, 1} arrays)
# --------------------------------------------------------------------------

def _bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """Bounding box ``(r0, r1, c0, c1)`` (exclusive ends) or None if empty."""
    x, y, w, h = cv2.boundingRect(np.ascontiguousarray(mask).view(np.uint8))
    if w == 0:
        return None
    return y, y + h, x, x + w


def _crop_pad(mask: np.ndarray, box: tuple[int, int, int, int], pad: int = 1) -> np.ndarray:
    r0, r1, c0, c1 = box
    out = np.zeros((r1 - r0 + 2 * pad, c1 - c0 + 2 * pad), dtype=np.uint8)
    out[pad:pad + r1 - r0, pad:pad + c1 - c0] = mask[r0:r1, c0:c1]
    return out


def _largest_component(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Largest 8-connected component of a padded uint8 crop and its contour.

    Returns the (re-cropped, padded) component and its outer contour as an
    (m, 2) array of (x, y) = (col, row) pixel centres (8-connected, every
    boundary pixel). With ``RETR_CCOMP`` every component, including those
    lying in holes of others, has one top-level contour, so labelling is
    only needed when there are several components.
    """
    contours, hierarchy = cv2.findContours(u, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
    outer: Sequence[Any] = [c for c, h in zip(contours, hierarchy[0]) if h[3] < 0]
    if len(outer) > 1:
        n, labels, stats, _ = cv2.connectedComponentsWithStats(u, connectivity=8)
        k = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        x, y, w, h = (int(v) for v in stats[k, :4])
        u = _crop_pad(labels == k, (y, y + h, x, x + w))
        contours, _ = cv2.findContours(u, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        outer = contours
    return u, max(outer, key=len).reshape(-1, 2)


def _perimeter(u: np.ndarray) -> float:
    """skimage.measure.perimeter(neighborhood=4) of a zero-padded crop."""
    # the codes of the border pixels (erosion by _CROSS, filter2D with
    # _PERIM_KERNEL) counted in one compiled pass
    counts = np.empty(50, np.int64)
    _kernels().perimeter_counts(u, counts)
    return float(counts @ _PERIM_WEIGHTS)


def _hu(nu: np.ndarray) -> np.ndarray:
    """Hu invariants from normalised central moments ``nu[p, q]``
    (p along rows, q along columns), same formulas as skimage."""
    n20, n02, n11 = nu[2, 0], nu[0, 2], nu[1, 1]
    n30, n03, n21, n12 = nu[3, 0], nu[0, 3], nu[2, 1], nu[1, 2]
    t0, t1 = n30 + n12, n21 + n03
    q0, q1 = t0 * t0, t1 * t1
    return np.array([
        n20 + n02,
        (n20 - n02) ** 2 + 4 * n11 ** 2,
        (n30 - 3 * n12) ** 2 + (3 * n21 - n03) ** 2,
        q0 + q1,
        (n30 - 3 * n12) * t0 * (q0 - 3 * q1) + (3 * n21 - n03) * t1 * (3 * q0 - q1),
        (n20 - n02) * (q0 - q1) + 4 * n11 * t0 * t1,
        (3 * n21 - n03) * t0 * (q0 - 3 * q1) - (n30 - 3 * n12) * t1 * (3 * q0 - q1),
    ])


@functools.lru_cache(maxsize=8)
def _zernike_matrix(degree: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Linear map from geometric moments to complex Zernike moments.

    ``Z = L @ G`` where ``G[t] = sum_p x_p^a y_p^b`` for the exponent pairs
    ``(a_exp[t], b_exp[t])`` (all a + b <= degree), with
    ``(x, y)`` the pixel coordinates scaled to the unit disc. It expands
    ``rho^(m + 2j) exp(-i m theta) = z^j conj(z)^(j + m)``, ``z = x + iy``,
    binomially; coefficients include the ``(n + 1) / pi`` normalisation.
    """
    pairs = [(a, b) for a in range(degree + 1) for b in range(degree + 1 - a)]
    col = {ab: t for t, ab in enumerate(pairs)}
    idx = _zernike_indices(degree)
    mat = np.zeros((len(idx), len(pairs)), dtype=np.complex128)
    for row, (n, m) in enumerate(idx):
        for s in range((n - m) // 2 + 1):
            coef = ((-1) ** s * math.factorial(n - s)
                    / (math.factorial(s) * math.factorial((n + m) // 2 - s)
                       * math.factorial((n - m) // 2 - s))) * (n + 1) / math.pi
            p = (n - 2 * s - m) // 2              # z^p conj(z)^q
            q = p + m
            for a in range(p + 1):                # z^p = sum C(p,a) x^a (iy)^(p-a)
                for b in range(q + 1):            # conj(z)^q = sum C(q,b) x^b (-iy)^(q-b)
                    w = (math.comb(p, a) * math.comb(q, b)
                         * (1j ** (p - a)) * ((-1j) ** (q - b)))
                    mat[row, col[(a + b, p + q - a - b)]] += coef * w
    a_exp = np.array([a for a, _ in pairs], dtype=np.intp)
    b_exp = np.array([b for _, b in pairs], dtype=np.intp)
    mat.setflags(write=False)
    return mat, a_exp, b_exp


def _lobe_count(u: np.ndarray, depth: float, levels: int = 10) -> float:
    """Number of lobes of a (possibly fragmented) region, see shape_features.

    The levels are counted by :func:`._shape_kernels.lobe_count` (the test suite
    checks it against the same definition written with OpenCV labelling).
    """
    dist = cv2.distanceTransform(u, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    # The exact Euclidean distances are square roots of integers, but OpenCV's
    # float32 result can differ in its last bit between calls on the same mask,
    # and the lobe levels are fractions of the maximum: snap every distance to
    # the float32 of sqrt(its integer square), so the count is deterministic.
    dmax = float(_kernels().snap_distances(dist))    # in place, in one pass
    if not dmax > 0:
        return np.nan
    return float(_kernels().lobe_count(dist, dmax, float(depth), int(levels)))


def _region_features(mask: np.ndarray, n_fourier: int, zernike_degree: int) -> np.ndarray:
    """Feature vector (ordered like ``_region_names``) of one compartment."""
    out = np.full(12 + 7 + n_fourier + _n_zernike(zernike_degree), np.nan)
    box = _bbox(mask)
    if box is None:
        return out
    u, contour = _largest_component(_crop_pad(mask, box))

    m = cv2.moments(u, binaryImage=True)
    area = m["m00"]
    cy, cx = m["m01"] / area, m["m10"] / area
    perim = _perimeter(u)

    hull = cv2.convexHull(contour).reshape(-1, 2)
    diamond = (2 * hull[:, None, :] + _DIAMOND2[None]).reshape(-1, 2).astype(np.int32)
    dhull = cv2.convexHull(diamond).reshape(-1, 2)
    mat, a_exp, b_exp = _zernike_matrix(zernike_degree)
    scalars = np.empty(5)
    efd = np.empty(n_fourier)
    geo = np.empty((zernike_degree + 1, zernike_degree + 1))
    _kernels().region_geometry(u, contour, hull, dhull, cy, cx, n_fourier, zernike_degree,
                               scalars, efd, geo)
    convex_perim, convex_area, min_feret, max_feret, radius = scalars.tolist()

    # inertia tensor of the region (rows, cols), as skimage.measure.regionprops
    c_rr, c_cc, c_rc = m["mu02"] / area, m["mu20"] / area, m["mu11"] / area
    half_tr = 0.5 * (c_rr + c_cc)
    disc = math.sqrt(max(0.25 * (c_rr - c_cc) ** 2 + c_rc ** 2, 0.0))
    l1, l2 = max(half_tr + disc, 0.0), max(half_tr - disc, 0.0)
    ecc = math.sqrt(max(1.0 - l2 / l1, 0.0)) if l1 > 0 else np.nan

    nu = np.zeros((4, 4))
    for p, q, key in _NU_KEYS:
        nu[p, q] = m[key]                     # OpenCV: x = column (q), y = row (p)

    bbox_area = float((u.shape[0] - 2) * (u.shape[1] - 2))   # u is padded by 1

    def ratio(a: float, b: float) -> float:
        return a / b if b > 0 else np.nan

    base = [
        area,
        perim,
        math.sqrt(4.0 * area / math.pi),
        ratio(4.0 * math.pi * area, perim * perim),
        ecc,
        ratio(area, convex_area),
        area / bbox_area,
        ratio(convex_perim, perim),
        4.0 * math.sqrt(l1),
        4.0 * math.sqrt(l2),
        min_feret,
        max_feret,
    ]
    k = len(base)
    out[:k] = base
    out[k:k + 7] = _hu(nu)
    k += 7
    out[k:k + n_fourier] = efd
    if radius > 0.0:
        # |Z_nm| from the geometric moments (mahotas' values, see _zernike_matrix)
        out[k + n_fourier:] = np.abs(mat @ geo[b_exp, a_exp]) / geo[0, 0]
    return out


# --------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------

def shape_features(cell_mask: ArrayLike, nucleus_mask: ArrayLike | None = None, *,
                   n_fourier: int = 10, zernike_degree: int = 8,
                   lobe_depth: float = 0.25, prefix: str = "shape") -> dict[str, float]:
    r"""Morphometric features of a cell and (optionally) of its nucleus.

    Parameters
    ----------
    cell_mask : (H, W) array_like of bool
        Mask of the whole cell.
    nucleus_mask : (H, W) array_like of bool, optional
        Mask of the nucleus. It is intersected with `cell_mask`. When omitted
        only the ``{prefix}_cell_*`` features are returned.
    n_fourier : int, default 10
        Number of elliptic Fourier descriptors per compartment.
    zernike_degree : int, default 8
        Maximum degree of the Zernike moments (25 moments for degree 8).
    lobe_depth : float in (0, 1), default 0.25
        Minimum depth of the distance-transform valley separating two lobes,
        as a fraction of the largest inscribed radius (see ``lobe_count``).
    prefix : str, default "shape"
        Group prefix of the feature names.

    Returns
    -------
    dict of str to float
        Ordered as :func:`shape_feature_names`. Per compartment
        (``{prefix}_cell_*`` then ``{prefix}_nucleus_*``):

        ``area``
            :math:`A`, number of pixels.
        ``perimeter``
            :math:`P`, the Benkrid & Crookes estimate on the
            4-connected border pixels, identical to
            ``skimage.measure.perimeter(mask, 4)`` and to regionprops'
            ``perimeter`` (includes the borders of holes).
        ``equivalent_diameter``
            :math:`\sqrt{4A/\pi}`.
        ``circularity``
            :math:`4\pi A / P^2` (NaN if :math:`P = 0`). This
            perimeter estimator is about 5 % long on the staircase border of a
            digital disc, so discs give 0.90-0.95 for radii of 15-60 px
            (0.90-1.0 below 10 px, depending on the sub-pixel centre); a
            square gives about :math:`\pi/4`. Thin regions of a few pixels
            can exceed 1 (the estimator is short there).
        ``eccentricity``
            :math:`\sqrt{1 - \lambda_2/\lambda_1}` with
            :math:`\lambda_1 \ge \lambda_2` the eigenvalues of the covariance
            of the pixel coordinates (regionprops' inertia tensor); NaN when
            :math:`\lambda_1 = 0` (a single pixel).
        ``solidity``
            :math:`A / A_{hull}`, :math:`A_{hull}` being the
            number of pixel centres in the convex hull of the pixel-edge
            midpoints (``skimage.morphology.convex_hull_image``), as regionprops.
        ``extent``
            :math:`A` / bounding-box area.
        ``convexity``
            :math:`P_{hull} / P` with :math:`P_{hull}` the length
            of the convex hull polygon of the boundary pixel centres (the path
            the perimeter estimator measures, so a digital square gives
            exactly 1; discs about 0.95). NaN if :math:`P = 0`.
        ``major_axis_length``, ``minor_axis_length``
            :math:`4\sqrt{\lambda_1}`, :math:`4\sqrt{\lambda_2}` (regionprops).
        ``min_feret``, ``max_feret``
            smallest and largest caliper width of
            the convex hull of the pixel-edge midpoints (rotating calipers).
            ``max_feret`` agrees with regionprops' ``feret_diameter_max``
            within one pixel; a ``n x n`` square gives ``n`` and
            :math:`\sqrt{n^2 + (n-1)^2}`.
        ``hu_1`` .. ``hu_7``
            the raw (not log-scaled) Hu invariants of the
            binary region, equal to ``skimage.measure.moments_hu`` (Hu 1962).
            ``hu_7`` changes sign under reflection. They span many orders of
            magnitude; consider ``-sign(h) log10|h|`` before linear models.
        ``fourier_1`` .. ``fourier_N``
            elliptic Fourier descriptors (Kuhl &
            Giardina 1982) of the outer contour (8-connected boundary pixel
            centres, piecewise linear, no resampling):
            :math:`F_k = \|C_{k+1}\|_F / \|C_1\|_F` where
            :math:`C_n = [[a_n, b_n], [c_n, d_n]]` are the harmonic
            coefficients. The DC term is dropped (translation), rotation and
            start-point changes multiply :math:`C_n` by orthogonal matrices
            (Frobenius norm unchanged) and dividing by harmonic 1 removes
            scale. Equivalently :math:`F_k \propto \sqrt{|Z_{k+1}|^2 +
            |Z_{-(k+1)}|^2}` of the complex contour :math:`x + iy`; also
            invariant to reflection and tracing direction.
        ``zernike_0`` .. ``zernike_K``
            :math:`|Z_{nm}|` for
            :math:`0 \le m \le n \le` `zernike_degree`, :math:`n - m` even,
            in mahotas' order, equal (to ~1e-12 up to degree 16) to
            ``mahotas.features.zernike_moments(mask, radius, degree)`` with the
            disc centred on the centroid and ``radius`` the largest
            centroid-to-pixel distance (Teague 1980):
            :math:`Z_{nm} = \frac{n+1}{\pi} \frac{1}{A}\sum_p R_{nm}(\rho_p)
            e^{-im\theta_p}`. ``zernike_0`` is always :math:`1/\pi` and
            ``zernike_1`` (:math:`|Z_{11}|`) about 0, since the disc is centred on the
            centroid. NaN for a single pixel.

        Nucleus only: ``{prefix}_nucleus_lobe_count``, the number of regional
        maxima of the Euclidean distance transform :math:`D` of the whole
        nucleus mask (all components) whose dynamic is at least
        ``h = lobe_depth * max(D)``, approximated on the levels
        :math:`t = j \max(D) / 10`: the maximum over :math:`t \le \max(D) - h`
        of the number of 8-connected components of :math:`\{D > t\}` that
        reach :math:`D \ge t + h`. A convex region always has one lobe; two
        overlapping discs of radius *r* count as two when their centres are
        at least about :math:`1.6 r` apart (neck narrower than about 60 % of
        the disc diameter) and as one when they are 1.5 r apart or closer;
        fragments thinner than ``h`` are ignored.

        Cell level: ``{prefix}_nc_ratio`` = nucleus area / cytoplasm area
        (NaN if the cytoplasm is empty) and ``{prefix}_nucleus_fraction`` =
        nucleus area / cell area, using all pixels of the masks (not only the
        largest component).

    Raises
    ------
    ValueError
        If a mask is not 2-D, the masks' shapes differ or a parameter is out
        of range.

    Notes
    -----
    Only the largest 8-connected component of each mask is described (ties:
    first in raster order); the lobe count and ratios use the whole masks.
    An empty mask gives NaN for all its features. A one-pixel region gives
    ``area=1``, ``perimeter=0`` (and NaN circularity/convexity), NaN
    eccentricity, Fourier and Zernike features; no feature is ever infinite.

    References
    ----------
    .. [1] K. Benkrid, D. Crookes, "Design and FPGA implementation of a
       perimeter estimator", Queen's University of Belfast, 2000.
    .. [2] M.-K. Hu, "Visual pattern recognition by moment invariants",
       IRE Trans. Inf. Theory 8(2), 1962.
    .. [3] F. P. Kuhl, C. R. Giardina, "Elliptic Fourier features of a closed
       contour", Comput. Graph. Image Process. 18, 1982.
    .. [4] M. R. Teague, "Image analysis via the general theory of moments",
       J. Opt. Soc. Am. 70(8), 1980.
    .. [5] G. T. Toussaint, "Solving geometric problems with the rotating
       calipers", Proc. IEEE MELECON, 1983.

    Examples
    --------
    >>> import numpy as np
    >>> yy, xx = np.mgrid[:64, :64]
    >>> cell = (yy - 32) ** 2 + (xx - 32) ** 2 <= 20 ** 2
    >>> nucleus = (yy - 32) ** 2 + (xx - 32) ** 2 <= 10 ** 2
    >>> f = shape_features(cell, nucleus)
    >>> f["shape_cell_area"], f["shape_nucleus_lobe_count"]
    (1257.0, 1.0)
    """
    n_fourier, zernike_degree, lobe_depth, prefix = _check_params(
        n_fourier, zernike_degree, lobe_depth, prefix)
    cell = np.asarray(cell_mask)
    if cell.ndim != 2 or cell.size == 0:
        raise ValueError(f"cell_mask: expected a non-empty 2-D mask, got shape {cell.shape}")
    cell = check_mask(cell, cell.shape, "cell_mask")
    nucleus = None
    if nucleus_mask is not None:
        nucleus = check_mask(nucleus_mask, cell.shape, "nucleus_mask")

    names = _names(nucleus is not None, n_fourier, zernike_degree, prefix)
    values = _shape_values(cell, nucleus, n_fourier, zernike_degree, lobe_depth)
    if values is None:
        return dict.fromkeys(names, np.nan)
    return dict(zip(names, values.tolist()))


def _shape_values(cell: np.ndarray, nucleus: np.ndarray | None, n_fourier: int,
                  zernike_degree: int, lobe_depth: float) -> np.ndarray | None:
    """The values of :func:`shape_features` as a float64 array in the order
    of its names, or None for an empty ``cell``: checked arguments (bool
    masks of one shape, parameters as ``_check_params`` returns them); what
    per-cell extraction calls."""
    box = _bbox(cell)
    if box is None:
        return None
    r0, r1, c0, c1 = box
    cell_c = cell[r0:r1, c0:c1]
    values: list[Any] = [_region_features(cell_c, n_fourier, zernike_degree)]
    if nucleus is not None:
        nuc_c = nucleus[r0:r1, c0:c1] & cell_c
        nuc_vals = _region_features(nuc_c, n_fourier, zernike_degree)
        n_cell = float(np.count_nonzero(cell_c))
        n_nuc = float(np.count_nonzero(nuc_c))
        n_cyto = n_cell - n_nuc
        nb = _bbox(nuc_c)
        lobes = np.nan if nb is None else _lobe_count(_crop_pad(nuc_c, nb), lobe_depth)
        values += [nuc_vals, [lobes, n_nuc / n_cyto if n_cyto > 0 else np.nan, n_nuc / n_cell]]
    return np.concatenate([np.asarray(v, dtype=np.float64) for v in values])
