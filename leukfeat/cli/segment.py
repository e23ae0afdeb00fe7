"""``leukfeat segment``: masks, overlays and label images of image files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..segment import SAVED_FILES as SEGMENT_FILES  # the files written per image
from ._features import n_jobs_for, segmenter_of
from ._inputs import collect_images
from ._output import (CommandError, fail_if_all_failed, report_failures, say, utf8_text,
                      want_progress, write_table)

if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

    from .._typing import StrPath


class _SegmentTask:
    """Picklable per-image work of ``segment``: read, segment, save the masks,
    the overlay and the label images (:meth:`Segmentation.save`), summarise."""

    def __init__(self, out_dir: StrPath, method: str | Callable[..., Any]) -> None:
        self.out_dir = str(out_dir)
        self.method = method

    def __call__(self, item: tuple[StrPath, str]) -> dict[str, Any]:
        from .. import io, segment

        path, stem = item
        image = io.read_image(path)
        seg = segment.segment(image, self.method)
        files = seg.save(self.out_dir, stem, image)
        areas = seg.areas()
        cell_area = int(seg.mask.sum())
        nucleus_area = int(seg.nucleus.sum())
        return {"n_cells": int(seg.n_cells), "cell_area": cell_area,
                "nucleus_area": nucleus_area,
                "largest_cell_area": int(areas.max()) if areas.size else 0,
                "nucleus_fraction": nucleus_area / cell_area if cell_area else float("nan"),
                "height": int(image.shape[0]), "width": int(image.shape[1]),
                **{key: file.name for key, file in files.items()}}


def unique_stems(paths: Sequence[StrPath]) -> list[str]:
    """Output name stems: the file stem, made unique with parent folders, then a counter."""
    from collections import Counter

    stems = [Path(p).stem for p in paths]
    counts = Counter(stems)
    out = []
    for p, s in zip(paths, stems):
        if counts[s] > 1 and Path(p).parent.name:
            s = f"{Path(p).parent.name}_{s}"
        out.append(s)
    counts = Counter(out)
    used: dict[str, int] = {}
    final = []
    for s in out:
        if counts[s] > 1:
            used[s] = used.get(s, 0) + 1
            s = f"{s}_{used[s]}"
        final.append(s)
    return final


def cmd_segment(args: argparse.Namespace) -> int:
    import pandas as pd

    from .._batch import map_items

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CommandError(f"--out: {out} exists and is not a folder")
    paths = collect_images(args.inputs)
    # never segment our own outputs (--out inside an input folder, run twice)
    out_abs = Path(os.path.realpath(out))
    ours = [p for p in paths if out_abs in Path(os.path.realpath(p)).parents]
    if ours:
        paths = [p for p in paths if p not in set(ours)]
        say(args, f"skipping {len(ours)} image(s) inside the output folder {out}")
        if not paths:
            raise CommandError(f"INPUT: every image found is inside the output folder {out}")
    stems = unique_stems(paths)
    if not args.overwrite:
        earlier = [out / name for name in ["segmentation.csv"] + [
            f"{stem}{suffix}" for stem in stems for suffix in SEGMENT_FILES.values()]]
        earlier = [p for p in earlier if p.exists()]
        if earlier:
            raise CommandError(f"--out: {out} already holds {len(earlier)} of the files this "
                               f"run writes (e.g. {earlier[0].name}); pass --overwrite to "
                               "replace them")
    out.mkdir(parents=True, exist_ok=True)
    segmenter, label = segmenter_of(args)
    say(args, f"segmenting {len(paths)} images ({label}) into {out} ...")
    results, failures = map_items(_SegmentTask(out, segmenter), list(zip(paths, stems)),
                             n_jobs=n_jobs_for(args, len(paths)), progress=want_progress(args),
                             desc="segment",
                             on_error="collect")
    errors = {f.index: f"{f.error_type}: {f.message}" for f in failures}
    rows = []
    for i, (path, stem, res) in enumerate(zip(paths, stems, results)):
        row = {"path": utf8_text(path), "stem": utf8_text(stem)}
        if res is None:
            row["error"] = utf8_text(errors.get(i, "failed"))
        else:
            row.update({k: utf8_text(v) for k, v in res.items()})
            row["error"] = None
        rows.append(row)
    columns = ["path", "stem", "n_cells", "cell_area", "nucleus_area", "largest_cell_area",
               "nucleus_fraction", "height", "width", *SEGMENT_FILES, "error"]
    table = pd.DataFrame(rows).reindex(columns=columns)
    for col in ("n_cells", "cell_area", "nucleus_area", "largest_cell_area", "height", "width"):
        table[col] = table[col].astype("Int64")
    summary = out / "segmentation.csv"
    write_table(table, summary)
    failed = [(paths[i], errors[i]) for i in sorted(errors)]
    report_failures("images could not be segmented", failed, len(paths), summary)
    fail_if_all_failed(failed, len(paths), summary)
    ok = table[table.error.isna()]
    print(f"segmented {len(ok)} of {len(paths)} images ({label}): "
          f"{int(ok.n_cells.sum())} white cells, {int((ok.n_cells == 0).sum())} images "
          f"without one; {len(errors)} failed")
    print(f"masks, nuclei and overlays in {out.resolve()}; summary {summary}")
    return 0
