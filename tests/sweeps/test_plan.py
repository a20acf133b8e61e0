"""`unlearn-sweep plan`: the default spec's overview (with and without the probe on the tiny zoo), a spec too
large for the machine (the short resource named, exit 2), a cluster's resources, and `run`'s first lines.

    .venv/bin/python -m pytest tests/sweeps/test_plan.py -q      # about a minute (the probe trains 4 steps)
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from sweeps.operations.preflight import cuda_devices
from unlearn_sweep.cli import app
from unlearning.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
DEFAULT = REPO / "presets" / "tofu-mini.yaml"
runner = CliRunner()


def spec_with(tmp_path: Path, **resources) -> Path:
    raw = yaml.safe_load(DEFAULT.read_text())
    raw["resources"] = {**raw["resources"], **resources}
    raw["storage"] = str(tmp_path / "runs")
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_plan_of_the_default_spec_without_probe(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["plan", str(DEFAULT), "--no-probe"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    out = result.output
    assert max(map(len, out.splitlines())) <= 80
    # two searches (NPO + BalDRO-DV, plain NPO) of 3 trials x 15 epochs, evaluated at epochs 3, 6, 9, 12, 15
    assert re.search(r"tofu-mini/target\s+DrNPO\s+3\s+15\s+45\s+5\b", out), out
    assert re.search(r"tofu-mini/target\s+NPO\s+3\s+15\s+45\s+5\b", out), out
    assert re.search(r"total: 2 searches\s+6\s+90\s+30 in all", out), out
    assert "searcher: trajectory model (every evaluation point) (seed 0)" in out and "scheduler: none" in out
    assert "resources per trial: 1 CPU" in out
    at_once = min(2, os.cpu_count() or 1)  # budget.max_concurrent 2, one CPU per trial
    assert f"this machine: {len(os.sched_getaffinity(0))} CPU" in out and f"{at_once} trial" in out
    assert "probe" not in out and not list(tmp_path.iterdir())  # nothing written, nothing run
    assert "reference recipe" not in out  # the default's fixed values replace nothing its preset pins


def test_plan_says_which_fixed_values_replace_the_methods_recipe(tmp_path):
    """LUNAR's preset pins its one-epoch recipe; a spec that keeps the default's `fixed.epochs: 15` runs 15 epochs
    (the spec's own value wins) and the overview says so, once per replaced value."""
    raw = yaml.safe_load(DEFAULT.read_text())
    raw["method"], raw["search_space"], raw["storage"] = {"name": "LUNAR"}, "tofu-mini-lunar", str(tmp_path)
    del raw["fixed"]["beta"]
    path = tmp_path / "lunar.yaml"
    path.write_text(yaml.safe_dump(raw))
    out = runner.invoke(app, ["plan", str(path), "--no-probe"], env={"COLUMNS": "200"}).output
    notes = [line for line in out.splitlines() if "reference recipe" in line]
    assert notes == ["note: fixed.epochs 15 replaces the reference recipe's 1 (tofu-mini-lunar); remove it to run "
                     "the recipe",
                     "note: fixed.warmup_epochs 1.0 replaces the reference recipe's 0.0 (tofu-mini-lunar); remove it "
                     "to run the recipe"], out
    assert re.search(r"tofu-mini/target\s+LUNAR\s+3\s+15\s+45\b", out), out  # the spec's 15 epochs run
    del raw["fixed"]["epochs"], raw["fixed"]["warmup_epochs"]
    path.write_text(yaml.safe_dump(raw))
    out = runner.invoke(app, ["plan", str(path), "--no-probe"], env={"COLUMNS": "200"}).output
    assert "reference recipe" not in out and re.search(r"LUNAR\s+3\s+1\s+3\b", out), out


def test_plan_with_probe_on_the_tiny_zoo(prepared_zoo, tmp_path, monkeypatch):
    if cuda_devices():
        pytest.skip("the default spec's trials run on CPU; the probe is skipped on a GPU machine")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["plan", str(DEFAULT)])
    assert result.exit_code == 0, result.output
    out = result.output
    step = re.search(r"tofu-mini/target: (\d+\.\d+) s per optimiser step \((\d+) forget examples\), "
                     r"(\d+\.\d+) s per evaluation", out)
    assert step, out
    assert float(step.group(1)) > 0 and int(step.group(2)) == 100 and float(step.group(3)) > 0
    assert re.search(r"DrNPO on tofu-mini/target: ~\d+(\.\d)? (s|min) per trial", out), out
    wall = re.search(r"estimate: ~(\d+(?:\.\d)?) (s|min|h) wall \(6 trials", out)
    assert wall, out
    assert not list(tmp_path.iterdir()), "the probe wrote outside its temporary folder"


def test_plan_names_the_short_gpu(tmp_path):
    if cuda_devices():
        pytest.skip("this machine has a GPU")
    result = runner.invoke(app, ["plan", str(spec_with(tmp_path, gpus=1)), "--no-probe"])
    assert "this machine" in result.output and "not enough GPUs for one trial" in result.output
    assert isinstance(result.exception, ConfigError) and result.exception.field == "resources.gpus"
    assert not (tmp_path / "runs").exists()


def test_plan_names_the_short_cpus_in_one_line_exit_2(tmp_path):
    """Through a real process, as a shell runs it: the overview, then one error line naming resources.cpus."""
    cpus = len(os.sched_getaffinity(0))
    spec = spec_with(tmp_path, cpus=cpus + 1, workers=2)
    proc = subprocess.run([sys.executable, "-m", "unlearn_sweep.cli", "plan", str(spec), "--no-probe"],
                          capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "field 'resources.cpus'" in lines[0], proc.stderr
    assert f"a trial needs {2 * (cpus + 1)} CPUs" in lines[0]
    assert f"this machine: {cpus} CPU" in proc.stdout and "not enough CPUs for one trial" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr


def test_plan_with_an_address_nobody_answers_is_one_line(tmp_path):
    """ray.init would wait minutes for a cluster that is not there: a closed port is refused at once (before
    the `local_ray` tests below: with Ray up in this process, plan reads that one)."""
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = runner.invoke(app, ["plan", str(spec_with(tmp_path)), "--address", f"127.0.0.1:{port}", "--no-probe"])
    assert isinstance(result.exception, ConfigError) and "no Ray cluster answers there" in str(result.exception)
    assert result.output == ""


def test_plan_reads_a_clusters_resources(local_ray, tmp_path):
    """--address: the connected Ray's resources (here the test's 2-CPU Ray); a trial bigger than it is named."""
    result = runner.invoke(app, ["plan", str(spec_with(tmp_path)), "--address", "auto", "--no-probe"])
    assert result.exit_code == 0, result.output
    assert "the Ray cluster at auto: 2 CPUs, 0 GPUs: 2 trials at once" in result.output
    result = runner.invoke(app, ["plan", str(spec_with(tmp_path, cpus=3)), "--address", "auto", "--no-probe"])
    assert "not enough CPUs for one trial" in result.output
    assert isinstance(result.exception, ConfigError) and result.exception.field == "cpus"
    assert local_ray.is_initialized() and not (tmp_path / "runs").exists()


def test_run_prints_the_overview_first(tmp_path, monkeypatch):
    """`run` starts with the same overview (no probe); stopped right after it here, before Ray or tracking."""
    import sweeps.recording.tracking

    class Stop(Exception):
        pass

    def stop(*_a, **_k):
        raise Stop

    monkeypatch.setattr(sweeps.recording.tracking, "open_tracker", stop)
    from rich.console import Console

    from sweeps.operations.service import run_sweep
    from sweeps.spec import load_spec

    console = Console(width=80, record=True, file=open(os.devnull, "w"))
    with pytest.raises(Stop):
        run_sweep(load_spec(str(spec_with(tmp_path))), console=console)
    out = console.export_text()
    assert out.startswith("sweep tofu-mini:") and "total: 2 searches" in out and "trials at once" in out
    assert "probe" not in out

