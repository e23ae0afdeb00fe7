"""Property tests (Hypothesis): every segmenter and every feature group holds
its contract on any valid input (issue #28).

Inputs: RGB uint8 images of any size from 2x2 up (tiny, thin 2xN/3xN
strips, fields up to 640x480) that are constant, noisy, banded, binary,
gradients, fully arbitrary pixels (up to 6x6), one dark blob or painted
white cells with lobed nuclei among red cells; the same values as floats,
RGBA, strided views and Fortran arrays; and arbitrary masks where the API
takes masks (empty, full, one pixel, lines, rings, random pixels, a nucleus
outside its cell, label images with gaps), from 1x1 up for the functions
that take 2-D masks or grey images.

* Segmenters (every function of ``segment.METHODS``, with any valid
  option) return a :class:`~leukfeat.segment.Segmentation` that keeps the
  promises of its docstring: boolean ``mask`` and ``nucleus``, int32
  ``labels`` of the image's shape, ``nucleus`` within ``mask``, labels
  ``1..n_cells`` and ``mask == labels > 0``; the nucleus-anchored segmenter
  gives every cell a nucleus. They never raise, do not modify their input
  and are deterministic.
* Every feature group (``extract.GROUPS``), through :func:`extract.features`
  with every ``cell`` choice and every segmenter, through
  :func:`extract.features_per_cell` and through the group functions, returns
  the same names in the same order for every input (those of the
  ``*_feature_names`` functions), with float values that are finite or NaN,
  never inf and never an exception; NaN where the documentation says a
  value is undefined (no cell, empty mask, empty nucleus).
* Images smaller than 2x2 (1x1, 1xN), with other channel counts or
  dimensions are rejected with a ``ValueError`` naming ``image``, as
  documented.

Runs are deterministic (``derandomize=True``, no example database) and
bounded (about 10 s once the numba kernels are compiled). For a longer,
random search set ``LEUKFEAT_PROPERTY_SCALE`` (e.g. 20: twenty times the
examples, not derandomised).
"""

from __future__ import annotations

import math
import os

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leukfeat import extract, segment
from leukfeat.extract import colour, edges, field, shape, texture
from leukfeat.segment import Segmentation

# --------------------------------------------------------------------------- #
# settings
# --------------------------------------------------------------------------- #


_SCALE = float(os.environ.get("LEUKFEAT_PROPERTY_SCALE", "1"))


def _settings(max_examples: int):
    return settings(max_examples=max(1, int(max_examples * _SCALE)), deadline=None,
                    derandomize=_SCALE == 1,
                    database=None, print_blob=False,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


# one name per segmenter function (``hsv`` is an alias of ``hsv_threshold``):
# the function's own name when it is one of the names
_SEGMENTERS = {}
for _name, _fn in segment.METHODS.items():
    if _SEGMENTERS.get(_fn) != _fn.__name__:
        _SEGMENTERS[_fn] = _name
SEGMENTERS = sorted(_SEGMENTERS.values())
CELL_CHOICES = ("largest", "central", "mean", "median")


# --------------------------------------------------------------------------- #
# strategies
# --------------------------------------------------------------------------- #

_colours = st.tuples(*[st.integers(0, 255)] * 3)
_KINDS = ("constant", "noise", "blob", "cell", "gradient", "bands", "binary", "arbitrary")


@st.composite
def shapes(draw, min_side=2, max_side=40):
    """(H, W): mostly small, some thin strips, a few large."""
    kind = draw(st.sampled_from(("small", "small", "small", "strip", "large")))
    if kind == "small":
        return (draw(st.integers(min_side, max_side)), draw(st.integers(min_side, max_side)))
    if kind == "strip":
        thin = draw(st.integers(min_side, max(min_side, 3)))
        long = draw(st.integers(min_side, 160))
        return (thin, long) if draw(st.booleans()) else (long, thin)
    return (draw(st.integers(100, 240)), draw(st.integers(100, 320)))


def _disc(shape, cy, cx, r):
    yy, xx = np.ogrid[:shape[0], :shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


@st.composite
def rgb_images(draw, min_side=2, max_side=40):
    """An RGB uint8 image of assorted size and content."""
    h, w = draw(shapes(min_side, max_side))
    kind = draw(st.sampled_from(_KINDS))
    seed = draw(st.integers(0, 2 ** 32 - 1))
    rng = np.random.default_rng(seed)
    if kind == "arbitrary":                       # every pixel drawn: tiny images only
        h, w = min(h, 6), min(w, 6)
        px = draw(st.lists(_colours, min_size=h * w, max_size=h * w))
        return np.array(px, np.uint8).reshape(h, w, 3)
    bg = np.array(draw(_colours), np.uint8)
    img = np.empty((h, w, 3), np.uint8)
    img[:] = bg
    if kind == "constant":
        return img
    if kind == "noise":
        lo = draw(st.integers(0, 255))
        hi = draw(st.integers(lo, 255))
        return rng.integers(lo, hi + 1, (h, w, 3), dtype=np.uint8, endpoint=False) \
            if hi > lo else img
    if kind == "binary":                           # only 0 and 255, per channel or grey
        bits = rng.random((h, w)) < draw(st.floats(0.0, 1.0))
        img[:] = np.where(bits[..., None], np.uint8(255), np.uint8(0))
        return img
    if kind == "gradient":
        a, b = np.array(draw(_colours), float), np.array(draw(_colours), float)
        t = np.linspace(0.0, 1.0, w if draw(st.booleans()) else h)
        ramp = (a[None] * (1 - t[:, None]) + b[None] * t[:, None]).round().astype(np.uint8)
        img[:] = ramp[None] if ramp.shape[0] == w else ramp[:, None]
        return img
    if kind == "bands":
        period = draw(st.integers(1, 8))
        other = np.array(draw(_colours), np.uint8)
        rows = (np.arange(h) // period) % 2 == 1
        cols = (np.arange(w) // period) % 2 == 1
        img[rows[:, None] ^ cols[None, :]] = other
        return img
    cy, cx = rng.uniform(-0.2, 1.2) * h, rng.uniform(-0.2, 1.2) * w
    r = draw(st.floats(0.0, 0.6)) * min(h, w) + draw(st.floats(0.0, 3.0))
    if kind == "blob":                             # one dark blob on a flat field
        img[_disc((h, w), cy, cx, r)] = draw(st.tuples(*[st.integers(0, 90)] * 3))
    else:                        # white cells (lobed nuclei) among red cells
        img[:] = draw(st.tuples(st.integers(200, 255), st.integers(190, 250),
                                st.integers(180, 250)))
        for _ in range(draw(st.integers(0, 6))):
            img[_disc((h, w), rng.uniform(0, h), rng.uniform(0, w),
                      rng.uniform(0.05, 0.2) * min(h, w) + 1)] = (205, 140, 150)
        cyto = draw(st.tuples(st.integers(150, 220), st.integers(120, 200),
                              st.integers(190, 240)))
        nucleus = draw(st.tuples(st.integers(40, 140), st.integers(10, 90),
                                 st.integers(90, 180)))
        for i in range(draw(st.integers(1, 3))):
            if i:
                cy, cx = rng.uniform(0, h), rng.uniform(0, w)
                r = rng.uniform(0.05, 0.4) * min(h, w) + 1
            img[_disc((h, w), cy, cx, r)] = cyto
            rn = r * draw(st.floats(0.2, 1.0))
            for _ in range(draw(st.integers(1, 3))):     # lobes
                off = rng.uniform(-0.5, 0.5, 2) * r
                img[_disc((h, w), cy + off[0], cx + off[1], rn * rng.uniform(0.4, 1.0))] = \
                    nucleus
    sigma = draw(st.sampled_from((0.0, 0.0, 2.0, 8.0)))
    if sigma:
        img = np.clip(img + rng.normal(0.0, sigma, img.shape), 0, 255).astype(np.uint8)
    return img


@st.composite
def masks(draw, shape):
    """A boolean mask of ``shape``: empty, full, one pixel, a line, a disc,
    a rectangle, random pixels, a ring or two blobs."""
    h, w = shape
    kind = draw(st.sampled_from(("empty", "full", "pixel", "line", "disc", "rect",
                                 "random", "ring", "two")))
    m = np.zeros(shape, bool)
    if kind == "empty":
        return m
    if kind == "full":
        return ~m
    if kind == "pixel":
        m[draw(st.integers(0, h - 1)), draw(st.integers(0, w - 1))] = True
        return m
    if kind == "line":
        if draw(st.booleans()):
            m[draw(st.integers(0, h - 1)), draw(st.integers(0, w - 1)):] = True
        else:
            m[draw(st.integers(0, h - 1)):, draw(st.integers(0, w - 1))] = True
        return m
    if kind == "rect":
        r0, c0 = draw(st.integers(0, h - 1)), draw(st.integers(0, w - 1))
        m[r0:draw(st.integers(r0 + 1, h)), c0:draw(st.integers(c0 + 1, w))] = True
        return m
    if kind == "random":
        seed = draw(st.integers(0, 2 ** 32 - 1))
        return np.random.default_rng(seed).random(shape) < draw(st.floats(0.0, 1.0))
    cy, cx = draw(st.floats(-1.0, h)), draw(st.floats(-1.0, w))
    r = draw(st.floats(0.0, max(h, w) / 2))
    m = _disc(shape, cy, cx, r)
    if kind == "ring":
        m &= ~_disc(shape, cy, cx, r * draw(st.floats(0.0, 0.9)))
    elif kind == "two":
        m |= _disc(shape, draw(st.floats(0.0, h)), draw(st.floats(0.0, w)),
                   draw(st.floats(0.0, max(h, w) / 3)))
    return m


@st.composite
def nucleus_of(draw, cell):
    """A nucleus mask for ``cell``: inside it, partly outside, empty or equal."""
    kind = draw(st.sampled_from(("eroded", "random", "empty", "same", "anywhere")))
    if kind == "empty":
        return np.zeros_like(cell)
    if kind == "same":
        return cell.copy()
    if kind == "eroded":
        k = draw(st.integers(1, 4))
        return cv2.erode(cell.view(np.uint8), np.ones((2 * k + 1, 2 * k + 1), np.uint8),
                         borderType=cv2.BORDER_CONSTANT, borderValue=0).astype(bool)
    if kind == "random":
        seed = draw(st.integers(0, 2 ** 32 - 1))
        return cell & (np.random.default_rng(seed).random(cell.shape) < 0.5)
    return draw(masks(cell.shape))


# --------------------------------------------------------------------------- #
# checks
# --------------------------------------------------------------------------- #


def _finite_or_nan(values, what=""):
    """The values as float64, asserting that none is infinite."""
    arr = np.asarray(list(values), dtype=np.float64)
    bad = np.isinf(arr)
    assert not bad.any(), f"{what}: infinite value(s) at {np.flatnonzero(bad)[:10].tolist()}"
    return arr


def _check_features(f, names, what=""):
    assert list(f) == list(names), f"{what}: names differ"
    for k, v in f.items():
        assert isinstance(v, float), f"{what}: {k} is {type(v).__name__}"
        assert not math.isinf(v), f"{what}: {k} is {v}"


def _check_segmentation(seg, shape, method=None, nucleus=True):
    """The contract of :class:`Segmentation` (its docstring)."""
    assert isinstance(seg, Segmentation)
    assert seg.shape == shape
    for name in ("mask", "nucleus"):
        a = getattr(seg, name)
        assert isinstance(a, np.ndarray) and a.shape == shape and a.dtype == bool, name
    lab = seg.labels
    assert isinstance(lab, np.ndarray) and lab.shape == shape
    assert lab.dtype == np.int32, lab.dtype          # "ndarray of int32"
    assert not (seg.nucleus & ~seg.mask).any(), "nucleus outside mask"
    # "0 for background, 1..n_cells for the cells": every label present once
    np.testing.assert_array_equal(lab > 0, seg.mask)
    n = seg.n_cells
    assert n >= 0 and lab.min(initial=0) >= 0
    assert seg.cell_ids() == list(range(1, n + 1))
    np.testing.assert_array_equal(seg.cytoplasm, seg.mask & ~seg.nucleus)
    areas = seg.areas()
    assert areas.shape == (n,) and (areas > 0).all()
    assert seg.largest() == (int(np.argmax(areas)) + 1 if n else 0)
    assert isinstance(seg.info, dict)
    if method is not None:
        assert seg.method == segment.METHODS[method].__name__
    if method == "nucleus_anchored" and nucleus:
        # cells grow from nuclei: every object without one is rejected
        with_nucleus = np.unique(lab[seg.nucleus])
        assert with_nucleus.tolist() == list(range(1, n + 1)), "a cell without nucleus"


# --------------------------------------------------------------------------- #
# segmenters
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("method", SEGMENTERS)
@_settings(100)
@given(img=rgb_images(), exclude_border=st.booleans())
def test_segmenter_contract(method, img, exclude_border):
    before = img.copy()
    seg = segment.segment(img, method, exclude_border=exclude_border)
    np.testing.assert_array_equal(img, before)       # the input is not modified
    _check_segmentation(seg, img.shape[:2], method)
    if exclude_border and seg.n_cells:
        edge = np.concatenate([seg.labels[0], seg.labels[-1],
                               seg.labels[:, 0], seg.labels[:, -1]])
        assert not edge.any(), "a cell touches the border with exclude_border=True"
    # deterministic
    again = segment.segment(img, method, exclude_border=exclude_border)
    np.testing.assert_array_equal(again.labels, seg.labels)
    np.testing.assert_array_equal(again.nucleus, seg.nucleus)


@pytest.mark.parametrize("method", SEGMENTERS)
@_settings(25)
@given(img=rgb_images(max_side=24))
def test_segmenter_without_nucleus_and_cells(method, img):
    """``nucleus=False`` gives an empty nucleus and the same cells;
    :func:`segment.cells` cuts every cell out without raising."""
    seg = segment.segment(img, method)
    bare = segment.segment(img, method, nucleus=False)
    _check_segmentation(bare, img.shape[:2], method, nucleus=False)
    assert not bare.nucleus.any()
    np.testing.assert_array_equal(bare.labels, seg.labels)
    crops = segment.cells(img, method)
    assert sorted(c.area for c in crops) == sorted(
        int(a) for a in segment.segment(img, method, split=True).areas())
    for c in crops:
        assert c.image.shape[:2] == c.mask.shape == c.nucleus.shape
        assert not (c.nucleus & ~c.mask).any()


_OPTIONS = {
    "nucleus_anchored": st.fixed_dictionaries({}, optional={
        "min_blue": st.floats(-1.0, 0.99),
        "min_nucleus": st.floats(0.0, 1.0),
        "max_extent": st.floats(0.01, 4.0),
        "n_rays": st.integers(8, 96),
        "split": st.booleans()}),
    "lab_kmeans": st.fixed_dictionaries({}, optional={
        "k": st.integers(2, 8),
        "min_stain": st.floats(0.0, 40.0),
        "min_blue": st.floats(-10.0, 20.0),
        "min_size": st.integers(0, 100),
        "open_radius": st.integers(0, 3),
        "split": st.booleans()}),
    "hsv_threshold": st.fixed_dictionaries({}, optional={
        "lower": st.tuples(st.floats(0, 360), st.floats(0, 1), st.floats(0, 1)),
        "upper": st.tuples(st.floats(0, 360), st.floats(0, 1), st.floats(0, 1)),
        "min_size": st.integers(0, 100),
        "open_radius": st.integers(0, 3),
        "split": st.booleans()}),
    "otsu": st.fixed_dictionaries({}, optional={
        "channel": st.sampled_from(("a", "L", "gray", "green", "saturation")),
        "min_size": st.integers(0, 100),
        "open_radius": st.integers(0, 3),
        "split": st.booleans()}),
}


@pytest.mark.parametrize("method", SEGMENTERS)
@_settings(60)
@given(data=st.data())
def test_segmenter_options_contract(method, data):
    """Any valid option of a segmenter keeps the contract."""
    img = data.draw(rgb_images())
    opts = data.draw(_OPTIONS[method])
    seg = segment.segment(img, method, **opts)
    _check_segmentation(seg, img.shape[:2], method)


def _layouts(img, alpha):
    """The same RGB values as floats in [0, 1], RGBA, a strided view and in
    Fortran order."""
    h, w = img.shape[:2]
    padded = np.zeros((h + 2, 2 * w + 1, 3), np.uint8)
    padded[1:-1, 1:-1:2] = img
    return {"float": img / 255.0,
            "rgba": np.dstack([img, np.full((h, w), alpha, np.uint8)]),
            "strided": padded[1:-1, 1:-1:2],
            "fortran": np.asfortranarray(img)}


@_settings(40)
@given(img=rgb_images(max_side=24), method=st.sampled_from(SEGMENTERS),
       layout=st.sampled_from(("float", "rgba", "strided", "fortran")),
       alpha=st.integers(0, 255))
def test_other_layouts_equal_uint8(img, method, layout, alpha):
    """Floats in [0, 1], an alpha channel, strided views and Fortran order
    are converted once at the edge: the same cells and features as the
    contiguous uint8 RGB image."""
    other = _layouts(img, alpha)[layout]
    a, b = segment.segment(img, method), segment.segment(other, method)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.nucleus, b.nucleus)
    fa = extract.features(img, a, groups=extract.GROUPS)
    fb = extract.features(other, b, groups=extract.GROUPS)
    np.testing.assert_array_equal(np.array(list(fa.values())), np.array(list(fb.values())))


_h, _w = 480, 640
_ramp = np.linspace(0, 255, _w).round().astype(np.uint8)
LARGE = {
    "flat": np.full((_h, _w, 3), (232, 226, 220), np.uint8),
    "gradient": np.stack([np.tile(_ramp, (_h, 1)), np.tile(_ramp[::-1], (_h, 1)),
                          np.full((_h, _w), 200, np.uint8)], axis=-1),
    "noise": np.random.default_rng(0).integers(0, 256, (_h, _w, 3), dtype=np.uint8),
}


@pytest.mark.parametrize("method", SEGMENTERS)
@pytest.mark.parametrize("kind", list(LARGE))
def test_large_fields(method, kind):
    """Smear-field sized flat, gradient and noise images: the contract, and
    finite-or-NaN features under the stable names."""
    img = LARGE[kind]
    seg = segment.segment(img, method)
    _check_segmentation(seg, img.shape[:2], method)
    f = extract.features(img, seg, groups=extract.GROUPS)
    _check_features(f, _ALL_NAMES, f"{kind} {method}")
    if kind == "flat":
        assert seg.n_cells == 0 and np.isnan(list(f.values())).all()


def test_default_segmenter_is_a_method():
    assert segment.DEFAULT_METHOD in segment.METHODS
    assert set(segment.METHODS.values()) == set(_SEGMENTERS)


# --------------------------------------------------------------------------- #
# invalid shapes: a clear, documented ValueError
# --------------------------------------------------------------------------- #

_too_small = st.one_of(
    st.tuples(st.just(1), st.integers(1, 50)),
    st.tuples(st.integers(1, 50), st.just(1)),
    st.tuples(st.just(0), st.integers(0, 5)),
    st.tuples(st.integers(0, 5), st.just(0)),
).map(lambda hw: hw + (3,))
_bad_channels = st.tuples(st.integers(2, 6), st.integers(2, 6),
                          st.sampled_from((1, 2, 5))).map(tuple)
_bad_ndim = st.one_of(st.tuples(st.integers(2, 6)),
                      st.tuples(st.integers(2, 4), st.integers(2, 4), st.just(3), st.just(2)))

def _mask_for(im):
    return np.ones(im.shape[:2], bool)


_IMAGE_FUNCTIONS = {
    **{f"segment[{m}]": (lambda im, m=m: segment.segment(im, m)) for m in SEGMENTERS},
    "cells": segment.cells,
    "features": extract.features,
    "features[median]": lambda im: extract.features(im, cell="median"),
    "features_per_cell": extract.features_per_cell,
    "colour_features": lambda im: colour.colour_features(im, _mask_for(im)),
    "edge_features": lambda im: edges.edge_features(im, _mask_for(im)),
}


@pytest.mark.parametrize("func", list(_IMAGE_FUNCTIONS), ids=list(_IMAGE_FUNCTIONS))
@_settings(15)
@given(shp=st.one_of(_too_small, _bad_channels, _bad_ndim))
def test_invalid_image_shapes_raise_value_error(func, shp):
    with pytest.raises(ValueError, match="image"):
        _IMAGE_FUNCTIONS[func](np.zeros(shp, np.uint8))


# --------------------------------------------------------------------------- #
# the assembled feature vector: every group, every segmenter
# --------------------------------------------------------------------------- #

_NAMES = {g: extract.feature_names((g,)) for g in extract.GROUPS}
_ALL_NAMES = extract.feature_names(extract.GROUPS)
# the nucleus columns of one cell (NaN for an empty nucleus); the nucleus
# fraction, the N:C ratio and the field's fractions are 0, not undefined
_NUCLEUS_PREFIXES = ("shape_nucleus_", "colour_nucleus_", "glcm_nucleus_", "lbp_nucleus_")
_NUCLEUS_DEFINED = {"shape_nucleus_fraction"}


def _nucleus_columns(names):
    return [n for n in names if n.startswith(_NUCLEUS_PREFIXES) and n not in _NUCLEUS_DEFINED]


@pytest.mark.parametrize("group", extract.GROUPS)
@_settings(60)
@given(img=rgb_images(), cell=st.sampled_from(CELL_CHOICES))
def test_every_group_stable_names_finite_or_nan(group, img, cell):
    f = extract.features(img, groups=(group,), cell=cell)
    _check_features(f, _NAMES[group], f"{group}, cell={cell}")


@pytest.mark.parametrize("method", SEGMENTERS)
@_settings(50)
@given(img=rgb_images(), cell=st.sampled_from(CELL_CHOICES))
def test_every_segmenter_full_vector(method, img, cell):
    seg = segment.segment(img, method)
    f = extract.features(img, groups=extract.GROUPS, cell=cell, segmenter=method)
    _check_features(f, _ALL_NAMES, f"{method}, cell={cell}")
    vals = np.array(list(f.values()))
    if seg.n_cells == 0:
        assert np.isnan(vals).all(), "no white cell must give a row of NaN"
    else:
        assert f["field_n_cells"] == seg.n_cells
    # the same row from the precomputed segmentation
    g = extract.features(img, seg, groups=extract.GROUPS, cell=cell)
    np.testing.assert_array_equal(np.array(list(g.values())), vals)


_feature_options = st.fixed_dictionaries({}, optional={
    "glcm_distances": st.sampled_from(((1,), (2, 5), (1, 3))),
    "glcm_levels": st.sampled_from((2, 8, 32, 256)),
    "glcm_quantization": st.sampled_from(("fixed", "minmax")),
    "lbp_radii": st.sampled_from(((), (1,), (2, 4))),
    "n_fourier": st.integers(1, 12),
    "zernike_degree": st.integers(0, 10),
    "colour_spaces": st.sampled_from((("rgb",), ("hsv", "lab"), ("lab", "rgb", "hsv"))),
    "percentiles": st.sampled_from(((), (50,), (0, 2.5, 100))),
    "histogram_bins": st.sampled_from((None, 1, 5)),
    "edge_sigmas": st.sampled_from(((1.0,), (0.5, 3.0))),
})


@_settings(40)
@given(img=rgb_images(max_side=32), options=_feature_options,
       cell=st.sampled_from(CELL_CHOICES))
def test_feature_options_keep_names_stable(img, options, cell):
    """Every option of :data:`extract.DEFAULTS` gives the names of
    :func:`extract.feature_names` for the same options, whatever the image."""
    f = extract.features(img, groups=extract.GROUPS, cell=cell, **options)
    _check_features(f, extract.feature_names(extract.GROUPS, **options), str(options))


@pytest.mark.parametrize("method", SEGMENTERS)
@_settings(20)
@given(img=rgb_images())
def test_features_per_cell_rows(method, img):
    seg = segment.segment(img, method)
    rows = extract.features_per_cell(img, seg, groups=extract.GROUPS)
    assert len(rows) == seg.n_cells
    for lab, row in enumerate(rows, start=1):
        assert row["cell_label"] == lab
        _check_features(row, ["cell_label"] + _ALL_NAMES, f"{method}, cell {lab}")
        one = extract.features(img, seg, groups=extract.GROUPS, cell=lab)
        np.testing.assert_array_equal(np.array(list(row.values())[1:]),
                                      np.array(list(one.values())))
    inner = extract.features_per_cell(img, seg, groups=("shape",), exclude_border=True)
    assert len(inner) <= len(rows)


@st.composite
def user_segmentations(draw, min_side=2, max_side=32):
    """An image with a segmentation built from arbitrary user masks (default
    connected-component labels, or labels with gaps and large numbers)."""
    img = draw(rgb_images(min_side, max_side))
    cell = draw(masks(img.shape[:2]))
    nuc = draw(nucleus_of(cell))
    how = draw(st.sampled_from(("components", "sparse", "random")))
    if how == "components":
        seg = Segmentation.from_masks(cell, nuc)
    else:
        _, comp = cv2.connectedComponents(cell.view(np.uint8), connectivity=8,
                                          ltype=cv2.CV_32S)
        if how == "sparse":
            labels = comp * draw(st.integers(2, 1000)) + (comp > 0) * draw(st.integers(0, 7))
        else:
            seed = draw(st.integers(0, 2 ** 32 - 1))
            labels = np.random.default_rng(seed).integers(1, 5, cell.shape) * (comp > 0)
        seg = Segmentation.from_masks(cell, nuc, labels=labels)
    return img, seg


@_settings(120)
@given(data=user_segmentations(), cell=st.sampled_from(CELL_CHOICES))
def test_features_of_user_masks(data, cell):
    """Any mask and nucleus (empty, one pixel, thin, touching the border,
    nucleus outside the cell, labels with gaps) give finite or NaN values
    under stable names; an empty nucleus gives NaN nucleus features."""
    img, seg = data
    f = extract.features(img, seg, groups=extract.GROUPS, cell=cell)
    _check_features(f, _ALL_NAMES, f"cell={cell}")
    if seg.n_cells == 0 or not seg.mask.any():
        assert np.isnan(list(f.values())).all()
        return
    if not seg.nucleus.any():                          # documented: NaN, not 0
        for n in _nucleus_columns(_ALL_NAMES):
            assert math.isnan(f[n]), n
        assert f["shape_nucleus_fraction"] == 0.0
    rows = extract.features_per_cell(img, seg, groups=extract.GROUPS)
    assert [r["cell_label"] for r in rows] == [float(v) for v in seg.cell_ids()]
    for r in rows:
        _check_features(r, ["cell_label"] + _ALL_NAMES, "per cell")
        if not seg.nucleus[seg.labels == r["cell_label"]].any():
            for n in _nucleus_columns(_ALL_NAMES):
                assert math.isnan(r[n]), n


@st.composite
def coded_masks(draw, shape):
    """A mask as :func:`segment.from_mask` reads it, with the ``kind`` to
    pass: boolean, a label image (uint8/uint16/int64 or integer floats, any
    positive numbers) or a 0/cytoplasm/nucleus coding."""
    cell = draw(masks(shape))
    how = draw(st.sampled_from(("bool", "labels", "nucleus_cytoplasm")))
    if how == "bool":
        return cell, draw(st.sampled_from(("auto", "binary")))
    if how == "nucleus_cytoplasm":
        nuc = draw(nucleus_of(cell)) & cell
        lo, hi = draw(st.sampled_from(((1, 2), (128, 255), (3, 200))))
        coded = np.where(nuc, hi, np.where(cell, lo, 0)).astype(np.uint8)
        return coded, draw(st.sampled_from(("auto", "nucleus_cytoplasm")))
    _, comp = cv2.connectedComponents(cell.view(np.uint8), connectivity=8, ltype=cv2.CV_32S)
    seed = draw(st.integers(0, 2 ** 32 - 1))
    numbers = np.random.default_rng(seed).permutation(60000)[:comp.max() + 1] + 1
    numbers[0] = 0
    dtype = draw(st.sampled_from((np.uint16, np.int64, np.float64)))
    return numbers[comp].astype(dtype), draw(st.sampled_from(("auto", "labels")))


@_settings(80)
@given(data=st.data())
def test_from_mask_contract_and_features(data):
    """:func:`segment.from_mask` turns any valid mask into a segmentation
    that keeps the contract (labels renumbered 1..n, nucleus within the
    cells), and its features are finite or NaN under the stable names."""
    img = data.draw(rgb_images(max_side=32))
    mask, kind = data.draw(coded_masks(img.shape[:2]))
    if kind == "nucleus_cytoplasm" and np.unique(mask).size != 3:
        with pytest.raises(ValueError, match="mask"):
            segment.from_mask(img, mask, kind)
        return
    seg = segment.from_mask(img, mask, kind)
    _check_segmentation(seg, img.shape[:2])
    np.testing.assert_array_equal(seg.mask, np.asarray(mask) > 0)
    if "source_labels" in seg.info:
        for new, old in seg.info["source_labels"].items():
            np.testing.assert_array_equal(seg.labels == new, np.asarray(mask) == old)
    f = extract.features(img, seg, groups=extract.GROUPS,
                         cell=data.draw(st.sampled_from(CELL_CHOICES)))
    _check_features(f, _ALL_NAMES, f"from_mask {kind}")
    if seg.n_cells == 0:
        assert np.isnan(list(f.values())).all()


@_settings(30)
@given(data=user_segmentations(), label=st.integers(1, 10 ** 6))
def test_integer_cell_choice(data, label):
    """An integer ``cell`` is measured when it is a label, else a clear
    ValueError naming ``cell`` (a field without cells: a row of NaN)."""
    img, seg = data
    ids = seg.cell_ids()
    if ids and label % 2:
        label = ids[label % len(ids)]
    if not ids:
        f = extract.features(img, seg, cell=label)
        assert np.isnan(list(f.values())).all()
    elif label in ids:
        f = extract.features(img, seg, groups=("shape", "colour"), cell=label)
        _check_features(f, extract.feature_names(("shape", "colour")))
        assert f["shape_cell_area"] > 0
    else:                           # documented: "not a label of the segmentation"
        with pytest.raises(ValueError, match="cell"):
            extract.features(img, seg, cell=label)


# --------------------------------------------------------------------------- #
# the feature-group functions on masks (their own entry points)
# --------------------------------------------------------------------------- #

_gray_dtypes = st.sampled_from(("uint8", "uint8", "uint16", "int32", "float", "bool"))


@st.composite
def gray_images(draw, min_side=1, max_side=24):
    """A 2-D grey image of a dtype the texture functions take."""
    h, w = draw(st.integers(min_side, max_side)), draw(st.integers(min_side, max_side))
    dtype = draw(_gray_dtypes)
    seed = draw(st.integers(0, 2 ** 32 - 1))
    rng = np.random.default_rng(seed)
    levels = draw(st.sampled_from((1, 2, 3, 16, 256)))
    base = rng.integers(0, levels, (h, w)) * (255 // max(levels - 1, 1))
    if dtype == "uint8":
        return base.astype(np.uint8)
    if dtype == "uint16":
        return (base * 257).astype(np.uint16)
    if dtype == "int32":
        return (base - 128).astype(np.int32) * draw(st.integers(1, 1000))
    if dtype == "float":
        return base / 255.0
    return base > 127


@_settings(80)
@given(data=st.data())
def test_texture_functions_on_any_mask(data):
    gray = data.draw(gray_images())
    mask = data.draw(st.one_of(st.none(), masks(gray.shape)))
    dists = data.draw(st.sampled_from(((1,), (1, 3), (2,))))
    levels = data.draw(st.sampled_from((None, 256, 32, 8, 2)))
    quant = data.draw(st.sampled_from(("fixed", "minmax")))
    radii = data.draw(st.sampled_from(((1, 2, 3), (1,), ())))
    names = texture.texture_feature_names(dists, radii)
    f = texture.texture_features(gray, mask, distances=dists, levels=levels, lbp_radii=radii,
                                 quantization=quant)
    _check_features(f, names, f"texture levels={levels} {quant}")
    empty = mask is not None and not mask.any()
    if empty:
        assert np.isnan(list(f.values())).all()
    # LBP histograms: each sums to 1, or all NaN for an empty mask
    for r in radii:
        h = np.array([v for k, v in f.items() if k.startswith(f"lbp_r{r}_")])
        if empty:
            assert np.isnan(h).all()
        else:
            assert h.sum() == pytest.approx(1.0) and (h >= 0).all()
    lbp = texture.lbp_histogram(gray, mask, radii=radii or (1,))
    _check_features(lbp, texture.lbp_feature_names(radii or (1,)), "lbp_histogram")
    g8 = gray if gray.dtype == np.uint8 else None
    if g8 is not None:
        har = texture.haralick(g8, distance=dists[0], mask=mask, return_14=True)
        assert har.shape == (4, 14)
        _finite_or_nan(har.ravel(), "haralick")
        P = texture.glcm(g8, distances=dists, levels=levels or 256, mask=mask,
                         quantization=quant)
        assert not np.isinf(P).any()
        sums = P.sum(axis=(-2, -1))
        assert np.all(np.isnan(sums) | np.isclose(sums, 1.0))
        for name, v in texture.glcm_props(P).items():
            _finite_or_nan(np.ravel(v), f"glcm_props {name}")


@_settings(100)
@given(data=st.data())
def test_shape_features_on_any_mask(data):
    shp = (data.draw(st.integers(1, 40)), data.draw(st.integers(1, 40)))
    cell = data.draw(masks(shp))
    nuc = data.draw(st.one_of(st.none(), nucleus_of(cell)))
    nf = data.draw(st.sampled_from((10, 1, 4)))
    zd = data.draw(st.sampled_from((8, 0, 3)))
    f = shape.shape_features(cell, nuc, n_fourier=nf, zernike_degree=zd)
    _check_features(f, shape.shape_feature_names(nuc is not None, n_fourier=nf,
                                                 zernike_degree=zd), "shape")
    if not cell.any():
        assert np.isnan(list(f.values())).all()
        return
    _, comp, stats, _ = cv2.connectedComponentsWithStats(cell.view(np.uint8), connectivity=8)
    assert f["shape_cell_area"] == stats[1:, cv2.CC_STAT_AREA].max()
    assert f["shape_cell_perimeter"] >= 0
    if nuc is not None:
        inside = nuc & cell
        if not inside.any():
            for n in _nucleus_columns(f):
                assert math.isnan(f[n]), n
        assert f["shape_nucleus_fraction"] == pytest.approx(inside.sum() / cell.sum())


@_settings(80)
@given(data=st.data())
def test_colour_features_on_any_mask(data):
    img = data.draw(rgb_images(max_side=24))
    cell = data.draw(masks(img.shape[:2]))
    nuc = data.draw(st.one_of(st.none(), nucleus_of(cell)))
    bins = data.draw(st.sampled_from((None, 1, 4)))
    pct = data.draw(st.sampled_from(((10, 50, 90), (), (0, 100))))
    f = colour.colour_features(img, cell, nuc, histogram_bins=bins, percentiles=pct)
    names = colour.colour_feature_names(nuc is not None, histogram_bins=bins, percentiles=pct)
    _check_features(f, names, "colour")
    if not cell.any():
        assert np.isnan(list(f.values())).all()
        return
    assert not math.isnan(f["colour_cell_rgb_r_mean"])
    if nuc is not None and not (nuc & cell).any():
        assert all(math.isnan(v) for k, v in f.items() if k.startswith("colour_nucleus_"))
    if bins:
        h = [f[f"colour_cell_lab_a_hist_{i}"] for i in range(bins)]
        assert sum(h) == pytest.approx(1.0)


@_settings(80)
@given(data=st.data())
def test_edge_features_on_any_mask(data):
    img = data.draw(rgb_images(max_side=24))
    if data.draw(st.booleans()):
        img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
        if data.draw(st.booleans()):
            img = img / 255.0
    cell = data.draw(masks(img.shape[:2]))
    sigmas = data.draw(st.sampled_from(((1.0, 2.0), (0.5,), (3.0, 1.5))))
    ring = data.draw(st.sampled_from((3, 1, 10.5)))
    f = edges.edge_features(img, cell, sigmas=sigmas, ring_width=ring)
    _check_features(f, edges.edge_feature_names(sigmas=sigmas), "edges")
    if not cell.any():
        assert np.isnan(list(f.values())).all()
    else:
        for k in ("edges_cell_density", "edges_cell_gradient_mean"):
            assert not math.isnan(f[k]), k
        assert 0.0 <= f["edges_cell_density"] <= 1.0


@_settings(60)
@given(data=user_segmentations(min_side=1))
def test_field_features_on_any_segmentation(data):
    _, seg = data
    f = field.field_features(seg)
    _check_features(f, field.field_feature_names(), "field")
    if not seg.mask.any():
        assert np.isnan(list(f.values())).all()
    else:
        n = len(seg.cell_ids())
        assert f["field_n_cells"] == n
        assert 0.0 < f["field_cover"] <= 1.0
        assert 0.0 <= f["field_nucleus_fraction_mean"] <= 1.0
