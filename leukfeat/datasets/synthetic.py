"""Synthetic stained blood-smear fields: :func:`make_cells` and its containers.

Part of :mod:`leukfeat.datasets` (import the public names from there).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence, overload

import cv2
import numpy as np

from .._validation import check_int
from ._checks import root_seed

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from .._typing import StrPath

# (public as leukfeat.datasets.MASK_CODES, documented in the package's __init__.py)
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
    params: dict[str, Any]

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
    class_names: tuple[str, ...]
    params: list[dict[str, Any]] = field(default_factory=list)

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

    @overload
    def __getitem__(self, index: int) -> CellSample: ...

    @overload
    def __getitem__(self, index: slice | ArrayLike) -> SyntheticCells: ...

    def __getitem__(self, index: int | slice | ArrayLike) -> CellSample | SyntheticCells:
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
        counts: Any = np.bincount(np.asarray(self.labels, dtype=np.int64),
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
    def save(self, root: StrPath, *, masks_dir: StrPath | None = None) -> list[Path]:
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
        mroot: Any = None if masks_dir is None else Path(masks_dir)
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

def make_cells(n_samples: int = 100, n_classes: int = 2, size: int | tuple[int, int] = 128, *,
               n_red_cells: int | tuple[int, int] = (4, 10),
               n_white_cells: int | tuple[int, int] = 1, stain_jitter: float = 0.05,
               cytoplasm: str = "lavender",
               random_state: int | np.random.Generator | np.random.SeedSequence | None = None,
               ) -> SyntheticCells:
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
    n_samples = check_int(n_samples, "n_samples", 1)
    n_classes = check_int(n_classes, "n_classes", 1)
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
    root = root_seed(random_state)

    images = np.empty((n_samples, h, w, 3), np.uint8)
    cell_labels = np.zeros((n_samples, h, w), np.int32)
    nucleus = np.zeros((n_samples, h, w), bool)
    red = np.zeros((n_samples, h, w), bool)
    labels = np.arange(n_samples, dtype=np.int64) % n_classes
    class_names = tuple(f"class_{c}" for c in range(n_classes))
    params: list[dict[str, Any]] = []
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


def _check_float(value: float, name: str, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name}: expected a number, got {value!r}")
    value = float(value)
    if not (math.isfinite(value) and lo <= value <= hi):
        raise ValueError(f"{name}: must lie in [{lo:g}, {hi:g}], got {value!r}")
    return value


def _check_size(size: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(size, numbers.Integral) and not isinstance(size, bool):
        dims = (size, size)
    elif isinstance(size, Sequence) and not isinstance(size, (str, bytes)) and len(size) == 2:
        dims = tuple(size)
    else:
        raise ValueError(f"size: expected an int or a (height, width) pair, got {size!r}")
    out: list[int] = []
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, numbers.Integral):
            raise ValueError(f"size: expected integers, got {size!r}")
        if d < _MIN_SIDE:
            raise ValueError(f"size: every side must be >= {_MIN_SIDE} pixels, got {size!r}")
        out.append(int(d))
    return out[0], out[1]


def _check_count_range(value: int | tuple[int, int], name: str, lo: int, hi: int
                       ) -> tuple[int, int]:
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
    ks: tuple[int, ...] = ()     # harmonic orders
    amps: tuple[float, ...] = ()  # relative amplitudes
    phases: tuple[float, ...] = ()
    _max_unit: float | None = field(default=None, init=False, repr=False)

    def unit_radius(self, theta: np.ndarray) -> np.ndarray:
        """Outline radius for ``radius == 1`` in the directions ``theta``."""
        return self.unit_radius_cs(np.cos(theta), np.sin(theta))

    def unit_radius_cs(self, cos_t: np.ndarray, sin_t: np.ndarray) -> np.ndarray:
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

    def coverage(self, yy: np.ndarray, xx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Anti-aliased coverage in [0, 1] and normalised radius d / r(theta)."""
        dy = yy - self.cy
        dx = xx - self.cx
        d = np.hypot(dy, dx)
        inv = 1.0 / np.maximum(d, 1e-12)
        r = self.radius * self.unit_radius_cs(np.where(d > 0, dx * inv, 1.0), dy * inv)
        return np.clip(r - d + 0.5, 0.0, 1.0), d / r


def _random_star(rng: np.random.Generator, cy: float, cx: float, radius: float,
                 aspect_range: tuple[float, float], ks: Sequence[int],
                 max_amps: Sequence[float]) -> _Star:
    return _Star(cy, cx, radius, aspect=float(rng.uniform(*aspect_range)),
                 angle=float(rng.uniform(0, np.pi)), ks=tuple(ks),
                 amps=tuple(float(v) for v in rng.uniform(0, max_amps)),
                 phases=tuple(float(v) for v in rng.uniform(0, 2 * np.pi, len(ks))))


def _bbox(cy: float, cx: float, rmax: float, h: int, w: int, pad: int = 2
          ) -> tuple[int, int, int, int]:
    y0 = max(0, int(math.floor(cy - rmax)) - pad)
    x0 = max(0, int(math.floor(cx - rmax)) - pad)
    y1 = min(h, int(math.ceil(cy + rmax)) + pad + 1)
    x1 = min(w, int(math.ceil(cx + rmax)) + pad + 1)
    return y0, y1, x0, x1


def _grid(y0: int, y1: int, x0: int, x1: int) -> tuple[np.ndarray, np.ndarray]:
    return (np.arange(y0, y1, dtype=np.float64)[:, None],
            np.arange(x0, x1, dtype=np.float64)[None, :])


# =============================================================================
# Private helpers: the renderer
# =============================================================================

def _class_profile(c: int, n_classes: int) -> dict[str, Any]:
    t = c / (n_classes - 1) if n_classes > 1 else 0.0
    return {
        "t": t,
        "nucleus_fraction": 0.45 + 0.40 * t,    # target nucleus area / cell area
        "cell_radius": 0.235 - 0.035 * t,        # fraction of the short side
        "chromatin_scale": 0.09 - 0.055 * t,     # texture sigma / cell radius
        "chromatin_contrast": 9.0 - 4.0 * t,     # L* amplitude of the texture
        "lobed_probability": 0.6 if c == 0 else 0.0,
    }


def _jitter(rng: np.random.Generator, sd: float) -> float:
    return float(1.0 + sd * np.clip(rng.standard_normal(), -2.0, 2.0))


def _stained(lab: tuple[float, float, float], l_shift: float, f_chroma: float
             ) -> tuple[float, ...]:
    """Apply the stain jitter to a base colour: shift L*, scale a* and b*."""
    L, a, b = lab
    return (L + l_shift, a * f_chroma, b * f_chroma)


def _low_frequency(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Smooth random field (about unit amplitude) varying over the whole image."""
    coarse = rng.standard_normal((4, 4)).astype(np.float32)
    return cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    z: np.ndarray = rng.standard_normal(shape).astype(np.float32)
    z = cv2.GaussianBlur(z, (0, 0), sigmaX=max(float(sigma), 0.3), borderType=cv2.BORDER_REFLECT)
    sd = float(z.std())
    return z / sd if sd > 0 else z


def _white_layout(h: int, w: int) -> tuple[float, float, float]:
    """Border margin, gap between white cells and smallest white-cell radius (px)."""
    side = min(h, w)
    return 2.0, 3.0 + 0.03 * side, max(4.5, 0.09 * side)


# Upper bound of a white-cell outline radius relative to its radius (ellipse
# aspect <= 1 plus the largest harmonic amplitudes drawn in _render).
_WHITE_SHAPE_MAX = 1.0 + 0.03 + 0.02 + 0.012


def _grid_slots(n: int, h: int, w: int) -> tuple[int, int, float]:
    """Best rows x cols grid for n cells: (rows, cols, radius available per slot)."""
    margin, gap, _ = _white_layout(h, w)
    best: Any = None
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


def _place_white_cells(rng: np.random.Generator, stars: list[_Star], h: int, w: int) -> float:
    """Place the white cells inside the image without contact; shrink if needed.

    Random placement is tried at decreasing scales down to the smallest
    radius; past that, the cells are put on a jittered grid, which always
    fits when ``len(stars) <= _white_cell_capacity(h, w)``.
    """
    margin, gap, r_min = _white_layout(h, w)
    scale = 1.0
    while True:
        placed: list[tuple[float, float, float]] = []
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

    def __init__(self, rng: np.random.Generator, cell: _Star, yy: np.ndarray, xx: np.ndarray,
                 cy: float, cx: float, *, lobed: bool, conformity: float) -> None:
        self.yy, self.xx = yy, xx
        self.cell = cell
        self.conformity = conformity
        self.lobes: list[tuple[float, float, _Star]] = []
        self.own: _Star | None
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

    def coverage(self, s: float) -> np.ndarray:
        if self.own is not None:
            return np.clip(s * self._u - self._d + 0.5, 0.0, 1.0)
        cov: Any = None
        for dy, dx, t in self.lobes:
            star = _Star(self.cy + s * dy, self.cx + s * dx, s * t.radius, t.aspect, t.angle,
                         t.ks, t.amps, t.phases)
            c, _ = star.coverage(self.yy, self.xx)
            cov = c if cov is None else np.maximum(cov, c)
        return cov


def _fit_nucleus(nuc: _Nucleus, cell: np.ndarray, inner: np.ndarray, target_area: float,
                 s0: float) -> tuple[float, np.ndarray, np.ndarray]:
    """Scale the nucleus to ~target_area pixels, shrinking it until it lies in ``inner``.

    Returns (scale, coverage, hard mask). The hard mask is never empty.
    """
    s = s0
    for _ in range(2):
        area = int((nuc.coverage(s) >= 0.5).sum())
        s *= math.sqrt(target_area / max(area, 1))

    def fits(cov: np.ndarray) -> tuple[Any, np.ndarray]:
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


def _render(rng: np.random.Generator, out_rgb: np.ndarray, out_labels: np.ndarray,
            out_nucleus: np.ndarray, out_red: np.ndarray, profile: dict[str, Any],
            red_range: tuple[int, int], white_range: tuple[int, int], stain_jitter: float,
            cyto_strength: float = 1.0) -> dict[str, Any]:
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
        dL = np.where(z > 0, -contrast * np.minimum(z / 2.0, 1.0),  # type: ignore[assignment, unused-ignore]
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
    lab += rng.standard_normal((h, w, 3)).astype(np.float32) * np.float32([0.7, 0.45, 0.45])  # type: ignore[arg-type, unused-ignore]
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


def _composite(dst: np.ndarray, colour: Any, coverage: np.ndarray) -> None:
    """In place: ``dst = dst * (1 - coverage) + colour * coverage``."""
    cov = coverage.astype(np.float32)[..., None]
    dst += (colour - dst) * cov


def _py(obj: Any) -> Any:
    """Convert numpy scalars / tuples inside params to plain Python values."""
    if isinstance(obj, dict):
        return {k: _py(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_py(v) for v in obj)
    if isinstance(obj, np.generic):
        return obj.item()
    return obj
