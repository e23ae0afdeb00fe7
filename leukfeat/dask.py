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

from typing import TYPE_CHECKING, Any

from ._chunks import require_dask_dataframe, require_distributed

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from .transformers import FeatureExtractor

__all__ = ["extract_features", "connect", "DEFAULT_CHUNK_SIZE"]

#: Images per partition of :func:`extract_features` (a few seconds of work).
DEFAULT_CHUNK_SIZE = 256


def connect(address: str | None = None, **kwargs: Any) -> Any:
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
    distributed = require_distributed()
    if address is not None and not isinstance(address, str):
        raise TypeError(f"address: expected None or a scheduler address string, got "
                        f"{type(address).__name__}")
    try:
        return distributed.Client(address, **kwargs)
    except OSError as exc:
        raise OSError(f"address: cannot connect to the Dask scheduler at {address!r}: "
                      f"{exc}") from exc


def extract_features(paths: Sequence[Any], *, extractor: FeatureExtractor | None = None,
                     chunk_size: int = DEFAULT_CHUNK_SIZE, per_cell: bool = False,
                     item_columns: Mapping[str, Sequence[Any]] | None = None) -> Any:
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
    dd = require_dask_dataframe()
    import pandas as pd

    from ._batch import as_batch, for_remote
    from ._chunks import (check_bool, check_chunk_size, check_extractor, check_item_columns,
                          chunk_bounds, column_slice)
    from .stream import ERROR_COLUMN, ChunkJob
    from .transformers import CELL_COLUMNS

    items = as_batch(paths, "paths")
    chunk_size = check_chunk_size(chunk_size)
    per_cell = check_bool(per_cell, "per_cell")
    fx = check_extractor(extractor).set_params(n_jobs=1)
    job = ChunkJob(fx, per_cell).fit(items)
    reserved = {ERROR_COLUMN, *job.names, *(CELL_COLUMNS if per_cell else ())}
    extra = check_item_columns(item_columns, len(items), reserved)
    job.item_columns = {k: v.iloc[:0] for k, v in extra.items()}
    meta = job.meta()
    meta.index = pd.Index([], dtype="int64", name="item")

    chunks = chunk_bounds(len(items), chunk_size)
    starts = [start for _, start, _ in chunks]
    # paths made absolute here: a worker runs in its own working directory
    return dd.from_map(job, starts, [[for_remote(it) for it in items[s:e]] for _, s, e in chunks],
                       [column_slice(extra, s, e) for _, s, e in chunks],
                       meta=meta, divisions=(*starts, len(items) - 1),
                       label="leukfeat-features", enforce_metadata=False)


