"""Embedders: the :class:`Embedder` protocol, :class:`ImagePreprocess`,
:class:`TorchEmbedder` and :class:`CallableEmbedder`.

Part of :mod:`leukfeat.embed` (import the public names from there).
"""

from __future__ import annotations

import contextlib
import re
from numbers import Integral
from typing import TYPE_CHECKING, Any, Callable, Protocol, runtime_checkable

import numpy as np

from .._validation import check_int

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from types import ModuleType

    from numpy.typing import ArrayLike

#: ImageNet channel mean and standard deviation in pixel units (0-255), the
#: normalisation of torchvision's (and most timm) ImageNet models.
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)

PROBE_SIZE = 224  # side of the blank image used to discover an output width


# --------------------------------------------------------------------------- #
# optional imports
# --------------------------------------------------------------------------- #

_TORCH_HINT = ('Install the CPU build of PyTorch with `pip install torch==2.13.0` (where '
               'that wheel is available for your platform), then `pip install '
               '"leukfeat[cnn]"`.')


def import_torch() -> ModuleType:
    """``import torch`` or an ImportError saying what to install."""
    try:
        import torch
    except ImportError as exc:
        raise ImportError(f"leukfeat.embed needs PyTorch (torch), which is not installed. "
                          f"{_TORCH_HINT}") from exc
    return torch


# --------------------------------------------------------------------------- #
# small helpers
# --------------------------------------------------------------------------- #

def _prefix(name: str) -> str:
    """A model name as a column-name prefix: runs of other characters become ``_``."""
    text = re.sub(r"[^0-9A-Za-z]+", "_", str(name)).strip("_")
    return text or "model"


def _feature_names(name: str, n: int) -> np.ndarray:
    width = max(4, len(str(max(n - 1, 0))))
    p = _prefix(name)
    return np.asarray([f"{p}_cnn_{i:0{width}d}" for i in range(n)], dtype=object)



def _as_images(images: Any) -> list[np.ndarray]:
    """A batch of images (arrays, not paths) as a list of RGB uint8 arrays (H, W, 3)."""
    from .._batch import as_batch, load_rgb

    return [load_rgb(im, f"images[{i}]")
            for i, im in enumerate(as_batch(images, "images", paths=False, allow_empty=True))]


def pool(out: np.ndarray, n: int, where: str) -> np.ndarray:
    """A model output as (n, D) float32: spatial maps averaged over H and W."""
    out = np.asarray(out)
    if out.ndim == 4:
        out = out.mean(axis=(2, 3), dtype=np.float64)
    elif out.ndim != 2:
        raise ValueError(
            f"{where} has shape {tuple(out.shape)} (rank {out.ndim}); an embedder needs a "
            "rank-2 output (N, D) or a rank-4 spatial map (N, C, H, W), which is averaged "
            "over space. Choose a layer (layer=...) or an output (output=...) that gives one, "
            "or wrap the model so that it returns (N, D).")
    if out.shape[0] != n:
        raise ValueError(f"{where} has {out.shape[0]} rows for a batch of {n} images")
    if not np.issubdtype(out.dtype, np.number):
        raise ValueError(f"{where} is not numeric (dtype {out.dtype})")
    return np.ascontiguousarray(out, dtype=np.float32)


def _resize_flag(in_hw: Sequence[int], out_hw: Sequence[int]) -> int:
    import cv2

    if in_hw[0] >= out_hw[0] and in_hw[1] >= out_hw[1]:
        return cv2.INTER_AREA
    return cv2.INTER_LINEAR


_INTERPOLATIONS = ("auto", "area", "linear", "cubic", "nearest")


def resize_rgb(image: np.ndarray, size_hw: Sequence[int], interpolation: str = "auto") -> np.ndarray:
    """Resize an RGB uint8 image to (h, w); "auto" is INTER_AREA down, INTER_LINEAR up."""
    import cv2

    h, w = size_hw
    if image.shape[:2] == (h, w):
        return image
    if interpolation == "auto":
        flag = _resize_flag(image.shape[:2], (h, w))
    else:
        flag = {"area": cv2.INTER_AREA, "linear": cv2.INTER_LINEAR,
                "cubic": cv2.INTER_CUBIC, "nearest": cv2.INTER_NEAREST_EXACT}[interpolation]
    return cv2.resize(np.ascontiguousarray(image), (w, h), interpolation=flag)


def blank_image(size_hw: Sequence[int]) -> np.ndarray:
    return np.full((*size_hw, 3), 128, np.uint8)


# --------------------------------------------------------------------------- #
# preprocessing
# --------------------------------------------------------------------------- #

class ImagePreprocess:
    """Resize and normalise RGB uint8 images into a float32 ``(N, 3, H, W)`` batch.

    Each image is resized to ``size`` (no cropping; the aspect ratio is not
    kept), then every channel is mapped to ``(pixel - mean) / std``, with
    ``pixel`` in 0-255, and the batch is laid out channels-first.

    Parameters
    ----------
    size : int or (int, int), default 224
        Output (height, width); an int gives a square.
    mean, std : float or sequence of 3 floats
        Per-channel (R, G, B) offset and scale **in pixel units** (0-255).
        The defaults are the ImageNet statistics of torchvision's models,
        ``(123.675, 116.28, 103.53)`` and ``(58.395, 57.12, 57.375)``.
        EfficientNet-Lite uses ``mean=127, std=128``.
    interpolation : {"auto", "area", "linear", "cubic", "nearest"}, default "auto"
        OpenCV resampling. ``"auto"`` uses ``cv2.INTER_AREA`` when the image
        shrinks (no side grows) and ``cv2.INTER_LINEAR`` when a side is
        enlarged; an image already of ``size`` is not resampled.

    Examples
    --------
    >>> import numpy as np
    >>> pre = ImagePreprocess(size=4, mean=127, std=128)
    >>> x = pre([np.full((8, 8, 3), 255, np.uint8)])
    >>> x.shape, x.dtype, float(x[0, 0, 0, 0])
    ((1, 3, 4, 4), dtype('float32'), 1.0)
    """

    def __init__(self, size: int | Sequence[int] = 224, mean: float | Sequence[float] = IMAGENET_MEAN,
                 std: float | Sequence[float] = IMAGENET_STD, interpolation: str = "auto") -> None:
        if isinstance(size, Integral) and not isinstance(size, bool):
            size = (int(size), int(size))
        try:
            size = tuple(int(s) for s in size)  # type: ignore[union-attr]  # ints wrapped above
        except TypeError:
            raise ValueError(f"size: expected an int or a (height, width) pair, "
                             f"got {size!r}") from None
        if len(size) != 2 or min(size) < 1:
            raise ValueError(f"size: expected a positive int or (height, width), got {size!r}")
        mean_a = np.broadcast_to(np.asarray(mean, dtype=np.float64), (3,))
        std_a = np.broadcast_to(np.asarray(std, dtype=np.float64), (3,))
        if not (np.isfinite(mean_a).all() and np.isfinite(std_a).all() and (std_a > 0).all()):
            raise ValueError(f"mean/std: expected finite numbers and positive std, got "
                             f"mean={mean!r}, std={std!r}")
        if interpolation not in _INTERPOLATIONS:
            raise ValueError(f"interpolation: expected one of {_INTERPOLATIONS}, "
                             f"got {interpolation!r}")
        self.size = size
        self.mean = tuple(float(v) for v in mean_a)
        self.std = tuple(float(v) for v in std_a)
        self.interpolation = interpolation

    def __call__(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Preprocess a list of RGB uint8 images.

        Parameters
        ----------
        images : sequence of ndarray of uint8, shape (H, W, 3)

        Returns
        -------
        ndarray of float32, shape (n_images, 3, height, width)
        """
        batch = np.stack([resize_rgb(im, self.size, self.interpolation) for im in images])
        x = batch.astype(np.float32)
        x -= np.asarray(self.mean, np.float32)
        x /= np.asarray(self.std, np.float32)
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))

    def to_dict(self) -> dict[str, Any]:
        """The parameters as a JSON-serialisable dict (stored in exported ONNX files)."""
        return {"size": list(self.size), "mean": list(self.mean), "std": list(self.std),
                "interpolation": self.interpolation}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ImagePreprocess":
        """Inverse of :meth:`to_dict`."""
        return cls(size=tuple(d["size"]), mean=tuple(d["mean"]), std=tuple(d["std"]),
                   interpolation=d.get("interpolation", "auto"))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ImagePreprocess) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]  # unhashable, as it defines __eq__

    def __repr__(self) -> str:
        return (f"ImagePreprocess(size={self.size}, mean={self.mean}, std={self.std}, "
                f"interpolation={self.interpolation!r})")


# --------------------------------------------------------------------------- #
# the protocol and the embedders
# --------------------------------------------------------------------------- #

@runtime_checkable
class Embedder(Protocol):
    """What :class:`EmbeddingTransformer` needs from an embedder.

    Attributes
    ----------
    name : str
        Model name; prefix of the column names.
    feature_names_out : ndarray of str
        ``<name>_cnn_0000``, ``<name>_cnn_0001``, ... (the name with runs of
        characters other than letters and digits replaced by ``_``).

    Methods
    -------
    embed(images)
        ``images``: a sequence of RGB uint8 arrays ``(H, W, 3)`` (sizes may
        differ) -> ndarray of float32, shape ``(n_images, n_features)``.
    __call__(images)
        Same as ``embed``.
    """

    name: str

    @property
    def feature_names_out(self) -> np.ndarray: ...

    def embed(self, images: Any) -> np.ndarray: ...

    def __call__(self, images: Any) -> np.ndarray: ...


class BaseEmbedder:
    """Shared batching, validation, names and pickling of the embedders."""

    name: str
    batch_size: int | None

    def __getstate__(self) -> dict[str, Any]:
        # caches (torch modules built by a factory, onnxruntime sessions) are rebuilt
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_cache")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def __call__(self, images: Any) -> np.ndarray:
        """Same as :meth:`embed`."""
        return self.embed(images)

    @property
    def n_features(self) -> int:
        """Width of the embedding (found with one blank image when not yet known)."""
        dim = self.__dict__.get("_cache_dim")
        if dim is None:
            dim = self._probe_dim()
            self._cache_dim = dim
        return dim

    @property
    def feature_names_out(self) -> np.ndarray:
        """Column names ``<name>_cnn_0000``, ... (ndarray of str)."""
        return _feature_names(self.name, self.n_features)

    def _probe_dim(self) -> int:
        return self._embed_batch([blank_image(self._probe_size())]).shape[1]

    def _probe_size(self) -> tuple[int, ...]:
        return (PROBE_SIZE, PROBE_SIZE)

    def embed(self, images: Sequence[ArrayLike] | np.ndarray) -> np.ndarray:
        """Embed a batch of images.

        Parameters
        ----------
        images : sequence of ndarray, or ndarray of shape (n, H, W, 3)
            RGB uint8 images (sizes may differ; grayscale and other dtypes are
            converted as :func:`leukfeat._validation.as_uint8_rgb` does).

        Returns
        -------
        ndarray of float32, shape (n_images, n_features)

        Raises
        ------
        ValueError
            If an image is invalid, or the model output has a wrong rank or
            number of rows.
        """
        ims = _as_images(images)
        if not ims:
            return np.empty((0, self.n_features), np.float32)
        bs = len(ims) if self.batch_size is None else int(self.batch_size)
        with self._running():
            parts = [self._embed_batch(ims[i:i + bs]) for i in range(0, len(ims), bs)]
        out = np.concatenate(parts, axis=0)
        self._cache_dim = out.shape[1]
        return out

    @contextlib.contextmanager
    def _running(self) -> Iterator[None]:
        yield

    def _embed_batch(self, images: list[np.ndarray]) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


class _StopForward(Exception):
    """Raised by the capture hook to skip the layers after the captured one."""


class TorchEmbedder(BaseEmbedder):
    """Embeddings from a PyTorch model.

    The images are preprocessed into a float32 ``(N, C, H, W)`` batch, run
    through the model in eval mode under :func:`torch.no_grad` in batches of
    ``batch_size``, and the output (the model's, or that of the submodule
    ``layer``) becomes one row per image: a spatial ``(N, C, H, W)`` map is
    averaged over H and W (global average pooling), an ``(N, D)`` output is
    used as it is.

    Parameters
    ----------
    model : torch.nn.Module or callable
        The model, or a picklable zero-argument callable returning it (a
        *factory*: the model is then built on first use, cached, and not
        pickled or deep-copied with the embedder, which keeps
        :func:`sklearn.base.clone` and joblib cheap; :func:`pretrained` uses
        one). A module given directly is put in eval mode (in place) and
        pickled with the embedder.
    preprocess : callable, optional
        ``list of RGB uint8 images -> float32 array (N, C, H, W)``. Default
        :class:`ImagePreprocess` ``()``: 224x224, ImageNet mean and std.
    layer : str, optional
        Name of a submodule (as in ``model.named_modules()``, e.g.
        ``"layer3"`` or ``"features.6"``) whose output is the embedding,
        captured with a forward hook at its first call; the layers after it
        are skipped. Default: the model's output.
    batch_size : int, default 32
        Images per forward pass. Results do not depend on it (up to float
        rounding, about 1e-6).
    device : str, default "cpu"
        Torch device, e.g. ``"cuda"``.
    num_threads : int or None, default 1
        ``torch.set_num_threads`` while embedding (the previous value is
        restored afterwards); None leaves torch's setting alone.
    name : str, optional
        Model name, the prefix of the column names. Default: the lower-cased
        class name of the model; for a factory, its ``name`` or ``__name__``.

    Attributes
    ----------
    module : torch.nn.Module
        The model (built by the factory on first access).
    n_features : int
        Embedding width (found with one blank image on first access).
    feature_names_out : ndarray of str
        ``<name>_cnn_0000``, ...

    Raises
    ------
    ImportError
        If torch is not installed (the message says what to install).

    Examples
    --------
    >>> import numpy as np, torch                                  # doctest: +SKIP
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU())  # doctest: +SKIP
    >>> emb = TorchEmbedder(net, preprocess=ImagePreprocess(32), name="tiny")  # doctest: +SKIP
    >>> emb([np.zeros((40, 40, 3), np.uint8)]).shape                # doctest: +SKIP
    (1, 8)
    """

    def __init__(self, model: Any, preprocess: Callable[[list[np.ndarray]], ArrayLike] | None = None,
                 layer: str | None = None, batch_size: int = 32, device: str = "cpu",
                 num_threads: int | None = 1, name: str | None = None) -> None:
        torch = import_torch()
        if not (isinstance(model, torch.nn.Module) or callable(model)):
            raise TypeError(f"model: expected a torch.nn.Module or a callable returning one, "
                            f"got {type(model).__name__}")
        if preprocess is not None and not callable(preprocess):
            raise TypeError(f"preprocess: expected None or a callable, got "
                            f"{type(preprocess).__name__}")
        if layer is not None and not isinstance(layer, str):
            raise TypeError(f"layer: expected None or a submodule name (str), got {layer!r}")
        check_int(batch_size, "batch_size", 1)
        check_int(num_threads, "num_threads", 1, allow_none=True)
        self.model = model
        self.preprocess = ImagePreprocess() if preprocess is None else preprocess
        self.layer = layer
        self.batch_size = int(batch_size)
        self.device = str(device)
        self.num_threads = num_threads
        if name is None:
            if not isinstance(model, torch.nn.Module):  # a factory: its name, if any
                name = getattr(model, "name", None) or getattr(model, "__name__", None)
            name = name or type(model).__name__.lower()
        self.name = str(name)

    def __repr__(self) -> str:
        model = (type(self.model).__name__ + "(...)"
                 if self._is_module(self.model) else repr(self.model))
        extra = "" if self.layer is None else f", layer={self.layer!r}"
        return (f"TorchEmbedder({model}{extra}, batch_size={self.batch_size}, "
                f"device={self.device!r}, num_threads={self.num_threads}, name={self.name!r})")

    @staticmethod
    def _is_module(obj: object) -> bool:
        torch = import_torch()
        return isinstance(obj, torch.nn.Module)

    # -- model -----------------------------------------------------------------
    @property
    def module(self) -> Any:
        """The :class:`torch.nn.Module` (built and cached on first use)."""
        mod = self.__dict__.get("_cache_module")
        if mod is None:
            torch = import_torch()
            if isinstance(self.model, torch.nn.Module):
                mod = self.model
            else:
                with self._threads():
                    mod = self.model()
                if not isinstance(mod, torch.nn.Module):
                    raise TypeError(f"model: the factory {self.model!r} returned "
                                    f"{type(mod).__name__}, expected a torch.nn.Module")
            mod = mod.to(self.device)
            if self.layer is not None:
                self._submodule(mod)  # a clear error now rather than at the first batch
            if isinstance(self.model, torch.nn.Module):
                self.model = mod
            else:
                self._cache_module = mod
        return mod.eval()

    def _submodule(self, mod: Any) -> Any:
        try:
            return mod.get_submodule(self.layer)
        except AttributeError:
            names = [n for n, _ in mod.named_modules() if n]
            shown = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
            raise ValueError(f"layer: {type(mod).__name__} has no submodule "
                             f"{self.layer!r}; its submodules are: {shown}") from None

    def _probe_size(self) -> tuple[int, ...]:
        size = getattr(self.preprocess, "size", None)
        return tuple(size) if size is not None else (PROBE_SIZE, PROBE_SIZE)

    # -- running ----------------------------------------------------------------
    @contextlib.contextmanager
    def _threads(self) -> Iterator[None]:
        torch = import_torch()
        if self.num_threads is None:
            yield
            return
        previous = torch.get_num_threads()
        torch.set_num_threads(int(self.num_threads))
        try:
            yield
        finally:
            torch.set_num_threads(previous)

    @contextlib.contextmanager
    def _running(self) -> Iterator[None]:
        torch = import_torch()
        with self._threads(), torch.no_grad():
            yield

    def _forward(self, x: Any) -> Any:
        """The raw output tensor of the model (or of ``layer``) for a batch tensor."""
        torch = import_torch()
        mod = self.module
        if self.layer is None:
            out = mod(x)
        else:
            captured: list[Any] = []

            def hook(_module: Any, _inputs: Any, output: Any) -> None:
                captured.append(output)
                raise _StopForward

            handle = self._submodule(mod).register_forward_hook(hook)
            try:
                mod(x)
            except _StopForward:
                pass
            finally:
                handle.remove()
            if not captured:
                raise ValueError(f"layer: the submodule {self.layer!r} was not called by "
                                 f"the model's forward")
            out = captured[0]
        if not isinstance(out, torch.Tensor):
            where = "the model" if self.layer is None else f"layer {self.layer!r}"
            raise ValueError(f"{where} returned {type(out).__name__}, expected a tensor "
                             "(N, D) or (N, C, H, W); pick a layer (layer=...) or wrap the "
                             "model so that it returns one tensor")
        return out

    def _embed_batch(self, images: list[np.ndarray]) -> np.ndarray:
        torch = import_torch()
        with self._running():
            x = np.asarray(self.preprocess(images), dtype=np.float32)
            if x.ndim != 4 or x.shape[0] != len(images):
                raise ValueError(f"preprocess returned shape {x.shape}; expected "
                                 f"({len(images)}, C, H, W)")
            out = self._forward(torch.from_numpy(np.ascontiguousarray(x)).to(self.device))
            where = ("the output of the model" if self.layer is None
                     else f"the output of layer {self.layer!r}")
            return pool(out.detach().float().cpu().numpy(), len(images), where)


class CallableEmbedder(BaseEmbedder):
    """Embeddings from any function ``images -> array``.

    Parameters
    ----------
    fn : callable
        ``fn(list of RGB uint8 arrays (H, W, 3)) -> array-like (N, D)`` (a
        rank-4 ``(N, C, H, W)`` result is averaged over space). Must be
        picklable to use the embedder with joblib or pickle (module-level
        functions are; lambdas are not with the standard pickle).
    name : str, optional
        Prefix of the column names; default ``fn.__name__`` (``"callable"``
        for lambdas).
    n_features : int, optional
        The width D, if known; otherwise found by calling ``fn`` on one blank
        224x224 image when first needed.
    batch_size : int, optional
        Images per call of ``fn``; None (default) passes the whole batch.

    Examples
    --------
    >>> import numpy as np
    >>> def channel_std(images):
    ...     return np.stack([im.std(axis=(0, 1)) for im in images])
    >>> emb = CallableEmbedder(channel_std, n_features=3)
    >>> emb.feature_names_out[0], emb([np.zeros((4, 4, 3), np.uint8)]).shape
    ('channel_std_cnn_0000', (1, 3))
    """

    def __init__(self, fn: Callable[[list[np.ndarray]], ArrayLike], name: str | None = None,
                 n_features: int | None = None, batch_size: int | None = None) -> None:
        if not callable(fn):
            raise TypeError(f"fn: expected a callable, got {type(fn).__name__}")
        check_int(n_features, "n_features", 1, allow_none=True)
        check_int(batch_size, "batch_size", 1, allow_none=True)
        self.fn = fn
        if name is None:
            name = getattr(fn, "__name__", None)
            name = "callable" if not name or name == "<lambda>" else name
        self.name = str(name)
        self.batch_size = batch_size
        self._declared_dim = None if n_features is None else int(n_features)
        if n_features is not None:
            self._cache_dim = int(n_features)

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        if self._declared_dim is not None:
            self._cache_dim = self._declared_dim

    def __repr__(self) -> str:
        return f"CallableEmbedder({self.fn!r}, name={self.name!r})"

    def _embed_batch(self, images: list[np.ndarray]) -> np.ndarray:
        out = pool(np.asarray(self.fn(images)), len(images), f"the result of {self.name}")
        if self._declared_dim is not None and out.shape[1] != self._declared_dim:
            raise ValueError(f"the result of {self.name} has {out.shape[1]} columns, but "
                             f"n_features={self._declared_dim} was declared")
        return out

