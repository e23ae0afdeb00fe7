"""Tests for leukfeat.extract.shape."""

import math
import warnings

import cv2
import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.measure import label, moments_hu, regionprops

from leukfeat.extract.shape import shape_feature_names, shape_features

try:   # the reference implementation, in the test extra
    import mahotas
except ImportError:
    mahotas = None
needs_mahotas = pytest.mark.skipif(
    mahotas is None, reason="mahotas (the reference, in the test extra) is not installed")


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


@needs_mahotas
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


@needs_mahotas
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
# the compiled region geometry against its numpy form (the former implementation)
# --------------------------------------------------------------------------

def _polygon_length(pts):
    if len(pts) < 2:
        return 0.0
    d = np.diff(np.vstack([pts, pts[:1]]), axis=0)
    return float(np.hypot(d[:, 0], d[:, 1]).sum())


def _convex_area(v2):
    """Number of pixel centres inside or on a convex polygon.

    ``v2`` holds the ordered hull vertices in doubled integer coordinates
    (x = 2 col, y = 2 row), so that pixel centres are the even lattice
    points. Equivalent to ``skimage.morphology.convex_hull_image(...).sum()``
    (borders included). The polygon is split into two chains that are
    strictly monotone in y (horizontal runs only occur at the top and the
    bottom) and each chain is interpolated at the even rows.
    """
    x = v2[:, 0].astype(np.float64)
    y = v2[:, 1].astype(np.float64)
    ymin, ymax = y.min(), y.max()
    top = y == ymin
    prev_top = np.empty_like(top)                 # np.roll(top, 1), without its overhead
    prev_top[0], prev_top[1:] = top[-1], top[:-1]
    start = int(np.flatnonzero(top & ~prev_top)[0])
    if start:                                     # rotate so the top run comes first
        x, y, top = (np.concatenate((v[start:], v[:start])) for v in (x, y, top))
    ntop = int(np.argmin(top))                    # length of the leading top run
    bottom = y == ymax
    first_bottom = ntop + int(np.argmax(bottom[ntop:]))
    last_bottom = int(np.flatnonzero(bottom)[-1])
    fwd = np.arange(ntop - 1, first_bottom + 1)
    bwd = np.concatenate([[0], np.arange(len(x) - 1, last_bottom - 1, -1)])
    y0 = int(ymin) + int(ymin) % 2
    ys = np.arange(y0, int(ymax) + 1, 2, dtype=np.float64)
    xa = np.interp(ys, y[fwd], x[fwd])
    xb = np.interp(ys, y[bwd], x[bwd])
    eps = 1e-9
    counts = (np.floor(np.maximum(xa, xb) / 2.0 + eps)
              - np.ceil(np.minimum(xa, xb) / 2.0 - eps) + 1.0)
    return float(np.clip(counts, 0, None).sum())


def _feret(x, y):
    """(min, max) caliper widths of a convex polygon with ordered vertices.

    The maximum is the largest vertex-to-vertex distance; the minimum is
    attained with one caliper flush with a hull edge (rotating calipers,
    Toussaint 1983), evaluated here for all edges at once.
    """
    dx = x[:, None] - x[None, :]
    dy = y[:, None] - y[None, :]
    dmax = float(np.sqrt((dx * dx + dy * dy).max()))
    ex = np.append(x[1:], x[0]) - x               # edge vectors (np.roll(x, -1) - x)
    ey = np.append(y[1:], y[0]) - y
    elen = np.hypot(ex, ey)
    ok = elen > 0
    # |cross(edge, vertex - edge start)| / |edge| for all (edge, vertex)
    cross = np.abs(ex[ok, None] * dy.T[ok] - ey[ok, None] * dx.T[ok])
    dmin = float((cross.max(axis=1) / elen[ok]).min())
    return dmin, dmax


def _efd_amplitudes(pts, n_fourier):
    """Elliptic Fourier harmonic amplitudes 2..N+1 relative to harmonic 1."""
    out = np.full(n_fourier, np.nan)
    if n_fourier == 0 or len(pts) < 2:
        return out
    d = np.diff(np.vstack([pts, pts[:1]]), axis=0)
    dt = np.hypot(d[:, 0], d[:, 1])
    keep = dt > 0
    d, dt = d[keep], dt[keep]
    if dt.size < 2:
        return out
    t = np.concatenate([[0.0], np.cumsum(dt)])
    period = t[-1]
    n = np.arange(1, n_fourier + 2, dtype=np.float64)
    # exp(i n phi_p), phi_p = 2 pi t_p / T, by repeated multiplication; its
    # increments along the contour give the cos/sin sums of Kuhl & Giardina
    e = np.empty((n.size, t.size), dtype=np.complex128)
    e[0] = np.exp((2j * np.pi / period) * t)
    for i in range(1, n.size):
        np.multiply(e[i - 1], e[0], out=e[i])
    de = e[:, 1:] - e[:, :-1]
    coef = de @ (d / dt[:, None])                 # (n, [x, y]) complex
    # a_n, b_n = const * (Re, Im) of coef[:, 0]; c_n, d_n likewise for y
    const = period / (2.0 * np.pi ** 2 * n ** 2)
    amp = const * np.sqrt((np.abs(coef) ** 2).sum(axis=1))
    if not amp[0] > 1e-12 * period:
        return out
    return amp[1:] / amp[0]


def _zernike_geo(u, centroid, radius, degree):
    """Geometric moments of the scaled pixel coordinates of a binary region.

    ``u`` is the (cropped) binary region, ``centroid`` its (row, col)
    centroid in the crop and ``radius`` the largest centroid-to-pixel-centre
    distance, so that every pixel of the region lies in the unit disc
    (mahotas: ``zernike_moments(u, radius, degree)``). Computed from the
    geometric moments of the scaled coordinates, ``Y^T U X``, in O(pixels *
    degree) instead of O(pixels * degree^2).
    """
    h, w = u.shape
    y = (np.arange(h, dtype=np.float64) - centroid[0]) / radius
    x = (np.arange(w, dtype=np.float64) - centroid[1]) / radius
    ypow = np.vander(y, degree + 1, increasing=True)   # (h, degree + 1)
    xpow = np.vander(x, degree + 1, increasing=True)   # (w, degree + 1)
    return ypow.T @ (u.astype(np.float64) @ xpow)  # geo[b, a] = sum y^b x^a


def _geometry_cases():
    rng = np.random.default_rng(3)
    masks = [blob(s, n=int(rng.integers(10, 90))) for s in range(25)]
    masks += [disc(r) for r in (0.5, 1, 2.5, 7, 20.3)]
    masks += [ellipse(a, b, ang, n=80) for a, b, ang in [(30, 8, 0), (25, 10, 33), (12, 3, 80)]]
    line = np.zeros((7, 12), bool)
    line[3, 2:10] = True
    pair = np.zeros((5, 5), bool)
    pair[2, 2] = pair[3, 3] = True
    square = np.zeros((12, 12), bool)
    square[2:9, 3:10] = True
    return masks + [line, pair, square, np.pad(np.ones((1, 1), bool), 2)]


@pytest.mark.parametrize("n_fourier, degree", [(10, 8), (0, 0), (3, 12)])
def test_region_geometry_kernel_equals_numpy(n_fourier, degree):
    from leukfeat.extract import shape as S
    k = S._kernels()
    for m in _geometry_cases():
        u, contour = S._largest_component(S._crop_pad(m, S._bbox(m)))
        mo = cv2.moments(u, binaryImage=True)
        cy, cx = mo["m01"] / mo["m00"], mo["m10"] / mo["m00"]
        hull = cv2.convexHull(contour).reshape(-1, 2)
        diamond = (2 * hull[:, None, :] + S._DIAMOND2[None]).reshape(-1, 2).astype(np.int32)
        dhull = cv2.convexHull(diamond).reshape(-1, 2)
        scalars, efd = np.empty(5), np.empty(n_fourier)
        geo = np.empty((degree + 1, degree + 1))
        k.region_geometry(u, contour, hull, dhull, cy, cx, n_fourier, degree, scalars, efd, geo)
        radius = float(np.sqrt(((hull[:, 1] - cy) ** 2 + (hull[:, 0] - cx) ** 2).max()))
        np.testing.assert_allclose(scalars[0], _polygon_length(hull.astype(np.float64)),
                                   rtol=1e-12)
        assert scalars[1] == _convex_area(dhull)
        np.testing.assert_allclose(scalars[2:4], _feret(dhull[:, 0] / 2.0, dhull[:, 1] / 2.0),
                                   rtol=1e-12)
        np.testing.assert_allclose(scalars[4], radius, rtol=1e-12)
        np.testing.assert_allclose(efd, _efd_amplitudes(contour.astype(np.float64), n_fourier),
                                   rtol=1e-9, atol=1e-12)
        if radius > 0:
            want = _zernike_geo(u, (cy, cx), radius, degree)
            np.testing.assert_allclose(geo, want, rtol=1e-10, atol=1e-10 * want[0, 0])
        else:
            assert m.sum() == 1 and not geo.any()


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


def _lobe_count_opencv(u, depth, levels=10):
    """The lobe-count definition written with OpenCV labelling (the former
    implementation, kept as the reference of the numba kernel)."""
    dist = cv2.distanceTransform(u, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    dmax = float(dist.max())
    if not dmax > 0:
        return np.nan
    h = depth * dmax
    best = 0
    for j in range(levels):
        t = dmax * j / levels
        if t + h > dmax * (1.0 + 1e-9):
            break
        n, lab = cv2.connectedComponents((dist > t).view(np.uint8), connectivity=8)
        reached = lab[dist >= t + h - 1e-6 * dmax]
        best = max(best, int(np.count_nonzero(np.bincount(reached, minlength=n)[1:])))
    return float(best)


@pytest.mark.parametrize("depth", [0.1, 0.25, 0.5, 0.9])
def test_lobe_count_kernel_equals_opencv_labelling(depth):
    from leukfeat.extract.shape import _lobe_count
    rng = np.random.default_rng(7)
    masks = [blob(s, n=int(rng.integers(8, 90))) for s in range(30)]
    masks += [ndi.gaussian_filter(rng.random((60, 70)), 2) > 0.52 for _ in range(30)]  # fragments
    masks += [discs([(40, 30), (40, 30 + f * 14)], 14) for f in (1.4, 1.5, 1.6, 1.7, 2.5)]
    masks += [np.zeros((5, 5), bool), np.pad(np.ones((1, 1), bool), 2)]
    counts = []
    for m in masks:
        u = np.pad(m, 1).astype(np.uint8)
        got, want = _lobe_count(u, depth), _lobe_count_opencv(u, depth)
        assert (np.isnan(got) and np.isnan(want)) or got == want, (depth, m.shape)
        counts.append(got)
    assert len(set(c for c in counts if c == c)) >= 3     # the cases are not all alike


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


def test_lobe_count_uses_exact_distances():
    """The lobe count sees the exact Euclidean distances (scipy's EDT, as
    float32), not OpenCV's, whose last bit varied between calls on the same
    mask and flipped the count of a Taleghani field (1 or 2 at random)."""
    from scipy import ndimage as ndi

    from leukfeat.extract import shape as sh

    rng = np.random.default_rng(3)
    for _ in range(20):
        u = np.zeros((60, 70), np.uint8)
        for _ in range(rng.integers(1, 4)):
            cy, cx, r = rng.integers(15, 45), rng.integers(15, 55), rng.integers(5, 14)
            yy, xx = np.ogrid[:60, :70]
            u[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = 1
        exact = ndi.distance_transform_edt(u).astype(np.float32)
        expected = float(sh._kernels().lobe_count(exact, float(exact.max()), 0.5, 10))
        assert sh._lobe_count(u, 0.5) == expected
