"""Tests for leukfeat.evaluate: duplicates, cross-validation, comparison, confounds."""

from __future__ import annotations

import dataclasses
import json
import shutil

import cv2
import numpy as np
import pytest
from sklearn import metrics
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression, RidgeClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.tree import DecisionTreeClassifier

from leukfeat import evaluate as ev
from leukfeat.datasets import make_cells
from leukfeat.io import read_image


# --------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dup_folder(tmp_path_factory):
    """8 distinct synthetic PNGs plus an exact copy, a JPEG re-encoding, a
    resized copy and a broken file."""
    root = tmp_path_factory.mktemp("dups")
    data = make_cells(8, 2, 96, random_state=3)
    paths = [str(p) for p in data.save(root)]
    copy = root / "copy_of_0.png"
    shutil.copy(paths[0], copy)
    jpeg = root / "reencoded_1.jpg"
    assert cv2.imwrite(str(jpeg), cv2.imread(paths[1]), [cv2.IMWRITE_JPEG_QUALITY, 85])
    resized = root / "resized_2.png"
    assert cv2.imwrite(str(resized), cv2.resize(cv2.imread(paths[2]), (72, 72),
                                                interpolation=cv2.INTER_AREA))
    broken = root / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\nthis is not an image")
    return paths + [str(copy), str(jpeg), str(resized), str(broken)]


@pytest.fixture(scope="module")
def classification():
    X, y = make_classification(300, 10, n_informative=5, n_classes=3, n_clusters_per_class=1,
                               class_sep=0.8, random_state=0)
    return X, y


def _mean_colour(images):
    """Per-image mean and std of RGB: a tiny feature extractor for paths."""
    return np.array([np.r_[im.reshape(-1, 3).mean(0), im.reshape(-1, 3).std(0)]
                     for im in (read_image(p) for p in images)])


@pytest.fixture(scope="module")
def cell_paths_with_dups(tmp_path_factory):
    """24 synthetic images (2 classes) plus an exact copy and a JPEG copy."""
    root = tmp_path_factory.mktemp("cells")
    data = make_cells(24, 2, 64, random_state=5)
    paths = [str(p) for p in data.save(root)]
    labels = list(data.labels)
    copy = root / "copy_of_3.png"
    shutil.copy(paths[3], copy)
    jpeg = root / "jpeg_of_4.jpg"
    cv2.imwrite(str(jpeg), cv2.imread(paths[4]), [cv2.IMWRITE_JPEG_QUALITY, 85])
    paths += [str(copy), str(jpeg)]
    labels += [labels[3], labels[4]]
    return paths, np.array(labels)


# --------------------------------------------------------------------------
# phash / find_duplicates
# --------------------------------------------------------------------------
def test_phash_is_standard_64_bit_hash():
    image = make_cells(1, 1, 96, random_state=0).images[0]
    h = ev.phash(image)
    assert h.shape == (8, 8) and h.dtype == bool
    assert h.sum() == 32          # thresholded at the median of 64 coefficients
    assert h[0, 0]                # the DC term is above the median
    assert ev.phash(image, hash_size=16).shape == (16, 16)
    # scale and intensity-range invariant
    assert np.array_equal(ev.phash(image.astype(np.float64) / 255.0), h)
    assert (ev.phash(cv2.resize(image, (200, 200))) != h).sum() <= 2


def test_find_duplicates_exact_near_distinct_and_broken(dup_folder):
    dups = ev.find_duplicates(dup_folder)
    n = len(dup_folder)
    copy, jpeg, resized, broken = n - 4, n - 3, n - 2, n - 1
    g = dups.group_ids
    assert g.shape == (n,) and len(dups) == n
    assert g[0] == g[copy] and g[1] == g[jpeg] and g[2] == g[resized]
    # distinct synthetic images are not grouped
    assert len(set(g[:8].tolist())) == 8
    assert dups.n_groups_with_duplicates == 3
    assert dups.groups() == [[0, copy], [1, jpeg], [2, resized]]
    assert dups.exact_pairs == [(0, copy)]
    near = {(i, j) for i, j, _ in dups.near_pairs}
    assert near == {(1, jpeg), (2, resized)}
    assert all(0 <= d <= 4 for _, _, d in dups.near_pairs)
    # the broken file is recorded, alone in its group
    assert list(dups.errors) == [broken]
    assert "broken.png" in dups.errors[broken]
    assert np.sum(g == g[broken]) == 1
    # ids are unique per singleton and numbered by first appearance
    _, first = np.unique(g, return_index=True)
    assert np.all(np.diff(first) > 0) and set(g.tolist()) == set(range(g.max() + 1))
    assert "3 groups of duplicates" in dups.summary()


def test_find_duplicates_exact_only_and_threads(dup_folder):
    exact = ev.find_duplicates(dup_folder, near=False)
    assert exact.groups() == [[0, len(dup_folder) - 4]]
    assert exact.near_pairs == []
    threaded = ev.find_duplicates(dup_folder, n_jobs=2)
    assert np.array_equal(threaded.group_ids, ev.find_duplicates(dup_folder).group_ids)


def test_find_duplicates_is_transitive():
    """A chain of small steps between two different images forms one group."""
    images = make_cells(4, 2, 96, random_state=3).images
    a, b = images[0].astype(np.float64), images[3].astype(np.float64)
    chain = [((1 - t) * a + t * b).round().astype(np.uint8) for t in np.linspace(0, 1, 31)]
    hashes = [ev.phash(im) for im in chain]
    steps = [int((hashes[k] != hashes[k + 1]).sum()) for k in range(len(chain) - 1)]
    ends = int((hashes[0] != hashes[-1]).sum())
    assert max(steps) <= 4 < ends          # precondition of the test
    dups = ev.find_duplicates(chain + [images[1]])
    assert dups.group_ids[0] == dups.group_ids[len(chain) - 1]
    assert dups.groups() == [list(range(len(chain)))]
    assert (0, len(chain) - 1) not in {(i, j) for i, j, _ in dups.near_pairs}


def test_find_duplicates_arguments(dup_folder):
    with pytest.raises(TypeError, match="paths"):
        ev.find_duplicates(dup_folder[0])
    with pytest.raises(TypeError, match="paths"):
        ev.find_duplicates([1, 2])
    with pytest.raises(ValueError, match="max_distance"):
        ev.find_duplicates(dup_folder, max_distance=65)
    with pytest.raises(ValueError, match="hash_size"):
        ev.find_duplicates(dup_folder, hash_size=1)
    empty = ev.find_duplicates([])
    assert len(empty) == 0 and empty.groups() == [] and empty.n_groups_with_duplicates == 0
    missing = ev.find_duplicates(["no/such/file.png", "no/such/file.png"])
    assert missing.groups() == [] and sorted(missing.errors) == [0, 1]


# --------------------------------------------------------------------------
# cross_validate
# --------------------------------------------------------------------------
def test_metrics_match_sklearn(classification):
    X, y = classification
    rep = ev.cross_validate(LogisticRegression(max_iter=1000), X, y, n_bootstrap=300,
                            return_predictions=True)
    t, p, proba = rep.y_true, rep.y_pred, rep.y_proba
    labels = [0, 1, 2]
    assert rep.classes == ["0", "1", "2"] and rep.n_images == 300 and rep.cv == 5
    assert rep.split == "stratified" and rep.n_duplicate_groups is None
    assert np.array_equal(t, y)
    assert rep.accuracy == pytest.approx(metrics.accuracy_score(t, p))
    assert rep.balanced_accuracy == pytest.approx(metrics.balanced_accuracy_score(t, p))
    assert rep.f1_macro == pytest.approx(metrics.f1_score(t, p, average="macro"))
    assert rep.f1_weighted == pytest.approx(metrics.f1_score(t, p, average="weighted"))
    assert rep.precision_macro == pytest.approx(metrics.precision_score(t, p, average="macro"))
    assert rep.recall_macro == pytest.approx(metrics.recall_score(t, p, average="macro"))
    prec = metrics.precision_score(t, p, average=None, labels=labels)
    rec = metrics.recall_score(t, p, average=None, labels=labels)
    assert list(rep.precision.values()) == pytest.approx(prec)
    assert list(rep.recall.values()) == pytest.approx(rec)
    assert rep.sensitivity == rep.recall
    cm = metrics.confusion_matrix(t, p, labels=labels)
    assert np.array_equal(rep.confusion_matrix, cm)
    assert rep.confusion_matrix.sum() == len(y)
    assert rep.roc_auc_ovr == pytest.approx(
        metrics.roc_auc_score(t, proba, multi_class="ovr", average="macro", labels=labels))
    assert proba.shape == (300, 3) and np.allclose(proba.sum(1), 1)
    # specificity by hand: TN / (TN + FP), one vs rest
    for k, name in enumerate(rep.classes):
        tn = np.sum((t != k) & (p != k))
        fp = np.sum((t != k) & (p == k))
        assert rep.specificity[name] == pytest.approx(tn / (tn + fp))
    assert rep.specificity_macro == pytest.approx(np.mean(list(rep.specificity.values())))
    # per-fold values are the metrics of each held-out fold
    for f in range(5):
        m = rep.fold_of_sample == f
        assert rep.fold_accuracy[f] == pytest.approx(metrics.accuracy_score(t[m], p[m]))
        assert rep.fold_balanced_accuracy[f] == pytest.approx(
            metrics.balanced_accuracy_score(t[m], p[m]))
        assert rep.fold_f1_macro[f] == pytest.approx(metrics.f1_score(t[m], p[m],
                                                                      average="macro"))
    # stratified folds of equal size
    assert np.bincount(rep.fold_of_sample).tolist() == [60] * 5
    assert len(rep.fit_time) == len(rep.predict_time) == 5
    assert all(v >= 0 for v in rep.fit_time + rep.predict_time)


def test_binary_auc_and_bootstrap_ci(classification):
    X, y = make_classification(200, 6, random_state=2)
    rep = ev.cross_validate(LogisticRegression(), X, y, return_predictions=True)
    assert rep.roc_auc_ovr == pytest.approx(metrics.roc_auc_score(rep.y_true, rep.y_proba[:, 1]))
    assert set(rep.ci) == {"accuracy", "balanced_accuracy", "f1_macro", "f1_weighted",
                           "roc_auc_ovr"}
    for name, (lo, hi) in rep.ci.items():
        assert lo <= getattr(rep, name) <= hi
        assert 0.0 <= lo < hi <= 1.0
    # a wider interval with fewer samples: the CI reflects sample size
    small = ev.cross_validate(LogisticRegression(), X[:60], y[:60])
    width = lambda r: r.ci["accuracy"][1] - r.ci["accuracy"][0]  # noqa: E731
    assert width(small) > width(rep)
    assert ev.cross_validate(LogisticRegression(), X, y, n_bootstrap=0).ci == {}


def test_bootstrap_auc_matches_sklearn_on_resamples(classification):
    """The vectorised weighted AUC equals sklearn on explicit resamples."""
    X, y = classification
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.ones(3), size=len(y)).round(2)    # ties on purpose
    idx = rng.integers(0, len(y), size=(4, len(y)))
    weights = np.stack([np.bincount(i, minlength=len(y)) for i in idx])
    fast = ev.auc_ovr(y, proba, 3, weights)
    for b in range(4):
        # sklearn's macro one-vs-rest AUC is the mean of the per-class binary AUCs
        per_class = np.mean([metrics.roc_auc_score(y[idx[b]] == k, proba[idx[b], k])
                             for k in range(3)])
        assert fast[b] == pytest.approx(per_class)
    assert ev.auc_ovr(y, proba, 3) == pytest.approx(
        np.mean([metrics.roc_auc_score(y == k, proba[:, k]) for k in range(3)]))


def test_patient_groups_never_straddle_folds(classification):
    X, y = classification
    rng = np.random.default_rng(1)
    patients = rng.permutation(np.repeat(np.arange(60), 5))
    rep = ev.cross_validate(LogisticRegression(max_iter=1000), X, y, groups=patients)
    assert rep.split == "stratified-group (patients)" and rep.n_groups == 60
    for pid in np.unique(patients):
        assert len(set(rep.fold_of_sample[patients == pid].tolist())) == 1
    assert set(rep.fold_of_sample.tolist()) == set(range(5))
    # string patient ids work the same way
    rep_str = ev.cross_validate(LogisticRegression(max_iter=1000), X, y,
                                groups=np.char.add("P", patients.astype(str)))
    for pid in np.unique(patients):
        assert len(set(rep_str.fold_of_sample[patients == pid].tolist())) == 1


def test_duplicates_in_paths_trigger_grouped_folds(cell_paths_with_dups):
    paths, y = cell_paths_with_dups
    X = _mean_colour(paths)
    rep = ev.cross_validate(LogisticRegression(max_iter=1000), X, y, paths=paths, cv=3,
                            n_bootstrap=100)
    assert rep.split == "stratified-group (duplicates)"
    assert rep.n_duplicate_groups == 2
    f = rep.fold_of_sample
    assert f[3] == f[-2] and f[4] == f[-1]
    # without dedupe: plain stratified folds, duplicates not looked for
    plain = ev.cross_validate(LogisticRegression(max_iter=1000), X, y, paths=paths, cv=3,
                              dedupe=False, n_bootstrap=0)
    assert plain.split == "stratified" and plain.n_duplicate_groups is None
    # features only, no paths: duplicates cannot be looked for
    assert ev.cross_validate(LogisticRegression(max_iter=1000), X, y, cv=3,
                             n_bootstrap=0).n_duplicate_groups is None


def test_patients_and_duplicates_are_combined(cell_paths_with_dups):
    paths, y = cell_paths_with_dups
    X = _mean_colour(paths)
    n = len(paths)
    patients = np.arange(n)          # every image its own patient ...
    patients[[5, 6]] = 100           # ... except 5 and 6 share one
    patients[-2] = 100               # the copy of 3 is filed under the patient of 5 and 6
    rep = ev.cross_validate(DecisionTreeClassifier(random_state=0), X, y, groups=patients,
                            paths=paths, cv=3, n_bootstrap=0)
    assert rep.split == "stratified-group (patients+duplicates)"
    f = rep.fold_of_sample
    # 3 ~ copy (duplicate), copy ~ 5 ~ 6 (patient 100): one fold, transitively
    assert f[3] == f[-2] == f[6] == f[5]
    assert f[4] == f[-1]


def test_list_of_paths_with_feature_pipeline(cell_paths_with_dups):
    """X as a list of paths: rows are selected as lists, duplicates found from X."""
    paths, y = cell_paths_with_dups
    seen_types = []

    def extract(items):
        seen_types.append(type(items))
        return _mean_colour(items)

    pipe = make_pipeline(FunctionTransformer(extract), StandardScaler(),
                         LogisticRegression(max_iter=1000))
    rep = ev.cross_validate(pipe, paths, y, cv=3, n_bootstrap=0, return_predictions=True)
    assert rep.split == "stratified-group (duplicates)" and rep.n_duplicate_groups == 2
    assert set(seen_types) == {list}
    assert rep.estimator == "Pipeline(FunctionTransformer, StandardScaler, LogisticRegression)"
    assert np.isfinite(rep.roc_auc_ovr)


def test_string_labels_and_xgboost_like_estimators(classification):
    xgboost = pytest.importorskip("xgboost")
    X, y = classification
    names = np.array(["Pre", "Benign", "Pro"])[y]
    rep = ev.cross_validate(xgboost.XGBClassifier(n_estimators=20, max_depth=2, n_jobs=1),
                            X, names, n_bootstrap=100, return_predictions=True)
    assert rep.classes == ["Benign", "Pre", "Pro"]
    assert set(rep.y_pred.tolist()) <= {"Benign", "Pre", "Pro"}
    assert np.array_equal(rep.y_true, names)
    assert np.array_equal(rep.confusion_matrix,
                          metrics.confusion_matrix(names, rep.y_pred, labels=rep.classes))
    assert list(rep.recall) == rep.classes
    assert rep.accuracy == pytest.approx(metrics.accuracy_score(names, rep.y_pred))


def test_deterministic_given_random_state(classification):
    X, y = classification
    est = LogisticRegression(max_iter=1000)
    a = ev.cross_validate(est, X, y, random_state=7, n_bootstrap=200)
    b = ev.cross_validate(est, X, y, random_state=7, n_bootstrap=200)
    c = ev.cross_validate(est, X, y, random_state=8, n_bootstrap=200)
    da, db = a.to_dict(), b.to_dict()
    for key in ("fit_time", "predict_time"):
        da.pop(key), db.pop(key)
    assert da == db
    assert not np.array_equal(a.fold_of_sample, c.fold_of_sample)


def test_report_serialisation_and_text(classification, tmp_path):
    X, y = classification
    rep = ev.cross_validate(RidgeClassifier(), X, y, n_bootstrap=100)   # no predict_proba
    assert np.isnan(rep.roc_auc_ovr) and "roc_auc_ovr" not in rep.ci
    d = rep.to_dict()
    text = json.dumps(d, allow_nan=False)
    assert d["roc_auc_ovr"] is None
    for key in ("accuracy", "balanced_accuracy", "f1_macro", "confusion_matrix", "classes",
                "n_images", "n_duplicate_groups", "split", "fold_of_sample"):
        assert key in d
    assert isinstance(d["confusion_matrix"], list) and isinstance(d["ci"]["accuracy"], list)
    rep.to_json(tmp_path / "report.json")
    assert json.loads((tmp_path / "report.json").read_text()) == json.loads(text)
    with_preds = ev.cross_validate(LogisticRegression(max_iter=1000), X, y, n_bootstrap=0,
                                   return_predictions=True)
    json.dumps(with_preds.to_dict(), allow_nan=False)
    summary = rep.summary()
    assert "RidgeClassifier" in summary and f"{rep.accuracy:.3f}" in summary
    assert len(summary.splitlines()) >= 5
    md = rep.to_markdown()
    assert "| accuracy |" in md and f"{rep.balanced_accuracy:.3f}" in md
    assert "CVReport(RidgeClassifier" in repr(rep)


def test_cross_validate_arguments(classification):
    X, y = classification
    est = LogisticRegression()
    with pytest.raises(ValueError, match="cv"):
        ev.cross_validate(est, X, y, cv=1)
    with pytest.raises(ValueError, match="cv"):
        ev.cross_validate(est, X[:4], y[:4], cv=5)
    with pytest.raises(ValueError, match="cv"):
        ev.cross_validate(est, X, y, groups=np.arange(300) % 3)
    with pytest.raises(ValueError, match="X and y"):
        ev.cross_validate(est, X[:10], y)
    with pytest.raises(ValueError, match="y"):
        ev.cross_validate(est, X, np.zeros(300))
    with pytest.raises(ValueError, match="groups"):
        ev.cross_validate(est, X, y, groups=[1, 2])
    with pytest.raises(ValueError, match="paths"):
        ev.cross_validate(est, X, y, paths=["a.png"])
    with pytest.raises(ValueError, match="n_bootstrap"):
        ev.cross_validate(est, X, y, n_bootstrap=-1)
    with pytest.raises(TypeError, match="estimator"):
        ev.cross_validate("svm", X, y)


# --------------------------------------------------------------------------
# compare
# --------------------------------------------------------------------------
def test_compare_uses_the_same_folds(classification):
    X, y = classification
    models = {"logreg": LogisticRegression(max_iter=1000),
              "tree": DecisionTreeClassifier(max_depth=3, random_state=0),
              "ridge": RidgeClassifier()}
    table, reports = ev.compare(models, X, y, n_bootstrap=200)
    assert list(table.index) == ["logreg", "tree", "ridge"] and table.index.name == "model"
    assert len(table) == 3
    folds = [reports[k].fold_of_sample for k in models]
    assert all(np.array_equal(folds[0], f) for f in folds[1:])
    for name, rep in reports.items():
        assert table.loc[name, "accuracy"] == rep.accuracy
        assert table.loc[name, "balanced_accuracy_ci_low"] == rep.ci["balanced_accuracy"][0]
        assert table.loc[name, "fit_time"] == pytest.approx(np.mean(rep.fit_time))
        assert rep.estimator == name
    assert np.isnan(table.loc["ridge", "roc_auc_ovr"])
    for col in ("accuracy", "balanced_accuracy", "f1_macro", "f1_weighted", "roc_auc_ovr",
                "accuracy_ci_low", "accuracy_ci_high", "f1_macro_ci_high", "fit_time"):
        assert col in table.columns
    # the same folds as cross_validate with the same random_state
    single = ev.cross_validate(models["tree"], X, y, n_bootstrap=200)
    assert np.array_equal(single.fold_of_sample, folds[0])
    assert single.ci == reports["tree"].ci
    result = ev.compare(models, X, y, n_bootstrap=0)
    assert result.table.shape[0] == 3 and "| logreg |" in result.to_markdown()
    with pytest.raises(ValueError, match="estimators"):
        ev.compare({}, X, y)
    # the table of reports made elsewhere (e.g. a model's and a confound check's)
    again = ev.Comparison.from_reports({"tree alone": single, **reports})
    assert list(again.table.index) == ["tree alone", "logreg", "tree", "ridge"]
    assert again.table.drop(index="tree alone").equals(table)
    assert "| tree alone |" in again.to_markdown()
    with pytest.raises(TypeError, match="reports"):
        ev.Comparison.from_reports({"x": 1})


def test_compare_with_duplicate_groups(cell_paths_with_dups):
    paths, y = cell_paths_with_dups
    X = _mean_colour(paths)
    table, reports = ev.compare({"a": LogisticRegression(max_iter=1000),
                                 "b": DecisionTreeClassifier(random_state=0)},
                                X, y, paths=paths, cv=3, n_bootstrap=0)
    assert (table["split"] == "stratified-group (duplicates)").all()
    assert (table["n_duplicate_groups"] == 2).all()
    assert np.array_equal(reports["a"].fold_of_sample, reports["b"].fold_of_sample)


# --------------------------------------------------------------------------
# confound_check
# --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cells60():
    return make_cells(60, 3, 64, random_state=1)


def test_background_features_shape_and_names(cells60):
    f = ev.background_features(cells60.images[0])
    assert f.shape == (30,) and len(ev.BACKGROUND_FEATURE_NAMES) == 30
    assert ev.BACKGROUND_FEATURE_NAMES[0] == "background_R_mean"
    # the white cell is excluded: repainting it does not change the features
    image = cells60.images[0].copy()
    image[cells60.masks[0]] = (20, 20, 120)
    mask = cells60.masks[0]
    same = ev.background_features(image, segmenter=lambda im: mask)
    assert np.allclose(same, ev.background_features(cells60.images[0],
                                                    segmenter=lambda im: mask))
    everything = ev.background_features(image, segmenter=lambda im: np.ones(im.shape[:2], bool))
    assert np.isnan(everything).all()
    with pytest.raises(ValueError, match="dilate"):
        ev.background_features(image, dilate=-1)


def test_confound_check_flags_class_dependent_background(cells60):
    comp = cells60.compartments()
    offsets = np.array([[0, 0, 0], [8, -5, 6], [-6, 4, -8]])
    tinted = cells60.images.astype(np.int16).copy()
    for i, label in enumerate(cells60.labels):
        tinted[i][comp[i] == 0] += offsets[label]
    tinted = np.clip(tinted, 0, 255).astype(np.uint8)
    rep = ev.confound_check(list(tinted), cells60.labels, n_bootstrap=100)
    assert rep.confounded
    assert rep.balanced_accuracy > 0.9
    assert rep.chance == {"majority": pytest.approx(1 / 3), "uniform": pytest.approx(1 / 3)}
    assert "reinhard" in rep.message and "macenko" in rep.message
    assert rep.features.shape == (60, 30)
    assert list(rep.features.columns) == list(ev.BACKGROUND_FEATURE_NAMES)
    assert "CONFOUNDED" in rep.summary()
    json.dumps(rep.to_dict(), allow_nan=False)
    # a model within reach of the background gets a warning
    assert rep.rivals(rep.balanced_accuracy) and rep.rivals(1.0)
    warning = rep.warning(0.97, model="xgboost")
    assert "xgboost's 0.970" in warning and "acquisition" in warning and "\n" not in warning


def test_confound_warning_rule():
    """bg - 1/K >= RIVAL_SHARE (model - 1/K), only when the check flags a confound."""
    flagged = ev.ConfoundReport(accuracy=0.7, balanced_accuracy=0.7,
                                chance={"majority": 1 / 3, "uniform": 1 / 3}, margin=0.2,
                                confounded=True, message="", features=None, cv_report=None,
                                n_images=30, classes=["a", "b", "c"])
    assert ev.RIVAL_SHARE == 0.8
    # 0.7 - 1/3 = 0.367 >= 0.8 (0.79 - 1/3) = 0.365, < 0.8 (0.80 - 1/3) = 0.373
    assert flagged.rivals(0.79) and not flagged.rivals(0.80)
    assert flagged.rivals(0.2)                     # a model at chance: always rivalled
    assert flagged.warning(0.95) is None and "the model's 0.790" in flagged.warning(0.79)
    calm = dataclasses.replace(flagged, confounded=False)
    assert not calm.rivals(0.4) and calm.warning(0.4) is None
    with pytest.raises(ValueError, match="balanced_accuracy"):
        flagged.rivals(float("nan"))


def test_confound_check_on_the_folds_of_compare(cell_paths_with_dups):
    """Images (e.g. stain-normalised copies) with their files: duplicates found among
    the files, so the check runs on exactly the folds of compare."""
    paths, y = cell_paths_with_dups
    copies = [np.clip(read_image(p).astype(np.int16) + 3, 0, 255).astype(np.uint8)
              for p in paths]
    _, reports = ev.compare({"a": LogisticRegression(max_iter=1000)}, _mean_colour(paths), y,
                            paths=paths, cv=3, n_bootstrap=0)
    rep = ev.confound_check(copies, y, paths=paths, cv=3, n_bootstrap=0)
    assert rep.cv_report.split == reports["a"].split == "stratified-group (duplicates)"
    assert rep.cv_report.n_duplicate_groups == 2
    assert np.array_equal(rep.cv_report.fold_of_sample, reports["a"].fold_of_sample)
    with pytest.raises(ValueError, match="paths"):
        ev.confound_check(copies, y, paths=paths[:3])


def test_confound_check_passes_class_independent_background(cells60, tmp_path):
    paths = cells60.save(tmp_path)
    rep = ev.confound_check(paths, cells60.labels, n_bootstrap=100)
    assert not rep.confounded
    assert rep.balanced_accuracy < 1 / 3 + 0.2
    assert rep.cv_report.split == "stratified"           # paths checked, no duplicates
    assert rep.cv_report.n_duplicate_groups == 0
    assert "no sign" in rep.message
    with pytest.raises(ValueError, match="y"):
        ev.confound_check(paths, cells60.labels[:10])


# --------------------------------------------------------------------------
# the package keeps the module's face
# --------------------------------------------------------------------------
def test_public_names_keep_the_module_path():
    """leukfeat.evaluate became a package: its public classes and functions are still
    leukfeat.evaluate.X, the path by which pickles (and skops files) name them."""
    import pickle
    import pickletools

    for name in ev.__all__:
        obj = getattr(ev, name)
        if isinstance(obj, type) or callable(obj):
            assert obj.__module__ == "leukfeat.evaluate", name
    X, y = make_classification(60, 4, random_state=0)
    report = ev.cross_validate(LogisticRegression(), X, y, n_bootstrap=0)
    comparison = ev.Comparison.from_reports({"a": report})
    data = pickle.dumps([report, comparison.reports])
    modules = {arg for op, arg, _ in pickletools.genops(data)
               if op.name in ("SHORT_BINUNICODE", "BINUNICODE")
               and str(arg).startswith("leukfeat")}
    assert modules == {"leukfeat.evaluate"}
    again = pickle.loads(data)[0]
    assert again.to_dict() == report.to_dict()
