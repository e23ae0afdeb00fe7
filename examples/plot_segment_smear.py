"""
Segment the white cells of a smear field
========================================

Generate a synthetic stained smear with :func:`leukfeat.datasets.make_cells`,
segment it with the default segmenter
(:func:`leukfeat.segment.nucleus_anchored`), and compare with the ground
truth. Pass an image path as the first argument to segment your own field
instead.
"""

import sys

from leukfeat import datasets, io, segment

if len(sys.argv) > 1:
    image = io.read_image(sys.argv[1])
    truth = None
else:
    data = datasets.make_cells(1, size=256, n_white_cells=(2, 3), random_state=0)
    image, truth = data.images[0], data.masks[0]

seg = segment.segment(image)
print(seg)
if truth is not None:
    iou = (seg.mask & truth).sum() / (seg.mask | truth).sum()
    print(f"IoU with the ground truth: {iou:.3f}")

for cell in segment.cells(image, exclude_border=True):
    nc = cell.nucleus.sum() / max(cell.cytoplasm.sum(), 1)
    print(f"cell {cell.label}: {cell.area} px, bbox {cell.bbox}, N:C area ratio {nc:.2f}")

try:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(8, 4))
    ax[0].imshow(image)
    ax[0].set_title("field")
    ax[1].imshow(seg.overlay(image))
    ax[1].set_title(f"{seg.n_cells} white cell(s)")
    for a in ax:
        a.set_axis_off()
    fig.tight_layout()
    if "sphinx_gallery" not in sys.modules:
        fig.savefig("segment_smear.png", dpi=100)
except ImportError:  # pragma: no cover
    pass
