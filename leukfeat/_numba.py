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

Compiling ahead in a helper process (:func:`compile_ahead`): numba compiles
in one thread, under a lock, so a first extraction on a cold cache would
compile some 20 s of kernels one after the other. When the segmentation's
kernels and those of :data:`AHEAD` are all uncompiled, the first extraction
(and :func:`warm_kernels`) starts one helper process (``python -c``, the
same interpreter and package) that runs the ``_warm`` of the modules of
:data:`AHEAD`, in that order, writing numba's on-disk cache, while this
process compiles the segmentation's kernels and then the others'. Before
its first kernel call of such a module this process waits until the helper
has finished that module (a marker file per module), then numba loads the
kernels from the cache. Whatever goes wrong in the helper (it cannot start,
dies, takes more than :data:`AHEAD_TIMEOUT` seconds) only means that this
process compiles the kernels itself, as without it; the helper still
running when this process exits is stopped. No helper either when the
machine is busy (1-minute load average above the number of CPUs minus one:
the helper's start-up and what both processes compile cost more than the
share of a CPU it would get) or has one CPU. ``LEUKFEAT_COMPILE_AHEAD=0``
turns the helper off, ``=1`` starts it whatever the load.
"""

from __future__ import annotations

import atexit
import importlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

__all__ = ["companion", "warm_kernels", "cache_dir", "compile_ahead", "WARM", "AHEAD"]

#: The modules whose ``_warm()`` :func:`warm_kernels` runs: each calls every
#: kernel of its companion (the segment package's covers its four modules).
WARM = ("leukfeat.segment._methods", "leukfeat.extract.texture",
        "leukfeat.extract.colour", "leukfeat.extract.shape", "leukfeat.extract.edges")

#: The compiled companion of each module of :data:`WARM`.
COMPANIONS = {"leukfeat.segment._methods": "leukfeat.segment._kernels",
              "leukfeat.extract.texture": "leukfeat.extract._texture_kernels",
              "leukfeat.extract.colour": "leukfeat.extract._colour_kernels",
              "leukfeat.extract.shape": "leukfeat.extract._shape_kernels",
              "leukfeat.extract.edges": "leukfeat.extract._edges_kernels"}

#: The modules whose kernels a helper process compiles (in this order) on a
#: cold cache while this process compiles the segmentation's; this process
#: compiles the others' itself. An extraction needs texture right after the
#: segmentation (and shape, colour, edges next): with the helper on
#: texture, edges then colour, both processes finish at about the same time.
AHEAD = ("leukfeat.extract.texture", "leukfeat.extract.edges", "leukfeat.extract.colour")

#: Seconds after its start when this process stops waiting for the helper
#: (which takes some 15 s on two cores) and compiles what is left itself.
AHEAD_TIMEOUT = 120.0

_LOADERS: dict = {}
_AHEAD_LOCK = threading.Lock()
_ahead_tried = False
#: companion -> its marker file, while the helper may still be compiling it
_pending: dict = {}
_helper = None          # the helper process (subprocess.Popen)
_helper_end = 0.0       # time.monotonic() when this process stops waiting for it
_helper_dir = None      # its folder of marker files


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
        if _pending and module in _pending:
            _wait_for(module)
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
    On a cold cache a helper process compiles those of :data:`AHEAD`
    meanwhile (:func:`compile_ahead`).
    """
    compile_ahead()
    for name in WARM:
        importlib.import_module(name)._warm()


# --------------------------------------------------------------------------
# compiling ahead in a helper process
# --------------------------------------------------------------------------
def _uncompiled(module: str) -> bool:
    """Whether numba's cache holds no compiled kernel of the companion
    ``module`` (none, or only stale ones); False when that cannot be told.

    Reads the cache index of each cached kernel (numba's private API, hence
    the guard: any surprise counts as compiled, i.e. no helper).
    """
    try:
        mod = companion(module)()
        from numba.core.dispatcher import Dispatcher

        seen = False
        for obj in vars(mod).values():
            if not isinstance(obj, Dispatcher) or obj.py_func.__module__ != module:
                continue
            index = getattr(getattr(obj, "_cache", None), "_cache_file", None)
            if index is None:           # not cached (an inlined helper)
                continue
            seen = True
            if index._load_index():     # {} when missing or stale
                return False
        return seen
    except Exception:   # pragma: no cover - another numba: no helper
        return False


def _idle_cpu() -> bool:
    """Whether a CPU is free for the helper: at least two usable CPUs and a
    1-minute load average at most their number minus one (unknown load, as
    on Windows: free). On a busy machine the helper's own start-up and the
    compiling done twice cost more than the second CPU share it gets."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    if cpus < 2:
        return False
    try:
        return os.getloadavg()[0] <= cpus - 1
    except (AttributeError, OSError):
        return True


def compile_ahead(here=("leukfeat.segment._methods",), ahead=AHEAD) -> bool:
    """Start, once per process, the helper that compiles the kernels of
    the modules ``ahead`` when their companions and those of ``here`` (what
    this process compiles meanwhile) have nothing in numba's cache (see the
    module docstring). Returns whether a helper was started.
    """
    global _ahead_tried, _helper, _helper_dir, _helper_end
    if _ahead_tried:
        return False
    with _AHEAD_LOCK:
        if _ahead_tried:
            return False
        _ahead_tried = True
        # not in a helper, a frozen application or an interpreter embedded in
        # another program (sys.executable is then that program)
        setting = os.environ.get("LEUKFEAT_COMPILE_AHEAD", "")
        if (setting == "0" or getattr(sys, "frozen", False)
                or not os.path.basename(sys.executable or "").lower().startswith("python")):
            return False
        if setting != "1" and not _idle_cpu():
            return False
        if not all(_uncompiled(COMPANIONS[m]) for m in here):
            return False
        todo = [m for m in ahead if _uncompiled(COMPANIONS[m])]
        if not todo:
            return False
        folder = tempfile.mkdtemp(prefix="leukfeat-compile-")
        env = dict(os.environ, LEUKFEAT_COMPILE_AHEAD="0")
        # the same package (a checkout, an editable install) and cache
        # folder (cache_dir set NUMBA_CACHE_DIR when it chose one)
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env["PYTHONPATH"] = os.pathsep.join([root] + ([env["PYTHONPATH"]]
                                                      if env.get("PYTHONPATH") else []))
        code = ("import sys; from leukfeat._numba import _helper_main; "
                "_helper_main(sys.argv[1], sys.argv[2:])")
        try:
            proc = subprocess.Popen([sys.executable, "-c", code, folder, *todo],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, env=env,
                                    creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0))
        except OSError:     # pragma: no cover - no process can be started
            shutil.rmtree(folder, ignore_errors=True)
            return False
        _helper, _helper_dir = proc, folder
        _helper_end = time.monotonic() + AHEAD_TIMEOUT
        for m in todo:
            _pending[COMPANIONS[m]] = os.path.join(folder, m)
        atexit.register(_stop_helper)
        return True


def _helper_main(folder: str, modules) -> None:
    """The helper process: warm each module, then create its marker file."""
    for name in modules:
        importlib.import_module(name)._warm()
        open(os.path.join(folder, name), "w").close()


def _wait_for(module: str) -> None:
    """Wait until the helper has compiled the companion ``module``, has
    exited or has run for :data:`AHEAD_TIMEOUT` seconds; then this process
    loads the kernels from the cache (or compiles what is missing)."""
    marker = _pending.get(module)
    proc, folder = _helper, _helper_dir
    if marker is None or proc is None or folder is None:
        _pending.pop(module, None)
        return
    while (not os.path.exists(marker) and proc.poll() is None
           and time.monotonic() < _helper_end):
        time.sleep(0.02)
    _pending.pop(module, None)
    if not _pending and proc.poll() is not None:
        shutil.rmtree(folder, ignore_errors=True)


def _stop_helper() -> None:
    """At exit: stop the helper if it is still compiling (numba writes each
    cache file whole, so nothing half-written is left) and remove its
    folder."""
    proc = _helper
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:   # pragma: no cover
            proc.kill()
    if _helper_dir is not None:
        shutil.rmtree(_helper_dir, ignore_errors=True)
