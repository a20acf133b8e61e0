"""Start the MLflow UI (`mlflow server`) on a sweep's tracking store, on 127.0.0.1 by default.

    from dashboards.mlflow_ui import serve
    serve("sqlite:////abs/runs/sweeps/tofu-mini/mlflow.db", port=5000, experiment="unlearn/tofu-mini")
    unlearn-sweep ui runs/sweeps/tofu-mini            # the same from the command line; Ctrl-C stops it

It prints the experiment's page (the sweep's objectives view when the sweep stored one: the trials flat, the
objectives and searched hyperparameters as columns, sorted by the first objective), the comparison of every
trial (its parallel-coordinates plot opens on the first objective: the recorder logs the objectives first) and
the objectives' charts over the trials' steps.

The server is one small process tree: `--workers 1` and MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false (no job
runner, no huey consumers: ~0.5 GB instead of ~2.6 GB). It runs in its own process group, which `stop`
terminates (SIGTERM, then SIGKILL after a grace period) on Ctrl-C, SIGTERM or any error. Artifacts of
experiments created from the UI go to `mlartifacts/` beside a SQLite store.
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
from typing import Callable

from sweeps.recording.tracking import OBJECTIVES_TAG, VIEW_KEY, VIEW_TAG
from unlearning.errors import ConfigError

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def server_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false", MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true",
               # MLflow 3's own import of starlette.middleware.wsgi: nothing a user can act on
               PYTHONWARNINGS="ignore:starlette.middleware.wsgi is deprecated")
    return env


def server_command(tracking_uri: str, host: str = "127.0.0.1", port: int = 5000,
                   artifacts_dir: str | Path | None = None) -> list[str]:
    """The `mlflow server` command line (this Python's mlflow)."""
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", tracking_uri, "--host", host,
           "--port", str(port), "--workers", "1"]
    if artifacts_dir is not None:
        cmd += ["--artifacts-destination", str(artifacts_dir)]
    return cmd


def check_port_free(host: str, port: int) -> None:
    """ConfigError when something already listens on (host, port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: TIME_WAIT leftovers do not count
        try:
            s.bind((host, port))
        except OSError as exc:
            raise ConfigError("ui", field="port", value=port,
                              fix=f"{host}:{port} is in use ({exc.strerror}): pick another with --port") from None


def start(tracking_uri: str, host: str = "127.0.0.1", port: int = 5000,
          artifacts_dir: str | Path | None = None, log_path: str | Path | None = None) -> subprocess.Popen:
    """Start the server in its own process group (stop it with `stop`); its output goes to `log_path` when
    given (appended), else to this process's."""
    out = open(log_path, "ab") if log_path is not None else None  # noqa: SIM115 - the child keeps it open
    try:
        return subprocess.Popen(server_command(tracking_uri, host, port, artifacts_dir), env=server_env(),
                                start_new_session=True, stdout=out, stderr=subprocess.STDOUT if out else None)
    finally:
        if out is not None:
            out.close()


def log_tail(log_path: str | Path | None, lines: int = 15) -> str:
    """The last lines of the server's log (for an error message); empty without a log."""
    try:
        return "\n".join(Path(log_path).read_text(errors="replace").splitlines()[-lines:]) if log_path else ""
    except OSError:
        return ""


def base_url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else (f"[{host}]" if ":" in host else host)
    return f"http://{shown}:{port}"


def wait_healthy(url: str, proc: subprocess.Popen | None = None, timeout: float = 90.0) -> bool:
    """Poll `<url>/health` until it answers OK; False on timeout or when the process exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
                if resp.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.3)
    return False


def experiment_id(url: str, name: str) -> str | None:
    """The id of experiment `name` on a running server (None when absent or unreachable)."""
    return (_experiment(url, name) or {}).get("experiment_id")


def experiment_tags(url: str, name: str) -> dict[str, str]:
    """The tags of experiment `name` on a running server ({} when absent or unreachable)."""
    return {t["key"]: t.get("value", "") for t in (_experiment(url, name) or {}).get("tags", [])}


def _experiment(url: str, name: str) -> dict | None:
    q = urllib.parse.urlencode({"experiment_name": name})
    try:
        with urllib.request.urlopen(f"{url}/api/2.0/mlflow/experiments/get-by-name?{q}", timeout=5) as resp:
            return json.loads(resp.read())["experiment"]
    except (OSError, KeyError, ValueError):
        return None


def runs_url(url: str, exp: str, tags: dict[str, str]) -> str:
    """The experiment's page: its objectives view (the trials flat, objectives and searched hyperparameters as
    columns, sorted by the first objective) when the sweep stored one, else MLflow's default page."""
    page = f"{url}/#/experiments/{exp}/runs"
    return f"{page}?viewStateShareKey={VIEW_KEY}" if VIEW_TAG in tags else page


def objectives_chart_url(url: str, exp: str, run_ids: list[str], objectives: list[str]) -> str | None:
    """MLflow's metric page of the trials with the objectives preselected (one line per trial over its steps)."""
    if not run_ids or not objectives:
        return None
    quote = urllib.parse.quote
    return (f"{url}/#/metric?runs={quote(json.dumps(run_ids))}&metric={quote(json.dumps(objectives[0]))}"
            f"&experiments={quote(json.dumps([exp]))}&plot_metric_keys={quote(json.dumps(objectives))}"
            "&x_axis=step&y_axis_scale=linear")


def trial_run_ids(url: str, exp: str) -> list[str]:
    """The ids of experiment `exp`'s trial runs ([] when none or the server does not answer)."""
    body = json.dumps({"experiment_ids": [exp], "filter": "tags.run_role = 'trial'", "max_results": 1000}).encode()
    req = urllib.request.Request(f"{url}/api/2.0/mlflow/runs/search", data=body,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return [r["info"]["run_id"] for r in json.loads(resp.read()).get("runs", [])]
    except (OSError, KeyError, ValueError):
        return []


def compare_url(url: str, exp: str) -> str | None:
    """The run-comparison page of every trial run of experiment `exp` (every hyperparameter and metric as a row,
    one column per trial: the view where the objectives are visible without choosing columns); None when the
    experiment has no trial runs or the server does not answer."""
    ids = trial_run_ids(url, exp)
    if not ids:
        return None
    quote = urllib.parse.quote
    return f"{url}/#/compare-runs?runs={quote(json.dumps(ids))}&experiments={quote(json.dumps([exp]))}"


def stop(proc: subprocess.Popen, grace_s: float = 15.0) -> None:
    """Terminate the server's process group: SIGTERM, then SIGKILL after `grace_s` seconds."""
    try:
        pgid = os.getpgid(proc.pid)
    except ProcessLookupError:
        proc.wait()
        return
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            proc.poll()
            try:
                os.killpg(pgid, 0)  # anyone left in the group?
            except ProcessLookupError:
                proc.wait()
                return
            time.sleep(0.2)
    proc.wait()


def serve(tracking_uri: str, host: str = "127.0.0.1", port: int = 5000, artifacts_dir: str | Path | None = None,
          experiment: str | None = None, echo: Callable[[str], None] = print, timeout: float = 90.0,
          log_path: str | Path | None = None) -> int:
    """Start the server, print its URL, block until Ctrl-C / SIGTERM / the server exits; always stops it.
    The server's own output (startup lines, one access line per request) goes to `log_path` when given.
    Returns the exit status for the command line (0 after Ctrl-C)."""
    check_port_free(host, port)
    if host not in LOOPBACK:
        echo(f"warning: listening on {host}: anyone who can reach this machine can read and change the store "
             "(MLflow's --allowed-hosts / an authenticating proxy restrict it)")
    proc = start(tracking_uri, host, port, artifacts_dir, log_path)
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        url = base_url(host, port)
        if not wait_healthy(url, proc, timeout):
            echo(f"error: the MLflow server did not become healthy at {url}/health "
                 f"({'it exited with status ' + str(proc.returncode) if proc.poll() is not None else 'timed out'})")
            tail = log_tail(log_path)
            if tail:
                echo(f"the end of its log ({log_path}):\n{tail}")
            return 1
        exp = experiment_id(url, experiment) if experiment else None
        tags = experiment_tags(url, experiment) if exp else {}
        echo(f"MLflow UI: {runs_url(url, exp, tags)}" if exp else f"MLflow UI: {url}")
        compare = compare_url(url, exp) if exp else None
        if compare:
            echo(f"every trial side by side (hyperparameters and objectives as rows): {compare}")
        objectives = [o for o in tags.get(OBJECTIVES_TAG, "").split(",") if o]
        chart = objectives_chart_url(url, exp, trial_run_ids(url, exp), objectives) if exp else None
        if chart:
            echo(f"the objectives of every trial over its steps: {chart}")
        echo(f"store: {tracking_uri}" + (f", server log: {log_path}" if log_path else "") + "  (Ctrl-C to stop)")
        try:
            rc = proc.wait()
            echo(f"the MLflow server exited with status {rc}")
            return 1 if rc else 0
        except KeyboardInterrupt:
            echo("stopping the MLflow server")
            return 0
    finally:
        stop(proc)
        signal.signal(signal.SIGTERM, previous)
