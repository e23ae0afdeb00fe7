"""Training-only augmentation (issue #30): no augmented copy of a test image
ever reaches training; oversampling balances the classes."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from leukfeat.augment import Augmenter, TrainingAugmentation
from leukfeat.datasets import make_cells


def _key(image):
    return hashlib.sha256(np.ascontiguousarray(image).tobytes()
                          + str(np.shape(image)).encode()).hexdigest()


def _dihedral(image):
    """The 8 rotations/flips of an image: every augmentation without scale or stain."""
    out = []
    for im in (image, image[:, ::-1]):
        out += [np.ascontiguousarray(np.rot90(im, k)) for k in range(4)]
    return out


class SpyClassifier(ClassifierMixin, BaseEstimator):
    """Records the pixels of every image it is fitted on; predicts the majority."""

    seen: list = []

    def fit(self, X, y):
        SpyClassifier.seen.append({_key(x) for x in X})
        values, counts = np.unique(y, return_counts=True)
        self.classes_ = values
        self.majority_ = values[np.argmax(counts)]
        return self

    def predict(self, X):
        return np.full(len(X), self.majority_)


def test_augmenter_transformations():
    image = make_cells(1, size=(60, 80), random_state=0).images[0]
    rng = np.random.default_rng(0)
    keys = {_key(v) for v in _dihedral(image)}
    plain = Augmenter(scale=0, stain=0)
    outs = [plain.augment(image, rng) for _ in range(40)]
    assert all(_key(o) in keys for o in outs) and len({_key(o) for o in outs}) > 4
    jitter = Augmenter(rotate90=False, flip=False, scale=0, stain=0.1).augment(image, rng)
    assert jitter.shape == image.shape and not np.array_equal(jitter, image)
    assert np.abs(jitter.astype(int) - image).mean() < 20
    zoom = Augmenter(rotate90=False, flip=False, scale=0.2, stain=0).augment(image, rng)
    assert zoom.shape == image.shape
    with pytest.raises(ValueError, match="scale"):
        Augmenter(scale=1.5).augment(image, rng)


def test_no_augmented_copy_of_a_test_image_reaches_training():
    """Cross-validated with augmentation inside fit: every image a training
    fit sees is a training original or a rotation/flip of one, never one of
    a test image of that fold."""
    data = make_cells(18, n_classes=2, size=48, random_state=5)
    X, y = list(data.images), np.asarray(data.labels)
    SpyClassifier.seen = []
    model = TrainingAugmentation(SpyClassifier(), Augmenter(scale=0, stain=0), n_copies=2)
    folds = list(StratifiedKFold(3, shuffle=True, random_state=0).split(X, y))
    cross_val_predict(model, X, y, cv=folds)
    assert len(SpyClassifier.seen) == len(folds)
    for seen, (train, test) in zip(SpyClassifier.seen, folds):
        test_keys = {k for i in test for k in map(_key, _dihedral(X[i]))}
        train_keys = {k for i in train for k in map(_key, _dihedral(X[i]))}
        assert not seen & test_keys
        assert seen <= train_keys
        assert len(seen) > len(train)           # copies were added


def test_oversampling_by_augmentation_balances_the_classes():
    data = make_cells(12, n_classes=2, size=48, random_state=6)
    X, y = list(data.images), np.asarray(data.labels)
    keep = np.r_[np.flatnonzero(y == y[0]), np.flatnonzero(y != y[0])[:2]]  # 6 vs 2
    X, y = [X[i] for i in keep], y[keep]
    model = TrainingAugmentation(SpyClassifier(), n_copies=1, balance=True).fit(X, y)
    counts = np.unique(np.concatenate([y, y[model.source_indices_]]), return_counts=True)[1]
    assert counts.tolist() == [12, 12]
    assert model.n_augmented_ == 12 + 12 - len(y)
    assert set(model.source_indices_) <= set(range(len(y)))
    plain = TrainingAugmentation(SpyClassifier(), n_copies=0).fit(X, y)
    assert plain.n_augmented_ == 0
    assert list(plain.predict(X[:3])) == [y[0]] * 3


def test_with_an_image_pipeline():
    from leukfeat.models import make_pipeline

    data = make_cells(16, n_classes=2, size=96, random_state=7)
    pipe = make_pipeline("logreg", groups=("shape", "colour"))
    model = TrainingAugmentation(pipe, n_copies=1).fit(list(data.images), data.labels)
    proba = model.predict_proba(list(data.images[:4]))
    assert proba.shape == (4, 2) and np.allclose(proba.sum(axis=1), 1)
    assert model.n_augmented_ == 16
