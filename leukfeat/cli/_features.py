"""Feature extraction as the commands run it (extract, train, predict, evaluate, demo).

The library's feature-group, cell and segmenter names (the options'
choices), the number of worker processes, the extractor and its matrix.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import TYPE_CHECKING, Any

from .. import extract as _extract
from .. import segment as _segment
from ._output import CommandError, utf8_text

if TYPE_CHECKING:
    import argparse

#: Feature groups, cell choices and segmenters: the library's own tuples
#: (importing the command line imports leukfeat, and with it these modules).
FEATURE_GROUPS = _extract.GROUPS
DEFAULT_FEATURE_GROUPS = _extract.DEFAULT_GROUPS
CELLS = _extract.CELLS
METHODS = tuple(_segment.METHODS)
DEFAULT_METHOD = _segment.DEFAULT_METHOD


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


def n_jobs_for(args, n_items: int, minimum: int = AUTO_MIN_IMAGES) -> int:
    """--n-jobs, or for auto (None): all CPUs when n_items >= minimum, else 1."""
    if args.n_jobs is not None:
        return args.n_jobs
    return -1 if n_items >= minimum else 1


def cv_jobs(args, n_images: int, n_models: int, cv: int) -> int:
    """--n-jobs for the cross-validation folds (auto: by images x models x folds)."""
    return n_jobs_for(args, n_images * n_models * cv, AUTO_MIN_CV_WORK)


def segmenter_of(args: argparse.Namespace) -> tuple[Any, str]:
    """``(segmenter, label)`` of a command: ``--method``'s name, or with
    ``--recipe`` the recipe's ``segment`` (a picklable bound method) and name."""
    name = getattr(args, "recipe", None)
    if name is None:
        return args.method, args.method
    from ..recipe import RecipeError, load_recipe

    try:
        recipe = load_recipe(name)
    except RecipeError as exc:
        raise CommandError(f"--recipe: {exc}") from None
    except FileNotFoundError as exc:
        raise CommandError(f"--recipe: {exc}") from None
    if not recipe.makes_mask:
        raise CommandError(f"--recipe: {recipe.name or name!r} makes no mask (no kmeans or "
                           "threshold step): it pre-processes images but cannot segment")
    return recipe.segment, f"recipe {recipe.name or name}"


def make_extractor(args: argparse.Namespace, n_items: int, *, cell: str | int | None = None,
                   progress: bool = False) -> Any:
    from ..transformers import FeatureExtractor

    return FeatureExtractor(segmenter=segmenter_of(args)[0], groups=tuple(args.groups),
                            cell=cell or args.cell or "largest",
                            n_jobs=n_jobs_for(args, n_items),
                            on_error="nan", cache=getattr(args, "cache", None),
                            progress=progress)


def extract_matrix(fx: Any, items: Any) -> tuple[Any, list[str], dict[int, str], list[int]]:
    """fit_transform with the NaN policy; returns (X, names, failures, no_cell)."""
    with failures_listed():
        X = fx.fit_transform(items)
    names = [str(n) for n in fx.get_feature_names_out()]
    failures = extractor_failures(fx)
    return X, names, failures, no_cell_rows(X, failures)


@contextlib.contextmanager
def failures_listed():
    """Without the extractor's warning that images failed and gave NaN rows: the
    command lists every failed path itself."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*images failed and gave NaN rows",
                                category=UserWarning)
        warnings.filterwarnings("ignore", category=UserWarning,   # leukfeat.stream's
                                message=r".*could not be read or measured \(NaN rows kept")
        yield


def extractor_failures(fx) -> dict:
    """``{index: "ErrorType: message"}`` of the items the extractor could not read or
    measure (its ``errors_``)."""
    return {e["index"]: f"{e['error_type']}: {e['message']}" for e in fx.errors_}


def no_cell_rows(X, failures) -> list:
    """Indices of the all-NaN rows of `X` that did not fail: images without a white cell."""
    import numpy as np

    return [i for i in np.flatnonzero(np.isnan(X).all(axis=1)) if i not in failures]


def kept_indices(n: int, failures):
    """Indices (an intp array) of the `n` items that did not fail."""
    import numpy as np

    return np.asarray([i for i in range(n) if i not in failures], dtype=np.intp)


def failed_items(paths, failures) -> list:
    """``(path, message)`` of every failed item, in order (for :func:`_report_failures`)."""
    return [(paths[i], failures[i]) for i in sorted(failures)]


NO_CELL = "no white cell found (NaN features)"


def error_column(n: int, failures, no_cell, no_cell_text: str = NO_CELL) -> list:
    """The ``error`` column of a table of `n` images: the failure, `no_cell_text`, or None."""
    error: list[str | None] = [None] * n
    for i, msg in failures.items():
        error[i] = utf8_text(msg)
    for i in no_cell:
        error[i] = no_cell_text
    return error
