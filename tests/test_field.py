"""Field-level features (leukfeat.extract.field) against regionprops and hand values."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.measure import regionprops

from leukfeat import extract
from leukfeat.datasets import make_cells
from leukfeat.extract import field
from leukfeat.segment import Segmentation, segment


def _disc(shape, cy, cx, r):
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def _three_cells(shape=(80, 100)):
    cells = [_disc(shape, 20, 20, 8), _disc(shape, 50, 70, 12), _disc(shape, 60, 20, 5)]
    nuclei = [_disc(shape, 20, 20, 4), _disc(shape, 50, 70, 9), np.zeros(shape, bool)]
    labels = np.zeros(shape, np.int32)
    for i, c in enumerate(cells, start=1):
        labels[c] = i
    mask = labels > 0
    nucleus = np.any(nuclei, axis=0)
    return Segmentation.from_masks(mask, nucleus=nucleus, labels=labels), cells, nuclei


def test_names_order_and_prefix():
    assert field.field_feature_names() == [f"field_{n}" for n in field.FIELD_FEATURES]
    assert field.field_feature_names("f")[0] == "f_n_cells"
    with pytest.raises(ValueError, match="prefix"):
        field.field_feature_names("")


def test_values_match_regionprops_and_hand_computation():
    seg, cells, nuclei = _three_cells()
    f = field.field_features(seg)
    assert list(f) == field.field_feature_names()
    props = regionprops(seg.labels)
    areas = np.array([p.area for p in props], float)
    assert np.array_equal(areas, [c.sum() for c in cells])
    frac = np.array([n.sum() / c.sum() for c, n in zip(cells, nuclei)])
    assert f["field_n_cells"] == 3.0
    assert f["field_cover"] == pytest.approx(areas.sum() / seg.labels.size, rel=1e-12)
    assert f["field_cell_area_mean"] == pytest.approx(areas.mean(), rel=1e-12)
    assert f["field_cell_area_std"] == pytest.approx(np.std(areas), rel=1e-12)
    assert f["field_nucleus_fraction_mean"] == pytest.approx(frac.mean(), rel=1e-12)
    assert f["field_nucleus_fraction_std"] == pytest.approx(np.std(frac), rel=1e-12)


def test_one_square_cell_by_hand():
    m = np.zeros((10, 10), bool)
    m[2:6, 2:6] = True
    nuc = np.zeros_like(m)
    nuc[2:4, 2:6] = True
    f = field.field_features(Segmentation.from_masks(m, nucleus=nuc))
    assert f == {"field_n_cells": 1.0, "field_cover": 0.16, "field_cell_area_mean": 16.0,
                 "field_cell_area_std": 0.0, "field_nucleus_fraction_mean": 0.5,
                 "field_nucleus_fraction_std": 0.0}


def test_label_numbers_with_gaps_count_present_cells_only():
    seg, _, _ = _three_cells()
    labels = seg.labels.copy()
    labels[labels == 2] = 7                   # labels 1, 3, 7
    gap = Segmentation.from_masks(seg.mask, nucleus=seg.nucleus, labels=labels)
    a, b = field.field_features(seg), field.field_features(gap)
    assert a == pytest.approx(b, rel=1e-12)
    labels[labels == 7] = 2_000_000_000      # far more label numbers than pixels
    huge = Segmentation.from_masks(seg.mask, nucleus=seg.nucleus, labels=labels)
    assert field.field_features(huge) == pytest.approx(a, rel=1e-12)
    full = np.full((3, 3), 5_000_000_000, np.int64)     # no background at all
    whole = Segmentation(np.ones((3, 3), bool), np.zeros((3, 3), bool), full)
    assert field.field_features(whole)["field_n_cells"] == 1.0
    assert field.field_features(whole)["field_cover"] == 1.0


def test_empty_segmentation_is_all_nan():
    f = field.field_features(Segmentation.empty((20, 30)))
    assert list(f) == field.field_feature_names()
    assert all(np.isnan(v) for v in f.values())


def test_wrong_type_names_the_argument():
    with pytest.raises(TypeError, match="segmentation"):
        field.field_features(np.zeros((5, 5), bool))


def test_features_measure_the_field_once_whatever_the_cell():
    img = make_cells(1, size=160, n_white_cells=3, random_state=3).images[0]
    seg = segment(img)
    assert seg.n_cells >= 2
    want = field.field_features(seg)
    names = field.field_feature_names()
    for cell in ("largest", "central", "mean", "median"):
        f = extract.features(img, seg, cell=cell)
        assert [f[n] for n in names] == pytest.approx([want[n] for n in names], nan_ok=True)
    rows = extract.features_per_cell(img, seg)
    assert len(rows) == seg.n_cells
    for r in rows:
        assert [r[n] for n in names] == pytest.approx([want[n] for n in names], nan_ok=True)


def test_field_group_alone_and_with_others_keeps_canonical_order():
    img = make_cells(1, random_state=0).images[0]
    only = extract.features(img, groups=("field",))
    assert list(only) == field.field_feature_names()
    assert list(extract.features(img, groups=("field",), cell="median")) == list(only)
    both = extract.features(img, groups=("field", "shape"))
    assert list(both) == extract.feature_names(("shape", "field"))
    assert list(both)[-len(only):] == list(only)


def test_no_cell_gives_nan_field_row():
    blank = np.full((64, 64, 3), 200, np.uint8)
    for cell in ("largest", "median"):
        f = extract.features(blank, cell=cell)
        assert all(np.isnan(f[n]) for n in field.field_feature_names())
