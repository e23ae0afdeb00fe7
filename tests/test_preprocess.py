"""Tests for leukfeat.preprocess."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from skimage.color import rgb2lab

from leukfeat import preprocess as P


# --------------------------------------------------------------------------- #
# fixtures / helpers
# --------------------------------------------------------------------------- #

def smooth_rgb(seed, shape=(96, 128), lo=40, hi=220):
    """A random but spatially smooth colour image (uint8 RGB)."""
    rng = np.random.default_rng(seed)
    small = rng.random((6, 8, 3)).astype(np.float32)
    big = cv2.resize(small, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)
    big = (big - big.min()) / (big.max() - big.min())
    return np.rint(lo + big * (hi - lo)).astype(np.uint8)


# Wright/Giemsa-like stain OD vectors (purple nuclear stain, pink eosin-like stain).
STAINS = np.array([[0.65, 0.07], [0.70, 0.99], [0.29, 0.11]])
STAINS = STAINS / np.linalg.norm(STAINS, axis=0)


def stain_image(seed, shape=(96, 96), stains=STAINS, Io=240, background=0.2):
    """Synthetic two-stain image with random concentrations and some background."""
    rng = np.random.default_rng(seed)
    n = shape[0] * shape[1]
    conc = rng.uniform(0.05, 1.4, (2, n))
    conc[:, rng.random(n) < background] = 0.0  # blank background pixels
    od = stains @ conc
    rgb = np.clip(np.rint(Io * np.exp(-od) - 1.0), 0, 255).astype(np.uint8)
    return rgb.T.reshape(shape + (3,))


def lab_stats(rgb, mask=None):
    lab = rgb2lab(rgb).reshape(-1, 3)
    if mask is not None:
        lab = lab[mask.ravel()]
    return lab.mean(axis=0), lab.std(axis=0)


def hue_degrees(rgb):
    hsv = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2HSV)
    return hsv[..., 0], hsv[..., 1]


# --------------------------------------------------------------------------- #
# to_gray
# --------------------------------------------------------------------------- #

def test_to_gray_matches_bt601_formula():
    img = np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    ref = img.astype(float) @ np.array([0.299, 0.587, 0.114])
    out = P.to_gray(img)
    assert out.shape == (37, 53) and out.dtype == np.uint8
    assert np.abs(out.astype(float) - ref).max() <= 1.0


def test_to_gray_2d_returns_uint8_copy_and_accepts_float():
    gray = np.arange(20, dtype=np.uint8).reshape(4, 5)
    out = P.to_gray(gray)
    assert out is not gray and np.array_equal(out, gray)
    out[0, 0] = 99
    assert gray[0, 0] == 0
    flt = np.full((3, 3, 3), 0.5)
    assert np.all(P.to_gray(flt) == 128)


# --------------------------------------------------------------------------- #
# equalize / clahe
# --------------------------------------------------------------------------- #

def low_contrast_ramp(shape=(64, 64), lo=100, n_levels=32):
    cols = lo + (np.arange(shape[1]) * n_levels // shape[1])
    return np.tile(cols.astype(np.uint8), (shape[0], 1))


def test_equalize_gray_equals_cv2():
    img = np.random.default_rng(1).normal(120, 10, (50, 70)).clip(0, 255).astype(np.uint8)
    assert np.array_equal(P.equalize(img), cv2.equalizeHist(img))


def test_equalize_gray_flattens_cumulative_histogram():
    ramp = low_contrast_ramp()
    out = P.equalize(ramp)
    assert out.min() == 0 and out.max() == 255
    cdf = np.searchsorted(np.sort(out.ravel()), np.arange(256), side="right") / out.size
    ideal = (np.arange(256) + 1) / 256
    assert np.abs(cdf - ideal).max() < 1 / 32 + 0.01


def colourful_low_contrast(seed=3):
    """A smooth image with varied hues and a narrow lightness range."""
    rng = np.random.default_rng(seed)
    hue = cv2.resize(rng.random((4, 4)).astype(np.float32), (80, 60)) * 300
    hsv = np.stack([hue, np.full_like(hue, 0.6),
                    0.45 + 0.15 * cv2.resize(rng.random((4, 4)).astype(np.float32), (80, 60))],
                   axis=-1)
    return np.rint(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB) * 255).astype(np.uint8)


def circular_diff_deg(a, b):
    d = np.abs(a - b) % 360
    return np.minimum(d, 360 - d)


def test_equalize_rgb_preserves_hue_and_increases_contrast():
    img = colourful_low_contrast()
    out = P.equalize(img)
    assert out.shape == img.shape and out.dtype == np.uint8
    h0, s0 = hue_degrees(img)
    h1, s1 = hue_degrees(out)
    sel = (s0 > 0.3) & (s1 > 0.3)
    assert sel.mean() > 0.5
    assert circular_diff_deg(h0, h1)[sel].mean() < 5.0
    assert P.to_gray(out).std() > 1.5 * P.to_gray(img).std()


def test_clahe_gray_and_rgb_increase_contrast():
    ramp = low_contrast_ramp((64, 96))
    out = P.clahe(ramp)
    assert out.shape == ramp.shape and out.dtype == np.uint8
    assert out.std() > 1.2 * ramp.std()
    img = colourful_low_contrast()
    out_rgb = P.clahe(img, clip_limit=3.0, tile_grid_size=(2, 4))
    assert out_rgb.shape == img.shape and out_rgb.dtype == np.uint8
    assert P.to_gray(out_rgb).std() > P.to_gray(img).std()


@pytest.mark.parametrize("kwargs, name", [
    ({"clip_limit": 0}, "clip_limit"),
    ({"clip_limit": float("nan")}, "clip_limit"),
    ({"tile_grid_size": (0, 8)}, "tile_grid_size"),
    ({"tile_grid_size": (8, 8, 8)}, "tile_grid_size"),
])
def test_clahe_bad_parameters(kwargs, name):
    with pytest.raises(ValueError, match=name):
        P.clahe(low_contrast_ramp(), **kwargs)


# --------------------------------------------------------------------------- #
# resize / rescale / rescale_intensity
# --------------------------------------------------------------------------- #

def test_resize_height_width_order():
    img = np.zeros((100, 50, 3), np.uint8)
    img[:50] = 255  # top half white
    out = P.resize(img, (30, 70))
    assert out.shape == (30, 70, 3) and out.dtype == np.uint8
    assert np.all(out[:14] == 255) and np.all(out[16:] == 0)
    assert P.resize(img[..., 0], (30, 70)).shape == (30, 70)
    assert P.resize(img, 40).shape == (40, 40, 3)


@pytest.mark.parametrize("interpolation", ["area", "linear", "nearest", "cubic"])
def test_resize_interpolations_shape_and_constant(interpolation):
    img = np.full((21, 13, 3), 77, np.uint8)
    out = P.resize(img, (9, 31), interpolation=interpolation)
    assert out.shape == (9, 31, 3) and np.all(out == 77)


def test_resize_keep_aspect_pads_centred():
    img = np.full((100, 50, 3), 200, np.uint8)
    out = P.resize(img, (80, 80), keep_aspect=True, pad_value=(7, 8, 9))
    assert out.shape == (80, 80, 3)
    assert np.all(out[:, 20:60] == 200)
    for side in (out[:, :20], out[:, 60:]):
        assert np.all(side == np.array([7, 8, 9], np.uint8))
    gray = np.full((50, 100), 1.0)
    out = P.resize(gray, (80, 80), keep_aspect=True, pad_value=0.25)
    assert out.dtype == np.float64
    # (OpenCV's area weights are float32, so the content is 1 only to ~1e-7)
    np.testing.assert_allclose(out[20:60], 1.0, atol=1e-6)
    assert np.all(out[:20] == 0.25) and np.all(out[60:] == 0.25)


def test_resize_nearest_keeps_label_values_and_dtype():
    rng = np.random.default_rng(4)
    labels = rng.choice(np.array([0, 3, 7, 100000], np.int64), size=(33, 17))
    out = P.resize(labels, (50, 41), interpolation="nearest")
    assert out.dtype == np.int64 and out.shape == (50, 41)
    assert set(np.unique(out)) <= {0, 3, 7, 100000}
    mask = labels > 3
    out_mask = P.resize(mask, (20, 10), interpolation="nearest")
    assert out_mask.dtype == bool and out_mask.shape == (20, 10)
    # non-nearest interpolation of a bool mask also stays bool
    assert P.resize(mask, (20, 10), interpolation="linear").dtype == bool
    # exact 2x downsample by nearest picks a pixel of each block
    up = np.kron(np.arange(12).reshape(3, 4), np.ones((2, 2), np.int32)).astype(np.int32)
    assert np.array_equal(P.resize(up, (3, 4), interpolation="nearest"),
                          np.arange(12).reshape(3, 4))


def test_resize_bad_arguments():
    img = np.zeros((10, 10, 3), np.uint8)
    with pytest.raises(ValueError, match="size"):
        P.resize(img, (10, 0))
    with pytest.raises(ValueError, match="size"):
        P.resize(img, (10.5, 3))
    with pytest.raises(ValueError, match="interpolation"):
        P.resize(img, 5, interpolation="bilinear")
    with pytest.raises(ValueError, match="pad_value"):
        P.resize(img[..., 0], 5, keep_aspect=True, pad_value=(1, 2, 3))
    with pytest.raises(ValueError, match="pad_value"):
        P.resize(img, 5, keep_aspect=True, pad_value=300)


@settings(max_examples=30, deadline=None)
@given(h=st.integers(2, 40), w=st.integers(2, 40), oh=st.integers(1, 50),
       ow=st.integers(1, 50), keep=st.booleans(),
       interp=st.sampled_from(["area", "linear", "nearest", "cubic"]))
def test_resize_shape_property(h, w, oh, ow, keep, interp):
    img = np.zeros((h, w, 3), np.uint8)
    assert P.resize(img, (oh, ow), keep_aspect=keep, interpolation=interp).shape == (oh, ow, 3)


def test_rescale():
    img = np.zeros((10, 20, 3), np.uint8)
    assert P.rescale(img, 0.5).shape == (5, 10, 3)
    assert P.rescale(img, (2, 0.5)).shape == (20, 10, 3)
    assert P.rescale(img[..., 0] > 0, 1.5, interpolation="nearest").dtype == bool
    with pytest.raises(ValueError, match="scale"):
        P.rescale(img, -1)


def test_rescale_intensity():
    img = np.array([[10, 20], [30, 50]], np.uint8)
    out = P.rescale_intensity(img)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, [[0, 0.25], [0.5, 1.0]])
    rgb = np.random.default_rng(5).integers(30, 90, (8, 9, 3)).astype(np.int16)
    out = P.rescale_intensity(rgb)
    assert out.min() == 0.0 and out.max() == 1.0
    np.testing.assert_allclose(out, (rgb - rgb.min()) / (rgb.max() - rgb.min()))
    const = P.rescale_intensity(np.full((4, 4, 3), 9.5))
    assert const.dtype == np.float64 and np.all(const == 0)


# --------------------------------------------------------------------------- #
# Reinhard
# --------------------------------------------------------------------------- #

def test_reinhard_matches_target_statistics():
    src = smooth_rgb(10, lo=60, hi=200)
    ref = smooth_rgb(11, lo=90, hi=230)
    ref = (ref * np.array([1.0, 0.75, 0.95])).astype(np.uint8)  # pinkish reference
    target = P.reinhard_stats(ref)
    out = P.reinhard(src, target)
    assert out.shape == src.shape and out.dtype == np.uint8
    mean, std = lab_stats(out)
    assert np.abs(mean - target.mean).max() < 1.5
    np.testing.assert_allclose(std, target.std, rtol=0.10)
    # target statistics agree with skimage's Lab
    ref_mean, ref_std = lab_stats(ref)
    np.testing.assert_allclose(target.mean, ref_mean, atol=0.5)
    np.testing.assert_allclose(target.std, ref_std, atol=0.5)


def test_reinhard_to_own_statistics_is_identity():
    img = smooth_rgb(12)
    out = P.reinhard(img, P.reinhard_stats(img))
    assert np.abs(out.astype(int) - img).max() <= 2


def test_reinhard_target_forms_agree():
    src, ref = smooth_rgb(13), smooth_rgb(14)
    t = P.reinhard_stats(ref)
    expected = P.reinhard(src, t)
    assert np.array_equal(P.reinhard(src, (t.mean, t.std)), expected)
    assert np.array_equal(P.reinhard(src, ref), expected)
    assert np.array_equal(P.reinhard(src, [ref]), expected)


def test_reinhard_stats_pools_several_images():
    a, b = smooth_rgb(15, (40, 50)), smooth_rgb(16, (40, 50))
    pooled = P.reinhard_stats([a, b])
    joint = P.reinhard_stats(np.concatenate([a, b], axis=0))
    np.testing.assert_allclose(pooled.mean, joint.mean, atol=1e-4)
    np.testing.assert_allclose(pooled.std, joint.std, atol=1e-4)
    stacked = P.reinhard_stats(np.stack([a, b]))
    np.testing.assert_allclose(stacked.mean, joint.mean, atol=1e-4)


def test_reinhard_mask_uses_foreground_statistics():
    img = smooth_rgb(17, lo=60, hi=180)
    fg = np.zeros(img.shape[:2], bool)
    fg[20:70, 30:100] = True
    img[~fg] = 250  # bright background
    target = P.ReinhardTarget(mean=[55.0, 20.0, -10.0], std=[8.0, 6.0, 5.0])
    out = P.reinhard(img, target, mask=fg)
    mean, std = lab_stats(out, fg)
    assert np.abs(mean - target.mean).max() < 1.5
    np.testing.assert_allclose(std, target.std, rtol=0.10)
    masked = P.reinhard_stats(img, masks=fg)
    np.testing.assert_allclose(masked.mean, lab_stats(img, fg)[0], atol=0.5)
    with pytest.raises(ValueError, match="mask"):
        P.reinhard(img, target, mask=np.zeros_like(fg))
    with pytest.raises(ValueError, match="mask"):
        P.reinhard(img, target, mask=fg[:10])


def test_reinhard_target_is_frozen_and_validated():
    t = P.ReinhardTarget([50, 0, 0], [10, 5, 5])
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.mean = np.zeros(3)
    with pytest.raises(ValueError):
        t.mean[0] = 1.0
    with pytest.raises(ValueError, match="std"):
        P.ReinhardTarget([50, 0, 0], [10, 5])
    with pytest.raises(ValueError, match="target"):
        P.reinhard(smooth_rgb(1), "pink")


# --------------------------------------------------------------------------- #
# Macenko
# --------------------------------------------------------------------------- #

def cosines(a, b):
    return np.sum(a * b, axis=0) / (np.linalg.norm(a, axis=0) * np.linalg.norm(b, axis=0))


def test_macenko_stains_recovers_known_vectors():
    img = stain_image(20)
    t = P.macenko_stains(img)
    assert t.stain_matrix.shape == (3, 2) and t.max_concentrations.shape == (2,)
    np.testing.assert_allclose(np.linalg.norm(t.stain_matrix, axis=0), 1.0)
    assert np.all(cosines(t.stain_matrix, STAINS) > 0.99)
    assert t.stain_matrix[0, 0] > t.stain_matrix[0, 1]  # larger red OD first
    np.testing.assert_allclose(t.max_concentrations, 1.4, rtol=0.15)
    # ordering does not depend on which stain is listed first when building the image
    t2 = P.macenko_stains(stain_image(21, stains=STAINS[:, ::-1]))
    assert np.all(cosines(t2.stain_matrix, STAINS) > 0.99)
    # several images are pooled
    t3 = P.macenko_stains([stain_image(22, (40, 40)), stain_image(23, (30, 50))])
    assert np.all(cosines(t3.stain_matrix, STAINS) > 0.99)


def test_macenko_to_own_target_is_identity():
    img = stain_image(24)
    out = P.macenko(img, P.macenko_stains(img))
    assert out.shape == img.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - img).mean() < 1.0
    # a reference image as target gives the same result
    assert np.array_equal(P.macenko(img, img), out)


def test_macenko_default_target_is_reference_he():
    ref = P.MACENKO_REFERENCE
    np.testing.assert_allclose(ref.stain_matrix,
                               [[0.5626, 0.2159], [0.7201, 0.8012], [0.4062, 0.5581]])
    np.testing.assert_allclose(ref.max_concentrations, [1.9705, 1.0308])
    img = stain_image(25)
    out = P.macenko(img)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert not np.array_equal(out, img)
    # the normalised image carries the reference stains
    t = P.macenko_stains(out)
    assert np.all(cosines(t.stain_matrix, ref.stain_matrix) > 0.99)
    np.testing.assert_allclose(t.max_concentrations, ref.max_concentrations, rtol=0.1)


def test_macenko_transfers_between_stainings():
    other = np.array([[0.55, 0.20], [0.75, 0.85], [0.37, 0.48]])
    other /= np.linalg.norm(other, axis=0)
    src, ref = stain_image(26), stain_image(27, stains=other)
    out = P.macenko(src, P.macenko_stains(ref))
    assert np.all(cosines(P.macenko_stains(out).stain_matrix, other) > 0.99)


def test_macenko_blank_and_grey_images_unchanged():
    blank = np.full((32, 48, 3), 255, np.uint8)
    out = P.macenko(blank)
    assert out is not blank and np.array_equal(out, blank)
    grey = np.tile(np.linspace(20, 200, 48).astype(np.uint8), (32, 1))
    grey = np.stack([grey] * 3, axis=-1)
    assert np.array_equal(P.macenko(grey), grey)
    with pytest.raises(ValueError, match="images"):
        P.macenko_stains(blank)
    with pytest.raises(ValueError, match="target"):
        P.macenko(stain_image(1), blank)


def test_macenko_parameters_and_target_validated():
    img = stain_image(28, (20, 20))
    with pytest.raises(ValueError, match="Io"):
        P.macenko(img, Io=0)
    with pytest.raises(ValueError, match="alpha"):
        P.macenko_stains(img, alpha=60)
    with pytest.raises(ValueError, match="beta"):
        P.macenko(img, beta=-1)
    with pytest.raises(ValueError, match="max_concentrations"):
        P.MacenkoTarget(STAINS, [1.0, 0.0])
    t = P.macenko_stains(stain_image(29))
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.stain_matrix = STAINS
    assert np.array_equal(P.macenko(img, (t.stain_matrix, t.max_concentrations)),
                          P.macenko(img, t))


# --------------------------------------------------------------------------- #
# argument validation and purity (all functions)
# --------------------------------------------------------------------------- #

_TARGET_R = P.ReinhardTarget([60, 10, -5], [10, 5, 5])

IMAGE_FUNCS = [
    ("to_gray", lambda im: P.to_gray(im)),
    ("equalize", lambda im: P.equalize(im)),
    ("clahe", lambda im: P.clahe(im)),
    ("resize", lambda im: P.resize(im, (5, 7))),
    ("resize_keep", lambda im: P.resize(im, (5, 7), keep_aspect=True)),
    ("rescale", lambda im: P.rescale(im, 0.5)),
    ("rescale_intensity", lambda im: P.rescale_intensity(im)),
    ("reinhard", lambda im: P.reinhard(im, _TARGET_R)),
    ("macenko", lambda im: P.macenko(im)),
]

BAD_IMAGES = {
    "1d": np.zeros(10, np.uint8),
    "4d": np.zeros((2, 4, 4, 3), np.uint8),
    "nan": np.full((4, 4, 3), np.nan),
    "empty": np.zeros((0, 5, 3), np.uint8),
    "1x1": np.zeros((1, 1, 3), np.uint8),
    "2ch": np.zeros((4, 4, 2), np.uint8),
    "strings": np.array([["a", "b"], ["c", "d"]]),
}


@pytest.mark.parametrize("bad", list(BAD_IMAGES), ids=list(BAD_IMAGES))
@pytest.mark.parametrize("func", [f for _, f in IMAGE_FUNCS], ids=[n for n, _ in IMAGE_FUNCS])
def test_bad_images_raise_value_error_naming_image(func, bad):
    with pytest.raises(ValueError, match="image"):
        func(BAD_IMAGES[bad])


@pytest.mark.parametrize("func", [f for _, f in IMAGE_FUNCS], ids=[n for n, _ in IMAGE_FUNCS])
@pytest.mark.parametrize("kind", ["rgb", "gray", "float"])
def test_inputs_are_not_modified(func, kind):
    img = stain_image(30, (24, 32))
    if kind == "gray":
        img = img[..., 1].copy()
    elif kind == "float":
        img = img / 255.0
    before = img.copy()
    img.setflags(write=False)
    out = func(img)
    assert np.array_equal(img, before)
    assert not np.shares_memory(out, img)


def test_stats_functions_validate_images():
    with pytest.raises(ValueError, match="images"):
        P.reinhard_stats(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(ValueError, match=r"images\[1\]"):
        P.reinhard_stats([smooth_rgb(1), np.full((3, 3, 3), np.nan)])
    with pytest.raises(ValueError, match="images"):
        P.macenko_stains([])
