"""Reading blood-cell images from disk.

Every reader returns the same thing whatever the file held: an RGB ``uint8``
array of shape ``(H, W, 3)``, C-contiguous and writeable. Files that cannot be
read raise :class:`ImageReadError`, never return ``None``.

Decoding uses OpenCV (``cv2.imdecode`` on bytes read with :func:`open`, so
paths with non-ASCII characters work on every platform) and falls back to
Pillow, when it is installed, for the variants OpenCV cannot decode.
"""

from __future__ import annotations

import errno
import io as _stdio
import os
import re
import struct
from pathlib import Path

import cv2
import numpy as np

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageReadError",
    "is_image_file",
    "iter_images",
    "list_images",
    "read_image",
]

#: Lowercase file extensions (with the dot) treated as images by
#: :func:`is_image_file` and :func:`list_images`.
IMAGE_EXTENSIONS = frozenset({".bmp", ".jpg", ".jpeg", ".png", ".tif", ".tiff"})

_ON_ERROR = ("raise", "skip", "return")
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

    def __init__(self, path, reason: str):
        self.path = path
        self.reason = reason
        super().__init__(f"cannot read image '{_display(path)}': {reason}")

    def __reduce__(self):
        # Keep the exception picklable (e.g. when returned from worker
        # processes): the default OSError reduction would call __init__ with
        # the formatted message only.
        return (type(self), (self.path, self.reason))


def _display(path) -> str:
    try:
        return os.fsdecode(path)
    except TypeError:
        return str(path)


def _fspath(path, name: str = "path"):
    try:
        return os.fspath(path)
    except TypeError:
        raise TypeError(
            f"{name}: expected a str or os.PathLike file path, got {type(path).__name__}"
        ) from None


# --------------------------------------------------------------------------
# Truncation checks (decoders may silently return a partial image)
# --------------------------------------------------------------------------

def _png_problem(data: bytes):
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


def _jpeg_scan(data: bytes):
    """Walk a JPEG stream's marker segments once: ``(problem, precision)``.

    ``problem`` is a reason string if the stream ends before its EOI marker,
    else None. The walk skips APPn/EXIF payloads (which may hold a thumbnail
    with its own EOI) and the entropy-coded scan data, so trailing bytes
    after the EOI are accepted; structural oddities other than running out
    of data are left for the decoder to judge. ``precision`` is the sample
    precision in bits of the first frame header (8 for baseline and most
    progressive files, 12 or 16 for high-depth ones), None if there is none.
    """
    truncated = "truncated JPEG file (no end-of-image marker)"
    precision = None
    n = len(data)
    pos = 2  # after SOI
    while True:
        if pos >= n:
            break
        if data[pos] != 0xFF:
            return None, precision  # not at a marker: let the decoder decide
        # Skip fill bytes (0xFF padding is allowed before a marker).
        while pos < n and data[pos] == 0xFF:
            pos += 1
        if pos >= n:
            break
        marker = data[pos]
        pos += 1
        if marker == 0xD9:  # EOI
            return None, precision
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # standalone markers
            continue
        if pos + 2 > n:
            break
        (length,) = struct.unpack(">H", data[pos:pos + 2])
        if length < 2:
            return None, precision
        if marker in _JPEG_SOF and precision is None and pos + 2 < n:
            precision = data[pos + 2]
        pos += length
        if pos > n:
            break
        if marker == 0xDA:  # SOS: skip entropy-coded data up to the next marker,
            # the first 0xFF not followed by a stuffed 0x00, a restart marker
            # (0xD0-0xD7) or fill (0xFF)
            found = _JPEG_NEXT_MARKER.search(data, pos)
            if found is None or found.start() + 1 >= n:
                return truncated, precision
            pos = found.start()
    return truncated, precision


def _jpeg_precision(data: bytes):
    """Sample precision in bits of a JPEG's first frame header, or None."""
    return _jpeg_scan(data)[1]


def _truncation_problem(data: bytes):
    if data.startswith(_PNG_SIGNATURE):
        return _png_problem(data)
    if data.startswith(_JPEG_SIGNATURE):
        return _jpeg_scan(data)[0]
    return None


# --------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------

def _rescale_to_uint8(arr: np.ndarray) -> np.ndarray:
    """Map the real (finite) range of ``arr`` linearly onto 0..255."""
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == bool:
        return arr.astype(np.uint8) * np.uint8(255)
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


def _to_rgb_uint8(arr: np.ndarray, *, bgr: bool, path) -> np.ndarray:
    """Drop alpha, rescale the depth, and stack/reorder channels to RGB."""
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
    arr = _rescale_to_uint8(arr)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    out = np.ascontiguousarray(arr)
    if not out.flags.writeable or out.base is not None:
        out = out.copy()
    return out


#: imdecode flags of the direct JPEG -> RGB decoding (OpenCV >= 4.10; None before)
_JPEG_RGB_FLAGS = (cv2.IMREAD_COLOR_RGB | cv2.IMREAD_IGNORE_ORIENTATION
                   if hasattr(cv2, "IMREAD_COLOR_RGB") else None)


def _decode_jpeg_rgb(data: bytes):
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


def _decode_cv2(data: bytes):
    buf = np.frombuffer(data, dtype=np.uint8)
    try:
        decoded = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    except cv2.error:
        return None
    if decoded is None or decoded.size == 0:
        return None
    return decoded


def _decode_pil(data: bytes):
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
            else:
                if mode not in ("L", "LA", "RGB", "RGBA"):
                    im = im.convert("RGB")
                arr = np.array(im)
    except Image.UnidentifiedImageError:
        return None, "not a readable image (unrecognised or corrupt image data)"
    except Exception as exc:  # Pillow raises many types for bad input
        return None, f"not a readable image ({type(exc).__name__}: {exc})"
    return arr, None


def read_image(path) -> np.ndarray:
    """Read an image file as an RGB ``uint8`` array.

    Parameters
    ----------
    path : str or os.PathLike
        The image file. BMP, TIFF, JPEG and PNG are the supported formats;
        anything else OpenCV or Pillow can decode is read too. The format is
        detected from the file content, not the extension.

    Returns
    -------
    numpy.ndarray
        Array of shape ``(H, W, 3)`` and dtype ``uint8``, RGB channel order,
        C-contiguous, writeable and owning its data.

        * Grayscale images are repeated into three equal channels.
        * An alpha channel is dropped, not composited: the stored colour
          values are returned as they are, whatever their transparency.
        * Palette images are expanded to RGB through their palette.
        * Images with a depth other than 8 bits (16-bit integer, 32-bit
          float, signed integer, ...) are rescaled linearly by their real
          range: the smallest finite value in the image (over all colour
          channels together) maps to 0 and the largest to 255, e.g. a 16-bit
          image holding 1000..3000 maps 1000 to 0, 2000 to 128 and 3000 to
          255. A constant image gives zeros; NaN and infinite values give 0.
          The rescale is per image, so intensities of different 16-bit files
          are not comparable afterwards.
        * Multi-page / multi-frame files: only the first page is read.
        * EXIF orientation tags are ignored: pixels come in stored order.

    Raises
    ------
    ImageReadError
        If the file does not exist, is a directory, is empty, is truncated or
        corrupt, or is not an image. The message contains the path.
    TypeError
        If `path` is not a str or os.PathLike.

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
    """
    fspath = _fspath(path)
    try:
        with open(fspath, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise ImageReadError(path, "no such file") from None
    except IsADirectoryError:
        raise ImageReadError(path, "is a directory, not a file") from None
    except OSError as exc:
        if os.path.isdir(fspath):  # e.g. PermissionError for directories on Windows
            raise ImageReadError(path, "is a directory, not a file") from None
        raise ImageReadError(path, f"{type(exc).__name__}: {exc.strerror or exc}") from exc
    if not data:
        raise ImageReadError(path, "file is empty (0 bytes)")

    precision = None
    if data.startswith(_JPEG_SIGNATURE):          # one marker walk: truncation + depth
        problem, precision = _jpeg_scan(data)
    else:
        problem = _truncation_problem(data)
    if problem is not None:
        raise ImageReadError(path, problem)

    if precision == 8:                            # 8-bit JPEG: straight to RGB
        decoded = _decode_jpeg_rgb(data)
        if decoded is not None:
            return decoded
    decoded = _decode_cv2(data)
    if decoded is not None:
        return _to_rgb_uint8(decoded, bgr=True, path=path)
    decoded, reason = _decode_pil(data)
    if decoded is None:
        raise ImageReadError(path, reason)
    return _to_rgb_uint8(decoded, bgr=False, path=path)


def iter_images(paths, on_error: str = "raise"):
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


def _iter_images(iterator, on_error):
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


def is_image_file(path) -> bool:
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


def list_images(root) -> list[Path]:
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
        not followed.

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
    found = []
    for dirpath, dirnames, filenames in os.walk(root_path):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if is_image_file(name):
                full = Path(dirpath, name)
                if full.is_file():
                    found.append(full)
    return sorted(found, key=lambda p: p.relative_to(root_path).parts)
