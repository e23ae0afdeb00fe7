"""Image preprocessing: grey conversion, contrast, resizing and stain normalisation.

Every function is pure: it takes arrays, returns new arrays and never modifies
its input. Images are RGB ``uint8`` arrays of shape ``(H, W, 3)`` or grayscale
``uint8`` arrays of shape ``(H, W)``; floating point images in ``[0, 1]`` (or
``[0, 255]``) and other integer types are converted to ``uint8`` first where
that makes sense (see :func:`leukfeat._validation.as_uint8_rgb`). Outputs are
``uint8`` unless a docstring says otherwise.

Shapes and sizes are always given in **(height, width)** order, like numpy
shapes and scikit-image, and unlike OpenCV's ``(width, height)``.

Colour space conventions
------------------------
CIE L*a*b* values are computed with OpenCV from ``float32`` RGB in ``[0, 1]``
(sRGB, D65): ``L`` in ``[0, 100]``, ``a`` and ``b`` roughly in ``[-127, 127]``.
They agree with :func:`skimage.color.rgb2lab` to within about 0.5 and are what
:func:`equalize`, :func:`clahe`, :func:`reinhard_stats` and :func:`reinhard`
operate on.

Stain normalisation
-------------------
Reinhard colour transfer [1]_ and Macenko stain normalisation [2]_ were
designed for H&E histology but apply unchanged to Wright/Giemsa stained blood
smears (two dominant dyes, bright background).

References
----------
.. [1] E. Reinhard, M. Ashikhmin, B. Gooch and P. Shirley, "Color transfer
   between images", IEEE Computer Graphics and Applications 21(5), 2001.
.. [2] M. Macenko et al., "A method for normalizing histology slides for
   quantitative analysis", IEEE ISBI 2009, pp. 1107-1110.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Real
from typing import TYPE_CHECKING, Any, Callable, cast

import cv2
import numpy as np

from ._validation import as_uint8_rgb, check_image, check_int_pair, check_mask

if TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import ArrayLike

__all__ = [
    "INTERPOLATIONS",
    "to_gray",
    "equalize",
    "clahe",
    "resize",
    "rescale",
    "rescale_intensity",
    "ReinhardTarget",
    "reinhard_stats",
    "reinhard",
    "MacenkoTarget",
    "macenko_stains",
    "macenko",
    "MACENKO_REFERENCE",
    "SMEAR_REINHARD_TARGET",
    "SMEAR_MACENKO_TARGET",
    "MIN_STAINED_PIXELS",
]


# --------------------------------------------------------------------------- #
# private helpers
# --------------------------------------------------------------------------- #

def _as_uint8(image: ArrayLike, name: str = "image") -> np.ndarray:
    """Validated uint8 image keeping its number of dimensions (may be a view)."""
    arr = check_image(image, name)
    if arr.dtype == np.uint8:
        return arr
    rgb = as_uint8_rgb(arr, name)
    return np.ascontiguousarray(rgb[..., 0]) if arr.ndim == 2 else rgb


def _rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB -> float32 CIE Lab (L in [0, 100])."""
    return cv2.cvtColor(rgb.astype(np.float32) * np.float32(1.0 / 255.0), cv2.COLOR_RGB2Lab)


def _lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """float CIE Lab -> uint8 RGB with clipping."""
    rgb = cv2.cvtColor(np.ascontiguousarray(lab, dtype=np.float32), cv2.COLOR_Lab2RGB)
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


def _apply_to_lightness(rgb: np.ndarray, func: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Apply a uint8 -> uint8 grey-level operation to the L* channel of an RGB image.

    L* (0..100) is quantised to 0..255 for ``func``; a* and b* are kept at full
    float precision so that the chroma and the hue angle are unchanged.
    """
    lab = _rgb_to_lab(rgb)
    light = np.clip(np.rint(lab[..., 0] * 2.55), 0, 255).astype(np.uint8)
    lab[..., 0] = func(light).astype(np.float32) * np.float32(100.0 / 255.0)
    return _lab_to_rgb(lab)


_INTERPOLATIONS = {
    "area": cv2.INTER_AREA,
    "linear": cv2.INTER_LINEAR,
    "cubic": cv2.INTER_CUBIC,
    "nearest": None,  # done exactly in numpy, for any dtype
}
#: The interpolations of :func:`resize` (``interpolation=``).
INTERPOLATIONS = tuple(_INTERPOLATIONS)
_CV2_RESIZE_DTYPES = (np.uint8, np.uint16, np.int16, np.float32, np.float64)


def _check_interpolation(interpolation: Any) -> str:
    if interpolation not in _INTERPOLATIONS:
        raise ValueError(f"interpolation: expected one of {sorted(_INTERPOLATIONS)}, "
                         f"got {interpolation!r}")
    return interpolation


def _resize_exact(arr: np.ndarray, out_h: int, out_w: int, interpolation: str) -> np.ndarray:
    """Resize ``arr`` to exactly (out_h, out_w), keeping its dtype."""
    in_h, in_w = arr.shape[:2]
    if interpolation == "nearest":
        # Pixel-centre nearest neighbour (like cv2.INTER_NEAREST_EXACT), any dtype.
        rows = np.minimum(((np.arange(out_h) + 0.5) * (in_h / out_h)).astype(np.intp), in_h - 1)
        cols = np.minimum(((np.arange(out_w) + 0.5) * (in_w / out_w)).astype(np.intp), in_w - 1)
        return arr[rows[:, None], cols[None, :]]
    flag = cast(int, _INTERPOLATIONS[interpolation])
    dtype = arr.dtype
    out: np.ndarray
    if dtype in _CV2_RESIZE_DTYPES:
        out = cv2.resize(np.ascontiguousarray(arr), (out_w, out_h), interpolation=flag)
    else:
        work = np.float32 if dtype in (np.bool_, np.float16) else np.float64
        out = cv2.resize(np.ascontiguousarray(arr, dtype=work), (out_w, out_h),
                         interpolation=flag)
        if dtype == np.bool_:
            out = out >= 0.5
        elif np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            out = np.clip(np.rint(out), info.min, info.max).astype(dtype)
        else:
            out = out.astype(dtype)
    if out.ndim == 2 and arr.ndim == 3:  # cv2 drops a singleton channel axis
        out = out[..., None]
    return out


def _pad_array(pad_value: Any, arr: np.ndarray) -> np.ndarray:
    """Validate ``pad_value`` and return it as a per-channel array of ``arr.dtype``."""
    n_channels = arr.shape[2] if arr.ndim == 3 else 1
    try:
        value = np.asarray(pad_value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"pad_value: expected a number or a per-channel sequence, "
                         f"got {pad_value!r}") from None
    if value.ndim == 0:
        value = np.full(n_channels, float(value))
    elif value.shape != (n_channels,) or arr.ndim == 2:
        raise ValueError(f"pad_value: expected a scalar or {n_channels} values for an image "
                         f"of shape {arr.shape}, got {pad_value!r}")
    if not np.isfinite(value).all():
        raise ValueError(f"pad_value: must be finite, got {pad_value!r}")
    if arr.dtype == np.bool_:
        return value.astype(bool)
    if np.issubdtype(arr.dtype, np.integer):
        info = np.iinfo(arr.dtype)
        if value.min() < info.min or value.max() > info.max or np.any(value != np.round(value)):
            raise ValueError(f"pad_value: {pad_value!r} is not representable in {arr.dtype}")
    return value.astype(arr.dtype)


# --------------------------------------------------------------------------- #
# grey levels and contrast
# --------------------------------------------------------------------------- #

def to_gray(image: ArrayLike) -> np.ndarray:
    """Convert an RGB image to grayscale with ITU-R BT.601 luma weights.

    ``gray = 0.299 R + 0.587 G + 0.114 B`` (``cv2.COLOR_RGB2GRAY``, rounded).

    Parameters
    ----------
    image : array_like, shape (H, W, 3) or (H, W)
        RGB or grayscale image, ``uint8`` or float in ``[0, 1]``.

    Returns
    -------
    numpy.ndarray of uint8, shape (H, W)
        Grayscale image. A 2-D input is returned as a ``uint8`` copy.

    Raises
    ------
    ValueError
        If ``image`` is not a valid image.

    Examples
    --------
    >>> import numpy as np
    >>> rgb = np.zeros((2, 2, 3), np.uint8)
    >>> rgb[..., 0] = 100
    >>> to_gray(rgb)
    array([[30, 30],
           [30, 30]], dtype=uint8)
    """
    arr = _as_uint8(image)
    if arr.ndim == 2:
        return arr.copy()
    return cv2.cvtColor(np.ascontiguousarray(arr), cv2.COLOR_RGB2GRAY)


def equalize(image: ArrayLike) -> np.ndarray:
    """Global histogram equalisation.

    Grayscale images are equalised with ``cv2.equalizeHist``. For RGB images
    only the lightness **L\\* of CIE L\\*a\\*b\\*** is equalised (quantised to 256
    levels); a\\* and b\\* are kept, so the chroma and hue angle of every pixel
    are preserved (up to clipping to the RGB gamut).

    Parameters
    ----------
    image : array_like, shape (H, W, 3) or (H, W)
        RGB or grayscale image, ``uint8`` or float in ``[0, 1]``.

    Returns
    -------
    numpy.ndarray of uint8
        Equalised image with the same shape as ``image``.

    Raises
    ------
    ValueError
        If ``image`` is not a valid image.

    Examples
    --------
    >>> import numpy as np
    >>> ramp = np.tile(np.arange(100, 104, dtype=np.uint8), (4, 1))
    >>> equalize(ramp)[0]
    array([  0,  85, 170, 255], dtype=uint8)
    """
    arr = _as_uint8(image)
    if arr.ndim == 2:
        return cv2.equalizeHist(np.ascontiguousarray(arr))
    return _apply_to_lightness(arr, cv2.equalizeHist)


def clahe(image: ArrayLike, clip_limit: float = 2.0,
          tile_grid_size: int | Sequence[int] = (8, 8)) -> np.ndarray:
    """Contrast Limited Adaptive Histogram Equalisation (OpenCV).

    Grayscale images are processed directly; for RGB images CLAHE is applied to
    the L\\* channel of CIE L\\*a\\*b\\* only (a\\* and b\\* kept), as in
    :func:`equalize`.

    Parameters
    ----------
    image : array_like, shape (H, W, 3) or (H, W)
        RGB or grayscale image, ``uint8`` or float in ``[0, 1]``.
    clip_limit : float, optional
        Contrast limit (OpenCV's ``clipLimit``), > 0.
    tile_grid_size : int or (int, int), optional
        Number of tiles as **(rows, columns)**, i.e. (height, width) order.

    Returns
    -------
    numpy.ndarray of uint8
        Image with the same shape as ``image``.

    Raises
    ------
    ValueError
        If ``image``, ``clip_limit`` or ``tile_grid_size`` is invalid.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.tile(np.arange(96, 160, dtype=np.uint8), (64, 1))
    >>> out = clahe(img)
    >>> out.shape, out.dtype, bool(out.std() > img.std())
    ((64, 64), dtype('uint8'), True)
    """
    arr = _as_uint8(image)
    if (not isinstance(clip_limit, (Real, np.number)) or isinstance(clip_limit, bool)
            or not np.isfinite(clip_limit) or clip_limit <= 0):
        raise ValueError(f"clip_limit: expected a positive finite number, got {clip_limit!r}")
    rows, cols = check_int_pair(tile_grid_size, "tile_grid_size")
    op = cv2.createCLAHE(clipLimit=float(clip_limit), tileGridSize=(cols, rows))
    if arr.ndim == 2:
        return op.apply(np.ascontiguousarray(arr))
    return _apply_to_lightness(arr, op.apply)


# --------------------------------------------------------------------------- #
# geometry and intensity range
# --------------------------------------------------------------------------- #

def resize(image: ArrayLike, size: int | Sequence[int], *, keep_aspect: bool = False,
           pad_value: float | tuple[float, float, float] = 0,
           interpolation: str = "area") -> np.ndarray:
    """Resize an image to ``size = (height, width)``.

    Parameters
    ----------
    image : array_like, shape (H, W) or (H, W, 3)
        Image, mask or label image of any numeric or bool dtype.
    size : int or (int, int)
        Output size in **(height, width)** order (numpy order, *not* OpenCV's
        ``(width, height)``). An int gives a square output.
    keep_aspect : bool, optional
        If True, the image is scaled to the largest size that fits inside
        ``size`` with its aspect ratio kept, and centred on a canvas of
        ``size`` filled with ``pad_value`` (odd padding puts the extra pixel at
        the bottom / right).
    pad_value : scalar or sequence of 3, optional
        Fill value of the padding (a per-channel triple for RGB images). Must
        be representable in the image dtype.
    interpolation : {"area", "linear", "nearest", "cubic"}, optional
        ``"area"`` (default, best for shrinking), ``"linear"`` and ``"cubic"``
        use OpenCV. ``"nearest"`` uses pixel-centre nearest neighbour and keeps
        the exact set of values, so use it for masks and label images.

    Returns
    -------
    numpy.ndarray
        Resized image of shape ``size`` (plus the channel axis), with the same
        dtype as ``image``. Bool masks are resized as float and thresholded at
        0.5 with non-nearest interpolation; integer types OpenCV cannot resize
        are resized as float64, rounded and clipped to the dtype range.

    Raises
    ------
    ValueError
        If ``image``, ``size``, ``pad_value`` or ``interpolation`` is invalid.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.zeros((100, 50, 3), np.uint8)
    >>> resize(img, (30, 20)).shape
    (30, 20, 3)
    >>> resize(img, 80, keep_aspect=True, pad_value=(255, 0, 0)).shape
    (80, 80, 3)
    """
    arr = check_image(image)
    out_h, out_w = check_int_pair(size, "size")
    interpolation = _check_interpolation(interpolation)
    if not keep_aspect:
        return _resize_exact(arr, out_h, out_w, interpolation)
    fill = _pad_array(pad_value, arr)
    in_h, in_w = arr.shape[:2]
    scale = min(out_h / in_h, out_w / in_w)
    new_h = min(out_h, max(1, int(round(in_h * scale))))
    new_w = min(out_w, max(1, int(round(in_w * scale))))
    content = _resize_exact(arr, new_h, new_w, interpolation)
    out = np.empty((out_h, out_w) + arr.shape[2:], dtype=arr.dtype)
    out[...] = fill if arr.ndim == 3 else fill[0]
    top, left = (out_h - new_h) // 2, (out_w - new_w) // 2
    out[top:top + new_h, left:left + new_w] = content
    return out


def rescale(image: ArrayLike, scale: float | tuple[float, float], *,
            interpolation: str = "area") -> np.ndarray:
    """Resize an image by a scale factor.

    Parameters
    ----------
    image : array_like, shape (H, W) or (H, W, 3)
        Image, mask or label image (see :func:`resize`).
    scale : float or (float, float)
        Positive scale factor, or one per axis in (height, width) order. The
        output size is ``round(H * scale_y), round(W * scale_x)``, at least 1.
    interpolation : {"area", "linear", "nearest", "cubic"}, optional
        As in :func:`resize`.

    Returns
    -------
    numpy.ndarray
        Rescaled image with the dtype of ``image``.

    Raises
    ------
    ValueError
        If ``image``, ``scale`` or ``interpolation`` is invalid.

    Examples
    --------
    >>> import numpy as np
    >>> rescale(np.zeros((10, 20), np.uint8), 0.5).shape
    (5, 10)
    """
    arr = check_image(image)
    try:
        factors = np.broadcast_to(np.asarray(scale, dtype=np.float64), (2,))
    except (TypeError, ValueError):
        raise ValueError(f"scale: expected a positive number or a (y, x) pair, "
                         f"got {scale!r}") from None
    if not np.isfinite(factors).all() or (factors <= 0).any():
        raise ValueError(f"scale: expected positive finite factors, got {scale!r}")
    out_h = max(1, int(round(arr.shape[0] * factors[0])))
    out_w = max(1, int(round(arr.shape[1] * factors[1])))
    return _resize_exact(arr, out_h, out_w, _check_interpolation(interpolation))


def rescale_intensity(image: ArrayLike) -> np.ndarray:
    """Stretch intensities linearly to ``[0, 1]`` using the image's real range.

    ``(image - min) / (max - min)``, with one min and max over the **whole**
    image (all channels together, so colour balance is kept). A constant image
    gives all zeros.

    Parameters
    ----------
    image : array_like, shape (H, W) or (H, W, 3)
        Image of any numeric or bool dtype.

    Returns
    -------
    numpy.ndarray of float64
        Image of the same shape with values in ``[0, 1]``.

    Raises
    ------
    ValueError
        If ``image`` is not a valid image.

    Examples
    --------
    >>> import numpy as np
    >>> rescale_intensity(np.array([[10, 20], [30, 50]], np.uint8))
    array([[0.  , 0.25],
           [0.5 , 1.  ]])
    """
    arr = check_image(image).astype(np.float64)
    lo, hi = arr.min(), arr.max()
    if hi <= lo:
        return np.zeros_like(arr)
    out = (arr - lo) / (hi - lo)
    np.clip(out, 0.0, 1.0, out=out)
    return out


# --------------------------------------------------------------------------- #
# Reinhard colour transfer
# --------------------------------------------------------------------------- #

def _frozen_vector(value: Any, shape: tuple[int, ...], name: str, *,
                   positive: bool = False) -> np.ndarray:
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected numbers of shape {shape}, got {value!r}") from None
    if arr.shape != shape:
        raise ValueError(f"{name}: expected shape {shape}, got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name}: values must be finite")
    if positive and (arr <= 0).any():
        raise ValueError(f"{name}: values must be positive, got {arr}")
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class ReinhardTarget:
    """Target statistics for :func:`reinhard`.

    Attributes
    ----------
    mean : numpy.ndarray, shape (3,)
        Per-channel mean of CIE L\\*, a\\*, b\\* (L in ``[0, 100]``).
    std : numpy.ndarray, shape (3,)
        Per-channel standard deviation of L\\*, a\\*, b\\* (non-negative).
    """

    mean: np.ndarray
    std: np.ndarray

    if TYPE_CHECKING:
        # what the generated __init__ accepts (__post_init__ converts)
        def __init__(self, mean: ArrayLike, std: ArrayLike) -> None: ...

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", _frozen_vector(self.mean, (3,), "mean"))
        std = _frozen_vector(self.std, (3,), "std")
        if (std < 0).any():
            raise ValueError(f"std: values must be non-negative, got {std}")
        object.__setattr__(self, "std", std)


def _image_list(images: Any, name: str) -> list[Any]:
    """A single image, a stack (N, H, W, C) or a sequence of images -> list of images."""
    from ._batch import as_batch

    return as_batch(images, name, single="wrap", paths=False)


def reinhard_stats(images: ArrayLike | Sequence[ArrayLike],
                   masks: ArrayLike | Sequence[ArrayLike] | None = None) -> ReinhardTarget:
    """Compute Reinhard target statistics from one or several reference images.

    The mean and standard deviation of each CIE L\\*a\\*b\\* channel are pooled
    over all (masked) pixels of all images. L\\*a\\*b\\* is OpenCV's float
    conversion (L in ``[0, 100]``, a and b roughly in ``[-127, 127]``).

    Parameters
    ----------
    images : array_like or sequence of array_like
        One RGB image ``(H, W, 3)``, a stack ``(N, H, W, 3)`` or a sequence of
        images (sizes may differ). Grayscale images are treated as grey RGB.
    masks : array_like or sequence of array_like, optional
        Boolean mask(s), one per image, selecting the pixels to use (e.g. to
        exclude the background). Default: all pixels.

    Returns
    -------
    ReinhardTarget

    Raises
    ------
    ValueError
        If an image or mask is invalid, or the masks select no pixel.

    Examples
    --------
    >>> import numpy as np
    >>> t = reinhard_stats(np.full((4, 4, 3), 255, np.uint8))
    >>> np.round(t.mean, 1), t.std
    (array([100.,   0.,   0.]), array([0., 0., 0.]))
    """
    return _reinhard_stats(images, masks, "images")


def _reinhard_stats(images: Any, masks: Any, name: str) -> ReinhardTarget:
    imgs = _image_list(images, name)
    if masks is None:
        mask_list = [None] * len(imgs)
    else:
        mask_list = [masks] if len(imgs) == 1 and np.ndim(masks) == 2 else list(masks)
        if len(mask_list) != len(imgs):
            raise ValueError(f"masks: expected {len(imgs)} masks, got {len(mask_list)}")
    total = np.zeros(3)
    total_sq = np.zeros(3)
    count = 0
    for i, (img, m) in enumerate(zip(imgs, mask_list)):
        rgb = as_uint8_rgb(img, name if len(imgs) == 1 else f"{name}[{i}]")
        sel = None if m is None else check_mask(
            m, rgb.shape, "masks" if len(imgs) == 1 else f"masks[{i}]")
        mean, std, n = _lab_stats(_rgb_to_lab(rgb), sel)
        total += n * mean
        total_sq += n * (std * std + mean * mean)
        count += n
    if count == 0:
        raise ValueError("masks: the masks select no pixels")
    mean = total / count
    var = np.maximum(total_sq / count - mean * mean, 0.0)
    return ReinhardTarget(mean, np.sqrt(var))


def _lab_stats(lab: np.ndarray, mask: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray, int]:
    """Per-channel mean, std (float64) and pixel count of a Lab image, optionally masked."""
    if mask is None:
        n = lab.shape[0] * lab.shape[1]
        mean, std = cv2.meanStdDev(lab)
    else:
        n = int(np.count_nonzero(mask))
        if n == 0:
            return np.zeros(3), np.zeros(3), 0
        mean, std = cv2.meanStdDev(lab, mask=np.ascontiguousarray(mask).view(np.uint8))
    return mean.ravel(), std.ravel(), n


def _as_reinhard_target(target: Any) -> ReinhardTarget:
    if isinstance(target, ReinhardTarget):
        return target
    if isinstance(target, (tuple, list)) and len(target) == 2:
        try:
            parts = [np.asarray(t, dtype=np.float64) for t in target]
        except (TypeError, ValueError):
            parts = None
        if parts is not None and all(p.shape == (3,) for p in parts):
            try:
                return ReinhardTarget(*parts)
            except ValueError as exc:
                raise ValueError(f"target: {exc}") from None
    if isinstance(target, (np.ndarray, tuple, list)):
        return _reinhard_stats(target, None, "target")
    raise ValueError("target: expected a ReinhardTarget, a (mean, std) pair or a "
                     f"reference image, got {type(target).__name__}")


def reinhard(image: ArrayLike, target: ReinhardTarget | ArrayLike, *,
             mask: ArrayLike | None = None) -> np.ndarray:
    """Reinhard et al. (2001) colour transfer in CIE L\\*a\\*b\\*.

    Each channel is standardised with the source statistics and rescaled to
    the target statistics, ``(x - mean_src) / std_src * std_tgt + mean_tgt``,
    then converted back to RGB with clipping. A source channel with zero
    standard deviation is set to the target mean.

    Parameters
    ----------
    image : array_like, shape (H, W, 3) or (H, W)
        Image to normalise, ``uint8`` or float in ``[0, 1]``. Grayscale input is
        treated as grey RGB.
    target : ReinhardTarget, (mean, std) pair or array_like
        Target statistics (see :func:`reinhard_stats`), a pair of L\\*a\\*b\\*
        3-vectors, or a reference image (or stack/sequence of images) whose
        statistics are computed with :func:`reinhard_stats`.
    mask : array_like of bool, shape (H, W), optional
        If given, the *source* statistics are computed only on these pixels
        (e.g. excluding the background); the transfer is still applied to the
        whole image.

    Returns
    -------
    numpy.ndarray of uint8, shape (H, W, 3)
        Colour-normalised RGB image.

    Raises
    ------
    ValueError
        If ``image``, ``target`` or ``mask`` is invalid, or ``mask`` is empty.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> img = rng.integers(50, 200, (8, 8, 3), dtype=np.uint8)
    >>> out = reinhard(img, reinhard_stats(img))
    >>> out.shape, out.dtype, int(np.abs(out.astype(int) - img).max()) <= 2
    ((8, 8, 3), dtype('uint8'), True)
    """
    rgb = as_uint8_rgb(image)
    tgt = _as_reinhard_target(target)
    lab = _rgb_to_lab(rgb)
    sel = None if mask is None else check_mask(mask, rgb.shape)
    mean_src, std_src, n = _lab_stats(lab, sel)
    if n == 0:
        raise ValueError("mask: the mask selects no pixels")
    ok = std_src > 1e-6
    gain = np.where(ok, tgt.std / np.where(ok, std_src, 1.0), 0.0)
    offset = tgt.mean - gain * mean_src
    lab = lab * gain.astype(np.float32) + offset.astype(np.float32)
    return _lab_to_rgb(lab)


# --------------------------------------------------------------------------- #
# Macenko stain normalisation
# --------------------------------------------------------------------------- #

#: Minimum number of stained pixels (OD >= beta in every channel) needed to
#: estimate stain vectors; :func:`macenko` returns images with fewer unchanged.
MIN_STAINED_PIXELS = 50


@dataclass(frozen=True, eq=False)
class MacenkoTarget:
    """Stain matrix and maximum concentrations for :func:`macenko`.

    Attributes
    ----------
    stain_matrix : numpy.ndarray, shape (3, 2)
        Unit optical-density stain vectors as columns, in RGB order. The first
        column is the stain with the larger red optical density (haematoxylin
        in H&E; the nuclear, purple stain in Wright/Giemsa).
    max_concentrations : numpy.ndarray, shape (2,)
        Robust maximum (99th percentile) concentration of each stain.
    """

    stain_matrix: np.ndarray
    max_concentrations: np.ndarray

    if TYPE_CHECKING:
        # what the generated __init__ accepts (__post_init__ converts)
        def __init__(self, stain_matrix: ArrayLike, max_concentrations: ArrayLike) -> None: ...

    def __post_init__(self) -> None:
        m = _frozen_vector(self.stain_matrix, (3, 2), "stain_matrix")
        if abs(np.linalg.det(m.T @ m)) < 1e-12:
            raise ValueError("stain_matrix: the two stain vectors are linearly dependent")
        object.__setattr__(self, "stain_matrix", m)
        object.__setattr__(self, "max_concentrations",
                           _frozen_vector(self.max_concentrations, (2,),
                                          "max_concentrations", positive=True))


#: Reference H&E target of the Macenko reference implementation
#: (``HERef`` / ``maxCRef``), used by :func:`macenko` by default.
MACENKO_REFERENCE = MacenkoTarget(
    stain_matrix=[[0.5626, 0.2159], [0.7201, 0.8012], [0.4062, 0.5581]],
    max_concentrations=[1.9705, 1.0308],
)


#: Wright-Giemsa targets: the colour statistics of leukfeat's synthetic
#: smears (:func:`reinhard_stats` / :func:`macenko_stains` of
#: ``make_cells(24, n_classes=3, size=128, random_state=0)``), frozen here so
#: that a change of the generator never changes them. Per-image normalisation
#: to a fixed target learns nothing from the images (no statistic crosses
#: cross-validation folds); used by ``leukfeat evaluate --stain`` and the
#: ``stain_normalize`` recipe step.
SMEAR_REINHARD_TARGET = ReinhardTarget(mean=(83.296509, 6.995175, 0.364563),
                                       std=(14.077922, 9.669895, 11.052252))
SMEAR_MACENKO_TARGET = MacenkoTarget(
    stain_matrix=((0.514935, 0.478715), (0.816757, 0.549736), (0.260287, 0.684560)),
    max_concentrations=(1.309586, 0.516323))


def _check_macenko_params(Io: float, alpha: float, beta: float) -> None:
    for name, val in (("Io", Io), ("alpha", alpha), ("beta", beta)):
        if (not isinstance(val, (Real, np.number)) or isinstance(val, bool)
                or not np.isfinite(val)):
            raise ValueError(f"{name}: expected a finite number, got {val!r}")
    if Io <= 0:
        raise ValueError(f"Io: expected a positive transmitted intensity, got {Io!r}")
    if not 0 <= alpha < 50:
        raise ValueError(f"alpha: expected a percentile in [0, 50), got {alpha!r}")
    if beta < 0:
        raise ValueError(f"beta: expected a non-negative OD threshold, got {beta!r}")


def _optical_density(rgb: np.ndarray, Io: float) -> np.ndarray:
    """uint8 RGB -> (N, 3) optical density ``-log((I + 1) / Io)`` (via a lookup table)."""
    lut = -np.log((np.arange(256, dtype=np.float64) + 1.0) / float(Io))
    return lut[rgb.reshape(-1, 3)]


def _estimate_stains(od_hat: np.ndarray, alpha: float) -> np.ndarray | None:
    """Macenko stain vectors from stained OD pixels; None if degenerate."""
    if od_hat.shape[0] < MIN_STAINED_PIXELS:
        return None
    _, eigvecs = np.linalg.eigh(np.cov(od_hat, rowvar=False))
    plane = eigvecs[:, 1:3].copy()
    # Orient the principal axis along positive OD so that projected angles lie in
    # (-pi/2, pi/2) and never straddle the +-pi branch cut of arctan2.
    if plane[:, 1].sum() < 0:
        plane[:, 1] = -plane[:, 1]
    proj = od_hat @ plane
    phi = np.arctan2(proj[:, 1], proj[:, 0])
    min_phi, max_phi = np.percentile(phi, [alpha, 100 - alpha])
    v_min = plane @ np.array([np.cos(min_phi), np.sin(min_phi)])
    v_max = plane @ np.array([np.cos(max_phi), np.sin(max_phi)])
    stains = np.stack([v_min, v_max], axis=1) if v_min[0] > v_max[0] else \
        np.stack([v_max, v_min], axis=1)
    stains /= np.linalg.norm(stains, axis=0, keepdims=True)
    if abs(float(stains[:, 0] @ stains[:, 1])) > 1 - 1e-6:
        return None  # a single colour direction: two stains cannot be separated
    return stains


def _concentrations(od: np.ndarray, stains: np.ndarray) -> np.ndarray:
    """Least-squares stain concentrations, shape (2, N)."""
    return np.linalg.pinv(stains) @ od.T


def macenko_stains(images: ArrayLike | Sequence[ArrayLike], *, Io: float = 240, alpha: float = 1,
                   beta: float = 0.15) -> MacenkoTarget:
    """Estimate the Macenko stain matrix and maximum concentrations.

    Follows Macenko et al. (2009) and its reference implementation: optical
    density ``OD = -log((I + 1) / Io)``; pixels with OD < ``beta`` in any
    channel are dropped; the OD is projected on the plane of the two main
    eigenvectors of its covariance; the stain vectors are the directions at the
    ``alpha`` and ``100 - alpha`` percentiles of the projected angles. Several
    images are pooled (stained pixels of all images together).

    Parameters
    ----------
    images : array_like or sequence of array_like
        One RGB image ``(H, W, 3)``, a stack ``(N, H, W, 3)`` or a sequence of
        images, ``uint8`` or float in ``[0, 1]``.
    Io : float, optional
        Transmitted (background) light intensity.
    alpha : float, optional
        Percentile (in [0, 50)) for the robust extreme angles.
    beta : float, optional
        OD threshold below which a pixel counts as background.

    Returns
    -------
    MacenkoTarget
        ``stain_matrix`` (3, 2) with unit columns, the first being the stain
        with the larger red OD, and ``max_concentrations`` the 99th percentile
        of each stain's concentration over all pixels.

    Raises
    ------
    ValueError
        If an image or parameter is invalid, if fewer than
        ``MIN_STAINED_PIXELS`` (50) stained pixels are found, or if the
        stained pixels contain a single colour (stains not separable).

    Examples
    --------
    >>> import numpy as np
    >>> stains = np.array([[0.65, 0.07], [0.70, 0.99], [0.29, 0.11]])
    >>> stains /= np.linalg.norm(stains, axis=0)
    >>> conc = np.random.default_rng(0).uniform(0, 1.5, (2, 64 * 64))
    >>> img = np.clip(240 * np.exp(-stains @ conc) - 1, 0, 255).T.reshape(64, 64, 3)
    >>> t = macenko_stains(img.round().astype(np.uint8))
    >>> bool(np.all(np.sum(t.stain_matrix * stains, axis=0) > 0.99))
    True
    """
    _check_macenko_params(Io, alpha, beta)
    return _macenko_stains(images, Io, alpha, beta, "images")


def _macenko_stains(images: Any, Io: float, alpha: float, beta: float,
                    name: str) -> MacenkoTarget:
    imgs = _image_list(images, name)
    ods, hats = [], []
    for i, img in enumerate(imgs):
        od = _optical_density(as_uint8_rgb(img, name if len(imgs) == 1
                                           else f"{name}[{i}]"), Io)
        ods.append(od)
        hats.append(od[(od >= beta).all(axis=1)])
    od_hat = np.concatenate(hats)
    if od_hat.shape[0] < MIN_STAINED_PIXELS:
        raise ValueError(f"{name}: only {od_hat.shape[0]} stained pixels (OD >= beta="
                         f"{beta}) found, need at least {MIN_STAINED_PIXELS}")
    stains = _estimate_stains(od_hat, alpha)
    if stains is None:
        raise ValueError(f"{name}: the stained pixels have a single colour; two stains "
                         "cannot be separated")
    conc = _concentrations(np.concatenate(ods), stains)
    max_c = np.percentile(conc, 99, axis=1)
    if (max_c <= 0).any():
        raise ValueError(f"{name}: a stain has no positive concentration")
    return MacenkoTarget(stains, max_c)


def _as_macenko_target(target: Any, Io: float, alpha: float, beta: float) -> MacenkoTarget:
    if target is None:
        return MACENKO_REFERENCE
    if isinstance(target, MacenkoTarget):
        return target
    if isinstance(target, (tuple, list)) and len(target) == 2:
        shapes = [np.shape(t) for t in target]
        if shapes == [(3, 2), (2,)]:
            try:
                return MacenkoTarget(*target)
            except ValueError as exc:
                raise ValueError(f"target: {exc}") from None
    if isinstance(target, (np.ndarray, tuple, list)):
        return _macenko_stains(target, Io, alpha, beta, "target")
    raise ValueError("target: expected a MacenkoTarget, a (stain_matrix, "
                     f"max_concentrations) pair or a reference image, got "
                     f"{type(target).__name__}")


def macenko(image: ArrayLike, target: MacenkoTarget | ArrayLike | None = None, *, Io: float = 240, alpha: float = 1,
            beta: float = 0.15) -> np.ndarray:
    """Macenko stain normalisation.

    The stain matrix and concentrations of ``image`` are estimated as in
    :func:`macenko_stains`; the concentrations are scaled so that their 99th
    percentiles match the target's and the image is rebuilt with the target
    stain matrix: ``I = Io * exp(-S_target @ C) - 1`` (the exact inverse of
    the OD definition), rounded and clipped to ``uint8``.

    Parameters
    ----------
    image : array_like, shape (H, W, 3) or (H, W)
        RGB image, ``uint8`` or float in ``[0, 1]``.
    target : MacenkoTarget, (stain_matrix, max_concentrations) pair, array_like or None
        Target stains. A reference image (or stack/sequence) is passed to
        :func:`macenko_stains`. Default: :data:`MACENKO_REFERENCE`, the H&E
        reference of the original implementation, stain matrix
        ``[[0.5626, 0.2159], [0.7201, 0.8012], [0.4062, 0.5581]]`` and maximum
        concentrations ``[1.9705, 1.0308]``.
    Io, alpha, beta : float, optional
        As in :func:`macenko_stains`.

    Returns
    -------
    numpy.ndarray of uint8, shape (H, W, 3)
        Normalised image. If ``image`` has fewer than ``MIN_STAINED_PIXELS``
        (50) stained pixels (e.g. a blank slide) or its stains cannot be
        separated (a single colour, e.g. a grey image), an unchanged ``uint8``
        RGB copy is returned instead; no exception is raised.

    Raises
    ------
    ValueError
        If ``image``, ``target`` or a parameter is invalid.

    Examples
    --------
    >>> import numpy as np
    >>> blank = np.full((16, 16, 3), 250, np.uint8)
    >>> bool(np.array_equal(macenko(blank), blank))
    True
    """
    _check_macenko_params(Io, alpha, beta)
    rgb = as_uint8_rgb(image)
    tgt = _as_macenko_target(target, Io, alpha, beta)
    od = _optical_density(rgb, Io)
    stains = _estimate_stains(od[(od >= beta).all(axis=1)], alpha)
    if stains is None:
        return rgb.copy()
    conc = _concentrations(od, stains)
    max_c = np.percentile(conc, 99, axis=1)
    if (max_c <= 0).any():
        return rgb.copy()
    conc *= (tgt.max_concentrations / max_c)[:, None]
    out = float(Io) * np.exp(-(tgt.stain_matrix @ conc)) - 1.0
    out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return out.T.reshape(rgb.shape)
