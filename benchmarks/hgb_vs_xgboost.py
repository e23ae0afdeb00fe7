"""Which gradient-boosted trees should be the default classifier (issue #32)?

scikit-learn's ``HistGradientBoostingClassifier`` (the ``"hgb"`` preset, no
extra package) against the ``"xgboost"`` preset (the ``xgboost`` extra) on
the Taleghani ALL set, on the same duplicate-grouped stratified 5-fold split
of the 3,256 images as ``balance_taleghani.py`` (``leukfeat.evaluate.compare``,
seed ``--seed``, every model on the same folds, a paired comparison).

Run from the repository root (about 5 minutes on 2 cores once the features
are cached; the first run extracts them, about 10 minutes on 2 cores, into
``benchmarks/output/feature-cache``)::

    python benchmarks/hgb_vs_xgboost.py

Models (all ``make_classifier(..., class_weight="balanced")``, the default):

* ``xgboost``: the preset (400 trees, depth 6, learning rate 0.1,
  subsample 0.9, colsample_bytree 0.5);
* ``hgb``: the preset (``HGBClassifier(max_iter=200, learning_rate=0.1,
  early_stopping=False, min_samples_leaf="auto")``, scikit-learn's
  ``HistGradientBoostingClassifier`` whose leaf size is
  ``min(20, n_samples // 10)``: 20 on these 2,600 training fields);
* ``hgb max_iter=100``: scikit-learn's own number of iterations;
* ``hgb min_samples_leaf=5``: a fixed small leaf, what a preset that must
  also fit tiny training sets without the ``"auto"`` rule would use.

Reported: per-class sensitivity, balanced accuracy and accuracy per fold, as
mean and standard deviation over the folds and pooled out of fold, the
per-fold difference hgb - xgboost, and the fit seconds per fold. Writes
``results.json`` and ``results.md`` in ``--out``. Without the data set the
script says so and exits with status 2. Splits are image-level (no patient
ids), which is optimistic compared with patient-level splits.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "taleghani-all"
sys.path.insert(0, str(Path(__file__).resolve().parent))

from balance_taleghani import _commit, fold_metrics, load_taleghani_set, tables  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "output" / "hgb-vs-xgboost"))
    ap.add_argument("--cache", default=str(ROOT / "benchmarks" / "output" / "feature-cache"),
                    help="FeatureExtractor cache folder ('' for none)")
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--cv", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    data = Path(args.data)
    if not data.is_dir():
        print(f"Taleghani data set not found at {data}: nothing measured (give --data DIR; "
              "see ../shared/data/README.md)", file=sys.stderr)
        return 2

    from leukfeat import evaluate, segment
    from leukfeat.models import make_classifier
    from leukfeat.transformers import FeatureExtractor

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    paths, y, classes, counts = load_taleghani_set(data)
    segmenter = segment.DEFAULT_METHOD
    fx = FeatureExtractor(segmenter=segmenter, n_jobs=args.n_jobs, cache=args.cache or None,
                          on_error="nan")
    t0 = time.perf_counter()
    X = fx.fit_transform(paths)
    t_extract = time.perf_counter() - t0
    print(f"features {X.shape} in {t_extract:.1f} s", flush=True)

    models = {
        "xgboost": make_classifier("xgboost", random_state=args.seed),
        "hgb": make_classifier("hgb", random_state=args.seed),
        "hgb max_iter=100": make_classifier("hgb", random_state=args.seed, max_iter=100),
        "hgb min_samples_leaf=5": make_classifier("hgb", random_state=args.seed,
                                                  min_samples_leaf=5),
    }
    t0 = time.perf_counter()
    comp = evaluate.compare(models, X, y, paths=paths, cv=args.cv, dedupe=True,
                            random_state=args.seed, n_jobs=args.n_jobs,
                            return_predictions=True)
    t_cv = time.perf_counter() - t0
    results = {name: fold_metrics(comp.reports[name], classes) for name in models}
    first = comp.reports["xgboost"]
    for name, rep in comp.reports.items():
        if not np.array_equal(rep.fold_of_sample, first.fold_of_sample):
            raise RuntimeError(f"{name}: got other folds than xgboost")

    diff = {}
    for name in models:
        if name == "xgboost":
            continue
        d = {k: (np.asarray(results[name]["folds"][k])
                 - np.asarray(results["xgboost"]["folds"][k])).tolist()
             for k in ("balanced_accuracy", "accuracy")}
        diff[name] = {k: {"folds": v, "mean": float(np.mean(v)),
                          "sd": float(np.std(v, ddof=1))} for k, v in d.items()}

    meta = {"data": str(data), "n_images": len(paths), "class_counts": counts,
            "segmenter": segmenter, "cell": "largest", "cv": args.cv, "seed": args.seed,
            "commit": _commit(), "python": platform.python_version(),
            "command": "python " + " ".join([Path(sys.argv[0]).as_posix()] + sys.argv[1:]),
            "split": first.split, "n_duplicate_groups": first.n_duplicate_groups,
            "extraction_seconds": t_extract, "cv_seconds": t_cv,
            "total_seconds": time.perf_counter() - t_start}
    spread, pooled = tables(results, classes)
    per_fold = ("| model | " + " | ".join(f"fold {i}" for i in range(args.cv))
                + " | mean ± SD | fit s/fold |\n|---|" + "---|" * (args.cv + 2) + "\n")
    for name, r in results.items():
        b = r["folds"]["balanced_accuracy"]
        per_fold += (f"| {name} | " + " | ".join(f"{v:.3f}" for v in b)
                     + f" | {np.mean(b):.3f} ± {np.std(b, ddof=1):.3f} | "
                     f"{np.mean(r['fit_seconds']):.1f} |\n")
    for name, d in diff.items():
        v = d["balanced_accuracy"]
        per_fold += (f"| {name} - xgboost | " + " | ".join(f"{x:+.3f}" for x in v["folds"])
                     + f" | {v['mean']:+.3f} ± {v['sd']:.3f} | |\n")
    md = [f"# Taleghani ALL: hgb against xgboost, {len(paths)} images", "",
          f"{args.cv}-fold {first.split} CV ({first.n_duplicate_groups} duplicate groups), "
          f"seed {args.seed}, segmenter {segmenter!r}, largest cell, {X.shape[1]} features; "
          f"commit {meta['commit']}; `{meta['command']}`", "",
          "## Balanced accuracy per fold", "", per_fold,
          "## Mean ± SD over the folds", "", spread,
          "## Pooled out-of-fold", "", pooled,
          f"extraction {t_extract:.1f} s, cross-validation {t_cv:.0f} s", ""]
    text = "\n".join(md)
    print(text)
    (out / "results.json").write_text(json.dumps({"meta": meta, "results": results,
                                                  "difference": diff}, indent=2))
    (out / "results.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
