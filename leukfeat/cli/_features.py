"""Feature extraction as the commands run it (extract, train, predict, evaluate, demo).

The library's feature-group, cell and segmenter names (the options'
choices), the number of worker processes, the extractor and its matrix.
"""

from __future__ import annotations

import warnings

from .. import extract as _extract
from .. import segment as _segment


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
