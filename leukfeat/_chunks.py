"""Chunks of items for the streaming and Dask extraction (private).

Shared by :mod:`leukfeat.stream` (one Parquet part per chunk) and
:mod:`leukfeat.dask` (one partition per chunk): the chunk bounds, the checks
of their arguments, the caller's per-item columns, and running chunk jobs on
a Dask cluster.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from ._batch import for_remote

if TYPE_CHECKING:
    from collections.abc import Container
    from types import ModuleType

    from .transformers import FeatureExtractor


def chunk_bounds(n: int, chunk_size: int) -> list[tuple[int, int, int]]:
    """``(index, start, stop)`` of every chunk of `n` items."""
    return [(k, start, min(start + chunk_size, n))
            for k, start in enumerate(range(0, n, chunk_size))]


def check_chunk_size(chunk_size: Any) -> int:
    if (not isinstance(chunk_size, (int, np.integer)) or isinstance(chunk_size, bool)
            or chunk_size < 1):
        raise ValueError(f"chunk_size: expected a positive int, got {chunk_size!r}")
    return int(chunk_size)


def check_bool(value: object, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name}: expected a bool, got {value!r}")
    return bool(value)


def check_extractor(extractor: object) -> FeatureExtractor:
    """A fitted-free copy of the caller's extractor (or the default one)."""
    from sklearn.base import clone

    from .transformers import FeatureExtractor

    if extractor is None:
        return FeatureExtractor()
    if not isinstance(extractor, FeatureExtractor):
        raise TypeError("extractor: expected None or a leukfeat.FeatureExtractor, got "
                        f"{type(extractor).__name__}")
    return clone(extractor)


def check_item_columns(item_columns: Any, n_items: int, reserved: Container[str]) -> dict[str, Any]:
    """``{name: pandas.Series}`` of the caller's per-item columns."""
    import pandas as pd

    if item_columns is None:
        return {}
    if not isinstance(item_columns, Mapping):
        raise TypeError("item_columns: expected None or a mapping of column name to "
                        f"values, got {type(item_columns).__name__}")
    out = {}
    for name, values in item_columns.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"item_columns: column names must be non-empty strings, got "
                             f"{name!r}")
        if name in reserved:
            raise ValueError(f"item_columns: {name!r} is a column of the feature table "
                             "already; choose another name")
        if isinstance(values, (str, bytes)):
            raise TypeError(f"item_columns[{name!r}]: expected a sequence of values, one "
                            "per item, got a string")
        if isinstance(values, pd.Series):
            series = values.rename(name)
        else:
            series = pd.Series(values if isinstance(values, np.ndarray) else list(values),
                               name=name)
        if len(series) != n_items:
            raise ValueError(f"item_columns[{name!r}]: expected {n_items} values (one per "
                             f"item), got {len(series)}")
        out[name] = series.reset_index(drop=True)
    return out


def column_slice(extra: dict[str, Any], start: int, stop: int) -> dict[str, Any]:
    """The values of the item columns for items ``start:stop``."""
    return {name: s.iloc[start:stop].to_numpy(dtype=object) for name, s in extra.items()}


_EXTRA = ("leukfeat.dask needs dask[dataframe] and distributed: "
          "pip install 'leukfeat[dask]'")


def require_dask_dataframe() -> ModuleType:
    """``dask.dataframe``, or an ImportError naming the extra."""
    try:
        import dask.dataframe as dd
    except ImportError as exc:
        raise ImportError(f"{_EXTRA} ({exc})") from exc
    return dd


def require_distributed() -> ModuleType:
    """``distributed``, or an ImportError naming the extra."""
    try:
        import distributed
    except ImportError as exc:
        raise ImportError(f"{_EXTRA} ({exc})") from exc
    return distributed


def run_on_client(client, job, items, extra, todo, done) -> None:
    """Run the chunks of ``todo`` (``(info, path)``, info with ``start`` and
    ``stop``) as tasks on ``client``; ``done(info, path, frame)`` in this
    process as each completes. At most two chunks per worker thread are in
    flight (flat memory here); a failed task cancels the rest and raises,
    naming the chunk, after the parts already completed were handed to
    ``done``."""
    distributed = require_distributed()
    if not isinstance(client, distributed.Client):
        raise TypeError(f"client: expected None or a dask.distributed.Client, got "
                        f"{type(client).__name__}")
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
        fut = client.submit(job, start, [for_remote(it) for it in items[start:stop]],
                            column_slice(extra, start, stop),
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
