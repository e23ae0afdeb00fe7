r"""Field-level features: the population of white cells in a smear field.

The other groups describe one cell (or aggregate cells with ``cell="mean"``
/ ``"median"``); this group describes the **whole segmented field**: how many
white cells it holds, how much of the field they cover and how their sizes
and nucleus fractions vary. On a field of a blood or marrow smear, the number
and density of white cells (blasts, in leukaemia) is itself diagnostic
information that no single-cell measurement carries. On single-cell data sets
(one centred cell per image) the values are nearly constant and harmless.

Measured only on the white-cell mask and the nucleus mask, never on the
background, so it does not read the slide's tint (see
:func:`leukfeat.evaluate.confound_check`). The values depend on the
magnification and the image size like every pixel measure; ``field_cover``
and the nucleus fractions are scale-free.

For cells :math:`i = 1..N` of the segmentation with areas :math:`A_i`
(pixels) and nucleus areas :math:`B_i` (pixels of the nucleus inside cell
:math:`i`), in an image of :math:`H \times W` pixels:

==================================  =============================================
name                                formula
==================================  =============================================
``field_n_cells``                   :math:`N`
``field_cover``                     :math:`\sum_i A_i / (H W)`
``field_cell_area_mean``            :math:`\bar A = \frac1N \sum_i A_i`
``field_cell_area_std``             :math:`\sqrt{\frac1N \sum_i (A_i - \bar A)^2}`
                                    (population, 0 for one cell)
``field_nucleus_fraction_mean``     :math:`\frac1N \sum_i B_i / A_i`
``field_nucleus_fraction_std``      population std of :math:`B_i / A_i`
==================================  =============================================

A field without any white cell gives NaN for every feature (the convention
of :func:`leukfeat.extract.features`: a row of NaN marks "no cell found").
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

import numpy as np

from ..segment import Segmentation

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["field_features", "field_feature_names", "FIELD_FEATURES"]

#: Feature names without the prefix, in output order.
FIELD_FEATURES = ("n_cells", "cover", "cell_area_mean", "cell_area_std",
                  "nucleus_fraction_mean", "nucleus_fraction_std")


def _check_prefix(prefix: str) -> str:
    if not isinstance(prefix, str) or not prefix:
        raise ValueError(f"prefix: expected a non-empty string, got {prefix!r}")
    return prefix


def field_feature_names(prefix: str = "field") -> list[str]:
    """Names of :func:`field_features`, in order.

    Examples
    --------
    >>> field_feature_names()[:2]
    ['field_n_cells', 'field_cover']
    """
    prefix = _check_prefix(prefix)
    return [f"{prefix}_{n}" for n in FIELD_FEATURES]


def field_features(segmentation: Segmentation, prefix: str = "field") -> OrderedDict[str, float]:
    """Count, coverage, size and nucleus-fraction statistics of every cell.

    Parameters
    ----------
    segmentation : leukfeat.segment.Segmentation
        Segmentation of the whole field (its ``labels`` number the cells
        ``1..N``; its ``nucleus`` mask gives the nucleus of each).
    prefix : str, default "field"
        Group prefix of the names.

    Returns
    -------
    OrderedDict of str to float
        Ordered as :func:`field_feature_names`; formulas in the module
        docstring. All NaN when the segmentation holds no cell.

    Raises
    ------
    TypeError
        If ``segmentation`` is not a :class:`~leukfeat.segment.Segmentation`.

    Examples
    --------
    >>> import numpy as np
    >>> from leukfeat.segment import Segmentation
    >>> m = np.zeros((10, 10), bool); m[1:3, 1:3] = True; m[5:9, 5:9] = True
    >>> f = field_features(Segmentation.from_masks(m, nucleus=m))
    >>> f["field_n_cells"], f["field_cover"], f["field_cell_area_mean"]
    (2.0, 0.2, 10.0)
    """
    if not isinstance(segmentation, Segmentation):
        raise TypeError(f"segmentation: expected a leukfeat.segment.Segmentation, "
                        f"got {type(segmentation).__name__}")
    return _field_features(segmentation, field_feature_names(prefix))


def _field_features(segmentation: Segmentation, names: Sequence[str],
                    counts: tuple[np.ndarray, np.ndarray] | None = None
                    ) -> OrderedDict[str, float]:
    """:func:`field_features` with the names given and, optionally, the
    segmentation's ``label_counts()`` already computed."""
    seg = segmentation
    labels = np.asarray(seg.labels)
    n = seg.n_cells
    if n <= 0:
        return OrderedDict.fromkeys(names, np.nan)
    if n > labels.size:                      # sparse label numbers: renumber first
        ids, inverse = np.unique(labels, return_inverse=True)
        labels = (inverse.reshape(labels.shape) + (0 if ids[0] == 0 else 1)).astype(np.int32)
        seg = Segmentation(seg.mask, seg.nucleus, labels)
        n = seg.n_cells
        counts = None
    area_counts, nuc_counts = seg.label_counts() if counts is None else counts
    areas = area_counts[1:].astype(np.float64)
    present = areas > 0                      # labels may skip numbers
    areas = areas[present]
    if areas.size == 0:
        return OrderedDict.fromkeys(names, np.nan)
    nuc = nuc_counts[1:].astype(np.float64)[present]
    frac = nuc / areas
    values = (float(areas.size), float(areas.sum() / labels.size), float(areas.mean()),
              float(areas.std()), float(frac.mean()), float(frac.std()))
    return OrderedDict(zip(names, values))
