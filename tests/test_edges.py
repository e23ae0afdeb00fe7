"""Tests for leukfeat.extract.edges."""

import math

import numpy as np
import pytest
from scipy import ndimage as ndi

from leukfeat.extract.edges import (edge_feature_names, edge_features, log_response,
                                    zero_crossings)

BT601 = np.array([0.299, 0.587, 0.114])


def make_cell(n=96, centre=(48, 46), r=30, seed=0):
    """Smooth noisy RGB cell with a darker nucleus."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:n, :n]
    cell = (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= r * r
    nucleus = (yy - centre[0] + 4) ** 2 + (xx - centre[1] - 3) ** 2 <= (r // 2) ** 2
    img = np.empty((n, n, 3))
    img[:] = (230, 220, 225)
    img[cell] = (210, 160, 190)
    img[nucleus] = (110, 60, 140)
    img += rng.normal(0, 12, img.shape)
    img = ndi.gaussian_filter(img, (1, 1, 0))
    return np.clip(img, 0, 255).astype(np.uint8), cell


def reference(img, cell, sigmas=(1.0, 2.0), ring_width=3, edge_threshold=0.02):
    """Everything recomputed on the full image with scipy."""
    gray = img.astype(np.float64) @ BT601 / 255.0
    ring = cell & (ndi.distance_transform_edt(np.pad(cell, 1))[1:-1, 1:-1] <= ring_width)
    mag = np.hypot(ndi.sobel(gray, axis=1, mode="mirror"),
                   ndi.sobel(gray, axis=0, mode="mirror")) / 8.0
    out = {}
    for s in sigmas:
        v = (s * s * ndi.gaussian_laplace(gray, s))[cell]
        tag = f"s{s:g}".replace(".", "p")
        out[f"edges_log_{tag}_mean"] = v.mean()
        out[f"edges_log_{tag}_std"] = v.std()
        out[f"edges_log_{tag}_mean_abs"] = np.abs(v).mean()
        out[f"edges_log_{tag}_p90_abs"] = np.percentile(np.abs(v), 90)
    resp = min(sigmas) ** 2 * ndi.gaussian_laplace(gray, min(sigmas))
    edges = zero_crossings(resp) & (mag >= edge_threshold)
    out["edges_cell_density"] = edges[cell].mean()
    out["edges_boundary_density"] = edges[ring].mean()
    for region, m in (("cell", cell), ("boundary", ring)):
        v = mag[m]
        out[f"edges_{region}_gradient_mean"] = v.mean()
        out[f"edges_{region}_gradient_std"] = v.std()
        out[f"edges_{region}_gradient_p90"] = np.percentile(v, 90)
    return out


# --------------------------------------------------------------------------
# building blocks
# --------------------------------------------------------------------------

def _kernels():
    from leukfeat.extract import _edges_kernels as k
    return k


def test_pairwise_sum_is_numpys_sum():
    rng = np.random.default_rng(3)
    k = _kernels()
    for n in [*range(0, 300), 1000, 1023, 1024, 1025, 4097, 65536 + 9, 300_001]:
        a = rng.normal(size=n) * 10.0 ** rng.uniform(-4, 4, n)
        assert k.pairwise_sum(a, 0, n) == np.add.reduce(a)
        if n > 5:
            assert k.pairwise_sum(a, 5, n - 5) == np.add.reduce(a[5:])


def test_select_arranges_as_numbas_partition():
    """select (used for the 90th percentiles) is numba's np.partition step
    for step: the same arrangement, NaN last, signed zeros where it puts them."""
    import numba
    k = _kernels()
    partition = numba.njit(lambda a, kth: np.partition(a, kth))
    rng = np.random.default_rng(5)
    for trial in range(400):
        n = int(rng.integers(1, 200))
        pick = trial % 4
        if pick == 0:
            a = rng.normal(size=n)
        elif pick == 1:
            a = rng.integers(0, 4, n).astype(np.float64)           # ties
        elif pick == 2:
            a = np.sort(rng.normal(size=n))[:: 1 if trial % 8 < 4 else -1]
        else:
            a = rng.choice([0.0, -0.0, 1.0, np.nan], n)            # NaN, signed zeros
        kth = int(rng.integers(0, n))
        want = partition(a, kth)
        got = a.copy()
        value = k.select(got, kth, 0, n - 1)
        np.testing.assert_array_equal(got.view(np.int64), want.view(np.int64))
        assert np.float64(value).view(np.int64) == got[kth].view(np.int64)


def _p90_numpy(v):
    return np.percentile(v, 90)


@pytest.mark.parametrize("seed", range(6))
def test_edge_kernels_equal_numpy_bit_for_bit(seed):
    """log_stats / boundary_stats give exactly the former numpy expressions."""
    from leukfeat._filters import zero_crossings_raw
    rng = np.random.default_rng(seed)
    shape = (20 + 7 * seed, 31 - seed)
    resp = ndi.gaussian_filter(rng.normal(size=shape), 1.0 + seed % 2)
    resp[rng.random(shape) < 0.05] = 0.0                        # exact zeros and ties
    gx, gy = rng.normal(size=shape), rng.normal(size=shape)
    m = ndi.gaussian_filter(rng.random(shape), 2) > 0.45
    m[0, 0] = True                                              # on the crop border
    eroded = (ndi.binary_erosion(m, iterations=2) * rng.integers(1, 3)).astype(np.uint8)
    k = _kernels()
    got = np.empty(4)
    k.log_stats(resp, m, got)
    v = resp[m]
    want = [v.mean(), v.std(), np.abs(v).mean(), _p90_numpy(np.abs(v))]
    np.testing.assert_array_equal(got, want)
    thr = [0.0, 0.05, 0.2][seed % 3]
    got = np.empty(8)
    k.boundary_stats(resp, gx, gy, m, eroded, thr, got)
    mag = np.sqrt(gx * gx + gy * gy) * 0.125
    ring = m & (eroded == 0)
    edges = zero_crossings_raw(resp, 0.0) & (mag >= thr)
    want = [np.count_nonzero(edges & m) / np.count_nonzero(m),
            np.count_nonzero(edges & ring) / np.count_nonzero(ring)]
    for r in (m, ring):
        want += [mag[r].mean(), mag[r].std(), _p90_numpy(mag[r])]
    np.testing.assert_array_equal(got, want)
    one = np.zeros(shape, bool)
    one[3, 4] = True                                            # a one-pixel cell
    k.log_stats(resp, one, got[:4])
    np.testing.assert_array_equal(got[:4], [resp[3, 4], 0.0, abs(resp[3, 4]), abs(resp[3, 4])])
    none = np.zeros(shape, bool)                                # empty samples give NaN
    k.log_stats(resp, none, got[:4])
    k.boundary_stats(resp, gx, gy, none, eroded, thr, got)
    assert np.isnan(got).all()


@pytest.mark.parametrize("sigma", [0.7, 1.0, 2.0, 3.5])
def test_log_response_equals_scaled_scipy(sigma):
    rng = np.random.default_rng(1)
    g = ndi.gaussian_filter(rng.random((50, 61)), 1.0)
    np.testing.assert_allclose(log_response(g, sigma),
                               sigma ** 2 * ndi.gaussian_laplace(g, sigma), atol=1e-13)
    tiny = rng.random((3, 4))
    np.testing.assert_allclose(log_response(tiny, sigma),
                               sigma ** 2 * ndi.gaussian_laplace(tiny, sigma), atol=1e-13)
    u8 = (g * 255).astype(np.uint8)
    np.testing.assert_allclose(log_response(u8, sigma),
                               sigma ** 2 * ndi.gaussian_laplace(u8.astype(float), sigma),
                               atol=1e-10)


@pytest.mark.parametrize("sigma", [1.0, 2.0, 3.0])
def test_zero_crossings_of_disc_lie_on_its_boundary(sigma):
    n, r = 101, 25.0
    yy, xx = np.mgrid[:n, :n]
    dist = np.hypot(yy - 50, xx - 50)
    img = (dist <= r).astype(float)
    zc = zero_crossings(log_response(img, sigma))
    assert zc.sum() >= 0.8 * 2 * math.pi * r
    assert np.abs(dist[zc] - r).max() <= sigma + 1
    # a large jump threshold removes them all
    assert not zero_crossings(log_response(img, sigma), threshold=10.0).any()


def test_zero_crossings_small_examples():
    assert zero_crossings(np.array([[-1.0, 2.0, 3.0]])).tolist() == [[True, False, False]]
    assert zero_crossings(np.array([[3.0, -1.0]])).tolist() == [[False, True]]
    assert zero_crossings(np.array([[1.0], [-1.0]])).tolist() == [[True], [False]]   # tie
    assert not zero_crossings(np.array([[0.0, 1.0], [-1.0, 0.0]])).any()            # via 0
    assert not zero_crossings(np.array([[-1.0, 2.0]]), threshold=3.0).any()
    assert not zero_crossings(np.zeros((5, 5))).any()


# --------------------------------------------------------------------------
# features
# --------------------------------------------------------------------------

@pytest.mark.parametrize("centre", [(48, 46), (20, 70)], ids=["inside", "touching-border"])
def test_features_equal_full_image_reference(centre):
    img, cell = make_cell(centre=centre)
    f = edge_features(img, cell)
    ref = reference(img, cell)
    assert list(f) == list(ref) == edge_feature_names()
    for k, v in ref.items():
        assert f[k] == pytest.approx(v, rel=1e-9, abs=1e-12), k
    assert 0 < f["edges_cell_density"] < 1 and 0 < f["edges_boundary_density"] < 1
    assert f["edges_boundary_gradient_mean"] > 0


def test_custom_parameters():
    img, cell = make_cell(seed=4)
    kw = dict(sigmas=(1.5, 0.8, 3.0), ring_width=2.5, edge_threshold=0.05)
    f = edge_features(img, cell, **kw)
    assert list(f) == edge_feature_names(sigmas=kw["sigmas"])
    assert "edges_log_s1p5_mean" in f and "edges_log_s0p8_p90_abs" in f
    ref = reference(img, cell, **kw)
    for k, v in ref.items():
        assert f[k] == pytest.approx(v, rel=1e-9, abs=1e-12), k


def test_grey_input():
    img, cell = make_cell(seed=2)
    gray_u8 = img[..., 1]
    f = edge_features(gray_u8, cell)
    g = edge_features(np.repeat(gray_u8[..., None], 3, axis=2), cell)
    h = edge_features(gray_u8 / 255.0, cell)
    for k in f:
        assert f[k] == pytest.approx(g[k], rel=1e-9, abs=1e-12)
        assert f[k] == pytest.approx(h[k], rel=1e-9, abs=1e-12)


def test_flat_image():
    cell = np.zeros((40, 40), bool)
    cell[5:30, 8:33] = True
    f = edge_features(np.full((40, 40, 3), 140, np.uint8), cell)
    assert f["edges_cell_density"] == 0.0 and f["edges_boundary_density"] == 0.0
    for region in ("cell", "boundary"):
        for st in ("mean", "std", "p90"):
            assert f[f"edges_{region}_gradient_{st}"] == 0.0
    assert abs(f["edges_log_s1_mean"]) < 1e-2 and f["edges_log_s2_std"] < 1e-12


def test_empty_mask_gives_nan():
    img, cell = make_cell()
    f = edge_features(img, np.zeros_like(cell))
    assert len(f) == 16 and all(math.isnan(v) for v in f.values())


def test_one_pixel_mask():
    img, cell = make_cell()
    one = np.zeros_like(cell)
    one[40, 40] = True
    f = edge_features(img, one)
    assert all(math.isfinite(v) for v in f.values())
    assert f["edges_cell_gradient_std"] == 0.0


def test_names():
    assert len(edge_feature_names()) == 16
    assert edge_feature_names()[:4] == ["edges_log_s1_mean", "edges_log_s1_std",
                                        "edges_log_s1_mean_abs", "edges_log_s1_p90_abs"]
    assert "edges_boundary_gradient_mean" in edge_feature_names()
    assert edge_feature_names(sigmas=(2,), prefix="e")[-1] == "e_boundary_gradient_p90"


# --------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------

def test_bad_inputs():
    img, cell = make_cell()
    with pytest.raises(ValueError, match="image"):
        edge_features(img[None], cell)
    with pytest.raises(ValueError, match="image"):
        edge_features(img.astype(object), cell)
    with pytest.raises(ValueError, match="cell_mask"):
        edge_features(img, cell[:, :5])
    with pytest.raises(ValueError, match="sigmas"):
        edge_features(img, cell, sigmas=(1.0, -2.0))
    with pytest.raises(ValueError, match="sigmas"):
        edge_features(img, cell, sigmas=())
    with pytest.raises(ValueError, match="ring_width"):
        edge_features(img, cell, ring_width=0)
    with pytest.raises(ValueError, match="edge_threshold"):
        edge_features(img, cell, edge_threshold=-1)
    with pytest.raises(ValueError, match="gray"):
        log_response(img, 1.0)
    with pytest.raises(ValueError, match="gray"):
        log_response(np.array([[np.nan, 1.0]]), 1.0)
    with pytest.raises(ValueError, match="sigma"):
        log_response(img[..., 0], 0)
    with pytest.raises(ValueError, match="response"):
        zero_crossings(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="threshold"):
        zero_crossings(np.zeros((2, 2)), threshold=-0.1)
