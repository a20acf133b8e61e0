"""MLflow tracking on a real SQLite store: idempotent parent/child runs, flattened params logged once,
per-epoch metrics, artifacts, failure status with its reason, and an unreachable server that never raises; stores
that cannot be written (a read-only tmpfs, a full one, a refused connection) named by their real cause, one warning
line per cause and no MLflow traceback (the tmpfs cases need root to mount; they skip otherwise).

    .venv/bin/python -m pytest tests/sweeps/test_tracking.py -q
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import re
import time

import pytest

from sweeps.recording.tracking import Tracker, flatten
from unlearning.errors import ConfigError


def runs_of(tracker, filter_string=""):
    return tracker.client.search_runs([tracker.experiment_id], filter_string=filter_string)


def test_parent_and_child_runs_are_created_once(sqlite_uri):
    tr = Tracker(sqlite_uri, "unlearn/test")
    assert tr.ensure_experiment() is not None
    parent = tr.parent_run("sweep-1", name="sweep-1", tags={"method": "NPO", "baldro_variant": "dv"})
    child = tr.child_run(parent, "trial_00000", tags={"search_id": "m.dv"})
    again = tr.child_run(parent, "trial_00000")                   # a retry of the same trial
    other = tr.child_run(parent, "trial_00001")
    # a new process (resumed driver) finds the same runs by their tags
    tr2 = Tracker(sqlite_uri, "unlearn/test")
    parent2 = tr2.parent_run("sweep-1")
    child2 = tr2.child_run(parent2, "trial_00000")
    assert parent2.run_id == parent.run_id and child2.run_id == child.run_id == again.run_id
    assert other.run_id != child.run_id
    assert len(runs_of(tr)) == 3
    run = tr.client.get_run(child.run_id)
    assert run.data.tags["mlflow.parentRunId"] == parent.run_id
    assert (run.data.tags["sweep_id"], run.data.tags["trial_id"], run.data.tags["search_id"]) == (
        "sweep-1", "trial_00000", "m.dv")
    assert tr.client.get_run(parent.run_id).data.tags["method"] == "NPO"
    # another sweep in the same experiment gets its own parent
    assert tr.parent_run("sweep-2").run_id != parent.run_id
    assert tr.pending == []
    # a tracker and its refs travel to worker processes by pickle and keep addressing the same runs
    tr3, child3 = pickle.loads(pickle.dumps((tr, child)))
    assert tr3.child_run(parent, "trial_00000").run_id == child3.run_id == child.run_id


def test_flatten():
    assert flatten({"method": {"name": "NPO", "hparams": {"beta": 0.1}}, "ids": [1, 2], "x": None}) == {
        "method.name": "NPO", "method.hparams.beta": "0.1", "ids": "[1, 2]", "x": "None"}


def test_params_metrics_artifacts_and_failure(sqlite_uri, tmp_path):
    tr = Tracker(sqlite_uri, "unlearn/test")
    parent = tr.parent_run("s")
    child = tr.child_run(parent, "t1")
    assert tr.log_params(child, {"method": {"name": "NPO", "hparams": {"beta_dv": 2.0}}, "train": {"lr": 3e-4}})
    assert tr.log_params(child, {"train": {"lr": 3e-4}})           # the same value again: fine
    assert tr.log_params(child, {"train": {"lr": 1.0}})            # a change is not logged, never raised
    for epoch, (fq, mu) in enumerate([(1e-5, 0.6), (0.01, 0.58), (0.2, 0.55)]):
        assert tr.log_metrics(child, {"forget_quality": fq, "model_utility": mu, "note": "x"}, step=epoch)
    assert tr.log_dict(child, {"model": {"name": "tofu-mini/target"}}, "config/resolved.yaml")
    report = tmp_path / "TOFU_EVAL.json"
    report.write_text(json.dumps({"forget_quality": {"agg_value": 0.2}}))
    assert tr.log_artifact(child, report, "eval")
    assert tr.end_run(child, "FAILED", reason="loss became NaN at step 12")

    run = tr.client.get_run(child.run_id)
    assert run.data.params == {"method.name": "NPO", "method.hparams.beta_dv": "2.0", "train.lr": "0.0003"}
    history = tr.client.get_metric_history(child.run_id, "forget_quality")
    assert [(m.step, m.value) for m in history] == [(0, 1e-5), (1, 0.01), (2, 0.2)]
    assert [m.step for m in tr.client.get_metric_history(child.run_id, "model_utility")] == [0, 1, 2]
    assert "note" not in run.data.metrics
    paths = {a.path for a in tr.client.list_artifacts(child.run_id)} | {
        a.path for a in tr.client.list_artifacts(child.run_id, "config")} | {
        a.path for a in tr.client.list_artifacts(child.run_id, "eval")}
    assert {"config/resolved.yaml", "eval/TOFU_EVAL.json"} <= paths
    local = tr.client.download_artifacts(child.run_id, "config/resolved.yaml", str(tmp_path / "dl"))
    assert "tofu-mini/target" in open(local).read()
    assert run.info.status == "FAILED" and run.data.tags["failure_reason"] == "loss became NaN at step 12"
    # artifacts live beside the database, not in the working directory
    assert run.info.artifact_uri.startswith((tmp_path / "mlartifacts").as_uri())
    tr.end_run(parent, "FINISHED")
    assert tr.client.get_run(parent.run_id).info.status == "FINISHED"


def test_file_store_is_refused():
    for uri in ("file:///tmp/mlruns", "./mlruns", "/abs/mlruns", "sqlite:///relative.db"):
        with pytest.raises(ConfigError, match="field 'uri'"):
            Tracker(uri, "x")


def test_unreachable_server_never_raises_and_queues(monkeypatch, sqlite_uri):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    tr = Tracker("http://127.0.0.1:9", "unlearn/test", retry_interval_s=3600)
    t0 = time.monotonic()
    assert tr.ensure_experiment() is None
    parent = tr.parent_run("s")
    child = tr.child_run(parent, "t1")
    assert tr.log_params(child, {"lr": 1e-3}) is False
    assert tr.log_metrics(child, {"forget_quality": 0.1}, step=1) is False
    assert tr.end_run(child, "FINISHED") is False
    assert tr.flush() is False                      # still down: nothing raised, everything kept, in order
    assert tr.pending == ["create experiment unlearn/test", "parent run of s", "child run of trial t1",
                          "log 1 params", "log 1 metrics at step 1", "end run (FINISHED)"]
    assert time.monotonic() - t0 < 20               # one failed attempt per call at most, each bounded
    assert child.run_id is None
    # the server comes back (here: the same tracker pointed at a working store): flush replays the queue
    tr.tracking_uri, tr._client = sqlite_uri, None
    tr.artifact_location = None
    assert tr.flush() is True and tr.pending == []
    run = tr.client.get_run(child.run_id)
    assert run.info.status == "FINISHED" and run.data.params == {"lr": "0.001"}
    assert run.data.metrics == {"forget_quality": 0.1}
    assert run.data.tags["mlflow.parentRunId"] == parent.run_id
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "0"


def test_synced_sweep_shows_the_objectives_in_mlflow(finished_sweep, sqlite_uri):
    """What a researcher opens in MLflow: the experiment described from the sweep, every trial run starting
    at step 0 with the target's evaluation (epoch 0), and forget_quality's log10 beside its raw value."""
    import math

    from sweep_data import TARGET, TRIALS
    from sweeps.recording.sync import sync_tracking

    spec, sweep_dir = finished_sweep
    tr = Tracker(sqlite_uri, spec.experiment_name())
    counts = sync_tracking(spec, sweep_dir, tr)
    assert counts["trials"] == len(TRIALS)
    exp = tr.client.get_experiment_by_name(spec.experiment_name())
    note = exp.tags["mlflow.note.content"]
    assert spec.description in note and "forget_quality (max, log scale" in note
    assert "model_utility >= 0.9 * target" in note and "forget_quality >= 0.05" in note
    for trial in ("dv1", "np1"):
        (run,) = runs_of(tr, f"tags.trial_id = '{trial}'")
        fq = {m.step: m.value for m in tr.client.get_metric_history(run.info.run_id, "forget_quality")}
        fq_log = {m.step: m.value for m in tr.client.get_metric_history(run.info.run_id, "forget_quality_log10")}
        epochs = {m.step: m.value for m in tr.client.get_metric_history(run.info.run_id, "epoch")}
        assert fq[0] == pytest.approx(TARGET[0], rel=1e-9) and epochs[0] == 0      # the target at step 0
        assert set(fq_log) == set(fq) and len(fq) == len(TRIALS[trial][2])
        for step, value in fq.items():
            assert fq_log[step] == pytest.approx(math.log10(value), rel=1e-9)
    # a second sync adds nothing at step 0 (it is there already)
    sync_tracking(spec, sweep_dir, Tracker(sqlite_uri, spec.experiment_name()))
    (run,) = runs_of(tr, "tags.trial_id = 'dv1'")
    assert [m.step for m in tr.client.get_metric_history(run.info.run_id, "forget_quality")].count(0) == 1


def test_a_point_reported_again_after_a_resume_is_logged_once(sqlite_uri):
    """A trial resumed from a checkpoint older than its last report reports that point again: MLflow keeps one
    value per step (the recorder's `log_point`, and the target's step 0)."""
    from sweeps.spec.objectives import Objective
    from sweeps.recording.recorder import log_point, log_target_point
    from sweeps.recording.results import Point

    tr = Tracker(sqlite_uri, "unlearn/test")
    child = tr.child_run(tr.parent_run("s"), "t1")
    objectives = [Objective(name="forget_quality", mode="max", scale="log")]
    for _ in range(2):   # the first run of the trial, then its resume
        log_target_point(tr, child, {"forget_quality": 1e-12, "model_utility": 0.8}, objectives)
        for epoch, step, fq in ((1, 4, 1e-6), (2, 8, 1e-3)):
            log_point(tr, child, Point(trial_id="t1", epoch=epoch, step=step,
                                       metrics={"forget_quality": fq, "model_utility": 0.8 - 0.01 * epoch}),
                      objectives)
    assert tr.flush()
    history = tr.client.get_metric_history(child.run_id, "forget_quality")
    assert sorted((m.step, m.value) for m in history) == [(0, 1e-12), (4, 1e-6), (8, 1e-3)]
    assert sorted(m.step for m in tr.client.get_metric_history(child.run_id, "forget_quality_log10")) == [0, 4, 8]


def test_objectives_come_first_in_mlflow(sqlite_uri):
    """The recorder logs the objectives first and every other metric under z_detail/ (MLflow keeps a run's first
    batch's order: the comparison page plots the first metric), describes the trial and the parent run by their
    objectives and stores the experiment's objectives view; `from_mlflow` reads the evaluation's names back."""
    from sweeps.spec.objectives import Objective
    from sweeps.recording.recorder import DETAIL_PREFIX, describe_sweep, from_mlflow, log_point, log_target_point
    from sweeps.recording.results import Point
    from sweeps.recording.tracking import NOTE_TAG, OBJECTIVES_TAG, VIEW_TAG

    tr = Tracker(sqlite_uri, "unlearn/test")
    parent = tr.parent_run("s")
    child = tr.child_run(parent, "t1")
    objectives = [Objective(name="model_utility"), Objective(name="forget_quality", scale="log"),
                  Objective(name="gibberish_rate", mode="min")]
    evaluation = {"forget_Q_A_PARA_Prob": 0.4, "forget_quality": 1e-12, "gibberish_rate": 0.0, "model_utility": 0.8}
    log_target_point(tr, child, evaluation, objectives)
    log_point(tr, child, Point(trial_id="t1", epoch=1, step=4, metrics={**evaluation, "model_utility": 0.7},
                               hparams={"lr": 1e-3}), objectives)
    describe_sweep(tr, parent, objectives, ["lr", "beta_dv"])
    assert tr.flush()
    run = tr.client.get_run(child.run_id)
    assert list(run.data.metrics) == ["model_utility", "forget_quality", "gibberish_rate", "forget_quality_log10",
                                      "epoch", f"{DETAIL_PREFIX}forget_Q_A_PARA_Prob"]
    assert sorted(run.data.metrics)[-1] == f"{DETAIL_PREFIX}forget_Q_A_PARA_Prob"   # sorts after the objectives
    assert from_mlflow(run.data.metrics)["forget_Q_A_PARA_Prob"] == 0.4
    assert from_mlflow({"forget_Q_A_PARA_Prob": 0.3}) == {"forget_Q_A_PARA_Prob": 0.3}   # an older sweep's name
    note = run.data.tags[NOTE_TAG]
    assert note.startswith("**model_utility** 0.7 (max) · **forget_quality** 1.00e-12 (max) · "
                           "**gibberish_rate** 0 (min) at epoch 1") and "lr = 0.001" in note, note
    assert "objectives: **model_utility (max)**" in tr.client.get_run(parent.run_id).data.tags[NOTE_TAG]
    exp = tr.client.get_experiment(tr.experiment_id).tags
    view = json.loads(exp[VIEW_TAG])
    assert view["selectedColumns"] == ["metrics.`model_utility`", "metrics.`forget_quality`",
                                       "metrics.`gibberish_rate`", "params.`train.lr`", "params.`method.hparams.beta_dv`"]
    assert (view["orderByKey"], view["orderByAsc"], view["searchFilter"]) == (
        "metrics.`model_utility`", False, "tags.run_role = 'trial'")
    assert exp[OBJECTIVES_TAG] == "model_utility,forget_quality,gibberish_rate"


# --------------------------------------------------------------------------------------------------
# stores that cannot be written: the real cause, one line per cause, no MLflow traceback


@pytest.mark.parametrize("kind", ["read-only", "full-disk"])
def test_an_unwritable_sqlite_store_names_its_real_cause(tmpfs, kind):
    from sweeps.recording.tracking import open_tracker, store_problem

    folder = tmpfs(kind, read_only=kind == "read-only", full=kind == "full-disk")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    cause = "read-only file system (EROFS)" if kind == "read-only" else "disk full (ENOSPC)"
    assert store_problem(uri) == f"{folder}: {cause}"   # os.access alone says "writable" on a full disk
    with pytest.raises(ConfigError, match=r"field 'tracking.uri'.*" + re.escape(cause)):
        open_tracker(uri, "x")
    said = []
    tr = open_tracker(uri, "x", optional=True, log=said.append)
    assert not tr.enabled and cause in said[0]
    [line] = tr.behind("/sweeps/s")
    assert cause in line and line.endswith("run `unlearn-sweep sync /sweeps/s` once the store can be written")


def test_a_store_that_fills_up_mid_sweep_warns_once_per_cause_and_counts(tmpfs, mlflow_db_template, capfd, caplog):
    import shutil

    folder = tmpfs("store", size="1m")
    shutil.copy(mlflow_db_template, folder / "mlflow.db")
    tr = Tracker(f"sqlite:///{folder / 'mlflow.db'}", "x", retry_interval_s=0)
    parent = tr.parent_run("s")
    assert parent.run_id is not None and tr.behind("/sweeps/s") == []
    tmpfs.fill_up(folder)   # the disk fills up while the sweep runs
    caplog.clear()
    for step in range(5):
        tr.log_metrics(parent, {"forget_quality": 0.1, "note": "x" * 2000}, step=step)
        tr.log_text(parent, "y" * 100_000, f"big{step}.txt")
    assert not tr.flush()
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == len(tr.failures) >= 1, warnings   # one line per cause, however many failures
    assert any("disk full (ENOSPC)" in w for w in warnings), warnings
    assert sum(tr.failures.values()) > len(tr.failures)
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err and "sqlalchemy" not in (out + err).lower()
    lines = tr.behind("/sweeps/s")
    assert any(line.startswith("MLflow: ") and "disk full (ENOSPC)" in line for line in lines), lines
    assert lines[-1].startswith(f"MLflow is behind: {len(tr.pending)} operation(s) pending")
    assert "`unlearn-sweep sync /sweeps/s`" in lines[-1]


def test_connection_refused_is_named():
    from sweeps.recording.tracking import store_problem

    tr = Tracker("http://127.0.0.1:9", "x", retry_interval_s=3600)
    tr.parent_run("s")
    assert store_problem("http://127.0.0.1:9") == "connection refused (ECONNREFUSED)"
    assert list(tr.failures) == ["connection refused (ECONNREFUSED)"]
    assert "unlearn-sweep sync" in tr.behind("/sweeps/s")[-1]
