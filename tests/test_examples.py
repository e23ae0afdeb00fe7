"""The examples in examples/ run as a user would run them."""

import runpy
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.py"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(path, tmp_path, monkeypatch, capsys):
    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", [str(path)])
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    plt.close("all")
    namespace = runpy.run_path(str(path), run_name="__main__")
    # every example draws a figure: pyplot's, or one that leukfeat.plot returns
    drawn = plt.get_fignums() or [v for v in namespace.values() if isinstance(v, Figure)]
    plt.close("all")
    assert drawn, f"{path.name} draws no figure"
    out = capsys.readouterr().out
    expected = {"plot_segment_smear.py": "IoU with the ground truth",
                "plot_cell_features.py": "428 features",
                "plot_pipeline_cv.py": "balanced accuracy"}
    if path.name.startswith("plot_recipe_"):  # a shipped recipe, drawn step by step
        expected[path.name] = "output: "
    assert expected.get(path.name, "") in out and out.strip()


def test_a_gallery_page_per_shipped_recipe():
    """Each shipped recipe has its page, examples/plot_recipe_<name>.py, which
    loads that recipe (a recipe shipped later needs a page of its own)."""
    from leukfeat.recipe import recipe_names

    pages = {p.name: p for p in EXAMPLES if p.name.startswith("plot_recipe_")}
    names = recipe_names()
    assert sorted(pages) == sorted(f"plot_recipe_{n.replace('-', '_')}.py" for n in names)
    for name in names:
        text = pages[f"plot_recipe_{name.replace('-', '_')}.py"].read_text(encoding="utf-8")
        assert f'load_recipe("{name}")' in text and f"``{name}``" in text.split("\n", 3)[1]


def test_demo_command(tmp_path, capsys):
    from leukfeat.__main__ import main

    out = tmp_path / "d"
    assert main(["demo", "--out", str(out), "--n", "20", "--classes", "2", "--size", "96",
                 "--cv", "3", "--n-jobs", "1", "--no-report", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "mean cell IoU" in printed and "against the generator's ground truth" in printed
    assert "| xgboost |" in printed and "balanced accuracy" in printed
    assert (out / "contact_sheet.png").is_file()
    assert len(list((out / "overlays").glob("overlay_*.png"))) == 20
    assert (out / "results.json").is_file()
