"""The item layer: from "a batch of images" to per-item work (private).

Every estimator, plot and evaluation of leukfeat that takes several images
goes through this module, so that one rule decides what a batch is, one
loader turns an item into pixels, and one mapper applies the error policy:

:func:`as_batch`
    A batch (list, tuple, 1-D array, pandas Series or one-column DataFrame,
    4-D stack) as a list of items. A single path or a single image where a
    batch is expected raises :class:`NotABatchError` (a :class:`TypeError`
    and a :class:`ValueError`) saying "wrap it in a list", unless the caller
    accepts one image (``single="wrap"``, e.g. the reference images of stain
    normalisation).
:func:`load_rgb`, :func:`load_item`
    An item (a path, an array, or an ``(image, mask)`` pair) as RGB
    ``uint8`` pixels, and as ``(image, Segmentation or None)``.
:func:`map_ordered` / :func:`map_items`
    Apply a function to every item, in parallel, in input order, with the
    error policy.
:class:`ImageBatchTransformer`
    The base of the image-batch estimators (``FeatureExtractor``,
    ``EmbeddingTransformer``): shared parameter checks, ``errors_``, tags and
    output names.

:func:`map_ordered` applies a function to every item of a batch, in parallel
with :class:`joblib.Parallel` (its default, process-based ``loky`` backend),
and returns the results **in input order**.

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
import sys
import threading
import traceback
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, NoReturn, cast

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ._typing import ImageBatch, StrPath
    from .segment import Segmentation

__all__ = ["map_ordered", "Failure", "WorkerDiedError", "describe_item", "as_batch",
           "load_rgb", "load_item", "NotABatchError", "ImageBatchTransformer"]

PATH_TYPES = (str, bytes, os.PathLike)

_ON_ERROR = ("raise", "collect")
_MAX_REPR = 200


@dataclass(frozen=True)
class Failure:
    """One item that failed in :func:`map_items` (internal, richer than the public tuple).

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


def is_path(x: object) -> bool:
    """Whether ``x`` is a file path (str, bytes or os.PathLike), not pixels."""
    return isinstance(x, PATH_TYPES)


def for_remote(item: Any) -> Any:
    """``item`` as sent to another machine's (or another folder's) process: a
    relative path (also inside an ``(image, mask)`` pair) made absolute
    against this process's working directory, anything else as it is. A Dask
    worker runs in its own working directory, and a reused loky worker in
    the one this process had when it started it, so ``"smears/a.png"`` would
    name another file there (or none)."""
    if isinstance(item, PATH_TYPES):
        # an absolute path goes as it is (its own type, e.g. a PathLike subclass)
        return item if os.path.isabs(item) else os.path.abspath(item)
    if isinstance(item, tuple):
        return tuple(for_remote(part) for part in item)
    return item


def describe_item(item: Any) -> str:
    """A short, readable description of a batch item for error messages.

    File paths are given as they are (``os.fspath``), arrays by shape and dtype
    (never their values), anything else by a truncated ``repr``.
    """
    if isinstance(item, PATH_TYPES):
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
        self.exception: BaseException | None = exc
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


def prepare_worker(parent_pid: int) -> None:
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
            prepare_worker(self.parent_pid)
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
    check_n_jobs(n_jobs)
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
    # under joblib.parallel_config(backend="dask") every n_jobs but 1 means
    # the cluster, whatever its size (joblib would run a one-thread cluster's
    # work here)
    client = None if n_jobs == 1 else _dask_client()
    if client is not None:
        check_n_jobs(n_jobs)
        yield from _iter_dask(task, items, client, stop)
        return
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
                yield delayed(task)(for_remote(items[i]))

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


def _dask_client():
    """The ``dask.distributed.Client`` of an active ``joblib.parallel_config(
    backend="dask")``, or None."""
    from joblib.parallel import get_active_backend

    backend, _ = get_active_backend()
    if type(backend).__name__ != "DaskDistributedBackend":
        return None
    return getattr(backend, "client", None)


class _BatchTask:
    """Picklable: a :class:`_Task` over a list of items (one Dask task)."""

    __slots__ = ("task",)

    def __init__(self, task: _Task):
        self.task = task

    def __call__(self, items):
        return [self.task(item) for item in items]


def _iter_dask(task: _Task, items: list, client, stop: threading.Event):
    """:func:`_iter_results` on a Dask cluster, without ``joblib.Parallel``.

    joblib's Dask backend never completes a batch whose task was lost (a
    worker killed, or a task that cannot be unpickled there), so a run waits
    forever. Here the items go to the cluster in batches (about four per
    worker thread over the run, at most 64 items each, so that Dask's
    per-task cost of a few milliseconds is shared), at most two batches per
    worker thread in flight, and results are read in input order. A batch
    that fails on the cluster rather than in ``fn`` (``KilledWorker``, a
    cancelled or unpicklable task) is run again one item per task; an item
    that fails alone becomes its :class:`WorkerDiedError`, and the batch
    goes on.
    """
    import uuid

    threads = max(1, sum(client.nthreads().values()))
    size = max(1, min(64, -(-len(items) // (4 * threads))))
    bounds = [(lo, min(lo + size, len(items))) for lo in range(0, len(items), size)]
    limit = 2 * threads
    run = uuid.uuid4().hex[:8]
    batch_task = _BatchTask(task)
    futures: dict = {}
    submitted = 0

    def lost(exc) -> _Raised:
        err = WorkerDiedError(f"the Dask task of this item failed on the cluster: "
                              f"{type(exc).__name__}: {exc}")
        err.__cause__ = exc
        return _Raised(err, remote=False)

    def alone(i):
        fut = client.submit(task, for_remote(items[i]), pure=False,
                            key=f"leukfeat-item-{i}-{run}")
        try:
            return fut.result()
        except Exception as exc:  # noqa: BLE001 - lost on the cluster, not in fn
            return lost(exc)
        finally:
            fut.release()

    try:
        for b, (lo, hi) in enumerate(bounds):
            while submitted < len(bounds) and submitted < b + limit and not stop.is_set():
                s0, s1 = bounds[submitted]
                futures[submitted] = client.submit(
                    batch_task, [for_remote(it) for it in items[s0:s1]], pure=False,
                    key=f"leukfeat-batch-{submitted}-{run}")
                submitted += 1
            fut = futures.pop(b, None)
            if fut is None:          # stopped before this batch was sent
                return
            try:
                results = fut.result()
            except Exception:  # noqa: BLE001 - lost on the cluster: each item alone
                results = None
            finally:
                fut.release()
            for k, i in enumerate(range(lo, hi)):
                if results is None:
                    if stop.is_set():
                        return
                    yield alone(i)
                else:
                    yield results[k]
    finally:
        for fut in futures.values():
            fut.cancel()


def _alone(task: _Task, item, n_jobs, first_death: BaseException):
    """``task(item)`` alone in a worker process (a fresh one if the last died);
    a :class:`_Raised` :class:`WorkerDiedError` if that worker dies too."""
    from concurrent.futures.process import BrokenProcessPool

    from joblib import Parallel, delayed

    try:
        return Parallel(n_jobs=n_jobs)([delayed(task)(for_remote(item))])[0]
    except BrokenProcessPool as exc:
        codes = re.search(r"exit codes of the workers are (\{[^}]*\})", str(exc))
        how = f" (exit code {codes.group(1)})" if codes else ""
        err = WorkerDiedError(
            f"the worker process died while measuring this item{how}, twice: in the "
            "batch and again alone (a crash in native code or the out-of-memory killer)")
        err.__cause__ = first_death
        return _Raised(err, remote=False)


def map_items(fn: Callable[[Any], Any], items: Iterable[Any], *, n_jobs: int | None = None,
              progress: bool = False, desc: str | None = None, on_error: str = "raise",
              batch_size: int | str = "auto", sink: Callable[[int, Any], None] | None = None
              ) -> tuple[list[Any], list[Failure]]:
    """:func:`map_ordered` returning :class:`Failure` records (used by leukfeat).

    With ``sink``, ``sink(index, result)`` receives each result as it arrives
    and the returned results list holds only None: a batch of any length then
    keeps no per-item results in memory (e.g. rows written straight into
    a preallocated matrix).
    """
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
                elif sink is not None:
                    sink(i, res)
                else:
                    results[i] = res
                bar.update(1)
        finally:
            stream.close()
    if first_error is not None:
        reraise(first_error)
    return results, failures


def reraise(failure: Failure) -> NoReturn:
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
            if remote and sys.version_info >= (3, 11):   # no add_note on Python 3.10
                exc.add_note(remote)
            raise exc
        exc.args = old_args
    new = RuntimeError(f"{where}: {failure.error_type}: {failure.message}")
    if remote and sys.version_info >= (3, 11):
        new.add_note(remote)
    raise new from exc


def map_ordered(fn: Callable[[Any], Any], items: Iterable[Any], *, n_jobs: int | None = None,
                progress: bool = False, desc: str | None = None, on_error: str = "raise",
                batch_size: int | str = "auto"
                ) -> list[Any] | tuple[list[Any], list[tuple[int, str, str]]]:
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
    results, failures = map_items(fn, items, n_jobs=n_jobs, progress=progress, desc=desc,
                             on_error=on_error, batch_size=batch_size)
    if on_error == "raise":
        return results
    return results, [(f.index, f.item, f"{f.error_type}: {f.message}") for f in failures]


# --------------------------------------------------------------------------- #
# what a batch is, and what an item holds
# --------------------------------------------------------------------------- #

class NotABatchError(TypeError, ValueError):
    """A single image (or path) was given where a batch of images is expected.

    Both a :class:`TypeError` and a :class:`ValueError`, so that code written
    against either of the errors leukfeat's functions used to raise for this
    mistake keeps working.
    """


def _is_single_image(x) -> bool:
    return (isinstance(x, np.ndarray) and x.dtype != object and x.dtype.kind not in "USV"
            and x.ndim in (2, 3))


def as_batch(X: Any, name: str = "X", *, single: str = "refuse", paths: bool = True,
             check_items: bool = False, allow_empty: bool = False) -> list[Any]:
    """A batch of images as a list of items (the one rule of leukfeat).

    Parameters
    ----------
    X : sequence, 1-D array, pandas Series or one-column DataFrame, or 4-D array
        Items are image paths, image arrays, or ``(image, mask)`` pairs; a
        4-D numeric array ``(n, H, W, C)`` is a stack of images.
    name : str
        Argument name for error messages.
    single : {"refuse", "wrap"}
        A single path or a single image (a 2-D or 3-D numeric array):
        :class:`NotABatchError` ("wrap it in a list"), or a batch of one.
    paths : bool
        Whether items may be file paths (else a path item is a TypeError).
    check_items : bool
        Check every item's kind now (else each is checked when it is used,
        so that one bad item becomes one failure, not a failed batch).
    allow_empty : bool
        Whether an empty batch is accepted.

    Returns
    -------
    list

    Raises
    ------
    NotABatchError
        For a single path or image with ``single="refuse"``, and for a
        numeric array that is not a stack of images (e.g. a feature matrix).
    TypeError
        For sparse input, something that is not a sequence, a path item
        with ``paths=False``, or (``check_items``) an item of another kind.
    ValueError
        For an empty batch (unless allowed) or a DataFrame of several columns.
    """
    if single not in ("refuse", "wrap"):  # pragma: no cover - internal misuse
        raise ValueError(f"single: expected 'refuse' or 'wrap', got {single!r}")
    if isinstance(X, PATH_TYPES) or _is_single_image(X):
        if single == "wrap" and (paths or not isinstance(X, PATH_TYPES)):
            return [X]
        what = (f"a single path {describe_item(X)!r}" if isinstance(X, PATH_TYPES)
                else f"a single image of shape {X.shape}")
        note = (" (a 2-D numeric array is one grey image; image estimators do not take "
                "a feature matrix)" if getattr(X, "ndim", 0) == 2 else "")
        raise NotABatchError(
            f"{name}: expected a sequence of images{' or image paths' if paths else ''}, got "
            f"{what}; wrap it in a list{note}")
    if hasattr(X, "tocsr") or type(X).__module__.startswith("scipy.sparse"):
        raise TypeError(f"{name}: sparse input is not supported; expected a sequence of "
                        "images or image paths")
    if hasattr(X, "columns") and hasattr(X, "iloc"):  # pandas DataFrame
        if X.shape[1] != 1:
            raise ValueError(f"{name}: a DataFrame must have exactly one column of images "
                             f"or image paths, got {X.shape[1]} columns")
        X = X.iloc[:, 0]
    if hasattr(X, "iloc") and hasattr(X, "to_numpy"):  # pandas Series
        X = list(X.to_numpy(dtype=object))
    if isinstance(X, np.ndarray) or (hasattr(X, "__array__")
                                     and not isinstance(X, (list, tuple))):
        arr = np.asarray(X)
        if arr.dtype == object or arr.dtype.kind in "USV":
            if arr.ndim == 2 and arr.shape[1] == 1:
                arr = arr[:, 0]
            if arr.ndim != 1:
                raise NotABatchError(f"{name}: an array of paths or images must be 1-D, got "
                                     f"shape {arr.shape}")
            items = arr.tolist() if arr.dtype.kind in "US" else list(arr)
        elif arr.ndim == 4:
            items = list(arr)
        else:
            raise NotABatchError(
                f"{name}: a numeric array of shape {arr.shape} is not a batch of images; "
                "expected a sequence of images or image paths, or a 4-D stack "
                "(n_images, height, width, 3)")
    else:
        try:
            items = list(X)
        except TypeError:
            raise TypeError(f"{name}: expected a sequence of images or image paths, got "
                            f"{type(X).__name__}") from None
    if not items and not allow_empty:
        raise ValueError(f"{name}: expected at least one image, got 0 (empty batch)")
    if check_items or not paths:
        for k, item in enumerate(items):
            if isinstance(item, PATH_TYPES):
                if not paths:
                    raise TypeError(f"{name}[{k}]: expected an image array, got the path "
                                    f"{describe_item(item)!r}; read it with "
                                    "leukfeat.io.read_image")
            elif check_items and not isinstance(item, (np.ndarray, tuple)):
                raise TypeError(f"{name}[{k}]: expected an image path or an image array, "
                                f"got {type(item).__name__}")
    return items


def _load(item):
    """A path read with :func:`leukfeat.io.read_image`; an array as it is."""
    from . import io

    if isinstance(item, PATH_TYPES):
        return io.read_image(item)
    if isinstance(item, np.ndarray):
        return item
    try:
        arr = np.asarray(item)
    except Exception:  # pragma: no cover - exotic objects
        arr = None
    if arr is None or arr.dtype == object:
        raise TypeError(f"expected an image file path or an image array, got "
                        f"{type(item).__name__}")
    return arr


def load_rgb(item: Any, name: str = "image") -> np.ndarray:
    """An item (path or array) as an RGB ``uint8`` array: grey stacked,
    other dtypes converted as :func:`leukfeat._validation.as_uint8_rgb` does."""
    from ._validation import as_uint8_rgb

    return as_uint8_rgb(_load(item), name)


def load_item(item: Any) -> tuple[np.ndarray, Segmentation | None]:
    """``(image, Segmentation or None)`` of a batch item.

    An item is an image (a path or an array, returned as read, for the
    caller's own checks), or a pair ``(image, mask)`` whose mask is a path
    (:func:`leukfeat.io.read_mask`), an array (binary, nucleus-cytoplasm
    coding or a label image: :func:`leukfeat.segment.from_mask` with
    ``kind="auto"``) or a :class:`~leukfeat.segment.Segmentation`; the image
    of a pair is returned as RGB ``uint8`` and segmentation is skipped.
    """
    if not isinstance(item, tuple):
        return _load(item), None
    from . import io, segment
    from ._validation import as_uint8_rgb, check_image

    if len(item) != 2:
        raise TypeError(f"expected an image, or an (image, mask) pair, got a tuple of "
                        f"{len(item)} elements")
    image, mask = item
    rgb = as_uint8_rgb(check_image(_load(image), "image", ndim=(3,)), "image")
    if isinstance(mask, segment.Segmentation):
        return rgb, mask
    if isinstance(mask, PATH_TYPES):
        mask = io.read_mask(cast("StrPath", mask))   # bytes paths are read too
    return rgb, segment.from_mask(rgb, mask)


# --------------------------------------------------------------------------- #
# the base of the image-batch estimators
# --------------------------------------------------------------------------- #

def check_n_jobs(n_jobs: object) -> None:
    if n_jobs is not None and (not isinstance(n_jobs, (int, np.integer))
                               or isinstance(n_jobs, bool) or n_jobs == 0):
        raise ValueError(f"n_jobs: expected None or a non-zero int, got {n_jobs!r}")


def check_choice(value: object, name: str, choices: Iterable[str]) -> None:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name}: expected one of {tuple(choices)}, got {value!r}")


def check_segmenter(seg: object, name: str = "segmenter") -> None:
    from . import segment

    if not callable(seg) and not (isinstance(seg, str) and seg in segment.METHODS):
        raise ValueError(f"{name}: expected one of {sorted(segment.METHODS)} or a "
                         f"callable, got {seg!r}")


def image_tags(tags: Any, *, requires_fit: bool) -> Any:
    """Estimator tags of a transformer whose ``X`` is a batch of images."""
    tags.input_tags.two_d_array = False
    tags.input_tags.string = True  # file paths
    tags.requires_fit = requires_fit
    return tags


def _image_batch_base() -> type[Any]:
    from sklearn.base import BaseEstimator, TransformerMixin

    class ImageBatchTransformer(TransformerMixin, BaseEstimator):
        """Base of the estimators that turn a batch of images into one row each
        (:class:`~leukfeat.transformers.FeatureExtractor`,
        :class:`~leukfeat.embed.EmbeddingTransformer`).

        Subclasses have ``n_jobs``, ``on_error`` and ``progress`` parameters,
        set ``feature_names_out_`` in ``fit`` and call
        :meth:`_record_failures` at the end of ``transform``.
        """

        _ON_ERROR = ("raise", "nan")

        def fit(self, X: ImageBatch, y: object = None) -> Any:
            """Validate the parameters and the batch; fix the output columns.

            Parameters
            ----------
            X : sequence of str, os.PathLike or ndarray, or ndarray (n, H, W, 3)
                Image paths or images (or ``(image, mask)`` pairs where the
                estimator takes them). Not read by ``fit``.
            y : ignored

            Returns
            -------
            self
            """
            self._check_params()
            as_batch(X)
            names = np.asarray(self._fit_columns(), dtype=object)
            self.feature_names_out_ = names
            self.n_features_out_ = int(names.size)
            self.errors_: list[dict[str, Any]] = []
            return self

        def _check_params(self) -> None:  # pragma: no cover - every subclass defines it
            """Check every parameter (raise ValueError naming the bad one)."""
            raise NotImplementedError

        def _fit_columns(self) -> Any:  # pragma: no cover - every subclass defines it
            """Set the fitted attributes of the subclass; return the output names."""
            raise NotImplementedError

        def _check_batch_params(self) -> None:
            """Check ``n_jobs``, ``on_error`` and ``progress``."""
            check_n_jobs(self.n_jobs)
            check_choice(self.on_error, "on_error", self._ON_ERROR)
            if not isinstance(self.progress, (bool, np.bool_)):
                raise ValueError(f"progress: expected a bool, got {self.progress!r}")

        def _map_items(self, fn: Callable[[Any], Any], items: list[Any], desc: str,
                       sink: Callable[[int, Any], None] | None = None
                       ) -> tuple[list[Any], list[Failure]]:
            """:func:`map_items` with the estimator's ``n_jobs``, ``progress`` and
            error policy; returns ``(results, failures)``."""
            return map_items(fn, items, n_jobs=self.n_jobs, progress=bool(self.progress),
                             desc=desc, sink=sink,
                             on_error="raise" if self.on_error == "raise" else "collect")

        def _record_failures(self, failures: list[Failure], n_items: int) -> None:
            """Store ``errors_`` and warn once about the NaN rows of failed items."""
            import warnings

            self.errors_ = [{"index": f.index, "item": f.item, "error_type": f.error_type,
                             "message": f.message} for f in failures]
            if failures:
                first = failures[0]
                warnings.warn(f"{len(failures)} of {n_items} images failed and gave NaN rows "
                              f"(see errors_); first: item {first.index} ({first.item}): "
                              f"{first.error_type}: {first.message}", UserWarning, stacklevel=3)

        def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
            """Names of the output columns.

            Parameters
            ----------
            input_features : ignored
                Images have no input feature names.

            Returns
            -------
            ndarray of str
            """
            from sklearn.utils.validation import check_is_fitted

            check_is_fitted(self, "feature_names_out_")
            return self.feature_names_out_.copy()

        def __sklearn_tags__(self) -> Any:
            return image_tags(super().__sklearn_tags__(), requires_fit=True)

    ImageBatchTransformer.__module__ = __name__
    ImageBatchTransformer.__qualname__ = "ImageBatchTransformer"
    return ImageBatchTransformer


def __getattr__(name: str) -> Any:
    # scikit-learn is imported only when an estimator is first needed
    if name == "ImageBatchTransformer":
        cls = _image_batch_base()
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
