"""Training-only image augmentation, and oversampling by augmentation.

:class:`Augmenter` makes randomly transformed copies of images: rotations by
multiples of 90 degrees, mirror flips, a small rescale (about the image
centre, same size out) and a small stain jitter (a random shift and scale of
CIELAB a* and b*, as between two stainings).

:class:`TrainingAugmentation` wraps an image-to-label estimator (e.g.
:func:`leukfeat.models.make_pipeline`): its ``fit`` adds augmented copies of
the *training* images (optionally more for the smaller classes, so that every
class reaches the size of the largest: oversampling by augmentation) and its
``predict``/``predict_proba`` pass the images through untouched. Inside
:func:`leukfeat.evaluate.cross_validate` or scikit-learn's model selection,
``fit`` only ever sees a training fold, so no augmented copy of a validation
or test image can reach training.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils import check_random_state
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

if TYPE_CHECKING:
    from numpy.typing import ArrayLike
    from typing_extensions import Self

    from ._typing import ImageBatch

__all__ = ["Augmenter", "TrainingAugmentation"]


class Augmenter(BaseEstimator):
    """Random, label-preserving transformations of RGB images.

    Parameters
    ----------
    rotate90 : bool, default True
        Rotate by a random multiple of 90 degrees.
    flip : bool, default True
        Mirror left-right with probability 1/2.
    scale : float, default 0.1
        Rescale by a factor drawn from ``[1 - scale, 1 + scale]`` about the
        centre, keeping the size (cropped, or padded by reflection); 0: off.
    stain : float, default 0.05
        Stain jitter: CIELAB a* and b* of every pixel are scaled by a factor
        in ``[1 - stain, 1 + stain]`` and shifted by up to ``stain * 20``
        units, independently per channel; 0: off.
    random_state : int, RandomState instance or None, default 0

    Examples
    --------
    >>> import numpy as np
    >>> from leukfeat.augment import Augmenter
    >>> image = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    >>> out = Augmenter(scale=0, stain=0).augment(image, np.random.default_rng(0))
    >>> sorted(out.shape[:2]) == [4, 6]
    True
    """

    def __init__(self, rotate90: bool = True, flip: bool = True, scale: float = 0.1,
                 stain: float = 0.05,
                 random_state: int | np.random.RandomState | None = 0) -> None:
        self.rotate90 = rotate90
        self.flip = flip
        self.scale = scale
        self.stain = stain
        self.random_state = random_state

    def _check(self) -> None:
        for name in ("scale", "stain"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not 0 <= value < 1:
                raise ValueError(f"{name}: expected a number in [0, 1), got {value!r}")

    def augment(self, image: ArrayLike, rng: np.random.Generator) -> np.ndarray:
        """One random transformation of ``image`` (RGB uint8) with ``rng``
        (a :class:`numpy.random.Generator`)."""
        import cv2

        from ._validation import as_uint8_rgb

        self._check()
        out = as_uint8_rgb(image, "image")
        if self.scale:
            factor = rng.uniform(1 - self.scale, 1 + self.scale)
            h, w = out.shape[:2]
            m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), 0.0, factor)
            out = cv2.warpAffine(out, m, (w, h), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_REFLECT_101)
        if self.stain:
            lab = cv2.cvtColor(out, cv2.COLOR_RGB2LAB).astype(np.float32)
            for c in (1, 2):
                gain = rng.uniform(1 - self.stain, 1 + self.stain)
                shift = rng.uniform(-20 * self.stain, 20 * self.stain)
                lab[..., c] = (lab[..., c] - 128) * gain + 128 + shift
            out = cv2.cvtColor(np.clip(np.rint(lab), 0, 255).astype(np.uint8),
                               cv2.COLOR_LAB2RGB)
        if self.flip and rng.random() < 0.5:
            out = out[:, ::-1]
        if self.rotate90:
            out = np.rot90(out, int(rng.integers(4)))
        return np.ascontiguousarray(out)


class TrainingAugmentation(ClassifierMixin, BaseEstimator):
    """Fit an image classifier on its training images plus augmented copies.

    Parameters
    ----------
    estimator : estimator
        An unfitted classifier that takes images (paths or arrays), e.g.
        :func:`leukfeat.models.make_pipeline`.
    augmenter : Augmenter, optional
        Default ``Augmenter()``.
    n_copies : int, default 1
        Augmented copies of every training image.
    balance : bool, default False
        Oversampling by augmentation: more copies of the images of the
        smaller classes, so that every class has as many training images
        (originals plus copies) as the largest one has with ``n_copies``.

    Attributes
    ----------
    estimator_ : estimator
        The fitted estimator.
    classes_ : ndarray
    n_augmented_ : int
        Augmented copies added in the last ``fit``.
    source_indices_ : ndarray of int
        For every copy, the index (in the ``X`` given to ``fit``) of the
        training image it was made from.

    Notes
    -----
    Copies are made in memory (decoded arrays): about ``(1 + n_copies)``
    times the training images' pixels.
    """

    def __init__(self, estimator: Any, augmenter: Augmenter | None = None, n_copies: int = 1,
                 balance: bool = False) -> None:
        self.estimator = estimator
        self.augmenter = augmenter
        self.n_copies = n_copies
        self.balance = balance

    def fit(self, X: ImageBatch, y: ArrayLike, **fit_params: Any) -> Self:
        """Fit ``estimator`` on ``X`` and augmented copies of ``X`` (labels copied)."""
        from ._batch import as_batch, load_rgb

        items = as_batch(X)
        y = np.asarray(y)
        if len(y) != len(items):
            raise ValueError(f"y: expected {len(items)} labels, got {len(y)}")
        if not isinstance(self.n_copies, (int, np.integer)) or isinstance(self.n_copies, bool) \
                or self.n_copies < 0:
            raise ValueError(f"n_copies: expected a non-negative int, got {self.n_copies!r}")
        augmenter = Augmenter() if self.augmenter is None else self.augmenter
        rng = np.random.default_rng(check_random_state(augmenter.random_state)
                                    .randint(2 ** 31 - 1))
        classes, counts = np.unique(y, return_counts=True)
        target = counts.max() * (1 + int(self.n_copies))
        sources: Any = []
        for cls, count in zip(classes, counts):
            members = np.flatnonzero(y == cls)
            n_new = (target - count) if self.balance else count * int(self.n_copies)
            sources += [members[k % count] for k in range(n_new)]
        sources = np.asarray(sources, dtype=np.intp)
        copies = [augmenter.augment(load_rgb(items[i]), rng) for i in sources]
        X_fit = list(items) + copies
        y_fit = np.concatenate([y, y[sources]]) if len(sources) else y
        self.estimator_ = clone(self.estimator).fit(X_fit, y_fit, **fit_params)
        self.classes_ = getattr(self.estimator_, "classes_", classes)
        self.n_augmented_ = len(copies)
        self.source_indices_ = sources
        return self

    def _inner_has(name: str) -> Callable[[Any], bool]:  # used in the class body
        def check(self: Any) -> bool:
            return hasattr(self.estimator_ if hasattr(self, "estimator_") else self.estimator,
                           name)
        return check

    def predict(self, X: ImageBatch) -> np.ndarray:
        """``estimator_.predict`` of the images as they are (no augmentation)."""
        check_is_fitted(self)
        return self.estimator_.predict(X)

    @available_if(_inner_has("predict_proba"))  # type: ignore[untyped-decorator, unused-ignore]
    def predict_proba(self, X: ImageBatch) -> np.ndarray:
        """``estimator_.predict_proba`` of the images as they are."""
        check_is_fitted(self)
        return self.estimator_.predict_proba(X)

    def __sklearn_tags__(self) -> Any:
        from ._batch import image_tags

        return image_tags(super().__sklearn_tags__(), requires_fit=True)
