"""Locating the optional public data set in ../shared/data (helpers for tests)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LEUKFEAT_SHARED_DATA", ROOT.parent / "shared" / "data"))
TALEGHANI = SHARED / "taleghani-all"


def taleghani_files(step: int = 1) -> list:
    """Sorted Taleghani image paths (every ``step``-th), or skip the test."""
    if not (TALEGHANI / "manifest.csv").is_file():
        pytest.skip(f"Taleghani ALL data not found at {TALEGHANI} "
                    "(set LEUKFEAT_SHARED_DATA to the folder holding taleghani-all)")
    files = sorted(TALEGHANI.glob("*/*.jpg"))
    if not files:
        pytest.skip(f"no JPEG images under {TALEGHANI}")
    return files[::step]
