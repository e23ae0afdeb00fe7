"""Outputs of the command line.

The one-line error (:class:`CommandError`), status lines, failure reports,
and output files and tables written whole or not at all.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from .._json import jsonable

_MAX_LISTED = 20  # failures listed on stderr


class CommandError(ValueError):
    """An expected error of the command line (reported in one line, exit 2)."""


def want_progress(args) -> bool:
    """Progress bars: on unless --quiet or stderr is not a terminal."""
    if getattr(args, "quiet", False):
        return False
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def say(args, message: str) -> None:
    """A status line on stderr (silenced by --quiet)."""
    if not getattr(args, "quiet", False):
        print(message, file=sys.stderr, flush=True)


def one_line(text: object) -> str:
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def format_error(exc: BaseException) -> str:
    from ..io import ImageReadError

    if (isinstance(exc, OSError) and not isinstance(exc, ImageReadError)
            and exc.strerror and exc.filename):
        text = f"{exc.strerror}: {os.fsdecode(exc.filename)}"
    elif isinstance(exc, ImportError) and exc.name and not str(exc):
        text = f"missing module {exc.name!r}"
    else:
        text = str(exc) or type(exc).__name__
    return one_line(text)


def report_failures(what: str, failures: list, total: int, out=None) -> None:
    """List failed items on stderr (always, even with --quiet): never silent."""
    if not failures:
        return
    lines = [f"leukfeat: {len(failures)} of {total} {what}:"]
    for path, message in failures[:_MAX_LISTED]:
        lines.append(f"  {path}: {one_line(message)}")
    if len(failures) > _MAX_LISTED:
        more = f" (all listed in {out})" if out else ""
        lines.append(f"  ... and {len(failures) - _MAX_LISTED} more{more}")
    print("\n".join(lines), file=sys.stderr, flush=True)


def report_no_cell(no_cell: list, total: int, what: str) -> None:
    """Count the images without a white cell on stderr (always, even with --quiet)."""
    if no_cell:
        print(f"leukfeat: {len(no_cell)} of {total} images have no white cell ({what})",
              file=sys.stderr)


def fail_if_all_failed(failed: list, total: int, out) -> None:
    """Exit 2 (after the table of error rows is written) when no image could
    be read or measured: nothing was computed, so the command failed."""
    if failed and len(failed) == total:
        raise CommandError(f"all {total} images failed (listed in {out}); first: "
                           f"{utf8_text(failed[0][0])}: {one_line(failed[0][1])}")



def write_json(path, data) -> Path:
    from .._atomic import atomic_path

    text = json.dumps(jsonable(data), indent=2, allow_nan=False) + "\n"
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def out_file(path, suffixes, option: str, overwrite: bool = False) -> Path:
    """Check an output file name's suffix, refuse to replace an existing file
    unless ``overwrite``, and create its folder."""
    path = Path(path)
    if path.suffix.lower() not in suffixes:
        raise CommandError(f"{option}: expected a file name ending in "
                           f"{' or '.join(suffixes)}, got {str(path)!r}")
    if path.exists() and path.is_dir():
        raise CommandError(f"{option}: {path} is a folder, expected a file name")
    if path.exists() and not overwrite:
        raise CommandError(f"{option}: {path} exists; pass --overwrite to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def out_table(path, option: str, overwrite: bool = False) -> Path:
    """:func:`out_file` for a table, .csv or .parquet (Parquet needs pyarrow: checked now)."""
    path = out_file(path, (".csv", ".parquet"), option, overwrite)
    if path.suffix.lower() == ".parquet":
        check_parquet()
    return path


def check_parquet() -> None:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise CommandError("writing Parquet needs pyarrow: pip install 'leukfeat[parquet]' "
                           "(or write a .csv file)") from None


def utf8_text(value: Any) -> Any:
    """``value``, or for a string that is not valid UTF-8 (a file name's
    undecodable bytes, which Python keeps as surrogates) the same text with
    those bytes as ``\\xNN`` escapes, so that every table can be written."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return os.fsencode(value).decode("utf-8", "backslashreplace")
    return value


def write_table(df, path: Path) -> None:
    """Write a table as Parquet or CSV (by the suffix of ``path``), whole or
    not at all (a temporary file renamed when complete)."""
    from .._atomic import atomic_path

    parquet = path.suffix.lower() == ".parquet"
    if parquet:
        check_parquet()
    with atomic_path(path) as tmp:
        if parquet:
            df.to_parquet(tmp, index=False)
        else:
            df.to_csv(tmp, index=False)


def use_agg() -> None:
    import matplotlib

    matplotlib.use("Agg")
