"""The report's files: the self-contained HTML page (plotly inlined, JSON summary, MLflow links), the PNG of
the main front, both logged to the sweep's parent run in a real SQLite MLflow store; `unlearn-sweep report`.

    .venv/bin/python -m pytest tests/dashboards/test_report_files.py -q
"""

from __future__ import annotations

import json
import re

import numpy as np
from report_sweep import EXPERIMENT, N_PLOTTED, N_POINTS, PARETO
from typer.testing import CliRunner

from dashboards.mlflow_links import log_report_files
from dashboards.report import HTML_FILE, PNG_FILE, make_report
from unlearn_sweep.cli import app
from unlearning.errors import ConfigError, DataError

runner = CliRunner()


def embedded_summary(page: str) -> dict:
    m = re.search(r'<script id="report-data" type="application/json">(.*?)</script>', page, re.S)
    assert m, "no report-data script in the page"
    return json.loads(m.group(1))


def check_png(path, width: int, height: int) -> None:
    import matplotlib.image as mpimg

    raw = path.read_bytes()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n" and len(raw) > 20_000
    img = mpimg.imread(path)
    assert img.shape[:2] == (height, width)
    # a drawn chart, not a blank canvas: many distinct colours, and the front's blue (#1f77b4) is there
    rgb = (img[..., :3] * 255).round().astype(int).reshape(-1, 3)
    assert len(np.unique(rgb, axis=0)) > 50
    assert (np.abs(rgb - [0x1F, 0x77, 0xB4]).sum(axis=1) < 6).sum() > 100


def test_report_is_written_and_logged_to_the_parent_run(sweep_with_mlflow):
    from mlflow import MlflowClient

    spec, sweep_dir, run_ids = sweep_with_mlflow
    files = make_report(spec, sweep_dir, mlflow_ui="http://127.0.0.1:5099")
    assert files.html == sweep_dir / "report" / HTML_FILE and files.png == sweep_dir / "report" / PNG_FILE
    assert files.logged, files.message
    # the artifacts of the parent run (the run tagged sweep_id = spec name)
    client = MlflowClient(tracking_uri=f"sqlite:///{sweep_dir / 'mlflow.db'}")
    exp = client.get_experiment_by_name(EXPERIMENT)
    parents = client.search_runs([exp.experiment_id], f"tags.sweep_id = '{spec.name}' and tags.run_role = 'parent'")
    assert [r.info.run_id for r in parents] == [run_ids["__parent__"]]
    listed = {a.path: a.file_size for a in client.list_artifacts(run_ids["__parent__"], "report")}
    assert listed == {f"report/{HTML_FILE}": files.html.stat().st_size, f"report/{PNG_FILE}": files.png.stat().st_size}
    # the page: plotly inlined (opens offline), the summary, a link per point to its run in the MLflow UI
    page = files.html.read_text(encoding="utf-8")
    assert len(page) > 3_000_000 and not re.search(r"<script[^>]+src=", page)
    summary = embedded_summary(page)
    assert summary["n_points"] == N_POINTS and summary["n_plotted"] == N_PLOTTED
    assert sorted(summary["pareto_labels"]) == sorted(lab for front in PARETO.values() for lab in front)
    assert summary["mlflow"]["experiment_id"] == exp.experiment_id
    for fig_id in ("front-0", "front-1", "front-2", "front-3d"):
        assert sum(t["n"] for t in summary["figures"][fig_id]["traces"]) == N_PLOTTED
        assert f'id="{fig_id}"' in page
    for trial in ("A-dv1", "B-np1"):
        url = f"http://127.0.0.1:5099/#/experiments/{exp.experiment_id}/runs/{run_ids[trial]}"
        assert url in page
    table = page[page.index('<table id="pareto-table"'):]
    assert table.count("<tr>") == 1 + 7 and table.count("(knee)") == 2 and "A-dv2 (knee)</td><td>2</td>" in table
    check_png(files.png, 1080, 720)
    # logging again (a second report) goes to the same parent run: no new run
    ok, message = log_report_files(f"sqlite:///{sweep_dir / 'mlflow.db'}", EXPERIMENT, spec.name, [files.png])
    assert ok and run_ids["__parent__"] in message and len(client.search_runs([exp.experiment_id])) == 1 + 6


def test_report_without_mlflow_store_still_writes_files(sweep, tmp_path, mlflow_db_template):
    import shutil

    from mlflow import MlflowClient

    spec, sweep_dir, _ = sweep
    out = tmp_path / "elsewhere"
    files = make_report(spec, sweep_dir, out_dir=out)
    assert files.html.parent == out and files.png.is_file()
    assert not files.logged and "no MLflow database" in files.message
    assert not (sweep_dir / "mlflow.db").exists()          # the report never creates a store
    page = files.html.read_text(encoding="utf-8")
    summary = embedded_summary(page)
    assert summary["mlflow"]["experiment_id"] is None and "#/experiments/" not in page
    # a store without this sweep's parent run: nothing is logged and no run is made up
    shutil.copy(mlflow_db_template, sweep_dir / "mlflow.db")
    uri = f"sqlite:///{sweep_dir / 'mlflow.db'}"
    ok, message = log_report_files(uri, EXPERIMENT, spec.name, [files.png])
    assert not ok and f"no parent run of sweep {spec.name}" in message
    client = MlflowClient(tracking_uri=uri)
    assert client.get_experiment_by_name(EXPERIMENT) is None


def test_report_command(sweep, tmp_path):
    spec, sweep_dir, _ = sweep
    out = tmp_path / "rep"
    result = runner.invoke(app, ["report", str(sweep_dir), "--out", str(out), "--no-mlflow"])
    assert result.exit_code == 0, result.output
    assert f"{N_POINTS} points (7 on a Pareto front) of 6 trials" in result.output
    assert (out / HTML_FILE).is_file() and (out / PNG_FILE).is_file()
    result = runner.invoke(app, ["report", str(sweep_dir), "--out", str(out)])
    assert result.exit_code == 0 and "warning: no MLflow database" in result.output
    result = runner.invoke(app, ["report", "--help"])
    assert result.exit_code == 0 and "Examples:" in result.output and "--mlflow-ui" in result.output
    (sweep_dir / "points.jsonl").unlink()
    result = runner.invoke(app, ["report", str(sweep_dir)])
    assert isinstance(result.exception, DataError) and "no evaluated points yet" in str(result.exception)
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert isinstance(result.exception, ConfigError) and "has no spec.yaml" in str(result.exception)
