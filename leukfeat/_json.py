"""Plain JSON values of leukfeat's reports and model metadata (private)."""

from __future__ import annotations

import math
import os

import numpy as np

__all__ = ["jsonable"]


def jsonable(obj, name: str = "value", *, strict: bool = False):
    """A plain-Python, JSON-serialisable copy of ``obj``.

    Dicts, lists and tuples (as lists) are copied recursively, numpy arrays
    and scalars become Python lists and numbers.

    Parameters
    ----------
    obj : object
        The value to convert.
    name : str
        Where ``obj`` comes from, for error messages (``strict`` only).
    strict : bool
        ``False`` (reports): NaN and infinities become None, paths and any
        other object their text, dict keys their ``str``. ``True`` (model
        metadata, read back by programs): a non-string key, a NaN or
        infinity, or an object that is not a JSON value raises a
        :class:`TypeError` naming where it is.
    """
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if strict and not isinstance(k, str):
                raise TypeError(f"{name}: keys must be strings, got {k!r}")
            out[str(k)] = jsonable(v, f"{name}[{k!r}]", strict=strict)
        return out
    if isinstance(obj, (list, tuple)):
        return [jsonable(v, f"{name}[{i}]", strict=strict) for i, v in enumerate(obj)]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist(), name, strict=strict)
    if isinstance(obj, np.generic):
        return jsonable(obj.item(), name, strict=strict)
    if isinstance(obj, float) and not math.isfinite(obj):
        if strict:
            raise TypeError(f"{name}: {obj} is not allowed (JSON has no NaN/inf)")
        return None
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if strict:
        raise TypeError(f"{name}: {type(obj).__name__} is not JSON-serialisable "
                        "(use str, int, float, bool, None, lists and dicts)")
    if isinstance(obj, os.PathLike):
        return os.fsdecode(obj)
    return str(obj)
