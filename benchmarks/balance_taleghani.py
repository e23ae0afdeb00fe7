"""Class imbalance on the Taleghani ALL set: balanced weights and oversampling
by augmentation, per-class sensitivity (issue #30).

Run from the repository root (about 10-20 minutes on 2 cores; the first run
also extracts the features, about 20 s, into the cache)::

    python benchmarks/balance_taleghani.py
    python benchmarks/balance_taleghani.py --copies 0        # (c) with n_copies=0 only
    python benchmarks/balance_taleghani.py --copies none     # (a) and (b) only, ~4 min
    python benchmarks/balance_taleghani.py --copies none --plain-copies 1 \
        --out benchmarks/output/balance-taleghani-plain     # + plain augmentation

The set's classes are unequal (Benign 504, Early 985, Pre 963, Pro 804
images). Every variant is cross-validated on the same duplicate-grouped
stratified 5-fold split of the 3,256 images (``leukfeat.evaluate``, seed
``--seed``; the script checks that every variant got the same folds):

(a) ``make_classifier("xgboost"|"knn", class_weight=None)``: every image
    weighs the same (how the older figures of ``accuracy_taleghani.py``
    were measured);
(b) the same with ``class_weight="balanced"``, the default of every preset
    since issue #30 (xgboost: balanced sample weights; knn:
    ``BalancedKNeighborsClassifier``, votes divided by class frequency);
(c) xgboost with ``class_weight=None`` inside
    ``leukfeat.augment.TrainingAugmentation(n_copies=k, balance=True)``:
    oversampling by augmentation. Inside each fold, augmented copies
    (rotations by 90 degrees, flips, small rescale, stain jitter; the
    default ``Augmenter``) of the *training* images are added until every
    class has as many training images as the largest has with ``k`` copies
    of each image; ``k=0`` only tops up the smaller classes, ``k=1`` also
    doubles the largest. Test images are never augmented. ``--plain-copies
    1`` adds ``n_copies=1, balance=False`` (one copy of every training
    image, the class ratios kept), which separates the effect of
    augmentation from that of balancing.

The default feature vector (default segmenter, largest cell) of the original
images is extracted once with ``FeatureExtractor(n_jobs=2, cache=...)`` and
reused for (a) and (b); (c) runs the whole image-to-label pipeline inside
each fold (``make_pipeline`` with the same cache, so only the augmented
copies are new work).

Reported per variant: per-class sensitivity (recall), balanced accuracy and
accuracy as mean and standard deviation over the 5 held-out folds, and the
pooled out-of-fold values. Writes ``results.json`` and ``results.md`` in
``--out``. The data set is read from ``../shared/data/taleghani-all`` (next
to the repository); without it the script says so and exits with status 2.
Splits are image-level (no patient ids), which is optimistic compared with
patient-level splits.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "taleghani-all"


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def fold_metrics(report, classes) -> dict:
    """Per-fold sensitivity of every class, balanced accuracy and accuracy
    from a report made with ``return_predictions=True``."""
    y, pred, fold = report.y_true, report.y_pred, report.fold_of_sample
    per_fold = {c: [] for c in classes}
    per_fold["balanced_accuracy"], per_fold["accuracy"] = [], []
    for f in range(report.cv):
        t, p = y[fold == f], pred[fold == f]
        recalls = []
        for c in classes:
            r = float(np.mean(p[t == c] == c))
            per_fold[c].append(r)
            recalls.append(r)
        per_fold["balanced_accuracy"].append(float(np.mean(recalls)))
        per_fold["accuracy"].append(float(np.mean(t == p)))
    pooled = {c: float(report.recall[c]) for c in classes}
    pooled["balanced_accuracy"] = float(report.balanced_accuracy)
    pooled["accuracy"] = float(report.accuracy)
    wrong = {c: int(np.sum((y == c) & (pred != c))) for c in classes}
    return {"folds": per_fold,
            "mean": {k: float(np.mean(v)) for k, v in per_fold.items()},
            "sd": {k: float(np.std(v, ddof=1)) for k, v in per_fold.items()},
            "pooled": pooled, "wrong": wrong,
            "fit_seconds": [float(t) for t in report.fit_time],
            "predict_seconds": [float(t) for t in report.predict_time]}


def tables(results: dict, classes) -> tuple[str, str]:
    cols = [f"{c} sens." for c in classes] + ["balanced acc.", "accuracy"]
    keys = list(classes) + ["balanced_accuracy", "accuracy"]
    head = "| variant | " + " | ".join(cols) + " |\n|---|" + "---|" * len(cols) + "\n"
    spread = head
    pooled = ("| variant | " + " | ".join(cols) + " | fields wrong (" + "/".join(classes)
              + ") |\n|---|" + "---|" * (len(cols) + 1) + "\n")
    for name, r in results.items():
        spread += f"| {name} | " + " | ".join(
            f"{r['mean'][k]:.3f} ± {r['sd'][k]:.3f}" for k in keys) + " |\n"
        pooled += f"| {name} | " + " | ".join(f"{r['pooled'][k]:.3f}" for k in keys) \
            + " | " + " / ".join(str(r["wrong"][c]) for c in classes) + " |\n"
    return spread, pooled


def load_taleghani_set(data):
    """The Taleghani set's paths, labels (array), class names and images per
    class, the counts printed."""
    from leukfeat import datasets

    ds = datasets.load_taleghani(data)
    paths, y = list(ds.paths), np.asarray(ds.labels)
    classes = list(ds.class_names)
    counts = {c: int(np.sum(y == c)) for c in classes}
    print(f"{len(paths)} images: " + ", ".join(f"{c} {n}" for c, n in counts.items()),
          flush=True)
    return paths, y, classes, counts


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "output" / "balance-taleghani"))
    ap.add_argument("--cache", default=str(ROOT / "benchmarks" / "output" / "feature-cache"),
                    help="FeatureExtractor cache folder ('' for none)")
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--cv", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0,
                    help="seed of the folds, the classifiers and the augmenter")
    ap.add_argument("--segmenter", default=None,
                    help="segmenter (default: leukfeat's default, nucleus_anchored)")
    ap.add_argument("--copies", default="0,1",
                    help="comma-separated n_copies of the (c) variants, or 'none' to skip (c)")
    ap.add_argument("--plain-copies", default="none",
                    help="comma-separated n_copies of extra variants with balance=False "
                         "(plain augmentation, to tell it apart from balancing), default none")
    args = ap.parse_args(argv)

    data = Path(args.data)
    if not data.is_dir():
        print(f"Taleghani data set not found at {data}: nothing measured (give --data DIR; "
              "see ../shared/data/README.md)", file=sys.stderr)
        return 2

    from leukfeat import evaluate, segment
    from leukfeat.augment import Augmenter, TrainingAugmentation
    from leukfeat.models import make_classifier, make_pipeline
    from leukfeat.transformers import FeatureExtractor

    def _ints(text):
        return [] if text.strip().lower() == "none" else \
            [int(c) for c in text.split(",") if c.strip()]

    variants_c = [(k, True) for k in _ints(args.copies)] + \
        [(k, False) for k in _ints(args.plain_copies)]
    cache = args.cache or None
    segmenter = args.segmenter or segment.DEFAULT_METHOD
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    t_start = time.perf_counter()
    paths, y, classes, counts = load_taleghani_set(data)
    meta = {"data": str(data), "n_images": len(paths), "class_counts": counts,
            "segmenter": segmenter, "cell": "largest", "cv": args.cv, "seed": args.seed,
            "commit": _commit(), "python": platform.python_version(),
            "command": "python " + " ".join([Path(sys.argv[0]).as_posix()] + sys.argv[1:]),
            "split_note": "image-level, duplicate-grouped stratified folds (no patient ids)"}

    # features of the original images, once
    fx = FeatureExtractor(segmenter=segmenter, n_jobs=args.n_jobs, cache=cache, on_error="nan")
    t0 = time.perf_counter()
    X = fx.fit_transform(paths)
    meta["extraction_seconds"] = time.perf_counter() - t0
    meta["extraction_errors"] = len(fx.errors_)
    meta["rows_without_cell"] = int(np.isnan(X).all(axis=1).sum())
    print(f"features {X.shape} in {meta['extraction_seconds']:.1f} s "
          f"({meta['extraction_errors']} errors, {meta['rows_without_cell']} rows without a "
          "cell)", flush=True)

    results, reports, seconds = {}, {}, {}

    # (a) and (b): the same features, the same folds (one compare call)
    models = {f"{name} class_weight={cw!r}": make_classifier(name, random_state=args.seed,
                                                              class_weight=cw)
              for cw in (None, "balanced") for name in ("xgboost", "knn")}
    t0 = time.perf_counter()
    comp = evaluate.compare(models, X, y, paths=paths, cv=args.cv, dedupe=True,
                            random_state=args.seed, n_jobs=args.n_jobs,
                            return_predictions=True)
    seconds["(a)+(b)"] = time.perf_counter() - t0
    for name in models:
        reports[name] = comp.reports[name]
        results[name] = fold_metrics(comp.reports[name], classes)
        r = results[name]["pooled"]
        print(f"{name}: balanced accuracy {r['balanced_accuracy']:.4f}, accuracy "
              f"{r['accuracy']:.4f}", flush=True)
    print(f"(a)+(b): {seconds['(a)+(b)']:.1f} s", flush=True)

    # (c): oversampling by augmentation, features of the copies made inside each fold
    for k, balance in variants_c:
        name = f"xgboost class_weight=None + augmentation (n_copies={k}, balance={balance})"
        pipe = make_pipeline("xgboost", segmenter=segmenter, n_jobs=args.n_jobs, cache=cache,
                             on_error="nan", random_state=args.seed, class_weight=None)
        est = TrainingAugmentation(pipe, augmenter=Augmenter(random_state=args.seed),
                                   n_copies=k, balance=balance)
        t0 = time.perf_counter()
        rep = evaluate.cross_validate(est, paths, y, paths=paths, cv=args.cv, dedupe=True,
                                      random_state=args.seed, n_jobs=None,
                                      return_predictions=True)
        seconds[name] = time.perf_counter() - t0
        reports[name] = rep
        results[name] = fold_metrics(rep, classes)
        r = results[name]["pooled"]
        print(f"{name}: balanced accuracy {r['balanced_accuracy']:.4f}, accuracy "
              f"{r['accuracy']:.4f}; {seconds[name]:.0f} s (fit per fold: "
              + ", ".join(f"{t:.0f}" for t in rep.fit_time) + " s)", flush=True)

    # every variant on the same folds
    first = next(iter(reports.values()))
    for name, rep in reports.items():
        if not np.array_equal(rep.fold_of_sample, first.fold_of_sample):
            raise RuntimeError(f"{name}: got other folds than {first.estimator}")
    meta["split"] = first.split
    meta["n_duplicate_groups"] = first.n_duplicate_groups
    meta["fold_sizes"] = np.bincount(first.fold_of_sample).tolist()
    meta["seconds"] = seconds
    meta["total_seconds"] = time.perf_counter() - t_start

    spread, pooled = tables(results, classes)
    md = [f"# Taleghani ALL: class balance, {len(paths)} images "
          f"({', '.join(f'{c} {n}' for c, n in counts.items())})", "",
          f"{args.cv}-fold {first.split} CV ({first.n_duplicate_groups} duplicate groups), "
          f"seed {args.seed}, segmenter {segmenter!r}, largest cell, 428 features; "
          f"commit {meta['commit']}; `{meta['command']}`", "",
          "## Mean ± SD over the folds", "", spread,
          "## Pooled out-of-fold", "", pooled,
          "## Seconds", "",
          f"extraction {meta['extraction_seconds']:.1f} s; "
          + "; ".join(f"{k}: {v:.0f} s" for k, v in seconds.items())
          + f"; total {meta['total_seconds']:.0f} s", ""]
    print()
    print("Mean ± SD over the folds")
    print(spread)
    print("Pooled out-of-fold")
    print(pooled)
    (out / "results.json").write_text(json.dumps({"meta": meta, "results": results},
                                                 indent=2))
    (out / "results.md").write_text("\n".join(md))
    print(f"total {meta['total_seconds']:.0f} s; written {out / 'results.json'} and "
          f"{out / 'results.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
