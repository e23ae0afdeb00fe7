"""White-cell segmentation for stained blood-smear images.

Every segmenter takes an RGB uint8 image (H, W, 3) and returns a
:class:`Segmentation`: boolean ``mask`` (white cells, nucleus plus
cytoplasm), ``nucleus``, ``cytoplasm`` and an integer ``labels`` image with one
label per white cell.  An image without any white cell gives an empty
segmentation (``n_cells == 0``), never an exception.

Segmenters
----------
nucleus_anchored
    The default (:data:`DEFAULT_METHOD`): nuclei first, from the white-balanced
    blue ratio (:func:`blue_ratio`) and the image's own Otsu thresholds; the
    pieces of each nucleus joined into one cell; the cytoplasm grown from
    each nucleus by a closed contour found by dynamic programming. Holds on
    every Romanowsky-type stain measured and rejects red cells and
    platelets.
lab_kmeans
    The published recipe: CIELAB conversion, K-means on the a* channel, keep
    the most magenta (stained) cluster(s), threshold, fill holes, remove small
    objects and holes.  K-means runs *exactly* on the 256-bin histogram of the
    8-bit a* channel rather than on every pixel, which gives the same
    clustering as Lloyd's algorithm on all pixels at a tiny fraction of the
    cost.
hsv_threshold
    A box in HSV space around the purple/violet of Wright/Giemsa-stained
    white cells.
otsu
    Otsu's threshold on one channel.

The three colour-threshold recipes share the same clean-up (opening, :func:`fill_holes`,
:func:`remove_small`), the same watershed split of
touching cells (:func:`split_touching`) and the same nucleus/cytoplasm split
(:func:`split_nucleus`).  :func:`cells` cuts every white cell out of a smear
field.
"""

# The package's modules, each importing only those above it:
#   _morphology  masks and label images: fill_holes, remove_small, opening,
#                closing, split_touching, the clean-up steps, label passes
#   _threshold   histogram thresholds (kmeans_histogram, otsu_threshold) and
#                split_nucleus
#   _container   Segmentation (labels, boxes, iter_cells), CellCrop, from_mask
#   _methods     the segmenters, METHODS, segment(), cells(), log_edges
#   _anchored    the nucleus-anchored algorithm (imported on first use)
#   _kernels     the compiled (numba) kernels of all of them, loaded on first
#                use through leukfeat._numba (which also warms them)

from .._module_path import set_module as _set_module
from . import _container, _methods
from ._container import CellCrop, Segmentation, from_mask
from ._methods import (HSV_LOWER as HSV_LOWER, HSV_UPPER as HSV_UPPER, METHODS, blue_ratio, cells,  # noqa: F401
                       hsv_threshold, lab_kmeans, log_edges, nucleus_anchored, otsu, segment)
from ._morphology import (closing, fill_holes, opening, remove_small, remove_small_holes,
                          split_touching)
from ._threshold import kmeans_histogram, otsu_threshold, split_nucleus

__all__ = [
    "Segmentation",
    "CellCrop",
    "lab_kmeans",
    "hsv_threshold",
    "otsu",
    "nucleus_anchored",
    "blue_ratio",
    "segment",
    "from_mask",
    "MASK_KINDS",
    "SAVED_FILES",
    "cells",
    "kmeans_histogram",
    "otsu_threshold",
    "split_nucleus",
    "fill_holes",
    "remove_small",
    "remove_small_holes",
    "opening",
    "closing",
    "split_touching",
    "log_edges",
    "METHODS",
    "DEFAULT_METHOD",
]

#: The files :meth:`Segmentation.save` writes: ``{key: suffix}`` (see there).
SAVED_FILES = _container.SAVED_FILES

#: How :func:`from_mask` reads a mask (see there).
MASK_KINDS = _container.MASK_KINDS

#: The segmenter used wherever none is named: :func:`segment`, :func:`cells`,
#: :func:`leukfeat.extract.features`, the estimators and the command line.
DEFAULT_METHOD = _methods.DEFAULT_METHOD

# pickles, skops model files and the API page name them leukfeat.segment.<name>
_set_module(__name__, [globals()[name] for name in __all__])
