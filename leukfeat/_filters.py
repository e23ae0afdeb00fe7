"""Low-level filters shared by segmentation and feature extraction (private).

Lives below both :mod:`leukfeat.segment` and :mod:`leukfeat.extract` so that
neither imports the other's internals.
"""

from __future__ import annotations

import functools
from numbers import Real
from typing import TYPE_CHECKING

import cv2
import numpy as np

from ._validation import check_image

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = ["log_response", "zero_crossings"]

_TRUNCATE = 4.0          # scipy.ndimage default: kernel radius int(4 sigma + 0.5)


@functools.lru_cache(maxsize=16)
def gaussian_kernels(sigma: float) -> tuple[np.ndarray, np.ndarray, int]:
    """scipy.ndimage's sampled Gaussian and its 2nd derivative (order 0, 2)."""
    radius = int(_TRUNCATE * sigma + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    phi = np.exp(-0.5 / (sigma * sigma) * x * x)
    phi /= phi.sum()
    d2 = (x * x / sigma ** 4 - 1.0 / sigma ** 2) * phi
    phi.setflags(write=False)
    d2.setflags(write=False)
    return phi, d2, radius


def check_sigma(sigma: float, name: str = "sigma") -> float:
    if isinstance(sigma, bool) or not isinstance(sigma, Real) or not np.isfinite(sigma) \
            or not sigma > 0:
        raise ValueError(f"{name}: expected a positive number, got {sigma!r}")
    return float(sigma)


def log_raw(gray: np.ndarray, sigma: float) -> np.ndarray:
    g0, g2, _ = gaussian_kernels(sigma)
    a: np.ndarray = cv2.sepFilter2D(gray, cv2.CV_64F, g2, g0, borderType=cv2.BORDER_REFLECT)
    b = cv2.sepFilter2D(gray, cv2.CV_64F, g0, g2, borderType=cv2.BORDER_REFLECT)
    a += b
    a *= sigma * sigma
    return a


def log_response(gray: ArrayLike, sigma: float) -> np.ndarray:
    r"""Scale-normalised Laplacian of Gaussian, :math:`\sigma^2 \nabla^2 (G_\sigma * I)`.

    Parameters
    ----------
    gray : (H, W) array_like
        Grey image; used as float64 without rescaling.
    sigma : float
        Gaussian standard deviation in pixels (> 0).

    Returns
    -------
    (H, W) ndarray of float64
        Equal (to ~1e-15) to ``sigma**2 * scipy.ndimage.gaussian_laplace(
        gray, sigma)`` (mode ``"reflect"``, kernel radius
        ``int(4 sigma + 0.5)``), computed with two separable OpenCV passes
        using scipy's kernels. Bright blobs of radius about
        :math:`\sigma\sqrt2` give strong negative responses; the
        :math:`\sigma^2` factor makes responses comparable across scales
        (Lindeberg 1998).

    Raises
    ------
    ValueError
        If `gray` is not a finite 2-D numeric array or `sigma` is not positive.

    References
    ----------
    .. [1] D. Marr, E. Hildreth, "Theory of edge detection", Proc. R. Soc.
       Lond. B 207, 1980.
    .. [2] T. Lindeberg, "Feature detection with automatic scale selection",
       IJCV 30(2), 1998.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.zeros((32, 32)); img[12:20, 12:20] = 1.0
    >>> r = log_response(img, 2.0)
    >>> bool(r[16, 16] < 0)
    True
    """
    sigma = check_sigma(sigma)
    g = check_image(gray, "gray", ndim=(2,), min_size=1)
    return log_raw(np.ascontiguousarray(g, dtype=np.float64), sigma)


def zero_crossings(response: ArrayLike, threshold: float = 0.0) -> np.ndarray:
    r"""Zero-crossing map of a (LoG) response.

    A 4-connected pair of pixels :math:`(p, q)` (horizontal or vertical
    neighbours) crosses zero when :math:`r_p r_q < 0` (strictly opposite
    signs) and :math:`|r_p - r_q| > ` `threshold`. Of each crossing pair the
    pixel with the smaller :math:`|r|` (the one closer to the zero level;
    the left/upper one on ties) is marked, so edges are one pixel thick and
    lie on the side of the true zero.

    Parameters
    ----------
    response : (H, W) array_like
        Real-valued response, typically :func:`log_response`.
    threshold : float, default 0
        Minimum jump across the pair (in response units); larger values keep
        only strong edges.

    Returns
    -------
    (H, W) ndarray of bool

    Raises
    ------
    ValueError
        If `response` is not a finite 2-D numeric array or `threshold` is
        negative.

    Examples
    --------
    >>> import numpy as np
    >>> zero_crossings(np.array([[-1.0, 2.0, 3.0]])).astype(int).tolist()
    [[1, 0, 0]]
    """
    if isinstance(threshold, bool) or not isinstance(threshold, Real) \
            or not np.isfinite(threshold) or threshold < 0:
        raise ValueError(f"threshold: expected a non-negative number, got {threshold!r}")
    r = check_image(response, "response", ndim=(2,), min_size=1)
    return zero_crossings_raw(np.asarray(r, dtype=np.float64), float(threshold))


def zero_crossings_raw(r: np.ndarray, threshold: float) -> np.ndarray:
    out = np.zeros(r.shape, dtype=bool)
    for a, b, oa, ob in ((r[:, :-1], r[:, 1:], out[:, :-1], out[:, 1:]),
                         (r[:-1, :], r[1:, :], out[:-1, :], out[1:, :])):
        cross = (a * b < 0) & (np.abs(a - b) > threshold)
        first = np.abs(a) <= np.abs(b)
        oa |= cross & first
        ob |= cross & ~first
    return out


