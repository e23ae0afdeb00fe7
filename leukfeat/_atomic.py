"""Output files that appear whole or not at all (private).

:func:`atomic_path` is the one way leukfeat writes a table, a JSON report or
a model file: the content goes to a temporary file in the destination's own
folder, which replaces the destination (``os.replace``, atomic on one file
system) only once it is complete. A process killed while writing leaves at
most a hidden ``.<name>.<random>.tmp`` file, never a truncated file under
the final name, and an earlier file of that name stays intact until the new
one is complete.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

__all__ = ["atomic_path"]


@contextlib.contextmanager
def atomic_path(path):
    """Context manager yielding a temporary path that becomes ``path``.

    Parameters
    ----------
    path : str or os.PathLike
        The destination; missing parent folders are created.

    Yields
    ------
    pathlib.Path
        An empty temporary file beside ``path`` to write to (by name). When
        the block ends without an exception it replaces ``path``; otherwise
        it is deleted and the exception propagates.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
