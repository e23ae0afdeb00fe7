"""Tests for leukfeat.extract.features / feature_names (the assembled vector)."""

from __future__ import annotations

import math
import warnings

import cv2
import numpy as np
import pytest

from leukfeat import extract, segment
from leukfeat.datasets import make_cells
from leukfeat.extract import colour, edges, field, shape, texture


@pytest.fixture(scope="module")
def cells():
    return make_cells(12, n_classes=2, size=160, random_state=5)


def test_feature_names_stable_unique_and_many():
    names = extract.feature_names()
    assert len(names) >= 150
    assert len(set(names)) == len(names)
    assert names == extract.feature_names()
    # canonical group order whatever the argument order
    assert extract.feature_names(["edges", "shape"]) == extract.feature_names(["shape", "edges"])
    for n in names:
        assert n == n.lower() and " " not in n
        assert n.split("_")[0] in {"glcm", "lbp", "shape", "colour", "edges", "field"}


@pytest.mark.parametrize("groups", [("texture",), ("shape",), ("colour",), ("edges",),
                                    ("shape", "colour"), extract.GROUPS])
def test_features_keys_match_names(cells, groups):
    f = extract.features(cells.images[0], groups=groups)
    assert list(f) == extract.feature_names(groups)
    vals = np.array(list(f.values()), float)
    assert not np.isinf(vals).any()


@pytest.mark.parametrize("kw", [{}, {"groups": ("shape", "field")}, {"cell": "median"},
                                {"cell": "mean", "groups": ("colour",)},
                                {"lbp_radii": (2,), "percentiles": (25, 75)}])
def test_feature_values_fast_path_equals_features(cells, kw):
    """feature_vector (FeatureExtractor's path) gives the values of features(), in order."""
    img = cells.images[3]
    f = extract.features(img, **kw)
    values = extract.feature_vector(img, **kw)
    assert len(values) == len(f) == len(extract.feature_names(
        kw.get("groups", extract.DEFAULT_GROUPS),
        **{k: v for k, v in kw.items() if k not in ("groups", "cell")}))
    np.testing.assert_array_equal(np.array(values, float), np.array(list(f.values()), float))
    blank = np.full_like(img, 235)
    assert np.isnan(extract.feature_vector(blank, **kw)).all()
    assert np.isnan(list(extract.features(blank, **kw).values())).all()


def test_options_change_names_consistently(cells):
    opts = dict(glcm_distances=(1,), lbp_radii=(1,), edge_sigmas=(1.5,), percentiles=(50,),
                histogram_bins=4, n_fourier=5)
    f = extract.features(cells.images[1], **opts)
    assert list(f) == extract.feature_names(**opts)
    assert "edges_log_s1p5_mean" in f and "glcm_contrast_d3_mean" not in f
    with pytest.raises(TypeError, match="unknown feature option"):
        extract.features(cells.images[1], glcm_distance=2)


def test_features_equal_group_functions_on_full_image(cells):
    """Cropping inside features() must not change any value."""
    img = cells.images[2]
    seg = segment.lab_kmeans(img)
    lab = seg.largest()
    cm = seg.labels == lab
    nm = seg.nucleus & cm
    f = extract.features(img, seg)
    d = extract.DEFAULTS
    ref = {}
    ref.update(texture.texture_features(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cm,
                                        distances=d["glcm_distances"], levels=d["glcm_levels"],
                                        lbp_radii=d["lbp_radii"],
                                        quantization=d["glcm_quantization"]))
    ref.update(shape.shape_features(cm, nm))
    ref.update(colour.colour_features(img, cm, nm))
    ref.update(edges.edge_features(img, cm, sigmas=d["edge_sigmas"]))
    ref.update(field.field_features(seg))
    assert set(ref) == set(f)
    for k, v in ref.items():
        if math.isnan(v):
            assert math.isnan(f[k]), k
        else:
            assert f[k] == pytest.approx(v, rel=1e-9, abs=1e-9), k


def test_nucleus_texture_group_is_the_texture_of_the_nucleus(cells):
    """``nucleus_texture``: the texture features on the nucleus mask of the
    measured cell, named ``glcm_nucleus_*`` / ``lbp_nucleus_*``, and
    opt-in (the default vector is unchanged)."""
    img = cells.images[2]
    seg = segment.lab_kmeans(img)
    lab = seg.largest()
    nm = seg.nucleus & (seg.labels == lab)
    assert nm.sum() > 50
    d = extract.DEFAULTS
    gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    ref = texture.texture_features(gray, nm, distances=d["glcm_distances"],
                                   levels=d["glcm_levels"], lbp_radii=d["lbp_radii"],
                                   quantization=d["glcm_quantization"])
    f = extract.features(img, seg, groups=("nucleus_texture", "texture"))
    names = extract.feature_names(("texture", "nucleus_texture"))
    assert list(f) == names and len(names) == 2 * 106
    assert names[106] == "glcm_nucleus_asm_d1_mean"
    assert "lbp_nucleus_r3_u25" in names
    for k, v in ref.items():
        nk = k.replace("glcm_", "glcm_nucleus_", 1).replace("lbp_", "lbp_nucleus_", 1)
        assert f[nk] == pytest.approx(v, rel=1e-12, abs=1e-12), nk
    # the cell texture is not the nucleus texture, and the default is unchanged
    assert f["glcm_contrast_d1_mean"] != f["glcm_nucleus_contrast_d1_mean"]
    assert "nucleus_texture" not in extract.DEFAULT_GROUPS
    assert extract.feature_names() == extract.feature_names(extract.DEFAULT_GROUPS)
    assert len(extract.feature_names()) == 428
    assert len(extract.feature_names(extract.GROUPS)) == 428 + 106


def test_nucleus_texture_of_a_cell_without_nucleus_is_nan(cells):
    img = cells.images[0]
    seg = segment.lab_kmeans(img)
    empty = segment.Segmentation.from_masks(seg.mask, np.zeros_like(seg.mask))
    f = extract.features(img, empty, groups=("texture", "nucleus_texture"))
    nuc = [v for k, v in f.items() if "_nucleus_" in k]
    cell = [v for k, v in f.items() if "_nucleus_" not in k]
    assert len(nuc) == 106 and all(math.isnan(v) or v == 0 for v in nuc)
    assert all(math.isnan(v) for k, v in f.items() if k.startswith("glcm_nucleus_"))
    assert not np.isnan(cell).any()


def test_features_measure_ground_truth_masks(cells):
    """With the generator's masks the shape features equal hand counts."""
    for img, m, nuc in zip(cells.images[:4], cells.masks, cells.nucleus):
        seg = segment.Segmentation.from_masks(m, nuc)
        f = extract.features(img, seg, groups=("shape",))
        assert f["shape_cell_area"] == m.sum()
        assert f["shape_nucleus_area"] == nuc.sum()
        assert f["shape_nucleus_fraction"] == pytest.approx(nuc.sum() / m.sum())
        assert f["shape_nc_ratio"] == pytest.approx(nuc.sum() / (m & ~nuc).sum())


def test_nc_ratio_separates_make_cells_classes():
    data = make_cells(40, n_classes=2, size=160, random_state=9)
    frac = np.array([extract.features(im, groups=("shape",))["shape_nucleus_fraction"]
                     for im in data.images])
    by_class = [frac[data.labels == c].mean() for c in range(2)]
    assert by_class[1] > by_class[0] + 0.1


def test_cell_choice():
    data = make_cells(1, size=256, n_white_cells=3, random_state=2)
    img = data.images[0]
    seg = segment.lab_kmeans(img)
    assert seg.n_cells == 3
    largest = extract.features(img, seg, groups=("shape",))
    areas = seg.areas()
    assert largest["shape_cell_area"] == pytest.approx(areas.max(), rel=0.01)
    for lab in (1, 2, 3):
        f = extract.features(img, seg, groups=("shape",), cell=lab)
        assert f["shape_cell_area"] == pytest.approx(areas[lab - 1], rel=0.01)
    with pytest.raises(ValueError, match="cell"):
        extract.features(img, seg, cell=4)
    with pytest.raises(ValueError, match="cell"):
        extract.features(img, seg, cell="smallest")
    rows = extract.features_per_cell(img, seg, groups=("shape",))
    assert [r["cell_label"] for r in rows] == [1.0, 2.0, 3.0]
    assert [r["shape_cell_area"] for r in rows] == pytest.approx(list(areas), rel=0.01)


@pytest.mark.parametrize("how", ["mean", "median"])
def test_aggregate_over_cells_equals_per_cell_rows(how):
    data = make_cells(1, size=256, n_white_cells=3, random_state=2)
    img = data.images[0]
    seg = segment.lab_kmeans(img)
    rows = extract.features_per_cell(img, seg)
    names = extract.feature_names()
    table = np.array([[r[n] for n in names] for r in rows])
    f = extract.features(img, seg, cell=how)
    assert list(f) == names
    ref = np.nanmean(table, 0) if how == "mean" else np.nanmedian(table, 0)
    np.testing.assert_allclose(np.array(list(f.values())), ref, rtol=1e-12, equal_nan=True)
    blank = np.full((64, 64, 3), 230, np.uint8)
    assert all(math.isnan(v) for v in extract.features(blank, cell=how).values())


def test_median_of_cells_equals_numpy_nanmedian():
    """The column median of ``cell="median"`` is ``numpy.nanmedian`` exactly,
    with NaN, infinities, ties, all-NaN columns and one or many rows."""
    from leukfeat.extract import _AGGREGATES
    rng = np.random.default_rng(0)
    for t in range(400):
        table = rng.normal(size=(rng.integers(1, 12), rng.integers(1, 9)))
        table *= 10.0 ** rng.integers(-3, 300)
        table[rng.random(table.shape) < rng.random()] = np.nan
        if t % 3 == 0:
            table = np.round(table)
        if t % 5 == 0:
            table[rng.random(table.shape) < 0.2] = np.inf
        if t % 7 == 0:
            table[rng.random(table.shape) < 0.2] = -np.inf
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            ref = np.nanmedian(table, axis=0)
        np.testing.assert_array_equal(_AGGREGATES["median"](table, axis=0), ref)


def test_integer_cell_must_be_a_label_present():
    """``cell=<int>`` raises ValueError naming ``cell`` for a number that no
    pixel carries, also inside 1..n_cells (label images with gaps); it was
    measured as an empty cell (found by tests/test_properties.py)."""
    img = np.full((30, 30, 3), 200, np.uint8)
    img[5:12, 5:12] = (120, 60, 160)
    img[18:26, 16:26] = (120, 60, 160)
    labels = np.zeros((30, 30), np.int32)
    labels[5:12, 5:12] = 1
    labels[18:26, 16:26] = 3                   # no cell 2
    seg = segment.Segmentation.from_masks(labels > 0, labels > 0, labels=labels)
    assert seg.n_cells == 3 and seg.cell_ids() == [1, 3]
    for lab in (1, 3):
        f = extract.features(img, seg, groups=("shape",), cell=lab)
        assert f["shape_cell_area"] == (labels == lab).sum()
    for lab in (2, 0, 4, -1):
        with pytest.raises(ValueError, match="cell"):
            extract.features(img, seg, cell=lab)


def test_central_cell_is_nearest_to_centre():
    img = np.full((120, 120, 3), (236, 232, 228), np.uint8)
    yy, xx = np.mgrid[:120, :120]
    big = (yy - 25) ** 2 + (xx - 25) ** 2 <= 18 ** 2
    small = (yy - 62) ** 2 + (xx - 60) ** 2 <= 10 ** 2
    img[big | small] = (120, 60, 160)
    seg = segment.lab_kmeans(img)
    assert seg.n_cells == 2
    f = extract.features(img, seg, groups=("shape",), cell="central")
    assert f["shape_cell_area"] == pytest.approx(small.sum(), rel=0.05)
    f = extract.features(img, seg, groups=("shape",))
    assert f["shape_cell_area"] == pytest.approx(big.sum(), rel=0.05)


# ----------------------------------------------------------- undefined inputs
def _all_finite_or_nan(f):
    vals = np.array(list(f.values()), float)
    return not np.isinf(vals).any()


def test_no_cell_gives_nan_row():
    blank = np.full((64, 64, 3), 230, np.uint8)
    f = extract.features(blank)
    assert list(f) == extract.feature_names()
    assert all(math.isnan(v) for v in f.values())
    assert extract.features_per_cell(blank) == []


def test_empty_one_pixel_constant_and_border_masks():
    img = np.full((40, 40, 3), 200, np.uint8)
    img[10:30, 10:30] = (120, 60, 160)
    # empty mask
    empty = segment.Segmentation.empty((40, 40))
    f = extract.features(img, empty)
    assert all(math.isnan(v) for v in f.values())
    # one-pixel cell, no nucleus
    one = np.zeros((40, 40), bool)
    one[20, 20] = True
    f = extract.features(img, segment.Segmentation.from_masks(one))
    assert _all_finite_or_nan(f) and f["shape_cell_area"] == 1
    assert math.isnan(f["shape_nucleus_area"]) or f["shape_nucleus_area"] == 0
    # constant image inside the cell
    m = np.zeros((40, 40), bool)
    m[12:28, 12:28] = True
    f = extract.features(img, segment.Segmentation.from_masks(m, m))
    assert _all_finite_or_nan(f)
    assert f["colour_cell_rgb_r_std"] == 0
    assert math.isnan(f["colour_cell_rgb_r_skewness"]) or "colour_cell_rgb_r_skewness" not in f
    # cell touching the border
    b = np.zeros((40, 40), bool)
    b[0:15, 0:15] = True
    f = extract.features(img, segment.Segmentation.from_masks(b, b & (np.arange(40) < 8)))
    assert _all_finite_or_nan(f) and f["shape_cell_area"] == 225


@pytest.mark.parametrize("bad", [np.zeros((20, 20), np.uint8), np.full((20, 20, 3), np.nan),
                                 np.zeros((1, 1, 3), np.uint8), np.zeros((0, 5, 3))])
def test_bad_image(bad):
    with pytest.raises(ValueError, match="image"):
        extract.features(bad)


def test_bad_arguments(cells):
    img = cells.images[0]
    with pytest.raises(ValueError, match="groups"):
        extract.features(img, groups=("texture", "nope"))
    with pytest.raises(ValueError, match="groups"):
        extract.feature_names(groups=())
    with pytest.raises(TypeError, match="segmentation"):
        extract.features(img, segmentation=np.zeros(img.shape[:2], bool))
    with pytest.raises(ValueError, match="segmentation"):
        extract.features(img, segmentation=segment.Segmentation.empty((10, 10)))


def test_haralick_reexported():
    mahotas = pytest.importorskip("mahotas")
    rng = np.random.default_rng(0)
    im = rng.integers(0, 64, (40, 50)).astype(np.uint8)
    np.testing.assert_allclose(extract.haralick(im, distance=2),
                               mahotas.features.haralick(im, distance=2), rtol=1e-6)


def test_per_cell_rows_with_sparse_labels_equal_renumbered():
    """Cells are cut out by their boxes: a label image with sparse label
    numbers (boxes found one cell at a time) gives the same rows as the
    consecutive one (boxes from one compiled pass)."""
    from leukfeat.segment import Segmentation, lab_kmeans
    data = make_cells(2, size=160, n_white_cells=3, random_state=4)
    for img in data.images:
        seg = lab_kmeans(img)
        assert seg.n_cells >= 2
        sparse = Segmentation(seg.mask, seg.nucleus,
                              np.where(seg.labels > 0, seg.labels * 100_000, 0).astype(np.int64))
        a = extract.features_per_cell(img, seg)
        b = extract.features_per_cell(img, sparse)
        assert [r["cell_label"] * 100_000 for r in a] == [r["cell_label"] for r in b]
        for ra, rb in zip(a, b):
            va, vb = list(ra.values())[1:], list(rb.values())[1:]
            np.testing.assert_array_equal(va, vb)
        np.testing.assert_array_equal(list(extract.features(img, seg, cell="median").values()),
                                      list(extract.features(img, sparse, cell="median").values()))
