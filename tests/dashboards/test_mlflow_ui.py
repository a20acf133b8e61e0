"""`unlearn-sweep ui` without starting MLflow: the server command line and environment, a port already in use,
a sweep without a store, a sweep that tracks to a server, and `stop` ending a whole process group.

    .venv/bin/python -m pytest tests/dashboards/test_mlflow_ui.py -q
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from dashboards.mlflow_ui import check_port_free, server_command, server_env, stop
from unlearn_sweep.cli import app
from unlearning.errors import ConfigError

runner = CliRunner()


def test_server_command_is_local_single_worker_without_job_runner(tmp_path):
    cmd = server_command("sqlite:////x/mlflow.db", port=5123, artifacts_dir=tmp_path / "mlartifacts")
    assert cmd[:4] == [sys.executable, "-m", "mlflow", "server"]
    opts = dict(zip(cmd[4::2], cmd[5::2]))
    assert opts == {"--backend-store-uri": "sqlite:////x/mlflow.db", "--host": "127.0.0.1", "--port": "5123",
                    "--workers": "1", "--artifacts-destination": str(tmp_path / "mlartifacts")}
    env = server_env()
    assert env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false" and env["MLFLOW_DISABLE_TELEMETRY"] == "true"


def test_port_in_use_is_a_config_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(ConfigError, match=f"127.0.0.1:{port} is in use.*--port"):
            check_port_free("127.0.0.1", port)
    check_port_free("127.0.0.1", port)  # free again once closed


def test_ui_command_needs_a_store_and_defers_to_a_tracking_server(sweep, mlflow_db_template):
    spec, sweep_dir, _ = sweep
    result = runner.invoke(app, ["ui", str(sweep_dir)])
    assert isinstance(result.exception, ConfigError)
    assert f"no MLflow database at {sweep_dir / 'mlflow.db'}" in str(result.exception)
    result = runner.invoke(app, ["ui", str(sweep_dir), "--tracking-uri", "http://127.0.0.1:5999"])
    assert result.exit_code == 0 and "tracks to the MLflow server at http://127.0.0.1:5999" in result.output
    shutil.copy(mlflow_db_template, sweep_dir / "mlflow.db")
    with socket.socket() as s:                       # the store exists, but the port is taken
        s.bind(("127.0.0.1", 0))
        s.listen()
        result = runner.invoke(app, ["ui", str(sweep_dir), "--port", str(s.getsockname()[1])])
    assert isinstance(result.exception, ConfigError) and "is in use" in str(result.exception)
    result = runner.invoke(app, ["ui", "--help"])
    assert result.exit_code == 0 and "Examples:" in result.output and "127.0.0.1" in result.output


def test_stop_ends_the_whole_process_group():
    # a parent that ignores SIGTERM with a child: SIGTERM reaches the child, SIGKILL ends the parent
    code = ("import signal, subprocess, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
            "print(p.pid, flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, start_new_session=True)
    child = int(proc.stdout.readline())
    t0 = time.monotonic()
    stop(proc, grace_s=1.0)
    assert proc.returncode is not None and time.monotonic() - t0 < 8
    with pytest.raises(ProcessLookupError):
        os.killpg(proc.pid, 0)
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)
