"""The sweep service end to end on the tiny zoo: real Ray (127.0.0.1), real Optuna, real MLflow (SQLite).

    pytest tests/sweeps/test_sweep_e2e.py -s

Slow (a few minutes on 2 cores; the zoo is prepared once by the `prepared_zoo` fixture).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def small_spec(storage: Path, name: str, **over) -> dict:
    spec = {
        "name": name,
        "models": ["tofu-mini/target"],
        "data": {"source": "tofu-mini", "forget_split": "forget10", "limit": 16},
        "method": {"name": "NPO", "baldro": ["dv"]},
        "fixed": {"beta": 0.1, "batch_size": 8, "grad_accum": 1, "epochs": 2, "warmup_epochs": 0.0,
                  "engine": "torch", "dtype": "float32"},
        "search_space": {"lr": {"low": 3.0e-4, "high": 3.0e-3, "log": True},
                         "beta_dv": {"low": 0.5, "high": 5.0, "log": True}},
        "budget": {"num_trials": 2, "max_concurrent": 2, "max_failures": 0},
        "resources": {"cpus": 1, "gpus": 0, "workers": 1},
        "eval": {"settings": {"max_new_tokens": 8,
                              "metrics": ["forget_quality", "forget_Q_A_gibberish", "model_utility"]}},
        "storage": str(storage),
        "seed": 0,
    }
    spec.update(over)
    return spec


def write_spec(tmp_path: Path, spec: dict) -> Path:
    path = tmp_path / f"{spec['name']}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def mlflow_runs(sweep_dir: Path):
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{sweep_dir / 'mlflow.db'}")
    runs = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]
    return client, runs


def test_small_sweep_records_every_trial_and_epoch_and_export_replays_it(prepared_zoo, ray_local, tmp_path):
    from sweeps.selection.export import export
    from sweeps.selection.pareto import dominates, pareto_front
    from sweeps.recording.results import read_results
    from sweeps.operations.service import run_sweep
    from sweeps.spec import load_spec
    from unlearning.train.config import load_train_config
    from unlearning.train.run import run_train

    spec = load_spec(write_spec(tmp_path, small_spec(tmp_path / "sweeps", "e2e")))
    sweep_dir = run_sweep(spec)
    results = read_results(sweep_dir)

    # every trial finished, each with one point per epoch
    assert {t.status for t in results.trials.values()} == {"finished"} and len(results.trials) == 2
    epochs = sorted((p.trial_id, p.epoch) for p in results.points)
    assert epochs == sorted((t, e) for t in results.trials for e in (1, 2))
    for p in results.points:
        assert 0 <= p.metrics["model_utility"] <= 1 and 0 <= p.metrics["forget_quality"] <= 1

    # MLflow: one parent, one child per trial, metrics at step 0 (the target model) and at the optimizer steps
    # of epochs 1 and 2 (16 forget rows, batch 8: 2 steps per epoch), the epoch label logged beside them,
    # config + eval artifacts
    client, runs = mlflow_runs(sweep_dir)
    parents = [r for r in runs if r.data.tags.get("run_role") == "parent"]
    children = [r for r in runs if r.data.tags.get("run_role") == "trial"]
    assert len(parents) == 1 and len(children) == 2
    assert {r.data.tags["trial_id"] for r in children} == set(results.trials)
    for r in children:
        assert r.data.tags["mlflow.parentRunId"] == parents[0].info.run_id and r.info.status == "FINISHED"
        steps = [m.step for m in client.get_metric_history(r.info.run_id, "model_utility")]
        assert sorted(steps) == [0, 2, 4]
        assert sorted(m.value for m in client.get_metric_history(r.info.run_id, "epoch")) == [0, 1, 2]
        assert {a.path for a in client.list_artifacts(r.info.run_id)} >= {"config", "eval"}
        # objectives first: the run's first metrics, in its description; every other metric under z_detail/
        names = [o.name for o in spec.objectives]
        assert list(r.data.metrics)[:len(names)] == names, list(r.data.metrics)
        assert all(k in names or k.startswith("z_detail/") or k.endswith("_log10") or k in ("epoch", "trial_wall_seconds")
                   for k in r.data.metrics), sorted(r.data.metrics)
        assert all(f"**{n}**" in r.data.tags["mlflow.note.content"] for n in names)
    assert "objectives: " in parents[0].data.tags["mlflow.note.content"]
    view = client.get_experiment(parents[0].info.experiment_id).tags["mlflow.sharedViewState.objectives"]
    assert json.loads(view)["selectedColumns"][:len(spec.objectives)] == [f"metrics.`{o.name}`" for o in spec.objectives]

    # the Pareto set over every (trial, epoch) point equals a brute-force check
    pts = [p for p in results.points if p.epoch > 0]
    front = pareto_front(pts, spec.objectives, ()).front
    # `dominates` works in the minimisation space: negate the maximised objectives (forget quality's log scale
    # is monotone and does not change who dominates whom)
    vec = {p.label: [-p.metrics["forget_quality"], -p.metrics["model_utility"], p.metrics["gibberish_rate"]]
           for p in pts}
    brute = {a for a in vec if not any(dominates(vec[b], vec[a]) for b in vec if b != a)}
    assert {p.label for p in front} == brute

    # export the last epoch of one trial and replay it as a final run: same metrics
    point = max(pts, key=lambda p: (p.epoch, p.trial_id))
    [path] = export(results, f"{point.trial_id}:{point.epoch}", tmp_path / "export", spec)
    cfg = load_train_config(path)
    assert cfg.train.epochs == 2 and cfg.train.seed == 0 and cfg.provenance["trial_id"] == point.trial_id
    import torch

    torch.set_num_threads(1)
    out = run_train(cfg)
    replayed = out["evals"][-1]
    for key in ("model_utility", "forget_truth_ratio"):
        # tolerance: the same seed and data order; only float summation order may differ between processes
        assert replayed[key] == pytest.approx(point.metrics[key], rel=1e-3), key
    assert replayed["forget_quality"] == pytest.approx(point.metrics["forget_quality"], rel=0.05)


def test_failed_trials_are_recorded_and_the_sweep_completes(prepared_zoo, ray_local, tmp_path):
    from sweeps.recording.results import read_results
    from sweeps.operations.service import run_sweep
    from sweeps.spec import load_spec

    # a learning rate of 1e30 overflows the attention scores after one step: the loss becomes NaN, in both
    # searches (the first search's failed trial must not stop the second search)
    nan_spec = small_spec(tmp_path / "sweeps", "nan", budget={"num_trials": 1, "max_failures": 0},
                          method={"name": "NPO", "baldro": ["dv", "none"]},
                          search_space={"alpha": {"low": 0.5, "high": 5.0, "log": True}})
    nan_spec["fixed"] = {**nan_spec["fixed"], "lr": 1.0e30}
    # RMU's default layer 7 does not exist in the 4-layer zoo model: the trial raises
    raise_spec = small_spec(tmp_path / "sweeps", "raises", method={"name": "RMU", "baldro": ["none"]},
                            fixed={"batch_size": 8, "grad_accum": 1, "epochs": 1, "warmup_epochs": 0.0,
                                   "engine": "torch"},
                            search_space={"lr": {"low": 3.0e-4, "high": 3.0e-3, "log": True}},
                            budget={"num_trials": 1, "max_failures": 0})
    for raw, needle, searches in ((nan_spec, "nan", 2), (raise_spec, "layer", 1)):
        sweep_dir = run_sweep(load_spec(write_spec(tmp_path, raw)))
        trials = read_results(sweep_dir).trials
        assert len(trials) == searches and {t.search_id for t in trials.values()} == {
            p.search_id for p in load_spec(write_spec(tmp_path, raw)).searches()}
        for t in trials.values():
            assert t.status == "failed" and needle in (t.reason or "").lower(), t.reason
        _, runs = mlflow_runs(sweep_dir)
        children = [r for r in runs if r.data.tags.get("run_role") == "trial"]
        assert len(children) == searches
        for child in children:
            assert child.info.status == "FAILED" and needle in child.data.tags.get("failure_reason", "").lower()
        [parent] = [r for r in runs if r.data.tags.get("run_role") == "parent"]
        assert parent.info.status == "FINISHED"


@pytest.mark.parametrize("method", ["CEU", "PDU", "GRU", "SIBL", "T3", "LUNAR"])
def test_open_unlearnings_newer_methods_run_in_a_sweep_with_their_preset(prepared_zoo, ray_local, tmp_path, method):
    """CE-U, PDU, GRU, SIBL, T3 and LUNAR through the whole service with their search-space presets: every trial
    finishes with forget quality and utility at each epoch, and the front is not empty."""
    from sweeps.selection.pareto import sweep_fronts
    from sweeps.recording.results import read_results
    from sweeps.operations.service import run_sweep
    from sweeps.spec import load_spec

    raw = small_spec(tmp_path / "sweeps", f"new-{method.lower()}", method={"name": method, "baldro": ["none"]},
                     search_space=method.lower(), budget={"num_trials": 1, "max_failures": 0},
                     constraints=[])
    raw["fixed"] = {k: v for k, v in raw["fixed"].items() if k not in ("beta", "epochs")}
    spec = load_spec(write_spec(tmp_path, raw))
    sweep_dir = run_sweep(spec)
    results = read_results(sweep_dir)
    assert [t.status for t in results.trials.values()] == ["finished"], results.trials
    points = [p for p in results.points if p.epoch]
    assert points and all(0 <= p.metrics["model_utility"] <= 1 and 0 <= p.metrics["forget_quality"] <= 1
                          for p in points)
    fronts = sweep_fronts(spec, results)
    assert fronts and all(front.front and front.knee is not None for front in fronts.values())


def test_unreachable_tracking_fails_fast_or_runs_without_it_and_sync_catches_up(prepared_zoo, ray_local, tmp_path,
                                                                                 sqlite_uri):
    from mlflow import MlflowClient

    from sweeps.recording.results import read_results
    from sweeps.operations.service import run_sweep
    from sweeps.spec import load_spec
    from sweeps.recording.sync import sync_tracking
    from sweeps.recording.tracking import Tracker
    from unlearning.errors import ConfigError

    raw = small_spec(tmp_path / "sweeps", "offline-tracking", tracking={"uri": "http://127.0.0.1:9"},
                     budget={"num_trials": 1, "max_failures": 0})
    raw["fixed"] = {**raw["fixed"], "epochs": 1}
    spec = load_spec(write_spec(tmp_path, raw))
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match=r"field 'tracking.uri'.*cannot be written.*--tracking-optional"):
        run_sweep(spec)
    assert time.perf_counter() - t0 < 20 and not spec.sweep_dir().exists()   # seconds, and nothing written

    sweep_dir = run_sweep(spec, tracking_optional=True)      # explicit: train now, track later
    results = read_results(sweep_dir)
    assert [t.status for t in results.trials.values()] == ["finished"]
    assert len(results.points) == 1 and results.points[0].metrics["model_utility"] > 0
    for _ in range(2):                                       # the second sync finds everything there already
        counts = sync_tracking(spec, sweep_dir, Tracker(sqlite_uri, spec.experiment_name()))
    assert counts == {"trials": 1, "points": 0, "skipped": 1}
    client = MlflowClient(sqlite_uri)
    runs = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]
    [child] = [r for r in runs if r.data.tags.get("run_role") == "trial"]
    assert child.info.status == "FINISHED" and child.data.metrics["model_utility"] == pytest.approx(
        results.points[0].metrics["model_utility"])
    assert len(client.get_metric_history(child.info.run_id, "model_utility")) == 2   # the target (step 0) + 1


def _cli(*args: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "unlearn_sweep.cli", *args], cwd=REPO, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True, **kw)


def test_killed_driver_resumes_without_losing_or_duplicating_trials(prepared_zoo, tmp_path):
    from sweeps.recording.results import read_results

    raw = small_spec(tmp_path / "sweeps", "resume", budget={"num_trials": 3, "max_concurrent": 1, "max_failures": 0})
    path = write_spec(tmp_path, raw)
    sweep_dir = tmp_path / "sweeps" / "resume"
    proc = _cli("run", str(path))
    deadline = time.time() + 600
    try:
        while time.time() < deadline:  # kill the driver once the first trial has finished
            if (sweep_dir / "points.jsonl").exists():
                trials = read_results(sweep_dir).trials
                if any(t.status == "finished" for t in trials.values()):
                    break
            if proc.poll() is not None:
                pytest.fail("the sweep ended before it could be interrupted:\n" + proc.stdout.read())
            time.sleep(1)
        else:
            pytest.fail("no trial finished in time")
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # the driver alone: the local Ray it started is left behind
        proc.wait()
    from test_faults import _session_processes

    left = _session_processes(sweep_dir)   # Ray's children usually die with the driver (parent-death signal);
    # what is left (agents started by them) is the next driver's to stop
    finished_before = {t for t, s in read_results(sweep_dir).trials.items() if s.status == "finished"}
    assert 1 <= len(finished_before) < 3

    again = _cli("resume", str(sweep_dir))
    out, _ = again.communicate(timeout=900)
    assert again.returncode == 0, out
    assert "previous driver" in out and "taking over" in out
    assert not [p for p in left if p.is_running() and p.status() != "zombie"], "the dead driver's Ray is stopped"
    from sweeps.operations.service import ORPHAN_REASON

    results = read_results(sweep_dir)
    finished = {t for t, s in results.trials.items() if s.status == "finished"}
    assert len(finished) == 3, out                   # the budget is completed
    assert finished_before <= finished               # no finished trial lost or re-run
    for t in results.trials.values():                # at most the trial in flight at the kill is replaced
        assert t.status == "finished" or t.reason == ORPHAN_REASON, (t.trial_id, t.status, t.reason)
    assert len(results.trials) - len(finished) <= 1
    for tid in finished:
        assert {p.epoch for p in results.points if p.trial_id == tid} == {1, 2}
    _, runs = mlflow_runs(sweep_dir)
    children = [r for r in runs if r.data.tags.get("run_role") == "trial"]
    assert sorted(r.data.tags["trial_id"] for r in children) == sorted(results.trials)  # no duplicate run
    assert len([r for r in runs if r.data.tags.get("run_role") == "parent"]) == 1
