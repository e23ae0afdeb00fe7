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

import warnings
from collections import OrderedDict

import numpy as np

from .._numba import compile_ahead
from .._validation import as_uint8_rgb, check_image
from ..segment import DEFAULT_METHOD, Segmentation, segment as _segment
from . import colour, edges, field, shape, texture
from ._registry import REGISTRY, CellCrop, FeatureGroup
from .texture import haralick, glcm, glcm_props, lbp_histogram  # noqa: F401  (public API)

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

#: Aggregations over every cell of a field accepted as ``cell=``.
_AGGREGATES = {"mean": np.nanmean, "median": np.nanmedian}


def _config(overrides: dict) -> dict:
    unknown = set(overrides) - set(DEFAULTS)
    if unknown:
        raise TypeError(f"unknown feature option(s) {sorted(unknown)}; "
                        f"known: {sorted(DEFAULTS)}")
    cfg = dict(DEFAULTS)
    cfg.update(overrides)
    return cfg


def _check_groups(groups) -> tuple:
    if isinstance(groups, str):
        groups = (groups,)
    groups = tuple(groups)
    bad = [g for g in groups if g not in GROUPS]
    if bad or not groups:
        raise ValueError(f"groups: expected a non-empty subset of {GROUPS}, got {groups!r}")
    # keep the canonical order so that columns never depend on argument order
    return tuple(g for g in GROUPS if g in groups)


def feature_names(groups=DEFAULT_GROUPS, **options) -> list:
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

    def __init__(self, groups=DEFAULT_GROUPS, cell="largest", options=None):
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

    def full_options(self) -> dict:
        """Every option: :data:`DEFAULTS` updated with :attr:`options`."""
        return _config(self.options)

    def names(self) -> list:
        """The column names, in order."""
        return feature_names(self.groups, **self.options)

    def cache_key(self) -> dict:
        """A JSON-able description that changes whenever a value could."""
        full = self.full_options()
        return {"groups": list(self.groups), "cell": self.cell,
                "options": {k: full[k] for k in sorted(full)},
                "n_features": len(self.names())}

    def __repr__(self) -> str:
        return (f"FeatureConfig(groups={self.groups!r}, cell={self.cell!r}, "
                f"options={self.options!r})")

    def __eq__(self, other) -> bool:
        return isinstance(other, FeatureConfig) and self.cache_key() == other.cache_key()

    __hash__ = None


def _pick_cell(seg: Segmentation, cell, counts=None) -> int:
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


def _margin(cfg) -> int:
    """Context kept around a cell's box: the reach of every filter, so that
    values on the crop equal those on the full image."""
    return int(4.0 * max(cfg["edge_sigmas"]) + 0.5) + _CROP_MARGIN_EXTRA


def _measure_cell(crop, groups, cfg) -> list:
    """The groups' dicts of one :class:`~leukfeat.segment.CellCrop`."""
    return _measure_crop(crop.image, crop.mask, crop.nucleus, groups, cfg)


def _measure_crop(img, cm, nm, groups, cfg) -> list:
    """The groups' dicts for a cell given its crop and masks (C-contiguous)."""
    crop = CellCrop(np.ascontiguousarray(img), cm, nm)
    return [REGISTRY[g].measure(crop, cfg) for g in groups]


def _cell_groups(groups) -> tuple:
    """The groups measured per cell (the others are measured once per field)."""
    return tuple(g for g in groups if REGISTRY[g].per_cell)


def _with_field(parts, seg, groups, counts=None, cfg=None):
    """Append the field groups (measured once on the whole segmentation)."""
    for g in groups:
        if not REGISTRY[g].per_cell:
            parts.append(REGISTRY[g].measure_field(seg, counts, cfg))
    return parts


def _merged(parts) -> "OrderedDict[str, float]":
    """One ordered mapping from a list of group dicts."""
    return OrderedDict(kv for d in parts for kv in d.items())


def _values(parts) -> list:
    """The values of a list of group dicts, in column order."""
    return [v for d in parts for v in d.values()]


def _prepare(image, segmentation, segmenter):
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


def features(image, segmentation=None, groups=DEFAULT_GROUPS, *, cell="largest",
             segmenter=DEFAULT_METHOD, **options) -> "OrderedDict[str, float]":
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
    parts = _feature_parts(image, segmentation, groups, cell, segmenter, options)
    if parts is None:
        return OrderedDict.fromkeys(feature_names(groups, **options), np.nan)
    return _merged(parts)


def _feature_parts(image, segmentation, groups, cell, segmenter, options):
    """The work of :func:`features`: the group dicts in column order, or None
    when the image has no (such) cell and the row is all NaN."""
    groups = _check_groups(groups)
    cfg = _config(options)
    rgb, seg = _prepare(image, segmentation, segmenter)
    per_cell = _cell_groups(groups)
    if isinstance(cell, str) and cell in _AGGREGATES:
        rows = [_values(_measure_cell(crop, per_cell, cfg))
                for crop in seg.iter_cells(rgb, _margin(cfg))]
        if not rows:
            return None
        names = feature_names(per_cell, **options) if per_cell else []
        table = np.array(rows, dtype=np.float64).reshape(len(rows), len(names))
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns stay NaN
            agg = _AGGREGATES[cell](table, axis=0) if names else []
        return _with_field([dict(zip(names, np.asarray(agg).tolist()))], seg, groups)
    # cell areas (for "largest") and nucleus areas (for the field) in one pass
    counts = seg.label_counts() if seg.labels.size >= seg.n_cells else None
    lab = _pick_cell(seg, cell, counts)
    if lab == 0:
        return None
    return _with_field(_measure_cell(seg.crop(lab, rgb, _margin(cfg)), per_cell, cfg),
                       seg, groups, counts)


def feature_vector(image, segmentation=None, groups=DEFAULT_GROUPS, *, cell="largest",
                   segmenter=DEFAULT_METHOD, **options) -> np.ndarray:
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
    parts = _feature_parts(image, segmentation, groups, cell, segmenter, options)
    if parts is None:
        return np.full(len(feature_names(groups, **options)), np.nan)
    return np.array(_values(parts), dtype=np.float64)


def features_per_cell(image, segmentation=None, groups=DEFAULT_GROUPS, *, segmenter=DEFAULT_METHOD,
                      exclude_border: bool = False, **options) -> list:
    """Measure every white cell of a field.

    Parameters
    ----------
    image, segmentation, groups, segmenter, **options
        As in :func:`features`.
    exclude_border : bool
        Skip cells touching the image border (they may be cut).

    Returns
    -------
    list of OrderedDict
        One mapping per cell, in label order, each starting with
        ``cell_label`` (the label in the segmentation) followed by the
        features. Empty when no cell is found.
    """
    groups = _check_groups(groups)
    cfg = _config(options)
    rgb, seg = _prepare(image, segmentation, segmenter)
    per_cell = _cell_groups(groups)
    rows = []
    fld = _with_field([], seg, groups)                 # the same for every cell
    for crop in seg.iter_cells(rgb, _margin(cfg)):
        if exclude_border and crop.touches_border:
            continue
        parts = [{"cell_label": float(crop.label)}, *_measure_cell(crop, per_cell, cfg)]
        rows.append(_merged(parts + fld))
    return rows
