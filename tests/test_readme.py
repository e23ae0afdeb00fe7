"""The README is a front page that works: its Python snippets run verbatim.

Each ```python block of ``README.md`` is written to a file in ``tmp_path`` and
run there by a fresh interpreter, as a reader who copies it would run it:
nothing else on the path, no ``../shared`` data (the snippets make their own
synthetic images with ``leukfeat.datasets.make_cells``). The README's test
line must stay the one ``.ci/run`` runs, and the README holds no dated
measurement (those live in ``benchmarks/README.md`` and ``docs/results.rst``).
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
FENCE = re.compile(r"^```(?P<lang>\w*)\n(?P<body>.*?)^```\s*$", re.MULTILINE | re.DOTALL)
BLOCKS = [(m.group("lang"), m.group("body")) for m in FENCE.finditer(README)]
PYTHON = [body for lang, body in BLOCKS if lang == "python"]


def test_readme_has_python_snippets():
    assert len(PYTHON) >= 2


@pytest.mark.parametrize("code", PYTHON, ids=[f"snippet{i + 1}" for i in range(len(PYTHON))])
def test_readme_python_snippet_runs(code, tmp_path):
    script = tmp_path / "snippet.py"
    script.write_text(code, encoding="utf-8")
    env = dict(os.environ, MPLBACKEND="Agg")
    env.pop("PYTHONPATH", None)
    env.pop("LEUKFEAT_SHARED_DATA", None)
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, code + "\n" + proc.stdout[-3000:] + proc.stderr[-5000:]
    assert proc.stdout.strip(), "the snippet printed nothing"


def test_readme_test_line_is_the_ci_line():
    setup = next(body for lang, body in BLOCKS if lang == "bash").splitlines()
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()[-1]
    assert setup[1] == ci
    # the demo's four classifiers and its report need the xgboost and plot extras
    assert setup[0] == ('python -m pip install ".[xgboost,plot]" && '
                        'python -m leukfeat demo --out leukfeat-demo')


def test_readme_is_a_front_page():
    assert len(README.splitlines()) <= 160
    dated = re.findall(r".*\b20\d\d-\d\d-\d\d\b.*", README)
    assert not dated, "dated measurements belong in benchmarks/README.md:\n" + "\n".join(dated)
