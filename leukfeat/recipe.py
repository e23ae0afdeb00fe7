"""Recipes: published pre-processing and segmentation pipelines as data.

A :class:`Recipe` is a list of named **steps**, each a small parameterised
operation on an image and (once a step has made one) its mask:

======================  ===========================================================
step (YAML name)        what it does
======================  ===========================================================
``gray``                RGB to grey (BT.601)
``colour_space``        RGB to CIELAB (OpenCV 8-bit scaling) or HSV
``channel``             keep one channel of a multi-channel image
``equalize``            histogram equalisation (global or CLAHE) of the image
``resize``              resize the image (and the mask, nearest neighbour)
``normalize``           scale the image to float in [0, 1]
``log_sharpen``         Laplacian-of-Gaussian enhancement: ``image - amount * LoG``
``stain_normalize``     Reinhard or Macenko normalisation to a fixed target
``kmeans``              K-means of a one-channel 8-bit image, keep a cluster
``threshold``           fixed, Otsu or HSV-box threshold to a mask
``fill_holes``          fill the holes of the mask
``remove_small``        drop mask objects smaller than ``min_size`` pixels
``remove_small_holes``  fill holes smaller than ``area`` pixels
``opening``             binary opening of the mask (disk of ``radius``)
``closing``             binary closing of the mask
``watershed_split``     split touching objects of the mask
``mask_and``            the original image outside the mask set to ``fill``
``crop_to_cell``        crop everything to the largest object of the mask
======================  ===========================================================

Every step works on arrays (``step(state)``) and is also a scikit-learn
transformer on its own (``Threshold("otsu").fit_transform(images)``: images
in; the image, or the mask for a step that makes or changes one, out; a mask
step such as ``FillHoles()`` takes masks), through one adapter, the base
class of the steps, which runs the step as a recipe of one. A recipe is a
scikit-learn
transformer (images in; images, ``(image, Segmentation)`` pairs or
segmentations out): ``get_params``/``set_params`` reach every step's
parameters as ``<step name>__<parameter>``, so :class:`GridSearchCV
<sklearn.model_selection.GridSearchCV>` can tune a threshold. Recipes
round-trip to YAML and JSON (:meth:`Recipe.to_dict`, :func:`load_recipe`,
:meth:`Recipe.save`), with errors naming the bad key and its line.

The seed papers' pipelines ship as recipe files (:data:`SHIPPED`,
:func:`load_recipe` by name).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from numpy.typing import ArrayLike
    from typing_extensions import Self

    from ._typing import ImageBatch, StrPath
    from .segment import Segmentation

__all__ = ["Recipe", "RecipeError", "STEPS", "SHIPPED", "load_recipe", "recipe_names",
           "Gray", "ColourSpace", "Channel", "Equalize", "Resize", "Normalize", "LogSharpen",
           "StainNormalize", "KMeans", "Threshold", "FillHoles", "RemoveSmall",
           "RemoveSmallHoles", "Opening", "Closing", "WatershedSplit", "MaskAnd", "CropToCell"]

_RECIPE_DIR = Path(__file__).resolve().parent / "recipes"


class RecipeError(ValueError):
    """A recipe file or dictionary that is not a valid recipe (the message
    names the file, the step, the key and, for YAML files, the line)."""


class _State:
    """What flows through a recipe: the original RGB image, the current image
    (any dtype, one or three channels) and the mask (None until a step makes one)."""

    __slots__ = ("original", "image", "mask")

    def __init__(self, original: np.ndarray, image: np.ndarray,
                 mask: np.ndarray | None = None) -> None:
        self.original = original
        self.image = image
        self.mask = mask

    @classmethod
    def of(cls, item: Any) -> "_State":
        """The state of an image item (path or array) before any step."""
        from ._batch import load_rgb

        rgb = load_rgb(item)
        return cls(rgb, rgb.copy())


class _Step(TransformerMixin, BaseEstimator):
    """Base of the steps: parameters in ``__init__``, work in :meth:`apply`.

    It is also the one adapter that makes every step a scikit-learn
    transformer on its own (:meth:`transform`).
    """

    #: YAML/JSON name of the step
    name = ""
    #: what :meth:`transform` returns of the state: "image" or "mask"
    changes = "image"
    #: whether the step works on the mask an earlier step made
    needs_mask = False

    def __call__(self, state: _State) -> _State:
        return self.apply(state)

    def fit(self, X: ImageBatch, y: object = None) -> Self:
        """Check the batch (a step learns nothing)."""
        from ._batch import as_batch

        as_batch(X)
        return self

    def transform(self, X: ImageBatch) -> list[Any]:
        """Apply this step alone to every item.

        Parameters
        ----------
        X : sequence of images or image paths; of masks for a mask step
            Paths are read as RGB; arrays are taken as they are (the output
            of another step alone: grey, one channel, LAB, float). A step
            that works on a mask (``fill_holes``, ``remove_small``,
            ``opening``, ...) takes 2-D masks (bool or 0/1 arrays).

        Returns
        -------
        list
            Per item, the image after the step, or the mask (bool) for a
            step that makes or changes a mask.

        Raises
        ------
        RecipeError
            Naming the item, when the step cannot work on it (e.g. ``kmeans``
            on an RGB image), or for ``mask_and`` and ``crop_to_cell``, which
            need the image and the mask of a :class:`Recipe`.
        """
        from ._batch import as_batch

        out: list[Any] = []
        for k, item in enumerate(as_batch(X)):
            try:
                state = self(self._alone_state(item))
            except RecipeError as exc:
                raise RecipeError(f"X[{k}]: {exc}") from None
            out.append(state.mask if self.changes == "mask" else state.image)
        return out

    def _alone_state(self, item: Any) -> _State:
        if not self.needs_mask:
            if isinstance(item, np.ndarray):
                # an array as it is: the grey, one-channel or LAB output of
                # another step alone goes on to the next
                return _State(np.dstack([item] * 3) if item.ndim == 2 else item, item.copy())
            return _State.of(item)
        if self.changes != "mask":
            raise RecipeError(f"step {self.name!r} needs the image and the mask of a recipe: "
                              "use it inside a Recipe, after a thresholding step")
        mask = np.asarray(item)
        if mask.ndim != 2 or mask.dtype.kind not in "biu" or (mask.dtype.kind != "b"
                                                               and mask.max(initial=0) > 1):
            raise RecipeError(f"step {self.name!r} alone takes masks (2-D bool or 0/1 "
                              f"arrays), got {mask.dtype} of shape {mask.shape}")
        mask = mask.astype(bool)
        grey = mask.astype(np.uint8) * 255
        return _State(np.dstack([grey] * 3), grey, mask)

    def __sklearn_tags__(self) -> Any:
        from ._batch import image_tags

        tags = image_tags(super().__sklearn_tags__(), requires_fit=False)
        tags.transformer_tags.preserves_dtype = []
        return tags

    def apply(self, state: _State) -> _State:  # pragma: no cover - overridden
        raise NotImplementedError

    def _need_mask(self, state: _State) -> np.ndarray:
        if state.mask is None:
            raise RecipeError(f"step {self.name!r} needs a mask: put a thresholding step "
                              "(kmeans, threshold) before it")
        return state.mask

    def _u8(self, image: ArrayLike, what: str = "image") -> np.ndarray:
        arr = np.asarray(image)
        if arr.dtype == np.uint8:
            return arr
        if arr.dtype.kind == "f" and arr.size and arr.min() >= 0 and arr.max() <= 1:
            return np.clip(np.rint(arr * 255), 0, 255).astype(np.uint8)
        raise RecipeError(f"step {self.name!r} needs an 8-bit {what}, got {arr.dtype}")


def _rgb(state: _State, step: str) -> np.ndarray:
    img = np.asarray(state.image)
    if img.ndim != 3 or img.shape[2] != 3:
        raise RecipeError(f"step {step!r} needs an RGB image, got shape {img.shape}")
    return img


class Gray(_Step):
    """RGB to grey (BT.601, :func:`leukfeat.preprocess.to_gray`)."""

    name = "gray"

    def apply(self, state: _State) -> _State:
        from . import preprocess

        img = np.asarray(state.image)
        state.image = img if img.ndim == 2 else preprocess.to_gray(self._u8(img))
        return state


class ColourSpace(_Step):
    """RGB to ``"lab"`` (OpenCV 8-bit CIELAB: L*255/100, a*+128, b*+128) or ``"hsv"``."""

    name = "colour_space"

    def __init__(self, space: str = "lab") -> None:
        self.space = space

    def apply(self, state: _State) -> _State:
        import cv2

        codes = {"lab": cv2.COLOR_RGB2LAB, "hsv": cv2.COLOR_RGB2HSV_FULL}
        if self.space not in codes:
            raise RecipeError(f"colour_space: space must be one of {sorted(codes)}, "
                              f"got {self.space!r}")
        state.image = cv2.cvtColor(self._u8(_rgb(state, self.name)), codes[self.space])
        return state


class Channel(_Step):
    """Keep channel ``index`` (0, 1, 2) of a multi-channel image."""

    name = "channel"

    def __init__(self, index: int = 1) -> None:
        self.index = index

    def apply(self, state: _State) -> _State:
        img = np.asarray(state.image)
        if img.ndim != 3 or not (isinstance(self.index, int) and 0 <= self.index < img.shape[2]):
            raise RecipeError(f"channel: index must pick one of the {img.shape[-1]} channels "
                              f"of an image of shape {img.shape}, got {self.index!r}")
        state.image = np.ascontiguousarray(img[..., self.index])
        return state


class Equalize(_Step):
    """Histogram equalisation: ``"global"`` or ``"clahe"`` (of L* for RGB images,
    :func:`leukfeat.preprocess.equalize` / :func:`~leukfeat.preprocess.clahe`;
    of the grey levels for one-channel images)."""

    name = "equalize"

    def __init__(self, method: str = "global", clip_limit: float = 2.0,
                 tile_grid_size: Sequence[int] = (8, 8)) -> None:
        self.method = method
        self.clip_limit = clip_limit
        self.tile_grid_size = tile_grid_size

    def apply(self, state: _State) -> _State:
        import cv2

        from . import preprocess

        img = self._u8(state.image)
        if self.method not in ("global", "clahe"):
            raise RecipeError(f"equalize: method must be 'global' or 'clahe', got "
                              f"{self.method!r}")
        if img.ndim == 3:
            state.image = (preprocess.equalize(img) if self.method == "global" else
                           preprocess.clahe(img, self.clip_limit, tuple(self.tile_grid_size)))
        elif self.method == "global":
            state.image = cv2.equalizeHist(img)
        else:
            state.image = cv2.createCLAHE(float(self.clip_limit),
                                          tuple(self.tile_grid_size)).apply(img)
        return state


class Resize(_Step):
    """Resize to ``size`` (height, width); the mask follows (nearest)."""

    name = "resize"

    def __init__(self, size: int | tuple[int, int] = (224, 224), interpolation: str = "area") -> None:
        self.size = size
        self.interpolation = interpolation

    def apply(self, state: _State) -> _State:
        from . import preprocess

        size = tuple(self.size) if not isinstance(self.size, int) else (self.size,) * 2
        state.image = preprocess.resize(state.image, size, interpolation=self.interpolation)
        state.original = preprocess.resize(state.original, size,
                                           interpolation=self.interpolation)
        if state.mask is not None:
            state.mask = preprocess.resize(state.mask.astype(np.uint8), size,
                                           interpolation="nearest").astype(bool)
        return state


class Normalize(_Step):
    """Scale the image to float64 in [0, 1] (divide by 255 for 8-bit images)."""

    name = "normalize"

    def apply(self, state: _State) -> _State:
        img = np.asarray(state.image)
        if img.dtype == np.uint8:
            state.image = img.astype(np.float64) / 255.0
        elif img.dtype.kind == "f":
            lo, hi = float(img.min()), float(img.max())
            state.image = (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img, float)
        else:
            raise RecipeError(f"normalize: unsupported dtype {img.dtype}")
        return state


class LogSharpen(_Step):
    """Laplacian-of-Gaussian enhancement of a grey image: ``image - amount *
    sigma**2 LoG(image)`` (edges sharpened, as in the VGG13 paper's pre-processing),
    clipped to the input range."""

    name = "log_sharpen"

    def __init__(self, sigma: float = 1.0, amount: float = 1.0) -> None:
        self.sigma = sigma
        self.amount = amount

    def apply(self, state: _State) -> _State:
        from ._filters import log_raw

        img = np.asarray(state.image)
        if img.ndim == 3:
            Gray().apply(state)
            img = state.image
        src = img.astype(np.float64)
        out = src - float(self.amount) * log_raw(np.ascontiguousarray(src), float(self.sigma))
        if img.dtype == np.uint8:
            state.image = np.clip(np.rint(out), 0, 255).astype(np.uint8)
        else:
            state.image = np.clip(out, float(src.min()), float(src.max()))
        return state


class StainNormalize(_Step):
    """Per-image Reinhard or Macenko normalisation to a fixed Wright-Giemsa
    target (:data:`leukfeat.preprocess.SMEAR_REINHARD_TARGET` /
    :data:`~leukfeat.preprocess.SMEAR_MACENKO_TARGET`); nothing is learnt
    from the images."""

    name = "stain_normalize"

    def __init__(self, method: str = "reinhard") -> None:
        self.method = method

    def apply(self, state: _State) -> _State:
        from . import preprocess

        img = self._u8(_rgb(state, self.name))
        if self.method == "macenko":
            state.image = preprocess.macenko(img, preprocess.SMEAR_MACENKO_TARGET)
        elif self.method == "reinhard":
            state.image = preprocess.reinhard(img, preprocess.SMEAR_REINHARD_TARGET)
        else:
            raise RecipeError(f"stain_normalize: method must be 'reinhard' or 'macenko', "
                              f"got {self.method!r}")
        return state


class KMeans(_Step):
    """K-means of a one-channel 8-bit image (exact Lloyd on its histogram,
    :func:`leukfeat.segment.kmeans_histogram`); the mask is the pixels of the
    cluster with the highest centre (``keep="highest"``) or the lowest."""

    name = "kmeans"
    changes = "mask"

    def __init__(self, k: int = 3, keep: str = "highest") -> None:
        self.k = k
        self.keep = keep

    def apply(self, state: _State) -> _State:
        from . import segment

        img = self._u8(state.image, "one-channel image")
        if img.ndim != 2:
            raise RecipeError("kmeans: needs a one-channel image (add a channel or gray step)")
        if self.keep not in ("highest", "lowest"):
            raise RecipeError(f"kmeans: keep must be 'highest' or 'lowest', got {self.keep!r}")
        centres, thresholds, _ = segment.kmeans_histogram(img, int(self.k))
        if centres.size < 2:
            state.mask = np.zeros(img.shape, bool)
        elif self.keep == "highest":
            state.mask = img > thresholds[-1]
        else:
            state.mask = img <= thresholds[0]
        return state


class Threshold(_Step):
    """Threshold to a mask: ``"otsu"`` (of a one-channel image), ``"fixed"``
    (``value``) or ``"hsv"`` (an HSV box ``lower``..``upper``, hue in degrees,
    S and V in [0, 1], as :func:`leukfeat.segment.hsv_threshold`); ``invert``
    keeps the dark side."""

    name = "threshold"
    changes = "mask"

    def __init__(self, method: str = "otsu", value: float | None = None,
                 lower: Sequence[float] | None = None, upper: Sequence[float] | None = None,
                 invert: bool = False) -> None:
        self.method = method
        self.value = value
        self.lower = lower
        self.upper = upper
        self.invert = invert

    def apply(self, state: _State) -> _State:
        from . import segment

        if self.method == "hsv":
            lower = segment.HSV_LOWER if self.lower is None else self.lower
            upper = segment.HSV_UPPER if self.upper is None else self.upper
            seg = segment.hsv_threshold(self._u8(_rgb(state, self.name)), lower, upper,
                                        min_size=0, open_radius=0, nucleus=False)
            mask = seg.mask
            if self.invert:
                mask = ~mask
            state.mask = mask
            return state
        img = np.asarray(state.image)
        if img.ndim != 2:
            raise RecipeError("threshold: needs a one-channel image (add a channel or gray "
                              "step) unless method is 'hsv'")
        if self.method == "otsu":
            cut = segment.otsu_threshold(img)
        elif self.method == "fixed":
            if self.value is None:
                raise RecipeError("threshold: method 'fixed' needs a value")
            cut = float(self.value)
        else:
            raise RecipeError(f"threshold: method must be 'otsu', 'fixed' or 'hsv', got "
                              f"{self.method!r}")
        state.mask = img <= cut if self.invert else img > cut
        return state


class FillHoles(_Step):
    """Fill every hole of the mask (:func:`leukfeat.segment.fill_holes`)."""

    name = "fill_holes"
    changes = "mask"
    needs_mask = True

    def apply(self, state: _State) -> _State:
        from . import segment

        state.mask = segment.fill_holes(self._need_mask(state))
        return state


class RemoveSmall(_Step):
    """Drop mask objects smaller than ``min_size`` pixels (8-connected)."""

    name = "remove_small"
    changes = "mask"
    needs_mask = True

    def __init__(self, min_size: int = 64) -> None:
        self.min_size = min_size

    def apply(self, state: _State) -> _State:
        from . import segment

        state.mask = segment.remove_small(self._need_mask(state), int(self.min_size))
        return state


class RemoveSmallHoles(_Step):
    """Fill holes of the mask smaller than ``area`` pixels."""

    name = "remove_small_holes"
    changes = "mask"
    needs_mask = True

    def __init__(self, area: int = 64) -> None:
        self.area = area

    def apply(self, state: _State) -> _State:
        from . import segment

        state.mask = segment.remove_small_holes(self._need_mask(state), int(self.area))
        return state


class Opening(_Step):
    """Binary opening of the mask with a disk of ``radius``."""

    name = "opening"
    changes = "mask"
    needs_mask = True

    def __init__(self, radius: int = 1) -> None:
        self.radius = radius

    def apply(self, state: _State) -> _State:
        from . import segment

        state.mask = segment.opening(self._need_mask(state), int(self.radius))
        return state


class Closing(_Step):
    """Binary closing of the mask with a disk of ``radius``."""

    name = "closing"
    changes = "mask"
    needs_mask = True

    def __init__(self, radius: int = 1) -> None:
        self.radius = radius

    def apply(self, state: _State) -> _State:
        from . import segment

        state.mask = segment.closing(self._need_mask(state), int(self.radius))
        return state


class WatershedSplit(_Step):
    """Split touching objects of the mask (:func:`leukfeat.segment.split_touching`):
    the pixels where two parts meet are cut from the mask, so that each part
    is its own 8-connected object."""

    name = "watershed_split"
    changes = "mask"
    needs_mask = True

    def __init__(self, min_distance: int | None = None) -> None:
        self.min_distance = min_distance

    def apply(self, state: _State) -> _State:
        from . import segment

        from scipy import ndimage as ndi

        labels = np.asarray(segment.split_touching(self._need_mask(state), self.min_distance))
        # cut every pixel that has an 8-neighbour of another part: what is left
        # of each part no longer touches another, so the parts are the mask's
        # 8-connected objects
        above = ndi.maximum_filter(labels, size=3)
        below = ndi.minimum_filter(np.where(labels > 0, labels, labels.max() + 1), size=3)
        touching = (labels > 0) & ((above > labels) | (below < labels))
        state.mask = (labels > 0) & ~touching
        return state


class MaskAnd(_Step):
    """The original RGB image with every pixel outside the mask set to ``fill``
    (the last step of the LAB K-means papers)."""

    name = "mask_and"
    needs_mask = True

    def __init__(self, fill: int = 0) -> None:
        self.fill = fill

    def apply(self, state: _State) -> _State:
        mask = self._need_mask(state)
        out = np.array(state.original, copy=True)
        out[~mask] = self.fill
        state.image = out
        return state


class CropToCell(_Step):
    """Crop the image, the original and the mask to the largest object of the
    mask (8-connected) plus ``margin`` pixels on each side (clipped to the
    image), keeping only that object in the mask: one white cell per image,
    as single-cell sets such as C-NMC are cut from smear fields. An image
    whose mask is empty is left whole."""

    name = "crop_to_cell"
    needs_mask = True

    def __init__(self, margin: int = 4) -> None:
        self.margin = margin

    def apply(self, state: _State) -> _State:
        from . import segment
        from ._validation import check_int

        mask = self._need_mask(state)
        margin = check_int(self.margin, "crop_to_cell: margin", 0)
        image = np.asarray(state.image)
        if image.shape[:2] != mask.shape:
            raise RecipeError(f"crop_to_cell: the image ({image.shape[:2]}) and the mask "
                              f"({mask.shape}) differ in size")
        seg = segment.Segmentation.from_masks(mask)
        if seg.n_cells == 0:
            return state
        label = seg.largest()
        r0, r1, c0, c1 = seg.boxes[label]
        h, w = mask.shape
        r0, c0 = max(r0 - margin, 0), max(c0 - margin, 0)
        r1, c1 = min(r1 + margin, h), min(c1 + margin, w)
        state.original = np.ascontiguousarray(state.original[r0:r1, c0:c1])
        state.image = np.ascontiguousarray(image[r0:r1, c0:c1])
        state.mask = seg.labels[r0:r1, c0:c1] == label
        return state


#: Every step, by its name in recipe files.
STEPS = {cls.name: cls for cls in (
    Gray, ColourSpace, Channel, Equalize, Resize, Normalize, LogSharpen, StainNormalize,
    KMeans, Threshold, FillHoles, RemoveSmall, RemoveSmallHoles, Opening, Closing,
    WatershedSplit, MaskAnd, CropToCell)}

_OUTPUTS = ("image", "segmentation", "pair")
#: Recipe's own parameters: not allowed as step names (set_params would be ambiguous)
_RESERVED = frozenset({"steps", "output", "name", "citation", "description"})


class Recipe(TransformerMixin, BaseEstimator):
    """A published (or your own) pipeline of steps, as one estimator.

    Parameters
    ----------
    steps : list of (str, step)
        Named steps (instances of the classes in :data:`STEPS`), applied in
        order to every image.
    output : {"image", "segmentation", "pair"}, default "image"
        What :meth:`transform` returns per image: the final image, a
        :class:`~leukfeat.segment.Segmentation` of the final mask (8-connected
        objects as cells, nucleus by :func:`~leukfeat.segment.split_nucleus`
        on the original image), or ``(original RGB image, Segmentation)``
        pairs, which :class:`~leukfeat.transformers.FeatureExtractor` takes
        as they are (it then measures the recipe's cells).
    name, citation, description : str, optional
        Recorded in the recipe file.

    Examples
    --------
    >>> from leukfeat.recipe import Recipe, ColourSpace, Channel, KMeans, FillHoles
    >>> from leukfeat.datasets import make_cells
    >>> recipe = Recipe([("lab", ColourSpace("lab")), ("a", Channel(1)),
    ...                  ("kmeans", KMeans(k=3)), ("fill", FillHoles())],
    ...                 output="segmentation")
    >>> image = make_cells(1, size=96, random_state=0).images[0]
    >>> recipe.fit_transform([image])[0].n_cells >= 1
    True
    >>> recipe.set_params(kmeans__k=4).get_params()["kmeans__k"]
    4
    """

    def __init__(self, steps: Sequence[tuple[str, _Step]], output: str = "image", name: str = "",
                 citation: str = "", description: str = "") -> None:
        self.steps = steps
        self.output = output
        self.name = name
        self.citation = citation
        self.description = description

    # -- parameters: every step's, as <step>__<param> --------------------------
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        out = super().get_params(deep=False)
        if deep:
            for key, step in self.steps:
                out[key] = step
                for param, value in step.get_params(deep=True).items():
                    out[f"{key}__{param}"] = value
        return out

    def set_params(self, **params: Any) -> Self:
        steps = dict(self.steps)
        own = {k: v for k, v in params.items() if "__" not in k and k not in steps}
        super().set_params(**own)
        for key, value in params.items():
            if key in steps:
                self.steps = [(k, value if k == key else s) for k, s in self.steps]
            elif "__" in key:
                head, rest = key.split("__", 1)
                if head not in steps:
                    raise ValueError(f"Invalid parameter {head!r} for recipe {self!r}: "
                                     f"no step of that name")
                steps[head].set_params(**{rest: value})
        return self

    def _check(self) -> None:
        if not isinstance(self.steps, (list, tuple)) or not self.steps:
            raise ValueError("steps: expected a non-empty list of (name, step) pairs")
        seen = set()
        for k, pair in enumerate(self.steps):
            if (not isinstance(pair, (list, tuple)) or len(pair) != 2
                    or not isinstance(pair[0], str) or not isinstance(pair[1], _Step)):
                raise ValueError(f"steps[{k}]: expected a (name, step) pair with a step of "
                                 f"leukfeat.recipe.STEPS, got {pair!r}")
            if pair[0] in seen or "__" in pair[0] or pair[0] in _RESERVED:
                raise ValueError(f"steps[{k}]: step names must be unique, without '__' and "
                                 f"not one of {sorted(_RESERVED)}, got {pair[0]!r}")
            seen.add(pair[0])
        if self.output not in _OUTPUTS:
            raise ValueError(f"output: expected one of {_OUTPUTS}, got {self.output!r}")

    # -- running ---------------------------------------------------------------
    def run(self, image: Any) -> _State:
        """Apply the steps to one image.

        Returns
        -------
        state
            The final state, with attributes ``image`` (the current image),
            ``mask`` (bool, or None when no step made one) and ``original``
            (the input as RGB uint8, resized along with the image).
        """
        state: Any = None
        for _, _, state in self.iter_states(image):
            pass
        return state

    def iter_states(self, image: Any) -> Iterator[tuple[str, _Step, _State]]:
        """Apply the steps to one image, yielding the state after each.

        Yields
        ------
        key : str
            The step's name in the recipe.
        step : step
        state
            A snapshot of the state after the step (as :meth:`run` returns
            after the last one).
        """
        self._check()
        state = _State.of(image)
        for key, step in self.steps:
            try:
                state = step(state)
            except RecipeError as exc:
                raise RecipeError(f"step {key!r}: {exc}") from None
            yield key, step, _State(state.original, state.image, state.mask)

    @property
    def makes_mask(self) -> bool:
        """Whether a step of the recipe makes a mask (``kmeans``, ``threshold``)."""
        return any(isinstance(step, (KMeans, Threshold)) for _, step in self.steps)

    def segment(self, image: Any) -> Segmentation:
        """The recipe's mask of one image as a
        :class:`~leukfeat.segment.Segmentation` (8-connected objects as cells,
        nucleus by :func:`~leukfeat.segment.split_nucleus`), whatever
        ``output`` says: a recipe usable as the ``segmenter`` of
        :class:`~leukfeat.transformers.FeatureExtractor` (``segmenter=recipe.segment``)
        and by ``leukfeat segment/extract --recipe``.

        Raises
        ------
        RecipeError
            If no step of the recipe makes a mask.
        """
        return self._segmentation(self.run(image))

    def _segmentation(self, state: _State) -> Segmentation:
        from . import segment

        if state.mask is None:
            raise RecipeError(f"recipe {self.name or 'unnamed'!r} makes no mask (no kmeans or "
                              "threshold step): it cannot segment")
        mask = np.asarray(state.mask, bool)
        seg = segment.Segmentation.from_masks(mask, method=self.name or "recipe")
        if mask.any():
            seg = segment.Segmentation(seg.mask, segment.split_nucleus(state.original, mask),
                                       seg.labels, seg.method, {"recipe": self.name})
        return seg

    def _one(self, item: Any) -> Any:
        state = self.run(item)
        if self.output == "image":
            return state.image
        if state.mask is None:   # no mask step: no cell
            from . import segment

            seg = segment.Segmentation.empty(state.original.shape, self.name or "recipe")
        else:
            seg = self._segmentation(state)
        return seg if self.output == "segmentation" else (state.original, seg)

    def fit(self, X: ImageBatch, y: object = None) -> Self:
        """Check the steps (nothing is learnt)."""
        from ._batch import as_batch

        self._check()
        as_batch(X)
        return self

    def transform(self, X: ImageBatch) -> list[Any]:
        """Run the recipe on every image (a list out, one entry per image)."""
        from ._batch import map_items, as_batch

        self._check()
        items = as_batch(X)
        results, _ = map_items(self._one, items, n_jobs=1, on_error="raise")
        return results

    def __sklearn_tags__(self) -> Any:
        from ._batch import image_tags

        tags = image_tags(super().__sklearn_tags__(), requires_fit=False)
        tags.transformer_tags.preserves_dtype = []
        return tags

    # -- files -----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The recipe as plain data (what :meth:`save` writes)."""
        self._check()
        steps = []
        for key, step in self.steps:
            entry: dict[str, Any] = {"step": step.name}
            if key != step.name:
                entry["name"] = key
            for param, value in step.get_params(deep=False).items():
                entry[param] = list(value) if isinstance(value, tuple) else value
            steps.append(entry)
        out: dict[str, Any] = {"recipe": self.name or "unnamed", "output": self.output,
                               "steps": steps}
        if self.citation:
            out["citation"] = self.citation
        if self.description:
            out["description"] = self.description
        return out

    def save(self, path: StrPath) -> Path:
        """Write the recipe as YAML (``.yaml``/``.yml``) or JSON (``.json``)."""
        from ._atomic import atomic_path

        path = Path(path)
        data = self.to_dict()
        with atomic_path(path) as tmp:
            if path.suffix.lower() == ".json":
                tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
            else:
                import yaml

                tmp.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        return path

    @classmethod
    def from_dict(cls, data: Any, source: str = "recipe") -> "Recipe":
        """Build a recipe from plain data (as :meth:`to_dict` gives), checked
        against the schema: unknown keys, steps and parameters are errors
        naming them."""
        return _from_data(data, source, lines=None)


# --------------------------------------------------------------------------- #
# reading recipe files, with line numbers
# --------------------------------------------------------------------------- #

_TOP_KEYS = {"recipe", "output", "steps", "citation", "description"}


def _from_data(data: Any, source: str, lines: dict[tuple[Any, ...], int] | None) -> Recipe:
    def where(*path: Any) -> str:
        line = None if lines is None else lines.get(path)
        return f"{source}" + (f": line {line}" if line else "")

    if not isinstance(data, dict):
        raise RecipeError(f"{where()}: a recipe must be a mapping with 'recipe' and 'steps'")
    unknown = set(data) - _TOP_KEYS
    if unknown:
        key = sorted(unknown)[0]
        raise RecipeError(f"{where(key)}: unknown key {key!r} (expected "
                          f"{', '.join(sorted(_TOP_KEYS))})")
    steps_data = data.get("steps")
    if not isinstance(steps_data, list) or not steps_data:
        raise RecipeError(f"{where('steps')}: 'steps' must be a non-empty list")
    steps = []
    for k, entry in enumerate(steps_data):
        if not isinstance(entry, dict) or "step" not in entry:
            raise RecipeError(f"{where('steps', k)}: each step must be a mapping with a "
                              "'step' key")
        kind = entry["step"]
        if kind not in STEPS:
            raise RecipeError(f"{where('steps', k, 'step')}: unknown step {kind!r} (known: "
                              f"{', '.join(STEPS)})")
        cls = STEPS[kind]
        allowed = set(cls().get_params(deep=False))
        params = {p: v for p, v in entry.items() if p not in ("step", "name")}
        bad = sorted(set(params) - allowed)
        if bad:
            raise RecipeError(f"{where('steps', k, bad[0])}: unknown parameter {bad[0]!r} of "
                              f"step {kind!r} (known: {', '.join(sorted(allowed)) or 'none'})")
        params = {p: tuple(v) if isinstance(v, list) else v for p, v in params.items()}
        steps.append((str(entry.get("name", kind)), cls(**params)))
    output = data.get("output", "image")
    if output not in _OUTPUTS:
        raise RecipeError(f"{where('output')}: output must be one of {_OUTPUTS}, got {output!r}")
    recipe = Recipe(steps, output=output, name=str(data.get("recipe", "")),
                    citation=str(data.get("citation", "")).strip(),
                    description=str(data.get("description", "")).strip())
    try:
        recipe._check()
    except ValueError as exc:
        raise RecipeError(f"{where('steps')}: {exc}") from None
    return recipe


def _yaml_lines(text: str) -> dict[tuple[Any, ...], int]:
    """``path -> line`` (1-based) of every key of a YAML document."""
    import yaml

    out: dict[tuple[Any, ...], int] = {}

    def walk(node: Any, path: tuple[Any, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                p = path + (key.value,)
                out[p] = key.start_mark.line + 1
                walk(value, p)
        elif isinstance(node, yaml.SequenceNode):
            for k, item in enumerate(node.value):
                out[path + (k,)] = item.start_mark.line + 1
                walk(item, path + (k,))

    root = yaml.compose(text)
    if root is not None:
        walk(root, ())
    return out


def recipe_names() -> list[str]:
    """Names of the recipes shipped with leukfeat (:data:`SHIPPED`)."""
    return sorted(p.stem for p in _RECIPE_DIR.glob("*.yaml"))


def load_recipe(name_or_path: StrPath) -> Recipe:
    """A recipe from a shipped name (:func:`recipe_names`) or a YAML/JSON file.

    Raises
    ------
    RecipeError
        If the file is not a valid recipe; the message names the file, the
        line (YAML) and the bad key.
    FileNotFoundError
        If it is neither a shipped name nor an existing file.
    """
    path = Path(os.fspath(name_or_path))
    if not path.suffix and (_RECIPE_DIR / f"{path.name}.yaml").is_file():
        path = _RECIPE_DIR / f"{path.name}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"recipe: no shipped recipe or file {os.fspath(name_or_path)!r} "
                                f"(shipped: {', '.join(recipe_names())})")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RecipeError(f"{path}: line {exc.lineno}: not valid JSON ({exc.msg})") from None
        return _from_data(data, str(path), None)
    import yaml

    try:
        data = yaml.safe_load(text)
        lines = _yaml_lines(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f": line {mark.line + 1}" if mark is not None else ""
        raise RecipeError(f"{path}{line}: not valid YAML ({getattr(exc, 'problem', exc)})") \
            from None
    return _from_data(data, str(path), lines)


#: Names of the recipes shipped in ``leukfeat/recipes/`` (see :func:`load_recipe`).
SHIPPED = tuple(recipe_names())
