"""Accuracy benchmark on the Taleghani ALL set (issue #4).

Run from the repository root (about 5-10 minutes on 2 cores)::

    python benchmarks/accuracy_taleghani.py --out benchmarks/output/taleghani
    python benchmarks/accuracy_taleghani.py --cell median --skip-confound \
        --out benchmarks/output/taleghani-median

Steps, all on the 3,256 images of ``../shared/data/taleghani-all``:

1. extract the default feature vector (the default segmenter, or the one
   named by ``--segmenter``; largest cell; 428 features) with
   ``FeatureExtractor(n_jobs=2)`` and time it;
2. find exact and near duplicates (``evaluate.find_duplicates``);
3. ``evaluate.compare`` KNN, SVM, random forest and XGBoost on the same
   duplicate-grouped stratified 5-fold split;
4. the same after Reinhard stain normalisation (target: pooled LAB statistics
   of 300 images drawn at random without looking at labels) with
   nucleus-only colour + shape features only;
5. ``evaluate.confound_check``: a classifier on background pixels only.

Writes ``results.json`` and ``results.md`` in ``--out``. No patient ids exist
for this set, so splits are image-level (duplicate-grouped), which is
optimistic compared with patient-level splits.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "taleghani-all"


def load(root: Path):
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    paths, labels = [], []
    for c in classes:
        for f in sorted((root / c).glob("*.jpg")):
            paths.append(str(f))
            labels.append(c)
    return paths, np.array(labels)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "output" / "taleghani"))
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--cv", type=int, default=5)
    ap.add_argument("--cell", default="largest",
                    help="which cell(s) describe a field: largest (default), mean, median")
    ap.add_argument("--segmenter", default=None,
                    help="segmenter of every step (default: leukfeat's default, "
                         "nucleus_anchored; lab_kmeans reproduces the figures before "
                         "2026-12-05)")
    ap.add_argument("--skip-confound", action="store_true")
    ap.add_argument("--skip-stain", action="store_true")
    args = ap.parse_args(argv)

    from leukfeat import evaluate, extract, preprocess, segment
    from leukfeat.io import read_image
    from leukfeat.models import make_classifier
    from leukfeat.transformers import FeatureExtractor

    data = Path(args.data)
    if not data.is_dir():
        print(f"data set not found: {data}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    paths, y = load(data)
    segmenter = args.segmenter or segment.DEFAULT_METHOD
    results = {"data": str(data), "n_images": len(paths), "classes": sorted(set(y)),
               "cell": args.cell, "segmenter": segmenter,
               "cv": args.cv, "split_note": "image-level, duplicate-grouped (no patient ids)"}
    md = [f"# Taleghani ALL: {len(paths)} images, {args.cv}-fold duplicate-grouped CV", ""]

    # 1. features
    fx = FeatureExtractor(segmenter=segmenter, n_jobs=args.n_jobs, cell=args.cell)
    t0 = time.perf_counter()
    X = fx.fit_transform(paths)
    t_extract = time.perf_counter() - t0
    assert X.shape[1] == len(fx.get_feature_names_out())
    results["extraction"] = {"seconds": t_extract, "n_jobs": args.n_jobs,
                             "n_features": X.shape[1],
                             "nan_rows": int(np.isnan(X).all(axis=1).sum())}
    print(f"extracted {X.shape} in {t_extract:.1f} s (n_jobs={args.n_jobs})", flush=True)

    # 2. duplicates
    t0 = time.perf_counter()
    dups = evaluate.find_duplicates(paths, n_jobs=args.n_jobs)
    results["duplicates"] = {"summary": dups.summary(), "seconds": time.perf_counter() - t0,
                             "n_groups_with_duplicates": int(dups.n_groups_with_duplicates),
                             "exact_pairs": len(dups.exact_pairs),
                             "near_pairs": len(dups.near_pairs)}
    print(dups.summary(), flush=True)

    models = {name: make_classifier(name, random_state=0)
              for name in ("knn", "svm", "rf", "xgboost")}

    # 3. all features
    t0 = time.perf_counter()
    comp = evaluate.compare(models, X, y, paths=paths, cv=args.cv, dedupe=True,
                            random_state=0)
    results["all_features"] = {k: r.to_dict() for k, r in comp.reports.items()}
    results["all_features_seconds"] = time.perf_counter() - t0
    md += [f"## All default features ({X.shape[1]}), cell={args.cell!r}, "
           f"segmenter={segmenter!r}", "", comp.to_markdown(), ""]
    print(comp.table.to_string(), flush=True)

    # 4. stain-normalised, nucleus colour + shape only
    if not args.skip_stain:
        rng = np.random.default_rng(0)
        ref = [read_image(paths[i]) for i in rng.choice(len(paths), 300, replace=False)]
        target = preprocess.reinhard_stats(ref)
        t0 = time.perf_counter()
        normed = [preprocess.reinhard(read_image(p), target) for p in paths]
        Xn = FeatureExtractor(segmenter=segmenter, n_jobs=args.n_jobs, cell=args.cell,
                              groups=("shape", "colour")).fit_transform(normed)
        sub_names = extract.feature_names(("shape", "colour"))
        keep = [i for i, n in enumerate(sub_names)
                if n.startswith("shape_") or n.startswith("colour_nucleus_")]
        Xn = Xn[:, keep]
        t_norm = time.perf_counter() - t0
        comp_n = evaluate.compare(models, Xn, y, paths=paths, cv=args.cv, dedupe=True,
                                  random_state=0)
        results["stain_normalised_nucleus_shape"] = {
            "n_features": len(keep), "extraction_seconds": t_norm,
            "reports": {k: r.to_dict() for k, r in comp_n.reports.items()}}
        md += [f"## Reinhard-normalised, nucleus colour + shape only ({len(keep)} features)",
               "", comp_n.to_markdown(), ""]
        print(comp_n.table.to_string(), flush=True)

    # 5. confound check
    if not args.skip_confound:
        t0 = time.perf_counter()
        conf = evaluate.confound_check(paths, y, segmenter=segmenter, dedupe=True, cv=args.cv,
                                       n_jobs=args.n_jobs)
        results["confound_check"] = {
            "accuracy": conf.accuracy, "balanced_accuracy": conf.balanced_accuracy,
            "chance": conf.chance, "confounded": bool(conf.confounded),
            "message": conf.message, "seconds": time.perf_counter() - t0}
        md += ["## Confound check (background pixels only)", "", "```", conf.summary(), "```", ""]
        print(conf.summary(), flush=True)

    md.insert(2, f"Feature extraction: {t_extract:.1f} s for {len(paths)} images with "
                 f"n_jobs={args.n_jobs}; {dups.summary()}\n")
    (out / "results.json").write_text(json.dumps(results, indent=2, default=float))
    (out / "results.md").write_text("\n".join(md))
    print(f"written {out / 'results.json'} and {out / 'results.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
