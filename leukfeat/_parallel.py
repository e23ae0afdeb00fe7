"""Batch work in one place: joblib processes, a progress bar, an error policy (private).

:func:`map_ordered` applies a function to every item of a batch, in parallel
with :class:`joblib.Parallel` (its default, process-based ``loky`` backend),
and returns the results **in input order**. It is what
:class:`leukfeat.transformers.FeatureExtractor` and the command line use for
per-image work.

Design notes
------------
* Results are consumed with ``return_as="generator"`` so that a :mod:`tqdm`
  bar advances while the batch runs; joblib's ``batch_size="auto"`` groups
  small items into one task to amortise the inter-process overhead.
* No ``backend`` is forced: joblib's default (loky) is used, a
  ``joblib.parallel_config(...)`` set by the caller is honoured, and a call
  nested inside another joblib worker (e.g. in a ``GridSearchCV(n_jobs=2)``)
  runs sequentially instead of oversubscribing the machine.
* Inside a worker *process* every thread pool is limited to one thread
  (OpenMP/BLAS through :mod:`threadpoolctl` and joblib's environment
  variables, OpenCV through ``cv2.setNumThreads(1)``): parallelism is over
  images, and two processes each starting two threads on a 2-core machine
  only slow each other down. The calling process is never modified.
* Errors raised by ``fn`` are caught in the worker and sent back as data, so
  the error policy is applied here, in the parent: ``"raise"`` re-raises the
  first error (by input position) naming the failed item, ``"collect"`` keeps
  going and reports every failure. After an error under ``"raise"`` no new
  item is dispatched; the few already sent to the workers are finished and
  discarded (cancelling them would make joblib kill the worker processes,
  which then have to be restarted by the next call).
* A worker process that dies (out-of-memory killer, a segfault in native
  code) takes the tasks in flight with it: those items are run again, each
  alone in a fresh worker, and an item whose worker dies again becomes an
  error of that item (:class:`WorkerDiedError`), so one such item never
  loses the batch. Workers end themselves within a second when the process
  that started them dies (a killed run leaves no idle workers behind).
* Environment variables that steer leukfeat (``LEUKFEAT_MAX_PIXELS``) are
  sent with every task, so a worker started earlier sees the caller's
  current value.
"""

from __future__ import annotations

import os
import re
import threading
import traceback
from dataclasses import dataclass

import numpy as np

__all__ = ["map_ordered", "Failure", "WorkerDiedError", "describe_item"]

_ON_ERROR = ("raise", "collect")
_MAX_REPR = 200


@dataclass(frozen=True)
class Failure:
    """One item that failed in :func:`_map` (internal, richer than the public tuple).

    Attributes
    ----------
    index : int
        Position of the item in the input.
    item : str
        Short description of the item (see :func:`describe_item`).
    error_type : str
        Class name of the exception.
    message : str
        ``str(exception)``.
    exception : BaseException or None
        The exception itself when it survived pickling, else None.
    traceback : str
        Formatted traceback when it was raised in a worker process, else "".
    """

    index: int
    item: str
    error_type: str
    message: str
    exception: BaseException | None = None
    traceback: str = ""


def describe_item(item) -> str:
    """A short, readable description of a batch item for error messages.

    File paths are given as they are (``os.fspath``), arrays by shape and dtype
    (never their values), anything else by a truncated ``repr``.
    """
    if isinstance(item, (str, bytes, os.PathLike)):
        try:
            return os.fsdecode(item)
        except TypeError:  # pragma: no cover - exotic PathLike
            return str(item)
    if isinstance(item, np.ndarray):
        return f"<ndarray shape={item.shape} dtype={item.dtype}>"
    if isinstance(item, tuple) and len(item) == 2:   # an (image, mask) pair
        return f"({describe_item(item[0])}, {describe_item(item[1])})"
    text = repr(item)
    return text if len(text) <= _MAX_REPR else text[:_MAX_REPR - 3] + "..."


class _Raised:
    """Marker returned by a worker instead of a result when ``fn`` raised."""

    __slots__ = ("error_type", "message", "exception", "traceback")

    def __init__(self, exc: BaseException, remote: bool):
        self.error_type = type(exc).__name__
        self.message = str(exc)
        # The traceback is only needed when the error crossed a process boundary
        # (an exception raised in this process keeps its own traceback).
        self.traceback = "".join(traceback.format_exception(
            type(exc), exc, exc.__traceback__)) if remote else ""
        self.exception = exc
        if remote:  # the exception object travels back to the parent only if it pickles
            try:
                import pickle
                pickle.loads(pickle.dumps(exc))
            except Exception:
                self.exception = None

    def __getstate__(self):
        return (self.error_type, self.message, self.exception, self.traceback)

    def __setstate__(self, state):
        self.error_type, self.message, self.exception, self.traceback = state


_WORKER_READY = False

#: environment variables of the calling process that a worker process takes
#: over at every task (e.g. the pixel limit of leukfeat.io.read_image), so
#: that a value set after the workers started still reaches them
_PASSED_ENV = ("LEUKFEAT_MAX_PIXELS",)


def _prepare_worker(parent_pid: int) -> None:
    """Once per worker process: one thread per thread pool, and a watchdog
    that ends the worker when the process that started it has died."""
    global _WORKER_READY
    if _WORKER_READY:
        return
    _WORKER_READY = True
    try:
        import cv2
        cv2.setNumThreads(1)
    except Exception:  # pragma: no cover - cv2 always present in practice
        pass
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(limits=1)
    except Exception:  # pragma: no cover - threadpoolctl ships with scikit-learn
        pass
    if hasattr(os, "getppid") and os.getppid() == parent_pid:
        threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True,
                         name="leukfeat-parent-watchdog").start()


def _exit_with_parent(parent_pid: int, interval: float = 1.0) -> None:
    """End this worker within `interval` seconds of its parent's death (a
    killed run's idle workers would otherwise wait minutes for work)."""
    import time

    while os.getppid() == parent_pid:
        time.sleep(interval)
    os._exit(0)


class _Task:
    """Picklable wrapper: call ``fn`` on one item, turning exceptions into data."""

    __slots__ = ("fn", "parent_pid", "env")

    def __init__(self, fn, parent_pid: int):
        self.fn = fn
        self.parent_pid = parent_pid
        self.env = {k: os.environ.get(k) for k in _PASSED_ENV}

    def __call__(self, item):
        remote = os.getpid() != self.parent_pid
        if remote:
            _prepare_worker(self.parent_pid)
            for key, value in self.env.items():
                if os.environ.get(key) != value:
                    if value is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = value
        try:
            return self.fn(item)
        except Exception as exc:  # noqa: BLE001 - the policy is applied in the parent
            return _Raised(exc, remote)


class WorkerDiedError(RuntimeError):
    """The worker process measuring an item died (a crash in native code, the
    out-of-memory killer, a signal), in the batch and again alone."""


def _check_on_error(on_error) -> str:
    if on_error not in _ON_ERROR:
        raise ValueError(f"on_error: expected one of {_ON_ERROR}, got {on_error!r}")
    return on_error


def _effective_n_jobs(n_jobs, n_items: int) -> int:
    from joblib import effective_n_jobs
    if n_jobs is not None and (not isinstance(n_jobs, (int, np.integer))
                               or isinstance(n_jobs, bool) or n_jobs == 0):
        raise ValueError(f"n_jobs: expected None or a non-zero int, got {n_jobs!r}")
    return max(1, min(effective_n_jobs(n_jobs), n_items))


def _iter_results(task: _Task, items: list, n_jobs, batch_size, stop: threading.Event):
    """Yield ``fn(item)`` (or a :class:`_Raised`) for every item, in input order.

    Setting ``stop`` makes the input iterator end: joblib then only finishes
    the tasks already dispatched (the caller drains them), instead of
    aborting them, which would kill the worker processes.

    A worker process that dies (killed by the out-of-memory killer, a crash
    in native code) loses every task in flight. The items handed to joblib
    but not returned are then run again, one at a time, each alone in a
    fresh worker; an item whose worker dies again becomes an error
    (:class:`WorkerDiedError`) and the batch goes on after it.
    """
    if _effective_n_jobs(n_jobs, len(items)) == 1:
        for item in items:
            if stop.is_set():
                return
            yield task(item)
        return
    from concurrent.futures.process import BrokenProcessPool

    from joblib import Parallel, delayed

    start = 0
    while start < len(items):
        handed = [start]   # items[:handed[0]] were given to joblib

        def calls(lo):
            for i in range(lo, len(items)):
                if stop.is_set():
                    return
                handed[0] = i + 1
                yield delayed(task)(items[i])

        parallel = Parallel(n_jobs=n_jobs, return_as="generator", batch_size=batch_size)
        gen = parallel(calls(start))
        done = start
        try:
            for res in gen:
                yield res
                done += 1
            return
        except BrokenProcessPool as exc:
            died = exc
        finally:
            # Early exit only on an unexpected error (e.g. KeyboardInterrupt) or
            # a dead worker: closing the generator aborts the remaining tasks.
            gen.close()
        for i in range(done, handed[0]):       # the tasks lost with the worker
            if stop.is_set():
                return
            yield _alone(task, items[i], n_jobs, died)
        start = handed[0]


def _alone(task: _Task, item, n_jobs, first_death: BaseException):
    """``task(item)`` alone in a worker process (a fresh one if the last died);
    a :class:`_Raised` :class:`WorkerDiedError` if that worker dies too."""
    from concurrent.futures.process import BrokenProcessPool

    from joblib import Parallel, delayed

    try:
        return Parallel(n_jobs=n_jobs)([delayed(task)(item)])[0]
    except BrokenProcessPool as exc:
        codes = re.search(r"exit codes of the workers are (\{[^}]*\})", str(exc))
        how = f" (exit code {codes.group(1)})" if codes else ""
        err = WorkerDiedError(
            f"the worker process died while measuring this item{how}, twice: in the "
            "batch and again alone (a crash in native code or the out-of-memory killer)")
        err.__cause__ = first_death
        return _Raised(err, remote=False)


def _map(fn, items, *, n_jobs=None, progress=False, desc=None, on_error="raise",
         batch_size="auto"):
    """:func:`map_ordered` returning :class:`Failure` records (used by leukfeat)."""
    _check_on_error(on_error)
    items = list(items)
    results: list = [None] * len(items)
    failures: list[Failure] = []
    if not items:
        return results, failures
    from tqdm.auto import tqdm

    task = _Task(fn, os.getpid())
    stop = threading.Event()
    first_error = None
    stream = _iter_results(task, items, n_jobs, batch_size, stop)
    with tqdm(total=len(items), desc=desc, disable=not progress, unit="item") as bar:
        try:
            for i, res in enumerate(stream):
                if first_error is not None:
                    continue  # draining the tasks already sent to the workers
                if isinstance(res, _Raised):
                    failure = Failure(i, describe_item(items[i]), res.error_type, res.message,
                                      res.exception, res.traceback)
                    if on_error == "raise":
                        first_error = failure
                        stop.set()
                        continue
                    failures.append(failure)
                else:
                    results[i] = res
                bar.update(1)
        finally:
            stream.close()
    if first_error is not None:
        _reraise(first_error)
    return results, failures


def _reraise(failure: Failure):
    """Raise the error of ``failure`` with the item's index and description in the message.

    The original exception object is re-raised (same type and attributes, e.g.
    :class:`leukfeat.io.ImageReadError` keeps ``.path``) with its message
    prefixed by ``item <index> (<description>): ``. Exceptions whose message
    cannot be rewritten that way (e.g. :class:`KeyError`, or ones that did
    not survive pickling) are chained to a :class:`RuntimeError` instead.
    The worker's traceback is attached as a note.
    """
    where = f"item {failure.index} ({failure.item})"
    message = f"{where}: {failure.message}"
    remote = (f"Traceback in the worker process:\n{failure.traceback}"
              if failure.traceback else "")
    exc = failure.exception
    if exc is not None:
        old_args = exc.args
        try:
            exc.args = (message,)
            rewritten = str(exc) == message
        except Exception:  # pragma: no cover - exotic exception classes
            rewritten = False
        if rewritten:
            if remote:
                exc.add_note(remote)
            raise exc
        exc.args = old_args
    new = RuntimeError(f"{where}: {failure.error_type}: {failure.message}")
    if remote:
        new.add_note(remote)
    raise new from exc


def map_ordered(fn, items, *, n_jobs=None, progress=False, desc=None, on_error="raise",
                batch_size="auto"):
    """Apply ``fn`` to every item, in parallel, keeping the input order.

    Parameters
    ----------
    fn : callable
        ``fn(item) -> result``. It must be picklable when ``n_jobs != 1``
        (loky uses cloudpickle, so lambdas and closures work).
    items : iterable
        The items (e.g. image paths). Consumed into a list first.
    n_jobs : int or None, default None
        Number of worker processes, as in scikit-learn: None means 1 unless a
        :func:`joblib.parallel_config` context says otherwise, -1 means all
        CPUs. With one job (or one item) ``fn`` runs in the calling process.
    progress : bool, default False
        Show a :mod:`tqdm` progress bar.
    desc : str, optional
        Label of the progress bar.
    on_error : {"raise", "collect"}, default "raise"
        ``"raise"``: stop at the first failing item (in input order) and
        re-raise its error with the item's index and description (the path
        for files) in the message; the original exception type is kept when
        it can be rebuilt from a message, otherwise a :class:`RuntimeError`
        chained to it is raised. ``"collect"``: process every item and
        return the failures alongside the results.
    batch_size : int or "auto", default "auto"
        Items per joblib task (see :class:`joblib.Parallel`).

    Returns
    -------
    results : list
        With ``on_error="raise"``: ``[fn(item) for item in items]``.
    (results, errors) : tuple
        With ``on_error="collect"``: ``results`` holds None for failed items
        and ``errors`` is a list of ``(index, item, message)`` tuples, where
        ``item`` is a short description of the item (see
        :func:`describe_item`) and ``message`` is ``"ExceptionType: message"``.

    Raises
    ------
    ValueError
        If ``on_error`` or ``n_jobs`` is invalid.
    Exception
        With ``on_error="raise"``, the error of the first failing item.

    Examples
    --------
    >>> map_ordered(abs, [-1, 2, -3])
    [1, 2, 3]
    >>> map_ordered(int, ["1", "x", "3"], on_error="collect")
    ([1, None, 3], [(1, 'x', "ValueError: invalid literal for int() with base 10: 'x'")])
    """
    results, failures = _map(fn, items, n_jobs=n_jobs, progress=progress, desc=desc,
                             on_error=on_error, batch_size=batch_size)
    if on_error == "raise":
        return results
    return results, [(f.index, f.item, f"{f.error_type}: {f.message}") for f in failures]
