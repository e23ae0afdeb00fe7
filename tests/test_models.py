"""Tests for leukfeat.models: classifier presets, LabelEncodedClassifier, make_pipeline."""

from __future__ import annotations

import importlib.util
import traceback
import warnings
from unittest import SkipTest

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from leukfeat import models
from leukfeat.datasets import make_cells
from leukfeat.models import (CLASSIFIERS, LabelEncodedClassifier, make_classifier,
                             make_pipeline)
from leukfeat.transformers import FeatureExtractor, StainNormalizer

LABELS = np.array(["benign", "early", "pre"])

HAVE_XGBOOST = importlib.util.find_spec("xgboost") is not None
needs_xgboost = pytest.mark.skipif(not HAVE_XGBOOST,
                                   reason="xgboost is not installed (extra leukfeat[xgboost])")
#: Every preset; xgboost's tests are skipped when the extra is not installed.
PRESET_PARAMS = [pytest.param(n, marks=needs_xgboost) if n == "xgboost" else n
                 for n in CLASSIFIERS]


@pytest.fixture(scope="module")
def data():
    """3-class tabular data with 5 % NaN and string labels."""
    X, y = make_classification(n_samples=150, n_features=10, n_informative=5,
                               n_redundant=2, n_classes=3, random_state=0)
    rng = np.random.default_rng(0)
    X[rng.random(X.shape) < 0.05] = np.nan
    X[:, 7] = 1.0  # a constant column: dropped by the VarianceThreshold step
    return X, LABELS[y]


def _fast(name, **params):
    """The preset, with fewer trees for the ensemble ones (tests stay fast)."""
    if name == "rf":
        params.setdefault("n_estimators", 60)
    if name == "xgboost":
        params.setdefault("n_estimators", 60)
    if name == "hgb":
        params.setdefault("max_iter", 40)
    return make_classifier(name, **params)


# --------------------------------------------------------------------------- #
# make_classifier
# --------------------------------------------------------------------------- #

@pytest.mark.parametrize("name", PRESET_PARAMS)
def test_presets_fit_predict_with_nan_and_string_labels(name, data):
    X, y = data
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
    clf = _fast(name).fit(Xtr, ytr)
    assert list(clf.classes_) == list(LABELS)
    pred = clf.predict(Xte)
    assert pred.shape == yte.shape and set(pred) <= set(LABELS)
    proba = clf.predict_proba(Xte)
    assert proba.shape == (len(Xte), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert np.mean(pred == yte) > 0.6  # well above chance (1/3)


@pytest.mark.parametrize("name", PRESET_PARAMS)
def test_presets_accept_int_labels(name, data):
    X, y = data
    y_int = np.searchsorted(LABELS, y) + 5  # 5, 6, 7: not 0..K-1
    clf = _fast(name).fit(X, y_int)
    assert list(clf.classes_) == [5, 6, 7]
    assert set(clf.predict(X)) <= {5, 6, 7}


def test_preset_structure():
    for name in CLASSIFIERS:
        if name == "xgboost" and not HAVE_XGBOOST:
            continue
        steps = [s for s, _ in make_classifier(name).steps]
        scaled = name in ("knn", "svm", "logreg")
        assert steps == ["impute", "variance"] + (["scale"] if scaled else []) + ["classifier"]
    assert [s for s, _ in make_classifier("rf", variance_threshold=None).steps] == \
        ["impute", "classifier"]
    calibrated = make_classifier("svm")[-1]
    assert (calibrated.method, calibrated.ensemble) == ("sigmoid", False)
    svm = calibrated.estimator
    assert (svm.kernel, svm.C, svm.gamma, svm.class_weight) == ("rbf", 10, "scale", "balanced")
    knn = make_classifier("knn")[-1]
    assert (knn.n_neighbors, knn.weights) == (5, "distance")
    rf = make_classifier("rf", random_state=3)[-1]
    assert (rf.n_estimators, rf.n_jobs, rf.class_weight, rf.random_state) == \
        (500, 1, "balanced", 3)
    assert make_classifier("logreg")[-1].class_weight == "balanced"
    hgb = make_classifier("hgb", random_state=2)[-1]
    assert (type(hgb).__name__, hgb.max_iter, hgb.learning_rate, hgb.class_weight,
            hgb.early_stopping, hgb.random_state, hgb.min_samples_leaf) == \
        ("HGBClassifier", 200, 0.1, "balanced", False, 2, "auto")
    assert make_classifier("knn")[0].strategy == "median"
    if not HAVE_XGBOOST:
        return
    xgb = make_classifier("xgboost", random_state=4)[-1]
    assert isinstance(xgb, LabelEncodedClassifier)
    p = xgb.estimator.get_params()
    assert (p["n_estimators"], p["learning_rate"], p["max_depth"], p["subsample"],
            p["colsample_bytree"], p["tree_method"], p["n_jobs"], p["random_state"]) == \
        (400, 0.1, 6, 0.9, 0.5, "hist", 1, 4)


def test_params_override_the_final_estimator():
    assert make_classifier("svm", C=1.5)[-1].estimator.C == 1.5
    assert make_classifier("rf", n_estimators=7, n_jobs=2)[-1].n_jobs == 2
    assert make_classifier("hgb", max_iter=7)[-1].max_iter == 7
    if HAVE_XGBOOST:
        assert make_classifier("xgboost", max_depth=3)[-1].estimator.max_depth == 3


def test_unknown_name_and_params():
    with pytest.raises(ValueError, match="knn, svm, rf, xgboost, logreg, hgb"):
        make_classifier("lda")
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['n_trees'\]"):
        make_classifier("rf", n_trees=10)
    if HAVE_XGBOOST:
        with pytest.raises(ValueError, match="'gamma_'"):
            make_classifier("xgboost", gamma_=1)


@pytest.mark.parametrize("name", ["svm", "rf", pytest.param("xgboost", marks=needs_xgboost),
                                  "logreg", "knn", "hgb"])
def test_deterministic_with_random_state(name, data):
    X, y = data
    p1 = _fast(name, random_state=7).fit(X, y).predict_proba(X)
    p2 = _fast(name, random_state=7).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(p1, p2)
    if name in ("rf", "xgboost"):
        p3 = _fast(name, random_state=8).fit(X, y).predict_proba(X)
        assert not np.array_equal(p1, p3)


@needs_xgboost
def test_xgboost_is_imported_lazily():
    import subprocess
    import sys
    code = ("import sys, leukfeat, leukfeat.models, leukfeat.transformers; "
            "assert 'xgboost' not in sys.modules, 'imported'; "
            "leukfeat.models.make_classifier('xgboost'); assert 'xgboost' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------- #
# LabelEncodedClassifier
# --------------------------------------------------------------------------- #

def test_label_encoded_classifier(data):
    X, y = data
    X = np.nan_to_num(X)
    clf = LabelEncodedClassifier(LogisticRegression(max_iter=1000)).fit(X, y)
    assert list(clf.classes_) == list(LABELS)
    np.testing.assert_array_equal(clf.estimator_.classes_, [0, 1, 2])
    ref = LogisticRegression(max_iter=1000).fit(X, y)
    np.testing.assert_array_equal(clf.predict(X), ref.predict(X))
    np.testing.assert_allclose(clf.predict_proba(X), ref.predict_proba(X))
    np.testing.assert_allclose(clf.decision_function(X), ref.decision_function(X))
    assert clf.score(X, y) == ref.score(X, y)
    with pytest.raises(ValueError, match="at least 2 classes"):
        clone(clf).fit(X, np.full(len(X), "pre"))
    from sklearn.neighbors import KNeighborsClassifier
    knn = LabelEncodedClassifier(KNeighborsClassifier())
    assert not hasattr(knn, "decision_function")


@needs_xgboost
def test_label_encoded_xgboost_importances(data):
    X, y = data
    clf = make_classifier("xgboost", n_estimators=20, variance_threshold=None).fit(X, y)
    imp = clf[-1].feature_importances_
    assert imp.shape == (X.shape[1],) and imp[7] == 0.0  # the constant column


# --------------------------------------------------------------------------- #
# scikit-learn's estimator checks
# --------------------------------------------------------------------------- #

_PIPELINE_MUTATES_STEPS = ("sklearn's Pipeline fits the estimators of its `steps` parameter "
                           "in place (by design of Pipeline, not of the preset)")
_NAN_BY_DESIGN = ("the presets accept NaN by design (median imputation of failed/no-cell "
                  "rows), but Pipeline does not report the first step's allow_nan tag")
PRESET_EXPECTED_FAILURES = {
    "check_estimators_overwrite_params": _PIPELINE_MUTATES_STEPS,
    "check_dont_overwrite_parameters": _PIPELINE_MUTATES_STEPS,
    "check_estimators_nan_inf": _NAN_BY_DESIGN,
}
SVM_EXPECTED_FAILURES = {
    **PRESET_EXPECTED_FAILURES,
    "check_supervised_y_2d": (
        "scikit-learn 1.9 bug in CalibratedClassifierCV(ensemble=False): a column-vector y "
        "of shape (n, 1) raises IndexError in cross_val_predict instead of being raveled "
        "with a DataConversionWarning (1-D y works; ensemble=True is not affected)"),
}


def _preset_expected_failures(est):
    if isinstance(est, LabelEncodedClassifier):
        return {}  # every applicable check passes
    if type(est[-1]).__name__ == "CalibratedClassifierCV":
        return SVM_EXPECTED_FAILURES
    return PRESET_EXPECTED_FAILURES


def _check_estimators():
    estimators = [
        LabelEncodedClassifier(LogisticRegression()),
        make_classifier("knn"), make_classifier("svm"), make_classifier("logreg"),
        make_classifier("rf", n_estimators=20), make_classifier("hgb", max_iter=20),
    ]
    if HAVE_XGBOOST:   # collected only when the extra is installed
        from xgboost import XGBClassifier
        estimators += [LabelEncodedClassifier(XGBClassifier(n_estimators=10, n_jobs=1)),
                       make_classifier("xgboost", n_estimators=20)]
    return estimators


def run_check(estimator, check):
    """Run one sklearn check (see tests/test_transformers.py::run_check)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            check(estimator)
        except SkipTest:
            raise
        except Exception as exc:
            frames = "".join(traceback.format_exception(exc, limit=-4))
            raise AssertionError(f"{type(exc).__name__}: {exc}\n{frames}") from None


@parametrize_with_checks(_check_estimators(), expected_failed_checks=_preset_expected_failures,
                         xfail_strict=True)
def test_sklearn_estimator_checks(estimator, check):
    run_check(estimator, check)


# --------------------------------------------------------------------------- #
# make_pipeline
# --------------------------------------------------------------------------- #

@pytest.fixture(scope="module")
def cell_paths(tmp_path_factory):
    ds = make_cells(36, 2, size=96, random_state=1)
    paths = ds.save(tmp_path_factory.mktemp("pipeline_cells"))
    return np.array(paths, dtype=object), np.array(ds.class_names)[ds.labels]


def test_make_pipeline_structure(tmp_path):
    pipe = make_pipeline("knn", groups=("shape",), options={"n_fourier": 4}, n_jobs=2,
                         cache=tmp_path, cell="central", on_error="nan", n_neighbors=3)
    assert [s for s, _ in pipe.steps] == ["features", "classifier"]
    fx = pipe.named_steps["features"]
    assert isinstance(fx, FeatureExtractor)
    assert (fx.groups, fx.options, fx.n_jobs, fx.cache, fx.cell, fx.on_error) == \
        (("shape",), {"n_fourier": 4}, 2, tmp_path, "central", "nan")
    assert pipe.get_params()["classifier__classifier__n_neighbors"] == 3
    stained = make_pipeline("rf", stain="macenko", random_state=5)
    assert isinstance(stained[0], StainNormalizer)
    assert (stained[0].method, stained[0].random_state) == ("macenko", 5)
    assert stained[-1][-1].random_state == 5
    assert make_pipeline()[-1][-1].__class__.__name__ == "HGBClassifier"
    custom = make_pipeline(LogisticRegression())
    assert isinstance(custom[-1], LogisticRegression)


def test_make_pipeline_errors():
    with pytest.raises(ValueError, match="embedder"):
        make_pipeline(embedder=object())
    with pytest.raises(ValueError, match="stain"):
        make_pipeline(stain="vahadane")
    with pytest.raises(ValueError, match="lda"):
        make_pipeline("lda")
    with pytest.raises(ValueError, match="unknown parameter"):
        make_pipeline("svm", degree_of_freedom=2)
    with pytest.raises(ValueError, match="preset name"):
        make_pipeline(LogisticRegression(), C=3)


def test_make_pipeline_end_to_end_rf(cell_paths):
    X, y = cell_paths
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.33, stratify=y, random_state=0)
    pipe = make_pipeline("rf", n_estimators=200).fit(list(Xtr), ytr)
    assert set(pipe.classes_) == {"class_0", "class_1"}
    acc = np.mean(pipe.predict(list(Xte)) == yte)
    assert acc > 0.8, acc
    names = pipe[:-1].get_feature_names_out()
    assert len(names) == pipe.named_steps["features"].n_features_out_


@pytest.mark.parametrize("classifier, stain", [pytest.param("xgboost", None, marks=needs_xgboost),
                                               ("svm", "reinhard")])
def test_make_pipeline_other_presets(cell_paths, classifier, stain):
    X, y = cell_paths
    pipe = make_pipeline(classifier, stain=stain, groups=("shape", "colour"),
                         **({"n_estimators": 50} if classifier == "xgboost" else {}))
    pipe.fit(list(X[:24]), y[:24])
    assert np.mean(pipe.predict(list(X[24:])) == y[24:]) > 0.7
    assert pipe.predict_proba(list(X[24:])).shape == (12, 2)


@needs_xgboost
def test_hybrid_vote_averages_its_members_on_their_columns(data):
    X, y = data
    vote = models.make_hybrid_vote(slice(0, 6), [6, 7, 8, 9], random_state=3)
    assert [n for n, _ in vote.estimators] == ["handcrafted", "cnn", "both"]
    vote.fit(X, y)
    # reference: the three presets fitted by hand on the same columns
    refs = [make_classifier("xgboost", random_state=3).fit(X[:, :6], y),
            make_classifier("logreg", random_state=3).fit(X[:, 6:], y),
            make_classifier("xgboost", random_state=3).fit(X, y)]
    expected = np.mean([r.predict_proba(c) for r, c in
                        zip(refs, (X[:, :6], X[:, 6:], X))], axis=0)
    np.testing.assert_allclose(vote.predict_proba(X), expected, atol=1e-6)
    np.testing.assert_array_equal(vote.predict(X), LABELS[expected.argmax(axis=1)])
    two = models.make_hybrid_vote(slice(0, 6), slice(6, None), members=("handcrafted", "cnn"))
    assert [n for n, _ in two.estimators] == ["handcrafted", "cnn"]
    for bad in ((), ("cnn", "cnn"), ("trees",)):
        with pytest.raises(ValueError, match="members"):
            models.make_hybrid_vote(slice(0, 6), slice(6, None), members=bad)


@needs_xgboost
def test_hybrid_vote_image_member_is_a_logreg_on_the_image_columns(data):
    X, y = data
    four = models.make_hybrid_vote(slice(0, 4), [4, 5, 6], image=[7, 8, 9], random_state=1)
    assert [n for n, _ in four.estimators] == ["handcrafted", "cnn", "both", "image"]
    four.fit(X, y)
    refs = [(make_classifier("xgboost", random_state=1), X[:, :4]),
            (make_classifier("logreg", random_state=1), X[:, 4:7]),
            (make_classifier("xgboost", random_state=1), X[:, :7]),
            (make_classifier("logreg", random_state=1), X[:, 7:])]
    expected = np.mean([r.fit(c, y).predict_proba(c) for r, c in refs], axis=0)
    np.testing.assert_allclose(four.predict_proba(X), expected, atol=1e-6)
    only = models.make_hybrid_vote(slice(0, 4), [4, 5, 6], image=[7, 8, 9],
                                   members=("image",)).fit(X, y)
    np.testing.assert_allclose(only.predict_proba(X), refs[3][0].predict_proba(X[:, 7:]),
                               atol=1e-6)
    with pytest.raises(ValueError, match="needs the image columns"):
        models.make_hybrid_vote(slice(0, 4), slice(4, None), members=("cnn", "image"))


def test_embedding_columns_split_the_two_blocks():
    X = np.zeros((2, 3 + 2 * 5))
    np.testing.assert_array_equal(models.EmbeddingColumns(3, 0)(X), np.arange(3, 8))
    np.testing.assert_array_equal(models.EmbeddingColumns(3, 1)(X), np.arange(8, 13))
    with pytest.raises(ValueError, match="equal width"):
        models.EmbeddingColumns(3, 0)(np.zeros((2, 3 + 9)))
    with pytest.raises(ValueError, match="block"):
        models.EmbeddingColumns(3, 2)


def _mean_rgb(images):
    return np.stack([im.mean(axis=(0, 1)) for im in images])


def _saved_and_loaded(pipe, tmp_path):
    """``pipe`` through a safe model file (embedders are not trusted by
    default: they can name any code)."""
    from leukfeat import persist
    path = persist.save_model(pipe, tmp_path / "vote.skops")
    return persist.load_model(path, trusted=["leukfeat.embed.CallableEmbedder",
                                             "leukfeat.embed.EmbeddingTransformer",
                                             "test_models._mean_rgb"])


@needs_xgboost
def test_make_pipeline_vote_whole_image_adds_the_image_member(cell_paths, tmp_path):
    from leukfeat.embed import CallableEmbedder
    from leukfeat.io import read_image
    X, y = cell_paths
    emb = CallableEmbedder(_mean_rgb, name="rgb")
    pipe = make_pipeline("vote", groups=("shape", "colour"), embedder=emb, whole_image=True)
    assert [n for n, _ in pipe.named_steps["features"].transformer_list] == [
        "handcrafted", "cnn", "image"]
    assert pipe.named_steps["features"].transformer_list[2][1].crop == "image"
    pipe.fit(list(X[:24]), y[:24])
    n_hand = pipe.named_steps["features"].transformer_list[0][1].n_features_out_
    members = pipe.named_steps["classifier"].named_estimators_
    widths = {name: m.named_steps["model"][0].n_features_in_ for name, m in members.items()}
    assert widths == {"handcrafted": n_hand, "cnn": 3, "both": n_hand + 3, "image": 3}
    # the image member saw the mean colour of the whole field (up to the
    # resize to 224 pixels), the cnn member that of the cell crops
    F = pipe.named_steps["features"].transform(list(X[:4]))
    whole = _mean_rgb([read_image(p) for p in X[:4]])
    seen = {name: members[name].named_steps["select"].transform(F) for name in ("image", "cnn")}
    np.testing.assert_allclose(seen["image"], whole, atol=0.5)
    assert np.abs(seen["cnn"] - whole).max() > 5
    proba = pipe.predict_proba(list(X[24:]))
    assert proba.shape == (12, 2) and np.allclose(proba.sum(axis=1), 1)
    np.testing.assert_allclose(_saved_and_loaded(pipe, tmp_path).predict_proba(list(X[24:])),
                               proba)
    with pytest.raises(ValueError, match="whole_image"):
        make_pipeline("xgboost", whole_image=True)


@needs_xgboost
def test_make_pipeline_vote_gives_each_member_its_columns(cell_paths, tmp_path):
    from leukfeat.embed import CallableEmbedder
    X, y = cell_paths
    emb = CallableEmbedder(_mean_rgb, name="rgb")
    pipe = make_pipeline("vote", groups=("shape", "colour"), embedder=emb)
    pipe.fit(list(X[:24]), y[:24])
    n_hand = pipe.named_steps["features"].transformer_list[0][1].n_features_out_
    widths = {name: member.named_steps["model"][0].n_features_in_
              for name, member in pipe.named_steps["classifier"].named_estimators_.items()}
    assert widths == {"handcrafted": n_hand, "cnn": 3, "both": n_hand + 3}
    proba = pipe.predict_proba(list(X[24:]))
    assert proba.shape == (12, 2) and np.allclose(proba.sum(axis=1), 1)
    assert np.mean(pipe.predict(list(X[24:])) == y[24:]) > 0.7
    clone(pipe)
    # the fitted pipeline saves and loads as a safe model file
    np.testing.assert_allclose(_saved_and_loaded(pipe, tmp_path).predict_proba(list(X[24:])),
                               proba)
    with pytest.raises(ValueError, match="needs an embedder"):
        make_pipeline("vote")
    with pytest.raises(ValueError, match="overrides"):
        make_pipeline("vote", embedder=emb, max_depth=3)


def test_module_exports():
    assert set(models.__all__) >= {"make_classifier", "make_pipeline", "CLASSIFIERS",
                                   "LabelEncodedClassifier", "make_hybrid_vote"}
    assert isinstance(make_classifier("knn"), Pipeline)


def test_hybrid_pipeline_reads_and_segments_each_image_once(cell_paths, monkeypatch):
    """The hybrid pipeline's Segmenter step reads and segments every image
    once for both members (before: once per member), and the members' rows
    are those each computes alone from the paths."""
    from leukfeat import io, segment
    from leukfeat.embed import CallableEmbedder, EmbeddingTransformer
    from leukfeat.transformers import FeatureExtractor, Segmenter

    X, y = cell_paths
    paths = list(X[:8])
    emb = CallableEmbedder(_mean_rgb, name="rgb")
    pipe = make_pipeline("logreg", groups=("shape", "colour"), embedder=emb, whole_image=True)
    assert [name for name, _ in pipe.steps] == ["segment", "features", "classifier"]
    assert isinstance(pipe.named_steps["segment"], Segmenter)
    reads, segs = [], []
    real_read, real_segment = io.read_image, segment.segment
    monkeypatch.setattr(io, "read_image", lambda p, **k: reads.append(p) or real_read(p, **k))
    monkeypatch.setattr(segment, "segment",
                        lambda im, m=segment.DEFAULT_METHOD, **k: segs.append(1)
                        or real_segment(im, m, **k))
    F = pipe[:-1].fit_transform(paths)
    assert sorted(reads) == sorted(paths) and len(segs) == len(paths)
    monkeypatch.undo()
    alone = np.hstack([FeatureExtractor(groups=("shape", "colour")).fit_transform(paths),
                       EmbeddingTransformer(emb, crop="cell").fit_transform(paths),
                       EmbeddingTransformer(emb, crop="image").fit_transform(paths)])
    np.testing.assert_allclose(F, alone, rtol=1e-6)
    # a file that cannot be read passes the Segmenter and fails in each member
    pipe.set_params(features__handcrafted__on_error="nan", features__cnn__on_error="nan",
                    features__image__on_error="nan")
    with pytest.warns(UserWarning, match="1 of 2 images failed"):
        F2 = pipe[:-1].fit_transform([paths[0], "missing.png"])
    assert np.isnan(F2[1]).all() and np.allclose(F2[0], F[0], rtol=1e-6)


def test_every_preset_is_class_balanced_the_same_way():
    """class_weight="balanced" (the default of every preset): svm, rf and
    logreg by their class_weight, xgboost by balanced sample weights (equal
    to fitting with compute_sample_weight), knn by votes divided by class
    frequency (equal to the formula); None switches it off everywhere."""
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.utils.class_weight import compute_sample_weight

    from leukfeat.models import BalancedKNeighborsClassifier, LabelEncodedClassifier

    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(0, 1, (40, 3)), rng.normal(1.5, 1, (8, 3))]
    y = np.array(["big"] * 40 + ["small"] * 8)
    for name in ("svm", "rf", "logreg", "hgb"):
        final = make_classifier(name).steps[-1][1]
        inner = final.estimator if name == "svm" else final
        assert inner.class_weight == "balanced"
        off = make_classifier(name, class_weight=None).steps[-1][1]
        assert (off.estimator if name == "svm" else off).class_weight is None
    if HAVE_XGBOOST:
        from xgboost import XGBClassifier

        xgb = make_classifier("xgboost").steps[-1][1]
        assert xgb.class_weight == "balanced"
        ref = XGBClassifier(n_estimators=20, random_state=0).fit(
            X, (y == "small").astype(int), sample_weight=compute_sample_weight("balanced", y))
        got = LabelEncodedClassifier(XGBClassifier(n_estimators=20, random_state=0),
                                     class_weight="balanced").fit(X, y)
        np.testing.assert_allclose(got.predict_proba(X), ref.predict_proba(X), rtol=1e-6)
    knn = make_classifier("knn").steps[-1][1]
    assert isinstance(knn, BalancedKNeighborsClassifier)
    assert type(make_classifier("knn", class_weight=None).steps[-1][1]) is KNeighborsClassifier
    plain = KNeighborsClassifier(n_neighbors=7).fit(X, y)
    balanced = BalancedKNeighborsClassifier(n_neighbors=7).fit(X, y)
    expected = plain.predict_proba(X) * (len(y) / (2 * np.array([40, 8])))
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(balanced.predict_proba(X), expected)
    assert (balanced.predict(X) == "small").sum() > (plain.predict(X) == "small").sum()
    with pytest.raises(ValueError, match="class_weight"):
        make_classifier("rf", class_weight="uniform")
