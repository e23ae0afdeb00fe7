"""Argument checks shared by every module (private).

One place converts and checks array arguments so that every public function
raises the same clear, typed error naming the offending argument.
"""

from __future__ import annotations

from numbers import Integral

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


def as_uint8_rgb(image, name: str = "image") -> np.ndarray:
    """Return an RGB uint8 copy-or-view of a validated image.

    Grayscale is stacked to 3 channels; floats in [0, 1] are scaled by 255;
    other integer types are rescaled by their real range.
    """
    arr = check_image(image, name)
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
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
