"""Tests for leukfeat.dask: extraction on a Dask cluster (issue #31).

The cluster tests need ``leukfeat[dask]`` (dask[dataframe] and distributed)
and are skipped with that reason without it; they share one
``LocalCluster`` of two single-threaded worker processes.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from leukfeat.datasets import make_cells
from leukfeat.transformers import FeatureExtractor

HAVE_DASK = all(importlib.util.find_spec(m) is not None
                for m in ("dask", "dask.dataframe", "distributed"))
needs_dask = pytest.mark.skipif(
    not HAVE_DASK, reason="dask is not installed (pip install 'leukfeat[dask]')")

GROUPS = ("shape", "colour", "texture")
BAD = 4


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    """13 synthetic smear images and, at position BAD, a file that is not an image."""
    root = tmp_path_factory.mktemp("images")
    files = [str(p) for p in make_cells(12, size=80, random_state=5).save(root)]
    broken = root / "broken.png"
    broken.write_bytes(b"not an image")
    files.insert(BAD, str(broken))
    return files


@pytest.fixture(scope="module")
def expected(paths):
    """Features with n_jobs=1, in this process: the reference."""
    fx = FeatureExtractor(groups=GROUPS, n_jobs=1, on_error="nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        X = fx.fit_transform(paths)
    return X, list(fx.get_feature_names_out())


@pytest.fixture(scope="module")
def client():
    from dask.distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                      dashboard_address=None) as cluster, Client(cluster) as c:
        yield c


def test_missing_dask_names_the_extra(monkeypatch, paths):
    # first in this file: no cluster is running yet while dask "disappears"
    import leukfeat.dask as ldask

    for name in ("dask", "dask.dataframe", "distributed"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match=r"pip install 'leukfeat\[dask\]'"):
        ldask.extract_features(paths)
    with pytest.raises(ImportError, match=r"leukfeat\[dask\]"):
        ldask.connect("tcp://127.0.0.1:1")


@needs_dask
def test_extract_features_equals_n_jobs_1(client, paths, expected):
    from leukfeat.dask import extract_features

    X, names = expected
    ddf = extract_features(paths, extractor=FeatureExtractor(groups=GROUPS), chunk_size=4)
    assert ddf.npartitions == 4
    assert ddf.divisions == (0, 4, 8, 12, 12)
    assert list(ddf.columns) == ["path", "error", *names]
    table = ddf.compute()
    assert table.index.tolist() == list(range(len(paths)))     # order preserved
    assert table["path"].tolist() == paths
    np.testing.assert_array_equal(table[names].to_numpy(), X)   # bit-identical
    assert table["error"].iloc[BAD].startswith("ImageReadError: ")
    assert table["error"].drop(index=BAD).isna().all()


@needs_dask
def test_to_parquet_streams_the_partitions(client, paths, expected, tmp_path):
    from leukfeat.dask import extract_features

    X, names = expected
    ddf = extract_features(paths, extractor=FeatureExtractor(groups=GROUPS), chunk_size=5,
                           item_columns={"label": [i % 3 for i in range(len(paths))]})
    ddf.to_parquet(tmp_path / "features.parquet")
    back = pd.read_parquet(tmp_path / "features.parquet").sort_index()
    assert back["label"].tolist() == [i % 3 for i in range(len(paths))]
    np.testing.assert_array_equal(back[names].to_numpy(), X)


@needs_dask
def test_joblib_dask_backend(client, paths, expected):
    """FeatureExtractor(n_jobs=k) under joblib.parallel_config(backend="dask")."""
    import joblib

    X, _ = expected
    fx = FeatureExtractor(groups=GROUPS, n_jobs=2, on_error="nan")
    with joblib.parallel_config(backend="dask"), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        out = fx.fit_transform(paths)
    np.testing.assert_array_equal(out, X)
    assert [e["index"] for e in fx.errors_] == [BAD]
    assert fx.errors_[0]["item"].endswith("broken.png")
    ran = client.run(lambda: "leukfeat.transformers" in sys.modules)
    assert any(ran.values())                       # the work ran on the workers


@needs_dask
def test_resumable_parts_on_the_cluster(client, paths, tmp_path, monkeypatch):
    from leukfeat import stream

    out, ref = tmp_path / "cluster.parquet", tmp_path / "local.parquet"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        stream.extract_to_parquet(paths, ref, extractor=FeatureExtractor(groups=GROUPS),
                                  chunk_size=3)
        stream.extract_to_parquet(paths, out, extractor=FeatureExtractor(groups=GROUPS),
                                  chunk_size=3, client=client)
        expected = stream.read_parquet(ref)
        pd.testing.assert_frame_equal(stream.read_parquet(out), expected)
        (out / "part-00002.parquet").unlink()
        written = []
        real = stream._write_part
        monkeypatch.setattr(stream, "_write_part",
                            lambda f, s, p, i: (written.append(p.name), real(f, s, p, i)))
        stream.extract_to_parquet(paths, out, extractor=FeatureExtractor(groups=GROUPS),
                                  chunk_size=3, client=client)
    assert written == ["part-00002.parquet"]
    pd.testing.assert_frame_equal(stream.read_parquet(out), expected)


@needs_dask
def test_per_cell_partitions(client, tmp_path):
    from leukfeat.dask import extract_features

    files = [str(p) for p in make_cells(4, size=(120, 150), n_white_cells=2,
                                        random_state=0).save(tmp_path)]
    fx = FeatureExtractor(groups=("shape",)).fit(files)
    expected = fx.transform_cells(files)
    table = extract_features(files, extractor=fx, chunk_size=3, per_cell=True).compute()
    names = list(fx.get_feature_names_out())
    assert table.index.tolist() == expected["item"].tolist()
    np.testing.assert_array_equal(table[names].to_numpy(), expected[names].to_numpy())


@needs_dask
def test_argument_errors(paths):
    from leukfeat.dask import extract_features

    with pytest.raises(ValueError, match="chunk_size: expected a positive int"):
        extract_features(paths, chunk_size=0)
    with pytest.raises(TypeError, match="extractor: expected None or a leukfeat"):
        extract_features(paths, extractor=object())
    with pytest.raises(TypeError, match="wrap it in a list"):
        extract_features(paths[0])


@needs_dask
def test_joblib_dask_backend_survives_a_killed_worker(tmp_path):
    """An item whose Dask worker dies (os._exit in native-like fashion) becomes
    a WorkerDiedError row; the batch neither hangs (joblib's own Dask backend
    would wait forever) nor loses the other rows."""
    import dask
    import joblib
    from dask.distributed import Client, LocalCluster

    from leukfeat import segment

    images = list(make_cells(7, size=64, random_state=2).images)
    # the item that kills; 8 items on one thread go in batches of 2, so its
    # batch partner (item 4) is lost with it and must be rerun alone
    images.insert(5, np.full((77, 64, 3), 200, np.uint8))
    good = [i for i in range(len(images)) if i != 5]

    def killer(image):
        import os

        if image.shape[0] == 77:
            os._exit(1)
        return segment.segment(image)

    fx = FeatureExtractor(groups=("shape",), segmenter=killer, n_jobs=2, on_error="nan")
    reference = FeatureExtractor(groups=("shape",), n_jobs=1).fit_transform(
        [images[i] for i in good])
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), \
            LocalCluster(n_workers=1, processes=True, threads_per_worker=1,
                         dashboard_address=":0") as cluster, Client(cluster), \
            joblib.parallel_config(backend="dask"), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        out = fx.fit_transform(images)
    assert [e["index"] for e in fx.errors_] == [5]
    assert fx.errors_[0]["error_type"] == "WorkerDiedError"
    assert np.isnan(out[5]).all()
    np.testing.assert_array_equal(out[good], reference)


@needs_dask
def test_relative_paths_reach_the_workers(client, paths, expected, tmp_path, monkeypatch):
    """A worker runs in its own working directory: relative paths given in this
    one are sent made absolute (joblib backend, chunked and dask DataFrame)."""
    import joblib

    from leukfeat import dask as lfdask
    from leukfeat import stream

    X, names = expected
    root = Path(paths[0]).parent
    monkeypatch.chdir(root)
    rel = [os.path.relpath(p) for p in paths]
    assert not Path(rel[0]).is_absolute()
    fx = FeatureExtractor(groups=GROUPS, n_jobs=2, on_error="nan")
    with joblib.parallel_config(backend="dask"), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        np.testing.assert_array_equal(fx.fit_transform(rel), X)
        out = tmp_path / "rel.parquet"
        stream.extract_to_parquet(rel, out, extractor=FeatureExtractor(groups=GROUPS),
                                  chunk_size=5, client=client)
    np.testing.assert_array_equal(stream.read_parquet(out)[names].to_numpy(), X)
    # on a cluster the path column holds the absolute paths the workers read
    assert stream.read_parquet(out)["path"].tolist() == [os.path.abspath(p) for p in rel]
    ddf = lfdask.extract_features(rel, extractor=FeatureExtractor(groups=GROUPS), chunk_size=5)
    np.testing.assert_array_equal(ddf.compute().sort_index()[names].to_numpy(), X)
