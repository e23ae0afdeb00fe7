"""Typed public API (issue #32): mypy with the project's configuration.

``[tool.mypy]`` in pyproject.toml says what is checked and how strictly (the
public modules with ``strict = true``, the private ones non-strictly); this
test runs exactly that check on the ``leukfeat`` package, so CI (which runs
the README's ``python -m pytest``) runs it too. mypy comes with the ``test``
extra; without it the test is skipped.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_mypy_is_clean_on_the_package(tmp_path):
    api = pytest.importorskip("mypy.api", reason="mypy is not installed (pip install "
                              "'leukfeat[test]' installs it)")
    config = ROOT / "pyproject.toml"
    package = ROOT / "leukfeat"
    assert config.is_file() and package.is_dir(), "run from a source tree (or sdist) of leukfeat"
    stdout, stderr, status = api.run([
        "--config-file", str(config),
        # a fresh cache: a clean clone (and CI) checks from scratch, and a
        # cache left by another mypy version is never read
        "--cache-dir", str(tmp_path / "mypy-cache"),
        "--python-executable", sys.executable,
        "--show-error-codes",
        # the package's folder, not "-p leukfeat": the source tree under test,
        # whichever leukfeat the interpreter would import
        str(package),
    ])
    assert status == 0, f"mypy found type errors (exit status {status}):\n{stdout}{stderr}"
