"""
Aria et al. (Taleghani ALL set): an HSV threshold (``taleghani-hsv``)
=====================================================================

How the "Segmented" copy of the Taleghani Hospital ALL set (Aria et al.)
cut the white cells out of the smear: a box in HSV on purple hues (the
defaults of :func:`leukfeat.segment.hsv_threshold`), holes filled, objects
under 64 pixels removed, and the image outside the mask set to black.

The steps and the citation below are printed from the recipe file
(:func:`leukfeat.recipe.load_recipe`; :doc:`/recipes` lists the others). The
figure is :func:`leukfeat.plot.recipe_steps`: the picture after each step, a
step that changes only the mask drawn as the mask (white: kept), any other as
its image (grey from darkest to brightest). The image is a Taleghani ALL
field (Aria et al.) when ``$LEUKFEAT_SHARED_DATA`` (or ``../shared/data``
beside the checkout) holds that set, else a synthetic field
(:func:`leukfeat.datasets.make_cells`).
"""

import os
from pathlib import Path

from leukfeat import datasets, io, plot
from leukfeat.recipe import load_recipe

recipe = load_recipe("taleghani-hsv")
print(f"{recipe.name}: {' -> '.join(key for key, _ in recipe.steps)}")
print(f"citation: {recipe.citation}")
here = Path(globals().get("__file__", "plot_recipe_taleghani_hsv.py")).resolve()
roots = [os.environ.get("LEUKFEAT_SHARED_DATA"), here.parents[2] / "shared" / "data"]
found = [p for p in (Path(r, "taleghani-all/Pre/WBC-Malignant-Pre-003.jpg") for r in roots if r)
         if p.is_file()]
image = io.read_image(found[0]) if found else datasets.make_cells(
    1, size=(200, 240), n_white_cells=2, n_red_cells=(12, 16), random_state=1).images[0]

fig = plot.recipe_steps(recipe, image, input_title="Taleghani ALL (Pre-B)" if found
                        else "synthetic field")
state = recipe.run(image)
print(f"output: {state.image.dtype} {state.image.shape}"
      + ("" if state.mask is None else f", mask {state.mask.mean():.1%} of the image"))
