"""The architecture contracts (pyproject.toml `[tool.importlinter]`): the arrows run one way, CLI -> reports ->
sweep service -> trainable / search spaces -> the Ray-free core, and the core imports no Ray, MLflow or Optuna;
inside the core, train -> benchmarks -> evaluation -> models -> methods | metrics -> data; inside the sweep
service, operations -> search -> selection -> recording -> spec; and no package has an import circle between its
modules (docs/architecture.md).

    .venv/bin/python -m pytest tests/test_architecture.py -q       # or: .venv/bin/lint-imports

The second test shows the contracts can fail: in a copy of the tree, a reversed arrow (the core importing the
sweep service), a forbidden import (the core importing Ray), an arrow up a layer inside the core (data importing
the zoo), arrows up a layer inside the sweep service (the results file importing the Pareto selection, the
Pareto selection importing the searcher, the spec importing the service) and an import circle (train.data
importing train.run, which imports it; sweeps.operations.ray_cluster importing sweeps.operations.service) each
break them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("unlearn_sweep", "dashboards", "sweeps", "trainables", "search_spaces", "unlearning")


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("lint-imports")
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(exe), "--config", str(root / "pyproject.toml"), "--no-cache"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)


def test_the_arrows_run_one_way():
    out = lint_imports(REPO)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "5 kept, 0 broken" in out.stdout


@pytest.mark.parametrize("module,line,named", [
    ("unlearning/train/run.py", "import sweeps.spec  # a reversed arrow\n",
     "unlearning is not allowed to import sweeps:\n\n- unlearning.train.run -> sweeps.spec"),
    ("unlearning/metrics/report.py", "import ray  # the core must stay Ray-free\n",
     "unlearning is not allowed to import ray:\n\n-   unlearning.metrics.report -> ray"),
    ("unlearning/data/lkf.py", "import unlearning.models.zoo  # an arrow up a layer\n",
     "unlearning.data is not allowed to import unlearning.models"),
    ("unlearning/train/data.py", "import unlearning.train.run  # a circle: run imports data\n",
     "No cycles are allowed in unlearning.train"),
    ("sweeps/operations/ray_cluster.py", "import sweeps.operations.service  # a circle: service imports ray_cluster\n",
     "No cycles are allowed in sweeps.operations."),
    ("sweeps/recording/results.py", "import sweeps.selection.pareto  # an arrow up a layer: pareto reads results\n",
     "sweeps.recording is not allowed to import sweeps.selection"),
    ("sweeps/selection/pareto.py", "import sweeps.search.searcher  # an arrow up a layer: search uses pareto\n",
     "sweeps.selection is not allowed to import sweeps.search"),
    ("sweeps/spec/objectives.py", "import sweeps.operations.service  # the spec is the bottom layer\n",
     "sweeps.spec is not allowed to import sweeps.operations"),
])
def test_a_reversed_arrow_breaks_the_contract(tmp_path, module, line, named):
    for pkg in PACKAGES:
        shutil.copytree(REPO / pkg, tmp_path / pkg, ignore=shutil.ignore_patterns("__pycache__", "*.yaml", "*.txt"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / module
    target.write_text(target.read_text() + "\n" + line)
    out = lint_imports(tmp_path)
    assert out.returncode != 0, out.stdout
    assert "BROKEN" in out.stdout and named in out.stdout, out.stdout   # the contract names the offending import


def test_a_module_outside_the_groups_breaks_the_contract(tmp_path):
    """`sweeps` is grouped by role: a new flat module `sweeps/x.py` belongs in one of the layers (`exhaustive`)."""
    for pkg in PACKAGES:
        shutil.copytree(REPO / pkg, tmp_path / pkg, ignore=shutil.ignore_patterns("__pycache__", "*.yaml", "*.txt"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "sweeps" / "stray.py").write_text('"""A module in no group."""\n')
    out = lint_imports(tmp_path)
    assert out.returncode != 0, out.stdout
    assert "not listed as layers" in out.stdout and "sweeps.stray" in out.stdout, out.stdout
