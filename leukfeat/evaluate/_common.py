"""Helpers of the evaluation modules: argument checks, items, JSON values."""

from __future__ import annotations

import math
import numbers
import os

import numpy as np


def _check_int(value, name: str, *, low: int | None = None, high: int | None = None) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name}: expected an integer, got {value!r}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        raise ValueError(f"{name}: expected an integer in [{lo}, {hi}], got {value}")
    return value


def _is_path(x) -> bool:
    return isinstance(x, (str, os.PathLike))


def _display(x) -> str:
    if _is_path(x):
        return os.fsdecode(x)
    if isinstance(x, np.ndarray):
        return f"<array {x.shape} {x.dtype}>"
    return repr(x)


def _as_items(paths, name: str = "paths") -> list:
    if isinstance(paths, (str, bytes, os.PathLike)):
        raise TypeError(f"{name}: expected a sequence of paths or images, got a single "
                        f"path ({_display(paths)!r}); wrap it in a list")
    if isinstance(paths, np.ndarray) and paths.ndim >= 3:
        return list(paths)
    try:
        items = list(paths)
    except TypeError:
        raise TypeError(f"{name}: expected a sequence of paths or images, "
                        f"got {type(paths).__name__}") from None
    for k, item in enumerate(items):
        if not (_is_path(item) or isinstance(item, np.ndarray)):
            raise TypeError(f"{name}: item {k} is neither a path nor an image array "
                            f"({type(item).__name__})")
    return items


def _jsonable(obj):
    """Plain-Python, JSON-serialisable copy of ``obj`` (NaN/inf -> None)."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, os.PathLike):
        return os.fsdecode(obj)
    return str(obj)
