"""
VGG13 ALL classifier: Laplacian-of-Gaussian sharpening (``vgg13-log``)
======================================================================

The pre-processing of the VGG13 ALL-classification paper: the image made
grey, then sharpened by subtracting its scale-normalised
Laplacian-of-Gaussian (sigma 1, amount 1) and clipped to 0..255.

The steps and the citation below are printed from the recipe file
(:func:`leukfeat.recipe.load_recipe`; :doc:`/recipes` lists the others). The
picture after step *k* is the state after ``Recipe(recipe.steps[:k])``: a step
that changes only the mask is drawn as the mask (white: kept), any other as
its image (grey from darkest to brightest). The image is a Taleghani ALL
field (Aria et al.) when ``$LEUKFEAT_SHARED_DATA`` (or ``../shared/data``
beside the checkout) holds that set, else a synthetic field
(:func:`leukfeat.datasets.make_cells`).
"""

import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from leukfeat import datasets, io
from leukfeat.recipe import Recipe, load_recipe

recipe = load_recipe("vgg13-log")
print(f"{recipe.name}: {' -> '.join(key for key, _ in recipe.steps)}")
print(f"citation: {recipe.citation}")
here = Path(globals().get("__file__", "plot_recipe_vgg13_log.py")).resolve()
roots = [os.environ.get("LEUKFEAT_SHARED_DATA"), here.parents[2] / "shared" / "data"]
found = [p for p in (Path(r, "taleghani-all/Pre/WBC-Malignant-Pre-003.jpg") for r in roots if r)
         if p.is_file()]
image = io.read_image(found[0]) if found else datasets.make_cells(
    1, size=(200, 240), n_white_cells=2, n_red_cells=(12, 16), random_state=1).images[0]

fig, axes = plt.subplots(1, len(recipe.steps) + 1, figsize=(2.4 * len(recipe.steps) + 2.4, 2.9))
axes[0].imshow(image)
axes[0].set_title(("Taleghani ALL (Pre-B)" if found else "synthetic field")
                  + f"\n{image.shape[1]}x{image.shape[0]}", fontsize=9)
before = image
for k, (ax, (key, step)) in enumerate(zip(axes[1:], recipe.steps), start=1):
    state = Recipe(recipe.steps[:k]).run(image)
    is_mask = state.mask is not None and np.array_equal(state.image, before)  # only the mask moved
    picture, before = (state.mask if is_mask else state.image), state.image
    ax.imshow(picture, cmap="gray", vmin=0 if is_mask else None, vmax=1 if is_mask else None)
    ax.set_title(f"{k}. {step.name}" + ("" if key == step.name else f" ({key})")
                 + f"\n{picture.shape[1]}x{picture.shape[0]}", fontsize=9)
for ax in axes:
    ax.set_axis_off()
fig.suptitle(recipe.name, fontsize=11)
fig.tight_layout(rect=(0, 0, 1, 0.93))
print(f"output: {state.image.dtype} {state.image.shape}"
      + ("" if state.mask is None else f", mask {state.mask.mean():.1%} of the image"))
