"""The ``leukfeat`` command (also ``python -m leukfeat``).

Commands: demo, segment, extract, train, predict, evaluate; the
implementation is in :mod:`leukfeat.cli` (``leukfeat --help`` lists them).
"""

from __future__ import annotations

import sys

from .cli import build_parser, main

__all__ = ["main", "build_parser"]


if __name__ == "__main__":
    sys.exit(main())
