"""Shared fixtures: the optional public data set in ../shared/data."""

from __future__ import annotations

import numpy as np
import pytest

from _shared import taleghani_files


@pytest.fixture(scope="session")
def taleghani_sample():
    """About 60 Taleghani images spread over the four classes (RGB uint8)."""
    from leukfeat.io import read_image
    return [read_image(p) for p in taleghani_files(step=55)]


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
