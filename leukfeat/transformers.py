"""scikit-learn estimators for images: feature extraction and image preprocessing.

Every estimator here takes ``X`` as a **batch of images**: a sequence (list,
tuple, 1-D array, :class:`pandas.Series`) whose items are image file paths
(``str`` or :class:`os.PathLike`) or image arrays, or a 4-D array
``(n_images, H, W, 3)``. A 2-D numeric matrix is not a batch of images and is
rejected with a :class:`ValueError`.

:class:`FeatureExtractor`
    images -> feature matrix ``(n_images, n_features)`` of float64 with named
    columns (:func:`leukfeat.extract.features` on each image), in parallel,
    with an error policy and an optional on-disk cache.
:class:`ImageReader`, :class:`Resize`, :class:`Equalize`, :class:`StainNormalizer`
    images -> images: each returns a **list of RGB uint8 arrays**, so they
    chain in a :class:`~sklearn.pipeline.Pipeline` before the extractor::

        Pipeline([("stain", StainNormalizer("reinhard")),
                  ("features", FeatureExtractor()),
                  ("classifier", make_classifier("rf"))])

scikit-learn conventions are followed (``__init__`` only stores parameters,
parameters are validated in ``fit``, fitted attributes end in ``_``,
:meth:`~FeatureExtractor.get_feature_names_out`, ``set_output``). Because
``X`` holds images, the estimator tags say so (``input_tags.two_d_array =
False``, ``input_tags.string = True`` for paths); the image transformers
also declare ``transformer_tags.preserves_dtype = []`` since their output is
a list of images, not an array (scikit-learn 1.9 has no tag for the output
type).
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from numbers import Integral, Real
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, cast

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from . import __version__, extract, preprocess, segment
from ._batch import (ImageBatchTransformer, as_batch, check_choice, check_n_jobs, check_segmenter,
                     image_tags, load_item, load_rgb, map_items)
from ._extract_task import CELL_COLUMNS, ExtractTask
from ._fingerprint import code_fingerprint
from ._numba import warm_kernels
from ._validation import as_uint8_rgb, check_image, check_int_pair

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    import pandas as pd
    from numpy.typing import ArrayLike
    from typing_extensions import Self

    from ._typing import ImageBatch

__all__ = [
    "FeatureExtractor",
    "CELL_COLUMNS",
    "ImageReader",
    "Resize",
    "Equalize",
    "StainNormalizer",
    "Segmenter",
]

# --------------------------------------------------------------------------- #
# FeatureExtractor
# --------------------------------------------------------------------------- #

def _callable_id(fn: Any) -> dict[str, Any]:
    """A stable description of a callable for the cache key."""
    import functools
    if isinstance(fn, functools.partial):
        return {"partial": _callable_id(fn.func), "args": repr(fn.args),
                "keywords": repr(sorted(fn.keywords.items()))}
    name = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', type(fn).__qualname__)}"
    code = getattr(fn, "__code__", None)
    if code is not None:
        h = hashlib.sha256(code.co_code)
        h.update(repr(code.co_consts).encode())
        h.update(repr(getattr(fn, "__defaults__", None)).encode())
        h.update(repr(getattr(fn, "__kwdefaults__", None)).encode())
        return {"name": name, "code": h.hexdigest()}
    try:
        import joblib
        return {"name": name, "state": joblib.hash(fn)}
    except Exception:
        return {"name": name}


class FeatureExtractor(ImageBatchTransformer):
    """Handcrafted features of the white cell of each image, as a scikit-learn transformer.

    Each image is read (paths, with :func:`leukfeat.io.read_image`),
    segmented and measured with :func:`leukfeat.extract.features`; the result
    is one row of named features per image, in input order.

    Parameters
    ----------
    segmenter : str or callable, default "nucleus_anchored"
        Segmenter name (``"nucleus_anchored"``, ``"lab_kmeans"``, ``"hsv"``, ``"otsu"``, see
        :data:`leukfeat.segment.METHODS`) or a callable ``image ->
        Segmentation``. A callable must be picklable when ``n_jobs != 1``
        (functions, lambdas and :func:`functools.partial` objects are).
    groups : sequence of str, default ("texture", "shape", "colour", "edges", "field")
        Feature groups (a subset of :data:`leukfeat.extract.GROUPS`; the
        default is :data:`leukfeat.extract.DEFAULT_GROUPS`, add
        ``"nucleus_texture"`` for the texture of the nucleus); columns
        always come in the canonical group order.
    cell : {"largest", "central", "mean", "median"} or int, default "largest"
        Which white cell of each image to measure.
    options : dict, optional
        Group options overriding :data:`leukfeat.extract.DEFAULTS`, e.g.
        ``{"glcm_levels": 16, "lbp_radii": (1, 2)}``.
    n_jobs : int, optional
        Worker processes (joblib, loky backend); None means 1 unless inside a
        :func:`joblib.parallel_config` context, -1 means all CPUs. Results
        are identical for every ``n_jobs``.
    on_error : {"raise", "nan"}, default "raise"
        What a file that cannot be read, or an image that cannot be measured,
        does: ``"raise"`` stops the batch with the error, its message naming
        the file (or the index of the array); ``"nan"`` gives a row of NaN for
        that image, records the failure in :attr:`errors_` and warns once
        per batch. (An image in which no white cell is found is not an
        error: it always gives a NaN row.)
    cache : str or os.PathLike, optional
        Directory of an on-disk feature cache. A row is stored per image under
        a key made of the image content (sha256 of the file bytes, or of an
        array's dtype, shape and bytes) and of the extraction configuration
        (segmenter, groups, cell, the full options, the leukfeat version and
        a hash of the feature and segmentation source code), so a
        ``GridSearchCV`` over downstream parameters extracts each image only
        once, renamed or copied files hit the cache, and a change of any
        setting or of the code misses it. Safe with parallel workers.
        ``n_jobs``, ``on_error`` and ``progress`` do not affect the key.
    progress : bool, default False
        Show a progress bar (tqdm).

    Attributes
    ----------
    feature_names_out_ : ndarray of str
        Column names, :func:`leukfeat.extract.feature_names` for ``groups``
        and ``options``.
    n_features_out_ : int
        Number of columns.
    cache_dir_ : pathlib.Path or None
        The sub-folder of ``cache`` used for this configuration (None without
        a cache); it holds a ``config.json`` describing the configuration.
    errors_ : list of dict
        Failures of the last :meth:`transform` (empty after :meth:`fit`), one
        ``{"index", "item", "error_type", "message"}`` dict per failed image,
        ``item`` being the path (or a description of the array). Only filled
        with ``on_error="nan"``.

    See Also
    --------
    leukfeat.extract.features : the per-image function.
    leukfeat.models.make_pipeline : extractor + classifier in one Pipeline.

    Notes
    -----
    ``fit`` does not look at the images (the transformer is stateless); it
    validates the parameters and fixes the column names.

    Examples
    --------
    >>> from leukfeat.datasets import make_cells
    >>> images = list(make_cells(3, size=96, random_state=0).images)
    >>> fx = FeatureExtractor(groups=("shape",))
    >>> X = fx.fit_transform(images)
    >>> X.shape == (3, len(fx.get_feature_names_out()))
    True
    >>> fx.set_output(transform="pandas").transform(images).columns[0]
    'shape_cell_area'
    """

    def __init__(self, segmenter: str | Callable[..., segment.Segmentation] = segment.DEFAULT_METHOD,
                 groups: str | Iterable[str] = extract.DEFAULT_GROUPS, cell: str | int = "largest",
                 options: dict[str, Any] | None = None, n_jobs: int | None = None,
                 on_error: str = "raise", cache: str | os.PathLike[str] | None = None,
                 progress: bool = False) -> None:
        self.segmenter = segmenter
        self.groups = groups
        self.cell = cell
        self.options = options
        self.n_jobs = n_jobs
        self.on_error = on_error
        self.cache = cache
        self.progress = progress

    # -- parameters ------------------------------------------------------------
    def _configuration(self) -> tuple[dict[str, Any], list[str], dict[str, Any]]:
        """Validate the parameters; return (features() kwargs, names, cache key dict)."""
        seg = self.segmenter
        check_segmenter(seg)
        config = extract.FeatureConfig(self.groups, self.cell, self.options)
        names = config.names()
        self._check_batch_params()
        if self.cache is not None and not isinstance(self.cache, (str, os.PathLike)):
            raise ValueError(f"cache: expected None or a directory path, got {self.cache!r}")
        kwargs = dict(groups=config.groups, cell=config.cell, segmenter=seg, **config.options)
        key = {"leukfeat": __version__,
               "segmenter": seg if isinstance(seg, str) else _callable_id(seg),
               **config.cache_key()}
        return kwargs, names, key

    def _cache_dir(self, key: dict[str, Any]) -> Path | None:
        if self.cache is None:
            return None
        key = dict(key, code=code_fingerprint())
        text = json.dumps(key, sort_keys=True, default=repr)
        digest = hashlib.sha256(text.encode()).hexdigest()[:32]
        folder = Path(self.cache) / f"features-{digest}"
        config = folder / "config.json"
        if not config.is_file():
            try:
                folder.mkdir(parents=True, exist_ok=True)
                tmp = folder / f".config.{uuid.uuid4().hex}.tmp"
                tmp.write_text(json.dumps(key, sort_keys=True, indent=1, default=repr) + "\n")
                os.replace(tmp, config)
            except OSError as exc:
                raise ValueError(f"cache: cannot create the cache folder {folder}: "
                                 f"{exc}") from exc
        return folder

    # -- estimator API ---------------------------------------------------------
    def _check_params(self) -> None:
        self._configuration()

    def _fit_columns(self) -> list[str]:
        _, names, key = self._configuration()
        self.cache_dir_ = self._cache_dir(key)
        return names

    def transform(self, X: ImageBatch) -> np.ndarray:
        """Extract the features of every image.

        Parameters
        ----------
        X : sequence of str, os.PathLike or ndarray, or ndarray (n, H, W, 3)
            Image paths and/or RGB images (uint8, or any dtype
            :func:`leukfeat.extract.features` accepts).

        Returns
        -------
        ndarray of float64, shape (n_images, n_features_out_)
            One row per image, in input order (a DataFrame with
            ``set_output(transform="pandas")``). Rows of images without a
            white cell, and with ``on_error="nan"`` of failed images, are NaN.

        Raises
        ------
        leukfeat.io.ImageReadError, ValueError, ...
            With ``on_error="raise"``, the first failure, its message naming
            the item (``item <index> (<path>): ...``).
        """
        check_is_fitted(self, "feature_names_out_")
        kwargs, names, key = self._configuration()
        if names != list(self.feature_names_out_):
            raise ValueError("the feature configuration (groups/options) changed since fit; "
                             "call fit again")
        items = as_batch(X)
        cache_dir = self._cache_dir(key)
        task = ExtractTask(kwargs, names, None if cache_dir is None else str(cache_dir))
        if self.n_jobs not in (None, 1) and len(items) > 1:
            warm_kernels()     # compiled once here, not in every worker
        out = np.full((len(items), len(names)), np.nan, dtype=np.float64)

        def store(i: int, row: np.ndarray) -> None:      # each row into the matrix as it arrives: no list of rows
            out[i] = row

        _, failures = self._map_items(task, items, "features", sink=store)
        self._record_failures(failures, len(items))
        return out

    def transform_cells(self, X: ImageBatch) -> pd.DataFrame:
        """Extract the features of every white cell of every image.

        The per-cell counterpart of :meth:`transform` (same parameters,
        worker processes, error policy and cache; ``cell`` is not used): one
        row per cell instead of one per image.

        Parameters
        ----------
        X : sequence of str, os.PathLike or ndarray, or of (image, mask) pairs
            As for :meth:`transform`. With a label-image mask, ``cell_label``
            is the mask's own label (e.g. Cellpose's).

        Returns
        -------
        pandas.DataFrame
            Columns ``item`` (the position in `X`), :data:`CELL_COLUMNS`
            (label, centroid, bounding box) and the features
            (:meth:`get_feature_names_out`), cells in label order within
            each item. An item without a white cell, and with
            ``on_error="nan"`` a failed item, keeps one row whose cell
            columns and features are NaN (see :attr:`errors_`), so no item
            is ever missing.

        Raises
        ------
        leukfeat.io.ImageReadError, ValueError, ...
            With ``on_error="raise"``, the first failure, naming the item.

        Examples
        --------
        >>> from leukfeat.datasets import make_cells
        >>> images = make_cells(2, size=(160, 200), n_white_cells=2, random_state=0).images
        >>> fx = FeatureExtractor(groups=("shape",)).fit(images)
        >>> table = fx.transform_cells(images)
        >>> table[["item", "cell_label"]].to_numpy().tolist()
        [[0, 1], [0, 2], [1, 1], [1, 2]]
        """
        import pandas as pd

        check_is_fitted(self, "feature_names_out_")
        kwargs, names, key = self._configuration()
        if names != list(self.feature_names_out_):
            raise ValueError("the feature configuration (groups/options) changed since fit; "
                             "call fit again")
        items = as_batch(X)
        cache_dir = self._cache_dir(dict(key, per_cell=True))
        task = ExtractTask(kwargs, names, None if cache_dir is None else str(cache_dir),
                            per_cell=True)
        if self.n_jobs not in (None, 1) and len(items) > 1:
            warm_kernels()
        tables, failures = self._map_items(task, items, "features")
        width = len(CELL_COLUMNS) + len(names)
        blocks, owner = [], []
        for i, table in enumerate(tables):
            if table is None or not len(table):
                table = np.full((1, width), np.nan)
            blocks.append(table)
            owner += [i] * len(table)
        out = pd.DataFrame(np.vstack(blocks), columns=[*CELL_COLUMNS, *names])
        for col in CELL_COLUMNS:
            if col.startswith(("cell_", "bbox_")):
                out[col] = out[col].astype("Int64")
        out.insert(0, "item", np.asarray(owner, dtype=np.int64))
        self._record_failures(failures, len(items))
        return out

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64"]
        return tags


# --------------------------------------------------------------------------- #
# image -> image transformers
# --------------------------------------------------------------------------- #

class _ImageTransformer(TransformerMixin, BaseEstimator,  # type: ignore[call-arg, unused-ignore]
                        auto_wrap_output_keys=None):
    """Base of the image-to-image transformers (list of RGB uint8 arrays out).

    ``set_output`` is accepted (so that ``Pipeline.set_output`` works) but has
    no effect: a list of images cannot be a DataFrame. ``get_feature_names_out``
    passes its input through, so that a Pipeline starting with image
    transformers still reports the names of its :class:`FeatureExtractor`.
    """

    _requires_fit = False

    def _validate(self) -> None:  # pragma: no cover - overridden
        pass

    def _check_on_error(self) -> None:
        check_choice(self.on_error, "on_error", ("raise", "pass"))

    def fit(self, X: ImageBatch, y: object = None) -> Self:
        """Validate the parameters and the batch (stateless: nothing is learned).

        Parameters
        ----------
        X : sequence of str, os.PathLike or ndarray, or ndarray (n, H, W, C)
        y : ignored

        Returns
        -------
        self
        """
        self._validate()
        self._check_on_error()
        as_batch(X)
        return self

    def _transform_one(self, image: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def _apply(self, item: Any) -> np.ndarray:
        return self._transform_one(load_rgb(item))

    def transform(self, X: ImageBatch) -> list[Any]:
        """Transform every image.

        Parameters
        ----------
        X : sequence of str, os.PathLike or ndarray, or ndarray (n, H, W, C)
            Image paths (read with :func:`leukfeat.io.read_image`) or images
            (any dtype :func:`leukfeat._validation.as_uint8_rgb` accepts;
            grayscale is stacked to RGB).

        Returns
        -------
        list of ndarray of uint8, shape (H', W', 3)
            One RGB image per input, in order (with ``on_error="pass"``,
            failed items as they came).

        Raises
        ------
        leukfeat.io.ImageReadError, ValueError
            With ``on_error="raise"``, for a file that cannot be read or an
            invalid image; the message names the item.
        """
        if self._requires_fit:
            check_is_fitted(self)
        self._validate()
        self._check_on_error()
        items = as_batch(X)
        results, _ = map_items(self._apply, items, n_jobs=1,
                          on_error="raise" if self.on_error == "raise" else "collect")
        return [res if res is not None else item for res, item in zip(results, items)]

    def set_output(self, *, transform: str | None = None) -> Self:
        """Accept ``set_output`` for Pipeline compatibility; the output stays a list of images.

        Parameters
        ----------
        transform : {"default", "pandas", "polars"} or None

        Returns
        -------
        self
        """
        if transform not in (None, "default", "pandas", "polars"):
            raise ValueError(f"transform: expected 'default', 'pandas', 'polars' or None, "
                             f"got {transform!r}")
        return self

    def get_feature_names_out(self, input_features: ArrayLike | None = None) -> np.ndarray | None:
        """Pass ``input_features`` through (images have no feature names).

        Returns
        -------
        ndarray of str or None
        """
        return None if input_features is None else np.asarray(input_features, dtype=object)

    def __sklearn_tags__(self) -> Any:
        tags = image_tags(super().__sklearn_tags__(), requires_fit=self._requires_fit)
        tags.transformer_tags.preserves_dtype = []  # output: a list of RGB uint8 images
        return tags


class ImageReader(_ImageTransformer):
    """Read image files into RGB uint8 arrays.

    Paths are read with :func:`leukfeat.io.read_image`; arrays pass through,
    converted to RGB uint8. Stateless.

    Parameters
    ----------
    on_error : {"raise", "pass"}, default "raise"
        An item that cannot be read or transformed raises (naming it), or
        with ``"pass"`` is passed on unchanged so that the next step (a
        :class:`FeatureExtractor` with ``on_error="nan"``) reports it as its
        own error row: one bad file then never stops a pipeline.

    Examples
    --------
    >>> import numpy as np
    >>> ImageReader().fit_transform([np.zeros((4, 4), np.uint8)])[0].shape
    (4, 4, 3)
    """

    def __init__(self, on_error: str = "raise") -> None:
        self.on_error = on_error

    def _validate(self) -> None:
        pass

    def _transform_one(self, image: np.ndarray) -> np.ndarray:
        return image


class Resize(_ImageTransformer):
    """Resize every image (:func:`leukfeat.preprocess.resize`). Stateless.

    Parameters
    ----------
    size : int or (int, int), default (224, 224)
        Output size in (height, width) order.
    keep_aspect : bool, default False
        Keep the aspect ratio and pad (with black) to ``size``.
    interpolation : {"area", "linear", "cubic", "nearest"}, default "area"
    on_error : {"raise", "pass"}, default "raise"
        An item that cannot be read or transformed raises (naming it), or
        with ``"pass"`` is passed on unchanged so that the next step (a
        :class:`FeatureExtractor` with ``on_error="nan"``) reports it as its
        own error row: one bad file then never stops a pipeline.

    Examples
    --------
    >>> import numpy as np
    >>> Resize((32, 16)).fit_transform([np.zeros((64, 64, 3), np.uint8)])[0].shape
    (32, 16, 3)
    """

    def __init__(self, size: int | tuple[int, int] = (224, 224), keep_aspect: bool = False,
                 interpolation: str = "area", on_error: str = "raise") -> None:
        self.size = size
        self.keep_aspect = keep_aspect
        self.interpolation = interpolation
        self.on_error = on_error

    def _validate(self) -> None:
        check_int_pair(self.size, "size")
        check_choice(self.interpolation, "interpolation", preprocess.INTERPOLATIONS)
        if not isinstance(self.keep_aspect, (bool, np.bool_)):
            raise ValueError(f"keep_aspect: expected a bool, got {self.keep_aspect!r}")

    def _transform_one(self, image: np.ndarray) -> np.ndarray:
        return preprocess.resize(image, self.size, keep_aspect=bool(self.keep_aspect),
                                 interpolation=self.interpolation)


class Equalize(_ImageTransformer):
    """Histogram equalisation of the lightness of every image. Stateless.

    Parameters
    ----------
    method : {"global", "clahe"}, default "global"
        :func:`leukfeat.preprocess.equalize` or :func:`leukfeat.preprocess.clahe`
        (both on CIE L* only, hue and chroma kept).
    clip_limit : float, default 2.0
        CLAHE contrast limit (``method="clahe"`` only).
    tile_grid_size : int or (int, int), default (8, 8)
        CLAHE tiles as (rows, columns) (``method="clahe"`` only).
    on_error : {"raise", "pass"}, default "raise"
        An item that cannot be read or transformed raises (naming it), or
        with ``"pass"`` is passed on unchanged so that the next step (a
        :class:`FeatureExtractor` with ``on_error="nan"``) reports it as its
        own error row: one bad file then never stops a pipeline.
    """

    def __init__(self, method: str = "global", clip_limit: float = 2.0,
                 tile_grid_size: int | tuple[int, int] = (8, 8), on_error: str = "raise") -> None:
        self.method = method
        self.clip_limit = clip_limit
        self.tile_grid_size = tile_grid_size
        self.on_error = on_error

    def _validate(self) -> None:
        check_choice(self.method, "method", ("global", "clahe"))
        if self.method == "clahe":
            if (not isinstance(self.clip_limit, Real) or isinstance(self.clip_limit, bool)
                    or not np.isfinite(self.clip_limit) or self.clip_limit <= 0):
                raise ValueError(f"clip_limit: expected a positive number, "
                                 f"got {self.clip_limit!r}")
            check_int_pair(self.tile_grid_size, "tile_grid_size")

    def _transform_one(self, image: np.ndarray) -> np.ndarray:
        if self.method == "clahe":
            return preprocess.clahe(image, self.clip_limit, self.tile_grid_size)
        return preprocess.equalize(image)


class StainNormalizer(_ImageTransformer):
    """Stain (colour) normalisation to a fixed target or one learnt from the training images.

    With ``target=None``, ``fit`` pools the training images (all, or a
    random subset of ``n_reference``) into one target: Reinhard L*a*b* mean
    and standard deviation (:func:`leukfeat.preprocess.reinhard_stats`) or
    the Macenko stain matrix and maximum concentrations
    (:func:`leukfeat.preprocess.macenko_stains`). With a fixed ``target``
    nothing is learnt. ``transform`` maps every image, on its own, to the
    target (:func:`~leukfeat.preprocess.reinhard` /
    :func:`~leukfeat.preprocess.macenko`).

    Parameters
    ----------
    method : {"reinhard", "macenko"}, default "reinhard"
    target : None, "smear", ReinhardTarget or MacenkoTarget, default None
        None: learnt in ``fit``. ``"smear"``: the built-in target of the
        method (:data:`leukfeat.preprocess.SMEAR_REINHARD_TARGET` or
        ``SMEAR_MACENKO_TARGET``, the colours of leukfeat's synthetic
        Wright-Giemsa smears). A target object (e.g.
        ``preprocess.reinhard_stats(reference_image)``) of the method's
        kind. A fixed target learns nothing from the training images, so
        no colour statistic crosses cross-validation folds.
    n_reference : int, optional
        Number of training images, drawn at random without replacement, from
        which the target is learnt; None uses all. Macenko pools the optical
        density of every pixel of the reference images (24 bytes per pixel:
        about 1.2 MB per 224x224 image), so set this for large sets.
    random_state : int, RandomState instance or None, default 0
        Seed of the reference subset.
    on_error : {"raise", "pass"}, default "raise"
        An item that cannot be read or transformed raises (naming it), or
        with ``"pass"`` is passed on unchanged so that the next step (a
        :class:`FeatureExtractor` with ``on_error="nan"``) reports it as its
        own error row: one bad file then never stops a pipeline. In ``fit``,
        reference images that cannot be read are then left out.

    Attributes
    ----------
    target_ : leukfeat.preprocess.ReinhardTarget or MacenkoTarget
        The target (learnt, or the fixed one).
    reference_indices_ : ndarray of int
        Indices (into the ``X`` given to ``fit``) of the reference images
        (empty with a fixed target).

    Examples
    --------
    >>> from leukfeat.datasets import make_cells
    >>> images = list(make_cells(4, size=64, random_state=0).images)
    >>> norm = StainNormalizer("reinhard").fit(images)
    >>> norm.target_.mean.shape, len(norm.transform(images))
    ((3,), 4)
    >>> fixed = StainNormalizer("macenko", target="smear").fit(images)
    >>> fixed.reference_indices_.size
    0
    """

    _requires_fit = True

    def __init__(self, method: str = "reinhard",
                 target: str | preprocess.ReinhardTarget | preprocess.MacenkoTarget | None = None,
                 n_reference: int | None = None,
                 random_state: int | np.random.RandomState | None = 0,
                 on_error: str = "raise") -> None:
        self.method = method
        self.target = target
        self.n_reference = n_reference
        self.random_state = random_state
        self.on_error = on_error

    def _validate(self) -> None:
        check_choice(self.method, "method", ("reinhard", "macenko"))
        n = self.n_reference
        if n is not None and (not isinstance(n, Integral) or isinstance(n, bool) or n < 1):
            raise ValueError(f"n_reference: expected None or a positive int, got {n!r}")

    def _fixed_target(self) -> preprocess.ReinhardTarget | preprocess.MacenkoTarget | None:
        """The fixed target, or None when it is to be learnt."""
        kind = preprocess.ReinhardTarget if self.method == "reinhard" else preprocess.MacenkoTarget
        if self.target is None:
            return None
        if isinstance(self.target, str) and self.target == "smear":
            return (preprocess.SMEAR_REINHARD_TARGET if self.method == "reinhard"
                    else preprocess.SMEAR_MACENKO_TARGET)
        if isinstance(self.target, kind):
            return self.target
        raise ValueError(f"target: expected None, 'smear' or a {kind.__name__} for method="
                         f"{self.method!r}, got {self.target!r}")

    def fit(self, X: ImageBatch, y: object = None) -> Self:
        """Learn the stain target from (a subset of) the images.

        Parameters
        ----------
        X : sequence of str, os.PathLike or ndarray, or ndarray (n, H, W, C)
        y : ignored

        Returns
        -------
        self
        """
        self._validate()
        self._check_on_error()
        items = as_batch(X)
        fixed = self._fixed_target()
        if fixed is not None:
            self.target_ = fixed
            self.reference_indices_ = np.zeros(0, dtype=np.intp)
            return self
        n = len(items)
        if self.n_reference is None or self.n_reference >= n:
            idx = np.arange(n)
        else:
            rng = check_random_state(self.random_state)
            idx = np.sort(rng.choice(n, size=self.n_reference, replace=False))
        refs, failed = map_items(load_rgb, [items[i] for i in idx], n_jobs=1,
                            on_error="raise" if self.on_error == "raise" else "collect")
        if failed:
            keep = [k for k, r in enumerate(refs) if r is not None]
            if not keep:
                raise ValueError(f"X: none of the {len(idx)} reference images could be "
                                 f"read; first: {failed[0].item}: {failed[0].message}")
            idx, refs = idx[keep], [refs[k] for k in keep]
        if self.method == "reinhard":
            self.target_ = preprocess.reinhard_stats(refs)
        else:
            self.target_ = preprocess.macenko_stains(refs)
        self.reference_indices_ = idx
        return self

    def _transform_one(self, image: np.ndarray) -> np.ndarray:
        if self.method == "reinhard":
            return preprocess.reinhard(image, cast(preprocess.ReinhardTarget, self.target_))
        return preprocess.macenko(image, cast(preprocess.MacenkoTarget, self.target_))


class _SegmentItem:
    """Picklable per-image work of :class:`Segmenter`: ``(image, Segmentation)``."""

    def __init__(self, method: str | Callable[..., segment.Segmentation]) -> None:
        self.method = method

    def __call__(self, item: Any) -> tuple[np.ndarray, segment.Segmentation]:
        image, seg = load_item(item)
        rgb = as_uint8_rgb(check_image(image, "image", ndim=(3,)), "image")
        if seg is None:
            seg = segment.segment(rgb, self.method)
        return rgb, seg


class Segmenter(_ImageTransformer):
    """Read and segment each image once, for every step after it.

    Outputs ``(image, Segmentation)`` pairs, which :class:`FeatureExtractor`
    and :class:`leukfeat.embed.EmbeddingTransformer` take as they are
    (neither reads nor segments again). Put it before a
    :class:`sklearn.pipeline.FeatureUnion` of both, as
    :func:`leukfeat.models.make_pipeline` does for hybrid pipelines, so that
    each image is decoded and segmented once instead of once per member.
    Stateless.

    Parameters
    ----------
    method : str or callable, default "nucleus_anchored"
        Segmenter (:func:`leukfeat.segment.segment`). An ``(image, mask)``
        item keeps its own mask (:func:`leukfeat.segment.from_mask`).
    n_jobs : int, optional
        Worker processes, as in :class:`FeatureExtractor`.

    Notes
    -----
    An item that cannot be read or segmented is passed on unchanged, so
    that the next step reports it under its own error policy (a NaN row with
    ``on_error="nan"``); this step never stops a batch. The pairs of the
    whole batch are held in memory (about four times the decoded images).

    Examples
    --------
    >>> from leukfeat.datasets import make_cells
    >>> image = make_cells(1, size=96, random_state=0).images[0]
    >>> (rgb, seg), = Segmenter().fit_transform([image])
    >>> rgb.shape, seg.n_cells
    ((96, 96, 3), 1)
    """

    def __init__(self, method: str | Callable[..., segment.Segmentation] = segment.DEFAULT_METHOD,
                 n_jobs: int | None = None) -> None:
        self.method = method
        self.n_jobs = n_jobs

    def _check_on_error(self) -> None:
        pass  # always passes failed items on (see Notes)

    def _validate(self) -> None:
        check_segmenter(self.method, "method")
        check_n_jobs(self.n_jobs)

    def transform(self, X: ImageBatch) -> list[Any]:
        """Read and segment every image.

        Parameters
        ----------
        X : sequence of str, os.PathLike or ndarray, or of (image, mask) pairs

        Returns
        -------
        list of (ndarray, Segmentation)
            One pair per input, in order (failed items as they came).
        """
        self._validate()
        items = as_batch(X)
        results, _ = map_items(_SegmentItem(self.method), items, n_jobs=self.n_jobs,
                          on_error="collect")
        return [res if res is not None else item for res, item in zip(results, items)]
