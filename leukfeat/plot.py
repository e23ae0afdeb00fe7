"""Figures for segmentation and evaluation results, and a Markdown report.

Every function returns a :class:`matplotlib.figure.Figure` built directly
(no :mod:`matplotlib.pyplot` state), so they work headless, in scripts and
in notebooks alike; functions with an ``ax`` argument draw into that axes
instead and return its figure. matplotlib is imported on first use:
``import leukfeat.plot`` stays light.

:func:`segmentation_overlay`, :func:`contact_sheet`
    Cell (green) and nucleus (yellow) outlines on one image, or a grid of
    thumbnails.
:func:`confusion_matrix`, :func:`roc_curves`
    From a :class:`~leukfeat.evaluate.CVReport` or from arrays.
:func:`feature_importance`
    The top features of a fitted model (tree importances or mean absolute
    linear coefficients), named through the steps of its pipeline.
:func:`feature_distributions`
    Per-class histograms and box plots of selected features.
:func:`save_figure`
    Write a figure (PNG by default), creating folders.
:func:`cv_report`
    A Markdown report of a cross-validation or a comparison, with all the
    figures that the given inputs allow.

Examples
--------
>>> from leukfeat.datasets import make_cells
>>> from leukfeat.segment import segment
>>> from leukfeat import plot
>>> ds = make_cells(2, size=96, random_state=0)
>>> fig = plot.segmentation_overlay(ds.images[0], segment(ds.images[0]))
>>> type(fig).__name__
'Figure'
"""

from __future__ import annotations

import math
import os
import re
from numbers import Integral
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, TypeGuard

import numpy as np

from ._batch import is_path
from ._validation import check_int

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from numpy.typing import ArrayLike

    from ._typing import ImageBatch, StrPath
    from .evaluate import Comparison, ConfoundReport, CVReport
    from .recipe import Recipe
    from .segment import Segmentation

__all__ = [
    "segmentation_overlay",
    "contact_sheet",
    "confusion_matrix",
    "roc_curves",
    "feature_importance",
    "feature_distributions",
    "save_figure",
    "cv_report",
    "recipe_steps",
]

_CELL_COLOUR = "#00ff00"     # as Segmentation.overlay
_NUCLEUS_COLOUR = "#ffff00"


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
def _figure(figsize: tuple[float, float]) -> Any:
    from matplotlib.figure import Figure
    return Figure(figsize=figsize, layout="constrained")


def _fig_ax(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Any, Any]:
    """(figure, axes): a new figure with one axes, or the figure of ``ax``."""
    if ax is None:
        fig = _figure(figsize)
        return fig, fig.add_subplot()
    if not hasattr(ax, "figure") or not hasattr(ax, "plot"):
        raise TypeError(f"ax: expected a matplotlib Axes, got {type(ax).__name__}")
    return ax.figure, ax




def _as_rgb(item: Any, name: str = "image") -> np.ndarray:
    from ._batch import load_rgb

    return load_rgb(item, name)


def _image_items(images: Any, name: str = "images") -> list[Any]:
    from ._batch import as_batch

    return as_batch(images, name)


def _is_report(obj: object) -> TypeGuard[CVReport]:
    return hasattr(obj, "confusion_matrix") and hasattr(obj, "classes") \
        and hasattr(obj, "fold_of_sample")


def _is_comparison(obj: object) -> TypeGuard[Comparison]:
    return hasattr(obj, "reports") and hasattr(obj, "table") and hasattr(obj, "to_markdown")


def _colours(n: int) -> list[tuple[float, float, float, float]]:
    from matplotlib import colormaps
    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


# --------------------------------------------------------------------------
# segmentation
# --------------------------------------------------------------------------
def _segmentation_of(rgb: np.ndarray, segmentation: Any, name: str) -> Segmentation:
    from .segment import Segmentation, segment
    if isinstance(segmentation, Segmentation):
        if segmentation.shape != rgb.shape[:2]:
            raise ValueError(f"{name}: shape {segmentation.shape} does not match the image "
                             f"{rgb.shape[:2]}")
        return segmentation
    if isinstance(segmentation, str) or callable(segmentation):
        return segment(rgb, segmentation)
    raise TypeError(f"{name}: expected a Segmentation or a segmenter name, got "
                    f"{type(segmentation).__name__}")


def segmentation_overlay(image: ArrayLike | StrPath,
                         segmentation: Segmentation | str | Callable[..., Segmentation],
                         ax: Axes | None = None, title: str | None = None) -> Figure:
    """Show an image with the outlines of its segmented cells and nuclei.

    Parameters
    ----------
    image : ndarray, shape (H, W, 3) or (H, W), or path
        The segmented image (a path is read with
        :func:`leukfeat.io.read_image`).
    segmentation : Segmentation or str
        The result of a segmenter for `image`, or a segmenter name
        (``"nucleus_anchored"``, ``"lab_kmeans"``, ``"hsv"``, ``"otsu"``) to run on it.
    ax : matplotlib Axes, optional
        Draw into this axes instead of a new figure.
    title : str, optional
        Axes title; default: the method and the number of cells.

    Returns
    -------
    matplotlib.figure.Figure
        One image axes (cell outlines green, nuclei yellow, with a legend).

    Raises
    ------
    ValueError
        If the segmentation does not match the image.
    TypeError
        If `segmentation` is neither a Segmentation nor a segmenter name.
    """
    from matplotlib.lines import Line2D

    rgb = _as_rgb(image)
    seg = _segmentation_of(rgb, segmentation, "segmentation")
    h, w = rgb.shape[:2]
    fig, ax = _fig_ax(ax, (5.0, 5.0 * h / max(w, 1) + 0.4))
    thickness = max(1, round(max(h, w) / 300))
    ax.imshow(seg.overlay(rgb, thickness=thickness), interpolation="nearest")
    ax.set_axis_off()
    if title is None:
        title = f"{seg.method or 'segmentation'}: {seg.n_cells} cell{'s' * (seg.n_cells != 1)}"
    ax.set_title(title)
    handles = [Line2D([], [], color=_CELL_COLOUR, lw=2, label="cell"),
               Line2D([], [], color=_NUCLEUS_COLOUR, lw=2, label="nucleus")]
    ax.legend(handles=handles, loc="lower right", fontsize="small", framealpha=0.7)
    return fig


def recipe_steps(recipe: Recipe | str, image: ArrayLike | StrPath, *, title: str | None = None,
                 input_title: str = "input") -> Figure:
    """Draw an image after each step of a recipe, one panel per step.

    Parameters
    ----------
    recipe : leukfeat.recipe.Recipe or str
        A recipe, or the name or file of one (:func:`leukfeat.recipe.load_recipe`).
    image : ndarray or path
        The input image (a path is read with :func:`leukfeat.io.read_image`).
    title : str, optional
        Figure title; default: the recipe's name.
    input_title : str, default "input"
        Title of the first panel (the input); its size is added below.

    Returns
    -------
    matplotlib.figure.Figure
        The input, then per step its number, name (and key when it differs)
        and the size of its result. A step that changes only the mask
        (``kmeans``, ``threshold``, ``fill_holes``, ...) is drawn as the mask
        (white: kept); any other step as its image (grey images from their
        darkest to their brightest value).

    Examples
    --------
    >>> import numpy as np
    >>> from leukfeat import plot
    >>> fig = plot.recipe_steps("chowdhury-lab-kmeans", np.full((32, 32, 3), 200, np.uint8))
    >>> len(fig.axes)
    7
    """
    from .recipe import Recipe, load_recipe

    if not isinstance(recipe, Recipe):
        recipe = load_recipe(recipe)
    rgb = _as_rgb(image)
    states = list(recipe.iter_states(rgb))
    fig = _figure((2.4 * (len(states) + 1), 2.9))
    axes = fig.subplots(1, len(states) + 1, squeeze=False)[0]
    axes[0].imshow(rgb)
    axes[0].set_title(f"{input_title}\n{rgb.shape[1]}x{rgb.shape[0]}", fontsize=9)
    before = rgb
    picture: Any
    for k, (ax, (key, step, state)) in enumerate(zip(axes[1:], states), start=1):
        only_mask = state.mask is not None and np.array_equal(state.image, before)
        picture, before = (state.mask if only_mask else state.image), state.image
        ax.imshow(picture, cmap="gray", vmin=0 if only_mask else None,
                  vmax=1 if only_mask else None, interpolation="nearest")
        ax.set_title(f"{k}. {step.name}" + ("" if key == step.name else f" ({key})")
                     + f"\n{picture.shape[1]}x{picture.shape[0]}", fontsize=9)
    for ax in axes:
        ax.set_axis_off()
    fig.suptitle(recipe.name if title is None else title, fontsize=11)
    return fig


def _thumbnail(rgb: np.ndarray, tile: int) -> np.ndarray:
    """``rgb`` scaled to fit a ``tile`` x ``tile`` square, padded with white."""
    import cv2
    h, w = rgb.shape[:2]
    scale = tile / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    small = cv2.resize(rgb, (nw, nh), interpolation=interp)
    out = np.full((tile, tile, 3), 255, np.uint8)
    y0, x0 = (tile - nh) // 2, (tile - nw) // 2
    out[y0:y0 + nh, x0:x0 + nw] = small
    return out


def contact_sheet(images: ImageBatch,
                  segmentations: Sequence[Segmentation | None] | str | None = None,
                  titles: Sequence[str] | None = None, cols: int = 6, tile: int = 128) -> Figure:
    """A grid of image thumbnails, with segmentation outlines when given.

    Parameters
    ----------
    images : sequence of ndarray or path, or ndarray (N, H, W, 3)
        The images.
    segmentations : sequence of Segmentation (or None), or str, optional
        One segmentation per image (None entries are shown without outlines),
        or a segmenter name to run on every image. Outlines are drawn at full
        resolution, then the image is shrunk.
    titles : sequence of str, optional
        One title per image (e.g. the class or file name).
    cols : int, default 6
        Thumbnails per row.
    tile : int, default 128
        Side of each thumbnail in pixels (images keep their aspect ratio and
        are padded with white); the figure is drawn at 100 dpi, so a
        thumbnail is ``tile`` pixels wide in a PNG saved at that resolution.

    Returns
    -------
    matplotlib.figure.Figure
        One axes per image (row-major order).

    Raises
    ------
    ValueError
        If `images` is empty, the lengths of `segmentations` or `titles`
        differ from it, or `cols` / `tile` are invalid.
    """
    items = _image_items(images)
    n = len(items)
    cols = check_int(cols, "cols", 1)
    tile = check_int(tile, "tile", 8)
    segs: list[Any]
    if segmentations is None or isinstance(segmentations, str):
        segs = [segmentations] * n
    else:
        segs = list(segmentations)
        if len(segs) != n:
            raise ValueError(f"segmentations: expected {n} (one per image), got {len(segs)}")
    if titles is not None:
        if isinstance(titles, str):
            raise TypeError("titles: expected a sequence of str (one per image), got a str")
        titles = [str(t) for t in titles]
        if len(titles) != n:
            raise ValueError(f"titles: expected {n} (one per image), got {len(titles)}")
    ncols = min(cols, n)
    nrows = math.ceil(n / ncols)
    side = tile / 100.0
    head = 0.22 if titles is not None else 0.04
    fig = _figure((ncols * (side + 0.04), nrows * (side + head)))
    fig.get_layout_engine().set(w_pad=0.01, h_pad=0.01, wspace=0.0, hspace=0.0)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for k in range(nrows * ncols):
        ax = axes[k // ncols][k % ncols]
        if k >= n:
            ax.remove()
            continue
        rgb = _as_rgb(items[k], f"images[{k}]")
        if segs[k] is not None:
            seg = _segmentation_of(rgb, segs[k], f"segmentations[{k}]")
            thickness = max(1, round(max(rgb.shape[:2]) / tile))
            rgb = seg.overlay(rgb, thickness=thickness)
        ax.imshow(_thumbnail(rgb, tile), interpolation="nearest")
        ax.set_axis_off()
        if titles is not None:
            ax.set_title(titles[k], fontsize=7)
    return fig


# --------------------------------------------------------------------------
# evaluation figures
# --------------------------------------------------------------------------
def confusion_matrix(cm: ArrayLike | CVReport, classes: Sequence[Any] | None = None,
                     normalize: bool | str = False, ax: Axes | None = None,
                     title: str | None = None) -> Figure:
    """Draw a confusion matrix with the value of every cell written in it.

    Parameters
    ----------
    cm : array_like of shape (K, K), or CVReport
        Counts, rows true classes and columns predicted classes (as in
        scikit-learn and :attr:`CVReport.confusion_matrix
        <leukfeat.evaluate.CVReport>`); a report gives both the matrix and the
        class names.
    classes : sequence of str, optional
        Class names in matrix order (default: the report's classes, or
        ``0..K-1``).
    normalize : bool or {"true", "pred", "all"}, default False
        Show proportions instead of counts: over each true class (True or
        ``"true"``: the diagonal is the per-class sensitivity), each
        predicted class or the whole matrix.
    ax : matplotlib Axes, optional
        Draw into this axes instead of a new figure.
    title : str, optional
        Axes title; default "Confusion matrix" (with the report's estimator
        name).

    Returns
    -------
    matplotlib.figure.Figure
        The matrix axes and its colour bar. ``ax.texts`` holds the K*K
        annotations in row-major order (counts as integers, proportions
        with two decimals).

    Raises
    ------
    ValueError
        If `cm` is not a square non-negative matrix, `classes` has the wrong
        length or `normalize` is invalid.
    """
    if _is_report(cm):
        report = cm
        cm = report.confusion_matrix
        if classes is None:
            classes = report.classes
        if title is None:
            title = f"Confusion matrix: {report.estimator}"
    try:
        cm = np.asarray(cm, dtype=float)
    except (TypeError, ValueError):
        raise ValueError("cm: expected a numeric (K, K) matrix or a CVReport") from None
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] == 0:
        raise ValueError(f"cm: expected a square (K, K) matrix, got shape {cm.shape}")
    if not np.isfinite(cm).all() or (cm < 0).any():
        raise ValueError("cm: values must be finite and non-negative")
    k = cm.shape[0]
    classes = [str(i) for i in range(k)] if classes is None else [str(c) for c in classes]
    if len(classes) != k:
        raise ValueError(f"classes: expected {k} names for a {k}x{k} matrix, got "
                         f"{len(classes)}")
    if normalize is True:
        normalize = "true"
    if normalize not in (False, None, "true", "pred", "all"):
        raise ValueError(f"normalize: expected False, True, 'true', 'pred' or 'all', got "
                         f"{normalize!r}")
    values = cm
    if normalize:
        axis = {"true": 1, "pred": 0, "all": None}[normalize]
        total = cm.sum(axis=axis, keepdims=axis is not None)
        with np.errstate(invalid="ignore", divide="ignore"):
            values = np.where(total > 0, cm / np.where(total > 0, total, 1), 0.0)
    size = max(3.5, 0.55 * k + 2.2)
    fig, ax = _fig_ax(ax, (size + 0.8, size))
    vmax = 1.0 if normalize else max(float(values.max()), 1.0)
    im = ax.imshow(values, cmap="Blues", vmin=0.0, vmax=vmax, interpolation="nearest")
    fig.colorbar(im, ax=ax, shrink=0.8, label="proportion" if normalize else "images")
    integer = not normalize and np.allclose(values, np.round(values))
    fontsize = 10 if k <= 6 else (8 if k <= 10 else 6)
    for i in range(k):
        for j in range(k):
            v = values[i, j]
            text = f"{v:.2f}" if normalize else (f"{int(round(v))}" if integer else f"{v:.3g}")
            ax.text(j, i, text, ha="center", va="center", fontsize=fontsize,
                    color="white" if v > 0.5 * vmax else "black")
    ticks = np.arange(k)
    long_names = max(len(c) for c in classes) > 6
    ax.set_xticks(ticks, classes, rotation=45 if long_names else 0,
                  ha="right" if long_names else "center")
    ax.set_yticks(ticks, classes)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if title is None:
        title = "Confusion matrix"
    if normalize:
        title += {"true": " (row-normalised)", "pred": " (column-normalised)",
                  "all": " (normalised)"}[normalize]
    ax.set_title(title)
    return fig


def _class_indices(y_true: ArrayLike, classes: Sequence[Any]) -> np.ndarray:
    y = np.asarray(y_true)
    if y.ndim != 1:
        raise ValueError(f"y_true: expected a 1-D array of labels, got shape {y.shape}")
    names = [str(c) for c in classes]
    lookup = {c: i for i, c in enumerate(names)}
    as_str = y.astype(str)
    idx = np.fromiter((lookup.get(v, -1) for v in as_str), dtype=np.intp, count=y.size)
    if (idx >= 0).all():
        return idx
    if np.issubdtype(y.dtype, np.integer) and y.size and y.min() >= 0 and y.max() < len(names):
        return y.astype(np.intp)  # integer codes 0..K-1
    unknown = sorted(set(as_str[idx < 0]))[:5]
    raise ValueError(f"y_true: labels {unknown} are not among the classes {names}")


def roc_curves(y_true: ArrayLike | CVReport, y_proba: ArrayLike | None = None,
               classes: Sequence[Any] | np.ndarray | None = None, ax: Axes | None = None) -> Figure:
    """One-vs-rest ROC curve of every class, with its AUC in the legend.

    Parameters
    ----------
    y_true : array_like of shape (n,), or CVReport
        True labels, or a report made with ``return_predictions=True``
        (its out-of-fold ``y_true``, ``y_proba`` and ``classes`` are used).
    y_proba : array_like of shape (n, K)
        Class probabilities (or scores), columns in `classes` order.
    classes : sequence, optional
        The K class labels of the columns (default: the sorted labels of
        `y_true`). Labels are matched as strings; integer codes ``0..K-1``
        are accepted too.
    ax : matplotlib Axes, optional
        Draw into this axes instead of a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        K curves labelled ``"<class> (AUC 0.912)"`` (``"AUC n/a"`` and no
        points for a class without positives or negatives) and the dashed
        chance diagonal (unlabelled); the title gives the macro AUC.

    Raises
    ------
    ValueError
        If a report has no predictions or probabilities, or the shapes or
        labels do not match.
    """
    from sklearn.metrics import auc, roc_curve

    if _is_report(y_true):
        report = y_true
        if report.y_true is None:
            raise ValueError("report: it holds no out-of-fold predictions; run "
                             "cross_validate/compare with return_predictions=True")
        if report.y_proba is None:
            raise ValueError(f"report: {report.estimator} has no predict_proba, so there "
                             "are no probabilities for ROC curves")
        y_true, y_proba = report.y_true, report.y_proba
        classes = report.classes if classes is None else classes
    if y_proba is None:
        raise ValueError("y_proba: required (an (n, K) array of class probabilities)")
    proba = np.asarray(y_proba, dtype=float)
    y = np.asarray(y_true)
    if proba.ndim != 2 or proba.shape[0] != y.shape[0]:
        raise ValueError(f"y_proba: expected shape ({y.shape[0]}, K), got {proba.shape}")
    if classes is None:
        classes = np.unique(y)
    classes = list(classes)
    if len(classes) != proba.shape[1]:
        raise ValueError(f"classes: expected {proba.shape[1]} (one per column of y_proba), "
                         f"got {len(classes)}")
    idx = _class_indices(y, classes)
    fig, ax = _fig_ax(ax, (5.2, 5.0))
    colours = _colours(len(classes))
    aucs = []
    for k, name in enumerate(classes):
        pos = idx == k
        if pos.all() or not pos.any():
            ax.plot([], [], color=colours[k], label=f"{name} (AUC n/a)")
            continue
        fpr, tpr, _ = roc_curve(pos, proba[:, k])
        a = float(auc(fpr, tpr))
        aucs.append(a)
        ax.plot(fpr, tpr, color=colours[k], lw=1.6, label=f"{name} (AUC {a:.3f})")
    ax.plot([0, 1], [0, 1], ls="--", lw=0.8, color="grey", label="_chance")
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_aspect("equal")
    ax.set_xlabel("false positive rate (1 - specificity)")
    ax.set_ylabel("true positive rate (sensitivity)")
    macro = f", macro AUC {np.mean(aucs):.3f}" if aucs else ""
    ax.set_title(f"ROC curves (one-vs-rest{macro})")
    ax.legend(loc="lower right", fontsize="small")
    return fig


# --------------------------------------------------------------------------
# feature importance
# --------------------------------------------------------------------------
def _names_through(step: Any, names: list[str] | None, step_name: str) -> list[str] | None:
    if step is None or (isinstance(step, str) and step == "passthrough"):
        return names
    if not hasattr(step, "get_feature_names_out"):
        raise ValueError(f"cannot name the features after step {step_name!r} "
                         f"({type(step).__name__} has no get_feature_names_out)")
    try:
        out = step.get_feature_names_out(names)
    except Exception as exc:
        raise ValueError(f"feature_names: cannot map them through step {step_name!r} "
                         f"({type(step).__name__}): {exc}") from None
    return None if out is None else [str(n) for n in out]


def _final_and_names(estimator: Any, names: list[str] | None) -> tuple[Any, list[str] | None]:
    """The final estimator of (nested) pipelines and the names of its input columns."""
    steps = getattr(estimator, "steps", None)
    if isinstance(steps, list) and steps:
        for step_name, step in steps[:-1]:
            names = _names_through(step, names, step_name)
        return _final_and_names(steps[-1][1], names)
    return estimator, names


def _raw_importance(est: Any, depth: int = 0) -> tuple[np.ndarray, str] | None:
    """(values, description) of a fitted final estimator, or None."""
    try:
        fi = est.feature_importances_
    except AttributeError:
        fi = None
    if fi is not None:
        return np.asarray(fi, dtype=float).ravel(), "importance (feature_importances_)"
    try:
        coef = est.coef_
    except AttributeError:
        coef = None
    if coef is not None:
        if hasattr(coef, "toarray"):
            coef = coef.toarray()
        coef = np.atleast_2d(np.asarray(coef, dtype=float))
        return np.abs(coef).mean(axis=0), "mean |coefficient| over classes"
    if depth > 5:
        return None
    inners = []
    for attr in ("estimator_", "best_estimator_"):
        inner = getattr(est, attr, None)
        if inner is not None and inner is not est:
            inners.append(inner)
    for cc in getattr(est, "calibrated_classifiers_", None) or []:
        inners.append(getattr(cc, "estimator", None))
    results = [r for r in (_raw_importance(i, depth + 1) for i in inners if i is not None)
               if r is not None]
    if not results:
        return None
    if len(results) == 1:
        return results[0]
    if len({r[0].shape for r in results}) != 1:
        return None
    return np.mean([r[0] for r in results], axis=0), results[0][1] + " (mean of ensemble)"


def _importances(estimator: Any, feature_names: Sequence[str] | None = None
                 ) -> tuple[np.ndarray, list[str], str, Any]:
    """(values, names, description, final estimator) of a fitted model.

    The names are mapped through the steps before the final estimator.
    """
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    if not hasattr(estimator, "fit"):
        raise TypeError(f"estimator: expected a fitted scikit-learn estimator, got "
                        f"{type(estimator).__name__}")
    try:
        check_is_fitted(estimator)
    except NotFittedError:
        raise ValueError(f"estimator: {type(estimator).__name__} is not fitted") from None
    names = None if feature_names is None else [str(n) for n in feature_names]
    final, names = _final_and_names(estimator, names)
    found = _raw_importance(final)
    if found is None:
        raise ValueError(f"{type(final).__name__} exposes neither feature_importances_ nor "
                         "coef_ (e.g. k-nearest neighbours or an RBF SVM); use "
                         "sklearn.inspection.permutation_importance for such models")
    values, kind = found
    if names is None:
        fin = getattr(final, "feature_names_in_", None)
        names = ([str(n) for n in fin] if fin is not None
                 else [f"x{i}" for i in range(values.size)])
    if len(names) != values.size:
        raise ValueError(f"feature_names: {len(names)} names for the {values.size} features "
                         "the model uses (give the names of the columns the model was "
                         "fitted on)")
    return np.nan_to_num(values, nan=0.0), names, kind, final


def feature_importance(estimator: Any, feature_names: Sequence[str] | None = None, top: int = 20,
                       ax: Axes | None = None) -> Figure:
    """Horizontal bar chart of the most important features of a fitted model.

    Tree ensembles (random forest, XGBoost) give ``feature_importances_``;
    linear models give the mean absolute coefficient over classes (on the
    standardised features of the ``logreg`` preset). The final estimator is
    found through nested pipelines and wrappers
    (:class:`~leukfeat.models.LabelEncodedClassifier`,
    ``CalibratedClassifierCV``, searches), and the names of its input
    columns through the earlier steps' ``get_feature_names_out``, so columns
    dropped by the ``VarianceThreshold`` (or all-NaN columns dropped by the
    imputer) are accounted for.

    Parameters
    ----------
    estimator : fitted estimator
        E.g. a :func:`~leukfeat.models.make_classifier` or
        :func:`~leukfeat.models.make_pipeline` pipeline.
    feature_names : sequence of str, optional
        Names of the columns the model was fitted on (before any selection).
        Not needed for a :func:`~leukfeat.models.make_pipeline` model (the
        extractor names its columns) or a model fitted on a DataFrame.
        Default names are ``x0, x1, ...``.
    top : int, default 20
        Number of bars (all features if there are fewer).
    ax : matplotlib Axes, optional
        Draw into this axes instead of a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        One bar per feature, the most important at the top; the y tick
        labels are the feature names.

    Raises
    ------
    ValueError
        If the model is not fitted, exposes neither importances nor
        coefficients, or `feature_names` does not match its input.
    """
    top = check_int(top, "top", 1)
    values, names, kind, final = _importances(estimator, feature_names)
    order = np.argsort(-values, kind="stable")[:top]
    t = order.size
    fig, ax = _fig_ax(ax, (6.5, max(2.5, 0.28 * t + 1.2)))
    pos = np.arange(t)[::-1]  # most important at the top
    ax.barh(pos, values[order], color="#4477aa")
    ax.set_yticks(pos, [names[i] for i in order], fontsize=8 if t > 25 else 9)
    ax.set_ylim(-0.6, t - 0.4)
    ax.set_xlabel(kind)
    ax.set_title(f"Top {t} features ({type(final).__name__})")
    return fig


# --------------------------------------------------------------------------
# feature distributions
# --------------------------------------------------------------------------
def _columns(X: Any, feature_names: Sequence[str] | None) -> tuple[np.ndarray, list[str]]:
    """(2-D float array, list of names) from a DataFrame or an array."""
    if hasattr(X, "columns") and hasattr(X, "to_numpy"):
        names = [str(c) for c in X.columns]
        try:
            arr = X.to_numpy(dtype=float, na_value=np.nan)
        except (TypeError, ValueError):
            raise ValueError("X: every column must be numeric") from None
        if feature_names is not None and [str(n) for n in feature_names] != names:
            raise ValueError("feature_names: must be omitted (or equal the columns) for a "
                             "DataFrame")
    else:
        try:
            arr = np.asarray(X, dtype=float)
        except (TypeError, ValueError):
            raise ValueError("X: expected a numeric matrix or a DataFrame") from None
        if arr.ndim != 2:
            raise ValueError(f"X: expected a 2-D matrix, got shape {arr.shape}")
        names = ([f"x{i}" for i in range(arr.shape[1])] if feature_names is None
                 else [str(n) for n in feature_names])
        if len(names) != arr.shape[1]:
            raise ValueError(f"feature_names: expected {arr.shape[1]} names, got "
                             f"{len(names)}")
    return np.asarray(arr, dtype=float), names


def _resolve_features(features: Sequence[str | int], names: Sequence[str]) -> list[int]:
    if isinstance(features, (str, Integral)):
        features = [features]
    features = list(features)
    if not features:
        raise ValueError("features: expected at least one feature")
    lookup = {n: i for i, n in enumerate(names)}
    out, unknown = [], []
    for f in features:
        if isinstance(f, (Integral, np.integer)) and not isinstance(f, bool):
            if not -len(names) <= int(f) < len(names):
                raise ValueError(f"features: index {f} out of range for {len(names)} "
                                 "features")
            out.append(int(f) % len(names))
        elif str(f) in lookup:
            out.append(lookup[str(f)])
        else:
            unknown.append(str(f))
    if unknown:
        raise ValueError(f"features: unknown {unknown}; available: {names[:8]}"
                         f"{' ...' if len(names) > 8 else ''}")
    return out


def _horizontal() -> dict[str, Any]:
    """Keyword of a horizontal boxplot (``vert`` is deprecated in matplotlib 3.10)."""
    import matplotlib
    major, minor = (int(v) for v in re.findall(r"\d+", matplotlib.__version__)[:2])
    return {"orientation": "horizontal"} if (major, minor) >= (3, 10) else {"vert": False}


def feature_distributions(X: Any, y: ArrayLike, features: Sequence[str | int],
                          classes: Sequence[Any] | None = None, bins: int = 30, *,
                          feature_names: Sequence[str] | None = None) -> Figure:
    """Per-class histograms and box plots of selected features.

    Parameters
    ----------
    X : DataFrame or array_like of shape (n, p)
        Feature matrix (NaN values are left out of each plot).
    y : array_like of shape (n,)
        Class labels.
    features : sequence of str or int
        Column names (of the DataFrame, or `feature_names`) or positions.
    classes : sequence, optional
        Classes to show, in order (default: the sorted labels of `y`).
    bins : int, default 30
        Histogram bins (shared by the classes of a feature).
    feature_names : sequence of str, optional
        Column names of an array `X` (default ``x0, x1, ...``).

    Returns
    -------
    matplotlib.figure.Figure
        One row per feature: a histogram axes (one density step curve per
        class, in `classes` order) and a box-plot axes (one box per class).

    Raises
    ------
    ValueError
        If shapes do not match, a feature or class is unknown or `bins` is
        invalid.
    """
    arr, names = _columns(X, feature_names)
    yy = np.asarray(y)
    if yy.ndim != 1 or yy.shape[0] != arr.shape[0]:
        raise ValueError(f"y: expected {arr.shape[0]} labels (one per row of X), got shape "
                         f"{yy.shape}")
    bins = check_int(bins, "bins", 1)
    cols = _resolve_features(features, names)
    if classes is None:
        classes = list(np.unique(yy))
    else:
        classes = list(classes)
        missing = [c for c in classes if not (yy == c).any()]
        if missing:
            raise ValueError(f"classes: {missing} do not occur in y")
    if not classes:
        raise ValueError("y: no labels")
    colours = _colours(len(classes))
    fig = _figure((9.0, 2.3 * len(cols) + 0.3))
    axes = fig.subplots(len(cols), 2, squeeze=False, width_ratios=[3, 2])
    for row, c in enumerate(cols):
        hist_ax, box_ax = axes[row]
        column = arr[:, c]
        finite = np.isfinite(column)
        per_class = [column[(yy == k) & finite] for k in classes]
        if finite.any():
            edges = np.histogram_bin_edges(column[finite], bins=bins)
            for k, (label, vals) in enumerate(zip(classes, per_class)):
                if vals.size:
                    hist_ax.hist(vals, bins=edges, density=True, histtype="step", lw=1.5,
                                 color=colours[k], label=str(label))
            data = [v if v.size else np.array([np.nan]) for v in per_class]
            bp = box_ax.boxplot(data, patch_artist=True, widths=0.6, showfliers=True,
                                flierprops={"markersize": 2},
                                medianprops={"color": "black"}, **_horizontal())
            for patch, colour in zip(bp["boxes"], colours):
                patch.set_facecolor(colour)
                patch.set_alpha(0.5)
        else:
            hist_ax.text(0.5, 0.5, "no finite values", ha="center", va="center",
                         transform=hist_ax.transAxes)
        box_ax.set_yticks(np.arange(1, len(classes) + 1), [str(k) for k in classes],
                          fontsize=8)
        box_ax.invert_yaxis()
        hist_ax.set_ylabel("density")
        hist_ax.set_title(names[c], fontsize=9, loc="left")
        if row == 0:
            hist_ax.legend(fontsize="small", title="class", title_fontsize="small")
    return fig


# --------------------------------------------------------------------------
# output
# --------------------------------------------------------------------------
def save_figure(fig: Figure, path: StrPath, dpi: int = 120) -> Path:
    """Write a figure to a file (PNG unless the suffix says otherwise).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    path : str or os.PathLike
        Output file; ``.png`` is appended when it has no suffix, and missing
        parent folders are created.
    dpi : int, default 120

    Returns
    -------
    pathlib.Path
        The file written.
    """
    if not hasattr(fig, "savefig"):
        raise TypeError(f"fig: expected a matplotlib Figure, got {type(fig).__name__}")
    if not is_path(path):
        raise TypeError(f"path: expected a file path, got {type(path).__name__}")
    dpi = check_int(dpi, "dpi", 1)
    path = Path(path)
    if not path.suffix:
        path = path.with_suffix(".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, facecolor="white")
    return path


def _slug(name: str, used: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name)).strip("._") or "model"
    slug, i = base, 2
    while slug in used:
        slug, i = f"{base}_{i}", i + 1
    used.add(slug)
    return slug


def _per_class_table(report: CVReport) -> str:
    cm = np.asarray(report.confusion_matrix)
    lines = ["| class | images | sensitivity | specificity | precision |", "|---|---|---|---|---|"]
    for i, c in enumerate(report.classes):
        def fmt(d: object) -> str:
            v = d.get(c, float("nan")) if isinstance(d, dict) else float("nan")
            return "n/a" if v is None or not np.isfinite(v) else f"{v:.3f}"
        lines.append(f"| {c} | {int(cm[i].sum())} | {fmt(report.recall)} | "
                     f"{fmt(report.specificity)} | {fmt(report.precision)} |")
    return "\n".join(lines)


def _top_features_by_f(arr: np.ndarray, y: ArrayLike, k: int) -> list[int]:
    """Indices of the ``k`` columns with the largest ANOVA F (NaN -> column median)."""
    import warnings

    from sklearn.feature_selection import f_classif

    X = arr.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        med = np.nanmedian(np.where(np.isfinite(X), X, np.nan), axis=0)
        med = np.where(np.isfinite(med), med, 0.0)
        bad = ~np.isfinite(X)
        X[bad] = np.take(med, np.nonzero(bad)[1])
        f, _ = f_classif(X, y)
    f = np.where(np.isfinite(f), f, -np.inf)
    return [int(i) for i in np.argsort(-f, kind="stable")[:k] if np.isfinite(f[i])]


def _sample_indices(n: int, y: Sequence[Any] | np.ndarray | None, limit: int) -> list[int]:
    """Up to ``limit`` indices, spread over the classes when labels are given."""
    if y is None or len(y) != n:
        return list(range(min(n, limit)))
    yy = np.asarray(y)
    classes = list(np.unique(yy))
    per = max(1, limit // len(classes))
    out = []
    for c in classes:
        out.extend(np.flatnonzero(yy == c)[:per].tolist())
    return out[:limit]


def cv_report(report_or_comparison: CVReport | Comparison | dict[str, CVReport],
              out_dir: StrPath, *, X: Any = None, y: ArrayLike | None = None,
              feature_names: Sequence[str] | None = None, model: Any = None,
              images: ImageBatch | None = None,
              segmentations: Sequence[Segmentation | None] | str | None = None,
              confound: ConfoundReport | None = None,
              provenance: Mapping[str, str] | None = None) -> Path:
    """Write a Markdown report of a cross-validation, with its figures.

    The report (``report.md`` in `out_dir`) holds the summary table
    (:meth:`Comparison.to_markdown <leukfeat.evaluate.Comparison.to_markdown>`
    or :meth:`CVReport.to_markdown <leukfeat.evaluate.CVReport.to_markdown>`)
    and, per model, the per-class sensitivity / specificity / precision, the
    confusion matrix and, when the reports hold out-of-fold probabilities
    (``return_predictions=True``), the ROC curves. With more inputs it adds:
    feature importances (`model`), per-class distributions of the four most
    discriminating features (`X` and `y`; ranked by the model's importances
    when they name columns of `X`, else by ANOVA F) and a contact sheet of
    segmented images (`images`). Every figure is a PNG next to the report,
    linked from it.

    Parameters
    ----------
    report_or_comparison : CVReport, Comparison or dict of str to CVReport
        The result of :func:`~leukfeat.evaluate.cross_validate` or
        :func:`~leukfeat.evaluate.compare`.
    out_dir : str or os.PathLike
        Output folder (created if needed; files of the same names are
        replaced).
    X : DataFrame or array_like of shape (n, p), optional
        The feature matrix that was evaluated.
    y : array_like of shape (n,), optional
        Its labels (also used to pick a few images per class).
    feature_names : sequence of str, optional
        Column names of an array `X` (and of the model's input).
    model : fitted estimator or dict of str to fitted estimator, optional
        Model(s) fitted on all the data, for the feature-importance figures
        (a model without importances gets a note instead).
    images : sequence of ndarray or path, optional
        Images to show segmented (at most 24, spread over the classes of `y`
        when it has one label per image).
    segmentations : sequence of Segmentation or str, optional
        Segmentations of `images`, or a segmenter name; default
        ``"nucleus_anchored"``.
    confound : ConfoundReport, optional
        The result of :func:`~leukfeat.evaluate.confound_check` on the same
        images: a ``background only (confound check)`` row in the summary
        table, a "Confound check" section (verdict, scores, advice, whether
        its folds are the models'), and a warning under the summary when the
        background rivals the best model
        (:meth:`~leukfeat.evaluate.ConfoundReport.rivals`).
    provenance : dict of str to str, optional
        Where the numbers come from, e.g. ``{"Data": "...", "Command":
        "..."}``: one bullet per entry (values are Markdown) under the
        report's first line.

    Returns
    -------
    pathlib.Path
        The path of ``report.md``.

    Raises
    ------
    TypeError
        If `report_or_comparison` is not a report, a comparison or a dict of
        reports.
    """
    from datetime import datetime

    from . import __version__

    obj = report_or_comparison
    if _is_comparison(obj):
        reports, summary = dict(obj.reports), obj.to_markdown()
    elif _is_report(obj):
        reports, summary = {obj.estimator: obj}, obj.to_markdown()
    elif isinstance(obj, dict) and obj and all(_is_report(r) for r in obj.values()):
        reports = dict(obj)
        summary = "\n\n".join(r.to_markdown() for r in reports.values())
    else:
        raise TypeError("report_or_comparison: expected a CVReport, a Comparison or a dict "
                        f"of CVReports, got {type(obj).__name__}")
    names: Any = None
    arr: Any = None
    if X is not None:
        arr, names = _columns(X, feature_names)
    yy = None if y is None else np.asarray(y)
    if arr is not None and yy is not None and (yy.ndim != 1 or yy.shape[0] != arr.shape[0]):
        raise ValueError(f"y: expected {arr.shape[0]} labels (one per row of X), got shape "
                         f"{yy.shape}")
    items = None if images is None else _image_items(images)
    if confound is not None and not (hasattr(confound, "cv_report")
                                     and hasattr(confound, "rivals")):
        raise TypeError("confound: expected a ConfoundReport (leukfeat.evaluate."
                        f"confound_check), got {type(confound).__name__}")
    if provenance is not None and not hasattr(provenance, "items"):
        raise TypeError(f"provenance: expected a dict of str to str, got "
                        f"{type(provenance).__name__}")
    if isinstance(segmentations, str):
        from .segment import METHODS
        if segmentations not in METHODS:
            raise ValueError(f"segmentations: expected a segmenter name "
                             f"({', '.join(sorted(METHODS))}) or one Segmentation per "
                             f"image, got {segmentations!r}")
    elif items is not None and segmentations is not None:
        segmentations = list(segmentations)
        if len(segmentations) != len(items):
            raise ValueError(f"segmentations: expected {len(items)} (one per image), got "
                             f"{len(segmentations)}")

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    first = next(iter(reports.values()))
    used: set[str] = set()
    md = ["# leukfeat cross-validation report", "",
          f"Generated {datetime.now().isoformat(timespec='seconds')} by leukfeat "
          f"{__version__}: {first.n_images} images, {len(first.classes)} classes "
          f"({', '.join(first.classes)}), {first.cv}-fold {first.split} cross-validation"
          + ("" if first.n_duplicate_groups is None
             else f", {first.n_duplicate_groups} duplicate groups kept within folds") + ".",
          ""]
    if provenance:
        md += [f"- **{key}**: {value}" for key, value in provenance.items()] + [""]
    warning = None
    if confound is not None:
        from .evaluate import Comparison

        best = max(reports, key=lambda k: reports[k].balanced_accuracy)
        summary = Comparison.from_reports(
            {**reports, "background only (confound check)": confound.cv_report}
        ).to_markdown()
        warning = confound.warning(reports[best].balanced_accuracy, model=best)
    md += ["## Summary", "", summary, ""]
    if warning:
        md += [f"**Warning**: {warning}.", ""]

    if confound is not None:
        same = np.array_equal(confound.cv_report.fold_of_sample, first.fold_of_sample)
        ci = confound.cv_report.ci.get("balanced_accuracy")
        cit = "" if ci is None else f" (95 % CI {ci[0]:.3f}–{ci[1]:.3f})"
        verdict = ("**confounded**" if confound.confounded
                   else "no background confound detected")
        md += ["## Confound check", "",
               "A random forest that sees only 30 colour statistics of the background "
               "(the pixels outside the dilated white-cell mask; "
               "`leukfeat.evaluate.confound_check`), cross-validated on "
               + ("the same folds as the models" if same else
                  "**other folds than the models**") + ".", "",
               f"Balanced accuracy {confound.balanced_accuracy:.3f}{cit}, accuracy "
               f"{confound.accuracy:.3f}; chance {confound.chance['uniform']:.3f} "
               f"(majority class {confound.chance['majority']:.3f}); flagged above "
               f"{confound.chance['uniform'] + confound.margin:.3f}: {verdict}.", "",
               confound.message, ""]

    for name, rep in reports.items():
        slug = _slug(name, used)
        md += [f"## {name}", ""]
        if len(reports) > 1 or confound is not None:
            md += [rep.to_markdown(), ""]
        md += [_per_class_table(rep), ""]
        png = save_figure(confusion_matrix(rep), out / f"confusion_{slug}.png")
        md += [f"![Confusion matrix of {name}]({png.name})", ""]
        if rep.y_proba is not None and rep.y_true is not None:
            png = save_figure(roc_curves(rep), out / f"roc_{slug}.png")
            md += [f"![ROC curves of {name}]({png.name})", ""]
        else:
            md += ["_No out-of-fold probabilities in this report (run with "
                   "`return_predictions=True` for ROC curves)._", ""]

    importance_names = None
    if model is not None:
        models = model if isinstance(model, dict) else {"model": model}
        given = feature_names if feature_names is not None else names
        used_imp: set[str] = set()
        md += ["## Feature importance", ""]
        for mname, est in models.items():
            label = mname if isinstance(model, dict) else type(est).__name__
            use = given
            try:
                try:
                    values, inames, _, _ = _importances(est, use)
                except ValueError:
                    if use is None:
                        raise
                    use = None  # the names of X do not fit this model: let it name them
                    values, inames, _, _ = _importances(est, None)
                fig = feature_importance(est, use, top=20)
            except ValueError as exc:
                md += [f"_{label}: no feature importances ({exc})._", ""]
                continue
            png = save_figure(fig, out / f"importance_{_slug(mname, used_imp)}.png")
            md += [f"![Feature importance of {label}]({png.name})", ""]
            if importance_names is None:
                importance_names = [inames[i] for i in np.argsort(-values, kind="stable")]

    if arr is not None and yy is not None:
        chosen, how = [], "ANOVA F-score"
        if importance_names:
            lookup = {n: i for i, n in enumerate(names)}
            chosen = [lookup[n] for n in importance_names if n in lookup][:4]
            how = "model importance"
        if not chosen:
            chosen, how = _top_features_by_f(arr, yy, 4), "ANOVA F-score"
        if chosen:
            fig = feature_distributions(arr, yy, chosen, feature_names=names)
            png = save_figure(fig, out / "distributions.png")
            md += ["## Feature distributions", "",
                   f"The {len(chosen)} top features by {how}: "
                   + ", ".join(f"`{names[i]}`" for i in chosen) + ".", "",
                   f"![Per-class feature distributions]({png.name})", ""]

    if items is not None:
        picks = _sample_indices(len(items), yy, 24)
        if yy is not None and len(yy) == len(items):
            titles = [str(yy[i]) for i in picks]
        elif all(is_path(items[i]) for i in picks):
            titles = [Path(items[i]).name for i in picks]
        else:
            titles = [f"image {i}" for i in picks]
        shown, shown_titles, segs, unreadable = [], [], [], 0
        for i, title in zip(picks, titles):
            try:
                rgb = _as_rgb(items[i], f"images[{i}]")
            except Exception:  # listed as unreadable in the report
                unreadable += 1
                continue
            if segmentations is None or isinstance(segmentations, str):
                try:
                    seg = _segmentation_of(rgb, segmentations or "nucleus_anchored",
                                           "segmentations")
                except Exception:  # shown without outlines
                    seg = None
            else:
                seg = segmentations[i]
            shown.append(rgb)
            shown_titles.append(title)
            segs.append(seg)
        how = (f"`{segmentations or 'nucleus_anchored'}` segmentation"
               if segmentations is None or isinstance(segmentations, str) else "segmentation")
        md += ["## Segmentation", ""]
        if shown:
            fig = contact_sheet(shown, segs, titles=shown_titles, cols=6, tile=128)
            png = save_figure(fig, out / "segmentation.png", dpi=100)
            md += [f"{len(shown)} of {len(items)} images with their {how} (cells green, "
                   "nuclei yellow).", "", f"![Segmented images]({png.name})", ""]
        if unreadable:
            md += [f"_{unreadable} of the selected images could not be read._", ""]

    path = out / "report.md"
    path.write_text("\n".join(md).rstrip() + "\n", encoding="utf-8")
    return path
