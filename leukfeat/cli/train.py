"""``leukfeat train``: fit features and a classifier, save a model file."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from .._json import jsonable
from ._features import extract_matrix, failed_items, kept_indices, n_jobs_for
from ._inputs import classifier_names, count_classes, data_summary, load_labelled
from ._output import CommandError, out_file, report_failures, say, want_progress
from ._stain import normalise_items, stain_from_args

if TYPE_CHECKING:
    import argparse


def cmd_train(args: argparse.Namespace) -> int:
    import numpy as np

    names = classifier_names(args.classifier)
    if len(names) != 1:
        raise CommandError("--classifier: train fits one classifier, got "
                           f"{', '.join(names)}")
    name = names[0]
    out = out_file(args.out, (".skops",), "--out", args.overwrite)
    stain = stain_from_args(args)
    data, n_total = load_labelled(args.root, args.loader, limit=args.limit, seed=args.seed)

    from .. import __version__, persist
    from ..models import make_pipeline
    from ..transformers import StainNormalizer
    progress = want_progress(args)
    counts = count_classes(data.labels)
    if len(counts) < 2:
        raise CommandError(f"ROOT: training needs at least 2 classes, found {list(counts)}")
    say(args, f"training {name} on {len(data)} images ({len(counts)} classes) ...")
    t0 = time.perf_counter()
    model = make_pipeline(name, segmenter=args.method, groups=tuple(args.groups),
                          cell=args.cell or "largest", n_jobs=n_jobs_for(args, len(data)),
                          on_error="nan",
                          cache=args.cache, progress=progress, random_state=args.seed,
                          stain=None if stain is None
                          else StainNormalizer(args.stain, target=stain[0]))
    paths = [str(p) for p in data.paths]
    items, stain_info = paths, None
    if stain is not None:
        # the model's stain step has a fixed target: it learns nothing, and
        # maps each image exactly as the training images are mapped here
        model.named_steps["stain"].fit(paths)
        say(args, f"normalising every image to a fixed {args.stain} target ...")
        items, stain_info = normalise_items(args, paths, stain, progress)
    labels = np.asarray([str(v) for v in data.labels])
    # Pipeline.fit step by step, so that files that cannot be read (or
    # measured) are left out of training instead of becoming imputed rows.
    fx = model.named_steps["features"]
    X, _, failures, _ = extract_matrix(fx, items)
    failed = failed_items(paths, failures)
    keep = kept_indices(len(paths), failures)
    if len(count_classes(labels[keep])) < 2:
        raise CommandError(f"too few readable images to train on: "
                           f"{count_classes(labels[keep])} ({len(failed)} failed)")
    model.steps[-1][1].fit(X[keep], labels[keep])
    # a portable file: library defaults for how the extractor runs
    model.set_params(features__n_jobs=None, features__progress=False,
                     features__on_error="raise", features__cache=None)
    elapsed = time.perf_counter() - t0
    metadata = {"command": "leukfeat train", "classifier": name,
                "data": data_summary(data, args.loader, args.limit, n_total),
                "n_trained_images": int(keep.size),
                "failed_images": [p for p, _ in failed], "seed": args.seed,
                "stain": None if stain_info is None
                else {k: v for k, v in stain_info.items() if k != "seconds"},
                "trained_with": f"leukfeat {__version__}",
                "fit_seconds": round(elapsed, 2)}
    persist.save_model(model, out, metadata=jsonable(metadata))
    report_failures("images could not be read or measured and were left out of "
                     "training", failed, len(paths))
    counts = count_classes(labels[keep])
    print(f"trained {name} on {keep.size} images ("
          + ", ".join(f"{k}: {v}" for k, v in counts.items())
          + f"), {fx.n_features_out_} features, in {elapsed:.1f} s")
    print(f"model saved to {out}")
    return 0
