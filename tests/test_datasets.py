"""Tests for leukfeat.datasets.make_cells and the SyntheticCells container."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.color import rgb2lab

from leukfeat.datasets import MASK_CODES, CellSample, SyntheticCells, make_cells

ARRAYS = ("images", "labels", "masks", "nucleus", "cytoplasm", "cell_labels", "red_cells")


@pytest.fixture(scope="module")
def ds():
    return make_cells(24, n_classes=2, size=128, random_state=0)


@pytest.fixture(scope="module")
def lab(ds):
    return rgb2lab(ds.images)


def assert_same(a: SyntheticCells, b: SyntheticCells) -> None:
    for name in ARRAYS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.class_names == b.class_names
    assert a.params == b.params


# --------------------------------------------------------------------------- shapes
def test_shapes_and_dtypes(ds):
    n = 24
    assert isinstance(ds, SyntheticCells)
    assert len(ds) == n
    assert ds.images.shape == (n, 128, 128, 3) and ds.images.dtype == np.uint8
    assert ds.labels.shape == (n,) and np.issubdtype(ds.labels.dtype, np.integer)
    for name in ("masks", "nucleus", "cytoplasm", "red_cells"):
        arr = getattr(ds, name)
        assert arr.shape == (n, 128, 128) and arr.dtype == bool, name
    assert ds.cell_labels.shape == (n, 128, 128) and ds.cell_labels.dtype == np.int32
    assert ds.class_names == ("class_0", "class_1")
    assert len(ds.params) == n and all(isinstance(p, dict) for p in ds.params)
    # the images use a real dynamic range (not blank)
    assert ds.images.min() < 120 and ds.images.max() > 220


def test_rectangular_size():
    d = make_cells(3, size=(64, 96), random_state=1)
    assert d.images.shape == (3, 64, 96, 3)
    assert d.masks.shape == d.cell_labels.shape == (3, 64, 96)


# --------------------------------------------------------------------------- seeds
def test_same_seed_same_data():
    assert_same(make_cells(6, random_state=42, size=64), make_cells(6, random_state=42, size=64))


def test_different_seed_different_data():
    a = make_cells(4, random_state=1, size=64)
    b = make_cells(4, random_state=2, size=64)
    assert not np.array_equal(a.images, b.images)
    assert not np.array_equal(a.masks, b.masks)


def test_samples_do_not_depend_on_n_samples():
    big = make_cells(10, random_state=0, size=64)
    small = make_cells(5, random_state=0, size=64)
    assert_same(big[:5], small)


def test_generator_and_none_seeds():
    a = make_cells(3, size=64, random_state=np.random.default_rng(7))
    b = make_cells(3, size=64, random_state=np.random.default_rng(7))
    assert_same(a, b)
    c = make_cells(2, size=64, random_state=None)
    d = make_cells(2, size=64, random_state=None)
    assert not np.array_equal(c.images, d.images)


def test_stain_jitter_changes_colours_not_geometry():
    a = make_cells(4, size=64, stain_jitter=0.0, random_state=3)
    b = make_cells(4, size=64, stain_jitter=0.2, random_state=3)
    np.testing.assert_array_equal(a.cell_labels, b.cell_labels)
    np.testing.assert_array_equal(a.nucleus, b.nucleus)
    assert not np.array_equal(a.images, b.images)
    assert all(p["stain"] == {"lightness_shift": 0.0, "eosin": 1.0, "azure": 1.0}
               for p in a.params)
    assert any(abs(p["stain"]["eosin"] - 1.0) > 0.01 for p in b.params)


# --------------------------------------------------------------------------- masks
def test_mask_relations(ds):
    assert not (ds.nucleus & ~ds.masks).any()
    np.testing.assert_array_equal(ds.cytoplasm, ds.masks & ~ds.nucleus)
    np.testing.assert_array_equal(ds.masks, ds.cell_labels > 0)
    assert not (ds.red_cells & ds.masks).any()
    for i in range(len(ds)):
        assert ds.nucleus[i].any() and ds.cytoplasm[i].any() and ds.red_cells[i].any()


def test_white_cells_inside_image(ds):
    m = ds.masks
    assert not m[:, 0, :].any() and not m[:, -1, :].any()
    assert not m[:, :, 0].any() and not m[:, :, -1].any()


def test_red_cells_keep_away_from_white_cells(ds):
    # not merely disjoint: separated by at least one background pixel
    grown = ndi.binary_dilation(ds.masks, structure=np.ones((1, 3, 3), bool))
    assert not (grown & ds.red_cells).any()


def test_nucleus_has_cytoplasm_rim(ds):
    inner = ndi.binary_erosion(ds.masks, structure=np.ones((1, 5, 5), bool))
    assert not (ds.nucleus & ~inner).any()


def test_cell_sizes_follow_the_documented_ranges(ds):
    side = 128
    for i, p in enumerate(ds.params):
        area = int(ds.masks[i].sum())
        r_eq = math.sqrt(area / math.pi) / side
        assert 0.15 < r_eq < 0.28, (i, r_eq)
        frac = ds.nucleus[i].sum() / area
        assert frac == pytest.approx(p["nucleus_fraction"])
        assert 0.2 < frac < 0.9
        for rc in p["red_cells"]:
            assert 0.08 * side <= rc["radius"] <= 0.11 * side


def test_n_white_cells_range_respected():
    d = make_cells(12, size=(96, 128), n_white_cells=(2, 3), random_state=5)
    counts = []
    for i in range(len(d)):
        _, n = ndi.label(d.cell_labels[i] > 0)
        assert n == d.cell_labels[i].max() == d.params[i]["n_white_cells"]
        np.testing.assert_array_equal(np.unique(d.cell_labels[i]), np.arange(n + 1))
        for k in range(1, n + 1):       # every white cell has its own nucleus
            assert (d.nucleus[i] & (d.cell_labels[i] == k)).any()
        counts.append(n)
    assert set(counts) == {2, 3}


@pytest.mark.parametrize("size, n_white", [(32, (3, 4)), (48, (6, 9))])
def test_many_white_cells_in_small_images(size, n_white):
    d = make_cells(6, size=size, n_white_cells=n_white, random_state=2)
    assert not (ndi.binary_erosion(d.masks, np.ones((1, 5, 5), bool)) < d.nucleus).any()
    for i in range(len(d)):
        _, n = ndi.label(d.cell_labels[i] > 0)
        assert n_white[0] <= n == d.params[i]["n_white_cells"] <= n_white[1]
        assert not d.masks[i][[0, -1], :].any() and not d.masks[i][:, [0, -1]].any()
        for k in range(1, n + 1):
            assert (d.nucleus[i] & (d.cell_labels[i] == k)).any()


def test_n_red_cells():
    d = make_cells(4, size=64, n_red_cells=0, random_state=0)
    assert not d.red_cells.any() and all(p["n_red_cells"] == 0 for p in d.params)
    d = make_cells(6, size=128, n_red_cells=(3, 5), random_state=0)
    assert all(3 <= p["n_red_cells"] <= 5 for p in d.params)


# --------------------------------------------------------------------------- colours
def test_compartment_colours(ds, lab):
    for i in range(len(ds)):
        nuc = lab[i][ds.nucleus[i]].mean(0)
        cyto = lab[i][ds.cytoplasm[i]].mean(0)
        red = lab[i][ds.red_cells[i]].mean(0)
        bg = lab[i][~ds.masks[i] & ~ds.red_cells[i]].mean(0)
        # a*: nucleus > cytoplasm >> red cells > background
        assert nuc[1] > cyto[1] + 2 and cyto[1] > red[1] + 8 and red[1] > bg[1] + 4, (
            i, nuc, cyto, red, bg)
        # L*: nucleus << cytoplasm < red cells < background
        assert nuc[0] + 10 < cyto[0] < red[0] < bg[0], (i, nuc, cyto, red, bg)
        # the documented CIELAB ranges, with a little slack for the stain jitter
        assert 35 <= nuc[0] <= 50 and 27 <= nuc[1] <= 46 and -42 <= nuc[2] <= -23
        assert 60 <= cyto[0] <= 73 and 17 <= cyto[1] <= 29 and -27 <= cyto[2] <= -10
        assert 70 <= red[0] <= 80 and 6 <= red[1] <= 15 and 1 <= red[2] <= 11
        assert 88 <= bg[0] <= 94 and 0 <= bg[1] <= 4 and 0 <= bg[2] <= 8


def test_a_star_threshold_separates_white_cells(ds, lab):
    # the property the segmentation relies on: white cells are far more magenta
    a = lab[..., 1]
    assert np.percentile(a[ds.cytoplasm], 5) > np.percentile(a[ds.red_cells], 95)


def test_chromatin_texture_depends_on_class(ds, lab):
    # class 0 has coarser, higher-contrast chromatin than the last class
    sd = np.array([lab[i, ..., 0][ds.nucleus[i]].std() for i in range(len(ds))])
    assert sd[ds.labels == 0].mean() > sd[ds.labels == 1].mean()


# --------------------------------------------------------------------------- classes
def test_labels_balanced_round_robin():
    d = make_cells(10, n_classes=3, size=48, random_state=0)
    np.testing.assert_array_equal(d.labels, np.arange(10) % 3)
    assert np.bincount(d.labels).tolist() == [4, 3, 3]
    assert d.class_names == ("class_0", "class_1", "class_2")
    assert [p["label"] for p in d.params] == d.labels.tolist()


def test_nc_ratio_increases_with_class():
    d = make_cells(36, n_classes=3, size=96, random_state=11)
    ratio = d.nucleus.sum((1, 2)) / d.masks.sum((1, 2))
    means = [ratio[d.labels == c].mean() for c in range(3)]
    assert means[0] < means[1] < means[2], means
    assert means[2] - means[0] > 0.2


def test_lobed_nuclei_only_in_class_0(ds):
    lobes = np.array([p["white_cells"][0]["n_lobes"] for p in ds.params])
    assert (lobes[ds.labels == 1] == 1).all()
    assert (lobes[ds.labels == 0] > 1).any()
    for i in np.flatnonzero(lobes > 1):      # the lobes are unioned into one nucleus
        assert ndi.label(ds.nucleus[i], structure=np.ones((3, 3)))[1] == 1


# --------------------------------------------------------------------------- container
def test_getitem_record_and_subsets(ds):
    rec = ds[3]
    assert isinstance(rec, CellSample)
    np.testing.assert_array_equal(rec.image, ds.images[3])
    np.testing.assert_array_equal(rec.nucleus, ds.nucleus[3])
    assert rec.label == ds.labels[3] and rec.class_name == ds.class_names[rec.label]
    assert rec.params is ds.params[3]
    np.testing.assert_array_equal(ds[-1].image, ds.images[-1])
    with pytest.raises(IndexError):
        ds[len(ds)]
    sub = ds[ds.labels == 1]
    assert len(sub) == 12 and (sub.labels == 1).all()
    assert len(ds[[0, 2]]) == 2
    assert len(list(iter(ds[:3]))) == 3
    assert "n_samples=24" in repr(ds)


def test_compartments(ds):
    comp = ds.compartments()
    assert comp.dtype == np.uint8
    np.testing.assert_array_equal(comp == MASK_CODES["nucleus"], ds.nucleus)
    np.testing.assert_array_equal(comp == MASK_CODES["cytoplasm"], ds.cytoplasm)
    np.testing.assert_array_equal(comp == MASK_CODES["red_cell"], ds.red_cells)


def test_save_folder_per_class(tmp_path):
    d = make_cells(5, n_classes=2, size=48, random_state=0)
    paths = d.save(tmp_path / "imgs", masks_dir=tmp_path / "masks")
    assert len(paths) == 5
    assert sorted(p.name for p in (tmp_path / "imgs").iterdir()) == ["class_0", "class_1"]
    comp = d.compartments()
    for i, p in enumerate(paths):
        assert p == tmp_path / "imgs" / d.class_names[d.labels[i]] / f"img_{i:04d}.png"
        img = cv2.cvtColor(cv2.imread(str(p), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        np.testing.assert_array_equal(img, d.images[i])
        m = cv2.imread(str(tmp_path / "masks" / p.parent.name / p.name), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(m, comp[i])


def test_save_without_masks(tmp_path):
    d = make_cells(2, size=32, random_state=0)
    paths = d.save(tmp_path)
    assert all(p.is_file() for p in paths)
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.png")) == [
        "class_0/img_0000.png", "class_1/img_0001.png"]


# --------------------------------------------------------------------------- arguments
@pytest.mark.parametrize("kwargs, name", [
    ({"n_samples": 0}, "n_samples"),
    ({"n_samples": 2.5}, "n_samples"),
    ({"n_classes": 0}, "n_classes"),
    ({"size": 31}, "size"),
    ({"size": (64, 16)}, "size"),
    ({"size": (64, 64, 3)}, "size"),
    ({"size": "large"}, "size"),
    ({"n_red_cells": -1}, "n_red_cells"),
    ({"n_red_cells": (5, 2)}, "n_red_cells"),
    ({"n_red_cells": (1, 2, 3)}, "n_red_cells"),
    ({"n_white_cells": -1}, "n_white_cells"),
    ({"cytoplasm": "blue"}, "cytoplasm"),
    ({"n_white_cells": (1, 17)}, "n_white_cells"),
    ({"n_white_cells": 5, "size": 32}, "n_white_cells"),
    ({"n_white_cells": 1.5}, "n_white_cells"),
    ({"stain_jitter": -0.1}, "stain_jitter"),
    ({"stain_jitter": float("nan")}, "stain_jitter"),
    ({"random_state": "seed"}, "random_state"),
    ({"random_state": -1}, "random_state"),
])
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        make_cells(**{"n_samples": 2, **kwargs})
