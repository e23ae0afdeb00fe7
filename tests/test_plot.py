"""Tests for leukfeat.plot: figures, PNG output and the Markdown report."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification
from sklearn.metrics import roc_auc_score
from sklearn.svm import LinearSVC

from leukfeat import plot
from leukfeat.datasets import make_cells
from leukfeat.evaluate import compare, cross_validate
from leukfeat.io import read_image
from leukfeat.models import make_classifier, make_pipeline
from leukfeat.segment import DEFAULT_METHOD, Segmentation, segment

matplotlib = pytest.importorskip("matplotlib")
from matplotlib.figure import Figure  # noqa: E402

LABELS = np.array(["benign", "early", "pre"])


# --------------------------------------------------------------------------- #
# fixtures
# --------------------------------------------------------------------------- #

@pytest.fixture(scope="module")
def cells():
    return make_cells(4, size=96, random_state=0)


@pytest.fixture(scope="module")
def data():
    """3 classes, string labels; column 2 constant, column 4 all-NaN (both dropped)."""
    X, y = make_classification(n_samples=150, n_features=8, n_informative=5, n_redundant=1,
                               n_classes=3, random_state=0)
    X[:, 2] = 1.0
    X[:, 4] = np.nan
    names = [f"feat_{i}" for i in range(X.shape[1])]
    return X, LABELS[y], names


@pytest.fixture(scope="module")
def comparison(data):
    X, y, _ = data
    return compare({"logreg": make_classifier("logreg"), "knn": make_classifier("knn")},
                   X, y, cv=3, n_bootstrap=50, return_predictions=True)


@pytest.fixture(scope="module")
def rf(data):
    X, y, _ = data
    return make_classifier("rf", n_estimators=40).fit(X, y)


pytestmark = pytest.mark.filterwarnings(
    "ignore:Skipping features without any observed values:UserWarning")


def _labels(ax) -> list:
    return [t.get_text() for t in ax.get_yticklabels()]


def _bars_top_down(ax) -> list:
    """(tick label, bar width) of a horizontal bar chart, from the top bar down."""
    names = {round(float(pos), 6): t.get_text()
             for pos, t in zip(ax.get_yticks(), ax.get_yticklabels())}
    bars = sorted(ax.patches, key=lambda b: -(b.get_y() + b.get_height() / 2))
    return [(names[round(b.get_y() + b.get_height() / 2, 6)], b.get_width()) for b in bars]


# --------------------------------------------------------------------------- #
# import
# --------------------------------------------------------------------------- #

def test_import_does_not_import_matplotlib():
    code = ("import sys, leukfeat.plot; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_works_without_pyplot(cells, tmp_path):
    code = ("import sys; from leukfeat import plot; from leukfeat.datasets import make_cells; "
            "import numpy as np; "
            "fig = plot.confusion_matrix(np.eye(2, dtype=int) * 3, ['a', 'b']); "
            f"plot.save_figure(fig, {str(tmp_path / 'cm.png')!r}); "
            "print('matplotlib.pyplot' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if k not in ("MPLBACKEND", "DISPLAY")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=env)
    assert out.stdout.strip() == "False"
    assert read_image(tmp_path / "cm.png").ndim == 3


# --------------------------------------------------------------------------- #
# segmentation
# --------------------------------------------------------------------------- #

def test_segmentation_overlay(cells):
    image = cells.images[0]
    seg = segment(image)
    fig = plot.segmentation_overlay(image, seg, title="cell 0")
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 1
    ax = fig.axes[0]
    assert ax.get_title() == "cell 0"
    shown = np.asarray(ax.images[0].get_array())
    np.testing.assert_array_equal(shown, seg.overlay(image))
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["cell", "nucleus"]
    # default title; a segmenter name instead of a result
    fig = plot.segmentation_overlay(image, "otsu")
    assert fig.axes[0].get_title().startswith("otsu: ")


def test_segmentation_overlay_into_given_axes(cells):
    fig = Figure()
    axes = fig.subplots(1, 2)
    assert plot.segmentation_overlay(cells.images[1], segment(cells.images[1]),
                                     ax=axes[1]) is fig
    assert len(axes[1].images) == 1 and len(axes[0].images) == 0


def test_segmentation_overlay_errors(cells):
    with pytest.raises(ValueError, match="does not match"):
        plot.segmentation_overlay(cells.images[0], Segmentation.empty((10, 10)))
    with pytest.raises(TypeError, match="Segmentation"):
        plot.segmentation_overlay(cells.images[0], 3)
    with pytest.raises(ValueError, match="method"):
        plot.segmentation_overlay(cells.images[0], "nope")
    with pytest.raises(TypeError, match="Axes"):
        plot.segmentation_overlay(cells.images[0], "otsu", ax="not an axes")


def test_contact_sheet(cells):
    images = list(cells.images)
    titles = [f"img {i}" for i in range(4)]
    fig = plot.contact_sheet(images, titles=titles, cols=3, tile=64)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 4  # the unused grid cells are removed
    assert [ax.get_title() for ax in fig.axes] == titles
    for ax in fig.axes:
        assert np.asarray(ax.images[0].get_array()).shape == (64, 64, 3)
    w, h = fig.get_size_inches()
    assert w > h  # 3 columns, 2 rows


def test_contact_sheet_overlays(cells):
    images = list(cells.images)
    plain = plot.contact_sheet(images, cols=4)
    segs = [segment(im) for im in images]
    segs[2] = None  # shown without outlines
    over = plot.contact_sheet(images, segmentations=segs, cols=4)
    named = plot.contact_sheet(images, segmentations=DEFAULT_METHOD, cols=4)

    def pixels(fig, k):
        return np.asarray(fig.axes[k].images[0].get_array())

    assert not np.array_equal(pixels(plain, 0), pixels(over, 0))
    np.testing.assert_array_equal(pixels(plain, 2), pixels(over, 2))
    np.testing.assert_array_equal(pixels(over, 0), pixels(named, 0))
    assert pixels(plain, 0).shape == (128, 128, 3)


def test_contact_sheet_reads_paths_and_stacks(cells, tmp_path):
    paths = cells.save(tmp_path / "imgs")
    fig = plot.contact_sheet(paths, segmentations="lab_kmeans", cols=2)
    assert len(fig.axes) == len(paths)
    fig = plot.contact_sheet(cells.images, cols=10)  # a 4-D stack
    assert len(fig.axes) == 4


def test_contact_sheet_errors(cells):
    images = list(cells.images)
    with pytest.raises(ValueError, match="at least one"):
        plot.contact_sheet([])
    with pytest.raises(TypeError, match="single image"):
        plot.contact_sheet(images[0])
    with pytest.raises(TypeError, match="single path"):
        plot.contact_sheet("img.png")
    with pytest.raises(ValueError, match="segmentations: expected 4"):
        plot.contact_sheet(images, segmentations=[None])
    with pytest.raises(ValueError, match="titles: expected 4"):
        plot.contact_sheet(images, titles=["a"])
    with pytest.raises(ValueError, match="cols"):
        plot.contact_sheet(images, cols=0)
    with pytest.raises(ValueError, match="tile"):
        plot.contact_sheet(images, tile=2.5)


# --------------------------------------------------------------------------- #
# confusion matrix and ROC
# --------------------------------------------------------------------------- #

def test_confusion_matrix_annotations():
    cm = np.array([[5, 1, 0], [2, 7, 1], [0, 3, 9]])
    fig = plot.confusion_matrix(cm, ["benign", "early", "pre"], title="CM")
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2  # the matrix and its colour bar
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.texts] == [str(v) for v in cm.ravel()]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["benign", "early", "pre"]
    assert _labels(ax) == ["benign", "early", "pre"]
    assert ax.get_title() == "CM"
    np.testing.assert_array_equal(np.asarray(ax.images[0].get_array()), cm)


def test_confusion_matrix_normalized():
    cm = np.array([[5, 5], [0, 0]])
    fig = plot.confusion_matrix(cm, ["a", "b"], normalize=True)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.texts] == ["0.50", "0.50", "0.00", "0.00"]
    assert "row-normalised" in ax.get_title()
    fig = plot.confusion_matrix(cm, normalize="all")
    assert [t.get_text() for t in fig.axes[0].texts] == ["0.50", "0.50", "0.00", "0.00"]
    assert _labels(fig.axes[0]) == ["0", "1"]


def test_confusion_matrix_from_report(comparison):
    report = comparison.reports["logreg"]
    fig = plot.confusion_matrix(report)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.texts] == [str(v) for v in
                                                 report.confusion_matrix.ravel()]
    assert _labels(ax) == list(report.classes)
    assert "logreg" in ax.get_title()


def test_confusion_matrix_into_axes():
    fig = Figure()
    ax = fig.add_subplot()
    assert plot.confusion_matrix([[1, 0], [0, 1]], ax=ax) is fig


@pytest.mark.parametrize("cm,classes,kw,match", [
    ([[1, 2, 3]], None, {}, "square"),
    ([[1, -1], [0, 2]], None, {}, "non-negative"),
    ([[1, np.nan], [0, 2]], None, {}, "finite"),
    ([[1, 0], [0, 1]], ["a", "b", "c"], {}, "classes: expected 2"),
    ([[1, 0], [0, 1]], None, {"normalize": "rows"}, "normalize"),
    ([["a", "b"], ["c", "d"]], None, {}, "numeric"),
])
def test_confusion_matrix_errors(cm, classes, kw, match):
    with pytest.raises(ValueError, match=match):
        plot.confusion_matrix(cm, classes, **kw)


def test_roc_curves_from_arrays():
    rng = np.random.default_rng(0)
    y = np.repeat(LABELS, 20)
    proba = rng.dirichlet(np.ones(3), size=60)
    proba[np.arange(60), np.repeat(np.arange(3), 20)] += 0.3
    fig = plot.roc_curves(y, proba, LABELS)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    curves = [ln for ln in ax.lines if "AUC" in ln.get_label()]
    assert len(curves) == 3 and len(ax.lines) == 4  # + the chance diagonal
    for k, (name, line) in enumerate(zip(LABELS, curves)):
        auc = roc_auc_score(y == name, proba[:, k])
        assert line.get_label() == f"{name} (AUC {auc:.3f})"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == [ln.get_label() for ln in curves]
    assert "macro AUC" in ax.get_title()
    # integer codes 0..K-1 and default classes
    codes = np.repeat(np.arange(3), 20)
    assert len(plot.roc_curves(codes, proba, LABELS).axes[0].lines) == 4
    assert len(plot.roc_curves(y, proba).axes[0].lines) == 4


def test_roc_curves_class_without_positives():
    y = np.array(["a", "a", "b", "b"])
    proba = np.array([[0.7, 0.2, 0.1], [0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.4, 0.5, 0.1]])
    ax = plot.roc_curves(y, proba, ["a", "b", "c"]).axes[0]
    labels = [ln.get_label() for ln in ax.lines if "AUC" in ln.get_label()]
    assert labels == ["a (AUC 1.000)", "b (AUC 1.000)", "c (AUC n/a)"]


def test_roc_curves_from_report(comparison):
    report = comparison.reports["knn"]
    ax = plot.roc_curves(report).axes[0]
    curves = [ln for ln in ax.lines if "AUC" in ln.get_label()]
    assert [ln.get_label().split(" (")[0] for ln in curves] == list(report.classes)


def test_roc_curves_report_without_predictions(data):
    X, y, _ = data
    report = cross_validate(make_classifier("logreg"), X, y, cv=3, n_bootstrap=0)
    with pytest.raises(ValueError, match="return_predictions=True"):
        plot.roc_curves(report)
    report = cross_validate(LinearSVC(), np.nan_to_num(X), y, cv=3, n_bootstrap=0,
                            return_predictions=True)
    assert report.y_true is not None and report.y_proba is None
    with pytest.raises(ValueError, match="no predict_proba"):
        plot.roc_curves(report)


def test_roc_curves_errors():
    y = np.array(["a", "b", "a", "b"])
    proba = np.full((4, 2), 0.5)
    with pytest.raises(ValueError, match="y_proba: expected shape"):
        plot.roc_curves(y, proba[:3], ["a", "b"])
    with pytest.raises(ValueError, match="classes: expected 2"):
        plot.roc_curves(y, proba, ["a", "b", "c"])
    with pytest.raises(ValueError, match="not among the classes"):
        plot.roc_curves(y, proba, ["x", "y"])
    with pytest.raises(ValueError, match="y_proba: required"):
        plot.roc_curves(y)


# --------------------------------------------------------------------------- #
# feature importance
# --------------------------------------------------------------------------- #

def test_feature_importance_maps_through_dropped_columns(rf, data):
    _, _, names = data
    kept = [n for i, n in enumerate(names) if i not in (2, 4)]  # constant, all-NaN
    importances = rf.named_steps["classifier"].feature_importances_
    assert importances.size == len(kept)
    expected = dict(zip(kept, importances))
    fig = plot.feature_importance(rf, names, top=4)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert len(ax.patches) == 4
    bars = _bars_top_down(ax)
    order = sorted(kept, key=lambda n: -expected[n])[:4]
    assert [lab for lab, _ in bars] == order  # most important at the top
    for lab, width in bars:
        assert width == pytest.approx(expected[lab])
    # top larger than the number of features: every kept feature once
    ax = plot.feature_importance(rf, names, top=50).axes[0]
    assert len(ax.patches) == len(kept) and sorted(_labels(ax)) == sorted(kept)


def test_feature_importance_default_names_and_dataframe(data):
    X, y, names = data
    model = make_classifier("rf", n_estimators=20).fit(X, y)
    labels = _labels(plot.feature_importance(model, top=3).axes[0])
    assert all(re.fullmatch(r"x\d", lab) for lab in labels)
    assert not {"x2", "x4"} & set(labels)
    model = make_classifier("rf", n_estimators=20).fit(pd.DataFrame(X, columns=names), y)
    labels = _labels(plot.feature_importance(model, top=6).axes[0])
    assert set(labels) <= set(names) - {"feat_2", "feat_4"} and len(labels) == 6


@pytest.mark.parametrize("name,kind", [
    pytest.param("xgboost", "feature_importances_", marks=pytest.mark.skipif(
        importlib.util.find_spec("xgboost") is None,
        reason="xgboost is not installed (extra leukfeat[xgboost])")),
    ("logreg", "coefficient")])
def test_feature_importance_xgboost_and_linear(name, kind, data):
    X, y, names = data
    model = make_classifier(name, **({"n_estimators": 20} if name == "xgboost" else {}))
    model.fit(X, y)
    ax = plot.feature_importance(model, names, top=5).axes[0]
    assert len(ax.patches) == 5
    assert kind in ax.get_xlabel()
    assert set(_labels(ax)) <= set(names) - {"feat_2", "feat_4"}
    if name == "logreg":
        coef = np.abs(model.named_steps["classifier"].coef_).mean(axis=0)
        assert max(b.get_width() for b in ax.patches) == pytest.approx(coef.max())


def test_feature_importance_image_pipeline(cells):
    y = np.asarray(cells.class_names)[cells.labels]
    model = make_pipeline("rf", groups=("shape", "colour"), n_estimators=20)
    model.fit(list(cells.images), y)
    names = set(model.named_steps["features"].get_feature_names_out())
    ax = plot.feature_importance(model, top=7).axes[0]
    assert len(ax.patches) == 7 and set(_labels(ax)) <= names


@pytest.mark.parametrize("name", ["knn", "svm"])
def test_feature_importance_unavailable(name, data):
    X, y, names = data
    model = make_classifier(name).fit(X, y)
    with pytest.raises(ValueError, match="neither feature_importances_ nor coef_"):
        plot.feature_importance(model, names)


def test_feature_importance_errors(rf, data):
    _, _, names = data
    with pytest.raises(ValueError, match="not fitted"):
        plot.feature_importance(make_classifier("rf"), names)
    with pytest.raises(ValueError, match="feature_names"):
        plot.feature_importance(rf, names[:3])
    with pytest.raises(ValueError, match="top"):
        plot.feature_importance(rf, names, top=0)
    with pytest.raises(TypeError, match="estimator"):
        plot.feature_importance("rf", names)


# --------------------------------------------------------------------------- #
# feature distributions
# --------------------------------------------------------------------------- #

def test_feature_distributions_dataframe(data):
    X, y, names = data
    df = pd.DataFrame(X, columns=names)
    fig = plot.feature_distributions(df, y, ["feat_0", "feat_3", "feat_4"], bins=12)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 6  # a histogram and a box plot per feature
    hist0, box0 = fig.axes[0], fig.axes[1]
    assert hist0.get_title(loc="left") == "feat_0"
    assert len(hist0.patches) == 3  # one step histogram per class
    assert [t.get_text() for t in hist0.get_legend().get_texts()] == list(LABELS)
    assert [t.get_text() for t in box0.get_yticklabels()] == list(LABELS)
    assert "no finite values" in [t.get_text() for t in fig.axes[4].texts]


def test_feature_distributions_array_names_and_classes(data):
    X, y, names = data
    fig = plot.feature_distributions(X, y, [0, "feat_1"], classes=["pre", "benign"],
                                     feature_names=names)
    assert len(fig.axes) == 4
    assert fig.axes[2].get_title(loc="left") == "feat_1"
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["pre", "benign"]
    fig = plot.feature_distributions(X, y, 5)
    assert fig.axes[0].get_title(loc="left") == "x5"


def test_feature_distributions_errors(data):
    X, y, names = data
    with pytest.raises(ValueError, match="unknown"):
        plot.feature_distributions(X, y, ["nope"], feature_names=names)
    with pytest.raises(ValueError, match="out of range"):
        plot.feature_distributions(X, y, [99])
    with pytest.raises(ValueError, match="y: expected 150"):
        plot.feature_distributions(X, y[:10], [0])
    with pytest.raises(ValueError, match="feature_names: expected 8"):
        plot.feature_distributions(X, y, [0], feature_names=names[:2])
    with pytest.raises(ValueError, match="do not occur"):
        plot.feature_distributions(X, y, [0], classes=["ALL"])
    with pytest.raises(ValueError, match="at least one"):
        plot.feature_distributions(X, y, [])
    with pytest.raises(ValueError, match="bins"):
        plot.feature_distributions(X, y, [0], bins=0)


# --------------------------------------------------------------------------- #
# files
# --------------------------------------------------------------------------- #

def test_save_figure(tmp_path):
    fig = plot.confusion_matrix([[3, 1], [0, 4]], ["a", "b"])
    path = plot.save_figure(fig, tmp_path / "deep" / "er" / "cm.png", dpi=50)
    assert path == tmp_path / "deep" / "er" / "cm.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = read_image(path)
    w, h = fig.get_size_inches()
    assert image.shape == (round(h * 50), round(w * 50), 3)
    assert plot.save_figure(fig, tmp_path / "noext").name == "noext.png"
    with pytest.raises(TypeError, match="Figure"):
        plot.save_figure("fig", tmp_path / "x.png")


def _linked_pngs(md: str) -> list:
    return re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)


def test_cv_report_comparison_with_everything(comparison, data, rf, cells, tmp_path):
    X, y, names = data
    knn = make_classifier("knn").fit(X, y)
    out = tmp_path / "report"
    path = plot.cv_report(comparison, out, X=X, y=y, feature_names=names,
                          model={"rf": rf, "knn": knn}, images=list(cells.images))
    assert path == out / "report.md"
    md = path.read_text(encoding="utf-8")
    assert comparison.to_markdown() in md
    pngs = _linked_pngs(md)
    assert sorted(pngs) == sorted([
        "confusion_logreg.png", "roc_logreg.png", "confusion_knn.png", "roc_knn.png",
        "importance_rf.png", "distributions.png", "segmentation.png"])
    for name in pngs:
        assert read_image(out / name).ndim == 3
    assert sorted(p.name for p in out.iterdir()) == sorted(pngs + ["report.md"])
    assert "knn: no feature importances" in md
    assert "by model importance" in md
    assert "## Segmentation" in md and "4 of 4 images" in md


def test_cv_report_single_report_minimal(data, tmp_path):
    X, y, _ = data
    report = cross_validate(make_classifier("logreg"), X, y, cv=3, n_bootstrap=0)
    path = plot.cv_report(report, tmp_path)
    md = path.read_text(encoding="utf-8")
    assert report.to_markdown() in md
    pngs = _linked_pngs(md)
    assert len(pngs) == 1 and pngs[0].startswith("confusion_Pipeline")
    assert "return_predictions=True" in md  # no ROC without predictions
    for name in _linked_pngs(md):
        assert (tmp_path / name).is_file()


def test_cv_report_distributions_by_f_score_and_images_by_class(data, cells, tmp_path):
    X, y, names = data
    report = cross_validate(make_classifier("logreg"), X, y, cv=3, n_bootstrap=0,
                            return_predictions=True)
    y_cells = np.asarray(cells.class_names)[cells.labels]
    # X/y for the distributions; images with their own labels are not used here
    path = plot.cv_report(report, tmp_path, X=pd.DataFrame(X, columns=names), y=y,
                          images=list(cells.images), segmentations="otsu")
    md = path.read_text(encoding="utf-8")
    assert "by ANOVA F-score" in md
    assert "`feat_2`" not in md and "`feat_4`" not in md  # constant / all-NaN
    assert "`otsu` segmentation" in md
    assert "roc_" in md
    # images labelled per class: titles are the labels
    path = plot.cv_report(report, tmp_path / "b", y=y_cells, images=list(cells.images))
    assert "segmentation.png" in path.read_text(encoding="utf-8")


def test_cv_report_errors(data, tmp_path, cells):
    with pytest.raises(TypeError, match="CVReport"):
        plot.cv_report({"a": 1}, tmp_path)
    X, y, _ = data
    report = cross_validate(make_classifier("logreg"), X, y, cv=3, n_bootstrap=0)
    with pytest.raises(ValueError, match="segmentations: expected 4"):
        plot.cv_report(report, tmp_path, images=list(cells.images), segmentations=[None])
    with pytest.raises(ValueError, match="segmenter name"):
        plot.cv_report(report, tmp_path, images=list(cells.images), segmentations="nope")
    with pytest.raises(ValueError, match="y: expected 150"):
        plot.cv_report(report, tmp_path, X=X, y=y[:5])
    assert not (tmp_path / "report.md").exists()  # checked before writing anything


def test_cv_report_lists_unreadable_images(data, cells, tmp_path):
    X, y, _ = data
    report = cross_validate(make_classifier("logreg"), X, y, cv=3, n_bootstrap=0)
    paths = cells.save(tmp_path / "imgs")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    path = plot.cv_report(report, tmp_path / "out", images=paths + [tmp_path / "broken.png"])
    md = path.read_text(encoding="utf-8")
    assert "4 of 5 images" in md and "1 of the selected images could not be read" in md
    assert "img_0000.png" not in md  # titles are in the figure, not the text
    assert (tmp_path / "out" / "segmentation.png").is_file()
