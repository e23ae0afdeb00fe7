"""Golden feature tables: every feature value of fixed fields, to a tight tolerance.

The refactors of the image-to-row seam (issue #29) must change no value; this
test proves it. The fields and tables live in ``tests/golden/`` and are
regenerated only by ``python tests/golden/make_golden.py`` when a change is
meant to change values (the commit then says which and why).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

GOLDEN = Path(__file__).resolve().parent / "golden"
sys.path.insert(0, str(GOLDEN))
import make_golden  # noqa: E402

sys.path.remove(str(GOLDEN))

#: float64 arithmetic in numba/OpenCV/numpy kernels; a real change of a
#: feature moves it far more than this
RTOL, ATOL = 1e-9, 1e-12


@pytest.fixture(scope="module")
def computed():
    return make_golden.tables()


@pytest.mark.parametrize("key", ["largest", "median", "per_cell"])
def test_feature_values_equal_the_golden_table(computed, key):
    expected = pd.read_csv(GOLDEN / f"{key}.csv", index_col="field")
    got = computed[key]
    assert list(got.columns) == list(expected.columns), "feature names or order changed"
    assert list(got.index) == list(expected.index), "fields or cells changed"
    a, b = got.to_numpy(np.float64), expected.to_numpy(np.float64)
    assert (np.isnan(a) == np.isnan(b)).all(), [
        (got.index[i], got.columns[j]) for i, j in zip(*np.nonzero(np.isnan(a) != np.isnan(b)))
    ][:10]
    close = np.isclose(a, b, rtol=RTOL, atol=ATOL, equal_nan=True)
    bad = [(got.index[i], got.columns[j], a[i, j], b[i, j])
           for i, j in zip(*np.nonzero(~close))]
    assert not bad, f"{len(bad)} values differ, e.g. {bad[:5]}"


def test_golden_fields_cover_the_cases():
    """No cell (a NaN row), one cell, several cells, a pale cytoplasm."""
    largest = pd.read_csv(GOLDEN / "largest.csv", index_col="field")
    per_cell = pd.read_csv(GOLDEN / "per_cell.csv", index_col="field")
    assert largest.loc["red-only-128"].drop(
        [c for c in largest.columns if c.startswith("field_")]).isna().all()
    assert per_cell.index.value_counts().max() >= 3
    assert largest.shape[1] > 500
