"""Tests for leukfeat.io."""

from __future__ import annotations

import inspect
import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

import leukfeat.io as lio
from leukfeat.io import (
    IMAGE_EXTENSIONS,
    ImageReadError,
    is_image_file,
    iter_images,
    list_images,
    read_image,
)

LOSSLESS = ["bmp", "tif", "png"]
ALL_FORMATS = LOSSLESS + ["jpg"]


def _rgb_pattern(h=24, w=32):
    """Distinct R, G, B content so channel order mistakes are visible."""
    y, x = np.mgrid[0:h, 0:w]
    r = (x * 255 // (w - 1)).astype(np.uint8)
    g = (y * 255 // (h - 1)).astype(np.uint8)
    b = np.full((h, w), 77, np.uint8)
    return np.dstack([r, g, b])


def _write_rgb(path: Path, rgb: np.ndarray) -> Path:
    assert cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1]))
    return path


def _check_output(image, shape):
    assert isinstance(image, np.ndarray)
    assert image.dtype == np.uint8
    assert image.shape == shape
    assert image.flags.c_contiguous
    assert image.flags.writeable


def _assert_unreadable(path, match=None):
    with pytest.raises(ImageReadError, match=match) as info:
        read_image(path)
    err = info.value
    assert isinstance(err, OSError)
    assert isinstance(err, ValueError)
    assert str(path) in str(err)
    assert err.path == path
    return err


# --------------------------------------------------------------------------
# Formats and round trips
# --------------------------------------------------------------------------

@pytest.mark.parametrize("ext", LOSSLESS)
def test_lossless_round_trip_is_exact(tmp_path, ext):
    rgb = _rgb_pattern()
    image = read_image(_write_rgb(tmp_path / f"cell.{ext}", rgb))
    _check_output(image, rgb.shape)
    np.testing.assert_array_equal(image, rgb)


def test_jpeg_round_trip_is_close(tmp_path):
    rgb = _rgb_pattern()
    image = read_image(_write_rgb(tmp_path / "cell.jpg", rgb))
    _check_output(image, rgb.shape)
    diff = np.abs(image.astype(int) - rgb.astype(int))
    assert diff.mean() < 3
    # Channel order: each channel correlates with its own source channel.
    for c in range(3):
        if rgb[..., c].std() > 0:
            assert np.corrcoef(image[..., c].ravel(), rgb[..., c].ravel())[0, 1] > 0.99


@pytest.mark.parametrize("ext", ALL_FORMATS + ["jpeg", "tiff"])
def test_pure_red_is_channel_zero(tmp_path, ext):
    red = np.zeros((10, 12, 3), np.uint8)
    red[..., 0] = 255
    image = read_image(_write_rgb(tmp_path / f"red.{ext}", red))
    _check_output(image, (10, 12, 3))
    assert image[..., 0].min() >= 250
    assert image[..., 1].max() <= 5
    assert image[..., 2].max() <= 5


def test_format_detected_from_content_not_extension(tmp_path):
    rgb = _rgb_pattern()
    png = _write_rgb(tmp_path / "cell.png", rgb)
    misnamed = tmp_path / "cell.bmp"
    misnamed.write_bytes(png.read_bytes())
    np.testing.assert_array_equal(read_image(misnamed), rgb)


def test_str_and_pathlike_accepted(tmp_path):
    rgb = _rgb_pattern()
    path = _write_rgb(tmp_path / "cell.png", rgb)
    np.testing.assert_array_equal(read_image(str(path)), read_image(path))


def test_non_path_argument_is_type_error():
    # An int would otherwise be taken by open() as a file descriptor.
    with pytest.raises(TypeError, match="path"):
        read_image(0)
    with pytest.raises(TypeError, match="path"):
        read_image(np.zeros((4, 4, 3), np.uint8))


def test_non_ascii_file_name(tmp_path):
    folder = tmp_path / "données_血液"
    folder.mkdir()
    path = folder / "zelle_ü_細胞.png"
    rgb = _rgb_pattern()
    # cv2.imwrite cannot be trusted with non-ASCII paths; write via bytes.
    ok, buf = cv2.imencode(".png", rgb[..., ::-1])
    assert ok
    path.write_bytes(buf.tobytes())
    np.testing.assert_array_equal(read_image(path), rgb)
    np.testing.assert_array_equal(read_image(str(path)), rgb)


def test_result_owns_writeable_memory(tmp_path):
    path = _write_rgb(tmp_path / "cell.png", _rgb_pattern())
    a = read_image(path)
    a[:] = 0  # must not fail, and must not affect a second read
    assert read_image(path).max() == 255


# --------------------------------------------------------------------------
# Channels: grayscale, alpha, palette, 1-bit
# --------------------------------------------------------------------------

@pytest.mark.parametrize("ext", LOSSLESS)
def test_grayscale_gives_three_equal_channels(tmp_path, ext):
    gray = _rgb_pattern()[..., 0]
    path = tmp_path / f"gray.{ext}"
    assert cv2.imwrite(str(path), gray)
    image = read_image(path)
    _check_output(image, gray.shape + (3,))
    for c in range(3):
        np.testing.assert_array_equal(image[..., c], gray)


def test_grayscale_jpeg_gives_three_equal_channels(tmp_path):
    gray = _rgb_pattern()[..., 1]
    path = tmp_path / "gray.jpg"
    assert cv2.imwrite(str(path), gray)
    image = read_image(path)
    assert image.shape == gray.shape + (3,)
    np.testing.assert_array_equal(image[..., 0], image[..., 1])
    np.testing.assert_array_equal(image[..., 0], image[..., 2])


def test_eight_bit_is_not_stretched(tmp_path):
    # uint8 values are kept as they are, even with a narrow range.
    gray = np.full((8, 9), 10, np.uint8)
    gray[:, 4:] = 20
    path = tmp_path / "dim.png"
    assert cv2.imwrite(str(path), gray)
    image = read_image(path)
    assert set(np.unique(image)) == {10, 20}


@pytest.mark.parametrize("ext", ["png", "tif"])
def test_rgba_alpha_dropped_not_composited(tmp_path, ext):
    rgb = _rgb_pattern()
    alpha = np.zeros(rgb.shape[:2], np.uint8)
    alpha[:, ::2] = 255  # half the pixels fully transparent
    bgra = np.dstack([rgb[..., ::-1], alpha])
    path = tmp_path / f"rgba.{ext}"
    assert cv2.imwrite(str(path), bgra)
    image = read_image(path)
    _check_output(image, rgb.shape)
    np.testing.assert_array_equal(image, rgb)


def test_rgba_pure_red_via_pillow(tmp_path):
    rgba = np.zeros((6, 7, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[..., 3] = 100
    path = tmp_path / "red_rgba.png"
    Image.fromarray(rgba, "RGBA").save(path)
    image = read_image(path)
    assert (image[..., 0] == 255).all()
    assert (image[..., 1:] == 0).all()


def test_gray_alpha_png(tmp_path):
    gray = _rgb_pattern()[..., 0]
    la = np.dstack([gray, np.full_like(gray, 50)])
    path = tmp_path / "la.png"
    Image.fromarray(la, "LA").save(path)
    image = read_image(path)
    for c in range(3):
        np.testing.assert_array_equal(image[..., c], gray)


def test_palette_png_is_expanded(tmp_path):
    colours = np.array([[255, 0, 0], [0, 200, 0], [10, 20, 230], [250, 250, 250]], np.uint8)
    labels = np.arange(20 * 16).reshape(20, 16) % 4
    rgb = colours[labels]
    # Default conversion (web palette): colours snap to the palette entries.
    path = tmp_path / "palette.png"
    pal = Image.fromarray(rgb).convert("P")
    assert pal.mode == "P"
    pal.save(path)
    image = read_image(path)
    _check_output(image, rgb.shape)
    np.testing.assert_array_equal(image, np.asarray(pal.convert("RGB")))
    assert tuple(image[0, 0]) == (255, 0, 0)  # exactly on the web palette
    # Adaptive palette: four colours are represented exactly.
    path = tmp_path / "adaptive.png"
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=4).save(path)
    np.testing.assert_array_equal(read_image(path), rgb)


def test_one_bit_png(tmp_path):
    mask = np.zeros((8, 10), bool)
    mask[2:6, 3:7] = True
    path = tmp_path / "mask.png"
    Image.fromarray(mask).convert("1").save(path)
    image = read_image(path)
    np.testing.assert_array_equal(image[..., 0], np.where(mask, 255, 0))
    np.testing.assert_array_equal(image[..., 2], image[..., 0])


def test_multi_page_tiff_reads_first_page(tmp_path):
    first = _rgb_pattern()
    second = 255 - first
    path = tmp_path / "stack.tif"
    Image.fromarray(first).save(path, save_all=True, append_images=[Image.fromarray(second)])
    np.testing.assert_array_equal(read_image(path), first)


# --------------------------------------------------------------------------
# Bit depth: rescale by the real range
# --------------------------------------------------------------------------

# Hand-computed: v -> rint((v - 1000) * 255 / 2000)
_U16 = np.array([[1000, 1500, 2000, 3000]] * 3, np.uint16)
_U16_EXPECTED = np.array([[0, 64, 128, 255]] * 3, np.uint8)  # 63.75->64, 127.5->128


@pytest.mark.parametrize("ext", ["png", "tif"])
def test_sixteen_bit_gray_rescaled_by_real_range(tmp_path, ext):
    path = tmp_path / f"deep.{ext}"
    assert cv2.imwrite(str(path), _U16)
    image = read_image(path)
    _check_output(image, _U16.shape + (3,))
    for c in range(3):
        np.testing.assert_array_equal(image[..., c], _U16_EXPECTED)


@pytest.mark.parametrize("ext", ["png", "tif"])
def test_sixteen_bit_rgb_rescaled_jointly_and_in_rgb_order(tmp_path, ext):
    rgb = np.zeros((2, 3, 3), np.uint16)
    rgb[..., 0] = 3000  # red at the maximum
    rgb[..., 1] = 2000
    rgb[..., 2] = 1000  # blue at the minimum
    path = tmp_path / f"deep_rgb.{ext}"
    assert cv2.imwrite(str(path), rgb[..., ::-1].copy())
    image = read_image(path)
    assert (image[..., 0] == 255).all()
    assert (image[..., 1] == 128).all()
    assert (image[..., 2] == 0).all()


def test_sixteen_bit_small_values_still_stretched(tmp_path):
    # The rescale uses the real range even when values would fit in 8 bits.
    deep = np.array([[0, 50], [100, 100]], np.uint16)
    path = tmp_path / "dim16.png"
    assert cv2.imwrite(str(path), deep)
    np.testing.assert_array_equal(read_image(path)[..., 0], [[0, 128], [255, 255]])


def test_constant_sixteen_bit_gives_zeros(tmp_path):
    path = tmp_path / "flat.png"
    assert cv2.imwrite(str(path), np.full((5, 6), 4000, np.uint16))
    image = read_image(path)
    _check_output(image, (5, 6, 3))
    assert not image.any()


def test_float_tiff_rescaled_by_real_range(tmp_path):
    values = np.array([[-1.0, 0.5], [2.0, 5.0]], np.float32)
    path = tmp_path / "float.tif"
    assert cv2.imwrite(str(path), values)
    image = read_image(path)
    # -1 -> 0, 0.5 -> rint(63.75) = 64, 2 -> rint(127.5) = 128, 5 -> 255
    np.testing.assert_array_equal(image[..., 0], [[0, 64], [128, 255]])


def test_rescale_helper_handles_non_finite():
    arr = np.array([[np.nan, 0.0], [np.inf, 10.0]])
    np.testing.assert_array_equal(lio._rescale_to_uint8(arr), [[0, 0], [0, 255]])
    assert not lio._rescale_to_uint8(np.full((2, 2), np.nan)).any()


# --------------------------------------------------------------------------
# Pillow fallback (forced by making OpenCV fail)
# --------------------------------------------------------------------------

def _make_variety(tmp_path):
    files = {}
    files["rgb.png"] = _write_rgb(tmp_path / "rgb.png", _rgb_pattern())
    files["rgb.bmp"] = _write_rgb(tmp_path / "rgb.bmp", _rgb_pattern())
    files["rgb.tif"] = _write_rgb(tmp_path / "rgb.tif", _rgb_pattern())
    files["u16.png"] = tmp_path / "u16.png"
    assert cv2.imwrite(str(files["u16.png"]), _U16)
    bgra = np.dstack([_rgb_pattern()[..., ::-1], np.full((24, 32), 9, np.uint8)])
    files["rgba.png"] = tmp_path / "rgba.png"
    assert cv2.imwrite(str(files["rgba.png"]), bgra)
    files["pal.png"] = tmp_path / "pal.png"
    Image.fromarray(_rgb_pattern()).convert("P").save(files["pal.png"])
    files["gray.png"] = tmp_path / "gray.png"
    assert cv2.imwrite(str(files["gray.png"]), _rgb_pattern()[..., 0])
    return files


def test_pillow_fallback_matches_opencv(tmp_path, monkeypatch):
    files = _make_variety(tmp_path)
    expected = {name: read_image(path) for name, path in files.items()}
    calls = []

    def failing_imdecode(buf, flags):
        calls.append(flags)
        return None

    monkeypatch.setattr(lio.cv2, "imdecode", failing_imdecode)
    for name, path in files.items():
        image = read_image(path)
        _check_output(image, expected[name].shape)
        np.testing.assert_array_equal(image, expected[name], err_msg=name)
    assert calls and all(f == cv2.IMREAD_UNCHANGED for f in calls)


def test_pillow_fallback_when_opencv_raises(tmp_path, monkeypatch):
    path = _write_rgb(tmp_path / "rgb.png", _rgb_pattern())

    def raising_imdecode(buf, flags):
        raise cv2.error("boom")

    monkeypatch.setattr(lio.cv2, "imdecode", raising_imdecode)
    np.testing.assert_array_equal(read_image(path), _rgb_pattern())


# --------------------------------------------------------------------------
# Bad files
# --------------------------------------------------------------------------

def test_missing_file(tmp_path):
    _assert_unreadable(tmp_path / "nope.png", match="no such file")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    _assert_unreadable(path, match="empty")


def test_directory(tmp_path):
    folder = tmp_path / "folder.png"
    folder.mkdir()
    _assert_unreadable(folder, match="directory")


def test_text_file_renamed_png(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("these are not pixels\n" * 10)
    _assert_unreadable(path)


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")  # Pillow, on the TIFF
@pytest.mark.parametrize("ext", ALL_FORMATS)
def test_file_cut_in_half(tmp_path, ext):
    good = _write_rgb(tmp_path / f"good.{ext}", _rgb_pattern(64, 64))
    data = good.read_bytes()
    bad = tmp_path / f"half.{ext}"
    bad.write_bytes(data[: len(data) // 2])
    _assert_unreadable(bad)


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")  # Pillow, on the TIFF
@pytest.mark.parametrize("ext", ALL_FORMATS)
def test_file_cut_in_half_without_opencv(tmp_path, ext, monkeypatch):
    # The Pillow fallback must not accept truncated data either.
    good = _write_rgb(tmp_path / f"good.{ext}", _rgb_pattern(64, 64))
    data = good.read_bytes()
    bad = tmp_path / f"half.{ext}"
    bad.write_bytes(data[: len(data) // 2])
    monkeypatch.setattr(lio.cv2, "imdecode", lambda buf, flags: None)
    _assert_unreadable(bad)


@pytest.mark.parametrize("cut", [1, 2, 7])
def test_jpeg_missing_end_marker(tmp_path, cut):
    data = _write_rgb(tmp_path / "good.jpg", _rgb_pattern()).read_bytes()
    assert data.endswith(b"\xff\xd9")
    bad = tmp_path / "short.jpg"
    bad.write_bytes(data[:-cut])
    _assert_unreadable(bad, match="truncated JPEG")


def test_png_missing_iend_chunk(tmp_path):
    # Pillow decodes such a file happily; it must still be rejected.
    data = _write_rgb(tmp_path / "good.png", _rgb_pattern()).read_bytes()
    assert data[-8:-4] == b"IEND"
    bad = tmp_path / "no_iend.png"
    bad.write_bytes(data[:-12])
    _assert_unreadable(bad, match="truncated PNG")


def test_trailing_bytes_after_end_are_accepted(tmp_path):
    rgb = _rgb_pattern()
    jpg = _write_rgb(tmp_path / "good.jpg", rgb)
    expected = read_image(jpg)
    padded = tmp_path / "padded.jpg"
    padded.write_bytes(jpg.read_bytes() + b"\x00\x00trailer\xff\xda\x00")
    np.testing.assert_array_equal(read_image(padded), expected)

    png = _write_rgb(tmp_path / "good.png", rgb)
    padded = tmp_path / "padded.png"
    padded.write_bytes(png.read_bytes() + b"junk")
    np.testing.assert_array_equal(read_image(padded), rgb)


def test_jpeg_with_exif_and_restart_markers(tmp_path):
    # Restart markers and APP segments must not confuse the truncation check.
    rgb = _rgb_pattern(64, 64)
    path = tmp_path / "rst.jpg"
    Image.fromarray(rgb).save(path, quality=90, restart_marker_blocks=1)
    assert b"\xff\xd0" in path.read_bytes()
    assert np.abs(read_image(path).astype(int) - rgb).mean() < 3

    progressive = tmp_path / "progressive.jpg"  # several SOS segments
    Image.fromarray(rgb).save(progressive, quality=90, progressive=True)
    assert progressive.read_bytes().count(b"\xff\xda") > 1
    assert np.abs(read_image(progressive).astype(int) - rgb).mean() < 3
    cut = tmp_path / "progressive_cut.jpg"
    cut.write_bytes(progressive.read_bytes()[:-2])
    _assert_unreadable(cut)

    exif_path = tmp_path / "exif.jpg"
    exif = Image.Exif()
    exif[0x010E] = "blood smear"  # ImageDescription
    Image.fromarray(rgb).save(exif_path, quality=90, exif=exif)
    assert np.abs(read_image(exif_path).astype(int) - rgb).mean() < 3
    cut = tmp_path / "exif_cut.jpg"
    cut.write_bytes(exif_path.read_bytes()[:-2])
    _assert_unreadable(cut)


def test_jpeg_with_embedded_thumbnail_is_checked_to_the_end(tmp_path):
    # A thumbnail (a whole JPEG, with its own end marker) inside an APP
    # segment must not make a truncated main image look complete.
    rgb = _rgb_pattern(64, 64)
    ok, thumb = cv2.imencode(".jpg", rgb[::8, ::8, ::-1].copy())
    ok2, main = cv2.imencode(".jpg", rgb[..., ::-1])
    assert ok and ok2
    payload = b"THMB\x00" + thumb.tobytes()
    app15 = b"\xff\xef" + (len(payload) + 2).to_bytes(2, "big") + payload
    main = main.tobytes()
    full = main[:2] + app15 + main[2:]
    good = tmp_path / "thumb.jpg"
    good.write_bytes(full)
    assert np.abs(read_image(good).astype(int) - rgb).mean() < 3
    bad = tmp_path / "thumb_cut.jpg"
    bad.write_bytes(full[: len(full) - 200])
    _assert_unreadable(bad, match="truncated JPEG")


def test_error_is_picklable_and_keeps_attributes(tmp_path):
    err = _assert_unreadable(tmp_path / "nope.png")
    clone = pickle.loads(pickle.dumps(err))
    assert type(clone) is ImageReadError
    assert clone.path == err.path
    assert clone.reason == err.reason
    assert str(clone) == str(err)


# --------------------------------------------------------------------------
# iter_images
# --------------------------------------------------------------------------

@pytest.fixture
def mixed_files(tmp_path):
    a = _write_rgb(tmp_path / "a.png", _rgb_pattern())
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    b = _write_rgb(tmp_path / "b.bmp", 255 - _rgb_pattern())
    return [a, bad, b]


def test_iter_images_is_lazy(mixed_files):
    consumed = []

    def source():
        for p in mixed_files:
            consumed.append(p)
            yield p

    gen = iter_images(source(), on_error="raise")
    assert inspect.isgenerator(gen)
    assert consumed == []  # nothing read before the first request
    path, image = next(gen)
    assert consumed == [mixed_files[0]]
    assert path == mixed_files[0]
    np.testing.assert_array_equal(image, _rgb_pattern())


def test_iter_images_raise_mode_raises_at_bad_file(mixed_files):
    gen = iter_images(mixed_files)
    assert next(gen)[0] == mixed_files[0]
    with pytest.raises(ImageReadError) as info:
        next(gen)
    assert info.value.path == mixed_files[1]


def test_iter_images_skip_mode(mixed_files):
    results = list(iter_images(mixed_files, on_error="skip"))
    assert [p for p, _ in results] == [mixed_files[0], mixed_files[2]]
    np.testing.assert_array_equal(results[1][1], 255 - _rgb_pattern())


def test_iter_images_return_mode(mixed_files):
    results = list(iter_images(mixed_files, on_error="return"))
    assert [p for p, _ in results] == mixed_files
    assert isinstance(results[0][1], np.ndarray)
    assert isinstance(results[1][1], ImageReadError)
    assert results[1][1].path == mixed_files[1]
    assert isinstance(results[2][1], np.ndarray)


def test_iter_images_keeps_path_objects_as_given(mixed_files):
    as_str = [str(p) for p in mixed_files]
    results = list(iter_images(as_str, on_error="return"))
    assert [p for p, _ in results] == as_str


def test_iter_images_validates_on_error_at_call_time():
    with pytest.raises(ValueError, match="on_error"):
        iter_images([], on_error="ignore")
    with pytest.raises(ValueError, match="on_error"):
        iter_images([], on_error=None)


def test_iter_images_rejects_single_path(tmp_path):
    with pytest.raises(TypeError, match="paths"):
        iter_images(str(tmp_path / "a.png"))
    with pytest.raises(TypeError, match="paths"):
        iter_images(tmp_path / "a.png")
    with pytest.raises(TypeError, match="paths"):
        iter_images(42)


def test_iter_images_empty():
    assert list(iter_images([])) == []


# --------------------------------------------------------------------------
# is_image_file / list_images
# --------------------------------------------------------------------------

def test_image_extensions():
    assert IMAGE_EXTENSIONS == frozenset({".bmp", ".jpg", ".jpeg", ".png", ".tif", ".tiff"})
    assert all(e == e.lower() and e.startswith(".") for e in IMAGE_EXTENSIONS)


@pytest.mark.parametrize("name, expected", [
    ("cell.png", True),
    ("CELL.PNG", True),
    ("Im001_1.Tif", True),
    ("a/b/c.tiff", True),
    ("x.JPEG", True),
    ("x.jpg", True),
    ("x.bmp", True),
    (".hidden.png", False),
    ("folder/._cell.jpg", False),
    ("notes.txt", False),
    ("cell.png.txt", False),
    ("png", False),
    ("", False),
])
def test_is_image_file(name, expected):
    assert is_image_file(name) is expected
    if name:
        assert is_image_file(Path(name)) is expected


def test_is_image_file_hidden_folder_does_not_matter():
    # Only the file name is inspected.
    assert is_image_file(".cache/cell.png") is True


def test_list_images(tmp_path):
    rel = ["b.PNG", "a.jpg", "sub/c.tif", "sub/deeper/d.JPEG", "sub/e.Bmp", "z.tiff"]
    for r in rel:
        (tmp_path / r).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / r).write_bytes(b"x")
    ignored = [".hidden.png", "sub/._c.tif", "notes.txt", "sub/readme.md",
               ".ipynb_checkpoints/a-checkpoint.png", "noext"]
    for r in ignored:
        (tmp_path / r).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / r).write_bytes(b"x")
    (tmp_path / "dir.png").mkdir()  # a folder with an image-like name

    found = list_images(tmp_path)
    assert all(isinstance(p, Path) for p in found)
    assert [p.relative_to(tmp_path).as_posix() for p in found] == [
        "a.jpg", "b.PNG", "sub/c.tif", "sub/deeper/d.JPEG", "sub/e.Bmp", "z.tiff"]
    assert list_images(str(tmp_path)) == found


def test_list_images_empty_folder(tmp_path):
    assert list_images(tmp_path) == []


def test_list_images_missing_root(tmp_path):
    root = tmp_path / "missing"
    with pytest.raises(FileNotFoundError) as info:
        list_images(root)
    assert str(root) in str(info.value)


def test_list_images_root_is_file(tmp_path):
    root = tmp_path / "file.png"
    root.write_bytes(b"x")
    with pytest.raises(NotADirectoryError) as info:
        list_images(root)
    assert str(root) in str(info.value)


def test_list_then_read(tmp_path):
    _write_rgb(tmp_path / "one.png", _rgb_pattern())
    (tmp_path / "sub").mkdir()
    _write_rgb(tmp_path / "sub" / "two.bmp", 255 - _rgb_pattern())
    images = [img for _, img in iter_images(list_images(tmp_path))]
    assert len(images) == 2
    np.testing.assert_array_equal(images[0], _rgb_pattern())
    np.testing.assert_array_equal(images[1], 255 - _rgb_pattern())


def test_public_api():
    assert set(lio.__all__) == {
        "IMAGE_EXTENSIONS", "DEFAULT_MAX_PIXELS", "ImageReadError", "ImageReadWarning",
        "ListingWarning", "get_max_pixels", "is_image_file", "iter_images",
        "list_images", "read_image", "read_mask", "MASK_NAMES", "match_masks"}
    for name in lio.__all__:
        assert hasattr(lio, name)
    for func in (read_image, iter_images, is_image_file, list_images, lio.match_masks):
        doc = inspect.getdoc(func)
        for section in ("Parameters", "Returns", "Examples"):
            assert section in doc, (func.__name__, section)


def test_jpeg_fast_path_equals_general_decoder(tmp_path):
    """JPEGs are decoded straight to RGB; the pixels are those of the general
    (BGR, unchanged-depth) path, gray JPEGs give three equal channels and an
    EXIF orientation tag is ignored (stored pixel order)."""
    from PIL import Image
    from leukfeat import io as lio
    rng = np.random.default_rng(0)
    rgb = (rng.random((23, 31, 3)) * 255).astype(np.uint8)
    gray = rgb[..., 1].copy()
    files = {"colour.jpg": Image.fromarray(rgb), "gray.jpg": Image.fromarray(gray)}
    exif = Image.Exif()
    exif[0x0112] = 6                                  # Orientation: rotate 90 CW
    for name, im in files.items():
        im.save(tmp_path / name, quality=85)
    Image.fromarray(rgb).save(tmp_path / "rotated.jpg", quality=85, exif=exif)
    for name in ("colour.jpg", "gray.jpg", "rotated.jpg"):
        data = (tmp_path / name).read_bytes()
        general = lio._to_rgb_uint8(lio._decode_cv2(data), bgr=True, path=name)
        got = read_image(tmp_path / name)
        assert got.shape == (23, 31, 3) and got.dtype == np.uint8 and got.flags.writeable
        np.testing.assert_array_equal(got, general)
    g = read_image(tmp_path / "gray.jpg")
    assert (g[..., 0] == g[..., 1]).all() and (g[..., 1] == g[..., 2]).all()
    for name in ("colour.jpg", "gray.jpg", "rotated.jpg"):
        assert lio._jpeg_precision((tmp_path / name).read_bytes()) == 8
    # a 12-bit frame header sends the file down the general path
    data = bytearray((tmp_path / "colour.jpg").read_bytes())
    sof = next(i for i in range(2, len(data) - 1)
               if data[i] == 0xFF and data[i + 1] in lio._JPEG_SOF)
    data[sof + 4] = 12
    assert lio._jpeg_precision(bytes(data)) == 12
    assert lio._jpeg_precision(b"\xff\xd8\xff\xda\x00\x02") is None
