"""The Sphinx site builds, with a gallery page per example and the API pages.

The build runs on a copy of ``docs/`` and ``examples/`` inside ``tmp_path``
(the same layout as the checkout, so ``docs/conf.py`` finds ``../examples``),
so sphinx-gallery never writes into the repository tree.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sphinx", reason="sphinx is not installed (pip install -e '.[docs]')")
pytest.importorskip("sphinx_gallery",
                    reason="sphinx-gallery is not installed (pip install -e '.[docs]')")

from _shared import SHARED

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(p.stem for p in (ROOT / "examples").glob("plot_*.py"))
# What each example prints; the gallery page shows the captured output.
PRINTED = {"plot_segment_smear": "IoU with the ground truth",
           "plot_cell_features": "428 features",
           "plot_pipeline_cv": "balanced accuracy",
           "plot_segmentation_steps": "white cell(s)",
           # one page per shipped recipe: its steps, citation and final output
           **{name: "output: " for name in EXAMPLES if name.startswith("plot_recipe_")}}
# Generated files that a build in the checkout may have left in docs/.
GENERATED = shutil.ignore_patterns("_build", "auto_examples", "sg_execution_times.rst")
# A problem reported by Sphinx/docutils: "<location>: WARNING: ..." (or ERROR, ...).
PROBLEM = re.compile(r"^(?P<where>.*?):? ?(?:WARNING|ERROR|CRITICAL|SEVERE): ")


def test_docs_build(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(ROOT / "docs", src / "docs", ignore=GENERATED)
    shutil.copytree(ROOT / "examples", src / "examples",
                    ignore=shutil.ignore_patterns("__pycache__", "*.png"))
    out = tmp_path / "html"
    log = tmp_path / "warnings.txt"
    # the segmentation-steps example shows public images when it finds them
    env = dict(os.environ, MPLBACKEND="Agg", LEUKFEAT_SHARED_DATA=str(SHARED))
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-b", "html", "-q", "--keep-going",
         "-w", str(log), "-d", str(tmp_path / "doctrees"), str(src / "docs"), str(out)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]

    # equivalent to building with -W: no warning from docs/*.rst, the
    # gallery, the examples or any leukfeat docstring
    problems = [line for line in log.read_text(encoding="utf-8").splitlines()
                if PROBLEM.match(line)]
    assert not problems, "\n".join(problems)

    assert (src / "docs" / "auto_examples").is_dir()  # the gallery went to the copy
    assert len(EXAMPLES) == 9
    gallery = (out / "auto_examples" / "index.html").read_text(encoding="utf-8")
    for name in EXAMPLES:
        page = out / "auto_examples" / f"{name}.html"
        assert page.is_file(), name
        assert f"{name}.html" in gallery, name
        text = page.read_text(encoding="utf-8")
        assert PRINTED.get(name, "") in text, name  # the example was executed
    assert list((out / "_images").glob("sphx_glr_plot_segment_smear_*.png"))

    api = (out / "api" / "leukfeat.segment.html").read_text(encoding="utf-8")
    assert "lab_kmeans" in api and "nucleus_anchored" in api
    assert (out / "segmentation.html").is_file()
    # the recipes: user guide (with the tested recipe file), API page, a figure per recipe
    guide = (out / "recipes.html").read_text(encoding="utf-8")
    assert "lab-kmeans-open" in guide and "recipe__kmeans__k" in guide
    assert "recipes.html" in (out / "index.html").read_text(encoding="utf-8")
    api_recipe = (out / "api" / "leukfeat.recipe.html").read_text(encoding="utf-8")
    assert "load_recipe" in api_recipe and "WatershedSplit" in api_recipe
    assert "api/leukfeat.recipe.html" in (out / "api.html").read_text(encoding="utf-8")
    from leukfeat.recipe import recipe_names
    for name in recipe_names():  # its gallery page, linked from the guide, with its figure
        page = f"plot_recipe_{name.replace('-', '_')}"
        assert f"auto_examples/{page}.html" in guide, name
        assert list((out / "_images").glob(f"sphx_glr_{page}_*.png")), name
    assert "results.html" in (out / "index.html").read_text(encoding="utf-8")
    assert "api/leukfeat.segment.html" in (out / "api.html").read_text(encoding="utf-8")
    index = (out / "index.html").read_text(encoding="utf-8")
    assert "auto_examples/index.html" in index
