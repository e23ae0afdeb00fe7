"""ONNX files: :class:`OnnxEmbedder` runs one with onnxruntime,
:func:`export_onnx` writes one from a :class:`TorchEmbedder`.

Part of :mod:`leukfeat.embed` (import the public names from there).
"""

from __future__ import annotations

import contextlib
import io as _stdio
import json
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from .._validation import check_int

if TYPE_CHECKING:
    from types import ModuleType

    from numpy.typing import ArrayLike

    from .._typing import StrPath
from .embedders import (PROBE_SIZE, BaseEmbedder, ImagePreprocess, TorchEmbedder, blank_image,
                        import_torch, pool)

_META_PREFIX = "leukfeat."


def _import_onnxruntime() -> ModuleType:
    try:
        import onnxruntime
    except ImportError as exc:
        raise ImportError('leukfeat.embed.OnnxEmbedder needs onnxruntime, which is not '
                          'installed: `pip install "leukfeat[onnx]"` (onnxruntime, onnx, '
                          'onnxscript).') from exc
    return onnxruntime


def _import_onnx() -> ModuleType:
    try:
        import onnx
    except ImportError as exc:
        raise ImportError('leukfeat.embed.export_onnx needs the onnx package, which is not '
                          'installed: `pip install "leukfeat[onnx]"` (onnxruntime, onnx, '
                          'onnxscript).') from exc
    return onnx


class OnnxEmbedder(BaseEmbedder):
    """Embeddings from an ONNX model run with onnxruntime on the CPU.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.onnx`` file. Its (single) input takes the preprocessed float32
        batch ``(N, C, H, W)``.
    output : str, optional
        Name of the output to use; default the first output. A spatial
        ``(N, C, H, W)`` output is averaged over space.
    preprocess : callable, optional
        As in :class:`TorchEmbedder`. Default: the preprocessing stored in the
        file by :func:`export_onnx`, else :class:`ImagePreprocess` ``()``.
    batch_size : int, default 32
        Images per run (forced to the model's batch dimension when the file
        fixes it).
    num_threads : int, default 1
        onnxruntime intra-op threads (inter-op: 1).
    name : str, optional
        Model name, prefix of the column names; default the name stored by
        :func:`export_onnx`, else the file stem.

    Attributes
    ----------
    session : onnxruntime.InferenceSession
        Created on first use; not pickled (re-created after unpickling).
    n_features, feature_names_out
        As in :class:`TorchEmbedder`.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist (the message names it).
    ImportError
        If onnxruntime is not installed.
    ValueError
        If ``output`` is not an output of the model, or the model has more
        than one input.

    Examples
    --------
    >>> emb = OnnxEmbedder(export_onnx(pretrained(), "lite0.onnx"))   # doctest: +SKIP
    >>> emb.name, emb.n_features                                    # doctest: +SKIP
    ('efficientnet-lite0', 1280)
    """

    def __init__(self, path: StrPath, output: str | None = None,
                 preprocess: Callable[[list[np.ndarray]], ArrayLike] | None = None,
                 batch_size: int = 32, num_threads: int = 1, name: str | None = None) -> None:
        path = Path(os.fspath(path))
        if not path.is_file():
            raise FileNotFoundError(2, f"ONNX model file not found: {path}", str(path))
        if output is not None and not isinstance(output, str):
            raise TypeError(f"output: expected None or an output name (str), got {output!r}")
        if preprocess is not None and not callable(preprocess):
            raise TypeError(f"preprocess: expected None or a callable, got "
                            f"{type(preprocess).__name__}")
        check_int(batch_size, "batch_size", 1)
        check_int(num_threads, "num_threads", 1)
        _import_onnxruntime()
        self.path = str(path)
        self.output = output
        self.batch_size = int(batch_size)
        self.num_threads = int(num_threads)
        session = self.session  # validates the file, the input and the output name
        meta = session.get_modelmeta().custom_metadata_map or {}
        if preprocess is None:
            stored = meta.get(_META_PREFIX + "preprocess")
            preprocess = (ImagePreprocess.from_dict(json.loads(stored)) if stored
                          else ImagePreprocess())
        self.preprocess = preprocess
        self.name = str(name if name is not None
                        else meta.get(_META_PREFIX + "name") or path.stem)
        if meta.get(_META_PREFIX + "n_features", "").isdigit():
            self._cache_dim = int(meta[_META_PREFIX + "n_features"])

    def __repr__(self) -> str:
        return (f"OnnxEmbedder({self.path!r}, output={self.output!r}, "
                f"batch_size={self.batch_size}, num_threads={self.num_threads}, "
                f"name={self.name!r})")

    @property
    def session(self) -> Any:
        """The :class:`onnxruntime.InferenceSession` (created on first use)."""
        sess = self.__dict__.get("_cache_session")
        if sess is None:
            ort = _import_onnxruntime()
            if not Path(self.path).is_file():
                raise FileNotFoundError(2, f"ONNX model file not found: {self.path}",
                                        self.path)
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = int(self.num_threads)
            opts.inter_op_num_threads = 1
            opts.log_severity_level = 3
            sess = ort.InferenceSession(self.path, opts, providers=["CPUExecutionProvider"])
            inputs = sess.get_inputs()
            if len(inputs) != 1:
                raise ValueError(f"{self.path}: expected a model with one input (the image "
                                 f"batch), got {len(inputs)}: {[i.name for i in inputs]}")
            outputs = [o.name for o in sess.get_outputs()]
            if self.output is not None and self.output not in outputs:
                raise ValueError(f"output: {self.output!r} is not an output of {self.path}; "
                                 f"its outputs are {outputs}")
            self._cache_session = sess
        return sess

    def _probe_size(self) -> tuple[int, ...]:
        size = getattr(self.preprocess, "size", None)
        if size is not None:
            return tuple(size)
        shape = self.session.get_inputs()[0].shape
        if len(shape) == 4 and all(isinstance(s, int) for s in shape[2:]):
            return (shape[2], shape[3])
        return (PROBE_SIZE, PROBE_SIZE)

    def _embed_batch(self, images: list[np.ndarray]) -> np.ndarray:
        sess = self.session
        inp = sess.get_inputs()[0]
        fixed = inp.shape[0] if inp.shape and isinstance(inp.shape[0], int) else None
        x = np.ascontiguousarray(self.preprocess(images), dtype=np.float32)
        if x.ndim != 4 or x.shape[0] != len(images):
            raise ValueError(f"preprocess returned shape {x.shape}; expected "
                             f"({len(images)}, C, H, W)")
        names = None if self.output is None else [self.output]
        where = f"the output {self.output or sess.get_outputs()[0].name!r}"
        step = fixed or len(images)
        parts = []
        for i in range(0, len(images), step):
            part = x[i:i + step]
            n = len(part)
            if fixed and n < fixed:  # a file with a fixed batch size: pad the last batch
                part = np.concatenate([part, np.zeros((fixed - n, *part.shape[1:]),
                                                      np.float32)])
            out = np.asarray(sess.run(names, {inp.name: part})[0])
            parts.append(pool(out[:n] if fixed else out, n, where))
        return np.concatenate(parts, axis=0)


# --------------------------------------------------------------------------- #
# ONNX export
# --------------------------------------------------------------------------- #

def _export_wrapper(embedder: TorchEmbedder) -> Any:
    """A module: preprocessed batch -> (N, D) embedding (pooling in the graph)."""
    torch = import_torch()

    class Embedding(torch.nn.Module):  # type: ignore[name-defined]
        def __init__(self, model: Any, layer: Any) -> None:
            super().__init__()
            self.model = model
            self.layer = layer

        def forward(self, x: Any) -> Any:
            if self.layer is None:
                out = self.model(x)
            else:
                captured = []
                handle = self.model.get_submodule(self.layer).register_forward_hook(
                    lambda _m, _i, o: captured.append(o))
                try:
                    self.model(x)
                finally:
                    handle.remove()
                out = captured[0]
            if out.dim() == 4:
                out = out.mean(dim=(2, 3))
            return out

    return Embedding(embedder.module, embedder.layer).eval()


def export_onnx(embedder: TorchEmbedder, path: StrPath, *, opset_version: int | None = None,
                dynamo: bool = False) -> Path:
    """Export a :class:`TorchEmbedder`'s model to ONNX, for :class:`OnnxEmbedder`.

    The exported graph maps the preprocessed batch ``images`` (float32,
    ``(batch, C, H, W)``, dynamic batch axis) to the output ``embedding``
    ``(batch, D)`` (the layer capture and the spatial average are part of the
    graph). The embedder's name, width and :class:`ImagePreprocess` settings
    are stored in the file's metadata, so ``OnnxEmbedder(path)`` gives the
    same embeddings (to about 1e-5) with the same column names. On one CPU
    thread onnxruntime runs EfficientNet-Lite0 faster than PyTorch (measured
    here: 14-16 ms per 224x224 image against 22-80 ms, the PyTorch figure
    depending much more on the load of the machine).

    Parameters
    ----------
    embedder : TorchEmbedder
        E.g. :func:`pretrained` ``()``.
    path : str or os.PathLike
        The ``.onnx`` file to write (parent folders are created).
    opset_version : int, optional
        ONNX opset; default torch's.
    dynamo : bool, default False
        False: torch's TorchScript-based exporter (fast; deprecated since
        torch 2.9 but still shipped, its warnings are silenced here); True:
        the ``torch.export``-based exporter (needs ``onnxscript``; slower to
        export, same results).

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    TypeError
        If ``embedder`` is not a :class:`TorchEmbedder`.
    ImportError
        If torch or onnx (or onnxscript with ``dynamo=True``) is missing.
    ValueError
        If the model's output has a wrong rank (as in :class:`TorchEmbedder`).

    Warns
    -----
    UserWarning
        If the embedder's ``preprocess`` is not an :class:`ImagePreprocess`
        and so cannot be stored in the file: pass it to
        :class:`OnnxEmbedder` yourself.

    Examples
    --------
    >>> path = export_onnx(pretrained(), "lite0.onnx")             # doctest: +SKIP
    >>> OnnxEmbedder(path).n_features                                # doctest: +SKIP
    1280
    """
    if not isinstance(embedder, TorchEmbedder):
        raise TypeError(f"embedder: expected a TorchEmbedder, got {type(embedder).__name__}")
    torch = import_torch()
    onnx = _import_onnx()
    if dynamo:
        try:
            import onnxscript  # noqa: F401
        except ImportError as exc:
            raise ImportError('export_onnx(dynamo=True) needs onnxscript: '
                              '`pip install "leukfeat[onnx]"`') from exc
    path = Path(os.fspath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    n_features = embedder.n_features  # validates the output rank before exporting
    size = embedder._probe_size()
    x = torch.from_numpy(embedder.preprocess([blank_image(size), blank_image(size)])).to(embedder.device)
    wrapper = _export_wrapper(embedder)
    kwargs = dict(input_names=["images"], output_names=["embedding"], dynamo=bool(dynamo))
    if opset_version is not None:
        kwargs["opset_version"] = int(opset_version)
    if dynamo:
        kwargs["dynamic_shapes"] = ({0: torch.export.Dim("batch")},)
        kwargs["verbose"] = False
    else:
        kwargs["dynamic_axes"] = {"images": {0: "batch"}, "embedding": {0: "batch"}}
    with embedder._threads(), torch.no_grad(), warnings.catch_warnings(), \
            contextlib.redirect_stdout(_stdio.StringIO()):
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*[Cc]onstant folding.*")
        warnings.filterwarnings("ignore", category=FutureWarning)
        torch.onnx.export(wrapper, (x,), str(path), **kwargs)
    model = onnx.load(str(path))
    meta = {"name": embedder.name, "n_features": str(n_features)}
    if isinstance(embedder.preprocess, ImagePreprocess):
        meta["preprocess"] = json.dumps(embedder.preprocess.to_dict())
    else:
        warnings.warn("export_onnx: the embedder's preprocess is not an ImagePreprocess and "
                      "is not stored in the file; pass it to OnnxEmbedder(preprocess=...)",
                      UserWarning, stacklevel=2)
    from .. import __version__
    meta["version"] = __version__
    existing = {p.key for p in model.metadata_props}
    for key, value in meta.items():
        if _META_PREFIX + key in existing:
            continue
        entry = model.metadata_props.add()
        entry.key, entry.value = _META_PREFIX + key, value
    onnx.save(model, str(path))
    return path

