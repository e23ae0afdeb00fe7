"""Tests for leukfeat.stream: streaming, resumable Parquet output (issue #31)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pyarrow", reason="Parquet output needs pyarrow (leukfeat[parquet])")

from leukfeat import stream  # noqa: E402
from leukfeat.datasets import make_cells  # noqa: E402
from leukfeat.stream import (ERROR_COLUMN, MANIFEST, NO_CELL, PATH_COLUMN,  # noqa: E402
                             IncompleteOutputError, OutputLockedError, OutputMismatchError,
                             extract_to_parquet, read_parquet)
from leukfeat.transformers import CELL_COLUMNS, FeatureExtractor  # noqa: E402

GROUPS = ("shape", "colour")   # quick groups: the tests are about the plumbing
CHUNK = 4
BAD = 5                        # position of the unreadable file in the batch


def _extractor(**kw):
    return FeatureExtractor(groups=GROUPS, **kw)


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    """14 synthetic smear images and, at position BAD, a file that is not an image."""
    root = tmp_path_factory.mktemp("images")
    files = [str(p) for p in make_cells(14, size=80, random_state=3).save(root)]
    broken = root / "broken.png"
    broken.write_bytes(b"this is not a PNG file")
    files.insert(BAD, str(broken))
    return files


@pytest.fixture(scope="module")
def reference(paths, tmp_path_factory):
    """The table of an uninterrupted run."""
    out = tmp_path_factory.mktemp("ref") / "features.parquet"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        extract_to_parquet(paths, out, extractor=_extractor(), chunk_size=CHUNK)
    return read_parquet(out)


def _counting(monkeypatch):
    """Count the parts written by extract_to_parquet."""
    written = []
    real = stream._write_part

    def spy(frame, schema, path, info):
        written.append(path.name)
        return real(frame, schema, path, info)

    monkeypatch.setattr(stream, "_write_part", spy)
    return written


# --------------------------------------------------------------------------- #
# the table
# --------------------------------------------------------------------------- #

def test_parts_manifest_and_table(paths, reference, tmp_path):
    out = tmp_path / "features.parquet"
    with pytest.warns(UserWarning, match=r"1 of the 15 items .* could not be read"):
        result = extract_to_parquet(paths, out, extractor=_extractor(n_jobs=1),
                                    chunk_size=CHUNK)
    assert result == out
    n_parts = -(-len(paths) // CHUNK)
    assert sorted(p.name for p in out.glob("part-*.parquet")) == \
        [f"part-{k:05d}.parquet" for k in range(n_parts)]
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["n_items"] == len(paths) and manifest["chunk_size"] == CHUNK
    assert manifest["n_parts"] == n_parts and manifest["per_cell"] is False
    assert manifest["features"]["groups"] == ["shape", "colour"]
    assert manifest["leukfeat_version"] and len(manifest["items_sha256"]) == 64

    table = read_parquet(out)
    fx = _extractor(on_error="nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        X = fx.fit_transform(paths)
    names = list(fx.get_feature_names_out())
    assert list(table.columns) == [PATH_COLUMN, ERROR_COLUMN, *names]
    assert table[PATH_COLUMN].tolist() == paths            # input order
    np.testing.assert_array_equal(table[names].to_numpy(), X)
    pd.testing.assert_frame_equal(table, reference)
    # pandas reads the directory directly (manifest, lock and temporaries are hidden)
    pd.testing.assert_frame_equal(pd.read_parquet(out), table)


def test_bad_file_gives_an_error_row_with_its_path(paths, reference):
    bad = reference.iloc[BAD]
    assert bad[PATH_COLUMN].endswith("broken.png")
    assert bad[ERROR_COLUMN].startswith("ImageReadError: ") and "broken.png" in bad[ERROR_COLUMN]
    assert reference.drop(columns=[PATH_COLUMN, ERROR_COLUMN]).iloc[BAD].isna().all()
    good = reference.drop(index=BAD)
    assert good[ERROR_COLUMN].isna().all()
    assert np.isfinite(good["shape_cell_area"].to_numpy()).all()


def test_no_cell_and_item_columns(tmp_path):
    blank = tmp_path / "blank.png"
    import cv2

    cv2.imwrite(str(blank), np.full((64, 64, 3), 230, np.uint8))
    files = [str(p) for p in make_cells(3, size=80, random_state=1).save(tmp_path / "img")]
    files.append(str(blank))
    out = extract_to_parquet(files, tmp_path / "t.parquet", extractor=_extractor(),
                             chunk_size=3, item_columns={"label": ["a", "b", "a", "b"]})
    table = read_parquet(out)
    assert list(table.columns[:3]) == [PATH_COLUMN, "label", ERROR_COLUMN]
    assert table["label"].tolist() == ["a", "b", "a", "b"]
    assert table[ERROR_COLUMN].iloc[3] == NO_CELL
    with pytest.raises(ValueError, match=r"item_columns\['label'\]: expected 4 values"):
        extract_to_parquet(files, tmp_path / "u.parquet", item_columns={"label": ["a"]})
    with pytest.raises(ValueError, match="item_columns: 'error' is a column"):
        extract_to_parquet(files, tmp_path / "u.parquet", item_columns={"error": [1] * 4})


def test_per_cell(tmp_path):
    cells = make_cells(5, size=(120, 150), n_white_cells=2, random_state=0)
    files = [str(p) for p in cells.save(tmp_path / "img")]
    out = extract_to_parquet(files, tmp_path / "cells.parquet", extractor=_extractor(),
                             chunk_size=2, per_cell=True)
    table = read_parquet(out)
    fx = _extractor().fit(files)
    expected = fx.transform_cells(files)
    names = list(fx.get_feature_names_out())
    assert list(table.columns) == [PATH_COLUMN, *CELL_COLUMNS, ERROR_COLUMN, *names]
    assert table[PATH_COLUMN].tolist() == [files[i] for i in expected["item"]]
    np.testing.assert_array_equal(table[names].to_numpy(), expected[names].to_numpy())
    pd.testing.assert_frame_equal(table[list(CELL_COLUMNS)], expected[list(CELL_COLUMNS)])


# --------------------------------------------------------------------------- #
# resuming
# --------------------------------------------------------------------------- #

_KILLED_RUN = textwrap.dedent("""
    import json, os, signal, sys, tempfile
    from pathlib import Path
    from leukfeat import stream
    from leukfeat.transformers import FeatureExtractor

    paths, out, chunk = json.loads(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    real, n = stream._write_part, [0]

    def write_then_die(frame, schema, path, info):
        n[0] += 1
        if n[0] == 3:
            # the third part is being written when the process is killed: a
            # half-written temporary file, named as atomic_path names them
            fd, _ = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=out)
            os.write(fd, b"PAR1 half a part")
            os.kill(os.getpid(), signal.SIGKILL)
        real(frame, schema, path, info)

    stream._write_part = write_then_die
    stream.extract_to_parquet(paths, out, chunk_size=chunk,
                              extractor=FeatureExtractor(groups=("shape", "colour")))
""")


def test_killed_run_resumes_to_the_same_table(paths, reference, tmp_path, monkeypatch):
    out = tmp_path / "features.parquet"
    proc = subprocess.run([sys.executable, "-c", _KILLED_RUN, json.dumps(paths), str(out),
                           str(CHUNK)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert sorted(p.name for p in out.glob("part-*.parquet")) == \
        ["part-00000.parquet", "part-00001.parquet"]
    assert len(list(out.glob(".part-*.tmp"))) == 1
    with pytest.raises(IncompleteOutputError, match=r"2 of 4 parts missing"):
        read_parquet(out)

    written = _counting(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        extract_to_parquet(paths, out, extractor=_extractor(), chunk_size=CHUNK)
    assert written == ["part-00002.parquet", "part-00003.parquet"]
    assert not list(out.glob(".*.tmp"))                     # the temporary file is gone
    pd.testing.assert_frame_equal(read_parquet(out), reference)

    written.clear()                                         # finished: nothing to do
    extract_to_parquet(paths, out, extractor=_extractor(n_jobs=2), chunk_size=CHUNK,
                       overwrite=True)
    assert written == []


def test_damaged_part_and_temporaries_are_replaced(paths, reference, tmp_path, monkeypatch):
    out = tmp_path / "features.parquet"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        extract_to_parquet(paths, out, extractor=_extractor(), chunk_size=CHUNK)
        (out / "part-00001.parquet").write_bytes(b"PAR1 truncated")
        (out / "part-00003.parquet").unlink()
        stale = out / ".part-00003.parquet.abc123.tmp"
        stale.write_bytes(b"half")
        written = _counting(monkeypatch)
        extract_to_parquet(paths, out, extractor=_extractor(), chunk_size=CHUNK)
    assert written == ["part-00001.parquet", "part-00003.parquet"]
    assert not stale.exists()
    pd.testing.assert_frame_equal(read_parquet(out), reference)


def test_part_of_another_run_is_not_reused(paths, tmp_path, monkeypatch):
    """A part copied in from another directory (same name, other items) is rewritten."""
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    extract_to_parquet(paths[6:], a, extractor=_extractor(), chunk_size=CHUNK)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        extract_to_parquet(paths, b, extractor=_extractor(), chunk_size=CHUNK)
        (b / "part-00000.parquet").write_bytes((a / "part-00000.parquet").read_bytes())
        written = _counting(monkeypatch)
        extract_to_parquet(paths, b, extractor=_extractor(), chunk_size=CHUNK)
    assert written == ["part-00000.parquet"]
    assert read_parquet(b)[PATH_COLUMN].tolist() == paths


# --------------------------------------------------------------------------- #
# never mixing two extractions
# --------------------------------------------------------------------------- #

def test_other_items_or_settings_raise_unless_overwrite(paths, reference, tmp_path):
    out = tmp_path / "features.parquet"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        extract_to_parquet(paths, out, extractor=_extractor(), chunk_size=CHUNK)
        changed = paths[:BAD] + paths[BAD + 1:]
        with pytest.raises(OutputMismatchError, match=r"another extraction .*items \(15 items"):
            extract_to_parquet(changed, out, extractor=_extractor(), chunk_size=CHUNK)
        with pytest.raises(OutputMismatchError, match=r"chunk_size \(4 there, 5 now\)"):
            extract_to_parquet(paths, out, extractor=_extractor(), chunk_size=5)
        with pytest.raises(OutputMismatchError, match="extractor's settings"):
            extract_to_parquet(paths, out, extractor=FeatureExtractor(groups=("shape",)),
                               chunk_size=CHUNK)
        with pytest.raises(OutputMismatchError, match="per_cell"):
            extract_to_parquet(paths, out, extractor=_extractor(), chunk_size=CHUNK,
                               per_cell=True)
        pd.testing.assert_frame_equal(read_parquet(out), reference)   # untouched

        extract_to_parquet(changed, out, extractor=_extractor(), chunk_size=CHUNK,
                           overwrite=True)
    table = read_parquet(out)
    assert table[PATH_COLUMN].tolist() == changed
    assert len(list(out.glob("part-*.parquet"))) == 4     # no part of the old run is left
    pd.testing.assert_frame_equal(table, reference.drop(index=BAD).reset_index(drop=True))


def test_output_that_is_not_ours(paths, tmp_path):
    file = tmp_path / "table.parquet"
    file.write_bytes(b"x")
    with pytest.raises(FileExistsError, match=r"out: .*table.parquet is a file"):
        extract_to_parquet(paths[:2], file)
    extract_to_parquet(paths[:2], file, extractor=_extractor(), overwrite=True)
    assert file.is_dir() and len(read_parquet(file)) == 2

    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    for overwrite in (False, True):
        with pytest.raises(FileExistsError, match=r"other files .*notes.txt"):
            extract_to_parquet(paths[:2], folder, overwrite=overwrite)
    assert (folder / "notes.txt").read_text() == "keep me"


def test_a_directory_being_written_is_locked(paths, tmp_path):
    out = tmp_path / "features.parquet"
    out.mkdir()
    with stream._locked(out):
        with pytest.raises(OutputLockedError, match="another process"):
            extract_to_parquet(paths[:2], out, extractor=_extractor())
    extract_to_parquet(paths[:2], out, extractor=_extractor())    # released


def test_argument_errors(paths, tmp_path):
    out = tmp_path / "o.parquet"
    with pytest.raises(ValueError, match="chunk_size: expected a positive int, got 0"):
        extract_to_parquet(paths, out, chunk_size=0)
    with pytest.raises(ValueError, match="chunk_size"):
        extract_to_parquet(paths, out, chunk_size=2.5)
    with pytest.raises(TypeError, match="extractor: expected None or a leukfeat"):
        extract_to_parquet(paths, out, extractor="shape")
    with pytest.raises(ValueError, match="per_cell: expected a bool"):
        extract_to_parquet(paths, out, per_cell="yes")
    with pytest.raises(TypeError, match="wrap it in a list"):
        extract_to_parquet(paths[0], out)
    with pytest.raises(TypeError, match="out: expected a directory path"):
        extract_to_parquet(paths, 3)
    with pytest.raises(FileNotFoundError, match="no such directory"):
        read_parquet(tmp_path / "missing.parquet")
    assert not out.exists()
