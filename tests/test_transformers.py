"""Tests for leukfeat.transformers (and the batch layer leukfeat._batch)."""

from __future__ import annotations

import pickle
import re
import shutil
import traceback
import warnings
from unittest import SkipTest

import cv2
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.utils import get_tags
from sklearn.utils.estimator_checks import parametrize_with_checks

from leukfeat import extract, preprocess, segment
from leukfeat._batch import describe_item, map_ordered
from leukfeat.datasets import make_cells
from leukfeat.io import ImageReadError
from leukfeat.models import make_classifier
from leukfeat.transformers import (Equalize, FeatureExtractor, ImageReader, Resize,
                                   StainNormalizer)

N_IMAGES = 10


# --------------------------------------------------------------------------- #
# fixtures
# --------------------------------------------------------------------------- #

@pytest.fixture(scope="module")
def cells():
    return make_cells(N_IMAGES, 2, size=96, random_state=0)


@pytest.fixture(scope="module")
def images(cells):
    return list(cells.images)


@pytest.fixture(scope="module")
def paths(cells, tmp_path_factory):
    return cells.save(tmp_path_factory.mktemp("cells"))


@pytest.fixture(scope="module")
def expected(images):
    """extract.features on every image, stacked: the reference output."""
    return np.array([list(extract.features(im).values()) for im in images])


@pytest.fixture(scope="module")
def corrupt_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("bad") / "corrupt.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    return path


def _same(a, b):
    np.testing.assert_array_equal(a, b, strict=True)


# --------------------------------------------------------------------------- #
# map_ordered
# --------------------------------------------------------------------------- #

def _fail_on_odd(x):
    if x % 2:
        raise ValueError(f"odd {x}")
    return x * 10


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_map_ordered_order_and_errors(n_jobs):
    items = list(range(40))
    assert map_ordered(abs, [-3, 2, -1], n_jobs=n_jobs) == [3, 2, 1]
    results, errors = map_ordered(_fail_on_odd, items, n_jobs=n_jobs, on_error="collect")
    assert results == [x * 10 if x % 2 == 0 else None for x in items]
    assert [e[0] for e in errors] == list(range(1, 40, 2))
    assert errors[0] == (1, "1", "ValueError: odd 1")
    with pytest.raises(ValueError, match=r"^item 1 \(1\): odd 1"):
        map_ordered(_fail_on_odd, items, n_jobs=n_jobs)


def test_map_ordered_validation_and_describe():
    with pytest.raises(ValueError, match="on_error"):
        map_ordered(abs, [1], on_error="ignore")
    with pytest.raises(ValueError, match="n_jobs"):
        map_ordered(abs, [1, 2], n_jobs=0)
    assert map_ordered(abs, []) == []
    assert describe_item(np.zeros((2, 3), np.uint8)) == "<ndarray shape=(2, 3) dtype=uint8>"
    # an exception whose message cannot be rewritten is chained to a RuntimeError
    with pytest.raises(RuntimeError, match=r"item 0 \(k\): KeyError") as info:
        map_ordered({}.__getitem__, ["k"])
    assert isinstance(info.value.__cause__, KeyError)


def _threads(_):
    import os
    return os.getpid(), cv2.getNumThreads()


def test_map_ordered_workers_use_one_thread():
    before = cv2.getNumThreads()
    out = map_ordered(_threads, range(8), n_jobs=2, batch_size=1)
    assert {n for _, n in out} == {1}
    assert cv2.getNumThreads() == before  # the calling process is left alone


# --------------------------------------------------------------------------- #
# FeatureExtractor: output
# --------------------------------------------------------------------------- #

def test_output_shape_names_and_values(paths, images, expected):
    fx = FeatureExtractor()
    X = fx.fit_transform(paths)
    names = extract.feature_names()
    assert X.dtype == np.float64 and X.shape == (N_IMAGES, len(names))
    assert list(fx.get_feature_names_out()) == names
    assert fx.n_features_out_ == len(names)
    assert fx.errors_ == []
    _same(X, expected)  # PNG is lossless: reading gives the very same pixels


def test_every_group_including_nucleus_texture(images, expected):
    fx = FeatureExtractor(groups=extract.GROUPS, cell="median")
    X = fx.fit_transform(images[:3])
    names = extract.feature_names(extract.GROUPS)
    assert list(fx.get_feature_names_out()) == names
    ref = np.array([list(extract.features(im, groups=extract.GROUPS, cell="median").values())
                    for im in images[:3]])
    _same(X, ref)
    nuc = [i for i, n in enumerate(names) if n.startswith(("glcm_nucleus_", "lbp_nucleus_"))]
    assert len(nuc) == 106 and np.isfinite(X[:, nuc]).all()


def test_paths_and_arrays_give_identical_output(paths, images, expected):
    fx = FeatureExtractor().fit(paths)
    _same(fx.transform(images), expected)
    _same(fx.transform(np.stack(images)), expected)          # 4-D stack
    _same(fx.transform(tuple(str(p) for p in paths)), expected)
    _same(fx.transform(np.array([str(p) for p in paths])), expected)  # str array
    _same(fx.transform(pd.Series(paths)), expected)
    mixed = [paths[0]] + images[1:]
    _same(fx.transform(mixed), expected)


def test_other_dtypes_and_options(images):
    img = images[0]
    fx = FeatureExtractor(groups=("shape", "colour"), options={"n_fourier": 4},
                          cell="central", segmenter="otsu").fit([img])
    ref = extract.features(img, groups=("shape", "colour"), cell="central",
                           segmenter="otsu", n_fourier=4)
    _same(fx.transform([img])[0], np.array(list(ref.values())))
    # float images in [0, 1] are accepted like extract.features accepts them
    _same(fx.transform([img / 255.0]), fx.transform([img]))
    assert list(fx.get_feature_names_out()) == list(ref)


def test_groups_canonical_order():
    fx = FeatureExtractor(groups=["edges", "shape"]).fit([np.zeros((8, 8, 3), np.uint8)])
    assert list(fx.get_feature_names_out()) == extract.feature_names(("shape", "edges"))


def test_callable_segmenter(images):
    fx_name = FeatureExtractor(segmenter="otsu", groups=("shape",)).fit(images)
    fx_call = FeatureExtractor(segmenter=segment.otsu, groups=("shape",)).fit(images)
    _same(fx_call.transform(images[:3]), fx_name.transform(images[:3]))


def test_no_cell_gives_nan_row_without_error():
    blank = np.full((64, 64, 3), 240, np.uint8)
    fx = FeatureExtractor(groups=("shape",))
    X = fx.fit_transform([blank])
    assert np.isnan(X).all() and fx.errors_ == []


def test_set_output_pandas(paths, expected):
    fx = FeatureExtractor().set_output(transform="pandas")
    df = fx.fit_transform(paths)
    assert isinstance(df, pd.DataFrame)
    assert list(df.columns) == extract.feature_names()
    _same(df.to_numpy(), expected)
    # a Series of paths keeps its index
    s = pd.Series([str(p) for p in paths[:3]], index=["a", "b", "c"])
    assert list(fx.transform(s).index) == ["a", "b", "c"]


def test_n_jobs_1_and_2_identical(paths, expected):
    X1 = FeatureExtractor(n_jobs=1).fit_transform(paths)
    X2 = FeatureExtractor(n_jobs=2).fit_transform(paths)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(X2, expected)


def test_progress_bar(paths, capsys):
    FeatureExtractor(groups=("shape",), progress=True).fit_transform(paths[:3])
    assert "features" in capsys.readouterr().err


# --------------------------------------------------------------------------- #
# FeatureExtractor: errors
# --------------------------------------------------------------------------- #

@pytest.mark.parametrize("n_jobs", [1, 2])
def test_on_error_nan_corrupt_file_in_the_middle(paths, corrupt_file, expected, n_jobs):
    batch = paths[:4] + [corrupt_file] + paths[4:]
    fx = FeatureExtractor(on_error="nan", n_jobs=n_jobs)
    with pytest.warns(UserWarning, match="1 of 11 images failed"):
        X = fx.fit_transform(batch)
    assert X.shape == (N_IMAGES + 1, expected.shape[1])
    assert np.isnan(X[4]).all()
    _same(np.delete(X, 4, axis=0), expected)
    assert len(fx.errors_) == 1
    err = fx.errors_[0]
    assert err["index"] == 4 and err["item"] == str(corrupt_file)
    assert err["error_type"] == "ImageReadError" and str(corrupt_file) in err["message"]


def test_on_error_nan_bad_array_item(images):
    fx = FeatureExtractor(groups=("shape",), on_error="nan").fit(images)
    with pytest.warns(UserWarning):
        X = fx.transform([images[0], np.zeros((5, 5), np.uint8), images[1]])
    assert np.isnan(X[1]).all() and not np.isnan(X[0]).all()
    assert fx.errors_[0]["index"] == 1
    assert fx.errors_[0]["item"] == "<ndarray shape=(5, 5) dtype=uint8>"
    assert fx.errors_[0]["error_type"] == "ValueError"


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_on_error_raise_names_the_file(paths, corrupt_file, n_jobs):
    batch = paths[:2] + [corrupt_file] + paths[2:]
    fx = FeatureExtractor(n_jobs=n_jobs).fit(batch)
    with pytest.raises(ImageReadError, match=re.escape(f"item 2 ({corrupt_file})")) as info:
        fx.transform(batch)
    assert str(info.value.path) == str(corrupt_file)


def test_missing_file_raises(tmp_path):
    missing = tmp_path / "nope.png"
    with pytest.raises(ImageReadError, match=re.escape(str(missing))):
        FeatureExtractor().fit_transform([missing])


@pytest.mark.parametrize("X, match", [
    (np.zeros((5, 3)), "single image of shape .5, 3.; wrap it in a list .a 2-D numeric "
                       "array is one grey image; image estimators do not take a feature"),
    (np.zeros((96, 96, 3), np.uint8), "single image of shape .96, 96, 3.; wrap it in a list"),
    (np.zeros((2, 3, 4, 5, 6)), "not a batch of images"),
    ("cell.png", "single path"),
    ([], "at least one image"),
    (pd.DataFrame({"a": ["x"], "b": ["y"]}), "one column"),
])
def test_bad_batches(X, match):
    with pytest.raises(ValueError, match=match):
        FeatureExtractor().fit(X)


def test_sparse_batch_rejected():
    import scipy.sparse as sp
    with pytest.raises(TypeError, match="sparse"):
        FeatureExtractor().fit(sp.csr_matrix(np.eye(3)))


@pytest.mark.parametrize("params, match", [
    ({"segmenter": "nope"}, "segmenter"),
    ({"groups": ("texture", "nope")}, "groups"),
    ({"groups": ()}, "groups"),
    ({"cell": "smallest"}, "cell"),
    ({"cell": 0}, "cell"),
    ({"options": {"glcm_bins": 3}}, "options"),
    ({"options": [1]}, "options"),
    ({"on_error": "skip"}, "on_error"),
    ({"n_jobs": 0}, "n_jobs"),
    ({"n_jobs": 1.5}, "n_jobs"),
    ({"cache": 3}, "cache"),
    ({"progress": "yes"}, "progress"),
])
def test_invalid_params_raise_in_fit(params, match):
    fx = FeatureExtractor(**params)  # __init__ never validates
    with pytest.raises(ValueError, match=match):
        fx.fit([np.zeros((8, 8, 3), np.uint8)])


def test_unfitted_and_changed_config(images):
    with pytest.raises(NotFittedError):
        FeatureExtractor().transform(images[:1])
    fx = FeatureExtractor(groups=("shape",)).fit(images)
    fx.set_params(groups=("colour",))
    with pytest.raises(ValueError, match="changed since fit"):
        fx.transform(images[:1])


# --------------------------------------------------------------------------- #
# FeatureExtractor: cache
# --------------------------------------------------------------------------- #

class _CountingFeatures:
    def __init__(self, real):
        self.real = real
        self.calls = 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.real(*args, **kwargs)


def test_cache_hits_and_misses(paths, images, expected, tmp_path, monkeypatch):
    counter = _CountingFeatures(extract.feature_vector)
    monkeypatch.setattr(extract, "feature_vector", counter)
    cache = tmp_path / "cache"
    fx = FeatureExtractor(cache=cache, n_jobs=1)
    X1 = fx.fit_transform(paths)
    assert counter.calls == N_IMAGES
    _same(X1, expected)
    assert (fx.cache_dir_ / "config.json").is_file()

    # second run: everything from the cache, identical output
    X2 = clone(fx).fit_transform(paths)
    assert counter.calls == N_IMAGES
    _same(X2, X1)

    # the key is the content: a renamed copy and the decoded arrays hit too ...
    copy = tmp_path / "renamed.png"
    shutil.copy(paths[3], copy)
    _same(fx.transform([copy]), X1[3:4])
    assert counter.calls == N_IMAGES
    # ... but arrays are keyed on their own bytes (one miss each, then hits)
    _same(fx.transform(images[:2]), X1[:2])
    assert counter.calls == N_IMAGES + 2
    _same(fx.transform(images[:2]), X1[:2])
    assert counter.calls == N_IMAGES + 2

    # another configuration misses the cache
    fx_other = FeatureExtractor(cache=cache, groups=("shape",), n_jobs=1).fit(paths)
    assert fx_other.cache_dir_ != fx.cache_dir_
    fx_other.transform(paths[:3])
    assert counter.calls == N_IMAGES + 5
    fx_opt = FeatureExtractor(cache=cache, options={"glcm_levels": 16}, n_jobs=1).fit(paths)
    assert fx_opt.cache_dir_ != fx.cache_dir_
    # explicit default options share the default configuration's cache
    same = FeatureExtractor(cache=cache, options={"glcm_levels": 32}, n_jobs=1).fit(paths)
    assert same.cache_dir_ == fx.cache_dir_

    # n_jobs/on_error/progress do not change the key
    assert FeatureExtractor(cache=cache, n_jobs=2, on_error="nan").fit(paths).cache_dir_ \
        == fx.cache_dir_


def test_cache_parallel_and_corrupt_entries(paths, expected, tmp_path):
    cache = tmp_path / "cache"
    fx = FeatureExtractor(cache=cache, n_jobs=2)
    _same(fx.fit_transform(paths), expected)
    files = sorted(fx.cache_dir_.rglob("*.npy"))
    assert len(files) == N_IMAGES
    assert not list(fx.cache_dir_.rglob("*.tmp"))
    files[0].write_bytes(b"garbage")  # a damaged entry is recomputed, not trusted
    _same(FeatureExtractor(cache=cache, n_jobs=1).fit_transform(paths), expected)


def test_cache_failed_items_are_not_cached(paths, corrupt_file, tmp_path):
    fx = FeatureExtractor(cache=tmp_path, on_error="nan", groups=("shape",))
    with pytest.warns(UserWarning):
        fx.fit_transform([paths[0], corrupt_file])
    assert len(list(fx.cache_dir_.rglob("*.npy"))) == 1


# --------------------------------------------------------------------------- #
# scikit-learn integration
# --------------------------------------------------------------------------- #

def test_clone_get_set_params_round_trip(tmp_path):
    params = dict(segmenter="hsv", groups=("shape", "edges"), cell="central",
                  options={"n_fourier": 5}, n_jobs=2, on_error="nan", cache=str(tmp_path),
                  progress=True)
    fx = FeatureExtractor(**params)
    assert fx.get_params() == params
    fx2 = clone(fx)
    assert fx2.get_params() == params and fx2 is not fx
    fx3 = FeatureExtractor().set_params(**params)
    assert fx3.get_params() == params
    assert "segmenter='hsv'" in repr(fx)


def test_pickle_round_trip(images):
    fx = FeatureExtractor(groups=("shape",)).fit(images)
    fx2 = pickle.loads(pickle.dumps(fx))
    _same(fx2.transform(images[:3]), fx.transform(images[:3]))


def test_gridsearch_over_pipeline(tmp_path):
    ds = make_cells(24, 2, size=96, random_state=3)
    X, y = ds.save(tmp_path / "imgs"), np.array(ds.class_names)[ds.labels]
    pipe = Pipeline([("features", FeatureExtractor(groups=("shape",), cache=tmp_path / "c")),
                     ("classifier", make_classifier("knn"))])
    grid = GridSearchCV(pipe, {"classifier__classifier__n_neighbors": [1, 3],
                               "features__groups": [("shape",), ("shape", "colour")]},
                        cv=StratifiedKFold(3, shuffle=True, random_state=0))
    grid.fit(X, y)
    assert set(grid.best_params_) == {"classifier__classifier__n_neighbors",
                                      "features__groups"}
    assert grid.best_score_ > 0.7
    assert set(grid.predict(X[:4])) <= set(ds.class_names)
    # each image was extracted once per configuration, then read from the cache
    npy = list((tmp_path / "c").rglob("*.npy"))
    assert len(npy) == 2 * 24


def test_pipeline_feature_names_and_pandas(images):
    pipe = Pipeline([("stain", StainNormalizer()), ("resize", Resize((96, 96))),
                     ("features", FeatureExtractor(groups=("shape",)))])
    pipe.set_output(transform="pandas")
    df = pipe.fit_transform(images)
    assert isinstance(df, pd.DataFrame) and df.shape == (N_IMAGES, len(df.columns))
    assert list(pipe.get_feature_names_out()) == extract.feature_names(("shape",))


# --------------------------------------------------------------------------- #
# image transformers
# --------------------------------------------------------------------------- #

def test_image_reader(paths, images):
    out = ImageReader().fit_transform(paths)
    assert isinstance(out, list) and len(out) == N_IMAGES
    for a, b in zip(out, images):
        _same(a, b)
    gray = ImageReader().transform([np.full((4, 5), 7, np.uint16)])[0]
    assert gray.shape == (4, 5, 3) and gray.dtype == np.uint8
    with pytest.raises(ImageReadError, match="nope.png"):
        ImageReader().transform(["nope.png"])


def test_resize(images, paths):
    out = Resize((40, 50)).fit_transform(paths[:2])
    assert [o.shape for o in out] == [(40, 50, 3)] * 2
    _same(out[0], preprocess.resize(images[0], (40, 50)))
    padded = Resize(64, keep_aspect=True).transform([np.zeros((32, 16, 3), np.uint8)])[0]
    assert padded.shape == (64, 64, 3)
    with pytest.raises(ValueError, match="size"):
        Resize(size=(0, 3)).fit(images)


@pytest.mark.parametrize("method", ["global", "clahe"])
def test_equalize(images, method):
    out = Equalize(method=method).fit_transform(images[:2])
    ref = preprocess.equalize if method == "global" else preprocess.clahe
    _same(out[1], ref(images[1]))
    with pytest.raises(ValueError, match="method"):
        Equalize(method="local").fit(images)


def _lab_mean(images, stained_only=False):
    """Mean CIE Lab colour of the images (of their stained pixels only if asked)."""
    means = []
    for im in images:
        lab = preprocess._rgb_to_lab(im).reshape(-1, 3)
        if stained_only:  # Macenko's stained pixels: optical density >= 0.15 everywhere
            lab = lab[(preprocess._optical_density(im, 240) >= 0.15).all(axis=1)]
        means.append(lab.mean(axis=0))
    return np.mean(means, axis=0)


def _tinted(images):
    """The images with a strong blue/green cast (a different 'stain batch')."""
    lab = [preprocess._rgb_to_lab(im) for im in images]
    for x in lab:
        x[..., 0] -= 8.0   # darker
        x[..., 1] -= 14.0  # less magenta
        x[..., 2] += 10.0  # yellower
    return [preprocess._lab_to_rgb(x) for x in lab]


@pytest.mark.parametrize("method", ["reinhard", "macenko"])
def test_stain_normalizer_moves_towards_target(images, method):
    reference, source = images[:5], _tinted(images[5:])
    norm = StainNormalizer(method=method)
    with pytest.raises(NotFittedError):
        norm.transform(source)
    norm.fit(reference)
    target_type = preprocess.ReinhardTarget if method == "reinhard" else preprocess.MacenkoTarget
    assert isinstance(norm.target_, target_type)
    _same(norm.reference_indices_, np.arange(5))
    out = norm.transform(source)
    assert len(out) == len(source) and all(o.dtype == np.uint8 for o in out)
    # Macenko maps stains, not the background (which it may tint), so it is
    # judged on the stained pixels; Reinhard on the whole image.
    stained = method == "macenko"
    goal = _lab_mean(reference, stained)
    before = np.linalg.norm(_lab_mean(source, stained) - goal)
    after = np.linalg.norm(_lab_mean(out, stained) - goal)
    assert after < 0.5 * before, (before, after)
    if method == "reinhard":
        np.testing.assert_allclose(norm.target_.mean, goal, atol=0.5)


def test_stain_normalizer_subset_and_paths(images, paths):
    a = StainNormalizer(n_reference=4, random_state=1).fit(paths)
    b = StainNormalizer(n_reference=4, random_state=1).fit(images)
    assert len(a.reference_indices_) == 4
    _same(a.reference_indices_, b.reference_indices_)
    _same(a.target_.mean, b.target_.mean)
    refs = [images[i] for i in a.reference_indices_]
    _same(a.target_.mean, preprocess.reinhard_stats(refs).mean)
    _same(StainNormalizer(n_reference=50).fit(images).reference_indices_, np.arange(N_IMAGES))
    with pytest.raises(ValueError, match="n_reference"):
        StainNormalizer(n_reference=0).fit(images)
    with pytest.raises(ValueError, match="method"):
        StainNormalizer(method="vahadane").fit(images)


# --------------------------------------------------------------------------- #
# the estimator contract on images (what sklearn's checks test on matrices)
# --------------------------------------------------------------------------- #

IMAGE_ESTIMATORS = [FeatureExtractor(groups=("shape", "colour")), ImageReader(),
                    Resize((64, 80)), Equalize("clahe"), StainNormalizer("macenko")]


def _as_array(out):
    return np.stack(out) if isinstance(out, list) else out


@pytest.mark.parametrize("est", IMAGE_ESTIMATORS, ids=lambda e: type(e).__name__)
def test_image_estimator_contract(est, images):
    X = images[:6]
    params = est.get_params()
    # unfitted: stateless image transformers transform, stateful ones refuse
    if get_tags(est).requires_fit:
        with pytest.raises(NotFittedError):
            est.transform(X)
    else:
        _as_array(est.transform(X))
    fitted = clone(est)
    assert fitted.fit(X) is fitted                                  # fit returns self
    assert fitted.get_params() == params                           # params untouched
    out = _as_array(fitted.transform(X))
    _same(_as_array(clone(est).fit(X).fit(X).transform(X)), out)    # fit idempotent
    _same(_as_array(pickle.loads(pickle.dumps(fitted)).transform(X)), out)  # pickle
    perm = [3, 0, 5, 1, 4, 2]
    _same(_as_array(fitted.transform([X[i] for i in perm])), out[perm])  # order
    _same(_as_array(fitted.transform(X[2:4])), out[2:4])                  # subsets
    state = {k: v for k, v in vars(fitted).items() if k != "errors_"}
    fitted.transform(X)
    assert state.keys() <= vars(fitted).keys()                     # transform adds nothing
    _same(_as_array(fitted.fit_transform(X)), out)


@pytest.mark.parametrize("est", IMAGE_ESTIMATORS, ids=lambda e: type(e).__name__)
def test_image_tags(est):
    tags = get_tags(est)
    assert tags.input_tags.two_d_array is False
    assert tags.input_tags.string is True
    assert tags.transformer_tags is not None
    if isinstance(est, FeatureExtractor):
        assert tags.transformer_tags.preserves_dtype == ["float64"]
    else:
        assert tags.transformer_tags.preserves_dtype == []  # output: list of images
        assert est.set_output(transform="pandas") is est    # accepted, output unchanged


# --------------------------------------------------------------------------- #
# scikit-learn's estimator checks
# --------------------------------------------------------------------------- #
#
# With their true tags (``input_tags.two_d_array=False``) scikit-learn 1.9
# generates a single check for these estimators (check_estimator_cloneable)
# and skips all others with a SkipTestWarning. So that no check is skipped
# silently, the checks run on *numeric views*: subclasses identical to the
# real estimators except that they claim ``two_d_array=True``. Every check
# then runs; those that fail because they need a numeric feature matrix as X
# are listed below with the reason, as strict expected failures (a check in
# the list that starts to pass fails the test, so the list stays exact). The
# behaviour those checks test is tested on images in
# test_image_estimator_contract above.

_MATRIX = ("the check fits/transforms a 2-D numeric feature matrix; image estimators take "
           "a batch of images (paths or (H, W, 3) arrays) and reject a matrix with "
           "ValueError by design (this contract is tested on images in "
           "test_image_estimator_contract)")
_MESSAGE = ("the check expects scikit-learn's own numeric-validation error message for a "
            "matrix ({}); an image estimator rejects every 2-D numeric matrix first with "
            "'not a batch of images'")

IMAGE_EXPECTED_FAILURES = {
    "check_fit_score_takes_y": _MATRIX,
    "check_estimators_overwrite_params": _MATRIX,
    "check_dont_overwrite_parameters": _MATRIX,
    "check_estimators_fit_returns_self": _MATRIX,
    "check_readonly_memmap_input": _MATRIX,
    "check_estimators_dtypes": _MATRIX,
    "check_pipeline_consistency": _MATRIX,
    "check_estimators_pickle": _MATRIX,
    "check_f_contiguous_array_estimator": _MATRIX,
    "check_transformer_data_not_an_array": _MATRIX,
    "check_transformer_general": _MATRIX,
    "check_methods_sample_order_invariance": _MATRIX,
    "check_methods_subset_invariance": _MATRIX,
    "check_dict_unchanged": _MATRIX,
    "check_fit_idempotent": _MATRIX,
    "check_fit_check_is_fitted": _MATRIX,
    "check_fit2d_predict1d": _MATRIX,
    "check_n_features_in": _MATRIX + "; also, images have no n_features_in_",
    "check_n_features_in_after_fitting": _MATRIX + "; also, images have no n_features_in_",
    "check_dtype_object": ("the check passes a 2-D object matrix; a 1-D object array is a "
                           "valid batch of paths/images, a 2-D one is rejected"),
    "check_positive_only_tag_during_fit": _MESSAGE.format("negative values"),
    "check_complex_data": _MESSAGE.format("'Complex data not supported'"),
    "check_estimators_empty_data_messages": _MESSAGE.format("'0 sample(s)' / '0 feature(s)'"),
    "check_estimators_nan_inf": _MESSAGE.format("'Input contains NaN'"),
    "check_fit2d_1sample": _MESSAGE.format("'1 sample'"),
    "check_fit2d_1feature": _MESSAGE.format("'1 feature'"),
    # skipped by sklearn itself unless SCIPY_ARRAY_API=1; then it would fail:
    "check_array_api_input": _MATRIX,
}


class CheckFailed(AssertionError):
    """A failed sklearn check, re-raised with a short, pre-formatted traceback."""


def run_check(estimator, check):
    """Run one sklearn check; re-raise a failure with its message and last frames.

    pytest would otherwise render the full traceback of every expected
    failure, re-parsing sklearn's 5,000-line estimator_checks.py each time
    (about 0.2 s per xfail, half a minute for this module).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            check(estimator)
        except SkipTest:
            raise  # sklearn's own skip (e.g. array API checks without SCIPY_ARRAY_API)
        except Exception as exc:
            frames = "".join(traceback.format_exception(exc, limit=-4))
            raise CheckFailed(f"{type(exc).__name__}: {exc}\n{frames}") from None


def _numeric_view(cls):
    """``cls`` claiming ``two_d_array=True`` so that sklearn runs every check on it."""
    def __sklearn_tags__(self):
        tags = cls.__sklearn_tags__(self)
        tags.input_tags.two_d_array = True
        return tags
    return type(cls.__name__, (cls,), {"__sklearn_tags__": __sklearn_tags__,
                                       "__module__": __name__})


def _image_expected_failures(est):
    failures = dict(IMAGE_EXPECTED_FAILURES)
    if isinstance(est, FeatureExtractor):
        failures["check_transformer_preserve_dtypes"] = _MATRIX
    if not get_tags(est).requires_fit:
        failures["check_transformers_unfitted_stateless"] = _MATRIX
    return failures


@parametrize_with_checks(
    [_numeric_view(FeatureExtractor)(groups=("shape",)), _numeric_view(ImageReader)(),
     _numeric_view(Resize)(), _numeric_view(Equalize)(), _numeric_view(StainNormalizer)()],
    expected_failed_checks=_image_expected_failures, xfail_strict=True)
def test_sklearn_estimator_checks(estimator, check):
    run_check(estimator, check)


def test_real_tags_make_sklearn_skip_everything_but_cloning():
    """Why the numeric views above exist (documents scikit-learn 1.9 behaviour)."""
    from sklearn.utils.estimator_checks import estimator_checks_generator, _check_name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        names = [_check_name(c) for _, c in estimator_checks_generator(FeatureExtractor())]
    assert names == ["check_estimator_cloneable"]


def test_segmenter_step_pairs(images, paths):
    """Segmenter: (RGB, Segmentation) per item equal to read_image + segment,
    own masks kept, unreadable items passed on unchanged, params cloneable."""
    from leukfeat.segment import from_mask, segment as run_segment
    from leukfeat.transformers import Segmenter

    est = Segmenter(method="lab_kmeans")
    assert clone(est).get_params() == {"method": "lab_kmeans", "n_jobs": None}
    for n_jobs in (1, 2):
        out = Segmenter(method="lab_kmeans", n_jobs=n_jobs).fit_transform(
            [paths[0], images[1], (images[2], images[2][..., 0] > 250), "missing.png"])
        rgb, seg = out[0]
        ref = run_segment(images[0], "lab_kmeans")
        np.testing.assert_array_equal(rgb, images[0])
        np.testing.assert_array_equal(seg.labels, ref.labels)
        np.testing.assert_array_equal(out[1][1].nucleus,
                                      run_segment(images[1], "lab_kmeans").nucleus)
        own = from_mask(images[2], images[2][..., 0] > 250)
        np.testing.assert_array_equal(out[2][1].labels, own.labels)
        assert out[3] == "missing.png"
    pickle.loads(pickle.dumps(est))
    with pytest.raises(ValueError, match="method"):
        Segmenter(method="magic").fit([images[0]])


def test_transform_cells_one_row_per_cell(tmp_path, monkeypatch):
    """transform_cells: every cell of every image (features equal to
    extract.features_per_cell, geometry to regionprops), in item and label
    order; an image without a cell and a failed one keep one NaN row; same
    result for n_jobs 1 and 2 and from the per-cell cache (no recomputation)."""
    from skimage.measure import regionprops

    from leukfeat import extract as ex
    from leukfeat.datasets import make_cells
    from leukfeat.transformers import CELL_COLUMNS

    images = list(make_cells(2, size=(180, 240), n_white_cells=2, random_state=3).images)
    images.append(np.full((60, 60, 3), 235, np.uint8))              # no white cell
    items = images + ["missing.png"]
    groups = ("shape", "colour")
    fx = FeatureExtractor(groups=groups, on_error="nan", cache=tmp_path / "c")
    with pytest.warns(UserWarning, match="1 of 4 images failed"):
        table = fx.fit(items).transform_cells(items)
    assert list(table.columns) == ["item", *CELL_COLUMNS, *fx.get_feature_names_out()]
    assert table["item"].tolist() == [0, 0, 1, 1, 2, 3]
    assert fx.errors_[0]["index"] == 3
    names = list(fx.get_feature_names_out())
    for i in (0, 1):
        rows = table[table["item"] == i]
        seg = segment.segment(images[i])
        ref = ex.features_per_cell(images[i], seg, groups=groups)
        assert rows["cell_label"].tolist() == [int(r["cell_label"]) for r in ref]
        np.testing.assert_array_equal(rows[names].to_numpy(float),
                                      [list(r.values())[1:] for r in ref])
        for (_, row), p in zip(rows.iterrows(), regionprops(seg.labels)):
            assert (row["bbox_min_row"], row["bbox_min_col"], row["bbox_max_row"],
                    row["bbox_max_col"]) == p.bbox
            np.testing.assert_allclose([row["centroid_row"], row["centroid_col"]], p.centroid)
    assert table[table["item"] >= 2].drop(columns="item").isna().all(axis=None)
    monkeypatch.setattr(ex, "features_per_cell", None)              # a cache hit needs none
    again = FeatureExtractor(groups=groups, on_error="nan", cache=tmp_path / "c",
                             n_jobs=1).fit(images).transform_cells(images)
    pd.testing.assert_frame_equal(again, table[table["item"] < 3])
    monkeypatch.undo()
    parallel = FeatureExtractor(groups=groups, n_jobs=2).fit(images).transform_cells(images)
    pd.testing.assert_frame_equal(parallel, table[table["item"] < 3])


@pytest.mark.parametrize("est", [ImageReader(on_error="pass"), Resize((64, 80), on_error="pass"),
                                 Equalize("clahe", on_error="pass"),
                                 StainNormalizer("reinhard", on_error="pass")],
                         ids=lambda e: type(e).__name__)
def test_image_transformers_pass_bad_items_on(est, images, paths, corrupt_file):
    """on_error="pass": a file that cannot be read is passed on unchanged (and
    left out of a stain target), so a pipeline's feature step reports it as
    its own NaN row; "raise" (the default) still names it."""
    items = [paths[0], corrupt_file, paths[1]]
    out = clone(est).fit(items).transform(items)
    assert out[1] == corrupt_file and out[0].dtype == np.uint8 and out[2].dtype == np.uint8
    with pytest.raises(ImageReadError, match=re.escape(str(corrupt_file))):
        clone(est).set_params(on_error="raise").fit(items).transform(items)
    with pytest.raises(ValueError, match="on_error"):
        clone(est).set_params(on_error="nan").fit(items)


def test_stain_pipeline_keeps_good_rows_around_a_bad_file(paths, corrupt_file):
    from leukfeat.models import make_pipeline

    pipe = make_pipeline("logreg", stain="reinhard", groups=("shape", "colour"),
                         on_error="nan")
    assert pipe.named_steps["stain"].on_error == "pass"
    with pytest.warns(UserWarning, match="1 of 4 images failed"):
        X = pipe[:-1].fit_transform([paths[0], corrupt_file, paths[1], paths[2]])
    assert np.isnan(X[1]).all() and np.isfinite(X[[0, 2, 3]]).any(axis=1).all()
    assert pipe.named_steps["features"].errors_[0]["item"] == str(corrupt_file)


def test_cache_fingerprint_covers_every_module_of_the_values():
    """Every entry of the feature cache's code fingerprint exists (a moved
    module would silently drop out of the key)."""
    from pathlib import Path

    from leukfeat import _fingerprint as fp
    root = Path(fp.__file__).resolve().parent
    for entry in fp.FINGERPRINT_MODULES:
        assert (root / entry).exists(), entry
    assert (root / "segment" / "_anchored.py").is_file()    # the default segmenter's code


def test_stain_normalizer_fixed_target_learns_nothing():
    """target="smear" or a target object: fit reads no image (a missing file is
    fine), transform equals preprocess.reinhard/macenko with that target; a
    target of the other method is refused naming the parameter."""
    from leukfeat import preprocess
    from leukfeat.datasets import make_cells
    from leukfeat.transformers import StainNormalizer

    images = list(make_cells(3, size=64, random_state=1).images)
    for method, fn, builtin in (("reinhard", preprocess.reinhard,
                                 preprocess.SMEAR_REINHARD_TARGET),
                                ("macenko", preprocess.macenko,
                                 preprocess.SMEAR_MACENKO_TARGET)):
        norm = StainNormalizer(method, target="smear").fit(["no/such/file.png"])
        assert norm.target_ is builtin and norm.reference_indices_.size == 0
        for got, image in zip(norm.transform(images), images):
            np.testing.assert_array_equal(got, fn(image, builtin))
    own = preprocess.reinhard_stats(images[0])
    norm = StainNormalizer("reinhard", target=own).fit(images)
    np.testing.assert_array_equal(norm.transform(images[1:2])[0],
                                  preprocess.reinhard(images[1], own))
    with pytest.raises(ValueError, match="target: expected None, 'smear' or a MacenkoTarget"):
        StainNormalizer("macenko", target=own).fit(images)
