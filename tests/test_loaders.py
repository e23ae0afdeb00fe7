"""Tests for the data set loaders of leukfeat.datasets (layouts built in tmp dirs)."""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from _shared import TALEGHANI, taleghani_files
from leukfeat.datasets import (LOADERS, PBC_CLASSES, TALEGHANI_CLASSES, DatasetLayoutError,
                               DatasetWarning, LabelledImages, load_allidb, load_cnmc,
                               load_dataset, load_folder, load_pbc, load_taleghani)
from leukfeat.io import read_image

# A clean layout must load without any DatasetWarning; tests that expect one
# use pytest.warns, which records it instead.
pytestmark = pytest.mark.filterwarnings("error::leukfeat.datasets.DatasetWarning")

_FORMATS = {".png": ".png", ".jpg": ".jpg", ".jpeg": ".jpg", ".bmp": ".bmp",
            ".tif": ".tif", ".tiff": ".tif"}


def write_image(path: Path, seed: int = 0, size: int = 6) -> Path:
    """Write a tiny random RGB image in the format its extension names (any case)."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(_FORMATS[path.suffix.lower()], image)
    assert ok
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.tobytes())
    return path


def write_text(path: Path, text: str = "not an image") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def make_tree(root: Path, names) -> list[Path]:
    return [write_image(root / name, seed=i) for i, name in enumerate(names)]


def rel(ds: LabelledImages, root: Path) -> list[str]:
    return [Path(p).relative_to(root).as_posix() for p in ds.paths]


def ds_of(labels, groups=None, class_names=None) -> LabelledImages:
    labels = list(labels)
    return LabelledImages(paths=[f"img_{i}.png" for i in range(len(labels))], labels=labels,
                          groups=groups,
                          class_names=class_names or sorted(set(labels)), name="folder",
                          root=".")


# =============================================================================
# LabelledImages
# =============================================================================

class TestLabelledImages:
    def test_fields_are_normalised(self):
        ds = LabelledImages(paths=[Path("a/1.png"), "b/2.png"], labels=np.array(["a", "b"]),
                            groups=["p1", "p2"], class_names=("a", "b"), name="folder",
                            root=Path("."))
        assert ds.paths == [str(Path("a/1.png")), "b/2.png"]
        assert all(isinstance(p, str) for p in ds.paths)
        assert ds.labels.dtype.kind == "U" and ds.groups.dtype.kind == "U"
        assert ds.class_names == ["a", "b"] and isinstance(ds.class_names, list)
        assert ds.root == "." and len(ds) == 2
        assert ds.class_counts == {"a": 1, "b": 1}
        assert "n_images=2" in repr(ds) and "2 groups" in repr(ds)

    def test_frozen_and_read_only(self):
        source = np.array(["a", "b"])
        ds = LabelledImages(paths=["1", "2"], labels=source, groups=None,
                            class_names=["a", "b"], name="folder", root=".")
        with pytest.raises(dataclasses.FrozenInstanceError):
            ds.labels = np.array(["b", "a"])
        with pytest.raises(ValueError):
            ds.labels[0] = "b"
        assert source.flags.writeable  # the caller's array is untouched

    @pytest.mark.parametrize("kwargs, match", [
        ({"labels": ["a"]}, r"labels: expected 2 entries"),
        ({"groups": ["g"]}, r"groups: expected 2 entries"),
        ({"labels": ["a", "c"]}, r"\['c'\] not in class_names"),
        ({"class_names": ["a", "a", "b"]}, r"class_names: names must be unique"),
        ({"labels": [["a", "b"]]}, r"labels: expected a 1-D sequence"),
    ])
    def test_inconsistent_fields(self, kwargs, match):
        fields = dict(paths=["1", "2"], labels=["a", "b"], groups=None,
                      class_names=["a", "b"], name="folder", root=".")
        fields.update(kwargs)
        with pytest.raises(ValueError, match=match):
            LabelledImages(**fields)

    def test_subset(self):
        ds = ds_of(["a", "b", "a", "c"], groups=["g0", "g1", "g2", "g3"])
        sub = ds.subset([3, 0, -1])
        assert sub.paths == ["img_3.png", "img_0.png", "img_3.png"]
        assert sub.labels.tolist() == ["c", "a", "c"]
        assert sub.groups.tolist() == ["g3", "g0", "g3"]
        assert sub.class_names == ds.class_names and sub.name == ds.name
        assert ds.subset(np.array([True, False, True, False])).labels.tolist() == ["a", "a"]
        assert ds.subset(slice(1, 3)).paths == ["img_1.png", "img_2.png"]
        empty = ds.subset([])
        assert len(empty) == 0 and empty.class_names == ["a", "b", "c"]
        assert ds_of(["a"]).subset(np.arange(1)).groups is None

    @pytest.mark.parametrize("bad, match", [
        ([4], "index 4 is out of range for 4 images"),
        ([-5], "index -5 is out of range"),
        ([True, False], r"boolean index must have shape \(4,\)"),
        ([0.5], "expected a 1-D sequence of integers"),
        ([[0, 1]], "expected a 1-D sequence of integers"),
    ])
    def test_subset_errors(self, bad, match):
        with pytest.raises(IndexError, match=match):
            ds_of(["a", "b", "a", "c"]).subset(bad)


class TestStratifiedSubset:
    LABELS = ["a"] * 70 + ["b"] * 25 + ["c"] * 5

    def test_proportions_and_order(self):
        ds = ds_of(self.LABELS, groups=[f"p{i}" for i in range(100)])
        sub = ds.stratified_subset(20)
        assert len(sub) == 20
        assert sub.class_counts == {"a": 14, "b": 5, "c": 1}
        index = [int(p[4:-4]) for p in sub.paths]
        assert index == sorted(index)  # original order kept
        assert sub.groups.tolist() == [f"p{i}" for i in index]

    def test_at_least_one_per_class(self):
        ds = ds_of(["a"] * 97 + ["b", "c", "d"])
        sub = ds.stratified_subset(10)
        assert len(sub) == 10
        assert all(count >= 1 for count in sub.class_counts.values())
        # fewer requested than classes: one of each
        assert ds.stratified_subset(2).class_counts == {"a": 1, "b": 1, "c": 1, "d": 1}

    def test_deterministic(self):
        ds = ds_of(self.LABELS)
        assert ds.stratified_subset(30).paths == ds.stratified_subset(30).paths
        assert (ds.stratified_subset(30, random_state=1).paths
                == ds.stratified_subset(30, random_state=1).paths)
        assert ds.stratified_subset(30, random_state=1).paths != ds.stratified_subset(30).paths
        rng = np.random.default_rng(0)
        assert len(ds.stratified_subset(30, random_state=rng)) == 30

    def test_everything_when_n_is_large(self):
        ds = ds_of(self.LABELS)
        assert ds.stratified_subset(100).paths == ds.paths
        assert ds.stratified_subset(1000).paths == ds.paths

    @pytest.mark.parametrize("n", [0, -3, 2.5, True, "10"])
    def test_bad_n(self, n):
        with pytest.raises(ValueError, match="n:"):
            ds_of(self.LABELS).stratified_subset(n)

    def test_class_absent_from_a_subset(self):
        ds = ds_of(["a", "a", "b", "b"], class_names=["a", "b", "c"])
        sub = ds.stratified_subset(2)
        assert sub.class_counts == {"a": 1, "b": 1, "c": 0}


# =============================================================================
# load_folder
# =============================================================================

class TestLoadFolder:
    def test_layout(self, tmp_path):
        make_tree(tmp_path, ["normal/n1.PNG", "normal/n0.jpg", "blast/b1.Tif",
                             "blast/b0.JPEG", "blast/sub/deeper/b2.bmp", "blast/x.tiff"])
        write_text(tmp_path / "blast" / "notes.txt")
        write_text(tmp_path / "blast" / "labels.csv")
        write_image(tmp_path / "blast" / ".hidden.png")
        write_image(tmp_path / "blast" / "._b1.png")  # macOS resource fork
        write_image(tmp_path / "blast" / ".ipynb_checkpoints" / "b9.png")
        write_image(tmp_path / ".trash" / "t.png")  # hidden class folder
        (tmp_path / "empty_class").mkdir()
        write_text(tmp_path / "texts" / "readme.md")  # no images: not a class
        write_text(tmp_path / "README.txt")

        ds = load_folder(tmp_path)
        assert ds.name == "folder" and ds.root == str(tmp_path) and ds.groups is None
        assert ds.class_names == ["blast", "normal"]
        assert rel(ds, tmp_path) == ["blast/b0.JPEG", "blast/b1.Tif",
                                     "blast/sub/deeper/b2.bmp", "blast/x.tiff",
                                     "normal/n0.jpg", "normal/n1.PNG"]
        assert ds.labels.tolist() == ["blast"] * 4 + ["normal"] * 2
        assert ds.class_counts == {"blast": 4, "normal": 2}
        assert all(isinstance(p, str) for p in ds.paths)
        assert read_image(ds.paths[0]).shape == (6, 6, 3)

    def test_str_root_and_relative_root(self, tmp_path, monkeypatch):
        make_tree(tmp_path / "data", ["a/1.png", "b/2.png"])
        assert load_folder(str(tmp_path / "data")).paths == load_folder(tmp_path / "data").paths
        monkeypatch.chdir(tmp_path)
        ds = load_folder("data")
        assert ds.paths == [os.path.join("data", "a", "1.png"), os.path.join("data", "b", "2.png")]
        assert ds.root == "data"

    def test_more_classes_sorted(self, tmp_path):
        make_tree(tmp_path, ["c/1.png", "A/2.png", "b/3.png", "B/4.png"])
        ds = load_folder(tmp_path)
        assert ds.class_names == sorted(["c", "A", "b", "B"])
        assert ds.labels.tolist() == ds.class_names  # one image each, class order

    @pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symbolic links")
    def test_symlinked_class_folder(self, tmp_path):
        make_tree(tmp_path / "store", ["x1.png", "x2.png"])
        make_tree(tmp_path / "data", ["a/1.png"])
        try:
            os.symlink(tmp_path / "store", tmp_path / "data" / "b", target_is_directory=True)
        except OSError:
            pytest.skip("cannot create symbolic links here")
        assert load_folder(tmp_path / "data").class_counts == {"a": 1, "b": 2}

    def test_loose_images_warn(self, tmp_path):
        make_tree(tmp_path, ["a/1.png", "b/2.png", "stray.png", "other.JPG"])
        with pytest.warns(DatasetWarning, match=r"ignored 2 image\(s\) outside the class"):
            ds = load_folder(tmp_path)
        assert len(ds) == 2

    def test_missing_root(self, tmp_path):
        missing = tmp_path / "nope"
        with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
            load_folder(missing)

    def test_root_is_a_file(self, tmp_path):
        file = write_image(tmp_path / "a.png")
        with pytest.raises(NotADirectoryError, match=re.escape(str(file))):
            load_folder(file)

    def test_root_type(self):
        with pytest.raises(TypeError, match="root: expected a str or os.PathLike"):
            load_folder(None)

    def test_empty_folder(self, tmp_path):
        with pytest.raises(DatasetLayoutError) as info:
            load_folder(tmp_path)
        message = str(info.value)
        assert str(tmp_path) in message
        assert "no class sub-folders with images" in message
        assert "expected the layout <root>/<class>/<image>" in message
        assert isinstance(info.value, ValueError)

    def test_only_non_images_and_hidden(self, tmp_path):
        write_text(tmp_path / "a" / "notes.txt")
        write_image(tmp_path / "b" / ".hidden.png")
        write_image(tmp_path / ".c" / "x.png")
        with pytest.raises(DatasetLayoutError, match="no class sub-folders with images"):
            load_folder(tmp_path)

    def test_images_without_class_folders(self, tmp_path):
        make_tree(tmp_path, ["1.png", "2.png", "3.png"])
        with pytest.raises(DatasetLayoutError,
                           match=r"found 3 image\(s\) directly in the root folder"):
            load_folder(tmp_path)

    def test_single_class(self, tmp_path):
        make_tree(tmp_path, ["blast/1.png", "blast/2.png"])
        with pytest.raises(DatasetLayoutError) as info:
            load_folder(tmp_path)
        message = str(info.value)
        assert "only one class sub-folder with images ('blast')" in message
        assert "<root>/<class>/<image>" in message and "at least two classes" in message


# =============================================================================
# load_taleghani
# =============================================================================

ORIGINAL_NAMES = {"Benign": "Benign", "[Malignant] early Pre-B": "Early",
                  "[Malignant] Pre-B": "Pre", "[Malignant] Pro-B": "Pro"}


def taleghani_tree(root: Path, folders, per_class: int = 2) -> None:
    for folder in folders:
        make_tree(root / folder, [f"WBC-{i:03d}.jpg" for i in range(per_class)])


class TestLoadTaleghani:
    def test_short_names(self, tmp_path):
        taleghani_tree(tmp_path, ["Pro", "Pre", "Early", "Benign"], per_class=2)
        write_text(tmp_path / "manifest.csv")
        ds = load_taleghani(tmp_path)
        assert ds.name == "taleghani" and ds.groups is None
        assert ds.class_names == TALEGHANI_CLASSES == ["Benign", "Early", "Pre", "Pro"]
        assert ds.labels.tolist() == ["Benign"] * 2 + ["Early"] * 2 + ["Pre"] * 2 + ["Pro"] * 2
        assert rel(ds, tmp_path)[:2] == ["Benign/WBC-000.jpg", "Benign/WBC-001.jpg"]

    def test_original_download_names(self, tmp_path):
        taleghani_tree(tmp_path, ORIGINAL_NAMES, per_class=1)
        ds = load_taleghani(tmp_path)
        assert ds.class_names == ["Benign", "Early", "Pre", "Pro"]
        for path, label in zip(ds.paths, ds.labels):
            assert ORIGINAL_NAMES[Path(path).parent.name] == label

    @pytest.mark.parametrize("folders", [
        ["benign", "EARLY", "pre", "PRO"],
        ["BENIGN", "[MALIGNANT] Early Pre-B", "[malignant] pre-b", "[Malignant]  Pro-B"],
        ["Benign", "Early_Pre-B", "Pre-B", "pro_b"],
    ])
    def test_case_insensitive(self, tmp_path, folders):
        taleghani_tree(tmp_path, folders, per_class=1)
        assert load_taleghani(tmp_path).class_counts == {c: 1 for c in TALEGHANI_CLASSES}

    def test_original_and_segmented(self, tmp_path):
        taleghani_tree(tmp_path / "Original", ["Benign", "Early", "Pre", "Pro"], per_class=2)
        taleghani_tree(tmp_path / "Segmented", ["Benign", "Early", "Pre", "Pro"], per_class=1)
        original = load_taleghani(tmp_path)
        segmented = load_taleghani(tmp_path, segmented=True)
        assert len(original) == 8 and len(segmented) == 4
        assert all(Path(p).relative_to(tmp_path).parts[0] == "Original" for p in original.paths)
        assert all(Path(p).relative_to(tmp_path).parts[0] == "Segmented" for p in segmented.paths)
        assert segmented.root == original.root == str(tmp_path)
        # root pointing at the segmented copy itself
        assert load_taleghani(tmp_path / "Segmented", segmented=True).paths == segmented.paths

    def test_nested_two_levels(self, tmp_path):
        taleghani_tree(tmp_path / "images" / "original", list(ORIGINAL_NAMES), per_class=1)
        taleghani_tree(tmp_path / "images" / "SEGMENTED", list(ORIGINAL_NAMES), per_class=1)
        assert "original" in load_taleghani(tmp_path).paths[0]
        assert "SEGMENTED" in load_taleghani(tmp_path, segmented=True).paths[0]

    def test_single_wrapper_folder(self, tmp_path):
        taleghani_tree(tmp_path / "Blood cell Cancer [ALL]", list(ORIGINAL_NAMES), per_class=1)
        assert len(load_taleghani(tmp_path)) == 4

    def test_missing_copy(self, tmp_path):
        taleghani_tree(tmp_path / "Original", ["Benign", "Pro"], per_class=1)
        with pytest.raises(DatasetLayoutError, match=r"no Segmented/ copy"):
            load_taleghani(tmp_path, segmented=True)
        taleghani_tree(tmp_path / "flat", ["Benign", "Pro"], per_class=1)
        with pytest.raises(DatasetLayoutError, match=r"segmented=True but the class folders"):
            load_taleghani(tmp_path / "flat", segmented=True)

    def test_only_segmented_copy(self, tmp_path):
        taleghani_tree(tmp_path / "Segmented", ["Benign", "Pro"], per_class=1)
        with pytest.raises(DatasetLayoutError, match=r"no Original/ copy.*segmented=True"):
            load_taleghani(tmp_path)
        assert len(load_taleghani(tmp_path, segmented=True)) == 2

    def test_partial_classes(self, tmp_path):
        taleghani_tree(tmp_path, ["Pro", "Benign"], per_class=1)
        (tmp_path / "Early").mkdir()  # empty class folder
        ds = load_taleghani(tmp_path)
        assert ds.class_names == ["Benign", "Pro"]

    def test_unknown_folder_warns(self, tmp_path):
        taleghani_tree(tmp_path, ["Benign", "Early", "Pre", "Pro", "Unsorted"], per_class=1)
        with pytest.warns(DatasetWarning, match=r"ignored 1 sub-folder\(s\).*'Unsorted'"):
            assert len(load_taleghani(tmp_path)) == 4

    def test_two_folders_same_class(self, tmp_path):
        taleghani_tree(tmp_path, ["Benign", "Pre", "[Malignant] Pre-B"], per_class=1)
        with pytest.raises(DatasetLayoutError, match=r"both .* are folders of class 'Pre'"):
            load_taleghani(tmp_path)

    def test_no_classes(self, tmp_path):
        make_tree(tmp_path, ["blast/1.png", "normal/2.png"])
        with pytest.raises(DatasetLayoutError) as info:
            load_taleghani(tmp_path)
        message = str(info.value)
        assert "none of the Taleghani class folders found" in message
        for name in ["Benign, Early, Pre, Pro", "[Malignant] early Pre-B", "[Malignant] Pre-B",
                     "[Malignant] Pro-B", "Original/", "Segmented/"]:
            assert name in message

    def test_class_folders_without_images(self, tmp_path):
        for name in TALEGHANI_CLASSES:
            write_text(tmp_path / name / "notes.txt")
        with pytest.raises(DatasetLayoutError, match="class folders hold no images"):
            load_taleghani(tmp_path)

    def test_missing_root(self, tmp_path):
        with pytest.raises(FileNotFoundError, match="nope"):
            load_taleghani(tmp_path / "nope")


# =============================================================================
# load_cnmc
# =============================================================================

#: A small mirror of C-NMC 2019: (fold, patient, n images, n cells per image, label)
CNMC_PATIENTS = [
    (0, "11", 2, 2, "all"), (0, "H10", 1, 3, "hem"), (0, "3", 1, 1, "all"),
    (1, "24", 2, 1, "all"), (1, "H22", 2, 2, "hem"),
    (2, "47", 1, 2, "all"), (2, "H7", 1, 1, "hem"), (2, "H49", 3, 1, "hem"),
]
N_CNMC = sum(n_images * n_cells for _, _, n_images, n_cells, _ in CNMC_PATIENTS)  # 20


def cnmc_tree(base: Path) -> dict:
    """Write the mirror under ``base`` (the folder holding fold_*); name -> patient."""
    expected = {}
    for fold, patient, n_images, n_cells, label in CNMC_PATIENTS:
        for image in range(1, n_images + 1):
            for cell in range(1, n_cells + 1):
                name = f"UID_{patient}_{image}_{cell}_{label}.bmp"
                write_image(base / f"fold_{fold}" / label / name, seed=len(expected))
                expected[name] = (patient, label)
    return expected


class TestLoadCnmc:
    def test_mirror(self, tmp_path):
        expected = cnmc_tree(tmp_path / "C-NMC_Leukemia" / "training_data")
        write_text(tmp_path / "C-NMC_Leukemia" / "training_data" / "fold_0" / "all" / "x.txt")
        ds = load_cnmc(tmp_path / "C-NMC_Leukemia")
        assert ds.name == "cnmc" and ds.class_names == ["all", "hem"]
        assert len(ds) == len(expected) == N_CNMC == 20
        for path, label, group in zip(ds.paths, ds.labels, ds.groups):
            name = Path(path).name
            assert expected[name] == (group, label)
            assert Path(path).parent.name == label
        assert sorted(set(ds.groups.tolist())) == sorted(p for _, p, *_ in CNMC_PATIENTS)
        assert set(ds.groups[ds.labels == "hem"].tolist()) == {"H10", "H22", "H7", "H49"}
        # fold, class folder, then file name
        parts = [Path(p).relative_to(ds.root).parts for p in ds.paths]
        assert parts == sorted(parts)
        assert [q[1] for q in parts] == sorted(f"fold_{fold}" for fold, _, n, c, _ in
                                               CNMC_PATIENTS for _ in range(n * c))
        assert rel(ds, tmp_path)[0] == "C-NMC_Leukemia/training_data/fold_0/all/UID_11_1_1_all.bmp"

    def test_patient_examples(self, tmp_path):
        make_tree(tmp_path / "fold_0", ["all/UID_11_10_1_all.bmp", "hem/UID_H10_43_1_hem.bmp",
                                        "hem/uid_h5_2_7_HEM.BMP"])
        ds = load_cnmc(tmp_path)
        assert dict(zip([Path(p).name for p in ds.paths], ds.groups.tolist())) == {
            "UID_11_10_1_all.bmp": "11", "UID_H10_43_1_hem.bmp": "H10",
            "uid_h5_2_7_HEM.BMP": "H5"}

    @pytest.mark.parametrize("where", ["root", "training_data", "parent"])
    def test_root_variants(self, tmp_path, where):
        cnmc_tree(tmp_path / "C-NMC_Leukemia" / "training_data")
        root = {"root": tmp_path / "C-NMC_Leukemia" / "training_data",
                "training_data": tmp_path / "C-NMC_Leukemia",
                "parent": tmp_path}[where]
        ds = load_cnmc(root)
        assert len(ds) == N_CNMC and ds.root == str(root)

    def test_patient_wise_split(self, tmp_path):
        from sklearn.model_selection import GroupKFold

        cnmc_tree(tmp_path)
        ds = load_cnmc(tmp_path)
        for train, test in GroupKFold(n_splits=3).split(ds.paths, ds.labels, ds.groups):
            assert not set(ds.groups[train]) & set(ds.groups[test])

    def test_suffix_contradicts_folder(self, tmp_path):
        cnmc_tree(tmp_path)
        write_image(tmp_path / "fold_1" / "all" / "UID_H22_9_9_hem.bmp")
        with pytest.raises(DatasetLayoutError) as info:
            load_cnmc(tmp_path)
        message = str(info.value)
        assert "1 file(s) whose name suffix (_all / _hem) contradicts" in message
        assert "UID_H22_9_9_hem.bmp" in message

    def test_unmatched_names_warn(self, tmp_path):
        cnmc_tree(tmp_path)
        make_tree(tmp_path / "fold_0" / "all", ["cell_1.bmp", "UID_11_1_all.bmp"])
        make_tree(tmp_path / "fold_2" / "hem", ["IMG_0001.png"])
        with pytest.warns(DatasetWarning, match=r"skipped 3 image file\(s\) whose names"):
            ds = load_cnmc(tmp_path)
        assert len(ds) == N_CNMC

    def test_other_folders_warn(self, tmp_path):
        cnmc_tree(tmp_path)
        make_tree(tmp_path / "fold_0" / "unsure", ["UID_11_1_1_all.bmp"])
        with pytest.warns(DatasetWarning, match=r"fold_0/unsure"):
            assert len(load_cnmc(tmp_path)) == N_CNMC

    def test_no_folds(self, tmp_path):
        make_tree(tmp_path, ["all/UID_11_1_1_all.bmp", "hem/UID_H1_1_1_hem.bmp"])
        with pytest.raises(DatasetLayoutError) as info:
            load_cnmc(tmp_path)
        assert "no fold_* folders found" in str(info.value)
        assert "training_data/fold_<k>/{all,hem}/UID_<patient>" in str(info.value)

    def test_folds_without_images(self, tmp_path):
        (tmp_path / "fold_0" / "all").mkdir(parents=True)
        (tmp_path / "fold_0" / "hem").mkdir(parents=True)
        with pytest.raises(DatasetLayoutError, match="no C-NMC images found"):
            load_cnmc(tmp_path)

    def test_missing_root(self, tmp_path):
        with pytest.raises(FileNotFoundError, match="nope"):
            load_cnmc(tmp_path / "nope")


# =============================================================================
# load_allidb
# =============================================================================

def allidb_tree(root: Path, version: int, labels=(1, 1, 0, 1, 0)) -> list[str]:
    ext = ".jpg" if version == 1 else ".tif"
    names = [f"Im{i:03d}_{y}{ext}" for i, y in enumerate(labels, start=1)]
    folder = root / (f"ALL_IDB{version}") / ("im" if version == 1 else "img")
    make_tree(folder, names)
    return names


class TestLoadAllidb:
    @pytest.mark.parametrize("version", [1, 2])
    def test_versions(self, tmp_path, version):
        names = allidb_tree(tmp_path, version)
        if version == 1:  # blast centre files next to the images
            write_text(tmp_path / "ALL_IDB1" / "xyc" / "Im001_1.xyc", "10 20\n")
        for root in (tmp_path, tmp_path / f"ALL_IDB{version}"):
            for v in ("auto", version, str(version)):
                ds = load_allidb(root, version=v)
                assert ds.name == "allidb" and ds.groups is None
                assert [Path(p).name for p in ds.paths] == names
                assert ds.labels.tolist() == ["blast", "blast", "normal", "blast", "normal"]
                assert ds.class_names == ["blast", "normal"]

    def test_extension_case(self, tmp_path):
        make_tree(tmp_path, ["IM001_1.TIF", "im002_0.tiff"])
        assert load_allidb(tmp_path).labels.tolist() == ["blast", "normal"]

    def test_both_versions(self, tmp_path):
        allidb_tree(tmp_path, 1, labels=(1, 0))
        allidb_tree(tmp_path, 2, labels=(1, 0, 0))
        with pytest.raises(DatasetLayoutError) as info:
            load_allidb(tmp_path)
        assert "found both ALL-IDB1" in str(info.value)
        assert "pass version=1 or version=2" in str(info.value)
        assert len(load_allidb(tmp_path, version=1)) == 2
        assert all(p.endswith(".tif") for p in load_allidb(tmp_path, version=2).paths)

    def test_requested_version_missing(self, tmp_path):
        allidb_tree(tmp_path, 2)
        with pytest.raises(DatasetLayoutError, match=r"no ALL-IDB1 images found; expected"):
            load_allidb(tmp_path, version=1)

    def test_unmatched_names_warn(self, tmp_path):
        allidb_tree(tmp_path, 2)
        make_tree(tmp_path, ["Im001.tif", "Im002_2.tif", "Im003_1.png", "scan.jpg"])
        write_image(tmp_path / "ALL_IDB2" / "img" / ".Im009_1.tif")  # hidden: silent
        write_text(tmp_path / "ALL_IDB2" / "readme.txt")  # not an image: silent
        with pytest.warns(DatasetWarning, match=r"skipped 4 image file\(s\)"):
            assert len(load_allidb(tmp_path)) == 5

    def test_no_images(self, tmp_path):
        make_tree(tmp_path, ["a/1.png", "b/2.png"])
        with pytest.raises(DatasetLayoutError) as info:
            load_allidb(tmp_path)
        message = str(info.value)
        assert "no images found" in message and "ImNNN_Y.jpg" in message
        assert "ImNNN_Y.tif" in message and "2 image file(s) with other names" in message

    @pytest.mark.parametrize("version", [3, 0, "idb2", None, True, 2.0])
    def test_bad_version(self, tmp_path, version):
        with pytest.raises(ValueError, match="version: expected 'auto', 1 or 2"):
            load_allidb(tmp_path, version=version)

    def test_missing_root(self, tmp_path):
        with pytest.raises(FileNotFoundError, match="nope"):
            load_allidb(tmp_path / "nope")


# =============================================================================
# load_pbc
# =============================================================================

class TestLoadPbc:
    @pytest.mark.parametrize("prefix", ["", "PBC_dataset_normal_DIB/"])
    def test_layout(self, tmp_path, prefix):
        folders = ["basophil", "Eosinophil", "erythroblast", "IG", "lymphocyte", "monocyte",
                   "NEUTROPHIL", "platelet"]
        for i, folder in enumerate(reversed(folders)):
            make_tree(tmp_path, [f"{prefix}{folder}/{folder[:2].upper()}_{k}.jpg"
                                 for k in range(i + 1)])
        ds = load_pbc(tmp_path)
        assert ds.name == "pbc" and ds.groups is None
        assert ds.class_names == PBC_CLASSES
        assert ds.class_counts == {c: 8 - i for i, c in enumerate(PBC_CLASSES)}
        assert ds.labels.tolist() == sorted(ds.labels.tolist(), key=PBC_CLASSES.index)

    def test_parent_of_parent(self, tmp_path):
        make_tree(tmp_path / "download" / "PBC_dataset_normal_DIB",
                  ["ig/a.jpg", "platelet/b.jpg"])
        assert load_pbc(tmp_path).class_names == ["ig", "platelet"]

    def test_unknown_folder_warns(self, tmp_path):
        make_tree(tmp_path, ["ig/a.jpg", "platelet/b.jpg", "blast/c.jpg"])
        with pytest.warns(DatasetWarning, match="'blast'"):
            assert len(load_pbc(tmp_path)) == 2

    def test_no_classes(self, tmp_path):
        make_tree(tmp_path, ["blast/1.png", "normal/2.png"])
        with pytest.raises(DatasetLayoutError) as info:
            load_pbc(tmp_path)
        message = str(info.value)
        assert "none of the PBC class folders found" in message
        assert ", ".join(PBC_CLASSES) in message and "PBC_dataset_normal_DIB" in message

    def test_several_places(self, tmp_path):
        make_tree(tmp_path, ["copy1/ig/a.jpg", "copy2/ig/a.jpg"])
        with pytest.raises(DatasetLayoutError, match="found PBC class folders in several"):
            load_pbc(tmp_path)


# =============================================================================
# load_dataset
# =============================================================================

class TestLoadDataset:
    def test_registry(self):
        assert list(LOADERS) == ["folder", "taleghani", "cnmc", "allidb", "pbc"]
        assert LOADERS["cnmc"] is load_cnmc

    def test_dispatch(self, tmp_path):
        taleghani_tree(tmp_path / "Original", ["Benign", "Pro"], per_class=1)
        taleghani_tree(tmp_path / "Segmented", ["Benign", "Pro"], per_class=2)
        assert load_dataset(tmp_path / "Original").name == "folder"
        assert load_dataset(tmp_path, "taleghani").paths == load_taleghani(tmp_path).paths
        assert len(load_dataset(tmp_path, loader=" Taleghani ", segmented=True)) == 4
        with pytest.raises(TypeError):
            load_dataset(tmp_path, "folder", segmented=True)

    def test_every_loader(self, tmp_path):
        cnmc_tree(tmp_path / "cnmc")
        allidb_tree(tmp_path / "allidb", 2)
        make_tree(tmp_path / "pbc", ["ig/a.jpg", "platelet/b.jpg"])
        make_tree(tmp_path / "folder", ["x/a.jpg", "y/b.jpg"])
        taleghani_tree(tmp_path / "taleghani", ["Benign", "Early"], per_class=1)
        for name in LOADERS:
            ds = load_dataset(tmp_path / name, loader=name)
            assert ds.name == name and len(ds) > 0

    @pytest.mark.parametrize("loader", ["imagenet", "", None, 3])
    def test_unknown_loader(self, tmp_path, loader):
        with pytest.raises(ValueError) as info:
            load_dataset(tmp_path, loader=loader)
        assert str(info.value) == (f"loader: unknown loader {loader!r}; expected one of: "
                                   "folder, taleghani, cnmc, allidb, pbc")


# =============================================================================
# The real Taleghani data set, when present
# =============================================================================

@pytest.mark.shared_data
def test_taleghani_shared_data():
    files = taleghani_files()  # skips with the reason when the data are absent
    ds = load_taleghani(TALEGHANI)
    assert len(ds) == 3256
    assert ds.class_counts == {"Benign": 504, "Early": 985, "Pre": 963, "Pro": 804}
    assert sorted(ds.paths) == sorted(str(f) for f in files)
    assert all(Path(p).parent.name == label for p, label in zip(ds.paths, ds.labels))
    assert load_dataset(TALEGHANI, "folder").class_counts == ds.class_counts

    sub = ds.stratified_subset(200)
    assert len(sub) == 200
    assert all(count > 0 for count in sub.class_counts.values())
    proportions = np.array(list(sub.class_counts.values())) / 200
    expected = np.array(list(ds.class_counts.values())) / 3256
    np.testing.assert_allclose(proportions, expected, atol=0.01)
    assert sub.paths == ds.stratified_subset(200).paths
