"""Write the golden feature tables of ``tests/test_golden.py`` (run by hand).

Run this ONLY when a change is meant to change feature values, and say in
the commit which values changed and why::

    python tests/golden/make_golden.py

It writes the input fields (``fields/*.png``, synthetic, lossless, so later
changes of :func:`leukfeat.datasets.make_cells` cannot move them) once, and
the three tables from them:

* ``largest.csv``: :func:`leukfeat.extract.features` with every feature group,
  ``cell="largest"``, one row per field;
* ``median.csv``: the same with ``cell="median"``;
* ``per_cell.csv``: :func:`leukfeat.extract.features_per_cell`, one row per
  white cell.

Values are written with 17 significant digits (exact float64 round trip).
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
FIELDS = HERE / "fields"

#: (name, make_cells arguments): one cell, pale cytoplasm, several cells,
#: a wide field with many red cells, and red cells only (a NaN row)
SPECS = [
    ("single-96", dict(size=96, random_state=11)),
    ("single-128", dict(size=128, random_state=12)),
    ("pale-128", dict(size=128, cytoplasm="pale", random_state=13)),
    ("two-cells-160", dict(size=160, n_white_cells=2, random_state=14)),
    ("three-cells-240x320", dict(size=(240, 320), n_white_cells=3, n_red_cells=(20, 25),
                                 random_state=15)),
    ("red-only-128", dict(size=128, n_white_cells=0, random_state=16)),
]


def write_fields() -> None:
    from leukfeat.datasets import make_cells

    FIELDS.mkdir(exist_ok=True)
    for name, kwargs in SPECS:
        path = FIELDS / f"{name}.png"
        if not path.exists():
            image = make_cells(1, **kwargs).images[0]
            cv2.imwrite(str(path), np.ascontiguousarray(image[..., ::-1]))


def read_fields() -> dict:
    from leukfeat.io import read_image

    return {name: read_image(FIELDS / f"{name}.png") for name, _ in SPECS}


def tables() -> dict:
    """The three golden tables computed by the installed leukfeat."""
    from leukfeat import extract

    groups = extract.GROUPS
    fields = read_fields()
    out = {}
    for cell in ("largest", "median"):
        rows = {name: extract.features(img, groups=groups, cell=cell)
                for name, img in fields.items()}
        out[cell] = pd.DataFrame.from_dict(rows, orient="index")
    rows = []
    for name, img in fields.items():
        for row in extract.features_per_cell(img, groups=groups):
            rows.append({"field": name, **row})
    out["per_cell"] = pd.DataFrame(rows).set_index("field")
    return out


def main() -> int:
    write_fields()
    for key, table in tables().items():
        table.index.name = "field"
        table.to_csv(HERE / f"{key}.csv", float_format="%.17g")
        print(f"wrote {HERE / f'{key}.csv'}: {table.shape[0]} rows x {table.shape[1]} columns")
    return 0


if __name__ == "__main__":
    sys.exit(main())
