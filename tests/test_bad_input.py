"""A corpus of broken and odd inputs, run through every entry point (issue #28).

The corpus is built by the test in a temporary folder: good images in every
variant leukfeat reads (formats, depths, palette, CMYK, multi-page, EXIF
rotation, alpha, a wrong extension, unicode and non-UTF-8 names) mixed with
bad ones (empty, truncated, not an image, a decompression bomb, a decoder
error, a symbolic link loop, a dangling link, a FIFO). Each goes through
:func:`leukfeat.io.read_image`, ``FeatureExtractor(on_error="nan")`` and
``leukfeat extract``, and the test asserts that every good image has its row
with the values of a clean run and every bad one is listed with its path and
reason. Also here: a worker process that dies, a run killed while writing a
model file, and the workers of a killed run.
"""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from leukfeat import io as lio
from leukfeat.datasets import make_cells
from leukfeat.io import ImageReadError, list_images, read_image
from leukfeat.transformers import FeatureExtractor

POSIX = sys.platform != "win32"
GROUPS = ("shape", "colour")


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def _bomb_png(width=30000, height=30000) -> bytes:
    """A valid-looking PNG header of a huge image with a tiny compressed body."""
    body = zlib.compress(b"\x00" * (width * 3 + 1) * 4)
    return (b"\x89PNG\r\n\x1a\n"
            + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + _png_chunk(b"IDAT", body) + _png_chunk(b"IEND", b""))


def _encode(ext, rgb) -> bytes:
    ok, buf = cv2.imencode(ext, np.ascontiguousarray(rgb[..., ::-1]))
    assert ok
    return buf.tobytes()


def _build_corpus(folder: Path):
    """Write the corpus; return (good, bad): name -> expected RGB (or None when
    only the shape is known) and name -> reason fragment."""
    from PIL import Image

    folder.mkdir()
    imgs = make_cells(6, size=96, random_state=3).images
    good, bad = {}, {}

    def put(name, data: bytes):
        with open(os.path.join(os.fsencode(folder), os.fsencode(name)
                               if isinstance(name, str) else name), "wb") as fh:
            fh.write(data)

    for i, ext in enumerate((".png", ".bmp", ".tif")):          # lossless: exact pixels
        put(f"good{i}{ext}", _encode(ext, imgs[i]))
        good[f"good{i}{ext}"] = imgs[i]
    put("good3.jpg", _encode(".jpg", imgs[3]))
    good["good3.jpg"] = None
    put("png-named.jpg", _encode(".png", imgs[4]))              # wrong extension
    good["png-named.jpg"] = imgs[4]
    rgba = np.dstack([imgs[5], np.full(imgs[5].shape[:2], 90, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(folder / "rgba.png")      # alpha dropped
    good["rgba.png"] = imgs[5]
    pal = Image.fromarray(imgs[0]).convert("P", palette=Image.Palette.ADAPTIVE)
    pal.save(folder / "palette.png")
    good["palette.png"] = np.asarray(pal.convert("RGB"))
    Image.fromarray(imgs[1]).convert("CMYK").save(folder / "cmyk.jpg", quality=95)
    good["cmyk.jpg"] = None
    pages = [Image.fromarray(imgs[2]), Image.fromarray(imgs[3])]
    pages[0].save(folder / "pages.tif", save_all=True, append_images=pages[1:])
    good["pages.tif"] = imgs[2]                                  # the first page
    exif = Image.Exif()
    exif[0x0112] = 6                                             # rotate 90 on display
    Image.fromarray(imgs[4]).save(folder / "exif.jpg", exif=exif, quality=95)
    good["exif.jpg"] = None                                      # stored order, 96 x 96
    deep = imgs[5].astype(np.uint16) * 257                       # 16-bit: same 8-bit image
    put("deep16.tif", _encode(".tif", deep))
    good["deep16.tif"] = None
    put("float.tif", _encode(".tif", imgs[0].astype(np.float32) / 255.0))   # 32-bit float
    good["float.tif"] = None
    grey = imgs[1].mean(axis=2).astype(np.float32) / 255.0
    Image.fromarray(grey, "F").save(folder / "float-grey.tif")  # Pillow's "F" mode
    good["float-grey.tif"] = None
    put("zelle_ß_白血球.png", _encode(".png", imgs[1]))           # unicode name
    good["zelle_ß_白血球.png"] = imgs[1]
    if POSIX and sys.getfilesystemencoding() == "utf-8":
        put(b"caf\xe9.png", _encode(".png", imgs[2]))           # Latin-1 byte: not UTF-8
        good[os.fsdecode(b"caf\xe9.png")] = imgs[2]

    put("empty.png", b"")
    bad["empty.png"] = "file is empty"
    for ext in (".jpg", ".png", ".bmp", ".tif"):
        data = _encode(ext, imgs[0])
        put(f"truncated{ext}", data[:len(data) // 2])
        bad[f"truncated{ext}"] = "" if ext in (".bmp", ".tif") else "truncated"
    put("text.png", b"this is not an image\n")
    bad["text.png"] = "not a readable image"
    put("bomb.png", _bomb_png())
    bad["bomb.png"] = "exceeds max_pixels"
    crc = bytearray(_encode(".png", imgs[1]))
    at = crc.find(b"IDAT") + 10
    crc[at:at + 8] = bytes(b ^ 0xFF for b in crc[at:at + 8])
    put("corrupt-data.png", bytes(crc))
    bad["corrupt-data.png"] = "corrupt image data (decoder: libpng error"
    if POSIX:
        os.symlink("loop.png", folder / "loop.png")
        bad["loop.png"] = "symbolic link loop"
        os.symlink(folder / "missing.png", folder / "dangling.png")
        bad["dangling.png"] = "dangling link"
        os.mkfifo(folder / "fifo.png")
        bad["fifo.png"] = "not a regular file (a FIFO"
    return good, bad


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad-input") / "corpus"
    good, bad = _build_corpus(folder)
    return folder, good, bad


def _path(folder, name):
    return os.path.join(str(folder), name)


def test_read_image_on_every_case(corpus):
    folder, good, bad = corpus
    for name, expected in good.items():
        image = read_image(_path(folder, name))
        assert image.dtype == np.uint8 and image.shape == (96, 96, 3), name
        if expected is not None:
            np.testing.assert_array_equal(image, expected, err_msg=name)
    # the 16-bit copy rescaled by its range, the float one by its range too
    deep = read_image(_path(folder, "deep16.tif")).astype(int)
    src = make_cells(6, size=96, random_state=3).images[5].astype(int)
    lo, hi = src.min(), src.max()
    assert np.abs(deep - np.rint((src - lo) * 255.0 / (hi - lo))).max() <= 1
    for name, reason in bad.items():
        with pytest.raises(ImageReadError) as info:
            read_image(_path(folder, name))
        assert info.value.path == _path(folder, name)
        assert name in str(info.value) and reason in info.value.reason, (name, info.value)


def test_listing_keeps_every_image_named_entry(corpus):
    folder, good, bad = corpus
    listed = {p.name for p in list_images(folder)}
    assert listed == set(good) | set(bad)


def test_max_pixels_is_checked_from_the_header_for_every_decoder(corpus, monkeypatch):
    """The size comes from the header (PNG, JPEG, BMP, TIFF, and Pillow for
    the rest), before decoding; the limit is an argument or an environment
    variable, and the limit itself is accepted."""
    from PIL import Image

    folder, _, _ = corpus
    img = np.zeros((30, 40, 3), np.uint8)
    names = ["good0.png", "good3.jpg", "good1.bmp", "good2.tif", "pages.tif", "float.tif"]
    Image.fromarray(img).save(folder.parent / "small.webp")
    Image.fromarray(img).save(folder.parent / "small.gif")
    cases = [(_path(folder, n), 96 * 96) for n in names]
    cases += [(str(folder.parent / "small.webp"), 1200), (str(folder.parent / "small.gif"), 1200)]
    for path, pixels in cases:
        assert read_image(path, max_pixels=pixels).shape[:2] in ((96, 96), (30, 40))
        with pytest.raises(ImageReadError, match="exceeds max_pixels"):
            read_image(path, max_pixels=pixels - 1)
    monkeypatch.setenv("LEUKFEAT_MAX_PIXELS", str(96 * 96 - 1))
    with pytest.raises(ImageReadError, match=f"max_pixels={96 * 96 - 1} "):
        read_image(_path(folder, "good0.png"))
    monkeypatch.setenv("LEUKFEAT_MAX_PIXELS", "none")
    assert lio.get_max_pixels() is None
    monkeypatch.setenv("LEUKFEAT_MAX_PIXELS", "lots")
    with pytest.raises(ValueError, match="LEUKFEAT_MAX_PIXELS"):
        read_image(_path(folder, "good0.png"))
    monkeypatch.delenv("LEUKFEAT_MAX_PIXELS")
    assert lio.get_max_pixels() == lio.DEFAULT_MAX_PIXELS
    for value, error in ((0, ValueError), (1.5, TypeError), ("big", TypeError)):
        with pytest.raises(error, match="max_pixels"):
            read_image(_path(folder, "good0.png"), max_pixels=value)


def test_decoder_messages_become_errors_or_warnings(tmp_path, capfd):
    """libpng/OpenCV errors are the reason of the ImageReadError; libjpeg's
    recoverable complaint is an ImageReadWarning naming the file; nothing is
    printed on the process's stderr."""
    img = make_cells(1, size=96, random_state=1).images[0]
    data = bytearray(_encode(".jpg", img))
    eoi = data.rfind(b"\xff\xd9")
    data[eoi:eoi] = b"\x00" * 7          # junk before the end marker: libjpeg warns
    path = tmp_path / "junk.jpg"
    path.write_bytes(bytes(data))
    with pytest.warns(lio.ImageReadWarning, match=r"junk\.jpg: Corrupt JPEG data"):
        image = read_image(path)
    assert image.shape == (96, 96, 3)
    assert capfd.readouterr().err == ""


@pytest.fixture(scope="module")
def clean(corpus):
    """name -> feature row of a clean run (good images only), and the names."""
    folder, good, _ = corpus
    names = sorted(good)
    fx = FeatureExtractor(groups=GROUPS).fit([_path(folder, n) for n in names])
    X = fx.transform([_path(folder, n) for n in names])
    return dict(zip(names, X)), list(fx.get_feature_names_out())


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_feature_extractor_keeps_good_rows_and_lists_bad_ones(corpus, clean, n_jobs):
    folder, good, bad = corpus
    names = sorted(good) + sorted(bad)
    order = np.random.default_rng(0).permutation(len(names))
    names = [names[i] for i in order]                    # bad ones mixed in
    fx = FeatureExtractor(groups=GROUPS, on_error="nan", n_jobs=n_jobs)
    with pytest.warns(UserWarning, match=f"{len(bad)} of {len(names)} images failed"):
        X = fx.fit_transform([_path(folder, n) for n in names])
    for i, name in enumerate(names):
        if name in good:
            np.testing.assert_array_equal(X[i], clean[0][name], err_msg=name)
        else:
            assert np.isnan(X[i]).all(), name
    errors = {e["index"]: e for e in fx.errors_}
    assert sorted(errors) == sorted(i for i, n in enumerate(names) if n in bad)
    for i, e in errors.items():
        assert e["item"] == _path(folder, names[i])
        assert e["error_type"] == "ImageReadError" and bad[names[i]] in e["message"]


def _cli(*args, cwd):
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    return subprocess.run([sys.executable, "-m", "leukfeat", *map(str, args)], cwd=cwd,
                          env=env, capture_output=True, text=True, encoding="utf-8",
                          timeout=300)


def test_cli_extract_keeps_good_rows_and_lists_bad_ones(corpus, clean, tmp_path):
    """Exit 0 with some good images; every image has its row in list order,
    good rows equal to a clean run, bad rows NaN with the reason in the error
    column and on stderr."""
    folder, good, bad = corpus
    out = tmp_path / "features.csv"
    proc = _cli("extract", folder, "--groups", *GROUPS, "--out", out, "--n-jobs", "2",
                cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(out)
    names = [p.name for p in list_images(folder)]
    assert len(table) == len(names)
    shown = [n.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
             for n in names]
    assert [os.path.basename(p) for p in table["path"]] == shown
    features = table[clean[1]]
    assert f"{len(bad)} of {len(names)} images could not be read" in proc.stderr
    for i, name in enumerate(names):
        if name in good:
            # a grey image may hold no white cell: a NaN row of its own kind
            assert pd.isna(table.loc[i, "error"]) or (
                name == "float-grey.tif" and table.loc[i, "error"].startswith("no white")), \
                (name, table.loc[i, "error"])
            np.testing.assert_array_equal(features.loc[i].to_numpy(float),
                                          clean[0][name], err_msg=name)
        else:
            assert bad[name] in table.loc[i, "error"], (name, table.loc[i, "error"])
            assert features.loc[i].isna().all()
            assert shown[i] in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_exit_codes_for_nothing_readable(corpus, tmp_path):
    """Documented exit status 2 when no image is left to measure: an empty
    folder (nothing written), or a folder of bad files only (the table of
    their error rows is written, as a record, and each is listed)."""
    folder, _, bad = corpus
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = _cli("extract", empty, "--out", tmp_path / "e.csv", cwd=tmp_path)
    assert proc.returncode == 2 and "no image files" in proc.stderr
    only_bad = tmp_path / "only-bad"
    only_bad.mkdir()
    for name in ("empty.png", "text.png", "bomb.png"):
        (only_bad / name).write_bytes((folder / name).read_bytes())
    proc = _cli("extract", only_bad, "--out", tmp_path / "b.csv", cwd=tmp_path)
    assert proc.returncode == 2 and "all 3 images failed" in proc.stderr
    table = pd.read_csv(tmp_path / "b.csv")
    assert len(table) == 3 and table["error"].notna().all()
    assert not (tmp_path / "e.csv").exists()


def test_cli_max_pixels_option(corpus, tmp_path):
    folder, _, _ = corpus
    out = tmp_path / "f.csv"
    proc = _cli("extract", _path(folder, "good0.png"), _path(folder, "good1.bmp"),
                "--groups", "shape", "--max-pixels", str(96 * 96 - 1), "--out", out,
                cwd=tmp_path)
    assert proc.returncode == 2 and "exceeds max_pixels=9215" in proc.stderr
    proc = _cli("extract", _path(folder, "good0.png"), "--max-pixels", "0", "--out", out,
                cwd=tmp_path)
    assert proc.returncode == 2 and "--max-pixels" in proc.stderr


def test_unreadable_folder_is_listed_not_dropped(tmp_path, monkeypatch):
    """A sub-folder that cannot be listed (no permission: simulated, since
    the tests may run as root) is warned about with its path and reason; the
    rest of the tree is still listed."""
    (tmp_path / "ok").mkdir()
    (tmp_path / "ok" / "a.png").write_bytes(_encode(".png", np.zeros((4, 4, 3), np.uint8)))
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked" / "b.png").write_bytes(b"")
    real = os.scandir

    def scandir(path="."):
        if os.fspath(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.warns(lio.ListingWarning, match=r"skipped 1 folder\(s\) that cannot be "
                                                r"listed: .*locked \(Permission denied\)"):
        assert [p.name for p in list_images(tmp_path)] == ["a.png"]


# --------------------------------------------------------------------------- #
# a worker process that dies
# --------------------------------------------------------------------------- #

class KillerPath(os.PathLike):
    """A test-only item: a path whose use in a worker process kills that
    process with SIGKILL (as the out-of-memory killer would)."""

    def __init__(self, path, parent_pid):
        self.path = path
        self.parent_pid = parent_pid

    def __fspath__(self):
        if os.getpid() != self.parent_pid:
            os.kill(os.getpid(), signal.SIGKILL)
        return self.path

    def __repr__(self):
        return f"KillerPath({self.path!r})"


@pytest.mark.skipif(not POSIX, reason="SIGKILL")
def test_a_dying_worker_costs_one_row(corpus, clean):
    """With n_jobs=2, an item that kills its worker process (twice: in the
    batch, then alone in a fresh worker) becomes one error row naming it;
    every other row equals a clean run."""
    cloudpickle = pytest.importorskip("cloudpickle")  # what loky pickles tasks with

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    folder, good, _ = corpus
    names = sorted(good)
    killer = KillerPath(_path(folder, names[0]), os.getpid())
    items = [_path(folder, n) for n in names[:5]] + [killer] + \
            [_path(folder, n) for n in names[5:]]
    fx = FeatureExtractor(groups=GROUPS, on_error="nan", n_jobs=2)
    with pytest.warns(UserWarning, match=f"1 of {len(items)} images failed"):
        X = fx.fit_transform(items)
    assert np.isnan(X[5]).all()
    np.testing.assert_array_equal(np.delete(X, 5, axis=0), [clean[0][n] for n in names])
    (error,) = fx.errors_
    assert error["index"] == 5 and error["item"] == _path(folder, names[0])
    assert error["error_type"] == "WorkerDiedError" and "died" in error["message"]


_IDLE_WORKERS = r"""
import os, sys
from leukfeat._batch import map_ordered
pids = map_ordered(lambda _: os.getpid(), range(40), n_jobs=2, batch_size=1)
print(" ".join(map(str, sorted(set(pids)))), flush=True)
sys.stdin.read()          # wait, with idle workers, until killed
"""


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:                      # a zombie is dead for our purpose
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ")[-1][0] != "Z"
    except OSError:
        return True


@pytest.mark.skipif(not POSIX, reason="SIGKILL")
def test_workers_of_a_killed_run_end_with_it():
    proc = subprocess.Popen([sys.executable, "-c", _IDLE_WORKERS], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        workers = [int(p) for p in proc.stdout.readline().split()]
        assert workers and proc.pid not in workers
        assert all(_alive(p) for p in workers)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    deadline = time.monotonic() + 15
    while any(_alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(p) for p in workers)


# --------------------------------------------------------------------------- #
# killed while writing a model file
# --------------------------------------------------------------------------- #

_MODEL_WRITER = r"""
import sys
import numpy as np
from sklearn.ensemble import RandomForestClassifier
from leukfeat.persist import save_model
rng = np.random.default_rng(0)
X = rng.random((4000, 20)); y = rng.integers(0, 4, 4000)
model = RandomForestClassifier(n_estimators=20, random_state=0, n_jobs=1).fit(X, y)
while True:
    print("writing", flush=True)
    save_model(model, sys.argv[1])
    print("saved", flush=True)
"""


@pytest.mark.skipif(not POSIX, reason="SIGKILL")
@pytest.mark.parametrize("fraction", [0.05, 0.5, 0.9])
def test_kill_while_writing_a_model_file_leaves_no_partial_file(tmp_path, fraction):
    """SIGKILL while a model file is being replaced (at a fraction of the time
    one write takes): the file under the final name is the whole earlier
    one (it loads), never a partial one."""
    from leukfeat.persist import load_model

    dest = tmp_path / "model.skops"
    proc = subprocess.Popen([sys.executable, "-c", _MODEL_WRITER, str(dest)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
        t0 = time.monotonic()
        assert proc.stdout.readline().strip() == "saved"
        one_write = time.monotonic() - t0
        assert proc.stdout.readline().strip() == "writing"     # the second write began
        time.sleep(fraction * one_write)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    model = load_model(dest)
    assert model.n_estimators == 20 and len(model.estimators_) == 20
    for leftover in tmp_path.iterdir():
        assert leftover == dest or (leftover.name.startswith(".model")
                                    and leftover.name.endswith(".tmp")), leftover


# --------------------------------------------------------------------------- #
# bad arrays
# --------------------------------------------------------------------------- #

def test_bad_arrays_name_their_argument():
    """An image of durations is refused naming the argument (numpy counts
    timedelta64 as a number); negative or fractional cell labels are refused
    when a Segmentation is built, instead of cell="largest" giving NaN and
    cell="median" measuring the cell."""
    from leukfeat import extract
    from leukfeat.segment import Segmentation, segment

    image = make_cells(1, size=96, random_state=0).images[0]
    with pytest.raises(ValueError, match=r"^image: expected a numeric image array, got "
                                         r"dtype timedelta64\[s\]"):
        extract.features(image.astype("timedelta64[s]"))
    seg = segment(image)
    negative = np.where(seg.labels > 0, -seg.labels, 0)
    with pytest.raises(ValueError, match="labels: cell labels must be positive"):
        Segmentation(seg.mask, seg.nucleus, negative)
    with pytest.raises(ValueError, match="labels: cell labels must be positive"):
        Segmentation.from_masks(seg.mask, seg.nucleus, negative)
    with pytest.raises(ValueError, match="labels: expected integer labels"):
        Segmentation.from_masks(seg.mask, seg.nucleus, seg.labels + 0.5)
    with pytest.raises(ValueError, match="must have one 2-D shape"):
        Segmentation(seg.mask, seg.nucleus[1:], seg.labels)
    # the same cell through both readers once the labels are valid
    ok = Segmentation.from_masks(seg.mask, seg.nucleus, seg.labels)
    largest = extract.features(image, ok, groups=("shape",), cell="largest")
    median = extract.features(image, ok, groups=("shape",), cell="median")
    assert seg.n_cells == 1 and list(largest.values()) == list(median.values())
