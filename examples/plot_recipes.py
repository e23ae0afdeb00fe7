"""
The shipped recipes, step by step
=================================

A :class:`leukfeat.recipe.Recipe` is a list of named steps over an image
and, once a thresholding step has made one, its mask (see
:doc:`/recipes`). leukfeat ships the pre-processing and segmentation
pipelines of the seed papers as recipe files
(:func:`leukfeat.recipe.recipe_names`, :func:`leukfeat.recipe.load_recipe`);
each section below draws one of them, and prints the steps and the citation
written in its file.

:meth:`Recipe.run <leukfeat.recipe.Recipe.run>` returns only the state after
the last step, so each column below runs the recipe's first *k* steps,
``Recipe(recipe.steps[:k])``. A step that changes the mask (``kmeans``,
``threshold``, ``fill_holes``, ``remove_small``) is drawn as its mask
(white: kept); every other step as the image it made (grey images from
their darkest to their brightest value).

The figures use a Taleghani ALL image (Aria et al.) when the public set is
found in ``$LEUKFEAT_SHARED_DATA`` (or ``../shared/data`` beside the
checkout), otherwise a synthetic field from
:func:`leukfeat.datasets.make_cells`.
"""

import os
from pathlib import Path

import numpy as np

from leukfeat import datasets, io
from leukfeat.recipe import Recipe, load_recipe, recipe_names


def shared_image():
    """(title, image) of a Taleghani ALL field, or None when the set is absent."""
    here = Path(globals().get("__file__", "plot_recipes.py")).resolve()
    roots = [os.environ.get("LEUKFEAT_SHARED_DATA"), here.parents[2] / "shared" / "data"]
    for root in (Path(r) for r in roots if r):
        path = root / "taleghani-all" / "Pre" / "WBC-Malignant-Pre-003.jpg"
        if path.is_file():
            return "Taleghani ALL (Pre-B)", io.read_image(path)
    return None


example = shared_image()
if example is None:
    example = ("synthetic field", datasets.make_cells(
        1, size=(200, 240), n_white_cells=2, n_red_cells=(12, 16), random_state=1).images[0])
title, image = example
print(f"{title}: {image.shape[1]}x{image.shape[0]}")


def stages(recipe, image):
    """(label, picture, is_mask, state) after each step: the first k steps, run anew."""
    out = []
    before = image
    for k, (key, step) in enumerate(recipe.steps, start=1):
        state = Recipe(recipe.steps[:k]).run(image)
        # a step that leaves the image as it was made (or changed) the mask
        is_mask = state.mask is not None and (
            state.image.shape == before.shape and np.array_equal(state.image, before))
        label = key if key == step.name else f"{step.name} ({key})"
        if step.name == "colour_space":
            label += f"\n{step.space.upper()} shown as RGB"
        out.append((f"{k}. {label}", state.mask if is_mask else state.image, is_mask, state))
        before = state.image
    return out


try:
    import matplotlib.pyplot as plt
except ImportError:  # pragma: no cover
    plt = None

shown = []


def show(name):
    """Print the recipe file's steps and citation, draw the picture after each step."""
    recipe = load_recipe(name)
    steps = stages(recipe, image)
    final = steps[-1][3]
    shown.append(name)
    print(f"{name}: {' -> '.join(key for key, _ in recipe.steps)}")
    print(f"citation: {recipe.citation}")
    described = (f"{final.image.dtype} {final.image.shape}, values "
                 f"{final.image.min():.3g}..{final.image.max():.3g}")
    if final.mask is not None:
        described += f", mask {final.mask.mean():.1%} of the image"
    print(f"output: {described}")
    if plt is None:  # pragma: no cover
        return
    fig, axes = plt.subplots(1, len(steps) + 1, figsize=(2.4 * (len(steps) + 1), 2.9),
                             squeeze=False)
    axes = axes[0]
    axes[0].imshow(image)
    axes[0].set_title(f"input\n{image.shape[1]}x{image.shape[0]}", fontsize=9)
    for ax, (label, picture, is_mask, _) in zip(axes[1:], steps):
        pic = np.asarray(picture)
        if is_mask or pic.dtype == bool:
            ax.imshow(pic, cmap="gray", vmin=0, vmax=1)
        elif pic.ndim == 2:  # grey levels from the image's minimum to its maximum
            ax.imshow(pic, cmap="gray")
        else:
            ax.imshow(pic)
        ax.set_title(f"{label}\n{pic.shape[1]}x{pic.shape[0]}", fontsize=9)
    for ax in axes:
        ax.set_axis_off()
    fig.suptitle(name, fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.93))


# %%
# ``chorevas-gray-equalize``
# --------------------------
# Grey, 128 x 128, global histogram equalisation, scaled to [0, 1].
show("chorevas-gray-equalize")

# %%
# ``leuknet-resize``
# ------------------
# The RGB image resized to 224 x 224 (a Taleghani image already has that
# size, so the step leaves it as it is).
show("leuknet-resize")

# %%
# ``chowdhury-lab-kmeans``
# ------------------------
# The a* channel of CIELAB, K-means with k = 3 keeping the cluster of highest
# a* (the most magenta), holes filled, objects under 64 pixels removed, the
# image outside the mask set to black. :func:`leukfeat.segment.lab_kmeans` is
# a refined version of this recipe; its masks differ where the refinements act.
show("chowdhury-lab-kmeans")

# %%
# ``taleghani-hsv``
# -----------------
# An HSV box on purple hues (the defaults of
# :func:`leukfeat.segment.hsv_threshold`), holes filled, objects under 64
# pixels removed, the image outside the mask set to black.
show("taleghani-hsv")

# %%
# ``vgg13-log``
# -------------
# Grey, then sharpened by subtracting its scale-normalised
# Laplacian-of-Gaussian.
show("vgg13-log")

# %%
# Any recipe shipped after this example was written is drawn here too.
for name in recipe_names():
    if name not in shown:
        show(name)
print(f"{len(shown)} shipped recipes drawn step by step")
