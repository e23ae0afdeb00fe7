"""The feature-group registry: the one place that knows every feature group.

Each :class:`FeatureGroup` says how a group names its columns for a
configuration and how it measures one cell (or, for field groups, the whole
segmentation). :func:`leukfeat.extract.feature_names`,
:func:`leukfeat.extract.features`, :func:`leukfeat.extract.features_per_cell`,
:class:`leukfeat.extract.FeatureConfig`, the estimators, the command line and
the docs' feature catalogue all read :data:`REGISTRY`; nothing else lists the
groups. Adding a group is one module (its ``*_feature_names`` and
``*_features`` functions) and one entry here (see ``docs/developer.rst``).

The order of :data:`REGISTRY` is the order of the columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from . import colour, edges, field, shape, texture

if TYPE_CHECKING:
    import numpy as np

__all__ = ["FeatureGroup", "CellCrop", "REGISTRY", "catalogue_rst"]


class CellCrop:
    """One cell as every per-cell group sees it: the image crop around the
    cell, the cell and nucleus masks of the crop, and derived images computed
    once on first use and shared by the groups (``gray``)."""

    __slots__ = ("image", "cell", "nucleus", "_gray")

    def __init__(self, image: np.ndarray, cell: np.ndarray, nucleus: np.ndarray) -> None:
        self.image = image
        self.cell = cell
        self.nucleus = nucleus
        self._gray: np.ndarray | None = None

    @property
    def gray(self) -> np.ndarray:
        """BT.601 grey of the crop (OpenCV's conversion)."""
        if self._gray is None:
            import cv2

            self._gray = cv2.cvtColor(self.image, cv2.COLOR_RGB2GRAY)
        return self._gray


@dataclass(frozen=True)
class FeatureGroup:
    """A feature group: its names, its measurement and its documentation.

    Attributes
    ----------
    name : str
        The group's name (``groups=`` of :func:`leukfeat.extract.features`).
    default : bool
        Whether the group is in :data:`leukfeat.extract.DEFAULT_GROUPS`.
    names : callable
        ``names(cfg) -> list of str``: the column names for a full
        configuration ``cfg`` (:data:`leukfeat.extract.DEFAULTS` updated
        with the user's options).
    measure : callable or None
        Per-cell groups: ``measure(crop, cfg) -> dict`` of one
        :class:`CellCrop`, keys equal to ``names(cfg)`` in order.
    measure_field : callable or None
        Field groups (measured once on the whole segmentation, the same in
        every row of a field): ``measure_field(segmentation, counts, cfg) ->
        dict``; ``counts`` is ``Segmentation.label_counts()`` or None.
    prepare, values : callable or None
        The fast path of a per-cell group (optional): ``prepare(cfg)``
        checks the options once and returns them as ``values`` takes them
        (it raises the errors ``measure`` would); ``values(crop, params)``
        returns the values of ``measure(crop, cfg)`` as a float64 array, or
        None for an empty cell, without checking its arguments again or
        building a dict (feature extraction calls it for every cell).
    prefixes : tuple of str
        The prefixes of the group's names.
    module : str
        The module documenting every name with its formula and reference.
    summary : str
        One line for the feature catalogue.
    """

    name: str
    default: bool
    names: Callable[[dict[str, Any]], list[str]]
    measure: Callable[[CellCrop, dict[str, Any]], dict[str, float]] | None = None
    measure_field: Callable[[Any, Any, dict[str, Any] | None], dict[str, float]] | None = None
    prefixes: tuple[str, ...] = ()
    module: str = ""
    summary: str = ""
    prepare: Callable | None = None
    values: Callable | None = None

    @property
    def per_cell(self) -> bool:
        """Whether the group is measured per cell (else once per field)."""
        return self.measure is not None

    def cell_values(self, cfg: dict[str, Any]) -> Callable[[CellCrop], np.ndarray]:
        """``f(crop) -> float64 array`` of this per-cell group for the full
        configuration ``cfg``: :attr:`values` with the options checked once
        here, else :attr:`measure`'s dict turned into an array. An empty
        cell gives NaN."""
        n = len(self.names(cfg))
        measure, values, prepare = self.measure, self.values, self.prepare
        if measure is None:
            raise ValueError(f"group {self.name!r} is measured per field, not per cell")
        if values is None or prepare is None:
            def from_dict(crop: CellCrop) -> np.ndarray:
                return np.fromiter(measure(crop, cfg).values(), np.float64, n)
            return from_dict
        params = prepare(cfg)

        def fast(crop: CellCrop) -> np.ndarray:
            v = values(crop, params)
            return np.full(n, np.nan) if v is None else v
        return fast


def _texture_group(name, compartment, default, summary, prefixes):
    def names(cfg):
        return texture.texture_feature_names(cfg["glcm_distances"], cfg["lbp_radii"],
                                             compartment=compartment)

    def measure(crop, cfg):
        return texture.texture_features(
            crop.gray, crop.cell if compartment is None else crop.nucleus,
            distances=cfg["glcm_distances"], levels=cfg["glcm_levels"],
            lbp_radii=cfg["lbp_radii"], quantization=cfg["glcm_quantization"],
            compartment=compartment)

    def prepare(cfg):
        names(cfg)                                  # checks distances, radii
        kw = texture.texture_features.__kwdefaults__
        return (texture._check_distances(cfg["glcm_distances"]), cfg["glcm_levels"],
                cfg["glcm_quantization"], kw["include_mcc"], tuple(cfg["lbp_radii"]),
                kw["lbp_method"])

    def values(crop, params):
        return texture._texture_values(
            crop.gray, crop.cell if compartment is None else crop.nucleus, *params)

    return FeatureGroup(name, default, names, measure, prefixes=prefixes,
                        module="leukfeat.extract.texture", summary=summary,
                        prepare=prepare, values=values)


def _colour_params(cfg):
    return colour._check_params(cfg["colour_spaces"], cfg["percentiles"],
                                cfg["histogram_bins"], "colour")[:3]


def _shape_params(cfg):
    return shape._check_params(cfg["n_fourier"], cfg["zernike_degree"],
                               shape.shape_features.__kwdefaults__["lobe_depth"], "shape")[:3]


def _edge_params(cfg):
    kw = edges.edge_features.__kwdefaults__
    return edges._check_params(cfg["edge_sigmas"], kw["ring_width"], kw["edge_threshold"],
                               "edges")[:3]


_FIELD_NAMES = tuple(field.field_feature_names())

#: Every feature group, in column order.
REGISTRY = {g.name: g for g in (
    _texture_group("texture", None, True,
                   "Haralick statistics of the GLCM of the cell (mean and range over four "
                   "directions per distance) and rotation-invariant uniform LBP histograms",
                   ("glcm_", "lbp_")),
    _texture_group("nucleus_texture", "nucleus", False,
                   "the same texture features restricted to the nucleus (chromatin "
                   "pattern); not in the default vector",
                   ("glcm_nucleus_", "lbp_nucleus_")),
    FeatureGroup(
        "shape", True,
        names=lambda cfg: shape.shape_feature_names(True, n_fourier=cfg["n_fourier"],
                                                    zernike_degree=cfg["zernike_degree"]),
        measure=lambda crop, cfg: shape.shape_features(crop.cell, crop.nucleus,
                                                       n_fourier=cfg["n_fourier"],
                                                       zernike_degree=cfg["zernike_degree"]),
        prepare=_shape_params,
        values=lambda crop, p: shape._shape_values(crop.cell, crop.nucleus, *p),
        prefixes=("shape_cell_", "shape_nucleus_", "shape_nc_ratio"),
        module="leukfeat.extract.shape",
        summary="morphometry of cell and nucleus: area, perimeter, Feret diameters, "
                "convexity, Hu and Zernike moments, Fourier descriptors, lobes, N:C ratio"),
    FeatureGroup(
        "colour", True,
        names=lambda cfg: colour.colour_feature_names(True, spaces=cfg["colour_spaces"],
                                                      percentiles=cfg["percentiles"],
                                                      histogram_bins=cfg["histogram_bins"]),
        measure=lambda crop, cfg: colour.colour_features(
            crop.image, crop.cell, crop.nucleus, spaces=cfg["colour_spaces"],
            percentiles=cfg["percentiles"], histogram_bins=cfg["histogram_bins"]),
        prepare=_colour_params,
        values=lambda crop, p: colour._colour_values(crop.image, crop.cell, crop.nucleus, *p),
        prefixes=("colour_",),
        module="leukfeat.extract.colour",
        summary="RGB, CIELAB and HSV statistics (mean, spread, percentiles) of nucleus, "
                "cytoplasm and cell"),
    FeatureGroup(
        "edges", True,
        names=lambda cfg: edges.edge_feature_names(sigmas=cfg["edge_sigmas"]),
        measure=lambda crop, cfg: edges.edge_features(crop.image, crop.cell,
                                                      sigmas=cfg["edge_sigmas"]),
        prepare=_edge_params,
        values=lambda crop, p: edges._edge_values(crop.image, crop.cell, *p),
        prefixes=("edges_",),
        module="leukfeat.extract.edges",
        summary="Laplacian-of-Gaussian responses, edge density and gradient statistics "
                "inside the cell"),
    FeatureGroup(
        "field", True,
        names=lambda cfg: field.field_feature_names(),
        measure_field=lambda seg, counts, cfg: field._field_features(seg, _FIELD_NAMES,
                                                                    counts),
        prefixes=("field_",),
        module="leukfeat.extract.field",
        summary="the whole field: number of white cells, coverage, spread of cell size "
                "and nucleus fraction (the same in every row of a field)"),
)}

# field groups are appended after the per-cell ones (extract._field_values):
# the registry's order must say the same
_kinds = [g.per_cell for g in REGISTRY.values()]
assert _kinds == sorted(_kinds, reverse=True), "field groups must come after per-cell groups"


def catalogue_rst() -> str:
    """The feature catalogue page of the docs (reStructuredText), generated
    from :data:`REGISTRY` with the default options, so that it cannot drift
    from the code: every group with its summary, module (where each name's
    formula and reference are documented) and every column name."""
    from . import DEFAULTS

    cfg = dict(DEFAULTS)
    n_default = sum(len(g.names(cfg)) for g in REGISTRY.values() if g.default)
    lines = [
        ".. This page is generated by leukfeat.extract._registry.catalogue_rst()",
        "   when the docs are built; edit the registry or the group modules.",
        "",
        "Feature catalogue",
        "=================",
        "",
        f"Every feature leukfeat computes, by group, with the default options "
        f"(:data:`leukfeat.extract.DEFAULTS`). The default vector "
        f"(:data:`leukfeat.extract.DEFAULT_GROUPS`) has {n_default} columns. Names "
        "are stable; each group's module documents every name with its formula "
        "and reference. Undefined values are NaN, never inf (:doc:`errors`).",
        "",
        ".. list-table::",
        "   :header-rows: 1",
        "",
        "   * - group",
        "     - default",
        "     - columns",
        "     - what",
    ]
    for g in REGISTRY.values():
        lines += [f"   * - ``{g.name}``", f"     - {'yes' if g.default else 'no'}",
                  f"     - {len(g.names(cfg))}", f"     - {g.summary}"]
    for g in REGISTRY.values():
        names = g.names(cfg)
        title = f"``{g.name}``"
        lines += ["", title, "-" * len(title), "",
                  f"{g.summary[0].upper()}{g.summary[1:]}. "
                  f"{'Measured per cell' if g.per_cell else 'Measured once per field'}; "
                  f"formulas and references: :mod:`{g.module}`. Prefixes: "
                  + ", ".join(f"``{p}``" for p in g.prefixes) + f". {len(names)} columns:",
                  "", ".. code-block:: text", ""]
        lines += [f"   {name}" for name in names]
    return "\n".join(lines) + "\n"
