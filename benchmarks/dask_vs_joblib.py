"""Issue #31: the same extraction through joblib, resumable Parquet parts and a Dask cluster.

On the 3,256 Taleghani fields (``$LEUKFEAT_SHARED_DATA`` or ``../shared/data``
beside the checkout), default ``FeatureExtractor``, 2 worker processes each:

* ``FeatureExtractor(n_jobs=2).transform(paths)`` (joblib, loky);
* ``leukfeat.stream.extract_to_parquet(paths, DIR, chunk_size=1000)`` with
  the same extractor (parts written one chunk at a time);
* ``extract_to_parquet(..., client=Client(LocalCluster(2 processes, 1 thread)))``
  (what ``leukfeat extract --out DIR.parquet --scheduler ADDRESS`` runs);
* ``FeatureExtractor(n_jobs=2)`` under ``joblib.parallel_config(backend="dask")``.

Warm-up (numba cache load, imports, worker start) is excluded: every
setting first runs on 64 images. Prints a Markdown table; the features of
every setting are checked equal to the joblib run (``np.array_equal``).

    python benchmarks/dask_vs_joblib.py [--limit N]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np


def _shared() -> Path:
    env = os.environ.get("LEUKFEAT_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=None)
    args = ap.parse_args()
    import joblib
    from dask.distributed import Client, LocalCluster

    from leukfeat.io import list_images
    from leukfeat.stream import extract_to_parquet, read_parquet
    from leukfeat.transformers import FeatureExtractor

    paths = [str(p) for p in list_images(_shared() / "taleghani-all")]
    if args.limit:
        paths = paths[:: max(1, len(paths) // args.limit)][: args.limit]
    warm = paths[:64]
    rows = []
    warnings.simplefilter("ignore", UserWarning)

    def timed(what, fn):
        fn(warm)
        load = os.getloadavg()[0]
        t0 = time.perf_counter()
        X = fn(paths)
        dt = time.perf_counter() - t0
        rows.append((what, dt, len(paths) / dt, load))
        return X

    fx = FeatureExtractor(n_jobs=2, on_error="nan")
    names = list(fx.fit(paths[:1]).get_feature_names_out())
    ref = timed("joblib (loky), FeatureExtractor(n_jobs=2)", lambda p: fx.fit_transform(p))

    def parts(p):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "f.parquet"
            extract_to_parquet(p, out, extractor=fx, chunk_size=1000)
            return read_parquet(out)[names].to_numpy(float)

    X = timed("extract_to_parquet, chunks of 1000, n_jobs=2", parts)
    same = [np.array_equal(X, ref, equal_nan=True)]
    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        X = timed("extract_to_parquet(client=LocalCluster 2 x 1 thread), chunks of 256",
                  lambda p: _cluster_parts(p, client, fx, names))
        same.append(np.array_equal(X, ref, equal_nan=True))
        with joblib.parallel_config(backend="dask"):
            X = timed("FeatureExtractor(n_jobs=2) under parallel_config(backend='dask')",
                      lambda p: fx.fit_transform(p))
        same.append(np.array_equal(X, ref, equal_nan=True))
    print(f"{len(paths)} Taleghani fields, default extractor; load = 1-min load at start\n")
    print("| setting | wall s | images/s | load |\n|---|---|---|---|")
    for what, dt, ips, load in rows:
        print(f"| {what} | {dt:.1f} | {ips:.0f} | {load:.2f} |")
    print(f"\nfeatures equal to the joblib run: {all(same)} ({same})")


def _cluster_parts(p, client, fx, names):
    from leukfeat.stream import extract_to_parquet, read_parquet

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "f.parquet"
        extract_to_parquet(p, out, extractor=fx, chunk_size=256, client=client)
        return read_parquet(out)[names].to_numpy(float)


if __name__ == "__main__":
    main()
