"""Streaming, resumable feature tables: one Parquet part per chunk of images.

An archive of hundreds of thousands of images is measured in **chunks**
(fixed size, input order); each chunk's rows are written to their own
Parquet file as soon as they are ready, and a rerun of the same call skips
the chunks already written. A crash, a killed job or a full disk therefore
loses at most the chunk in progress, memory holds one chunk's rows at a
time, and the finished table is the same as that of an uninterrupted run.

:func:`extract_to_parquet`
    Extract the features of a batch into a directory of parts
    ``out/part-00000.parquet``, ``out/part-00001.parquet``, ... plus a
    manifest ``out/_leukfeat_manifest.json``.
:func:`read_parquet`
    The whole table of a finished directory, in input order (checked
    complete); ``pandas.read_parquet(out)`` reads the same parts.

Layout of the table
-------------------
The columns are those of ``leukfeat extract`` (the command line):

* one row per image: ``path``, the caller's ``item_columns`` (e.g.
  ``label``), ``error``, then the features
  (:meth:`~leukfeat.transformers.FeatureExtractor.get_feature_names_out`);
* ``per_cell=True``, one row per white cell: ``path``, ``item_columns``,
  :data:`~leukfeat.transformers.CELL_COLUMNS` (label, centroid, bounding
  box), ``error``, then the features.

``error`` is empty (null) for a measured item, ``"<ErrorType>: <message>"``
for an item that could not be read or measured (its features are NaN, the
batch goes on), and :data:`NO_CELL` for an image without a white cell.

Guarantees
----------
* Every part is written whole or not at all (a temporary file in ``out``,
  renamed when complete): a killed run leaves at most a hidden
  ``.part-*.tmp`` file, which the next run deletes.
* The manifest records the leukfeat version and a fingerprint of the
  feature code, the extractor's parameters and feature configuration (the
  key of :class:`~leukfeat.extract.FeatureConfig`), ``per_cell``,
  ``chunk_size``, the number of items and a SHA-256 of the item list (and
  of ``item_columns``). A rerun with the same values resumes; a run with
  anything else on an existing directory raises
  :class:`OutputMismatchError` unless ``overwrite=True``, so parts of two
  extractions are never mixed. ``n_jobs``, ``progress`` and the feature
  cache do not count: they never change a value.
* Each part carries, in its Parquet metadata, its chunk number, item range,
  the SHA-256 of its items and the run's settings digest; a part is reused
  only if its footer is readable and all of these and its row count match.
* One process at a time writes a directory (an advisory lock,
  ``out/.leukfeat.lock``, released by the operating system when the process
  dies, so a killed run never blocks the next one).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from . import __version__
from ._atomic import atomic_path
from ._batch import PATH_TYPES, as_batch, describe_item
from ._chunks import (check_bool, check_chunk_size, check_extractor, check_item_columns,
                      chunk_bounds, column_slice)

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping, Sequence
    from types import ModuleType

    import pandas as pd

    from ._typing import StrPath
    from .transformers import FeatureExtractor

__all__ = [
    "extract_to_parquet",
    "read_parquet",
    "PATH_COLUMN",
    "ERROR_COLUMN",
    "NO_CELL",
    "MANIFEST",
    "FeatureTableError",
    "OutputMismatchError",
    "IncompleteOutputError",
    "OutputLockedError",
]

#: Column of the item (its file path; for an array, a description of it).
PATH_COLUMN = "path"
#: Column of the per-item error (null when the item was measured).
ERROR_COLUMN = "error"
#: ``error`` of an image in which no white cell was found (its features are NaN).
NO_CELL = "no white cell found (NaN features)"
#: File name of the manifest in an output directory.
MANIFEST = "_leukfeat_manifest.json"

_FORMAT = "leukfeat-feature-parts"
_FORMAT_VERSION = 1
_LOCK = ".leukfeat.lock"
_PART_KEY = b"leukfeat.part"
#: Manifest fields that must be equal for a rerun to resume (the others,
#: e.g. ``created`` and ``extractor_params``, are informational).
_COMPARED = ("format", "format_version", "leukfeat_version", "code", "features",
             "per_cell", "chunk_size", "n_items", "items_sha256", "item_columns",
             "columns")

DEFAULT_CHUNK_SIZE = 1000


class FeatureTableError(ValueError):
    """A problem with a directory of feature parts (base class)."""


class OutputMismatchError(FeatureTableError):
    """The output directory holds the parts of another extraction (other
    items, settings, chunk size or leukfeat code)."""


class IncompleteOutputError(FeatureTableError):
    """The output directory is missing parts (the extraction has not finished)."""


class OutputLockedError(FeatureTableError):
    """Another process is writing the output directory."""


# --------------------------------------------------------------------------- #
# items: identity, description, chunks
# --------------------------------------------------------------------------- #

def _utf8(text: str) -> str:
    """``text``, with the undecodable bytes of a file name as ``\\xNN`` escapes."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(text).decode("utf-8", "backslashreplace")
    return text


def _item_path(item: Any) -> str:
    """The ``path`` column of an item: the file path (of the image of an
    ``(image, mask)`` pair), else a short description."""
    if isinstance(item, tuple) and len(item) == 2:
        return _item_path(item[0])
    if isinstance(item, PATH_TYPES):
        return _utf8(os.fsdecode(item))
    return _utf8(describe_item(item))


def _item_token(item: Any) -> bytes:
    """What identifies an item in the manifest: a path by its name, an array
    (or a Segmentation) by its content, a pair by both parts."""
    if isinstance(item, PATH_TYPES):
        return b"p:" + os.fsencode(item)
    if isinstance(item, tuple):
        return b"(" + b",".join(_item_token(part) for part in item) + b")"
    from ._fingerprint import content_key

    key = content_key(item)
    if key is None:
        return b"r:" + repr(item).encode("utf-8", "backslashreplace")
    return b"c:" + key.encode()


def _sha(tokens: Iterable[bytes]) -> str:
    h = hashlib.sha256()
    for t in tokens:
        h.update(len(t).to_bytes(8, "little"))
        h.update(t)
    return h.hexdigest()


# --------------------------------------------------------------------------- #
# one chunk: the extractor's rows as a table
# --------------------------------------------------------------------------- #

def _empty_frame(names: Sequence[str], per_cell: bool, item_columns: dict[str, Any]
                 ) -> pd.DataFrame:
    """The table with no rows and the dtypes of every part."""
    import pandas as pd

    from .transformers import CELL_COLUMNS

    cols = {PATH_COLUMN: pd.Series([], dtype="string")}
    for name, series in item_columns.items():
        if name != PATH_COLUMN:
            cols[name] = series.iloc[:0]
    if per_cell:
        for c in CELL_COLUMNS:
            cols[c] = pd.Series([], dtype="Int64" if c.startswith(("cell_", "bbox_"))
                                else "float64")
    cols[ERROR_COLUMN] = pd.Series([], dtype="string")
    for n in names:
        cols[n] = pd.Series([], dtype="float64")
    return pd.DataFrame(cols)


class ChunkJob:
    """The rows of one chunk of items (picklable: runs in-process, or as a
    Dask task on a worker).

    Parameters
    ----------
    extractor : FeatureExtractor
        Used as it is (``n_jobs`` included); ``on_error`` is forced to
        ``"nan"`` and ``progress`` off, so that every failure becomes a row.
    per_cell : bool
        Rows per white cell (:meth:`FeatureExtractor.transform_cells`).
    item_columns : dict of str to pandas.Series
        The caller's per-item columns (only their names and dtypes are
        kept; the values of a chunk are passed to each call).
    single_thread_workers : bool
        In a process other than the one that built the job (a Dask worker),
        limit BLAS, OpenMP and OpenCV to one thread first.
    """

    def __init__(self, extractor: FeatureExtractor, per_cell: bool,
                 item_columns: dict[str, Any] | None = None, *,
                 single_thread_workers: bool = True) -> None:
        self.extractor = extractor.set_params(on_error="nan", progress=False)
        self.per_cell = per_cell
        self.item_columns = {k: v.iloc[:0] for k, v in (item_columns or {}).items()}
        self.single_thread_workers = single_thread_workers
        self.pid = os.getpid()
        self.names: Any = None   # list[str] after fit

    def fit(self, items: Sequence[Any]) -> "ChunkJob":
        """Fit the extractor (parameters and column names; no image is read)."""
        self.extractor.fit(items)
        self.names = [str(n) for n in self.extractor.get_feature_names_out()]
        return self

    def __dask_tokenize__(self) -> tuple[Any, ...]:
        # Dask names the tasks of a graph by their arguments; the job is
        # identified by what determines its output.
        key = self.extractor._configuration()[2]
        return (type(self).__qualname__, json.dumps(key, sort_keys=True, default=repr),
                self.per_cell, self.names,
                [(k, str(v.dtype)) for k, v in self.item_columns.items()])

    def meta(self) -> pd.DataFrame:
        """The empty table with the columns and dtypes of every chunk."""
        return _empty_frame(self.names, self.per_cell, self.item_columns)

    def __call__(self, start: int, items: list[Any], extra: dict[str, Any] | None = None
                 ) -> pd.DataFrame:
        """The table of ``items`` (positions ``start, start + 1, ...`` of the
        batch), its index the position of each row's item in the batch;
        ``extra``: ``{name: values of these items}`` of the item columns."""
        import pandas as pd

        if self.single_thread_workers and os.getpid() != self.pid:
            from ._batch import prepare_worker

            prepare_worker(self.pid)
        fx = self.extractor
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*images failed and gave NaN rows",
                                    category=UserWarning)
            if self.per_cell:
                cells = fx.transform_cells(items)
                owner = cells.pop("item").to_numpy()
                no_cell_rows = cells["cell_label"].isna().to_numpy()
            else:
                X = fx.transform(items)
                owner = np.arange(len(items))
                no_cell_rows = np.isnan(X).all(axis=1) if X.shape[1] else \
                    np.zeros(len(items), bool)
        failures = {e["index"]: _utf8(f"{e['error_type']}: {e['message']}")
                    for e in fx.errors_}
        error = [failures.get(int(i), NO_CELL if no_cell else None)
                 for i, no_cell in zip(owner, no_cell_rows)]
        meta = self.meta()
        head: Any = {PATH_COLUMN: [_item_path(items[i]) for i in owner]}
        for name in self.item_columns:
            head[name] = np.asarray(cast("dict[str, Any]", extra)[name], dtype=object)[owner]
        if PATH_COLUMN in self.item_columns:   # the caller's names of the items
            head[PATH_COLUMN] = [_utf8(str(v)) for v in head[PATH_COLUMN]]
        if self.per_cell:
            from .transformers import CELL_COLUMNS

            for c in CELL_COLUMNS:
                head[c] = cells[c].to_numpy(dtype=object)
        head[ERROR_COLUMN] = error
        index = pd.Index(start + owner.astype(np.int64), name="item")
        head = pd.DataFrame(head, index=index).astype(meta.dtypes[list(head)].to_dict())
        features = (cells[self.names].to_numpy(dtype=np.float64) if self.per_cell else X)
        # one block of float64 features (not one block per column)
        frame = pd.concat([head, pd.DataFrame(features, columns=self.names, index=index)],
                          axis=1)
        return frame


# --------------------------------------------------------------------------- #
# the output directory
# --------------------------------------------------------------------------- #

def _require_pyarrow() -> ModuleType:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ImportError("writing and reading Parquet parts needs pyarrow: "
                          "pip install 'leukfeat[parquet]'") from None
    return pq


def _part_name(k: int, n_parts: int) -> str:
    return f"part-{k:0{max(5, len(str(n_parts - 1)))}d}.parquet"


def _is_ours(name: str) -> bool:
    """Whether a file name in an output directory is one leukfeat writes."""
    return (name in (MANIFEST, _LOCK) or (name.startswith("part-") and name.endswith(".parquet"))
            or (name.startswith((".part-", f".{MANIFEST}.")) and name.endswith(".tmp")))


def _remove_temporaries(out: Path) -> None:
    """Delete the temporary files of a killed run (under the lock: no writer is alive)."""
    for entry in os.scandir(out):
        if entry.name.startswith((".part-", f".{MANIFEST}.")) and entry.name.endswith(".tmp"):
            with contextlib.suppress(OSError):
                os.unlink(entry.path)


@contextlib.contextmanager
def _locked(out: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``out`` (POSIX; no-op elsewhere)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    fd = os.open(out / _LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise OutputLockedError(f"out: {out} is being written by another process "
                                    f"(it holds {out / _LOCK}); wait for it to finish") \
                from None
        yield
    finally:
        os.close(fd)


def _read_manifest(out: Path) -> dict[str, Any] | None:
    path = out / MANIFEST
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise FeatureTableError(f"out: cannot read the manifest {path}: {exc}") from None


def _describe_mismatch(old: dict[str, Any], new: dict[str, Any]) -> str:
    what = []
    for key in _COMPARED:
        if old.get(key) != new.get(key):
            if key in ("items_sha256", "n_items"):
                what.append(f"items ({old.get('n_items')} items sha256 "
                            f"{str(old.get('items_sha256'))[:12]} there, "
                            f"{new['n_items']} items sha256 {new['items_sha256'][:12]} now)")
            elif key in ("chunk_size", "per_cell", "leukfeat_version"):
                what.append(f"{key} ({old.get(key)!r} there, {new[key]!r} now)")
            elif key == "code":
                what.append("the feature code (another leukfeat build)")
            elif key == "features":
                what.append("the extractor's settings (segmenter, groups, cell or options)")
            else:
                what.append(key)
    return ", ".join(dict.fromkeys(what))


def _prepare_output(out: Path, manifest: dict[str, Any], overwrite: bool) -> bool:
    """Make ``out`` a directory holding ``manifest``; returns whether parts
    of an earlier run may be reused. Called under the lock."""
    old = _read_manifest(out)
    if old is not None and all(old.get(k) == manifest[k] for k in _COMPARED):
        _remove_temporaries(out)
        return True
    if old is not None and not overwrite:
        raise OutputMismatchError(
            f"out: {out} holds the parts of another extraction (differs in: "
            f"{_describe_mismatch(old, manifest)}); pass overwrite=True to replace them, or "
            "choose another directory")
    foreign = sorted(e.name for e in os.scandir(out) if not _is_ours(e.name))
    if foreign:
        raise FileExistsError(
            f"out: {out} is a directory with other files than a leukfeat feature table "
            f"({', '.join(foreign[:3])}{', ...' if len(foreign) > 3 else ''}); choose an "
            "empty or new directory")
    for entry in os.scandir(out):          # only our own files (checked above)
        if entry.name != _LOCK:
            os.unlink(entry.path)
    with atomic_path(out / MANIFEST) as tmp:
        tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True, default=repr) + "\n",
                       encoding="utf-8")
    return False


def _settings_digest(manifest: dict[str, Any]) -> str:
    text = json.dumps({k: manifest[k] for k in _COMPARED}, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


def _part_ok(path: Path, expected: dict[str, Any], per_cell: bool) -> bool:
    """Whether a part on disk is complete and belongs to this chunk of this run."""
    import pyarrow.parquet as pq

    try:
        meta = pq.read_metadata(path)
        info = json.loads((meta.metadata or {}).get(_PART_KEY, b"null"))
    except FileNotFoundError:
        return False
    except Exception:  # noqa: BLE001 - any unreadable file is rewritten
        return False
    if info != expected:
        return False
    n_items = expected["stop"] - expected["start"]
    return meta.num_rows >= n_items if per_cell else meta.num_rows == n_items


def _write_part(frame: pd.DataFrame, schema: Any, path: Path, info: dict[str, Any]) -> None:
    """Write one chunk's table to ``path``, atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
    table = table.replace_schema_metadata(
        {**(table.schema.metadata or {}), _PART_KEY: json.dumps(info).encode()})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def _schema(meta: pd.DataFrame) -> Any:
    import pyarrow as pa

    return pa.Schema.from_pandas(meta, preserve_index=False)


# --------------------------------------------------------------------------- #
# public API
# --------------------------------------------------------------------------- #

def extract_to_parquet(items: Sequence[Any], out: StrPath, *,
                       extractor: FeatureExtractor | None = None,
                       chunk_size: int = DEFAULT_CHUNK_SIZE,
                       per_cell: bool = False,
                       item_columns: Mapping[str, Sequence[Any]] | None = None,
                       overwrite: bool = False, progress: bool = False,
                       client: Any = None) -> Path:
    """Extract features into a directory of Parquet parts, resumably.

    The batch is split into chunks of ``chunk_size`` items (in input order);
    the extractor measures one chunk at a time and the chunk's rows are
    written to ``out/part-<k>.parquet`` at once, atomically. Calling again
    with the same arguments after a crash or a kill writes only the missing
    parts; the finished table (:func:`read_parquet`) equals that of an
    uninterrupted run.

    Parameters
    ----------
    items : sequence of str or os.PathLike, of image arrays, or of (image, mask) pairs
        The batch (:func:`leukfeat._batch.as_batch` rules). Paths are what
        it is meant for: worker processes receive paths, not pixels, and the
        manifest identifies the batch by its paths (an array by its content).
    out : str or os.PathLike
        Output directory (created if needed), by convention ``*.parquet``.
    extractor : FeatureExtractor, optional
        The configured extractor (default: ``FeatureExtractor()``); a copy
        is used. Its ``n_jobs`` parallelises each chunk; its ``on_error`` is
        not used: a failed item always gives a row with NaN features and its
        message in the ``error`` column.
    chunk_size : int, default 1000
        Items per part. Memory holds one chunk's rows; a killed run loses at
        most one chunk of work.
    per_cell : bool, default False
        One row per white cell (:meth:`FeatureExtractor.transform_cells`)
        instead of one per image.
    item_columns : mapping of str to sequence, optional
        Extra per-item columns written after ``path`` (e.g. ``{"label":
        labels, "group": groups}``), one value per item; part of the
        manifest. A ``"path"`` entry replaces the ``path`` column's values
        (e.g. the file names of images given as arrays after stain
        normalisation).
    overwrite : bool, default False
        Replace an existing output of *another* extraction (other items or
        settings) or an existing file at ``out``, instead of raising. An
        output of the same extraction is always resumed, not recomputed.
    progress : bool, default False
        Show a progress bar over the items (tqdm).
    client : dask.distributed.Client, optional
        Run the chunks as tasks on this Dask cluster (``leukfeat[dask]``),
        each with ``n_jobs=1`` and at most two per worker thread in flight;
        parts are written here as chunks complete. Relative paths are sent
        made absolute (a worker has its own working directory), so the
        ``path`` column then holds absolute paths unless ``item_columns``
        gives a ``"path"``. Without it, chunks run one after another in
        this process.

    Returns
    -------
    pathlib.Path
        ``out``.

    Raises
    ------
    OutputMismatchError
        ``out`` holds the parts of another extraction (``overwrite=False``).
    FileExistsError
        ``out`` is a file (``overwrite=False``), or a directory holding
        files that leukfeat did not write.
    OutputLockedError
        Another process is writing ``out``.
    ValueError, TypeError
        For an invalid argument, named in the message.
    ImportError
        Without pyarrow (``leukfeat[parquet]``), or with ``client`` without
        dask (``leukfeat[dask]``).

    Warns
    -----
    UserWarning
        When items of the chunks written by this call could not be read or
        measured (their rows are kept, with the ``error`` column set).

    See Also
    --------
    read_parquet : the finished table.
    leukfeat.dask.extract_features : the same table as a dask DataFrame.

    Notes
    -----
    Parts are validated from their Parquet footer (readable, written for
    this chunk of this run, right row count); image *files* are identified by
    their paths, so a file changed in place between two runs is not noticed.

    Examples
    --------
    >>> from leukfeat import FeatureExtractor
    >>> from leukfeat.stream import extract_to_parquet, read_parquet
    >>> out = extract_to_parquet(paths, "features.parquet",           # doctest: +SKIP
    ...                          extractor=FeatureExtractor(n_jobs=-1))
    >>> table = read_parquet(out)                                    # doctest: +SKIP
    """
    _require_pyarrow()
    items = as_batch(items, "items")
    chunk_size = check_chunk_size(chunk_size)
    per_cell = check_bool(per_cell, "per_cell")
    overwrite = check_bool(overwrite, "overwrite")
    progress = check_bool(progress, "progress")
    if not isinstance(out, (str, os.PathLike)):
        raise TypeError(f"out: expected a directory path, got {type(out).__name__}")
    out = Path(out)
    fx = check_extractor(extractor)
    if client is not None:
        fx.set_params(n_jobs=1)
    from ._fingerprint import code_fingerprint
    from .transformers import CELL_COLUMNS

    job = ChunkJob(fx, per_cell).fit(items)
    reserved = {ERROR_COLUMN, *job.names, *(CELL_COLUMNS if per_cell else ())}
    extra = check_item_columns(item_columns, len(items), reserved)
    job.item_columns = {k: v.iloc[:0] for k, v in extra.items()}
    meta = job.meta()

    tokens = [_item_token(it) for it in items]
    chunks = chunk_bounds(len(items), chunk_size)
    key = fx._configuration()[2]
    manifest = {
        "format": _FORMAT,
        "format_version": _FORMAT_VERSION,
        "leukfeat_version": __version__,
        "code": code_fingerprint(),
        "features": json.loads(json.dumps(key, sort_keys=True, default=repr)),
        "extractor_params": json.loads(json.dumps(
            {k: v for k, v in fx.get_params().items()}, sort_keys=True, default=repr)),
        "per_cell": per_cell,
        "chunk_size": chunk_size,
        "n_items": len(items),
        "n_parts": len(chunks),
        "items_sha256": _sha(tokens),
        "item_columns": {name: _sha([str(s.dtype).encode(), *(str(v).encode("utf-8", "replace")
                                                              for v in s)])
                         for name, s in extra.items()},
        "columns": list(meta.columns),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    run = _settings_digest(manifest)

    if out.exists() and not out.is_dir():
        if not overwrite:
            raise FileExistsError(f"out: {out} is a file; expected a directory of Parquet "
                                  "parts (pass overwrite=True to replace the file)")
        out.unlink()
    out.mkdir(parents=True, exist_ok=True)

    with _locked(out):
        reuse = _prepare_output(out, manifest, overwrite)
        schema = _schema(meta)
        todo: list[tuple[dict[str, Any], Path]] = []
        done_items = 0
        for k, start, stop in chunks:
            info: dict[str, Any] = {"part": k, "start": start, "stop": stop, "run": run,
                    "items_sha256": _sha(tokens[start:stop])}
            path = out / _part_name(k, len(chunks))
            if reuse and _part_ok(path, info, per_cell):
                done_items += stop - start
                continue
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            todo.append((info, path))
        del tokens

        n_failed = [0]

        def write(info: dict[str, Any], path: Path, frame: pd.DataFrame) -> None:
            _write_part(frame, schema, path, info)
            failed = frame[ERROR_COLUMN].notna() & (frame[ERROR_COLUMN] != NO_CELL)
            n_failed[0] += int(frame.index[failed.to_numpy()].nunique())

        from tqdm.auto import tqdm

        with tqdm(total=len(items), initial=done_items, disable=not progress, unit="item",
                  desc="features") as bar:
            if client is None:
                for info, path in todo:
                    start, stop = info["start"], info["stop"]
                    frame = job(start, items[start:stop], column_slice(extra, start, stop))
                    write(info, path, frame)
                    bar.update(info["stop"] - info["start"])
                    del frame
            else:
                from ._chunks import run_on_client

                def done(info: dict[str, Any], path: Path, frame: pd.DataFrame) -> None:
                    write(info, path, frame)
                    bar.update(info["stop"] - info["start"])

                run_on_client(client, job, items, extra, todo, done)
    if n_failed[0]:
        warnings.warn(f"{n_failed[0]} of the {sum(i['stop'] - i['start'] for i, _ in todo)} "
                      f"items extracted now could not be read or measured (NaN rows kept, "
                      f"see the {ERROR_COLUMN!r} column of {out})", UserWarning, stacklevel=2)
    return out


def _parts(out: Path, manifest: dict[str, Any]) -> list[Path]:
    n_parts = int(manifest["n_parts"])
    return [out / _part_name(k, n_parts) for k in range(n_parts)]


def read_parquet(out: StrPath, *, columns: list[str] | None = None) -> pd.DataFrame:
    """The table of a finished :func:`extract_to_parquet` directory, in input order.

    Parameters
    ----------
    out : str or os.PathLike
        The output directory.
    columns : list of str, optional
        Read only these columns.

    Returns
    -------
    pandas.DataFrame
        Every part, concatenated in chunk order, with a fresh
        :class:`~pandas.RangeIndex`; equal to the table of an
        uninterrupted run.

    Raises
    ------
    FileNotFoundError
        ``out`` does not exist or holds no manifest.
    IncompleteOutputError
        Parts are missing (the extraction has not finished: run it again
        with the same arguments).
    """
    import pandas as pd

    _require_pyarrow()
    out = Path(out)
    if not out.is_dir():
        raise FileNotFoundError(f"out: no such directory: {out}")
    manifest = _read_manifest(out)
    if manifest is None:
        raise FileNotFoundError(f"out: {out} is not a leukfeat feature table (no {MANIFEST})")
    parts = _parts(out, manifest)
    missing = [p.name for p in parts if not p.is_file()]
    if missing:
        raise IncompleteOutputError(
            f"out: {out} is incomplete: {len(missing)} of {len(parts)} parts missing "
            f"({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}); run "
            "extract_to_parquet again with the same arguments to finish it")
    frames = [pd.read_parquet(p, columns=columns) for p in parts]
    return pd.concat(frames, ignore_index=True)
