"""Texture speed: leukfeat.extract.texture vs mahotas and scikit-image.

Run with::

    python -m pytest benchmarks/test_texture_bench.py --benchmark-only -q

Haralick: both sides compute the (4, 13) Haralick features of the same uint8
image at 256 grey levels (raw values, distance 1) in this process, and give
the same numbers (checked first). Images:

* ``skimage.data.camera()`` resized to 450x450 (``INTER_AREA``; 255 distinct
  grey levels, large flat areas and sharp edges);
* a smooth + noise synthetic 450x450 image (a broad histogram, no flat areas);
* a real Taleghani smear field (224x224 JPEG converted to grey), whole and
  restricted to its Otsu-dark (stained) pixels; skipped when the data set is
  absent.

LBP: :func:`leukfeat.extract.texture.lbp_histogram` (radii 1, 2, 3, i.e.
P = 8, 16, 24, ``uniform``) against ``skimage.feature.local_binary_pattern``
plus a histogram, on a 224x224 crop (the Taleghani field, or the camera).

``test_speedup_ratio`` times both Haralick sides with ``time.perf_counter`` in
one process on one thread (BLAS and OpenCV limited to one thread), prints the
ratio of medians and asserts the issue's target: at least 10x faster than
mahotas on the 450x450 camera image. ``test_lbp_speed`` prints the LBP times
and guards against regressions. The compiled (numba) kernels are loaded or
compiled by the first call (``test_same_results``), outside the timings.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import mahotas
import numpy as np
import pytest
from _timing import median_time
import skimage.data

from leukfeat.extract import texture as T

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "taleghani-all"

CAMERA_450 = cv2.resize(skimage.data.camera(), (450, 450), interpolation=cv2.INTER_AREA)


def _smooth_noise_450(seed=0):
    rng = np.random.default_rng(seed)
    small = rng.random((8, 8)).astype(np.float32)
    big = cv2.resize(small, (450, 450), interpolation=cv2.INTER_CUBIC)
    big = 30 + 190 * (big - big.min()) / (big.max() - big.min())
    return np.clip(np.rint(big + 12 * rng.standard_normal(big.shape)), 0, 255).astype(np.uint8)


SMOOTH_450 = _smooth_noise_450()


def _taleghani_gray():
    files = sorted(SHARED.glob("Early/*.jpg"))
    if not files:
        return None, None
    return cv2.cvtColor(cv2.imread(str(files[0])), cv2.COLOR_BGR2GRAY), files[0].name


TALEGHANI, TALEGHANI_NAME = _taleghani_gray()
needs_taleghani = pytest.mark.skipif(
    TALEGHANI is None, reason=f"Taleghani ALL data not found at {SHARED}")


def _dark_mask(gray):
    """Otsu-dark (stained) pixels of a field, zeros lifted to 1 for mahotas."""
    g1 = np.maximum(gray, 1)
    thr, _ = cv2.threshold(g1, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return g1, g1 < thr


def ours(img):
    return T.haralick(img)


def theirs(img):
    return mahotas.features.haralick(img)


def ours_masked(img, mask):
    return T.haralick(img, mask=mask)


def theirs_masked(img, mask):
    return mahotas.features.haralick(np.where(mask, img, 0).astype(np.uint8), ignore_zeros=True)


def test_same_results():
    for img in (CAMERA_450, SMOOTH_450):
        np.testing.assert_allclose(ours(img), theirs(img), rtol=1e-6, atol=1e-10)
    if TALEGHANI is not None:
        np.testing.assert_allclose(ours(TALEGHANI), theirs(TALEGHANI), rtol=1e-6, atol=1e-10)
        g1, mask = _dark_mask(TALEGHANI)
        np.testing.assert_allclose(ours_masked(g1, mask), theirs_masked(g1, mask),
                                   rtol=1e-6, atol=1e-10)


# ---------------------------------------------------------------- 450x450 camera
@pytest.mark.benchmark(group="haralick camera 450x450, 256 levels")
def test_bench_haralick_camera_leukfeat(benchmark):
    benchmark(ours, CAMERA_450)


@pytest.mark.benchmark(group="haralick camera 450x450, 256 levels")
def test_bench_haralick_camera_mahotas(benchmark):
    benchmark(theirs, CAMERA_450)


# ---------------------------------------------------------- 450x450 smooth+noise
@pytest.mark.benchmark(group="haralick smooth+noise 450x450, 256 levels")
def test_bench_haralick_smooth_leukfeat(benchmark):
    benchmark(ours, SMOOTH_450)


@pytest.mark.benchmark(group="haralick smooth+noise 450x450, 256 levels")
def test_bench_haralick_smooth_mahotas(benchmark):
    benchmark(theirs, SMOOTH_450)


# ------------------------------------------------------------ Taleghani 224x224
@needs_taleghani
@pytest.mark.benchmark(group="haralick Taleghani 224x224 gray")
def test_bench_haralick_taleghani_leukfeat(benchmark):
    benchmark.extra_info["image"] = TALEGHANI_NAME
    benchmark(ours, TALEGHANI)


@needs_taleghani
@pytest.mark.benchmark(group="haralick Taleghani 224x224 gray")
def test_bench_haralick_taleghani_mahotas(benchmark):
    benchmark.extra_info["image"] = TALEGHANI_NAME
    benchmark(theirs, TALEGHANI)


@needs_taleghani
@pytest.mark.benchmark(group="haralick Taleghani 224x224 gray, masked")
def test_bench_haralick_taleghani_masked_leukfeat(benchmark):
    g1, mask = _dark_mask(TALEGHANI)
    benchmark.extra_info["image"] = TALEGHANI_NAME
    benchmark(ours_masked, g1, mask)


@needs_taleghani
@pytest.mark.benchmark(group="haralick Taleghani 224x224 gray, masked")
def test_bench_haralick_taleghani_masked_mahotas(benchmark):
    g1, mask = _dark_mask(TALEGHANI)
    benchmark.extra_info["image"] = TALEGHANI_NAME
    benchmark(theirs_masked, g1, mask)


# ------------------------------------------------------------------- the ratio
@pytest.mark.benchmark(group="haralick ratio of medians, one thread")
def test_speedup_ratio(benchmark, capsys):
    """Ratio of medians in one process; the issue's target is >= 10x.

    Takes the ``benchmark`` fixture so that it also runs under
    ``--benchmark-only`` (it records the timings in ``extra_info`` and
    benchmarks leukfeat on the camera image once more, on one thread).
    """
    import threadpoolctl

    cases = [("camera 450x450", CAMERA_450), ("smooth+noise 450x450", SMOOTH_450)]
    if TALEGHANI is not None:
        cases.append((f"Taleghani {TALEGHANI_NAME} 224x224", TALEGHANI))
    n_cv = cv2.getNumThreads()
    cv2.setNumThreads(1)
    lines, ratios = [], {}
    try:
        with threadpoolctl.threadpool_limits(1):
            for name, img in cases:
                np.testing.assert_allclose(ours(img), theirs(img), rtol=1e-6, atol=1e-10)
                # interleave the two sides so that load changes hit both
                a, b = [], []
                for _ in range(5):
                    a.append(median_time(lambda: ours(img), 40))
                    b.append(median_time(lambda: theirs(img), 8))
                t_ours, t_theirs = float(np.median(a)), float(np.median(b))
                ratios[name] = t_theirs / t_ours
                benchmark.extra_info[name] = {"leukfeat_ms": t_ours * 1e3,
                                              "mahotas_ms": t_theirs * 1e3,
                                              "ratio": ratios[name]}
                lines.append(f"  {name}: leukfeat {t_ours * 1e3:.3f} ms, mahotas "
                             f"{t_theirs * 1e3:.3f} ms, ratio {ratios[name]:.1f}x")
            benchmark.pedantic(ours, args=(CAMERA_450,), rounds=50, iterations=1,
                               warmup_rounds=2)
    finally:
        cv2.setNumThreads(n_cv)
    with capsys.disabled():
        print("\n[haralick, 256 levels, distance 1, one thread]\n" + "\n".join(lines))
    camera = ratios["camera 450x450"]
    assert camera >= 10, f"issue target: >= 10x faster than mahotas, got {camera:.1f}x"
    assert min(ratios.values()) >= 5, f"regression: {ratios}"


# ------------------------------------------------------------------------ LBP
LBP_IMAGE = TALEGHANI if TALEGHANI is not None else skimage.data.camera()[100:324, 150:374]


def ours_lbp(img, mask=None):
    return T.lbp_histogram(img, mask, radii=(1, 2, 3), as_dict=False)


def theirs_lbp(img, mask=None):
    from skimage.feature import local_binary_pattern

    out = []
    for r in (1, 2, 3):
        codes = local_binary_pattern(img, 8 * r, r, "uniform")
        sel = codes[mask] if mask is not None else codes.ravel()
        out.append(np.bincount(sel.astype(np.int64), minlength=8 * r + 2) / sel.size)
    return out


@pytest.mark.benchmark(group="LBP radii 1, 2, 3 (P = 8, 16, 24) 224x224")
def test_bench_lbp_leukfeat(benchmark):
    for a, b in zip(ours_lbp(LBP_IMAGE), theirs_lbp(LBP_IMAGE)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-15)
    benchmark(ours_lbp, LBP_IMAGE)


@pytest.mark.benchmark(group="LBP radii 1, 2, 3 (P = 8, 16, 24) 224x224")
def test_bench_lbp_skimage(benchmark):
    benchmark(theirs_lbp, LBP_IMAGE)


@pytest.mark.benchmark(group="LBP ratio of medians, one thread")
def test_lbp_speed(benchmark, capsys):
    """LBP: leukfeat vs scikit-image, whole 224x224 crop and inside a cell-like mask."""
    _, mask = _dark_mask(LBP_IMAGE)
    lines = []
    for name, m in (("whole", None), ("dark mask", mask)):
        for a, b in zip(ours_lbp(LBP_IMAGE, m), theirs_lbp(LBP_IMAGE, m)):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-15)
        t_ours = median_time(lambda: ours_lbp(LBP_IMAGE, m), 40)
        t_theirs = median_time(lambda: theirs_lbp(LBP_IMAGE, m), 8)
        benchmark.extra_info[name] = {"leukfeat_ms": t_ours * 1e3,
                                      "skimage_ms": t_theirs * 1e3}
        lines.append(f"  {name}: leukfeat {t_ours * 1e3:.3f} ms, scikit-image "
                     f"{t_theirs * 1e3:.3f} ms, ratio {t_theirs / t_ours:.1f}x")
        assert t_theirs / t_ours >= 4, f"regression: {lines[-1]}"
    benchmark.pedantic(ours_lbp, args=(LBP_IMAGE,), rounds=30, iterations=1, warmup_rounds=2)
    with capsys.disabled():
        print(f"\n[LBP radii 1, 2, 3, uniform, {LBP_IMAGE.shape[0]}x{LBP_IMAGE.shape[1]}]\n"
              + "\n".join(lines))
