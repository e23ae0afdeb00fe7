"""Extraction speed against the decode floor, every-cell cost, flat memory (issue #31).

Run from the repository root::

    python benchmarks/scale_extraction.py                      # everything, ~15-20 min
    python benchmarks/scale_extraction.py --limit 200          # smoke test, ~2 min
    python benchmarks/scale_extraction.py --parts decode,default,every_cell,memory

Parts (``--parts``, comma-separated; default all of them):

``decode``
    Decode-only time of the 3,256 Taleghani JPEG fields (224x224):
    :func:`leukfeat.io.read_image` on every file, in this process
    (``n_jobs=1``) and in two joblib/loky worker processes (``n_jobs=2``,
    chunks of 32 paths, only a checksum sent back). The files are read once
    beforehand so that every figure is taken with the page cache warm.
``default``
    ``FeatureExtractor(n_jobs=j, on_error="nan").transform(paths)`` with the
    default parameters (``nucleus_anchored``, largest cell, 428 features) on
    the same files, ``j`` = 1 and 2: images/s, ms per image and the ratio to
    decode-only time with the same ``n_jobs``. Warm-up excluded: before each
    timed run the same extractor transforms a few images (8 with one job, 64
    with two, which also starts the workers), so numba's compilation or
    cache load, imports and worker start-up are not timed.
``every_cell``
    Every-cell measurement on Taleghani and on the 120 BCCD dev fields
    (640x480): ``FeatureExtractor(cell="median")`` (one row per field, the
    median over its cells) and ``FeatureExtractor().transform_cells`` (one
    row per cell), with ``n_jobs`` 1 and 2; cells per second (cells = the
    rows of ``transform_cells`` with a cell) and the ratio to the default
    extraction's time on the same images and ``n_jobs`` (taken from the
    ``default`` part for Taleghani when it ran, measured here otherwise).
``crops``
    "PBC-like" single-cell crops of 360x363 pixels (width x height), which
    the shared data do not have: the 50 ``zheng-wbc-d2-dev`` 300x300 images
    resized with ``cv2.resize`` (bilinear) and written as JPEG (OpenCV's
    default quality 95) into ``--crops-dir`` (default
    ``/tmp/leukfeat-bench-crops``, outside the repository; made once). The
    list is repeated ``--crop-repeat`` times (default 4, i.e. 200 items per
    round); decode-only and default extraction ms per image on one core.
``memory``
    Peak resident memory of ``FeatureExtractor(n_jobs=2,
    on_error="nan").transform(paths)`` over 2,000 and 20,000 items (the
    Taleghani paths repeated), each in a fresh Python subprocess (started
    through ``sh``, which forks it: Linux carries a process's
    ``ru_maxrss`` across ``exec``, so a child exec'd straight from this
    large process would report this process's peak). Figures: the peak of
    the main process and of each loky worker (the kernel's high-water mark
    ``VmHWM`` from ``/proc``, read at the end of the run while the workers
    live; ``getrusage`` ``ru_maxrss`` of the subprocess and, after the
    workers are shut down and reaped, of its children are kept in the JSON,
    the latter inflated because loky's workers are exec'd from the main
    process), and the peak of the whole process tree, sampled every 50 ms
    from ``/proc`` as the sum of ``VmRSS`` (shared library pages counted
    once per process) and of ``Pss`` (shared pages divided among the
    processes). The extractor returns the full float64 matrix (20,000 x 428
    x 8 bytes = 65 MiB), which is part of what is measured, as are the
    per-item rows it gathers before filling it.
``profile``
    cProfile in this process, one core, after warm-up: (a) the default
    extraction of ``--profile-images`` (300) Taleghani fields, (b)
    ``cell="median"`` on the same fields, (c) the 360x363 crops. Written as
    ``profile_<case>.prof`` and as text sorted by cumulative and by own time
    (``profile_<case>.txt``); the table gives the share of the profiled time
    of each stage (cumulative time of the stage's entry function) and the
    functions with the most own time. cProfile adds a cost per Python call,
    so shares of Python-heavy stages are somewhat inflated; numba kernels
    and OpenCV calls show as one call each.

Noise: the machine has 2 cores and other work may run on it. Beside every
timing the script records the 1-minute load average (``os.getloadavg``, what
``uptime`` prints) at the start and end of the run and the CPU time used by
*other* processes during the run (``/proc/stat`` busy time minus this
process tree's own, in cores). A figure is flagged ``noisy`` when the
1-minute load at its start was above 1.5 or other processes used more than
0.5 core during it. The load average includes this benchmark's own previous
run, so before each timing the script waits (at most ``--settle`` seconds,
default 20) for the 1-minute load to fall below 1.5. Each extraction figure
is the best of ``--repeats`` runs (default 2; decode: best of 3);
every-cell runs once per configuration unless ``--every-cell-repeats``.

Outputs (``--out``, default ``benchmarks/output/scale_extraction``,
git-ignored): ``results.md`` (the printed tables), ``results.json`` (every
run with its load figures, machine and git state) and the profiles.
``--limit N`` keeps N Taleghani fields (evenly spaced over the sorted
files, so every class is represented), N BCCD fields and N crops, memory
runs of N and 10 N items and profiles of at most N fields.
"""

from __future__ import annotations

import os

# one thread per process everywhere (set before numpy, OpenCV and numba load);
# the parallelism measured is over processes
os.environ["OMP_NUM_THREADS"] = "1"
os.environ["OPENBLAS_NUM_THREADS"] = "1"
os.environ["MKL_NUM_THREADS"] = "1"
os.environ["NUMBA_NUM_THREADS"] = "1"

import argparse  # noqa: E402
import cProfile  # noqa: E402
import datetime  # noqa: E402
import hashlib  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import pstats  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

cv2.setNumThreads(1)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("LEUKFEAT_SHARED_DATA", ROOT.parent / "shared" / "data"))
DEFAULT_OUT = ROOT / "benchmarks" / "output" / "scale_extraction"
DEFAULT_CROPS = Path("/tmp/leukfeat-bench-crops")
PARTS = ("decode", "default", "every_cell", "crops", "memory", "profile")
CROP_SIZE = (360, 363)            # (width, height), as cv2.resize wants it
LOAD_NOISY = 1.5                  # 1-minute load above which a figure is noisy
OTHER_NOISY = 0.5                 # cores used by other processes above which too
_CLK = os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------- #
# machine state: load, CPU used by others, resident memory of a process tree
# --------------------------------------------------------------------------- #

def uptime_text() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "load average: {:.2f}, {:.2f}, {:.2f}".format(*os.getloadavg())


def _tree(root: int) -> list:
    """``root`` and its descendants (from /proc/<pid>/task/*/children)."""
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                try:
                    with open(f"/proc/{pid}/task/{task}/children") as fh:
                        todo += [int(c) for c in fh.read().split()]
                except OSError:
                    pass
        except OSError:
            pass
    return out


def _proc_stat(pid: int):
    """(utime + stime, cutime + cstime) of a process in clock ticks."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0, 0
    return int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14])


def _cpu_snapshot():
    """(machine busy ticks, this process tree's ticks incl. reaped children)."""
    with open("/proc/stat") as fh:
        vals = [int(v) for v in fh.readline().split()[1:9]]
    busy = sum(vals) - vals[3] - vals[4]           # minus idle and iowait
    me = os.getpid()
    own = sum(_proc_stat(p)[0] for p in _tree(me)) + _proc_stat(me)[1]
    return busy, own


def _rss_kb(pid: int, field: str = "VmRSS") -> int:
    """Resident memory of a process in kB (``field="VmHWM"``: its peak)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _pss_kb(pid: int) -> int:
    """Proportional set size: shared pages divided among the processes sharing them."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def settle(max_wait: float) -> float:
    """Wait until the 1-minute load is below LOAD_NOISY (at most ``max_wait`` s)."""
    t0 = time.perf_counter()
    while os.getloadavg()[0] > LOAD_NOISY and time.perf_counter() - t0 < max_wait:
        time.sleep(1.0)
    return time.perf_counter() - t0


def timed(fn, repeats: int, settle_s: float):
    """Run ``fn`` ``repeats`` times; (last result, best run's record, every run)."""
    runs, result = [], None
    for _ in range(max(1, repeats)):
        waited = settle(settle_s)
        load0 = os.getloadavg()[0]
        b0, o0 = _cpu_snapshot()
        t0 = time.perf_counter()
        result = fn()
        wall = time.perf_counter() - t0
        b1, o1 = _cpu_snapshot()
        other = max(0.0, ((b1 - b0) - (o1 - o0)) / _CLK / wall)
        run = {"wall_s": wall, "load1_start": load0, "load1_end": os.getloadavg()[0],
               "other_cores": other, "settled_s": waited}
        run["noisy"] = bool(load0 > LOAD_NOISY or other > OTHER_NOISY)
        runs.append(run)
    best = dict(min(runs, key=lambda r: r["wall_s"]))
    best["n_runs"] = len(runs)
    best["noisy_any"] = any(r["noisy"] for r in runs)
    return result, best, runs


# --------------------------------------------------------------------------- #
# data
# --------------------------------------------------------------------------- #

def spread(paths: list, limit) -> list:
    """``limit`` paths evenly spaced over the sorted list (all without a limit)."""
    if limit is None or limit >= len(paths):
        return paths
    idx = np.linspace(0, len(paths) - 1, limit).round().astype(int)
    return [paths[i] for i in idx]


def taleghani_paths(data: Path) -> list:
    return sorted(str(p) for p in (data / "taleghani-all").glob("*/*.jpg"))


def bccd_paths(data: Path) -> list:
    return sorted(str(p) for p in (data / "bccd-dev" / "JPEGImages").glob("*.jpg"))


def make_crops(data: Path, folder: Path) -> list:
    """The 360x363 JPEG crops made from zheng-wbc-d2-dev (made once, reused)."""
    sources = sorted((data / "zheng-wbc-d2-dev").glob("*.bmp"))
    if not sources:
        return []
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for src in sources:
        dst = folder / f"{src.stem}_{CROP_SIZE[0]}x{CROP_SIZE[1]}.jpg"
        if not dst.is_file():
            bgr = cv2.imread(str(src), cv2.IMREAD_COLOR)
            big = cv2.resize(bgr, CROP_SIZE, interpolation=cv2.INTER_LINEAR)
            tmp = dst.with_suffix(".tmp.jpg")
            if not cv2.imwrite(str(tmp), big):
                raise OSError(f"could not write {tmp}")
            os.replace(tmp, dst)
        out.append(str(dst))
    return out


def warm_page_cache(paths) -> None:
    for p in dict.fromkeys(paths):
        with open(p, "rb") as fh:
            fh.read()


# --------------------------------------------------------------------------- #
# the measured work
# --------------------------------------------------------------------------- #

def _decode_chunk(chunk) -> int:
    from leukfeat.io import read_image

    return sum(int(read_image(p)[0, 0, 0]) for p in chunk)


def decode_all(paths, n_jobs: int) -> int:
    if n_jobs == 1:
        return _decode_chunk(paths)
    from joblib import Parallel, delayed

    chunks = [paths[i:i + 32] for i in range(0, len(paths), 32)]
    return sum(Parallel(n_jobs=n_jobs)(delayed(_decode_chunk)(c) for c in chunks))


def extractor(n_jobs: int, cell="largest"):
    from leukfeat.transformers import FeatureExtractor

    return FeatureExtractor(cell=cell, n_jobs=n_jobs, on_error="nan")


def warm(fe, paths, n_jobs, cells=False) -> None:
    sample = paths[:8 if n_jobs == 1 else 64]
    fe.fit(sample)
    (fe.transform_cells if cells else fe.transform)(sample)


def _rate(n, wall):
    return n / wall if wall > 0 else float("nan")


# --------------------------------------------------------------------------- #
# parts
# --------------------------------------------------------------------------- #

def part_decode(res, paths, jobs, args):
    warm_page_cache(paths)
    for j in jobs:
        decode_all(paths[:64], j)                         # imports, worker start
        _, best, runs = timed(lambda p=paths, j=j: decode_all(p, j), 3, args.settle)
        res["decode"].append({"set": "taleghani", "n_jobs": j, "images": len(paths),
                              **best, "runs": runs})
        print(f"  decode taleghani n_jobs={j}: {best['wall_s']:.2f} s, "
              f"{1e3 * best['wall_s'] / len(paths):.3f} ms/image", flush=True)


def part_default(res, paths, jobs, args):
    warm_page_cache(paths)
    for j in jobs:
        fe = extractor(j)
        warm(fe, paths, j)
        X, best, runs = timed(lambda fe=fe, p=paths: fe.transform(p), args.repeats,
                                     args.settle)
        res["default"].append({"set": "taleghani", "n_jobs": j, "images": len(paths),
                               "errors": len(fe.errors_),
                               "rows_all_nan": int(np.isnan(X).all(axis=1).sum()),
                               "n_features": int(X.shape[1]), **best, "runs": runs})
        print(f"  default taleghani n_jobs={j}: {best['wall_s']:.2f} s, "
              f"{1e3 * best['wall_s'] / len(paths):.2f} ms/image", flush=True)


def part_every_cell(res, sets, jobs, args):
    for name, paths in sets.items():
        if not paths:
            continue
        warm_page_cache(paths)
        for j in jobs:
            if not any(r["set"] == name and r["n_jobs"] == j and r["images"] == len(paths)
                       for r in res["decode"]):
                decode_all(paths[:64], j)
                _, best, runs = timed(lambda p=paths, j=j: decode_all(p, j), 3, args.settle)
                res["decode"].append({"set": name, "n_jobs": j, "images": len(paths),
                                      **best, "runs": runs})
            have = [r for r in res["default"] if r["set"] == name and r["n_jobs"] == j
                    and r["images"] == len(paths)]
            if not have:
                fe = extractor(j)
                warm(fe, paths, j)
                X, best, runs = timed(lambda fe=fe, p=paths: fe.transform(p), args.repeats,
                                     args.settle)
                res["default"].append({"set": name, "n_jobs": j, "images": len(paths),
                                       "errors": len(fe.errors_),
                                       "rows_all_nan": int(np.isnan(X).all(axis=1).sum()),
                                       "n_features": int(X.shape[1]), **best, "runs": runs})
            fe = extractor(j)
            warm(fe, paths, j, cells=True)
            table, best, runs = timed(lambda fe=fe, p=paths: fe.transform_cells(p),
                                      args.every_cell_repeats, args.settle)
            n_cells = int(table["cell_label"].notna().sum())
            res["cells"][name] = n_cells
            res["every_cell"].append({"set": name, "mode": "transform_cells", "n_jobs": j,
                                      "images": len(paths), "cells": n_cells,
                                      "errors": len(fe.errors_), **best, "runs": runs})
            print(f"  transform_cells {name} n_jobs={j}: {best['wall_s']:.2f} s, "
                  f"{n_cells} cells", flush=True)
            fe = extractor(j, cell="median")
            warm(fe, paths, j)
            X, best, runs = timed(lambda fe=fe, p=paths: fe.transform(p), args.every_cell_repeats,
                                  args.settle)
            res["every_cell"].append({"set": name, "mode": 'cell="median"', "n_jobs": j,
                                      "images": len(paths), "cells": n_cells,
                                      "errors": len(fe.errors_), **best, "runs": runs})
            print(f"  cell=median {name} n_jobs={j}: {best['wall_s']:.2f} s", flush=True)


def part_crops(res, crops, args):
    if not crops:
        res["skipped"].append("crops: zheng-wbc-d2-dev not found")
        return
    items = crops * args.crop_repeat
    warm_page_cache(crops)
    decode_all(items[:8], 1)
    _, best, runs = timed(lambda: decode_all(items, 1), 3, args.settle)
    res["crops"].append({"what": "decode", "n_jobs": 1, "images": len(items),
                         "distinct": len(crops), **best, "runs": runs})
    fe = extractor(1)
    warm(fe, items, 1)
    X, best, runs = timed(lambda: fe.transform(items), args.repeats, args.settle)
    res["crops"].append({"what": "default extraction", "n_jobs": 1, "images": len(items),
                         "distinct": len(crops), "errors": len(fe.errors_),
                         "rows_all_nan": int(np.isnan(X[:len(crops)]).all(axis=1).sum()),
                         **best, "runs": runs})
    fe = extractor(1)
    warm(fe, items, 1, cells=True)
    table = fe.transform_cells(crops)
    res["crops_cells"] = int(table["cell_label"].notna().sum())
    print(f"  crops: decode {1e3 * res['crops'][0]['wall_s'] / len(items):.2f} ms/image, "
          f"extraction {1e3 * best['wall_s'] / len(items):.2f} ms/image", flush=True)


def memory_child(n_items: int, data: Path, limit) -> None:
    """Body of the fresh subprocess of the memory part: prints one JSON line."""
    from joblib.externals.loky import get_reusable_executor

    from leukfeat.transformers import FeatureExtractor

    paths = spread(taleghani_paths(data), limit)
    items = (paths * math.ceil(n_items / len(paths)))[:n_items]
    fe = FeatureExtractor(n_jobs=2, on_error="nan").fit(items[:2])
    rss_before = _rss_kb(os.getpid())
    t0 = time.perf_counter()
    X = fe.transform(items)
    wall = time.perf_counter() - t0
    rss_after = _rss_kb(os.getpid())
    shape, nbytes, n_nan = X.shape, X.nbytes, int(np.isnan(X).all(axis=1).sum())
    del X
    # peaks from the kernel's high-water marks, read while the workers live
    main_hwm = _rss_kb(os.getpid(), "VmHWM")
    workers = {p: _rss_kb(p, "VmHWM") for p in _tree(os.getpid())[1:]}
    get_reusable_executor().shutdown(wait=True)      # reap the workers: RUSAGE_CHILDREN
    me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({"items": n_items, "wall_s": wall, "shape": list(shape),
                      "matrix_mb": nbytes / 2**20, "rows_all_nan": n_nan,
                      "errors": len(fe.errors_), "rss_before_transform_mb": rss_before / 1024,
                      "rss_after_transform_mb": rss_after / 1024,
                      "main_peak_mb": main_hwm / 1024,
                      "worker_peaks_mb": sorted(v / 1024 for v in workers.values()),
                      "largest_child_peak_mb": max(workers.values(), default=0) / 1024,
                      "ru_maxrss_self_mb": me / 1024, "ru_maxrss_children_mb": kids / 1024}))


def _sample_tree(root: int, done: threading.Event, peak: dict) -> None:
    """Record in ``peak`` the largest summed RSS and PSS of ``root``'s
    descendants (``root`` itself, the shell, left out) until ``done``."""
    while not done.is_set():
        pids = _tree(root)[1:]
        total = sum(_rss_kb(p) for p in pids)
        pss = sum(_pss_kb(p) for p in pids)
        if total > peak["tree_kb"]:
            peak["tree_kb"], peak["procs"] = total, len(pids)
        peak["pss_kb"] = max(peak["pss_kb"], pss)
        time.sleep(0.05)


def part_memory(res, args):
    for n in args.memory_items:
        settle(args.settle)
        load0 = os.getloadavg()[0]
        cmd = [sys.executable, str(Path(__file__).resolve()), "--memory-child", str(n),
               "--data", str(args.data)]
        if args.limit is not None:
            cmd += ["--limit", str(args.limit)]
        # through a shell that forks (not execs) the child: a process exec'd
        # straight from this one would start with this process's peak as its
        # ru_maxrss (Linux keeps it across exec)
        proc = subprocess.Popen(["/bin/sh", "-c", '"$@"; exit $?', "sh", *cmd],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        peak = {"tree_kb": 0, "procs": 0, "pss_kb": 0}
        done = threading.Event()
        th = threading.Thread(target=_sample_tree, args=(proc.pid, done, peak), daemon=True)
        th.start()
        out, err = proc.communicate()
        done.set()
        th.join()
        if proc.returncode != 0:
            res["memory"].append({"items": n, "error": err[-2000:]})
            print(f"  memory {n}: subprocess failed\n{err[-2000:]}", flush=True)
            continue
        rec = json.loads(out.strip().splitlines()[-1])
        rec.update({"tree_peak_mb": peak["tree_kb"] / 1024, "tree_procs_at_peak": peak["procs"],
                    "tree_pss_peak_mb": peak["pss_kb"] / 1024,
                    "load1_start": load0, "load1_end": os.getloadavg()[0]})
        rec["noisy"] = bool(load0 > LOAD_NOISY)
        res["memory"].append(rec)
        print(f"  memory {n} items: main {rec['main_peak_mb']:.0f} MB, tree "
              f"{rec['tree_peak_mb']:.0f} MB, {rec['wall_s']:.1f} s", flush=True)


#: (label, file suffix, function name): the entry function of each stage.
STAGES = (
    ("read_image (decode)", "leukfeat/io.py", "read_image"),
    ("  imdecode", "", "<imdecode>"),
    ("segment.segment", "leukfeat/segment/_methods.py", "segment"),
    ("  nucleus_anchored", "leukfeat/segment/_methods.py", "nucleus_anchored"),
    ("all per-cell groups of a cell (_measure_cell)", "leukfeat/extract/__init__.py",
     "_measure_cell"),
    ("per-cell crop (_crop_box)", "leukfeat/segment/_container.py", "_crop_box"),
    ("crop grey (CellCrop.gray)", "leukfeat/extract/_registry.py", "gray"),
    ("texture (_texture_values)", "leukfeat/extract/texture.py", "_texture_values"),
    ("shape (_shape_values)", "leukfeat/extract/shape.py", "_shape_values"),
    ("colour (_colour_values)", "leukfeat/extract/colour.py", "_colour_values"),
    ("edges (_edge_values)", "leukfeat/extract/edges.py", "_edge_values"),
    ("field features", "leukfeat/extract/field.py", "_field_features"),
    ("cell_geometry", "leukfeat/segment/_container.py", "cell_geometry"),
    ("median over cells", "leukfeat/extract/__init__.py", "_nanmedian_columns"),
)


def _short(key) -> str:
    file, line, func = key
    if file == "~":
        return func
    parts = Path(file).parts
    for anchor in ("leukfeat", "site-packages"):
        if anchor in parts:
            parts = parts[parts.index(anchor) + (anchor == "site-packages"):]
            break
    return f"{'/'.join(parts[-3:])}:{line}({func})"


def profile_case(name, fn, out: Path, top: int) -> dict:
    pr = cProfile.Profile()
    t0 = time.perf_counter()
    pr.enable()
    fn()
    pr.disable()
    wall = time.perf_counter() - t0
    pr.dump_stats(str(out / f"profile_{name}.prof"))
    st = pstats.Stats(pr)
    total = st.total_tt
    text = io.StringIO()
    for order in ("cumulative", "tottime"):
        text.write(f"==== {name}: sorted by {order} ====\n")
        pstats.Stats(pr, stream=text).sort_stats(order).print_stats(top)
    (out / f"profile_{name}.txt").write_text(text.getvalue())
    stages = []
    for label, suffix, func in STAGES:
        ct, calls = 0.0, 0
        for (file, _, f), (cc, nc, tt, cum, callers) in st.stats.items():
            if f == func and file.replace(os.sep, "/").endswith(suffix):
                ct += cum
                calls += nc
        if calls:
            stages.append({"stage": label, "cum_s": ct, "share": ct / total, "calls": calls})
    by_tt = sorted(st.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:top]
    tops = [{"function": _short(k), "tottime_s": v[2], "share": v[2] / total, "calls": v[1]}
            for k, v in by_tt]
    by_ct = sorted(st.stats.items(), key=lambda kv: kv[1][3], reverse=True)
    tops_ct = [{"function": _short(k), "cum_s": v[3], "share": v[3] / total, "calls": v[1]}
               for k, v in by_ct if "leukfeat" in k[0]][:top]
    own_c = sum(v[2] for k, v in st.stats.items() if k[0] == "~")
    own_numba = sum(v[2] for k, v in st.stats.items() if k[0].endswith("_kernels.py"))
    return {"case": name, "wall_s": wall, "profiled_s": total, "calls": st.total_calls,
            "own_share_builtin": own_c / total, "own_share_numba": own_numba / total,
            "stages": stages, "top_tottime": tops, "top_cumulative_leukfeat": tops_ct}


def part_profile(res, paths, crops, args):
    n = args.profile_images if args.limit is None else min(args.profile_images, args.limit)
    sample = spread(paths, n)
    warm_page_cache(sample)
    cases = [("a_default", sample, "largest"), ("b_median", sample, "median")]
    if crops:
        cases.append(("c_crops_360x363", crops * args.crop_repeat, "largest"))
    for name, items, cell in cases:
        fe = extractor(1, cell=cell)
        warm(fe, items, 1)
        rec = profile_case(name, lambda fe=fe, it=items: fe.transform(it), args.out,
                           args.profile_top)
        rec.update({"images": len(items), "cell": cell, "load1": os.getloadavg()[0]})
        res["profile"].append(rec)
        print(f"  profile {name}: {rec['profiled_s']:.2f} s profiled "
              f"({1e3 * rec['profiled_s'] / len(items):.2f} ms/image under cProfile)",
              flush=True)


# --------------------------------------------------------------------------- #
# report
# --------------------------------------------------------------------------- #

def _load_cell(r) -> str:
    flag = " noisy" if r.get("noisy") else ""
    other = f", others {r['other_cores']:.2f} core" if "other_cores" in r else ""
    return f"{r['load1_start']:.2f}→{r['load1_end']:.2f}{other}{flag}"


def report(res) -> str:
    lines = []
    dec = {(r["set"], r["n_jobs"]): r for r in res["decode"]}
    dflt = {(r["set"], r["n_jobs"]): r for r in res["default"]}
    if res["decode"] or res["default"]:
        lines += ["### Decode floor and default extraction", "",
                  "| set | what | n_jobs | images | wall s | images/s | ms/image | × decode "
                  "| load 1 min (start→end), other processes |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for kind, rows in (("decode only", res["decode"]), ("default extraction",
                                                             res["default"])):
            for r in rows:
                d = dec.get((r["set"], r["n_jobs"]))
                ratio = (f"{r['wall_s'] / d['wall_s']:.1f}x" if d and kind != "decode only"
                         and d["images"] == r["images"] else "")
                lines.append(f"| {r['set']} | {kind} | {r['n_jobs']} | {r['images']} | "
                             f"{r['wall_s']:.2f} | {_rate(r['images'], r['wall_s']):.0f} | "
                             f"{1e3 * r['wall_s'] / r['images']:.2f} | {ratio} | "
                             f"{_load_cell(r)} |")
        lines.append("")
    if res["every_cell"]:
        lines += ["### Every-cell measurement", "",
                  "| set | mode | n_jobs | images | cells | wall s | cells/s | ms/image | "
                  "ms/cell | × default | × decode | load 1 min (start→end), other processes |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in res["every_cell"]:
            d = dflt.get((r["set"], r["n_jobs"]))
            dc = dec.get((r["set"], r["n_jobs"]))
            x_def = f"{r['wall_s'] / d['wall_s']:.1f}x" if d else ""
            x_dec = f"{r['wall_s'] / dc['wall_s']:.0f}x" if dc else ""
            lines.append(f"| {r['set']} | {r['mode']} | {r['n_jobs']} | {r['images']} | "
                         f"{r['cells']} | {r['wall_s']:.2f} | "
                         f"{_rate(r['cells'], r['wall_s']):.0f} | "
                         f"{1e3 * r['wall_s'] / r['images']:.2f} | "
                         f"{1e3 * r['wall_s'] / max(r['cells'], 1):.2f} | {x_def} | {x_dec} | "
                         f"{_load_cell(r)} |")
        for name in sorted({r["set"] for r in res["every_cell"]}):
            for j in sorted({r["n_jobs"] for r in res["every_cell"] if r["set"] == name}):
                d = dflt.get((name, j))
                if d:
                    lines.append(f"\ndefault on {name}, n_jobs={j}: {d['wall_s']:.2f} s "
                                 f"({1e3 * d['wall_s'] / d['images']:.2f} ms/image, "
                                 f"{_load_cell(d)}); {res['cells'].get(name, 0)} cells in "
                                 f"{d['images']} fields "
                                 f"({res['cells'].get(name, 0) / d['images']:.1f} per field)")
        lines.append("")
    if res["crops"]:
        dec_c = res["crops"][0]
        lines += ["### 360x363 single-cell crops (zheng-wbc-d2-dev resized), one core", "",
                  "| what | items | wall s | ms/image | × decode | load 1 min (start→end), "
                  "other processes |", "|---|---|---|---|---|---|"]
        for r in res["crops"]:
            ratio = f"{r['wall_s'] / dec_c['wall_s']:.1f}x" if r is not dec_c else ""
            lines.append(f"| {r['what']} | {r['images']} ({r['distinct']} distinct) | "
                         f"{r['wall_s']:.2f} | {1e3 * r['wall_s'] / r['images']:.2f} | "
                         f"{ratio} | {_load_cell(r)} |")
        if "crops_cells" in res:
            lines.append(f"\n{res['crops_cells']} cells found in the {dec_c['distinct']} crops")
        lines.append("")
    mem = [r for r in res["memory"] if "error" not in r]
    if res["memory"]:
        lines += ["### Peak resident memory, default extractor, n_jobs=2, fresh subprocess", "",
                  "| items | wall s | main process peak MB | worker peaks MB | "
                  "process tree peak RSS MB (sampled) | process tree peak PSS MB (sampled) | "
                  "result matrix MB | main RSS before transform MB | load 1 min (start→end) |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in res["memory"]:
            if "error" in r:
                lines.append(f"| {r['items']} | failed | | | | | | | |")
                continue
            lines.append(f"| {r['items']} | {r['wall_s']:.1f} | {r['main_peak_mb']:.0f} | "
                         f"{', '.join(f'{v:.0f}' for v in r['worker_peaks_mb'])} | "
                         f"{r['tree_peak_mb']:.0f} | "
                         f"{r['tree_pss_peak_mb']:.0f} | "
                         f"{r['matrix_mb']:.0f} | {r['rss_before_transform_mb']:.0f} | "
                         f"{r['load1_start']:.2f}→{r['load1_end']:.2f}"
                         f"{' noisy' if r['noisy'] else ''} |")
        if len(mem) >= 2:
            a, b = mem[0], mem[-1]
            lines.append(f"\n{b['items']} / {a['items']} items: main process peak "
                         f"{b['main_peak_mb'] / a['main_peak_mb']:.2f}x, process tree peak "
                         f"RSS {b['tree_peak_mb'] / a['tree_peak_mb']:.2f}x, PSS "
                         f"{b['tree_pss_peak_mb'] / a['tree_pss_peak_mb']:.2f}x")
        lines.append("")
    for p in res["profile"]:
        lines += [f"### Profile {p['case']}: {p['images']} images, cell={p['cell']!r}, one core",
                  "", f"{p['profiled_s']:.2f} s under cProfile "
                      f"({1e3 * p['profiled_s'] / p['images']:.2f} ms/image), load "
                      f"{p['load1']:.2f}; {p['calls'] / p['images']:.0f} Python-visible calls "
                      f"per image; own time in C functions (OpenCV, NumPy methods) "
                      f"{100 * p['own_share_builtin']:.0f} %, in numba kernels "
                      f"{100 * p['own_share_numba']:.0f} %, in Python functions (with the "
                      f"NumPy operators they run) {100 * (1 - p['own_share_builtin'] - p['own_share_numba']):.0f} %", "",
                  "| stage (entry function, cumulative) | s | share | calls |",
                  "|---|---|---|---|"]
        lines += [f"| {s['stage']} | {s['cum_s']:.3f} | {100 * s['share']:.1f} % | "
                  f"{s['calls']} |" for s in p["stages"]]
        lines += ["", "| function (own time) | s | share | calls |", "|---|---|---|---|"]
        lines += [f"| `{t['function']}` | {t['tottime_s']:.3f} | {100 * t['share']:.1f} % | "
                  f"{t['calls']} |" for t in p["top_tottime"][:15]]
        lines.append("")
    if res["skipped"]:
        lines += ["Skipped: " + "; ".join(res["skipped"]), ""]
    return "\n".join(lines)


def git_state() -> dict:
    def run(*cmd):
        try:
            return subprocess.run(["git", *cmd], cwd=ROOT, capture_output=True, text=True,
                                  check=True).stdout.rstrip("\n")
        except (OSError, subprocess.CalledProcessError):
            return "unknown"
    import leukfeat

    h = hashlib.sha256()
    for f in sorted(Path(leukfeat.__file__).parent.rglob("*.py")):
        h.update(f.read_bytes())
    dirty = [line[3:] for line in run("status", "--porcelain", "--", "leukfeat").splitlines()]
    return {"commit": run("rev-parse", "--short", "HEAD"), "leukfeat_dirty_files": dirty,
            "sources": h.hexdigest()[:12]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA,
                    help="folder holding the shared data sets (default ../shared/data)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    ap.add_argument("--parts", default=",".join(PARTS),
                    help=f"comma-separated parts among {','.join(PARTS)} (default: all)")
    ap.add_argument("--limit", type=int, default=None,
                    help="quick run: N Taleghani/BCCD fields and crops, memory at N and 10 N "
                         "items, profiles of at most N fields")
    ap.add_argument("--jobs", default="1,2", help="n_jobs values (default 1,2)")
    ap.add_argument("--repeats", type=int, default=2,
                    help="runs per extraction figure, best kept (default 2)")
    ap.add_argument("--every-cell-repeats", type=int, default=1,
                    help="runs per every-cell figure (default 1)")
    ap.add_argument("--memory-items", default="2000,20000",
                    help="item counts of the memory part (default 2000,20000)")
    ap.add_argument("--crops-dir", type=Path, default=DEFAULT_CROPS,
                    help="where the 360x363 JPEG crops are written (default %(default)s)")
    ap.add_argument("--crop-repeat", type=int, default=4,
                    help="times the 50 crops are repeated per timed run (default 4)")
    ap.add_argument("--profile-images", type=int, default=300)
    ap.add_argument("--profile-top", type=int, default=40,
                    help="functions listed per profile ordering (default 40)")
    ap.add_argument("--settle", type=float, default=20.0,
                    help="seconds to wait at most, before each timing, for the 1-minute "
                         "load to fall below 1.5 (default 20)")
    ap.add_argument("--memory-child", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.memory_child is not None:
        memory_child(args.memory_child, args.data, args.limit)
        return 0

    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    bad = sorted(set(parts) - set(PARTS))
    if bad:
        ap.error(f"--parts: unknown {bad}; expected some of {','.join(PARTS)}")
    jobs = [int(j) for j in args.jobs.split(",")]
    args.memory_items = [int(n) for n in args.memory_items.split(",")]
    if args.limit is not None:
        args.memory_items = [args.limit, 10 * args.limit]
    args.out.mkdir(parents=True, exist_ok=True)

    import joblib
    import numba

    import leukfeat

    tal = spread(taleghani_paths(args.data), args.limit)
    bccd = spread(bccd_paths(args.data), args.limit)
    crops = []
    if "crops" in parts or "profile" in parts:
        crops = make_crops(args.data, args.crops_dir)
        if args.limit is not None:
            crops = crops[:args.limit]
    if not tal:
        print(f"Taleghani data not found under {args.data}", file=sys.stderr)
        return 1

    res = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
           "command": " ".join(["python", "benchmarks/scale_extraction.py",
                                *(sys.argv[1:] if argv is None else argv)]),
           "machine": {"python": platform.python_version(), "machine": platform.machine(),
                       "cpus": os.cpu_count(), "leukfeat": leukfeat.__version__,
                       "numpy": np.__version__, "opencv": cv2.__version__,
                       "numba": numba.__version__, "joblib": joblib.__version__,
                       **git_state()},
           "uptime_start": uptime_text(), "parts": parts,
           "decode": [], "default": [], "every_cell": [], "cells": {}, "crops": [],
           "memory": [], "profile": [], "skipped": [], "uptime": {}}
    print(f"{res['date']}  {res['uptime_start']}", flush=True)
    dirty = res["machine"]["leukfeat_dirty_files"]
    print(f"leukfeat {leukfeat.__version__} at {res['machine']['commit']} (sources "
          f"{res['machine']['sources']}; {len(dirty)} files under leukfeat/ modified in the "
          "working tree)", flush=True)
    t_start = time.perf_counter()
    for part in PARTS:
        if part not in parts:
            continue
        res["uptime"][part] = uptime_text()
        print(f"[{part}] {res['uptime'][part]}", flush=True)
        if part == "decode":
            part_decode(res, tal, jobs, args)
        elif part == "default":
            part_default(res, tal, jobs, args)
        elif part == "every_cell":
            part_every_cell(res, {"taleghani": tal, "bccd": bccd}, jobs, args)
        elif part == "crops":
            part_crops(res, crops, args)
        elif part == "memory":
            part_memory(res, args)
        elif part == "profile":
            part_profile(res, tal, crops, args)
    res["uptime_end"] = uptime_text()
    res["total_s"] = time.perf_counter() - t_start
    text = (f"# Scale and speed (issue #31)\n\n{res['date']}, {res['command']}\n"
            f"leukfeat {leukfeat.__version__} at {res['machine']['commit']} "
            f"(sources {res['machine']['sources']}; {len(dirty)} files under leukfeat/ "
            f"modified in the working tree), Python {res['machine']['python']}, "
            f"{res['machine']['cpus']} CPUs; uptime at start: {res['uptime_start']}; "
            f"at end: {res['uptime_end']}; {res['total_s']:.0f} s in all\n\n" + report(res))
    print("\n" + text)
    (args.out / "results.md").write_text(text)
    (args.out / "results.json").write_text(json.dumps(res, indent=1, default=float) + "\n")
    print(f"written: {args.out / 'results.md'}, {args.out / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
