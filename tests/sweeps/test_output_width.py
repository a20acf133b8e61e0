"""Output that fits: the Pareto table and `ls` at 80 columns (no line longer, no table row wrapped), the full
table with `--wide`, a fixed width in logs.

    .venv/bin/python -m pytest tests/sweeps/test_output_width.py -q
"""

from __future__ import annotations

import io
import re

import yaml
from rich.console import Console
from typer.testing import CliRunner

from sweeps.selection.pareto_table import print_pareto
from sweeps.recording.results import resolve_sweep
from sweeps.selection.terminal import LOG_WIDTH, output_console
from unlearn_sweep.cli import app

runner = CliRunner()
POINT = re.compile(r"^\s*[★✓·]?\s+(\S+:\d+)\s")  # a compact row: mark, TRIAL:EPOCH, ...


def render(spec, sweep_dir, width: int, **kw) -> list[str]:
    console = Console(width=width, record=True, file=io.StringIO())
    assert print_pareto(spec, sweep_dir, console, **kw)
    return console.export_text().splitlines()


def realistic(spec, sweep_dir):
    """The fixture sweep with what a real one has: Tune trial ids, 32-hex MLflow run ids, epochs up to 15,
    the default spec's three objectives and its alpha dimension."""
    points = sweep_dir / "points.jsonl"
    text = points.read_text()
    for i, trial in enumerate(("dv1", "dv2", "np1", "np2")):
        text = text.replace(f'"run-{trial}"', f'"{i}f3a9c2d41b84e0a9c7d2e11f05b6a{i}c"')
        text = text.replace(f'"{trial}"', f'"4e6c2_0000{i}"')
    text = text.replace('"forget_Q_A_gibberish_rate": 0.0',
                        '"forget_Q_A_gibberish_rate": 0.0, "gibberish_rate": 0.03125')
    text = text.replace('"epoch": 2', '"epoch": 12').replace('"lr": 0.001', '"lr": 0.0012345, "alpha": 4.567')
    points.write_text(text)
    raw = yaml.safe_load((sweep_dir / "spec.yaml").read_text())
    raw["objectives"].append({"name": "gibberish_rate", "mode": "min"})
    raw["search_space"]["alpha"] = {"low": 3.0, "high": 10.0, "log": True}
    (sweep_dir / "spec.yaml").write_text(yaml.safe_dump(raw))
    return resolve_sweep(str(sweep_dir))


def test_pareto_table_fits_80_columns(finished_sweep):
    spec, sweep_dir = finished_sweep
    lines = render(spec, sweep_dir, 80, show_all=True)
    assert max(map(len, lines)) <= 80
    rows = [m.group(1) for m in map(POINT.match, lines) if m]
    # one line per point: the front best forget quality first (as the full table), then the dominated ones
    assert rows == ["dv1:2", "dv2:2", "dv1:1", "dv2:1", "np1:1", "np1:2"]
    knee = next(line for line in lines if "dv2:2" in line)
    assert "★" in knee and "DrNPO" in knee and "0.585" in knee and "lr=2e-4" in knee and "beta_dv=0.7" in knee
    assert "run-dv2" in knee  # short run ids fit here
    assert any(line.startswith("fq forget_quality (log), mu model_utility") for line in lines)  # the legend
    assert "hypervolume 0.8433" in "\n".join(lines) and "4 of 6 feasible points" in "\n".join(lines)


def test_pareto_table_of_a_realistic_sweep_fits_80_columns(finished_sweep):
    spec, sweep_dir = realistic(*finished_sweep)
    lines = render(spec, sweep_dir, 80, show_all=True)
    assert max(map(len, lines)) <= 80, "\n".join(lines)
    rows = [m.group(1) for m in map(POINT.match, lines) if m]
    assert len(rows) == 6 and all(r.startswith("4e6c2_0000") for r in rows), "\n".join(lines)
    knee = next(line for line in lines if "★" in line)
    assert re.search(r"alpha=4\.6 beta_dv=2 epochs=3 lr=1\.2e-3", knee), knee  # folded, 2 significant digits
    assert "0.0312" in knee and "gr↓" in "\n".join(lines)
    # the full table at a width that holds it: every column, full run ids
    wide = render(spec, sweep_dir, 80, wide=True)
    assert max(map(len, wide)) > 80 and any("0f3a9c2d41b84e0a9c7d2e11f05b6a0c" in line for line in wide)
    assert any("forget_quality ↑ (log)" in line for line in wide)


def test_pareto_command_widths(finished_sweep):
    spec, sweep_dir = finished_sweep
    result = runner.invoke(app, ["pareto", str(sweep_dir)], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert max(map(len, result.output.splitlines())) <= 80 and "trial:epoch" in result.output
    result = runner.invoke(app, ["pareto", str(sweep_dir), "--wide"], env={"COLUMNS": "80"})
    assert result.exit_code == 0 and "mlflow run" in result.output
    assert max(map(len, result.output.splitlines())) > 80
    # a log (not a terminal, no COLUMNS): the fixed LOG_WIDTH, which holds this full table
    result = runner.invoke(app, ["pareto", str(sweep_dir)], env={"COLUMNS": None})
    assert "mlflow run" in result.output and max(map(len, result.output.splitlines())) <= LOG_WIDTH


def test_output_console_width(monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    assert output_console().width == LOG_WIDTH  # pytest captures stdout: not a terminal
    monkeypatch.setenv("COLUMNS", "80")
    assert output_console().width == 80
    assert output_console(100).width == 100


def test_ls_at_80_columns():
    result = runner.invoke(app, ["ls"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(map(len, lines)) <= 80
    # one block per entry: its name alone on a line, each command whole on one line
    for name in ("GradAscent", "NPO", "tofu-mini", "tofu-mini-npo"):
        assert name in [line.strip() for line in lines], name
    assert any(line.strip() == "command:     unlearn-sweep run presets/tofu-mini.yaml" for line in lines)
    for text in ("DrNPO (= baldro dv)", "0.0005..0.0025 log"):
        assert text in result.output
    result = runner.invoke(app, ["ls", "presets", "--wide"], env={"COLUMNS": "80"})
    assert "┃ preset" in result.output and max(map(len, result.output.splitlines())) > 80
