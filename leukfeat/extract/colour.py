"""Colour statistics of the nucleus, the cytoplasm and the whole cell.

For every compartment and every channel of the requested colour spaces the
first four moments and a few percentiles of the pixel values are computed
(optionally also a coarse normalised histogram). Names follow
``{prefix}_{compartment}_{space}_{channel}_{statistic}``, e.g.
``colour_nucleus_lab_a_mean``, ``colour_cell_hsv_h_p90``,
``colour_cytoplasm_rgb_b_hist_3``.

Colour scales
-------------
``rgb``
    R, G, B in 0..255 (the uint8 values).
``lab``
    CIE L*a*b* (sRGB, D65 white, CIE 1931 2° observer), L* in 0..100, a* and
    b* roughly -128..127. Computed in float64 with the constants of
    :func:`skimage.color.rgb2lab` (agrees with it to ~1e-10; OpenCV's float
    conversion differs by up to ~0.3 and is not used).
``hsv``
    H in degrees [0, 360), S and V in 0..1, float64 with the formulas of
    :func:`skimage.color.rgb2hsv` (whose H in [0, 1) is multiplied by 360).
    H is 0 for grey pixels (S = 0).
"""

from __future__ import annotations

import functools
import math
from numbers import Integral
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from .._numba import companion
from .._validation import as_uint8_rgb, check_image, check_mask

if TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import ArrayLike

__all__ = ["colour_features", "colour_feature_names"]

_SPACES = {"rgb": ("r", "g", "b"), "lab": ("l", "a", "b"), "hsv": ("h", "s", "v")}
_RANGES = {
    "rgb": ((0.0, 256.0),) * 3,
    "lab": ((0.0, 100.0), (-128.0, 128.0), (-128.0, 128.0)),
    "hsv": ((0.0, 360.0), (0.0, 1.0), (0.0, 1.0)),
}

# sRGB -> XYZ (IEC 61966-2-1) scaled by the D65 2° white point, as skimage.
_XYZ_FROM_RGB = np.array([[0.412453, 0.357580, 0.180423],
                          [0.212671, 0.715160, 0.072169],
                          [0.019334, 0.119193, 0.950227]])
_WHITE_D65 = np.array([0.95047, 1.0, 1.08883])
_XYZN_FROM_RGB = _XYZ_FROM_RGB / _WHITE_D65[:, None]       # XYZ / white
_SRGB_TO_LINEAR = np.arange(256) / 255.0
_SRGB_TO_LINEAR = np.where(_SRGB_TO_LINEAR > 0.04045,
                           ((_SRGB_TO_LINEAR + 0.055) / 1.055) ** 2.4,
                           _SRGB_TO_LINEAR / 12.92)


_kernels = companion("leukfeat.extract._colour_kernels")


def _warm() -> None:
    """Call every colour kernel once (see :func:`leukfeat._numba.warm_kernels`)."""
    k = _kernels()
    k.row_moments(np.ones((2, 3)), np.zeros(2, bool), np.empty((2, 4)))
    k.count_stats(np.ones((1, 2, 4)), np.ones((2, 4)), np.array([50.0]), np.empty((1, 2, 5)))
    k.partitioned_row_stats(np.ones((2, 3)), np.ones((2, 3)), np.array([50.0]), np.empty((2, 5)))
    k.rgb_to_hsv(np.ones((3, 2), np.uint8), np.empty(2, np.uint8), np.empty(2), np.empty(2))
    k.split_compartments(np.ones((4, 2), np.uint8), np.ones((5, 2)), np.array([True, False]),
                         np.empty((3, 4, 256), np.int64), np.empty((5, 1)), np.empty((5, 1)))


# --------------------------------------------------------------------------
# parameters and names
# --------------------------------------------------------------------------

def _check_params(spaces: Any, percentiles: Any, histogram_bins: Any, prefix: Any
                  ) -> tuple[tuple[str, ...], tuple[float, ...], Any, str]:
    if isinstance(spaces, str):
        spaces = (spaces,)
    try:
        spaces = tuple(spaces)
    except TypeError:
        raise ValueError(f"spaces: expected a sequence of colour space names, got {spaces!r}")
    bad = [s for s in spaces if s not in _SPACES]
    if bad or not spaces or len(set(spaces)) != len(spaces):
        raise ValueError(f"spaces: expected distinct names among {tuple(_SPACES)}, got {spaces!r}")
    try:
        percentiles = tuple(float(p) for p in percentiles)
    except (TypeError, ValueError):
        raise ValueError(f"percentiles: expected a sequence of numbers, got {percentiles!r}")
    if (any(not 0.0 <= p <= 100.0 for p in percentiles)
            or len({_pct_name(p) for p in percentiles}) != len(percentiles)):
        raise ValueError("percentiles: expected values in [0, 100] with distinct names, "
                         f"got {percentiles!r}")
    if histogram_bins is not None and (isinstance(histogram_bins, bool)
                                       or not isinstance(histogram_bins, Integral)
                                       or histogram_bins < 1):
        raise ValueError("histogram_bins: expected None or an integer >= 1, "
                         f"got {histogram_bins!r}")
    if not isinstance(prefix, str) or not prefix:
        raise ValueError(f"prefix: expected a non-empty string, got {prefix!r}")
    return spaces, percentiles, histogram_bins, prefix


def _pct_name(p: float) -> str:
    return "p" + (f"{p:g}".replace(".", "p").replace("-", "m"))


def _stat_names(percentiles: Sequence[float], histogram_bins: int | None) -> list[str]:
    names = ["mean", "std", "skewness", "kurtosis"] + [_pct_name(p) for p in percentiles]
    if histogram_bins:
        names += [f"hist_{i}" for i in range(histogram_bins)]
    return names


def colour_feature_names(nucleus: bool = True, *, spaces: str | Sequence[str] = ("rgb", "lab", "hsv"),
                         percentiles: Sequence[float] = (10, 50, 90),
                         histogram_bins: int | None = None, prefix: str = "colour") -> list[str]:
    """Names of the features returned by :func:`colour_features`, in order.

    Parameters
    ----------
    nucleus : bool, default True
        Whether a nucleus mask is given: compartments ``nucleus``,
        ``cytoplasm``, ``cell``; otherwise only ``cell``.
    spaces, percentiles, histogram_bins, prefix
        As in :func:`colour_features`.

    Returns
    -------
    list of str
        Ordered by compartment, colour space, channel, then statistic
        (``mean, std, skewness, kurtosis, p10, p50, p90[, hist_0 ..]``).
        ``3 * 9 * 7 = 189`` names with the defaults (63 without nucleus).

    Examples
    --------
    >>> colour_feature_names(False, spaces=("lab",), percentiles=(50,))[:3]
    ['colour_cell_lab_l_mean', 'colour_cell_lab_l_std', 'colour_cell_lab_l_skewness']
    """
    spaces, percentiles, histogram_bins, prefix = _check_params(
        spaces, percentiles, histogram_bins, prefix)
    return list(_names(bool(nucleus), spaces, percentiles, histogram_bins, prefix))


@functools.lru_cache(maxsize=32)
def _names(nucleus: bool, spaces: tuple[str, ...], percentiles: tuple[float, ...],
           histogram_bins: int | None, prefix: str) -> tuple[str, ...]:
    compartments = ("nucleus", "cytoplasm", "cell") if nucleus else ("cell",)
    stats = _stat_names(percentiles, histogram_bins)
    return tuple(f"{prefix}_{comp}_{space}_{ch}_{st}"
                 for comp in compartments
                 for space in spaces
                 for ch in _SPACES[space]
                 for st in stats)


# --------------------------------------------------------------------------
# computation
# --------------------------------------------------------------------------

def _bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """Bounding box ``(r0, r1, c0, c1)`` (exclusive ends) or None if empty."""
    x, y, w, h = cv2.boundingRect(np.ascontiguousarray(mask).view(np.uint8))
    if w == 0:
        return None
    return y, y + h, x, x + w


def _rgb_to_lab(rgb_t: np.ndarray) -> np.ndarray:
    """(3, n) uint8 sRGB -> (3, n) float64 CIE L*a*b* (D65, 2°), as skimage."""
    t = _XYZN_FROM_RGB @ _SRGB_TO_LINEAR[rgb_t]          # X/Xn, Y/Yn, Z/Zn
    f = np.where(t > 0.008856, np.cbrt(t), 7.787 * t + 16.0 / 116.0)
    lab = np.empty_like(f)
    lab[0] = 116.0 * f[1] - 16.0
    lab[1] = 500.0 * (f[0] - f[1])
    lab[2] = 200.0 * (f[1] - f[2])
    return lab


def _rgb_to_hs(rgb_t: np.ndarray, vmax: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hue in [0, 360) and saturation in 0..1 of (3, n) uint8 RGB.

    Same formulas and tie-breaking as ``skimage.color.rgb2hsv`` (blue wins
    over green over red when several channels are the maximum; grey pixels
    get H = S = 0). ``vmax`` is ``rgb_t.max(axis=0)``; V is ``vmax / 255``.
    """
    r, g, b = rgb_t.astype(np.int16)
    v = vmax.astype(np.int16)
    delta = v - rgb_t.min(axis=0)
    grey = delta == 0
    bmax = b == v
    gmax = (g == v) & ~bmax
    num = np.where(bmax, r - g, np.where(gmax, b - r, g - b))
    sector = np.where(bmax, 4.0, np.where(gmax, 2.0, 0.0))
    h = sector + num / np.where(grey, 1, delta)             # in [-1, 5]
    h = np.where(grey, 0.0, np.where(h < 0, h + 6.0, h) * 60.0)
    s = delta / np.where(grey, 1, v)
    return h, s


def _layout(spaces: Sequence[str]) -> tuple[list[tuple[Any, ...]], int, int]:
    """Per output channel: ('int', code row, value scale) or ('float', row).

    R, G, B and V = max(R, G, B) / 255 take at most 256 values and are
    handled exactly through 256-bin counts; L*, a*, b*, H, S are float rows.
    """
    out: list[tuple[Any, ...]] = []
    n_int = n_float = 0
    for sp in spaces:
        for ch in _SPACES[sp]:
            if sp == "rgb" or (sp == "hsv" and ch == "v"):
                out.append(("int", n_int, 1.0 if sp == "rgb" else 1.0 / 255.0))
                n_int += 1
            else:
                out.append(("float", n_float))
                n_float += 1
    return out, n_int, n_float


@functools.lru_cache(maxsize=32)
def _plan(spaces: tuple[str, ...], percentiles: tuple[float, ...],
          histogram_bins: int | None) -> tuple[Any, ...]:
    """Per-configuration constants of :func:`colour_features`: the number
    of statistics, the channel layout, the positions and ranges of the
    integer and float channels, and the values of the integer codes."""
    n_stats = len(_stat_names(percentiles, histogram_bins))
    layout, n_int, _ = _layout(spaces)
    all_ranges = [r for sp in spaces for r in _RANGES[sp]]
    int_pos = [i for i, spec in enumerate(layout) if spec[0] == "int"]
    float_pos = [i for i, spec in enumerate(layout) if spec[0] == "float"]
    int_ranges = [all_ranges[i] for i in int_pos]
    float_ranges = [all_ranges[i] for i in float_pos]
    int_values = np.array([np.arange(256.0) * layout[i][2] for i in int_pos]).reshape(n_int, 256)
    return (n_stats, layout, n_int, int_pos, float_pos, int_ranges, float_ranges,
            int_values)


def _channel_rows(rgb_t: np.ndarray, spaces: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Integer code rows (k_i, n) uint8 and float rows (k_f, n) float64."""
    codes: Any = []
    floats: Any = []
    vmax = None
    for sp in spaces:
        if sp == "rgb":
            codes.extend(rgb_t)
        elif sp == "lab":
            floats.extend(_rgb_to_lab(rgb_t))
        else:
            # _rgb_to_hs, pixel by pixel in one compiled pass
            n = rgb_t.shape[1]
            vmax, h, s = np.empty(n, np.uint8), np.empty(n), np.empty(n)
            _kernels().rgb_to_hsv(rgb_t, vmax, h, s)
            floats.extend((h, s))
            codes.append(vmax)
    n = rgb_t.shape[1]
    codes = np.stack(codes) if codes else np.empty((0, n), np.uint8)
    floats = np.stack(floats) if floats else np.empty((0, n))
    return codes, floats


def _circular(sin_sum: float, cos_sum: float, n: int) -> tuple[float, float]:
    """Circular mean in [0, 360) and circular std (degrees) from sums.

    Same as ``scipy.stats.circmean/circstd(h, high=360, low=0)``; NaN when
    the mean resultant length is 0 (undefined mean, infinite std).
    """
    s, c = sin_sum / n, cos_sum / n
    r = min(float(np.hypot(s, c)), 1.0)
    if not r > 1e-12:
        return np.nan, np.nan
    return (float(np.rad2deg(np.arctan2(s, c)) % 360.0),
            float(np.rad2deg(np.sqrt(-2.0 * np.log(r)))))


def _bin_index(x: np.ndarray, lo: float, hi: float, bins: int) -> np.ndarray:
    idx = np.floor((x - lo) * (bins / (hi - lo))).astype(np.intp)
    return np.clip(idx, 0, bins - 1, out=idx)


def _int_stats(counts: np.ndarray, values: np.ndarray, percentiles: tuple[float, ...],
               hist_ranges: Sequence[tuple[float, float]], bins: int | None,
               n_stats: int) -> np.ndarray:
    """Statistics of integer-coded rows from their 256-bin counts.

    ``counts`` is (m, k, 256): m compartments of the k integer channels whose
    code ``c`` stands for the value ``values[j, c]``. Returns (m, k, n_stats).
    """
    m, k = counts.shape[:2]
    out = np.full((m, k, n_stats), np.nan)
    if k == 0:
        return out
    n = counts[:, 0, :].sum(axis=1)                      # pixels per compartment
    ok = n > 0
    if not ok.any():
        return out
    cnt = counts[ok].astype(np.float64)                  # (m', k, 256)
    nn = n[ok].astype(np.float64)[:, None]
    res = np.empty((len(nn), k, n_stats))
    j = 4 + len(percentiles)
    _kernels().count_stats(cnt, np.ascontiguousarray(values, dtype=np.float64),
                           np.asarray(percentiles, dtype=np.float64), res[..., :j])
    if bins:
        idx = np.stack([_bin_index(values[i], lo_, hi_, bins)
                        for i, (lo_, hi_) in enumerate(hist_ranges)])       # (k, 256)
        rows = cnt.shape[0] * k
        ids = idx[None] + (np.arange(rows) * bins).reshape(-1, k, 1)
        h = np.bincount(ids.ravel(), weights=cnt.ravel(), minlength=rows * bins)
        res[..., j:] = h.reshape(-1, k, bins) / nn[..., None]
    out[ok] = res
    return out


def _float_stats(x: np.ndarray, percentiles: tuple[float, ...],
                 hist_ranges: Sequence[tuple[float, float]], bins: int | None,
                 n_stats: int) -> np.ndarray:
    """Statistics of float rows ``x`` (k, n)."""
    out = np.full((x.shape[0], n_stats), np.nan)
    n = x.shape[1]
    if n == 0 or x.shape[0] == 0:
        return out
    k = 4 + len(percentiles)
    if percentiles:
        # partitioned at the lower rank of each percentile only: the kernel
        # finds the next ranks and the extremes by scanning
        kth = sorted({int(math.floor(p / 100.0 * (n - 1))) for p in percentiles})
        _kernels().partitioned_row_stats(np.ascontiguousarray(x), np.partition(x, kth, axis=1),
                                         np.asarray(percentiles, dtype=np.float64), out[:, :k])
    else:
        moments = np.empty((x.shape[0], 4))
        _kernels().row_moments(np.ascontiguousarray(x), x.min(axis=1) == x.max(axis=1), moments)
        out[:, :4] = moments
    if bins:
        rows = x.shape[0]
        idx = np.stack([_bin_index(x[i], lo, hi, bins) for i, (lo, hi) in enumerate(hist_ranges)])
        idx += (np.arange(rows) * bins)[:, None]
        out[:, k:] = np.bincount(idx.ravel(), minlength=rows * bins).reshape(rows, bins) / n
    return out


def colour_features(image: ArrayLike, cell_mask: ArrayLike, nucleus_mask: ArrayLike | None = None,
                    *, spaces: str | Sequence[str] = ("rgb", "lab", "hsv"),
                    percentiles: Sequence[float] = (10, 50, 90), histogram_bins: int | None = None,
                    prefix: str = "colour") -> dict[str, float]:
    r"""Colour statistics per compartment and channel.

    Parameters
    ----------
    image : (H, W, 3) array_like
        RGB image, uint8 (other types are converted with the package's
        ``as_uint8_rgb`` rules: floats in [0, 1] are scaled by 255).
    cell_mask : (H, W) array_like of bool
        Mask of the whole cell.
    nucleus_mask : (H, W) array_like of bool, optional
        Mask of the nucleus, intersected with `cell_mask`. When given, the
        compartments are ``nucleus`` (nucleus & cell), ``cytoplasm``
        (cell & ~nucleus) and ``cell``; otherwise only ``cell``.
    spaces : sequence of {"rgb", "lab", "hsv"}, default all three
        Colour spaces, in output order (scales in the module docstring).
    percentiles : sequence of float in [0, 100], default (10, 50, 90)
        Percentiles (``numpy.percentile``, linear interpolation), named
        ``p10``, ``p50``, ... (``p2p5`` for 2.5).
    histogram_bins : int, optional
        If given, add ``hist_0 .. hist_{k-1}``: the fraction of the
        compartment's pixels in each of ``k`` equal bins spanning the fixed
        range of the channel (R, G, B: [0, 256); L*: [0, 100]; a*, b*:
        [-128, 128]; H: [0, 360); S, V: [0, 1]; values outside are clipped
        into the end bins). Each histogram sums to 1.
    prefix : str, default "colour"
        Group prefix of the feature names.

    Returns
    -------
    dict of str to float
        Ordered as :func:`colour_feature_names`. For the values
        :math:`x_1..x_n` of one channel in one compartment:

        ``mean`` : :math:`\bar x = \frac1n\sum x_i`;
        ``std`` : :math:`\sqrt{m_2}` (population, ddof=0), where
        :math:`m_k = \frac1n\sum (x_i - \bar x)^k`;
        ``skewness`` : :math:`m_3 / m_2^{3/2}`;
        ``kurtosis`` : :math:`m_4 / m_2^2 - 3` (Fisher excess);
        both as ``scipy.stats.skew/kurtosis(bias=True)``;
        ``pXX`` : ``numpy.percentile(x, XX)``.

        Hue is circular: its ``mean`` is the circular mean
        :math:`\operatorname{atan2}(\overline{\sin h}, \overline{\cos h})`
        in [0, 360) and its ``std`` the circular standard deviation
        :math:`\sqrt{-2 \ln R}` in degrees, :math:`R` being the mean
        resultant length (``scipy.stats.circmean/circstd`` with
        ``high=360``). Hue skewness, kurtosis and percentiles are the
        ordinary linear statistics of the values in [0, 360). Grey pixels
        have hue 0 and are included.

    Raises
    ------
    ValueError
        If `image` is not an RGB image, a mask has the wrong shape or a
        parameter is invalid.

    Notes
    -----
    An empty compartment gives NaN for all its features. A constant channel
    (e.g. a one-pixel compartment) has std 0 and NaN skewness and kurtosis,
    never ``inf``. Only the bounding box of the cell is converted.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.zeros((8, 8, 3), np.uint8); img[..., 0] = 200
    >>> cell = np.zeros((8, 8), bool); cell[2:6, 2:6] = True
    >>> f = colour_features(img, cell, spaces=("rgb",), percentiles=())
    >>> f["colour_cell_rgb_r_mean"], f["colour_cell_rgb_r_std"]
    (200.0, 0.0)
    """
    spaces, percentiles, histogram_bins, prefix = _check_params(
        spaces, percentiles, histogram_bins, prefix)
    arr = check_image(image, "image", ndim=(3,))
    cell = check_mask(cell_mask, arr.shape, "cell_mask")
    nucleus = None if nucleus_mask is None else check_mask(nucleus_mask, arr.shape, "nucleus_mask")
    # as_uint8_rgb of an array check_image already accepted: uint8 RGB as it is
    rgb = np.ascontiguousarray(arr) if arr.dtype == np.uint8 and arr.ndim == 3 \
        else as_uint8_rgb(arr, "image")

    # colour_feature_names of the parameters checked above
    names = _names(nucleus is not None, spaces, percentiles, histogram_bins, prefix)
    values = _colour_values(rgb, cell, nucleus, spaces, percentiles, histogram_bins)
    if values is None:
        return dict.fromkeys(names, np.nan)
    return dict(zip(names, values.tolist()))


def _colour_values(rgb: np.ndarray, cell: np.ndarray, nucleus: np.ndarray | None,
                   spaces: tuple[str, ...], percentiles: tuple[float, ...],
                   histogram_bins: int | None) -> np.ndarray | None:
    """The values of :func:`colour_features` as a float64 array in the order
    of its names, or None for an empty ``cell``: checked arguments (uint8
    RGB C-contiguous image, bool masks of its shape, parameters as
    ``_check_params`` returns them); what per-cell extraction calls."""
    box = _bbox(cell)
    if box is None:
        return None
    r0, r1, c0, c1 = box
    cell_c = cell[r0:r1, c0:c1]
    crop = rgb[r0:r1, c0:c1]
    (n_stats, layout, n_int, int_pos, float_pos, int_ranges, float_ranges,
     int_values) = _plan(spaces, percentiles, histogram_bins)

    # (3, n) C-contiguous (row operations on a transposed view are ~3x slower)
    rgb_t = np.ascontiguousarray(crop[cell_c].T)           # raster order
    codes, floats = _channel_rows(rgb_t, spaces)
    hue_pos = 3 * spaces.index("hsv") if "hsv" in spaces else None
    if hue_pos is not None:
        hue = np.deg2rad(floats[layout[hue_pos][1]])
        sin_h, cos_h = np.sin(hue), np.cos(hue)
    offsets = (np.arange(n_int) * 256)[:, None]

    def counts_of(c: np.ndarray) -> np.ndarray:
        return np.bincount((c + offsets).ravel(), minlength=256 * n_int).reshape(n_int, 256)

    def trig_of(sel: np.ndarray | None) -> tuple[float, float]:
        if hue_pos is None:
            return (0.0, 0.0)
        if sel is None:
            return (sin_h.sum(), cos_h.sum())
        return (sin_h[sel].sum(), cos_h[sel].sum())

    if nucleus is None:
        parts = [(floats, trig_of(None))]
        counts = counts_of(codes)[None]
    else:
        in_nuc = nucleus[r0:r1, c0:c1][cell_c]
        n_nuc = int(np.count_nonzero(in_nuc))
        f_nuc = np.empty((floats.shape[0], n_nuc))
        f_cyto = np.empty((floats.shape[0], in_nuc.size - n_nuc))
        # the codes' counts of nucleus, cytoplasm and cell, and the float
        # rows of nucleus and cytoplasm, in one pass
        counts = np.empty((3, n_int, 256), np.int64)
        _kernels().split_compartments(codes, floats, in_nuc, counts, f_nuc, f_cyto)
        parts = [(f, trig_of(sel)) for f, sel in ((f_nuc, in_nuc), (f_cyto, ~in_nuc))]
        # the cell = nucleus + cytoplasm (the hue sums add up)
        (_, ta), (_, tb) = parts
        parts.append((floats, (ta[0] + tb[0], ta[1] + tb[1])))

    blocks = np.empty((len(parts), len(layout), n_stats))
    blocks[:, int_pos] = _int_stats(counts, int_values, percentiles, int_ranges,
                                    histogram_bins, n_stats)
    for b, (f, trig) in zip(blocks, parts):
        b[float_pos] = _float_stats(f, percentiles, float_ranges, histogram_bins, n_stats)
        if hue_pos is not None and f.shape[1] > 0:
            b[hue_pos, :2] = _circular(trig[0], trig[1], f.shape[1])
    return blocks.ravel()
