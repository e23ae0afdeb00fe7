"""Tests for leukfeat.segment against reference implementations and ground truth."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from scipy import ndimage as ndi

from leukfeat import segment as S
from leukfeat.segment import _kernels as K
from leukfeat.segment import _morphology as MO
from leukfeat.segment import _threshold as TH
from leukfeat.datasets import make_cells

from _shared import TALEGHANI, taleghani_files


def iou(a, b):
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    union = (a | b).sum()
    return 1.0 if union == 0 else (a & b).sum() / union


def disc(shape, centre, r):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= r * r


# ---------------------------------------------------------------- thresholds
@pytest.mark.parametrize("k", [2, 3, 4])
def test_kmeans_histogram_equals_lloyd_on_all_pixels(rng, k):
    from sklearn.cluster import KMeans

    # a tri-modal channel like a* on a smear: background, red cells, stain
    vals = np.concatenate([rng.normal(125, 3, 20000), rng.normal(132, 4, 8000),
                           rng.normal(165, 8, 2000)])
    ch = np.clip(np.rint(vals), 0, 255).astype(np.uint8).reshape(100, 300)
    centres, bounds, counts = S.kmeans_histogram(ch, k)
    cdf = np.cumsum(np.bincount(ch.ravel(), minlength=256)) / ch.size
    init = np.linspace(np.searchsorted(cdf, 0.005), np.searchsorted(cdf, 0.995), k)
    km = KMeans(k, init=init.reshape(-1, 1), n_init=1, algorithm="lloyd", tol=0,
                max_iter=300).fit(ch.reshape(-1, 1).astype(np.float64))
    ref = np.sort(km.cluster_centers_.ravel())
    np.testing.assert_allclose(centres, ref, rtol=0, atol=1e-6)
    # same partition of the pixels
    ours = np.searchsorted(bounds, ch.ravel(), side="left")
    order = np.argsort(km.cluster_centers_.ravel())
    theirs = np.argsort(order)[km.labels_]
    assert (ours == theirs).all()
    assert counts.sum() == ch.size


def test_kmeans_histogram_mask_and_errors(rng):
    ch = rng.integers(0, 256, (20, 20)).astype(np.uint8)
    m = np.zeros((20, 20), bool)
    c, b, n = S.kmeans_histogram(ch, 2, mask=m)
    assert c.size == 0 and n.size == 0
    with pytest.raises(ValueError, match="channel"):
        S.kmeans_histogram(ch.astype(float), 2)
    with pytest.raises(ValueError, match="k"):
        S.kmeans_histogram(ch, 1)
    # constant channel: one cluster survives
    c, b, n = S.kmeans_histogram(np.full((5, 5), 7, np.uint8), 3)
    assert c.tolist() == [7.0] and n.tolist() == [25]


def test_otsu_threshold_matches_skimage(rng):
    from skimage.filters import threshold_otsu

    for _ in range(5):
        v = np.concatenate([rng.normal(60, 10, 500), rng.normal(170, 20, 800)])
        v = np.clip(v, 0, 255).astype(np.uint8)
        assert S.otsu_threshold(v) == pytest.approx(threshold_otsu(v), abs=1)
        # same partition as skimage (pixels > t)
        t = S.otsu_threshold(v)
        assert ((v > t) == (v > threshold_otsu(v))).mean() > 0.99
    assert np.isnan(S.otsu_threshold(np.full(10, 3, np.uint8)))


# ------------------------------------------- compiled kernels vs their numpy forms


def _kmeans_numpy(hist: np.ndarray, k: int, *, init=None, max_iter: int = 100):
    """The former pure-Python/numpy Lloyd loop (reference of the kernel)."""
    hist = np.asarray(hist, np.float64)
    total = hist.sum()
    levels = np.arange(hist.size, dtype=np.float64)
    if total == 0:
        return np.empty(0), np.empty(0), np.empty(0, np.int64)
    centres = TH._initial_centres(hist, k, init)      # the loop is what is compared
    # cluster j holds the levels v with bounds[j-1] < v <= bounds[j]; with
    # cumulative sums each Lloyd step costs O(k), not O(256). The loop runs on
    # Python floats (k is small: numpy's per-call overhead would dominate);
    # every operation is the same IEEE one as its array form.
    cw = [0.0] + np.cumsum(hist).tolist()
    cs = [0.0] + np.cumsum(hist * levels).tolist()
    n = hist.size

    def cuts_of(c):
        return [0] + [min(max(math.floor((c[j + 1] + c[j]) / 2.0) + 1, 0), n)
                      for j in range(len(c) - 1)] + [n]

    centres = centres.tolist()
    prev = None
    for _ in range(max_iter):
        cuts = cuts_of(centres)
        if cuts == prev:
            break
        prev = cuts
        centres = [(cs[b] - cs[a]) / (cw[b] - cw[a]) for a, b in zip(cuts[:-1], cuts[1:])
                   if cw[b] - cw[a] > 0]
    else:  # max_iter reached: the cuts of the last centres
        cuts = cuts_of(centres)
    centres = np.array(centres, dtype=np.float64)
    bounds = (centres[1:] + centres[:-1]) / 2.0
    counts = np.rint(np.diff(np.take(cw, cuts))).astype(np.int64)
    return centres, bounds, counts


def _otsu_numpy(hist):
    """The former numpy Otsu (reference of the kernel)."""
    if np.count_nonzero(hist) < 2:
        return float("nan")
    levels = np.arange(hist.size, dtype=np.float64)
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * levels)
    mu0 = m0 / np.maximum(w0, 1e-300)
    mu1 = (m0[-1] - m0) / np.maximum(w1, 1e-300)
    between = w0 * w1 * (mu0 - mu1) ** 2
    between[(w0 == 0) | (w1 == 0)] = -1
    return float(np.argmax(between))


def _drop_specks_numpy(parts, m, cells, min_fraction):
    """The former numpy speck removal (reference of the kernel)."""
    if cells is None:
        _, cells = cv2.connectedComponents(m.view(np.uint8), connectivity=8,
                                           ltype=cv2.CV_32S)
    inside = (parts > 0) & m
    idx = np.flatnonzero(inside)
    if idx.size == 0:
        return inside
    flat = cells.ravel()
    cell_area = np.bincount(flat[m.ravel()])
    cell_of = flat[idx].astype(np.int64)
    key = parts.ravel()[idx].astype(np.int64) * cell_area.size + cell_of
    piece_area = np.bincount(key)
    keep = piece_area[key] >= np.maximum(2.0, np.floor(min_fraction * cell_area[cell_of]))
    out = np.zeros(m.size, bool)
    out[idx[keep]] = True
    return out.reshape(m.shape)


def _histograms(rng):
    hists = [np.bincount(rng.normal(mu, sd, n).clip(0, 255).astype(np.uint8), minlength=256)
             for mu, sd, n in [(128, 5, 5000), (140, 30, 20000), (30, 2, 100), (250, 9, 700)]]
    hists += [np.bincount(np.concatenate([rng.normal(120, 4, 30000), rng.normal(150, 8, 4000),
                                          rng.normal(175, 6, 900)]).clip(0, 255)
                          .astype(np.uint8), minlength=256)]
    hists += [rng.integers(0, 5, 256) * (rng.random(256) < p) for p in (0.02, 0.3, 1.0)]
    one = np.zeros(256)
    one[77] = 40
    two = np.zeros(256)
    two[[3, 250]] = [5, 1]
    for f in sorted(TALEGHANI.glob("*/*.jpg"))[::400]:    # real fields, when present
        lab = cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2LAB)
        hists += [np.bincount(lab[..., c].ravel(), minlength=256) for c in range(3)]
    return [h.astype(np.float64) for h in hists + [one, two, np.zeros(256)]]


@pytest.mark.parametrize("k", [2, 3, 4, 6])
def test_kmeans_kernel_equals_numpy_loop(rng, k):
    for h in _histograms(rng):
        for max_iter in (0, 1, 3, 100):
            got = TH.kmeans_on_histogram(h, k, max_iter=max_iter)
            want = _kmeans_numpy(h, k, max_iter=max_iter)
            for g, w in zip(got, want):
                np.testing.assert_array_equal(g, w)
    h = _histograms(rng)[1]
    got = TH.kmeans_on_histogram(h, 3, init=[10.0, 100.0, 200.0])
    want = _kmeans_numpy(h, 3, init=[10.0, 100.0, 200.0])
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def test_histogram_kernels_equal_opencv(rng):
    """The a* histogram and the b* histograms on either side of the a* cut
    are the row and column sums of OpenCV's joint (a*, b*) histogram, and
    the mask is ``a* >= cut``."""
    imgs = [rng.integers(0, 256, (37, 53, 3), dtype=np.uint8),
            np.full((5, 6, 3), 200, np.uint8)]
    imgs += [cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2LAB)
             for f in sorted(TALEGHANI.glob("*/*.jpg"))[::800]]
    for lab in imgs:
        joint = cv2.calcHist([lab], [1, 2], None, [256, 256], [0, 256, 0, 256])
        np.testing.assert_array_equal(K.channel_histogram(lab, 1), joint.sum(axis=1))
        for cut in (0, 1, 137, 200, 255):
            raw = np.empty(lab.shape[:2], np.uint8)
            b_in, b_out = K.split_by_threshold(lab, cut, raw)
            np.testing.assert_array_equal(b_in, joint[cut:].sum(axis=0))
            np.testing.assert_array_equal(b_out, joint[:cut].sum(axis=0))
            np.testing.assert_array_equal(raw, cv2.compare(lab[..., 1], cut, cv2.CMP_GE))


def test_label_counts_equal_bincount(rng):
    """Areas and nucleus areas per label, compiled and numpy paths alike."""
    labels = rng.integers(0, 6, (40, 30)).astype(np.int32)
    nucleus = rng.random((40, 30)) < 0.3
    seg = S.Segmentation(labels > 0, nucleus & (labels > 0), labels)
    areas, nuc = seg.label_counts()
    np.testing.assert_array_equal(areas, np.bincount(labels.ravel(), minlength=6))
    np.testing.assert_array_equal(nuc, np.bincount(labels[seg.nucleus], minlength=6))
    np.testing.assert_array_equal(seg.areas(), areas[1:])
    # the numpy path (int64 labels) agrees
    seg64 = S.Segmentation(seg.mask, seg.nucleus, labels.astype(np.int64))
    for a, b in zip(seg64.label_counts(), (areas, nuc)):
        np.testing.assert_array_equal(a, b)
    # sparse label numbers and no cell
    sparse = np.where(labels == 3, 1000, 0).astype(np.int32)
    s2 = S.Segmentation(sparse > 0, nucleus & (sparse > 0), sparse)
    assert s2.areas()[999] == (labels == 3).sum() and s2.areas()[:999].sum() == 0
    assert S.Segmentation.empty((4, 5)).areas().size == 0


def test_label_boxes_equal_bounding_rect(rng):
    labels = np.zeros((50, 61), np.int32)
    for v in range(1, 8):
        r, c = rng.integers(0, 45), rng.integers(0, 55)
        labels[r:r + rng.integers(1, 6), c:c + rng.integers(1, 7)] = v
    labels[0, 60] = 3                                          # a label in two pieces
    labels[labels == 5] = 0                                    # and one absent
    boxes = K.label_boxes(labels, 7)
    for v in range(1, 8):
        x, y, w, h = cv2.boundingRect((labels == v).view(np.uint8))
        want = (y, y + h, x, x + w) if w else (0, 0, 0, 0)
        assert tuple(boxes[v]) == want
    assert K.label_boxes(labels, 2).shape == (0, 4)            # label 3 > n: refused
    assert K.label_boxes(-labels, 7).shape == (0, 4)


def test_otsu_kernel_equals_numpy(rng):
    for h in _histograms(rng):
        got, want = TH.otsu_from_hist(h), _otsu_numpy(h)
        assert (np.isnan(got) and np.isnan(want)) or got == want


def test_drop_specks_kernel_equals_numpy(rng):
    for seed in range(12):
        r = np.random.default_rng(seed)
        cells_mask = ndi.gaussian_filter(r.random((90, 120)), 4) > 0.5
        cells = ndi.label(cells_mask, structure=np.ones((3, 3)))[0].astype(np.int32)
        dark = cells_mask & (ndi.gaussian_filter(r.random((90, 120)), 1.5) > 0.55)
        parts = ndi.label(dark, structure=np.ones((3, 3)))[0].astype(np.int32)
        if seed % 3 == 0:   # cells touching (a watershed split): pieces straddle two cells
            cells = np.where(cells_mask, 1 + (np.arange(120)[None, :] > 60), 0).astype(np.int32)
        for frac in (0.0, 0.02, 0.2):
            got = TH._drop_specks(parts, cells_mask, cells, frac)
            want = _drop_specks_numpy(parts, cells_mask, cells, frac)
            assert got.dtype == bool
            np.testing.assert_array_equal(got, want)
    empty = np.zeros((5, 5), np.int32)
    assert not TH._drop_specks(empty, empty > 0, empty, 0.02).any()


def _nucleus_pieces_contours(dark, smooth):
    """The former nucleus pieces: opening, outer contours of at least 2 filled
    pixels drawn filled, labelled (reference of the flood-fill form)."""
    m = cv2.morphologyEx(dark, cv2.MORPH_OPEN, MO.disk(smooth)) if smooth else dark
    cs, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cs = [c for c in cs if cv2.contourArea(c) + len(c) / 2.0 + 1.0 >= 2]
    filled = np.zeros(m.shape, np.uint8)
    cv2.drawContours(filled, cs, -1, 1, thickness=-1)
    return cv2.connectedComponents(filled, connectivity=8, ltype=cv2.CV_32S)[1]


def test_nucleus_pieces_equal_contour_fill():
    """Flood-filled pieces give the nucleus the contour-drawing form gave,
    on blobby masks with holes, specks and single pixels, and cells that
    touch the border."""
    for seed in range(16):
        r = np.random.default_rng(seed)
        shape = (80 + seed, 110 - seed)
        cells_mask = ndi.gaussian_filter(r.random(shape), 4) > 0.5
        cells = ndi.label(cells_mask, structure=np.ones((3, 3)))[0].astype(np.int32)
        ch = (ndi.gaussian_filter(r.random(shape), 1.0 + seed % 3) * 255).astype(np.uint8)
        ch[r.random(shape) < 0.02] = 0                      # single dark pixels
        for smooth in (0, 1, 2):
            got = TH.nucleus_from_channel(ch, cells_mask, cells, min_contrast=0.0,
                                          smooth=smooth)
            hist = np.bincount(ch[cells_mask], minlength=256).astype(np.float64)
            if not cells_mask.any() or np.isnan(TH.otsu_from_hist(hist)):
                continue
            t = int(TH.otsu_from_hist(hist))
            dark = ((ch <= t) & cells_mask).astype(np.uint8) * 255
            want = _drop_specks_numpy(_nucleus_pieces_contours(dark, smooth), cells_mask,
                                      cells, 0.02)
            np.testing.assert_array_equal(got, want)


# ---------------------------------------------------------------- morphology
def test_fill_holes_equals_scipy(rng):
    for _ in range(10):
        m = ndi.binary_opening(rng.random((60, 70)) > 0.45)
        np.testing.assert_array_equal(S.fill_holes(m), ndi.binary_fill_holes(m))


def test_remove_small_counts_components(rng):
    m = rng.random((80, 80)) > 0.7
    out = S.remove_small(m, 5)
    lab, n = ndi.label(m, structure=np.ones((3, 3)))
    sizes = np.bincount(lab.ravel())
    expected = (sizes >= 5)[lab] & m
    np.testing.assert_array_equal(out, expected)
    lab4, _ = ndi.label(m)
    expected4 = (np.bincount(lab4.ravel()) >= 5)[lab4] & m
    np.testing.assert_array_equal(S.remove_small(m, 5, connectivity=4), expected4)
    with pytest.raises(ValueError, match="connectivity"):
        S.remove_small(m, 5, connectivity=6)


def test_remove_small_holes():
    m = np.ones((20, 20), bool)
    m[2, 2] = False          # 1-pixel hole
    m[8:14, 8:14] = False    # 36-pixel hole
    out = S.remove_small_holes(m, 10)
    assert out[2, 2] and not out[10, 10]


def test_opening_and_closing():
    m = disc((40, 40), (20, 20), 10)
    spur = m.copy()
    spur[20, 30:39] = True              # 1-px spur
    assert not S.opening(spur, 1)[20, 36]
    assert iou(S.opening(spur, 1), m) > 0.95
    gap = m.copy()
    gap[:, 20] = False                  # 1-px cut
    closed = S.closing(gap, 1)
    assert closed[20, 20] and iou(closed, m) > 0.97
    # closing does not eat an object touching the border
    edge = np.zeros((20, 20), bool)
    edge[:, :5] = True
    np.testing.assert_array_equal(S.closing(edge, 2), edge)
    with pytest.raises(ValueError, match="mask"):
        S.opening(np.zeros((3, 3, 3)), 1)


def test_split_touching_two_discs_and_single_shapes():
    two = disc((80, 120), (40, 40), 20) | disc((80, 120), (40, 75), 20)
    lab = S.split_touching(two)
    assert lab.max() == 2
    # each piece is roughly one disc
    sizes = np.sort(np.bincount(lab.ravel())[1:])
    assert sizes[0] > 0.8 * sizes[1]
    one = disc((80, 80), (40, 40), 25)
    assert S.split_touching(one).max() == 1
    ell = np.zeros((80, 120), np.uint8)
    cv2.ellipse(ell, (60, 40), (45, 20), 30, 0, 360, 1, -1)
    assert S.split_touching(ell.astype(bool)).max() == 1
    assert S.split_touching(np.zeros((10, 10), bool)).max() == 0


# ---------------------------------------------------------------- LoG edges
def test_log_edges_response_and_crossings():
    img = (disc((64, 64), (32, 32), 15) * 200 + 30).astype(np.uint8)
    resp, edges = S.log_edges(img, sigma=2.0)
    ref = ndi.gaussian_laplace(img.astype(float) / 255, 2.0) * 4.0
    np.testing.assert_allclose(resp, ref, atol=1e-12)
    assert edges.any()
    # every edge pixel is near the true boundary
    boundary = disc((64, 64), (32, 32), 15) ^ ndi.binary_erosion(disc((64, 64), (32, 32), 15))
    dist = ndi.distance_transform_edt(~boundary)
    assert dist[edges].max() <= 3.0
    # RGB input gives the grey response
    rgb = np.dstack([img] * 3)
    np.testing.assert_allclose(S.log_edges(rgb, 2.0)[0], resp, atol=1e-12)
    with pytest.raises(ValueError, match="sigma"):
        S.log_edges(img, 0)


# ---------------------------------------------------------------- result object
def test_segmentation_object_crop_overlay_select():
    img = np.full((60, 80, 3), 230, np.uint8)
    mask = disc((60, 80), (30, 25), 12) | disc((60, 80), (30, 62), 8)
    nuc = disc((60, 80), (30, 25), 6)
    seg = S.Segmentation.from_masks(mask, nuc)
    assert seg.n_cells == 2 and seg.cell_ids() == [1, 2]
    np.testing.assert_array_equal(seg.cytoplasm, mask & ~nuc)
    assert seg.largest() == 1
    crop = seg.crop(1, img, margin=3)
    assert crop.image.shape[:2] == crop.mask.shape
    assert crop.area == disc((60, 80), (30, 25), 12).sum()
    assert crop.nucleus.sum() == nuc.sum()
    assert not crop.touches_border
    r0, c0, r1, c1 = crop.bbox
    assert (r0, c0) == (30 - 12 - 3, 25 - 12 - 3)
    ov = seg.overlay(img)
    assert ov.shape == img.shape and ov.dtype == np.uint8
    assert (ov != img).any(axis=2).sum() > 0
    assert (img == 230).all()  # input untouched
    only = seg.select(2)
    assert only.n_cells == 1 and only.mask.sum() == disc((60, 80), (30, 62), 8).sum()
    masked = seg.masked(img)
    assert (masked[~mask] == 0).all() and (masked[mask] == 230).all()
    with pytest.raises(IndexError, match="label"):
        seg.crop(3, img)
    with pytest.raises(ValueError, match="image"):
        seg.crop(1, img[:10])


def test_empty_segmentation():
    e = S.Segmentation.empty((10, 12))
    assert e.n_cells == 0 and e.largest() == 0 and e.areas().size == 0
    assert e.mask.shape == (10, 12) and not e.mask.any()


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("fn", [S.lab_kmeans, S.hsv_threshold, S.otsu, S.cells])
@pytest.mark.parametrize("bad", [
    np.zeros((10,), np.uint8),                       # wrong ndim
    np.zeros((10, 10, 3, 2), np.uint8),              # wrong ndim
    np.full((10, 10, 3), np.nan),                    # NaN
    np.zeros((0, 0, 3), np.uint8),                   # empty
    np.zeros((1, 1, 3), np.uint8),                   # 1x1
    np.zeros((10, 10, 5), np.uint8),                 # channels
    np.array([["a"]]),                               # not numeric
])
def test_bad_input_names_argument(fn, bad):
    with pytest.raises(ValueError, match="image"):
        fn(bad)


def test_bad_options():
    img = np.full((20, 20, 3), 200, np.uint8)
    with pytest.raises(ValueError, match="method"):
        S.segment(img, "nope")
    with pytest.raises(ValueError, match="channel"):
        S.otsu(img, channel="nope")
    with pytest.raises(ValueError, match="lower"):
        S.hsv_threshold(img, lower=(1, 2))
    with pytest.raises(ValueError, match="min_size"):
        S.lab_kmeans(img, min_size=-1)
    with pytest.raises(TypeError, match="method"):
        S.segment(img, lambda im: None)


@pytest.mark.parametrize("fn", [S.lab_kmeans, S.hsv_threshold])
def test_no_white_cell_gives_empty_segmentation(fn, rng):
    blank = np.full((64, 64, 3), (235, 230, 225), np.uint8)
    assert fn(blank).n_cells == 0
    noisy = np.clip(blank + rng.normal(0, 2, blank.shape), 0, 255).astype(np.uint8)
    assert fn(noisy).n_cells == 0
    # red cells only (pink discs on pale background): nothing is a white cell
    red = noisy.copy()
    for c in [(15, 15), (15, 45), (45, 30)]:
        red[disc((64, 64), c, 9)] = (214, 170, 170)
    seg = fn(red)
    assert seg.n_cells == 0, seg


def test_float_image_is_accepted():
    data = make_cells(1, random_state=3)
    img = data.images[0]
    a = S.lab_kmeans(img)
    b = S.lab_kmeans(img.astype(np.float64) / 255.0)
    np.testing.assert_array_equal(a.mask, b.mask)


# ---------------------------------------------------------------- ground truth
@pytest.fixture(scope="module")
def synthetic():
    return make_cells(40, n_classes=2, size=128, random_state=7)


@pytest.mark.parametrize("method", ["lab_kmeans", "hsv"])
def test_segmenters_recover_make_cells_masks(synthetic, method):
    ious = [iou(S.segment(im, method).mask, gt)
            for im, gt in zip(synthetic.images, synthetic.masks)]
    assert np.mean(ious) >= 0.9, np.round(ious, 3)
    assert np.percentile(ious, 10) >= 0.85


def test_nucleus_split_recovers_make_cells_nuclei(synthetic):
    ious = [iou(S.lab_kmeans(im).nucleus, gt)
            for im, gt in zip(synthetic.images, synthetic.nucleus)]
    assert np.mean(ious) >= 0.85, np.round(ious, 3)
    # split_nucleus on the true cell mask as well
    ious2 = [iou(S.split_nucleus(im, m), gt)
             for im, m, gt in zip(synthetic.images, synthetic.masks, synthetic.nucleus)]
    assert np.mean(ious2) >= 0.85


def test_nucleus_specks_are_relative_to_their_own_cell():
    # a big cell (~10,000 px) and a small one (~450 px) in one field: the small
    # cell's nucleus (~110 px) is 1 % of all the stained area but 25 % of its
    # own cell, so it is kept; a 5 px dark speck in the big cell is dropped
    shape = (160, 260)
    img = np.full(shape + (3,), (236, 232, 228), np.uint8)
    big, small = disc(shape, (80, 80), 56), disc(shape, (80, 210), 12)
    img[big | small] = (200, 170, 220)                 # pale cytoplasm
    nuc_big, nuc_small = disc(shape, (80, 80), 30), disc(shape, (80, 210), 6)
    img[nuc_big | nuc_small] = (90, 40, 130)           # dark nucleus
    speck = np.zeros(shape, bool)
    speck[30:32, 60:63] = True
    img[speck] = (90, 40, 130)
    cells = big | small
    # bool mask, label image, and 0/1 and 0/255 uint8 masks (one label value:
    # still a mask whose objects are the cells, not one cell)
    for mask in (cells, ndi.label(cells)[0], cells.astype(np.uint8),
                 cells.astype(np.uint8) * 255):
        nuc = S.split_nucleus(img, mask, smooth=0)
        assert iou(nuc[:, 150:], nuc_small[:, 150:]) > 0.95
        assert iou(nuc[:, :150], nuc_big[:, :150]) > 0.95
        assert not (nuc & speck).any()


def test_nucleus_of_every_cell_in_a_many_cell_field(synthetic):
    # 40 synthetic fields tiled into one 640 x 1024 smear (an ALL-IDB1-like
    # field): every cell keeps its nucleus, as it does in its own field
    rows = [np.concatenate(synthetic.images[8 * i:8 * i + 8], 1) for i in range(5)]
    truth = [np.concatenate(synthetic.nucleus[8 * i:8 * i + 8], 1) for i in range(5)]
    field, gt = np.concatenate(rows, 0), np.concatenate(truth, 0)
    seg = S.lab_kmeans(field)
    assert seg.n_cells == 40
    assert iou(seg.nucleus, gt) >= 0.85
    with_nucleus = np.unique(seg.labels[seg.nucleus])
    assert with_nucleus.size == 40


def test_segmentation_invariants(synthetic):
    for im in synthetic.images[:10]:
        for method in ("lab_kmeans", "hsv", "otsu"):
            seg = S.segment(im, method)
            assert seg.mask.dtype == bool and seg.labels.dtype == np.int32
            assert not (seg.nucleus & ~seg.mask).any()
            np.testing.assert_array_equal(seg.labels > 0, seg.mask)
            assert set(np.unique(seg.labels)) == set(range(seg.n_cells + 1))


def test_cells_cuts_every_white_cell():
    data = make_cells(6, n_white_cells=(2, 3), size=192, random_state=11)
    for im, lab in zip(data.images, data.cell_labels):
        crops = S.cells(im)
        assert len(crops) == lab.max()
        assert [c.area for c in crops] == sorted((c.area for c in crops), reverse=True)
        for c in crops:
            assert c.image.shape[:2] == c.mask.shape == c.nucleus.shape
            assert c.mask.any() and not (c.nucleus & ~c.mask).any()


def test_cells_exclude_border():
    img = np.full((80, 80, 3), (236, 232, 228), np.uint8)
    purple = (120, 60, 160)
    img[disc((80, 80), (40, 40), 12)] = purple
    img[disc((80, 80), (5, 70), 10)] = purple     # cut by the border
    assert len(S.cells(img)) == 2
    kept = S.cells(img, exclude_border=True)
    assert len(kept) == 1 and not kept[0].touches_border
    assert S.lab_kmeans(img, exclude_border=True).n_cells == 1


# ---------------------------------------------------------------- real data
@pytest.mark.shared_data
@pytest.mark.slow
def test_taleghani_cells_found_in_99_percent():
    from leukfeat.io import read_image

    files = taleghani_files()
    missing = [f for f in files if not S.cells(read_image(f))]
    assert len(missing) <= 0.01 * len(files), missing[:20]


@pytest.mark.shared_data
def test_taleghani_hsv_threshold_finds_stained_cells():
    from leukfeat.io import read_image

    files = taleghani_files(step=16)  # ~200 images over all classes
    empty, bad, n_cells = 0, 0, 0
    for f in files:
        im = read_image(f)
        seg = S.hsv_threshold(im)
        if seg.n_cells == 0:
            empty += 1
            continue
        a = cv2.cvtColor(im, cv2.COLOR_RGB2LAB)[..., 1].astype(float)
        bg_a = np.median(a[~seg.mask])
        for c in seg.cell_ids():
            n_cells += 1
            bad += a[seg.labels == c].mean() - bg_a < 10
    assert empty <= 0.01 * len(files)
    assert bad <= 0.01 * n_cells


@pytest.mark.shared_data
def test_taleghani_masks_cover_purple_cells_not_red_cells():
    """Each found cell must be stained: much more magenta (CIELAB a*) than the
    field around it, and bluer than red (B > R is not required: Wright
    stain purple has R ~ B); red cells here are grey-blue with a* near the
    background's."""
    from leukfeat.io import read_image

    files = taleghani_files(step=10)  # ~330 images over all classes
    bad = []
    n_cells = 0
    for f in files:
        im = read_image(f)
        lab = cv2.cvtColor(im, cv2.COLOR_RGB2LAB).astype(float)
        seg = S.lab_kmeans(im)
        bg_a = np.median(lab[..., 1][~seg.mask])
        for c in seg.cell_ids():
            px = lab[seg.labels == c]
            n_cells += 1
            if px[:, 1].mean() - bg_a < 10:
                bad.append((f.name, c, px[:, 1].mean() - bg_a))
    assert n_cells > len(files)
    assert len(bad) <= 0.01 * n_cells, bad[:10]


@pytest.mark.shared_data
def test_taleghani_contact_sheet(tmp_path_factory):
    """Save overlays for a person to look at (benchmarks/output, not committed)."""
    from leukfeat.io import read_image
    from pathlib import Path

    files = taleghani_files(step=68)[:48]
    tiles = [S.lab_kmeans(read_image(f)).overlay(read_image(f)) for f in files]
    tiles += [np.zeros_like(tiles[0])] * (-len(tiles) % 8)
    sheet = np.vstack([np.hstack(tiles[i:i + 8]) for i in range(0, len(tiles), 8)])
    out = Path(__file__).resolve().parents[1] / "benchmarks" / "output"
    out.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(out / "taleghani_overlays.png"), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))


def test_segmentation_owns_its_cells():
    """boxes (one compiled pass) equal regionprops; iter_cells yields the
    same crops as crop() per label, in label order, each cut from its box;
    labels with gaps and a segmentation without cells are handled."""
    from skimage.measure import regionprops

    from leukfeat.datasets import make_cells
    from leukfeat.segment import Segmentation, segment as run

    image = make_cells(1, size=(200, 260), n_white_cells=3, random_state=9).images[0]
    seg = run(image)
    assert seg.n_cells == 3
    props = {p.label: p for p in regionprops(seg.labels)}
    assert {lab: (b[0], b[2], b[1], b[3]) for lab, b in seg.boxes.items()} == \
        {lab: p.bbox for lab, p in props.items()}
    crops = list(seg.iter_cells(image, margin=5))
    assert [c.label for c in crops] == [1, 2, 3]
    for c in crops:
        one = seg.crop(c.label, image, margin=5)
        for a, b in ((c.image, one.image), (c.mask, one.mask), (c.nucleus, one.nucleus)):
            np.testing.assert_array_equal(a, b)
        r0, c0, r1, c1 = c.bbox
        np.testing.assert_array_equal(c.mask, seg.labels[r0:r1, c0:c1] == c.label)
        assert c.mask.sum() == props[c.label].area
        assert not np.shares_memory(c.image, image)
    assert [c.image for c in seg.iter_cells()] == [None] * 3
    gaps = Segmentation(seg.mask, seg.nucleus, np.where(seg.labels == 2, 7, seg.labels))
    assert sorted(gaps.boxes) == [1, 3, 7] and [c.label for c in gaps.iter_cells()] == [1, 3, 7]
    assert list(Segmentation.empty((5, 6)).iter_cells()) == []
    with pytest.raises(IndexError, match="empty"):
        gaps.crop(2, image)
