"""
Segment the white cells of a smear field and measure each one
=============================================================

The whole of leukfeat on one image: read a smear field, segment every
white cell with the default segmenter
(:func:`leukfeat.segment.nucleus_anchored`), cut one crop per cell and
measure each cell with the default handcrafted features, one named row per
cell (:func:`leukfeat.extract.features_per_cell`).

The field is a Taleghani ALL smear (Aria et al.; early Pre-B ALL) when
``$LEUKFEAT_SHARED_DATA`` (or ``../shared/data`` beside the checkout) holds
that set, else a synthetic field (:func:`leukfeat.datasets.make_cells`).
Pass an image path as the first argument to segment your own field instead
(``python examples/plot_segment_smear.py my_field.jpg``). The last part
checks the segmenter against the known ground truth of a synthetic field.
"""

import os
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from leukfeat import datasets, extract, io, plot, preprocess, segment


def public_field():
    """A Taleghani ALL field with seven white cells, or None when the set is absent."""
    here = Path(globals().get("__file__", "plot_segment_smear.py")).resolve()
    roots = [os.environ.get("LEUKFEAT_SHARED_DATA"), here.parents[2] / "shared" / "data"]
    for root in (Path(r) for r in roots if r):
        path = root / "taleghani-all" / "Early" / "WBC-Malignant-Early-397.jpg"
        if path.is_file():
            return path
    return None


if len(sys.argv) > 1:
    image, source = io.read_image(sys.argv[1]), Path(sys.argv[1]).name
elif public_field() is not None:
    image, source = io.read_image(public_field()), "Taleghani ALL field (early Pre-B)"
else:
    image = datasets.make_cells(1, size=(240, 320), n_white_cells=4, n_red_cells=(25, 30),
                                random_state=1).images[0]
    source = "synthetic field"

# %%
# Segment, cut and measure
# ------------------------
# :func:`~leukfeat.segment.segment` returns a
# :class:`~leukfeat.segment.Segmentation`: the white-cell mask, the nucleus
# mask and one label per cell. ``iter_cells`` cuts each cell out with its own
# masks; ``features_per_cell`` gives one ordered ``name -> value`` row per
# cell, in label order.

seg = segment.segment(image)
print(seg)
crops = list(seg.iter_cells(image))
rows = extract.features_per_cell(image, seg)
names = extract.feature_names()
for crop, row in zip(crops, rows):
    print(f"cell {crop.label}: {crop.area} px, N:C ratio {row['shape_nc_ratio']:.2f}, "
          f"nucleus circularity {row['shape_nucleus_circularity']:.2f}")

# %%
# From the image to the feature table
# -----------------------------------
# The field, its segmentation (cell outlines green, nuclei yellow, each cell
# numbered), one crop per cell, and five of the 428 features of every cell,
# each column scaled to its mean and spread over the cells of this field.

shown = ["shape_cell_area", "shape_nc_ratio", "shape_nucleus_circularity",
         "glcm_contrast_d1_mean", "colour_nucleus_lab_a_mean"]
table = np.array([[row[n] for n in shown] for row in rows] or [[np.nan] * len(shown)])
with np.errstate(all="ignore"):   # a field without a cell: one row of NaN
    scaled = (table - np.nanmean(table, axis=0)) / np.nanstd(table, axis=0)

fig, ax = plt.subplots(1, 4, figsize=(13, 3.4), layout="constrained",
                       gridspec_kw={"width_ratios": [1, 1, 1, 1.1]})
ax[0].imshow(image)
ax[0].set_title(f"1. read: {source}", fontsize=9)
ax[0].set_axis_off()
plot.segmentation_overlay(image, seg, ax=ax[1],
                          title=f"2. segment: {seg.n_cells} white cell(s)")
ax[1].title.set_fontsize(9)
for label, (_, _, row0, col0, *_) in seg.cell_geometry().items():   # top left of its box
    ax[1].text(col0, row0, str(label), fontsize=7, ha="center", va="center",
               bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.8})

tile, cols = 64, 4
n_rows = max(1, -(-len(crops) // cols))
mosaic = np.full((n_rows * (tile + 4), cols * (tile + 4), 3), 255, np.uint8)
for k, crop in enumerate(crops[:cols * n_rows]):
    r, c = divmod(k, cols)
    mosaic[r * (tile + 4) + 2:r * (tile + 4) + 2 + tile,
           c * (tile + 4) + 2:c * (tile + 4) + 2 + tile] = preprocess.resize(
               crop.image, (tile, tile), keep_aspect=True, pad_value=255)
    ax[2].text(c * (tile + 4) + 6, r * (tile + 4) + 12, str(crop.label), fontsize=7)
ax[2].imshow(mosaic)
ax[2].set_title("3. cut: one crop per cell", fontsize=9)
ax[2].set_axis_off()

heat = ax[3].imshow(scaled, cmap="coolwarm", aspect="auto", vmin=-2, vmax=2)
fig.colorbar(heat, ax=ax[3], label="SD from the field's mean", shrink=0.8)
ax[3].set_xticks(range(len(shown)), shown, rotation=30, ha="right", fontsize=7)
ax[3].set_yticks(range(len(table)), [f"cell {c.label}" for c in crops] or ["none"], fontsize=7)
ax[3].set_title(f"4. extract: {len(names)} features per cell", fontsize=9)
if "sphinx_gallery" not in sys.modules:
    fig.savefig("segment_smear.png", dpi=100)

# %%
# Check against the ground truth
# -------------------------------
# :func:`~leukfeat.datasets.make_cells` draws smears whose white-cell masks
# are known, so the segmentation can be scored: intersection over union of
# the found cells with the true ones. :func:`leukfeat.segment.cells` cuts the
# cells in one call (here leaving out any cell cut by the border).

data = datasets.make_cells(1, size=256, n_white_cells=(2, 3), random_state=0)
synthetic, truth = data.images[0], data.masks[0]
found = segment.segment(synthetic)
iou = (found.mask & truth).sum() / (found.mask | truth).sum()
print(f"synthetic field: {found.n_cells} white cell(s); IoU with the ground truth: {iou:.3f}")
for cell in segment.cells(synthetic, exclude_border=True):
    nc = cell.nucleus.sum() / max(cell.cytoplasm.sum(), 1)
    print(f"cell {cell.label}: {cell.area} px, bbox {cell.bbox}, N:C area ratio {nc:.2f}")
check = plot.segmentation_overlay(synthetic, found,
                                  title=f"synthetic field: IoU {iou:.3f} with the truth")
