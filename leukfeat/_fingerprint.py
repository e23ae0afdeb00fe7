"""What determines a feature value: the code and the input (private).

:func:`code_fingerprint` and :func:`content_key` are the parts of the keys of
the feature cache (:class:`leukfeat.transformers.FeatureExtractor`) and of
the manifest of streamed Parquet output (:mod:`leukfeat.stream`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from ._batch import PATH_TYPES
from .segment import Segmentation

#: Modules (files or packages, relative to the package) whose source
#: determines feature values.
FINGERPRINT_MODULES = ("io.py", "preprocess.py", "segment", "_filters.py",
                        "_validation.py", "extract")


def code_fingerprint() -> str:
    """sha256 of the source of the modules that determine feature values.

    Part of the cache key, so that a cache written by other code (another
    version, or the same version number during development) is never reused.
    """
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for entry in FINGERPRINT_MODULES:
        p = root / entry
        files = sorted(p.glob("*.py")) if p.is_dir() else [p]
        for f in files:
            try:
                h.update(f.relative_to(root).as_posix().encode())
                h.update(f.read_bytes())
            except OSError:  # pragma: no cover - e.g. zipped installs
                h.update(b"?")
    return h.hexdigest()


def content_key(item: Any) -> str | None:
    """sha256 of a file's bytes, of an array's dtype, shape and bytes, of a
    Segmentation's arrays, or of both parts of an (image, mask) pair; None if
    unreadable."""
    if isinstance(item, Segmentation):
        h = hashlib.sha256(b"segmentation:")
        for arr in (item.mask, item.nucleus, item.labels):
            arr = np.ascontiguousarray(arr)
            h.update(f"{arr.dtype.str}:{arr.shape}:".encode())
            h.update(memoryview(arr).cast("B"))  # type: ignore[arg-type, unused-ignore]  # buffer protocol
        return h.hexdigest()
    if isinstance(item, tuple):
        parts = [content_key(part) for part in item]
        if len(parts) != 2 or None in parts:
            return None
        return hashlib.sha256(("pair:" + ":".join(parts)).encode()).hexdigest()  # type: ignore[arg-type]
    h = hashlib.sha256()
    if isinstance(item, PATH_TYPES):
        try:
            with open(item, "rb") as fh:
                h.update(b"file:")
                h.update(fh.read())
        except (OSError, TypeError, ValueError):
            return None  # the reader reports the error
        return h.hexdigest()
    try:
        arr = np.ascontiguousarray(np.asarray(item))
    except Exception:
        return None
    if arr.dtype == object:
        return None
    h.update(f"array:{arr.dtype.str}:{arr.shape}:".encode())
    h.update(memoryview(arr).cast("B"))  # type: ignore[arg-type, unused-ignore]  # buffer protocol
    return h.hexdigest()
