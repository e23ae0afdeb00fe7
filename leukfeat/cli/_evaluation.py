"""Cross-validation as ``evaluate`` and ``demo`` run and report it.

The classifiers on the same folds, the summary table, the JSON and the
report, the command line as given, and the background-only confound check
beside the models.
"""

from __future__ import annotations

import os
import sys
import time
from typing import TYPE_CHECKING, Any

from ._features import n_jobs_for
from ._output import CommandError, format_error, one_line, say, use_agg, utf8_text

if TYPE_CHECKING:
    import argparse


def cross_validate(names: Any, X: Any, y: Any, *, groups: Any, cv: int, paths: Any, seed: Any,
                   n_bootstrap: int, n_jobs: int | None, progress: bool) -> Any:
    """compare() the classifiers on the same folds; a progress bar over models.

    With a bar, each model is cross-validated in its own :func:`compare` call
    (same data and seed, hence the same folds and bootstrap resamples as one
    call) so that the bar can advance; without one, a single call.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    from ..evaluate import Comparison, compare
    from ..models import make_classifier

    def models(sub):
        return {n: make_classifier(n, random_state=seed) for n in sub}

    kwargs = dict(groups=groups, cv=cv, paths=paths, random_state=seed,
                  n_bootstrap=n_bootstrap, n_jobs=n_jobs, return_predictions=True)

    def run(sub):
        try:
            return compare(models(sub), X, y, **kwargs)
        except ValueError as exc:
            hint = ""
            if "n_splits" in str(exc) and "svm" in sub:
                hint = (" (the svm preset calibrates its probabilities on 5 inner folds: "
                        "every class needs at least 5 images in each training part)")
            raise CommandError(f"cross-validation of {', '.join(sub)} failed: "
                               f"{one_line(exc)}{hint}") from exc

    if not progress:
        return run(names)
    tables, reports = [], {}
    with tqdm(total=len(names), desc="cross-validation", unit="model") as bar:
        for name in names:
            bar.set_postfix_str(f"{name}, {cv} folds")
            c = run([name])
            tables.append(c.table)
            reports.update(c.reports)
            bar.update(1)
    return Comparison(pd.concat(tables), reports)


def _cv_header(report) -> str:
    dup = ("" if report.n_duplicate_groups is None
           else f", {report.n_duplicate_groups} duplicate groups kept within folds")
    return (f"{report.cv}-fold {report.split} cross-validation, {report.n_images} images, "
            f"{len(report.classes)} classes ({', '.join(report.classes)}){dup}")


def _summary_text(comparison, confound=None) -> str:
    """The summary table (one model: its metrics; several: one row each, plus the
    background-only row of the confound check when it ran)."""
    reports = comparison.reports
    if len(reports) == 1:
        return next(iter(reports.values())).summary()
    first = next(iter(reports.values()))
    best = _best_model(comparison)
    table = comparison
    if confound is not None:
        from ..evaluate import Comparison

        table = Comparison.from_reports({**reports, BACKGROUND_ROW: confound.cv_report})
    return "\n".join([_cv_header(first), "", table.to_markdown(), "",
                      f"best balanced accuracy: {best} "
                      f"({reports[best].balanced_accuracy:.3f})"])


def _best_model(comparison, among=None) -> str:
    """The model (of `among`, default all) with the best balanced accuracy, then F1 macro."""
    return max(among or comparison.reports,
               key=lambda k: (comparison.reports[k].balanced_accuracy,
                              comparison.reports[k].f1_macro))


_PREDICTION_FIELDS = ("y_true", "y_pred", "y_proba")


def _report_dict(report) -> dict:
    """CVReport.to_dict without the per-image predictions (see --predictions)."""
    return {k: v for k, v in report.to_dict().items() if k not in _PREDICTION_FIELDS}


def comparison_json(comparison) -> dict:
    """JSON body: the report fields for one model; per-model dicts and a table for several."""
    reports = comparison.reports
    if len(reports) == 1:
        name, report = next(iter(reports.items()))
        return dict(model=name, **_report_dict(report))
    first = next(iter(reports.values()))
    table = comparison.table.reset_index()
    return {
        "models": {k: _report_dict(r) for k, r in reports.items()},
        "summary": table.to_dict(orient="records"),
        "summary_markdown": comparison.to_markdown(),
        "best_model": _best_model(comparison),
        "classes": list(first.classes), "n_images": first.n_images, "cv": first.cv,
        "split": first.split, "n_duplicate_groups": first.n_duplicate_groups,
        "n_groups": first.n_groups, "random_state": first.random_state,
    }


def predictions_table(comparison: Any, paths: Any) -> Any:
    """Out-of-fold predictions per image: path, label, fold, then per model."""
    import pandas as pd

    first = next(iter(comparison.reports.values()))
    table = pd.DataFrame({"path": [utf8_text(str(p)) for p in paths],
                          "label": [str(v) for v in first.y_true],
                          "fold": first.fold_of_sample})
    for name, r in comparison.reports.items():
        table[f"{name}_prediction"] = [str(v) for v in r.y_pred]
        if r.y_proba is not None:
            for k, c in enumerate(r.classes):
                table[f"{name}_proba_{c}"] = r.y_proba[:, k]
    return table


def _importance_model(comparison, X, y, seed):
    """{name: model fitted on all data} for the feature-importance figure, or None.

    The best evaluated model with importances (xgboost, rf, logreg), refitted
    on every image; the figure describes that model, not the fold models.
    """
    from ..models import make_classifier

    candidates = [k for k in comparison.reports if k in ("xgboost", "rf", "logreg")]
    if not candidates:
        return None
    best = _best_model(comparison, candidates)
    return {f"{best} (fitted on all {len(y)} images)":
            make_classifier(best, random_state=seed).fit(X, y)}


def write_cv_report(args, comparison, out_dir, *, X, y, feature_names, images,
                     segmentations, confound, data: str, command: str, stain=None):
    """The Markdown report with figures (:func:`leukfeat.plot.cv_report`), its
    provenance lines (data, command, stain normalisation) and the
    feature-importance model; returns (path, seconds)."""
    t0 = time.perf_counter()
    say(args, "writing the report ...")
    model = _importance_model(comparison, X, y, args.seed)
    provenance = {"Data": data,
                  "Command": f"{md_code(command)} (run in {md_code(os.getcwd())})"}
    if stain is not None:
        provenance["Stain normalisation"] = stain
    use_agg()
    from .. import plot

    result = (next(iter(comparison.reports.values())) if len(comparison.reports) == 1
              else comparison)
    path = plot.cv_report(result, out_dir, X=X, y=y, feature_names=feature_names,
                          model=model, images=images, segmentations=segmentations,
                          confound=confound, provenance=provenance)
    return path, time.perf_counter() - t0


def command_line(args) -> str:
    """The command as given, quoted so that it can be pasted back into a shell."""
    import shlex

    return "leukfeat " + shlex.join(str(a) for a in getattr(args, "argv", None) or [])


def md_code(text) -> str:
    """Inline Markdown code that survives backticks in ``text``."""
    text = str(text)
    return f"`` {text} ``" if "`" in text else f"`{text}`"


#: Row name of the background-only classifier in the summary tables.
BACKGROUND_ROW = "background only (confound check)"
#: When the one-line warning is printed (ConfoundReport.rivals).
CONFOUND_WARNING_RULE = (
    "warn when the confound check flags the data set (background-only balanced accuracy "
    "> 1/K + 0.2, K classes) and the background gets at least 80 % of the way from chance "
    "to the best model's balanced accuracy on the same folds: "
    "bg - 1/K >= 0.8 * (model - 1/K)")


def run_confound_check(args: argparse.Namespace, items: Any, y: Any, *, groups: Any, paths: Any,
                       comparison: Any) -> Any:
    """evaluate.confound_check on the models' folds, unless --no-confound-check.

    Returns (JSON dict, ConfoundReport, warning or None, seconds), or
    (None, None, None, 0.0) when skipped. A check that fails is reported on
    stderr and in the JSON (with no report); the evaluation stands.
    """
    if args.no_confound_check:
        return None, None, None, 0.0
    t_start = time.perf_counter()
    say(args, "confound check: can the background alone predict the class? ...")
    body, rep, warning = _confound_body(args, items, y, groups=groups, paths=paths,
                                        comparison=comparison, n_jobs=n_jobs_for(args, len(items)))
    return body, rep, warning, time.perf_counter() - t_start


def _confound_body(args, items, y, *, groups, paths, comparison, n_jobs):
    """(JSON dict, ConfoundReport or None, warning or None) of the check."""
    import numpy as np

    from ..evaluate import RIVAL_SHARE, confound_check

    t0 = time.perf_counter()
    try:
        rep = confound_check(items, y, segmenter=args.method, cv=args.cv,
                             random_state=args.seed, n_jobs=n_jobs, groups=groups,
                             paths=paths, n_bootstrap=getattr(args, "bootstrap", 1000))
    except (ValueError, OSError) as exc:
        message = f"the confound check failed: {format_error(exc)}"
        print(f"leukfeat: warning: {message}", file=sys.stderr)
        return {"error": message, "seconds": time.perf_counter() - t0}, None, None
    seconds = time.perf_counter() - t0
    reports = comparison.reports
    first = next(iter(reports.values()))
    best = _best_model(comparison)
    warning = rep.warning(reports[best].balanced_accuracy, model=best)
    bg = rep.cv_report
    body = {
        "what": "a random forest on 30 colour statistics of the pixels outside the "
                "(dilated) white cells (leukfeat.evaluate.confound_check); if the "
                "background alone predicts the class, the classes differ in acquisition",
        "segmenter": args.method,
        "accuracy": rep.accuracy, "balanced_accuracy": rep.balanced_accuracy,
        "f1_macro": bg.f1_macro, "ci": bg.ci,
        "fold_balanced_accuracy": bg.fold_balanced_accuracy,
        "chance": rep.chance, "margin": rep.margin,
        "flag_above": rep.chance["uniform"] + rep.margin,
        "confounded": rep.confounded, "message": rep.message,
        "same_folds": bool(np.array_equal(bg.fold_of_sample, first.fold_of_sample)),
        "compared_with": best,
        "rivals": {k: rep.rivals(r.balanced_accuracy) for k, r in reports.items()},
        "warning": warning, "warning_rule": CONFOUND_WARNING_RULE,
        "rival_share": RIVAL_SHARE,
        "cv_report": _report_dict(bg), "seconds": seconds,
    }
    return body, rep, warning


def _confound_line(confound, body) -> str:
    """One line of the confound check for the printed summary."""
    if confound is None:
        return ("background only (confound check): " + body["error"]
                if body and "error" in body else
                "background only (confound check): skipped (--no-confound-check)")
    ci = confound.cv_report.ci.get("balanced_accuracy")
    cit = "" if ci is None else f" (95% CI {ci[0]:.3f}-{ci[1]:.3f})"
    folds = "same folds" if body.get("same_folds") else "other folds"
    verdict = "CONFOUNDED" if confound.confounded else "no background confound detected"
    return (f"background only (confound check, {folds}): balanced accuracy "
            f"{confound.balanced_accuracy:.3f}{cit}; chance {confound.chance['uniform']:.3f}, "
            f"flagged above {confound.chance['uniform'] + confound.margin:.3f}: {verdict}")


def print_summary(comparison, confound, confound_body, warning) -> None:
    """The summary on stdout, the confound check beside it, its warning on stderr."""
    print(_summary_text(comparison, confound))
    print(_confound_line(confound, confound_body))
    if warning:
        sys.stdout.flush()
        print(f"leukfeat: warning: {warning}", file=sys.stderr, flush=True)
