"""Your own masks in, label images out (issue #29 items 5 and 6).

Masks from elsewhere (Cellpose/QuPath/CellProfiler label images, binary
masks, 0/128/255 nucleus-cytoplasm ground truth) replace segmentation in
:func:`leukfeat.segment.from_mask`, ``FeatureExtractor`` (``(image, mask)``
items) and ``leukfeat extract --masks``; ``leukfeat segment`` writes 16-bit
label TIFFs that other tools (tifffile, scikit-image) read back as
``Segmentation.labels``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from skimage.measure import label as sk_label
from skimage.measure import regionprops

from _shared import SHARED
from leukfeat import extract, io, segment
from leukfeat.datasets import make_cells
from leukfeat.io import ImageReadError, read_mask
from leukfeat.segment import Segmentation, from_mask
from leukfeat.transformers import FeatureExtractor

GROUPS = ("shape", "colour")


@pytest.fixture(scope="module")
def field():
    """A synthetic field of three white cells with its exact ground truth."""
    data = make_cells(1, size=(240, 320), n_white_cells=3, n_red_cells=(15, 20),
                      random_state=21)
    return data.images[0], data.masks[0], data.nucleus[0]


def test_read_mask_keeps_values(tmp_path):
    labels = np.zeros((30, 40), np.uint16)
    labels[2:10, 2:10] = 1
    labels[12:20, 20:35] = 40000
    cv2.imwrite(str(tmp_path / "l.tif"), labels)
    cv2.imwrite(str(tmp_path / "l.png"), labels)
    for name in ("l.tif", "l.png"):
        got = read_mask(tmp_path / name)
        assert got.dtype == np.uint16 and np.array_equal(got, labels)
    coded = np.zeros((30, 40), np.uint8)
    coded[5:25, 5:25] = 128
    coded[10:20, 10:20] = 255
    cv2.imwrite(str(tmp_path / "c.bmp"), np.dstack([coded] * 3))      # grey saved as colour
    assert np.array_equal(read_mask(tmp_path / "c.bmp"), coded)
    colour = np.zeros((30, 40, 3), np.uint8)
    colour[..., 2] = 200
    cv2.imwrite(str(tmp_path / "colour.png"), colour)
    with pytest.raises(ImageReadError, match=r"cannot read mask .*colour channels differ"):
        read_mask(tmp_path / "colour.png")
    with pytest.raises(ImageReadError, match=r"cannot read mask .*no such file"):
        read_mask(tmp_path / "missing.png")


def test_from_mask_kinds_against_the_ground_truth(field):
    image, mask, nucleus = field
    cells = sk_label(mask, connectivity=2)
    # label image (16-bit, labels not consecutive): kept apart, renumbered, mapped back
    source = np.where(cells > 0, cells * 1000 + 7, 0).astype(np.uint16)
    seg = from_mask(image, source)
    assert seg.info["mask_kind"] == "labels" and seg.n_cells == cells.max() == 3
    assert np.array_equal(seg.mask, mask)
    for new, old in seg.info["source_labels"].items():
        assert np.array_equal(seg.labels == new, source == old)
    # the nucleus of each cell is its darker part: close to the painted one
    dice = 2 * (seg.nucleus & nucleus).sum() / (seg.nucleus.sum() + nucleus.sum())
    assert dice > 0.85, dice
    # binary (bool and 0/255) and 0/128/255 coding
    for binary in (mask, mask.astype(np.uint8) * 255):
        seg_b = from_mask(image, binary)
        assert seg_b.info["mask_kind"] == "binary"
        assert np.array_equal(seg_b.labels, sk_label(mask, connectivity=2))
    coded = np.where(nucleus, 255, np.where(mask, 128, 0)).astype(np.uint8)
    seg_c = from_mask(image, coded)
    assert seg_c.info["mask_kind"] == "nucleus_cytoplasm"
    assert np.array_equal(seg_c.nucleus, nucleus) and np.array_equal(seg_c.mask, mask)
    # an 8-bit label image of two cells reads as coding unless told
    two = np.where(cells == 1, 1, np.where(cells == 2, 2, 0)).astype(np.uint8)
    assert from_mask(image, two).info["mask_kind"] == "nucleus_cytoplasm"
    assert from_mask(image, two, kind="labels").n_cells == 2
    with pytest.raises(ValueError, match="kind"):
        from_mask(image, two, kind="cellpose")
    with pytest.raises(ValueError, match="mask: expected the image's shape"):
        from_mask(image, two[1:])
    with pytest.raises(ValueError, match="mask: labels must not be negative"):
        from_mask(image, -two.astype(np.int16))
    with pytest.raises(ValueError, match="exactly three values"):
        from_mask(image, source, kind="nucleus_cytoplasm")


def test_cell_geometry_matches_regionprops(field):
    image, mask, _ = field
    seg = from_mask(image, mask)
    geometry = seg.cell_geometry()
    props = regionprops(seg.labels)
    assert sorted(geometry) == [p.label for p in props]
    for p in props:
        np.testing.assert_allclose(geometry[p.label][:2], p.centroid)
        assert tuple(geometry[p.label][2:]) == p.bbox
    assert Segmentation.empty((5, 5)).cell_geometry() == {}


def test_feature_extractor_takes_image_mask_pairs(field, tmp_path):
    image, mask, nucleus = field
    coded = np.where(nucleus, 255, np.where(mask, 128, 0)).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "f.png"), np.ascontiguousarray(image[..., ::-1]))
    cv2.imwrite(str(tmp_path / "f_mask.png"), coded)
    expected = np.array(list(extract.features(image, from_mask(image, coded),
                                              groups=GROUPS).values()))
    items = [(image, coded), (str(tmp_path / "f.png"), str(tmp_path / "f_mask.png")),
             (image, from_mask(image, coded)), (str(tmp_path / "f.png"), coded)]
    for n_jobs, cache in ((1, None), (2, tmp_path / "cache"), (1, tmp_path / "cache")):
        fx = FeatureExtractor(groups=GROUPS, n_jobs=n_jobs, cache=cache)
        X = fx.fit_transform(items)
        for row in X:
            np.testing.assert_array_equal(row, expected)
    # the mask changes the row (segmentation is skipped, not repeated)
    plain = FeatureExtractor(groups=GROUPS).fit_transform([image])[0]
    assert not np.array_equal(plain, expected)
    fx = FeatureExtractor(groups=GROUPS, on_error="nan")
    with pytest.warns(UserWarning, match="1 of 2 images failed"):
        X = fx.fit_transform([(image, coded), (image, str(tmp_path / "none.png"))])
    assert np.isnan(X[1]).all() and "cannot read mask" in fx.errors_[0]["message"]
    assert fx.errors_[0]["item"].startswith("(<ndarray shape=(240, 320, 3)")


def _cli(*args, cwd):
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    return subprocess.run([sys.executable, "-m", "leukfeat", *map(str, args)], cwd=cwd,
                          env=env, capture_output=True, text=True, encoding="utf-8",
                          timeout=300)


def test_cli_extract_masks_per_cell_with_cellpose_labels(tmp_path):
    """A folder of images and a folder of Cellpose-style 16-bit label masks
    (``<stem>_cp_masks.png``): one row per cell, with the mask's own labels,
    centroid and bounding box, and the features of that cell."""
    data = make_cells(3, size=(200, 260), n_white_cells=2, random_state=5)
    imgs, masks = tmp_path / "images", tmp_path / "masks"
    imgs.mkdir()
    masks.mkdir()
    truth = {}
    for i, (image, mask) in enumerate(zip(data.images, data.masks)):
        stem = f"field{i}"
        cv2.imwrite(str(imgs / f"{stem}.png"), np.ascontiguousarray(image[..., ::-1]))
        labels = (sk_label(mask, connectivity=2) * 11).astype(np.uint16)   # ids 11, 22
        if i < 2:
            cv2.imwrite(str(masks / f"{stem}_cp_masks.png"), labels)
        truth[stem] = (image, labels)
    out = tmp_path / "cells.csv"
    proc = _cli("extract", imgs, "--masks", masks, "--per-cell", "--groups", *GROUPS,
                "--out", out, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "no mask in" in proc.stderr and "field2" in proc.stderr
    table = pd.read_csv(out)
    names = extract.feature_names(GROUPS)
    rows = table[table["error"].isna()]
    assert len(rows) == 4 and sorted(rows["cell_label"]) == [11, 11, 22, 22]
    for _, row in rows.iterrows():
        stem = Path(row["path"]).stem
        image, labels = truth[stem]
        cell = labels == row["cell_label"]
        seg = from_mask(image, labels)
        new = {v: k for k, v in seg.info["source_labels"].items()}[row["cell_label"]]
        (prop,) = regionprops(cell.astype(np.uint8))
        np.testing.assert_allclose([row["centroid_row"], row["centroid_col"]], prop.centroid)
        assert (row["bbox_min_row"], row["bbox_min_col"], row["bbox_max_row"],
                row["bbox_max_col"]) == prop.bbox
        per_cell = {r["cell_label"]: r for r in extract.features_per_cell(image, seg,
                                                                          groups=GROUPS)}
        np.testing.assert_allclose(row[names].to_numpy(float),
                                   list(per_cell[new].values())[1:], rtol=1e-12)
    missing = table[table["path"].str.contains("field2")]
    assert len(missing) == 1 and "cannot read mask" in missing["error"].item()


def test_cli_segment_writes_label_images(tmp_path):
    """``<stem>_labels.tif`` and ``<stem>_nucleus_labels.tif`` are 16-bit
    label images equal to Segmentation.labels, read back by tifffile,
    scikit-image and leukfeat.io.read_mask."""
    tifffile = pytest.importorskip("tifffile")
    from skimage import io as skio

    data = make_cells(2, size=(200, 260), n_white_cells=2, random_state=8)
    for i, image in enumerate(data.images):
        cv2.imwrite(str(tmp_path / f"s{i}.png"), np.ascontiguousarray(image[..., ::-1]))
    proc = _cli("segment", tmp_path / "s0.png", tmp_path / "s1.png", "--out",
                tmp_path / "out", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    summary = pd.read_csv(tmp_path / "out" / "segmentation.csv")
    assert list(summary["labels"]) == ["s0_labels.tif", "s1_labels.tif"]
    for i, image in enumerate(data.images):
        seg = segment.segment(io.read_image(tmp_path / f"s{i}.png"))
        assert seg.n_cells == 2
        labels_file = tmp_path / "out" / f"s{i}_labels.tif"
        for reader in (tifffile.imread, skio.imread, read_mask):
            labels = reader(labels_file)
            assert labels.dtype == np.uint16 and np.array_equal(labels, seg.labels)
        nuclei = tifffile.imread(tmp_path / "out" / f"s{i}_nucleus_labels.tif")
        assert np.array_equal(nuclei, np.where(seg.nucleus, seg.labels, 0))
        # and the label image goes back in as a mask
        again = from_mask(seg_image := io.read_image(tmp_path / f"s{i}.png"),
                          read_mask(labels_file))
        assert np.array_equal(again.labels, seg.labels) and seg_image.shape[:2] == (200, 260)


@pytest.mark.skipif(not (SHARED / "zheng-wbc-d1").is_dir(),
                    reason=f"Zheng D1 not found at {SHARED / 'zheng-wbc-d1'} (set "
                           "LEUKFEAT_SHARED_DATA to the folder holding zheng-wbc-d1)")
def test_expert_masks_of_zheng_d1_are_read_as_nucleus_cytoplasm():
    folder = SHARED / "zheng-wbc-d1"
    for stem in ("001", "002", "003"):
        image = io.read_image(folder / f"{stem}.bmp")
        coded = read_mask(folder / f"{stem}.png")
        seg = from_mask(image, coded)
        assert seg.info["mask_kind"] == "nucleus_cytoplasm"
        assert np.array_equal(seg.nucleus, coded > 192) and np.array_equal(seg.mask, coded > 64)


def test_segmentation_save_round_trips_through_tifffile(field, tmp_path):
    """Segmentation.save writes 16-bit label TIFFs equal to the labels (read by
    tifffile, as napari does), PNG masks, and the overlay only with the image;
    files of a second save replace the first whole."""
    tifffile = pytest.importorskip("tifffile")
    image, mask, nucleus = field
    seg = segment.segment(image)
    assert seg.n_cells == 3
    files = seg.save(tmp_path, "f", image)
    assert set(files) == set(segment.SAVED_FILES)
    assert {p.name for p in files.values()} == {f"f{s}" for s in segment.SAVED_FILES.values()}
    labels = tifffile.imread(files["labels"])
    assert labels.dtype == np.uint16 and np.array_equal(labels, seg.labels)
    assert np.array_equal(tifffile.imread(files["nucleus_labels"]),
                          np.where(seg.nucleus, seg.labels, 0))
    assert np.array_equal(cv2.imread(str(files["mask"]), cv2.IMREAD_UNCHANGED) > 0, seg.mask)
    assert np.array_equal(cv2.imread(str(files["nucleus"]), cv2.IMREAD_UNCHANGED) > 0,
                          seg.nucleus)
    overlay = cv2.imread(str(files["overlay"]))[..., ::-1]
    assert np.array_equal(overlay, seg.overlay(image))
    no_image = seg.select(seg.largest()).save(tmp_path / ".." / tmp_path.name, "f")
    assert "overlay" not in no_image
    assert int(tifffile.imread(files["labels"]).max()) == seg.largest()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporaries left


def test_match_masks_by_stem(tmp_path):
    """match_masks pairs each image with the first mask name found (label
    images before binary masks), never with the image itself, keeps the
    order, and pairs an image without a mask with the first name looked for,
    warning once with the count."""
    imgs = tmp_path / "img"
    masks = tmp_path / "masks"
    imgs.mkdir()
    masks.mkdir()
    for name in ["a.png", "b.tif", "c.jpg"]:
        (imgs / name).write_bytes(b"x")
    for name in ["a_mask.png", "a_labels.tif", "b_cp_masks.png", "b.png"]:
        (masks / name).write_bytes(b"x")
    with pytest.warns(io.ListingWarning, match=r"--masks: no mask .* for 1 of 3 images.*c\.jpg"):
        pairs = io.match_masks([imgs / "b.tif", imgs / "a.png", imgs / "c.jpg"], masks,
                               name="--masks")
    assert [(p.name, m.name) for p, m in pairs] == [
        ("b.tif", "b_cp_masks.png"), ("a.png", "a_labels.tif"), ("c.jpg", "c_labels.tif")]
    # a folder holding the images and their masks: an image is not its own mask
    (imgs / "a_mask.png").write_bytes(b"x")
    with pytest.warns(io.ListingWarning):
        same = io.match_masks([imgs / "a.png", imgs / "b.tif"], imgs)
    assert [m.name for _, m in same] == ["a_mask.png", "b_labels.tif"]
    with pytest.raises(NotADirectoryError, match="--masks: not a folder"):
        io.match_masks([imgs / "a.png"], imgs / "a.png", name="--masks")
