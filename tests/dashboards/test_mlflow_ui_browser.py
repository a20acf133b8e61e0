"""`unlearn-sweep ui` for real: the MLflow server starts on the sweep's SQLite store on a free 127.0.0.1 port,
listens there only, lists the sweep's runs through its REST API and in headless Chromium (the experiment's
runs page, the run comparison of every run, a trial's page at the report's link pattern), and is stopped
with its whole process tree by the test.

    .venv/bin/python -m pytest tests/dashboards/test_mlflow_ui_browser.py -q        (needs /usr/bin/chromium)

MLflow's runs table nests the trials under the collapsed parent run, so the runs page shows the parent's
name and the run count; the trials' names are checked on the comparison page, which lists every run.
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
from report_sweep import EXPERIMENT, TRIALS

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
        # the browser: the experiment's runs page (the parent run, 7 matching runs) ...
        shot = tmp_path / "mlflow-runs.png"
        root = parse_dom(render(f"{base}/#/experiments/{exp}/runs", tmp_path, png=shot, budget_ms=15000,
                                window="1400,1000"))
        text = root.all_text()
        assert spec.name in text and f"{len(TRIALS) + 1} matching runs" in text, text[-2000:]
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
        # ... the comparison of every trial, at the URL `ui` prints (hyperparameters and objectives as rows) ...
        prefix = "every trial side by side (hyperparameters and objectives as rows): "
        (compare,) = [line[len(prefix):] for line in log.read_text().splitlines() if line.startswith(prefix)]
        query = urllib.parse.parse_qs(compare.split("?", 1)[1])
        assert sorted(json.loads(query["runs"][0])) == sorted(run_ids[t] for t in TRIALS)   # the trials, no parent
        root = parse_dom(render(compare, tmp_path, budget_ms=15000, window="1400,1000"))
        text = root.all_text()
        assert all(f"trial-{t}" in text for t in TRIALS), text[-2000:]
        assert "forget_quality" in text and "model_utility" in text, text[-2000:]
        # ... and a trial's run page at the report's link pattern
        from dashboards.mlflow_links import run_url

        root = parse_dom(render(run_url(base, exp, run_ids["A-dv1"]), tmp_path, budget_ms=15000, window="1400,1000"))
        assert "trial-A-dv1" in root.all_text()
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
