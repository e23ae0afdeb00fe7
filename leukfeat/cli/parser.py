"""The argument parser of the ``leukfeat`` command and its entry point, :func:`main`."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Callable, NoReturn

from ._features import (
    AUTO_MIN_CV_WORK,
    AUTO_MIN_IMAGES,
    CELLS,
    DEFAULT_FEATURE_GROUPS,
    DEFAULT_METHOD,
    FEATURE_GROUPS,
    METHODS,
)
from ._inputs import ALL_CLASSIFIERS, loader_names
from ._output import format_error, one_line
from ._stain import STAIN_METHODS
from .demo import cmd_demo
from .evaluate import cmd_evaluate
from .extract import cmd_extract
from .predict import cmd_predict
from .segment import cmd_segment
from .train import cmd_train

if TYPE_CHECKING:
    from collections.abc import Sequence


def _int_arg(valid: Callable[[int], bool], expected: str) -> Callable[[str], int]:
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


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``leukfeat: error: ...`` and exit status 2."""

    def error(self, message: str) -> NoReturn:  # noqa: D401 - argparse API
        where = self.prog.split(" ", 1)[1] + ": " if " " in self.prog else ""
        self.exit(2, f"leukfeat: error: {where}{one_line(message)} "
                     f"(see '{self.prog} --help')\n")


_FORMATTER = argparse.RawDescriptionHelpFormatter


def _wrap(text: str) -> str:
    """A paragraph wrapped for --help (the formatter keeps epilogs as written)."""
    import textwrap

    return textwrap.fill(" ".join(text.split()), 79)


def _add_overwrite(p: argparse.ArgumentParser, what: str = "the output file") -> None:
    p.add_argument("--overwrite", action="store_true",
                   help=f"replace {what} if it exists (default: refuse, exit 2)")


def _add_quiet(p: argparse.ArgumentParser) -> None:
    p.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                   help="no progress bars or status messages (failures and results "
                        "are still printed)")


def _add_n_jobs(p: argparse.ArgumentParser, cv: bool = False) -> None:
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


def _add_recipe(p: argparse.ArgumentParser) -> None:
    p.add_argument("--recipe", metavar="NAME|FILE", default=None,
                   help="segment with a recipe instead of --method: a shipped one ("
                        + ", ".join(_recipe_names()) + ") or a recipe YAML/JSON file "
                        "(see docs/recipes.rst); it must make a mask")


def _recipe_names() -> tuple[str, ...]:
    from ..recipe import SHIPPED

    return SHIPPED


def _add_stain(p: argparse._ActionsContainer, which: str) -> None:
    p.add_argument("--stain", choices=STAIN_METHODS, default=None,
                   help="stain-normalise every image before segmentation and features: "
                        "Reinhard (L*a*b* mean and spread) or Macenko (stain vectors), "
                        "each image on its own to a fixed target, so nothing is learnt "
                        f"from the {which} images (default: none)")
    p.add_argument("--stain-target", metavar="IMAGE", default=None,
                   help="reference image whose colours are the --stain target (default: "
                        "built-in targets from leukfeat's synthetic Wright-Giemsa smears); "
                        f"best an image outside the {which} set")


def _add_features(p: argparse.ArgumentParser, *, cell: bool = True) -> None:
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


def _add_loader(p: argparse.ArgumentParser, default: str | None = "folder") -> None:
    p.add_argument("--loader", default=default, metavar="NAME",
                   help="data-set layout: " + ", ".join(loader_names())
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
            "15-30 s on 2 cores. Without the xgboost extra XGBoost is left out, "
            "without the plot extra (matplotlib) the report; a note says so."),
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
    d.set_defaults(func=cmd_demo, cache=None)

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
    _add_recipe(s)
    _add_overwrite(s, "the files of an earlier run in --out")
    _add_n_jobs(s)
    _add_quiet(s)
    s.set_defaults(func=cmd_segment)

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
               "  leukfeat extract a.jpg b.jpg --groups shape colour --per-cell --out cells.csv\n"
               "  leukfeat extract archive/ --out features.parquet --scheduler "
               "tcp://10.0.0.5:8786")
    e.add_argument("inputs", nargs="+", metavar="ROOT|FILE",
                   help="a data-set folder, or image files / folders")
    e.add_argument("--out", required=True, metavar="FILE",
                   help="output table: FILE.csv, or DIR.parquet, a folder of Parquet parts "
                        "written one chunk of images at a time (memory stays flat; "
                        "rerunning the same command after a crash resumes, skipping the "
                        "parts already written; pandas.read_parquet(DIR.parquet) reads it)")
    e.add_argument("--chunk-size", type=_positive_int, default=1000, metavar="N",
                   help="images per Parquet part (default: %(default)s)")
    e.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help="run the chunks on a Dask cluster, e.g. tcp://10.0.0.5:8786 "
                        "(needs leukfeat[dask] here and on the workers, and a .parquet "
                        "--out); each worker measures whole chunks")
    _add_loader(e, default=None)
    _add_features(e)
    e.add_argument("--per-cell", action="store_true",
                   help="one row per white cell (columns cell_label, centroid_row/col, "
                        "bbox_min/max_row/col) instead of per image")
    _add_recipe(e)
    e.add_argument("--masks", metavar="DIR", default=None,
                   help="your own masks instead of segmentation, matched to each image by "
                        "file stem: <stem>.png/.tif, <stem>_mask.png, <stem>_labels.tif, "
                        "<stem>_cp_masks.png (Cellpose) ...; binary, 0/1/2 (or 0/128/255) "
                        "cytoplasm/nucleus coding, or a label image (one label per cell; "
                        "--per-cell rows keep the mask's labels)")
    _add_stain(e, "extracted")
    _add_overwrite(e)
    _add_n_jobs(e)
    _add_quiet(e)
    e.set_defaults(func=cmd_extract)

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
               "--classifier svm --out svm.skops\n"
               "  leukfeat train data/ --stain reinhard --out model.skops   "
               "# predict normalises with the same fixed target")
    t.add_argument("root", metavar="ROOT", help="labelled data-set folder")
    _add_loader(t)
    t.add_argument("--classifier", default="hgb", metavar="NAME",
                   help="knn, svm, rf, xgboost (extra leukfeat[xgboost]), logreg or hgb "
                        "(default: %(default)s)")
    t.add_argument("--out", required=True, metavar="FILE", help="model file (.skops)")
    t.add_argument("--limit", type=_positive_int, default=None, metavar="N",
                   help="train on a stratified subset of N images")
    t.add_argument("--seed", type=int, default=0,
                   help="seed of the classifier and of --limit (default: %(default)s)")
    _add_features(t)
    _add_stain(t, "training")
    _add_overwrite(t, "the model file")
    _add_n_jobs(t)
    _add_quiet(t)
    t.set_defaults(func=cmd_train)

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
    r.set_defaults(func=cmd_predict)

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
    v.add_argument("--classifier", default="hgb", metavar="NAME",
                   help="knn, svm, rf, xgboost (extra leukfeat[xgboost]), logreg, hgb, "
                        "'all' (= "
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
    _add_stain(h, "evaluated")
    _add_n_jobs(v, cv=True)
    _add_quiet(v)
    v.set_defaults(func=cmd_evaluate)
    return p


def main(argv: Sequence[str] | None = None) -> int:
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
        print(f"leukfeat: error: {format_error(exc)}", file=sys.stderr)
        return 2
