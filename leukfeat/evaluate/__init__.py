"""Honest evaluation of blood-cell image classifiers.

Leukaemia image sets are small, often hold the same image twice and are
often imaged one class at a time.  Plain k-fold accuracy then measures
memorised duplicates and acquisition differences as much as cytology.  This
module gives the evaluation a haematology-imaging reviewer expects:

find_duplicates
    Exact duplicates (SHA-256 of the file bytes) and near duplicates
    (re-encoded, resized or slightly edited copies: a 64-bit perceptual DCT
    hash, :func:`phash`, within a Hamming distance), grouped transitively.
cross_validate
    Stratified k-fold cross-validation of any scikit-learn classifier or
    pipeline that keeps patients and duplicate groups inside one fold, with
    out-of-fold metrics (accuracy, balanced accuracy, F1, per-class
    sensitivity/specificity, confusion matrix, one-vs-rest ROC AUC),
    per-fold values and percentile-bootstrap confidence intervals, in a
    :class:`CVReport`.
compare
    Several models on exactly the same folds, as one table.
confound_check
    Can the class be predicted from the *background* alone (the pixels
    outside every white cell)?  If it can, the classes differ in acquisition
    (stain, illumination, scanner) and a classifier may learn that instead
    of the cells.

Conventions
-----------
Labels may be strings or integers; estimators are always trained on the
integers ``0..K-1`` (a :class:`~sklearn.preprocessing.LabelEncoder` fitted
on ``y``, so XGBoost-like estimators work), and reports name the classes as
strings in sorted label order.  Every metric is computed on the pooled
out-of-fold predictions unless its name starts with ``fold_``.  Arguments
are checked up front and a wrong value raises :class:`ValueError` (or
:class:`TypeError` for a wrong type) naming the argument.
"""

from __future__ import annotations

from .._module_path import set_module as _set_module
from . import confound, metrics
from .confound import ConfoundReport, background_features, confound_check
from .cross_validation import compare, cross_validate
from .duplicates import DuplicateGroups, find_duplicates, phash
from .metrics import Comparison, CVReport, auc_ovr  # noqa: F401

__all__ = [
    "phash",
    "find_duplicates",
    "DuplicateGroups",
    "cross_validate",
    "CVReport",
    "compare",
    "Comparison",
    "background_features",
    "BACKGROUND_FEATURE_NAMES",
    "confound_check",
    "ConfoundReport",
    "RIVAL_SHARE",
]

#: Metrics that get a bootstrap confidence interval (when computable).
CI_METRICS = metrics.CI_METRICS

#: Names of the 30 :func:`background_features`, ``background_<channel>_<stat>``
#: for the channels R, G, B (0..255) and CIELAB L* (0..100), a*, b*.
BACKGROUND_FEATURE_NAMES = confound.BACKGROUND_FEATURE_NAMES

#: :meth:`ConfoundReport.rivals`: the share of a model's balanced accuracy
#: above chance that a flagged background classifier must reach for the
#: model's score to be called within its reach.
RIVAL_SHARE = confound.RIVAL_SHARE

# leukfeat.evaluate was one module, leukfeat/evaluate.py: its public classes and
# functions keep that module path (leukfeat.evaluate.CVReport, ...), by which
# pickles name them.
_set_module(__name__, [globals()[name] for name in __all__])
