"""Compiled (numba) companions: one lazy loader, one warm-up (private).

A module whose inner loops are compiled keeps them in a companion module of
numba functions next to it:

=====================================  ======================================
companion                              its Python module(s)
=====================================  ======================================
``leukfeat.segment._kernels``          :mod:`leukfeat.segment` (every part)
``leukfeat.extract._texture_kernels``  :mod:`leukfeat.extract.texture`
``leukfeat.extract._colour_kernels``   :mod:`leukfeat.extract.colour`
``leukfeat.extract._shape_kernels``    :mod:`leukfeat.extract.shape`
``leukfeat.extract._edges_kernels``    :mod:`leukfeat.extract.edges`
=====================================  ======================================

Importing numba takes most of a second, so ``import leukfeat`` imports no
companion: a module reaches its companion through the loader
``_kernels = companion("leukfeat.extract._texture_kernels")`` and calls
``_kernels().glcm_stats_u8(...)``; the first call imports it. Every kernel is
compiled with ``cache=True``: the machine code is written to numba's on-disk
cache and later processes load it instead of compiling.

Where the cache goes (:func:`cache_dir`, decided before the first companion
is imported): ``$NUMBA_CACHE_DIR`` when the user set it; else
``__pycache__`` beside the companion when the package directory is
writable (a source checkout, a user's own environment); else (site-packages
read-only: a system or shared installation, a container image) the user
cache directory ``$XDG_CACHE_HOME/leukfeat/numba`` (default
``~/.cache/leukfeat/numba``), or, when that cannot be written either (no
home directory), ``<tempdir>/leukfeat-numba-<uid>``. The last two are set as
``NUMBA_CACHE_DIR`` for this process and its workers. Without them numba
raises ``RuntimeError: cannot cache function ... no locator available`` at
import when neither the package nor the home directory is writable.

:func:`warm_kernels` loads (on a cold cache, compiles) every kernel, once,
in the process that starts a parallel batch, so that its workers find them
cached instead of each compiling them. It runs the ``_warm`` function of
each module in :data:`WARM`, which calls its kernels on tiny inputs of the
types the module passes in production (numba compiles one machine code per
argument types).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import tempfile

__all__ = ["companion", "warm_kernels", "cache_dir", "WARM"]

#: The modules whose ``_warm()`` :func:`warm_kernels` runs: each calls every
#: kernel of its companion (the segment package's covers its four modules).
WARM = ("leukfeat.segment._methods", "leukfeat.extract.texture",
        "leukfeat.extract.colour", "leukfeat.extract.shape", "leukfeat.extract.edges")

_LOADERS: dict = {}


def _writable(folder: str) -> bool:
    """Whether files can be created in ``folder`` (made if missing), tested
    as numba tests its cache directories: by writing one."""
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError:
        return False
    return True


def _user_cache_dirs() -> list:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    uid = os.getuid() if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    return [os.path.join(base, "leukfeat", "numba"),
            os.path.join(tempfile.gettempdir(), f"leukfeat-numba-{uid}")]


def cache_dir(module: str = "leukfeat.segment._kernels"):
    """Where the compiled kernels are cached; set ``NUMBA_CACHE_DIR`` first
    when the package directory is read-only (see the module docstring).

    Returns the directory, or None when numba caches beside the companions
    (``__pycache__`` of the package) or when no candidate can be written
    (numba then tries its own user cache directory, and refuses to import
    the kernels if that fails too).
    """
    if os.environ.get("NUMBA_CACHE_DIR"):
        return os.environ["NUMBA_CACHE_DIR"]
    spec = importlib.util.find_spec(module)
    origin = getattr(spec, "origin", None)
    if origin and _writable(os.path.join(os.path.dirname(origin), "__pycache__")):
        return None
    for folder in _user_cache_dirs():
        if _writable(folder):
            os.environ["NUMBA_CACHE_DIR"] = folder
            if "numba" in sys.modules:   # numba read its environment when imported
                from numba.core import config
                config.reload_config()
            return folder
    return None


def companion(module: str):
    """The loader of the compiled companion ``module``: a function without
    arguments that returns the module, imported on its first call.

    One loader per companion: modules that share a companion share it.
    """
    try:
        return _LOADERS[module]
    except KeyError:
        pass
    loaded = None

    def load():
        nonlocal loaded
        if loaded is None:
            if module not in sys.modules:
                cache_dir(module)
            loaded = importlib.import_module(module)
        return loaded

    load.__name__ = load.__qualname__ = "_kernels"
    load.__doc__ = (f"The compiled companion :mod:`{module}`, imported on first use "
                    "(numba is slow to import).")
    return _LOADERS.setdefault(module, load)


def warm_kernels() -> None:
    """Load (or, on a cold numba cache, compile once) every compiled kernel
    of segmentation and feature extraction.

    Called in the parent process before a parallel batch, so that the
    workers find the kernels cached on disk instead of each compiling them.
    """
    for name in WARM:
        importlib.import_module(name)._warm()
