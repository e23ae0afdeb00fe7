"""Type aliases of leukfeat's annotations (issue #32).

Imported by the other modules under ``if TYPE_CHECKING:`` only, so this module
(and numpy.typing) is never loaded at run time by the annotations.
"""

from __future__ import annotations

import os
from typing import Any, TypeAlias, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["StrPath", "Image", "Item", "ArrayLike", "NDArray", "AnyArray"]

#: a file path: str or os.PathLike (pathlib.Path, ...)
StrPath: TypeAlias = Union[str, "os.PathLike[str]"]
#: any numpy array
AnyArray: TypeAlias = "NDArray[Any]"
#: an image array (H, W) or (H, W, C)
Image: TypeAlias = "NDArray[Any]"
#: one item of a batch: a file path, an image array, or an (image, mask) pair
Item: TypeAlias = Union[StrPath, "NDArray[Any]", "tuple[Any, Any]"]
