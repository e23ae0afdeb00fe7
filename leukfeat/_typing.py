"""Type aliases of leukfeat's annotations (issue #32).

Imported by the other modules under ``if TYPE_CHECKING:`` only, so this module
(and numpy.typing) is never loaded at run time by the annotations.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeAlias, Union

from numpy.typing import ArrayLike, NDArray

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["StrPath", "Image", "Item", "ImageBatch", "ArrayLike", "NDArray", "AnyArray"]

#: a file path: str or os.PathLike (pathlib.Path, ...)
StrPath: TypeAlias = Union[str, "os.PathLike[str]"]
#: any numpy array
AnyArray: TypeAlias = "NDArray[Any]"
#: an image array (H, W) or (H, W, C)
Image: TypeAlias = "NDArray[Any]"
#: one item of a batch: a file path, an image array, or an (image, mask) pair
Item: TypeAlias = Union[StrPath, "NDArray[Any]", "tuple[Any, Any]"]
#: a batch of images (``X`` of the estimators): a sequence of items, a 4-D
#: array (n, H, W, C), a 1-D object array, a pandas Series or a one-column
#: DataFrame of items
ImageBatch: TypeAlias = Union["Sequence[Any]", "NDArray[Any]", "pd.Series[Any]", "pd.DataFrame"]
