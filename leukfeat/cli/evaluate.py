"""``leukfeat evaluate``: cross-validate classifiers on a labelled data set.

The confound check runs beside the models; ``--stain`` normalises every
image to a fixed target first.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ._evaluation import (command_line, comparison_json, cross_validate, md_code,
                          predictions_table, print_summary, run_confound_check, write_cv_report)
from ._features import cv_jobs, extract_matrix, failed_items, kept_indices, make_extractor
from ._inputs import classifier_names, count_classes, data_summary, load_labelled
from ._output import (CommandError, out_file, out_table, report_failures, report_no_cell, say,
                      want_progress, write_json, write_table)
from ._stain import normalise_items, stain_from_args

if TYPE_CHECKING:
    import argparse

# --------------------------------------------------------------------------- #
# the command
# --------------------------------------------------------------------------- #


def cmd_evaluate(args: argparse.Namespace) -> int:
    import numpy as np

    from .. import __version__

    t_start = time.perf_counter()
    names = classifier_names(args.classifier)
    json_path = (out_file(args.json, (".json",), "--json", args.overwrite)
                 if args.json else None)
    pred_path = (out_table(args.predictions, "--predictions", args.overwrite)
                 if args.predictions else None)
    stain = stain_from_args(args)
    data, n_total = load_labelled(args.root, args.loader, limit=args.limit, seed=args.seed)
    y = np.asarray([str(v) for v in data.labels])
    counts = count_classes(y)
    if len(counts) < 2:
        raise CommandError(f"ROOT: evaluation needs at least 2 classes, found {list(counts)}")
    smallest = min(counts.values())
    if data.groups is None and smallest < args.cv:
        raise CommandError(f"--cv: {args.cv} folds need at least {args.cv} images per class; "
                           f"the smallest class has {smallest} ({counts})")
    paths = [str(p) for p in data.paths]
    progress = want_progress(args)
    say(args, f"{data.name if hasattr(data, 'name') else args.loader}: {len(paths)} images, "
                + ", ".join(f"{k} {v}" for k, v in counts.items())
                + ("" if data.groups is None
                   else f", {len(set(map(str, data.groups)))} patients"))

    items, stain_info = paths, None
    if stain is not None:
        say(args, f"normalising every image to a fixed {args.stain} target ...")
        items, stain_info = normalise_items(args, paths, stain, progress)
    t0 = time.perf_counter()
    X, feature_names, failures, no_cell = extract_matrix(
        make_extractor(args, len(paths), progress=progress), items)
    t_features = time.perf_counter() - t0
    # Files that cannot be read (or measured) are not samples of their class:
    # they are left out of the evaluation, listed here and in the JSON. Images
    # without a white cell stay in (NaN rows, imputed): the method must cope.
    report_failures("images could not be read or measured and are left out of the "
                     "evaluation", failed_items(paths, failures), len(paths), json_path)
    report_no_cell(no_cell, len(paths), "kept: NaN rows, imputed by the classifiers")
    errors = [{"path": paths[i], "error": failures[i]} for i in sorted(failures)]
    no_cell_paths = [paths[i] for i in no_cell]
    groups = None if data.groups is None else np.asarray([str(g) for g in data.groups])
    if failures:
        keep = kept_indices(len(paths), failures)
        if keep.size == 0:
            raise CommandError(f"no image of {args.root} could be read ({len(paths)} failed)")
        X, y = X[keep], y[keep]
        paths = [paths[i] for i in keep]
        items = [items[i] for i in keep]
        groups = None if groups is None else groups[keep]
        counts = count_classes(y)
        if len(counts) < 2 or (groups is None and min(counts.values()) < args.cv):
            raise CommandError(f"too few readable images left for {args.cv}-fold "
                               f"cross-validation: {counts}")

    t0 = time.perf_counter()
    comparison = cross_validate(names, X, y, groups=groups, cv=args.cv, paths=paths,
                                 seed=args.seed, n_bootstrap=args.bootstrap,
                                 n_jobs=cv_jobs(args, len(paths), len(names), args.cv),
                                 progress=progress)
    t_cv = time.perf_counter() - t0

    confound_body, confound, warning, t_confound = run_confound_check(
        args, items, y, groups=groups, paths=paths, comparison=comparison)

    command = command_line(args)
    data_info = data_summary(data, args.loader, args.limit, n_total)
    data_info["path"] = str(Path(args.root).resolve())
    report_path, t_report = None, 0.0
    if args.report:
        subset = ("" if args.limit is None or len(data) >= n_total
                  else f", a stratified subset (--limit {args.limit}, seed {args.seed})")
        report_path, t_report = write_cv_report(
            args, comparison, args.report, X=X, y=y, feature_names=feature_names,
            images=items if stain_info else paths, segmentations=args.method,
            confound=confound, command=command,
            data=f"{md_code(data_info['path'])} ({args.loader} loader: {len(data)} of "
                 f"{n_total} images{subset})",
            stain="none" if stain_info is None else
                  f"{args.stain}, every image on its own to a fixed target "
                  f"({stain_info['target']}); nothing learnt from the evaluated images")

    body = {
        "leukfeat_version": __version__,
        "command": command,
        "working_directory": os.getcwd(),
        "data": data_info,
        "features": {"method": args.method, "groups": list(args.groups),
                     "cell": args.cell or "largest", "n_features": len(feature_names),
                     "n_failed": len(errors), "n_no_cell": len(no_cell_paths),
                     "errors": errors, "no_cell": no_cell_paths,
                     "note": "failed images are left out of the evaluation; images "
                             "without a white cell are kept (NaN features, imputed)"},
        "stain": stain_info,
        "confound_check": confound_body,
        "warnings": [warning] if warning else [],
        "seconds": {"stain_normalisation": 0.0 if stain_info is None
                    else stain_info["seconds"],
                    "features": t_features, "cross_validation": t_cv,
                    "confound_check": t_confound, "report": t_report,
                    "total": time.perf_counter() - t_start},
        **comparison_json(comparison),
    }
    if json_path is not None:
        write_json(json_path, body)
    if pred_path is not None:
        write_table(predictions_table(comparison, paths), pred_path)
    print_summary(comparison, confound, confound_body, warning)
    for written in (json_path, pred_path):
        if written is not None:
            print(f"wrote {written}")
    if report_path is not None:
        print(f"report: {report_path}")
    return 0
