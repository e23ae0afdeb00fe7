"""The ``leukfeat`` command line, run end-to-end as a user would (subprocesses).

Every command runs on a small synthetic data set (make_cells, saved as one
folder per class) in a temporary folder; outputs are parsed and checked.
Expensive runs (train, evaluate, demo) happen once per module in fixtures
and several tests look at their outputs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from _shared import taleghani_files

from leukfeat import extract

COMMANDS = ("demo", "segment", "extract", "train", "predict", "evaluate")
N_PER_CLASS = 8
CLASSES = ("class_0", "class_1", "class_2")


def run(*args, cwd, check=True, stderr_tty=False):
    """Run ``python -m leukfeat ARGS`` in ``cwd``; return the CompletedProcess."""
    cmd = [sys.executable, "-m", "leukfeat", *map(str, args)]
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                          encoding="utf-8", timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited with {proc.returncode}\n"
                             f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def assert_one_line_error(proc, *fragments):
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("leukfeat: error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    for f in fragments:
        assert f in lines[0], (f, lines[0])


# --------------------------------------------------------------------------- #
# fixtures
# --------------------------------------------------------------------------- #

@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("cli")


@pytest.fixture(scope="module")
def data_root(work):
    """24 synthetic images, 96x96, three classes of 8, one folder per class."""
    from leukfeat.datasets import make_cells

    make_cells(N_PER_CLASS * len(CLASSES), n_classes=len(CLASSES), size=96,
               random_state=0).save(work / "data")
    return work / "data"


@pytest.fixture(scope="module")
def bad_image(work):
    """A file with an image extension that is not an image."""
    path = work / "broken" / "corrupt.png"
    path.parent.mkdir()
    path.write_bytes(b"this is not a PNG file")
    return path


@pytest.fixture(scope="module")
def trained(work, data_root):
    """A model trained with the command line (hgb, the default: no extra needed)."""
    model = work / "models" / "model.skops"
    proc = run("train", data_root, "--out", model, "--n-jobs", "1", cwd=work)
    return model, proc


@pytest.fixture(scope="module")
def evaluated(work, data_root):
    """evaluate --classifier xgboost with --json (single-model JSON)."""
    pytest.importorskip("xgboost", reason="the xgboost extra is not installed")
    out = work / "eval" / "xgb.json"
    proc = run("evaluate", data_root, "--classifier", "xgboost", "--cv", "3", "--json", out,
               "--bootstrap", "200", "--n-jobs", "1", cwd=work)
    return json.loads(out.read_text()), proc


@pytest.fixture(scope="module")
def evaluated_all(work, data_root):
    """evaluate --classifier all with --json and --report (without the confound
    check, which the other evaluate runs and the demo keep on)."""
    pytest.importorskip("xgboost", reason="the xgboost extra is not installed")
    pytest.importorskip("matplotlib", reason="the plot extra (the report) is not installed")
    out = work / "eval" / "all.json"
    report = work / "eval" / "report"
    proc = run("evaluate", data_root, "--classifier", "all", "--cv", "3", "--json", out,
               "--report", report, "--predictions", work / "eval" / "oof.csv",
               "--bootstrap", "200", "--no-confound-check", cwd=work)
    return json.loads(out.read_text()), report, proc


# --------------------------------------------------------------------------- #
# help
# --------------------------------------------------------------------------- #

@pytest.mark.parametrize("command", ("",) + COMMANDS)
def test_help(command, tmp_path):
    proc = run(*([command] if command else []), "--help", cwd=tmp_path)
    assert proc.stdout.startswith("usage: leukfeat")
    assert "examples:" in proc.stdout
    assert proc.stderr == ""


def test_no_command_prints_help(tmp_path):
    proc = run(cwd=tmp_path)
    assert "COMMAND" in proc.stdout and "evaluate" in proc.stdout


def test_version(tmp_path):
    from leukfeat import __version__

    assert run("--version", cwd=tmp_path).stdout.strip() == f"leukfeat {__version__}"


# --------------------------------------------------------------------------- #
# segment
# --------------------------------------------------------------------------- #

def test_segment_files_and_folders(work, data_root, bad_image):
    # two files with the same name in different folders, a folder, a corrupt image
    twin = work / "twin" / "img_0000.png"
    twin.parent.mkdir()
    shutil.copy(data_root / "class_0" / "img_0000.png", twin)
    out = work / "seg"
    proc = run("segment", data_root / "class_0", twin, bad_image, "--method", "lab_kmeans",
               "--out", out, cwd=work)
    table = pd.read_csv(out / "segmentation.csv")
    assert len(table) == N_PER_CLASS + 2
    assert {"path", "n_cells", "cell_area", "nucleus_area", "error"} <= set(table.columns)
    ok = table[table.error.isna()]
    failed = table[table.error.notna()]
    assert list(failed.path) == [str(bad_image)]
    assert "ImageReadError" in failed.error.iloc[0]
    assert (ok.n_cells >= 1).all() and (ok.cell_area > ok.nucleus_area).all()
    # name collision: both img_0000 get their own files
    stems = list(ok.stem)
    assert len(set(stems)) == len(stems)
    assert {"class_0_img_0000", "twin_img_0000"} <= set(stems)
    import cv2

    for stem in stems:
        for kind in ("mask", "nucleus", "overlay"):
            img = cv2.imread(str(out / f"{stem}_{kind}.png"), cv2.IMREAD_UNCHANGED)
            assert img is not None and img.shape[:2] == (96, 96)
        mask = cv2.imread(str(out / f"{stem}_mask.png"), cv2.IMREAD_UNCHANGED)
        assert set(np.unique(mask)) <= {0, 255} and (mask == 255).any()
    # the failure is listed and counted on stderr, not fatal
    assert f"1 of {N_PER_CLASS + 2} images could not be segmented" in proc.stderr
    assert str(bad_image) in proc.stderr
    assert "segmented 9 of 10 images" in proc.stdout


def test_segment_all_failing_is_an_error(work, bad_image):
    proc = run("segment", bad_image, "--out", work / "seg-bad", cwd=work, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("leukfeat: error: all 1 images")
    assert "Traceback" not in proc.stderr


# --------------------------------------------------------------------------- #
# extract
# --------------------------------------------------------------------------- #

def test_extract_labelled_folder_csv(work, data_root):
    from leukfeat import extract

    out = work / "features.csv"
    proc = run("extract", data_root, "--out", out, "--n-jobs", "1", "--quiet", cwd=work)
    assert proc.stderr == ""  # quiet, no failure, no progress bar
    table = pd.read_csv(out)
    names = extract.feature_names()
    assert list(table.columns) == ["path", "label", "error", *names]
    assert len(table) == N_PER_CLASS * len(CLASSES)
    assert table.error.isna().all()
    assert sorted(table.label.unique()) == list(CLASSES)
    assert all(Path(p).parent.name == lab for p, lab in zip(table.path, table.label))
    assert np.isfinite(table["shape_cell_area"]).all()
    # the same values as the library
    from leukfeat.io import read_image
    ref = extract.features(read_image(table.path[0]))
    np.testing.assert_allclose(table.loc[0, names].to_numpy(float),
                               np.fromiter(ref.values(), float), rtol=1e-9, equal_nan=True)


def test_extract_files_per_cell_parquet(work, data_root, bad_image):
    pytest.importorskip("pyarrow")
    files = sorted((data_root / "class_1").glob("*.png"))[:3]
    out = work / "cells.parquet"
    proc = run("extract", *files, bad_image, "--per-cell", "--groups", "shape", "colour",
               "--out", out, "--n-jobs", "2", cwd=work)
    table = pd.read_parquet(out)
    assert "label" not in table.columns  # files given directly have no label
    from leukfeat.transformers import CELL_COLUMNS

    head = ["path", *CELL_COLUMNS, "error"]
    assert list(table.columns[:len(head)]) == head
    assert not any(c.startswith(("glcm_", "lbp_", "edges_")) for c in table.columns)
    assert set(table.path) == {str(f) for f in files} | {str(bad_image)}
    bad = table[table.path == str(bad_image)]
    assert len(bad) == 1 and "ImageReadError" in bad.error.iloc[0]
    assert bad.drop(columns=head).isna().all(axis=None)
    good = table[table.path != str(bad_image)]
    assert good.error.isna().all() and (good.cell_label >= 1).all()
    assert ((good.bbox_min_row < good.centroid_row) & (good.centroid_row < good.bbox_max_row)
            & (good.bbox_min_col < good.centroid_col)
            & (good.centroid_col < good.bbox_max_col)).all()
    assert f"1 of {len(files) + 1} images could not be read" in proc.stderr


def test_extract_parquet_without_pyarrow(work, data_root, monkeypatch, capsys):
    from leukfeat.cli import main

    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow -> ImportError
    assert main(["extract", str(data_root), "--out", str(work / "x.parquet")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pyarrow" in err[0] and err[0].startswith("leukfeat: error:")
    assert not (work / "x.parquet").exists()


# --------------------------------------------------------------------------- #
# train / predict
# --------------------------------------------------------------------------- #

def test_train_writes_a_model_file(trained):
    from leukfeat import persist

    model_path, proc = trained
    assert model_path.is_file()
    assert "trained hgb on 24 images" in proc.stdout
    meta = persist.read_metadata(model_path)
    assert meta["user"]["classifier"] == "hgb"
    assert meta["user"]["data"]["class_counts"] == {c: N_PER_CLASS for c in CLASSES}


def test_predict_probabilities_match_the_model(work, trained, data_root, bad_image):
    from leukfeat import persist

    model_path, _ = trained
    out = work / "predictions.csv"
    proc = run("predict", model_path, data_root / "class_2", bad_image, "--out", out,
               "--n-jobs", "1", cwd=work)
    table = pd.read_csv(out)
    cols = [f"proba_{c}" for c in CLASSES]
    assert list(table.columns) == ["path", "prediction", *cols, "error"]
    assert len(table) == N_PER_CLASS + 1
    bad = table[table.path == str(bad_image)].iloc[0]
    assert "ImageReadError" in bad.error and pd.isna(bad.prediction)
    assert bad[cols].isna().all()
    good = table[table.error.isna()]
    model = persist.load_model(model_path)
    expected = model.predict_proba(list(good.path))
    np.testing.assert_array_equal(good[cols].to_numpy(), expected)
    assert list(good.prediction) == list(model.classes_[expected.argmax(axis=1)])
    np.testing.assert_allclose(good[cols].sum(axis=1), 1.0)
    assert str(bad_image) in proc.stderr


@pytest.mark.parametrize("damage", ["garbage", "tampered"])
def test_predict_refuses_a_bad_model_file(work, trained, data_root, damage):
    model_path, _ = trained
    broken = work / f"{damage}.skops"
    if damage == "garbage":
        broken.write_bytes(b"PK\x03\x04 not really a zip file")
    else:  # flip bytes inside the compressed data of the largest member
        import struct
        import zipfile

        data = bytearray(model_path.read_bytes())
        with zipfile.ZipFile(model_path) as zf:
            member = max(zf.infolist(), key=lambda zi: zi.compress_size)
        # the data starts after the member's local header (30 bytes, name,
        # extra field); zipfile ignores most fields of that header, so the
        # flipped bytes must lie in the data itself (the middle of the file
        # sometimes fell on a header: a flaky test)
        start = member.header_offset
        name_len, extra_len = struct.unpack("<HH", data[start + 26:start + 30])
        mid = start + 30 + name_len + extra_len + member.compress_size // 2
        data[mid:mid + 16] = bytes(b ^ 0xFF for b in data[mid:mid + 16])
        broken.write_bytes(bytes(data))
    proc = run("predict", broken, data_root / "class_0", "--out", work / "p.csv", cwd=work,
               check=False)
    assert_one_line_error(proc, str(broken))


# --------------------------------------------------------------------------- #
# evaluate
# --------------------------------------------------------------------------- #

REQUIRED_KEYS = {"accuracy", "balanced_accuracy", "f1_macro", "confusion_matrix", "classes",
                 "n_images", "n_duplicate_groups", "split", "fold_accuracy",
                 "fold_balanced_accuracy", "fold_f1_macro", "ci"}


def test_evaluate_single_classifier_json(evaluated, work, data_root):
    result, proc = evaluated
    assert REQUIRED_KEYS <= set(result)
    n = N_PER_CLASS * len(CLASSES)
    assert result["model"] == "xgboost"
    assert result["classes"] == list(CLASSES) and result["n_images"] == n
    cm = np.array(result["confusion_matrix"])
    assert cm.shape == (3, 3) and cm.sum() == n
    assert result["accuracy"] == pytest.approx(np.trace(cm) / n)
    assert len(result["fold_accuracy"]) == 3 == result["cv"]
    lo, hi = result["ci"]["accuracy"]
    assert lo <= result["accuracy"] <= hi
    assert result["split"].startswith("stratified")
    assert result["n_duplicate_groups"] == 0
    assert result["features"]["n_features"] == len(extract.feature_names()) and result["features"]["n_failed"] == 0
    assert result["data"]["loader"] == "folder"
    # the summary is printed
    assert "balanced accuracy" in proc.stdout and "xgboost" in proc.stdout
    # the exact command line and the data path are recorded
    assert result["command"].startswith("leukfeat evaluate ")
    assert str(data_root) in result["command"] and "--cv 3" in result["command"]
    assert result["data"]["path"] == str(data_root.resolve())
    assert result["working_directory"] == str(work)
    assert result["stain"] is None


def test_evaluate_runs_the_confound_check_by_default(evaluated):
    """Background only, on the models' folds, beside the accuracy: JSON and stdout."""
    result, proc = evaluated
    check = result["confound_check"]
    assert check["same_folds"] is True
    assert check["cv_report"]["fold_of_sample"] == result["fold_of_sample"]
    assert check["segmenter"] == result["features"]["method"]
    # make_cells gives every class the same background: nothing to find
    assert check["confounded"] is False and check["warning"] is None
    assert check["balanced_accuracy"] < check["flag_above"] == pytest.approx(1 / 3 + 0.2)
    assert check["compared_with"] == "xgboost" and check["rivals"] == {"xgboost": False}
    assert result["warnings"] == [] and result["seconds"]["confound_check"] > 0
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("background only")]
    assert len(line) == 1 and "same folds" in line[0]
    assert f"{check['balanced_accuracy']:.3f}" in line[0]
    assert "no background confound detected" in line[0]
    assert "warning" not in proc.stderr


def test_evaluate_all_json_and_report(evaluated_all):
    result, report, proc = evaluated_all
    assert set(result["models"]) == {"knn", "svm", "rf", "xgboost"}
    for name, r in result["models"].items():
        assert REQUIRED_KEYS <= set(r), name
        assert r["estimator"] == name
    # every model saw the same folds
    folds = {tuple(r["fold_of_sample"]) for r in result["models"].values()}
    assert len(folds) == 1
    assert [row["model"] for row in result["summary"]] == ["knn", "svm", "rf", "xgboost"]
    assert result["best_model"] in result["models"]
    assert result["n_images"] == 24 and result["classes"] == list(CLASSES)
    assert "| knn |" in proc.stdout and "| xgboost |" in proc.stdout
    # out-of-fold predictions of every image and model
    oof = pd.read_csv(report.parent / "oof.csv")
    assert len(oof) == 24 and list(oof.columns[:3]) == ["path", "label", "fold"]
    for name, r in result["models"].items():
        assert (oof[f"{name}_prediction"] == oof.label).mean() == pytest.approx(r["accuracy"])
        np.testing.assert_allclose(oof[[f"{name}_proba_{c}" for c in CLASSES]].sum(axis=1), 1)
    assert list(oof.fold) == result["models"]["knn"]["fold_of_sample"]
    # the report: Markdown and figures
    md = report / "report.md"
    assert md.is_file() and md.read_text().strip()
    pngs = list(report.rglob("*.png"))
    assert pngs
    for png in pngs:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert png.name in md.read_text() or str(png.relative_to(report)) in md.read_text()
    # --no-confound-check: null in the JSON, said so on stdout, no row, no section
    assert result["confound_check"] is None and result["warnings"] == []
    assert result["seconds"]["confound_check"] == 0
    assert "background only (confound check): skipped (--no-confound-check)" in proc.stdout
    assert "| background only" not in proc.stdout
    text = md.read_text()
    assert "background only" not in text and "## Confound check" not in text
    # the data path and the command
    assert f"**Data**: `{result['data']['path']}`" in text
    assert f"**Command**: `{result['command']}`" in text
    assert "--no-confound-check" in result["command"]


def test_evaluate_limit_and_stain(work, data_root):
    """--limit gives a stratified subset; --stain runs, is recorded, and the
    confound check sees the normalised images on the same folds."""
    from leukfeat import cli

    out = work / "eval" / "limit.json"
    run("evaluate", data_root, "--limit", "15", "--classifier", "knn", "--cv", "2",
        "--groups", "shape", "--bootstrap", "0", "--json", out, "--n-jobs", "1", "-q",
        "--stain", "reinhard", cwd=work)
    result = json.loads(out.read_text())
    assert result["n_images"] == 15 and result["data"]["limit"] == 15
    assert sorted(np.array(result["confusion_matrix"]).sum(axis=1)) == [5, 5, 5]
    assert result["ci"] == {}
    stain = result["stain"]
    assert stain["method"] == "reinhard" and stain["target"].startswith("built-in")
    assert stain["target_values"]["mean"] == pytest.approx(list(cli.REINHARD_TARGET["mean"]))
    assert result["seconds"]["stain_normalisation"] > 0
    assert "--stain reinhard" in result["command"]
    assert result["features"]["n_failed"] == 0
    check = result["confound_check"]
    assert check["same_folds"] is True and check["cv_report"]["n_images"] == 15


@pytest.fixture(scope="module")
def tinted_root(work):
    """24 images whose classes differ only in background tint (a confounded set).

    The cells are those of make_cells (which differ by class); the background
    (compartment 0: plasma, no cell) of each class gets its own RGB offset, as
    when each class is imaged on its own day or microscope.
    """
    from leukfeat.datasets import make_cells

    cells = make_cells(N_PER_CLASS * len(CLASSES), n_classes=len(CLASSES), size=96,
                       random_state=0)
    background = cells.compartments() == 0
    offsets = np.array([[0, 0, 0], [8, -5, 6], [-6, 4, -8]])
    tinted = cells.images.astype(np.int16)
    for i, label in enumerate(cells.labels):
        tinted[i][background[i]] += offsets[label]
    cells.images[...] = np.clip(tinted, 0, 255).astype(np.uint8)
    cells.save(work / "tinted")
    return work / "tinted"


def test_evaluate_warns_when_the_background_rivals_the_model(work, tinted_root):
    """The confound check by default: a row beside the models in the printed table
    and the report, the JSON, and the warning (stderr, JSON, report)."""
    pytest.importorskip("matplotlib", reason="the plot extra (the report) is not installed")
    out = work / "eval" / "tinted.json"
    report = work / "eval" / "tinted-report"
    proc = run("evaluate", tinted_root, "--classifier", "knn,logreg", "--cv", "3",
               "--bootstrap", "0", "--json", out, "--report", report, "--n-jobs", "1",
               cwd=work)
    result = json.loads(out.read_text())
    check = result["confound_check"]
    assert check["confounded"] is True and check["same_folds"] is True
    assert check["balanced_accuracy"] > 0.9 and check["rivals"] == {"knn": True, "logreg": True}
    assert check["compared_with"] == result["best_model"]
    warning = [ln for ln in proc.stderr.splitlines() if ln.startswith("leukfeat: warning:")]
    assert len(warning) == 1 and "acquisition" in warning[0] and "not the cells" in warning[0]
    assert warning[0] == f"leukfeat: warning: {check['warning']}"
    assert result["warnings"] == [check["warning"]]
    row = [ln for ln in proc.stdout.splitlines() if ln.startswith("| background only")]
    assert len(row) == 1 and f"{check['balanced_accuracy']:.3f}" in row[0]
    assert "same folds" in proc.stdout and "CONFOUNDED" in proc.stdout
    text = (report / "report.md").read_text()
    assert "| background only (confound check) |" in text and "## Confound check" in text
    assert "the same folds as the models" in text and "**confounded**" in text
    assert f"**Warning**: {check['warning']}." in text
    assert f"**Data**: `{result['data']['path']}`" in text


def test_stain_targets_are_fixed_and_leak_free(data_root):
    """--stain maps each image on its own to a fixed target (built-in or a file)."""
    import cv2

    from leukfeat import cli, preprocess
    from leukfeat.io import read_image

    for method in cli.STAIN_METHODS:
        target, info = cli.stain_target(method, None)
        assert info["method"] == method and info["target"].startswith("built-in")
        assert target is not None
    path = sorted((data_root / "class_0").glob("*.png"))[0]
    target, info = cli.stain_target("macenko", path)
    assert info["target"] == str(path.resolve())
    np.testing.assert_allclose(info["target_values"]["stain_matrix"],
                               preprocess.macenko_stains(read_image(path)).stain_matrix)
    # per image: an image's result does not depend on the other images
    norm = cli.Normalise("reinhard", cli.stain_target("reinhard", None)[0])
    alone = norm(str(path))
    assert alone.shape == read_image(path).shape and alone.dtype == np.uint8
    assert norm("no/such/file.png") == "no/such/file.png"   # left for the extractor to report
    with pytest.raises(cli.CommandError, match="--stain-target"):
        cli.stain_target("reinhard", data_root / "no-such.png")
    blank = data_root.parent / "blank.png"
    cv2.imwrite(str(blank), np.full((32, 32, 3), 250, np.uint8))
    with pytest.raises(cli.CommandError, match="stained pixels"):
        cli.stain_target("macenko", blank)       # no stain to learn from
    args = cli.build_parser().parse_args(["evaluate", str(data_root), "--stain-target",
                                          str(path)])
    with pytest.raises(cli.CommandError, match="needs --stain"):
        cli.cmd_evaluate(args)


# --------------------------------------------------------------------------- #
# demo
# --------------------------------------------------------------------------- #

def test_demo(work):
    pytest.importorskip("xgboost", reason="the xgboost extra is not installed")
    pytest.importorskip("matplotlib", reason="the plot extra (the report) is not installed")
    out = work / "demo"
    proc = run("demo", "--out", out, "--n", "24", "--size", "96", "--cv", "3", cwd=work)
    assert "mean cell IoU" in proc.stdout and "ground truth" in proc.stdout
    for name in ("knn", "svm", "rf", "xgboost"):
        assert f"| {name} |" in proc.stdout
    assert (out / "contact_sheet.png").is_file()
    assert len(list((out / "overlays").glob("overlay_*.png"))) == 24
    assert (out / "report" / "report.md").is_file()
    result = json.loads((out / "results.json").read_text())
    assert set(result["models"]) == {"knn", "svm", "rf", "xgboost"}
    assert result["segmentation"]["mean_cell_iou"] > 0.9
    seg = pd.read_csv(out / "segmentation.csv")
    assert len(seg) == 24 and {"cell_iou", "nucleus_iou"} <= set(seg.columns)
    # the generated images can be fed back to the other commands
    assert len(list((out / "images").rglob("*.png"))) == 24
    # the report and the JSON say the images are synthetic, and record the command
    assert result["data"]["synthetic"] is True and "make_cells" in result["data"]["description"]
    assert result["data"]["path"] == str((out / "images").resolve())
    assert result["command"].startswith("leukfeat demo ") and "--n 24" in result["command"]
    text = (out / "report" / "report.md").read_text()
    assert "**Data**: **synthetic** smear images generated by " \
           "`leukfeat.datasets.make_cells`" in text
    assert "not patient data" in text and f"`{result['command']}`" in text
    # the confound check runs here too, and finds nothing: no warning anywhere
    assert result["confound_check"]["confounded"] is False
    assert result["confound_check"]["same_folds"] is True
    assert "| background only (confound check) |" in proc.stdout
    assert "| background only (confound check) |" in text and "**Warning**" not in text
    assert result["warnings"] == [] and "warning" not in proc.stderr


# --------------------------------------------------------------------------- #
# errors: one line, exit status 2, no traceback
# --------------------------------------------------------------------------- #

@pytest.fixture(scope="module")
def empty_dir(work):
    (work / "empty").mkdir()
    return work / "empty"


@pytest.mark.parametrize("case", [
    "evaluate-missing-root", "evaluate-empty-folder", "evaluate-unknown-loader",
    "evaluate-layout", "evaluate-unknown-classifier", "evaluate-stain-target-missing",
    "train-missing-root",
    "extract-missing-file", "extract-bad-suffix", "segment-empty-folder",
    "predict-missing-model", "predict-missing-input", "unknown-option", "bad-choice",
])
def test_errors_are_one_line(case, work, data_root, empty_dir, trained):
    model, _ = trained
    missing = work / "no" / "such"
    args, fragment = {
        "evaluate-missing-root": (["evaluate", missing], str(missing)),
        "evaluate-empty-folder": (["evaluate", empty_dir], str(empty_dir)),
        "evaluate-unknown-loader": (["evaluate", data_root, "--loader", "imagenet"],
                                    "imagenet"),
        "evaluate-layout": (["evaluate", data_root, "--loader", "taleghani"],
                            str(data_root)),
        "evaluate-unknown-classifier": (["evaluate", data_root, "--classifier", "cnn"],
                                        "cnn"),
        "evaluate-stain-target-missing": (["evaluate", data_root, "--stain", "macenko",
                                           "--stain-target", missing], str(missing)),
        "train-missing-root": (["train", missing, "--out", work / "m.skops"], str(missing)),
        "extract-missing-file": (["extract", missing, "--out", work / "f.csv"], str(missing)),
        "extract-bad-suffix": (["extract", data_root, "--out", work / "f.xlsx"], ".xlsx"),
        "segment-empty-folder": (["segment", empty_dir, "--out", work / "s"], str(empty_dir)),
        "predict-missing-model": (["predict", missing, data_root, "--out", work / "p.csv"],
                                  str(missing)),
        "predict-missing-input": (["predict", model, missing, "--out", work / "p.csv"],
                                  str(missing)),
        "unknown-option": (["evaluate", data_root, "--frobnicate"], "--frobnicate"),
        "bad-choice": (["segment", data_root, "--out", work / "s", "--method", "magic"],
                       "magic"),
    }[case]
    proc = run(*args, cwd=work, check=False)
    assert_one_line_error(proc, fragment)


def test_progress_bars_only_on_a_terminal(work, data_root):
    """No bar through a pipe (every run above); a bar on a terminal unless --quiet."""
    pty = pytest.importorskip("pty")
    env = dict(os.environ)

    def stderr_of(*extra):
        import fcntl
        import struct
        import termios

        master, slave = pty.openpty()
        # a real terminal size: tqdm draws nothing on a 0-column terminal
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "leukfeat", "segment", str(data_root / "class_0"),
                 "--out", str(work / "seg-tty"), *extra],
                cwd=work, env=env, stdout=subprocess.PIPE, stderr=slave, timeout=300)
            os.close(slave)
            slave = None
            chunks = []
            while True:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                chunks.append(chunk)
        finally:
            if slave is not None:
                os.close(slave)
            os.close(master)
        assert proc.returncode == 0
        return b"".join(chunks).decode("utf-8", "replace")

    assert "100%" in stderr_of()
    assert stderr_of("--quiet", "--overwrite") == ""
    piped = run("segment", data_root / "class_0", "--out", work / "seg-pipe", cwd=work)
    assert "100%" not in piped.stderr and "segmenting" in piped.stderr


# --------------------------------------------------------------------------- #
# the public Taleghani set, when present
# --------------------------------------------------------------------------- #

@pytest.mark.shared_data
def test_evaluate_taleghani_subset(tmp_path):
    files = taleghani_files()  # skips when the data set is absent
    pytest.importorskip("xgboost", reason="the xgboost extra is not installed")
    root = Path(files[0]).parents[1]
    out = tmp_path / "taleghani.json"
    proc = run("evaluate", root, "--loader", "taleghani", "--limit", "200", "--classifier",
               "xgboost", "--cv", "5", "--json", out, "--n-jobs", "2", cwd=tmp_path)
    result = json.loads(out.read_text())
    assert REQUIRED_KEYS <= set(result)
    assert result["n_images"] == 200
    assert result["classes"] == ["Benign", "Early", "Pre", "Pro"]
    assert result["data"]["n_images"] == 200 and result["data"]["limit"] == 200
    assert result["data"]["n_images_in_data_set"] == len(files)
    assert sum(result["data"]["class_counts"].values()) == 200
    cm = np.array(result["confusion_matrix"])
    assert cm.shape == (4, 4) and cm.sum() == 200
    assert len(result["fold_accuracy"]) == 5
    assert result["split"].startswith("stratified")
    assert result["n_duplicate_groups"] is not None
    # the README's figure for XGBoost on all 3,256 images is 0.947 (largest cell);
    # 200 images give a noisier, lower but clearly better-than-chance figure
    assert 0.6 < result["accuracy"] <= 1.0
    assert result["ci"]["accuracy"][0] < result["accuracy"] < result["ci"]["accuracy"][1]
    assert "xgboost" in proc.stdout
    # each class was imaged with its own background tint: the default confound
    # check flags it (benchmarks/README.md: 0.98 on all images) and warns
    check = result["confound_check"]
    assert check["same_folds"] and check["confounded"] and check["balanced_accuracy"] > 0.8
    assert "CONFOUNDED" in proc.stdout
    if check["warning"]:
        assert f"leukfeat: warning: {check['warning']}" in proc.stderr


def test_classifier_names_match_the_models_module():
    from leukfeat import cli, models

    assert cli.CLASSIFIERS == models.CLASSIFIERS
    assert set(cli.ALL_CLASSIFIERS) <= set(models.CLASSIFIERS)


def test_names_are_the_library_s_own():
    """The CLI keeps no copies of group, cell or segmenter names."""
    from leukfeat import cli, datasets, extract, segment

    assert cli.FEATURE_GROUPS is extract.GROUPS
    assert cli.DEFAULT_FEATURE_GROUPS is extract.DEFAULT_GROUPS
    assert cli.CELLS is extract.CELLS
    assert cli.METHODS == tuple(segment.METHODS)
    assert cli.DEFAULT_METHOD == segment.DEFAULT_METHOD
    assert cli.loader_names() == tuple(datasets.LOADERS)
    assert cli.build_parser().parse_args(["segment", "x.png", "--out", "o"]).method == \
        segment.DEFAULT_METHOD


def test_unique_output_stems():
    from leukfeat.cli import unique_stems

    stems = unique_stems(["a/x.png", "b/x.png", "c/y.tif", "a/x.jpg", "z.png"])
    assert stems[2] == "y" and stems[4] == "z"
    assert len(set(stems)) == 5
    assert stems[1] == "b_x" and all(s.startswith("a_x") for s in (stems[0], stems[3]))


def test_auto_n_jobs():
    from argparse import Namespace

    from leukfeat import cli

    auto, two = Namespace(n_jobs=None), Namespace(n_jobs=2)
    assert cli.n_jobs_for(auto, 10) == 1 and cli.n_jobs_for(auto, cli.AUTO_MIN_IMAGES) == -1
    assert cli.n_jobs_for(two, 10) == 2
    assert cli.cv_jobs(auto, 24, 4, 3) == 1      # the tests' small runs: in-process
    assert cli.cv_jobs(auto, 90, 4, 5) == -1     # the demo: folds in parallel
    assert cli.cv_jobs(two, 24, 1, 2) == 2


def test_quiet_before_or_after_the_command(work, data_root):
    for args in (["--quiet", "segment", data_root / "class_0"],
                 ["segment", data_root / "class_0", "-q"]):
        proc = run(*args, "--out", work / "seg-quiet", "--overwrite", cwd=work)
        assert proc.stderr == "" and "segmented 8 of 8" in proc.stdout


# --------------------------------------------------------------------------- #
# outputs are never silently replaced, never half-written
# --------------------------------------------------------------------------- #

def test_existing_outputs_are_refused_without_overwrite(work, data_root, trained):
    model, _ = trained
    out = work / "again"
    table = out / "features.csv"
    run("extract", data_root / "class_0", "--groups", "shape", "--out", table, cwd=work)
    before = table.read_bytes()
    proc = run("extract", data_root / "class_1", "--groups", "shape", "--out", table,
               cwd=work, check=False)
    assert_one_line_error(proc, "--out", "exists", "--overwrite")
    assert table.read_bytes() == before                     # the earlier result is intact
    run("extract", data_root / "class_1", "--groups", "shape", "--out", table,
        "--overwrite", cwd=work)
    assert table.read_bytes() != before

    proc = run("train", data_root, "--out", model, cwd=work, check=False)
    assert_one_line_error(proc, "--out", "exists", "--overwrite")

    preds = out / "p.csv"
    run("predict", model, data_root / "class_0", "--out", preds, cwd=work)
    proc = run("predict", model, data_root / "class_0", "--out", preds, cwd=work, check=False)
    assert_one_line_error(proc, "--out", "exists", "--overwrite")

    masks = out / "masks"
    run("segment", data_root / "class_0", "--out", masks, cwd=work)
    stamp = (masks / "segmentation.csv").stat().st_mtime_ns
    proc = run("segment", data_root / "class_0", "--out", masks, cwd=work, check=False)
    assert_one_line_error(proc, "--out", "already holds", "--overwrite")
    assert (masks / "segmentation.csv").stat().st_mtime_ns == stamp
    # other images into the same folder would replace its segmentation.csv
    proc = run("segment", data_root / "class_1", "--out", masks, cwd=work, check=False)
    assert_one_line_error(proc, "segmentation.csv", "--overwrite")
    run("segment", data_root / "class_1", "--out", masks, "--overwrite", cwd=work)


def test_atomic_path_never_leaves_a_partial_file(tmp_path):
    from leukfeat._atomic import atomic_path

    dest = tmp_path / "sub" / "table.csv"
    with atomic_path(dest) as tmp:
        assert tmp.parent == dest.parent and tmp.name.startswith(".table.csv.")
        tmp.write_text("a,b\n1,2\n")
        assert not dest.exists()                            # not yet under its name
    assert dest.read_text() == "a,b\n1,2\n"
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(dest) as tmp:
            tmp.write_text("a,b\n3")                        # interrupted half-way
            raise KeyboardInterrupt
    assert dest.read_text() == "a,b\n1,2\n"                 # the earlier file is intact
    assert sorted(p.name for p in dest.parent.iterdir()) == ["table.csv"]


_WRITER = """
import sys
import numpy as np, pandas as pd
from leukfeat.cli import write_table
n = int(sys.argv[2])
df = pd.DataFrame(np.arange(n * 20, dtype=float).reshape(n, 20))
print("writing", flush=True)
write_table(df, __import__("pathlib").Path(sys.argv[1]))
"""


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_kill_during_write_leaves_no_partial_table(tmp_path, suffix):
    """A process killed (SIGKILL) while writing a table leaves either no file
    or the whole table under the final name, never a truncated one."""
    import signal

    if suffix == ".parquet":
        pytest.importorskip("pyarrow")
    n = 300_000
    dest = tmp_path / f"table{suffix}"
    for delay in (0.05, 0.3, 0.8):
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(dest), str(n)],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "writing"
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        if dest.exists():                                   # finished before the kill
            df = pd.read_csv(dest) if suffix == ".csv" else pd.read_parquet(dest)
            assert len(df) == n
            dest.unlink()
    for leftover in tmp_path.iterdir():                     # only hidden temporary files
        assert leftover.name.startswith(".table") and leftover.name.endswith(".tmp")


@pytest.mark.skipif(sys.platform == "win32" or sys.getfilesystemencoding() != "utf-8",
                    reason="file names are bytes only on POSIX file systems")
def test_file_names_that_are_not_utf8(work, data_root, trained):
    """A Latin-1 file name among good ones: every table is written, with
    that name's undecodable byte as a \\xNN escape, and every row kept."""
    model, _ = trained
    folder = work / "latin"
    folder.mkdir()
    good = sorted((data_root / "class_0").glob("*.png"))[:3]
    for p in good[1:]:
        shutil.copy(p, folder / p.name)
    odd = os.path.join(os.fsencode(folder), b"caf\xe9.png")
    with open(odd, "wb") as fh:
        fh.write(good[0].read_bytes())
    for out in ("f.csv", "f.parquet"):
        if out.endswith(".parquet"):
            pytest.importorskip("pyarrow")
        run("extract", folder, "--groups", "shape", "--out", work / "latin-out" / out, cwd=work)
        path = work / "latin-out" / out
        table = pd.read_csv(path) if out.endswith(".csv") else pd.read_parquet(path)
        assert len(table) == 3 and table["error"].isna().all()
        assert any(p.endswith("caf\\xe9.png") for p in table["path"])
    run("predict", model, folder, "--out", work / "latin-out" / "p.csv", cwd=work)
    preds = pd.read_csv(work / "latin-out" / "p.csv")
    assert len(preds) == 3 and preds["prediction"].notna().all()
    run("segment", folder, "--out", work / "latin-out" / "masks", cwd=work)
    seg = pd.read_csv(work / "latin-out" / "masks" / "segmentation.csv")
    assert len(seg) == 3 and "caf\\xe9_mask.png" in set(seg["mask"])
    assert os.path.exists(os.path.join(os.fsencode(work / "latin-out" / "masks"),
                                       b"caf\xe9_mask.png"))


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX symbolic links")
def test_symlink_loops_and_dangling_links_do_not_abort(work, data_root):
    """A link that points to itself at the top of a data set, a dangling link
    and a loop inside a class folder never abort the command (they used to
    abort extract, train and evaluate with exit 2) and are never silent: the
    links where class folders are looked for are listed as skipped, the
    image-named loop gets its own error row; every good image is measured."""
    root = work / "loops"
    shutil.copytree(data_root, root)
    os.symlink("loop", root / "loop")                       # ELOOP when followed
    os.symlink(root / "nowhere", root / "dangling")
    os.symlink("self.png", root / "class_0" / "self.png")   # an image name that loops
    out = work / "loops-out" / "f.csv"
    proc = run("extract", root, "--groups", "shape", "--out", out, cwd=work)
    table = pd.read_csv(out)
    n_good = N_PER_CLASS * len(CLASSES)
    assert len(table) == n_good + 1
    bad = table["path"].str.endswith("self.png")
    assert table.loc[~bad, "error"].isna().all()
    assert "symbolic link loop" in table.loc[bad, "error"].item()
    assert table.loc[bad, table.columns[4:]].isna().all(axis=None)
    assert sorted(set(table.loc[~bad, "label"])) == list(CLASSES)
    assert "skipped 2 symbolic link(s) that loop or point to nothing: 'dangling', 'loop'" \
        in proc.stderr
    assert "self.png: ImageReadError" in proc.stderr
    from leukfeat.datasets import DatasetWarning, load_folder

    with pytest.warns(DatasetWarning, match="'dangling', 'loop'"):
        assert len(load_folder(root)) == n_good + 1
    assert "Traceback" not in proc.stderr


def test_extract_per_cell_uses_the_feature_cache(work, data_root):
    """--per-cell goes through FeatureExtractor.transform_cells: --cache works
    (it was refused) and a cached run writes the same table."""
    files = sorted((data_root / "class_0").glob("*.png"))[:3]
    cache = work / "cell-cache"
    tables = []
    for k in range(2):
        out = work / f"cells-cached-{k}.csv"
        run("extract", *files, "--per-cell", "--groups", "shape", "--cache", cache,
            "--out", out, cwd=work)
        tables.append(pd.read_csv(out))
    pd.testing.assert_frame_equal(tables[0], tables[1])
    assert any(cache.rglob("*.npy")) and (tables[0]["cell_label"] >= 1).all()


def test_train_and_extract_with_a_fixed_stain_target(work, data_root, bad_image):
    """--stain on train puts a fixed-target StainNormalizer in the model (predict
    then normalises each image as training did) and records it; --stain on
    extract gives the features of the normalised images; a bad file still
    gets its error row."""
    from leukfeat import extract, persist, preprocess
    from leukfeat.io import read_image

    model_path = work / "stain.skops"
    run("train", data_root, "--classifier", "knn", "--groups", "shape", "colour",
        "--stain", "reinhard", "--out", model_path, "--n-jobs", "1", "-q", cwd=work)
    model = persist.load_model(model_path)
    assert model.steps[0][0] == "stain"
    norm = model.named_steps["stain"]
    for fitted in (norm.target, norm.target_):
        np.testing.assert_array_equal(fitted.mean, preprocess.SMEAR_REINHARD_TARGET.mean)
        np.testing.assert_array_equal(fitted.std, preprocess.SMEAR_REINHARD_TARGET.std)
    assert norm.reference_indices_.size == 0
    meta = persist.read_metadata(model_path)["user"]
    assert meta["stain"]["method"] == "reinhard" and "built-in" in meta["stain"]["target"]
    # the model's features are those of the normalised image
    path = sorted((data_root / "class_0").glob("*.png"))[0]
    normalised = preprocess.reinhard(read_image(path), preprocess.SMEAR_REINHARD_TARGET)
    ref = extract.features(normalised, groups=("shape", "colour"))
    got = model[:-1].transform([str(path)])[0]
    np.testing.assert_allclose(got, np.fromiter(ref.values(), float), rtol=1e-12)

    target_file = sorted((data_root / "class_1").glob("*.png"))[0]
    out = work / "stain-features.csv"
    run("extract", path, bad_image, "--groups", "colour", "--stain", "macenko",
        "--stain-target", target_file, "--out", out, "--n-jobs", "1", "-q", cwd=work,
        check=False)
    table = pd.read_csv(out)
    target = preprocess.macenko_stains(read_image(target_file))
    ref = extract.features(preprocess.macenko(read_image(path), target), groups=("colour",))
    np.testing.assert_allclose(table.loc[0, list(ref)].to_numpy(float),
                               np.fromiter(ref.values(), float), rtol=1e-9)
    assert "ImageReadError" in table.loc[1, "error"]


def test_stain_target_needs_stain(work, data_root):
    proc = run("train", data_root, "--stain-target", data_root, "--out", work / "x.skops",
               cwd=work, check=False)
    assert_one_line_error(proc, "--stain-target: needs --stain")


def test_extract_parquet_is_streamed_and_resumes(work, data_root):
    """--out DIR.parquet: one part per --chunk-size images with the CSV's
    columns and values; a rerun after a lost part rewrites only that part;
    other settings on the same folder are refused naming --out;
    --scheduler needs Parquet."""
    pytest.importorskip("pyarrow")
    out = work / "streamed.parquet"
    args = ("extract", data_root, "--groups", "shape", "--chunk-size", "10", "--out", out,
            "--n-jobs", "1", "-q")
    run(*args, cwd=work)
    parts = sorted(out.glob("part-*.parquet"))
    assert len(parts) == 3
    table = pd.read_parquet(out)
    csv = work / "streamed.csv"
    run("extract", data_root, "--groups", "shape", "--out", csv, "--n-jobs", "1", "-q",
        cwd=work)
    ref = pd.read_csv(csv)
    assert list(table.columns) == list(ref.columns) and len(table) == 24
    assert list(table["path"]) == list(ref["path"]) and list(table["label"]) == list(ref["label"])
    names = [c for c in ref.columns if c.startswith("shape_")]
    np.testing.assert_allclose(table[names].to_numpy(float), ref[names].to_numpy(float),
                               rtol=1e-12, equal_nan=True)
    before = {p.name: p.stat().st_mtime_ns for p in parts}
    parts[1].unlink()
    proc = run(*args[:-1], cwd=work)
    assert "wrote" in proc.stdout and "3 parts" not in proc.stderr
    assert parts[0].stat().st_mtime_ns == before[parts[0].name] and parts[1].is_file()
    pd.testing.assert_frame_equal(pd.read_parquet(out), table)
    proc = run("extract", data_root, "--groups", "colour", "--chunk-size", "10", "--out", out,
               "-q", cwd=work, check=False)
    assert_one_line_error(proc, "--out:")
    proc = run("extract", data_root, "--out", work / "x.csv", "--scheduler", "tcp://x:1",
               cwd=work, check=False)
    assert_one_line_error(proc, "--scheduler: needs a Parquet output")
