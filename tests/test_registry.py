"""The feature-group registry and FeatureConfig (issue #29 item 4).

Adding a group is one module and one registry entry: this test adds the toy
``intensity`` group of ``docs/developer.rst`` and checks that every path from
an image to a row knows it without any other change.
"""

from __future__ import annotations

import numpy as np
import pytest

from leukfeat import extract
from leukfeat.datasets import make_cells
from leukfeat.extract import REGISTRY, FeatureConfig, FeatureGroup
from leukfeat.transformers import FeatureExtractor


def intensity_feature_names():
    return ["intensity_mean", "intensity_std"]


def intensity_features(gray, cell):
    values = gray[cell].astype(np.float64)
    if values.size == 0:
        return dict.fromkeys(intensity_feature_names(), np.nan)
    return {"intensity_mean": values.mean(), "intensity_std": values.std()}


INTENSITY = FeatureGroup(
    "intensity", default=False,
    names=lambda cfg: intensity_feature_names(),
    measure=lambda crop, cfg: intensity_features(crop.gray, crop.cell),
    prefixes=("intensity_",), module="leukfeat.extract.intensity",
    summary="mean and spread of the grey level of the cell")


@pytest.fixture
def with_intensity(monkeypatch):
    """The registry with the toy group inserted before the field group, as
    one more entry in _registry.py would (GROUPS is derived from it there)."""
    registry = {}
    for name, group in REGISTRY.items():
        if name == "field":
            registry["intensity"] = INTENSITY
        registry[name] = group
    for module in (extract, extract._registry):
        monkeypatch.setattr(module, "REGISTRY", registry)
    monkeypatch.setattr(extract, "GROUPS", tuple(registry))


def test_registry_is_the_column_order():
    assert extract.GROUPS == tuple(REGISTRY)
    assert extract.DEFAULT_GROUPS == tuple(n for n, g in REGISTRY.items() if g.default)
    cfg = dict(extract.DEFAULTS)
    assert extract.feature_names(extract.GROUPS) == [
        name for g in REGISTRY.values() for name in g.names(cfg)]
    for g in REGISTRY.values():
        assert all(n.startswith(g.prefixes) for n in g.names(cfg)), g.name
        assert g.summary and g.module.startswith("leukfeat.extract.")


def test_a_new_group_is_one_entry(with_intensity, tmp_path):
    image = make_cells(1, size=(200, 260), n_white_cells=2, random_state=4).images[0]
    groups = ("shape", "intensity", "field")
    names = extract.feature_names(groups)
    assert names[-len(extract.feature_names(("field",))) - 2:][:2] == intensity_feature_names()
    row = extract.features(image, groups=groups)
    assert list(row) == names
    seg = extract._segment(image, extract.DEFAULT_METHOD)
    gray = __import__("cv2").cvtColor(image, __import__("cv2").COLOR_RGB2GRAY)
    largest = seg.labels == seg.largest()
    expected = intensity_features(gray, largest)
    assert row["intensity_mean"] == pytest.approx(expected["intensity_mean"], rel=1e-12)
    assert row["intensity_std"] == pytest.approx(expected["intensity_std"], rel=1e-12)
    per_cell = extract.features_per_cell(image, groups=groups)
    assert len(per_cell) == 2 and all("intensity_mean" in r for r in per_cell)
    median = extract.features(image, groups=groups, cell="median")
    assert median["intensity_mean"] == pytest.approx(
        np.median([r["intensity_mean"] for r in per_cell]))
    fx = FeatureExtractor(groups=list(groups)).fit([image])
    assert list(fx.get_feature_names_out()) == names
    np.testing.assert_array_equal(fx.transform([image])[0], list(row.values()))
    assert FeatureConfig(groups=("intensity",)).names() == intensity_feature_names()
    assert "intensity" in extract._registry.catalogue_rst()


def test_feature_config():
    cfg = FeatureConfig(groups=["edges", "shape"], cell="median",
                        options={"edge_sigmas": (1.0,)})
    assert cfg.groups == ("shape", "edges")
    assert cfg.names() == extract.feature_names(("shape", "edges"), edge_sigmas=(1.0,))
    key = cfg.cache_key()
    assert key["cell"] == "median" and key["options"]["edge_sigmas"] == (1.0,)
    assert key["n_features"] == len(cfg.names())
    assert cfg == FeatureConfig(("shape", "edges"), "median", {"edge_sigmas": (1.0,)})
    assert cfg != FeatureConfig(("shape", "edges"), "largest", {"edge_sigmas": (1.0,)})
    assert FeatureConfig(cell=np.int64(3)).cell == 3
    for kwargs, match in (({"groups": ["texture", "size"]}, "groups"),
                          ({"groups": []}, "groups"),
                          ({"cell": 0}, "cell"), ({"cell": True}, "cell"),
                          ({"options": {"glcm_level": 8}}, "options: unknown feature option"),
                          ({"options": [("glcm_levels", 8)]}, "options")):
        with pytest.raises(ValueError, match=match):
            FeatureConfig(**kwargs)


def test_model_file_metadata_records_the_config(tmp_path):
    from leukfeat import persist
    from leukfeat.models import make_pipeline

    data = make_cells(8, n_classes=2, size=96, random_state=2)
    pipe = make_pipeline("logreg", groups=("shape",), cell="median").fit(
        list(data.images), data.labels)
    path = persist.save_model(pipe, tmp_path / "m.skops")
    meta = persist.read_metadata(path)
    config = meta["features"]["config"]
    assert config["groups"] == ["shape"] and config["cell"] == "median"
    assert config["n_features"] == len(extract.feature_names(("shape",)))


@pytest.mark.parametrize("options", [
    {},
    {"percentiles": [25, 75], "colour_spaces": "lab", "histogram_bins": 4,
     "lbp_radii": [1], "glcm_distances": 2, "edge_sigmas": [1.5], "n_fourier": 3,
     "zernike_degree": 4, "glcm_levels": 32},
    {"percentiles": np.array([10.0, 50.0]), "glcm_quantization": "minmax"},
])
def test_fast_path_equals_each_group_function(options):
    """Extraction calls each group's ``values`` with options checked once;
    its values equal the group's public function (``measure``) exactly,
    also for lists, scalars and arrays as options (arrays are not cached)."""
    from leukfeat.extract import _registry
    from leukfeat.segment import lab_kmeans

    img = make_cells(1, size=160, n_white_cells=2, random_state=3).images[0]
    seg = lab_kmeans(img)
    cfg = {**extract.DEFAULTS, **options}
    crops = [_registry.CellCrop(np.ascontiguousarray(c.image), c.mask, c.nucleus)
             for c in seg.iter_cells(img, 12)]
    assert crops
    groups = [g for g in REGISTRY.values() if g.per_cell]
    assert all(g.values is not None for g in groups)
    for g in groups:
        fast = g.cell_values(cfg)
        for crop in crops:
            ref = np.array(list(g.measure(crop, cfg).values()), dtype=np.float64)
            np.testing.assert_array_equal(fast(crop), ref, err_msg=g.name)
    # the whole row, through the cached plan, equals the per-cell mappings
    rows = extract.features_per_cell(img, seg, groups=extract.GROUPS, **options)
    table = extract.features_per_cell(img, seg, groups=extract.GROUPS, as_array=True,
                                      **options)
    assert table.shape == (len(rows), 1 + len(extract.feature_names(extract.GROUPS, **options)))
    np.testing.assert_array_equal(table, [list(r.values()) for r in rows])


def test_fast_path_checks_options_like_the_group_functions():
    img = make_cells(1, size=96, random_state=0).images[0]
    for bad, match in [({"percentiles": (150,)}, "percentiles"),
                       ({"colour_spaces": ("xyz",)}, "spaces"),
                       ({"edge_sigmas": (-1.0,)}, "sigma"),
                       ({"lbp_radii": (0,)}, "radii"),
                       ({"n_fourier": -1}, "n_fourier")]:
        with pytest.raises(ValueError, match=match):
            extract.feature_vector(img, **bad)
        with pytest.raises(ValueError, match=match):
            extract.features(img, cell="median", **bad)
