"""Data sets: a synthetic blood-smear generator and loaders for image folders.

The module is organised in sections so that the generator and the folder
loaders live side by side without touching each other:

* **Containers** -- :class:`SyntheticCells` (a whole synthetic data set) and
  :class:`CellSample` (one image and its ground truth).
* **Synthetic data** -- :func:`make_cells`, a deterministic procedural
  generator of Wright/Giemsa-like peripheral-blood-smear images. It is the
  built-in default data of the demo and of the test-suite.
* **Private helpers** -- argument checks, shape rasterisation, colour.
* **Folder loaders** -- functions that find the images of a data set on disk
  and return a :class:`LabelledImages` (file paths, labels and, where the
  data has them, patient ids for patient-wise splits). No image is read.

  * :func:`load_folder` -- any ``<root>/<class>/<image>`` layout;
  * :func:`load_taleghani` -- Taleghani ALL (Benign / Early / Pre / Pro), also
    the original download names and the Original / Segmented copies;
  * :func:`load_cnmc` -- C-NMC 2019 (``training_data/fold_*/{all,hem}``),
    patient ids parsed from the file names;
  * :func:`load_allidb` -- ALL-IDB1 (whole smears) and ALL-IDB2 (single
    cells);
  * :func:`load_pbc` -- PBC Barcelona, 8 normal peripheral-blood cell types;
  * :func:`load_dataset` -- dispatch by loader name (see :data:`LOADERS`).

  A folder that does not match the expected layout raises
  :class:`DatasetLayoutError` (a :class:`ValueError`) whose message shows the
  layout that was expected; a missing folder raises
  :class:`FileNotFoundError`. Recoverable oddities (files whose names do not
  follow a data set's naming scheme, unrecognised sub-folders) are reported
  with a :class:`DatasetWarning`.

Everything produced by :func:`make_cells` is **synthetic**: the images are
painted from simple parametric shapes and colours chosen to resemble stained
smears; they carry no clinical information.
"""

from __future__ import annotations

import errno
import math
import numbers
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import cv2
import numpy as np

from ..io import IMAGE_EXTENSIONS, ListingWarning, is_image_file, list_images

__all__ = [
    "CellSample", "SyntheticCells", "make_cells", "MASK_CODES",
    "LabelledImages", "DatasetLayoutError", "DatasetWarning",
    "load_folder", "load_taleghani", "load_cnmc", "load_allidb", "load_pbc",
    "LOADERS", "load_dataset", "TALEGHANI_CLASSES", "PBC_CLASSES",
]

#: Pixel values of the compartment maps written by :meth:`SyntheticCells.save`
#: (and returned by :meth:`SyntheticCells.compartments`).
MASK_CODES: dict[str, int] = {"background": 0, "red_cell": 1, "cytoplasm": 2, "nucleus": 3}


# =============================================================================
# Containers
# =============================================================================

@dataclass(frozen=True, eq=False, repr=False)
class CellSample:
    """One image of a :class:`SyntheticCells` data set and its ground truth.

    Attributes
    ----------
    image : ndarray of uint8, shape (H, W, 3)
        RGB image.
    label : int
        Class index.
    class_name : str
        Class name.
    mask : ndarray of bool, shape (H, W)
        White cell(s): nucleus and cytoplasm.
    nucleus : ndarray of bool, shape (H, W)
    cytoplasm : ndarray of bool, shape (H, W)
        ``mask & ~nucleus``.
    cell_labels : ndarray of int32, shape (H, W)
        0 is background, 1..k the white cells.
    red_cells : ndarray of bool, shape (H, W)
        Union of the red cells.
    params : dict
        Ground-truth generation parameters (see :func:`make_cells`).
    """

    image: np.ndarray
    label: int
    class_name: str
    mask: np.ndarray
    nucleus: np.ndarray
    cytoplasm: np.ndarray
    cell_labels: np.ndarray
    red_cells: np.ndarray
    params: dict

    def __repr__(self) -> str:
        h, w = self.image.shape[:2]
        return (f"CellSample(label={self.label}, class_name={self.class_name!r}, "
                f"shape=({h}, {w}), n_white_cells={int(self.cell_labels.max())})")


@dataclass(eq=False, repr=False)
class SyntheticCells:
    """A labelled set of RGB images with pixel-exact ground truth.

    Returned by :func:`make_cells`. ``len(ds)`` is the number of images;
    ``ds[i]`` returns a :class:`CellSample`; ``ds[a:b]`` (or an integer
    array / boolean mask) returns a new :class:`SyntheticCells` holding the
    selected images. Iterating yields :class:`CellSample` records.

    Attributes
    ----------
    images : ndarray of uint8, shape (N, H, W, 3)
    labels : ndarray of int, shape (N,)
    masks : ndarray of bool, shape (N, H, W)
        Union of the white cells (nucleus + cytoplasm).
    nucleus : ndarray of bool, shape (N, H, W)
    cytoplasm : ndarray of bool, shape (N, H, W)
        ``masks & ~nucleus``.
    cell_labels : ndarray of int32, shape (N, H, W)
        0 background, 1..k the white cells of each image.
    red_cells : ndarray of bool, shape (N, H, W)
        Union of the red cells (never overlapping a white cell).
    class_names : tuple of str
        ``class_names[label]`` is the name of a class.
    params : list of dict
        Per-image ground-truth parameters (see :func:`make_cells`).
    """

    images: np.ndarray
    labels: np.ndarray
    masks: np.ndarray
    nucleus: np.ndarray
    cytoplasm: np.ndarray
    cell_labels: np.ndarray
    red_cells: np.ndarray
    class_names: tuple
    params: list = field(default_factory=list)

    def __post_init__(self) -> None:
        n = len(self.images)
        for name in ("labels", "masks", "nucleus", "cytoplasm", "cell_labels", "red_cells",
                     "params"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name}: expected {n} entries (one per image), "
                                 f"got {len(getattr(self, name))}")
        self.class_names = tuple(self.class_names)

    # -- sequence protocol -----------------------------------------------------
    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index):
        if isinstance(index, numbers.Integral) and not isinstance(index, bool):
            n = len(self)
            i = int(index)
            if not -n <= i < n:
                raise IndexError(f"index {i} is out of range for {n} images")
            i %= n
            label = int(self.labels[i])
            return CellSample(
                image=self.images[i], label=label, class_name=self.class_names[label],
                mask=self.masks[i], nucleus=self.nucleus[i], cytoplasm=self.cytoplasm[i],
                cell_labels=self.cell_labels[i], red_cells=self.red_cells[i],
                params=self.params[i])
        if isinstance(index, slice):
            sel = np.arange(len(self))[index]
        else:
            sel = np.asarray(index)
            if sel.dtype == bool:
                if sel.shape != (len(self),):
                    raise IndexError(f"boolean index must have shape ({len(self)},), "
                                     f"got {sel.shape}")
                sel = np.flatnonzero(sel)
            elif sel.ndim != 1 or not np.issubdtype(sel.dtype, np.integer):
                raise IndexError("index must be an int, a slice, a 1-D integer array "
                                 "or a boolean mask")
        return SyntheticCells(
            images=self.images[sel], labels=self.labels[sel], masks=self.masks[sel],
            nucleus=self.nucleus[sel], cytoplasm=self.cytoplasm[sel],
            cell_labels=self.cell_labels[sel], red_cells=self.red_cells[sel],
            class_names=self.class_names, params=[self.params[int(i)] for i in sel])

    def __iter__(self) -> Iterator[CellSample]:
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        shape = tuple(self.images.shape[1:3]) if self.images.ndim == 4 else ()
        counts = np.bincount(np.asarray(self.labels, dtype=np.int64),
                             minlength=len(self.class_names)) if len(self) else []
        return (f"SyntheticCells(n_samples={len(self)}, image_shape={shape}, "
                f"class_names={self.class_names}, class_counts={list(map(int, counts))})")

    # -- derived arrays --------------------------------------------------------
    def compartments(self) -> np.ndarray:
        """Per-pixel compartment codes, uint8 array of shape (N, H, W).

        Values follow :data:`MASK_CODES`: 0 background, 1 red cell,
        2 cytoplasm, 3 nucleus.
        """
        out = np.zeros(self.masks.shape, np.uint8)
        out[self.red_cells] = MASK_CODES["red_cell"]
        out[self.cytoplasm] = MASK_CODES["cytoplasm"]
        out[self.nucleus] = MASK_CODES["nucleus"]
        return out

    # -- export ----------------------------------------------------------------
    def save(self, root, *, masks_dir=None) -> list[Path]:
        """Write the images as PNG files, one sub-folder per class.

        Parameters
        ----------
        root : str or path-like
            Output folder; created if needed. Image ``i`` is written to
            ``root/<class_name>/img_<i>.png`` (``i`` zero-padded to 4 digits).
        masks_dir : str or path-like, optional
            If given, the ground truth of image ``i`` is written with the same
            relative path under this folder (``masks_dir/<class_name>/img_<i>.png``)
            as a single-channel uint8 compartment map with the values of
            :data:`MASK_CODES` (0 background, 1 red cell, 2 cytoplasm,
            3 nucleus). White cells never touch each other, so individual
            cells are the connected components of ``map >= 2``.

        Returns
        -------
        list of pathlib.Path
            The written image paths, in data-set order.

        Raises
        ------
        OSError
            If a file cannot be written.
        """
        root = Path(root)
        mroot = None if masks_dir is None else Path(masks_dir)
        width = max(4, len(str(max(len(self) - 1, 0))))
        comp = self.compartments() if mroot is not None else None
        written: list[Path] = []
        for i in range(len(self)):
            cname = self.class_names[int(self.labels[i])]
            name = f"img_{i:0{width}d}.png"
            path = root / cname / name
            _write_png(path, cv2.cvtColor(self.images[i], cv2.COLOR_RGB2BGR))
            written.append(path)
            if comp is not None:
                _write_png(mroot / cname / name, comp[i])
        return written


def _write_png(path: Path, array: np.ndarray) -> None:
    """Encode ``array`` (BGR or grey uint8) as PNG and write it, creating folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(array))
    if not ok:  # pragma: no cover - cv2 failure
        raise OSError(f"could not encode {path} as PNG")
    path.write_bytes(buf.tobytes())


# =============================================================================
# Synthetic data
# =============================================================================

def make_cells(n_samples: int = 100, n_classes: int = 2, size=128, *,
               n_red_cells=(4, 10), n_white_cells=1, stain_jitter: float = 0.05,
               cytoplasm: str = "lavender", random_state=None) -> SyntheticCells:
    """Generate synthetic stained blood-smear images with exact ground truth.

    **The images are synthetic.** They are painted procedurally to look like
    Wright/Giemsa-stained peripheral blood smears, so that the segmentation
    and feature code can be demonstrated and tested without patient data.
    They carry no clinical meaning.

    Each image shows, on a pale cream/lilac background (CIELAB L* 88-94,
    a* 0-4, b* 0-8) with smooth illumination variation and mild pixel noise
    (colour ranges are those of the per-image mean of each compartment):

    * ``n_white_cells`` white cells, entirely inside the image and not
      touching each other: a slightly irregular ellipse (radius about 18-26 %
      of the short image side; shrunk, down to 9 %, when several cells must
      fit) of pale lavender cytoplasm (L* 62-72, a* 21-29, b* -25..-12)
      around a deep purple nucleus (L* 35-50, a* 28-40, b* -40..-25) with
      chromatin texture. The nucleus is an irregular ellipse, possibly
      off-centre, always separated from the background by a cytoplasm rim
      of at least 2 pixels (8-connected).
    * ``n_red_cells`` red cells: pink-salmon to grey-pink discs (L* 70-80,
      a* 6-12, b* 2-10) of radius about 8-11 % of the short side, with a
      paler centre; where two overlap the overlap is darker. They may
      overlap each other and be cut by the image border, but never come
      closer than a few pixels to a white cell.

    As in real smears, white cells are the most magenta objects: nucleus
    and cytoplasm are close in a* and far above the red cells, so a threshold
    on a* (about 16-18) separates white cells from red cells and background,
    and lightness L* separates the nucleus from the cytoplasm.

    A per-image stain jitter shifts and scales the colours slightly (see
    ``stain_jitter``). Pixels are 1-pixel
    anti-aliased at edges; the ground-truth masks are the hard painted
    regions (the pixels whose coverage is at least one half).

    **What varies by class.** For class ``c`` and ``t = c / (n_classes - 1)``
    (0 for the first class, 1 for the last), class means move linearly:

    ============================ ================= =================
    property                     class 0 (t = 0)   last class (t = 1)
    ============================ ================= =================
    nucleus area / cell area     target 0.45       target 0.85
    (painted, 128 px images)     ~0.42             ~0.74
    cell radius / short side     ~0.235            ~0.20
    chromatin texture            coarse, blotchy   fine
    chromatin contrast (L*)      ~9                ~5
    lobed nucleus (2-3 lobes)    60 % of cells     never
    ============================ ================= =================

    The painted nucleus fraction falls short of its target when the nucleus
    would not fit inside the cell with its 2-pixel rim (mostly for high
    targets and small images); ``params`` records both. Every property is
    also drawn at random around its class mean, so the classes overlap (with
    two classes they are nearly separable by the nucleus/cell area ratio;
    with more classes neighbouring classes overlap clearly). Red cells,
    background, stain and placement do not depend on the class.

    Parameters
    ----------
    n_samples : int, default 100
        Number of images (>= 1).
    n_classes : int, default 2
        Number of classes (>= 1). Labels are assigned round-robin
        (``label = i % n_classes``), so classes are balanced to within one.
    size : int or (int, int), default 128
        Image side, or ``(height, width)``; every side must be >= 32.
    n_red_cells : int or (int, int), default (4, 10)
        Number of red cells per image, or an inclusive ``(low, high)`` range
        drawn uniformly. Red cells that cannot be placed away from the white
        cells after many attempts are dropped (rare; the actual count is in
        ``params``).
    n_white_cells : int or (int, int), default 1
        Number of white cells per image, or an inclusive range. At least 0
        (0: a field of red cells only, whose ``labels`` are still assigned
        round-robin), at most 16 and at most what fits in the image at the
        smallest cell radius (4 in a 32x32 image, 9 in 64x64, 16 from 96x128
        on).
    stain_jitter : float, default 0.05
        Strength of the per-image stain variation, in [0, 0.5]: the eosin
        (red cells) and azure (white cells) colour strengths, i.e. a* and b*,
        are scaled by ``1 + stain_jitter * N(0, 1)`` and the lightness of all
        stained parts is shifted by ``20 * stain_jitter * N(0, 1)`` L* units
        (normal draws clipped to +-2). 0 disables the jitter; the geometry
        does not depend on it.
    cytoplasm : {"lavender", "pale"}, default "lavender"
        Colour of the white cells' cytoplasm: the lavender described above,
        or a pale one (three tenths of the way from the background to the
        lavender, about L* 83, a* 9, b* -3), like the cytoplasm of
        neutrophils and of some lymphocytes, which is hard to tell from the
        background. The random draws, and so the geometry and every other
        colour, do not depend on it.
    random_state : None, int, numpy.random.Generator or numpy.random.SeedSequence
        Seed. Image ``i`` is drawn from its own child seed
        ``SeedSequence(entropy, spawn_key=(i,))``, so it depends only on the
        seed, on ``i`` and on its class (``i % n_classes``, and the class
        profile through ``n_classes``) -- not on ``n_samples``: with an int
        seed, ``make_cells(10, random_state=0)[:5]`` equals
        ``make_cells(5, random_state=0)``. A Generator is advanced once (to
        draw the root entropy); None gives fresh entropy.

    Returns
    -------
    SyntheticCells
        ``images`` (N, H, W, 3) uint8 RGB; ``labels`` (N,) int; ``masks``,
        ``nucleus``, ``cytoplasm``, ``red_cells`` (N, H, W) bool;
        ``cell_labels`` (N, H, W) int32; ``class_names``
        (``"class_0"``, ...); ``params``: one dict per image with, among
        others, ``label``, ``n_white_cells``, ``n_red_cells``,
        ``nucleus_fraction`` (mean over its white cells of the *painted*
        nucleus area / cell area), ``cell_radius`` (pixels), ``white_cells``
        and ``red_cells`` (lists of per-cell geometry), the class profile and
        the stain factors and base colours used.

    Raises
    ------
    ValueError
        If an argument is invalid; the message names the argument.

    Examples
    --------
    >>> ds = make_cells(4, n_classes=2, size=64, random_state=0)
    >>> ds.images.shape, ds.images.dtype.name, ds.labels.tolist()
    ((4, 64, 64, 3), 'uint8', [0, 1, 0, 1])
    >>> bool((ds.nucleus <= ds.masks).all())
    True
    """
    n_samples = _check_int(n_samples, "n_samples", 1)
    n_classes = _check_int(n_classes, "n_classes", 1)
    h, w = _check_size(size)
    red_range = _check_count_range(n_red_cells, "n_red_cells", 0, 1000)
    white_range = _check_count_range(n_white_cells, "n_white_cells", 0, _MAX_WHITE_CELLS)
    if cytoplasm not in _CYTOPLASM:
        raise ValueError(f"cytoplasm: expected one of {sorted(_CYTOPLASM)}, got {cytoplasm!r}")
    capacity = _white_cell_capacity(h, w)
    if white_range[1] > capacity:
        raise ValueError(f"n_white_cells: at most {capacity} white cell(s) fit in a "
                         f"{h}x{w} image, got {n_white_cells!r}; use fewer cells or a "
                         "larger size")
    stain_jitter = _check_float(stain_jitter, "stain_jitter", 0.0, 0.5)
    root = _root_seed(random_state)

    images = np.empty((n_samples, h, w, 3), np.uint8)
    cell_labels = np.zeros((n_samples, h, w), np.int32)
    nucleus = np.zeros((n_samples, h, w), bool)
    red = np.zeros((n_samples, h, w), bool)
    labels = np.arange(n_samples, dtype=np.int64) % n_classes
    class_names = tuple(f"class_{c}" for c in range(n_classes))
    params: list[dict] = []
    for i in range(n_samples):
        rng = np.random.default_rng(
            np.random.SeedSequence(root.entropy, spawn_key=tuple(root.spawn_key) + (i,)))
        label = int(labels[i])
        p = _render(rng, images[i], cell_labels[i], nucleus[i], red[i],
                    _class_profile(label, n_classes), red_range, white_range, stain_jitter,
                    _CYTOPLASM[cytoplasm])
        params.append({"index": i, "label": label, "class_name": class_names[label], **p})
    masks = cell_labels > 0
    return SyntheticCells(images=images, labels=labels, masks=masks, nucleus=nucleus,
                          cytoplasm=masks & ~nucleus, cell_labels=cell_labels,
                          red_cells=red & ~masks, class_names=class_names, params=params)


# =============================================================================
# Private helpers: argument checks
# =============================================================================

_MAX_WHITE_CELLS = 16
_MIN_SIDE = 32


def _check_int(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name}: expected an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name}: must be >= {minimum}, got {value}")
    return int(value)


def _check_float(value, name: str, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name}: expected a number, got {value!r}")
    value = float(value)
    if not (math.isfinite(value) and lo <= value <= hi):
        raise ValueError(f"{name}: must lie in [{lo:g}, {hi:g}], got {value!r}")
    return value


def _check_size(size) -> tuple[int, int]:
    if isinstance(size, numbers.Integral) and not isinstance(size, bool):
        dims = (size, size)
    elif isinstance(size, Sequence) and not isinstance(size, (str, bytes)) and len(size) == 2:
        dims = tuple(size)
    else:
        raise ValueError(f"size: expected an int or a (height, width) pair, got {size!r}")
    out = []
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, numbers.Integral):
            raise ValueError(f"size: expected integers, got {size!r}")
        if d < _MIN_SIDE:
            raise ValueError(f"size: every side must be >= {_MIN_SIDE} pixels, got {size!r}")
        out.append(int(d))
    return out[0], out[1]


def _check_count_range(value, name: str, lo: int, hi: int) -> tuple[int, int]:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        pair = (value, value)
    elif isinstance(value, Sequence) and not isinstance(value, (str, bytes)) and len(value) == 2:
        pair = tuple(value)
    else:
        raise ValueError(f"{name}: expected an int or an inclusive (low, high) pair, "
                         f"got {value!r}")
    if any(isinstance(v, bool) or not isinstance(v, numbers.Integral) for v in pair):
        raise ValueError(f"{name}: expected integers, got {value!r}")
    a, b = int(pair[0]), int(pair[1])
    if a > b:
        raise ValueError(f"{name}: low must be <= high, got {value!r}")
    if a < lo or b > hi:
        raise ValueError(f"{name}: values must lie in [{lo}, {hi}], got {value!r}")
    return a, b


def _root_seed(random_state) -> np.random.SeedSequence:
    if random_state is None:
        return np.random.SeedSequence()
    if isinstance(random_state, np.random.SeedSequence):
        return random_state
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(f"random_state: must be non-negative, got {random_state}")
        return np.random.SeedSequence(int(random_state))
    if isinstance(random_state, np.random.Generator):
        return np.random.SeedSequence(random_state.integers(0, 2**32, size=4).tolist())
    if isinstance(random_state, np.random.RandomState):
        return np.random.SeedSequence(random_state.randint(0, 2**32, size=4,
                                                           dtype=np.uint64).tolist())
    raise ValueError("random_state: expected None, an int, a numpy Generator or "
                     f"SeedSequence, got {type(random_state).__name__}")


# =============================================================================
# Private helpers: geometry
# =============================================================================

_THETA = np.linspace(0.0, 2.0 * np.pi, 720, endpoint=False)


@dataclass
class _Star:
    """Star-shaped outline r(theta) = radius * ellipse(theta) * (1 + harmonics)."""

    cy: float
    cx: float
    radius: float
    aspect: float = 1.0          # minor / major semi-axis
    angle: float = 0.0           # major-axis direction (radians)
    ks: tuple = ()               # harmonic orders
    amps: tuple = ()             # relative amplitudes
    phases: tuple = ()
    _max_unit: float | None = field(default=None, init=False, repr=False)

    def unit_radius(self, theta):
        """Outline radius for ``radius == 1`` in the directions ``theta``."""
        return self.unit_radius_cs(np.cos(theta), np.sin(theta))

    def unit_radius_cs(self, cos_t, sin_t):
        """Same as :meth:`unit_radius` from the cosine and sine of the direction.

        Avoids transcendental functions: harmonics come from the Chebyshev
        recurrences cos((k+1)p) = 2 cos(p) cos(kp) - cos((k-1)p) (same for sin).
        """
        ca, sa = math.cos(self.angle), math.sin(self.angle)
        c = cos_t * ca + sin_t * sa           # cos(phi), phi = theta - angle
        s = sin_t * ca - cos_t * sa           # sin(phi)
        r = self.aspect / np.sqrt((self.aspect * c) ** 2 + s ** 2)
        if self.ks:
            pert = np.ones_like(r)
            ck_1, sk_1, ck, sk = np.ones_like(c), np.zeros_like(s), c, s   # k-1 = 0, k = 1
            k = 1
            for order, amp, ph in sorted(zip(self.ks, self.amps, self.phases)):
                while k < order:
                    ck_1, sk_1, ck, sk = ck, sk, 2 * c * ck - ck_1, 2 * c * sk - sk_1
                    k += 1
                # cos(k phi + ph) = cos(k phi) cos(ph) - sin(k phi) sin(ph)
                pert += amp * (ck * math.cos(ph) - sk * math.sin(ph))
            r = r * pert
        return r

    def max_radius(self) -> float:
        # +0.5 px covers the sampling of theta and the anti-aliasing half pixel.
        if self._max_unit is None:
            self._max_unit = float(self.unit_radius(_THETA).max())
        return self.radius * self._max_unit + 0.5

    def coverage(self, yy, xx):
        """Anti-aliased coverage in [0, 1] and normalised radius d / r(theta)."""
        dy = yy - self.cy
        dx = xx - self.cx
        d = np.hypot(dy, dx)
        inv = 1.0 / np.maximum(d, 1e-12)
        r = self.radius * self.unit_radius_cs(np.where(d > 0, dx * inv, 1.0), dy * inv)
        return np.clip(r - d + 0.5, 0.0, 1.0), d / r


def _random_star(rng, cy, cx, radius, aspect_range, ks, max_amps) -> _Star:
    return _Star(cy, cx, radius, aspect=float(rng.uniform(*aspect_range)),
                 angle=float(rng.uniform(0, np.pi)), ks=tuple(ks),
                 amps=tuple(float(v) for v in rng.uniform(0, max_amps)),
                 phases=tuple(float(v) for v in rng.uniform(0, 2 * np.pi, len(ks))))


def _bbox(cy, cx, rmax, h, w, pad=2):
    y0 = max(0, int(math.floor(cy - rmax)) - pad)
    x0 = max(0, int(math.floor(cx - rmax)) - pad)
    y1 = min(h, int(math.ceil(cy + rmax)) + pad + 1)
    x1 = min(w, int(math.ceil(cx + rmax)) + pad + 1)
    return y0, y1, x0, x1


def _grid(y0, y1, x0, x1):
    return (np.arange(y0, y1, dtype=np.float64)[:, None],
            np.arange(x0, x1, dtype=np.float64)[None, :])


# =============================================================================
# Private helpers: the renderer
# =============================================================================

def _class_profile(c: int, n_classes: int) -> dict:
    t = c / (n_classes - 1) if n_classes > 1 else 0.0
    return {
        "t": t,
        "nucleus_fraction": 0.45 + 0.40 * t,    # target nucleus area / cell area
        "cell_radius": 0.235 - 0.035 * t,        # fraction of the short side
        "chromatin_scale": 0.09 - 0.055 * t,     # texture sigma / cell radius
        "chromatin_contrast": 9.0 - 4.0 * t,     # L* amplitude of the texture
        "lobed_probability": 0.6 if c == 0 else 0.0,
    }


def _jitter(rng, sd: float) -> float:
    return float(1.0 + sd * np.clip(rng.standard_normal(), -2.0, 2.0))


def _stained(lab, l_shift, f_chroma):
    """Apply the stain jitter to a base colour: shift L*, scale a* and b*."""
    L, a, b = lab
    return (L + l_shift, a * f_chroma, b * f_chroma)


def _low_frequency(rng, h, w):
    """Smooth random field (about unit amplitude) varying over the whole image."""
    coarse = rng.standard_normal((4, 4)).astype(np.float32)
    return cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)


def _smooth_noise(rng, shape, sigma):
    z = rng.standard_normal(shape).astype(np.float32)
    z = cv2.GaussianBlur(z, (0, 0), sigmaX=max(float(sigma), 0.3), borderType=cv2.BORDER_REFLECT)
    sd = float(z.std())
    return z / sd if sd > 0 else z


def _white_layout(h: int, w: int):
    """Border margin, gap between white cells and smallest white-cell radius (px)."""
    side = min(h, w)
    return 2.0, 3.0 + 0.03 * side, max(4.5, 0.09 * side)


# Upper bound of a white-cell outline radius relative to its radius (ellipse
# aspect <= 1 plus the largest harmonic amplitudes drawn in _render).
_WHITE_SHAPE_MAX = 1.0 + 0.03 + 0.02 + 0.012


def _grid_slots(n: int, h: int, w: int):
    """Best rows x cols grid for n cells: (rows, cols, radius available per slot)."""
    margin, gap, _ = _white_layout(h, w)
    best = None
    for rows in range(1, n + 1):
        cols = -(-n // rows)
        pitch_y = (h - 1 - 2 * margin + gap) / rows
        pitch_x = (w - 1 - 2 * margin + gap) / cols
        avail = min(pitch_y, pitch_x) / 2 - gap / 2
        if best is None or avail > best[2]:
            best = (rows, cols, avail)
    return best


def _white_cell_capacity(h: int, w: int) -> int:
    """How many white cells of the smallest radius always fit (grid layout)."""
    r_min = _white_layout(h, w)[2]
    n = 0
    while n < _MAX_WHITE_CELLS and _grid_slots(n + 1, h, w)[2] >= r_min * _WHITE_SHAPE_MAX + 0.5:
        n += 1
    return n


def _place_white_cells(rng, stars, h, w):
    """Place the white cells inside the image without contact; shrink if needed.

    Random placement is tried at decreasing scales down to the smallest
    radius; past that, the cells are put on a jittered grid, which always
    fits when ``len(stars) <= _white_cell_capacity(h, w)``.
    """
    margin, gap, r_min = _white_layout(h, w)
    scale = 1.0
    while True:
        placed = []
        for s in stars:
            rmax = (s.max_radius() - 0.5) * scale + 0.5
            ylo, yhi = rmax + margin, h - 1 - rmax - margin
            xlo, xhi = rmax + margin, w - 1 - rmax - margin
            if ylo > yhi or xlo > xhi:
                break
            for _try in range(80):
                cy, cx = rng.uniform(ylo, yhi), rng.uniform(xlo, xhi)
                if all(math.hypot(cy - py, cx - px) >= rmax + pr + gap
                       for py, px, pr in placed):
                    placed.append((cy, cx, rmax))
                    break
            else:
                break
        if len(placed) == len(stars):
            for s, (cy, cx, _r) in zip(stars, placed):
                s.cy, s.cx = float(cy), float(cx)
                s.radius *= scale
            return scale
        if min(s.radius for s in stars) * scale * 0.92 < r_min:
            break
        scale *= 0.92
    # grid fallback: one slot per cell, cells scaled to fit their slot
    rows, cols, avail = _grid_slots(len(stars), h, w)
    pitch_y = (h - 1 - 2 * margin + gap) / rows
    pitch_x = (w - 1 - 2 * margin + gap) / cols
    slots = rng.permutation(rows * cols)[:len(stars)]
    scale = min(scale, min((avail - 0.5) / (s.max_radius() - 0.5) for s in stars))
    for s, slot in zip(stars, slots):
        s.radius *= scale
        slack = max(avail - s.max_radius(), 0.0)
        r, c = divmod(int(slot), cols)
        s.cy = float(margin - gap / 2 + pitch_y * (r + 0.5) + rng.uniform(-slack, slack))
        s.cx = float(margin - gap / 2 + pitch_x * (c + 0.5) + rng.uniform(-slack, slack))
    return scale


class _Nucleus:
    """A nucleus outline on a cell's bounding-box grid, as a function of its scale.

    A single-lobed nucleus blends the cell outline with its own irregular
    ellipse (``conformity`` is the weight of the cell outline, so nuclei that
    fill most of the cell follow its shape); a lobed nucleus is the union of
    2-3 overlapping irregular ellipses arranged on an arc. ``coverage(s)``
    gives the anti-aliased coverage at scale ``s`` (pixels).
    """

    _KS, _AMPS = (3, 4, 5), (0.05, 0.035, 0.02)

    def __init__(self, rng, cell: _Star, yy, xx, cy, cx, *, lobed: bool, conformity: float):
        self.yy, self.xx = yy, xx
        self.cell = cell
        self.conformity = conformity
        self.lobes = []
        if lobed:
            n = int(rng.integers(2, 4))
            # lobes on an arc whose middle points along the cell's minor axis,
            # so that the outer lobes lie towards the ends of the major axis
            base = cell.angle + np.pi / 2 + rng.choice((0.0, np.pi)) + rng.normal(0, 0.3)
            spread = rng.uniform(1.1, 1.4) if n == 3 else rng.uniform(0.75, 0.95)
            dist = rng.uniform(0.45, 0.55)
            angs = base + (np.arange(n) - (n - 1) / 2) * spread
            oy, ox = dist * np.sin(angs), dist * np.cos(angs)
            oy, ox = oy - oy.mean(), ox - ox.mean()       # centre the lobes on the nucleus
            for j in range(n):
                tmpl = _random_star(rng, 0.0, 0.0, rng.uniform(0.45, 0.55), (0.75, 1.0),
                                    self._KS, self._AMPS)
                self.lobes.append((float(oy[j]), float(ox[j]), tmpl))
            self.own = None
        else:
            self.own = _random_star(rng, 0.0, 0.0, 1.0, (0.72, 1.0), self._KS, self._AMPS)
        self.move_to(cy, cx)

    @property
    def n_lobes(self) -> int:
        return max(1, len(self.lobes))

    def move_to(self, cy: float, cx: float) -> None:
        self.cy, self.cx = float(cy), float(cx)
        if self.own is not None:   # the geometry does not depend on the scale: cache it
            dy, dx = self.yy - self.cy, self.xx - self.cx
            self._d = d = np.hypot(dy, dx)
            inv = 1.0 / np.maximum(d, 1e-12)
            cos_t, sin_t = np.where(d > 0, dx * inv, 1.0), dy * inv
            self._u = (self.conformity * self.cell.unit_radius_cs(cos_t, sin_t)
                       + (1.0 - self.conformity) * self.own.unit_radius_cs(cos_t, sin_t))

    def coverage(self, s: float):
        if self.own is not None:
            return np.clip(s * self._u - self._d + 0.5, 0.0, 1.0)
        cov = None
        for dy, dx, t in self.lobes:
            star = _Star(self.cy + s * dy, self.cx + s * dx, s * t.radius, t.aspect, t.angle,
                         t.ks, t.amps, t.phases)
            c, _ = star.coverage(self.yy, self.xx)
            cov = c if cov is None else np.maximum(cov, c)
        return cov


def _fit_nucleus(nuc: _Nucleus, cell, inner, target_area: float, s0: float):
    """Scale the nucleus to ~target_area pixels, shrinking it until it lies in ``inner``.

    Returns (scale, coverage, hard mask). The hard mask is never empty.
    """
    s = s0
    for _ in range(2):
        area = int((nuc.coverage(s) >= 0.5).sum())
        s *= math.sqrt(target_area / max(area, 1))

    def fits(cov):
        hard = cov >= 0.5
        return hard.any() and not hard[~inner].any(), hard

    cov = nuc.coverage(s)
    ok, hard = fits(cov)
    if ok:
        return s, cov, hard
    for _attempt in range(2):
        lo, hi, best = 0.0, s, None
        for _ in range(9):
            mid = 0.5 * (lo + hi)
            c_mid = nuc.coverage(mid)
            ok, h_mid = fits(c_mid)
            if ok:
                lo, best = mid, (mid, c_mid, h_mid)
            else:
                hi = mid
        if best is not None:
            return best
        nuc.move_to(nuc.cell.cy, nuc.cell.cx)     # off-centre too tight: recentre
    # Degenerate (not reached for the sizes make_cells accepts): the pixel
    # deepest inside the cell.
    depth = cv2.distanceTransform(cell.astype(np.uint8), cv2.DIST_L2, 5)
    cov = np.zeros(inner.shape)
    cov[np.unravel_index(np.argmax(depth), depth.shape)] = 1.0
    return 0.0, cov, cov >= 0.5


#: Cytoplasm colours of :func:`make_cells`: the strength of the azure stain
#: (1 lavender; a fraction of the way from the background to it otherwise).
_CYTOPLASM = {"lavender": 1.0, "pale": 0.3}


def _render(rng, out_rgb, out_labels, out_nucleus, out_red, profile,
            red_range, white_range, stain_jitter, cyto_strength=1.0) -> dict:
    """Paint one image in CIELAB and convert it to RGB into ``out_rgb``."""
    h, w = out_labels.shape
    side = float(min(h, w))

    # -- per-image stain and base colours --------------------------------------
    l_shift = 20.0 * (_jitter(rng, stain_jitter) - 1.0)       # sd 1 L* per 0.05
    f_eosin, f_azure = _jitter(rng, stain_jitter), _jitter(rng, stain_jitter)
    bg = (rng.uniform(89.5, 92.5), rng.uniform(1.0, 3.0), rng.uniform(2.5, 6.5))
    red_base = _stained((rng.uniform(71.5, 75.5), rng.uniform(8.0, 11.0),
                         rng.uniform(3.5, 8.5)), l_shift, f_eosin)
    cyto_base = _stained((rng.uniform(64.0, 70.0), rng.uniform(23.5, 26.0),
                          rng.uniform(-22.0, -15.0)), l_shift, f_azure)
    nuc_base = _stained((rng.uniform(39.0, 47.0), rng.uniform(31.0, 36.0),
                         rng.uniform(-37.0, -28.0)), l_shift, f_azure)
    if cyto_strength != 1.0:     # a paler cytoplasm, drawn without extra draws
        cyto_base = tuple(b + cyto_strength * (c - b) for b, c in zip(bg, cyto_base))

    # -- background with a smooth tint field; illumination is added at the end --
    lab = np.empty((h, w, 3), np.float32)
    lab[...] = bg
    lab[..., 1] += 0.35 * _low_frequency(rng, h, w)
    lab[..., 2] += 0.6 * _low_frequency(rng, h, w)
    illumination = 0.9 * _low_frequency(rng, h, w)

    # -- white cells: geometry and placement -----------------------------------
    n_white = int(rng.integers(white_range[0], white_range[1] + 1))
    whites = []
    for _ in range(n_white):
        frac = float(np.clip(rng.normal(profile["cell_radius"], 0.015), 0.18, 0.26))
        whites.append(_random_star(rng, 0.0, 0.0, frac * side, (0.82, 1.0), (3, 4, 5),
                                   (0.03, 0.02, 0.012)))
    shrink = _place_white_cells(rng, whites, h, w) if whites else 1.0

    # -- red cells: placed away from white cells, painted first -----------------
    n_red_target = int(rng.integers(red_range[0], red_range[1] + 1))
    gap_rw = 3.0 + 0.02 * side
    wmax = [(s.cy, s.cx, s.max_radius()) for s in whites]
    reds: list[_Star] = []
    for _ in range(n_red_target):
        star = _random_star(rng, 0.0, 0.0, rng.uniform(0.08, 0.11) * side, (0.85, 1.0), (3,),
                            (0.015,))
        rmax = star.max_radius()
        for _try in range(60):
            cy = rng.uniform(-0.3 * star.radius, h - 1 + 0.3 * star.radius)
            cx = rng.uniform(-0.3 * star.radius, w - 1 + 0.3 * star.radius)
            if any(math.hypot(cy - wy, cx - wx) < rmax + wr + gap_rw for wy, wx, wr in wmax):
                continue
            if any(math.hypot(cy - o.cy, cx - o.cx) < 0.55 * (star.radius + o.radius)
                   for o in reds):
                continue
            star.cy, star.cx = float(cy), float(cx)
            reds.append(star)
            break
    red_params = []
    for star in reds:
        y0, y1, x0, x1 = _bbox(star.cy, star.cx, star.max_radius(), h, w)
        cov, rho = star.coverage(*_grid(y0, y1, x0, x1))
        L = red_base[0] + rng.normal(0, 0.7)
        a = red_base[1] + rng.normal(0, 0.5)
        b = red_base[2] + rng.normal(0, 0.5)
        pallor = 0.5 * (1.0 + np.cos(np.pi * np.minimum(rho / 0.62, 1.0)))
        dL, da, db = rng.uniform(5.0, 8.0), rng.uniform(1.5, 3.0), rng.uniform(0.5, 1.5)
        col = np.stack([L + dL * pallor, a - da * pallor, b - db * pallor], axis=-1)
        overlap = out_red[y0:y1, x0:x1]           # where it lies on an earlier red cell,
        col[overlap] += (-5.0, 2.0, 1.0)          # light crosses two cells: darker
        _composite(lab[y0:y1, x0:x1], col, cov)
        out_red[y0:y1, x0:x1] |= cov >= 0.5
        red_params.append({"center": (star.cy, star.cx), "radius": star.radius,
                           "aspect": star.aspect, "angle": star.angle})

    # -- white cells: cytoplasm, nucleus, chromatin ----------------------------
    white_params = []
    kernel = np.ones((5, 5), np.uint8)   # 2 px (8-connected) cytoplasm rim
    for k, star in enumerate(whites, start=1):
        y0, y1, x0, x1 = _bbox(star.cy, star.cx, star.max_radius(), h, w, pad=3)
        yy, xx = _grid(y0, y1, x0, x1)
        cov_cell, _ = star.coverage(yy, xx)
        cell = cov_cell >= 0.5
        cell_area = int(cell.sum())
        inner = cv2.erode(cell.astype(np.uint8), kernel, borderType=cv2.BORDER_CONSTANT,
                          borderValue=0).astype(bool)

        lobed = bool(rng.random() < profile["lobed_probability"])
        target = float(np.clip(rng.normal(profile["nucleus_fraction"], 0.07), 0.25, 0.92))
        slack = star.radius * (1.0 - math.sqrt(target))
        off_r, off_a = rng.uniform(0.0, 0.5) * slack, rng.uniform(0, 2 * np.pi)
        nuc = _Nucleus(rng, star, yy, xx, star.cy + off_r * math.sin(off_a),
                       star.cx + off_r * math.cos(off_a), lobed=lobed,
                       conformity=float(np.clip(2.0 * target - 0.8, 0.15, 0.95)))
        s, cov_n, hard = _fit_nucleus(nuc, cell, inner, target * cell_area, star.radius)
        ncy, ncx = nuc.cy, nuc.cx

        # colours: cytoplasm with faint texture, nucleus with chromatin texture
        shape = cell.shape
        sub = lab[y0:y1, x0:x1]
        tex_c = _smooth_noise(rng, shape, 0.06 * star.radius)
        col = np.empty(shape + (3,), np.float32)
        col[..., 0] = cyto_base[0] + 1.2 * tex_c
        col[..., 1] = cyto_base[1] + 0.6 * tex_c
        col[..., 2] = cyto_base[2] + 0.6 * _smooth_noise(rng, shape, 0.1 * star.radius)
        _composite(sub, col, cov_cell)

        sigma = float(np.clip(rng.normal(profile["chromatin_scale"], 0.01), 0.015, 0.14)
                      * star.radius)
        sigma = max(sigma, 0.5)
        contrast = float(np.clip(rng.normal(profile["chromatin_contrast"], 1.0), 4.0, 10.0))
        z = _smooth_noise(rng, shape, sigma)
        # dark chromatin clumps (z > 0) and paler parachromatin (z < 0)
        dL = np.where(z > 0, -contrast * np.minimum(z / 2.0, 1.0),
                      0.5 * contrast * np.minimum(-z / 2.0, 1.0))
        col[..., 0] = nuc_base[0] + dL
        col[..., 1] = nuc_base[1] - 0.15 * dL
        col[..., 2] = nuc_base[2] + 0.2 * dL
        _composite(sub, col, cov_n)

        out_labels[y0:y1, x0:x1][cell] = k
        out_nucleus[y0:y1, x0:x1] |= hard
        nuc_area = int(hard.sum())
        white_params.append({
            "center": (star.cy, star.cx), "radius": star.radius, "aspect": star.aspect,
            "angle": star.angle, "cell_area": cell_area, "nucleus_area": nuc_area,
            "nucleus_fraction": nuc_area / cell_area,
            "target_nucleus_fraction": target, "nucleus_center": (ncy, ncx),
            "nucleus_scale": s, "n_lobes": nuc.n_lobes,
            "chromatin_sigma": sigma, "chromatin_contrast": contrast,
        })

    # -- illumination, sensor noise, conversion ---------------------------------
    lab[..., 0] += illumination
    lab += rng.standard_normal((h, w, 3)).astype(np.float32) * np.float32([0.7, 0.45, 0.45])
    rgb = cv2.cvtColor(lab, cv2.COLOR_Lab2RGB)
    np.clip(rgb * 255.0 + 0.5, 0, 255, out=rgb)
    out_rgb[...] = rgb.astype(np.uint8)

    return _py({
        "n_white_cells": n_white, "n_red_cells": len(reds),
        "nucleus_fraction": (float(np.mean([p["nucleus_fraction"] for p in white_params]))
                             if white_params else math.nan),
        "cell_radius": (float(np.mean([p["radius"] for p in white_params]))
                        if white_params else math.nan),
        "white_cell_shrink": shrink,
        "white_cells": white_params, "red_cells": red_params,
        "profile": dict(profile),
        "stain": {"lightness_shift": l_shift, "eosin": f_eosin, "azure": f_azure},
        "background_lab": bg, "red_cell_lab": red_base, "cytoplasm_lab": cyto_base,
        "nucleus_lab": nuc_base,
    })


def _composite(dst, colour, coverage) -> None:
    """In place: ``dst = dst * (1 - coverage) + colour * coverage``."""
    cov = coverage.astype(np.float32)[..., None]
    dst += (colour - dst) * cov


def _py(obj: Any):
    """Convert numpy scalars / tuples inside params to plain Python values."""
    if isinstance(obj, dict):
        return {k: _py(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_py(v) for v in obj)
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


# =============================================================================
# Folder loaders
# =============================================================================

class DatasetLayoutError(ValueError):
    """A folder does not have the layout a data set loader expects.

    Raised, for example, when a folder holds no class sub-folders with
    images, only one class, none of the class folders of a known data set,
    or files whose names contradict their folder. The message names the
    folder and shows the expected layout. It is a :class:`ValueError`, so
    ``except ValueError`` catches it too.

    Examples
    --------
    >>> import tempfile
    >>> from leukfeat.datasets import DatasetLayoutError, load_folder
    >>> try:
    ...     load_folder(tempfile.mkdtemp())
    ... except DatasetLayoutError as err:
    ...     print("<root>/<class>/<image>" in str(err))
    True
    """


class DatasetWarning(ListingWarning):
    """Something in a data set folder was skipped while loading it.

    Issued for image files whose names do not follow a data set's naming
    scheme, for unrecognised sub-folders next to the class folders, for
    images lying outside any class folder, for entries that cannot be
    followed where class folders are looked for (symbolic links that loop
    or dangle) and, through :func:`leukfeat.io.list_images`, for folders
    that cannot be listed. The warning says how many files or folders were
    skipped and gives examples. A subclass of
    :class:`leukfeat.io.ListingWarning`.
    """


@dataclass(frozen=True, eq=False, repr=False)
class LabelledImages:
    """Image files found on disk with their labels (and patient ids).

    Returned by the loaders (:func:`load_folder`, :func:`load_taleghani`,
    :func:`load_cnmc`, :func:`load_allidb`, :func:`load_pbc`,
    :func:`load_dataset`). Nothing is read from the images; use
    :func:`leukfeat.io.read_image` or :func:`leukfeat.io.iter_images` on
    :attr:`paths`. The constructor takes the attributes below as arguments
    (sequences are converted: ``paths`` to a list of str, ``labels`` and
    ``groups`` to read-only unicode arrays).

    Attributes
    ----------
    paths : list of str
        The image files, ``str(path)`` of each, ``root``-joined (absolute
        only when ``root`` was), in a deterministic order documented by each
        loader.
    labels : numpy.ndarray of str, shape (N,)
        The class of each image (a unicode ``'<U'`` array, read-only).
    groups : numpy.ndarray of str, shape (N,), or None
        The patient id of each image where the data set has them (C-NMC),
        for patient-wise splits (e.g. ``GroupKFold``); None otherwise. Read
        only.
    class_names : list of str
        The classes, in a fixed order: sorted for :func:`load_folder`,
        :func:`load_cnmc` and :func:`load_allidb`, the canonical order of the
        data set for :func:`load_taleghani` (Benign, Early, Pre, Pro) and
        :func:`load_pbc`. Every label is in it; a subset keeps the
        ``class_names`` of its parent, so a class may have no image in it.
    name : str
        The loader that produced it (``"folder"``, ``"taleghani"``, ...).
    root : str
        The folder that was passed to the loader, as ``str(Path(root))``.

    Raises
    ------
    ValueError
        If the fields are inconsistent: lengths differ, a label is not in
        ``class_names``, ``class_names`` repeats a name, or an array is not
        one-dimensional.

    Examples
    --------
    >>> from leukfeat.datasets import LabelledImages
    >>> ds = LabelledImages(paths=["a/1.png", "a/2.png", "b/3.png"],
    ...                     labels=["a", "a", "b"], groups=None,
    ...                     class_names=["a", "b"], name="folder", root=".")
    >>> len(ds), ds.class_counts
    (3, {'a': 2, 'b': 1})
    >>> ds.subset([2, 0]).paths
    ['b/3.png', 'a/1.png']
    """

    paths: list
    labels: np.ndarray
    groups: np.ndarray | None
    class_names: list
    name: str
    root: str

    def __post_init__(self) -> None:
        paths = [str(os.fsdecode(os.fspath(p))) for p in self.paths]
        n = len(paths)
        labels = _readonly_str_array(self.labels, "labels")
        if len(labels) != n:
            raise ValueError(f"labels: expected {n} entries (one per path), got {len(labels)}")
        groups = self.groups
        if groups is not None:
            groups = _readonly_str_array(groups, "groups")
            if len(groups) != n:
                raise ValueError(f"groups: expected {n} entries (one per path), "
                                 f"got {len(groups)}")
        class_names = [str(c) for c in self.class_names]
        if len(set(class_names)) != len(class_names):
            raise ValueError(f"class_names: names must be unique, got {class_names}")
        unknown = sorted(set(labels.tolist()) - set(class_names))
        if unknown:
            raise ValueError(f"labels: {unknown} not in class_names {class_names}")
        object.__setattr__(self, "paths", paths)
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "groups", groups)
        object.__setattr__(self, "class_names", class_names)
        object.__setattr__(self, "name", str(self.name))
        object.__setattr__(self, "root", str(self.root))

    def __len__(self) -> int:
        return len(self.paths)

    def __repr__(self) -> str:
        n_groups = "None" if self.groups is None else f"{len(set(self.groups.tolist()))} groups"
        return (f"LabelledImages(name={self.name!r}, n_images={len(self)}, "
                f"class_counts={self.class_counts}, groups={n_groups}, root={self.root!r})")

    @property
    def class_counts(self) -> dict:
        """Number of images of each class, in ``class_names`` order (a dict)."""
        counts = {c: 0 for c in self.class_names}
        for label in self.labels.tolist():
            counts[label] += 1
        return counts

    def subset(self, indices) -> "LabelledImages":
        """Select images by position.

        Parameters
        ----------
        indices : sequence of int, integer array, boolean mask or slice
            Positions to keep, in the order given (negative positions count
            from the end; repeats are kept), or a boolean mask of length
            ``len(self)``.

        Returns
        -------
        LabelledImages
            The selected images with their labels and groups; ``class_names``,
            ``name`` and ``root`` are those of ``self``.

        Raises
        ------
        IndexError
            If a position is out of range, a mask has the wrong length, or
            `indices` is not integers or booleans.
        """
        n = len(self)
        if isinstance(indices, slice):
            sel = np.arange(n)[indices]
        else:
            sel = np.asarray(indices)
            if sel.dtype == bool:
                if sel.shape != (n,):
                    raise IndexError(f"boolean index must have shape ({n},), got {sel.shape}")
                sel = np.flatnonzero(sel)
            elif sel.size == 0 and sel.ndim == 1:
                sel = sel.astype(np.intp)
            elif sel.ndim != 1 or not np.issubdtype(sel.dtype, np.integer):
                raise IndexError("indices: expected a 1-D sequence of integers, a boolean "
                                 f"mask or a slice, got {indices!r}")
            bad = sel[(sel < -n) | (sel >= n)]
            if bad.size:
                raise IndexError(f"index {int(bad[0])} is out of range for {n} images")
            sel = sel % max(n, 1)
        sel = [int(i) for i in sel]
        return LabelledImages(
            paths=[self.paths[i] for i in sel], labels=self.labels[sel],
            groups=None if self.groups is None else self.groups[sel],
            class_names=self.class_names, name=self.name, root=self.root)

    def stratified_subset(self, n: int, random_state=0) -> "LabelledImages":
        """A random subset of about `n` images keeping the class proportions.

        Each class present gets ``n * count / len(self)`` images rounded by
        largest remainder, and at least one, so the result has exactly `n`
        images when ``n_classes <= n < len(self)`` (``n_classes`` if `n` is
        smaller; everything if ``n >= len(self)``). Images are drawn without
        replacement and returned in their original order. Groups are not
        taken into account.

        Parameters
        ----------
        n : int
            Target number of images (>= 1).
        random_state : None, int, numpy.random.Generator or numpy.random.SeedSequence, default 0
            Seed of the draw; the same seed gives the same subset.

        Returns
        -------
        LabelledImages

        Raises
        ------
        ValueError
            If `n` is not a positive integer or `random_state` is invalid.

        Examples
        --------
        >>> from leukfeat.datasets import LabelledImages
        >>> ds = LabelledImages(paths=[f"{i}.png" for i in range(10)],
        ...                     labels=["a"] * 7 + ["b"] * 3, groups=None,
        ...                     class_names=["a", "b"], name="folder", root=".")
        >>> ds.stratified_subset(4).class_counts
        {'a': 3, 'b': 1}
        """
        n = _check_int(n, "n", 1)
        total = len(self)
        if n >= total:
            return self.subset(np.arange(total))
        classes, inverse, counts = np.unique(self.labels, return_inverse=True,
                                             return_counts=True)
        target = max(n, len(classes))
        exact = counts * (n / total)
        quota = np.minimum(np.maximum(np.floor(exact).astype(np.int64), 1), counts)
        while quota.sum() < target:  # largest remainder first
            room = np.where(quota < counts, exact - quota, -np.inf)
            quota[int(np.argmax(room))] += 1
        while quota.sum() > target:  # the minimum of one pushed us over
            excess = np.where(quota > 1, quota - exact, -np.inf)
            quota[int(np.argmax(excess))] -= 1
        rng = np.random.default_rng(_root_seed(random_state))
        chosen = [rng.choice(np.flatnonzero(inverse == c), size=int(q), replace=False)
                  for c, q in enumerate(quota)]
        return self.subset(np.sort(np.concatenate(chosen)))


def _readonly_str_array(values, name: str) -> np.ndarray:
    arr = np.array(values, dtype=str, copy=True)
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D sequence, got shape {arr.shape}")
    arr.setflags(write=False)
    return arr


# -- private helpers of the loaders -------------------------------------------

_EXTENSIONS_TEXT = ", ".join(sorted(IMAGE_EXTENSIONS))
_MAX_EXAMPLES = 5


def _check_root(root) -> Path:
    """Path of an existing folder, or FileNotFoundError / NotADirectoryError."""
    try:
        fspath = os.fspath(root)
    except TypeError:
        raise TypeError("root: expected a str or os.PathLike folder path, "
                        f"got {type(root).__name__}") from None
    path = Path(os.fsdecode(fspath))
    if not path.exists():
        raise FileNotFoundError(errno.ENOENT, "data set folder not found", str(path))
    if not path.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "data set root is not a folder", str(path))
    return path


def _entry_is_dir(entry) -> bool:
    """``entry.is_dir()`` following links; False for a link that loops or
    cannot be followed (ELOOP, EACCES, ...) rather than an error."""
    try:
        return entry.is_dir(follow_symlinks=True)
    except OSError:
        return False


def _scan(folder: Path) -> list:
    """The entries of `folder`; a folder that cannot be listed is warned about."""
    try:
        return list(os.scandir(folder))
    except OSError as exc:
        _warn(f"{folder}: skipped a folder that cannot be listed ({exc.strerror or exc})")
        return []


def _subdirs(folder: Path) -> list[Path]:
    """Non-hidden sub-folders (symbolic links followed), sorted by name. A
    symbolic link that loops or dangles is not a folder: it is warned about
    unless its name is that of an image file (then reading it reports it)."""
    out, broken = [], []
    for e in _scan(folder):
        if e.name.startswith("."):
            continue
        if _entry_is_dir(e):
            out.append(Path(e.path))
        elif e.is_symlink() and not is_image_file(e.name) and not os.path.exists(e.path):
            broken.append(e.name)
    if broken:
        _warn(f"{folder}: skipped {len(broken)} symbolic link(s) that loop or point to "
              f"nothing: {_examples(sorted(broken))}")
    return sorted(out, key=lambda p: p.name)


def _loose_images(folder: Path) -> list[Path]:
    """Entries named like image files directly inside `folder` (not in a
    sub-folder), readable or not."""
    return sorted(Path(e.path) for e in _scan(folder)
                  if is_image_file(e.name) and not _entry_is_dir(e))


def _examples(items, limit: int = _MAX_EXAMPLES) -> str:
    items = [str(i) for i in items]
    text = ", ".join(repr(i) for i in items[:limit])
    return text + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")


def _warn(message: str) -> None:
    warnings.warn(message, DatasetWarning, stacklevel=3)


def _normalise_name(name: str) -> str:
    """Case-fold and turn brackets, dashes and underscores into single spaces."""
    return " ".join(re.sub(r"[\[\]()_\-]+", " ", name.casefold()).split())


def _class_folders(folder: Path, match) -> tuple[dict, list[Path]]:
    """Map class -> sub-folder of `folder` via ``match(name)``; also the unmatched ones.

    Raises DatasetLayoutError when two sub-folders map to the same class.
    """
    found: dict = {}
    unmatched = []
    for sub in _subdirs(folder):
        cls = match(sub.name)
        if cls is None:
            unmatched.append(sub)
        elif cls in found:
            raise DatasetLayoutError(
                f"{folder}: both {found[cls].name!r} and {sub.name!r} are folders of class "
                f"{cls!r}; keep one of them")
        else:
            found[cls] = sub
    return found, unmatched


def _locate(root: Path, match, max_depth: int = 2) -> list[Path]:
    """Shallowest folders (root, children, grandchildren) holding class folders."""
    level = [root]
    for _ in range(max_depth + 1):
        hits = [f for f in level if any(match(s.name) is not None for s in _subdirs(f))]
        if hits:
            return hits
        level = [s for f in level for s in _subdirs(f)]
    return []


def _ambiguous(root: Path, hits: list[Path], what: str) -> DatasetLayoutError:
    rel = [str(h.relative_to(root)) for h in hits]
    return DatasetLayoutError(
        f"{root}: found {what} in several folders ({_examples(rel)}); point root at "
        "the one to load")


def _load_class_folders(root: Path, data: Path, match, canonical: list, name: str,
                        layout: str) -> LabelledImages:
    """Shared body of the loaders with one folder per (known) class."""
    folders, unmatched = _class_folders(data, match)
    if unmatched:
        _warn(f"{data}: ignored {len(unmatched)} sub-folder(s) that are not {name} class "
              f"folders: {_examples(s.name for s in unmatched)}")
    paths: list[str] = []
    labels: list[str] = []
    for cls in canonical:
        if cls in folders:
            files = list_images(folders[cls])
            paths += [str(f) for f in files]
            labels += [cls] * len(files)
    if not paths:
        raise DatasetLayoutError(
            f"{data}: the {name} class folders hold no images "
            f"(extensions {_EXTENSIONS_TEXT}); expected {layout}")
    present = [c for c in canonical if c in set(labels)]
    return LabelledImages(paths=paths, labels=labels, groups=None, class_names=present,
                          name=name, root=str(root))


# -- load_folder -----------------------------------------------------------------

_FOLDER_LAYOUT = ("the layout <root>/<class>/<image> (one sub-folder per class, at least "
                  f"two classes, image extensions {_EXTENSIONS_TEXT})")


def load_folder(root) -> LabelledImages:
    """Load a data set stored as one sub-folder per class.

    The layout is ``<root>/<class>/<image>``: every non-hidden sub-folder of
    `root` that holds at least one image is a class, named after the folder
    (exactly as spelled, so ``Blast`` and ``blast`` would be two classes).
    Images in nested folders inside a class folder
    (``<root>/<class>/<any>/<image>``) belong to that class. An image is a
    file whose extension, in any letter case, is one of
    :data:`leukfeat.io.IMAGE_EXTENSIONS` (see :func:`leukfeat.io.list_images`);
    other files, hidden files and hidden folders (names starting with ``.``)
    are ignored. Symbolic links to class folders are followed; links to
    folders inside a class folder are not.

    Parameters
    ----------
    root : str or os.PathLike
        The data set folder.

    Returns
    -------
    LabelledImages
        ``name="folder"``, ``groups=None``, ``class_names`` sorted; paths
        sorted by class folder name, then by their path inside it.

    Raises
    ------
    FileNotFoundError
        If `root` does not exist (the message names it).
    NotADirectoryError
        If `root` is a file.
    DatasetLayoutError
        If fewer than two sub-folders hold images; the message shows the
        expected layout.
    TypeError
        If `root` is not a path.

    Warns
    -----
    DatasetWarning
        If images lie directly in `root`, outside any class folder (they are
        ignored).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from leukfeat.datasets import load_folder
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ["blast/a.PNG", "blast/b.jpg", "normal/c.tif", "normal/notes.txt"]:
    ...     (root / name).parent.mkdir(exist_ok=True)
    ...     _ = (root / name).write_bytes(b"")
    >>> ds = load_folder(root)
    >>> ds.class_names, ds.labels.tolist()
    (['blast', 'normal'], ['blast', 'blast', 'normal'])
    """
    root_path = _check_root(root)
    paths: list[str] = []
    labels: list[str] = []
    for sub in _subdirs(root_path):
        files = list_images(sub)
        paths += [str(f) for f in files]
        labels += [sub.name] * len(files)
    classes = sorted(set(labels))
    loose = _loose_images(root_path)
    if not classes:
        extra = (f" (found {len(loose)} image(s) directly in the root folder: move them "
                 "into one sub-folder per class)" if loose else "")
        raise DatasetLayoutError(
            f"{root_path}: no class sub-folders with images found{extra}; expected "
            f"{_FOLDER_LAYOUT}")
    if len(classes) == 1:
        raise DatasetLayoutError(
            f"{root_path}: only one class sub-folder with images ({classes[0]!r}); expected "
            f"{_FOLDER_LAYOUT}. Is root a class folder rather than the data set folder?")
    if loose:
        _warn(f"{root_path}: ignored {len(loose)} image(s) outside the class sub-folders: "
              f"{_examples(p.name for p in loose)}")
    return LabelledImages(paths=paths, labels=labels, groups=None, class_names=classes,
                          name="folder", root=str(root_path))


# -- load_taleghani --------------------------------------------------------------

#: Canonical class order of the Taleghani ALL data set.
TALEGHANI_CLASSES = ["Benign", "Early", "Pre", "Pro"]

_TALEGHANI_ALIASES = {
    "benign": "Benign",
    "early": "Early", "early pre b": "Early", "malignant early pre b": "Early",
    "pre": "Pre", "pre b": "Pre", "malignant pre b": "Pre",
    "pro": "Pro", "pro b": "Pro", "malignant pro b": "Pro",
}

_TALEGHANI_LAYOUT = (
    "<root>/<class>/<image> with class folders Benign, Early, Pre, Pro (or the original "
    "download names 'Benign', '[Malignant] early Pre-B', '[Malignant] Pre-B', "
    "'[Malignant] Pro-B'; any letter case), possibly under <root>/Original/ and "
    "<root>/Segmented/")


def _taleghani_class(name: str):
    return _TALEGHANI_ALIASES.get(_normalise_name(name))


def load_taleghani(root, *, segmented: bool = False) -> LabelledImages:
    """Load the Taleghani ALL data set (Benign / Early / Pre / Pro).

    The peripheral-blood-smear images of acute lymphoblastic leukaemia from
    Taleghani Hospital (Aria et al., 2021; Ghaderzadeh et al., 2022), four
    classes: Benign (hematogones) and the malignant Early Pre-B, Pre-B and
    Pro-B ALL. Accepted layouts:

    * ``<root>/{Benign,Early,Pre,Pro}/<image>`` (the widely used form);
    * the original download names ``Benign``, ``[Malignant] early Pre-B``,
      ``[Malignant] Pre-B`` and ``[Malignant] Pro-B``, which map to Benign,
      Early, Pre and Pro (folder names are matched ignoring letter case,
      brackets, dashes and underscores; ``Pre-B``, ``Early Pre-B``, ... work
      too);
    * a root holding ``Original/`` and ``Segmented/`` copies, each with the
      class folders: ``Original`` is loaded unless ``segmented=True``.

    The class folders may also be one or two folder levels below `root`
    (e.g. ``<root>/images/Original/Benign``). Images nested inside a class
    folder belong to it; hidden and non-image files are ignored (as in
    :func:`load_folder`). Classes whose folders are missing or empty are
    left out (no error as long as one class has images). No patient ids are
    available, so ``groups`` is None: splits are image-level.

    Parameters
    ----------
    root : str or os.PathLike
        The data set folder.
    segmented : bool, default False
        Load the ``Segmented`` copy instead of the ``Original`` one. With
        True, a ``Segmented`` folder must exist (or `root` must be it).

    Returns
    -------
    LabelledImages
        ``name="taleghani"``, ``groups=None``, labels among ``"Benign"``,
        ``"Early"``, ``"Pre"``, ``"Pro"``; ``class_names`` the classes found,
        in that canonical order; paths ordered by class, then by path.

    Raises
    ------
    FileNotFoundError
        If `root` does not exist.
    NotADirectoryError
        If `root` is a file.
    DatasetLayoutError
        If none of the four class folders is found (the message lists the
        expected folder names), if they hold no images, if two folders map
        to the same class, if the requested Original / Segmented copy is
        missing, or if class folders are found in several unrelated places.

    Warns
    -----
    DatasetWarning
        For sub-folders next to the class folders that are not Taleghani
        classes (they are ignored).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from leukfeat.datasets import load_taleghani
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ["Benign/a.jpg", "[Malignant] Pro-B/b.jpg"]:
    ...     (root / name).parent.mkdir(exist_ok=True)
    ...     _ = (root / name).write_bytes(b"")
    >>> load_taleghani(root).labels.tolist()
    ['Benign', 'Pro']
    """
    root_path = _check_root(root)
    hits = _locate(root_path, _taleghani_class)
    if not hits:
        raise DatasetLayoutError(
            f"{root_path}: none of the Taleghani class folders found; expected "
            f"{_TALEGHANI_LAYOUT}")
    want = "segmented" if segmented else "original"
    if hits == [root_path]:
        data = root_path
        if segmented and root_path.name.casefold() != "segmented":
            raise DatasetLayoutError(
                f"{root_path}: segmented=True but the class folders are directly in root "
                "and there is no Segmented/ copy; expected <root>/Segmented/<class>/<image> "
                "(or root pointing at the Segmented folder)")
    else:
        by_name = {h.name.casefold(): h for h in hits}
        if want in by_name:
            data = by_name[want]
        elif {"original", "segmented"} & set(by_name):
            raise DatasetLayoutError(
                f"{root_path}: no {want.capitalize()}/ copy of the class folders found "
                f"(found {_examples(str(h.relative_to(root_path)) for h in hits)}); "
                f"expected <root>/{want.capitalize()}/<class>/<image>"
                + ("" if segmented else "; pass segmented=True to load the segmented copy"))
        elif len(hits) > 1:
            raise _ambiguous(root_path, hits, "Taleghani class folders")
        elif segmented:
            raise DatasetLayoutError(
                f"{root_path}: segmented=True but no Segmented/ folder was found; expected "
                "<root>/Segmented/<class>/<image>")
        else:
            data = hits[0]
    return _load_class_folders(root_path, data, _taleghani_class, TALEGHANI_CLASSES,
                               "taleghani", _TALEGHANI_LAYOUT)


# -- load_cnmc ---------------------------------------------------------------------

_CNMC_NAME = re.compile(r"UID_(H?\d+)_(\d+)_(\d+)_(all|hem)", re.IGNORECASE)
_CNMC_FOLD = re.compile(r"fold_.+", re.IGNORECASE)
_CNMC_LAYOUT = ("<root>/training_data/fold_<k>/{all,hem}/UID_<patient>_<image>_<cell>_all.bmp "
                "and UID_H<patient>_<image>_<cell>_hem.bmp (root may also be the "
                "training_data folder itself, or its parent's parent)")


def _cnmc_fold(name: str):
    return name if _CNMC_FOLD.fullmatch(name) else None


def load_cnmc(root) -> LabelledImages:
    """Load the C-NMC 2019 (ISBI) training data, with patient ids.

    The layout of the challenge's training data is
    ``training_data/fold_<k>/{all,hem}/<name>.bmp`` with names
    ``UID_<patient>_<image>_<cell>_all.bmp`` for leukaemic (ALL) blasts and
    ``UID_H<patient>_<image>_<cell>_hem.bmp`` for normal (hematogone) cells.
    `root` may be the folder holding ``training_data``, ``training_data``
    itself (the folder holding the ``fold_*`` folders), or a folder one level
    above (e.g. the folder holding ``C-NMC_Leukemia/training_data``). Fold
    and class folder names are matched ignoring letter case; images nested
    inside a class folder are included. The validation and test sets of the
    challenge (labels in a CSV file) are not handled.

    The label comes from the folder (``"all"`` or ``"hem"``) and is
    cross-checked with the suffix of the file name: a file whose suffix
    contradicts its folder is an **error** (:class:`DatasetLayoutError`
    listing the offending files), because a silently mislabelled cell would
    bias every result. Image files whose names do not follow the pattern
    are **skipped with a** :class:`DatasetWarning` that counts them (their
    patient is unknown, so they could not be split patient-wise).

    The patient id is the second field of the name, as written, with an
    ``h`` prefix upper-cased: ``UID_11_10_1_all.bmp`` is patient ``"11"``,
    ``UID_H10_43_1_hem.bmp`` patient ``"H10"`` (ALL patients and normal
    subjects are numbered separately, hence the prefix). They are returned as
    ``groups``, so that e.g. ``GroupKFold`` keeps each patient in one fold.
    The challenge's own folds are not returned; they follow from the paths.

    Parameters
    ----------
    root : str or os.PathLike
        The data set folder (see above).

    Returns
    -------
    LabelledImages
        ``name="cnmc"``, labels ``"all"`` / ``"hem"``, ``class_names`` the
        classes found (sorted), ``groups`` the patient ids; paths ordered by
        fold, class folder and file path.

    Raises
    ------
    FileNotFoundError
        If `root` does not exist.
    NotADirectoryError
        If `root` is a file.
    DatasetLayoutError
        If no ``fold_*`` folder is found, no image with a C-NMC name is
        found in their ``all`` / ``hem`` folders, a file name's class suffix
        contradicts its folder, or ``fold_*`` folders are found in several
        unrelated places.

    Warns
    -----
    DatasetWarning
        For image files whose names do not follow the C-NMC pattern (they
        are skipped) and for ``fold_*`` sub-folders other than ``all`` and
        ``hem``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from leukfeat.datasets import load_cnmc
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ["fold_0/all/UID_11_10_1_all.bmp", "fold_0/hem/UID_H10_43_1_hem.bmp"]:
    ...     (root / name).parent.mkdir(parents=True, exist_ok=True)
    ...     _ = (root / name).write_bytes(b"")
    >>> ds = load_cnmc(root)
    >>> ds.labels.tolist(), ds.groups.tolist()
    (['all', 'hem'], ['11', 'H10'])
    """
    root_path = _check_root(root)
    hits = _locate(root_path, _cnmc_fold)
    if not hits:
        raise DatasetLayoutError(f"{root_path}: no fold_* folders found; expected "
                                 f"{_CNMC_LAYOUT}")
    if len(hits) > 1:
        raise _ambiguous(root_path, hits, "fold_* folders")
    base = hits[0]
    paths: list[str] = []
    labels: list[str] = []
    groups: list[str] = []
    skipped: list[str] = []
    mismatched: list[str] = []
    other_dirs: list[str] = []
    for fold in (d for d in _subdirs(base) if _cnmc_fold(d.name)):
        for class_dir in _subdirs(fold):
            label = class_dir.name.casefold()
            if label not in ("all", "hem"):
                other_dirs.append(f"{fold.name}/{class_dir.name}")
                continue
            for file in list_images(class_dir):
                m = _CNMC_NAME.fullmatch(file.stem)
                if m is None:
                    skipped.append(str(file.relative_to(base)))
                    continue
                if m.group(4).casefold() != label:
                    mismatched.append(str(file.relative_to(base)))
                    continue
                paths.append(str(file))
                labels.append(label)
                groups.append(m.group(1).upper())
    if mismatched:
        raise DatasetLayoutError(
            f"{base}: {len(mismatched)} file(s) whose name suffix (_all / _hem) contradicts "
            f"their class folder: {_examples(mismatched)}; expected {_CNMC_LAYOUT}")
    if other_dirs:
        _warn(f"{base}: ignored {len(other_dirs)} folder(s) inside fold_* other than all/ "
              f"and hem/: {_examples(other_dirs)}")
    if skipped:
        _warn(f"{base}: skipped {len(skipped)} image file(s) whose names do not follow "
              f"UID_<patient>_<image>_<cell>_<all|hem>: {_examples(skipped)}")
    if not paths:
        raise DatasetLayoutError(f"{base}: no C-NMC images found in fold_*/all or "
                                 f"fold_*/hem; expected {_CNMC_LAYOUT}")
    return LabelledImages(paths=paths, labels=labels, groups=groups,
                          class_names=sorted(set(labels)), name="cnmc", root=str(root_path))


# -- load_allidb -------------------------------------------------------------------

_ALLIDB_NAME = re.compile(r"Im(\d+)_([01])", re.IGNORECASE)
_ALLIDB_EXTENSIONS = {1: (".jpg", ".jpeg"), 2: (".tif", ".tiff")}
_ALLIDB_LAYOUT = ("ALL-IDB1 images ImNNN_Y.jpg or ALL-IDB2 images ImNNN_Y.tif anywhere under "
                  "root (Y = 1: blast(s), Y = 0: normal), e.g. <root>/ALL_IDB2/img/Im001_1.tif")


def load_allidb(root, *, version="auto") -> LabelledImages:
    """Load ALL-IDB1 or ALL-IDB2 (Labati, Piuri and Scotti, 2011).

    Images are found anywhere under `root` (recursively; hidden and
    non-image files ignored) by their names ``ImNNN_Y.<ext>``, where ``Y``
    is the label (matched ignoring letter case):

    * **ALL-IDB2** -- ``ImNNN_Y.tif``: one cropped cell per image;
      ``Y = 1`` a lymphoblast (label ``"blast"``), ``Y = 0`` a normal cell
      (``"normal"``).
    * **ALL-IDB1** -- ``ImNNN_Y.jpg``: whole smear fields; ``Y = 1`` means
      the image *contains* blasts (``"blast"``), ``Y = 0`` that it contains
      none (``"normal"``). The ``.xyc`` blast-centre files are not read.

    The version is told by the extension: ``.jpg``/``.jpeg`` is ALL-IDB1,
    ``.tif``/``.tiff`` is ALL-IDB2 (convert files of other formats back, or
    use :func:`load_folder`).

    Parameters
    ----------
    root : str or os.PathLike
        A folder holding the images (e.g. ``ALL_IDB2/img``), or a parent of
        it.
    version : {"auto", 1, 2}, default "auto"
        Which data set to load. ``"auto"`` takes the one whose images are
        present and raises if both are (pass 1 or 2 then).

    Returns
    -------
    LabelledImages
        ``name="allidb"``, labels ``"blast"`` / ``"normal"``,
        ``class_names`` the classes found (sorted), ``groups=None`` (the
        data set gives no patient ids); paths sorted by their path under
        `root`.

    Raises
    ------
    FileNotFoundError
        If `root` does not exist.
    NotADirectoryError
        If `root` is a file.
    ValueError
        If `version` is not one of the accepted values.
    DatasetLayoutError
        If no image of the requested version is found, or, with
        ``version="auto"``, if both versions are found.

    Warns
    -----
    DatasetWarning
        For image files whose names do not follow ``ImNNN_Y`` with a .jpg
        or .tif extension (they are skipped).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from leukfeat.datasets import load_allidb
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ["Im001_1.tif", "Im131_0.tif"]:
    ...     _ = (root / name).write_bytes(b"")
    >>> load_allidb(root).labels.tolist()
    ['blast', 'normal']
    """
    if isinstance(version, str) and version.strip().casefold() == "auto":
        version = "auto"
    elif isinstance(version, (str, numbers.Integral)) and not isinstance(version, bool) \
            and str(version).strip() in ("1", "2"):
        version = int(str(version).strip())
    else:
        raise ValueError(f"version: expected 'auto', 1 or 2, got {version!r}")
    root_path = _check_root(root)
    found: dict = {1: [], 2: []}
    skipped: list[str] = []
    for file in list_images(root_path):
        m = _ALLIDB_NAME.fullmatch(file.stem)
        ext = file.suffix.casefold()
        v = next((k for k, exts in _ALLIDB_EXTENSIONS.items() if ext in exts), None)
        if m is None or v is None:
            skipped.append(str(file.relative_to(root_path)))
        else:
            found[v].append((file, "blast" if m.group(2) == "1" else "normal"))
    if version == "auto":
        present = [v for v in (1, 2) if found[v]]
        if len(present) == 2:
            raise DatasetLayoutError(
                f"{root_path}: found both ALL-IDB1 (ImNNN_Y.jpg, {len(found[1])} images) and "
                f"ALL-IDB2 (ImNNN_Y.tif, {len(found[2])} images); pass version=1 or "
                "version=2, or point root at one of them")
        version = present[0] if present else None
    items = found[version] if version is not None else []
    if not items:
        which = "" if version is None else f" ALL-IDB{version}"
        extra = (f" (skipped {len(skipped)} image file(s) with other names: "
                 f"{_examples(skipped)})" if skipped else "")
        raise DatasetLayoutError(f"{root_path}: no{which} images found{extra}; expected "
                                 f"{_ALLIDB_LAYOUT}")
    if skipped:
        _warn(f"{root_path}: skipped {len(skipped)} image file(s) whose names are not "
              f"ImNNN_Y.jpg / ImNNN_Y.tif: {_examples(skipped)}")
    labels = [label for _, label in items]
    return LabelledImages(paths=[str(f) for f, _ in items], labels=labels, groups=None,
                          class_names=sorted(set(labels)), name="allidb",
                          root=str(root_path))


# -- load_pbc ----------------------------------------------------------------------

#: The eight classes of the PBC data set, in canonical (alphabetical) order.
PBC_CLASSES = ["basophil", "eosinophil", "erythroblast", "ig", "lymphocyte", "monocyte",
               "neutrophil", "platelet"]

_PBC_LAYOUT = ("<root>/<class>/<image>.jpg with class folders " + ", ".join(PBC_CLASSES)
               + " (any letter case), or the same under <root>/PBC_dataset_normal_DIB/")


def _pbc_class(name: str):
    name = name.casefold()
    return name if name in PBC_CLASSES else None


def load_pbc(root) -> LabelledImages:
    """Load the PBC data set of normal peripheral blood cells (Barcelona).

    Acevedo et al., Data in Brief 30:105474 (2020): 17,092 single-cell JPEG
    images in eight folders ``basophil``, ``eosinophil``, ``erythroblast``,
    ``ig`` (immature granulocytes), ``lymphocyte``, ``monocyte``,
    ``neutrophil`` and ``platelet``, matched ignoring letter case. `root`
    may hold the class folders or be a parent of them, such as the folder
    holding the download's ``PBC_dataset_normal_DIB`` (up to two folder
    levels are searched). Images nested inside a class folder belong to it;
    hidden and non-image files are ignored. Missing or empty class folders
    are left out.

    Parameters
    ----------
    root : str or os.PathLike
        The data set folder.

    Returns
    -------
    LabelledImages
        ``name="pbc"``, lower-case labels, ``class_names`` the classes found
        in the canonical order of :data:`PBC_CLASSES`, ``groups=None``;
        paths ordered by class, then by path.

    Raises
    ------
    FileNotFoundError
        If `root` does not exist.
    NotADirectoryError
        If `root` is a file.
    DatasetLayoutError
        If none of the eight class folders is found (the message lists their
        names), they hold no images, two folders map to the same class, or
        class folders are found in several unrelated places.

    Warns
    -----
    DatasetWarning
        For sub-folders next to the class folders that are not PBC classes
        (they are ignored).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from leukfeat.datasets import load_pbc
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ["PBC_dataset_normal_DIB/IG/a.jpg", "PBC_dataset_normal_DIB/basophil/b.jpg"]:
    ...     (root / name).parent.mkdir(parents=True, exist_ok=True)
    ...     _ = (root / name).write_bytes(b"")
    >>> load_pbc(root).class_names
    ['basophil', 'ig']
    """
    root_path = _check_root(root)
    hits = _locate(root_path, _pbc_class)
    if not hits:
        raise DatasetLayoutError(f"{root_path}: none of the PBC class folders found; "
                                 f"expected {_PBC_LAYOUT}")
    if len(hits) > 1:
        raise _ambiguous(root_path, hits, "PBC class folders")
    return _load_class_folders(root_path, hits[0], _pbc_class, PBC_CLASSES, "pbc",
                               _PBC_LAYOUT)


# -- dispatch ------------------------------------------------------------------------

#: Loader functions by name, as accepted by :func:`load_dataset` (and by the
#: ``--loader`` option of the command line).
LOADERS = {"folder": load_folder, "taleghani": load_taleghani, "cnmc": load_cnmc,
           "allidb": load_allidb, "pbc": load_pbc}


def load_dataset(root, loader: str = "folder", **kwargs) -> LabelledImages:
    """Load a data set with the loader of the given name.

    Parameters
    ----------
    root : str or os.PathLike
        The data set folder.
    loader : str, default "folder"
        A key of :data:`LOADERS`: ``"folder"``, ``"taleghani"``, ``"cnmc"``,
        ``"allidb"`` or ``"pbc"`` (letter case and surrounding spaces are
        ignored).
    **kwargs
        Passed to the loader (e.g. ``segmented=True`` for ``"taleghani"``,
        ``version=2`` for ``"allidb"``).

    Returns
    -------
    LabelledImages

    Raises
    ------
    ValueError
        If `loader` is not a known name (the message lists the valid ones).
    TypeError
        If a keyword argument is not accepted by the loader.
    FileNotFoundError, NotADirectoryError, DatasetLayoutError
        As raised by the loader.

    Examples
    --------
    >>> from leukfeat.datasets import load_dataset
    >>> load_dataset(".", loader="imagenet")
    Traceback (most recent call last):
    ...
    ValueError: loader: unknown loader 'imagenet'; expected one of: folder, taleghani, cnmc, allidb, pbc
    """
    key = loader.strip().casefold() if isinstance(loader, str) else None
    if key not in LOADERS:
        raise ValueError(f"loader: unknown loader {loader!r}; expected one of: "
                         + ", ".join(LOADERS))
    return LOADERS[key](root, **kwargs)
