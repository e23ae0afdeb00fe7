"""Tests for leukfeat.extract.texture against mahotas and scikit-image."""

from __future__ import annotations

import re
import warnings

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from skimage.feature import graycomatrix, graycoprops, local_binary_pattern

from leukfeat.extract import texture as T

try:   # the reference implementation, in the test extra
    import mahotas
    from mahotas.features import texture as mtex
except ImportError:
    mahotas = mtex = None
needs_mahotas = pytest.mark.skipif(
    mahotas is None, reason="mahotas (the reference, in the test extra) is not installed")

RTOL = 1e-6
ATOL = 1e-10


# --------------------------------------------------------------------------- #
# helpers
# --------------------------------------------------------------------------- #

def smooth_gray(seed, shape=(96, 128), lo=20, hi=235, noise=0.0):
    """A random, spatially smooth uint8 grey image (optionally with noise)."""
    rng = np.random.default_rng(seed)
    small = rng.random((6, 8)).astype(np.float32)
    big = cv2.resize(small, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)
    big = (big - big.min()) / (big.max() - big.min())
    img = lo + big * (hi - lo) + noise * rng.standard_normal(shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def blob_mask(shape, seed, n=3):
    """A few random filled ellipses (some may touch the border)."""
    rng = np.random.default_rng(seed)
    m = np.zeros(shape, np.uint8)
    h, w = shape
    for _ in range(n):
        c = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        axes = (int(rng.integers(3, max(4, w // 3))), int(rng.integers(3, max(4, h // 3))))
        cv2.ellipse(m, c, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    return m.astype(bool)


def mahotas_masked(img, mask, distance=1, c14=False):
    """mahotas on the image zeroed outside the mask, ignoring zeros."""
    masked = np.where(mask, img, 0).astype(img.dtype)
    return mahotas.features.haralick(masked, ignore_zeros=True, distance=distance,
                                     compute_14th_feature=c14)


def assert_matches(ours, ref):
    assert ours.shape == ref.shape
    assert ours.dtype == np.float64
    np.testing.assert_allclose(ours, ref, rtol=RTOL, atol=ATOL)


def taleghani_gray(n=3):
    from _shared import taleghani_files

    files = taleghani_files()[:n]
    return [(f.name, cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2GRAY)) for f in files]


# --------------------------------------------------------------------------- #
# names
# --------------------------------------------------------------------------- #

@needs_mahotas
def test_haralick_names_are_stable_snake_case():
    assert len(T.HARALICK_NAMES) == 14
    assert len(set(T.HARALICK_NAMES)) == 14
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", n) for n in T.HARALICK_NAMES)
    # same order as mahotas' labels
    assert len(mtex.haralick_labels) == 14
    for ours, theirs in zip(T.HARALICK_NAMES, mtex.haralick_labels):
        words = re.sub(r"[^a-z0-9 ]", " ", theirs.lower()).split()
        if ours == "asm":
            assert words == ["angular", "second", "moment"]
        elif ours.startswith("info_measure"):
            assert words[:3] == ["information", "measure", "of"] and words[-1] == ours[-1]
        elif ours == "max_correlation_coefficient":
            assert words == ["maximal", "correlation", "coefficient"]
        elif ours == "sum_of_squares_variance":
            assert words == ["sum", "of", "squares", "variance"]
        else:
            assert words == ours.split("_"), (ours, theirs)
    assert T.GLCM_ANGLES == (0, 45, 90, 135)


# --------------------------------------------------------------------------- #
# haralick == mahotas
# --------------------------------------------------------------------------- #

@needs_mahotas
@pytest.mark.parametrize("shape", [(32, 32), (45, 71), (100, 37), (7, 5)])
@pytest.mark.parametrize("distance", [1, 2, 3])
def test_haralick_matches_mahotas_random(shape, distance):
    rng = np.random.default_rng(hash((shape, distance)) % 2**32)
    img = rng.integers(0, 256, shape, dtype=np.uint8)
    assert_matches(T.haralick(img, distance=distance),
                   mahotas.features.haralick(img, distance=distance))


@needs_mahotas
@pytest.mark.parametrize("shape,distance", [((40, 40), 1), ((33, 60), 2), ((64, 29), 3)])
def test_haralick_14th_feature_matches_mahotas(shape, distance):
    rng = np.random.default_rng(7 + distance)
    img = rng.integers(0, 256, shape, dtype=np.uint8)
    ours = T.haralick(img, distance=distance, return_14=True)
    ref = mahotas.features.haralick(img, distance=distance, compute_14th_feature=True)
    assert ours.shape == (4, 14)
    assert_matches(ours, ref)
    # the first 13 columns do not depend on return_14
    np.testing.assert_array_equal(ours[:, :13], T.haralick(img, distance=distance))


@needs_mahotas
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("distance", [1, 2, 3])
@pytest.mark.parametrize("c14", [False, True])
def test_haralick_masked_matches_mahotas_ignore_zeros(seed, distance, c14):
    rng = np.random.default_rng(seed)
    shape = [(60, 60), (48, 90), (90, 41), (75, 75)][seed]
    img = rng.integers(1, 256, shape, dtype=np.uint8)   # no zero inside the mask
    mask = blob_mask(shape, seed)
    ours = T.haralick(img, distance=distance, mask=mask, return_14=c14)
    assert_matches(ours, mahotas_masked(img, mask, distance, c14))


@needs_mahotas
@pytest.mark.parametrize("distance", [1, 2, 3])
def test_haralick_smooth_and_noisy_images(distance):
    for seed, noise in [(0, 0.0), (1, 3.0), (2, 12.0)]:
        img = smooth_gray(seed, (90, 130), noise=noise)
        assert_matches(T.haralick(img, distance=distance, return_14=True),
                       mahotas.features.haralick(img, distance=distance,
                                                 compute_14th_feature=True))
        mask = blob_mask(img.shape, seed + 10)
        img1 = np.maximum(img, 1)
        assert_matches(T.haralick(img1, distance=distance, mask=mask),
                       mahotas_masked(img1, mask, distance))


@needs_mahotas
@pytest.mark.parametrize("distance", [1, 2, 3])
def test_haralick_camera_crop(distance):
    import skimage.data

    img = skimage.data.camera()[40:340, 60:470]   # non-square, full grey range
    assert_matches(T.haralick(img, distance=distance),
                   mahotas.features.haralick(img, distance=distance))
    small = img[100:180, 200:260]
    assert_matches(T.haralick(small, distance=distance, return_14=True),
                   mahotas.features.haralick(small, distance=distance,
                                             compute_14th_feature=True))


@needs_mahotas
@pytest.mark.shared_data
def test_haralick_taleghani_images_match_mahotas():
    for name, gray in taleghani_gray(3):
        for d in (1, 2):
            assert_matches(T.haralick(gray, distance=d),
                           mahotas.features.haralick(gray, distance=d))
        # a nucleus-like mask: the darker pixels (Otsu), zeros lifted to 1
        g1 = np.maximum(gray, 1)
        thr, _ = cv2.threshold(g1, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        mask = g1 < thr
        assert mask.any(), name
        assert_matches(T.haralick(g1, mask=mask), mahotas_masked(g1, mask))


@needs_mahotas
def test_haralick_other_integer_types_match_mahotas():
    rng = np.random.default_rng(3)
    # small range in a wide type (fast path after offset)
    img = rng.integers(5, 60, (40, 50)).astype(np.int32)
    assert_matches(T.haralick(img), mahotas.features.haralick(img))
    # more than 256 levels (generic path over the occupied levels)
    img16 = rng.integers(0, 700, (40, 50)).astype(np.uint16)
    assert_matches(T.haralick(img16, distance=2, return_14=True),
                   mahotas.features.haralick(img16, distance=2, compute_14th_feature=True))
    img16[:10] = 1000     # sparse levels far apart
    assert_matches(T.haralick(img16), mahotas.features.haralick(img16))
    mask = blob_mask(img16.shape, 5)
    img16 = np.maximum(img16, 1)
    assert_matches(T.haralick(img16, mask=mask), mahotas_masked(img16, mask))
    # boolean images
    b = rng.random((30, 30)) > 0.5
    assert_matches(T.haralick(b), mahotas.features.haralick(b))


@needs_mahotas
def test_non_contiguous_inputs():
    rng = np.random.default_rng(8)
    img = rng.integers(1, 256, (60, 50), dtype=np.uint8)
    mask = rng.random(img.shape) < 0.8
    for sl in [np.s_[::2, ::3], np.s_[::-1, :], np.s_[:, ::-1]]:
        v, m = img[sl], mask[sl]
        assert_matches(T.haralick(v), mahotas.features.haralick(np.ascontiguousarray(v)))
        assert_matches(T.haralick(v, mask=m), mahotas_masked(np.ascontiguousarray(v), m))
    assert_matches(T.haralick(img.T, mask=mask.T), mahotas_masked(img.T.copy(), mask.T))
    np.testing.assert_array_equal(T.glcm(np.asfortranarray(img)), T.glcm(img))


@pytest.mark.parametrize("seed", range(3))
def test_generic_and_fast_paths_agree(seed):
    """The OpenCV path (<= 256 levels) and the numpy path (any range) agree."""
    img = smooth_gray(seed, (50, 70), noise=5.0)
    mask = blob_mask(img.shape, seed) if seed else None
    for d in (1, 3):
        fast = T._haralick_q(img, mask, d, True)
        generic = T._haralick_q(img, mask, d, True, force_generic=True)
        np.testing.assert_allclose(fast, generic, rtol=1e-9, atol=1e-12)


@needs_mahotas
def test_haralick_quantisation():
    img = smooth_gray(4, (80, 100), noise=6.0)
    # fixed: floor(v * levels / 256); 256 levels == raw uint8 values
    np.testing.assert_array_equal(T.haralick(img, levels=256), T.haralick(img))
    for levels in (8, 32, 64):
        q = (img.astype(np.int64) * levels // 256).astype(np.uint8)
        assert_matches(T.haralick(img, levels=levels), mahotas.features.haralick(q))
    # fixed quantisation with a mask (inside values >= 8 so that q >= 1 there)
    mask = blob_mask(img.shape, 1)
    img8 = np.maximum(img, 8)
    q = (img8.astype(np.int64) * 32 // 256).astype(np.uint8)
    assert_matches(T.haralick(img8, levels=32, mask=mask), mahotas_masked(q, mask))
    # min-max binning over the image
    lo, hi = int(img.min()), int(img.max())
    q = ((img.astype(np.int64) - lo) * 16 // (hi - lo + 1)).astype(np.uint8)
    assert q.max() == 15
    assert_matches(T.haralick(img, levels=16, quantization="minmax"),
                   mahotas.features.haralick(q))
    # min-max binning is per region of interest: only the mask's range matters
    # (the quantised region contains zeros, so compare with the raw-level path,
    # itself checked against mahotas above)
    inside = img[mask]
    lo, hi = int(inside.min()), int(inside.max())
    q = ((img.astype(np.int64) - lo).clip(0, hi - lo) * 16 // (hi - lo + 1)).astype(np.uint8)
    np.testing.assert_array_equal(T.haralick(img, levels=16, quantization="minmax", mask=mask),
                                  T.haralick(q, mask=mask))
    shifted = np.where(mask, img, 0).astype(np.uint8)     # outside values do not matter
    np.testing.assert_array_equal(
        T.haralick(shifted, levels=16, quantization="minmax", mask=mask),
        T.haralick(img, levels=16, quantization="minmax", mask=mask))


# --------------------------------------------------------------------------- #
# degenerate regions: NaN, never inf, never an exception
# --------------------------------------------------------------------------- #

@needs_mahotas
def test_empty_mask_gives_nan_where_mahotas_raises():
    img = np.random.default_rng(0).integers(1, 256, (20, 20), dtype=np.uint8)
    mask = np.zeros(img.shape, bool)
    with pytest.raises(ValueError):
        mahotas_masked(img, mask)
    for c14 in (False, True):
        out = T.haralick(img, mask=mask, return_14=c14)
        assert out.shape == (4, 14 if c14 else 13)
        assert np.isnan(out).all()


@needs_mahotas
def test_one_pixel_mask_and_tiny_images_give_nan():
    img = np.random.default_rng(1).integers(1, 256, (20, 20), dtype=np.uint8)
    mask = np.zeros(img.shape, bool)
    mask[5, 7] = True
    with pytest.raises(ValueError):
        mahotas_masked(img, mask)
    assert np.isnan(T.haralick(img, mask=mask)).all()
    assert np.isnan(T.haralick(np.array([[9]], np.uint8), return_14=True)).all()
    # distance larger than the image: no pair at all
    assert np.isnan(T.haralick(img[:3, :3], distance=5)).all()


@needs_mahotas
def test_thin_mask_only_defined_directions():
    img = np.random.default_rng(2).integers(1, 256, (20, 30), dtype=np.uint8)
    mask = np.zeros(img.shape, bool)
    mask[8, 3:25] = True   # one row: only horizontal pairs
    with pytest.raises(ValueError):
        mahotas_masked(img, mask)
    out = T.haralick(img, mask=mask)
    assert np.isnan(out[1:]).all()
    assert np.isfinite(out[0]).all()
    masked = np.where(mask, img, 0).astype(np.uint8)
    cmat = mtex.cooccurence(masked, 0, symmetric=True)
    ref = mtex.haralick_features([cmat], ignore_zeros=True)
    assert_matches(out[:1], ref)


@needs_mahotas
@pytest.mark.parametrize("value", [0, 7, 255])
def test_constant_image(value):
    img = np.full((12, 15), value, np.uint8)
    out = T.haralick(img, return_14=True)
    assert not np.isinf(out).any()
    undefined = [T.HARALICK_NAMES.index(n) for n in
                 ("correlation", "info_measure_correlation_1", "max_correlation_coefficient")]
    assert np.isnan(out[:, undefined]).all()
    defined = [i for i in range(14) if i not in undefined]
    assert np.isfinite(out[:, defined]).all()
    ref = mahotas.features.haralick(img, compute_14th_feature=True)
    np.testing.assert_allclose(out[:, defined], ref[:, defined], rtol=RTOL, atol=ATOL)
    assert (out[:, 0] == 1).all() and (out[:, 8] == 0).all()   # asm 1, entropy 0
    # a constant region inside a mask behaves the same
    img2 = np.random.default_rng(0).integers(1, 256, (12, 15), dtype=np.uint8)
    mask = np.zeros(img2.shape, bool)
    mask[2:8, 3:9] = True
    img2[mask] = max(value, 1)
    out2 = T.haralick(img2, mask=mask)
    assert np.isnan(out2[:, [2, 11]]).all() and not np.isinf(out2).any()


@needs_mahotas
def test_14th_feature_few_levels_matches_mahotas():
    """With 3-6 levels GLCM rows can be constant: mahotas' corrcoef then works
    on rounding noise, which leukfeat reproduces; a tiny negative eigenvalue
    (mahotas: sqrt -> NaN) gives 0 here; a single level gives NaN (mahotas 0)."""
    rng = np.random.default_rng(5)
    checked = 0
    for _ in range(300):
        h, w = rng.integers(3, 30, 2)
        img = rng.integers(0, int(rng.integers(3, 7)), (h, w)).astype(np.uint8)
        d = int(rng.integers(1, 3))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            try:
                ref = mahotas.features.haralick(img, distance=d, compute_14th_feature=True)
            except ValueError:
                continue
        ours = T.haralick(img, distance=d, return_14=True)
        for k in range(4):
            if np.isnan(ref[k, 13]):
                assert ours[k, 13] == 0.0
            elif np.isnan(ours[k, 2]):          # single grey level
                assert np.isnan(ours[k, 13]) and ref[k, 13] == 0
            else:
                assert ours[k, 13] == pytest.approx(ref[k, 13], rel=RTOL, abs=1e-7)
                checked += 1
    assert checked > 500


@needs_mahotas
def test_two_level_image_max_correlation_is_zero_like_mahotas():
    img = np.zeros((10, 10), np.uint8)
    img[:, 5:] = 3
    out = T.haralick(img, return_14=True)
    assert_matches(out, mahotas.features.haralick(img, compute_14th_feature=True))
    assert (out[:, 13] == 0).all()


@needs_mahotas
@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), h=st.integers(1, 24), w=st.integers(1, 24),
       levels=st.sampled_from([2, 3, 16, 256]), distance=st.integers(1, 3),
       masked=st.booleans())
def test_property_matches_mahotas_or_nan(seed, h, w, levels, distance, masked):
    rng = np.random.default_rng(seed)
    img = rng.integers(1 if masked else 0, levels, (h, w)).astype(np.uint8)
    mask = rng.random((h, w)) < 0.7 if masked else None
    ours = T.haralick(img, distance=distance, mask=mask)
    assert ours.shape == (4, 13) and not np.isinf(ours).any()
    try:
        if masked:
            ref = mahotas_masked(img, mask, distance)
        else:
            ref = mahotas.features.haralick(img, distance=distance)
    except ValueError:
        # mahotas raises when some direction has no valid pair: that row is NaN
        assert np.isnan(ours).all(axis=1).any()
        return
    # info_measure_correlation_2 = sqrt(1 - exp(-2 (2 HX - HXY))) turns a
    # rounding difference of 1e-16 in 2 HX - HXY into ~1e-8 when the pairs
    # are exactly independent (tiny images): compare its square there.
    imc2 = T.HARALICK_NAMES.index("info_measure_correlation_2")
    np.testing.assert_allclose(ours[:, imc2] ** 2, ref[:, imc2] ** 2, rtol=RTOL, atol=1e-13)
    ours[:, imc2] = ref[:, imc2] = 0.0
    single = np.count_nonzero(np.isnan(ours), axis=1) > 0
    for k in range(4):
        if single[k]:   # single grey level in that direction: mahotas' 1 / 0
            np.testing.assert_allclose(np.delete(ours[k], [2, 11]),
                                       np.delete(ref[k], [2, 11]), rtol=RTOL, atol=ATOL)
            assert ref[k, 2] == 1 and ref[k, 11] == 0
        else:
            np.testing.assert_allclose(ours[k], ref[k], rtol=RTOL, atol=ATOL)


# --------------------------------------------------------------------------- #
# glcm == skimage.graycomatrix, glcm_props == graycoprops
# --------------------------------------------------------------------------- #

@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("normed", [False, True])
@pytest.mark.parametrize("distance", [1, 2, 3])
def test_glcm_matches_skimage(symmetric, normed, distance):
    rng = np.random.default_rng(distance)
    img = rng.integers(0, 256, (37, 45), dtype=np.uint8)
    ours = T.glcm(img, distances=(distance,), symmetric=symmetric, normed=normed)
    assert ours.shape == (1, 4, 256, 256)
    assert ours.dtype == (np.float64 if normed else np.int64)
    # axis-aligned directions: same distance
    sk = graycomatrix(img, [distance], [0, np.pi / 2], levels=256,
                      symmetric=symmetric, normed=normed)
    np.testing.assert_allclose(ours[0, 0], sk[:, :, 0, 0], rtol=1e-12, atol=0)
    np.testing.assert_allclose(ours[0, 2], sk[:, :, 0, 1], rtol=1e-12, atol=0)
    # diagonals: scikit-image rounds the offset to round(D / sqrt(2))
    big_d = int(round(distance * np.sqrt(2)))
    assert int(np.floor(big_d * np.sqrt(0.5) + 0.5)) == distance
    sk = graycomatrix(img, [big_d], [np.pi / 4, 3 * np.pi / 4], levels=256,
                      symmetric=symmetric, normed=normed)
    np.testing.assert_allclose(ours[0, 1], sk[:, :, 0, 0], rtol=1e-12, atol=0)
    np.testing.assert_allclose(ours[0, 3], sk[:, :, 0, 1], rtol=1e-12, atol=0)


@needs_mahotas
def test_glcm_quantised_and_layout():
    img = smooth_gray(3, (40, 52), noise=8.0)
    P = T.glcm(img, distances=(1, 2), levels=16)
    q = (img.astype(np.int64) * 16 // 256).astype(np.uint8)
    sk = graycomatrix(q, [1, 2], [0, np.pi / 4, np.pi / 2, 3 * np.pi / 4], levels=16,
                      symmetric=True, normed=True)
    assert P.shape == (2, 4, 16, 16)
    np.testing.assert_allclose(P[0], sk[:, :, 0, :].transpose(2, 0, 1), rtol=1e-12)
    np.testing.assert_allclose(P[1, [0, 2]], sk[:, :, 1, [0, 2]].transpose(2, 0, 1),
                               rtol=1e-12)
    # angle subset and order follow the argument
    sub = T.glcm(img, distances=(1,), angles=(90, 0), levels=16)
    np.testing.assert_array_equal(sub[0, 0], P[0, 2])
    np.testing.assert_array_equal(sub[0, 1], P[0, 0])
    # more than 256 levels (numpy path), min-max binned 16-bit image
    rng = np.random.default_rng(0)
    img16 = (img.astype(np.uint16) * 200 + rng.integers(0, 200, img.shape)).astype(np.uint16)
    P16 = T.glcm(img16, distances=(1,), levels=300, quantization="minmax")
    lo, hi = int(img16.min()), int(img16.max())
    q16 = ((img16.astype(np.int64) - lo) * 300 // (hi - lo + 1)).astype(np.uint16)
    sk = graycomatrix(q16, [1], [0, np.pi / 4, np.pi / 2, 3 * np.pi / 4], levels=300,
                      symmetric=True, normed=True)
    np.testing.assert_allclose(P16[0], sk[:, :, 0, :].transpose(2, 0, 1), rtol=1e-12)
    # levels=None: raw values, size max + 1 (mahotas' matrix)
    raw = T.glcm(img, levels=None, normed=False)
    assert raw.shape == (1, 4, int(img.max()) + 1, int(img.max()) + 1)
    for k in range(4):
        np.testing.assert_array_equal(raw[0, k], mtex.cooccurence(img, k, symmetric=True))


def test_glcm_mask_counts_pairs_with_both_pixels_inside():
    rng = np.random.default_rng(11)
    img = rng.integers(0, 6, (9, 11), dtype=np.uint8)
    mask = rng.random(img.shape) < 0.6
    img[0, 0], mask[0, 0] = 5, True      # levels=None: matrix size = max inside + 1
    ours = T.glcm(img, distances=(1, 2), levels=None, mask=mask, symmetric=False,
                  normed=False)
    assert ours.shape == (2, 4, 6, 6)
    offsets = {0: (0, 1), 45: (1, 1), 90: (1, 0), 135: (1, -1)}
    for di, d in enumerate((1, 2)):
        for ai, a in enumerate(T.GLCM_ANGLES):
            dy, dx = offsets[a][0] * d, offsets[a][1] * d
            ref = np.zeros((6, 6), np.int64)
            for y in range(img.shape[0]):
                for x in range(img.shape[1]):
                    y2, x2 = y + dy, x + dx
                    if 0 <= y2 < img.shape[0] and 0 <= x2 < img.shape[1] \
                            and mask[y, x] and mask[y2, x2]:
                        ref[img[y, x], img[y2, x2]] += 1
            np.testing.assert_array_equal(ours[di, ai], ref)
    # symmetric = C + C.T; normed divides by the sum; no pair -> NaN
    sym = T.glcm(img, distances=(1,), levels=None, mask=mask, normed=False)
    np.testing.assert_array_equal(sym[0], ours[0] + ours[0].transpose(0, 2, 1))
    empty = T.glcm(img, levels=8, mask=np.zeros(img.shape, bool))
    assert empty.shape == (1, 4, 8, 8)
    assert np.isnan(empty).all()
    # haralick's ASM is glcm's ASM at the same grey levels
    asm = (T.glcm(img, levels=None, mask=mask) ** 2).sum(axis=(2, 3))[0]
    np.testing.assert_allclose(asm, T.haralick(img, mask=mask)[:, 0], rtol=1e-12)


_SK_PROPS = {"contrast": "contrast", "dissimilarity": "dissimilarity",
             "homogeneity": "homogeneity", "asm": "ASM", "energy": "energy",
             "correlation": "correlation", "mean": "mean", "variance": "variance",
             "std": "std", "entropy": "entropy"}


@pytest.mark.parametrize("levels", [8, 64, 256])
def test_glcm_props_match_graycoprops(levels):
    img = smooth_gray(levels, (50, 61), noise=10.0)
    q = (img.astype(np.int64) * levels // 256).astype(np.uint8)
    for symmetric in (True, False):
        P = T.glcm(img, distances=(1, 3), levels=levels, symmetric=symmetric)
        sk = graycomatrix(q, [1, 3], [0, np.pi / 4, np.pi / 2, 3 * np.pi / 4],
                          levels=levels, symmetric=symmetric, normed=True)
        props = T.glcm_props(P)
        assert tuple(props) == T.GLCM_PROPS
        # on scikit-image's own matrices (axis-aligned at distance 3 only)
        props_sk = T.glcm_props(sk.transpose(2, 3, 0, 1))
        for name, skname in _SK_PROPS.items():
            ref = graycoprops(sk, skname)
            assert props[name].shape == (2, 4)
            np.testing.assert_allclose(props_sk[name], ref, rtol=1e-9, atol=1e-12)
            np.testing.assert_allclose(props[name][0], ref[0], rtol=1e-9, atol=1e-12)
            np.testing.assert_allclose(props[name][1, [0, 2]], ref[1, [0, 2]],
                                       rtol=1e-9, atol=1e-12)
    # counts or normalised matrices give the same properties
    counts = T.glcm(img, levels=levels, normed=False)
    for name, val in T.glcm_props(counts).items():
        np.testing.assert_allclose(val, T.glcm_props(T.glcm(img, levels=levels))[name],
                                   rtol=1e-12)


def test_glcm_props_degenerate_are_nan():
    P = np.zeros((2, 5, 5))
    P[1, 2, 2] = 4.0          # a single level: zero variance
    out = T.glcm_props(P, props=("contrast", "correlation", "asm"))
    assert np.isnan(out["contrast"][0]) and np.isnan(out["asm"][0])
    assert np.isnan(out["correlation"][1])
    assert out["contrast"][1] == 0 and out["asm"][1] == 1
    with pytest.raises(ValueError, match="props"):
        T.glcm_props(P, props=("nope",))
    with pytest.raises(ValueError, match="P"):
        T.glcm_props(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="P"):
        T.glcm_props(-np.ones((3, 3)))


# --------------------------------------------------------------------------- #
# LBP
# --------------------------------------------------------------------------- #

def _lbp_by_hand(img, mask, r, method="uniform"):
    p = 8 * r
    codes = local_binary_pattern(img, p, r, method)
    n_bins = {"uniform": p + 2, "nri_uniform": p * (p - 1) + 3, "default": 2 ** p}[method]
    sel = codes[mask] if mask is not None else codes.ravel()
    return np.bincount(sel.astype(np.int64), minlength=n_bins) / sel.size


@pytest.mark.parametrize("where", ["middle", "corner", "border", "none"])
def test_lbp_histogram_matches_skimage_by_hand(where):
    import skimage.data

    img = skimage.data.camera()[200:280, 100:190]
    mask = np.zeros(img.shape, bool)
    if where == "middle":
        mask[20:50, 30:70] = True
    elif where == "corner":
        mask[:12, :9] = True
    elif where == "border":
        mask[30:60, -5:] = True
        mask[-1, :] = True
    else:
        mask = None
    hists = T.lbp_histogram(img, mask, radii=(1, 2, 3), as_dict=False)
    for r, h in zip((1, 2, 3), hists):
        ref = _lbp_by_hand(img, mask, r)
        assert h.shape == (8 * r + 2,)
        np.testing.assert_allclose(h, ref, rtol=0, atol=1e-15)
        assert h.sum() == pytest.approx(1.0, abs=1e-12)


def test_lbp_histogram_names_methods_and_nan():
    img = smooth_gray(5, (40, 44), noise=15.0)
    mask = blob_mask(img.shape, 2)
    d = T.lbp_histogram(img, mask)
    assert list(d) == T.lbp_feature_names((1, 2, 3))
    assert list(d)[:2] == ["lbp_r1_u00", "lbp_r1_u01"] and list(d)[-1] == "lbp_r3_u25"
    assert len(d) == 10 + 18 + 26
    for method in ("nri_uniform", "default"):
        h = T.lbp_histogram(img, mask, radii=(1,), method=method, as_dict=False)[0]
        np.testing.assert_allclose(h, _lbp_by_hand(img, mask, 1, method), atol=1e-15)
    empty = T.lbp_histogram(img, np.zeros(img.shape, bool))
    assert all(np.isnan(v) for v in empty.values())
    # floats in [0, 1] follow leukfeat's uint8 convention
    f = img / 255.0
    assert T.lbp_histogram(f, mask) == d
    with pytest.raises(ValueError, match="method"):
        T.lbp_histogram(img, method="var")
    with pytest.raises(ValueError, match="radii"):
        T.lbp_histogram(img, radii=(0,))


LBP_SETTINGS = [(8, 1), (16, 2), (24, 3)]


def _lbp_images():
    """Random, smooth, flat and real images (codes depend on absolute positions)."""
    import skimage.data

    rng = np.random.default_rng(21)
    flat = np.full((40, 50), 128, np.uint8)
    flat[10:30, 20:35] = 130          # plateaus: many samples equal the centre
    return [
        ("random", rng.integers(0, 256, (61, 77), dtype=np.uint8)),
        ("few levels", rng.integers(0, 3, (45, 38), dtype=np.uint8)),
        ("smooth", smooth_gray(3, (70, 90), noise=4.0)),
        ("flat", flat),
        ("camera", skimage.data.camera()),
    ]


@pytest.mark.parametrize("points,radius", LBP_SETTINGS)
def test_lbp_kernel_codes_equal_skimage(points, radius):
    """Every code of the compiled kernel equals scikit-image's, pixel by pixel."""
    for name, img in _lbp_images():
        ours = T._lbp_code_image(img, radius, "uniform")
        ref = local_binary_pattern(img, points, radius, "uniform")
        mismatch = np.argwhere(ours != ref)
        assert mismatch.size == 0, (name, mismatch[:5])
        # crops: same codes as skimage on the same (cropped) array
        crop = img[3:, 5:]
        np.testing.assert_array_equal(T._lbp_code_image(crop, radius),
                                      local_binary_pattern(crop, points, radius, "uniform"))


def test_lbp_kernel_codes_other_methods_and_dtypes():
    import skimage.data

    img = skimage.data.camera()[100:260, 50:270]
    for method, radii in [("nri_uniform", (1, 2, 3)), ("default", (1, 2)), ("ror", (1, 2))]:
        for r in radii:
            np.testing.assert_array_equal(T._lbp_code_image(img, r, method),
                                          local_binary_pattern(img, 8 * r, r, method),
                                          err_msg=f"{method} r={r}")
    # wider integer types are used as they are (float64, like scikit-image)
    rng = np.random.default_rng(4)
    for arr in (rng.integers(0, 4000, (40, 52)).astype(np.uint16),
                rng.integers(-300, 300, (33, 47)).astype(np.int32)):
        for r in (1, 2, 3):
            np.testing.assert_array_equal(T._lbp_code_image(arr, r),
                                          local_binary_pattern(arr, 8 * r, r, "uniform"))


@pytest.mark.parametrize("points,radius", LBP_SETTINGS)
def test_lbp_histogram_masked_crops_equal_skimage(points, radius):
    """Histograms inside masks (cells near borders, thin, scattered) equal
    scikit-image's codes of the whole image counted inside the mask."""
    import skimage.data

    cam = skimage.data.camera()
    crops = [cam[100:324, 150:374], cam[:224, -224:], smooth_gray(8, (224, 224), noise=6.0)]
    rng = np.random.default_rng(radius)
    for img in crops:
        ref_codes = local_binary_pattern(img, points, radius, "uniform")
        masks = [blob_mask(img.shape, s) for s in range(3)]
        masks.append(rng.random(img.shape) < 0.05)          # scattered pixels
        thin = np.zeros(img.shape, bool)
        thin[:, -1] = True                                   # a border column
        masks.append(thin)
        for mask in masks:
            h = T.lbp_histogram(img, mask, radii=(radius,), as_dict=False)[0]
            ref = np.bincount(ref_codes[mask].astype(np.int64), minlength=points + 2)
            np.testing.assert_array_equal(np.rint(h * mask.sum()).astype(np.int64), ref)
            np.testing.assert_allclose(h, ref / mask.sum(), rtol=0, atol=1e-15)


def test_lbp_many_points_falls_back_to_skimage():
    """P = 8 r above the kernel's 64-bit patterns goes through scikit-image."""
    img = smooth_gray(9, (30, 34), noise=20.0)
    mask = blob_mask(img.shape, 1)
    h = T.lbp_histogram(img, mask, radii=(8,), as_dict=False)[0]
    np.testing.assert_allclose(h, _lbp_by_hand(img, mask, 8), rtol=0, atol=1e-15)


@pytest.mark.shared_data
def test_lbp_taleghani_equal_skimage():
    for name, gray in taleghani_gray(2):
        g1 = np.maximum(gray, 1)
        thr, _ = cv2.threshold(g1, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        mask = g1 < thr
        for r in (1, 2, 3):
            np.testing.assert_array_equal(T._lbp_code_image(gray, r),
                                          local_binary_pattern(gray, 8 * r, r, "uniform"),
                                          err_msg=name)
        hists = T.lbp_histogram(gray, mask, as_dict=False)
        for r, h in zip((1, 2, 3), hists):
            np.testing.assert_allclose(h, _lbp_by_hand(gray, mask, r), rtol=0, atol=1e-15)


# --------------------------------------------------------------------------- #
# compiled kernels: laziness, state, threads
# --------------------------------------------------------------------------- #

def test_import_does_not_import_numba():
    import subprocess
    import sys

    code = ("import sys, leukfeat, leukfeat.extract, leukfeat.extract.texture; "
            "print('numba' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def test_warm_kernels_runs():
    from leukfeat._numba import warm_kernels
    warm_kernels()
    assert not T._count_table().any()


def test_count_table_is_clean_between_calls():
    """The per-thread count table is cleared by the kernel after every call."""
    rng = np.random.default_rng(12)
    a = rng.integers(0, 256, (50, 60), dtype=np.uint8)
    b = smooth_gray(2, (70, 40), noise=3.0)
    mask = blob_mask(b.shape, 4)
    first = T.haralick(a)
    for img, m, d in [(b, None, 1), (b, mask, 2), (a[:5, :3], None, 4), (b, ~mask, 1),
                      (np.full((9, 9), 200, np.uint8), None, 1)]:
        T.haralick(img, distance=d, mask=m, return_14=True)
    np.testing.assert_array_equal(T.haralick(a), first)
    assert not T._count_table().any()


def test_threads_give_the_same_results():
    from concurrent.futures import ThreadPoolExecutor

    imgs = [smooth_gray(s, (120, 150), noise=5.0) for s in range(6)]
    masks = [blob_mask(im.shape, s) if s % 2 else None for s, im in enumerate(imgs)]
    serial = [T.haralick(im, mask=m) for im, m in zip(imgs, masks)]
    serial_lbp = [T.lbp_histogram(im, m, as_dict=False) for im, m in zip(imgs, masks)]
    with ThreadPoolExecutor(4) as ex:
        par = list(ex.map(lambda im_m: T.haralick(im_m[0], mask=im_m[1]), zip(imgs, masks)))
        par_lbp = list(ex.map(lambda im_m: T.lbp_histogram(im_m[0], im_m[1], as_dict=False),
                              zip(imgs, masks)))
    for a, b in zip(serial, par):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(serial_lbp, par_lbp):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)


@needs_mahotas
@pytest.mark.parametrize("distance", [4, 5, 9])
def test_haralick_larger_distances_match_mahotas(distance):
    """Distances without a specialised kernel (and wider than some masks)."""
    img = smooth_gray(distance, (83, 97), noise=9.0)
    assert_matches(T.haralick(img, distance=distance),
                   mahotas.features.haralick(img, distance=distance))
    img1 = np.maximum(img, 1)
    mask = blob_mask(img.shape, distance)
    assert_matches(T.haralick(img1, distance=distance, mask=mask),
                   mahotas_masked(img1, mask, distance))


@needs_mahotas
def test_haralick_large_image_and_large_counts_match_mahotas():
    """450x450 images (counts above the x log x lookup table), masked too."""
    import skimage.data

    cam = cv2.resize(skimage.data.camera(), (450, 450), interpolation=cv2.INTER_AREA)
    flat = np.full((450, 450), 90, np.uint8)
    flat[100:300, 50:400] = 91
    for img in (cam, flat):
        assert_matches(T.haralick(img), mahotas.features.haralick(img))
    img1 = np.maximum(cam, 1)
    mask = img1 < 120
    assert_matches(T.haralick(img1, mask=mask), mahotas_masked(img1, mask))


# --------------------------------------------------------------------------- #
# texture_features
# --------------------------------------------------------------------------- #

@needs_mahotas
def test_texture_features_names_and_values():
    img = np.maximum(smooth_gray(6, (70, 80), noise=10.0), 1)
    mask = blob_mask(img.shape, 3)
    feats = T.texture_features(img, mask, distances=(1, 2))
    names = T.texture_feature_names(distances=(1, 2))
    assert list(feats) == names
    assert len(names) == 2 * 2 * 13 + 10 + 18 + 26
    assert all(isinstance(v, float) for v in feats.values())
    for d in (1, 2):
        ref = mahotas.features.haralick(np.where(mask, img, 0).astype(np.uint8),
                                        ignore_zeros=True, distance=d, return_mean_ptp=True)
        ours = [feats[f"glcm_{n}_d{d}_{s}"] for s in ("mean", "range")
                for n in T.HARALICK_NAMES[:13]]
        np.testing.assert_allclose(ours, ref, rtol=RTOL, atol=ATOL)
    lbp = T.lbp_histogram(img, mask)
    assert all(feats[k] == v for k, v in lbp.items())
    # include_mcc adds the 14th feature; no LBP when lbp_radii is empty
    f14 = T.texture_features(img, mask, lbp_radii=(), include_mcc=True)
    assert list(f14) == T.texture_feature_names(lbp_radii=(), include_mcc=True)
    assert "glcm_max_correlation_coefficient_d1_mean" in f14
    assert not any(k.startswith("lbp_") for k in f14)


def test_texture_features_compartment_only_renames():
    img = np.maximum(smooth_gray(7, (60, 60), noise=8.0), 1)
    mask = blob_mask(img.shape, 4)
    plain = T.texture_features(img, mask, distances=(1, 3))
    tagged = T.texture_features(img, mask, distances=(1, 3), compartment="nucleus")
    assert list(tagged) == T.texture_feature_names((1, 3), compartment="nucleus")
    assert list(tagged) == [k.replace("glcm_", "glcm_nucleus_").replace("lbp_", "lbp_nucleus_")
                            for k in plain]
    np.testing.assert_array_equal(list(tagged.values()), list(plain.values()))
    for bad in ("", "nu cleus", "1x", 3):
        with pytest.raises(ValueError, match="compartment"):
            T.texture_feature_names(compartment=bad)


def test_texture_features_degenerate_inputs():
    img = smooth_gray(1, (30, 30))
    names = T.texture_feature_names()
    empty = T.texture_features(img, np.zeros(img.shape, bool))
    assert list(empty) == names and all(np.isnan(v) for v in empty.values())
    const = T.texture_features(np.full((20, 20), 90, np.uint8))
    assert np.isnan(const["glcm_correlation_d1_mean"])
    assert const["glcm_asm_d1_mean"] == 1.0 and const["glcm_asm_d1_range"] == 0.0
    assert not any(np.isinf(v) for v in const.values())
    # a thin mask: directions without pairs are left out of mean and range
    mask = np.zeros(img.shape, bool)
    mask[10, 2:20] = True
    thin = T.texture_features(img, mask)
    row = T.haralick(img, mask=mask)[0]
    assert thin["glcm_contrast_d1_mean"] == pytest.approx(row[1])
    assert thin["glcm_contrast_d1_range"] == 0.0
    # float input uses the uint8 convention
    assert T.texture_features(img / 255.0) == T.texture_features(img)


@pytest.mark.parametrize("shape", [(1, 2), (1, 7), (5, 1)])
def test_tiny_images_of_any_dtype_are_converted_like_uint8(shape):
    """texture_features and lbp_histogram take 2-D images from 1x1 up; a
    1xN image that is not uint8 (uint16, float, bool) was converted by a
    helper asking for 2x2 pixels and raised ValueError (found by
    tests/test_properties.py). It now gets the values of its uint8
    conversion, like larger images."""
    rng = np.random.default_rng(3)
    u8 = rng.integers(0, 256, shape).astype(np.uint8)
    u8.flat[0] = 0
    u8.flat[-1] = 255                          # the full range: uint16 maps back exactly
    mask = np.ones(shape, bool)
    ref = T.texture_features(u8, mask)
    assert not np.isnan(ref["lbp_r1_u00"])
    lbp = T.lbp_histogram(u8)
    for other in (u8 / 255.0, u8.astype(np.uint16) * 257):
        assert T.texture_features(other, mask) == pytest.approx(ref, nan_ok=True)
        assert T.lbp_histogram(other) == pytest.approx(lbp, nan_ok=True)
    bits = u8 > 127
    assert T.texture_features(bits) == pytest.approx(
        T.texture_features(bits.astype(np.uint8) * 255), nan_ok=True)
    assert T.lbp_histogram(bits) == pytest.approx(
        T.lbp_histogram(bits.astype(np.uint8) * 255), nan_ok=True)
    # a constant wide-integer image maps to 0, as at any size; also 1x1
    for shp in (shape, (1, 1)):
        const = np.full(shp, 1000, np.uint16)
        assert T.texture_features(const) == pytest.approx(
            T.texture_features(np.zeros(shp, np.uint8)), nan_ok=True)
        assert T.lbp_histogram(np.full(shp, 1.0)) == pytest.approx(
            T.lbp_histogram(np.full(shp, 255, np.uint8)), nan_ok=True)


# --------------------------------------------------------------------------- #
# argument validation
# --------------------------------------------------------------------------- #

def test_validation_errors_name_the_argument():
    img = np.zeros((10, 10), np.uint8)
    with pytest.raises(ValueError, match="image"):
        T.haralick(img.astype(np.float64))
    with pytest.raises(ValueError, match="image"):
        T.haralick(np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(ValueError, match="image"):
        T.haralick(np.zeros(10, np.uint8))
    with pytest.raises(ValueError, match="image"):
        T.haralick(np.full((4, 4), -1, np.int16))
    with pytest.raises(ValueError, match="mask"):
        T.haralick(img, mask=np.ones((9, 10), bool))
    with pytest.raises(ValueError, match="distance"):
        T.haralick(img, distance=0)
    with pytest.raises(ValueError, match="levels"):
        T.haralick(img, levels=1)
    with pytest.raises(ValueError, match="levels"):
        T.haralick(img, levels=300)
    with pytest.raises(ValueError, match="quantization"):
        T.haralick(img, levels=8, quantization="log")
    with pytest.raises(ValueError, match="image"):
        T.haralick(np.full((4, 4), 300, np.uint16), levels=8)
    with pytest.raises(ValueError, match="image"):
        T.glcm(img.astype(np.float32))
    with pytest.raises(ValueError, match="mask"):
        T.glcm(img, mask=np.ones((10, 11), bool))
    with pytest.raises(ValueError, match="angles"):
        T.glcm(img, angles=(30,))
    with pytest.raises(ValueError, match="distances"):
        T.glcm(img, distances=(1, 0))
    with pytest.raises(ValueError, match="image"):
        T.lbp_histogram(np.zeros((5, 5, 3), np.uint8))
    with pytest.raises(ValueError, match="mask"):
        T.lbp_histogram(img, mask=np.ones((3, 3), bool))
    with pytest.raises(ValueError, match="gray"):
        T.texture_features(np.zeros((5, 5, 3), np.uint8))
    with pytest.raises(ValueError, match="mask"):
        T.texture_features(img, mask=np.ones((5, 5), bool))
    with pytest.raises(ValueError, match="distances"):
        T.texture_feature_names(distances=())
    # too many raw grey levels: quantise instead of building huge histograms
    wide = np.array([[0, 2**30], [5, 7]], np.int64)
    with pytest.raises(ValueError, match="image"):
        T.haralick(wide)
    with pytest.raises(ValueError, match="image"):
        T.glcm(wide, levels=None)
    assert T.haralick(wide, levels=8, quantization="minmax").shape == (4, 13)


def test_inputs_are_not_modified():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (30, 30), dtype=np.uint8)
    mask = rng.random(img.shape) < 0.5
    img0, mask0 = img.copy(), mask.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        T.haralick(img, mask=mask, return_14=True, levels=32)
        T.glcm(img, mask=mask)
        T.texture_features(img, mask)
    np.testing.assert_array_equal(img, img0)
    np.testing.assert_array_equal(mask, mask0)
