"""leukfeat: classical computer vision for leukaemia blood-cell images.

Modules follow scikit-image's flat layout::

    from leukfeat import io, preprocess, segment, extract, datasets, evaluate

The scikit-learn layer is importable from the top level::

    from leukfeat import FeatureExtractor, make_pipeline, make_classifier

Every module and name above is loaded on first use (PEP 562), so that
``import leukfeat`` itself imports nothing heavy (no OpenCV, SciPy,
scikit-learn, numba, pandas or matplotlib): ``from leukfeat import segment``
imports what segmentation needs, and only that.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "io": ("leukfeat.io", None),
    "preprocess": ("leukfeat.preprocess", None),
    "segment": ("leukfeat.segment", None),
    "extract": ("leukfeat.extract", None),
    "datasets": ("leukfeat.datasets", None),
    "evaluate": ("leukfeat.evaluate", None),
    "models": ("leukfeat.models", None),
    "transformers": ("leukfeat.transformers", None),
    "FeatureExtractor": ("leukfeat.transformers", "FeatureExtractor"),
    "StainNormalizer": ("leukfeat.transformers", "StainNormalizer"),
    "make_classifier": ("leukfeat.models", "make_classifier"),
    "make_pipeline": ("leukfeat.models", "make_pipeline"),
    "cross_validate": ("leukfeat.evaluate", "cross_validate"),
}

__all__ = ["__version__", *_LAZY]

#: The version when leukfeat runs from a source tree that was never installed
#: (no package metadata, so the version is not known).
_FALLBACK_VERSION = "0.0.0+unknown"


def _version() -> str:
    """The installed distribution's version (set from the git tags by
    setuptools-scm at build time), or :data:`_FALLBACK_VERSION`."""
    from importlib import metadata

    try:
        return metadata.version("leukfeat")
    except metadata.PackageNotFoundError:
        return _FALLBACK_VERSION


def __getattr__(name: str) -> Any:
    value: Any
    if name == "__version__":
        value = _version()
    else:
        try:
            module, attr = _LAZY[name]
        except KeyError:
            raise AttributeError(f"module 'leukfeat' has no attribute {name!r}") from None
        mod = importlib.import_module(module)
        value = mod if attr is None else getattr(mod, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
