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
    runpy.run_path(str(path), run_name="__main__")
    out = capsys.readouterr().out
    expected = {"plot_segment_smear.py": "IoU with the ground truth",
                "plot_cell_features.py": "428 features",
                "plot_pipeline_cv.py": "balanced accuracy",
                "plot_recipes.py": "shipped recipes drawn step by step"}
    assert expected.get(path.name, "") in out and out.strip()


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
