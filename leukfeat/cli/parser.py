"""The ``leukfeat`` command line (console script ``leukfeat``, also ``python -m leukfeat``).

Commands
--------
demo
    The main job on built-in synthetic data: generate
    :func:`leukfeat.datasets.make_cells` images, segment them (IoU against
    the known ground truth), extract features, cross-validate KNN, SVM,
    random forest and XGBoost on the same folds, run the confound check,
    write a report (Markdown + PNGs; it says the images are synthetic) and
    print the summary table.
segment
    Masks and overlay PNGs of image files or folders, and a summary CSV.
extract
    A feature table (CSV or Parquet): one row per image, or per cell.
train / predict
    Fit a pipeline (features + classifier) on a labelled data set and save it
    as a skops model file; predict labels and class probabilities of images.
evaluate
    Duplicate- and patient-aware cross-validation of one or more classifiers
    on a labelled data set (:mod:`leukfeat.evaluate`): JSON, summary table and
    an optional report with figures. Honest by default: a background-only
    classifier (:func:`leukfeat.evaluate.confound_check`) runs on the same
    folds and is reported beside the models, with a one-line warning when it
    rivals them (``--no-confound-check`` skips it); ``--stain`` normalises
    every image to a fixed target; every report records the data path and
    the command line.

Conventions
-----------
* Expected errors (a missing path, an empty folder, an unknown loader, a data
  set that does not match its layout, an unreadable or untrusted model file,
  a bad option) print one line ``leukfeat: error: ...`` on stderr and exit
  with status 2; unexpected errors (bugs) keep their traceback.
* Images that cannot be read or measured never stop a batch and are never
  silently dropped: they are listed on stderr, counted, and kept in the
  output with an ``error`` column (NaN features / no prediction). A run in
  which every image failed exits with status 2 after writing that table.
  The whole policy and the exit codes: ``docs/errors.rst``.
* Progress bars (tqdm) go to stderr; they are off with ``--quiet`` or when
  stderr is not a terminal. Results (tables, summaries) go to stdout.
* Feature extraction runs once per command, in ``--n-jobs`` processes;
  ``evaluate`` cross-validates the classifiers on that feature matrix (the
  extractor learns nothing from the training folds, so this equals
  cross-validating the whole image pipeline).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import math
import os
import sys
import time
import warnings
from pathlib import Path

from .. import extract as _extract
from .. import segment as _segment

__all__ = ["main", "build_parser"]

#: Classifier presets (:data:`leukfeat.models.CLASSIFIERS`, repeated here so
#: that option errors do not wait for scikit-learn to import; a test keeps
#: them equal).
CLASSIFIERS = ("knn", "svm", "rf", "xgboost", "logreg")
#: What ``--classifier all`` evaluates (the models of the accuracy benchmark).
ALL_CLASSIFIERS = ("knn", "svm", "rf", "xgboost")
#: Models shown in ``demo``.
DEMO_CLASSIFIERS = ("knn", "svm", "rf", "xgboost")
#: Feature groups, cell choices and segmenters: the library's own tuples
#: (importing the command line imports leukfeat, and with it these modules).
FEATURE_GROUPS = _extract.GROUPS
DEFAULT_FEATURE_GROUPS = _extract.DEFAULT_GROUPS
CELLS = _extract.CELLS
METHODS = tuple(_segment.METHODS)
DEFAULT_METHOD = _segment.DEFAULT_METHOD
_MAX_LISTED = 20  # failures listed on stderr


class CommandError(ValueError):
    """An expected error of the command line (reported in one line, exit 2)."""


# --------------------------------------------------------------------------- #
# output helpers
# --------------------------------------------------------------------------- #

def _progress(args) -> bool:
    """Progress bars: on unless --quiet or stderr is not a terminal."""
    if getattr(args, "quiet", False):
        return False
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _info(args, message: str) -> None:
    """A status line on stderr (silenced by --quiet)."""
    if not getattr(args, "quiet", False):
        print(message, file=sys.stderr, flush=True)


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def _format_error(exc: BaseException) -> str:
    from ..io import ImageReadError

    if (isinstance(exc, OSError) and not isinstance(exc, ImageReadError)
            and exc.strerror and exc.filename):
        text = f"{exc.strerror}: {os.fsdecode(exc.filename)}"
    elif isinstance(exc, ImportError) and exc.name and not str(exc):
        text = f"missing module {exc.name!r}"
    else:
        text = str(exc) or type(exc).__name__
    return _one_line(text)


def _report_failures(what: str, failures: list, total: int, out=None) -> None:
    """List failed items on stderr (always, even with --quiet): never silent."""
    if not failures:
        return
    lines = [f"leukfeat: {len(failures)} of {total} {what}:"]
    for path, message in failures[:_MAX_LISTED]:
        lines.append(f"  {path}: {_one_line(message)}")
    if len(failures) > _MAX_LISTED:
        more = f" (all listed in {out})" if out else ""
        lines.append(f"  ... and {len(failures) - _MAX_LISTED} more{more}")
    print("\n".join(lines), file=sys.stderr, flush=True)


def _fail_if_all_failed(failed: list, total: int, out) -> None:
    """Exit 2 (after the table of error rows is written) when no image could
    be read or measured: nothing was computed, so the command failed."""
    if failed and len(failed) == total:
        raise CommandError(f"all {total} images failed (listed in {out}); first: "
                           f"{_utf8_text(failed[0][0])}: {_one_line(failed[0][1])}")


def _jsonable(obj):
    """Plain JSON values (NaN/inf -> None), as in :mod:`leukfeat.evaluate`."""
    from ..evaluate import _jsonable as to_json

    return to_json(obj)


def _write_json(path, data) -> Path:
    from .._atomic import atomic_path

    text = json.dumps(_jsonable(data), indent=2, allow_nan=False) + "\n"
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def _out_file(path, suffixes, option: str, overwrite: bool = False) -> Path:
    """Check an output file name's suffix, refuse to replace an existing file
    unless ``overwrite``, and create its folder."""
    path = Path(path)
    if path.suffix.lower() not in suffixes:
        raise CommandError(f"{option}: expected a file name ending in "
                           f"{' or '.join(suffixes)}, got {str(path)!r}")
    if path.exists() and path.is_dir():
        raise CommandError(f"{option}: {path} is a folder, expected a file name")
    if path.exists() and not overwrite:
        raise CommandError(f"{option}: {path} exists; pass --overwrite to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _check_parquet() -> None:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise CommandError("writing Parquet needs pyarrow: pip install 'leukfeat[parquet]' "
                           "(or write a .csv file)") from None


def _utf8_text(value):
    """``value``, or for a string that is not valid UTF-8 (a file name's
    undecodable bytes, which Python keeps as surrogates) the same text with
    those bytes as ``\\xNN`` escapes, so that every table can be written."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return os.fsencode(value).decode("utf-8", "backslashreplace")
    return value


def _write_table(df, path: Path) -> None:
    """Write a table as Parquet or CSV (by the suffix of ``path``), whole or
    not at all (a temporary file renamed when complete)."""
    from .._atomic import atomic_path

    parquet = path.suffix.lower() == ".parquet"
    if parquet:
        _check_parquet()
    with atomic_path(path) as tmp:
        if parquet:
            df.to_parquet(tmp, index=False)
        else:
            df.to_csv(tmp, index=False)


def _use_agg() -> None:
    import matplotlib

    matplotlib.use("Agg")


# --------------------------------------------------------------------------- #
# inputs
# --------------------------------------------------------------------------- #

@contextlib.contextmanager
def _listing_warnings():
    """Print what was skipped while listing folders (each message once, on
    stderr, whatever --quiet says): never silent."""
    from ..io import ListingWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ListingWarning)
        yield
    for text in dict.fromkeys(_one_line(w.message) for w in caught):
        print(f"leukfeat: warning: {text}", file=sys.stderr)


def _collect_images(inputs, option: str = "INPUT") -> list:
    """Image files given directly or found (recursively) in folders, in order, once each.

    A path given directly that is a dangling or looping symbolic link, a FIFO
    or a device is kept as an item (reading it reports why it failed, in its
    row); a path that does not exist at all is an error of the command.
    """
    from ..io import IMAGE_EXTENSIONS, list_images

    paths, seen = [], set()
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            with _listing_warnings():
                found = list_images(p)
            if not found:
                raise CommandError(f"{option}: no image files "
                                   f"({', '.join(sorted(IMAGE_EXTENSIONS))}) in folder {p}")
        elif os.path.lexists(p):
            found = [p]
        else:
            raise FileNotFoundError(errno.ENOENT, f"{option}: no such file or folder", str(p))
        for f in found:
            key = os.path.realpath(f)
            if key not in seen:
                seen.add(key)
                paths.append(str(f))
    return paths


def _loader_names() -> tuple:
    from .. import datasets

    return tuple(datasets.LOADERS)


def _check_loader(name) -> str:
    """The loader name, normalised as load_dataset does; an error if unknown."""
    names = _loader_names()
    key = str(name).strip().casefold()
    if key not in names:
        raise CommandError(f"--loader: unknown loader {name!r}; expected one of "
                           f"{', '.join(names)}")
    return key


def _load_labelled(root, loader: str, *, limit=None, seed=0):
    """A LabelledImages data set (optionally a stratified subset).

    Loader warnings (e.g. ignored files) are printed as one line each on
    stderr, whatever --quiet says.
    """
    from .. import datasets

    loader = _check_loader(loader)
    root_path = Path(root)
    if not root_path.exists():
        raise FileNotFoundError(errno.ENOENT, "ROOT: no such data-set folder", str(root))
    if not root_path.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "ROOT: not a folder", str(root))
    with _listing_warnings():
        data = datasets.load_dataset(root, loader=loader)
    if len(data) == 0:
        raise CommandError(f"ROOT: the {loader} loader found no images in {root}")
    n_total = len(data)
    if limit is not None and limit < len(data):
        data = data.stratified_subset(limit, random_state=seed)
    return data, n_total


def _class_counts(labels) -> dict:
    import numpy as np

    names, counts = np.unique(np.asarray(labels).astype(str), return_counts=True)
    return {str(n): int(c) for n, c in zip(names, counts)}


def _data_info(data, loader, limit, n_total=None) -> dict:
    return {"root": str(getattr(data, "root", "")), "loader": loader,
            "name": getattr(data, "name", loader), "n_images": len(data),
            "limit": limit, "n_images_in_data_set": len(data) if n_total is None else n_total,
            "class_counts": _class_counts(data.labels),
            "patient_groups": None if data.groups is None
            else int(len(set(map(str, data.groups))))}


def _int_arg(valid, expected: str):
    """An argparse ``type`` parsing an integer accepted by ``valid``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not valid(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {value}")
        return value
    return parse


_positive_int = _int_arg(lambda v: v >= 1, "a positive integer")
_folds = _int_arg(lambda v: v >= 2, "an integer >= 2")
_n_jobs = _int_arg(lambda v: v != 0, "a non-zero integer (-1: all CPUs)")


def _max_pixels(text: str) -> str:
    """--max-pixels: a positive integer or 'none' (kept as text for the environment)."""
    if text.strip().casefold() == "none":
        return "none"
    return str(_positive_int(text))


def _classifier_names(text: str) -> list:
    """Preset names from NAME, 'all' or a comma-separated list (no heavy import)."""
    names = []
    for part in str(text).split(","):
        part = part.strip().lower()
        if not part:
            continue
        if part == "all":
            names.extend(ALL_CLASSIFIERS)
        elif part in CLASSIFIERS:
            names.append(part)
        else:
            raise CommandError(f"--classifier: unknown classifier {part!r}; expected one of "
                               f"{', '.join(CLASSIFIERS)}, 'all' or a comma-separated list")
    names = list(dict.fromkeys(names))
    if not names:
        raise CommandError("--classifier: no classifier given")
    return names


# --------------------------------------------------------------------------- #
# feature extraction shared by extract / evaluate / demo
# --------------------------------------------------------------------------- #

#: With ``--n-jobs`` left at auto, per-image work runs in worker processes
#: only for batches of at least AUTO_MIN_IMAGES images, and cross-validation
#: folds only when images x models x folds reaches AUTO_MIN_CV_WORK: a worker
#: process must import leukfeat and scikit-learn (and load the compiled
#: texture kernels), 2-3 s, which small jobs never pay back (on 2 cores: 90
#: demo images take 1 s to extract in-process, 3.8 s with two workers; their
#: 4 models x 5 folds 5.7 s in-process, 4.4 s with two workers; one model x 5
#: folds on 200 Taleghani images 6.3 s in-process, 8.4 s with two workers).
AUTO_MIN_IMAGES = 400
AUTO_MIN_CV_WORK = 1500


def _jobs(args, n_items: int, minimum: int = AUTO_MIN_IMAGES) -> int:
    """--n-jobs, or for auto (None): all CPUs when n_items >= minimum, else 1."""
    if args.n_jobs is not None:
        return args.n_jobs
    return -1 if n_items >= minimum else 1


def _cv_jobs(args, n_images: int, n_models: int, cv: int) -> int:
    """--n-jobs for the cross-validation folds (auto: by images x models x folds)."""
    return _jobs(args, n_images * n_models * cv, AUTO_MIN_CV_WORK)


def _extractor(args, n_items, *, cell=None, progress=False):
    from ..transformers import FeatureExtractor

    return FeatureExtractor(segmenter=args.method, groups=tuple(args.groups),
                            cell=cell or args.cell or "largest",
                            n_jobs=_jobs(args, n_items),
                            on_error="nan", cache=getattr(args, "cache", None),
                            progress=progress)


def _extract_matrix(fx, items):
    """fit_transform with the NaN policy; returns (X, names, failures, no_cell)."""
    import numpy as np

    with warnings.catch_warnings():
        # failures are reported by the command itself, with every path
        warnings.filterwarnings("ignore", message=r".*images failed and gave NaN rows",
                                category=UserWarning)
        X = fx.fit_transform(items)
    names = [str(n) for n in fx.get_feature_names_out()]
    failures = {e["index"]: f"{e['error_type']}: {e['message']}" for e in fx.errors_}
    empty = np.isnan(X).all(axis=1)
    no_cell = [i for i in np.flatnonzero(empty) if i not in failures]
    return X, names, failures, no_cell


NO_CELL = "no white cell found (NaN features)"


#: names a mask of image <stem> may have in --masks DIR, in the order looked
#: for: label images first (leukfeat segment's, Cellpose's), then binary or
#: coded masks
_MASK_NAMES = ("{}_labels.tif", "{}_labels.png", "{}_cp_masks.png", "{}_cp_masks.tif",
               "{}_masks.png", "{}_masks.tif", "{}_mask.png", "{}_mask.tif", "{}.png",
               "{}.tif", "{}.tiff")


def _with_masks(paths, folder, option="--masks"):
    """(image, mask path) pairs, the mask found in `folder` by the image's
    stem; an image without one is paired with the first name looked for, so
    that it becomes an error row naming the missing mask."""
    folder = Path(folder)
    if not folder.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, f"{option}: not a folder", str(folder))
    items, missing = [], []
    for p in paths:
        stem = Path(p).stem
        found = None
        for pattern in _MASK_NAMES:
            cand = folder / pattern.format(stem)
            if cand.is_file() and not (os.path.exists(p) and os.path.samefile(cand, p)):
                found = cand
                break
        if found is None:
            missing.append(p)
            found = folder / _MASK_NAMES[0].format(stem)
        items.append((p, str(found)))
    if missing:
        print(f"leukfeat: warning: {option}: no mask in {folder} for {len(missing)} of "
              f"{len(paths)} images (looked for <stem>" + ", <stem>".join(
                  n[2:] for n in _MASK_NAMES) + f"); they get error rows, e.g. "
              f"{_utf8_text(missing[0])}", file=sys.stderr)
    return items


#: the files ``segment`` writes per image: column of segmentation.csv -> name suffix
SEGMENT_FILES = {"mask": "_mask.png", "nucleus": "_nucleus.png", "overlay": "_overlay.png",
                 "labels": "_labels.tif", "nucleus_labels": "_nucleus_labels.tif"}


class _SegmentTask:
    """Picklable per-image work of ``segment``: read, segment, write three PNGs
    (mask, nucleus, overlay) and two 16-bit label TIFFs (cells, nuclei)."""

    def __init__(self, out_dir, method):
        self.out_dir = str(out_dir)
        self.method = method

    def __call__(self, item):
        import cv2
        import numpy as np

        from .. import io, segment

        from .._atomic import atomic_path

        path, stem = item
        image = io.read_image(path)
        seg = segment.segment(image, self.method)
        out = Path(self.out_dir)
        files = {key: out / f"{stem}{suffix}" for key, suffix in SEGMENT_FILES.items()}
        if seg.n_cells > np.iinfo(np.uint16).max:  # pragma: no cover - 65535 cells
            raise ValueError(f"{seg.n_cells} cells do not fit a 16-bit label image")
        labels = seg.labels.astype(np.uint16)
        arrays = {"mask": seg.mask.astype(np.uint8) * 255,
                  "nucleus": seg.nucleus.astype(np.uint8) * 255,
                  "overlay": cv2.cvtColor(seg.overlay(image), cv2.COLOR_RGB2BGR),
                  "labels": labels,
                  "nucleus_labels": np.where(seg.nucleus, labels, 0).astype(np.uint16)}
        for key, file in files.items():
            # Deflate-compressed TIFF: small, and read by tifffile without
            # imagecodecs (OpenCV's default LZW is not), napari, QuPath, Fiji
            params = [cv2.IMWRITE_TIFF_COMPRESSION, 8] if file.suffix == ".tif" else []
            ok, buf = cv2.imencode(file.suffix, arrays[key], params)
            if not ok:  # pragma: no cover - encoding a uint8/uint16 array does not fail
                raise OSError(f"cannot encode {file}")
            with atomic_path(file) as tmp:
                tmp.write_bytes(buf.tobytes())
        areas = seg.areas()
        cell_area = int(seg.mask.sum())
        nucleus_area = int(seg.nucleus.sum())
        return {"n_cells": int(seg.n_cells), "cell_area": cell_area,
                "nucleus_area": nucleus_area,
                "largest_cell_area": int(areas.max()) if areas.size else 0,
                "nucleus_fraction": nucleus_area / cell_area if cell_area else float("nan"),
                "height": int(image.shape[0]), "width": int(image.shape[1]),
                **{key: file.name for key, file in files.items()}}


def _unique_stems(paths) -> list:
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
    used: dict = {}
    final = []
    for s in out:
        if counts[s] > 1:
            used[s] = used.get(s, 0) + 1
            s = f"{s}_{used[s]}"
        final.append(s)
    return final


# --------------------------------------------------------------------------- #
# cross-validation shared by evaluate / demo
# --------------------------------------------------------------------------- #

def _cross_validate(names, X, y, *, groups, cv, paths, seed, n_bootstrap, n_jobs, progress):
    """compare() the classifiers on the same folds; a progress bar over models.

    With a bar, each model is cross-validated in its own :func:`compare` call
    (same data and seed, hence the same folds and bootstrap resamples as one
    call) so that the bar can advance; without one, a single call.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    from ..evaluate import Comparison, compare
    from ..models import make_classifier

    def models(sub):
        return {n: make_classifier(n, random_state=seed) for n in sub}

    kwargs = dict(groups=groups, cv=cv, paths=paths, random_state=seed,
                  n_bootstrap=n_bootstrap, n_jobs=n_jobs, return_predictions=True)

    def run(sub):
        try:
            return compare(models(sub), X, y, **kwargs)
        except ValueError as exc:
            hint = ""
            if "n_splits" in str(exc) and "svm" in sub:
                hint = (" (the svm preset calibrates its probabilities on 5 inner folds: "
                        "every class needs at least 5 images in each training part)")
            raise CommandError(f"cross-validation of {', '.join(sub)} failed: "
                               f"{_one_line(exc)}{hint}") from exc

    if not progress:
        return run(names)
    tables, reports = [], {}
    with tqdm(total=len(names), desc="cross-validation", unit="model") as bar:
        for name in names:
            bar.set_postfix_str(f"{name}, {cv} folds")
            c = run([name])
            tables.append(c.table)
            reports.update(c.reports)
            bar.update(1)
    return Comparison(pd.concat(tables), reports)


def _cv_header(report) -> str:
    dup = ("" if report.n_duplicate_groups is None
           else f", {report.n_duplicate_groups} duplicate groups kept within folds")
    return (f"{report.cv}-fold {report.split} cross-validation, {report.n_images} images, "
            f"{len(report.classes)} classes ({', '.join(report.classes)}){dup}")


def _summary_text(comparison, confound=None) -> str:
    """The summary table (one model: its metrics; several: one row each, plus the
    background-only row of the confound check when it ran)."""
    reports = comparison.reports
    if len(reports) == 1:
        return next(iter(reports.values())).summary()
    first = next(iter(reports.values()))
    best = _best_model(comparison)
    table = comparison
    if confound is not None:
        from ..evaluate import Comparison

        table = Comparison.from_reports({**reports, BACKGROUND_ROW: confound.cv_report})
    return "\n".join([_cv_header(first), "", table.to_markdown(), "",
                      f"best balanced accuracy: {best} "
                      f"({reports[best].balanced_accuracy:.3f})"])


def _best_model(comparison) -> str:
    return max(comparison.reports,
               key=lambda k: (comparison.reports[k].balanced_accuracy,
                              comparison.reports[k].f1_macro))


_PREDICTION_FIELDS = ("y_true", "y_pred", "y_proba")


def _report_dict(report) -> dict:
    """CVReport.to_dict without the per-image predictions (see --predictions)."""
    return {k: v for k, v in report.to_dict().items() if k not in _PREDICTION_FIELDS}


def _comparison_json(comparison) -> dict:
    """JSON body: the report fields for one model; per-model dicts and a table for several."""
    reports = comparison.reports
    if len(reports) == 1:
        name, report = next(iter(reports.items()))
        return dict(model=name, **_report_dict(report))
    first = next(iter(reports.values()))
    table = comparison.table.reset_index()
    return {
        "models": {k: _report_dict(r) for k, r in reports.items()},
        "summary": table.to_dict(orient="records"),
        "summary_markdown": comparison.to_markdown(),
        "best_model": _best_model(comparison),
        "classes": list(first.classes), "n_images": first.n_images, "cv": first.cv,
        "split": first.split, "n_duplicate_groups": first.n_duplicate_groups,
        "n_groups": first.n_groups, "random_state": first.random_state,
    }


def _predictions_table(comparison, paths):
    """Out-of-fold predictions per image: path, label, fold, then per model."""
    import pandas as pd

    first = next(iter(comparison.reports.values()))
    table = pd.DataFrame({"path": [_utf8_text(str(p)) for p in paths],
                          "label": [str(v) for v in first.y_true],
                          "fold": first.fold_of_sample})
    for name, r in comparison.reports.items():
        table[f"{name}_prediction"] = [str(v) for v in r.y_pred]
        if r.y_proba is not None:
            for k, c in enumerate(r.classes):
                table[f"{name}_proba_{c}"] = r.y_proba[:, k]
    return table


def _importance_model(comparison, X, y, seed):
    """{name: model fitted on all data} for the feature-importance figure, or None.

    The best evaluated model with importances (xgboost, rf, logreg), refitted
    on every image; the figure describes that model, not the fold models.
    """
    from ..models import make_classifier

    candidates = [k for k in comparison.reports if k in ("xgboost", "rf", "logreg")]
    if not candidates:
        return None
    best = max(candidates, key=lambda k: (comparison.reports[k].balanced_accuracy,
                                          comparison.reports[k].f1_macro))
    return {f"{best} (fitted on all {len(y)} images)":
            make_classifier(best, random_state=seed).fit(X, y)}


def _write_cv_report(comparison, out_dir, *, X, y, feature_names, model, images,
                     segmentations, confound=None, provenance=None):
    _use_agg()
    from .. import plot

    result = (next(iter(comparison.reports.values())) if len(comparison.reports) == 1
              else comparison)
    return plot.cv_report(result, out_dir, X=X, y=y, feature_names=feature_names,
                          model=model, images=images, segmentations=segmentations,
                          confound=confound, provenance=provenance)


# --------------------------------------------------------------------------- #
# honest by default (evaluate / demo): provenance, stain, confound check
# --------------------------------------------------------------------------- #

def _command_line(args) -> str:
    """The command as given, quoted so that it can be pasted back into a shell."""
    import shlex

    return "leukfeat " + shlex.join(str(a) for a in getattr(args, "argv", None) or [])


def _md_code(text) -> str:
    """Inline Markdown code that survives backticks in ``text``."""
    text = str(text)
    return f"`` {text} ``" if "`" in text else f"`{text}`"


#: Fixed targets of ``--stain`` when no ``--stain-target`` is given: the
#: colour statistics of leukfeat's synthetic Wright-Giemsa smears
#: (``reinhard_stats`` / ``macenko_stains`` of ``make_cells(24, n_classes=3,
#: size=128, random_state=0)``), frozen here so that a change of the generator
#: never changes them. Every image is mapped to the target on its own: nothing
#: is learnt from the evaluated images, so no statistic crosses the folds.
REINHARD_TARGET = {"mean": (83.296509, 6.995175, 0.364563),
                   "std": (14.077922, 9.669895, 11.052252)}
MACENKO_TARGET = {"stain_matrix": ((0.514935, 0.478715), (0.816757, 0.549736),
                                   (0.260287, 0.684560)),
                  "max_concentrations": (1.309586, 0.516323)}
STAIN_METHODS = ("reinhard", "macenko")


def _stain_target(method: str, target_file):
    """(target, JSON description) of --stain METHOD [--stain-target FILE]."""
    from .. import preprocess
    from ..io import read_image

    if target_file is None:
        if method == "reinhard":
            target = preprocess.ReinhardTarget(**REINHARD_TARGET)
        else:
            target = preprocess.MacenkoTarget(**MACENKO_TARGET)
        source = ("built-in: leukfeat's synthetic Wright-Giemsa smears "
                  "(make_cells(24, n_classes=3, size=128, random_state=0))")
    else:
        try:
            image = read_image(target_file)
        except (OSError, ValueError) as exc:
            raise CommandError(f"--stain-target: {_format_error(exc)}") from None
        try:
            target = (preprocess.reinhard_stats(image) if method == "reinhard"
                      else preprocess.macenko_stains(image))
        except ValueError as exc:
            raise CommandError(f"--stain-target: {target_file}: {_one_line(exc)}") from None
        source = str(Path(target_file).resolve())
    if method == "reinhard":
        values = {"mean": target.mean.tolist(), "std": target.std.tolist()}
    else:
        values = {"stain_matrix": target.stain_matrix.tolist(),
                  "max_concentrations": target.max_concentrations.tolist()}
    return target, {"method": method, "target": source, "target_values": values,
                    "how": "each image is normalised on its own to this fixed target "
                           "(nothing is learnt from the evaluated images, so nothing "
                           "leaks across folds); the features and the confound check "
                           "see the normalised images"}


class _Normalise:
    """Read an image and map it to a fixed stain target (picklable).

    A file that cannot be read is passed on as its path: the feature
    extractor then fails on it and reports it like any unreadable file.
    """

    def __init__(self, method: str, target):
        self.method = method
        self.target = target

    def __call__(self, path):
        from .. import preprocess
        from ..io import read_image

        try:
            image = read_image(path)
        except (OSError, ValueError):
            return path
        if self.method == "reinhard":
            return preprocess.reinhard(image, self.target)
        return preprocess.macenko(image, self.target)


def _stain_normalised(args, paths, stain, progress):
    """(items, JSON description): the images of ``paths`` normalised to ``stain``,
    a ``(target, description)`` pair of :func:`_stain_target`.

    The normalised images are held in memory (about 150 kB per 224x224 image)
    and given to the extractor and the confound check as arrays.
    """
    from joblib import Parallel, delayed
    from tqdm.auto import tqdm

    target, info = stain
    info = dict(info)
    fn = _Normalise(info["method"], target)
    t0 = time.perf_counter()
    results = Parallel(n_jobs=_jobs(args, len(paths)), prefer="threads",
                       return_as="generator")(delayed(fn)(p) for p in paths)
    items = list(tqdm(results, total=len(paths), desc="stain normalisation", unit="image",
                      disable=not progress))
    info["seconds"] = time.perf_counter() - t0
    return items, info


#: Row name of the background-only classifier in the summary tables.
BACKGROUND_ROW = "background only (confound check)"
#: When the one-line warning is printed (ConfoundReport.rivals).
CONFOUND_WARNING_RULE = (
    "warn when the confound check flags the data set (background-only balanced accuracy "
    "> 1/K + 0.2, K classes) and the background gets at least 80 % of the way from chance "
    "to the best model's balanced accuracy on the same folds: "
    "bg - 1/K >= 0.8 * (model - 1/K)")


def _run_confound_check(args, items, y, *, groups, paths, comparison, n_jobs):
    """evaluate.confound_check on the models' folds.

    Returns (JSON dict, ConfoundReport or None, warning or None). A check
    that fails is reported on stderr and in the JSON; the evaluation stands.
    """
    import numpy as np

    from ..evaluate import RIVAL_SHARE, confound_check

    t0 = time.perf_counter()
    try:
        rep = confound_check(items, y, segmenter=args.method, cv=args.cv,
                             random_state=args.seed, n_jobs=n_jobs, groups=groups,
                             paths=paths, n_bootstrap=getattr(args, "bootstrap", 1000))
    except (ValueError, OSError) as exc:
        message = f"the confound check failed: {_format_error(exc)}"
        print(f"leukfeat: warning: {message}", file=sys.stderr)
        return {"error": message, "seconds": time.perf_counter() - t0}, None, None
    seconds = time.perf_counter() - t0
    reports = comparison.reports
    first = next(iter(reports.values()))
    best = _best_model(comparison)
    warning = rep.warning(reports[best].balanced_accuracy, model=best)
    bg = rep.cv_report
    body = {
        "what": "a random forest on 30 colour statistics of the pixels outside the "
                "(dilated) white cells (leukfeat.evaluate.confound_check); if the "
                "background alone predicts the class, the classes differ in acquisition",
        "segmenter": args.method,
        "accuracy": rep.accuracy, "balanced_accuracy": rep.balanced_accuracy,
        "f1_macro": bg.f1_macro, "ci": bg.ci,
        "fold_balanced_accuracy": bg.fold_balanced_accuracy,
        "chance": rep.chance, "margin": rep.margin,
        "flag_above": rep.chance["uniform"] + rep.margin,
        "confounded": rep.confounded, "message": rep.message,
        "same_folds": bool(np.array_equal(bg.fold_of_sample, first.fold_of_sample)),
        "compared_with": best,
        "rivals": {k: rep.rivals(r.balanced_accuracy) for k, r in reports.items()},
        "warning": warning, "warning_rule": CONFOUND_WARNING_RULE,
        "rival_share": RIVAL_SHARE,
        "cv_report": _report_dict(bg), "seconds": seconds,
    }
    return body, rep, warning


def _confound_line(confound, body) -> str:
    """One line of the confound check for the printed summary."""
    if confound is None:
        return ("background only (confound check): " + body["error"]
                if body and "error" in body else
                "background only (confound check): skipped (--no-confound-check)")
    ci = confound.cv_report.ci.get("balanced_accuracy")
    cit = "" if ci is None else f" (95% CI {ci[0]:.3f}-{ci[1]:.3f})"
    folds = "same folds" if body.get("same_folds") else "other folds"
    verdict = "CONFOUNDED" if confound.confounded else "no background confound detected"
    return (f"background only (confound check, {folds}): balanced accuracy "
            f"{confound.balanced_accuracy:.3f}{cit}; chance {confound.chance['uniform']:.3f}, "
            f"flagged above {confound.chance['uniform'] + confound.margin:.3f}: {verdict}")


def _print_summary(comparison, confound, confound_body, warning) -> None:
    """The summary on stdout, the confound check beside it, its warning on stderr."""
    print(_summary_text(comparison, confound))
    print(_confound_line(confound, confound_body))
    if warning:
        sys.stdout.flush()
        print(f"leukfeat: warning: {warning}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- #
# commands
# --------------------------------------------------------------------------- #

def _cmd_demo(args) -> int:
    import cv2
    import numpy as np
    import pandas as pd

    from .. import segment
    from ..datasets import make_cells

    t_start = time.perf_counter()
    progress = _progress(args)
    # every class needs a test image per fold and, for the svm preset's inner
    # 5-fold calibration, 5 images in every training part
    per_class = max(args.cv, math.ceil(5 * args.cv / (args.cv - 1)))
    if args.n < per_class * args.classes:
        raise CommandError(f"--n: {args.cv}-fold cross-validation of {args.classes} classes "
                           f"needs at least {per_class * args.classes} images, got {args.n}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    _info(args, f"generating {args.n} synthetic smear images ({args.classes} classes, "
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
    _write_table(seg_table, out / "segmentation.csv")
    cols = min(10, len(tiles))
    tiles += [np.zeros_like(tiles[0])] * (-len(tiles) % cols)
    sheet = np.vstack([np.hstack(tiles[i:i + cols]) for i in range(0, len(tiles), cols)])
    cv2.imwrite(str(out / "contact_sheet.png"), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))

    # features, once
    t0 = time.perf_counter()
    args.groups, args.cell = DEFAULT_FEATURE_GROUPS, "largest"
    X, names, failures, no_cell = _extract_matrix(
        _extractor(args, len(images), progress=progress), images)
    t_features = time.perf_counter() - t0

    # cross-validation of the classifiers on the same folds
    t0 = time.perf_counter()
    comparison = _cross_validate(list(DEMO_CLASSIFIERS), X, y, groups=None, cv=args.cv,
                                 paths=images, seed=args.seed, n_bootstrap=1000,
                                 n_jobs=_cv_jobs(args, len(images), len(DEMO_CLASSIFIERS),
                                                 args.cv),
                                 progress=progress)
    t_cv = time.perf_counter() - t0

    # the confound check, on the same folds (the generator gives every class the
    # same background: it should find nothing)
    confound_body, confound, warning, t_confound = None, None, None, 0.0
    if not args.no_confound_check:
        t0 = time.perf_counter()
        _info(args, "confound check: can the background alone predict the class? ...")
        confound_body, confound, warning = _run_confound_check(
            args, images, y, groups=None, paths=None, comparison=comparison,
            n_jobs=_jobs(args, len(images)))
        t_confound = time.perf_counter() - t0

    command = _command_line(args)
    images_dir = (out / "images").resolve()
    generated = (f"({args.n} images, {args.classes} classes, {args.size}x{args.size} "
                 f"pixels, seed {args.seed}): not patient data")
    synthetic = f"synthetic smear images generated by leukfeat.datasets.make_cells {generated}"
    # report
    report_path = None
    if not args.no_report:
        t0 = time.perf_counter()
        _info(args, "writing the report ...")
        model = _importance_model(comparison, X, y, args.seed)
        provenance = {
            "Data": f"**synthetic** smear images generated by "
                    f"`leukfeat.datasets.make_cells` {generated}; saved in "
                    f"{_md_code(images_dir)}",
            "Command": f"{_md_code(command)} (run in {_md_code(os.getcwd())})",
        }
        report_path = _write_cv_report(comparison, out / "report", X=X, y=y,
                                       feature_names=names, model=model, images=images,
                                       segmentations=segs, confound=confound,
                                       provenance=provenance)
        t_report = time.perf_counter() - t0
    else:
        t_report = 0.0
    elapsed = time.perf_counter() - t_start
    _write_json(out / "results.json", {
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
        "seconds": {"features": t_features, "cross_validation": t_cv,
                    "confound_check": t_confound, "report": t_report, "total": elapsed},
        **_comparison_json(comparison)})

    print(f"leukfeat demo: {args.n} synthetic smear images (make_cells, {args.classes} "
          f"classes, {args.size}x{args.size}, seed {args.seed}), method {args.method}")
    print(f"segmentation: mean cell IoU {seg_table.cell_iou.mean():.3f}, mean nucleus IoU "
          f"{seg_table.nucleus_iou.mean():.3f} against the generator's ground truth "
          f"(per image in segmentation.csv)")
    print(f"features: {X.shape[1]} per image in {t_features:.1f} s"
          + (f"; {len(failures) + len(no_cell)} images without a measurable cell"
             if failures or no_cell else ""))
    print()
    _print_summary(comparison, confound, confound_body, warning)
    print()
    if report_path is not None:
        print(f"report: {Path(report_path).resolve()}")
    print(f"images, overlays, contact sheet and results.json in {out.resolve()}")
    print(f"done in {elapsed:.1f} s (try: leukfeat evaluate {out / 'images'} "
          f"--classifier all)")
    return 0


def _cmd_segment(args) -> int:
    import pandas as pd

    from .._batch import _map

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CommandError(f"--out: {out} exists and is not a folder")
    paths = _collect_images(args.inputs)
    # never segment our own outputs (--out inside an input folder, run twice)
    out_abs = Path(os.path.realpath(out))
    ours = [p for p in paths if out_abs in Path(os.path.realpath(p)).parents]
    if ours:
        paths = [p for p in paths if p not in set(ours)]
        _info(args, f"skipping {len(ours)} image(s) inside the output folder {out}")
        if not paths:
            raise CommandError(f"INPUT: every image found is inside the output folder {out}")
    stems = _unique_stems(paths)
    if not args.overwrite:
        earlier = [out / name for name in ["segmentation.csv"] + [
            f"{stem}{suffix}" for stem in stems for suffix in SEGMENT_FILES.values()]]
        earlier = [p for p in earlier if p.exists()]
        if earlier:
            raise CommandError(f"--out: {out} already holds {len(earlier)} of the files this "
                               f"run writes (e.g. {earlier[0].name}); pass --overwrite to "
                               "replace them")
    out.mkdir(parents=True, exist_ok=True)
    _info(args, f"segmenting {len(paths)} images ({args.method}) into {out} ...")
    results, failures = _map(_SegmentTask(out, args.method), list(zip(paths, stems)),
                             n_jobs=_jobs(args, len(paths)), progress=_progress(args),
                             desc="segment",
                             on_error="collect")
    errors = {f.index: f"{f.error_type}: {f.message}" for f in failures}
    rows = []
    for i, (path, stem, res) in enumerate(zip(paths, stems, results)):
        row = {"path": _utf8_text(path), "stem": _utf8_text(stem)}
        if res is None:
            row["error"] = _utf8_text(errors.get(i, "failed"))
        else:
            row.update({k: _utf8_text(v) for k, v in res.items()})
            row["error"] = None
        rows.append(row)
    columns = ["path", "stem", "n_cells", "cell_area", "nucleus_area", "largest_cell_area",
               "nucleus_fraction", "height", "width", *SEGMENT_FILES, "error"]
    table = pd.DataFrame(rows).reindex(columns=columns)
    for col in ("n_cells", "cell_area", "nucleus_area", "largest_cell_area", "height", "width"):
        table[col] = table[col].astype("Int64")
    summary = out / "segmentation.csv"
    _write_table(table, summary)
    failed = [(paths[i], errors[i]) for i in sorted(errors)]
    _report_failures("images could not be segmented", failed, len(paths), summary)
    _fail_if_all_failed(failed, len(paths), summary)
    ok = table[table.error.isna()]
    print(f"segmented {len(ok)} of {len(paths)} images ({args.method}): "
          f"{int(ok.n_cells.sum())} white cells, {int((ok.n_cells == 0).sum())} images "
          f"without one; {len(errors)} failed")
    print(f"masks, nuclei and overlays in {out.resolve()}; summary {summary}")
    return 0


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
    failed = [(paths[i], failures[i]) for i in sorted(failures)]
    keep = np.asarray([i for i in range(len(paths)) if i not in failures], dtype=np.intp)
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


def _cmd_predict(args) -> int:
    out = _out_file(args.out, (".csv", ".parquet"), "--out", args.overwrite)
    if out.suffix.lower() == ".parquet":
        _check_parquet()
    model_path = Path(args.model)
    if not model_path.is_file():
        raise FileNotFoundError(errno.ENOENT, "MODEL: no such model file", str(model_path))
    paths = _collect_images(args.inputs)

    import numpy as np
    import pandas as pd
    from sklearn.pipeline import Pipeline

    from .. import persist
    from ..transformers import FeatureExtractor

    try:
        model = persist.load_model(model_path, trusted=args.trust or None)
    except persist.UntrustedModelError as exc:
        types = list(getattr(exc, "types", None) or [])
        hint = (" On the command line: " + " ".join(f"--trust {t}" for t in types)
                if types else "")
        raise CommandError(f"{_one_line(exc)}{hint}") from None
    if not isinstance(model, Pipeline) or not any(
            isinstance(s, FeatureExtractor) for _, s in model.steps[:-1]):
        raise CommandError(f"MODEL: {model_path} holds a {type(model).__name__}, not a "
                           "leukfeat image pipeline (save one with 'leukfeat train')")
    for _, step in model.steps[:-1]:
        if isinstance(step, FeatureExtractor):
            step.set_params(n_jobs=_jobs(args, len(paths)), progress=_progress(args),
                            on_error="nan", cache=args.cache)
            fx = step
    classifier = model.steps[-1][1]
    if not hasattr(classifier, "predict_proba"):
        raise CommandError(f"MODEL: the classifier of {model_path} has no predict_proba")
    _info(args, f"predicting {len(paths)} images with {model_path} ...")
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*images failed and gave NaN rows",
                                category=UserWarning)
        X = model[:-1].transform(paths)
    X = np.asarray(X, dtype=np.float64)
    proba = np.asarray(classifier.predict_proba(X), dtype=np.float64)
    classes = [str(c) for c in classifier.classes_]
    predicted = np.asarray([str(v) for v in classifier.predict(X)], dtype=object)
    failures = {e["index"]: f"{e['error_type']}: {e['message']}" for e in fx.errors_}
    no_cell = [i for i in np.flatnonzero(np.isnan(X).all(axis=1)) if i not in failures]
    error = [None] * len(paths)
    for i, msg in failures.items():
        error[i] = _utf8_text(msg)
    for i in no_cell:
        error[i] = "no white cell found: no prediction"
    bad = [i for i, e in enumerate(error) if e is not None]
    proba[bad] = np.nan
    predicted[bad] = None
    table = pd.DataFrame({"path": [_utf8_text(p) for p in paths], "prediction": predicted})
    for k, c in enumerate(classes):
        table[f"proba_{c}"] = proba[:, k]
    table["error"] = error
    _write_table(table, out)
    elapsed = time.perf_counter() - t0
    failed = [(paths[i], failures[i]) for i in sorted(failures)]
    _report_failures("images could not be read or measured (no prediction, see the "
                     "error column)", failed, len(paths), out)
    _fail_if_all_failed(failed, len(paths), out)
    if no_cell:
        print(f"leukfeat: {len(no_cell)} of {len(paths)} images have no white cell "
              "(no prediction)", file=sys.stderr)
    counts = table["prediction"].value_counts()
    print(f"predicted {len(paths) - len(bad)} of {len(paths)} images in {elapsed:.1f} s: "
          + ", ".join(f"{c} {int(counts.get(c, 0))}" for c in classes))
    print(f"wrote {out}")
    return 0


def _cmd_evaluate(args) -> int:
    import numpy as np

    from .. import __version__

    t_start = time.perf_counter()
    names = _classifier_names(args.classifier)
    json_path = (_out_file(args.json, (".json",), "--json", args.overwrite)
                 if args.json else None)
    pred_path = (_out_file(args.predictions, (".csv", ".parquet"), "--predictions",
                           args.overwrite)
                 if args.predictions else None)
    if pred_path is not None and pred_path.suffix.lower() == ".parquet":
        _check_parquet()
    if args.stain_target is not None and args.stain is None:
        raise CommandError("--stain-target: needs --stain reinhard or --stain macenko")
    stain = None if args.stain is None else _stain_target(args.stain, args.stain_target)
    data, n_total = _load_labelled(args.root, args.loader, limit=args.limit, seed=args.seed)
    y = np.asarray([str(v) for v in data.labels])
    counts = _class_counts(y)
    if len(counts) < 2:
        raise CommandError(f"ROOT: evaluation needs at least 2 classes, found {list(counts)}")
    smallest = min(counts.values())
    if data.groups is None and smallest < args.cv:
        raise CommandError(f"--cv: {args.cv} folds need at least {args.cv} images per class; "
                           f"the smallest class has {smallest} ({counts})")
    paths = [str(p) for p in data.paths]
    progress = _progress(args)
    _info(args, f"{data.name if hasattr(data, 'name') else args.loader}: {len(paths)} images, "
                + ", ".join(f"{k} {v}" for k, v in counts.items())
                + ("" if data.groups is None
                   else f", {len(set(map(str, data.groups)))} patients"))

    items, stain_info = paths, None
    if stain is not None:
        _info(args, f"normalising every image to a fixed {args.stain} target ...")
        items, stain_info = _stain_normalised(args, paths, stain, progress)
    t0 = time.perf_counter()
    X, feature_names, failures, no_cell = _extract_matrix(
        _extractor(args, len(paths), progress=progress), items)
    t_features = time.perf_counter() - t0
    # Files that cannot be read (or measured) are not samples of their class:
    # they are left out of the evaluation, listed here and in the JSON. Images
    # without a white cell stay in (NaN rows, imputed): the method must cope.
    _report_failures("images could not be read or measured and are left out of the "
                     "evaluation", [(paths[i], failures[i]) for i in sorted(failures)],
                     len(paths), json_path)
    if no_cell:
        print(f"leukfeat: {len(no_cell)} of {len(paths)} images have no white cell "
              "(kept: NaN rows, imputed by the classifiers)", file=sys.stderr)
    errors = [{"path": paths[i], "error": failures[i]} for i in sorted(failures)]
    no_cell_paths = [paths[i] for i in no_cell]
    groups = None if data.groups is None else np.asarray([str(g) for g in data.groups])
    if failures:
        keep = np.asarray([i for i in range(len(paths)) if i not in failures], dtype=np.intp)
        if keep.size == 0:
            raise CommandError(f"no image of {args.root} could be read ({len(paths)} failed)")
        X, y = X[keep], y[keep]
        paths = [paths[i] for i in keep]
        items = [items[i] for i in keep]
        groups = None if groups is None else groups[keep]
        counts = _class_counts(y)
        if len(counts) < 2 or (groups is None and min(counts.values()) < args.cv):
            raise CommandError(f"too few readable images left for {args.cv}-fold "
                               f"cross-validation: {counts}")

    t0 = time.perf_counter()
    comparison = _cross_validate(names, X, y, groups=groups, cv=args.cv, paths=paths,
                                 seed=args.seed, n_bootstrap=args.bootstrap,
                                 n_jobs=_cv_jobs(args, len(paths), len(names), args.cv),
                                 progress=progress)
    t_cv = time.perf_counter() - t0

    confound_body, confound, warning, t_confound = None, None, None, 0.0
    if not args.no_confound_check:
        t0 = time.perf_counter()
        _info(args, "confound check: can the background alone predict the class? ...")
        confound_body, confound, warning = _run_confound_check(
            args, items, y, groups=groups, paths=paths, comparison=comparison,
            n_jobs=_jobs(args, len(paths)))
        t_confound = time.perf_counter() - t0

    command = _command_line(args)
    data_info = _data_info(data, args.loader, args.limit, n_total)
    data_info["path"] = str(Path(args.root).resolve())
    report_path, t_report = None, 0.0
    if args.report:
        t0 = time.perf_counter()
        _info(args, "writing the report ...")
        model = _importance_model(comparison, X, y, args.seed)
        subset = ("" if args.limit is None or len(data) >= n_total
                  else f", a stratified subset (--limit {args.limit}, seed {args.seed})")
        provenance = {
            "Data": f"{_md_code(data_info['path'])} ({args.loader} loader: {len(data)} of "
                    f"{n_total} images{subset})",
            "Command": f"{_md_code(command)} (run in {_md_code(os.getcwd())})",
            "Stain normalisation": (
                "none" if stain_info is None else
                f"{args.stain}, every image on its own to a fixed target "
                f"({stain_info['target']}); nothing learnt from the evaluated images"),
        }
        report_path = _write_cv_report(comparison, args.report, X=X, y=y,
                                       feature_names=feature_names, model=model,
                                       images=items if stain_info else paths,
                                       segmentations=args.method, confound=confound,
                                       provenance=provenance)
        t_report = time.perf_counter() - t0

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
        **_comparison_json(comparison),
    }
    if json_path is not None:
        _write_json(json_path, body)
    if pred_path is not None:
        _write_table(_predictions_table(comparison, paths), pred_path)
    _print_summary(comparison, confound, confound_body, warning)
    for written in (json_path, pred_path):
        if written is not None:
            print(f"wrote {written}")
    if report_path is not None:
        print(f"report: {report_path}")
    return 0


# --------------------------------------------------------------------------- #
# parser
# --------------------------------------------------------------------------- #

class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``leukfeat: error: ...`` and exit status 2."""

    def error(self, message):  # noqa: D401 - argparse API
        where = self.prog.split(" ", 1)[1] + ": " if " " in self.prog else ""
        self.exit(2, f"leukfeat: error: {where}{_one_line(message)} "
                     f"(see '{self.prog} --help')\n")


_FORMATTER = argparse.RawDescriptionHelpFormatter


def _wrap(text: str) -> str:
    """A paragraph wrapped for --help (the formatter keeps epilogs as written)."""
    import textwrap

    return textwrap.fill(" ".join(text.split()), 79)


def _add_overwrite(p, what: str = "the output file") -> None:
    p.add_argument("--overwrite", action="store_true",
                   help=f"replace {what} if it exists (default: refuse, exit 2)")


def _add_quiet(p) -> None:
    p.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                   help="no progress bars or status messages (failures and results "
                        "are still printed)")


def _add_n_jobs(p, cv: bool = False) -> None:
    if cv:
        text = ("worker processes for feature extraction and cross-validation folds (-1: "
                "all CPUs; default: auto: all CPUs for extraction from "
                f"{AUTO_MIN_IMAGES} images on and for the folds when images x models x "
                f"folds >= {AUTO_MIN_CV_WORK}, else 1, since starting workers costs a "
                "few seconds)")
    else:
        text = ("worker processes (-1: all CPUs; default: auto: all CPUs from "
                f"{AUTO_MIN_IMAGES} images on, else 1, since starting workers costs a "
                "few seconds)")
    p.add_argument("--n-jobs", type=_n_jobs, default=None, metavar="N", help=text)
    p.add_argument("--max-pixels", type=_max_pixels, default=None, metavar="N",
                   help="largest image (width x height) to decode, checked from the file "
                        "header; larger ones become error rows (default: 268435456 = "
                        "2**28, or the LEUKFEAT_MAX_PIXELS environment variable; 'none': "
                        "no limit)")


def _add_features(p, *, cell=True) -> None:
    g = p.add_argument_group("features")
    g.add_argument("--method", default=DEFAULT_METHOD, choices=METHODS,
                   help="segmenter (default: %(default)s)")
    g.add_argument("--groups", nargs="+", default=list(DEFAULT_FEATURE_GROUPS),
                   choices=FEATURE_GROUPS, metavar="GROUP",
                   help="feature groups: texture nucleus_texture shape colour edges field "
                        "(default: all but nucleus_texture)")
    if cell:
        g.add_argument("--cell", default=None, choices=CELLS,
                       help="which white cell describes an image: the largest (default), "
                            "the most central, or the mean/median over every cell")
    g.add_argument("--cache", metavar="DIR", default=None,
                   help="on-disk feature cache folder (reused across runs)")


def _add_loader(p, default="folder") -> None:
    p.add_argument("--loader", default=default, metavar="NAME",
                   help="data-set layout: " + ", ".join(_loader_names())
                        + (f" (default: {default})" if default else
                           " (default: folder-per-class when it matches, else unlabelled)"))


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``leukfeat`` command."""
    from .. import __version__

    p = _Parser(
        prog="leukfeat", formatter_class=_FORMATTER,
        description=_wrap(
            "Classical computer vision for leukaemia blood-cell images: segment "
            "white cells, measure handcrafted features, classify and evaluate "
            "honestly."),
        epilog="examples:\n"
               "  leukfeat demo --out leukfeat-demo\n"
               "  leukfeat segment smears/ --out masks/\n"
               "  leukfeat extract data/ --out features.parquet --n-jobs 2\n"
               "  leukfeat evaluate data/ --loader taleghani --classifier all --json cv.json\n"
               "  leukfeat train data/ --classifier xgboost --out model.skops\n"
               "  leukfeat predict model.skops new/ --out predictions.csv\n\n"
               "'leukfeat COMMAND --help' describes each command.")
    p.add_argument("--version", action="version", version=f"leukfeat {__version__}")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no progress bars or status messages")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    # demo ---------------------------------------------------------------
    d = sub.add_parser(
        "demo", formatter_class=_FORMATTER,
        help="the whole job on built-in synthetic images: segment, extract, "
             "cross-validate, report",
        description=_wrap(
            "Generate synthetic stained-smear images "
            "(leukfeat.datasets.make_cells; not patient data), segment their white "
            "cells and print the IoU against the known ground truth, extract the "
            "default features once, cross-validate KNN, SVM, random forest and "
            "XGBoost on the same folds, write a report (Markdown + PNG figures), "
            "overlays and a contact sheet, and print the summary table. About "
            "15-30 s on 2 cores."),
        epilog="outputs in --out: report/report.md (+ figures), results.json,\n"
               "segmentation.csv (IoU per image), contact_sheet.png, overlays/ and\n"
               "images/ (the generated images, one folder per class)\n\n"
               "examples:\n"
               "  leukfeat demo\n"
               "  leukfeat demo --out demo --n 120 --classes 2 --seed 1")
    d.add_argument("--out", default="leukfeat-demo", help="output folder (default: %(default)s)")
    d.add_argument("--n", type=_positive_int, default=90,
                   help="number of images (default: %(default)s)")
    d.add_argument("--classes", type=int, default=3, choices=range(2, 7), metavar="K",
                   help="number of classes, 2-6 (default: %(default)s)")
    d.add_argument("--size", type=_positive_int, default=128,
                   help="image side in pixels (default: %(default)s)")
    d.add_argument("--method", default=DEFAULT_METHOD, choices=METHODS,
                   help="segmenter (default: %(default)s)")
    d.add_argument("--cv", type=_folds, default=5, metavar="K",
                   help="cross-validation folds (default: %(default)s)")
    d.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    d.add_argument("--no-report", action="store_true",
                   help="skip the Markdown report and its figures")
    d.add_argument("--no-confound-check", action="store_true",
                   help="skip the background-only confound check (as in evaluate)")
    _add_n_jobs(d, cv=True)
    _add_quiet(d)
    d.set_defaults(func=_cmd_demo, cache=None)

    # segment ------------------------------------------------------------
    s = sub.add_parser(
        "segment", formatter_class=_FORMATTER,
        help="white-cell and nucleus masks and overlay PNGs of images",
        description=_wrap(
            "Segment the white cells of image files (or every image under "
            "folders, recursively) and write, per image, <stem>_mask.png (white "
            "cells, 0/255), <stem>_nucleus.png, <stem>_overlay.png (outlines "
            "on the image), <stem>_labels.tif and <stem>_nucleus_labels.tif (16-bit "
            "label images, one label per white cell, which napari, QuPath, "
            "CellProfiler and 'leukfeat extract --masks' open), plus segmentation.csv (path, number of cells, areas in "
            "pixels, nucleus fraction, error). Equal file names from different "
            "folders get their folder name as prefix. Unreadable images are "
            "listed and counted; the command fails only when every image fails."),
        epilog="examples:\n"
               "  leukfeat segment smear1.jpg smear2.tif --out masks\n"
               "  leukfeat segment data/ --method hsv --out masks --n-jobs 2")
    s.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
    s.add_argument("--out", required=True, metavar="DIR", help="output folder")
    s.add_argument("--method", default=DEFAULT_METHOD, choices=METHODS,
                   help="segmenter (default: %(default)s)")
    _add_overwrite(s, "the files of an earlier run in --out")
    _add_n_jobs(s)
    _add_quiet(s)
    s.set_defaults(func=_cmd_segment)

    # extract ------------------------------------------------------------
    e = sub.add_parser(
        "extract", formatter_class=_FORMATTER,
        help="feature table (CSV or Parquet) of a data set or image files",
        description=_wrap(
            "Extract handcrafted features: one row per image (or per white cell "
            "with --per-cell). Columns: path, label (and group, e.g. patient) "
            "when ROOT is a labelled data set, error, then the features. A single "
            "folder is read with --loader (default: folder-per-class when its "
            "layout matches, else its images without labels); files given "
            "directly have no label. Images that cannot be read or have no white "
            "cell keep a NaN row with the reason in the error column, and are "
            "counted on stderr. Parquet output needs pyarrow "
            "(pip install 'leukfeat[parquet]')."),
        epilog="examples:\n"
               "  leukfeat extract data/ --out features.parquet --n-jobs 2\n"
               "  leukfeat extract taleghani/ --loader taleghani --cell median --out f.csv\n"
               "  leukfeat extract a.jpg b.jpg --groups shape colour --per-cell --out cells.csv")
    e.add_argument("inputs", nargs="+", metavar="ROOT|FILE",
                   help="a data-set folder, or image files / folders")
    e.add_argument("--out", required=True, metavar="FILE",
                   help="output table, .csv or .parquet")
    _add_loader(e, default=None)
    _add_features(e)
    e.add_argument("--per-cell", action="store_true",
                   help="one row per white cell (columns cell_label, centroid_row/col, "
                        "bbox_min/max_row/col) instead of per image")
    e.add_argument("--masks", metavar="DIR", default=None,
                   help="your own masks instead of segmentation, matched to each image by "
                        "file stem: <stem>.png/.tif, <stem>_mask.png, <stem>_labels.tif, "
                        "<stem>_cp_masks.png (Cellpose) ...; binary, 0/1/2 (or 0/128/255) "
                        "cytoplasm/nucleus coding, or a label image (one label per cell; "
                        "--per-cell rows keep the mask's labels)")
    _add_overwrite(e)
    _add_n_jobs(e)
    _add_quiet(e)
    e.set_defaults(func=_cmd_extract)

    # train --------------------------------------------------------------
    t = sub.add_parser(
        "train", formatter_class=_FORMATTER,
        help="fit features + classifier on a labelled data set; save a model file",
        description=_wrap(
            "Fit a leukfeat pipeline (feature extraction + classifier, "
            "leukfeat.models.make_pipeline) on every image of a labelled data set "
            "and save it as a skops model file (leukfeat.persist), which records "
            "the leukfeat version and feature configuration."),
        epilog="examples:\n"
               "  leukfeat train data/ --classifier xgboost --out model.skops\n"
               "  leukfeat train taleghani/ --loader taleghani --cell median "
               "--classifier svm --out svm.skops")
    t.add_argument("root", metavar="ROOT", help="labelled data-set folder")
    _add_loader(t)
    t.add_argument("--classifier", default="xgboost", metavar="NAME",
                   help="knn, svm, rf, xgboost or logreg (default: %(default)s)")
    t.add_argument("--out", required=True, metavar="FILE", help="model file (.skops)")
    t.add_argument("--limit", type=_positive_int, default=None, metavar="N",
                   help="train on a stratified subset of N images")
    t.add_argument("--seed", type=int, default=0,
                   help="seed of the classifier and of --limit (default: %(default)s)")
    _add_features(t)
    _add_overwrite(t, "the model file")
    _add_n_jobs(t)
    _add_quiet(t)
    t.set_defaults(func=_cmd_train)

    # predict ------------------------------------------------------------
    r = sub.add_parser(
        "predict", formatter_class=_FORMATTER,
        help="predicted labels and class probabilities of images",
        description=_wrap(
            "Load a model file written by 'leukfeat train' (only trusted types; "
            "a file from an incompatible leukfeat version is refused) and write a "
            "table with path, prediction, one proba_<class> column per class and "
            "error. Images that cannot be read or have no white cell get no "
            "prediction; the reason is in the error column."),
        epilog="examples:\n"
               "  leukfeat predict model.skops new_smears/ --out predictions.csv\n"
               "  leukfeat predict model.skops a.jpg b.jpg --out p.csv")
    r.add_argument("model", metavar="MODEL", help="model file (.skops)")
    r.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
    r.add_argument("--out", required=True, metavar="FILE",
                   help="predictions table, .csv or .parquet")
    r.add_argument("--cache", metavar="DIR", default=None, help="on-disk feature cache folder")
    r.add_argument("--trust", action="append", metavar="TYPE", default=[],
                   help="also trust this type (fully qualified name) when loading MODEL; "
                        "repeatable. Only for files you trust: loading runs its code")
    _add_overwrite(r)
    _add_n_jobs(r)
    _add_quiet(r)
    r.set_defaults(func=_cmd_predict)

    # evaluate -----------------------------------------------------------
    v = sub.add_parser(
        "evaluate", formatter_class=_FORMATTER,
        help="cross-validate classifiers on a labelled data set (JSON, table, report)",
        description=_wrap(
            "Cross-validate one or more classifiers as leukfeat.evaluate does: "
            "stratified folds that keep each patient (when the loader knows "
            "patients) and each group of exact or near-duplicate images inside one "
            "fold; pooled out-of-fold accuracy, balanced accuracy, macro F1, "
            "ROC AUC, confusion matrix, per-fold values and 95 % bootstrap "
            "confidence intervals. Features are extracted once and every "
            "classifier is evaluated on the same folds. Unless "
            "--no-confound-check, a classifier that sees only the background "
            "(leukfeat.evaluate.confound_check) is evaluated on those folds too "
            "and reported beside the models. Prints the summary table; "
            "--json writes every figure (for several classifiers: one dict per "
            "model under 'models' and a 'summary' table; the check under "
            "'confound_check'; the command line and data path); --report writes a "
            "Markdown report with figures."),
        epilog="examples:\n"
               "  leukfeat evaluate data/ --classifier xgboost --cv 5 --json cv.json\n"
               "  leukfeat evaluate taleghani/ --loader taleghani --classifier all "
               "--json cv.json --report cv-report\n"
               "  leukfeat evaluate taleghani/ --loader taleghani --limit 200 --cell median\n"
               "  leukfeat evaluate taleghani/ --loader taleghani --stain reinhard --json cv.json\n\n"
               "By default a background-only classifier (leukfeat.evaluate.confound_check)\n"
               "is cross-validated on the same folds and printed beside the accuracy; when\n"
               "it gets at least 80 % of the way from chance to the best model's balanced\n"
               "accuracy, a warning says the accuracy may reflect acquisition, not cells.\n"
               "The JSON and the report record the data path and the command line.")
    v.add_argument("root", metavar="ROOT", help="labelled data-set folder")
    _add_loader(v)
    v.add_argument("--classifier", default="xgboost", metavar="NAME",
                   help="knn, svm, rf, xgboost, logreg, 'all' (= "
                        + ", ".join(ALL_CLASSIFIERS)
                        + ") or a comma-separated list (default: %(default)s)")
    v.add_argument("--cv", type=_folds, default=5, metavar="K",
                   help="number of folds (default: %(default)s)")
    v.add_argument("--json", metavar="FILE", default=None, help="write the results as JSON")
    v.add_argument("--report", metavar="DIR", default=None,
                   help="write a Markdown report with figures in DIR")
    v.add_argument("--predictions", metavar="FILE", default=None,
                   help="write the out-of-fold prediction and probabilities of every image "
                        "and model (.csv or .parquet)")
    _add_overwrite(v, "the --json and --predictions files")
    v.add_argument("--limit", type=_positive_int, default=None, metavar="N",
                   help="evaluate a stratified subset of N images")
    v.add_argument("--seed", type=int, default=0,
                   help="seed of the folds, bootstrap, classifiers and --limit "
                        "(default: %(default)s)")
    v.add_argument("--bootstrap", type=int, default=1000, metavar="B",
                   help="bootstrap resamples for the confidence intervals (default: "
                        "%(default)s; 0: none)")
    _add_features(v)
    h = v.add_argument_group("honest evaluation")
    h.add_argument("--no-confound-check", action="store_true",
                   help="skip the confound check (by default a classifier that sees only "
                        "the background, the pixels outside the white cells, is "
                        "cross-validated on the same folds and reported beside the "
                        "accuracy, with a warning when it comes close to the model)")
    h.add_argument("--stain", choices=STAIN_METHODS, default=None,
                   help="stain-normalise every image before segmentation and features: "
                        "Reinhard (L*a*b* mean and spread) or Macenko (stain vectors), "
                        "each image on its own to a fixed target, so nothing is learnt "
                        "from the evaluated images (default: none)")
    h.add_argument("--stain-target", metavar="IMAGE", default=None,
                   help="reference image whose colours are the --stain target (default: "
                        "built-in targets from leukfeat's synthetic Wright-Giemsa smears); "
                        "best an image outside the evaluated set")
    _add_n_jobs(v, cv=True)
    _add_quiet(v)
    v.set_defaults(func=_cmd_evaluate)
    return p


def main(argv=None) -> int:
    """Entry point of the ``leukfeat`` console script; returns the exit status."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.argv = argv
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    if getattr(args, "max_pixels", None) is not None:
        # read by leukfeat.io.read_image here and in every worker process
        os.environ["LEUKFEAT_MAX_PIXELS"] = args.max_pixels
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("leukfeat: interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError, ImportError) as exc:
        print(f"leukfeat: error: {_format_error(exc)}", file=sys.stderr)
        return 2
