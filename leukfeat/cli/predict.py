"""``leukfeat predict``: labels and class probabilities from a model file."""

from __future__ import annotations

import errno
import sys
import time
import warnings
from pathlib import Path

from ._features import _jobs
from ._inputs import _collect_images
from ._output import (CommandError, _check_parquet, _fail_if_all_failed, _info, _one_line,
                      _out_file, _progress, _report_failures, _utf8_text, _write_table)


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
