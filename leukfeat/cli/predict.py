"""``leukfeat predict``: labels and class probabilities from a model file."""

from __future__ import annotations

import errno
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ._features import (error_column, extractor_failures, failed_items, failures_listed,
                        n_jobs_for, no_cell_rows)
from ._inputs import collect_images
from ._output import (CommandError, fail_if_all_failed, one_line, out_table, report_failures,
                      report_no_cell, say, utf8_text, want_progress, write_table)

if TYPE_CHECKING:
    import argparse


def cmd_predict(args: argparse.Namespace) -> int:
    out = out_table(args.out, "--out", args.overwrite)
    model_path = Path(args.model)
    if not model_path.is_file():
        raise FileNotFoundError(errno.ENOENT, "MODEL: no such model file", str(model_path))
    paths = collect_images(args.inputs)

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
        raise CommandError(f"{one_line(exc)}{hint}") from None
    if not isinstance(model, Pipeline) or not any(
            isinstance(s, FeatureExtractor) for _, s in model.steps[:-1]):
        raise CommandError(f"MODEL: {model_path} holds a {type(model).__name__}, not a "
                           "leukfeat image pipeline (save one with 'leukfeat train')")
    for _, step in model.steps[:-1]:
        if isinstance(step, FeatureExtractor):
            step.set_params(n_jobs=n_jobs_for(args, len(paths)), progress=want_progress(args),
                            on_error="nan", cache=args.cache)
            fx = step
    classifier = model.steps[-1][1]
    if not hasattr(classifier, "predict_proba"):
        raise CommandError(f"MODEL: the classifier of {model_path} has no predict_proba")
    say(args, f"predicting {len(paths)} images with {model_path} ...")
    t0 = time.perf_counter()
    with failures_listed():
        X = model[:-1].transform(paths)
    X = np.asarray(X, dtype=np.float64)
    proba = np.asarray(classifier.predict_proba(X), dtype=np.float64)
    classes = [str(c) for c in classifier.classes_]
    predicted = np.asarray([str(v) for v in classifier.predict(X)], dtype=object)
    failures = extractor_failures(fx)
    no_cell = no_cell_rows(X, failures)
    error = error_column(len(paths), failures, no_cell, "no white cell found: no prediction")
    bad = [i for i, e in enumerate(error) if e is not None]
    proba[bad] = np.nan
    predicted[bad] = None
    table = pd.DataFrame({"path": [utf8_text(p) for p in paths], "prediction": predicted})
    for k, c in enumerate(classes):
        table[f"proba_{c}"] = proba[:, k]
    table["error"] = error
    write_table(table, out)
    elapsed = time.perf_counter() - t0
    failed = failed_items(paths, failures)
    report_failures("images could not be read or measured (no prediction, see the "
                     "error column)", failed, len(paths), out)
    fail_if_all_failed(failed, len(paths), out)
    report_no_cell(no_cell, len(paths), "no prediction")
    counts = table["prediction"].value_counts()
    print(f"predicted {len(paths) - len(bad)} of {len(paths)} images in {elapsed:.1f} s: "
          + ", ".join(f"{c} {int(counts.get(c, 0))}" for c in classes))
    print(f"wrote {out}")
    return 0
