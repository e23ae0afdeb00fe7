"""Tests for leukfeat.extract.shape."""

import math
import warnings

import cv2
import mahotas
import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.measure import label, moments_hu, regionprops

from leukfeat.extract.shape import shape_feature_names, shape_features


# --------------------------------------------------------------------------
# synthetic masks
# --------------------------------------------------------------------------

def disc(r, n=None, centre=None):
    n = n or int(2 * r + 10)
    c = centre if centre is not None else ((n - 1) / 2, (n - 1) / 2)
    yy, xx = np.mgrid[:n, :n]
    return (yy - c[0]) ** 2 + (xx - c[1]) ** 2 <= r * r


def ellipse(a, b, angle_deg=0.0, n=140):
    yy, xx = np.mgrid[:n, :n] - (n - 1) / 2
    t = math.radians(angle_deg)
    u = xx * math.cos(t) + yy * math.sin(t)
    v = -xx * math.sin(t) + yy * math.cos(t)
    return (u / a) ** 2 + (v / b) ** 2 <= 1


def blob(seed, n=80):
    rng = np.random.default_rng(seed)
    f = ndi.gaussian_filter(rng.random((n, n)), 5)
    lab = label(f > np.percentile(f, 55))
    return lab == np.argmax(np.bincount(lab.ravel())[1:]) + 1


def discs(centres, r, shape=(120, 200)):
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    m = np.zeros(shape, bool)
    for cy, cx in centres:
        m |= (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
    return m


def base_shape(n=200):
    """Asymmetric blob: ellipse with two bumps."""
    yy, xx = np.mgrid[:n, :n]
    c = n / 2
    m = ((yy - c) / 30.0) ** 2 + ((xx - c) / 45.0) ** 2 <= 1
    m |= (yy - c + 25) ** 2 + (xx - c - 25) ** 2 <= 18 ** 2
    m |= (yy - c - 20) ** 2 + (xx - c + 35) ** 2 <= 10 ** 2
    return m


def cell_features(mask, **kw):
    f = shape_features(mask, **kw)
    prefix = kw.get("prefix", "shape")
    return {k[len(prefix) + 6:]: v for k, v in f.items()}   # strip "shape_cell_"


def fourier(mask):
    f = cell_features(mask)
    return np.array([f[f"fourier_{i}"] for i in range(1, 11)])


# --------------------------------------------------------------------------
# names
# --------------------------------------------------------------------------

def test_names_match_values_and_counts():
    cell = disc(20, 64)
    nuc = disc(9, 64)
    f = shape_features(cell, nuc)
    assert list(f) == shape_feature_names()
    assert len(f) == 111
    g = shape_features(cell)
    assert list(g) == shape_feature_names(nucleus=False)
    assert len(g) == 54
    assert list(f)[:2] == ["shape_cell_area", "shape_cell_perimeter"]
    assert list(f)[-3:] == ["shape_nucleus_lobe_count", "shape_nc_ratio",
                            "shape_nucleus_fraction"]
    h = shape_features(cell, nuc, n_fourier=3, zernike_degree=4, prefix="s")
    assert list(h) == shape_feature_names(n_fourier=3, zernike_degree=4, prefix="s")
    assert sum(k.startswith("s_cell_zernike_") for k in h) == 9
    assert sum(k.startswith("s_cell_fourier_") for k in h) == 3
    assert all(isinstance(v, float) for v in f.values())


# --------------------------------------------------------------------------
# agreement with scikit-image / mahotas
# --------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(8))
def test_matches_regionprops_on_random_blobs(seed):
    m = blob(seed)
    f = cell_features(m)
    rp = regionprops(m.astype(np.uint8))[0]
    assert f["area"] == rp.area
    assert f["perimeter"] == pytest.approx(rp.perimeter, abs=1e-9)
    assert f["eccentricity"] == pytest.approx(rp.eccentricity, abs=1e-9)
    assert f["solidity"] == pytest.approx(rp.solidity, abs=1e-12)
    assert f["extent"] == pytest.approx(rp.extent, abs=1e-12)
    assert f["major_axis_length"] == pytest.approx(rp.axis_major_length, rel=1e-9)
    assert f["minor_axis_length"] == pytest.approx(rp.axis_minor_length, rel=1e-9)
    assert f["equivalent_diameter"] == pytest.approx(rp.equivalent_diameter_area, rel=1e-12)
    assert abs(f["max_feret"] - rp.feret_diameter_max) <= 1.0
    assert f["min_feret"] <= f["max_feret"]
    hu = np.array([f[f"hu_{i}"] for i in range(1, 8)])
    np.testing.assert_allclose(hu, moments_hu(rp.moments_normalized), rtol=1e-7, atol=1e-15)


@pytest.mark.parametrize("mask", [blob(11), blob(12), disc(17), ellipse(30, 12, 25)],
                         ids=["blob11", "blob12", "disc", "ellipse"])
def test_zernike_equals_mahotas(mask):
    f = cell_features(mask)
    ys, xs = np.nonzero(mask)
    radius = np.sqrt(((ys - ys.mean()) ** 2 + (xs - xs.mean()) ** 2).max())
    # a hair larger so that mahotas' "distance <= 1" test keeps every pixel
    ref = mahotas.features.zernike_moments(mask, radius * (1 + 1e-12), degree=8)
    got = np.array([f[f"zernike_{i}"] for i in range(25)])
    assert ref.shape == (25,)
    np.testing.assert_allclose(got, ref, rtol=1e-8, atol=1e-12)


def test_zernike_lower_degree_equals_mahotas():
    m = blob(3)
    f = shape_features(m, zernike_degree=4)
    ys, xs = np.nonzero(m)
    radius = np.sqrt(((ys - ys.mean()) ** 2 + (xs - xs.mean()) ** 2).max())
    ref = mahotas.features.zernike_moments(m, radius * (1 + 1e-12), degree=4)
    got = [f[f"shape_cell_zernike_{i}"] for i in range(9)]
    np.testing.assert_allclose(got, ref, rtol=1e-8, atol=1e-12)


# --------------------------------------------------------------------------
# hand-computed values
# --------------------------------------------------------------------------

@pytest.mark.parametrize("r", [10, 20, 40])
def test_disc(r):
    f = cell_features(disc(r))
    assert f["equivalent_diameter"] == pytest.approx(2 * r, rel=0.02)
    # the Benkrid perimeter is ~5 % long on digital circles: 4 pi A / P^2 ~ 0.91
    assert 0.89 <= f["circularity"] <= (1.0 if r < 15 else 0.95)
    assert f["eccentricity"] < 0.05
    assert f["solidity"] > 0.94
    assert 0.93 <= f["convexity"] <= 1.0
    assert 2 * r - 1 <= f["min_feret"] <= f["max_feret"] <= 2 * r + 1.01
    assert f["major_axis_length"] == pytest.approx(2 * r, rel=0.02)
    assert np.nanmax([f[f"fourier_{i}"] for i in range(1, 11)]) < 0.01


@pytest.mark.parametrize("angle", [0.0, 30.0, 90.0])
def test_ellipse(angle):
    a, b = 50.0, 25.0
    f = cell_features(ellipse(a, b, angle))
    assert f["eccentricity"] == pytest.approx(math.sqrt(1 - b * b / (a * a)), abs=0.02)
    assert f["major_axis_length"] == pytest.approx(2 * a, rel=0.02)
    assert f["minor_axis_length"] == pytest.approx(2 * b, rel=0.02)
    assert f["max_feret"] == pytest.approx(2 * a + 1, abs=1.5)
    assert f["min_feret"] == pytest.approx(2 * b + 1, abs=1.5)


def test_square():
    n = 30
    m = np.zeros((50, 50), bool)
    m[10:10 + n, 12:12 + n] = True
    f = cell_features(m)
    assert f["area"] == n * n
    assert f["extent"] == 1.0
    assert f["solidity"] == 1.0
    assert f["convexity"] == pytest.approx(1.0, abs=1e-12)
    assert f["perimeter"] == 4 * (n - 1)
    assert f["min_feret"] == pytest.approx(n, abs=1.0)
    assert f["max_feret"] == pytest.approx(n * math.sqrt(2), abs=1.0)
    assert f["eccentricity"] == pytest.approx(0.0, abs=1e-12)
    assert f["circularity"] == pytest.approx(4 * math.pi * n * n / (4 * (n - 1)) ** 2)


# --------------------------------------------------------------------------
# Fourier descriptors
# --------------------------------------------------------------------------

def test_fourier_invariances():
    m = base_shape()
    f0 = fourier(m)
    assert np.all(np.isfinite(f0)) and f0.max() > 0.03
    np.testing.assert_allclose(fourier(np.roll(m, (7, -11), axis=(0, 1))), f0, atol=1e-12)
    np.testing.assert_allclose(fourier(np.rot90(m)), f0, atol=1e-9)
    rot = cv2.getRotationMatrix2D((100, 100), 30, 1.0)
    m30 = cv2.warpAffine(m.astype(np.uint8), rot, (200, 200), flags=cv2.INTER_NEAREST) > 0
    np.testing.assert_allclose(fourier(m30), f0, atol=0.01)
    np.testing.assert_allclose(fourier(np.kron(m, np.ones((2, 2), bool))), f0, atol=0.01)
    np.testing.assert_allclose(fourier(m[::-1]), f0, atol=1e-9)          # reflection
    # ... while a different shape is clearly different
    assert np.abs(fourier(ellipse(60, 30, n=200)) - f0).max() > 0.03


def test_fourier_equals_fft_of_resampled_contour():
    """Independent check of the elliptic Fourier amplitudes."""
    m = base_shape()
    contours, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_NONE)
    p = max(contours, key=len).reshape(-1, 2).astype(float)
    z = np.append(p[:, 0] + 1j * p[:, 1], p[0, 0] + 1j * p[0, 1])
    s = np.concatenate([[0], np.cumsum(np.abs(np.diff(z)))])
    t = np.linspace(0, s[-1], 8192, endpoint=False)
    zr = np.interp(t, s, z.real) + 1j * np.interp(t, s, z.imag)
    spec = np.fft.fft(zr)
    amp = np.sqrt(np.abs(spec[1:12]) ** 2 + np.abs(spec[-1:-12:-1]) ** 2)
    np.testing.assert_allclose(fourier(m), amp[1:] / amp[0], atol=1e-5)


# --------------------------------------------------------------------------
# nucleus: lobes and ratios
# --------------------------------------------------------------------------

@pytest.mark.parametrize("k", [1, 2, 3])
def test_lobe_count_overlapping_discs(k):
    r = 14
    nuc = discs([(60, 40 + i * 1.8 * r) for i in range(k)], r)
    cell = ndi.binary_dilation(nuc, iterations=15)
    f = shape_features(cell, nuc)
    assert f["shape_nucleus_lobe_count"] == k


def test_lobe_count_other_shapes():
    r = 14
    for nuc, expected in [
        (ellipse(50, 20, 20, n=120), 1),                                    # convex
        (discs([(60, 40), (60, 40 + 1.2 * r)], r), 1),                      # barely notched
        (discs([(60, 40), (60, 120)], r), 2),                               # fragments
        (discs([(60 + 1.8 * r * math.sin(a), 100 + 1.8 * r * math.cos(a))  # triangle
                for a in np.deg2rad([90, 210, 330])], r), 3),
    ]:
        cell = np.ones_like(nuc)
        assert shape_features(cell, nuc)["shape_nucleus_lobe_count"] == expected


def test_ratios_and_nucleus_clipping():
    cell = disc(30, 80)
    nuc = disc(12, 80)
    f = shape_features(cell, nuc)
    n_cell, n_nuc = cell.sum(), (nuc & cell).sum()
    assert f["shape_nc_ratio"] == pytest.approx(n_nuc / (n_cell - n_nuc))
    assert f["shape_nucleus_fraction"] == pytest.approx(n_nuc / n_cell)
    assert f["shape_nucleus_area"] == n_nuc
    # nucleus pixels outside the cell are ignored
    outside = nuc.copy()
    outside[0:3, 0:3] = True
    assert shape_features(cell, outside) == f
    # nucleus filling the cell: no cytoplasm
    g = shape_features(cell, cell)
    assert math.isnan(g["shape_nc_ratio"]) and g["shape_nucleus_fraction"] == 1.0


def test_largest_component_is_described():
    big, small = disc(20, 100, (40, 40)), disc(8, 100, (80, 80))
    f = shape_features(big | small, small)
    assert f["shape_cell_area"] == big.sum()
    assert f["shape_cell_eccentricity"] < 0.05
    # ratios use the whole masks
    assert f["shape_nucleus_fraction"] == pytest.approx(small.sum() / (big | small).sum())


# --------------------------------------------------------------------------
# NaN policy
# --------------------------------------------------------------------------

def _no_inf(f):
    assert not any(math.isinf(v) for v in f.values())


def test_empty_masks_give_nan():
    empty = np.zeros((20, 20), bool)
    f = shape_features(empty, empty)
    assert len(f) == 111 and all(math.isnan(v) for v in f.values())
    g = shape_features(disc(6, 20), empty)
    assert all(math.isnan(v) for k, v in g.items()
               if k.startswith("shape_nucleus_") and k != "shape_nucleus_fraction")
    assert g["shape_nc_ratio"] == 0.0 and g["shape_nucleus_fraction"] == 0.0
    assert not any(math.isnan(v) for k, v in g.items() if k.startswith("shape_cell_"))


def test_one_pixel_masks():
    m = np.zeros((9, 9), bool)
    m[4, 4] = True
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f = shape_features(m, m)
    _no_inf(f)
    for comp in ("cell", "nucleus"):
        p = f"shape_{comp}_"
        assert f[p + "area"] == 1.0
        assert f[p + "perimeter"] == 0.0
        assert f[p + "equivalent_diameter"] == pytest.approx(2 / math.sqrt(math.pi))
        assert f[p + "solidity"] == 1.0 and f[p + "extent"] == 1.0
        assert f[p + "max_feret"] == 1.0
        for name in ("eccentricity", "circularity", "convexity", "fourier_1", "zernike_0"):
            assert math.isnan(f[p + name]), name
    assert f["shape_nucleus_lobe_count"] == 1.0
    assert math.isnan(f["shape_nc_ratio"]) and f["shape_nucleus_fraction"] == 1.0


@pytest.mark.parametrize("pixels", [[(3, 2), (3, 3)], [(1, 1), (2, 2), (3, 3)],
                                    [(2, 2), (2, 3), (3, 2)]])
def test_tiny_regions_never_inf(pixels):
    m = np.zeros((7, 7), bool)
    for p in pixels:
        m[p] = True
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f = shape_features(m, m)
    _no_inf(f)
    assert f["shape_cell_area"] == len(pixels)


# --------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------

def test_bad_inputs():
    cell = disc(5, 16)
    with pytest.raises(ValueError, match="cell_mask"):
        shape_features(np.zeros((4, 4, 4), bool))
    with pytest.raises(ValueError, match="cell_mask"):
        shape_features(np.zeros(16, bool))
    with pytest.raises(ValueError, match="cell_mask"):
        shape_features(np.array([["a", "b"], ["c", "d"]]))
    with pytest.raises(ValueError, match="cell_mask"):
        shape_features(np.zeros((0, 3), bool))
    with pytest.raises(ValueError, match="nucleus_mask"):
        shape_features(cell, np.zeros((15, 16), bool))
    with pytest.raises(ValueError, match="n_fourier"):
        shape_features(cell, n_fourier=-1)
    with pytest.raises(ValueError, match="n_fourier"):
        shape_features(cell, n_fourier=2.5)
    with pytest.raises(ValueError, match="zernike_degree"):
        shape_features(cell, zernike_degree=-2)
    with pytest.raises(ValueError, match="lobe_depth"):
        shape_features(cell, cell, lobe_depth=1.5)
    with pytest.raises(ValueError, match="prefix"):
        shape_feature_names(prefix="")
