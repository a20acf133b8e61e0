"""A sweep submitted with `ray job submit` to a two-node Ray cluster on 127.0.0.1, tracked by an MLflow server
backed by PostgreSQL (SQLite when PostgreSQL cannot be reached, with the reason printed).

    pytest tests/cluster/test_cluster_sweep_job.py -s          # slow: ~3-5 minutes on 2 cores

Checks that the trials ran on both nodes (each trial's MLflow run carries the Ray node id it ran on) and that
every trial is in the MLflow server. Every server the test starts listens on 127.0.0.1 and is stopped.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import urllib.request
import uuid

import pytest
import yaml

from test_local_cluster_scripts import (LOCAL_CLUSTER, LOOPBACK, MLFLOW_SERVER, NODES_PROBE, _kill_group,
                                        free_port, listening, port_open, port_or_free, ray_processes, run,
                                        server_group)

pytestmark = pytest.mark.slow


def _post(port: int, path: str, body: dict) -> dict:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/2.0/mlflow/{path}", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def test_sweep_job_runs_trials_on_both_nodes_and_tracks_them_in_the_mlflow_server(prepared_zoo, tmp_path):
    temp_root = tempfile.mkdtemp(prefix="usj-", dir="/tmp")
    gcs_port, dash_port, mlflow_port = port_or_free(6380), port_or_free(8265), free_port()
    state = tmp_path / "mlflow"
    db = f"mlflow_job_{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "UNLEARN_SWEEP_RAY_TMP": temp_root, "UNLEARN_SWEEP_RAY_PORT": str(gcs_port),
           "UNLEARN_SWEEP_DASHBOARD_PORT": str(dash_port), "UNLEARN_SWEEP_RAY_CLIENT_PORT": str(free_port()),
           "PYTHON": sys.executable, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "UNLEARN_SWEEP_MLFLOW_DIR": str(state),
           "MLFLOW_PORT": str(mlflow_port), "MLFLOW_PG_DB": db,
           "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}"}
    spec = {
        "name": "job", "models": ["tofu-mini/target"],
        "data": {"source": "tofu-mini", "forget_split": "forget10", "limit": 8},
        "method": {"name": "NPO", "baldro": ["none"]},
        "fixed": {"beta": 0.1, "batch_size": 8, "grad_accum": 1, "epochs": 1, "warmup_epochs": 0.0,
                  "engine": "torch", "dtype": "float32"},
        "search_space": {"lr": {"low": 3.0e-4, "high": 3.0e-3, "log": True}},
        "budget": {"num_trials": 2, "max_concurrent": 2, "max_failures": 0},
        "resources": {"cpus": 1, "gpus": 0, "workers": 1},
        "eval": {"settings": {"max_new_tokens": 8,
                              "metrics": ["forget_quality", "forget_Q_A_gibberish", "model_utility"]}},
        "storage": str(tmp_path / "shared"), "seed": 0,
    }
    spec_path = tmp_path / "job.yaml"
    spec_path.write_text(yaml.safe_dump(spec, sort_keys=False))
    try:
        started = run(["bash", str(MLFLOW_SERVER), "start"], env, timeout=180)
        assert started.returncode == 0, started.stdout + started.stderr
        print(started.stdout)  # says whether PostgreSQL or the SQLite fallback (and why) backs the server
        started = run(["bash", str(LOCAL_CLUSTER), "start"], env, timeout=240)
        assert started.returncode == 0, started.stdout + started.stderr
        probe = run([sys.executable, "-c", NODES_PROBE, f"127.0.0.1:{gcs_port}"], env, timeout=120)
        nodes = json.loads(probe.stdout.split("NODES=", 1)[1])
        assert len(nodes) == 2

        job = run(["ray", "job", "submit", "--address", f"http://127.0.0.1:{dash_port}", "--submission-id",
                   f"sweep-{uuid.uuid4().hex[:6]}", "--", sys.executable, "-m", "unlearn_sweep.cli", "run", str(spec_path),
                   "--address", f"127.0.0.1:{gcs_port}", "--tracking-uri", f"http://127.0.0.1:{mlflow_port}"],
                  env, timeout=900)
        assert job.returncode == 0 and "succeeded" in job.stdout, job.stdout[-4000:] + job.stderr[-2000:]

        exps = _post(mlflow_port, "experiments/search", {"max_results": 100})["experiments"]
        runs = _post(mlflow_port, "runs/search", {"experiment_ids": [e["experiment_id"] for e in exps],
                                                  "max_results": 100})["runs"]
        tags = [{t["key"]: t["value"] for t in r["data"].get("tags", [])} for r in runs]
        children = [t for t in tags if t.get("run_role") == "trial"]
        assert len([t for t in tags if t.get("run_role") == "parent"]) == 1
        assert len(children) == 2 and all(t.get("sweep_id") == "job" for t in children)
        assert {t["ray_node_id"] for t in children} == {n["NodeID"] for n in nodes}  # one trial on each node

        for group in (ray_processes(temp_root, gcs_port), server_group(state)):
            assert [s for s in listening(group) if s[1] not in LOOPBACK] == []
    finally:
        run(["bash", str(LOCAL_CLUSTER), "stop"], env, timeout=120)
        run(["bash", str(MLFLOW_SERVER), "stop"], env, timeout=60)
        for proc in ray_processes(temp_root, gcs_port):
            proc.kill()
        _kill_group(state)
        shutil.rmtree(temp_root, ignore_errors=True)
        if port_open(5432):  # the server's PostgreSQL database of this test
            try:
                import psycopg

                with psycopg.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres",
                                     autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
            except Exception as exc:  # noqa: BLE001 - cleanup only
                print(f"could not drop the test database {db}: {exc}")
    assert not port_open(gcs_port) and not port_open(mlflow_port)
