"""The `pareto`, `export` and `ls` commands through typer's CliRunner, on a points.jsonl the test writes.

    .venv/bin/python -m pytest tests/sweeps/test_cli.py -q
"""

from __future__ import annotations

import re

import yaml
from typer.testing import CliRunner

from unlearn_sweep.cli import app
from unlearning.errors import ConfigError

runner = CliRunner()


def rows(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("│")]


def test_pareto_table(finished_sweep):
    spec, sweep_dir = finished_sweep
    result = runner.invoke(app, ["pareto", str(sweep_dir)])
    assert result.exit_code == 0, result.output
    out = result.output
    table = rows(out)
    # the front by hand (see test_results_export) listed best forget quality first:
    # dv1:2 (fq 0.1), dv2:2 (0.01), dv1:1 (1e-3), dv2:1 (1e-4)
    listed = [(cells[2], cells[3]) for cells in ([c.strip() for c in r.split("│")] for r in table) if cells[2]]
    assert listed == [("dv1", "2"), ("dv2", "2"), ("dv1", "1"), ("dv2", "1")]
    knee = [r for r in table if "knee" in r]
    assert len(knee) == 1 and "dv2" in knee[0] and "DrNPO" in knee[0] and "run-dv2" in knee[0]
    assert "2.00e-04" in knee[0] and "0.7" in knee[0]         # its lr and beta_dv
    # hypervolume by hand: normalised over the feasible points (x = (-log10 fq - 1)/3, y = (0.60 - mu)/0.05):
    # front (0, .6), (1/3, .3), (2/3, .2), (1, 0), reference 1.1:
    # 1.1*.5 + (1.1 - 1/3)*.3 + (1.1 - 2/3)*.1 + (1.1 - 1)*.2 = .843333
    assert re.search(r"hypervolume 0\.8433", out)
    assert "4 of 6 feasible points" in out
    assert "left out: 4 before unlearning, 1 constraint, 1 missing objective" in out
    assert "trials: 1 failed, 3 finished" in out and "failed np2: loss became NaN at step 3" in out
    # --all adds the two dominated feasible points; the spec file leads to the same sweep
    spec_file = sweep_dir / "spec.yaml"
    result = runner.invoke(app, ["pareto", str(spec_file), "--all"])
    assert result.exit_code == 0, result.output
    assert sum("dominated" in r for r in rows(result.output)) == 2


def test_pareto_empty_and_wrong_folder(tmp_path, finished_sweep):
    spec, sweep_dir = finished_sweep
    (sweep_dir / "points.jsonl").unlink()
    result = runner.invoke(app, ["pareto", str(sweep_dir)])
    assert result.exit_code == 1 and "no evaluated points yet" in result.output
    result = runner.invoke(app, ["pareto", str(tmp_path)])
    assert isinstance(result.exception, ConfigError) and "has no spec.yaml" in str(result.exception)


def test_export_command(finished_sweep, tmp_path):
    spec, sweep_dir = finished_sweep
    out = tmp_path / "final"
    result = runner.invoke(app, ["export", str(sweep_dir), "--pick", "knee", "--out", str(out)])
    assert result.exit_code == 0, result.output
    files = sorted(out.glob("*.yaml"))
    assert [f.name for f in files] == ["tofu-mini-target.dv__dv2__e2.yaml"]
    assert "DrNPO, trial dv2 epoch 2: forget_quality=0.01, model_utility=0.585" in result.output
    assert f"unlearn-sweep train {files[0]}" in result.output
    result = runner.invoke(app, ["export", str(sweep_dir), "--pick", "dv1:1,np1:2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert len(list(out.glob("*.yaml"))) == 3
    doc = yaml.safe_load((out / "tofu-mini-target.none__np1__e2.yaml").read_text())
    assert doc["train"]["lr"] == 1e-3 and doc["method"]["baldro"] is None
    result = runner.invoke(app, ["export", str(sweep_dir), "--pick", "zzz", "--out", str(out)])
    assert isinstance(result.exception, ConfigError)


def test_ls_and_help():
    result = runner.invoke(app, ["ls"])
    assert result.exit_code == 0, result.output
    out = result.output
    for text in ("DrNPO (= baldro dv)", "GroupSimNPO (= baldro g)", "beta_dv=1.0", "group_ratio=0.5",
                 "tofu-mini", "unlearn-sweep run presets/tofu-mini.yaml", "tofu-mini-npo", "0.0005..0.0025 log"):
        assert text in out, text
    result = runner.invoke(app, ["ls", "spaces"])
    assert "npo" in result.output and "Methods" not in result.output
    assert isinstance(runner.invoke(app, ["ls", "nothing"]).exception, ConfigError)
    for cmd in ("pareto", "export", "ls"):
        result = runner.invoke(app, [cmd, "--help"])
        assert result.exit_code == 0 and "Examples:" in result.output and f"unlearn-sweep {cmd}" in result.output
