"""Handcrafted features of white cells.

:func:`features` measures one white cell of an image and returns an ordered
mapping ``name -> float``; :func:`feature_names` gives the same names for a
configuration without an image; :func:`features_per_cell` measures every
cell of a field.

Feature groups (names are stable, ``group_feature[_suffix]``, documented in
each module):

===================  ==========================  ============================================
group                name prefixes               module
===================  ==========================  ============================================
``texture``          ``glcm_``, ``lbp_``         :mod:`leukfeat.extract.texture` (Haralick on
                                                 the GLCM of the cell, LBP histograms)
``nucleus_texture``  ``glcm_nucleus_``,          the same texture features restricted to the
                     ``lbp_nucleus_``            nucleus (chromatin pattern); not in the
                                                 default vector
``shape``            ``shape_cell_``,            :mod:`leukfeat.extract.shape` (morphometry,
                     ``shape_nucleus_``,         Feret, Hu, Fourier, Zernike, lobes, N:C)
                     ``shape_nc_ratio``, ...
``colour``           ``colour_<compartment>_``   :mod:`leukfeat.extract.colour` (RGB, LAB, HSV
                                                 statistics per nucleus/cytoplasm/cell)
``edges``            ``edges_``                  :mod:`leukfeat.extract.edges` (LoG, edge
                                                 density, gradient)
``field``            ``field_``                  :mod:`leukfeat.extract.field` (the whole
                                                 field: number of white cells, coverage,
                                                 size and nucleus-fraction spread)
===================  ==========================  ============================================

Which cell: a smear field can hold several white cells. :func:`features`
measures one of them, by default the **largest** (``cell="largest"``; also
``"central"``, nearest to the image centre, or an integer label), which is
the cell a single-cell data set is centred on and the most informative one
in a field. ``cell="mean"`` or ``"median"`` aggregates every cell of the
field into one row with the same names (on Taleghani fields, with several
blasts each, this describes the sample better than one cell). Use
:func:`features_per_cell` for one row per cell. The ``field`` group is
measured once on the whole segmentation, whichever cell is chosen (every row
of :func:`features_per_cell` carries the same field values).

Which segmentation: the cells are those of ``segmentation`` when given,
else of ``segmenter`` (default :data:`leukfeat.segment.DEFAULT_METHOD`, the
nucleus-anchored segmenter since 2026-12-05; ``"lab_kmeans"`` before). Every
feature value depends on it: accuracy figures say which segmenter produced
them (``docs/segmentation.rst``).

Undefined values are NaN, never inf and never an exception: an image in
which no white cell is found gives a row of NaN (``features`` still returns
every name), an empty nucleus gives NaN nucleus features, a constant region
gives NaN texture statistics that need a variance.
"""

from __future__ import annotations

import functools
import warnings
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from .._numba import compile_ahead
from .._validation import as_uint8_rgb, check_image
from ..segment import DEFAULT_METHOD, Segmentation, segment as _segment
from . import colour, edges, field, shape, texture
from ._registry import REGISTRY, CellCrop, FeatureGroup
from .texture import haralick, glcm, glcm_props, lbp_histogram  # noqa: F401  (public API)

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from numpy.typing import ArrayLike

    from ..segment import CellCrop as SegmentCellCrop

__all__ = ["features", "feature_vector", "features_per_cell", "feature_names", "GROUPS", "DEFAULT_GROUPS",
           "DEFAULTS", "CELLS", "FeatureConfig", "FeatureGroup", "REGISTRY",
           "haralick", "glcm", "glcm_props", "lbp_histogram",
           "texture", "shape", "colour", "edges", "field"]

#: Every feature group, in the order their columns appear (the keys of
#: :data:`REGISTRY`, where each group is described).
GROUPS = tuple(REGISTRY)

#: The groups of the default feature vector (428 columns with :data:`DEFAULTS`).
#: ``nucleus_texture`` (106 more columns) is opt-in, so that the default
#: names stay as they were.
DEFAULT_GROUPS = tuple(name for name, g in REGISTRY.items() if g.default)

#: The choices of ``cell=`` that are names (an integer label is accepted too).
CELLS = ("largest", "central", "mean", "median")

#: Default configuration of every group (keyword arguments of :func:`features`).
DEFAULTS = {
    "glcm_distances": (1, 3),
    "glcm_levels": 32,
    "glcm_quantization": "minmax",
    "lbp_radii": (1, 2, 3),
    "n_fourier": 10,
    "zernike_degree": 8,
    "colour_spaces": ("rgb", "lab", "hsv"),
    "percentiles": (10, 50, 90),
    "histogram_bins": None,
    "edge_sigmas": (1.0, 2.0),
}

_CROP_MARGIN_EXTRA = 2

def _nanmedian_columns(table: np.ndarray, axis: int = 0) -> np.ndarray:
    """``numpy.nanmedian(table, axis=0)`` of a 2-D float table, the same
    values without the masked-array machinery numpy uses for short columns
    (several times faster for the few cells of a field): NaN sorts last, the
    median of ``n`` values is the mean of sorted values ``(n - 1) // 2`` and
    ``n // 2``, and a column without a value is NaN."""
    if axis != 0 or table.ndim != 2:
        return np.nanmedian(table, axis=axis)
    ordered = np.sort(table, axis=0)
    n = np.count_nonzero(~np.isnan(table), axis=0)
    cols = np.arange(table.shape[1])
    low = ordered[np.maximum(n - 1, 0) // 2, cols]
    high = ordered[np.minimum(n // 2, table.shape[0] - 1), cols]
    out = (low + high) / 2.0
    out[n == 0] = np.nan
    return out


#: Aggregations over every cell of a field accepted as ``cell=``.
_AGGREGATES: dict[str, Callable[..., Any]] = {"mean": np.nanmean, "median": _nanmedian_columns}


def _config(overrides: dict[str, Any]) -> dict[str, Any]:
    unknown = set(overrides) - set(DEFAULTS)
    if unknown:
        raise TypeError(f"unknown feature option(s) {sorted(unknown)}; "
                        f"known: {sorted(DEFAULTS)}")
    cfg = dict(DEFAULTS)
    cfg.update(overrides)
    return cfg


def _check_groups(groups: str | Iterable[str]) -> tuple[str, ...]:
    if isinstance(groups, str):
        groups = (groups,)
    groups = tuple(groups)
    bad = [g for g in groups if g not in GROUPS]
    if bad or not groups:
        raise ValueError(f"groups: expected a non-empty subset of {GROUPS}, got {groups!r}")
    # keep the canonical order so that columns never depend on argument order
    return tuple(g for g in GROUPS if g in groups)


def feature_names(groups: str | Iterable[str] = DEFAULT_GROUPS, **options: Any) -> list[str]:
    """Names of the features :func:`features` returns for a configuration.

    Parameters
    ----------
    groups : sequence of str, default :data:`DEFAULT_GROUPS`
        Subset of :data:`GROUPS`.
    **options
        Group options, see :data:`DEFAULTS`.

    Returns
    -------
    list of str

    Examples
    --------
    >>> names = feature_names()
    >>> len(names) >= 150
    True
    >>> names[:2]
    ['glcm_asm_d1_mean', 'glcm_asm_d1_range']
    """
    groups = _check_groups(groups)
    cfg = _config(options)
    return [name for g in groups for name in REGISTRY[g].names(cfg)]


class FeatureConfig:
    """What to measure: feature groups, which cell, group options.

    The one description of a feature vector, shared by
    :func:`features`, :class:`leukfeat.transformers.FeatureExtractor`, the
    command line and the metadata of model files: it validates itself,
    names its columns and gives the key of the feature cache.

    Parameters
    ----------
    groups : str or sequence of str, default :data:`DEFAULT_GROUPS`
        Feature groups (:data:`GROUPS`); kept in canonical column order.
    cell : {"largest", "central", "mean", "median"} or int, default "largest"
        Which white cell of an image a row describes (see :func:`features`).
    options : dict, optional
        Group options overriding :data:`DEFAULTS`.

    Examples
    --------
    >>> cfg = FeatureConfig(groups=("shape", "texture"), options={"lbp_radii": (1,)})
    >>> cfg.groups
    ('texture', 'shape')
    >>> len(cfg.names()) == len(feature_names(("texture", "shape"), lbp_radii=(1,)))
    True
    >>> FeatureConfig(cell="biggest")
    Traceback (most recent call last):
    ...
    ValueError: cell: expected 'largest', 'central', 'mean', 'median' or a positive int label, got 'biggest'
    """

    __slots__ = ("groups", "cell", "options")

    def __init__(self, groups: str | Iterable[str] = DEFAULT_GROUPS, cell: str | int = "largest",
                 options: dict[str, Any] | None = None) -> None:
        try:
            self.groups = _check_groups(groups)
        except (TypeError, ValueError):
            raise ValueError(f"groups: expected a non-empty subset of {GROUPS}, "
                             f"got {groups!r}") from None
        if not (cell in CELLS if isinstance(cell, str) else
                isinstance(cell, (int, np.integer)) and not isinstance(cell, bool)
                and cell >= 1):
            raise ValueError(f"cell: expected 'largest', 'central', 'mean', 'median' or a "
                             f"positive int label, got {cell!r}")
        self.cell = cell if isinstance(cell, str) else int(cell)
        if options is None:
            options = {}
        if not isinstance(options, dict):
            raise ValueError(f"options: expected None or a dict, got {type(options).__name__}")
        try:
            _config(options)
        except TypeError as exc:
            raise ValueError(f"options: {exc}") from None
        self.options = dict(options)

    def full_options(self) -> dict[str, Any]:
        """Every option: :data:`DEFAULTS` updated with :attr:`options`."""
        return _config(self.options)

    def names(self) -> list[str]:
        """The column names, in order."""
        return feature_names(self.groups, **self.options)

    def cache_key(self) -> dict[str, Any]:
        """A JSON-able description that changes whenever a value could."""
        full = self.full_options()
        return {"groups": list(self.groups), "cell": self.cell,
                "options": {k: full[k] for k in sorted(full)},
                "n_features": len(self.names())}

    def __repr__(self) -> str:
        return (f"FeatureConfig(groups={self.groups!r}, cell={self.cell!r}, "
                f"options={self.options!r})")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FeatureConfig) and self.cache_key() == other.cache_key()

    __hash__ = None  # type: ignore[assignment]  # unhashable, as it defines __eq__


def _pick_cell(seg: Segmentation, cell: str | int,
               counts: tuple[np.ndarray, np.ndarray] | None = None) -> int:
    """The label of the cell to measure (0: none); ``counts``: the
    segmentation's ``label_counts()``, if already computed."""
    if seg.n_cells == 0:
        return 0
    if cell == "largest":
        return seg.largest() if counts is None else int(np.argmax(counts[0][1:]) + 1)
    if cell == "central":
        h, w = seg.shape
        best, best_d = 0, np.inf
        for lab in seg.cell_ids():
            ys, xs = np.nonzero(seg.labels == lab)
            d = (ys.mean() - (h - 1) / 2) ** 2 + (xs.mean() - (w - 1) / 2) ** 2
            if d < best_d:
                best, best_d = lab, d
        return best
    if isinstance(cell, (int, np.integer)) and not isinstance(cell, bool):
        lab = int(cell)
        if not 1 <= lab <= seg.n_cells:
            raise ValueError(f"cell: label {cell} is not a cell of the segmentation "
                             f"(1..{seg.n_cells})")
        # labels may skip numbers (user label images): a number no pixel has
        # is no cell either
        if not (counts[0][lab] > 0 if counts is not None else (seg.labels == lab).any()):
            raise ValueError(f"cell: label {cell} is not a cell of the segmentation "
                             f"(no pixel has that label)")
        return lab
    raise ValueError(f"cell: expected 'largest', 'central', 'mean', 'median' or an integer "
                     f"label, got {cell!r}")


def _margin(cfg: dict[str, Any]) -> int:
    """Context kept around a cell's box: the reach of every filter, so that
    values on the crop equal those on the full image."""
    return int(4.0 * max(cfg["edge_sigmas"]) + 0.5) + _CROP_MARGIN_EXTRA


def _freeze(value: Any) -> Any:
    """``value`` with lists and tuples made (nested) tuples, for a cache key."""
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


@functools.lru_cache(maxsize=32)
def _cached_measures(groups: tuple[str, ...], frozen_cfg: tuple[tuple[str, Any], ...]
                     ) -> tuple[Callable[[Any], np.ndarray], ...]:
    cfg = dict(frozen_cfg)
    return tuple(REGISTRY[g].cell_values(cfg) for g in groups)


def _cell_measures(groups: tuple[str, ...], cfg: dict[str, Any]
                   ) -> tuple[Callable[[Any], np.ndarray], ...]:
    """``f(crop) -> values`` of each per-cell group in ``groups`` for the
    configuration ``cfg``, its options checked once (here, raising the
    errors of the group functions), cached for hashable configurations."""
    try:
        key = tuple(sorted((k, _freeze(v)) for k, v in cfg.items()))
        hash(key)
    except TypeError:                 # e.g. a numpy array as an option
        return tuple(REGISTRY[g].cell_values(cfg) for g in groups)
    return _cached_measures(groups, key)


def _measure_cell(crop: SegmentCellCrop, measures: Sequence[Callable[[Any], np.ndarray]]
                  ) -> np.ndarray:
    """The per-cell values of one :class:`~leukfeat.segment.CellCrop`, the
    groups of ``measures`` (:func:`_cell_measures`) one after another."""
    c = CellCrop(np.ascontiguousarray(crop.image), crop.mask, crop.nucleus)
    parts = [f(c) for f in measures]
    return np.concatenate(parts) if parts else np.empty(0)


def _cell_groups(groups: tuple[str, ...]) -> tuple[str, ...]:
    """The groups measured per cell (the others are measured once per field)."""
    return tuple(g for g in groups if REGISTRY[g].per_cell)


def _field_values(seg: Segmentation, groups: tuple[str, ...],
                  counts: tuple[np.ndarray, np.ndarray] | None = None,
                  cfg: dict[str, Any] | None = None) -> np.ndarray:
    """The values of the field groups (measured once on the whole segmentation)."""
    parts = [np.fromiter(REGISTRY[g].measure_field(seg, counts, cfg).values(),  # type: ignore[misc]
                         np.float64)
             for g in groups if not REGISTRY[g].per_cell]            # (field groups have one)
    return np.concatenate(parts) if parts else np.empty(0)


def _prepare(image: ArrayLike, segmentation: Segmentation | None,
             segmenter: str | Callable[..., Segmentation]) -> tuple[np.ndarray, Segmentation]:
    arr = check_image(image, "image", ndim=(3,))
    rgb = as_uint8_rgb(arr, "image")
    if segmentation is None:
        # on a cold numba cache, a helper process compiles the feature kernels
        # while this one compiles the segmentation's (once per process)
        compile_ahead()
        segmentation = _segment(rgb, segmenter)
    elif not isinstance(segmentation, Segmentation):
        raise TypeError(f"segmentation: expected a leukfeat.segment.Segmentation, "
                        f"got {type(segmentation).__name__}")
    if segmentation.shape != rgb.shape[:2]:
        raise ValueError(f"segmentation: shape {segmentation.shape} does not match the "
                         f"image {rgb.shape[:2]}")
    return rgb, segmentation


def features(image: ArrayLike, segmentation: Segmentation | None = None,
             groups: str | Iterable[str] = DEFAULT_GROUPS, *, cell: str | int = "largest",
             segmenter: str | Callable[..., Segmentation] = DEFAULT_METHOD,
             **options: Any) -> OrderedDict[str, float]:
    """Measure one white cell of an image.

    Parameters
    ----------
    image : ndarray, shape (H, W, 3)
        RGB image (uint8; floats in [0, 1] are accepted and converted).
    segmentation : Segmentation, optional
        Precomputed segmentation; default: ``segment(image, segmenter)``.
    groups : sequence of str, default :data:`DEFAULT_GROUPS`
        Feature groups, a subset of :data:`GROUPS` (add ``"nucleus_texture"``
        for the texture of the nucleus); columns always come in the
        canonical group order.
    cell : {"largest", "central", "mean", "median"} or int
        Which cell of the field to measure (see the module docstring), or
        ``"mean"`` / ``"median"``: every cell is measured and each feature
        is the mean / median over the cells (NaN ignored), which describes
        the whole field's population of white cells with the same names.
    segmenter : str or callable
        Segmenter used when ``segmentation`` is None.
    **options
        Group options overriding :data:`DEFAULTS`.

    Returns
    -------
    OrderedDict of str to float
        In the order of :func:`feature_names` (same ``groups`` and
        ``options``). All NaN when the image has no white cell.

    Raises
    ------
    ValueError
        If ``image`` is not an RGB image, an option is invalid or ``cell`` is
        not a label of the segmentation.

    Notes
    -----
    Bit depth: features are computed on 8-bit RGB (``uint8``, 0..255);
    colour and texture values assume that range. Images of another depth are
    converted first: a ``uint16`` (or other integer) array with values above
    255 is rescaled per image by its own min..max, as
    :func:`leukfeat.io.read_image` does by default, so the same intensity in
    two 16-bit images can give different features. For intensities
    comparable across files, read them with
    ``read_image(path, scale="dtype")`` (65535 -> 255) or a fixed range
    ``scale=(lo, hi)`` (e.g. ``(0, 4095)`` for 12-bit data), or pass arrays
    already scaled to floats in [0, 1], e.g. ``image / 65535``.

    Examples
    --------
    >>> from leukfeat.datasets import make_cells
    >>> img = make_cells(1, random_state=0).images[0]
    >>> f = features(img)
    >>> 0.0 < f["shape_nucleus_fraction"] < 1.0
    True
    """
    row = _feature_row(image, segmentation, groups, cell, segmenter, options)
    names = feature_names(groups, **options)
    if row is None:
        return OrderedDict.fromkeys(names, np.nan)
    return OrderedDict(zip(names, row.tolist()))


def _feature_row(image: ArrayLike, segmentation: Segmentation | None,
                 groups: str | Iterable[str], cell: str | int,
                 segmenter: str | Callable[..., Segmentation],
                 options: dict[str, Any]) -> np.ndarray | None:
    """The work of :func:`features`: the values in column order (float64),
    or None when the image has no (such) cell and the row is all NaN."""
    groups = _check_groups(groups)
    cfg = _config(options)
    rgb, seg = _prepare(image, segmentation, segmenter)
    measures = _cell_measures(_cell_groups(groups), cfg)
    if isinstance(cell, str) and cell in _AGGREGATES:
        rows = [_measure_cell(crop, measures) for crop in seg.iter_cells(rgb, _margin(cfg))]
        if not rows:
            return None
        table = np.array(rows, dtype=np.float64)
        if table.shape[1]:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns stay NaN
                agg = np.asarray(_AGGREGATES[cell](table, axis=0), dtype=np.float64)
        else:
            agg = np.empty(0)
        return np.concatenate([agg, _field_values(seg, groups)])
    # cell areas (for "largest") and nucleus areas (for the field) in one pass
    counts = seg.label_counts() if seg.labels.size >= seg.n_cells else None
    lab = _pick_cell(seg, cell, counts)
    if lab == 0:
        return None
    return np.concatenate([_measure_cell(seg.crop(lab, rgb, _margin(cfg)), measures),
                           _field_values(seg, groups, counts)])


def feature_vector(image: ArrayLike, segmentation: Segmentation | None = None,
                   groups: str | Iterable[str] = DEFAULT_GROUPS, *, cell: str | int = "largest",
                   segmenter: str | Callable[..., Segmentation] = DEFAULT_METHOD,
                   **options: Any) -> np.ndarray:
    """:func:`features` as an array, in :func:`feature_names` order.

    The same values without building the name -> value mapping (what
    :class:`~leukfeat.transformers.FeatureExtractor` computes per image).

    Parameters
    ----------
    image, segmentation, groups, cell, segmenter, **options
        As in :func:`features`.

    Returns
    -------
    ndarray of float64, shape (len(feature_names(groups, **options)),)
        All NaN when the image has no white cell.

    Examples
    --------
    >>> from leukfeat.datasets import make_cells
    >>> image = make_cells(1, size=96, random_state=0).images[0]
    >>> v = feature_vector(image, groups=("shape",))
    >>> v.shape == (len(feature_names(("shape",))),)
    True
    >>> bool((v == list(features(image, groups=("shape",)).values())).all())
    True
    """
    row = _feature_row(image, segmentation, groups, cell, segmenter, options)
    if row is None:
        return np.full(len(feature_names(groups, **options)), np.nan)
    return row


def features_per_cell(image: ArrayLike, segmentation: Segmentation | None = None,
                      groups: str | Iterable[str] = DEFAULT_GROUPS, *,
                      segmenter: str | Callable[..., Segmentation] = DEFAULT_METHOD,
                      exclude_border: bool = False, as_array: bool = False,
                      **options: Any) -> list[OrderedDict[str, float]] | np.ndarray:
    """Measure every white cell of a field.

    Parameters
    ----------
    image, segmentation, groups, segmenter, **options
        As in :func:`features`.
    exclude_border : bool
        Skip cells touching the image border (they may be cut).
    as_array : bool, default False
        Return the rows as one float64 array instead of one mapping per cell
        (the same values, without building a mapping per cell).

    Returns
    -------
    list of OrderedDict, or ndarray of shape (n_cells, 1 + n_features)
        One mapping per cell, in label order, each starting with
        ``cell_label`` (the label in the segmentation) followed by the
        features; empty when no cell is found. With ``as_array``, the rows
        of those values, columns ``["cell_label", *feature_names(groups,
        **options)]`` (``(0, 1 + n_features)`` when no cell is found).
    """
    groups = _check_groups(groups)
    cfg = _config(options)
    rgb, seg = _prepare(image, segmentation, segmenter)
    names = ["cell_label", *feature_names(groups, **options)]
    rows = _cell_rows(rgb, seg, groups, cfg, exclude_border)
    if as_array:
        return np.array(rows, dtype=np.float64).reshape(len(rows), len(names))
    return [OrderedDict(zip(names, row.tolist())) for row in rows]


def _cell_rows(rgb: np.ndarray, seg: Segmentation, groups: tuple[str, ...], cfg: dict[str, Any],
               exclude_border: bool = False) -> list[np.ndarray]:
    """The rows of :func:`features_per_cell` as float64 arrays: the cell's
    label, then its values in column order."""
    measures = _cell_measures(_cell_groups(groups), cfg)
    fld = _field_values(seg, groups)                   # the same for every cell
    rows = []
    for crop in seg.iter_cells(rgb, _margin(cfg)):
        if exclude_border and crop.touches_border:
            continue
        rows.append(np.concatenate([[float(crop.label)], _measure_cell(crop, measures), fld]))
    return rows
