"""Argument checks shared by every module (private).

One place converts and checks array arguments so that every public function
raises the same clear, typed error naming the offending argument.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np

__all__ = ["check_image", "check_mask"]

#: dtype kinds accepted as numeric: bool, signed/unsigned integer, float and
#: complex (refused later with its own message). timedelta64, which numpy
#: counts as a number, is not a pixel value: refused like strings and objects
_NUMERIC_KINDS = frozenset("biufc")


def check_image(image, name: str = "image", *, ndim=(2, 3), min_size: int = 2,
                allow_float: bool = True) -> np.ndarray:
    """Validate an image array argument and return it as a numpy array.

    Parameters
    ----------
    image : array_like
        The argument to check.
    name : str
        Argument name used in error messages.
    ndim : tuple of int
        Accepted numbers of dimensions. A 3-D image must have 3 channels
        (RGB); a 4-channel array is accepted and its alpha channel dropped.
    min_size : int
        Smallest accepted height and width.
    allow_float : bool
        Whether floating point images are accepted (they must be finite).

    Returns
    -------
    numpy.ndarray
        The image, without copying when possible.

    Raises
    ------
    ValueError
        If the argument is not a finite numeric image of the accepted shape.
    """
    try:
        arr = np.asarray(image)
    except Exception as exc:  # pragma: no cover - exotic inputs
        raise ValueError(f"{name}: cannot be converted to an array ({exc})") from exc
    if arr.dtype.kind not in _NUMERIC_KINDS:
        raise ValueError(f"{name}: expected a numeric image array, got dtype {arr.dtype}")
    if arr.ndim not in ndim:
        raise ValueError(
            f"{name}: expected an array with ndim in {tuple(ndim)}, got shape {arr.shape}")
    if arr.ndim == 3:
        if arr.shape[2] == 4:
            arr = arr[..., :3]
        elif arr.shape[2] != 3:
            raise ValueError(
                f"{name}: expected 3 (RGB) channels in the last axis, got shape {arr.shape}")
    if arr.size == 0 or arr.shape[0] < min_size or arr.shape[1] < min_size:
        raise ValueError(
            f"{name}: image is too small, shape {arr.shape} (need at least "
            f"{min_size}x{min_size} pixels)")
    if arr.dtype.kind in "fc":                       # float or complex
        if not allow_float:
            raise ValueError(f"{name}: expected an integer image, got dtype {arr.dtype}")
        if np.iscomplexobj(arr):
            raise ValueError(f"{name}: complex images are not supported")
        if not np.isfinite(arr).all():
            raise ValueError(f"{name}: image contains NaN or infinite values")
    return arr


def check_mask(mask, shape=None, name: str = "mask") -> np.ndarray:
    """Validate a mask argument against an image shape and return it as bool.

    Parameters
    ----------
    mask : array_like
        Boolean or 0/1 array.
    shape : tuple of int, optional
        The (H, W) shape the mask must have; None accepts any 2-D mask.
    name : str
        Argument name used in error messages.

    Returns
    -------
    numpy.ndarray of bool

    Raises
    ------
    ValueError
        If the mask has the wrong shape or is not numeric.
    """
    arr = np.asarray(mask)
    if arr.dtype.kind not in _NUMERIC_KINDS:
        raise ValueError(f"{name}: expected a boolean mask, got dtype {arr.dtype}")
    if shape is None:
        if arr.ndim != 2:
            raise ValueError(f"{name}: expected a 2-D mask, got shape {arr.shape}")
    elif arr.shape != tuple(shape[:2]):
        raise ValueError(f"{name}: expected shape {tuple(shape[:2])}, got {arr.shape}")
    return arr.astype(bool, copy=False)


#: the named values of the ``scale`` argument (the third form is a (lo, hi) pair)
SCALES = ("image", "dtype")


def check_scale(scale, name: str = "scale"):
    """The ``scale`` argument of the uint8 conversions, checked.

    Parameters
    ----------
    scale : {"image", "dtype"} or (lo, hi)
        See :func:`as_uint8_rgb`.
    name : str
        Argument name used in error messages.

    Returns
    -------
    str or tuple of (float, float)
        ``"image"`` or ``"dtype"``, or the range as two finite floats,
        ``lo < hi``.

    Raises
    ------
    ValueError
        If `scale` is none of those, naming `name`.
    """
    what = "'image', 'dtype' or a (lo, hi) pair of finite numbers with lo < hi"
    if isinstance(scale, str):
        if scale in SCALES:
            return scale
        raise ValueError(f"{name}: expected {what}, got {scale!r}")
    try:
        pair = tuple(scale)
    except TypeError:
        raise ValueError(f"{name}: expected {what}, got {scale!r}") from None
    if len(pair) != 2 or not all(isinstance(v, (Real, np.integer, np.floating))
                                 and not isinstance(v, (bool, np.bool_)) for v in pair):
        raise ValueError(f"{name}: expected {what}, got {scale!r}")
    lo, hi = float(pair[0]), float(pair[1])
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ValueError(f"{name}: expected {what}, got {scale!r}")
    return lo, hi


__all__.append("check_scale")


def scale_to_uint8(arr: np.ndarray, scale) -> np.ndarray:
    """Map an array onto ``uint8`` by a range that does not depend on its values.

    Parameters
    ----------
    arr : numpy.ndarray
        Numeric array of any shape (not complex).
    scale : "dtype" or (lo, hi)
        A value checked by :func:`check_scale` (not ``"image"``, whose
        rules differ between :func:`as_uint8_rgb` and
        :func:`leukfeat.io.read_image`). ``"dtype"``: integers map
        ``0..numpy.iinfo(dtype).max`` onto 0..255 (``uint8`` unchanged,
        ``uint16`` divided by 257, negative values clip to 0), floats are
        taken as 0..1; ``(lo, hi)``: ``lo`` maps to 0, ``hi`` to 255, values
        outside clip, whatever the dtype. Booleans give 0 and 255 in both
        cases. Non-finite values give 0.

    Returns
    -------
    numpy.ndarray of uint8
        Same shape; rounded to the nearest integer (halves to even).

    Raises
    ------
    ValueError
        With ``"dtype"``, for floats with finite values outside [0, 1] (the
        message suggests a fixed range; the caller prefixes the argument).
    """
    if arr.dtype == bool:
        return arr.astype(np.uint8) * np.uint8(255)
    if isinstance(scale, str):
        if scale != "dtype":
            raise ValueError(f"scale: expected 'dtype' or a (lo, hi) pair, got {scale!r}")
        if arr.dtype == np.uint8:
            return np.array(arr, np.uint8)
        if arr.dtype.kind in "iu":
            lo, hi = 0.0, float(np.iinfo(arr.dtype).max)
        else:
            lo, hi = 0.0, 1.0
            values = arr[np.isfinite(arr)]
            if values.size and (values.min() < 0.0 or values.max() > 1.0):
                raise ValueError(
                    f"scale='dtype' takes float values in [0, 1], got values in "
                    f"[{float(values.min()):g}, {float(values.max()):g}]; give their range "
                    f"as scale=(lo, hi)")
    else:
        lo, hi = scale
    values = arr.astype(np.float64)
    # multiply before dividing, as the per-image rescale does: exact halves stay exact
    out = np.rint((values - lo) * 255.0 / (hi - lo))
    if arr.dtype.kind == "f":
        out[~np.isfinite(values)] = 0
    return np.clip(out, 0, 255).astype(np.uint8)


__all__.append("scale_to_uint8")


def as_uint8_rgb(image, name: str = "image", *, scale="image") -> np.ndarray:
    """Return an RGB uint8 copy-or-view of a validated image.

    Grayscale is stacked to 3 channels; an alpha channel is dropped.

    Parameters
    ----------
    image : array_like
        Image accepted by :func:`check_image` (2-D grey or RGB(A)).
    name : str
        Argument name used in error messages.
    scale : {"image", "dtype"} or (lo, hi), default "image"
        How values become 0..255:

        * ``"image"``: ``uint8`` as it is, booleans 0/255, floats in [0, 1]
          times 255 and floats in [0, 255] as they are (others refused),
          integers within 0..255 as they are, other integers (e.g. 16-bit)
          rescaled by their own min..max, so intensities of different
          images are not comparable.
        * ``"dtype"``: integers by their dtype's range (``uint16`` divided
          by 257: comparable across images), floats taken as [0, 1] (others
          refused).
        * ``(lo, hi)``: a fixed range, the same for every image and dtype:
          ``lo`` maps to 0, ``hi`` to 255, values outside clip.

    Returns
    -------
    numpy.ndarray
        ``uint8``, shape ``(H, W, 3)``.

    Raises
    ------
    ValueError
        If the image is invalid, `scale` is invalid, or float values lie
        outside the range the chosen `scale` takes.
    """
    scale = check_scale(scale)
    arr = check_image(image, name)
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    if scale != "image":
        if scale == "dtype" and arr.dtype == np.uint8:
            return np.ascontiguousarray(arr)
        try:
            return scale_to_uint8(arr, scale)
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    if arr.dtype == bool:
        return arr.astype(np.uint8) * 255
    if np.issubdtype(arr.dtype, np.floating):
        lo, hi = float(arr.min()), float(arr.max())
        if lo >= 0.0 and hi <= 1.0:
            return np.clip(np.rint(arr * 255.0), 0, 255).astype(np.uint8)
        if lo >= 0.0 and hi <= 255.0:
            return np.clip(np.rint(arr), 0, 255).astype(np.uint8)
        raise ValueError(f"{name}: float image values must lie in [0, 1] or [0, 255], "
                         f"got range [{lo:g}, {hi:g}]")
    lo, hi = int(arr.min()), int(arr.max())
    if lo >= 0 and hi <= 255:
        return arr.astype(np.uint8)
    if hi == lo:
        return np.zeros(arr.shape, np.uint8)
    return np.rint((arr.astype(np.float64) - lo) * (255.0 / (hi - lo))).astype(np.uint8)


__all__.append("as_uint8_rgb")


def check_int_pair(value, name: str) -> tuple[int, int]:
    """A positive int or (height, width) pair of positive ints, as a pair."""
    if isinstance(value, (Integral, np.integer)) and not isinstance(value, (bool, np.bool_)):
        pair = (value, value)
    else:
        try:
            pair = tuple(value)
        except TypeError:
            raise ValueError(f"{name}: expected an int or a (height, width) pair, "
                             f"got {value!r}") from None
    if len(pair) != 2 or not all(
            isinstance(v, (Integral, np.integer)) and not isinstance(v, (bool, np.bool_))
            for v in pair):
        raise ValueError(f"{name}: expected an int or a (height, width) pair of ints, "
                         f"got {value!r}")
    if min(pair) < 1:
        raise ValueError(f"{name}: sizes must be positive, got {value!r}")
    return int(pair[0]), int(pair[1])


__all__.append("check_int_pair")


def check_int(value, name: str, low: int | None = None, *, high: int | None = None,
              allow_none: bool = False):
    """An integer argument in ``[low, high]`` (either bound optional), as an ``int``.

    Booleans are refused (``True`` is not a count); numpy integers are
    accepted. With ``allow_none`` None is returned unchanged. The error is a
    :class:`ValueError` naming the argument and the accepted range.
    """
    if value is None and allow_none:
        return None
    ok = isinstance(value, Integral) and not isinstance(value, (bool, np.bool_))
    if ok:
        value = int(value)
        ok = (low is None or value >= low) and (high is None or value <= high)
    if not ok:
        if high is not None:
            what = f"an integer in [{'-inf' if low is None else low}, {high}]"
        elif low is not None:
            what = f"an integer >= {low}"
        else:
            what = "an integer"
        if allow_none:
            what = f"None or {what}"
        raise ValueError(f"{name}: expected {what}, got {value!r}")
    return value


__all__.append("check_int")
