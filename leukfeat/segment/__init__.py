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

from .._module_path import set_module as _set_module
from ._methods import *  # noqa: F401,F403
from ._methods import __all__  # noqa: F401
from ._methods import _warm_kernels  # noqa: F401

# pickles, skops model files and the API page name them leukfeat.segment.<name>
_set_module(__name__, [globals()[name] for name in __all__])
