"""Cross-validation with patient- and duplicate-aware folds.

:func:`cross_validate` of one classifier, :func:`compare` of several on
exactly the same folds.
"""

from __future__ import annotations

import numbers
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from joblib import Parallel, delayed

from .._batch import as_batch, is_path
from .._validation import check_int
from .duplicates import find_duplicates, union_components
from .metrics import Comparison, CVReport, auc_ovr, bootstrap_ci, cm_scores, confusion_counts

if TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import ArrayLike

    from .._typing import StrPath


def _is_image_array(x: object) -> bool:
    return isinstance(x, np.ndarray) and x.ndim in (2, 3) and x.size > 0


def _n_samples(X: Any, name: str = "X") -> int:
    shape = getattr(X, "shape", None)
    if shape is not None and len(shape) > 0:
        return int(shape[0])
    try:
        return len(X)
    except TypeError:
        raise TypeError(f"{name}: expected an array, a DataFrame or a sequence, "
                        f"got {type(X).__name__}") from None


def _estimator_name(estimator: Any) -> str:
    steps = getattr(estimator, "steps", None)
    if isinstance(steps, list) and steps:
        inner = ", ".join(_estimator_name(s[1]) if not isinstance(s[1], str) else s[1]
                          for s in steps)
        return f"{type(estimator).__name__}({inner})"
    return type(estimator).__name__


@dataclass
class _Plan:
    """Everything that does not depend on the estimator: labels and folds."""

    X: Any
    y: np.ndarray            # encoded 0..K-1
    y_original: np.ndarray
    classes: list[str]
    fold_of_sample: np.ndarray
    split: str
    n_duplicate_groups: int | None
    n_groups: int | None
    cv: int
    random_state: Any
    boot_seed: Any


def _looks_like_items(X: Any) -> list[Any] | None:
    """The list of paths/images in X when X is such a sequence, else None."""
    if isinstance(X, np.ndarray):
        if X.ndim >= 3:
            return list(X)
        if X.ndim == 1 and X.dtype == object and X.size and all(is_path(x) or _is_image_array(x)
                                                                 for x in X):
            return list(X)
        if X.ndim == 1 and X.dtype.kind == "U":
            return list(X)
        return None
    if hasattr(X, "iloc"):
        if getattr(X, "ndim", 2) == 1 and len(X) and all(is_path(x) for x in X):
            return list(X)
        return None
    if isinstance(X, (list, tuple)) and X and all(is_path(x) or _is_image_array(x)
                                                 for x in X):
        return list(X)
    return None


def _plan(X: Any, y: ArrayLike, *, groups: Any, cv: int, dedupe: bool, paths: Any,
          random_state: Any, n_jobs: int | None) -> _Plan:
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
    from sklearn.preprocessing import LabelEncoder
    from sklearn.utils import check_random_state

    if X is None:
        raise ValueError("X: expected features, paths or images, got None")
    if not (hasattr(X, "shape") or hasattr(X, "__getitem__")):
        try:
            X = list(X)
        except TypeError:
            raise TypeError(f"X: expected an array, a DataFrame or a sequence, "
                            f"got {type(X).__name__}") from None
    y_arr = np.asarray(y)
    if y_arr.ndim != 1:
        raise ValueError(f"y: expected a 1-D sequence of labels, got shape {y_arr.shape}")
    n = y_arr.size
    if _n_samples(X) != n:
        raise ValueError(f"X and y: expected the same number of samples, got "
                         f"{_n_samples(X)} and {n}")
    cv = check_int(cv, "cv", low=2)
    if cv > n:
        raise ValueError(f"cv: cannot have more folds ({cv}) than samples ({n})")
    if not isinstance(dedupe, (bool, np.bool_)):
        raise ValueError(f"dedupe: expected True or False, got {dedupe!r}")
    try:
        encoder = LabelEncoder().fit(y_arr)
    except TypeError as exc:
        raise ValueError(f"y: labels cannot be sorted ({exc})") from None
    y_enc = encoder.transform(y_arr).astype(np.intp)
    classes = [str(c) for c in encoder.classes_]
    if len(classes) < 2:
        raise ValueError(f"y: need at least 2 classes, got {len(classes)} ({classes})")

    # duplicate groups
    items = None
    if paths is not None:
        items = as_batch(paths, "paths", check_items=True, allow_empty=True)
        if len(items) != n:
            raise ValueError(f"paths: expected {n} items (one per sample), got {len(items)}")
    elif dedupe:
        items = _looks_like_items(X)
    dup_ids = None
    n_dup = None
    if dedupe and items is not None:
        dups = find_duplicates(items, n_jobs=n_jobs)
        n_dup = dups.n_groups_with_duplicates
        if n_dup:
            dup_ids = dups.group_ids

    # patient groups
    patient_ids = None
    if groups is not None:
        g = np.asarray(groups)
        if g.ndim != 1 or g.size != n:
            raise ValueError(f"groups: expected one group label per sample ({n}), "
                             f"got shape {g.shape}")
        try:
            _, patient_ids = np.unique(g, return_inverse=True)
        except TypeError:
            _, patient_ids = np.unique(g.astype(str), return_inverse=True)
        patient_ids = patient_ids.ravel()

    if patient_ids is None and dup_ids is None:
        split, split_groups = "stratified", None
    else:
        kinds = [k for k, ids in (("patients", patient_ids), ("duplicates", dup_ids))
                 if ids is not None]
        split = f"stratified-group ({'+'.join(kinds)})"
        split_groups = _combine_groups(n, [ids for ids in (patient_ids, dup_ids)
                                           if ids is not None])

    rs = check_random_state(random_state) if not isinstance(random_state, numbers.Integral) \
        else int(random_state)
    if split_groups is None:
        splitter = StratifiedKFold(n_splits=cv, shuffle=True, random_state=rs)
        n_groups = None
    else:
        n_groups = int(split_groups.max()) + 1
        if cv > n_groups:
            raise ValueError(f"cv: cannot have more folds ({cv}) than groups ({n_groups}; "
                             f"split {split})")
        splitter = StratifiedGroupKFold(n_splits=cv, shuffle=True, random_state=rs)
    fold_of_sample = np.full(n, -1, np.intp)
    for f, (_, test) in enumerate(splitter.split(np.zeros((n, 1)), y_enc, split_groups)):
        fold_of_sample[test] = f
    if (fold_of_sample < 0).any() or np.bincount(fold_of_sample, minlength=cv).min() == 0:
        raise RuntimeError("internal error: the splitter left a sample or a fold unused")
    if split_groups is not None:
        pairs = np.unique(np.stack([split_groups, fold_of_sample], axis=1), axis=0)
        if pairs.shape[0] != n_groups:
            raise RuntimeError("internal error: a group straddles two folds")

    if isinstance(random_state, numbers.Integral):
        boot_seed = int(random_state)
    else:
        boot_seed = int(check_random_state(random_state).randint(0, 2 ** 31 - 1))
    return _Plan(X=X, y=y_enc, y_original=y_arr, classes=classes,
                 fold_of_sample=fold_of_sample, split=split, n_duplicate_groups=n_dup,
                 n_groups=n_groups, cv=cv,
                 random_state=int(random_state) if isinstance(random_state, numbers.Integral)
                 else None, boot_seed=boot_seed)


def _combine_groups(n: int, id_arrays: list[np.ndarray]) -> np.ndarray:
    """Samples share a group when they share any of the given group ids."""
    if len(id_arrays) == 1:
        return np.unique(id_arrays[0], return_inverse=True)[1].ravel()
    # bipartite graph: sample nodes 0..n-1, then one node per id of each kind
    i: list[np.ndarray] = []
    j: list[np.ndarray] = []
    offset = n
    for ids in id_arrays:
        i.append(np.arange(n))
        j.append(offset + ids)
        offset += int(ids.max()) + 1
    comp = union_components(offset, np.concatenate(i), np.concatenate(j))[:n]
    return np.unique(comp, return_inverse=True)[1].ravel()


def _take(X: Any, idx: np.ndarray) -> Any:
    from sklearn.utils import _safe_indexing
    if isinstance(X, (list, tuple)):
        return [X[i] for i in idx]
    return _safe_indexing(X, idx)


def _fit_fold(estimator: Any, X: Any, y: np.ndarray, train: np.ndarray, test: np.ndarray,
              n_classes: int) -> tuple[np.ndarray, np.ndarray | None, float, float]:
    from sklearn.base import clone
    from sklearn.pipeline import Pipeline

    est = clone(estimator)
    X_train, X_test = _take(X, train), _take(X, test)
    t0 = time.perf_counter()
    est.fit(X_train, y[train])
    fit_time = time.perf_counter() - t0

    t0 = time.perf_counter()
    final, X_final = est, X_test
    if isinstance(est, Pipeline) and len(est.steps) > 1 and not isinstance(est.steps[-1][1], str):
        # transform once, then predict and predict_proba on the features
        X_final = est[:-1].transform(X_test)
        final = est.steps[-1][1]
    pred = np.asarray(final.predict(X_final)).ravel()
    proba = None
    if hasattr(final, "predict_proba"):
        p = np.asarray(final.predict_proba(X_final), np.float64)
        cols = np.asarray(getattr(final, "classes_", np.arange(p.shape[1]))).astype(np.intp)
        proba = np.zeros((len(test), n_classes))
        proba[:, cols] = p
    predict_time = time.perf_counter() - t0

    if pred.size != len(test):
        raise ValueError(f"estimator: predict returned {pred.size} values for {len(test)} "
                         "samples")
    pred_int = pred.astype(np.intp) if np.issubdtype(pred.dtype, np.number) else None
    if pred_int is None or not np.array_equal(pred_int, pred) or pred_int.min() < 0 \
            or pred_int.max() >= n_classes:
        raise ValueError("estimator: predict must return the integer class codes it was "
                         f"trained on (0..{n_classes - 1}); got {pred[:5]!r}")
    return pred_int, proba, fit_time, predict_time


def _run(estimators: list[Any], plan: _Plan, n_jobs: int | None) -> list[list[tuple[Any, ...]]]:
    """Fit every estimator on every fold; results[e][f]."""
    k = len(plan.classes)
    folds = [(np.flatnonzero(plan.fold_of_sample != f), np.flatnonzero(plan.fold_of_sample == f))
             for f in range(plan.cv)]
    out = Parallel(n_jobs=n_jobs)(
        delayed(_fit_fold)(est, plan.X, plan.y, train, test, k)
        for est in estimators for train, test in folds)
    return [[(folds[f][1],) + out[e * plan.cv + f] for f in range(plan.cv)]
            for e in range(len(estimators))]


def _report(name: str, plan: _Plan, fold_results: list[tuple[Any, ...]], *, n_bootstrap: int,
            return_predictions: bool) -> CVReport:
    k = len(plan.classes)
    n = plan.y.size
    pred = np.empty(n, np.intp)
    has_proba = all(r[2] is not None for r in fold_results)
    proba: Any = np.zeros((n, k)) if has_proba else None
    fold_scores = []
    for test, p, pr, _, _ in fold_results:
        pred[test] = p
        if has_proba:
            proba[test] = pr
        fold_scores.append(cm_scores(confusion_counts(plan.y[test], p, k)))
    cm = confusion_counts(plan.y, pred, k)
    s = cm_scores(cm)
    per_class = {m: {c: float(v) for c, v in zip(plan.classes, s[m])}
                 for m in ("precision", "recall", "specificity")}
    ci = bootstrap_ci(plan.y, pred, proba, k, n_bootstrap, plan.boot_seed)
    y_pred_orig = None
    if return_predictions:
        # map codes back to the original label values
        lookup = np.empty(k, dtype=plan.y_original.dtype)
        lookup[plan.y] = plan.y_original
        y_pred_orig = lookup[pred]
    return CVReport(
        estimator=name, classes=list(plan.classes), n_images=int(n), cv=plan.cv,
        split=plan.split, n_duplicate_groups=plan.n_duplicate_groups, n_groups=plan.n_groups,
        random_state=plan.random_state,
        accuracy=float(s["accuracy"]), balanced_accuracy=float(s["balanced_accuracy"]),
        f1_macro=float(s["f1_macro"]), f1_weighted=float(s["f1_weighted"]),
        precision=per_class["precision"], recall=per_class["recall"],
        specificity=per_class["specificity"],
        precision_macro=float(np.mean(s["precision"])), recall_macro=float(np.mean(s["recall"])),
        specificity_macro=float(np.mean(s["specificity"])),
        roc_auc_ovr=float(auc_ovr(plan.y, proba, k)) if has_proba else float("nan"),
        confusion_matrix=cm,
        fold_accuracy=[float(f["accuracy"]) for f in fold_scores],
        fold_balanced_accuracy=[float(f["balanced_accuracy"]) for f in fold_scores],
        fold_f1_macro=[float(f["f1_macro"]) for f in fold_scores],
        ci=ci, n_bootstrap=int(n_bootstrap),
        fit_time=[float(r[3]) for r in fold_results],
        predict_time=[float(r[4]) for r in fold_results],
        fold_of_sample=plan.fold_of_sample.copy(),
        y_true=plan.y_original.copy() if return_predictions else None,
        y_pred=y_pred_orig if return_predictions else None,
        y_proba=proba if return_predictions else None,
    )


def cross_validate(estimator: Any, X: Any, y: ArrayLike, *, groups: ArrayLike | None = None,
                   cv: int = 5, dedupe: bool = True,
                   paths: Sequence[StrPath | np.ndarray] | None = None, random_state: int | None = 0,
                   n_bootstrap: int = 1000, n_jobs: int | None = None,
                   return_predictions: bool = False) -> CVReport:
    """Cross-validate a classifier with patient- and duplicate-aware folds.

    Folds are :class:`~sklearn.model_selection.StratifiedKFold` (shuffled)
    when there are no groups, and
    :class:`~sklearn.model_selection.StratifiedGroupKFold` (shuffled) when
    `groups` are given or duplicates are found; no group is ever split
    between folds. A clone of `estimator` is fitted on each training part
    and predicts (and, when it can, gives probabilities for) its held-out
    fold. Metrics are computed on the pooled out-of-fold predictions, plus
    per-fold values and percentile-bootstrap confidence intervals.

    Parameters
    ----------
    estimator : scikit-learn classifier or Pipeline
        Cloned for every fold; trained on integer labels ``0..K-1``.
    X : array_like, DataFrame or sequence
        A feature matrix, or the paths or images of a pipeline that extracts
        its own features (e.g. starting with ``leukfeat.FeatureExtractor``).
        Rows are selected with scikit-learn's safe indexing (lists stay
        lists).
    y : array_like of shape (n_samples,)
        Class labels (strings or integers), at least two classes.
    groups : array_like of shape (n_samples,), optional
        Group labels, e.g. patient ids: samples of one group are held out
        together.
    cv : int, default 5
        Number of folds (>= 2).
    dedupe : bool, default True
        Find exact and near duplicates (:func:`find_duplicates` with its
        defaults) among `paths`, or among the items of `X` when `X` is a
        sequence of paths or images, and keep each duplicate group in one
        fold. A sample then shares a group with another when they share a
        patient or a duplicate group (transitively).
    paths : sequence of str, os.PathLike or ndarray, optional
        The image behind each row of `X` (needed to find duplicates when `X`
        is a feature matrix).
    random_state : int or None, default 0
        Seeds the shuffled folds and the bootstrap.
    n_bootstrap : int, default 1000
        Bootstrap resamples for the 95 % confidence intervals (0: none).
    n_jobs : int, optional
        Folds fitted in parallel (joblib processes) and threads for finding
        duplicates.
    return_predictions : bool, default False
        Keep ``y_true``, ``y_pred`` and ``y_proba`` in the report.

    Returns
    -------
    CVReport
        Metrics, confusion matrix, per-fold values, confidence intervals,
        timings and ``fold_of_sample``; see :class:`CVReport`.

    Raises
    ------
    ValueError
        If an argument is invalid (the message names it), e.g. more folds
        than samples or groups, fewer than two classes, or mismatched
        lengths.

    Notes
    -----
    The bootstrap resamples images, so with strongly clustered data (many
    images per patient) the intervals are too narrow; the per-fold spread
    is then a useful second opinion. Pooled ROC AUC mixes the probability
    scales of the fold models, the usual convention for out-of-fold AUC.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.ensemble import RandomForestClassifier
    >>> from leukfeat.evaluate import cross_validate
    >>> X, y = make_classification(120, 6, n_informative=4, n_classes=3, random_state=0)
    >>> names = np.array(["Benign", "Early", "Pre"])[y]
    >>> patients = np.arange(120) // 4
    >>> report = cross_validate(RandomForestClassifier(50, random_state=0), X, names,
    ...                         groups=patients, n_bootstrap=200)
    >>> report.split, report.classes, report.confusion_matrix.shape
    ('stratified-group (patients)', ['Benign', 'Early', 'Pre'], (3, 3))
    >>> lo, hi = report.ci["accuracy"]
    >>> bool(lo <= report.accuracy <= hi)
    True
    >>> print(report.summary().splitlines()[0])  # doctest: +ELLIPSIS
    RandomForestClassifier: 5-fold stratified-group (patients) CV, 120 images, ...
    """
    n_bootstrap = check_int(n_bootstrap, "n_bootstrap", low=0)
    _check_estimator(estimator, "estimator")
    plan = _plan(X, y, groups=groups, cv=cv, dedupe=dedupe, paths=paths,
                 random_state=random_state, n_jobs=n_jobs)
    results = _run([estimator], plan, n_jobs)[0]
    return _report(_estimator_name(estimator), plan, results, n_bootstrap=n_bootstrap,
                   return_predictions=bool(return_predictions))


def _check_estimator(estimator: Any, name: str) -> None:
    if not (hasattr(estimator, "fit") and hasattr(estimator, "predict")
            and hasattr(estimator, "get_params")):
        raise TypeError(f"{name}: expected a scikit-learn classifier (with fit, predict and "
                        f"get_params), got {type(estimator).__name__}")


def compare(estimators: dict[str, Any], X: Any, y: ArrayLike, *, groups: ArrayLike | None = None,
            cv: int = 5, dedupe: bool = True, paths: Sequence[StrPath | np.ndarray] | None = None,
            random_state: int | None = 0, n_bootstrap: int = 1000, n_jobs: int | None = None,
            return_predictions: bool = False) -> Comparison:
    """Cross-validate several models on exactly the same folds.

    The folds (and duplicate search) are computed once and reused for every
    model, and the bootstrap uses the same resamples for every model, so
    differences between rows are paired comparisons.

    Parameters
    ----------
    estimators : dict of str to estimator
        Models by name, e.g. ``{"svm": ..., "xgboost": ...}``.
    X, y
        As in :func:`cross_validate`.
    groups : array_like of shape (n_samples,), optional
        Group labels, e.g. patient ids: samples of one group are held out
        together.
    cv : int, default 5
        Number of folds (>= 2).
    dedupe : bool, default True
        Find exact and near duplicates (:func:`find_duplicates` with its
        defaults) among `paths`, or among the items of `X` when `X` is a
        sequence of paths or images, and keep each duplicate group in one
        fold. A sample then shares a group with another when they share a
        patient or a duplicate group (transitively).
    paths : sequence of str, os.PathLike or ndarray, optional
        The image behind each row of `X` (needed to find duplicates when `X`
        is a feature matrix).
    random_state : int or None, default 0
        Seeds the shuffled folds and the bootstrap.
    n_bootstrap : int, default 1000
        Bootstrap resamples for the 95 % confidence intervals (0: none).
    n_jobs : int, optional
        Folds fitted in parallel (joblib processes) and threads for finding
        duplicates.
    return_predictions : bool, default False
        Keep ``y_true``, ``y_pred`` and ``y_proba`` in the report.

    Returns
    -------
    Comparison
        A named tuple ``(table, reports)``: ``table`` is a
        :class:`pandas.DataFrame` with one row per model (index ``model``)
        and columns ``accuracy``, ``balanced_accuracy``, ``f1_macro``,
        ``f1_weighted``, ``roc_auc_ovr``, each with ``<metric>_ci_low`` and
        ``<metric>_ci_high``, then ``fit_time`` and ``predict_time`` (mean
        seconds per fold), ``split`` and ``n_duplicate_groups``; ``reports``
        maps each name to its :class:`CVReport`.

    Raises
    ------
    ValueError
        If `estimators` is empty or not a dict of named estimators, or any
        other argument is invalid.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> from leukfeat.evaluate import compare
    >>> X, y = make_classification(150, 6, random_state=1)
    >>> table, reports = compare({"logreg": LogisticRegression(),
    ...                           "knn": KNeighborsClassifier()}, X, y, n_bootstrap=100)
    >>> list(table.index), "balanced_accuracy_ci_low" in table.columns
    (['logreg', 'knn'], True)
    >>> bool((reports["logreg"].fold_of_sample == reports["knn"].fold_of_sample).all())
    True
    """
    if not hasattr(estimators, "items") or len(estimators) == 0:
        raise ValueError("estimators: expected a non-empty dict of name -> estimator, "
                         f"got {type(estimators).__name__}")
    for name, est in estimators.items():
        if not isinstance(name, str):
            raise ValueError(f"estimators: names must be strings, got {name!r}")
        _check_estimator(est, f"estimators[{name!r}]")
    n_bootstrap = check_int(n_bootstrap, "n_bootstrap", low=0)
    plan = _plan(X, y, groups=groups, cv=cv, dedupe=dedupe, paths=paths,
                 random_state=random_state, n_jobs=n_jobs)
    names = list(estimators)
    results = _run([estimators[k] for k in names], plan, n_jobs)
    reports = {name: _report(name, plan, res,
                             n_bootstrap=n_bootstrap,
                             return_predictions=bool(return_predictions))
               for name, res in zip(names, results)}
    return Comparison.from_reports(reports)
