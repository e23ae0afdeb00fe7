r"""Texture features: grey-level co-occurrence (Haralick) and local binary patterns.

Grey-level co-occurrence matrices (GLCM)
----------------------------------------
For a displacement :math:`\delta = d\,(\Delta y, \Delta x)` the co-occurrence
count of grey levels :math:`(i, j)` is

.. math::

    C_\delta(i, j) = \#\{p : f(p) = i,\ f(p + \delta) = j,\
                     p \in M,\ p + \delta \in M\}

where :math:`M` is the mask (the whole image when no mask is given): a pair
counts only when **both** pixels lie inside the mask and inside the image.
The symmetric matrix is :math:`S = C + C^T` (so diagonal counts are doubled,
exactly as in mahotas and scikit-image) and the normalised matrix is
:math:`p(i, j) = S(i, j) / \sum S`.

The four directions follow **mahotas' convention and order**; rows grow
downwards, so the angles are measured clockwise on screen:

=====  =======  ===============  ==================  ==================
index  degrees  offset (dy, dx)  direction           scikit-image angle
=====  =======  ===============  ==================  ==================
0      0        (0, d)           right               0
1      45       (d, d)           down-right (NW-SE)  pi/4
2      90       (d, 0)           down                pi/2
3      135      (d, -d)          down-left (NE-SW)   3 pi/4
=====  =======  ===============  ==================  ==================

The non-symmetric matrix counts ``(f(p), f(p + offset))`` pairs like
:func:`skimage.feature.graycomatrix`. Note that scikit-image rounds the
diagonal offsets to ``round(d * sqrt(2) / 2)`` pixels, while mahotas and this
module use ``(d, d)``: the two agree on diagonals only for ``d = 1``.

Grey levels (quantisation)
--------------------------
``levels=None`` (default of :func:`haralick`) uses the integer values as they
are, like mahotas. ``levels=n`` quantises first:

* ``quantization="fixed"``: :math:`q = \lfloor v\,n / 256 \rfloor` for
  values in ``[0, 255]`` (``levels=256`` keeps ``uint8`` values unchanged);
* ``quantization="minmax"``: per region of interest, with :math:`lo, hi` the
  minimum and maximum inside the mask,
  :math:`q = \lfloor (v - lo)\,n / (hi - lo + 1) \rfloor` (equal-width bins
  over the integer range actually present; a constant region maps to 0).

Haralick features
-----------------
With :math:`p_x(i) = \sum_j p(i, j)` (equal to :math:`p_y` since the matrix
is symmetric), :math:`\mu = \sum_i i\,p_x(i)`,
:math:`\sigma^2 = \sum_i (i - \mu)^2 p_x(i)`,
:math:`p_{x+y}(k) = \sum_{i+j=k} p(i, j)`,
:math:`p_{x-y}(k) = \sum_{|i-j|=k} p(i, j)`,
:math:`H(q) = -\sum q \log_2 q` (base-2 logarithms, zeros skipped),
:math:`HX = H(p_x)`, :math:`HXY = H(p)`, the 14 features of Haralick,
Shanmugam & Dinstein (1973) [1]_ are, in mahotas' order:

==  ===============================  =============================================
 #  name                             definition
==  ===============================  =============================================
 1  ``asm``                          :math:`\sum_{ij} p(i,j)^2`
 2  ``contrast``                     :math:`\sum_k k^2 p_{x-y}(k)`
 3  ``correlation``                  :math:`(\sum_{ij} ij\,p(i,j) - \mu^2)/\sigma^2`
 4  ``sum_of_squares_variance``      :math:`\sigma^2`
 5  ``inverse_difference_moment``    :math:`\sum_{ij} p(i,j) / (1 + (i-j)^2)`
 6  ``sum_average``                  :math:`\mu_s = \sum_k k\,p_{x+y}(k)`
 7  ``sum_variance``                 :math:`\sum_k (k - \mu_s)^2 p_{x+y}(k)`
 8  ``sum_entropy``                  :math:`H(p_{x+y})`
 9  ``entropy``                      :math:`HXY = H(p)`
10  ``difference_variance``          variance of the *vector*
                                     :math:`p_{x-y}(0..G-1)`, see below
11  ``difference_entropy``           :math:`H(p_{x-y})`
12  ``info_measure_correlation_1``   :math:`(HXY - HXY1) / \max(HX, HY)`
13  ``info_measure_correlation_2``   :math:`\sqrt{1 - e^{-2 (HXY2 - HXY)}}`
14  ``max_correlation_coefficient``  square root of the second largest
                                     eigenvalue of the correlation matrix of the
                                     rows of :math:`p` (occupied levels only)
==  ===============================  =============================================

with :math:`HXY1 = -\sum_{ij} p(i,j) \log_2(p_x(i) p_y(j))` and
:math:`HXY2 = -\sum_{ij} p_x(i) p_y(j) \log_2(p_x(i) p_y(j))`; for a
symmetric matrix both equal :math:`HX + HY = 2\,HX`, which is how they are
computed here.

Equivalence with mahotas
------------------------
:func:`haralick` reproduces :func:`mahotas.features.haralick` (default
arguments: ``preserve_haralick_bug=False``, ``use_x_minus_y_variance=False``)
to floating point rounding, including its conventions:

* entropies use :math:`\log_2`, but feature 13 uses the natural ``exp``;
* feature 10 is ``numpy.var`` of the vector :math:`p_{x-y}` of length
  :math:`G = \max(f) + 1` (the size of mahotas' matrix, i.e. the largest grey
  level present in the region plus one), **not** the variance of
  :math:`|i - j|`;
* feature 7 is the true sum variance (not Haralick's typo using the sum
  entropy);
* feature 14 (``return_14=True``) is mahotas' variant: eigenvalues of
  ``numpy.corrcoef`` of the rows of :math:`p` restricted to occupied levels,
  and 0 when fewer than three levels are occupied.

With a mask, the result equals mahotas on the image with every pixel outside
the mask set to 0 and ``ignore_zeros=True``, provided the inside of the mask
contains no zeros (mahotas cannot tell a 0 inside the mask from the
background).

Undefined values (NaN policy)
-----------------------------
Nothing here raises for degenerate regions and nothing returns ``inf``:

* no valid pair in a direction (empty mask, one-pixel mask, a mask one pixel
  thin across that direction): every feature of that direction is NaN
  (mahotas raises ``ValueError``);
* a single grey level in the pairs of a direction (constant region):
  ``correlation``, ``info_measure_correlation_1`` and
  ``max_correlation_coefficient`` are NaN (0/0); mahotas returns 1, 0 and 0.
  All other features are defined (e.g. ``asm = 1``, ``entropy = 0``);
* ``max_correlation_coefficient`` is the square root of an eigenvalue that
  is mathematically non-negative; a rounding-negative value gives 0 (mahotas:
  NaN).

Local binary patterns
---------------------
:func:`lbp_histogram` returns the normalised histogram of the codes of
:func:`skimage.feature.local_binary_pattern` with :math:`P = 8r` sampling
points at radius :math:`r`, over the pixels inside the mask [2]_. The codes
are computed by a compiled kernel that reproduces scikit-image bit for bit:
the same sampling offsets (``-r sin(2 pi p / P)``, ``r cos(2 pi p / P)``
rounded to 5 decimals), the same bilinear interpolation expression evaluated
in the same order at the same absolute pixel positions (scikit-image's float
rounding, hence some codes, depend on them), zero outside the image, a sample
counting as 1 when it is ``>=`` the centre, and scikit-image's ``uniform``
mapping (the number of ones when there are at most two transitions between
consecutive samples, not counting the wrap-around, else :math:`P + 1`).
Only the pixels of the mask's bounding box are coded, but their neighbours
are taken from the whole image.

Implementation
--------------
The GLCM statistics come from compiled (numba) kernels, compiled on first use
and cached on disk (``leukfeat/extract/_texture_kernels.py``). One pass over the
image counts the four directions at once: for each row the table cells of
the unordered pairs ``(min(a, b), max(a, b))`` are computed (a vectorised
loop), then counted into one 256 x 256 int32 table per direction; a mask
sends the pairs it excludes to unused cells instead of branching. A second
pass reads only the levels present, ``[min, max]`` of the region, and
derives every feature from the triangular count matrix :math:`U` without
forming :math:`S`: :math:`p_x` from its row and column sums, :math:`p_{x-y}`
and :math:`p_{x+y}` from its diagonal and anti-diagonal sums,
:math:`\sum S^2 = 2 \sum U^2 + 2 \sum_i U_{ii}^2`,
:math:`\sum S \log_2 S = 2 \sum U \log_2 U + 2 \sum_i U_{ii}` (with a
lookup table of :math:`c \log_2 c` for the integer counts), the entropies
as :math:`\log_2 N - \sum c \log_2 c / N` over integer counts :math:`c`, and
correlation from :math:`\sum_{ij} ij\,p = \sigma^2 + \mu^2 - \mathrm{contrast}/2`.
Sums may be evaluated in another order than mahotas: results agree to about
``1e-12`` relative. Counting the pixel pairs dominates the run time (about
70% at 450x450 pixels). Images with more than 256 grey levels in the region
go through an equivalent numpy path over the occupied levels.

References
----------
.. [1] R. M. Haralick, K. Shanmugam and I. Dinstein, "Textural features for
   image classification", IEEE Transactions on Systems, Man, and Cybernetics
   SMC-3(6):610-621, 1973.
.. [2] T. Ojala, M. Pietikainen and T. Maenpaa, "Multiresolution gray-scale
   and rotation invariant texture classification with local binary
   patterns", IEEE TPAMI 24(7):971-987, 2002.
"""

from __future__ import annotations

import functools
import math
import threading
import warnings
from collections.abc import Sequence
from numbers import Integral
from typing import TYPE_CHECKING, Any, Literal, overload

import cv2
import numpy as np

from .._numba import companion
from .._validation import as_uint8_rgb, check_image, check_int, check_mask

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = [
    "HARALICK_NAMES",
    "GLCM_ANGLES",
    "GLCM_PROPS",
    "haralick",
    "glcm",
    "glcm_props",
    "lbp_histogram",
    "lbp_feature_names",
    "texture_features",
    "texture_feature_names",
]

#: Stable names of the 14 Haralick features, in mahotas' order.
HARALICK_NAMES: tuple[str, ...] = (
    "asm",
    "contrast",
    "correlation",
    "sum_of_squares_variance",
    "inverse_difference_moment",
    "sum_average",
    "sum_variance",
    "sum_entropy",
    "entropy",
    "difference_variance",
    "difference_entropy",
    "info_measure_correlation_1",
    "info_measure_correlation_2",
    "max_correlation_coefficient",
)

#: The four GLCM directions in degrees, in mahotas' order.
GLCM_ANGLES: tuple[int, ...] = (0, 45, 90, 135)

#: Properties returned by :func:`glcm_props` (scikit-image's set, snake_case).
GLCM_PROPS: tuple[str, ...] = (
    "contrast", "dissimilarity", "homogeneity", "asm", "energy", "correlation",
    "mean", "variance", "std", "entropy",
)

# unit offsets (dy, dx) of the four directions, mahotas' `_2d_deltas`
_OFFSETS = {0: (0, 1), 45: (1, 1), 90: (1, 0), 135: (1, -1)}

_LBP_METHODS = {"uniform": "u", "nri_uniform": "n", "default": "d", "ror": "r"}

# largest grey-level range handled without quantisation (sum/difference
# histograms are dense over the range); 16-bit images fit
_MAX_SPAN = 1 << 20
# largest matrix size glcm() builds for levels=None
_MAX_GLCM_LEVELS = 4096
# largest image the compiled GLCM kernel takes (int32 counts, int64 sums of
# squared counts); larger ones go through numpy
_MAX_KERNEL_PIXELS = 1 << 30


# --------------------------------------------------------------------------- #
# argument checking and quantisation
# --------------------------------------------------------------------------- #

def _check_int_image(image: ArrayLike, name: str = "image") -> np.ndarray:
    """A 2-D integer (or bool) image; floats and other shapes raise ValueError."""
    arr = check_image(image, name, ndim=(2,), min_size=1, allow_float=False)
    if arr.dtype == bool:
        arr = arr.view(np.uint8)
    return arr


def _check_mask_arg(mask: ArrayLike | None, shape: tuple[int, ...],
                    name: str = "mask") -> np.ndarray | None:
    if mask is None:
        return None
    return check_mask(mask, shape, name)



def _check_distances(distances: Any, name: str = "distances") -> tuple[int, ...]:
    if isinstance(distances, Integral) and not isinstance(distances, bool):
        distances = (distances,)
    try:
        items = tuple(distances)
    except TypeError:
        raise ValueError(f"{name}: expected a sequence of positive integers, "
                         f"got {distances!r}") from None
    if not items:
        raise ValueError(f"{name}: expected at least one distance")
    return tuple(check_int(d, name, 1) for d in items)


def _check_angles(angles: Any, name: str = "angles") -> tuple[int, ...]:
    if isinstance(angles, Integral) and not isinstance(angles, bool):
        angles = (angles,)
    try:
        items = tuple(angles)
    except TypeError:
        raise ValueError(f"{name}: expected a sequence of angles in degrees out of "
                         f"{GLCM_ANGLES}, got {angles!r}") from None
    out = []
    for a in items:
        if isinstance(a, bool) or not isinstance(a, (Integral, float, np.floating)) \
                or float(a) not in _OFFSETS:
            raise ValueError(f"{name}: expected angles in degrees out of {GLCM_ANGLES}, "
                             f"got {a!r}")
        out.append(int(a))
    if not out:
        raise ValueError(f"{name}: expected at least one angle")
    return tuple(out)


def _region_values(arr: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    return arr if mask is None else arr[mask]


@functools.lru_cache(maxsize=4096)
def _minmax_lut(lo: int, width: int, levels: int) -> np.ndarray:
    """The min-max binning of the 256 uint8 values (read-only), for
    :func:`_quantize`: uint8 up to 256 levels, else int64."""
    lut = ((np.arange(256, dtype=np.int64) - lo).clip(0, width - 1) * levels) // width
    lut = lut.astype(np.uint8 if levels <= 256 else np.int64)
    lut.setflags(write=False)
    return lut


def _quantize(arr: np.ndarray, mask: np.ndarray | None, levels: int | None, quantization: str,
              name: str = "image") -> np.ndarray:
    """Return the grey-level image actually analysed (non-negative integers).

    ``levels=None`` keeps the values (they must be non-negative); otherwise
    the fixed or min-max binning described in the module docstring.
    """
    if quantization not in ("fixed", "minmax"):
        raise ValueError(f"quantization: expected 'fixed' or 'minmax', got {quantization!r}")
    if levels is None:
        if arr.size and np.issubdtype(arr.dtype, np.signedinteger) and arr.min() < 0:
            raise ValueError(f"{name}: negative grey levels are not supported with "
                             "levels=None; pass levels=... with quantization='minmax'")
        return arr
    levels = check_int(levels, "levels", 2)
    if quantization == "fixed":
        if levels > 256:
            raise ValueError(f"levels: 'fixed' quantization supports at most 256 levels, "
                             f"got {levels}")
        if arr.dtype != np.uint8:
            if arr.size and (arr.min() < 0 or arr.max() > 255):
                raise ValueError(f"{name}: 'fixed' quantization expects values in "
                                 f"[0, 255], got [{arr.min()}, {arr.max()}]; use "
                                 "quantization='minmax'")
            arr = arr.astype(np.uint8)
        if levels == 256:
            return arr
        lut = ((np.arange(256, dtype=np.int64) * levels) >> 8).astype(np.uint8)
        return cv2.LUT(np.ascontiguousarray(arr), lut).reshape(arr.shape)
    # min-max binning over the region of interest
    vals = _region_values(arr, mask)
    out_dtype = np.uint8 if levels <= 256 else np.int64
    if vals.size == 0:
        return np.zeros(arr.shape, out_dtype)
    lo, hi = int(vals.min()), int(vals.max())
    width = hi - lo + 1
    if arr.dtype == np.uint8:
        return _minmax_lut(lo, width, levels)[arr]
    q = ((arr.astype(np.int64) - lo).clip(0, width - 1) * levels) // width
    return q.astype(out_dtype)


# --------------------------------------------------------------------------- #
# pair views
# --------------------------------------------------------------------------- #

def _pair_views(arr: np.ndarray, dy: int, dx: int) -> tuple[Any, Any]:
    """Views ``a = f(p)`` and ``b = f(p + (dy, dx))`` over all valid ``p``."""
    h, w = arr.shape[:2]
    if dy >= h or abs(dx) >= w:
        return None, None
    if dx >= 0:
        return arr[:h - dy, :w - dx], arr[dy:, dx:]
    return arr[:h - dy, -dx:], arr[dy:, :w + dx]


def _pair_mask(mask: np.ndarray | None, dy: int, dx: int) -> np.ndarray | None:
    """uint8 mask of the valid pairs (both pixels inside ``mask``), or None."""
    if mask is None:
        return None
    ma, mb = _pair_views(mask, dy, dx)
    if ma is None:
        return None
    return np.logical_and(ma, mb).view(np.uint8)


# --------------------------------------------------------------------------- #
# compiled kernels (numba, imported and compiled on first use)
# --------------------------------------------------------------------------- #

_kernels = companion("leukfeat.extract._texture_kernels")
_TLS = threading.local()


def _warm() -> None:
    """Call every texture kernel once (see :func:`leukfeat._numba.warm_kernels`)."""
    img = (np.arange(64, dtype=np.uint8).reshape(8, 8) * 3) % 251
    mask = np.ones(img.shape, bool)
    mask[0, 0] = False
    for d in (1, 2):
        _haralick_q(img, None, d, False)
        _haralick_q(img, mask, d, False)
    lbp_histogram(img, mask, radii=(1,), as_dict=False)


def _count_table() -> np.ndarray:
    """This thread's int32 pair-count table of the four directions (zero between calls).

    The kernel clears every entry it wrote before returning, so the table is
    allocated once per thread instead of being zeroed on every call.
    """
    tab = getattr(_TLS, "tab", None)
    if tab is None:
        tab = np.zeros(4 * _kernels().DIR_STRIDE, np.int32)
        _TLS.tab = tab
    return tab


# --------------------------------------------------------------------------- #
# co-occurrence statistics
# --------------------------------------------------------------------------- #

class _GlcmStats:
    """Sufficient statistics of the symmetric GLCMs of the four directions.

    Counts are in units of *unordered* pairs (the triangular matrix ``U``);
    the symmetric matrix ``S`` has total ``T = 2 * n``. Arrays are stacked
    over the directions (first axis).
    """

    __slots__ = ("n", "sum_sq", "sum_xl", "px", "pdiff", "psum", "dense", "values", "maxv")

    def __init__(self, n: Any, sum_sq: Any, sum_xl: Any, px: Any, pdiff: Any, psum: Any,
                 dense: Any, values: Any, maxv: Any) -> None:
        self.n = n              # (D,) number of unordered pairs
        self.sum_sq = sum_sq    # (D,) sum U^2 + sum diag(U)^2  (= sum S^2 / 2)
        self.sum_xl = sum_xl    # (D,) sum U log2 U + trace(U)  (= sum S log2 S / 2)
        self.px = px            # (D, K) counts per level: rowsum + colsum (S units)
        self.pdiff = pdiff      # (D, span) counts per |i-j| = 0..span-1 (U units)
        self.psum = psum        # (D, 2 span - 1) counts per i+j - 2*values[0] (U units)
        self.dense = dense      # (D, K, K) symmetric counts S, or None
        self.values = values    # (K,) grey value of each level of px
        self.maxv = maxv        # mahotas' matrix size: largest grey level + 1


def _xlogx_stats(vals: np.ndarray) -> tuple[float, float]:
    """sum(v^2), sum(v log2 v) of positive counts, in float64."""
    if vals.size == 0:
        return 0.0, 0.0
    v = vals.astype(np.float64)
    return float(np.dot(v, v)), float(np.dot(v, np.log2(v)))


def _stats_generic(qa: np.ndarray | None, qb: Any, valid: np.ndarray | None,
                   vals: np.ndarray, k: int, want_dense: bool) -> tuple[Any, ...]:
    """Statistics of one direction from compact level indices (any number of levels).

    ``qa``, ``qb``: level indices (into ``vals``, sorted grey values) of the two
    pixels of each pair; ``valid``: bool mask of the pairs to count (or None).
    Returns ``(n, sum_sq, sum_xl, px, pdiff, psum, dense)``.
    """
    span = int(vals[-1] - vals[0]) + 1 if k else 1
    if qa is None:
        return (0.0, 0.0, 0.0, np.zeros(k), np.zeros(span), np.zeros(2 * span - 1),
                np.zeros((k, k)) if want_dense else None)
    if valid is not None:
        qa = qa[valid]
        qb = qb[valid]
    else:
        qa = qa.ravel()
        qb = qb.ravel()
    i = np.minimum(qa, qb).astype(np.int64)
    j = np.maximum(qa, qb).astype(np.int64)
    code = i * k + j
    if k * k <= 1 << 22:
        cnt = np.bincount(code, minlength=k * k)
        code = np.flatnonzero(cnt)
        cnt = cnt[code]
    else:
        code, cnt = np.unique(code, return_counts=True)
    i, j = np.divmod(code, k)
    c = cnt.astype(np.float64)
    n = float(c.sum())
    on_diag = i == j
    dg = c[on_diag]
    trace = float(dg.sum())
    sq, xl = _xlogx_stats(c)
    px = np.bincount(i, c, k) + np.bincount(j, c, k)
    v0 = int(vals[0])
    vi = vals[i].astype(np.int64) - v0
    vj = vals[j].astype(np.int64) - v0
    pdiff = np.bincount(vj - vi, c, span)
    psum = np.bincount(vi + vj, c, 2 * span - 1)
    dense = None
    if want_dense:
        dense = np.zeros((k, k))
        np.add.at(dense, (i, j), c)
        np.add.at(dense, (j, i), c)
    return n, sq + float(np.dot(dg, dg)), xl + trace, px, pdiff, psum, dense


def _glcm_stats(q: np.ndarray, mask: np.ndarray | None, distance: int, want_dense: bool,
                force_generic: bool = False) -> _GlcmStats | None:
    """Statistics of the four directions of the region of ``q`` (non-negative integers).

    ``None`` when the region is empty. Images with at most 256 grey levels
    in the region go through the compiled one-pass kernel
    (:func:`._texture_kernels.glcm_stats_u8`); wider ranges (or ``force_generic``)
    through numpy over the occupied levels.
    """
    if q.dtype == np.uint8 and not force_generic:
        q8, offset = q, 0
    else:
        region = _region_values(q, mask)
        if region.size == 0:
            return None
        lo = int(region.min())
        hi = int(region.max())
        if hi - lo < 256 and not force_generic:
            # values outside the region (masked) may wrap: their pairs are masked out
            q8, offset = (q.astype(np.int64) - lo).astype(np.uint8), lo
        else:
            return _glcm_stats_generic(q, mask, distance, want_dense, region, lo, hi)
    if q8.size >= _MAX_KERNEL_PIXELS:  # pragma: no cover - int32 counts
        region = _region_values(q, mask)
        if region.size == 0:
            return None
        return _glcm_stats_generic(q, mask, distance, want_dense, region,
                                   int(region.min()), int(region.max()))
    k = _kernels()
    img = np.ascontiguousarray(q8)
    if mask is None:
        m8, use_mask = np.zeros((1, 1), np.uint8), False
    else:
        m8, use_mask = np.ascontiguousarray(mask).view(np.uint8), True
    try:
        lo, hi, npix, n, sum_sq, sum_xl, px, pdiff, psum, dense = k.glcm_stats_u8(
            img, m8, use_mask, distance, _count_table(), k.XLOG_TABLE, bool(want_dense))
    except BaseException:  # pragma: no cover - e.g. MemoryError: the table may be dirty
        _TLS.tab = None
        raise
    if npix == 0:
        return None
    values = np.arange(lo + offset, hi + offset + 1, dtype=np.float64)
    return _GlcmStats(n, sum_sq, sum_xl, px, pdiff, psum, dense if want_dense else None,
                      values, hi + offset + 1)


def _glcm_stats_generic(q: np.ndarray, mask: np.ndarray | None, distance: int, want_dense: bool,
                        region: np.ndarray, lo: int, hi: int) -> _GlcmStats:
    """numpy statistics over the occupied levels (any number of grey levels)."""
    if hi - lo >= _MAX_SPAN:
        raise ValueError(f"image: grey levels span [{lo}, {hi}], more than {_MAX_SPAN} "
                         "values; quantise with levels=... (quantization='minmax')")
    vals, inv = np.unique(region, return_inverse=True)
    k = len(vals)
    if mask is None:
        idx = inv.reshape(q.shape).astype(np.int64)
    else:
        idx = np.full(q.shape, -1, np.int64)
        idx[mask] = inv.ravel()
    per_dir = []
    for a in GLCM_ANGLES:
        dy, dx = _OFFSETS[a][0] * distance, _OFFSETS[a][1] * distance
        qa, qb = _pair_views(idx, dy, dx)
        valid = None
        if qa is not None and mask is not None:
            ma, mb = _pair_views(mask, dy, dx)
            valid = ma & mb
        per_dir.append(_stats_generic(qa, qb, valid, vals, k, want_dense))
    cols = list(zip(*per_dir))
    # the level axis of px is the compact index; report the real values
    return _GlcmStats(np.array(cols[0], np.float64), np.array(cols[1], np.float64),
                      np.array(cols[2], np.float64), np.stack(cols[3]), np.stack(cols[4]),
                      np.stack(cols[5]), np.stack(cols[6]) if want_dense else None,
                      vals.astype(np.float64), hi + 1)


# --------------------------------------------------------------------------- #
# Haralick features from the statistics
# --------------------------------------------------------------------------- #

def _haralick_from_stats(st: _GlcmStats, return_14: bool) -> np.ndarray:
    nf = 14 if return_14 else 13
    k = _kernels()
    f = k.haralick_from_stats(st.n, st.sum_sq, st.sum_xl, st.px, st.pdiff, st.psum,
                              st.values, float(st.values[0]), int(st.maxv), nf, k.XLOG_TABLE)
    if return_14:
        for d in range(len(st.n)):
            if st.n[d] > 0:
                f[d, 13] = _max_corr_coef(st.px[d], st.dense[d], st.n[d])
    return f


def _max_corr_coef(px: np.ndarray, dense: np.ndarray, n: float) -> float:
    """mahotas' 14th feature from the dense symmetric counts of one direction."""
    occupied = px > 0
    n_occ = int(occupied.sum())
    if n_occ <= 1:
        return math.nan
    if n_occ <= 2:
        return 0.0
    # normalise like mahotas (p = S / T) so that rounding matches bit for bit:
    # with very few levels a GLCM row can be constant, and its correlations
    # are then rounding artefacts that depend on this exact computation
    sub = dense[occupied][:, occupied] / (2.0 * n)
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ccm = np.corrcoef(sub)
    if not np.isfinite(ccm).all():
        return math.nan
    try:
        ev = np.linalg.eigvalsh(ccm)
    except np.linalg.LinAlgError:  # pragma: no cover - defensive
        return math.nan
    return float(np.sqrt(max(float(np.sort(ev)[-2]), 0.0)))


# --------------------------------------------------------------------------- #
# public API
# --------------------------------------------------------------------------- #

def haralick(image: ArrayLike, distance: int = 1, mask: ArrayLike | None = None,
             return_14: bool = False,
             levels: int | None = None, quantization: str = "fixed") -> np.ndarray:
    r"""Haralick texture features of a 2-D integer image, one row per direction.

    Drop-in equivalent of ``mahotas.features.haralick(image, distance=distance)``
    (same values, same ``(4, 13)`` layout and feature order, see the module
    docstring for the formulas and mahotas' conventions), with a mask, grey
    level quantisation, and NaN instead of exceptions for degenerate regions.
    On 8-bit images it is more than 10 times faster than mahotas at 450x450
    pixels and about 30 times at 224x224 (``benchmarks/test_texture_bench.py``;
    the first call in a process loads or compiles the numba kernels).

    Parameters
    ----------
    image : (H, W) array of integers (or bool)
        Grey levels. Floating point images are rejected: quantise them first.
    distance : int, optional
        Pixel distance :math:`d` of the pairs; the four offsets are
        ``(0, d), (d, d), (d, 0), (d, -d)`` (rows, columns), see
        :data:`GLCM_ANGLES`.
    mask : (H, W) bool array, optional
        Region of interest: a pair counts only when both pixels are inside.
        Equivalent to mahotas on ``where(mask, image, 0)`` with
        ``ignore_zeros=True`` when the region contains no zero.
    return_14 : bool, optional
        Also compute the 14th feature (mahotas' ``compute_14th_feature``,
        maximal correlation coefficient); it needs an eigen-decomposition
        per direction and is much slower.
    levels : int or None, optional
        ``None`` (default) uses the grey values as they are (mahotas);
        otherwise the number of grey levels after quantisation (2-256 for
        ``quantization="fixed"``).
    quantization : {"fixed", "minmax"}, optional
        ``"fixed"``: :math:`\lfloor v \cdot levels / 256 \rfloor` (values must
        be in ``[0, 255]``); ``"minmax"``: equal-width bins between the minimum
        and maximum of the region. Ignored when ``levels`` is None.

    Returns
    -------
    numpy.ndarray of float64, shape (4, 13) or (4, 14)
        ``features[k, m]`` is feature :data:`HARALICK_NAMES` ``[m]`` for
        direction :data:`GLCM_ANGLES` ``[k]`` (0, 45, 90, 135 degrees).
        Undefined values are NaN (never ``inf``): a direction without any
        valid pair gives a row of NaN; a single-level region gives NaN
        correlation, information measure 1 and maximal correlation.

    Raises
    ------
    ValueError
        If ``image`` is not a 2-D integer array (or has negative values with
        ``levels=None``), if ``mask`` has a different shape, or if an option
        is invalid.

    Notes
    -----
    With quantisation the result equals mahotas applied to the quantised
    image. Feature 10 (difference variance) depends, as in mahotas, on the
    largest grey level present (it is the variance of a vector of that
    length).

    References
    ----------
    R. M. Haralick, K. Shanmugam and I. Dinstein, "Textural features for image
    classification", IEEE Trans. SMC 3(6):610-621, 1973.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.array([[0, 0, 1], [1, 2, 2], [2, 2, 3]], np.uint8)
    >>> haralick(img).shape
    (4, 13)
    """
    arr = _check_int_image(image)
    m = _check_mask_arg(mask, arr.shape)
    distance = check_int(distance, "distance", 1)
    q = _quantize(arr, m, levels, quantization)
    return _haralick_q(q, m, distance, bool(return_14))


def _haralick_q(q: np.ndarray, m: np.ndarray | None, distance: int, return_14: bool,
                force_generic: bool = False) -> np.ndarray:
    stats = _glcm_stats(q, m, distance, return_14, force_generic=force_generic)
    if stats is None:
        return np.full((len(GLCM_ANGLES), 14 if return_14 else 13), np.nan)
    return _haralick_from_stats(stats, return_14)


def glcm(image: ArrayLike, distances: int | Sequence[int] = (1,),
         angles: int | Sequence[int] = GLCM_ANGLES, levels: int | None = 256,
         mask: ArrayLike | None = None,
         symmetric: bool = True, normed: bool = True,
         quantization: str = "fixed") -> np.ndarray:
    r"""Grey-level co-occurrence matrices restricted to a mask.

    .. math::

        C_{d,\theta}(i, j) = \#\{p \in M : p + \delta_{d,\theta} \in M,\
                             f(p) = i,\ f(p + \delta_{d,\theta}) = j\}

    with :math:`\delta` the offsets of the module docstring (mahotas'
    directions); symmetric: :math:`C + C^T`; normed: divided by the sum.

    Parameters
    ----------
    image : (H, W) array of integers (or bool)
        Grey levels.
    distances : sequence of int, optional
        Pair distances :math:`d`.
    angles : sequence of int, optional
        Directions in degrees, out of (0, 45, 90, 135) (see
        :data:`GLCM_ANGLES`); default all four in that order.
    levels : int or None, optional
        Number of grey levels :math:`L` (matrix size). 256 (default) uses
        ``uint8`` values unchanged; fewer levels quantise (see
        ``quantization``); ``None`` uses the raw values with
        :math:`L = \max + 1` over the region (mahotas' matrix size).
    mask : (H, W) bool array, optional
        Region of interest; a pair counts only when both pixels are inside.
    symmetric : bool, optional
        Return :math:`C + C^T` (default, as mahotas).
    normed : bool, optional
        Divide each matrix by its sum (default). A matrix without any pair
        is then all NaN.
    quantization : {"fixed", "minmax"}, optional
        See :func:`haralick`.

    Returns
    -------
    numpy.ndarray, shape (n_distances, n_angles, L, L)
        ``float64`` when ``normed`` else ``int64`` counts. The equivalent of
        ``skimage.feature.graycomatrix(q, distances, np.deg2rad(angles), L,
        symmetric, normed).transpose(2, 3, 0, 1)`` for axis-aligned
        directions and for diagonals at distance 1 (scikit-image rounds
        diagonal offsets to ``round(d / sqrt(2))``).

    Raises
    ------
    ValueError
        If ``image`` is not a 2-D integer image, ``mask`` has another shape,
        or an option is invalid.
    """
    arr = _check_int_image(image)
    m = _check_mask_arg(mask, arr.shape)
    dists = _check_distances(distances)
    angs = _check_angles(angles)
    q = _quantize(arr, m, levels, quantization)
    if levels is None:
        region = _region_values(q, m)
        n_levels = int(region.max()) + 1 if region.size else 1
        if n_levels > _MAX_GLCM_LEVELS:
            raise ValueError(f"image: largest grey level {n_levels - 1} would need a "
                             f"{n_levels}x{n_levels} matrix; pass levels=... (at most "
                             f"{_MAX_GLCM_LEVELS} with levels=None)")
    else:
        n_levels = int(levels)
    use_cv = n_levels <= 256 and q.size < (1 << 23)
    if use_cv and q.dtype != np.uint8:
        q = q.astype(np.uint8)
    out = np.zeros((len(dists), len(angs), n_levels, n_levels), np.int64)
    for di, d in enumerate(dists):
        for ai, a in enumerate(angs):
            dy, dx = _OFFSETS[a][0] * d, _OFFSETS[a][1] * d
            qa, qb = _pair_views(q, dy, dx)
            if qa is None:
                continue
            pm = _pair_mask(m, dy, dx)
            if use_cv:
                h = cv2.calcHist([qa, qb], [0, 1], pm, [n_levels, n_levels],
                                 [0, n_levels, 0, n_levels])
                c = h.astype(np.int64)
            else:
                ia, ib = qa.astype(np.int64), qb.astype(np.int64)
                if pm is not None:
                    sel = pm.view(bool)
                    ia, ib = ia[sel], ib[sel]
                c = np.bincount((ia * n_levels + ib).ravel(),
                                minlength=n_levels * n_levels).reshape(n_levels, n_levels)
            if symmetric:
                c = c + c.T
            out[di, ai] = c
    if not normed:
        return out
    total = out.sum(axis=(2, 3), keepdims=True).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, out / np.where(total > 0, total, 1.0), np.nan)


def glcm_props(P: ArrayLike, props: Sequence[str] = GLCM_PROPS) -> dict[str, np.ndarray]:
    r"""GLCM properties of :func:`skimage.feature.graycoprops`, vectorised.

    With :math:`p = P / \sum P` over the last two axes (counts or normalised
    matrices both work) and :math:`\mu_i = \sum i\,p`, :math:`\mu_j = \sum j\,p`,
    :math:`\sigma_i^2 = \sum (i - \mu_i)^2 p`, :math:`\sigma_j^2` likewise:

    * ``contrast`` :math:`= \sum (i-j)^2 p`;
      ``dissimilarity`` :math:`= \sum |i-j|\,p`;
      ``homogeneity`` :math:`= \sum p / (1 + (i-j)^2)`;
    * ``asm`` :math:`= \sum p^2`; ``energy`` :math:`= \sqrt{asm}`;
    * ``correlation`` :math:`= \sum (i-\mu_i)(j-\mu_j)\,p / (\sigma_i\sigma_j)`;
    * ``mean`` :math:`= \mu_i`; ``variance`` :math:`= \sigma_i^2`;
      ``std`` :math:`= \sigma_i`;
    * ``entropy`` :math:`= -\sum p \ln p` (natural logarithm, as
      scikit-image; :func:`haralick` uses :math:`\log_2`).

    Parameters
    ----------
    P : array_like, shape (..., L, L)
        Co-occurrence matrices, e.g. the output of :func:`glcm`
        (``(n_distances, n_angles, L, L)``).
    props : sequence of str, optional
        Names out of :data:`GLCM_PROPS`.

    Returns
    -------
    dict of str to numpy.ndarray
        One array of shape ``P.shape[:-2]`` per property. Equal to
        ``graycoprops`` on the same matrices (in scikit-image's
        ``(L, L, d, a)`` layout), except that an all-zero matrix gives NaN
        (scikit-image: 0) and a zero-variance matrix gives NaN correlation
        (scikit-image: 1).

    Raises
    ------
    ValueError
        If ``P`` is not at least 2-D with square, non-negative trailing
        matrices, or a property name is unknown.
    """
    arr = np.asarray(P)
    if arr.ndim < 2 or arr.shape[-1] != arr.shape[-2] or arr.shape[-1] == 0 \
            or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(f"P: expected an array of square matrices (..., L, L), got "
                         f"shape {arr.shape} and dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if np.isnan(arr).any() and not np.isnan(arr).all(axis=(-2, -1)).any():
        raise ValueError("P: contains NaN")
    if (arr < 0).any():
        raise ValueError("P: co-occurrence counts must be non-negative")
    props = tuple(props)
    for name in props:
        if name not in GLCM_PROPS:
            raise ValueError(f"props: unknown property {name!r}; expected names out of "
                             f"{GLCM_PROPS}")
    nl = arr.shape[-1]
    total = arr.sum(axis=(-2, -1), keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = arr / total  # all-zero (or NaN) matrices -> NaN
    i = np.arange(nl, dtype=np.float64)[:, None]
    j = np.arange(nl, dtype=np.float64)[None, :]
    out: dict[str, np.ndarray] = {}
    pi = p.sum(axis=-1)  # marginal over j -> distribution of i
    pj = p.sum(axis=-2)
    lv = np.arange(nl, dtype=np.float64)
    mu_i = pi @ lv
    mu_j = pj @ lv
    var_i = np.einsum("...k,...k->...", pi, (lv - mu_i[..., None]) ** 2)
    var_j = np.einsum("...k,...k->...", pj, (lv - mu_j[..., None]) ** 2)
    for name in props:
        if name == "contrast":
            out[name] = (p * (i - j) ** 2).sum(axis=(-2, -1))
        elif name == "dissimilarity":
            out[name] = (p * np.abs(i - j)).sum(axis=(-2, -1))
        elif name == "homogeneity":
            out[name] = (p / (1.0 + (i - j) ** 2)).sum(axis=(-2, -1))
        elif name == "asm":
            out[name] = (p * p).sum(axis=(-2, -1))
        elif name == "energy":
            out[name] = np.sqrt((p * p).sum(axis=(-2, -1)))
        elif name == "correlation":
            cov = np.einsum("...ij,...ij->...", p,
                            (i - mu_i[..., None, None]) * (j - mu_j[..., None, None]))
            den = np.sqrt(var_i) * np.sqrt(var_j)
            degenerate = (np.sqrt(var_i) < 1e-15) | (np.sqrt(var_j) < 1e-15)
            with np.errstate(divide="ignore", invalid="ignore"):
                out[name] = np.where(degenerate, np.nan, cov / np.where(degenerate, 1.0, den))
        elif name == "mean":
            out[name] = mu_i
        elif name == "variance":
            out[name] = var_i
        elif name == "std":
            out[name] = np.sqrt(var_i)
        elif name == "entropy":
            safe = np.where(p > 0, p, 1.0)
            out[name] = -(p * np.log(safe)).sum(axis=(-2, -1))
    return out


def _lbp_points(radius: float) -> int:
    return int(round(8 * radius))


def _lbp_n_bins(n_points: int, method: str) -> int:
    if method == "uniform":
        return n_points + 2
    if method == "nri_uniform":
        return n_points * (n_points - 1) + 3
    return 1 << n_points


def _check_radii(radii: Any, name: str = "radii") -> tuple[int, ...]:
    if isinstance(radii, Integral) and not isinstance(radii, bool):
        radii = (radii,)
    try:
        items = tuple(radii)
    except TypeError:
        raise ValueError(f"{name}: expected a sequence of positive integers, got "
                         f"{radii!r}") from None
    out = tuple(check_int(r, name, 1) for r in items)
    if not out:
        raise ValueError(f"{name}: expected at least one radius")
    return out


def _check_lbp_method(method: str) -> str:
    if method not in _LBP_METHODS:
        raise ValueError(f"method: expected one of {tuple(_LBP_METHODS)}, got {method!r}")
    return method


def lbp_feature_names(radii: int | Sequence[int] = (1, 2, 3), method: str = "uniform") -> list[str]:
    """Names of the :func:`lbp_histogram` bins, e.g. ``lbp_r1_u00`` ... ``lbp_r3_u25``.

    Parameters
    ----------
    radii : sequence of int, optional
        LBP radii :math:`r` (with :math:`P = 8r` points).
    method : {"uniform", "nri_uniform", "default", "ror"}, optional
        Code family; its letter (``u``, ``n``, ``d``, ``r``) prefixes the code.

    Returns
    -------
    list of str
    """
    return list(_lbp_names(_check_radii(radii), _check_lbp_method(method)))


@functools.lru_cache(maxsize=64)
def _lbp_names(radii: tuple[int, ...], method: str, compartment_tag: str = "") -> tuple[str, ...]:
    tag = _LBP_METHODS[method]
    names: list[str] = []
    for r in radii:
        nb = _lbp_n_bins(_lbp_points(r), method)
        width = max(2, len(str(nb - 1)))
        names.extend(f"lbp_{compartment_tag}r{r}_{tag}{c:0{width}d}" for c in range(nb))
    return tuple(names)


def _as_uint8_gray(arr: np.ndarray, name: str) -> np.ndarray:
    """A checked 2-D image of any size (1x1 up) as ``uint8``, by the rules of
    :func:`~leukfeat._validation.as_uint8_rgb` (which asks for 2x2 pixels).
    The rules depend only on the dtype and the range of the values, which
    repeating the last row and column up to 2x2 leaves unchanged."""
    h, w = arr.shape
    if h < 2 or w < 2:
        big = np.pad(arr, ((0, max(2 - h, 0)), (0, max(2 - w, 0))), mode="edge")
        return np.ascontiguousarray(as_uint8_rgb(big, name)[:h, :w, 0])
    return np.ascontiguousarray(as_uint8_rgb(arr, name)[..., 0])


def _gray_for_lbp(image: ArrayLike, name: str = "image") -> np.ndarray:
    arr = check_image(image, name, ndim=(2,), min_size=1)
    if np.issubdtype(arr.dtype, np.floating) or arr.dtype == bool:
        arr = _as_uint8_gray(arr, name)
    return arr


@overload
def lbp_histogram(image: ArrayLike, mask: ArrayLike | None = ...,
                  radii: int | Sequence[int] = ..., method: str = ...,
                  *, as_dict: Literal[True] = ...) -> dict[str, float]: ...


@overload
def lbp_histogram(image: ArrayLike, mask: ArrayLike | None = ...,
                  radii: int | Sequence[int] = ..., method: str = ...,
                  *, as_dict: Literal[False]) -> list[np.ndarray]: ...


@overload
def lbp_histogram(image: ArrayLike, mask: ArrayLike | None = ...,
                  radii: int | Sequence[int] = ..., method: str = ...,
                  *, as_dict: bool = ...) -> dict[str, float] | list[np.ndarray]: ...


def lbp_histogram(image: ArrayLike, mask: ArrayLike | None = None,
                  radii: int | Sequence[int] = (1, 2, 3), method: str = "uniform",
                  *, as_dict: bool = True) -> dict[str, float] | list[np.ndarray]:
    r"""Normalised histograms of local binary pattern codes inside a mask.

    For each radius :math:`r`, :func:`skimage.feature.local_binary_pattern`
    with :math:`P = 8r` circularly sampled neighbours (8, 16, 24 for radii
    1, 2, 3) gives a code per pixel; the histogram counts the codes of the
    pixels inside the mask and is divided by their number:

    .. math::

        h_r(c) = \frac{\#\{p \in M : \mathrm{LBP}_{8r,r}(p) = c\}}{\#M},
        \qquad c = 0, \dots, n_{bins} - 1

    with :math:`n_{bins} = P + 2` for ``"uniform"`` (rotation-invariant
    uniform patterns, code :math:`P + 1` collecting the non-uniform ones),
    :math:`P(P - 1) + 3` for ``"nri_uniform"`` and :math:`2^P` for
    ``"default"``/``"ror"``. Codes are those of the whole image (only the
    mask's bounding box is coded, each pixel with its true neighbours), so
    pixels near the mask border see their true neighbours.

    The codes are computed by a compiled kernel equal, bit for bit, to
    scikit-image's (see the module docstring); scikit-image itself is only
    called for more points than the kernel's 64-bit patterns hold
    (:math:`P > 62`, or :math:`P > 30` for ``"default"``/``"ror"``).

    Parameters
    ----------
    image : (H, W) array
        Grey image. Integer values are used as they are; floating point (or
        bool) images are converted to ``uint8`` like the rest of leukfeat
        (values in ``[0, 1]`` scaled by 255).
    mask : (H, W) bool array, optional
        Pixels whose codes are counted; default all.
    radii : sequence of int, optional
        Radii :math:`r`.
    method : {"uniform", "nri_uniform", "default", "ror"}, optional
        Code family, as ``skimage.feature.local_binary_pattern``'s ``method``.
    as_dict : bool, optional
        Return ``{name: value}`` with the names of :func:`lbp_feature_names`
        (default) or a list of one 1-D array per radius.

    Returns
    -------
    dict of str to float, or list of numpy.ndarray
        Each radius' histogram sums to 1; all NaN when the mask is empty.

    Raises
    ------
    ValueError
        If ``image`` is not 2-D numeric, ``mask`` has another shape or an
        option is invalid.
    """
    arr = _gray_for_lbp(image)
    m = _check_mask_arg(mask, arr.shape)
    radii = _check_radii(radii)
    method = _check_lbp_method(method)
    if m is not None and not m.any():
        hists = [np.full(_lbp_n_bins(_lbp_points(r), method), np.nan) for r in radii]
    else:
        hists = _lbp_hists(arr, m, radii, method)
    if not as_dict:
        return hists
    return dict(zip(_lbp_names(radii, method), np.concatenate(hists).tolist()))


@functools.lru_cache(maxsize=64)
def _lbp_offsets(n_points: int, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """scikit-image's sampling offsets ``(rp, cp)`` of ``local_binary_pattern``.

    The same expressions as ``skimage.feature._texture._local_binary_pattern``
    (whose ``R`` argument is a C ``float``), rounded to 5 decimals.
    """
    R = float(np.float32(radius))
    rr = - R * np.sin(2 * np.pi * np.arange(n_points, dtype=np.double) / n_points)
    cc = R * np.cos(2 * np.pi * np.arange(n_points, dtype=np.double) / n_points)
    rp = np.round(rr, 5)
    cp = np.round(cc, 5)
    rp.flags.writeable = False
    cp.flags.writeable = False
    return rp, cp


def _lbp_kernel_ok(n_points: int, method: str) -> bool:
    """Whether the compiled kernel handles ``n_points`` (its codes are int64
    bit patterns; scikit-image's ``default``/``ror`` use int32 weights)."""
    return n_points <= (62 if method in ("uniform", "nri_uniform") else 30)


def _lbp_hists(arr: np.ndarray, m: np.ndarray | None, radii: tuple[int, ...],
               method: str) -> list[np.ndarray]:
    """Normalised LBP histograms of the pixels of ``m`` (all when None), one per radius."""
    k = _kernels()
    h, w = arr.shape
    if m is None:
        r0, r1, c0, c1 = 0, h, 0, w
        m8, use_mask = np.zeros((1, 1), np.uint8), False
    else:
        rows = np.flatnonzero(m.any(axis=1))
        cols = np.flatnonzero(m.any(axis=0))
        r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
        m8, use_mask = np.ascontiguousarray(m).view(np.uint8), True
    pad = None
    hists = []
    for r in radii:
        p = _lbp_points(r)
        nb = _lbp_n_bins(p, method)
        counts = None
        if _lbp_kernel_ok(p, method):
            if pad is None:
                # the bounding box with a margin covering every sample of every
                # radius, as float64 (scikit-image's type), zero outside the image
                margin = int(math.ceil(max(radii))) + 1
                img = arr if arr.dtype == np.uint8 else arr.astype(np.float64)
                pad = k.lbp_padded(np.ascontiguousarray(img), r0, r1, c0, c1, margin)
            rp, cp = _lbp_offsets(p, r)
            counts = np.zeros(nb, np.int64)
            if not k.lbp_hist(pad, r0 - margin, c0 - margin, r0, r1, c0, c1, m8, use_mask,
                              rp, cp, k.LBP_METHOD_CODES[method], counts, _NO_CODES):
                counts = None  # pragma: no cover - only for images wider than 2**31
        if counts is None:
            counts = _lbp_counts_skimage(arr, m, p, r, method, nb, (r0, r1, c0, c1))
        hists.append(counts / counts.sum())
    return hists


_NO_CODES = np.zeros((0, 0), np.int64)


def _lbp_code_image(image: ArrayLike, radius: int, method: str = "uniform") -> np.ndarray:
    """The LBP code of every pixel from the compiled kernel, as float64.

    Equal to ``skimage.feature.local_binary_pattern(image, 8 * radius,
    radius, method)`` (for the settings the kernel covers); used by the tests.
    """
    arr = _gray_for_lbp(image)
    k = _kernels()
    h, w = arr.shape
    p = _lbp_points(radius)
    margin = int(radius) + 1
    img = arr if arr.dtype == np.uint8 else arr.astype(np.float64)
    pad = k.lbp_padded(np.ascontiguousarray(img), 0, h, 0, w, margin)
    rp, cp = _lbp_offsets(p, radius)
    codes = np.zeros((h, w), np.int64)
    counts = np.zeros(_lbp_n_bins(p, method), np.int64)
    if not k.lbp_hist(pad, -margin, -margin, 0, h, 0, w, np.zeros((1, 1), np.uint8), False,
                      rp, cp, k.LBP_METHOD_CODES[method], counts, codes):
        raise ValueError("image: too wide for the LBP kernel")  # pragma: no cover
    return codes.astype(np.float64)


def _lbp_counts_skimage(arr: np.ndarray, m: np.ndarray | None, p: int, r: float, method: str,
                        nb: int, bbox: tuple[int, int, int, int]) -> np.ndarray:
    """LBP code counts with scikit-image (settings the kernel does not cover)."""
    from skimage.feature import local_binary_pattern

    if m is None:
        codes = local_binary_pattern(arr, p, r, method).ravel()
    else:
        r0, r1, c0, c1 = bbox
        # crop below/right of the mask only: scikit-image's sampling
        # coordinates depend on the absolute pixel position (float
        # rounding decides ties), so the top-left corner must stay put
        margin = int(math.ceil(r)) + 1
        y1 = min(r1 + margin, arr.shape[0])
        x1 = min(c1 + margin, arr.shape[1])
        codes = local_binary_pattern(arr[:y1, :x1], p, r, method)
        codes = codes[r0:r1, c0:c1][m[r0:r1, c0:c1]]
    return np.bincount(codes.astype(np.int64), minlength=nb)[:nb].astype(np.float64)


def texture_feature_names(distances: int | Sequence[int] = (1,),
                          lbp_radii: Sequence[int] = (1, 2, 3), *, include_mcc: bool = False,
                          lbp_method: str = "uniform", compartment: str | None = None
                          ) -> list[str]:
    """Names of the :func:`texture_features` outputs, in order, without an image.

    ``glcm_<name>_d<d>_mean`` and ``glcm_<name>_d<d>_range`` for each
    Haralick feature (:data:`HARALICK_NAMES`, the 14th only with
    ``include_mcc``) and distance, then :func:`lbp_feature_names`. With a
    ``compartment`` (e.g. ``"nucleus"``) it follows the family prefix:
    ``glcm_nucleus_asm_d1_mean``, ``lbp_nucleus_r1_u00``.

    Parameters
    ----------
    distances : sequence of int, optional
    lbp_radii : sequence of int, optional
        Empty to skip LBP.
    include_mcc : bool, optional
        Include ``max_correlation_coefficient``.
    lbp_method : str, optional
    compartment : str, optional
        Compartment tag inserted after ``glcm_`` / ``lbp_`` (letters, digits
        and underscores); None (default) for the names of the cell group.

    Returns
    -------
    list of str
    """
    return list(_checked_texture_names(distances, lbp_radii, include_mcc, lbp_method,
                                       compartment))


def _check_compartment(compartment: str | None) -> str:
    if compartment is None:
        return ""
    if not (isinstance(compartment, str) and compartment.isidentifier()
            and compartment.isascii()):
        raise ValueError(f"compartment: expected None or a name of letters, digits and "
                         f"underscores, got {compartment!r}")
    return compartment + "_"


def _checked_texture_names(distances: Any, lbp_radii: Any, include_mcc: bool, lbp_method: str,
                           compartment: str | None = None) -> tuple[str, ...]:
    radii = tuple(lbp_radii)
    if radii:  # validated before the (hashing) cache lookup
        radii = _check_radii(radii)
        _check_lbp_method(lbp_method)
    return _texture_names(_check_distances(distances), radii, bool(include_mcc), lbp_method,
                          _check_compartment(compartment))


@functools.lru_cache(maxsize=32)
def _texture_names(dists: tuple[int, ...], lbp_radii: tuple[int, ...], include_mcc: bool,
                   lbp_method: str, tag: str = "") -> tuple[str, ...]:
    hn = HARALICK_NAMES if include_mcc else HARALICK_NAMES[:13]
    names = [f"glcm_{tag}{n}_d{d}_{stat}" for d in dists for n in hn
             for stat in ("mean", "range")]
    if lbp_radii:
        names.extend(_lbp_names(lbp_radii, lbp_method, tag))
    return tuple(names)


def texture_features(gray: ArrayLike, mask: ArrayLike | None = None,
                     distances: int | Sequence[int] = (1,), levels: int | None = 256,
                     lbp_radii: Sequence[int] = (1, 2, 3), *, quantization: str = "fixed",
                     include_mcc: bool = False, lbp_method: str = "uniform",
                     compartment: str | None = None) -> dict[str, float]:
    r"""Haralick (aggregated over directions) and LBP texture features.

    For every distance :math:`d`, the Haralick features of the four
    directions (:func:`haralick`) are summarised by their mean and their
    range (max - min) over the directions where they are defined, like
    mahotas' ``return_mean_ptp``:

    .. math::

        \mathrm{glcm\_}f\mathrm{\_d}d\mathrm{\_mean} = \frac14 \sum_\theta f_{d,\theta},
        \qquad
        \mathrm{glcm\_}f\mathrm{\_d}d\mathrm{\_range} = \max_\theta f_{d,\theta}
                                                       - \min_\theta f_{d,\theta}

    followed by the LBP histograms of :func:`lbp_histogram`.

    Parameters
    ----------
    gray : (H, W) array
        Grey image. ``uint8`` is used as is; other types are converted to
        ``uint8`` with leukfeat's convention (floats in ``[0, 1]`` scaled by
        255, wider integer ranges rescaled).
    mask : (H, W) bool array, optional
        Region of interest (e.g. a cell or its nucleus).
    distances : sequence of int, optional
        GLCM distances.
    levels : int or None, optional
        Grey levels for the GLCM (default 256: values unchanged; ``None``:
        raw values as mahotas). See :func:`haralick`.
    lbp_radii : sequence of int, optional
        LBP radii (empty to skip LBP).
    quantization : {"fixed", "minmax"}, optional
        See :func:`haralick`.
    include_mcc : bool, optional
        Include the (slow) maximal correlation coefficient.
    lbp_method : str, optional
        See :func:`lbp_histogram`.
    compartment : str, optional
        Tag of the region in the names (``"nucleus"`` gives
        ``glcm_nucleus_*`` and ``lbp_nucleus_*``, the ``nucleus_texture``
        group of :func:`leukfeat.extract.features`); values do not depend
        on it.

    Returns
    -------
    dict of str to float
        Keys in the order of :func:`texture_feature_names`. Undefined values
        (empty mask, no pair, constant region; see :func:`haralick`) are NaN.

    Raises
    ------
    ValueError
        If ``gray`` is not a 2-D image, ``mask`` has another shape or an
        option is invalid.
    """
    arr = check_image(gray, "gray", ndim=(2,), min_size=1)
    if arr.dtype != np.uint8:
        arr = _as_uint8_gray(arr, "gray")
    m = _check_mask_arg(mask, arr.shape)
    dists = _check_distances(distances)
    radii = tuple(lbp_radii)
    names = _checked_texture_names(dists, radii, include_mcc, lbp_method, compartment)
    return dict(zip(names, _texture_values(arr, m, dists, levels, quantization, include_mcc,
                                           radii, lbp_method).tolist()))


def _texture_values(arr: np.ndarray, m: np.ndarray | None, dists: tuple[int, ...],
                    levels: int | None, quantization: str, include_mcc: bool,
                    radii: tuple[int, ...], lbp_method: str) -> np.ndarray:
    """The values of :func:`texture_features` as a float64 array in the
    order of its names: checked arguments (uint8 grey image, bool mask of
    its shape or None, distances and radii as checked tuples); what
    per-cell extraction calls."""
    q = _quantize(arr, m, levels, quantization, "gray")
    values: list[float] = []
    for d in dists:
        f = _haralick_q(q, m, d, bool(include_mcc))
        if np.isnan(f).any():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                mean = np.nanmean(f, axis=0)
                rng = np.nanmax(f, axis=0) - np.nanmin(f, axis=0)
        else:  # the common case, same values without nan-aware reductions
            mean = f.mean(axis=0)
            rng = f.max(axis=0) - f.min(axis=0)
        values.extend(np.column_stack([mean, rng]).ravel().tolist())
    if radii:
        values.extend(np.concatenate(lbp_histogram(arr, m, radii, lbp_method,
                                                   as_dict=False)).tolist())
    return np.array(values, dtype=np.float64)
