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
cache (``__pycache__`` beside the companion, or numba's user cache directory
when the package is read-only) and later processes load it instead of
compiling.

:func:`warm_kernels` loads (on a cold cache, compiles) every kernel, once,
in the process that starts a parallel batch, so that its workers find them
cached instead of each compiling them. It runs the ``_warm`` function of
each module in :data:`WARM`, which calls its kernels on tiny inputs of the
types the module passes in production (numba compiles one machine code per
argument types).
"""

from __future__ import annotations

import importlib

__all__ = ["companion", "warm_kernels", "WARM"]

#: The modules whose ``_warm()`` :func:`warm_kernels` runs: each calls every
#: kernel of its companion (the segment package's covers its four modules).
WARM = ("leukfeat.segment._methods", "leukfeat.extract.texture",
        "leukfeat.extract.colour", "leukfeat.extract.shape", "leukfeat.extract.edges")

_LOADERS: dict = {}


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
