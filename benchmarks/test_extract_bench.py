"""Whole feature vector speed: leukfeat.extract.features vs pyradiomics.

Run with::

    python -m pytest benchmarks/test_extract_bench.py --benchmark-only -q -s

Issue #3 asks for the whole default feature vector, segmentation included
(at least 150 features), at least 20x faster than pyradiomics'
``RadiomicsFeatureExtractor`` with ``glcm`` + ``firstorder`` + ``shape2D``
enabled (``force2D=True``, ``binCount=32``) on the same image and mask.

* leukfeat: ``extract.features(image)`` with every default, i.e. LAB
  K-means segmentation of the field, choice of the largest cell, then the
  texture, shape, colour, edge and field groups (428 features).
* pyradiomics: ``extractor.execute(image, mask)`` on the grey version of the
  same image (``cv2.COLOR_RGB2GRAY``, as float32) and the mask of the very
  cell leukfeat measures (the largest cell of ``segment.lab_kmeans(image)``,
  label 1), both as 2-D SimpleITK images. The comparison is generous to
  pyradiomics: its timing **excludes segmentation** (the mask is given), it
  works on one grey channel where leukfeat also measures colour, its logger
  is silenced (``radiomics`` logger at ERROR: formatting the debug records
  costs it over a third of its time otherwise), and the timed extractor is built
  with ``additionalInfo=False`` so that it skips the ``diagnostics_*``
  entries (hashes and whole-image statistics, not features). The default
  extractor (diagnostics on) is timed too and printed by
  ``test_speedup_ratio``. Only numeric features count, ``diagnostics_*``
  excluded.

Images:

* 450x450 RGB: a real Taleghani field (``Early``, first file) resized with
  ``cv2.INTER_CUBIC`` when the data set is present, else
  ``make_cells(1, size=450, random_state=0)``;
* a real 224x224 Taleghani field as it is (skipped when the data is absent).

pyradiomics is a benchmark-only dependency: its tests skip cleanly when it
cannot be imported (it builds from source; ``pip install pyradiomics`` may
need ``pip install numpy versioneer`` first and ``--no-build-isolation``),
and leukfeat's own benchmarks still run.

``test_speedup_ratio`` times both sides with ``time.perf_counter`` in one
process on one thread (BLAS, OpenCV and SimpleITK/ITK limited to one
thread), prints the ratio of medians and asserts the issue's >= 20x target.
It also times the *floor* of any LAB K-means segmentation, the three OpenCV
calls that no implementation of it can skip (``cvtColor`` to LAB, the
256-bin histogram of a*, one ``connectedComponents`` labelling of the
cell mask, the cheapest OpenCV labelling), and prints it beside the 20x budget (pyradiomics' time / 20): where
the floor alone exceeds the budget, 20x cannot be reached with segmentation
included, whatever the feature code costs.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest
from _timing import median_time

from leukfeat import extract, segment
from leukfeat.datasets import make_cells

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "taleghani-all"

RADIOMICS_CLASSES = ("glcm", "firstorder", "shape2D")
RADIOMICS_SKIP = "pyradiomics (benchmark-only dependency) is not installed"
MIN_FEATURES = 150
TARGET = 20.0


def _taleghani_rgb():
    files = sorted(SHARED.glob("Early/*.jpg"))
    if not files:
        return None, None
    return cv2.cvtColor(cv2.imread(str(files[0])), cv2.COLOR_BGR2RGB), files[0].name


TALEGHANI, TALEGHANI_NAME = _taleghani_rgb()
needs_taleghani = pytest.mark.skipif(
    TALEGHANI is None, reason=f"Taleghani ALL data not found at {SHARED}")


def _image_450():
    """A real Taleghani field upscaled to 450x450 when present, else synthetic."""
    if TALEGHANI is not None:
        return (cv2.resize(TALEGHANI, (450, 450), interpolation=cv2.INTER_CUBIC),
                f"{TALEGHANI_NAME} resized")
    return make_cells(1, size=450, random_state=0).images[0], "make_cells(random_state=0)"


IMAGE_450, SOURCE_450 = _image_450()

GROUP_450 = "features 450x450"
GROUP_224 = "features Taleghani 224x224"


# ------------------------------------------------------------------ both sides
def ours(rgb):
    return extract.features(rgb)


def _radiomics():
    radiomics = pytest.importorskip("radiomics", reason=RADIOMICS_SKIP)
    radiomics.setVerbosity(logging.ERROR)
    logging.getLogger("radiomics").setLevel(logging.ERROR)
    return radiomics


def make_extractor(additional_info=False):
    """glcm + firstorder + shape2D, force2D, binCount 32 (logger silenced)."""
    _radiomics()
    from radiomics.featureextractor import RadiomicsFeatureExtractor

    ex = RadiomicsFeatureExtractor(force2D=True, binCount=32, additionalInfo=additional_info)
    ex.disableAllFeatures()
    for name in RADIOMICS_CLASSES:
        ex.enableFeatureClassByName(name)
    return ex


def radiomics_inputs(rgb):
    """Grey image and the mask (label 1) of the cell leukfeat measures, as SimpleITK."""
    _radiomics()
    import SimpleITK as sitk

    seg = segment.lab_kmeans(rgb)
    lab = seg.largest()
    assert lab > 0, "no white cell found"
    mask = (seg.labels == lab).astype(np.uint8)
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return (sitk.GetImageFromArray(gray.astype(np.float32)), sitk.GetImageFromArray(mask),
            int(mask.sum()))


def segmentation_floor(rgb, mask):
    """The OpenCV calls any LAB K-means segmentation of ``rgb`` must make."""
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB)
    cv2.calcHist([lab], [1], None, [256], [0, 256])
    cv2.connectedComponents(mask, connectivity=8)


def numeric_features(result):
    return {k: float(v) for k, v in result.items() if not k.startswith("diagnostics_")}


def _cases():
    cases = [(GROUP_450, IMAGE_450, SOURCE_450)]
    if TALEGHANI is not None:
        cases.append((GROUP_224, TALEGHANI, TALEGHANI_NAME))
    return cases


# ---------------------------------------------------------------- sanity checks
@pytest.mark.parametrize("group", [GROUP_450, GROUP_224])
def test_leukfeat_feature_count(group):
    rgb = {c[0]: c[1] for c in _cases()}.get(group)
    if rgb is None:
        pytest.skip(f"Taleghani ALL data not found at {SHARED}")
    f = ours(rgb)
    assert len(f) >= MIN_FEATURES
    assert list(f) == extract.feature_names()
    assert np.isfinite(f["shape_cell_area"])


@pytest.mark.parametrize("group", [GROUP_450, GROUP_224])
def test_same_cell_for_pyradiomics(group):
    """pyradiomics accepts the mask, and it is the cell leukfeat measures."""
    rgb = {c[0]: c[1] for c in _cases()}.get(group)
    if rgb is None:
        pytest.skip(f"Taleghani ALL data not found at {SHARED}")
    img, mask, area = radiomics_inputs(rgb)
    res = numeric_features(make_extractor().execute(img, mask))
    assert len(res) > 0 and all(np.isfinite(v) for v in res.values())
    assert res["original_shape2D_PixelSurface"] == area
    assert ours(rgb)["shape_cell_area"] == area
    # the default extractor (diagnostics on) gives the same features
    full = make_extractor(additional_info=True).execute(img, mask)
    assert numeric_features(full) == res


# ------------------------------------------------------------------ 450x450
@pytest.mark.benchmark(group=GROUP_450)
def test_bench_features_450_leukfeat(benchmark):
    benchmark.extra_info["image"] = SOURCE_450
    f = benchmark(ours, IMAGE_450)
    benchmark.extra_info["n_features"] = len(f)
    assert len(f) >= MIN_FEATURES


@pytest.mark.benchmark(group=GROUP_450)
def test_bench_features_450_pyradiomics(benchmark):
    img, mask, _ = radiomics_inputs(IMAGE_450)
    ex = make_extractor()
    benchmark.extra_info["image"] = SOURCE_450
    res = benchmark(ex.execute, img, mask)
    benchmark.extra_info["n_features"] = len(numeric_features(res))


# ------------------------------------------------------------ Taleghani 224x224
@needs_taleghani
@pytest.mark.benchmark(group=GROUP_224)
def test_bench_features_taleghani_leukfeat(benchmark):
    benchmark.extra_info["image"] = TALEGHANI_NAME
    f = benchmark(ours, TALEGHANI)
    benchmark.extra_info["n_features"] = len(f)
    assert len(f) >= MIN_FEATURES


@needs_taleghani
@pytest.mark.benchmark(group=GROUP_224)
def test_bench_features_taleghani_pyradiomics(benchmark):
    img, mask, _ = radiomics_inputs(TALEGHANI)
    ex = make_extractor()
    benchmark.extra_info["image"] = TALEGHANI_NAME
    res = benchmark(ex.execute, img, mask)
    benchmark.extra_info["n_features"] = len(numeric_features(res))


# ------------------------------------------------------------------- the ratio
@pytest.mark.benchmark(group="features ratio of medians, one thread")
def test_speedup_ratio(benchmark, capsys):
    """Ratio of medians in one process on one thread; the issue's target is >= 20x.

    Takes the ``benchmark`` fixture so that it also runs under
    ``--benchmark-only`` (timings go to ``extra_info``; leukfeat on the
    450x450 image is benchmarked once more, on one thread).
    """
    import threadpoolctl

    _radiomics()
    import SimpleITK as sitk

    ex = make_extractor()
    ex_default = make_extractor(additional_info=True)
    n_cv = cv2.getNumThreads()
    n_itk = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    cv2.setNumThreads(1)
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    lines, ratios = [], {}
    try:
        with threadpoolctl.threadpool_limits(1):
            for group, rgb, source in _cases():
                img, mask, area = radiomics_inputs(rgb)
                cells = segment.lab_kmeans(rgb).mask.view(np.uint8)
                n_ours = len(ours(rgb))
                n_theirs = len(numeric_features(ex.execute(img, mask)))
                # interleave the sides so that load changes hit all of them
                a, b, c = [], [], []
                for _ in range(5):
                    a.append(median_time(lambda: ours(rgb), 15))
                    b.append(median_time(lambda: ex.execute(img, mask), 10))
                    c.append(median_time(lambda: ex_default.execute(img, mask), 5))
                t_ours, t_theirs, t_default = (float(np.median(x)) for x in (a, b, c))
                t_floor = median_time(lambda: segmentation_floor(rgb, cells), 50)
                ratios[group] = t_theirs / t_ours
                benchmark.extra_info[group] = {
                    "image": source, "cell_area": area,
                    "leukfeat_features": n_ours, "leukfeat_ms": t_ours * 1e3,
                    "pyradiomics_features": n_theirs, "pyradiomics_ms": t_theirs * 1e3,
                    "pyradiomics_with_diagnostics_ms": t_default * 1e3,
                    "ratio": ratios[group], "ratio_with_diagnostics": t_default / t_ours,
                    "segmentation_floor_ms": t_floor * 1e3,
                    "budget_20x_ms": t_theirs / TARGET * 1e3}
                lines.append(
                    f"[{group}] leukfeat {n_ours} features {t_ours * 1e3:.2f} ms, "
                    f"pyradiomics {n_theirs} features {t_theirs * 1e3:.2f} ms, "
                    f"ratio {ratios[group]:.2f} x  (pyradiomics with diagnostics "
                    f"{t_default * 1e3:.2f} ms, ratio {t_default / t_ours:.2f} x; "
                    f"{source}, cell of {area} px)\n"
                    f"    20x budget {t_theirs / TARGET * 1e3:.2f} ms; floor of the "
                    f"segmentation alone (LAB + a* histogram + labelling, OpenCV) "
                    f"{t_floor * 1e3:.2f} ms")
            benchmark.pedantic(ours, args=(IMAGE_450,), rounds=20, iterations=1,
                               warmup_rounds=2)
    finally:
        cv2.setNumThreads(n_cv)
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(n_itk)
    with capsys.disabled():
        print("\n[whole feature vector, segmentation included for leukfeat only, one thread]")
        print("\n".join(lines))
    low = {g: r for g, r in ratios.items() if r < TARGET}
    assert not low, ("issue #3 target >= 20x faster than pyradiomics not reached: "
                     + ", ".join(f"{g}: {r:.2f}x" for g, r in low.items()))
