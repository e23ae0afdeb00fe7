"""Tests for leukfeat.extract.colour."""

import math

import numpy as np
import pytest
from scipy import stats
from skimage.color import rgb2hsv, rgb2lab

from leukfeat.extract.colour import colour_feature_names, colour_features

SPACES = ("rgb", "lab", "hsv")
CHANNELS = {"rgb": "rgb", "lab": "lab", "hsv": "hsv"}


def make_cell(n=64, seed=0):
    """A noisy stained-looking cell: pink cytoplasm, purple nucleus, grey patch."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:n, :n]
    cell = (yy - 32) ** 2 + (xx - 30) ** 2 <= 24 ** 2
    nucleus = (yy - 28) ** 2 + (xx - 34) ** 2 <= 12 ** 2
    img = np.empty((n, n, 3))
    img[:] = (235, 225, 230)
    img[cell] = (215, 160, 190)
    img[nucleus] = (110, 50, 140)
    img += rng.normal(0, 25, img.shape)
    img = np.clip(img, 0, 255).astype(np.uint8)
    img[40:46, 20:30] = 128                       # grey pixels: hue 0, saturation 0
    img[47:50, 20:24] = (250, 10, 12)             # reds on both sides of hue 0/360
    img[47:50, 24:28] = (250, 12, 10)
    return img, cell, nucleus


def reference_channels(img):
    hsv = rgb2hsv(img)
    hsv[..., 0] *= 360.0
    return {"rgb": img.astype(np.float64), "lab": rgb2lab(img), "hsv": hsv}


def compartments(cell, nucleus):
    return {"nucleus": nucleus & cell, "cytoplasm": cell & ~nucleus, "cell": cell}


# --------------------------------------------------------------------------
# values
# --------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1])
def test_matches_numpy_scipy_on_masked_pixels(seed):
    img, cell, nucleus = make_cell(seed=seed)
    f = colour_features(img, cell, nucleus)
    ref = reference_channels(img)
    for comp, mask in compartments(cell, nucleus).items():
        for space in SPACES:
            for i, ch in enumerate(CHANNELS[space]):
                x = ref[space][..., i][mask]
                p = f"colour_{comp}_{space}_{ch}_"
                tol = dict(rel=1e-9, abs=1e-9)
                if space == "hsv" and ch == "h":
                    assert f[p + "mean"] == pytest.approx(
                        stats.circmean(x, high=360, low=0), **tol)
                    assert f[p + "std"] == pytest.approx(
                        stats.circstd(x, high=360, low=0), **tol)
                else:
                    assert f[p + "mean"] == pytest.approx(np.mean(x), **tol)
                    assert f[p + "std"] == pytest.approx(np.std(x), **tol)
                assert f[p + "skewness"] == pytest.approx(stats.skew(x), rel=1e-7, abs=1e-9)
                assert f[p + "kurtosis"] == pytest.approx(stats.kurtosis(x), rel=1e-7, abs=1e-9)
                for q in (10, 50, 90):
                    assert f[p + f"p{q}"] == pytest.approx(np.percentile(x, q), **tol)


def test_matches_with_custom_percentiles_and_spaces():
    img, cell, nucleus = make_cell(seed=3)
    pcts = (2.5, 33, 100)
    f = colour_features(img, cell, nucleus, spaces=("hsv", "lab"), percentiles=pcts)
    assert list(f) == colour_feature_names(spaces=("hsv", "lab"), percentiles=pcts)
    ref = reference_channels(img)
    for comp, mask in compartments(cell, nucleus).items():
        for space in ("hsv", "lab"):
            for i, ch in enumerate(CHANNELS[space]):
                x = ref[space][..., i][mask]
                for q, name in zip(pcts, ("p2p5", "p33", "p100")):
                    got = f[f"colour_{comp}_{space}_{ch}_{name}"]
                    assert got == pytest.approx(np.percentile(x, q), rel=1e-9, abs=1e-9)


def test_histograms():
    img, cell, nucleus = make_cell(seed=2)
    bins = 4
    f = colour_features(img, cell, nucleus, histogram_bins=bins)
    ref = reference_channels(img)
    ranges = {"rgb": [(0, 256)] * 3, "lab": [(0, 100), (-128, 128), (-128, 128)],
              "hsv": [(0, 360), (0, 1), (0, 1)]}
    for comp, mask in compartments(cell, nucleus).items():
        for space in SPACES:
            for i, ch in enumerate(CHANNELS[space]):
                x = ref[space][..., i][mask]
                got = np.array([f[f"colour_{comp}_{space}_{ch}_hist_{j}"] for j in range(bins)])
                # skimage's S = (delta/255) / (v/255) may be 1 ulp below an
                # exact bin edge such as 0.5: snap the reference values
                x = np.round(x, 9)
                expected = np.histogram(x, bins=bins, range=ranges[space][i])[0] / x.size
                assert got.sum() == pytest.approx(1.0)
                np.testing.assert_allclose(got, expected, atol=1e-12)


def test_cell_without_nucleus():
    img, cell, nucleus = make_cell()
    f = colour_features(img, cell)
    g = colour_features(img, cell, nucleus)
    assert list(f) == colour_feature_names(nucleus=False)
    for k, v in f.items():
        assert g[k] == pytest.approx(v, rel=1e-9, abs=1e-9)


def test_float_image_same_as_uint8():
    img, cell, nucleus = make_cell()
    f = colour_features(img, cell, nucleus)
    g = colour_features(img / 255.0, cell, nucleus)
    assert f == pytest.approx(g)


# --------------------------------------------------------------------------
# names
# --------------------------------------------------------------------------

def test_names_and_counts():
    img, cell, nucleus = make_cell()
    f = colour_features(img, cell, nucleus)
    assert list(f) == colour_feature_names()
    assert len(f) == 3 * 9 * 7 == 189
    assert "colour_nucleus_lab_a_mean" in f and "colour_cell_hsv_h_p90" in f
    assert "colour_cytoplasm_rgb_b_kurtosis" in f
    g = colour_features(img, cell, nucleus, histogram_bins=5)
    assert len(g) == 3 * 9 * (7 + 5) and list(g) == colour_feature_names(histogram_bins=5)
    assert len(colour_feature_names(nucleus=False)) == 63
    h = colour_features(img, cell, spaces="lab", percentiles=(), prefix="c")
    assert list(h) == ["c_cell_lab_" + c + "_" + s for c in "lab"
                       for s in ("mean", "std", "skewness", "kurtosis")]


# --------------------------------------------------------------------------
# NaN policy
# --------------------------------------------------------------------------

def test_empty_masks():
    img, cell, nucleus = make_cell()
    empty = np.zeros_like(cell)
    f = colour_features(img, empty, nucleus)
    assert all(math.isnan(v) for v in f.values())
    g = colour_features(img, cell, empty, histogram_bins=3)
    for k, v in g.items():
        assert math.isnan(v) == k.startswith("colour_nucleus_"), k
    # nucleus covering the whole cell: empty cytoplasm
    h = colour_features(img, cell, cell)
    assert all(math.isnan(v) for k, v in h.items() if k.startswith("colour_cytoplasm_"))


def test_constant_and_one_pixel_regions():
    img = np.full((20, 20, 3), (200, 100, 50), np.uint8)
    cell = np.zeros((20, 20), bool)
    cell[5:15, 5:15] = True
    one = np.zeros_like(cell)
    one[7, 7] = True
    for mask in (cell, one):
        f = colour_features(img, mask, one if mask is cell else None, histogram_bins=2)
        assert not any(math.isinf(v) for v in f.values())
        for k, v in f.items():
            if k.endswith(("skewness", "kurtosis")):
                assert math.isnan(v), k
            elif k.endswith("_std"):
                assert v == pytest.approx(0.0, abs=1e-12), k
            else:
                assert not math.isnan(v), k
        assert f["colour_cell_rgb_r_mean"] == 200.0
        assert f["colour_cell_hsv_h_mean"] == pytest.approx(20.0)
        assert f["colour_cell_hsv_v_p50"] == pytest.approx(200 / 255)


def test_grey_image_has_zero_hue_and_saturation():
    img = np.full((10, 10, 3), 90, np.uint8)
    cell = np.ones((10, 10), bool)
    f = colour_features(img, cell, spaces=("hsv",))
    assert f["colour_cell_hsv_h_mean"] == 0.0 and f["colour_cell_hsv_h_std"] == 0.0
    assert f["colour_cell_hsv_s_p90"] == 0.0


# --------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------

def test_bad_inputs():
    img, cell, nucleus = make_cell()
    with pytest.raises(ValueError, match="image"):
        colour_features(img[..., 0], cell)
    with pytest.raises(ValueError, match="image"):
        colour_features(img.astype(object), cell)
    with pytest.raises(ValueError, match="image"):
        colour_features(img[..., :2], cell)
    with pytest.raises(ValueError, match="cell_mask"):
        colour_features(img, cell[:-1])
    with pytest.raises(ValueError, match="nucleus_mask"):
        colour_features(img, cell, nucleus[:, :-1])
    with pytest.raises(ValueError, match="spaces"):
        colour_features(img, cell, spaces=("rgb", "xyz"))
    with pytest.raises(ValueError, match="spaces"):
        colour_features(img, cell, spaces=())
    with pytest.raises(ValueError, match="percentiles"):
        colour_features(img, cell, percentiles=(50, 101))
    with pytest.raises(ValueError, match="histogram_bins"):
        colour_features(img, cell, histogram_bins=0)
    with pytest.raises(ValueError, match="prefix"):
        colour_feature_names(prefix=3)


def test_count_and_sorted_row_kernels_equal_numpy():
    """Percentiles from 256-bin counts and from sorted rows are exactly
    numpy.percentile of the values; moments are those of count_moments /
    row_moments."""
    from leukfeat.extract import _colour_kernels as k
    rng = np.random.default_rng(5)
    pcts = np.array([0.0, 10.0, 12.5, 50.0, 90.0, 99.9, 100.0])
    values = np.stack([np.arange(256.0), np.arange(256.0) / 255.0])
    for n in (1, 2, 3, 7, 50, 1001):
        codes = rng.integers(0, 256, (3, 2, n))
        codes[1] = rng.integers(100, 104, (2, n))                 # few distinct values
        counts = np.stack([[np.bincount(c, minlength=256) for c in comp] for comp in codes])
        counts = counts.astype(np.float64)
        out = np.empty((3, 2, 4 + pcts.size))
        k.count_stats(counts, values, pcts, out)
        moments = np.empty((3, 2, 4))
        k.count_moments(counts, values, moments)
        np.testing.assert_array_equal(out[..., :4], moments)
        for a in range(3):
            for j in range(2):
                np.testing.assert_array_equal(
                    out[a, j, 4:], np.percentile(values[j][codes[a, j]], pcts))
        x = rng.normal(size=(4, n))
        x[1] = 3.0                                                # a constant row
        out = np.empty((4, 4 + pcts.size))
        k.sorted_row_stats(x, np.sort(x, axis=1), pcts, out)
        moments = np.empty((4, 4))
        k.row_moments(x, x.min(axis=1) == x.max(axis=1), moments)
        np.testing.assert_array_equal(out[:, :4], moments)
        np.testing.assert_array_equal(out[:, 4:], np.percentile(x, pcts, axis=1).T)
