"""``leukfeat extract``: a feature table, one row per image or per white cell."""

from __future__ import annotations

import errno
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._features import (error_column, extract_matrix, extractor_failures, failed_items,
                        failures_listed, make_extractor)
from ._inputs import check_loader, collect_images, data_summary, listing_warnings, load_labelled
from ._output import (CommandError, check_parquet, fail_if_all_failed, out_table,
                      report_failures, report_no_cell, say, utf8_text, want_progress,
                      write_table)
from ._stain import normalise_items, stain_from_args

if TYPE_CHECKING:
    import argparse


def _extract_inputs(args: argparse.Namespace) -> tuple[list[str], Any, Any, dict[str, Any] | None]:
    """(paths, labels or None, groups or None, data info or None) for ``extract``."""
    from .. import datasets

    inputs = args.inputs
    single_dir = len(inputs) == 1 and Path(inputs[0]).is_dir()
    if args.loader is not None:
        check_loader(args.loader)
        if not single_dir:
            if len(inputs) == 1 and not Path(inputs[0]).exists():
                raise FileNotFoundError(errno.ENOENT, "ROOT: no such data-set folder",
                                        inputs[0])
            raise CommandError("--loader: expects a single data-set folder (ROOT), got "
                               f"{len(inputs)} input(s): {', '.join(inputs[:3])}")
        data, _ = load_labelled(inputs[0], args.loader)
        return list(map(str, data.paths)), data.labels, data.groups, \
            data_summary(data, args.loader, None)
    if single_dir:
        layout_error = getattr(datasets, "DatasetLayoutError", None)
        try:
            data, _ = load_labelled(inputs[0], "folder")
        except Exception as exc:
            if layout_error is None or not isinstance(exc, layout_error):
                raise
            say(args, f"{inputs[0]} is not a folder-per-class data set (fewer than two "
                        "class sub-folders with images): extracting its images without "
                        "labels")
        else:
            return list(map(str, data.paths)), data.labels, data.groups, \
                data_summary(data, "folder", None)
    return collect_images(inputs), None, None, None


def cmd_extract(args: argparse.Namespace) -> int:
    import pandas as pd

    streamed = Path(args.out).suffix.lower() == ".parquet"
    if streamed:
        out = Path(args.out)
        check_parquet()
    else:
        if args.scheduler is not None:
            raise CommandError("--scheduler: needs a Parquet output (--out DIR.parquet), "
                               "written part by part as the cluster finishes chunks")
        out = out_table(args.out, "--out", args.overwrite)
    if args.per_cell and args.cell is not None:
        raise CommandError("--cell: not allowed with --per-cell (every cell gets a row)")
    paths, labels, groups, _ = _extract_inputs(args)
    stain = stain_from_args(args)
    items: list[Any]
    if args.masks is None:
        items = paths
    else:
        from ..io import match_masks

        with listing_warnings():
            items = match_masks(paths, args.masks, name="--masks")
    if stain is not None:
        say(args, f"normalising every image to a fixed {args.stain} target ...")
        images, _ = normalise_items(args, paths, stain, want_progress(args))
        items = images if args.masks is None else [(im, mask) for im, (_, mask)
                                                    in zip(images, items)]
    progress = want_progress(args)
    t0 = time.perf_counter()
    say(args, f"extracting features of {len(paths)} images ...")
    if streamed:
        return _extract_streamed(args, out, items, paths, labels, groups, progress, t0)
    head = {"path": [utf8_text(p) for p in paths]}
    if labels is not None:
        head["label"] = [str(v) for v in labels]
    if groups is not None:
        head["group"] = [str(v) for v in groups]
    if not args.per_cell:
        X, names, failures, no_cell = extract_matrix(
            make_extractor(args, len(paths), progress=progress), items)
        error = error_column(len(paths), failures, no_cell)
        table = pd.concat([pd.DataFrame(head).assign(error=error),
                           pd.DataFrame(X, columns=names)], axis=1)
        n_rows = len(paths)
    else:
        from ..transformers import CELL_COLUMNS

        fx = make_extractor(args, len(paths), progress=progress).fit(items)
        with failures_listed():
            cells = fx.transform_cells(items)
        names = [str(n) for n in fx.get_feature_names_out()]
        failures = extractor_failures(fx)
        owner = cells.pop("item").to_numpy()
        no_cell = sorted({int(i) for i in owner[cells["cell_label"].isna().to_numpy()]}
                         - set(failures))
        error = error_column(len(paths), failures, no_cell)   # per image
        heads = pd.DataFrame({k: [v[i] for i in owner] for k, v in head.items()})
        rows = cells[list(CELL_COLUMNS)].assign(error=[error[i] for i in owner])
        table = pd.concat([heads, rows, cells[names]], axis=1)
        n_rows = len(table)
    failed = failed_items(paths, failures)
    write_table(table, out)
    return _report(args, out, failed, no_cell, len(paths), n_rows, len(names), t0)


def _report(args: argparse.Namespace, out: Path, failed: list[Any], no_cell: list[Any],
            n_images: int, n_rows: int, n_features: int, t0: float, how: str = "") -> int:
    """The failures and images without a cell on stderr (exit 2 when every
    image failed), then the one-line summary of the written table."""
    elapsed = time.perf_counter() - t0
    report_failures("images could not be read or measured (NaN rows kept, see the "
                    "error column)", failed, n_images, out)
    fail_if_all_failed(failed, n_images, out)
    report_no_cell(no_cell, n_images, "NaN rows kept, see the error column")
    unit = "cell rows" if args.per_cell else "rows"
    print(f"wrote {out}: {n_rows} {unit} x {n_features} features{how} ({n_images} images, "
          f"{len(failed)} failed, {len(no_cell)} without a white cell) in {elapsed:.1f} s")
    return 0


def _extract_streamed(args: argparse.Namespace, out: Path, items: Any, paths: list[str],
                      labels: Any, groups: Any, progress: bool, t0: float) -> int:
    """``--out DIR.parquet``: one part per chunk (leukfeat.stream), resumable,
    optionally on a Dask cluster (``--scheduler``)."""
    from ..stream import NO_CELL, FeatureTableError, extract_to_parquet, read_parquet

    columns = {"path": [utf8_text(p) for p in paths]}
    if labels is not None:
        columns["label"] = [str(v) for v in labels]
    if groups is not None:
        columns["group"] = [str(v) for v in groups]
    client = None
    if args.scheduler is not None:
        from ..dask import connect

        try:
            client = connect(args.scheduler)
        except (ImportError, OSError) as exc:
            raise CommandError(f"--scheduler: {exc}") from None
        say(args, f"running chunks of {args.chunk_size} images on the Dask cluster at "
                  f"{args.scheduler} ...")
    fx = make_extractor(args, len(paths), progress=False)
    try:
        with failures_listed():
            extract_to_parquet(items, out, extractor=fx, chunk_size=args.chunk_size,
                               per_cell=args.per_cell, item_columns=columns,
                               overwrite=args.overwrite, progress=progress, client=client)
    except FeatureTableError as exc:
        raise CommandError(f"--out: {exc}") from None
    finally:
        if client is not None:
            client.close()
    table = read_parquet(out, columns=["path", "error"])
    first = ~table.index.duplicated()            # per-cell: one row per image is enough
    per_image = table[first]
    errors = per_image["error"].astype(object).where(per_image["error"].notna(), None)
    failed = [(p, e) for p, e in zip(per_image["path"], errors) if e and e != NO_CELL]
    no_cell = [i for i, e in enumerate(errors) if e == NO_CELL]
    n_features = fx.fit(items[:1]).n_features_out_
    return _report(args, out, failed, no_cell, len(paths), len(table), n_features, t0,
                   f" in parts of {args.chunk_size} images")
