"""Packaging (issue #32): a light import, honest extras, a base install that
works without them, the numba cache location, and release files.

The "base install" tests run leukfeat in a fresh interpreter in which the
optional packages (xgboost, matplotlib, mahotas) cannot be imported,
as after ``pip install leukfeat`` without extras.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import leukfeat

ROOT = Path(__file__).resolve().parents[1]

#: Optional packages, each hidden from the "base install" subprocesses
#: (pyarrow, the older ``parquet`` extra, is left visible: scikit-learn looks
#: it up in sys.modules, where a None would break it).
OPTIONAL = ("xgboost", "matplotlib", "mahotas")

#: Python that makes the OPTIONAL packages unimportable, run first (a None
#: in sys.modules: ``import`` raises ImportError, ``find_spec`` gives None).
HIDE_OPTIONAL = textwrap.dedent(f"""
    import sys
    for name in {OPTIONAL!r}:
        sys.modules[name] = None
""")


def _python(code: str, *, cwd, timeout=300) -> subprocess.CompletedProcess:
    env = dict(os.environ, MPLBACKEND="Agg")
    env.pop("PYTHONPATH", None)
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def _pyproject() -> dict:
    tomllib = pytest.importorskip("tomllib")   # Python >= 3.11
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- #
# import cost
# --------------------------------------------------------------------------- #

def test_import_leukfeat_loads_nothing_heavy(tmp_path):
    heavy = ("numpy", "scipy", "sklearn", "numba", "cv2", "matplotlib", "pandas", "skimage",
             "PIL", "joblib", "xgboost", "torch", "onnxruntime", "yaml", "skops")
    code = ("import sys, leukfeat; "
            f"print([m for m in {heavy!r} if m in sys.modules])")
    proc = _python(code, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_lazy_names_resolve_and_are_listed():
    for name in leukfeat.__all__:
        assert getattr(leukfeat, name) is not None, name
    assert set(leukfeat.__all__) <= set(dir(leukfeat))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        leukfeat.nope  # noqa: B018
    from leukfeat import FeatureExtractor, extract, make_pipeline, segment  # noqa: F401


def test_version_is_the_installed_distribution_version():
    from importlib import metadata

    assert isinstance(leukfeat.__version__, str)
    assert re.match(r"\d+\.\d+", leukfeat.__version__)
    assert leukfeat.__version__ == metadata.version("leukfeat")


# --------------------------------------------------------------------------- #
# dependencies and extras
# --------------------------------------------------------------------------- #

def test_base_dependencies_leave_out_the_optional_packages():
    project = _pyproject()["project"]
    base = {re.split(r"[<>=!~\[ ;]", d)[0].lower() for d in project["dependencies"]}
    assert not base & {"xgboost", "matplotlib", "mahotas", "pyarrow", "torch"}
    extras = project["optional-dependencies"]
    # the xgboost extra: exactly one of the CPU-only wheel and the full one
    # on every platform, the CPU-only one where XGBoost publishes it
    from packaging.requirements import Requirement

    reqs = [Requirement(d) for d in extras["xgboost"]]
    assert sorted(r.name for r in reqs) == ["xgboost", "xgboost-cpu"]
    for platform, machine, want in [("linux", "x86_64", "xgboost-cpu"),
                                    ("linux", "aarch64", "xgboost-cpu"),
                                    ("win32", "AMD64", "xgboost-cpu"),
                                    ("linux", "ppc64le", "xgboost"),
                                    ("win32", "ARM64", "xgboost"),
                                    ("darwin", "arm64", "xgboost"),
                                    ("darwin", "x86_64", "xgboost")]:
        env = {"sys_platform": platform, "platform_machine": machine}
        assert [r.name for r in reqs if r.marker.evaluate(env)] == [want], env
    assert extras["plot"] == ["matplotlib>=3.7"]
    assert any(d.startswith("mahotas") for d in extras["test"])
    # [all]: every optional feature (not the test and docs tools)
    (spec,) = extras["all"]
    named = set(re.search(r"\[(.*)\]", spec).group(1).split(","))
    assert named == set(extras) - {"all", "test", "docs"}


def test_nothing_in_the_package_imports_mahotas():
    for path in (ROOT / "leukfeat").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"^\s*(import|from)\s+mahotas", text, re.MULTILINE), path


def test_xgboost_preset_without_xgboost_names_the_extra(monkeypatch):
    from leukfeat.models import make_classifier, make_pipeline

    monkeypatch.setitem(sys.modules, "xgboost", None)   # import xgboost -> ImportError
    with pytest.raises(ImportError) as exc:
        make_classifier("xgboost")
    message = str(exc.value)
    assert "pip install 'leukfeat[xgboost]'" in message
    assert "xgboost-cpu" in message and "Linux" in message
    assert exc.value.name == "xgboost"
    with pytest.raises(ImportError, match=r"leukfeat\[xgboost\]"):
        make_pipeline("xgboost")
    make_classifier("hgb")   # the default needs no extra


def test_default_classifier_is_the_same_everywhere():
    import inspect

    from leukfeat import models
    from leukfeat.cli import CLASSIFIERS, build_parser

    assert models.DEFAULT_CLASSIFIER == "hgb"
    assert inspect.signature(models.make_pipeline).parameters["classifier"].default == "hgb"
    parser = build_parser()
    assert parser.parse_args(["train", "data", "--out", "m.skops"]).classifier == "hgb"
    assert parser.parse_args(["evaluate", "data"]).classifier == "hgb"
    assert tuple(CLASSIFIERS) == tuple(models.CLASSIFIERS)


def test_default_classifier_learns_from_a_few_dozen_samples():
    """The default preset splits on a small training set: with
    scikit-learn's ``min_samples_leaf=20`` a set of fewer than 40 samples
    gives one leaf, and every prediction is the same class (the README's
    quick start on 40 images scored chance)."""
    import numpy as np

    from leukfeat.models import make_classifier

    rng = np.random.default_rng(0)
    X = rng.normal(size=(232, 6))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)
    train, test = slice(0, 32), slice(32, None)
    clf = make_classifier("hgb").fit(X[train], y[train])
    assert np.unique(clf.predict(X[test])).size == 2
    assert clf.score(X[test], y[test]) >= 0.75
    assert clf[-1].min_samples_leaf_ == 3 and clf[-1].min_samples_leaf == "auto"
    stump = make_classifier("hgb", min_samples_leaf=20).fit(X[train], y[train])
    assert np.unique(stump.predict(X[test])).size == 1     # what the test guards against
    # from 200 samples on, scikit-learn's 20 (the benchmarked setting) exactly
    big = make_classifier("hgb").fit(X[:220], y[:220])
    fixed = make_classifier("hgb", min_samples_leaf=20).fit(X[:220], y[:220])
    assert big[-1].min_samples_leaf_ == 20
    np.testing.assert_array_equal(big.predict_proba(X[220:]), fixed.predict_proba(X[220:]))


def test_base_install_runs_the_core_and_a_default_pipeline(tmp_path):
    """``from leukfeat import segment, extract, FeatureExtractor, make_pipeline``
    and a default pipeline fitted on make_cells data, without any extra."""
    code = HIDE_OPTIONAL + textwrap.dedent("""
        import numpy as np
        from leukfeat import segment, extract, FeatureExtractor, make_pipeline, datasets
        from leukfeat.persist import load_model, save_model
        data = datasets.make_cells(16, n_classes=2, size=96, random_state=0)
        y = np.asarray(data.class_names)[data.labels]
        images = list(data.images)
        pipe = make_pipeline(max_iter=20).fit(images[::2], y[::2])
        model = load_model(save_model(pipe, "model.skops"))
        proba = model.predict_proba(images[1::2])
        assert np.allclose(proba, pipe.predict_proba(images[1::2]))
        print(type(pipe[-1][-1]).__name__, proba.shape,
              sorted(m for m in %r if sys.modules.get(m) is not None))
    """ % (OPTIONAL,))
    proc = _python(code, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.split() == ["HGBClassifier", "(8,", "2)", "[]"]


def test_demo_without_the_extras_leaves_out_xgboost_and_the_report(tmp_path):
    code = HIDE_OPTIONAL + textwrap.dedent("""
        from leukfeat.cli import main
        sys.exit(main(["demo", "--out", "demo", "--n", "16", "--classes", "2", "--cv", "3",
                       "--size", "96", "--no-confound-check", "--n-jobs", "1", "--quiet"]))
    """)
    proc = _python(code, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "leukfeat: note: xgboost skipped:" in proc.stderr
    assert "pip install 'leukfeat[xgboost]'" in proc.stderr
    assert "leukfeat: note: report skipped:" in proc.stderr
    assert "pip install 'leukfeat[plot]'" in proc.stderr
    result = json.loads((tmp_path / "demo" / "results.json").read_text())
    assert set(result["models"]) == {"knn", "svm", "rf"}
    assert len(result["skipped"]) == 2
    assert not (tmp_path / "demo" / "report").exists()


# --------------------------------------------------------------------------- #
# numba's cache directory
# --------------------------------------------------------------------------- #

def test_numba_cache_dir_left_to_the_user_or_the_package(monkeypatch, tmp_path):
    from leukfeat import _numba

    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "mine"))
    assert _numba.cache_dir() == str(tmp_path / "mine")
    monkeypatch.delenv("NUMBA_CACHE_DIR")
    monkeypatch.setattr(_numba, "_writable", lambda folder: True)   # a writable package
    assert _numba.cache_dir() is None
    assert "NUMBA_CACHE_DIR" not in os.environ


def test_numba_cache_dir_of_a_read_only_package(monkeypatch, tmp_path):
    """site-packages read-only: the user cache directory, else a temporary one."""
    from leukfeat import _numba

    package = Path(_numba.__file__).parent
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    real = _numba._writable
    monkeypatch.setattr(_numba, "_writable",
                        lambda folder: package not in Path(folder).parents and real(folder))
    assert _numba.cache_dir() == str(tmp_path / "cache" / "leukfeat" / "numba")
    assert os.environ["NUMBA_CACHE_DIR"] == str(tmp_path / "cache" / "leukfeat" / "numba")
    import numba.core.config

    assert numba.core.config.CACHE_DIR == os.environ["NUMBA_CACHE_DIR"]
    # no writable home either: a folder of this user in the temporary directory
    monkeypatch.delenv("NUMBA_CACHE_DIR")
    monkeypatch.setattr(_numba, "_writable",
                        lambda folder: str(tmp_path / "cache") not in folder
                        and package not in Path(folder).parents and real(folder))
    monkeypatch.setattr(_numba.tempfile, "gettempdir", lambda: str(tmp_path / "tmp"))
    assert _numba.cache_dir() == str(tmp_path / "tmp" / f"leukfeat-numba-{os.getuid()}")
    monkeypatch.delenv("NUMBA_CACHE_DIR")
    numba.core.config.reload_config()


def test_writable_is_false_for_a_read_only_folder(tmp_path):
    from leukfeat._numba import _writable

    assert _writable(str(tmp_path / "new" / "folder"))
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        assert not _writable(str(ro))
        assert not _writable(str(ro / "__pycache__"))
    finally:
        ro.chmod(0o755)


def _python_here(code: str, env: dict, timeout=300) -> subprocess.CompletedProcess:
    """Run ``code`` with this leukfeat (the checkout under test) importable."""
    root = str(Path(leukfeat.__file__).resolve().parent.parent)
    env = dict(os.environ, **env, PYTHONPATH=root)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_compile_ahead_helper_fills_the_cache(tmp_path):
    """On a cold cache the helper process compiles the modules ahead; this
    process waits for it, then loads those kernels instead of compiling them."""
    code = textwrap.dedent("""
        from leukfeat import _numba
        comp = "leukfeat.extract._colour_kernels"
        assert _numba._uncompiled(comp)
        assert _numba.compile_ahead(here=(), ahead=("leukfeat.extract.colour",))
        assert not _numba.compile_ahead()                   # once per process
        k = _numba.companion(comp)()                        # waits for the helper
        assert not _numba._pending
        assert _numba._helper.wait(60) == 0
        assert not _numba._uncompiled(comp)
        import importlib
        importlib.import_module("leukfeat.extract.colour")._warm()
        from numba.core.dispatcher import Dispatcher
        stats = [d.stats for d in vars(k).values()
                 if isinstance(d, Dispatcher) and d.py_func.__module__ == comp]
        assert sum(len(s.cache_hits) for s in stats) >= 5
        assert not any(s.cache_misses for s in stats), stats
        print("ok")
    """)
    proc = _python_here(code, {"NUMBA_CACHE_DIR": str(tmp_path / "cache"),
                               "LEUKFEAT_COMPILE_AHEAD": "1"})     # whatever the load
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == "ok"


def test_compile_ahead_not_when_cached_or_turned_off(monkeypatch):
    from leukfeat import _numba

    monkeypatch.setattr(_numba, "_ahead_tried", False)
    monkeypatch.setattr(_numba, "_uncompiled", lambda module: False)    # a warm cache
    assert not _numba.compile_ahead()
    assert _numba._ahead_tried
    monkeypatch.setattr(_numba, "_ahead_tried", False)
    monkeypatch.setattr(_numba, "_uncompiled", lambda module: True)
    monkeypatch.setenv("LEUKFEAT_COMPILE_AHEAD", "0")
    assert not _numba.compile_ahead()
    assert not _numba._pending


def test_compile_ahead_only_with_an_idle_cpu(monkeypatch):
    from leukfeat import _numba

    monkeypatch.setattr(_numba.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(_numba.os, "getloadavg", lambda: (0.9, 0.0, 0.0))
    assert _numba._idle_cpu()
    monkeypatch.setattr(_numba.os, "getloadavg", lambda: (1.5, 0.0, 0.0))
    assert not _numba._idle_cpu()                           # busy: no helper
    monkeypatch.setattr(_numba, "_ahead_tried", False)
    monkeypatch.setattr(_numba, "_uncompiled", lambda module: True)
    monkeypatch.delenv("LEUKFEAT_COMPILE_AHEAD", raising=False)
    assert not _numba.compile_ahead()
    monkeypatch.setattr(_numba.os, "sched_getaffinity", lambda pid: {0}, raising=False)
    monkeypatch.setattr(_numba.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    assert not _numba._idle_cpu()                           # one CPU


def test_a_failed_helper_is_not_waited_for(monkeypatch):
    """A helper that dies (here: a module that does not exist) only means
    that this process compiles the kernels itself."""
    import time

    from leukfeat import _numba

    monkeypatch.setattr(_numba, "_ahead_tried", False)
    monkeypatch.setattr(_numba, "_uncompiled", lambda module: True)
    monkeypatch.setitem(_numba.COMPANIONS, "leukfeat.nothing_here", "leukfeat.nothing_here_k")
    monkeypatch.setattr(_numba, "_pending", {})
    monkeypatch.setattr(_numba, "_helper", None)
    monkeypatch.setattr(_numba, "_helper_dir", None)
    monkeypatch.setenv("LEUKFEAT_COMPILE_AHEAD", "1")
    assert _numba.compile_ahead(here=(), ahead=("leukfeat.nothing_here",))
    assert "leukfeat.nothing_here_k" in _numba._pending
    t = time.monotonic()
    _numba._wait_for("leukfeat.nothing_here_k")
    assert time.monotonic() - t < 60
    assert _numba._helper.poll() not in (None, 0)
    assert not _numba._pending
    _numba._stop_helper()


# --------------------------------------------------------------------------- #
# release files
# --------------------------------------------------------------------------- #

def test_licence_changelog_and_manifest():
    licence = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert licence.startswith("BSD 3-Clause License")
    assert "the leukfeat developers" in licence
    project = _pyproject()["project"]
    assert project["license"] == "BSD-3-Clause" and project["license-files"] == ["LICENSE"]
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "Keep a Changelog" in changelog and "## [Unreleased]" in changelog
    manifest = (ROOT / "MANIFEST.in").read_text(encoding="utf-8")
    lines = manifest.splitlines()
    for folder in ("tests", "docs", "examples"):
        assert f"graft {folder}" in lines, folder
    words = manifest.split()
    for name in ("LICENSE", "CHANGELOG.md", "README.md", ".ci/run"):
        assert name in words, name


def test_pyproject_version_from_git_tags_with_a_fallback():
    data = _pyproject()
    assert any(r.startswith("setuptools-scm") for r in data["build-system"]["requires"])
    assert "version" in data["project"]["dynamic"]
    assert data["tool"]["setuptools_scm"]["fallback_version"]
    classifiers = data["project"]["classifiers"]
    assert "Typing :: Typed" in classifiers
    assert any(c.startswith("Development Status") for c in classifiers)


def test_ci_builds_and_checks_the_distributions():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "python -m build" in ci and "twine check" in ci
