"""
Cross-validate a scikit-learn pipeline
======================================

Write synthetic smear images to a folder, build ``FeatureExtractor ->
classifier`` with :func:`leukfeat.make_pipeline`, and cross-validate it with
duplicate-aware stratified folds. The figures are the out-of-fold confusion
matrix and ROC curves (:func:`leukfeat.plot.confusion_matrix`,
:func:`leukfeat.plot.roc_curves`) and the most important features of the
pipeline fitted on every image (:func:`leukfeat.plot.feature_importance`).
"""

import tempfile

import numpy as np

from leukfeat import datasets, evaluate, make_pipeline, plot

with tempfile.TemporaryDirectory() as root:
    data = datasets.make_cells(40, n_classes=2, size=128, random_state=0)
    paths = [str(p) for p in data.save(root)]
    y = np.array([data.class_names[c] for c in data.labels])
    pipe = make_pipeline("rf", groups=("shape", "colour"))
    report = evaluate.cross_validate(pipe, paths, y, cv=4, n_bootstrap=200,
                                     return_predictions=True)
    print(report.summary())
    model = pipe.fit(paths, y)     # the same pipeline, fitted on every image

# %%
# Out-of-fold predictions: every image was predicted by a model that never
# saw it (nor any duplicate of it).

matrix = plot.confusion_matrix(report)
roc = plot.roc_curves(report)

# %%
# What the random forest relies on: the names come from the extractor.

importance = plot.feature_importance(model, top=12)
