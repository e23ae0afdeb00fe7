"""
Cross-validate a scikit-learn pipeline
======================================

Write synthetic smear images to a folder, build ``FeatureExtractor ->
classifier`` with :func:`leukfeat.make_pipeline`, and cross-validate it with
duplicate-aware stratified folds.
"""

import tempfile

import numpy as np

from leukfeat import datasets, evaluate, make_pipeline

with tempfile.TemporaryDirectory() as root:
    data = datasets.make_cells(40, n_classes=2, size=128, random_state=0)
    paths = data.save(root)
    y = np.array([data.class_names[c] for c in data.labels])
    pipe = make_pipeline("rf", groups=("shape", "colour"))
    report = evaluate.cross_validate(pipe, [str(p) for p in paths], y, cv=4, n_bootstrap=200)
    print(report.summary())
