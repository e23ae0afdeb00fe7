"""The Sphinx site builds, with a gallery page per example and the API pages,
and the code of the front page, the user guide and the command-line page runs.

The build runs on a copy of ``docs/`` and ``examples/`` inside ``tmp_path``
(the same layout as the checkout, so ``docs/conf.py`` finds ``../examples``),
so sphinx-gallery never writes into the repository tree.
"""

import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

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
    pytest.importorskip("sphinx", reason="sphinx is not installed (pip install -e '.[docs]')")
    pytest.importorskip("sphinx_gallery",
                        reason="sphinx-gallery is not installed (pip install -e '.[docs]')")
    pytest.importorskip("pydata_sphinx_theme",
                        reason="pydata-sphinx-theme is not installed (pip install -e '.[docs]')")
    src = tmp_path / "src"
    shutil.copytree(ROOT / "docs", src / "docs", ignore=GENERATED)
    shutil.copytree(ROOT / "examples", src / "examples",
                    ignore=shutil.ignore_patterns("__pycache__", "*.png"))
    # the install page reads the extras from pyproject.toml, the changelog
    # page CHANGELOG.md, beside docs/ (an installed leukfeat has neither)
    for name in ("pyproject.toml", "CHANGELOG.md"):
        shutil.copy2(ROOT / name, src / name)
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
    assert "../recipes.html" in (out / "guide" / "index.html").read_text(encoding="utf-8")
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

    # the front page: the theme, the figure of a segmented field, the links into the guide
    assert "pydata-sphinx-theme" in index
    assert "_images/sphx_glr_plot_segment_smear_001.png" in index
    for page in GUIDE_PAGES + ("install", "changelog", "citation", "features"):
        assert (out / f"{page}.html").is_file(), page
    for page in ("install", "guide/index", "changelog", "citation"):
        assert f"{page}.html" in index, page
    # every gallery example draws a figure (sphinx-gallery numbers them from 001)
    for name in EXAMPLES:
        assert list((out / "_images").glob(f"sphx_glr_{name}_001.png")), name
    # the install page's tables come from pyproject.toml
    install = (out / "install.html").read_text(encoding="utf-8")
    assert "download.pytorch.org/whl/cpu" in install and "NUMBA_CACHE_DIR" in install
    assert "<code class=\"docutils literal notranslate\"><span class=\"pre\">parquet</span>" \
        in install
    # formulas render offline: MathJax is bundled and no page loads a script from the web
    assert (out / "_static" / "mathjax" / "tex-chtml.js").is_file()
    extract_page = (out / "guide" / "extract.html").read_text(encoding="utf-8")
    assert "_static/mathjax/tex-chtml.js" in extract_page and "\\mathrm{contrast}" in extract_page
    remote = re.compile(r"<(?:script|link)[^>]+(?:src|href)=\"(?:https?:)?//", re.IGNORECASE)
    for html in out.rglob("*.html"):
        found = remote.search(html.read_text(encoding="utf-8"))
        assert found is None, f"{html.relative_to(out)} loads {found.group(0)}"


# --------------------------------------------------------------------------- #
# the code of the pages runs
# --------------------------------------------------------------------------- #
#: Pages whose code blocks are run, in order, as one script in an empty folder.
GUIDE_PAGES = ("index", "guide/index", "guide/read", "guide/preprocess", "guide/segment",
               "guide/extract", "guide/classify", "guide/evaluate", "guide/scale", "cli")
#: ``.. code-block:: python`` and ``.. code-block:: bash`` blocks, in page order.
BLOCK = re.compile(r"^\.\. code-block:: (python|bash)\n\n((?:(?: {3}.*)?\n)+)", re.MULTILINE)
#: Shell lines that are shown but not run: installs, and the commands that
#: start Dask's long-running servers.
SHOWN_ONLY = ("pip ", "python -m pip ", "dask scheduler", "dask worker")


def _blocks(page):
    text = (ROOT / "docs" / f"{page}.rst").read_text(encoding="utf-8")
    return [(lang, textwrap.dedent(body)) for lang, body in BLOCK.findall(text)]


def _commands(body):
    """The shell lines of a bash block: continuations joined, comments dropped."""
    lines = []
    for line in body.replace("\\\n", " ").splitlines():
        line = re.sub(r"(^|\s)#.*$", "", line).strip()
        if line:
            lines.append(line)
    return lines


def test_guide_pages_have_code():
    """Every guide page that teaches a stage shows code, all of it run below."""
    for page in GUIDE_PAGES:
        if page != "guide/index":
            assert _blocks(page), page


@pytest.mark.filterwarnings("ignore:Port .* is already in use:UserWarning")
@pytest.mark.parametrize("page", [p for p in GUIDE_PAGES if p != "guide/index"])
def test_guide_code_runs(page, tmp_path, monkeypatch, capsys):
    """The page's Python blocks run in order as one script, and its shell
    blocks' ``leukfeat`` commands through the command line's entry point,
    in an empty folder, as a reader who copied them would. A ``--scheduler``
    address is replaced by that of a local Dask cluster."""
    import matplotlib

    matplotlib.use("Agg")
    from leukfeat.__main__ import main

    monkeypatch.chdir(tmp_path)
    ns = {"__name__": "__guide__"}
    cluster = None
    try:
        for k, (lang, body) in enumerate(_blocks(page)):
            if lang == "python":
                exec(compile(body, f"docs/{page}.rst (block {k})", "exec"), ns)
                continue
            for line in _commands(body):
                if line.startswith(SHOWN_ONLY):
                    continue
                assert line.startswith("leukfeat "), f"{page}: not a leukfeat command: {line}"
                argv = shlex.split(line)[1:]
                if "--scheduler" in argv:
                    if cluster is None:
                        distributed = pytest.importorskip("distributed")
                        cluster = distributed.LocalCluster(
                            n_workers=1, threads_per_worker=2, processes=False,
                            dashboard_address=None)
                    argv[argv.index("--scheduler") + 1] = cluster.scheduler_address
                assert main(argv) == 0, f"{page}: {line}"
    finally:
        if cluster is not None:
            cluster.close()
        import matplotlib.pyplot as plt

        plt.close("all")
    out = capsys.readouterr().out
    assert out.strip(), page
    if page == "guide/evaluate":   # the tinted copy is flagged, the sound set is not
        assert ns["confounded"].confounded and not ns["sound"].confounded
    if page == "guide/scale":
        assert ns["table"].shape[0] == 16
