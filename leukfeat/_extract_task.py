"""The per-image work of :class:`leukfeat.transformers.FeatureExtractor` (private).

It lives apart from the estimators so that a worker process, which
unpickles it, imports only what measuring needs (numpy, OpenCV, numba and
leukfeat's io, segment and extract), not scikit-learn or pandas: about
110 MB less resident memory per worker.
"""

from __future__ import annotations

import os
import uuid
import warnings
from pathlib import Path
from typing import cast

import numpy as np

from . import extract, segment
from ._batch import load_item
from ._fingerprint import content_key
from ._validation import as_uint8_rgb, check_image

#: The columns of :meth:`FeatureExtractor.transform_cells` before the
#: features: the cell's label (the mask's own label for label-image masks),
#: its centroid and its bounding box (max exclusive), as
#: :func:`skimage.measure.regionprops` gives them.
CELL_COLUMNS = ("cell_label", "centroid_row", "centroid_col", "bbox_min_row",
                "bbox_min_col", "bbox_max_row", "bbox_max_col")


def cell_table(item, kwargs) -> np.ndarray:
    """Every cell of one item: an array (n_cells, len(CELL_COLUMNS) + n_features)."""
    image, seg = load_item(item)
    rgb = as_uint8_rgb(check_image(image, "image", ndim=(3,)), "image")
    options = {k: v for k, v in kwargs.items() if k not in ("groups", "cell", "segmenter")}
    if seg is None:
        seg = segment.segment(rgb, kwargs["segmenter"])
    rows = cast(np.ndarray, extract.features_per_cell(rgb, seg, groups=kwargs["groups"],
                                                      as_array=True, **options))
    if not len(rows):
        return np.empty((0, 0))
    geometry = seg.cell_geometry()
    source = seg.info.get("source_labels", {})
    labels = rows[:, 0].astype(int).tolist()
    first = np.array([[source.get(lab, lab), *geometry[lab]] for lab in labels], dtype=np.float64)
    return np.concatenate([first.reshape(len(labels), -1), rows[:, 1:]], axis=1)


class ExtractTask:
    """Picklable per-image work of :class:`FeatureExtractor` (runs in workers):
    one row of features, or (``per_cell``) the table of every cell."""

    def __init__(self, kwargs: dict, names: list, cache_dir, per_cell: bool = False):
        self.kwargs = kwargs
        self.names = names
        self.cache_dir = cache_dir
        self.per_cell = per_cell

    def __call__(self, item) -> np.ndarray:
        cached = None
        if self.cache_dir is not None:
            key = content_key(item)
            if key is not None:
                cached = Path(self.cache_dir) / key[:2] / f"{key}.npy"
                row = self._read(cached)
                if row is not None:
                    return row
        if self.per_cell:
            row = cell_table(item, self.kwargs)
            if row.shape[0] and row.shape[1] != len(CELL_COLUMNS) + len(self.names):
                raise RuntimeError("extract.features_per_cell returned "
                                   f"{row.shape[1] - len(CELL_COLUMNS)} values, "
                                   f"extract.feature_names {len(self.names)} names")
            row = row.reshape(-1, len(CELL_COLUMNS) + len(self.names))
        else:
            row = extract.feature_vector(*load_item(item), **self.kwargs)
            if len(row) != len(self.names):
                raise RuntimeError(f"extract.features returned {len(row)} values, "
                                   f"extract.feature_names {len(self.names)} names for this "
                                   "configuration")
        if cached is not None:
            self._write(cached, row)
        return row

    def _read(self, file: Path):
        try:
            row = np.load(file, allow_pickle=False)
        except (OSError, ValueError, EOFError):
            return None
        width = len(self.names)
        ok = (row.ndim == 2 and row.shape[1] == len(CELL_COLUMNS) + width if self.per_cell
              else row.shape == (width,))
        if row.dtype != np.float64 or not ok:
            return None
        return row

    @staticmethod
    def _write(file: Path, row: np.ndarray) -> None:
        # Write then rename, so that concurrent workers never see half a file.
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
            tmp = file.with_name(f".{file.stem}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
            with open(tmp, "wb") as fh:
                np.save(fh, row, allow_pickle=False)
            os.replace(tmp, file)
        except OSError as exc:  # a read-only or full cache must not fail extraction
            warnings.warn(f"could not write the feature cache file {file}: {exc}",
                          RuntimeWarning, stacklevel=2)
