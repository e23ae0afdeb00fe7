"""leukfeat: classical computer vision for leukaemia blood-cell images.

Modules follow scikit-image's flat layout::

    from leukfeat import io, preprocess, segment, extract, datasets
"""

__version__ = "0.1.0"

from . import io, preprocess, segment, extract, datasets  # noqa: E402,F401

__all__ = ["io", "preprocess", "segment", "extract", "datasets", "__version__"]
