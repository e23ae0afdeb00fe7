"""
How the default segmenter finds white cells
===========================================

:func:`leukfeat.segment.nucleus_anchored`, the default segmenter, works
outwards from the one thing every Romanowsky-type stain shares: the white
cell is the only object of a smear with a dark blue-purple nucleus.

1. **Blue ratio.** ``(b - g) / (b + g)``, with the blue and green channels
   divided by the background's own colour (:func:`leukfeat.segment.blue_ratio`),
   is high only where a nucleus absorbs green light and lets blue through,
   whatever the tint of the background, the red cells or the cytoplasm.
2. **Nuclei.** Two Otsu thresholds of the image's own histogram of that
   ratio seed and grow the nucleus pieces; pieces whose cells hold each other
   (neutrophil lobes, pale chromatin) become one nucleus, and objects too
   small for a white cell (platelets) are dropped.
3. **Cells.** Around each nucleus, a closed contour found by dynamic
   programming on rays from the nucleus separates this cell's cytoplasm
   (a colour model fitted to the cell itself) from the background and the
   red cells (colour models fitted far from every nucleus).

The figure shows the steps on a rapid-stain single-cell image (Zheng et al.
2018, Dataset 1), a CellaVision image with many red cells (Dataset 2) and a
640x480 bright-field smear field (BCCD) when the public sets are found in
``$LEUKFEAT_SHARED_DATA`` (or ``../shared/data`` beside the checkout);
otherwise on synthetic fields from :func:`leukfeat.datasets.make_cells`,
one of them with a pale cytoplasm.
"""

import os
import sys
from pathlib import Path

import numpy as np

from leukfeat import datasets, io, segment


def shared_images():
    """(title, image) of the three public examples, or None when absent."""
    here = Path(globals().get("__file__", "plot_segmentation_steps.py")).resolve()
    roots = [os.environ.get("LEUKFEAT_SHARED_DATA"), here.parents[2] / "shared" / "data"]
    for root in (Path(r) for r in roots if r):
        files = [("Zheng D1 (rapid stain)", root / "zheng-wbc-d1" / "002.bmp"),
                 ("Zheng D2 (CellaVision)", root / "zheng-wbc-d2-dev" / "030.bmp"),
                 ("BCCD field", root / "bccd-dev" / "JPEGImages" / "BloodImage_00000.jpg")]
        if all(p.is_file() for _, p in files):
            return [(title, io.read_image(p)) for title, p in files]
    return None


examples = shared_images()
if examples is None:
    pale = datasets.make_cells(1, size=160, cytoplasm="pale", random_state=4).images[0]
    field = datasets.make_cells(1, size=(240, 320), n_white_cells=3, n_red_cells=(25, 30),
                                random_state=1).images[0]
    lavender = datasets.make_cells(1, size=160, random_state=2).images[0]
    examples = [("synthetic, pale cytoplasm", pale), ("synthetic, lavender", lavender),
                ("synthetic field", field)]

rows = []
for title, image in examples:
    seg = segment.nucleus_anchored(image)
    ratio = segment.blue_ratio(image)
    # nuclei coloured by the cell they belong to: lobes of one cell share a colour
    palette = np.array([[255, 255, 255], [230, 80, 60], [60, 140, 230], [60, 180, 90],
                        [230, 170, 40], [150, 90, 200]], np.uint8)
    nuclei = palette[np.where(seg.nucleus, (seg.labels - 1) % (len(palette) - 1) + 1, 0)]
    rows.append((title, image, ratio, nuclei, seg.overlay(image, thickness=2), seg))
    print(f"{title}: {image.shape[1]}x{image.shape[0]}, {seg.n_cells} white cell(s), "
          f"nucleus thresholds {seg.info['nucleus_thresholds'][0]:.2f} / "
          f"{seg.info['nucleus_thresholds'][1]:.2f}")

try:
    import matplotlib.pyplot as plt
except ImportError:  # pragma: no cover
    sys.exit(0)

fig, axes = plt.subplots(len(rows), 4, figsize=(12, 3 * len(rows)))
for ax_row, (title, image, ratio, nuclei, over, seg) in zip(axes, rows):
    ax_row[0].imshow(image)
    ax_row[0].set_title(title)
    ax_row[1].imshow(ratio, cmap="magma", vmin=-0.2, vmax=0.8)
    ax_row[1].set_title("1. blue ratio")
    ax_row[2].imshow(nuclei)
    ax_row[2].set_title("2. nuclei, one colour per cell")
    ax_row[3].imshow(over)
    ax_row[3].set_title(f"3. {seg.n_cells} white cell(s)")
    for ax in ax_row:
        ax.set_axis_off()
fig.tight_layout()
