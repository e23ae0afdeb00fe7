"""Edge and blob-response features of a cell.

The image is reduced to grey (ITU-R BT.601 luma, float64 in [0, 1]) and
three kinds of measurements are taken on the bounding-box crop of the cell
(with a margin wide enough for every filter, so values equal those computed
on the full image):

* scale-normalised Laplacian-of-Gaussian (LoG) statistics inside the cell,
* the density of edge pixels (LoG zero-crossings with a large enough
  gradient) inside the cell and in a ring along its boundary,
* Sobel gradient-magnitude statistics inside the cell and along the boundary.

Names: ``edges_log_s1_mean``, ``edges_log_s2_p90_abs``, ``edges_cell_density``,
``edges_boundary_gradient_mean``, ... (``s1p5`` for sigma 1.5).

:func:`log_response` and :func:`zero_crossings` are public so that other
modules (e.g. segmentation) can reuse them.
"""

from __future__ import annotations

import functools
from numbers import Real

from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from .._filters import (check_sigma, gaussian_kernels, log_raw,  # noqa: F401
                        log_response, zero_crossings)
from .._numba import companion
from .._validation import as_uint8_rgb, check_image, check_mask

if TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import ArrayLike

__all__ = ["edge_features", "edge_feature_names", "log_response", "zero_crossings"]

_BT601 = np.array([0.299, 0.587, 0.114])
_kernels = companion("leukfeat.extract._edges_kernels")


def _warm() -> None:
    """Call every edge kernel once (see :func:`leukfeat._numba.warm_kernels`)."""
    k = _kernels()
    r = np.arange(9.0).reshape(3, 3) - 4.0
    k.log_stats(r, r > -3, np.empty(4))
    k.boundary_stats(r, r, r, r > -3, np.zeros((3, 3), np.uint8), 0.0, np.empty(8))


# --------------------------------------------------------------------------
# names
# --------------------------------------------------------------------------

def _sigma_tag(sigma: float) -> str:
    return "s" + f"{sigma:g}".replace(".", "p").replace("+", "")


def _check_params(sigmas: Any, ring_width: float, edge_threshold: float, prefix: Any
                  ) -> tuple[tuple[float, ...], float, float, str]:
    try:
        sigmas = tuple(sigmas)
    except TypeError:
        raise ValueError(f"sigmas: expected a sequence of positive numbers, got {sigmas!r}")
    if not sigmas:
        raise ValueError("sigmas: expected at least one scale")
    sigmas = tuple(check_sigma(s, "sigmas") for s in sigmas)
    if len({_sigma_tag(s) for s in sigmas}) != len(sigmas):
        raise ValueError(f"sigmas: expected distinct values, got {sigmas!r}")
    if isinstance(ring_width, bool) or not isinstance(ring_width, Real) \
            or not np.isfinite(ring_width) or ring_width < 1:
        raise ValueError(f"ring_width: expected a number >= 1, got {ring_width!r}")
    if isinstance(edge_threshold, bool) or not isinstance(edge_threshold, Real) \
            or not np.isfinite(edge_threshold) or edge_threshold < 0:
        raise ValueError(f"edge_threshold: expected a non-negative number, got {edge_threshold!r}")
    if not isinstance(prefix, str) or not prefix:
        raise ValueError(f"prefix: expected a non-empty string, got {prefix!r}")
    return sigmas, float(ring_width), float(edge_threshold), prefix


@functools.lru_cache(maxsize=32)
def _names(sigmas: tuple[float, ...], prefix: str) -> tuple[str, ...]:
    names: list[str] = []
    for s in sigmas:
        names += [f"{prefix}_log_{_sigma_tag(s)}_{st}"
                  for st in ("mean", "std", "mean_abs", "p90_abs")]
    names += [f"{prefix}_cell_density", f"{prefix}_boundary_density"]
    for region in ("cell", "boundary"):
        names += [f"{prefix}_{region}_gradient_{st}" for st in ("mean", "std", "p90")]
    return tuple(names)


def edge_feature_names(*, sigmas: Sequence[float] = (1.0, 2.0), prefix: str = "edges") -> list[str]:
    """Names of the features returned by :func:`edge_features`, in order.

    Parameters
    ----------
    sigmas : sequence of float, default (1.0, 2.0)
        LoG scales; each adds ``{prefix}_log_s{sigma}_{mean, std, mean_abs,
        p90_abs}`` (``s1p5`` for 1.5).
    prefix : str, default "edges"

    Returns
    -------
    list of str
        ``4 * len(sigmas) + 8`` names (16 with the defaults).

    Examples
    --------
    >>> edge_feature_names(sigmas=(1.5,))[:2]
    ['edges_log_s1p5_mean', 'edges_log_s1p5_std']
    """
    sigmas, _, _, prefix = _check_params(sigmas, 1, 0.0, prefix)
    return list(_names(sigmas, prefix))


# --------------------------------------------------------------------------
# features
# --------------------------------------------------------------------------

def _bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """Bounding box ``(r0, r1, c0, c1)`` (exclusive ends) or None if empty."""
    x, y, w, h = cv2.boundingRect(np.ascontiguousarray(mask).view(np.uint8))
    if w == 0:
        return None
    return y, y + h, x, x + w


def _gray_crop(arr: np.ndarray, sl: tuple[slice, slice]) -> np.ndarray:
    """BT.601 grey of ``arr[sl]`` as float64 in [0, 1]."""
    if arr.ndim == 2 and np.issubdtype(arr.dtype, np.floating) \
            and arr.min() >= 0.0 and arr.max() <= 1.0:
        return np.ascontiguousarray(arr[sl], dtype=np.float64)
    if arr.ndim == 2 and arr.dtype == np.uint8:
        return arr[sl] * (1.0 / 255.0)
    rgb = as_uint8_rgb(arr, "image")
    if arr.ndim == 2:
        return rgb[sl][..., 0] * (1.0 / 255.0)
    return rgb[sl] @ (_BT601 / 255.0)


@functools.lru_cache(maxsize=8)
def _disc(radius: float) -> np.ndarray:
    r = int(np.floor(radius))
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    return (yy * yy + xx * xx <= radius * radius).astype(np.uint8)


def edge_features(image: ArrayLike, cell_mask: ArrayLike, *, sigmas: Sequence[float] = (1.0, 2.0),
                  ring_width: float = 3, edge_threshold: float = 0.02,
                  prefix: str = "edges") -> dict[str, float]:
    r"""LoG, edge-density and gradient features of one cell.

    Parameters
    ----------
    image : (H, W, 3) or (H, W) array_like
        RGB (uint8, or as accepted by the package's ``as_uint8_rgb``) or grey
        image. Colour is reduced to BT.601 luma
        :math:`Y = (0.299 R + 0.587 G + 0.114 B) / 255`; a float grey image
        in [0, 1] is used as is, uint8 grey is divided by 255.
    cell_mask : (H, W) array_like of bool
        Mask of the cell.
    sigmas : sequence of float, default (1.0, 2.0)
        Scales of the LoG statistics; the smallest one defines the edges.
    ring_width : float >= 1, default 3
        Width in pixels of the boundary ring: the cell pixels whose Euclidean
        distance to the nearest background pixel is at most `ring_width`
        (the mask minus its erosion by a disc of that radius). Pixels outside
        the image count as background.
    edge_threshold : float >= 0, default 0.02
        Minimum gradient magnitude (grey levels in [0, 1] per pixel) of an
        edge pixel (about 5 grey levels of 255 per pixel).
    prefix : str, default "edges"
        Group prefix of the feature names.

    Returns
    -------
    dict of str to float
        Ordered as :func:`edge_feature_names`:

        ``{prefix}_log_s{σ}_mean``, ``_std``, ``_mean_abs``, ``_p90_abs`` :
            mean, population std, mean of :math:`|L|` and 90th percentile of
            :math:`|L|` over the cell pixels, with
            :math:`L = \sigma^2 \nabla^2 G_\sigma * Y` (:func:`log_response`).
        ``{prefix}_cell_density``, ``{prefix}_boundary_density`` : fraction
            of the pixels of the cell (resp. of the boundary ring) that are
            edge pixels: zero-crossings (:func:`zero_crossings`, threshold 0)
            of the LoG at the smallest sigma whose gradient magnitude is at
            least `edge_threshold` (Marr-Hildreth with a gradient test).
        ``{prefix}_{cell,boundary}_gradient_{mean,std,p90}`` : mean,
            population std and 90th percentile of the Sobel gradient
            magnitude :math:`\frac18\sqrt{(S_x * Y)^2 + (S_y * Y)^2}` inside
            the cell and in the boundary ring. The 1/8 makes it the
            intensity change per pixel of a linear ramp; OpenCV's 3x3 Sobel
            with its default border (``BORDER_REFLECT_101``, i.e. scipy's
            ``"mirror"``).

    Raises
    ------
    ValueError
        If `image` or `cell_mask` are invalid, or a parameter is out of range.

    Notes
    -----
    The filters run on the bounding box of the cell enlarged by
    ``int(4 max(sigmas) + 0.5) + 2`` pixels, so the values inside the cell
    are those of the full-image filters. An empty mask gives NaN for every
    feature; a flat image gives zero gradients and zero edge densities.

    Examples
    --------
    >>> import numpy as np
    >>> yy, xx = np.mgrid[:64, :64]
    >>> cell = (yy - 32) ** 2 + (xx - 32) ** 2 <= 15 ** 2
    >>> img = np.where(cell, 200, 40).astype(np.uint8)
    >>> f = edge_features(img, cell)
    >>> f["edges_boundary_gradient_mean"] > f["edges_log_s1_mean_abs"] > 0
    True
    """
    sigmas, ring_width, edge_threshold, prefix = _check_params(
        sigmas, ring_width, edge_threshold, prefix)
    arr = check_image(image, "image")
    cell = check_mask(cell_mask, arr.shape, "cell_mask")
    names = _names(sigmas, prefix)
    values = _edge_values(arr, cell, sigmas, ring_width, edge_threshold)
    if values is None:
        return dict.fromkeys(names, np.nan)
    return dict(zip(names, values.tolist()))


def _edge_values(arr: np.ndarray, cell: np.ndarray, sigmas: tuple[float, ...], ring_width: float,
                 edge_threshold: float) -> np.ndarray | None:
    """The values of :func:`edge_features` as a float64 array in the order
    of its names, or None for an empty ``cell``: checked arguments (the
    image as ``check_image`` returns it, a bool mask of its shape,
    parameters as ``_check_params`` returns them); what per-cell extraction
    calls."""
    box = _bbox(cell)
    if box is None:
        return None

    margin = max(gaussian_kernels(s)[2] for s in sigmas) + 2
    h, w = cell.shape
    r0, r1 = max(box[0] - margin, 0), min(box[1] + margin, h)
    c0, c1 = max(box[2] - margin, 0), min(box[3] + margin, w)
    sl = (slice(r0, r1), slice(c0, c1))
    gray = _gray_crop(arr, sl)
    m = np.ascontiguousarray(cell[sl])

    k = _kernels()
    values = np.empty(4 * len(sigmas) + 8)
    smin = min(sigmas)
    for i, s in enumerate(sigmas):
        resp = log_raw(gray, s)
        if s == smin:
            resp_min = resp
        k.log_stats(resp, m, values[4 * i:4 * i + 4])
    gx = cv2.Sobel(gray, cv2.CV_64F, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_64F, 0, 1, ksize=3)
    # ring = cell minus its erosion by a Euclidean disc: the pixels within
    # ring_width of a background pixel (outside the image counts as background)
    eroded = cv2.erode(m.view(np.uint8), _disc(ring_width), borderType=cv2.BORDER_CONSTANT,
                       borderValue=0)
    k.boundary_stats(resp_min, gx, gy, m, eroded, edge_threshold, values[4 * len(sigmas):])
    return values
