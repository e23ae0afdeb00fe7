"""``leukfeat train``: fit features and a classifier, save a model file."""

from __future__ import annotations

import time

from ._features import _extract_matrix, _failed, _jobs, _kept
from ._inputs import _class_counts, _classifier_names, _data_info, _load_labelled
from ._output import CommandError, _info, _jsonable, _out_file, _progress, _report_failures


def _cmd_train(args) -> int:
    import numpy as np

    names = _classifier_names(args.classifier)
    if len(names) != 1:
        raise CommandError("--classifier: train fits one classifier, got "
                           f"{', '.join(names)}")
    name = names[0]
    out = _out_file(args.out, (".skops",), "--out", args.overwrite)
    data, n_total = _load_labelled(args.root, args.loader, limit=args.limit, seed=args.seed)

    from .. import __version__, persist
    from ..models import make_pipeline
    progress = _progress(args)
    counts = _class_counts(data.labels)
    if len(counts) < 2:
        raise CommandError(f"ROOT: training needs at least 2 classes, found {list(counts)}")
    _info(args, f"training {name} on {len(data)} images ({len(counts)} classes) ...")
    t0 = time.perf_counter()
    model = make_pipeline(name, segmenter=args.method, groups=tuple(args.groups),
                          cell=args.cell or "largest", n_jobs=_jobs(args, len(data)),
                          on_error="nan",
                          cache=args.cache, progress=progress, random_state=args.seed)
    paths = [str(p) for p in data.paths]
    labels = np.asarray([str(v) for v in data.labels])
    # Pipeline.fit step by step, so that files that cannot be read (or
    # measured) are left out of training instead of becoming imputed rows.
    fx = model.named_steps["features"]
    X, _, failures, _ = _extract_matrix(fx, paths)
    failed = _failed(paths, failures)
    keep = _kept(len(paths), failures)
    if len(_class_counts(labels[keep])) < 2:
        raise CommandError(f"too few readable images to train on: "
                           f"{_class_counts(labels[keep])} ({len(failed)} failed)")
    model.steps[-1][1].fit(X[keep], labels[keep])
    # a portable file: library defaults for how the extractor runs
    model.set_params(features__n_jobs=None, features__progress=False,
                     features__on_error="raise", features__cache=None)
    elapsed = time.perf_counter() - t0
    metadata = {"command": "leukfeat train", "classifier": name,
                "data": _data_info(data, args.loader, args.limit, n_total),
                "n_trained_images": int(keep.size),
                "failed_images": [p for p, _ in failed], "seed": args.seed,
                "trained_with": f"leukfeat {__version__}",
                "fit_seconds": round(elapsed, 2)}
    persist.save_model(model, out, metadata=_jsonable(metadata))
    _report_failures("images could not be read or measured and were left out of "
                     "training", failed, len(paths))
    counts = _class_counts(labels[keep])
    print(f"trained {name} on {keep.size} images ("
          + ", ".join(f"{k}: {v}" for k, v in counts.items())
          + f"), {fx.n_features_out_} features, in {elapsed:.1f} s")
    print(f"model saved to {out}")
    return 0
