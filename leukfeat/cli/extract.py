"""``leukfeat extract``: a feature table, one row per image or per white cell."""

from __future__ import annotations

import errno
import sys
import time
import warnings
from pathlib import Path

from ._features import NO_CELL, _extract_matrix, _extractor
from ._inputs import _check_loader, _collect_images, _data_info, _load_labelled, _with_masks
from ._output import (CommandError, _check_parquet, _fail_if_all_failed, _info, _out_file,
                      _progress, _report_failures, _utf8_text, _write_table)


def _extract_inputs(args):
    """(paths, labels or None, groups or None, data info or None) for ``extract``."""
    from .. import datasets

    inputs = args.inputs
    single_dir = len(inputs) == 1 and Path(inputs[0]).is_dir()
    if args.loader is not None:
        _check_loader(args.loader)
        if not single_dir:
            if len(inputs) == 1 and not Path(inputs[0]).exists():
                raise FileNotFoundError(errno.ENOENT, "ROOT: no such data-set folder",
                                        inputs[0])
            raise CommandError("--loader: expects a single data-set folder (ROOT), got "
                               f"{len(inputs)} input(s): {', '.join(inputs[:3])}")
        data, _ = _load_labelled(inputs[0], args.loader)
        return list(map(str, data.paths)), data.labels, data.groups, \
            _data_info(data, args.loader, None)
    if single_dir:
        layout_error = getattr(datasets, "DatasetLayoutError", None)
        try:
            data, _ = _load_labelled(inputs[0], "folder")
        except Exception as exc:
            if layout_error is None or not isinstance(exc, layout_error):
                raise
            _info(args, f"{inputs[0]} is not a folder-per-class data set (fewer than two "
                        "class sub-folders with images): extracting its images without "
                        "labels")
        else:
            return list(map(str, data.paths)), data.labels, data.groups, \
                _data_info(data, "folder", None)
    return _collect_images(inputs), None, None, None


def _cmd_extract(args) -> int:
    import pandas as pd

    out = _out_file(args.out, (".csv", ".parquet"), "--out", args.overwrite)
    if out.suffix.lower() == ".parquet":
        _check_parquet()
    if args.per_cell and args.cell is not None:
        raise CommandError("--cell: not allowed with --per-cell (every cell gets a row)")
    paths, labels, groups, _ = _extract_inputs(args)
    items = paths if args.masks is None else _with_masks(paths, args.masks)
    progress = _progress(args)
    t0 = time.perf_counter()
    _info(args, f"extracting features of {len(paths)} images ...")
    head = {"path": [_utf8_text(p) for p in paths]}
    if labels is not None:
        head["label"] = [str(v) for v in labels]
    if groups is not None:
        head["group"] = [str(v) for v in groups]
    if not args.per_cell:
        X, names, failures, no_cell = _extract_matrix(
            _extractor(args, len(paths), progress=progress), items)
        error = [None] * len(paths)
        for i, msg in failures.items():
            error[i] = _utf8_text(msg)
        for i in no_cell:
            error[i] = NO_CELL
        table = pd.concat([pd.DataFrame(head).assign(error=error),
                           pd.DataFrame(X, columns=names)], axis=1)
        n_rows = len(paths)
        failed = [(paths[i], failures[i]) for i in sorted(failures)]
    else:
        from ..transformers import CELL_COLUMNS

        fx = _extractor(args, len(paths), progress=progress).fit(items)
        with warnings.catch_warnings():   # failures are listed by the command, every path
            warnings.filterwarnings("ignore", message=r".*images failed and gave NaN rows",
                                    category=UserWarning)
            cells = fx.transform_cells(items)
        names = [str(n) for n in fx.get_feature_names_out()]
        fail_msg = {e["index"]: f"{e['error_type']}: {e['message']}" for e in fx.errors_}
        owner = cells.pop("item").to_numpy()
        no_cell = sorted({int(i) for i in owner[cells["cell_label"].isna().to_numpy()]}
                         - set(fail_msg))
        error = [_utf8_text(fail_msg[i]) if i in fail_msg else
                 (NO_CELL if i in no_cell else None) for i in owner]
        heads = pd.DataFrame({k: [v[i] for i in owner] for k, v in head.items()})
        table = pd.concat([heads, cells[list(CELL_COLUMNS)].assign(error=error),
                           cells[names]], axis=1)
        n_rows = len(table)
        failed = [(paths[i], fail_msg[i]) for i in sorted(fail_msg)]
    _write_table(table, out)
    elapsed = time.perf_counter() - t0
    _report_failures("images could not be read or measured (NaN rows kept, see the "
                     "error column)", failed, len(paths), out)
    _fail_if_all_failed(failed, len(paths), out)
    if no_cell:
        print(f"leukfeat: {len(no_cell)} of {len(paths)} images have no white cell "
              "(NaN rows kept, see the error column)", file=sys.stderr)
    unit = "cell rows" if args.per_cell else "rows"
    print(f"wrote {out}: {n_rows} {unit} x {len(names)} features "
          f"({len(paths)} images, {len(failed)} failed, {len(no_cell)} without a white cell) "
          f"in {elapsed:.1f} s")
    return 0
