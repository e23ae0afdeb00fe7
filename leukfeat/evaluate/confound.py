"""The background confound check: can the pixels outside the white cells predict the class?

:func:`background_features`, :func:`confound_check`, :class:`ConfoundReport`.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import cv2
import numpy as np
from joblib import Parallel, delayed

from .._batch import as_batch, is_path
from .._json import jsonable
from .._validation import as_uint8_rgb, check_int
from ..io import read_image
from .cross_validation import cross_validate
from .metrics import CVReport

if TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import ArrayLike

    from .._typing import StrPath

_BG_CHANNELS = ("R", "G", "B", "L", "a", "b")
_BG_STATS = ("mean", "std", "p10", "p50", "p90")

#: Names of the 30 :func:`background_features`, ``background_<channel>_<stat>``
#: for the channels R, G, B (0..255) and CIELAB L* (0..100), a*, b*.
BACKGROUND_FEATURE_NAMES = tuple(f"background_{c}_{s}" for c in _BG_CHANNELS
                                 for s in _BG_STATS)

_MIN_BACKGROUND = 64  # pixels

#: :meth:`ConfoundReport.rivals`: the share of a model's balanced accuracy
#: above chance that a flagged background classifier must reach for the
#: model's score to be called within its reach.
RIVAL_SHARE = 0.8


def _cell_mask(image: np.ndarray, segmenter: str | Callable[[np.ndarray], Any] | None) -> np.ndarray:
    from ..segment import Segmentation, segment

    if segmenter is None or isinstance(segmenter, str):
        seg = segment(image) if segmenter is None else segment(image, segmenter)
    else:
        seg = segmenter(image)
    mask = seg.mask if isinstance(seg, Segmentation) else np.asarray(seg)
    if mask.shape != image.shape[:2]:
        raise ValueError(f"segmenter: returned a mask of shape {mask.shape} for an image of "
                         f"shape {image.shape[:2]}")
    return mask.astype(bool)


def background_features(image: ArrayLike, *,
                        segmenter: str | Callable[[np.ndarray], Any] | None = None,
                        dilate: int = 5) -> np.ndarray:
    """Colour statistics of the background: every pixel outside the white cells.

    The white cells are segmented (default :data:`leukfeat.segment.DEFAULT_METHOD`),
    their mask is dilated by `dilate` pixels to drop halos and anti-aliased
    edges, and the remaining pixels (plasma background and red cells) are
    summarised per channel. Features that only see the background should not
    predict a leukaemia subtype; when they do, the classes differ in
    acquisition (see :func:`confound_check`).

    Parameters
    ----------
    image : ndarray, shape (H, W, 3)
        RGB image (uint8, or float in [0, 1]).
    segmenter : callable or str, optional
        ``image -> Segmentation`` (or a boolean cell mask), or a method name
        of :func:`leukfeat.segment.segment`. Default: the default segmenter.
    dilate : int, default 5
        Radius in pixels of the disk by which the cell mask is grown.

    Returns
    -------
    ndarray of float64, shape (30,)
        Mean, standard deviation and 10th/50th/90th percentiles of R, G, B
        (0..255) and CIELAB L* (0..100), a*, b*, in the order of
        :data:`BACKGROUND_FEATURE_NAMES`. If fewer than 64 pixels remain
        outside the dilated mask, the undilated mask is used; if the cells
        cover the whole image, all features are NaN.

    Raises
    ------
    ValueError
        If `image` is not an RGB image or `dilate` is negative.

    Examples
    --------
    >>> from leukfeat.datasets import make_cells
    >>> from leukfeat.evaluate import background_features, BACKGROUND_FEATURE_NAMES
    >>> image = make_cells(1, 1, 96, random_state=0).images[0]
    >>> f = background_features(image)
    >>> f.shape, BACKGROUND_FEATURE_NAMES[15]
    ((30,), 'background_L_mean')
    >>> bool(85 < f[15] < 95)  # pale background: high L*
    True
    """
    dilate = check_int(dilate, "dilate", low=0)
    rgb = as_uint8_rgb(image, "image")
    if rgb.ndim != 3:
        raise ValueError(f"image: expected an RGB image (H, W, 3), got shape {rgb.shape}")
    mask = _cell_mask(rgb, segmenter)
    grown = mask
    if dilate and mask.any():
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * dilate + 1, 2 * dilate + 1))
        grown = cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)
    background = ~grown
    if background.sum() < _MIN_BACKGROUND:
        background = ~mask
    if not background.any():
        return np.full(len(BACKGROUND_FEATURE_NAMES), np.nan)
    lab = cv2.cvtColor(rgb.astype(np.float32) * np.float32(1 / 255), cv2.COLOR_RGB2Lab)
    pixels = np.concatenate([rgb[background].astype(np.float64),
                             lab[background].astype(np.float64)], axis=1)
    mean = pixels.mean(axis=0)
    std = pixels.std(axis=0)
    pct = np.percentile(pixels, [10, 50, 90], axis=0)
    return np.stack([mean, std, pct[0], pct[1], pct[2]], axis=1).ravel()


def _background_of(item: Any, segmenter: str | Callable[[np.ndarray], Any] | None,
                   dilate: int) -> np.ndarray:
    image = read_image(item) if is_path(item) else item
    return background_features(image, segmenter=segmenter, dilate=dilate)


@dataclass
class ConfoundReport:
    """Result of :func:`confound_check`.

    Attributes
    ----------
    accuracy, balanced_accuracy : float
        Cross-validated scores of the classifier that sees only the
        background features.
    chance : dict
        ``{"majority": rate of the largest class, "uniform": 1 / n_classes}``.
    margin : float
        Balanced accuracy above ``1 / n_classes`` needed to flag a confound.
    confounded : bool
        ``balanced_accuracy > 1 / n_classes + margin``.
    message : str
        What the result means and what to do.
    features : pandas.DataFrame
        The background features (one row per image, columns
        :data:`BACKGROUND_FEATURE_NAMES`).
    cv_report : CVReport
        The full cross-validation report of the background classifier.
        Compare a model with it through :meth:`rivals` / :meth:`warning`.
    n_images : int
        Number of images.
    classes : list of str
        Class names.
    """

    accuracy: float
    balanced_accuracy: float
    chance: dict[str, float]
    margin: float
    confounded: bool
    message: str
    features: Any
    cv_report: CVReport
    n_images: int
    classes: list[str]

    def summary(self) -> str:
        """A short multi-line summary (verdict, scores, message)."""
        ci = self.cv_report.ci.get("balanced_accuracy")
        cit = "" if ci is None else f" (95% CI {ci[0]:.3f}-{ci[1]:.3f})"
        verdict = "CONFOUNDED" if self.confounded else "no background confound detected"
        return "\n".join([
            f"Background-only classifier on {self.n_images} images, "
            f"{len(self.classes)} classes: {verdict}",
            f"  balanced accuracy {self.balanced_accuracy:.3f}{cit}; accuracy "
            f"{self.accuracy:.3f}",
            f"  chance: uniform {self.chance['uniform']:.3f}, majority "
            f"{self.chance['majority']:.3f}; flag above "
            f"{self.chance['uniform'] + self.margin:.3f}",
            "  " + self.message])

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict (without the per-image features)."""
        return jsonable({"accuracy": self.accuracy,
                          "balanced_accuracy": self.balanced_accuracy,
                          "chance": self.chance, "margin": self.margin,
                          "confounded": self.confounded, "message": self.message,
                          "n_images": self.n_images, "classes": self.classes,
                          "cv_report": self.cv_report.to_dict()})

    def rivals(self, balanced_accuracy: float) -> bool:
        """Whether the background alone comes close to a model's balanced accuracy.

        True when this check flags a confound (:attr:`confounded`) and the
        background classifier gets at least :data:`RIVAL_SHARE` (80 %) of
        the way from chance to the model's score::

            bg - 1/K >= 0.8 * (model - 1/K)

        with ``bg`` and ``model`` the two balanced accuracies on the same
        folds and ``K`` the number of classes. The model's accuracy then
        says little about the cells: most of it (or more) is within reach of
        the acquisition alone. A model at or below chance is always rivalled
        by a flagged background.

        Parameters
        ----------
        balanced_accuracy : float
            The model's cross-validated balanced accuracy.

        Returns
        -------
        bool

        Examples
        --------
        >>> from leukfeat.datasets import make_cells
        >>> from leukfeat.evaluate import confound_check
        >>> data = make_cells(40, 2, 64, random_state=0)
        >>> confound_check(list(data.images), data.labels, n_bootstrap=0).rivals(0.6)
        False
        """
        model = float(balanced_accuracy)
        if not math.isfinite(model):
            raise ValueError(f"balanced_accuracy: expected a finite number, got {model!r}")
        chance = self.chance["uniform"]
        return bool(self.confounded
                    and self.balanced_accuracy - chance >= RIVAL_SHARE * (model - chance))

    def warning(self, balanced_accuracy: float, model: str = "the model") -> str | None:
        """A one-line warning when the background rivals the model (:meth:`rivals`), else None.

        Parameters
        ----------
        balanced_accuracy : float
            The model's cross-validated balanced accuracy (same folds).
        model : str, default "the model"
            How to name the model in the warning.

        Returns
        -------
        str or None
        """
        if not self.rivals(balanced_accuracy):
            return None
        return (f"the background alone (pixels outside the white cells) scores balanced "
                f"accuracy {self.balanced_accuracy:.3f} against {model}'s "
                f"{float(balanced_accuracy):.3f} (chance {self.chance['uniform']:.3f}): "
                "this accuracy may reflect acquisition differences between the classes "
                "(stain, illumination, scanner), not the cells")

    def __repr__(self) -> str:
        return (f"ConfoundReport(confounded={self.confounded}, "
                f"balanced_accuracy={self.balanced_accuracy:.3f}, "
                f"chance={self.chance['uniform']:.3f})")


def confound_check(X_images_or_paths: Sequence[StrPath | np.ndarray], y: ArrayLike, *,
                   segmenter: str | Callable[[np.ndarray], Any] | None = None,
                   estimator: Any = None, cv: int = 5,
                   random_state: int | None = 0, n_jobs: int | None = None,
                   groups: ArrayLike | None = None, dedupe: bool = True,
                   dilate: int = 5, margin: float = 0.2, n_bootstrap: int = 1000,
                   paths: Sequence[StrPath | np.ndarray] | None = None) -> ConfoundReport:
    """Check whether the image background alone predicts the class.

    In a sound data set the background of a smear (plasma and red cells)
    carries no information about the white cell's subtype.  When each class
    was stained, scanned or photographed separately, it does, and any
    classifier (CNNs included) can score well by recognising the
    acquisition.  This function computes :func:`background_features`
    (30 colour statistics of the pixels outside the dilated white-cell
    mask) for every image and cross-validates a classifier on them alone.

    Parameters
    ----------
    X_images_or_paths : sequence of str, os.PathLike or ndarray
        Image files (read with :func:`leukfeat.io.read_image`) or RGB images.
    y : array_like of shape (n_images,)
        Class labels.
    segmenter : callable or str, optional
        White-cell segmenter, see :func:`background_features`. Default: the
        default segmenter (:data:`leukfeat.segment.DEFAULT_METHOD`).
    estimator : scikit-learn classifier, optional
        Default ``RandomForestClassifier(n_estimators=200,
        class_weight="balanced", random_state=random_state)``.
    cv : int, default 5
        Number of folds.
    random_state : int or None, default 0
        Seeds the folds, the bootstrap and the default forest.
    n_jobs : int, optional
        Threads for reading and measuring images, and parallel folds.
    groups : array_like, optional
        Patient ids, as in :func:`cross_validate`.
    dedupe : bool, default True
        Keep duplicate images in one fold (as in :func:`cross_validate`).
    paths : sequence of str, os.PathLike or ndarray, optional
        The files behind the images, searched for duplicates instead of the
        images themselves (e.g. when `X_images_or_paths` holds
        stain-normalised copies). Given the same `y`, `groups`, `cv`,
        `dedupe`, `random_state` and duplicate search as
        :func:`cross_validate` or :func:`compare`, the check runs on exactly
        the same folds (compare ``cv_report.fold_of_sample``).
    dilate : int, default 5
        Pixels by which the white-cell mask is grown before it is removed.
    margin : float, default 0.2
        The check flags a confound when the balanced accuracy exceeds
        ``1 / n_classes + margin``. 0.2 keeps false alarms rare on data sets
        of a few dozen images (where chance-level balanced accuracy easily
        strays by 0.1) while real acquisition differences usually give
        near-perfect scores.
    n_bootstrap : int, default 1000
        Bootstrap resamples for the confidence intervals of the report.

    Returns
    -------
    ConfoundReport
        ``accuracy``, ``balanced_accuracy``, ``chance``, ``confounded``,
        ``message``, the ``features`` table and the full ``cv_report``.

    Raises
    ------
    leukfeat.io.ImageReadError
        If an image file cannot be read.
    ValueError
        If an argument is invalid.

    Examples
    --------
    >>> from leukfeat.datasets import make_cells
    >>> from leukfeat.evaluate import confound_check
    >>> data = make_cells(40, 2, 64, random_state=0)
    >>> report = confound_check(list(data.images), data.labels, n_bootstrap=100)
    >>> report.confounded, report.chance["uniform"]
    (False, 0.5)
    """
    import pandas as pd

    items = as_batch(X_images_or_paths, "X_images_or_paths", check_items=True, allow_empty=True)
    margin = float(margin)
    if not (0.0 <= margin < 1.0):
        raise ValueError(f"margin: expected a number in [0, 1), got {margin!r}")
    dilate = check_int(dilate, "dilate", low=0)
    y_arr = np.asarray(y)
    if y_arr.ndim != 1 or y_arr.size != len(items):
        raise ValueError(f"y: expected one label per image ({len(items)}), "
                         f"got shape {y_arr.shape}")
    if paths is not None:
        paths = as_batch(paths, "paths", check_items=True, allow_empty=True)
        if len(paths) != len(items):
            raise ValueError(f"paths: expected one per image ({len(items)}), got {len(paths)}")
    if estimator is None:
        from sklearn.ensemble import RandomForestClassifier
        estimator = RandomForestClassifier(
            n_estimators=200, class_weight="balanced",
            random_state=random_state if isinstance(random_state, numbers.Integral) else None)

    rows = Parallel(n_jobs=n_jobs, prefer="threads")(
        delayed(_background_of)(item, segmenter, dilate) for item in items)
    features = np.vstack(rows) if rows else np.empty((0, len(BACKGROUND_FEATURE_NAMES)))
    bad = ~np.isfinite(features)
    if bad.any():  # images whose cells fill the frame: median of the others
        med = np.nanmedian(np.where(bad, np.nan, features), axis=0)
        features = np.where(bad, np.nan_to_num(med)[None, :], features)

    report = cross_validate(estimator, features, y_arr, groups=groups, cv=cv, dedupe=dedupe,
                            paths=items if paths is None else paths,
                            random_state=random_state, n_bootstrap=n_bootstrap,
                            n_jobs=n_jobs)
    k = len(report.classes)
    uniform = 1.0 / k
    majority = float(np.max(report.confusion_matrix.sum(axis=1)) / report.n_images)
    threshold = uniform + margin
    ba = report.balanced_accuracy
    confounded = bool(ba > threshold)
    if confounded:
        message = (
            f"The background alone (pixels outside the white cells) predicts the class with "
            f"balanced accuracy {ba:.2f} against a chance level of {uniform:.2f}: the classes "
            "differ in acquisition (stain, illumination, background tint, scanner), and a "
            "classifier can learn that instead of the cells. Stain-normalise all images to "
            "one target (leukfeat.preprocess.reinhard or leukfeat.preprocess.macenko) and "
            "re-run this check, prefer nucleus-only and shape features over whole-image or "
            "background colour, find out whether each class was imaged separately (day, "
            "microscope, site), and report this check alongside your accuracy.")
    else:
        message = (
            f"The background alone predicts the class with balanced accuracy {ba:.2f}, not "
            f"more than {margin:.2f} above chance ({uniform:.2f}): no sign that the classes "
            "differ in acquisition. This does not rule out confounds inside the cells "
            "(e.g. class-specific staining of nuclei).")
    return ConfoundReport(
        accuracy=report.accuracy, balanced_accuracy=ba,
        chance={"majority": majority, "uniform": uniform}, margin=margin,
        confounded=confounded, message=message,
        features=pd.DataFrame(features, columns=list(BACKGROUND_FEATURE_NAMES)),
        cv_report=report, n_images=report.n_images, classes=report.classes)
