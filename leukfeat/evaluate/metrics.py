"""Metrics of pooled out-of-fold predictions and the reports that hold them.

Scores from confusion matrices (scikit-learn's definitions), one-vs-rest
ROC AUC, percentile-bootstrap intervals; :class:`CVReport` and
:class:`Comparison`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from .._json import jsonable

if TYPE_CHECKING:
    from .._typing import StrPath

#: Metrics that get a bootstrap confidence interval (when computable).
CI_METRICS = ("accuracy", "balanced_accuracy", "f1_macro", "f1_weighted", "roc_auc_ovr")

_CI_LEVEL = 0.95


def confusion_counts(y: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    return np.bincount(y * k + pred, minlength=k * k).reshape(k, k)


def cm_scores(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Metrics from confusion matrices of shape (..., K, K) (rows true).

    Matches scikit-learn: balanced accuracy averages recall over the classes
    present in the true labels; F1 macro/weighted use the classes present in
    the true or predicted labels; undefined precision counts as 0.
    """
    cm = np.asarray(cm, np.float64)
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    support = cm.sum(-1)
    predicted = cm.sum(-2)
    n = support.sum(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        accuracy = tp.sum(-1) / n
        present = support > 0
        recall = np.where(present, tp / np.where(present, support, 1), np.nan)
        balanced = np.where(present, recall, 0.0).sum(-1) / present.sum(-1)
        denom = support + predicted
        used = denom > 0
        f1 = np.where(used, 2.0 * tp / np.where(used, denom, 1), np.nan)
        f1_macro = np.where(used, f1, 0.0).sum(-1) / used.sum(-1)
        f1_weighted = (np.where(used, f1, 0.0) * support).sum(-1) / n
        precision = np.where(predicted > 0, tp / np.where(predicted > 0, predicted, 1), 0.0)
        fp = predicted - tp
        tn = n[..., None] - support - fp
        specificity = np.where(tn + fp > 0, tn / np.where(tn + fp > 0, tn + fp, 1), np.nan)
    return {"accuracy": accuracy, "balanced_accuracy": balanced, "f1_macro": f1_macro,
            "f1_weighted": f1_weighted, "precision": precision, "recall": recall,
            "specificity": specificity}


def auc_ovr(y: np.ndarray, proba: np.ndarray | None, k: int,
            weights: np.ndarray | None = None) -> float | np.ndarray:
    """Macro one-vs-rest ROC AUC (exact Mann-Whitney, ties count one half).

    ``weights`` of shape (b, n) gives b weighted (bootstrap) versions at once;
    the result then has shape (b,). Binary problems use the AUC of class 1,
    as :func:`sklearn.metrics.roc_auc_score` does.
    """
    n = y.size
    if proba is None or not np.all(np.isfinite(proba)):
        return np.nan if weights is None else np.full(len(weights), np.nan)
    # samples along axis 0, resamples along axis 1 (row gathers are cheap)
    w = np.ones((n, 1)) if weights is None else np.ascontiguousarray(
        np.asarray(weights, np.float64).T)
    aucs = []
    for c in ([1] if k == 2 else range(k)):
        order = np.argsort(proba[:, c], kind="mergesort")
        s = proba[order, c]
        starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])   # runs of tied scores
        ws = w[order]
        wpos = ws * (y[order] == c)[:, None]
        wp = np.add.reduceat(wpos, starts, axis=0)
        wn = np.add.reduceat(ws - wpos, starts, axis=0)
        below = np.cumsum(wn, axis=0) - wn
        num = (wp * (below + 0.5 * wn)).sum(axis=0)
        den = wp.sum(axis=0) * wn.sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            aucs.append(np.where(den > 0, num / np.where(den > 0, den, 1), np.nan))
    out = np.mean(aucs, axis=0)
    return float(out[0]) if weights is None else out


def bootstrap_ci(y: np.ndarray, pred: np.ndarray, proba: np.ndarray | None, k: int,
                 n_bootstrap: int, seed: int | None) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap intervals over samples for :data:`CI_METRICS`."""
    n = y.size
    if n_bootstrap == 0 or n == 0:
        return {}
    rng = np.random.default_rng(seed)
    values: dict[str, list[Any]] = {m: [] for m in CI_METRICS}
    batch = max(1, min(n_bootstrap, 2_000_000 // n))
    done = 0
    while done < n_bootstrap:
        b = min(batch, n_bootstrap - done)
        idx = rng.integers(0, n, size=(b, n))
        codes = y[idx] * k + pred[idx] + (np.arange(b) * (k * k))[:, None]
        cm = np.bincount(codes.ravel(), minlength=b * k * k).reshape(b, k, k)
        sc = cm_scores(cm)
        for m in ("accuracy", "balanced_accuracy", "f1_macro", "f1_weighted"):
            values[m].append(sc[m])
        if proba is not None:
            w = np.bincount((idx + (np.arange(b) * n)[:, None]).ravel(),
                            minlength=b * n).reshape(b, n)
            values["roc_auc_ovr"].append(auc_ovr(y, proba, k, w))
        done += b
    alpha = 100 * (1 - _CI_LEVEL) / 2
    ci = {}
    for m, vs in values.items():
        if not vs:
            continue
        v = np.concatenate(vs)
        v = v[np.isfinite(v)]
        if v.size:
            lo, hi = np.percentile(v, [alpha, 100 - alpha])
            ci[m] = (float(lo), float(hi))
    return ci


@dataclass
class CVReport:
    """Cross-validated performance of one classifier (see :func:`cross_validate`).

    All metrics come from the pooled out-of-fold predictions unless their name
    starts with ``fold_``. Per-class values are dicts keyed by class name.

    Attributes
    ----------
    estimator : str
        Name of the estimator, e.g. ``"Pipeline(StandardScaler, SVC)"`` (the
        model name given to :func:`compare`).
    classes : list of str
        Class names, in the order of the confusion matrix and probabilities.
    n_images : int
        Number of samples.
    cv : int
        Number of folds.
    split : str
        ``"stratified"``, ``"stratified-group (patients)"``,
        ``"stratified-group (duplicates)"`` or
        ``"stratified-group (patients+duplicates)"``.
    n_duplicate_groups : int or None
        Groups of two or more duplicate images kept inside one fold; ``None``
        when duplicates were not searched for (no paths or images, or
        ``dedupe=False``).
    n_groups : int or None
        Number of groups the grouped splitter saw (``None`` for plain
        stratified folds).
    random_state : int or None
        Seed of the folds and the bootstrap (``None`` if not an int).
    accuracy, balanced_accuracy, f1_macro, f1_weighted : float
        Pooled out-of-fold scores.
    precision, recall, specificity : dict of str to float
        Per class, one-vs-rest. ``recall`` is the sensitivity;
        specificity is TN / (TN + FP). Precision of a never-predicted class
        is 0, as in scikit-learn.
    precision_macro, recall_macro, specificity_macro : float
        Unweighted means over the classes.
    roc_auc_ovr : float
        Macro one-vs-rest ROC AUC of the pooled out-of-fold probabilities
        (the class-1 AUC for two classes); NaN when the estimator has no
        ``predict_proba``.
    confusion_matrix : ndarray of int, shape (K, K)
        Rows are true classes, columns predicted classes, in `classes` order.
    fold_accuracy, fold_balanced_accuracy, fold_f1_macro : list of float
        The same scores on each held-out fold.
    ci : dict of str to (float, float)
        95 % percentile-bootstrap intervals (resampling images of the pooled
        out-of-fold predictions) for accuracy, balanced_accuracy, f1_macro,
        f1_weighted and, with probabilities, roc_auc_ovr. Empty when
        ``n_bootstrap=0``.
    n_bootstrap : int
        Number of bootstrap resamples.
    fit_time, predict_time : list of float
        Seconds per fold (predict time includes ``predict_proba``).
    fold_of_sample : ndarray of int, shape (n_images,)
        Index of the fold in which each sample was held out.
    y_true, y_pred : ndarray or None
        True and out-of-fold predicted labels (original label values), with
        ``return_predictions=True``.
    y_proba : ndarray of shape (n_images, K) or None
        Out-of-fold probabilities, columns in `classes` order, with
        ``return_predictions=True`` and an estimator with ``predict_proba``.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> from leukfeat.evaluate import cross_validate
    >>> X, y = make_classification(200, 8, random_state=0)
    >>> report = cross_validate(LogisticRegression(), X, y, n_bootstrap=200)
    >>> round(report.accuracy, 3), report.split, int(report.confusion_matrix.sum())
    (0.935, 'stratified', 200)
    >>> sorted(report.to_dict())[:3]
    ['accuracy', 'balanced_accuracy', 'ci']
    """

    estimator: str
    classes: list[str]
    n_images: int
    cv: int
    split: str
    n_duplicate_groups: int | None
    n_groups: int | None
    random_state: int | None
    accuracy: float
    balanced_accuracy: float
    f1_macro: float
    f1_weighted: float
    precision: dict[str, float]
    recall: dict[str, float]
    specificity: dict[str, float]
    precision_macro: float
    recall_macro: float
    specificity_macro: float
    roc_auc_ovr: float
    confusion_matrix: np.ndarray
    fold_accuracy: list[float]
    fold_balanced_accuracy: list[float]
    fold_f1_macro: list[float]
    ci: dict[str, tuple[float, float]]
    n_bootstrap: int
    fit_time: list[float]
    predict_time: list[float]
    fold_of_sample: np.ndarray
    y_true: np.ndarray | None = None
    y_pred: np.ndarray | None = None
    y_proba: np.ndarray | None = None

    @property
    def sensitivity(self) -> dict[str, float]:
        """Per-class sensitivity (the same as `recall`)."""
        return self.recall

    @property
    def sensitivity_macro(self) -> float:
        """Macro sensitivity (the same as `recall_macro`)."""
        return self.recall_macro

    def to_dict(self) -> dict[str, Any]:
        """All fields as plain JSON-serialisable Python values.

        Arrays become lists, NaN becomes ``None``; fields that are ``None``
        (e.g. predictions not requested) are kept as ``None``.

        Returns
        -------
        dict
        """
        return {f.name: jsonable(getattr(self, f.name)) for f in fields(self)}

    def to_json(self, path: StrPath) -> None:
        """Write :meth:`to_dict` as an indented JSON file at `path`."""
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(self.to_dict(), fh, indent=2, allow_nan=False)
            fh.write("\n")

    def _rows(self) -> list[tuple[str, float, tuple[float, float] | None]]:
        rows = [("accuracy", self.accuracy), ("balanced accuracy", self.balanced_accuracy),
                ("F1 macro", self.f1_macro), ("F1 weighted", self.f1_weighted),
                ("ROC AUC (OvR, macro)", self.roc_auc_ovr),
                ("sensitivity (macro)", self.recall_macro),
                ("specificity (macro)", self.specificity_macro),
                ("precision (macro)", self.precision_macro)]
        keys = ["accuracy", "balanced_accuracy", "f1_macro", "f1_weighted", "roc_auc_ovr",
                None, None, None]
        return [(name, value, self.ci.get(key) if key else None)
                for (name, value), key in zip(rows, keys)]

    def _header(self) -> str:
        dup = ("" if self.n_duplicate_groups is None
               else f", {self.n_duplicate_groups} duplicate groups kept within folds")
        return (f"{self.estimator}: {self.cv}-fold {self.split} CV, {self.n_images} images, "
                f"{len(self.classes)} classes ({', '.join(self.classes)}){dup}")

    def summary(self) -> str:
        """A short multi-line text summary.

        Returns
        -------
        str
        """
        lines = [self._header()]
        for name, value, ci in self._rows():
            text = "n/a" if not np.isfinite(value) else f"{value:.3f}"
            if ci is not None:
                text += f"  (95% CI {ci[0]:.3f}-{ci[1]:.3f})"
            lines.append(f"  {name:<22}{text}")
        lines.append("  per-fold accuracy     "
                     + " ".join(f"{v:.3f}" for v in self.fold_accuracy))
        lines.append(f"  time per fold         fit {np.mean(self.fit_time):.2f} s, "
                     f"predict {np.mean(self.predict_time):.2f} s")
        return "\n".join(lines)

    def to_markdown(self) -> str:
        """A small Markdown table of the headline metrics with their CIs.

        Returns
        -------
        str
        """
        lines = [f"**{self._header()}**", "", "| metric | value | 95 % CI |",
                 "|---|---|---|"]
        for name, value, ci in self._rows():
            text = "n/a" if not np.isfinite(value) else f"{value:.3f}"
            cit = "" if ci is None else f"{ci[0]:.3f}–{ci[1]:.3f}"
            lines.append(f"| {name} | {text} | {cit} |")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"CVReport({self.estimator}, {self.cv}-fold {self.split}, n={self.n_images}, "
                f"accuracy={self.accuracy:.3f}, balanced_accuracy={self.balanced_accuracy:.3f}, "
                f"f1_macro={self.f1_macro:.3f})")


class Comparison(NamedTuple):
    """Result of :func:`compare`; unpacks as ``table, reports``.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per model (index ``model``, in the order given).
    reports : dict of str to CVReport
        The full report of each model.
    """

    table: Any
    reports: dict[str, CVReport]

    @classmethod
    def from_reports(cls, reports: dict[str, CVReport]) -> "Comparison":
        """A Comparison of reports computed elsewhere, e.g. a model's and a confound check's.

        Parameters
        ----------
        reports : dict of str to CVReport
            Reports by row name, in the order of the table.

        Returns
        -------
        Comparison
            The table :func:`compare` would make of these reports (whether
            they share folds is up to the caller: compare their
            ``fold_of_sample``).

        Examples
        --------
        >>> from sklearn.datasets import make_classification
        >>> from sklearn.linear_model import LogisticRegression
        >>> from leukfeat.evaluate import Comparison, cross_validate
        >>> X, y = make_classification(100, 4, random_state=0)
        >>> a = cross_validate(LogisticRegression(), X, y, n_bootstrap=0)
        >>> b = cross_validate(LogisticRegression(), X[:, :1], y, n_bootstrap=0)
        >>> list(Comparison.from_reports({"all": a, "first column": b}).table.index)
        ['all', 'first column']
        """
        import pandas as pd

        if not hasattr(reports, "items") or not reports or not all(
                isinstance(r, CVReport) for r in reports.values()):
            raise TypeError("reports: expected a non-empty dict of name -> CVReport")
        nan = float("nan")
        rows = []
        for name, r in reports.items():
            row: dict[str, Any] = {"model": str(name)}
            for m in CI_METRICS:
                row[m] = getattr(r, m)
                lo, hi = r.ci.get(m, (nan, nan))
                row[f"{m}_ci_low"], row[f"{m}_ci_high"] = lo, hi
            row["fit_time"] = float(np.mean(r.fit_time))
            row["predict_time"] = float(np.mean(r.predict_time))
            row["split"] = r.split
            row["n_duplicate_groups"] = r.n_duplicate_groups
            rows.append(row)
        return cls(pd.DataFrame(rows).set_index("model"), dict(reports))

    def to_markdown(self, floatfmt: str = ".3f") -> str:
        """The table as Markdown (metric with its 95 % CI, mean fit time)."""
        metrics = [("accuracy", "accuracy"), ("balanced_accuracy", "balanced accuracy"),
                   ("f1_macro", "F1 macro"), ("f1_weighted", "F1 weighted"),
                   ("roc_auc_ovr", "ROC AUC")]
        head = "| model | " + " | ".join(t for _, t in metrics) + " | fit s/fold |"
        lines = [head, "|---" * (len(metrics) + 2) + "|"]
        for model, row in self.table.iterrows():
            cells = []
            for m, _ in metrics:
                v, lo, hi = row[m], row[f"{m}_ci_low"], row[f"{m}_ci_high"]
                if not np.isfinite(v):
                    cells.append("n/a")
                elif np.isfinite(lo):
                    cells.append(f"{v:{floatfmt}} ({lo:{floatfmt}}–{hi:{floatfmt}})")
                else:
                    cells.append(f"{v:{floatfmt}}")
            lines.append(f"| {model} | " + " | ".join(cells) + f" | {row['fit_time']:.2f} |")
        return "\n".join(lines)
