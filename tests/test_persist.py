"""Tests for leukfeat.persist: skops model files, trusted types, refusals."""

from __future__ import annotations

import importlib.util
import io
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import make_classification

import leukfeat
from leukfeat import persist
from leukfeat.datasets import make_cells
from leukfeat.models import (CLASSIFIERS, EmbeddingColumns, make_classifier,
                             make_hybrid_vote, make_pipeline)
from leukfeat.persist import (TRUSTED_TYPES, ModelFileError, UntrustedModelError, load_model,
                              read_metadata, save_model)
from leukfeat.transformers import FeatureExtractor

sio = pytest.importorskip("skops.io")

LABELS = np.array(["benign", "early", "pre", "pro"])

HAVE_XGBOOST = importlib.util.find_spec("xgboost") is not None
#: Every preset whose package is installed (xgboost is an extra).
PRESETS = tuple(n for n in CLASSIFIERS if n != "xgboost" or HAVE_XGBOOST)
_NO_XGBOOST = pytest.mark.skipif(not HAVE_XGBOOST,
                                 reason="xgboost is not installed (extra leukfeat[xgboost])")
PRESET_PARAMS = [pytest.param(n, marks=_NO_XGBOOST) if n == "xgboost" else n
                 for n in CLASSIFIERS]


# --------------------------------------------------------------------------- #
# fixtures and helpers
# --------------------------------------------------------------------------- #

@pytest.fixture(scope="module")
def data():
    """4-class numeric data with NaN, a constant column and string labels."""
    X, y = make_classification(n_samples=120, n_features=8, n_informative=5, n_redundant=1,
                               n_classes=4, random_state=0)
    rng = np.random.default_rng(0)
    X[rng.random(X.shape) < 0.03] = np.nan
    X[:, 5] = 2.0  # dropped by the VarianceThreshold step
    return X, LABELS[y]


@pytest.fixture(scope="module")
def fitted(data):
    """Every preset, fitted once (default parameters: the types are the real ones)."""
    X, y = data
    return {name: make_classifier(name).fit(X, y) for name in PRESETS}


@pytest.fixture(scope="module")
def saved(fitted, tmp_path_factory):
    """A model file per preset."""
    folder = tmp_path_factory.mktemp("models")
    return {name: save_model(model, folder / f"{name}.skops")
            for name, model in fitted.items()}


@pytest.fixture(scope="module")
def cells():
    ds = make_cells(12, size=96, random_state=0)
    return list(ds.images), np.asarray(ds.class_names)[ds.labels]


def _members(path) -> dict:
    with zipfile.ZipFile(path) as zf:
        return {info.filename: zf.read(info.filename) for info in zf.infolist()}


def _write_zip(path, members: dict) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def _rewrite(src, dst, *, schema=None, arrays=None, info=None, rehash=True) -> Path:
    """Copy a model file, editing members as an attacker who knows the format would.

    schema : callable(dict) -> None editing schema.json in place.
    arrays : dict of member name -> callable(ndarray) -> ndarray.
    info : callable(dict) -> None editing the leukfeat metadata member.
    rehash : recompute the payload checksum after the edits.
    """
    members = _members(src)
    if schema is not None:
        s = json.loads(members["schema.json"])
        schema(s)
        members["schema.json"] = json.dumps(s).encode()
    for name, edit in (arrays or {}).items():
        arr = np.load(io.BytesIO(members[name]), allow_pickle=False)
        buf = io.BytesIO()
        np.save(buf, edit(arr), allow_pickle=False)
        members[name] = buf.getvalue()
    meta = json.loads(members[persist._METADATA_MEMBER])
    if info is not None:
        info(meta)
    _write_zip(dst, members)
    if rehash:
        with zipfile.ZipFile(dst) as zf:
            meta["payload_sha256"] = persist._payload_digest(zf)
    members[persist._METADATA_MEMBER] = json.dumps(meta).encode()
    _write_zip(dst, members)
    return Path(dst)


def _find(node, cls):
    """Schema nodes whose __class__ is ``cls`` (depth first)."""
    if isinstance(node, dict):
        if node.get("__class__") == cls:
            yield node
        for v in node.values():
            yield from _find(v, cls)
    elif isinstance(node, list):
        for v in node:
            yield from _find(v, cls)


def _one_line(exc_info) -> str:
    msg = str(exc_info.value)
    assert "\n" not in msg, msg
    return msg


class Sneaky(ClassifierMixin, BaseEstimator):
    """A custom estimator: not in the allow-list."""

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def predict(self, X):
        return np.repeat(self.classes_[0], len(X))


SNEAKY = f"{Sneaky.__module__}.{Sneaky.__qualname__}"


# --------------------------------------------------------------------------- #
# round trips
# --------------------------------------------------------------------------- #

@pytest.mark.parametrize("name", PRESET_PARAMS)
def test_presets_round_trip_exactly(name, data, fitted, saved):
    X, y = data
    model = load_model(saved[name])
    assert type(model) is type(fitted[name])
    np.testing.assert_array_equal(model.predict_proba(X), fitted[name].predict_proba(X))
    np.testing.assert_array_equal(model.predict(X), fitted[name].predict(X))
    meta = read_metadata(saved[name])
    assert meta["format"] == "leukfeat-model" and meta["format_version"] == 1
    assert meta["leukfeat_version"] == leukfeat.__version__
    assert meta["versions"]["leukfeat"] == leukfeat.__version__
    assert meta["versions"]["scikit-learn"] and meta["versions"]["skops"]
    assert meta["classes"] == list(LABELS)
    assert meta["n_features_in"] == X.shape[1]
    assert meta["features"] is None  # no FeatureExtractor in a numeric pipeline
    assert [s for s, _ in meta["steps"]][-1] == "classifier"
    assert meta["created"].endswith("+00:00")


@pytest.mark.parametrize("name", PRESET_PARAMS)
def test_allow_list_covers_every_preset(name, saved):
    """Default presets load with no `trusted`, and the allow-list is not wider than needed."""
    found = set(sio.get_untrusted_types(file=saved[name]))
    assert found <= set(TRUSTED_TYPES), found - set(TRUSTED_TYPES)


def test_allow_list_is_precise(saved, cells, tmp_path):
    pytest.importorskip("xgboost")   # the xgboost types and the hybrid vote's members
    images, y = cells
    found = set()
    for path in saved.values():
        found |= set(sio.get_untrusted_types(file=path))
    for stain in ("reinhard", "macenko"):
        pipe = make_pipeline("logreg", stain=stain, groups=("shape",)).fit(images, y)
        found |= set(sio.get_untrusted_types(data=sio.dumps(pipe)))
    fx = FeatureExtractor(groups=("shape",), cache=tmp_path / "cache").fit(images)
    found |= set(sio.get_untrusted_types(data=sio.dumps(fx)))
    X = fx.transform(images)
    vote = make_hybrid_vote(slice(0, 10), slice(10, None)).fit(X, y)
    found |= set(sio.get_untrusted_types(data=sio.dumps(vote)))
    # make_pipeline("vote", whole_image=True)'s column selectors
    X4 = X[:, :2 + 2 * ((X.shape[1] - 2) // 2)]
    four = make_hybrid_vote(slice(0, 2), EmbeddingColumns(2, 0),
                            image=EmbeddingColumns(2, 1)).fit(X4, y)
    found |= set(sio.get_untrusted_types(data=sio.dumps(four)))
    # the rest: leukfeat's other image transformers (Segmenter: the first step
    # of a hybrid pipeline, whose embedder is not trusted by default), the ball tree a knn preset
    # uses with algorithm="ball_tree", a cache path saved on Windows
    extras = {"leukfeat.transformers.ImageReader", "leukfeat.transformers.Resize",
              "leukfeat.transformers.Segmenter",
              "leukfeat.transformers.Equalize", "sklearn.neighbors._ball_tree.BallTree",
              "pathlib.WindowsPath", "pathlib.PosixPath"}
    assert set(TRUSTED_TYPES) - found <= extras
    assert found <= set(TRUSTED_TYPES)


def test_xgboost_inside_label_encoder_round_trips(saved, fitted):
    """skops stores the booster natively (XGBoost's own raw model bytes)."""
    pytest.importorskip("xgboost")
    inner = load_model(saved["xgboost"]).named_steps["classifier"]
    assert type(inner).__name__ == "LabelEncodedClassifier"
    assert type(inner.estimator_).__name__ == "XGBClassifier"
    original = fitted["xgboost"].named_steps["classifier"]
    np.testing.assert_array_equal(inner.classes_, original.classes_)
    assert (inner.estimator_.get_booster().save_raw("json")
            == original.estimator_.get_booster().save_raw("json"))


@pytest.mark.parametrize("classifier,stain", [pytest.param("xgboost", None, marks=_NO_XGBOOST),
                                              ("hgb", None), ("knn", "reinhard"),
                                              ("rf", "macenko")])
def test_image_pipeline_round_trip(classifier, stain, cells, tmp_path):
    images, y = cells
    params = ({"n_estimators": 50} if classifier in ("rf", "xgboost")
              else {"max_iter": 20} if classifier == "hgb" else {})
    pipe = make_pipeline(classifier, stain=stain, **params).fit(images, y)
    path = save_model(pipe, tmp_path / "sub" / "dir" / "model.skops",
                      metadata={"data": "make_cells(12)", "seed": 0})
    assert path.is_file()
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.predict_proba(images), pipe.predict_proba(images))
    meta = read_metadata(path)
    fx = pipe.named_steps["features"]
    assert meta["features"]["step"] == "features"
    assert meta["features"]["extractor"] == "leukfeat.transformers.FeatureExtractor"
    assert meta["features"]["params"]["segmenter"] == "nucleus_anchored"
    assert meta["features"]["params"]["groups"] == list(fx.groups)
    assert meta["features"]["params"]["cell"] == "largest"
    assert meta["features"]["feature_names"] == list(fx.get_feature_names_out())
    assert meta["features"]["n_features"] == fx.n_features_out_
    assert meta["classes"] == sorted(set(y))
    assert meta["user"] == {"data": "make_cells(12)", "seed": 0}
    assert ["features", "leukfeat.transformers.FeatureExtractor"] in meta["steps"]


def test_feature_config_found_inside_a_feature_union(cells, tmp_path):
    from sklearn.pipeline import FeatureUnion, Pipeline

    images, y = cells
    pipe = Pipeline([("features", FeatureUnion([("handcrafted",
                                                 FeatureExtractor(groups=("shape",)))])),
                     ("classifier", make_classifier("logreg"))]).fit(images, y)
    path = save_model(pipe, tmp_path / "union.skops")
    meta = read_metadata(path)
    assert meta["features"]["step"] == "features__handcrafted"
    assert meta["features"]["params"]["groups"] == ["shape"]
    np.testing.assert_array_equal(load_model(path).predict_proba(images),
                                  pipe.predict_proba(images))


def test_feature_extractor_with_defaults_round_trips(cells, tmp_path):
    images, _ = cells
    fx = FeatureExtractor().fit(images[:3])
    loaded = load_model(save_model(fx, tmp_path / "fx.skops"))
    assert loaded.get_params() == fx.get_params()
    np.testing.assert_array_equal(loaded.get_feature_names_out(), fx.get_feature_names_out())
    np.testing.assert_array_equal(loaded.transform(images[:3]), fx.transform(images[:3]))
    meta = read_metadata(tmp_path / "fx.skops")
    assert meta["features"]["step"] == ""
    assert meta["features"]["params"]["groups"] == list(leukfeat.extract.DEFAULT_GROUPS)


def test_callable_segmenter_is_recorded_and_must_be_trusted(cells, tmp_path):
    images, _ = cells
    fx = FeatureExtractor(segmenter=leukfeat.segment.hsv_threshold, groups=("shape",))
    fx.fit(images[:2])
    path = save_model(fx, tmp_path / "fx.skops")
    assert read_metadata(path)["features"]["params"]["segmenter"] == \
        "leukfeat.segment.hsv_threshold"
    with pytest.raises(UntrustedModelError, match="hsv_threshold"):
        load_model(path)
    loaded = load_model(path, trusted=["leukfeat.segment.hsv_threshold"])
    assert loaded.segmenter is leukfeat.segment.hsv_threshold


def test_save_replaces_an_existing_file(fitted, tmp_path):
    path = tmp_path / "m.skops"
    path.write_bytes(b"old")
    save_model(fitted["logreg"], path)
    assert load_model(path) is not None
    assert not [p for p in tmp_path.iterdir() if p.name != "m.skops"]  # no temp file left


# --------------------------------------------------------------------------- #
# bad arguments when saving
# --------------------------------------------------------------------------- #

def test_save_refuses_unfitted_and_non_estimators(tmp_path):
    with pytest.raises(ValueError, match="not fitted"):
        save_model(make_classifier("knn"), tmp_path / "m.skops")
    with pytest.raises(TypeError, match="estimator"):
        save_model({"a": 1}, tmp_path / "m.skops")
    assert not (tmp_path / "m.skops").exists()


def test_save_refuses_bad_metadata(fitted, tmp_path):
    with pytest.raises(TypeError, match="metadata"):
        save_model(fitted["logreg"], tmp_path / "m.skops", metadata={"when": object()})
    with pytest.raises(TypeError, match="metadata"):
        save_model(fitted["logreg"], tmp_path / "m.skops", metadata=["not", "a", "dict"])
    with pytest.raises(TypeError, match="keys must be strings"):
        save_model(fitted["logreg"], tmp_path / "m.skops", metadata={1: "x"})


def test_save_refuses_a_lambda_that_could_not_be_loaded(cells, tmp_path):
    images, _ = cells
    fx = FeatureExtractor(segmenter=lambda im: leukfeat.segment.segment(im))
    fx.fit(images[:1])
    with pytest.raises(TypeError, match="lambdas"):
        save_model(fx, tmp_path / "m.skops")
    assert not (tmp_path / "m.skops").exists()


# --------------------------------------------------------------------------- #
# refusals when loading
# --------------------------------------------------------------------------- #

def test_missing_file(tmp_path):
    missing = tmp_path / "nope.skops"
    with pytest.raises(FileNotFoundError, match="nope.skops") as exc:
        load_model(missing)
    assert exc.value.filename == str(missing)
    with pytest.raises(FileNotFoundError, match="nope.skops"):
        read_metadata(missing)


def test_directory_is_not_a_model_file(tmp_path):
    with pytest.raises(ModelFileError, match="not a model file"):
        load_model(tmp_path)


@pytest.mark.parametrize("content", [b"", b"hello, I am not a model\n", b"PK\x03\x04" + b"x" * 50])
def test_not_a_zip(content, tmp_path):
    path = tmp_path / "m.skops"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match="not a leukfeat model file") as exc:
        load_model(path)
    _one_line(exc)


def test_plain_skops_file_is_not_a_leukfeat_model(fitted, tmp_path):
    path = tmp_path / "plain.skops"
    sio.dump(fitted["logreg"], path)
    with pytest.raises(ModelFileError, match="without leukfeat metadata") as exc:
        load_model(path)
    _one_line(exc)
    with pytest.raises(ModelFileError):
        read_metadata(path)


def test_zip_without_schema(tmp_path):
    path = tmp_path / "m.skops"
    _write_zip(path, {"hello.txt": b"hi"})
    with pytest.raises(ModelFileError, match="no skops schema"):
        load_model(path)


def test_flipped_bytes_are_detected(saved, tmp_path):
    src = saved["rf"]
    raw = bytearray(src.read_bytes())
    with zipfile.ZipFile(src) as zf:
        infos = [i for i in zf.infolist() if i.compress_size > 16]
    for k, info in enumerate(infos[:5]):
        # the member's data starts after its 30-byte local header, name and extra field
        name_len = int.from_bytes(raw[info.header_offset + 26:info.header_offset + 28], "little")
        extra_len = int.from_bytes(raw[info.header_offset + 28:info.header_offset + 30], "little")
        start = info.header_offset + 30 + name_len + extra_len
        bad = bytearray(raw)
        bad[start + info.compress_size // 2] ^= 0xFF
        path = tmp_path / f"flipped{k}.skops"
        path.write_bytes(bytes(bad))
        with pytest.raises(ModelFileError, match="corrupted") as exc:
            load_model(path)
        _one_line(exc)


def test_truncated_file(saved, tmp_path):
    raw = saved["svm"].read_bytes()
    for keep in (len(raw) // 2, len(raw) - 10):
        path = tmp_path / f"cut{keep}.skops"
        path.write_bytes(raw[:keep])
        with pytest.raises(ModelFileError) as exc:
            load_model(path)
        _one_line(exc)


def test_edited_member_is_detected(saved, tmp_path):
    def edit(schema):
        node = next(_find(schema, "SimpleImputer"))
        node["content"]["content"]["strategy"]["content"] = '"mean"'

    path = _rewrite(saved["knn"], tmp_path / "edited.skops", schema=edit, rehash=False)
    with pytest.raises(ModelFileError, match="modified after it was written") as exc:
        load_model(path)
    _one_line(exc)


def test_injected_untrusted_type_is_refused(saved, tmp_path):
    """An attacker who rewrites the checksum still cannot get a type past the allow-list."""
    def edit(schema):
        node = next(_find(schema, "StandardScaler"))
        node["__module__"], node["__class__"] = "os", "system"

    path = _rewrite(saved["logreg"], tmp_path / "evil.skops", schema=edit)
    with pytest.raises(UntrustedModelError, match="os.system") as exc:
        load_model(path)
    assert exc.value.types == ["os.system"]
    assert "trusted=[" in str(exc.value)
    _one_line(exc)


def test_custom_class_needs_to_be_trusted(data, tmp_path):
    X, y = data
    path = save_model(Sneaky().fit(X, y), tmp_path / "custom.skops")
    with pytest.raises(UntrustedModelError) as exc:
        load_model(path)
    assert isinstance(exc.value, ValueError)
    assert exc.value.types == [SNEAKY]
    assert SNEAKY in str(exc.value) and "trusted=" in str(exc.value)
    assert isinstance(load_model(path, trusted=[SNEAKY]), Sneaky)
    assert isinstance(load_model(path, trusted=[Sneaky]), Sneaky)
    assert isinstance(load_model(path, trusted=SNEAKY), Sneaky)


def test_untrusted_type_in_a_dict(tmp_path):
    """A dict holding a custom object, saved by skops and dressed up as a leukfeat file."""
    good = tmp_path / "good.skops"
    save_model(Sneaky().fit([[0], [1]], ["a", "b"]), good)

    def edit(schema):
        node = next(_find(schema, "Sneaky"))
        node["__module__"], node["__class__"] = "builtins", "eval"

    path = _rewrite(good, tmp_path / "evil.skops", schema=edit)
    with pytest.raises(UntrustedModelError, match="builtins.eval"):
        load_model(path, trusted=[SNEAKY])


def test_trusted_must_be_names(saved):
    with pytest.raises(TypeError, match="not a bool"):
        load_model(saved["logreg"], trusted=True)
    with pytest.raises(TypeError, match="type names"):
        load_model(saved["logreg"], trusted=[1])


def test_metadata_copies_must_agree(saved, tmp_path):
    def edit(meta):
        meta["classes"] = ["benign", "early", "pre", "ALL"]

    path = _rewrite(saved["logreg"], tmp_path / "m.skops", info=edit)
    assert read_metadata(path)["classes"][-1] == "ALL"
    with pytest.raises(ModelFileError, match="inconsistent") as exc:
        load_model(path)
    _one_line(exc)


def test_malformed_tree_is_refused_before_use(saved, tmp_path):
    """Out-of-range child indices would make sklearn read out of bounds at predict time."""
    with zipfile.ZipFile(saved["rf"]) as zf:
        schema = json.loads(zf.read("schema.json"))
    member = next(_find(schema, "Tree"))["content"]["content"]["nodes"]["file"]

    def bad_child(nodes):
        nodes = nodes.copy()
        nodes["left_child"][0] = 10 ** 6
        return nodes

    path = _rewrite(saved["rf"], tmp_path / "tree.skops", arrays={member: bad_child})
    with pytest.raises(ModelFileError, match="decision tree") as exc:
        load_model(path)
    _one_line(exc)

    def small_count(schema):
        # (a count above the capacity is clamped by scikit-learn itself)
        count = next(_find(schema, "Tree"))["content"]["content"]["node_count"]
        # skops shares nodes by __id__ (small ints are interned): give it its own
        count["content"], count["__id__"] = "1", 1

    path = _rewrite(saved["rf"], tmp_path / "count.skops", schema=small_count)
    with pytest.raises(ModelFileError, match="decision tree"):
        load_model(path)


@pytest.mark.parametrize("field,value,what", [
    ("left", 10 ** 6, "child or feature index"),
    ("right", 0, "child or feature index"),        # a link back to the root: a cycle
    ("feature_idx", 10 ** 6, "child or feature index"),
    ("is_categorical", 1, "categorical splits")])
def test_malformed_hist_gradient_boosting_tree_is_refused(saved, tmp_path, field, value, what):
    """The "hgb" preset's trees are walked by compiled code without bounds checks."""
    with zipfile.ZipFile(saved["hgb"]) as zf:
        schema = json.loads(zf.read("schema.json"))
    member = next(_find(schema, "TreePredictor"))["content"]["content"]["nodes"]["file"]

    def edit(nodes):
        nodes = nodes.copy()
        root = int(np.flatnonzero(nodes["is_leaf"] == 0)[0])
        nodes[field][root] = value
        return nodes

    path = _rewrite(saved["hgb"], tmp_path / "hgb.skops", arrays={member: edit})
    with pytest.raises(ModelFileError, match="gradient-boosting tree") as exc:
        load_model(path)
    assert what in _one_line(exc)


def test_malformed_kd_tree_is_refused(saved, tmp_path):
    with zipfile.ZipFile(saved["knn"]) as zf:
        schema = json.loads(zf.read("schema.json"))
    state = next(_find(schema, "KDTree"))["content"]["content"]
    member = state[1]["file"]  # idx_array

    def out_of_range(idx):
        idx = idx.copy()
        idx[0] = 10 ** 6
        return idx

    path = _rewrite(saved["knn"], tmp_path / "kd.skops", arrays={member: out_of_range})
    with pytest.raises(ModelFileError, match="neighbour tree"):
        load_model(path)


def test_malformed_svm_is_refused(saved, tmp_path):
    with zipfile.ZipFile(saved["svm"]) as zf:
        schema = json.loads(zf.read("schema.json"))
    fitted_svc = next(n for n in _find(schema, "SVC") if "_n_support" in n["content"]["content"])
    member = fitted_svc["content"]["content"]["_n_support"]["file"]

    path = _rewrite(saved["svm"], tmp_path / "svm.skops",
                    arrays={member: lambda n: n + 1000})
    with pytest.raises(ModelFileError, match="support vector"):
        load_model(path)


# --------------------------------------------------------------------------- #
# versions
# --------------------------------------------------------------------------- #

def _other_versions():
    major, minor = (int(v) for v in leukfeat.__version__.split(".")[:2])
    return f"{major}.{minor + 1}.0", f"{major}.{minor}.99", f"{major + 1}.{minor}.0"


def test_incompatible_leukfeat_version_is_refused(fitted, tmp_path, monkeypatch):
    newer, patch, major = _other_versions()
    for fake in (newer, major, "0.0.1"):
        with monkeypatch.context() as m:
            m.setattr(leukfeat, "__version__", fake)
            path = save_model(fitted["logreg"], tmp_path / f"{fake}.skops")
        assert read_metadata(path)["leukfeat_version"] == fake
        with pytest.raises(ModelFileError) as exc:
            load_model(path)
        msg = _one_line(exc)
        assert f"written by leukfeat {fake}" in msg
        assert f"this is leukfeat {leukfeat.__version__}" in msg
        assert "Re-train" in msg and f"leukfeat=={fake}" in msg


def test_patch_release_is_compatible(fitted, data, tmp_path, monkeypatch):
    _, patch, _ = _other_versions()
    with monkeypatch.context() as m:
        m.setattr(leukfeat, "__version__", patch)
        path = save_model(fitted["logreg"], tmp_path / "patch.skops")
    X, _ = data
    np.testing.assert_array_equal(load_model(path).predict_proba(X),
                                  fitted["logreg"].predict_proba(X))


def test_newer_file_format_is_refused(saved, tmp_path):
    def edit(meta):
        meta["format_version"] = 2

    path = _rewrite(saved["logreg"], tmp_path / "future.skops", info=edit)
    with pytest.raises(ModelFileError, match="format 2") as exc:
        load_model(path)
    assert "Upgrade leukfeat" in _one_line(exc)


def test_faked_version_in_the_json_copy_is_caught(fitted, tmp_path, monkeypatch):
    """Editing only the readable metadata to claim the running version does not help."""
    newer, _, _ = _other_versions()
    with monkeypatch.context() as m:
        m.setattr(leukfeat, "__version__", newer)
        path = save_model(fitted["logreg"], tmp_path / "old.skops")

    def edit(meta):
        meta["leukfeat_version"] = meta["versions"]["leukfeat"] = leukfeat.__version__

    path = _rewrite(path, tmp_path / "faked.skops", info=edit)
    with pytest.raises(ModelFileError, match="inconsistent"):
        load_model(path)


def test_version_compatibility_rule():
    assert persist._compatible("0.1.0", "0.1.7")
    assert persist._compatible("0.1.0.dev3", "0.1.2")
    assert not persist._compatible("0.1.0", "0.2.0")
    assert not persist._compatible("1.1.0", "0.1.0")
    assert not persist._compatible("weird", "0.1.0")
    assert persist._compatible("weird", "weird")
    # versions from the git tags (setuptools-scm): a development build after
    # v0.1.x belongs to the 0.1 series until v0.2.0 is tagged
    assert persist._compatible("0.1.1.dev167+ge36e64785.d20261206", "0.1.0")
    assert persist._compatible("0.1.dev3+gabc1234", "0.1.4")
    assert not persist._compatible("0.2.0.dev1+gabc1234", "0.1.4")


def test_no_pickle_in_persist():
    source = Path(persist.__file__).read_text()
    for word in ("import pickle", "joblib", "cloudpickle", "allow_pickle=True"):
        assert word not in source


def test_model_files_never_carry_a_cache_path(cells, tmp_path, monkeypatch):
    """A model file cannot choose where leukfeat writes: save_model stores no
    feature cache, and load_model drops one that a crafted file carries."""
    import skops.io as sio

    from leukfeat import persist

    def stored(path):          # what the file holds, read past load_model
        return sio.load(path, trusted=sio.get_untrusted_types(file=path))["model"]

    images, y = cells
    cache = tmp_path / "my-cache"
    pipe = make_pipeline("knn", cache=str(cache)).fit(images, y)
    assert pipe.named_steps["features"].cache_dir_ is not None
    path = save_model(pipe, tmp_path / "m.skops")
    assert pipe.named_steps["features"].cache == str(cache)      # the model is unchanged
    assert pipe.named_steps["features"].cache_dir_ is not None
    assert stored(path).named_steps["features"].cache is None
    assert stored(path).named_steps["features"].cache_dir_ is None
    loaded = load_model(path)
    assert loaded.named_steps["features"].cache is None
    # a file written with a cache path (as a crafted one could be) loses it on load
    monkeypatch.setattr(persist, "_set_caches", lambda model, value: (lambda: None))
    crafted = save_model(pipe, tmp_path / "crafted.skops")
    monkeypatch.undo()
    assert stored(crafted).named_steps["features"].cache == str(cache)
    model = load_model(crafted)
    assert model.named_steps["features"].cache is None
    assert model.named_steps["features"].cache_dir_ is None
    np.testing.assert_array_equal(model.predict_proba(images), pipe.predict_proba(images))


def test_zip_bombs_and_unknown_members_are_refused_unread(tmp_path, monkeypatch):
    """Member names and sizes are checked against what save_model writes
    before any member is read: an extra member that would expand 1000-fold,
    or a member save_model never writes, is refused."""
    import zipfile

    from sklearn.datasets import make_classification

    X, y = make_classification(60, 5, random_state=0)
    good = save_model(make_classifier("rf", n_estimators=20).fit(X, y), tmp_path / "m.skops")
    assert load_model(good) is not None                     # trees: up to ~60x, accepted

    bomb = tmp_path / "bomb.skops"
    shutil.copy(good, bomb)
    with zipfile.ZipFile(bomb, "a", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("140000000000001.npy", b"\0" * (64 << 20))   # 64 MiB of zeros
    read = []
    monkeypatch.setattr(zipfile.ZipFile, "read",
                        lambda self, name, pwd=None: read.append(name) or b"")
    with pytest.raises(ModelFileError, match="expand"):
        load_model(bomb)
    with pytest.raises(ModelFileError, match="expand"):
        read_metadata(bomb)
    assert read == []                                       # refused before any read
    monkeypatch.undo()

    odd = tmp_path / "odd.skops"
    shutil.copy(good, odd)
    with zipfile.ZipFile(odd, "a") as zf:
        zf.writestr("payload.py", b"print('hello')")
    with pytest.raises(ModelFileError, match="payload.py"):
        load_model(odd)
