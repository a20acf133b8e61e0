"""`unlearn-sweep ui` for real: the MLflow server starts on the sweep's SQLite store on a free 127.0.0.1 port,
listens there only, lists the sweep's runs through its REST API and in headless Chromium (the experiment's
runs page, the run comparison of every run, a trial's page at the report's link pattern), and is stopped
with its whole process tree by the test.

    .venv/bin/python -m pytest tests/dashboards/test_mlflow_ui_browser.py -q        (needs /usr/bin/chromium)

Objectives first, without choosing columns: the experiment page `ui` prints is the sweep's objectives view
(every trial flat, the objectives and the searched hyperparameters as columns, sorted by the first objective),
the comparison page's parallel-coordinates plot opens on the first objective (not on forget_Q_A_PARA_Prob, an
intermediate metric that sorts first by name: logged as z_detail/...), a trial's page shows its objectives in
its description, and the metric page `ui` prints charts the objectives. Screenshots of each page are left in the
test's tmp folder (`--basetemp DIR` keeps them).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from browser import CHROMIUM, SKIP_REASON, parse_dom, render
from report_sweep import EXPERIMENT, FQ_PARA, TRIALS

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not CHROMIUM.is_file(), reason=SKIP_REASON)]
REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api(base: str, path: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"{base}{path}", data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def wait_for(base: str, proc: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"`unlearn-sweep ui` exited ({proc.returncode}):\n{log.read_text()[-3000:]}"
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2) as resp:
                if resp.status == 200 and "MLflow UI:" in log.read_text():
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"no /health answer at {base} after {timeout}s:\n{log.read_text()[-3000:]}")


def listening(pids: list[int]) -> list[tuple[int, str, int]]:
    import psutil

    out = []
    for pid in pids:
        try:
            conns = psutil.Process(pid).net_connections(kind="inet")
        except psutil.NoSuchProcess:
            continue
        out += [(pid, c.laddr.ip, c.laddr.port) for c in conns if c.status == psutil.CONN_LISTEN]
    return out


def stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM to the command's process group (what Ctrl-C / a supervisor does), SIGKILL if it lingers."""
    for sig, wait_s in ((signal.SIGTERM, 40), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait_s)
            break
        except subprocess.TimeoutExpired:
            continue


def test_ui_serves_the_sweep_runs_on_loopback_only(sweep_with_mlflow, tmp_path):
    import psutil

    spec, sweep_dir, run_ids = sweep_with_mlflow
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "ui.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "unlearn_sweep.cli", "ui", str(sweep_dir), "--port", str(port)],
                                cwd=REPO, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    tree: list[int] = []
    try:
        wait_for(base, proc, log)
        tree = [proc.pid] + [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
        # listens on 127.0.0.1 only, on the port asked for
        socks = listening(tree)
        assert socks and {ip for _, ip, _ in socks} == {"127.0.0.1"}, socks
        assert port in {p for _, _, p in socks}
        # the REST API lists the sweep's runs: the parent and one child per trial
        exp = api(base, "/api/2.0/mlflow/experiments/get-by-name?"
                  + urllib.parse.urlencode({"experiment_name": EXPERIMENT}))["experiment"]["experiment_id"]
        runs = api(base, "/api/2.0/mlflow/runs/search", {"experiment_ids": [exp], "max_results": 100})["runs"]
        names = {r["info"]["run_name"]: r["info"]["run_id"] for r in runs}
        assert names == {spec.name: run_ids["__parent__"], **{f"trial-{t}": run_ids[t] for t in TRIALS}}
        assert f"MLflow UI: {base}/#/experiments/{exp}/runs" in log.read_text()
        # the browser: the experiment's page `ui` prints: the objectives view, every trial with its objectives
        (page,) = [line.split("MLflow UI: ", 1)[1] for line in log.read_text().splitlines() if "MLflow UI: " in line]
        assert page == f"{base}/#/experiments/{exp}/runs?viewStateShareKey=objectives"
        shot = tmp_path / "mlflow-experiment-objectives.png"
        root = parse_dom(render(page, tmp_path, png=shot, budget_ms=15000, window="1600,1000"))
        text = root.all_text()
        assert f"{len(TRIALS)} matching runs" in text, text[-2000:]          # the trials flat, no parent row
        for column in ("forget_quality", "model_utility", "gibberish_rate", "train.lr", "method.hparams.beta_dv"):
            assert column in text, (column, text[-3000:])
        assert FQ_PARA not in text and "z_detail" not in text
        assert all(f"trial-{t}" in text for t in TRIALS), text[-2000:]
        # the objectives' latest values are cells of the trials' rows (A-dv2 ends at mu 0.585, gib 0.04)
        cells = [c.all_text().strip() for c in root.find_all("div") if c.attrs.get("role") == "gridcell"]
        assert "0.585" in cells and "0.04" in cells, cells
        # sorted by the first objective (forget_quality, max): A-dv1 (0.3) before B-np1 (0.1) before A-dv2 (0.01)
        assert text.index("trial-A-dv1") < text.index("trial-B-np1") < text.index("trial-A-dv2"), text[-2000:]
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
        # ... MLflow's default page still lists the sweep (the parent run, 7 matching runs)
        root = parse_dom(render(f"{base}/#/experiments/{exp}/runs", tmp_path, budget_ms=15000, window="1600,1000"))
        text = root.all_text()
        assert spec.name in text and f"{len(TRIALS) + 1} matching runs" in text, text[-2000:]
        # ... the comparison of every trial, at the URL `ui` prints: its plot opens on the first objective
        prefix = "every trial side by side (hyperparameters and objectives as rows): "
        (compare,) = [line[len(prefix):] for line in log.read_text().splitlines() if line.startswith(prefix)]
        query = urllib.parse.parse_qs(compare.split("?", 1)[1])
        assert sorted(json.loads(query["runs"][0])) == sorted(run_ids[t] for t in TRIALS)   # the trials, no parent
        shot = tmp_path / "mlflow-compare.png"
        root = parse_dom(render(compare, tmp_path, png=shot, budget_ms=15000, window="1600,1000"))
        text = root.all_text()
        assert all(f"trial-{t}" in text for t in TRIALS), text[-2000:]
        assert "Metrics:forget_quality" in text.replace(" ", ""), text[:3000]   # the plot's preselected metric
        plot = " ".join(n.all_text() for n in root.find_all("svg"))
        assert "forget_quality" in plot and FQ_PARA not in plot, plot[:2000]
        assert f"z_detail/{FQ_PARA}" in text   # the intermediate metric is still there, as a row below
        # ... the objectives' charts over the trials' steps
        prefix = "the objectives of every trial over its steps: "
        (chart,) = [line[len(prefix):] for line in log.read_text().splitlines() if line.startswith(prefix)]
        query = urllib.parse.parse_qs(chart.split("?", 1)[1])
        assert json.loads(query["plot_metric_keys"][0]) == ["forget_quality", "model_utility", "gibberish_rate"]
        shot = tmp_path / "mlflow-objectives-chart.png"
        text = parse_dom(render(chart, tmp_path, png=shot, budget_ms=15000, window="1600,1000")).all_text()
        assert "forget_quality" in text and "gibberish_rate" in text, text[:3000]
        # ... and a trial's run page at the report's link pattern: its description names its objectives
        from dashboards.mlflow_links import run_url

        shot = tmp_path / "mlflow-trial.png"
        text = parse_dom(render(run_url(base, exp, run_ids["A-dv2"]), tmp_path, png=shot, budget_ms=15000,
                                window="1600,1000")).all_text()
        assert "trial-A-dv2" in text and "model_utility 0.585 (max)" in text, text[:3000]
    finally:
        stop_group(proc)
    # stopped: the command, the server and its workers are gone and the port is free again
    assert proc.returncode is not None
    time.sleep(0.5)
    alive = [p for p in tree if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert not alive, alive
    with socket.socket() as s:  # nothing listens there any more (TIME_WAIT leftovers aside)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen()
