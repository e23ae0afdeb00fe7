"""leukfeat: classical computer vision for leukaemia blood-cell images.

Modules follow scikit-image's flat layout::

    from leukfeat import io, preprocess, segment, extract, datasets, evaluate

The scikit-learn layer is importable from the top level and loaded on first
use (so that ``import leukfeat`` stays light)::

    from leukfeat import FeatureExtractor, make_pipeline, make_classifier
"""

__version__ = "0.1.0"

from . import io, preprocess, segment, extract, datasets  # noqa: E402,F401

_LAZY = {
    "evaluate": ("leukfeat.evaluate", None),
    "models": ("leukfeat.models", None),
    "transformers": ("leukfeat.transformers", None),
    "FeatureExtractor": ("leukfeat.transformers", "FeatureExtractor"),
    "StainNormalizer": ("leukfeat.transformers", "StainNormalizer"),
    "make_classifier": ("leukfeat.models", "make_classifier"),
    "make_pipeline": ("leukfeat.models", "make_pipeline"),
    "cross_validate": ("leukfeat.evaluate", "cross_validate"),
}

__all__ = ["io", "preprocess", "segment", "extract", "datasets", "__version__", *_LAZY]


def __getattr__(name):
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'leukfeat' has no attribute {name!r}") from None
    import importlib

    mod = importlib.import_module(module)
    value = mod if attr is None else getattr(mod, attr)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
