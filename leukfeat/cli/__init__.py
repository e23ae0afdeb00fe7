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

Modules
-------
``parser`` holds :func:`build_parser` and :func:`main`; each command is a thin
module (``demo``, ``segment``, ``extract``, ``train``, ``predict``,
``evaluate``) over the helpers they share: ``_output`` (the one-line error,
status lines, failure reports, output files and tables), ``_inputs`` (images,
data sets, masks, classifier names), ``_features`` (the extractor as the
commands run it) and ``_evaluation`` (cross-validation, summaries, reports and
the confound check of ``evaluate`` and ``demo``).
"""

from __future__ import annotations

# the names below were module-level names of leukfeat/cli.py; they stay importable
# from leukfeat.cli
from ._evaluation import BACKGROUND_ROW, CONFOUND_WARNING_RULE  # noqa: F401
from ._features import (  # noqa: F401
                        AUTO_MIN_CV_WORK,
                        AUTO_MIN_IMAGES,
                        CELLS,
                        DEFAULT_FEATURE_GROUPS,
                        DEFAULT_METHOD,
                        FEATURE_GROUPS,
                        METHODS,
                        NO_CELL,
                        cv_jobs,
                        n_jobs_for,
)
from ._inputs import ALL_CLASSIFIERS, CLASSIFIERS, loader_names  # noqa: F401
from ._output import CommandError, write_table  # noqa: F401
from ._stain import MACENKO_TARGET, REINHARD_TARGET, STAIN_METHODS, Normalise, stain_target  # noqa: F401
from .demo import DEMO_CLASSIFIERS  # noqa: F401
from .evaluate import cmd_evaluate  # noqa: F401
from .parser import build_parser, main
from ..segment import SAVED_FILES as SEGMENT_FILES  # noqa: F401  (as cli.segment names it)
from .segment import unique_stems  # noqa: F401

__all__ = ["main", "build_parser"]
