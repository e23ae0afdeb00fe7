"""Feature extraction on a Dask cluster (optional: ``pip install 'leukfeat[dask]'``).

Three ways to use more than one machine, from the least to the most
code-free:

:func:`extract_features`
    A lazy :class:`dask.dataframe.DataFrame` of the features, one partition
    per chunk of images, so that a table larger than memory goes straight
    to Parquet::

        from dask.distributed import Client
        from leukfeat.dask import extract_features

        client = Client("tcp://scheduler:8786")
        extract_features(paths, chunk_size=500).to_parquet("features.parquet")

:func:`leukfeat.stream.extract_to_parquet` with ``client=``
    The same table written as resumable parts: a crashed or killed run
    picks up where it stopped (``leukfeat extract --scheduler``).
``FeatureExtractor(n_jobs=-1)`` under ``joblib.parallel_config(backend="dask")``
    joblib's Dask backend sends the per-image work of an unchanged
    estimator to the cluster's workers (results equal to ``n_jobs=1``).
    Beware: joblib's backend waits forever when a task is lost with its
    worker (a crash, the out-of-memory killer) or cannot be unpickled on the
    worker (leukfeat missing there); the two functions above report those
    as errors instead.

Workers receive paths, not pixels: the image files must be readable at the
same paths on every worker (a shared file system or object store), and
every worker needs leukfeat and its dependencies. Each task measures its
chunk with ``n_jobs=1`` (Dask provides the parallelism) and with BLAS,
OpenMP and OpenCV limited to one thread in the worker process. Features
are bit-identical to ``FeatureExtractor(n_jobs=1)``.
"""

from __future__ import annotations

import uuid

__all__ = ["extract_features", "connect", "DEFAULT_CHUNK_SIZE"]

#: Images per partition of :func:`extract_features` (a few seconds of work).
DEFAULT_CHUNK_SIZE = 256

_EXTRA = ("leukfeat.dask needs dask[dataframe] and distributed: "
          "pip install 'leukfeat[dask]'")


def _require_dataframe():
    try:
        import dask.dataframe as dd
    except ImportError as exc:
        raise ImportError(f"{_EXTRA} ({exc})") from exc
    return dd


def _require_distributed():
    try:
        import distributed
    except ImportError as exc:
        raise ImportError(f"{_EXTRA} ({exc})") from exc
    return distributed


def connect(address=None, **kwargs):
    """A :class:`dask.distributed.Client` of a running cluster.

    Parameters
    ----------
    address : str, optional
        The scheduler's address, e.g. ``"tcp://10.0.0.5:8786"`` (what
        ``dask scheduler`` prints). None starts a local cluster (one worker
        process per core).
    **kwargs
        Passed to :class:`dask.distributed.Client` (e.g. ``timeout="30s"``).

    Returns
    -------
    dask.distributed.Client

    Raises
    ------
    ImportError
        Without ``leukfeat[dask]``.
    OSError
        When no scheduler answers at ``address`` (the message names it).
    """
    distributed = _require_distributed()
    if address is not None and not isinstance(address, str):
        raise TypeError(f"address: expected None or a scheduler address string, got "
                        f"{type(address).__name__}")
    try:
        return distributed.Client(address, **kwargs)
    except OSError as exc:
        raise OSError(f"address: cannot connect to the Dask scheduler at {address!r}: "
                      f"{exc}") from exc


def extract_features(paths, *, extractor=None, chunk_size=DEFAULT_CHUNK_SIZE,
                     per_cell=False, item_columns=None):
    """The feature table of a batch as a lazy Dask DataFrame, one partition per chunk.

    Parameters
    ----------
    paths : sequence of str or os.PathLike, or of (image, mask) pairs
        The images (arrays are accepted too, but then their pixels travel
        to the workers inside the task graph).
    extractor : FeatureExtractor, optional
        The configured extractor (default: ``FeatureExtractor()``); a copy
        runs in every task with ``n_jobs=1``. Its ``on_error`` is not used:
        a failed item gives a row with NaN features and its message in the
        ``error`` column.
    chunk_size : int, default 256
        Items per partition (per task).
    per_cell : bool, default False
        One row per white cell instead of one per image.
    item_columns : mapping of str to sequence, optional
        Extra per-item columns after ``path`` (e.g. ``{"label": labels}``).

    Returns
    -------
    dask.dataframe.DataFrame
        The columns of :mod:`leukfeat.stream` (``path``, ``item_columns``,
        with ``per_cell`` the cell columns, ``error``, the features), its
        index ``item``, the position of each row's image in ``paths``
        (known divisions: the first item of every chunk). Nothing is
        computed until ``.compute()``, ``.to_parquet(...)`` and the like.

    Raises
    ------
    ImportError
        Without ``leukfeat[dask]``.
    ValueError, TypeError
        For an invalid argument, named in the message.

    Examples
    --------
    >>> from leukfeat.dask import extract_features
    >>> ddf = extract_features(paths, chunk_size=500)        # doctest: +SKIP
    >>> ddf.to_parquet("features.parquet")                     # doctest: +SKIP
    """
    dd = _require_dataframe()
    import pandas as pd

    from ._batch import as_batch
    from .stream import (ERROR_COLUMN, PATH_COLUMN, ChunkJob, _check_bool,
                         _check_chunk_size, _check_extractor, _check_item_columns, _chunks,
                         _slice)
    from .transformers import CELL_COLUMNS

    items = as_batch(paths, "paths")
    chunk_size = _check_chunk_size(chunk_size)
    per_cell = _check_bool(per_cell, "per_cell")
    fx = _check_extractor(extractor).set_params(n_jobs=1)
    job = ChunkJob(fx, per_cell).fit(items)
    reserved = {PATH_COLUMN, ERROR_COLUMN, *job.names, *(CELL_COLUMNS if per_cell else ())}
    extra = _check_item_columns(item_columns, len(items), reserved)
    job.item_columns = {k: v.iloc[:0] for k, v in extra.items()}
    meta = job.meta()
    meta.index = pd.Index([], dtype="int64", name="item")

    chunks = _chunks(len(items), chunk_size)
    starts = [start for _, start, _ in chunks]
    return dd.from_map(job, starts, [items[s:e] for _, s, e in chunks],
                       [_slice(extra, s, e) for _, s, e in chunks],
                       meta=meta, divisions=(*starts, len(items) - 1),
                       label="leukfeat-features", enforce_metadata=False)


def _run_chunks(client, job, items, extra, todo, done) -> None:
    """Run the chunks of ``todo`` (``(info, path)``, info with ``start`` and
    ``stop``) as tasks on ``client``; ``done(info, path, frame)`` in this
    process as each completes. At most two chunks per worker thread are in
    flight (flat memory here); a failed task cancels the rest and raises,
    naming the chunk, after the parts already completed were handed to
    ``done``."""
    distributed = _require_distributed()
    if not isinstance(client, distributed.Client):
        raise TypeError(f"client: expected None or a dask.distributed.Client, got "
                        f"{type(client).__name__}")
    from .stream import _slice

    if not todo:
        return
    limit = max(1, 2 * sum(client.nthreads().values()))
    queue = iter(todo)
    where = {}
    pending = distributed.as_completed()
    run = uuid.uuid4().hex[:8]

    def submit() -> None:
        entry = next(queue, None)
        if entry is None:
            return
        info, _ = entry
        start, stop = info["start"], info["stop"]
        fut = client.submit(job, start, items[start:stop], _slice(extra, start, stop),
                            key=f"leukfeat-chunk-{info['part']}-{run}", pure=False)
        where[fut] = entry
        pending.add(fut)

    for _ in range(limit):
        submit()
    try:
        for fut in pending:
            info, path = where.pop(fut)
            try:
                frame = fut.result()
            except Exception as exc:
                raise RuntimeError(
                    f"chunk {info['part']} (items {info['start']} to {info['stop'] - 1}) "
                    f"failed on the Dask cluster: {type(exc).__name__}: {exc} (with "
                    "KilledWorker: workers died, by a crash in native code or the "
                    "out-of-memory killer, while this chunk was running or queued on "
                    "them); the parts written so far are kept: run again with the same "
                    "arguments to resume") from exc
            finally:
                fut.release()
            done(info, path, frame)
            del frame
            submit()
    finally:
        for fut in list(where):
            fut.cancel()
