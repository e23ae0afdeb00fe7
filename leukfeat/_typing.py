"""Type aliases of leukfeat's annotations (issue #32).

Imported by the other modules under ``if TYPE_CHECKING:`` only, so this module
(and numpy.typing) is never loaded at run time by the annotations.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeAlias, Union

from numpy.typing import NDArray

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["StrPath", "ImageBatch"]

#: a file path: str or os.PathLike (pathlib.Path, ...)
StrPath: TypeAlias = Union[str, "os.PathLike[str]"]
#: a batch of images (``X`` of the estimators): a sequence of items (file
#: paths, image arrays or (image, mask) pairs), a 4-D array (n, H, W, C), a
#: 1-D object array, a pandas Series or a one-column DataFrame of items
ImageBatch: TypeAlias = Union["Sequence[Any]", "NDArray[Any]", "pd.Series[Any]", "pd.DataFrame"]
