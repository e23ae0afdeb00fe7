"""Bit depth (issue #32): reading 16-bit images with their stored values
(``read_image(..., dtype="native")``) and converting them to 8 bits by a range
that is the same for every file (``scale="dtype"`` or a fixed ``(lo, hi)``),
in :func:`leukfeat.io.read_image` and in the array conversion the features
use (:func:`leukfeat._validation.as_uint8_rgb`). The default (per-image
min..max) stays as it was."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

import leukfeat.io as lio
from leukfeat._validation import as_uint8_rgb
from leukfeat.io import ImageReadError, read_image

tifffile = pytest.importorskip("tifffile")


def _owned(image, shape, dtype):
    assert image.shape == shape
    assert image.dtype == dtype
    assert image.flags.c_contiguous and image.flags.writeable and image.base is None


def _by_dtype(values):
    """``scale="dtype"`` of 16-bit values, computed here: v * 255 / 65535."""
    return np.rint(np.asarray(values, np.float64) * 255.0 / 65535.0).astype(np.uint8)


def _random16(shape, seed=0):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 65536, size=shape, dtype=np.uint16)
    image.flat[:2] = (0, 65535)          # both ends of the range
    return image


# --------------------------------------------------------------------------
# dtype="native": the stored values
# --------------------------------------------------------------------------

def test_native_tiff_round_trip_grey(tmp_path):
    grey = _random16((19, 23))
    path = tmp_path / "grey16.tif"
    tifffile.imwrite(path, grey)
    stored = tifffile.imread(path)
    np.testing.assert_array_equal(stored, grey)
    image = read_image(path, dtype="native")
    _owned(image, grey.shape + (3,), np.uint16)
    for c in range(3):                                  # grey as three equal channels
        np.testing.assert_array_equal(image[..., c], stored)


def test_native_tiff_round_trip_rgb_and_rgba(tmp_path):
    rgb = _random16((11, 13, 3), seed=1)
    path = tmp_path / "rgb16.tif"
    tifffile.imwrite(path, rgb, photometric="rgb")
    image = read_image(path, dtype="native")
    _owned(image, rgb.shape, np.uint16)
    np.testing.assert_array_equal(image, tifffile.imread(path))   # RGB order kept
    np.testing.assert_array_equal(image, rgb)

    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 7, np.uint16)])
    path = tmp_path / "rgba16.tif"
    tifffile.imwrite(path, rgba, photometric="rgb", extrasamples=["unassalpha"])
    image = read_image(path, dtype="native")
    _owned(image, rgb.shape, np.uint16)
    np.testing.assert_array_equal(image, tifffile.imread(path)[..., :3])   # alpha dropped


def test_native_png_round_trip(tmp_path):
    grey = _random16((17, 21), seed=2)
    path = tmp_path / "grey16.png"
    assert cv2.imwrite(str(path), grey)
    stored = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert stored.dtype == np.uint16
    image = read_image(path, dtype="native")
    _owned(image, grey.shape + (3,), np.uint16)
    np.testing.assert_array_equal(image[..., 1], stored)
    np.testing.assert_array_equal(image[..., 1], grey)

    rgb = _random16((9, 10, 3), seed=3)
    path = tmp_path / "rgb16.png"
    assert cv2.imwrite(str(path), rgb[..., ::-1].copy())       # OpenCV writes BGR
    stored = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    image = read_image(path, dtype="native")
    _owned(image, rgb.shape, np.uint16)
    np.testing.assert_array_equal(image, stored[..., ::-1])    # RGB order
    np.testing.assert_array_equal(image, rgb)


def test_native_png_through_pillow(tmp_path, monkeypatch):
    """The Pillow fallback (OpenCV made to fail) keeps the 16-bit values too."""
    grey = _random16((8, 12), seed=4)
    path = tmp_path / "grey16.png"
    assert cv2.imwrite(str(path), grey)
    monkeypatch.setattr(lio.cv2, "imdecode", lambda buf, flags: None)
    image = read_image(path, dtype="native")
    _owned(image, grey.shape + (3,), np.uint16)
    np.testing.assert_array_equal(image[..., 0], grey)
    np.testing.assert_array_equal(read_image(path, scale="dtype")[..., 0], _by_dtype(grey))


def test_native_png_through_an_older_pillow(tmp_path, monkeypatch):
    """Older Pillow versions open a 16-bit grey PNG as 32-bit mode "I" (the
    mode table is patched here to do the same): the stored uint16 comes back,
    so scale="dtype" divides by 65535, not by 2**31 - 1."""
    from PIL import PngImagePlugin

    if (16, 0) not in getattr(PngImagePlugin, "_MODES", {}):
        pytest.skip("Pillow's PNG mode table is not where this test patches it")
    grey = _random16((8, 12), seed=7)
    path = tmp_path / "grey16.png"
    assert cv2.imwrite(str(path), grey)
    monkeypatch.setitem(PngImagePlugin._MODES, (16, 0), ("I", "I;16B"))
    monkeypatch.setattr(lio.cv2, "imdecode", lambda buf, flags: None)
    image = read_image(path, dtype="native")
    _owned(image, grey.shape + (3,), np.uint16)
    np.testing.assert_array_equal(image[..., 0], grey)
    np.testing.assert_array_equal(read_image(path, scale="dtype")[..., 0], _by_dtype(grey))


def test_native_float_tiff_keeps_values(tmp_path):
    values = np.array([[-1.5, 0.25], [2.0, 4000.0]], np.float32)
    path = tmp_path / "float.tif"
    tifffile.imwrite(path, values)
    image = read_image(path, dtype="native")
    _owned(image, values.shape + (3,), np.float32)
    np.testing.assert_array_equal(image[..., 2], values)


@pytest.mark.parametrize("ext", ["png", "jpg", "tif"])
def test_native_of_an_eight_bit_file_is_the_default(tmp_path, ext):
    rng = np.random.default_rng(5)
    rgb = rng.integers(0, 256, size=(16, 20, 3), dtype=np.uint8)
    path = tmp_path / f"rgb8.{ext}"
    assert cv2.imwrite(str(path), rgb[..., ::-1].copy())
    image = read_image(path, dtype="native")
    _owned(image, rgb.shape, np.uint8)
    np.testing.assert_array_equal(image, read_image(path))


# --------------------------------------------------------------------------
# scale="dtype": the same intensity gives the same 8-bit value in every file
# --------------------------------------------------------------------------

def _two_ranges(tmp_path, ext):
    """Two 16-bit files that share the intensity 2000 (column 1) but have
    different ranges (1000..3000 and 2000..60000)."""
    dim = np.array([[1000, 2000, 3000]] * 2, np.uint16)
    bright = np.array([[60000, 2000, 2000]] * 2, np.uint16)
    files = []
    for name, values in (("dim", dim), ("bright", bright)):
        path = tmp_path / f"{name}.{ext}"
        if ext == "png":
            assert cv2.imwrite(str(path), values)
        else:
            tifffile.imwrite(path, values)
        files.append((path, values))
    return files


@pytest.mark.parametrize("ext", ["png", "tif"])
def test_dtype_scale_is_comparable_across_files(tmp_path, ext):
    (dim_path, dim), (bright_path, bright) = _two_ranges(tmp_path, ext)
    a = read_image(dim_path, scale="dtype")
    b = read_image(bright_path, scale="dtype")
    _owned(a, dim.shape + (3,), np.uint8)
    np.testing.assert_array_equal(a[..., 0], _by_dtype(dim))
    np.testing.assert_array_equal(b[..., 0], _by_dtype(bright))
    assert a[0, 1, 0] == b[0, 1, 0] == _by_dtype(2000) == 8
    # the per-image default does not compare: 2000 is the middle of one file
    # and the minimum of the other
    assert read_image(dim_path)[0, 1, 0] == 128
    assert read_image(bright_path)[0, 1, 0] == 0


def test_dtype_scale_of_every_sixteen_bit_value(tmp_path):
    """All 65536 values: read_image(scale="dtype") is v * 255 / 65535 rounded,
    as_uint8_rgb(scale="dtype") of the native array and the documented float
    route (native / 65535) give the same."""
    every = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    path = tmp_path / "every.png"
    assert cv2.imwrite(str(path), every)
    image = read_image(path, scale="dtype")
    np.testing.assert_array_equal(image[..., 0], _by_dtype(every))
    native = read_image(path, dtype="native")
    np.testing.assert_array_equal(as_uint8_rgb(native, scale="dtype"), image)
    np.testing.assert_array_equal(as_uint8_rgb(native / 65535.0), image)


@pytest.mark.parametrize("ext", ["png", "jpg"])
def test_dtype_scale_leaves_eight_bit_files_alone(tmp_path, ext):
    rng = np.random.default_rng(6)
    rgb = rng.integers(0, 256, size=(12, 14, 3), dtype=np.uint8)
    path = tmp_path / f"rgb8.{ext}"
    assert cv2.imwrite(str(path), rgb[..., ::-1].copy())
    np.testing.assert_array_equal(read_image(path, scale="dtype"), read_image(path))


def test_dtype_scale_of_float_files(tmp_path):
    inside = np.array([[0.0, 0.25], [0.5, 1.0]], np.float32)
    path = tmp_path / "unit.tif"
    tifffile.imwrite(path, inside)
    np.testing.assert_array_equal(read_image(path, scale="dtype")[..., 0],
                                  [[0, 64], [128, 255]])   # 63.75 -> 64, 127.5 -> 128
    outside = np.array([[0.0, 0.5], [2.0, 4000.0]], np.float32)
    path = tmp_path / "counts.tif"
    tifffile.imwrite(path, outside)
    with pytest.raises(ImageReadError, match=r"scale='dtype'.*\[0, 1\].*scale=\(lo, hi\)"):
        read_image(path, scale="dtype")


# --------------------------------------------------------------------------
# scale=(lo, hi): a fixed range, clipped
# --------------------------------------------------------------------------

@pytest.mark.parametrize("ext", ["png", "tif"])
def test_fixed_range_maps_and_clips(tmp_path, ext):
    values = np.array([[0, 99, 100, 1100, 2100, 2101, 65535]] * 2, np.uint16)
    path = tmp_path / f"fixed.{ext}"
    assert cv2.imwrite(str(path), values)
    image = read_image(path, scale=(100, 2100))
    _owned(image, values.shape + (3,), np.uint8)
    # below lo -> 0, lo -> 0, middle -> 127.5 -> 128, hi -> 255, above -> 255
    np.testing.assert_array_equal(image[0, :, 0], [0, 0, 0, 128, 255, 255, 255])
    # the same range gives the same value in a file of another range
    other = np.array([[1100, 1100], [60000, 5]], np.uint16)
    path2 = tmp_path / f"other.{ext}"
    assert cv2.imwrite(str(path2), other)
    np.testing.assert_array_equal(read_image(path2, scale=[100, 2100])[..., 0],
                                  [[128, 128], [255, 0]])


def test_fixed_range_also_maps_eight_bit_files(tmp_path):
    grey = np.array([[0, 10, 30, 50, 200]] * 2, np.uint8)
    path = tmp_path / "grey8.png"
    assert cv2.imwrite(str(path), grey)
    np.testing.assert_array_equal(read_image(path, scale=(10, 50))[0, :, 0],
                                  [0, 0, 128, 255, 255])
    assert (read_image(path, scale=(0, 255)) == read_image(path)).all()
    # the JPEG fast path (decoded straight to RGB) takes the range too
    rgb = np.full((16, 16, 3), 120, np.uint8)
    jpg = tmp_path / "flat.jpg"
    assert cv2.imwrite(str(jpg), rgb)
    stored = read_image(jpg)
    expected = np.clip(np.rint((stored.astype(float) - 100) * 255 / 40), 0, 255)
    np.testing.assert_array_equal(read_image(jpg, scale=(100, 140)), expected)


def test_fixed_range_of_a_float_file(tmp_path):
    values = np.array([[np.nan, -5.0], [2000.0, 5000.0]], np.float32)
    path = tmp_path / "counts.tif"
    tifffile.imwrite(path, values)
    np.testing.assert_array_equal(read_image(path, scale=(0, 4000))[..., 0],
                                  [[0, 0], [128, 255]])   # NaN -> 0, 127.5 -> 128


# --------------------------------------------------------------------------
# The default is unchanged
# --------------------------------------------------------------------------

@pytest.mark.parametrize("ext", ["png", "tif"])
def test_default_is_the_per_image_rescale(tmp_path, ext):
    (dim_path, _), (bright_path, _) = _two_ranges(tmp_path, ext)
    for path in (dim_path, bright_path):
        default = read_image(path)
        np.testing.assert_array_equal(read_image(path, dtype="uint8", scale="image"), default)
    np.testing.assert_array_equal(read_image(dim_path)[0, :, 0], [0, 128, 255])
    # rint((2000 - 2000) * 255 / 58000) = 0, rint(58000 * 255 / 58000) = 255
    np.testing.assert_array_equal(read_image(bright_path)[0, :, 0], [255, 0, 0])


def test_as_uint8_rgb_default_unchanged():
    small = np.array([[0, 100], [200, 255]], np.int64)                  # kept as is
    np.testing.assert_array_equal(as_uint8_rgb(small)[..., 0], small)
    deep = np.array([[1000, 1500], [2000, 3000]], np.uint16)           # per-image min..max
    np.testing.assert_array_equal(as_uint8_rgb(deep)[..., 0], [[0, 64], [128, 255]])
    unit = np.array([[0.0, 0.5], [0.25, 1.0]])
    np.testing.assert_array_equal(as_uint8_rgb(unit)[..., 0], [[0, 128], [64, 255]])
    np.testing.assert_array_equal(as_uint8_rgb(deep, scale="image"), as_uint8_rgb(deep))


# --------------------------------------------------------------------------
# as_uint8_rgb(scale=...): the conversion the features use
# --------------------------------------------------------------------------

def test_as_uint8_rgb_dtype_scale_is_comparable():
    dim = np.array([[1000, 2000], [3000, 3000]], np.uint16)
    bright = np.array([[2000, 60000], [2000, 2000]], np.uint16)
    a = as_uint8_rgb(dim, scale="dtype")
    b = as_uint8_rgb(bright, scale="dtype")
    assert a.shape == (2, 2, 3) and a.dtype == np.uint8 and a.flags.c_contiguous
    np.testing.assert_array_equal(a[..., 2], _by_dtype(dim))
    assert a[0, 1, 0] == b[0, 0, 0] == 8
    assert as_uint8_rgb(dim)[0, 1, 0] != as_uint8_rgb(bright)[0, 0, 0]
    rgb8 = np.arange(27, dtype=np.uint8).reshape(3, 3, 3)
    np.testing.assert_array_equal(as_uint8_rgb(rgb8, scale="dtype"), rgb8)
    np.testing.assert_array_equal(as_uint8_rgb(np.array([[True, False]] * 2), scale="dtype")
                                  [..., 0], [[255, 0]] * 2)
    # signed integers: 0..max of the dtype, negative values clip to 0
    signed = np.array([[-5, 0], [16384, 32767]], np.int16)
    np.testing.assert_array_equal(as_uint8_rgb(signed, scale="dtype")[..., 0],
                                  [[0, 0], [128, 255]])   # 16384 * 255 / 32767 = 127.5..


def test_as_uint8_rgb_fixed_range_and_float_refusal():
    deep = np.array([[50, 100], [1100, 9000]], np.uint16)
    np.testing.assert_array_equal(as_uint8_rgb(deep, scale=(100, 2100))[..., 1],
                                  [[0, 0], [128, 255]])
    counts = np.array([[0.0, 0.5], [2.0, 3.0]])
    np.testing.assert_array_equal(as_uint8_rgb(counts, scale=(0.0, 2.0))[..., 0],
                                  [[0, 64], [255, 255]])
    with pytest.raises(ValueError, match=r"^cell: scale='dtype' takes float values in \[0, 1\]"):
        as_uint8_rgb(counts, "cell", scale="dtype")


# --------------------------------------------------------------------------
# Bad arguments: ValueError naming the argument, before the file is opened
# --------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, name", [
    ({"dtype": "uint16"}, "dtype"),
    ({"dtype": np.uint8}, "dtype"),
    ({"dtype": None}, "dtype"),
    ({"scale": "minmax"}, "scale"),
    ({"scale": None}, "scale"),
    ({"scale": 255}, "scale"),
    ({"scale": (5, 5)}, "scale"),
    ({"scale": (10, 1)}, "scale"),
    ({"scale": (0,)}, "scale"),
    ({"scale": (0, 1, 2)}, "scale"),
    ({"scale": (0, np.inf)}, "scale"),
    ({"scale": (0, np.nan)}, "scale"),
    ({"scale": (False, True)}, "scale"),
    ({"scale": ("0", "1")}, "scale"),
    ({"dtype": "native", "scale": "dtype"}, "scale"),
    ({"dtype": "native", "scale": (0, 4095)}, "scale"),
])
def test_bad_arguments(tmp_path, kwargs, name):
    missing = tmp_path / "no_such_file.png"      # the arguments are checked first
    with pytest.raises(ValueError, match=rf"^{name}: ") as info:
        read_image(missing, **kwargs)
    assert not isinstance(info.value, ImageReadError)


@pytest.mark.parametrize("scale", ["minmax", None, (5, 5), (1, np.nan), [0]])
def test_as_uint8_rgb_bad_scale(scale):
    with pytest.raises(ValueError, match=r"^scale: expected 'image', 'dtype' or a \(lo, hi\)"):
        as_uint8_rgb(np.zeros((4, 4), np.uint16), scale=scale)


def test_accepted_range_types(tmp_path):
    values = np.array([[0, 2048, 4095]] * 2, np.uint16)
    path = tmp_path / "twelve.png"
    assert cv2.imwrite(str(path), values)
    expected = read_image(path, scale=(0, 4095))
    np.testing.assert_array_equal(expected[0, :, 0], [0, 128, 255])
    for scale in ([0, 4095], (np.uint16(0), np.float32(4095)), np.array([0.0, 4095.0])):
        np.testing.assert_array_equal(read_image(path, scale=scale), expected)


def test_features_of_a_sixteen_bit_file_by_its_dtype_range(tmp_path):
    """The routes the features' docstring gives agree: a 16-bit file read with
    scale="dtype" and its native array divided by 65535 measure the same, and
    an 8-bit image stored as 16 bits (v * 257) measures as the 8-bit one."""
    from leukfeat.datasets import make_cells
    from leukfeat.extract import features

    rgb8 = make_cells(1, size=96, random_state=0).images[0]
    deep = rgb8.astype(np.uint16) * 257                 # exactly 8-bit values in 16 bits
    path = tmp_path / "cell16.tif"
    tifffile.imwrite(path, deep, photometric="rgb")
    by_dtype = read_image(path, scale="dtype")
    np.testing.assert_array_equal(by_dtype, rgb8)
    f_read = features(by_dtype, groups=("colour",))
    f_float = features(read_image(path, dtype="native") / 65535.0, groups=("colour",))
    assert list(f_read) == list(f_float)
    np.testing.assert_array_equal(list(f_read.values()), list(f_float.values()))
    np.testing.assert_array_equal(list(f_read.values()),
                                  list(features(rgb8, groups=("colour",)).values()))
