"""The scikit-learn transformer :class:`EmbeddingTransformer` (and its
per-image work: read, crop to the white cell, resize).

Part of :mod:`leukfeat.embed` (import the public names from there).
"""

from __future__ import annotations

from dataclasses import replace
from numbers import Integral
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
from sklearn.utils.validation import check_is_fitted

from .._batch import ImageBatchTransformer
from .._validation import check_int
from .embedders import resize_rgb
from .pretrained_models import PRETRAINED, pretrained

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .._batch import Failure
    from .._typing import ImageBatch
    from ..segment import Segmentation
    from .embedders import Embedder

# --------------------------------------------------------------------------- #
# scikit-learn transformer
# --------------------------------------------------------------------------- #

def _resolve_embedder(embedder: Any, batch_size: int) -> Any:
    """The embedder object for an ``embedder`` parameter (None, a name or an Embedder)."""
    if embedder is None:
        return pretrained(PRETRAINED[0], batch_size=batch_size)
    if isinstance(embedder, str):
        return pretrained(embedder, batch_size=batch_size)
    check_embedder_param(embedder)
    if isinstance(embedder, EmbeddingTransformer):
        raise ValueError("embedder: got an EmbeddingTransformer; pass its embedder (or use "
                         "it directly as a transformer)")
    return embedder


def check_embedder_param(embedder: object) -> None:
    """Validate an ``embedder`` parameter without building anything (no torch import)."""
    if embedder is None:
        return
    if isinstance(embedder, str):
        if embedder not in PRETRAINED:
            raise ValueError(f"embedder: unknown pretrained model {embedder!r}; available: "
                             f"{', '.join(PRETRAINED)}")
        return
    if isinstance(embedder, EmbeddingTransformer):
        return
    # (looked up on the class, so that a lazy property does not build the model here)
    if not (callable(getattr(embedder, "embed", None))
            and (hasattr(type(embedder), "feature_names_out")
                 or "feature_names_out" in getattr(embedder, "__dict__", {}))):
        raise ValueError(f"embedder: expected None, a pretrained model name "
                         f"({', '.join(PRETRAINED)}), an Embedder (with embed() and "
                         f"feature_names_out) or an EmbeddingTransformer, got "
                         f"{type(embedder).__name__}; wrap a plain function in "
                         "CallableEmbedder")


def square_box(bbox: Sequence[int], shape: Sequence[int], pad: int) -> tuple[int, int, int, int]:
    """A square window around ``bbox`` (r0, c0, r1, c1) of side max(h, w) + 2 pad, in the image."""
    r0, c0, r1, c1 = bbox
    H, W = shape
    side = max(r1 - r0, c1 - c0) + 2 * pad
    out: list[int] = []
    for lo, hi, n in ((r0, r1, H), (c0, c1, W)):
        s = min(side, n)
        start = (lo + hi) // 2 - s // 2
        start = min(max(start, 0), n - s)
        out += [start, start + s]
    return out[0], out[2], out[1], out[3]


def _views(window: np.ndarray) -> list[np.ndarray]:
    """The window, its left-right and up-down mirrors and its transpose."""
    return [window, np.ascontiguousarray(window[:, ::-1]),
            np.ascontiguousarray(window[::-1]), np.ascontiguousarray(window.transpose(1, 0, 2))]


class _PrepareTask:
    """Picklable per-image work of :class:`EmbeddingTransformer`: read, crop, resize."""

    def __init__(self, crop: str, segmenter: str | Callable[..., Segmentation], pad: int,
                 size: int | None) -> None:
        self.crop = crop
        self.segmenter = segmenter
        self.pad = pad
        self.size = size

    def __call__(self, item: Any) -> tuple[list[np.ndarray], bool]:
        from .. import segment
        from .._batch import load_item, load_rgb

        if isinstance(item, tuple):   # (image, mask or Segmentation): no segmenter
            image, seg = load_item(item)
        else:
            image, seg = load_rgb(item), None
        windows = [image]
        fallback = False
        if self.crop in ("cell", "cells"):
            if seg is None:
                seg = segment.segment(image, self.segmenter)
            labels = ([seg.largest()] if seg.n_cells else []) if self.crop == "cell" \
                else seg.cell_ids()
            if not labels:
                fallback = True
            else:
                windows = []
                for label in labels:
                    cell = seg.crop(label, image, margin=0)
                    r0, c0, r1, c1 = square_box(cell.bbox, image.shape[:2], self.pad)
                    windows.append(image[r0:r1, c0:c1])
        if self.size is not None:
            windows = [resize_rgb(w, (self.size, self.size)) for w in windows]
        return [np.ascontiguousarray(w) for w in windows], fallback


class EmbeddingTransformer(ImageBatchTransformer):
    """CNN embeddings of images (or of their white cell), as a scikit-learn transformer.

    Each image is read (paths, with :func:`leukfeat.io.read_image`), cropped
    to its largest white cell when ``crop="cell"``, resized to ``size`` and
    embedded with ``embedder``; the result is one row of named columns
    (``<model>_cnn_0000`` ...) per image, in input order.

    Parameters
    ----------
    embedder : None, str or Embedder, default None
        None: :func:`pretrained` ``("efficientnet-lite0")`` (needs
        ``leukfeat[cnn]``); a name of :data:`PRETRAINED`; or any
        :class:`Embedder` (:class:`TorchEmbedder`, :class:`OnnxEmbedder`,
        :class:`CallableEmbedder`, ...). An embedder object is used as it is
        (not copied) by ``fit``.
    crop : {"cell", "cells", "image"}, default "cell"
        ``"cell"``: segment the image (``segmenter``) and embed a square
        window centred on the largest white cell, of side the longer side of
        its bounding box plus ``2 * pad`` (moved inside the image, and cut
        where the image is smaller); an image in which no cell is found is
        embedded whole (its index is listed in :attr:`fallbacks_`).
        ``"cells"``: the same window around **every** white cell, each
        embedded, and the row is the element-wise median over the cells of
        the image (as ``FeatureExtractor(cell="median")``); on fields with
        several cells this describes the sample far better than one cell
        (Taleghani ALL, logistic regression: 0.984 accuracy against 0.930
        for ``"cell"``), without the background that ``"image"`` sees.
        Costs one forward pass per cell.
        ``"image"``: embed the whole image.
    segmenter : str or callable, default "nucleus_anchored"
        As in :class:`~leukfeat.transformers.FeatureExtractor` (only used
        with ``crop="cell"`` or ``"cells"``).
    pad : int, default 8
        Context pixels kept around the cell's bounding box.
    size : int or None, default 224
        Side of the square each crop (or image) is resized to before
        embedding (OpenCV ``INTER_AREA`` when shrinking, ``INTER_LINEAR``
        when enlarging); None passes crops as they are to the embedder's own
        preprocessing.
    tta : bool, default False
        Test-time augmentation: embed each window (cell crop or image), its
        left-right and up-down mirrors and its transpose, and average the
        four embeddings. A white cell has no preferred orientation, so this
        removes orientation noise from the features, at four times the
        cost (Taleghani ALL, ``crop="cells"``, logistic regression: 0.988
        against 0.984 without).
    batch_size : int, default 32
        Images read, cropped and embedded at a time (also the batch size of
        the default embedder); bounds the memory used (with ``crop="cells"``
        a batch holds every cell of its images).
    n_jobs : int, optional
        Worker processes for reading and cropping (joblib); the embedding
        itself runs in the calling process with the embedder's
        ``num_threads``.
    on_error : {"raise", "nan"}, default "raise"
        What an image that cannot be read or cropped does: ``"raise"`` stops
        with the error, its message naming the item; ``"nan"`` gives a NaN
        row, recorded in :attr:`errors_`, with one warning per batch.
    progress : bool, default False
        Show a progress bar (tqdm).

    Attributes
    ----------
    embedder_ : Embedder
        The embedder used (built from ``embedder`` by ``fit``).
    feature_names_out_ : ndarray of str
        Column names.
    n_features_out_ : int
        Number of columns.
    errors_ : list of dict
        Failures of the last :meth:`transform` (``on_error="nan"``), one
        ``{"index", "item", "error_type", "message"}`` dict each.
    fallbacks_ : list of int
        Indices, in the last :meth:`transform`, of the images embedded whole
        because no white cell was found (``crop="cell"`` or ``"cells"``).

    See Also
    --------
    leukfeat.transformers.FeatureExtractor : the handcrafted features.
    leukfeat.models.make_pipeline : with ``embedder=...``, both in one Pipeline.

    Notes
    -----
    ``fit`` does not look at the images: it validates the parameters, builds
    the embedder and fixes the column names (with one forward pass of a
    blank image when the width is not known). The transformer pickles and
    clones without the model weights when the embedder was built from a name
    (the model is rebuilt from the installed weights on first use).

    Examples
    --------
    >>> import numpy as np
    >>> from leukfeat.datasets import make_cells
    >>> images = list(make_cells(3, size=96, random_state=0).images)
    >>> def mean_rgb(ims):
    ...     return np.stack([im.mean(axis=(0, 1)) for im in ims])
    >>> et = EmbeddingTransformer(CallableEmbedder(mean_rgb), crop="cell", size=64)
    >>> et.fit_transform(images).shape
    (3, 3)
    >>> et.set_output(transform="pandas").transform(images).columns[0]
    'mean_rgb_cnn_0000'
    """

    def __init__(self, embedder: str | Embedder | None = None, crop: str = "cell",
                 segmenter: str | Callable[..., Segmentation] = "nucleus_anchored", pad: int = 8,
                 size: int | None = 224, tta: bool = False, batch_size: int = 32,
                 n_jobs: int | None = None, on_error: str = "raise",
                 progress: bool = False) -> None:
        self.embedder = embedder
        self.crop = crop
        self.tta = tta
        self.segmenter = segmenter
        self.pad = pad
        self.size = size
        self.batch_size = batch_size
        self.n_jobs = n_jobs
        self.on_error = on_error
        self.progress = progress

    def _check_params(self) -> None:
        from .._batch import check_choice, check_segmenter

        check_embedder_param(self.embedder)
        if isinstance(self.embedder, EmbeddingTransformer):
            raise ValueError("embedder: got an EmbeddingTransformer; pass its embedder (or "
                             "use it directly as a transformer)")
        check_choice(self.crop, "crop", ("cell", "cells", "image"))
        check_segmenter(self.segmenter)
        if not isinstance(self.pad, Integral) or isinstance(self.pad, bool) or self.pad < 0:
            raise ValueError(f"pad: expected a non-negative int, got {self.pad!r}")
        check_int(self.size, "size", 1, allow_none=True)
        check_int(self.batch_size, "batch_size", 1)
        self._check_batch_params()
        if not isinstance(self.tta, (bool, np.bool_)):
            raise ValueError(f"tta: expected a bool, got {self.tta!r}")

    def _fit_columns(self) -> np.ndarray:
        """Build the embedder (``embedder_``); its names are the output columns."""
        emb = _resolve_embedder(self.embedder, int(self.batch_size))
        names = np.asarray(emb.feature_names_out, dtype=object)
        if names.ndim != 1 or names.size == 0:
            raise ValueError(f"embedder: feature_names_out must be a non-empty 1-D list, "
                             f"got shape {names.shape}")
        self.embedder_ = emb
        self.fallbacks_: list[int] = []
        return names

    def transform(self, X: ImageBatch) -> np.ndarray:
        """Embed every image.

        Parameters
        ----------
        X : sequence of str, os.PathLike or ndarray, or ndarray (n, H, W, 3)
            Image paths and/or images.

        Returns
        -------
        ndarray of float32, shape (n_images, n_features_out_)
            One row per image, in input order (a DataFrame with
            ``set_output(transform="pandas")``); with ``on_error="nan"``,
            rows of failed images are NaN.

        Raises
        ------
        leukfeat.io.ImageReadError, ValueError, ...
            With ``on_error="raise"``, the first failure, its message naming
            the item (``item <index> (<path>): ...``).
        """
        from tqdm.auto import tqdm

        from .._batch import as_batch, map_items, reraise

        check_is_fitted(self, "feature_names_out_")
        self._check_params()
        items = as_batch(X)
        n_out = self.n_features_out_
        out = np.full((len(items), n_out), np.nan, dtype=np.float32)
        task = _PrepareTask(self.crop, self.segmenter, int(self.pad),
                            None if self.size is None else int(self.size))
        failures: list[Failure] = []
        fallbacks: list[int] = []
        step = int(self.batch_size)
        if self.n_jobs not in (None, 1):
            step *= 4  # fewer, larger parallel rounds
        with tqdm(total=len(items), desc="embeddings", unit="image",
                  disable=not self.progress) as bar:
            for start in range(0, len(items), step):
                chunk = items[start:start + step]
                prepared, fails = map_items(task, chunk, n_jobs=self.n_jobs, on_error="collect")
                fails = [replace(f, index=f.index + start) for f in fails]
                if fails and self.on_error == "raise":
                    reraise(fails[0])
                failures += fails
                good = [i for i, p in enumerate(prepared) if p is not None]
                fallbacks += [start + i for i in good if prepared[i][1]]
                if good:
                    windows = [w for i in good for w in prepared[i][0]]
                    emb = self._embed(windows)
                    rows = emb
                    if self.crop == "cells":    # median over the cells of each image
                        bounds = np.cumsum([0] + [len(prepared[i][0]) for i in good])
                        rows = np.stack([np.median(emb[a:b], axis=0)
                                         for a, b in zip(bounds[:-1], bounds[1:])])
                    out[[start + i for i in good]] = rows
                bar.update(len(chunk))
        self.fallbacks_ = fallbacks
        self._record_failures(failures, len(items))
        return out

    def _embed(self, windows: list[np.ndarray]) -> np.ndarray:
        """Embeddings of ``windows`` (averaged over the 4 views with ``tta``)."""
        views = [v for w in windows for v in _views(w)] if self.tta else windows
        emb = np.asarray(self.embedder_.embed(views))
        if emb.shape != (len(views), self.n_features_out_):
            raise ValueError(f"the embedder returned shape {emb.shape}, expected "
                             f"({len(views)}, {self.n_features_out_}) (as at fit)")
        if self.tta:
            emb = emb.reshape(len(windows), len(views) // len(windows), -1).mean(axis=1)
        return emb

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = []
        return tags
