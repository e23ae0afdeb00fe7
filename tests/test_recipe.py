"""Recipes (issue #30): steps against their references, Python == YAML,
every shipped recipe, schema errors with lines, GridSearchCV over a step."""

from __future__ import annotations

import json
import re
import shutil
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy import ndimage as ndi

from _shared import SHARED
from leukfeat import preprocess, segment
from leukfeat.datasets import make_cells
from leukfeat.io import list_images, read_image
from leukfeat.recipe import (STEPS, Channel, ColourSpace, FillHoles, KMeans, MaskAnd, Recipe,
                             RecipeError, RemoveSmall, load_recipe, recipe_names)


@pytest.fixture(scope="module")
def images():
    """Synthetic fields, plus a few images of every shared set when present."""
    out = list(make_cells(3, size=(160, 200), n_white_cells=2, random_state=1).images)
    for name, step in (("taleghani-all", 800), ("zheng-wbc-d1", 100), ("bccd-dev", 60),
                       ("zheng-wbc-d2-dev", 25)):
        folder = SHARED / name
        if folder.is_dir():
            out += [read_image(p) for p in list_images(folder)[::step]
                    if p.suffix.lower() != ".png" or name == "bccd-dev"]
    return out


def _chowdhury_in_python():
    return Recipe([("colour_space", ColourSpace("lab")), ("a", Channel(1)),
                   ("kmeans", KMeans(k=3, keep="highest")), ("fill_holes", FillHoles()),
                   ("remove_small", RemoveSmall(64)), ("mask_and", MaskAnd(0))],
                  name="chowdhury-lab-kmeans")


def test_python_and_yaml_recipes_are_bit_identical(images):
    built = _chowdhury_in_python()
    loaded = load_recipe("chowdhury-lab-kmeans")
    assert [k for k, _ in loaded.steps] == [k for k, _ in built.steps]
    for a, b in zip(built.fit_transform(images), loaded.fit_transform(images)):
        assert a.dtype == b.dtype and np.array_equal(a, b)


@pytest.mark.parametrize("name", recipe_names())
def test_every_shipped_recipe_loads_runs_and_round_trips(name, images, tmp_path):
    recipe = load_recipe(name)
    assert recipe.name == name and recipe.citation
    out = recipe.fit_transform(images[:4])
    assert len(out) == 4 and all(np.all(np.isfinite(o)) for o in out)
    for suffix in (".yaml", ".json"):
        again = load_recipe(recipe.save(tmp_path / f"{name}{suffix}"))
        assert again.to_dict() == recipe.to_dict()
        for a, b in zip(out, again.fit_transform(images[:4])):
            assert np.array_equal(a, b)


def test_steps_equal_their_references():
    image = make_cells(1, size=(160, 200), n_white_cells=2, random_state=2).images[0]
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB)
    state = Recipe([("lab", ColourSpace("lab")), ("a", Channel(1))]).run(image)
    assert np.array_equal(state.image, lab[..., 1])
    centres, thresholds, _ = segment.kmeans_histogram(lab[..., 1], 3)
    km = Recipe([("lab", ColourSpace("lab")), ("a", Channel(1)), ("k", KMeans(3))]).run(image)
    assert np.array_equal(km.mask, lab[..., 1] > thresholds[-1])
    filled = Recipe([("lab", ColourSpace("lab")), ("a", Channel(1)), ("k", KMeans(3)),
                     ("f", FillHoles()), ("and", MaskAnd(7))]).run(image)
    assert np.array_equal(filled.mask, ndi.binary_fill_holes(km.mask))
    expected = image.copy()
    expected[~filled.mask] = 7
    assert np.array_equal(filled.image, expected)
    gray = Recipe([("g", STEPS["gray"]())]).run(image).image
    assert np.array_equal(gray, preprocess.to_gray(image))
    eq = Recipe([("g", STEPS["gray"]()), ("e", STEPS["equalize"]())]).run(image).image
    assert np.array_equal(eq, cv2.equalizeHist(preprocess.to_gray(image)))
    otsu = Recipe([("g", STEPS["gray"]()), ("t", STEPS["threshold"](invert=True))]).run(image)
    assert np.array_equal(otsu.mask, gray <= segment.otsu_threshold(gray))
    hsv = Recipe([("t", STEPS["threshold"](method="hsv"))]).run(image)
    assert np.array_equal(hsv.mask, segment.hsv_threshold(image, min_size=0, open_radius=0,
                                                          nucleus=False).mask)
    norm = Recipe([("n", STEPS["normalize"]())]).run(image).image
    assert np.array_equal(norm, image / 255.0)


def test_segmentation_and_pair_outputs():
    image = make_cells(1, size=(160, 200), n_white_cells=2, random_state=2).images[0]
    recipe = load_recipe("chowdhury-lab-kmeans")
    mask = recipe.run(image).mask
    seg = recipe.set_params(output="segmentation").transform([image])[0]
    assert np.array_equal(seg.mask, mask) and seg.n_cells >= 1
    assert (seg.nucleus <= seg.mask).all()
    rgb, seg2 = recipe.set_params(output="pair").transform([image])[0]
    assert np.array_equal(rgb, image) and np.array_equal(seg2.labels, seg.labels)


def test_get_set_params_and_grid_search():
    from sklearn.model_selection import GridSearchCV

    from leukfeat.models import make_pipeline

    recipe = load_recipe("chowdhury-lab-kmeans").set_params(output="pair")
    params = recipe.get_params()
    assert params["kmeans__k"] == 3 and params["remove_small__min_size"] == 64
    recipe.set_params(kmeans__k=4, remove_small__min_size=10)
    assert recipe.steps[2][1].k == 4 and recipe.steps[4][1].min_size == 10
    with pytest.raises(ValueError, match="no step of that name"):
        recipe.set_params(kmean__k=2)
    data = make_cells(24, n_classes=2, size=96, random_state=4)
    pipe = make_pipeline("logreg", recipe=recipe, groups=("shape", "colour"))
    assert pipe.steps[0][0] == "recipe"
    search = GridSearchCV(pipe, {"recipe__kmeans__k": [3, 4]}, cv=2)
    search.fit(list(data.images), data.labels)
    assert search.best_params_["recipe__kmeans__k"] in (3, 4)
    assert len(search.cv_results_["mean_test_score"]) == 2


def test_schema_errors_name_the_key_and_line(tmp_path):
    good = load_recipe("taleghani-hsv").to_dict()
    cases = [
        ("steps:\n  - step: gray\n  - step: blur\n", "line 3: unknown step 'blur'"),
        ("recipe: x\nsteps:\n  - step: kmeans\n    kk: 3\n",
         "line 4: unknown parameter 'kk' of step 'kmeans'"),
        ("recipe: x\noutputs: image\nsteps:\n  - step: gray\n", "line 2: unknown key 'outputs'"),
        ("recipe: x\noutput: masks\nsteps:\n  - step: gray\n", "line 2: output must be one of"),
        ("recipe: x\nsteps: []\n", "'steps' must be a non-empty list"),
        ("recipe: [x\n", "not valid YAML"),
    ]
    for k, (text, message) in enumerate(cases):
        path = tmp_path / f"bad{k}.yaml"
        path.write_text(text)
        with pytest.raises(RecipeError, match=message.replace("(", r"\(").replace(")", r"\)")):
            load_recipe(path)
    bad = dict(good, steps=[{"step": "remove_small", "min_sise": 5}])
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(RecipeError, match="bad.json: unknown parameter 'min_sise'"):
        load_recipe(tmp_path / "bad.json")
    with pytest.raises(FileNotFoundError, match="shipped"):
        load_recipe("no-such-recipe")
    with pytest.raises(RecipeError, match="step 'f': .*needs a mask"):
        Recipe([("f", FillHoles())]).transform([np.zeros((8, 8, 3), np.uint8)])


@pytest.mark.skipif(not (SHARED / "taleghani-all").is_dir(),
                    reason=f"Taleghani data not found at {SHARED / 'taleghani-all'}")
def test_chowdhury_recipe_against_lab_kmeans_on_taleghani():
    """The published recipe (k = 3, keep the most magenta cluster) against
    segment.lab_kmeans, which refines it: the recipe's mask is a part of
    lab_kmeans's before lab_kmeans's opening and size rule (the same most
    magenta cluster; lab_kmeans keeps the clusters nearer to it as well)."""
    recipe = load_recipe("chowdhury-lab-kmeans")
    overlaps = []
    for path in list_images(SHARED / "taleghani-all")[::200]:
        image = read_image(path)
        mask = recipe.run(image).mask
        ref = segment.lab_kmeans(image, k=3, min_size=64, open_radius=0, nucleus=False).mask
        if ref.any() and mask.any():
            overlaps.append((mask & ref).sum() / mask.sum())
    assert overlaps and np.median(overlaps) > 0.9, overlaps


# --------------------------------------------------------------------------- #
# the user guide, docs/recipes.rst
# --------------------------------------------------------------------------- #

DOCS = Path(__file__).resolve().parents[1] / "docs"
GUIDE = (DOCS / "recipes.rst").read_text(encoding="utf-8")
OWN_RECIPE = DOCS / "lab-kmeans-open.yaml"


def _python_blocks(text):
    """The ``.. code-block:: python`` blocks of a reST page, dedented, in order."""
    blocks = re.findall(r"^\.\. code-block:: python\n\n((?:(?: {3}.*)?\n)+)", text,
                        flags=re.MULTILINE)
    return [textwrap.dedent(b) for b in blocks]


def test_guide_code_runs(tmp_path, monkeypatch, capsys):
    """The page's Python blocks, run in order as one script beside the page's
    own recipe file (as a reader who copied them would)."""
    shutil.copy(OWN_RECIPE, tmp_path / OWN_RECIPE.name)
    monkeypatch.chdir(tmp_path)
    blocks = _python_blocks(GUIDE)
    assert len(blocks) >= 6
    ns = {"__name__": "__guide__"}
    exec(compile("\n".join(blocks), str(DOCS / "recipes.rst"), "exec"), ns)
    out = capsys.readouterr().out
    assert "chowdhury-lab-kmeans" in out and ns["recipe"].citation in out
    # load, run, save
    assert ns["state"].mask.any() and ns["masked"][0].shape == ns["image"].shape
    assert ns["again"].to_dict() == ns["recipe"].to_dict()
    assert ns["again"].get_params()["kmeans__k"] == 4
    # the worked example: the file and the same recipe built in Python
    assert ns["seg"].n_cells >= 1
    def steps_only(recipe):   # the Python copy carries no description
        return {k: v for k, v in recipe.to_dict().items() if k != "description"}

    assert steps_only(ns["built"]) == steps_only(ns["mine"])
    assert steps_only(load_recipe("lab-kmeans-open-copy.yaml")) == steps_only(ns["mine"])
    assert "typo.yaml: line 4: unknown parameter 'kk' of step 'kmeans' (known: k, keep)" in out
    # the pipeline and the grid search
    assert [name for name, _ in ns["pipe"].steps] == ["recipe", "features", "classifier"]
    assert len(ns["search"].cv_results_["mean_test_score"]) == 4
    # the outputs
    assert ns["cut_out"].shape == ns["image"].shape
    assert ns["X"].shape[0] == 1 and "taleghani-hsv" in out


def test_own_recipe_file_loads_and_runs_as_built_in_python(images, tmp_path):
    """docs/lab-kmeans-open.yaml, shown in the guide: it loads, runs, gives the
    Python-built recipe's output bit for bit and survives a save/load."""
    from leukfeat.recipe import Opening, StainNormalize

    mine = load_recipe(OWN_RECIPE)
    built = Recipe([("stain_normalize", StainNormalize("reinhard")),
                    ("colour_space", ColourSpace("lab")), ("a", Channel(1)),
                    ("kmeans", KMeans(k=3, keep="highest")), ("fill_holes", FillHoles()),
                    ("opening", Opening(radius=2)), ("remove_small", RemoveSmall(min_size=100))],
                   output="pair", name="lab-kmeans-open")
    assert mine.output == "pair" and [k for k, _ in mine.steps] == [k for k, _ in built.steps]
    again = load_recipe(mine.save(tmp_path / "copy.yaml"))
    synthetic = images[:3]
    outputs = [r.fit_transform(synthetic) for r in (mine, built, again)]
    for (rgb, seg), (rgb_b, seg_b), (rgb_c, seg_c) in zip(*outputs):
        assert np.array_equal(rgb, rgb_b) and np.array_equal(rgb, rgb_c)
        for other in (seg_b, seg_c):
            assert np.array_equal(seg.labels, other.labels)
            assert np.array_equal(seg.nucleus, other.nucleus)
    assert all(seg.n_cells >= 1 for _, seg in outputs[0])


def _yaml_value(param, value):
    """``param: value`` as a recipe file writes it (flow style)."""
    import yaml

    value = list(value) if isinstance(value, tuple) else value
    return yaml.safe_dump({param: value}, default_flow_style=True).strip()[1:-1]


def test_guide_step_table_lists_every_step_with_its_defaults():
    table = GUIDE.split("The steps\n---------", 1)[1].split("The shipped recipes\n", 1)[0]
    rows = {}
    for row in re.split(r"^   \* - ", table, flags=re.MULTILINE)[2:]:  # after the header
        name = re.match(r"``(\w+)``", row).group(1)
        rows[name] = " ".join(row.split())
    assert list(rows) == list(STEPS)
    for name, cls in STEPS.items():
        params = cls().get_params(deep=False)
        for param, value in params.items():
            assert f"``{_yaml_value(param, value)}``" in rows[name], (name, param)
        if not params:
            assert rows[name].split("``", 2)[2].strip().startswith("- none"), name


@pytest.mark.parametrize("name", recipe_names())
def test_guide_quotes_every_shipped_recipe(name):
    """Each shipped recipe's description and citation, word for word."""
    import yaml

    import leukfeat.recipe

    path = Path(leukfeat.recipe.__file__).parent / "recipes" / f"{name}.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    guide = " ".join(GUIDE.split())
    assert f"``{name}``" in GUIDE
    for key in ("description", "citation"):
        assert " ".join(str(data[key]).split()) in guide, (name, key)


def test_watershed_split_separates_touching_cells_and_names_are_checked(tmp_path):
    from leukfeat.recipe import Gray, Threshold, WatershedSplit

    image = np.full((100, 160, 3), 230, np.uint8)
    cv2.circle(image, (45, 50), 30, (120, 40, 160), -1)
    cv2.circle(image, (103, 50), 30, (120, 40, 160), -1)
    whole = Recipe([("t", Threshold(method="hsv"))], output="segmentation")
    split = Recipe([("t", Threshold(method="hsv")), ("w", WatershedSplit())],
                   output="segmentation")
    assert whole.fit_transform([image])[0].n_cells == 1
    parts = split.fit_transform([image])[0]
    assert parts.n_cells == 2
    lost = whole.transform([image])[0].mask & ~parts.mask
    assert lost.sum() < 0.05 * parts.mask.sum()          # only the cut between them
    for reserved in ("output", "name", "steps"):
        with pytest.raises(ValueError, match="step names"):
            Recipe([(reserved, Gray())]).fit([image])
    shipped = load_recipe("taleghani-hsv")
    assert shipped.description
    assert load_recipe(shipped.save(tmp_path / "t.yaml")).description == shipped.description


def test_cli_segment_and_extract_with_a_recipe(tmp_path):
    """``--recipe`` (a shipped name or a file) writes the same files as
    ``--method``, with the recipe's mask; extract measures the recipe's
    cells (as FeatureExtractor(segmenter=recipe.segment)); a recipe that
    makes no mask, or an unknown one, is an error (exit 2)."""
    import os
    import subprocess
    import sys

    import pandas as pd

    from leukfeat.cli.segment import SEGMENT_FILES
    from leukfeat.transformers import FeatureExtractor

    data = make_cells(3, size=(140, 180), n_white_cells=2, random_state=8)
    paths = data.save(tmp_path / "imgs")

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "leukfeat", *map(str, args)], cwd=tmp_path,
                              capture_output=True, text=True,
                              env=dict(os.environ, PYTHONIOENCODING="utf-8"), timeout=300)

    recipe = load_recipe("chowdhury-lab-kmeans")
    custom = recipe.save(tmp_path / "mine.yaml")
    for source, out in (("chowdhury-lab-kmeans", "seg"), (custom, "seg-file")):
        proc = cli("segment", tmp_path / "imgs", "--recipe", source, "--out", tmp_path / out)
        assert proc.returncode == 0, proc.stderr
        for p in paths:
            stem = os.path.splitext(os.path.basename(p))[0]
            for suffix in SEGMENT_FILES.values():
                assert (tmp_path / out / f"{stem}{suffix}").is_file()
            mask = cv2.imread(str(tmp_path / out / f"{stem}_mask.png"), cv2.IMREAD_GRAYSCALE)
            assert np.array_equal(mask > 0, recipe.segment(read_image(p)).mask)
    proc = cli("extract", *paths, "--recipe", "chowdhury-lab-kmeans", "--groups", "shape",
               "--out", tmp_path / "f.csv")
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(tmp_path / "f.csv")
    fx = FeatureExtractor(segmenter=recipe.segment, groups=("shape",)).fit(paths)
    np.testing.assert_array_equal(table[list(fx.get_feature_names_out())].to_numpy(float),
                                  fx.transform(paths))
    for bad, message in (("leuknet-resize", "makes no mask"), ("nope", "no shipped recipe")):
        proc = cli("segment", tmp_path / "imgs", "--recipe", bad, "--out", tmp_path / "x")
        assert proc.returncode == 2 and message in proc.stderr


def test_steps_alone_are_transformers_equal_to_the_recipe(images):
    """Every step is an sklearn transformer through the one adapter: a Pipeline
    of steps gives the recipe's masks bit for bit; a mask step takes masks;
    the steps that need image and mask refuse to run alone, naming the item."""
    from sklearn.base import clone
    from sklearn.pipeline import make_pipeline

    steps = [ColourSpace("lab"), Channel(1), KMeans(k=3), FillHoles(), RemoveSmall(64)]
    recipe = Recipe([(s.name, s) for s in steps], output="segmentation")
    masks = make_pipeline(*map(clone, steps)).fit_transform(images)
    for got, seg in zip(masks, recipe.fit_transform(images)):
        assert got.dtype == bool and np.array_equal(got, seg.mask)
    # an image step returns the image, a mask step the mask
    lab = ColourSpace("lab").fit_transform(images[:1])[0]
    np.testing.assert_array_equal(lab, cv2.cvtColor(images[0], cv2.COLOR_RGB2LAB))
    holes = np.zeros((20, 20), np.uint8)
    holes[4:16, 4:16] = 1
    holes[9, 9] = 0
    np.testing.assert_array_equal(FillHoles().fit_transform([holes])[0],
                                  ndi.binary_fill_holes(holes))
    with pytest.raises(RecipeError, match=r"X\[0\]: step 'fill_holes' alone takes masks"):
        FillHoles().fit_transform(images[:1])
    with pytest.raises(RecipeError, match=r"X\[0\]: step 'mask_and' needs the image and"):
        MaskAnd().fit_transform([holes])
    with pytest.raises(RecipeError, match=r"X\[1\]: kmeans: needs a one-channel image"):
        KMeans().fit_transform([masks[0].astype(np.uint8), images[0]])


def test_crop_to_cell_cuts_the_largest_object():
    """crop_to_cell: the box of the largest 8-connected object plus the margin,
    clipped to the image; only that object stays in the mask; YAML round
    trip; an empty mask leaves the image whole."""
    from leukfeat.recipe import CropToCell, Threshold

    image = np.full((60, 80, 3), 220, np.uint8)
    image[10:30, 12:40] = 60      # the largest object: 20 x 28
    image[45:52, 60:70] = 60      # a smaller one
    image[0:5, 75:80] = 60        # a small one at the corner
    recipe = Recipe([("gray", STEPS["gray"]()), ("thr", Threshold("otsu", invert=True)),
                     ("crop", CropToCell(margin=3))], output="pair")
    (rgb, seg), = recipe.fit_transform([image])
    np.testing.assert_array_equal(rgb, image[7:33, 9:43])
    assert seg.n_cells == 1 and seg.mask.shape == (26, 34)
    assert seg.mask.sum() == 20 * 28 and seg.mask[3:23, 3:31].all()
    again = Recipe.from_dict(json.loads(json.dumps(recipe.to_dict())))
    np.testing.assert_array_equal(again.fit_transform([image])[0][0], rgb)
    # clipped at the border: margin 50 keeps the whole image
    (big, _), = recipe.set_params(crop__margin=50).fit_transform([image])
    np.testing.assert_array_equal(big, image)
    blank = np.full((30, 30, 3), 200, np.uint8)
    empty = Recipe([("thr", Threshold("hsv")), ("crop", CropToCell())]).fit_transform([blank])
    np.testing.assert_array_equal(empty[0], blank)
