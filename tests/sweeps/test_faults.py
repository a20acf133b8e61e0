"""Fault injection on the real sweep driver (CLI in a subprocess, real Ray on 127.0.0.1, MLflow on SQLite, the
prepared zoo): Ctrl-C of the whole process group, SIGTERM of the driver, a second driver on the same folder, a
corrupt line in the results file. Each asserts that nothing is lost or duplicated and no process is left. And a
sweep whose every trial fails (NaN) with its MLflow store on a full disk (a filled tmpfs; needs root to mount):
exit status 3, one line, the cause and the sync command, no traceback.

    pytest tests/sweeps/test_faults.py -s

Resume is exact (`_assert_exact`): after Ctrl-C, SIGTERM or SIGKILL of the driver and `unlearn-sweep resume`, no
search runs a configuration twice, each search finishes exactly its budget, a trial lost at a SIGKILL is FAIL
(`lost`) in its study and replaced once, and points.jsonl, MLflow and the studies agree.

Slow (a few minutes on 2 cores). The NaN / raising trial, unreachable-tracking and single-search SIGKILL cases
are in test_sweep_e2e.py.
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

from test_sweep_e2e import REPO, mlflow_runs, small_spec, write_spec

pytestmark = pytest.mark.slow


def _cli(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "unlearn_sweep.cli", *args], cwd=REPO, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)


def _wait_for(cond, proc: subprocess.Popen, what: str, timeout: float = 600) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        if proc.poll() is not None:
            pytest.fail(f"the driver ended before {what}:\n" + proc.stdout.read())
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}")


def _session_processes(sweep_dir: Path) -> list:
    """Live processes of the local Ray session the driver recorded in driver.json."""
    import psutil

    session = json.loads((sweep_dir / "driver.json").read_text()).get("ray_session")
    assert session, "the driver records the Ray session it started"
    name = Path(session).name
    out = []
    for p in psutil.process_iter(["cmdline", "status"]):
        try:
            if p.info["status"] != psutil.STATUS_ZOMBIE and any(name in a for a in (p.info["cmdline"] or [])):
                out.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return out


def _first_point(sweep_dir: Path) -> bool:
    from sweeps.recording.results import read_results

    return (sweep_dir / "points.jsonl").exists() and any(p.epoch > 0 for p in read_results(sweep_dir).points)


def _assert_exact(sweep_dir: Path, num_trials: int, searches: list[str]) -> dict[str, int]:
    """Exact resume: per search, every configuration once, exactly `num_trials` finished, every other trial a
    lost one (failed in points.jsonl, FAIL with `lost` in the study), nothing RUNNING in the study, and the
    study, points.jsonl and MLflow naming the same trials. Returns {search: lost trials}."""
    import optuna

    from sweeps.recording.results import read_results
    from sweeps.search.searcher import LOST_ATTR, TUNE_ID_ATTR
    from sweeps.operations.service import ORPHAN_REASON

    results = read_results(sweep_dir)
    assert {t.search_id for t in results.trials.values()} == set(searches)
    lost = {}
    for sid in searches:
        trials = [t for t in results.trials.values() if t.search_id == sid]
        configs = [tuple(sorted(t.hparams.items())) for t in trials]
        assert len(set(configs)) == len(configs), f"{sid} ran a configuration twice: {configs}"
        finished = [t for t in trials if t.status == "finished"]
        assert len(finished) == num_trials, [(t.trial_id, t.status) for t in trials]
        assert all(t.reason == ORPHAN_REASON for t in trials if t.status != "finished"), trials
        study = optuna.load_study(study_name=sid, storage=f"sqlite:///{sweep_dir / 'optuna.db'}")
        by_id = {t.user_attrs[TUNE_ID_ATTR]: t for t in study.trials if TUNE_ID_ATTR in t.user_attrs}
        assert not [t for t in study.trials if t.state == optuna.trial.TrialState.RUNNING]
        assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials) == num_trials
        assert len({tuple(sorted(t.params.items())) for t in study.trials}) == len(study.trials)
        for t in trials:   # points.jsonl and the study agree
            frozen = by_id[t.trial_id]
            assert frozen.params == t.hparams
            if t.status == "finished":
                assert frozen.state == optuna.trial.TrialState.COMPLETE
            else:
                assert frozen.state == optuna.trial.TrialState.FAIL and LOST_ATTR in frozen.user_attrs
        extra = set(by_id) - {t.trial_id for t in trials}   # asked, never started: lost in the study only
        assert all(LOST_ATTR in by_id[tid].user_attrs for tid in extra)
        lost[sid] = sum(LOST_ATTR in t.user_attrs for t in study.trials)
    _, runs = mlflow_runs(sweep_dir)
    assert sorted(r.data.tags["trial_id"] for r in runs if r.data.tags.get("run_role") == "trial") == sorted(
        results.trials)
    return lost


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_interrupt_stops_the_whole_sweep_cleanly_and_resume_finishes_it(prepared_zoo, tmp_path, how):
    from sweeps.recording.results import read_results

    raw = small_spec(tmp_path / "sweeps", f"stop-{how}", method={"name": "NPO", "baldro": ["dv", "none"]},
                     budget={"num_trials": 2, "max_concurrent": 2, "max_failures": 0})
    # 8 epochs: a trial takes long enough (warm workers make a 3-epoch trial ~4 s) that one is running when the
    # signal comes, after the second driver's refusal
    epochs = 8
    raw["fixed"] = {**raw["fixed"], "epochs": epochs}
    path = write_spec(tmp_path, raw)
    sweep_dir = tmp_path / "sweeps" / f"stop-{how}"
    proc = _cli("run", str(path))
    try:
        _wait_for(lambda: _first_point(sweep_dir), proc, "the first evaluation point")
        if how == "ctrl-c":   # a terminal sends SIGINT to the whole foreground process group, Ray included
            second = _cli("resume", str(sweep_dir))   # meanwhile, a second driver on the same folder is refused
            out2, _ = second.communicate(timeout=120)
            assert second.returncode == 2, out2
            lines = [ln for ln in out2.strip().splitlines() if ln.strip()]
            assert len(lines) == 1 and "being run by" in lines[0] and f"pid {proc.pid}" in lines[0], out2
            os.killpg(proc.pid, signal.SIGINT)
        else:                 # `kill PID` / a job scheduler: the driver alone
            os.kill(proc.pid, signal.SIGTERM)
        t0 = time.time()
        out, _ = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == (130 if how == "ctrl-c" else 143), out
    assert time.time() - t0 < 120, "a stop is prompt"
    assert "Traceback" not in out and "unlearn-sweep resume" in out.strip().splitlines()[-1], out
    time.sleep(2)
    assert _session_processes(sweep_dir) == [], "every Ray process the driver started is gone"

    before = read_results(sweep_dir)
    assert before.trials and "interrupted" in {t.status for t in before.trials.values()}
    # every search's shared work is prepared before the first trial; after the stop (Tune's graceful end, which
    # it announces) no trial starts
    lines = out.splitlines()
    first_trial = next(i for i, ln in enumerate(lines) if ln.startswith("trial "))
    assert all(any(ln.startswith(f"search tofu-mini-target.{v}:") for ln in lines[:first_trial]) for v in ("dv", "none"))
    stop_line = next(i for i, ln in enumerate(lines) if "Stop signal received" in ln)
    assert not [ln for ln in lines[stop_line:] if ln.startswith("trial ") and " running " in ln], out
    _, runs = mlflow_runs(sweep_dir)
    [parent] = [r for r in runs if r.data.tags.get("run_role") == "parent"]
    assert parent.info.status == "KILLED" and "interrupted by SIG" in parent.data.tags["failure_reason"]
    for r in runs:
        if r.data.tags.get("run_role") == "trial" and before.trials[r.data.tags["trial_id"]].status == "interrupted":
            assert r.info.status == "KILLED" and "unlearn-sweep resume" in r.data.tags["failure_reason"]

    again = _cli("resume", str(sweep_dir))
    out, _ = again.communicate(timeout=900)
    assert again.returncode == 0, out
    results = read_results(sweep_dir)
    assert len(results.trials) == 4 and {t.status for t in results.trials.values()} == {"finished"}, out
    # the searchers continue their studies: no configuration again (before: one repeat per search)
    assert _assert_exact(sweep_dir, 2, ["tofu-mini-target.dv", "tofu-mini-target.none"]) == {
        "tofu-mini-target.dv": 0, "tofu-mini-target.none": 0}
    for tid in results.trials:   # every epoch of every trial, each once
        assert sorted(p.epoch for p in results.points if p.trial_id == tid) == list(range(1, epochs + 1))
    client, runs = mlflow_runs(sweep_dir)
    children = [r for r in runs if r.data.tags.get("run_role") == "trial"]
    assert sorted(r.data.tags["trial_id"] for r in children) == sorted(results.trials)   # no duplicate run
    for r in children:   # a resumed trial's run is FINISHED, its interruption note gone, each point logged once
        assert r.info.status == "FINISHED" and "failure_reason" not in r.data.tags
        assert sorted(m.step for m in client.get_metric_history(r.info.run_id, "epoch")).count(0) == 1
        assert len(client.get_metric_history(r.info.run_id, "model_utility")) == epochs + 1  # + the target, step 0


def _asked(sweep_dir: Path) -> int:
    """Trials asked so far in the sweep's Optuna studies (0 before the storage exists)."""
    import sqlite3

    path = sweep_dir / "optuna.db"
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as db:
            return db.execute("SELECT COUNT(*) FROM trials").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_sigkill_resume_continues_every_search_exactly(prepared_zoo, tmp_path):
    """SIGKILL of the driver right after the sweep's second trial is asked (likely before Tune's next state
    snapshot: that trial is then lost); `resume` holds each search's budget exactly, replaces a lost trial once
    and closes it FAIL in its study, and runs no configuration twice (before: every trial after the resume
    repeated an earlier configuration, and a search ran one trial too many)."""
    from sweeps.recording.results import read_results

    raw = small_spec(tmp_path / "sweeps", "killed", method={"name": "NPO", "baldro": ["dv", "none"]},
                     budget={"num_trials": 2, "max_concurrent": 1, "max_failures": 0})
    raw["fixed"] = {**raw["fixed"], "epochs": 1}
    path = write_spec(tmp_path, raw)
    sweep_dir = tmp_path / "sweeps" / "killed"
    proc = _cli("run", str(path))
    try:
        _wait_for(lambda: _asked(sweep_dir) >= 2, proc, "the second trial", timeout=600)
    finally:
        os.kill(proc.pid, signal.SIGKILL)   # the driver alone, as a node failure or the OOM killer would
        proc.wait()
    assert any(t.status == "finished" for t in read_results(sweep_dir).trials.values())

    again = _cli("resume", str(sweep_dir))
    out, _ = again.communicate(timeout=900)
    assert again.returncode == 0, out
    lost = _assert_exact(sweep_dir, 2, ["tofu-mini-target.dv", "tofu-mini-target.none"])
    assert sum(lost.values()) <= 1, lost   # at most the trial asked after the last snapshot
    print(f"lost trials per search: {lost}")


def test_a_corrupt_results_line_is_skipped_and_counted(finished_sweep):
    from sweeps.recording.results import POINTS_FILE, read_results

    _, sweep_dir = finished_sweep
    path = Path(sweep_dir) / POINTS_FILE
    lines = path.read_text().splitlines()
    before = read_results(sweep_dir)
    lines.insert(len(lines) // 2, '{"kind": "point", "trial_id": "x", "epo')   # a driver killed mid-write
    path.write_text("\n".join(lines) + "\n")
    after = read_results(sweep_dir)
    assert after.skipped_lines == before.skipped_lines + 1
    assert {p.key for p in after.points} == {p.key for p in before.points}
    assert {k: t.status for k, t in after.trials.items()} == {k: t.status for k, t in before.trials.items()}


def test_every_trial_failing_on_a_full_tracking_disk_exits_3_with_one_line_and_the_sync_command(
        prepared_zoo, tmp_path, tmpfs):
    """A learning rate of 1e30 makes every trial's loss NaN, and the MLflow store is on a full disk, run with
    --tracking-optional: the sweep runs without tracking, names the cause (ENOSPC), prints the sync command, shows
    no traceback, and exits 3 with one line saying that no trial finished (it exited 0 before)."""
    full = tmpfs("full-disk", full=True)
    raw = small_spec(tmp_path / "sweeps", "all-nan", budget={"num_trials": 1, "max_failures": 0},
                     search_space={"alpha": {"low": 0.5, "high": 5.0, "log": True}},
                     tracking={"uri": f"sqlite:///{full / 'mlflow.db'}"})
    raw["fixed"] = {**raw["fixed"], "lr": 1.0e30, "epochs": 1}
    path = write_spec(tmp_path, raw)
    sweep_dir = tmp_path / "sweeps" / "all-nan"
    proc = _cli("run", str(path), "--tracking-optional")
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 3, out
    assert "Traceback" not in out, out
    assert "disk full (ENOSPC)" in out, out
    assert f"run `unlearn-sweep sync {sweep_dir}` once the store can be written" in " ".join(out.split()), out
    lines = [line for line in out.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and lines[0].startswith("error: no trial of sweep all-nan finished: all 1 failed"), out
    assert "nan" in lines[0].lower()
    assert not (full / "mlflow.db").exists()
