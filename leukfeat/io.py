"""Reading blood-cell images from disk.

Every reader returns the same thing whatever the file held: an RGB ``uint8``
array of shape ``(H, W, 3)``, C-contiguous and writeable (or, with
``read_image(path, dtype="native")``, the same shape in the file's own dtype,
e.g. ``uint16``). Files that cannot be read raise :class:`ImageReadError`,
never return ``None``.

Decoding uses OpenCV (``cv2.imdecode`` on bytes read with :func:`open`, so
paths with non-ASCII characters work on every platform) and falls back to
Pillow, when it is installed, for the variants OpenCV cannot decode.
"""

from __future__ import annotations

import errno
import io as _stdio
import os
import re
import stat
import struct
import sys
import tempfile
import threading
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import cv2
import numpy as np

from ._validation import check_scale, scale_to_uint8

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

    from ._typing import StrPath

__all__ = [
    "MASK_NAMES",
    "match_masks",
    "IMAGE_EXTENSIONS",
    "DEFAULT_MAX_PIXELS",
    "ImageReadError",
    "ImageReadWarning",
    "ListingWarning",
    "get_max_pixels",
    "is_image_file",
    "iter_images",
    "list_images",
    "read_image",
    "read_mask",
]

#: Lowercase file extensions (with the dot) treated as images by
#: :func:`is_image_file` and :func:`list_images`.
IMAGE_EXTENSIONS = frozenset({".bmp", ".jpg", ".jpeg", ".png", ".tif", ".tiff"})

_ON_ERROR = ("raise", "skip", "return")
#: the values of read_image's ``dtype`` argument
_DTYPES = ("uint8", "native")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SIGNATURE = b"\xff\xd8\xff"


class ImageReadError(OSError, ValueError):
    """A file could not be read as an image.

    Raised for a missing file, a directory, an empty (0 byte) file, a
    truncated or corrupt image, or a file that is not an image at all. It is
    both an :class:`OSError` and a :class:`ValueError`, so either can be
    caught.

    Parameters
    ----------
    path : str or os.PathLike
        The file that could not be read.
    reason : str
        Why it could not be read.
    what : str, default "image"
        What the file was read as (``"mask"`` for :func:`read_mask`).

    Attributes
    ----------
    path : str or os.PathLike
        The file that could not be read, as it was given.
    reason : str
        Why it could not be read.

    Examples
    --------
    >>> from leukfeat.io import ImageReadError, read_image
    >>> try:
    ...     read_image("no/such/file.png")
    ... except ImageReadError as err:
    ...     print(err.path)
    no/such/file.png
    """

    def __init__(self, path: Any, reason: str, what: str = "image") -> None:
        self.path = path
        self.reason = reason
        self.what = what
        super().__init__(f"cannot read {what} '{_display(path)}': {reason}")

    def __reduce__(self) -> tuple[type[ImageReadError], tuple[Any, str, str]]:
        # Keep the exception picklable (e.g. when returned from worker
        # processes): the default OSError reduction would call __init__ with
        # the formatted message only.
        return (type(self), (self.path, self.reason, self.what))


class ImageReadWarning(UserWarning):
    """An image was read, but its decoder reported a problem it recovered from.

    Issued by :func:`read_image` with the file's path and the decoder's own
    message (e.g. libjpeg's ``Corrupt JPEG data: 4 extraneous bytes before
    marker 0xd9``) instead of letting the decoder print on the process's
    standard error. Messages of the decoders' errors (libpng, libtiff,
    OpenCV) mean the pixels are damaged: they raise :class:`ImageReadError`
    instead.
    """


class ListingWarning(UserWarning):
    """Something could not be looked into while listing image files.

    Issued by :func:`list_images` for a sub-folder that cannot be opened
    (permissions, a folder removed while listing), with its path and the
    reason; the data set loaders' :class:`leukfeat.datasets.DatasetWarning`
    is a subclass. Entries named like images that cannot be read (dangling
    or looping symbolic links, FIFOs) are listed, not warned about: reading
    them reports why.
    """


def _display(path: Any) -> str:
    try:
        return os.fsdecode(path)
    except TypeError:
        return str(path)


def _fspath(path: Any, name: str = "path") -> str | bytes:
    try:
        return cast("str | bytes", os.fspath(path))
    except TypeError:
        raise TypeError(
            f"{name}: expected a str or os.PathLike file path, got {type(path).__name__}"
        ) from None


# --------------------------------------------------------------------------
# Truncation checks (decoders may silently return a partial image)
# --------------------------------------------------------------------------

def _png_problem(data: bytes) -> str | None:
    """Return a reason string if a PNG stream ends before its IEND chunk."""
    pos = len(_PNG_SIGNATURE)
    while True:
        if pos + 8 > len(data):
            return "truncated PNG file (no IEND chunk)"
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        ctype = data[pos + 4:pos + 8]
        end = pos + 12 + length  # length + type + data + CRC
        if end > len(data):
            return f"truncated PNG file (chunk {ctype!r} is incomplete)"
        if ctype == b"IEND":
            return None
        pos = end


_JPEG_NEXT_MARKER = re.compile(rb"\xff(?![\x00\xd0-\xd7\xff])")


#: start-of-frame markers (SOF0-SOF15 but DHT, JPG and DAC)
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg_scan(data: bytes) -> tuple[str | None, int | None, tuple[int, int] | None]:
    """Walk a JPEG stream's marker segments once: ``(problem, precision, size)``.

    ``problem`` is a reason string if the stream ends before its EOI marker,
    else None. The walk skips APPn/EXIF payloads (which may hold a thumbnail
    with its own EOI) and the entropy-coded scan data, so trailing bytes
    after the EOI are accepted; structural oddities other than running out
    of data are left for the decoder to judge. ``precision`` is the sample
    precision in bits of the first frame header (8 for baseline and most
    progressive files, 12 or 16 for high-depth ones), None if there is none;
    ``size`` is its ``(width, height)``, None if there is none.
    """
    truncated = "truncated JPEG file (no end-of-image marker)"
    precision = size = None
    n = len(data)
    pos = 2  # after SOI
    while True:
        if pos >= n:
            break
        if data[pos] != 0xFF:
            return None, precision, size  # not at a marker: let the decoder decide
        # Skip fill bytes (0xFF padding is allowed before a marker).
        while pos < n and data[pos] == 0xFF:
            pos += 1
        if pos >= n:
            break
        marker = data[pos]
        pos += 1
        if marker == 0xD9:  # EOI
            return None, precision, size
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # standalone markers
            continue
        if pos + 2 > n:
            break
        (length,) = struct.unpack(">H", data[pos:pos + 2])
        if length < 2:
            return None, precision, size
        if marker in _JPEG_SOF and precision is None and pos + 7 <= n:
            precision = data[pos + 2]
            height, width = struct.unpack(">HH", data[pos + 3:pos + 7])
            size = (width, height)
        pos += length
        if pos > n:
            break
        if marker == 0xDA:  # SOS: skip entropy-coded data up to the next marker,
            # the first 0xFF not followed by a stuffed 0x00, a restart marker
            # (0xD0-0xD7) or fill (0xFF)
            found = _JPEG_NEXT_MARKER.search(data, pos)
            if found is None or found.start() + 1 >= n:
                return truncated, precision, size
            pos = found.start()
    return truncated, precision, size


def _jpeg_precision(data: bytes) -> int | None:
    """Sample precision in bits of a JPEG's first frame header, or None."""
    return _jpeg_scan(data)[1]


def _truncation_problem(data: bytes) -> str | None:
    if data.startswith(_PNG_SIGNATURE):
        return _png_problem(data)
    if data.startswith(_JPEG_SIGNATURE):
        return _jpeg_scan(data)[0]
    return None


# --------------------------------------------------------------------------
# Image size from the header (checked against the pixel limit before decoding)
# --------------------------------------------------------------------------

#: Default of the pixel limit (width x height) of :func:`read_image`:
#: 2**28 = 268,435,456 pixels, e.g. 16384 x 16384 (768 MiB as RGB ``uint8``).
DEFAULT_MAX_PIXELS = 2 ** 28

#: Environment variable that sets the pixel limit of every :func:`read_image`
#: call made without ``max_pixels``, in this process and in the worker
#: processes of a batch.
MAX_PIXELS_ENV = "LEUKFEAT_MAX_PIXELS"


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` of the first page (IFD0) of a TIFF or BigTIFF, or None."""
    order = {b"II": "<", b"MM": ">"}.get(data[:2])
    if order is None or len(data) < 16:
        return None
    (magic,) = struct.unpack(order + "H", data[2:4])
    if magic == 42:                      # classic TIFF: 32-bit offsets, 12-byte entries
        (ifd,) = struct.unpack(order + "I", data[4:8])
        count_fmt, entry_size, value_at = "H", 12, 8
    elif magic == 43:                    # BigTIFF: 64-bit offsets, 20-byte entries
        (ifd,) = struct.unpack(order + "Q", data[8:16])
        count_fmt, entry_size, value_at = "Q", 20, 12
    else:
        return None
    count_size = struct.calcsize(count_fmt)
    if ifd + count_size > len(data):
        return None
    (count,) = struct.unpack(order + count_fmt, data[ifd:ifd + count_size])
    dims = {}
    pos = ifd + count_size
    for _ in range(min(count, 4096)):
        if pos + entry_size > len(data):
            break
        tag, kind = struct.unpack(order + "HH", data[pos:pos + 4])
        if tag in (256, 257):            # ImageWidth, ImageLength: SHORT, LONG or LONG8
            fmt = {3: "H", 4: "I", 16: "Q"}.get(kind)
            if fmt is not None:
                (dims[tag],) = struct.unpack_from(order + fmt, data, pos + value_at)
        pos += entry_size
    if 256 in dims and 257 in dims:
        return dims[256], dims[257]
    return None


def _header_size(data: bytes, jpeg_size: tuple[int, int] | None = None) -> tuple[int, int] | None:
    """``(width, height)`` read from the file header only, or None if unknown.

    PNG, JPEG, BMP, GIF and TIFF headers are parsed here; any other format is
    opened lazily with Pillow (which reads the header, not the pixels).
    """
    if data.startswith(_PNG_SIGNATURE):
        if len(data) >= 24 and data[12:16] == b"IHDR":
            return struct.unpack(">II", data[16:24])
        return None
    if data.startswith(_JPEG_SIGNATURE):
        return jpeg_size
    if data.startswith(b"BM") and len(data) >= 26:
        (dib,) = struct.unpack("<I", data[14:18])
        if dib == 12:                    # OS/2 BITMAPCOREHEADER
            return struct.unpack("<HH", data[18:22])
        width, height = struct.unpack("<ii", data[18:26])
        return abs(width), abs(height)
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return struct.unpack("<HH", data[6:10])
    if data[:2] in (b"II", b"MM"):
        return _tiff_size(data)
    try:
        from PIL import Image
        with Image.open(_stdio.BytesIO(data)) as im:
            return cast("tuple[int, int]", im.size)
    except Exception:  # unknown or refused (e.g. Pillow's own bomb check): the
        return None    # decoders judge the file


def _check_max_pixels(max_pixels: Any, name: str = "max_pixels") -> int | None:
    """The pixel limit as an int (None: no limit); an error naming `name`."""
    if max_pixels is None:
        return None
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, (int, np.integer)):
        raise TypeError(f"{name}: expected a positive int or None, "
                        f"got {type(max_pixels).__name__}")
    if max_pixels < 1:
        raise ValueError(f"{name}: expected a positive int or None, got {max_pixels}")
    return int(max_pixels)


def get_max_pixels() -> int | None:
    """The pixel limit :func:`read_image` applies when it is given no ``max_pixels``.

    It is :data:`DEFAULT_MAX_PIXELS` unless the environment variable
    ``LEUKFEAT_MAX_PIXELS`` holds a positive integer (or ``none`` for no
    limit). Setting the variable in the calling process also reaches the
    worker processes of a batch (:class:`leukfeat.transformers.FeatureExtractor`
    with ``n_jobs > 1``, the command line's ``--n-jobs``); the command line's
    ``--max-pixels`` option sets it.

    Returns
    -------
    int or None
        Largest ``width * height`` read; None means no limit.

    Raises
    ------
    ValueError
        If ``LEUKFEAT_MAX_PIXELS`` is set to something other than a positive
        integer or ``none``.

    Examples
    --------
    >>> from leukfeat.io import get_max_pixels, DEFAULT_MAX_PIXELS
    >>> get_max_pixels() == DEFAULT_MAX_PIXELS
    True
    """
    text = os.environ.get(MAX_PIXELS_ENV)
    if text is None or not text.strip():
        return DEFAULT_MAX_PIXELS
    text = text.strip()
    if text.casefold() == "none":
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"{MAX_PIXELS_ENV}: expected a positive integer or 'none', "
                         f"got {text!r}")
    return value


# --------------------------------------------------------------------------
# Messages that native decoders print on the process's stderr
# --------------------------------------------------------------------------

_CAPTURE_LOCK = threading.Lock()
_capture: dict[str, int | None] = {"pid": None, "fd": None}
#: native messages that mean the pixels are damaged: the decoders' errors
#: (``libpng error: ...``, ``TIFF_Error ...``, OpenCV's ``[ERROR...]``); the
#: rest (e.g. libjpeg's ``Corrupt JPEG data: N extraneous bytes before
#: marker``, libpng warnings) are recoverable and become ImageReadWarning
_NATIVE_ERROR = re.compile(r"error", re.IGNORECASE)


@contextmanager
def _native_messages() -> Iterator[list[str]]:
    """Collect what native code (libpng, libjpeg, libtiff, OpenCV's log) writes
    to file descriptor 2 while the block runs; yields a list that holds the
    decoded, stripped lines afterwards. Serialised by a lock, since the
    descriptor is shared by the threads of the process."""
    lines: list[str] = []
    with _CAPTURE_LOCK:
        if _capture["pid"] != os.getpid():           # new process (fork): new file
            # an unlinked temporary file held by its descriptor for the life of
            # the process (no Python file object: nothing to close at exit)
            fd, name = tempfile.mkstemp(prefix="leukfeat-stderr-")
            try:
                os.unlink(name)
            except OSError:  # pragma: no cover - Windows keeps open files
                pass
            _capture["fd"], _capture["pid"] = fd, os.getpid()
        sink = cast(int, _capture["fd"])
        try:
            sys.stderr.flush()
        except Exception:  # pragma: no cover - a closed or odd sys.stderr
            pass
        try:
            saved = os.dup(2)
        except OSError:  # pragma: no cover - no fd 2 (e.g. some GUI launchers)
            yield lines
            return
        os.dup2(sink, 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            # fd 2 shared the sink's offset: nothing written, nothing to read
            text = b""
            size = os.lseek(sink, 0, os.SEEK_CUR)
            if size:
                os.lseek(sink, 0, os.SEEK_SET)
                text = os.read(sink, size)
                os.lseek(sink, 0, os.SEEK_SET)
                os.ftruncate(sink, 0)
            lines.extend(line.strip() for line in
                         text.decode("utf-8", "replace").splitlines() if line.strip())


# --------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------

def _rescale_to_uint8(arr: np.ndarray) -> np.ndarray:
    """Map the real (finite) range of ``arr`` linearly onto 0..255."""
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == bool:
        return cast(np.ndarray, arr.astype(np.uint8) * np.uint8(255))
    values = arr.astype(np.float64)
    finite = np.isfinite(values)
    if not finite.any():
        return np.zeros(arr.shape, np.uint8)
    lo = float(values[finite].min())
    hi = float(values[finite].max())
    if hi <= lo:
        return np.zeros(arr.shape, np.uint8)
    # Multiply before dividing so exact halves (e.g. 127.5) stay exact.
    out = np.rint((values - lo) * 255.0 / (hi - lo))
    out[~finite] = 0
    return np.clip(out, 0, 255).astype(np.uint8)


def _rgb_order(arr: np.ndarray, *, bgr: bool, path: Any) -> np.ndarray:
    """Drop alpha and reorder colour channels to RGB, keeping the dtype; grey
    (also grey + alpha, or one channel) comes back 2-D."""
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim == 3:
        channels = arr.shape[2]
        if channels == 2:  # gray + alpha
            arr = arr[..., 0]
        elif channels in (3, 4):
            if bgr and arr.dtype == np.uint8:
                # one OpenCV pass: several times faster than a reversed-stride copy
                return cv2.cvtColor(arr, cv2.COLOR_BGR2RGB if channels == 3
                                    else cv2.COLOR_BGRA2RGB)
            arr = arr[..., 2::-1] if bgr else arr[..., :3]
        else:
            raise ImageReadError(path, f"unsupported number of channels ({channels})")
    elif arr.ndim != 2:
        raise ImageReadError(path, f"unsupported decoded array shape {arr.shape}")
    if arr.size == 0:
        raise ImageReadError(path, "decoded image is empty")
    return arr


def _owned_rgb(arr: np.ndarray) -> np.ndarray:
    """Grey stacked to three channels; C-contiguous, writeable, owning its
    data, in native byte order."""
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if not arr.dtype.isnative:   # e.g. Pillow's big-endian 16-bit modes
        arr = arr.astype(arr.dtype.newbyteorder("="))
    out = np.ascontiguousarray(arr)
    if not out.flags.writeable or out.base is not None:
        out = out.copy()
    return out


def _to_rgb_uint8(arr: np.ndarray, *, bgr: bool, path: Any,
                  scale: str | tuple[float, float] = "image") -> np.ndarray:
    """Drop alpha, convert the depth to 8 bits as `scale` says (``"image"``:
    by the real range) and stack/reorder channels to RGB."""
    arr = _rgb_order(arr, bgr=bgr, path=path)
    if scale == "image":
        arr = _rescale_to_uint8(arr)
    else:
        arr = _scaled(arr, scale, path)
    return _owned_rgb(arr)


def _scaled(arr: np.ndarray, scale: str | tuple[float, float], path: Any) -> np.ndarray:
    """:func:`scale_to_uint8` with its refusals as ImageReadError of `path`."""
    if scale == "dtype" and arr.dtype == np.uint8:
        return arr
    try:
        return scale_to_uint8(arr, scale)
    except ValueError as exc:
        raise ImageReadError(path, str(exc)) from None


def _to_rgb_native(arr: np.ndarray, *, bgr: bool, path: Any) -> np.ndarray:
    """Drop alpha and stack/reorder channels to RGB, keeping the stored dtype."""
    return _owned_rgb(_rgb_order(arr, bgr=bgr, path=path))


#: imdecode flags of the direct JPEG -> RGB decoding (OpenCV >= 4.10; None before)
_JPEG_RGB_FLAGS = (cv2.IMREAD_COLOR_RGB | cv2.IMREAD_IGNORE_ORIENTATION
                   if hasattr(cv2, "IMREAD_COLOR_RGB") else None)


def _decode_jpeg_rgb(data: bytes) -> np.ndarray | None:
    """RGB uint8 of an 8-bit JPEG (gray JPEGs as three equal channels), in
    stored orientation; None when OpenCV cannot (or has no RGB decoding).
    Higher-depth JPEGs take the general path, which rescales by the real
    range."""
    if _JPEG_RGB_FLAGS is None:
        return None
    try:
        decoded = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), _JPEG_RGB_FLAGS)
    except cv2.error:
        return None
    if decoded is None or decoded.size == 0 or decoded.ndim != 3 or decoded.shape[2] != 3:
        return None
    return decoded


def _decode_cv2(data: bytes) -> np.ndarray | None:
    buf = np.frombuffer(data, dtype=np.uint8)
    try:
        decoded = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    except cv2.error:
        return None
    if decoded is None or decoded.size == 0:
        return None
    return decoded


def _png_bit_depth(data: bytes) -> int | None:
    """Bit depth (per sample) in a PNG's IHDR chunk, or None for other data."""
    if data.startswith(_PNG_SIGNATURE) and len(data) >= 25 and data[12:16] == b"IHDR":
        return data[24]
    return None


def _decode_pil(data: bytes) -> tuple[np.ndarray | None, str | None]:
    """Decode the first frame with Pillow; return (array, reason)."""
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is optional
        return None, "not a readable image (OpenCV cannot decode it; Pillow is not installed)"
    try:
        with Image.open(_stdio.BytesIO(data)) as im:
            im.seek(0)
            im.load()
            mode = im.mode
            if mode in ("I", "F") or mode.startswith("I;16"):
                arr = np.array(im)
                if mode == "I" and _png_bit_depth(data) == 16:
                    # older Pillow opens 16-bit grey PNGs as 32-bit "I": give
                    # back the stored dtype (what dtype="native" and
                    # scale="dtype" go by)
                    arr = arr.astype(np.uint16)
            else:
                if mode not in ("L", "LA", "RGB", "RGBA"):
                    im = im.convert("RGB")
                arr = np.array(im)
    except Image.UnidentifiedImageError:  # type: ignore[attr-defined, unused-ignore]
        return None, "not a readable image (unrecognised or corrupt image data)"
    except Exception as exc:  # Pillow raises many types for bad input
        return None, f"not a readable image ({type(exc).__name__}: {exc})"
    return arr, None


def _checked_bytes(path: Any, max_pixels: int | str | None) -> tuple[bytes, int | None]:
    """The bytes of an image file that passed every check made before
    decoding (a regular, non-empty, complete file within the pixel limit),
    and the sample precision of a JPEG (None for other formats)."""
    fspath = _fspath(path)
    if isinstance(max_pixels, str) and max_pixels == "default":
        limit = get_max_pixels()
    else:
        limit = _check_max_pixels(max_pixels)
    data = _read_regular_file(path, fspath)
    if not data:
        raise ImageReadError(path, "file is empty (0 bytes)")
    precision = jpeg_size = None
    if data.startswith(_JPEG_SIGNATURE):          # one marker walk: truncation, depth, size
        problem, precision, jpeg_size = _jpeg_scan(data)
    else:
        problem = _truncation_problem(data)
    if problem is not None:
        raise ImageReadError(path, problem)
    if limit is not None:
        size = _header_size(data, jpeg_size)
        if size is not None and size[0] * size[1] > limit:
            raise ImageReadError(
                path, f"image of {size[0]} x {size[1]} = {size[0] * size[1]} pixels exceeds "
                      f"max_pixels={limit} (raise it with max_pixels=..., the "
                      f"{MAX_PIXELS_ENV} environment variable or --max-pixels)")
    return data, precision


def read_mask(path: StrPath, *, max_pixels: int | str | None = "default") -> np.ndarray:
    """Read a mask or label image file with its values unchanged.

    Unlike :func:`read_image`, nothing is rescaled or converted to colour:
    a 16-bit label image (Cellpose, QuPath, CellProfiler, ``leukfeat segment``'s
    ``<stem>_labels.tif``) keeps its labels, a 0/128/255 mask its three values.

    Parameters
    ----------
    path : str or os.PathLike
        PNG, TIFF, BMP or any other lossless format OpenCV or Pillow reads.
    max_pixels : int, None or "default", default "default"
        As in :func:`read_image`.

    Returns
    -------
    numpy.ndarray, shape (H, W)
        The stored values: ``bool`` for a 1-bit file, else the file's integer
        dtype (``uint8``, ``uint16``, ``int32``, ...). A colour file whose
        channels are equal (a grey mask saved as RGB) gives one channel; an
        alpha channel is dropped.

    Raises
    ------
    ImageReadError
        For every reason :func:`read_image` gives, and for a file whose
        colour channels differ or whose values are not integers (a mask
        must hold labels or classes, not colours or intensities).

    Examples
    --------
    >>> import numpy as np, cv2, tempfile, os
    >>> from leukfeat.io import read_mask
    >>> labels = np.zeros((4, 6), np.uint16); labels[1:3, 1:3] = 1; labels[1:3, 4:] = 300
    >>> file = os.path.join(tempfile.mkdtemp(), "cells_labels.tif")
    >>> cv2.imwrite(file, labels)
    True
    >>> read_mask(file).dtype, np.unique(read_mask(file)).tolist()
    (dtype('uint16'), [0, 1, 300])
    """
    try:
        return _read_mask(path, max_pixels)
    except ImageReadError as err:
        if err.what == "mask":
            raise
        raise ImageReadError(err.path, err.reason, "mask") from None


def _read_mask(path: Any, max_pixels: int | str | None) -> np.ndarray:
    data, _ = _checked_bytes(path, max_pixels)
    with _native_messages() as messages:
        decoded = _decode_cv2(data)
    problems = [m for m in messages if _NATIVE_ERROR.search(m)]
    if decoded is None:
        decoded, reason = _decode_pil(data)
        if decoded is None:
            if problems:
                reason = f"corrupt image data (decoder: {'; '.join(problems)}; Pillow: {reason})"
            raise ImageReadError(path, cast(str, reason))
    elif problems:
        raise ImageReadError(path, f"corrupt image data (decoder: {'; '.join(problems)})")
    if messages and not problems:
        _warn_native(path, messages)
    arr = np.asarray(decoded)
    if arr.ndim == 3:
        channels = arr[..., :3] if arr.shape[2] >= 3 else arr[..., :1]
        if not (channels == channels[..., :1]).all():
            raise ImageReadError(path, "a colour image, not a mask: its colour channels "
                                       "differ (expected a grey or label image)", "mask")
        arr = channels[..., 0]
    if arr.ndim != 2:
        raise ImageReadError(path, f"unsupported decoded array shape {arr.shape}", "mask")
    if arr.dtype.kind == "f":
        if not (np.isfinite(arr).all() and np.array_equal(arr, np.rint(arr))):
            raise ImageReadError(path, "a mask must hold integer labels, got fractional "
                                       f"{arr.dtype} values", "mask")
        arr = arr.astype(np.int64 if arr.min() < 0 or arr.max() > 2 ** 31 - 1 else np.int32)
    elif arr.dtype.kind not in "biu":
        raise ImageReadError(path, f"a mask must hold integer labels, got dtype {arr.dtype}",
                             "mask")
    return np.ascontiguousarray(arr)


def read_image(path: StrPath, *, dtype: str = "uint8", scale: str | tuple[float, float] = "image",
               max_pixels: int | str | None = "default") -> np.ndarray:
    """Read an image file as an RGB ``uint8`` array (or in its stored dtype).

    Parameters
    ----------
    path : str or os.PathLike
        The image file. BMP, TIFF, JPEG and PNG are the supported formats;
        anything else OpenCV or Pillow can decode is read too. The format is
        detected from the file content, not the extension.
    dtype : {"uint8", "native"}, default "uint8"
        ``"uint8"``: 8-bit RGB, what leukfeat's features are computed on,
        with images of other depths converted as `scale` says.
        ``"native"``: the stored values in the file's own dtype (``uint16``
        for a 16-bit PNG or TIFF, ``float32`` for a float TIFF, ...),
        unscaled; for an 8-bit file the same array as ``"uint8"``.
    scale : {"image", "dtype"} or (lo, hi), default "image"
        How an image is brought to 0..255 with ``dtype="uint8"`` (with
        ``dtype="native"`` only ``"image"``, the default, is accepted):

        * ``"image"``: 8-bit files as stored; other depths rescaled per
          image by their own min..max (see Returns), so the same intensity
          in two 16-bit files can give different values.
        * ``"dtype"``: by the full range of the stored dtype, the same for
          every file: 8-bit files as stored, 16-bit values divided by 257
          (65535 -> 255), other integers ``0..max`` of their dtype (negative
          values clip to 0), floats taken as 0..1 (a float file with values
          outside [0, 1] raises :class:`ImageReadError`). Data of a lower
          depth stored in 16 bits (e.g. a 12-bit camera's 0..4095) comes out
          dark: give its range instead.
        * ``(lo, hi)``: a fixed intensity range, the same for every file
          whatever its depth (8-bit files too): ``lo`` maps to 0, ``hi`` to
          255, values in between linearly (rounded to the nearest integer),
          values outside clip, e.g. ``scale=(0, 4095)`` for 12-bit data.
    max_pixels : int, None or "default", default "default"
        Largest image (``width * height``) to decode. The size is read from
        the file's header before any pixel is decoded, so a small file that
        would expand to gigabytes (a "decompression bomb") is refused at
        once. ``"default"`` is :func:`get_max_pixels`:
        :data:`DEFAULT_MAX_PIXELS` (2**28, e.g. 16384 x 16384) unless the
        environment variable ``LEUKFEAT_MAX_PIXELS`` says otherwise; None
        means no limit of leukfeat's own (OpenCV still refuses more than
        2**30 pixels, and Pillow, used for the formats OpenCV cannot decode,
        refuses more than twice ``PIL.Image.MAX_IMAGE_PIXELS``).

    Returns
    -------
    numpy.ndarray
        Array of shape ``(H, W, 3)`` and dtype ``uint8`` (with
        ``dtype="native"``: the stored dtype), RGB channel order,
        C-contiguous, writeable and owning its data.

        * Grayscale images are repeated into three equal channels.
        * An alpha channel is dropped, not composited: the stored colour
          values are returned as they are, whatever their transparency.
        * Palette images are expanded to RGB through their palette.
        * With the default ``scale="image"``, images with a depth other
          than 8 bits (16-bit integer, 32-bit float, signed integer, ...)
          are rescaled linearly by their real range: the smallest finite
          value in the image (over all colour channels together) maps to 0
          and the largest to 255, e.g. a 16-bit image holding 1000..3000
          maps 1000 to 0, 2000 to 128 and 3000 to 255. A constant image
          gives zeros; NaN and infinite values give 0 with every `scale`
          (``dtype="native"`` keeps them).
          The rescale is per image, so intensities of different 16-bit files
          are not comparable afterwards: use ``scale="dtype"`` or a fixed
          ``(lo, hi)`` for that, or ``dtype="native"`` to keep the values.
        * Multi-page / multi-frame files: only the first page is read.
        * EXIF orientation tags are ignored: pixels come in stored order.

    Raises
    ------
    ImageReadError
        If the file does not exist, is a directory or another kind of
        non-regular file (a FIFO, a device, a socket: these are refused
        without being opened for reading, so they never block), cannot be
        opened (permissions, a symbolic link that loops), is empty, is
        truncated or corrupt (including errors the decoder reports while
        decoding: a message of libpng, libtiff or OpenCV containing
        "error"), is not an image, or is larger than `max_pixels`. The
        message contains the path and the reason. With ``scale="dtype"``,
        also for a float image with values outside [0, 1].
    TypeError
        If `path` is not a str or os.PathLike, or `max_pixels` is not an
        int, None or "default".
    ValueError
        If `max_pixels` is an int below 1, `dtype` is not "uint8" or
        "native", or `scale` is not "image", "dtype" or a pair of finite
        numbers ``lo < hi`` (or is not "image" with ``dtype="native"``).
        These argument errors are raised before the file is opened.

    Warns
    -----
    ImageReadWarning
        When the decoder reports a problem it recovered from (the image is
        returned), with the decoder's message. Native decoders never print
        on the process's standard error themselves.

    Examples
    --------
    >>> import numpy as np, cv2, tempfile, os
    >>> from leukfeat.io import read_image
    >>> tmp = tempfile.mkdtemp()
    >>> file = os.path.join(tmp, "cell.png")
    >>> red = np.zeros((4, 5, 3), np.uint8); red[..., 0] = 255
    >>> cv2.imwrite(file, red[..., ::-1])  # OpenCV writes BGR
    True
    >>> image = read_image(file)
    >>> image.shape, image.dtype, int(image[0, 0, 0])
    ((4, 5, 3), dtype('uint8'), 255)
    >>> read_image(file, max_pixels=10)
    Traceback (most recent call last):
    ...
    leukfeat.io.ImageReadError: cannot read image '...cell.png': image of 5 x 4 = 20 pixels exceeds max_pixels=10 ...

    A 16-bit file: its stored values, the per-image rescale, and scales that
    give the same 8-bit value for the same intensity in every file:

    >>> deep = os.path.join(tmp, "deep.png")
    >>> cv2.imwrite(deep, np.array([[1000, 2000, 3000]], np.uint16))
    True
    >>> read_image(deep, dtype="native")[0, :, 0].tolist()
    [1000, 2000, 3000]
    >>> read_image(deep)[0, :, 0].tolist()
    [0, 128, 255]
    >>> read_image(deep, scale="dtype")[0, :, 0].tolist()
    [4, 8, 12]
    >>> read_image(deep, scale=(0, 4095))[0, :, 0].tolist()
    [62, 125, 187]
    """
    if not isinstance(dtype, str) or dtype not in _DTYPES:
        raise ValueError(f"dtype: expected one of {_DTYPES}, got {dtype!r}")
    scale = check_scale(scale)
    if dtype == "native" and scale != "image":
        raise ValueError(f"scale: applies to dtype='uint8' only (dtype='native' returns the "
                         f"stored values, unscaled), got scale={scale!r}")
    if dtype == "native":
        convert = _to_rgb_native
    elif scale == "image":
        convert = _to_rgb_uint8
    else:
        def convert(arr: np.ndarray, *, bgr: bool, path: Any) -> np.ndarray:
            return _to_rgb_uint8(arr, bgr=bgr, path=path, scale=scale)
    data, precision = _checked_bytes(path, max_pixels)
    with _native_messages() as messages:
        decoded = _decode_jpeg_rgb(data) if precision == 8 else None  # 8-bit JPEG: to RGB
        rgb = decoded is not None
        if decoded is None:
            decoded = _decode_cv2(data)
    problems = [m for m in messages if _NATIVE_ERROR.search(m)]
    if decoded is not None:
        if problems:   # the decoder returned pixels but said they are damaged
            raise ImageReadError(path, f"corrupt image data (decoder: {'; '.join(problems)})")
        if messages:
            _warn_native(path, messages)
        if not rgb:
            return convert(decoded, bgr=True, path=path)
        if dtype == "uint8" and scale not in ("image", "dtype"):
            return _scaled(decoded, scale, path)   # a fixed range: 8-bit values mapped too
        return decoded
    decoded, reason = _decode_pil(data)   # formats or variants OpenCV cannot decode
    if decoded is None:
        if problems:
            reason = f"corrupt image data (decoder: {'; '.join(problems)}; Pillow: {reason})"
        raise ImageReadError(path, cast(str, reason))
    if messages:
        _warn_native(path, messages)
    return convert(decoded, bgr=False, path=path)


def _warn_native(path: Any, messages: list[str]) -> None:
    warnings.warn(f"{_display(path)}: {'; '.join(messages)}", ImageReadWarning, stacklevel=3)


#: flags of the open() of read_image: never block on a FIFO or device
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0) \
    | getattr(os, "O_CLOEXEC", 0)


def _read_regular_file(path: Any, fspath: str | bytes) -> bytes:
    """The bytes of a regular file; ImageReadError for anything else."""
    fd: int | None
    try:
        fd = os.open(fspath, _OPEN_FLAGS)
    except FileNotFoundError:
        if os.path.islink(fspath):
            raise ImageReadError(path, "symbolic link to a missing file (dangling link)") \
                from None
        raise ImageReadError(path, "no such file") from None
    except IsADirectoryError:
        raise ImageReadError(path, "is a directory, not a file") from None
    except OSError as exc:
        if os.path.isdir(fspath):  # e.g. PermissionError for directories on Windows
            raise ImageReadError(path, "is a directory, not a file") from None
        if exc.errno == errno.ELOOP:
            raise ImageReadError(path, "symbolic link loop (too many levels of symbolic "
                                       "links)") from None
        raise ImageReadError(path, f"{type(exc).__name__}: {exc.strerror or exc}") from exc
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise ImageReadError(path, "is a directory, not a file")
        if not stat.S_ISREG(mode):
            kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(mode) else
                    "a character device" if stat.S_ISCHR(mode) else
                    "a block device" if stat.S_ISBLK(mode) else
                    "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
            raise ImageReadError(path, f"not a regular file ({kind})")
        with os.fdopen(fd, "rb") as fh:
            fd = None
            return fh.read()
    except OSError as exc:
        if isinstance(exc, ImageReadError):
            raise
        raise ImageReadError(path, f"{type(exc).__name__}: {exc.strerror or exc}") from exc
    finally:
        if fd is not None:
            os.close(fd)


def iter_images(paths: Iterable[StrPath], on_error: str = "raise"
                ) -> Iterator[tuple[StrPath, np.ndarray | ImageReadError]]:
    """Read images one by one, lazily and in order.

    Parameters
    ----------
    paths : iterable of str or os.PathLike
        The files to read. It is consumed lazily, so it may be a generator.
    on_error : {"raise", "skip", "return"}
        What to do with a file that cannot be read: ``"raise"`` raises the
        :class:`ImageReadError` (when that file is reached); ``"skip"``
        yields nothing for it; ``"return"`` yields ``(path, error)`` with the
        :class:`ImageReadError` instance in place of the image.

    Returns
    -------
    generator of (path, numpy.ndarray or ImageReadError)
        Pairs of the path, as given, and the image from :func:`read_image`
        (or the error, with ``on_error="return"``). No file is opened before
        its pair is requested.

    Raises
    ------
    ValueError
        If `on_error` is not one of the accepted values (raised at call time).
    TypeError
        If `paths` is a single path rather than an iterable of paths (raised
        at call time), or holds something that is not a path.
    ImageReadError
        With ``on_error="raise"``, when a file cannot be read.

    Examples
    --------
    >>> from leukfeat.io import iter_images
    >>> for path, result in iter_images(["missing.png"], on_error="return"):
    ...     print(path, type(result).__name__)
    missing.png ImageReadError
    """
    if not isinstance(on_error, str) or on_error not in _ON_ERROR:
        raise ValueError(f"on_error: expected one of {_ON_ERROR}, got {on_error!r}")
    if isinstance(paths, (str, bytes, os.PathLike)):
        raise TypeError(
            "paths: expected an iterable of paths, got a single path "
            f"({_display(paths)!r}); wrap it in a list")
    try:
        iterator = iter(paths)
    except TypeError:
        raise TypeError(
            f"paths: expected an iterable of paths, got {type(paths).__name__}") from None
    return _iter_images(iterator, on_error)


def _iter_images(iterator: Iterator[StrPath], on_error: str
                 ) -> Iterator[tuple[StrPath, np.ndarray | ImageReadError]]:
    for path in iterator:
        try:
            image = read_image(path)
        except ImageReadError as err:
            if on_error == "raise":
                raise
            if on_error == "return":
                yield path, err
            continue
        yield path, image


def is_image_file(path: StrPath) -> bool:
    """Tell whether a file name looks like a supported image.

    Only the name is inspected (the file need not exist): the extension must
    be in :data:`IMAGE_EXTENSIONS`, compared case-insensitively, and hidden
    files (names starting with ``"."``, such as macOS ``._cell.png``
    resource forks) are rejected.

    Parameters
    ----------
    path : str or os.PathLike
        File path or name.

    Returns
    -------
    bool

    Raises
    ------
    TypeError
        If `path` is not a str or os.PathLike.

    Examples
    --------
    >>> from leukfeat.io import is_image_file
    >>> is_image_file("data/Im001_1.TIF"), is_image_file("data/._Im001_1.tif")
    (True, False)
    >>> is_image_file("notes.txt")
    False
    """
    name = Path(os.fsdecode(_fspath(path))).name
    if not name or name.startswith("."):
        return False
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


#: Names a mask of image ``<stem>`` may have, in the order
#: :func:`match_masks` looks for them: label images first (leukfeat
#: segment's, Cellpose's), then binary or nucleus/cytoplasm-coded masks.
MASK_NAMES = ("{}_labels.tif", "{}_labels.png", "{}_cp_masks.png", "{}_cp_masks.tif",
              "{}_masks.png", "{}_masks.tif", "{}_mask.png", "{}_mask.tif", "{}.png",
              "{}.tif", "{}.tiff")


def match_masks(images: Iterable[StrPath], folder: StrPath, *, name: str = "folder"
                ) -> list[tuple[Path, Path]]:
    """Pair image files with their masks in a folder, by file stem.

    The mask of ``path/to/<stem>.<ext>`` is the first of :data:`MASK_NAMES`
    found in `folder`: ``<stem>_labels.tif`` (``leukfeat segment``),
    ``<stem>_cp_masks.png`` (Cellpose), ``<stem>_mask.png``, ``<stem>.png``,
    ... (the image itself is never its own mask). The pairs are the items
    :class:`~leukfeat.transformers.FeatureExtractor` takes to measure your
    own masks (binary, 0/1/2 nucleus-cytoplasm coded, or label images; see
    :func:`leukfeat.segment.from_mask`).

    Parameters
    ----------
    images : sequence of str or os.PathLike
        Image files.
    folder : str or os.PathLike
        The folder of the masks.
    name : str, default "folder"
        How errors and warnings name `folder` (e.g. ``"--masks"``).

    Returns
    -------
    list of (image path, mask path)
        In the order of `images`. An image without a mask is paired with the
        first name looked for (``<stem>_labels.tif``), so that measuring it
        gives an error row naming the missing file instead of dropping it.

    Warns
    -----
    ListingWarning
        When some images have no mask: how many, the names looked for and
        the first such image.

    Raises
    ------
    NotADirectoryError
        If `folder` is not a folder.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from leukfeat.io import match_masks
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> for file in ["a.png", "a_cp_masks.png", "b.tif", "b_mask.png"]:
    ...     _ = (tmp / file).write_bytes(b"")
    >>> [(p.name, m.name) for p, m in match_masks([tmp / "a.png", tmp / "b.tif"], tmp)]
    [('a.png', 'a_cp_masks.png'), ('b.tif', 'b_mask.png')]
    """
    root = Path(os.fsdecode(_fspath(folder, name)))
    if not root.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, f"{name}: not a folder", str(root))
    pairs, missing = [], []
    for p in images:
        p = Path(os.fsdecode(_fspath(p, "images")))
        found = None
        for pattern in MASK_NAMES:
            cand = root / pattern.format(p.stem)
            if cand.is_file() and not (p.exists() and os.path.samefile(cand, p)):
                found = cand
                break
        if found is None:
            missing.append(p)
            found = root / MASK_NAMES[0].format(p.stem)
        pairs.append((p, found))
    if missing:
        warnings.warn(f"{name}: no mask in {_display(root)} for {len(missing)} of {len(pairs)} "
                      "images (looked for <stem>" + ", <stem>".join(n[2:] for n in MASK_NAMES)
                      + f"); they get error rows, e.g. {_display(missing[0])}",
                      ListingWarning, stacklevel=2)
    return pairs


def list_images(root: StrPath) -> list[Path]:
    """List the image files under a folder, recursively.

    Parameters
    ----------
    root : str or os.PathLike
        The folder to search.

    Returns
    -------
    list of pathlib.Path
        Paths (``root`` joined with the relative path) of the files accepted
        by :func:`is_image_file`, sorted by their relative path components
        (case-sensitive), which gives the same order on every platform.
        Hidden files and everything inside hidden folders (e.g.
        ``.ipynb_checkpoints``) are ignored; symbolic links to folders are
        not followed. Entries named like images that are not readable
        regular files (dangling or looping symbolic links, FIFOs, devices)
        are listed too, so that reading them reports the problem with their
        path instead of dropping them silently.

    Warns
    -----
    ListingWarning
        For each sub-folder that cannot be listed (e.g. no permission), with
        its path and the reason; the rest of the tree is still listed.

    Raises
    ------
    FileNotFoundError
        If `root` does not exist.
    NotADirectoryError
        If `root` is not a folder.
    TypeError
        If `root` is not a str or os.PathLike.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from leukfeat.io import list_images
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ["b.PNG", "a.jpg", ".hidden.png", "notes.txt"]:
    ...     _ = (tmp / name).write_bytes(b"")
    >>> [p.name for p in list_images(tmp)]
    ['a.jpg', 'b.PNG']
    """
    root_path = Path(os.fsdecode(_fspath(root, "root")))
    if not root_path.exists():
        raise FileNotFoundError(errno.ENOENT, "root: no such folder", str(root_path))
    if not root_path.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "root: not a folder", str(root_path))
    found: list[Path] = []
    unreadable: list[str] = []

    def onerror(exc: OSError) -> None:
        unreadable.append(f"{_display(exc.filename)} ({exc.strerror or exc})")

    for dirpath, dirnames, filenames in os.walk(root_path, onerror=onerror):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        # every non-folder entry named like an image, whether or not it can be
        # read: a dangling link or a FIFO is reported when read, not dropped
        found.extend(Path(dirpath, name) for name in filenames if is_image_file(name))
    if unreadable:
        import warnings

        shown = ", ".join(unreadable[:5]) + (f", ... ({len(unreadable) - 5} more)"
                                             if len(unreadable) > 5 else "")
        warnings.warn(f"{root_path}: skipped {len(unreadable)} folder(s) that cannot be "
                      f"listed: {shown}", ListingWarning, stacklevel=2)
    return sorted(found, key=lambda p: p.relative_to(root_path).parts)
