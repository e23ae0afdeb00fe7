"""``leukfeat demo``: the whole job on synthetic images generated on the spot."""

from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ._evaluation import (command_line, comparison_json, cross_validate, md_code, print_summary,
                          run_confound_check, write_cv_report)
from ._features import DEFAULT_FEATURE_GROUPS, cv_jobs, extract_matrix, make_extractor
from ._output import CommandError, say, want_progress, write_json, write_table

if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterable

#: Models shown in ``demo``.
DEMO_CLASSIFIERS = ("knn", "svm", "rf", "xgboost")


def installed_classifiers(names: Iterable[str]) -> tuple[list[str], list[str]]:
    """The presets among ``names`` whose package is installed, and a note for
    each one left out (``xgboost`` is an extra: the demo runs without it)."""
    from ..models import make_classifier

    kept: list[str] = []
    notes: list[str] = []
    for name in names:
        try:
            make_classifier(name)
        except ImportError as exc:
            notes.append(f"{name} skipped: {exc}")
        else:
            kept.append(name)
    return kept, notes


def report_skip_note() -> str | None:
    """Why the report (matplotlib figures, the ``plot`` extra) cannot be
    written, or None when it can."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return ("report skipped: its figures need matplotlib, an optional extra: "
                "pip install 'leukfeat[plot]'")
    return None


def cmd_demo(args: argparse.Namespace) -> int:
    import cv2
    import numpy as np
    import pandas as pd

    from .. import segment
    from ..datasets import make_cells

    t_start = time.perf_counter()
    progress = want_progress(args)
    classifiers, skipped = installed_classifiers(DEMO_CLASSIFIERS)
    if not args.no_report and (note := report_skip_note()) is not None:
        skipped.append(note)
        args.no_report = True
    for note in skipped:   # printed whatever --quiet says: never silent
        print(f"leukfeat: note: {note}", file=sys.stderr, flush=True)
    # every class needs a test image per fold and, for the svm preset's inner
    # 5-fold calibration, 5 images in every training part
    per_class = max(args.cv, math.ceil(5 * args.cv / (args.cv - 1)))
    if args.n < per_class * args.classes:
        raise CommandError(f"--n: {args.cv}-fold cross-validation of {args.classes} classes "
                           f"needs at least {per_class * args.classes} images, got {args.n}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    say(args, f"generating {args.n} synthetic smear images ({args.classes} classes, "
                f"{args.size}x{args.size}, seed {args.seed}) ...")
    data = make_cells(args.n, n_classes=args.classes, size=args.size, n_white_cells=(1, 2),
                      random_state=args.seed)
    y = np.asarray(data.class_names)[data.labels]
    images = list(data.images)
    # files of an earlier run with other settings would be mixed with these
    overlays_dir = out / "overlays"
    for stale in [*(out / "images").glob("class_*/img_*.png"),
                  *overlays_dir.glob("overlay_*.png")]:
        stale.unlink()
    data.save(out / "images")

    # segmentation against the ground truth
    overlays_dir.mkdir(exist_ok=True)
    from tqdm.auto import tqdm
    segs, tiles, rows = [], [], []
    for i in tqdm(range(len(images)), desc="segmentation", unit="image", disable=not progress):
        img, gt, gt_nuc = images[i], data.masks[i], data.nucleus[i]
        seg = segment.segment(img, args.method)
        segs.append(seg)
        ov = seg.overlay(img)
        tiles.append(ov)
        cv2.imwrite(str(overlays_dir / f"overlay_{i:03d}.png"),
                    cv2.cvtColor(ov, cv2.COLOR_RGB2BGR))
        union = (seg.mask | gt).sum()
        iou = float((seg.mask & gt).sum() / union) if union else 1.0
        nu = (seg.nucleus | gt_nuc).sum()
        niou = float((seg.nucleus & gt_nuc).sum() / nu) if nu else 1.0
        rows.append({"image": i, "class": y[i], "n_cells": seg.n_cells,
                     "true_n_cells": int(data.cell_labels[i].max()),
                     "cell_iou": iou, "nucleus_iou": niou})
    seg_table = pd.DataFrame(rows)
    write_table(seg_table, out / "segmentation.csv")
    cols = min(10, len(tiles))
    tiles += [np.zeros_like(tiles[0])] * (-len(tiles) % cols)
    sheet = np.vstack([np.hstack(tiles[i:i + cols]) for i in range(0, len(tiles), cols)])
    cv2.imwrite(str(out / "contact_sheet.png"), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))

    # features, once
    t0 = time.perf_counter()
    args.groups, args.cell = DEFAULT_FEATURE_GROUPS, "largest"
    X, names, failures, no_cell = extract_matrix(
        make_extractor(args, len(images), progress=progress), images)
    t_features = time.perf_counter() - t0

    # cross-validation of the classifiers on the same folds
    t0 = time.perf_counter()
    comparison = cross_validate(classifiers, X, y, groups=None, cv=args.cv,
                                 paths=images, seed=args.seed, n_bootstrap=1000,
                                 n_jobs=cv_jobs(args, len(images), len(classifiers), args.cv),
                                 progress=progress)
    t_cv = time.perf_counter() - t0

    # the confound check, on the same folds (the generator gives every class the
    # same background: it should find nothing)
    confound_body, confound, warning, t_confound = run_confound_check(
        args, images, y, groups=None, paths=None, comparison=comparison)

    command = command_line(args)
    images_dir = (out / "images").resolve()
    generated = (f"({args.n} images, {args.classes} classes, {args.size}x{args.size} "
                 f"pixels, seed {args.seed}): not patient data")
    synthetic = f"synthetic smear images generated by leukfeat.datasets.make_cells {generated}"
    # report
    report_path, t_report = None, 0.0
    if not args.no_report:
        report_path, t_report = write_cv_report(
            args, comparison, out / "report", X=X, y=y, feature_names=names, images=images,
            segmentations=segs, confound=confound, command=command,
            data=f"**synthetic** smear images generated by `leukfeat.datasets.make_cells` "
                 f"{generated}; saved in {md_code(images_dir)}")
    elapsed = time.perf_counter() - t_start
    write_json(out / "results.json", {
        "command": command,
        "working_directory": os.getcwd(),
        "data": {"synthetic": True, "description": synthetic,
                 "generator": "leukfeat.datasets.make_cells", "n_images": args.n,
                 "classes": list(data.class_names), "size": args.size, "seed": args.seed,
                 "path": str(images_dir)},
        "segmentation": {"method": args.method,
                         "mean_cell_iou": float(seg_table.cell_iou.mean()),
                         "mean_nucleus_iou": float(seg_table.nucleus_iou.mean())},
        "features": {"n_features": len(names), "n_failed": len(failures),
                     "n_no_cell": len(no_cell), "seconds": t_features},
        "confound_check": confound_body,
        "warnings": [warning] if warning else [],
        "skipped": skipped,
        "seconds": {"features": t_features, "cross_validation": t_cv,
                    "confound_check": t_confound, "report": t_report, "total": elapsed},
        **comparison_json(comparison)})

    print(f"leukfeat demo: {args.n} synthetic smear images (make_cells, {args.classes} "
          f"classes, {args.size}x{args.size}, seed {args.seed}), method {args.method}")
    print(f"segmentation: mean cell IoU {seg_table.cell_iou.mean():.3f}, mean nucleus IoU "
          f"{seg_table.nucleus_iou.mean():.3f} against the generator's ground truth "
          f"(per image in segmentation.csv)")
    print(f"features: {X.shape[1]} per image in {t_features:.1f} s"
          + (f"; {len(failures) + len(no_cell)} images without a measurable cell"
             if failures or no_cell else ""))
    print()
    print_summary(comparison, confound, confound_body, warning)
    print()
    for note in skipped:
        print(f"note: {note}")
    if report_path is not None:
        print(f"report: {Path(report_path).resolve()}")
    print(f"images, overlays, contact sheet and results.json in {out.resolve()}")
    print(f"done in {elapsed:.1f} s (try: leukfeat evaluate {out / 'images'} "
          f"--classifier all)")
    return 0
