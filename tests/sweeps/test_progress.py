"""The sweep's progress: lines when stdout is not a terminal (logs, `ray job logs`): one line per trial start and
end, the end with the trial's best point (the searcher's: constraints against the target, then the first
objective), none per epoch unless asked, a heartbeat per running trial at a bounded rate, nothing wrapped; the
trials' progress side channel (progress.json, written at a bounded rate, never a Tune result); and, end to end,
the live view through a pseudo-terminal and the log lines without one.

    .venv/bin/python -m pytest tests/sweeps/test_progress.py -q -m "not slow"   # the unit tests, < 1 s
"""

from __future__ import annotations

import io
import json
import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console

from sweeps.spec.objectives import Constraint, Objective
from sweeps.recording.progress import SweepProgress


def test_one_line_per_trial_event_with_the_best_point():
    out = io.StringIO()
    objs = [Objective(name="forget_quality", mode="max", scale="log"), Objective(name="model_utility", mode="max")]
    now = [0.0]
    progress = SweepProgress(objs, total_trials=3, console=Console(file=out, width=40, force_terminal=False),
                             clock=lambda: now[0])
    progress.status["old"] = "finished"  # a trial of an earlier run of a resumed sweep
    progress.search_names["m.dv"] = "DrNPO"
    progress.trial("t1", "running", search_id="m.dv")
    for epoch, fq in ((1, 1e-9), (2, 0.2)):
        progress.point("t1", epoch, {"forget_quality": fq, "model_utility": 0.8 - 0.01 * epoch})
    now[0] = 60.0  # t1 took a minute: the one trial left should take as long
    progress.trial("t1", "finished")
    progress.trial("t2", "failed", "loss became NaN at step 3")
    progress.close()
    lines = out.getvalue().splitlines()
    assert lines == [
        "trial t1 (DrNPO) running  [1 done, 1 running, 0 failed, 1 left of 3]",
        "trial t1 (DrNPO) finished, best at epoch 2: forget_quality=0.2, model_utility=0.78  [2 done, 0 running, 0 "
        "failed, 1 left of 3; sweep ends in ~60s]",
        "trial t2 failed: loss became NaN at step 3  [2 done, 0 running, 1 failed, 0 left of 3]",
    ]
    assert progress.best["forget_quality"] == (0.2, "t1:2")


def test_the_finished_line_shows_the_best_feasible_point_not_the_last():
    out = io.StringIO()
    objs = [Objective(name="forget_quality", mode="max", scale="log"), Objective(name="model_utility", mode="max")]
    progress = SweepProgress(objs, total_trials=1, console=Console(file=out, width=200, force_terminal=False),
                             constraints=[Constraint.model_validate("model_utility >= 0.9 * target")])
    progress.references["s"] = {"model_utility": 0.8}                # the constraint: model_utility >= 0.72
    # epoch 3 has the highest forget_quality but has collapsed (infeasible); epoch 4 is later and worse
    for epoch, fq, mu in ((1, 1e-9, 0.79), (2, 1e-3, 0.75), (3, 0.5, 0.30), (4, 1e-5, 0.74)):
        progress.point("t1", epoch, {"forget_quality": fq, "model_utility": mu}, search_id="s")
    progress.trial("t1", "finished")
    progress.close()
    (line,) = out.getvalue().splitlines()
    assert line.startswith("trial t1 finished, best at epoch 2: forget_quality=0.001, model_utility=0.75"), line


# ---------------------------------------------------------------------------------------------- the side channel

class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _loop_record(step: int, total: int = 100, per_epoch: int = 20, points_left: int = 0, rank: int = 0) -> dict:
    return {"step": step, "epoch": step / per_epoch, "total_steps": total, "steps_per_epoch": per_epoch,
            "epochs": total / per_epoch, "points_left": points_left, "rank": rank, "loss": 1.0}


def test_the_progress_file_is_written_at_a_bounded_rate_with_an_estimate_of_the_end(tmp_path):
    from trainables.progress_file import ProgressFile, read_progress

    clock = FakeClock()
    path = tmp_path / "t1" / "progress.json"
    pf = ProgressFile(path, every_s=2.0, clock=clock)
    pf.update(force=True, phase="setup")
    for step in range(0, 101):              # 1 s per step, an evaluation of 10 s after every 20 steps
        pf.step(_loop_record(step, points_left=5 - step // 20 + (step % 20 == 0 and step > 0)))
        if step and step % 20 == 0:
            pf.update(force=True, phase="evaluating", eval_epoch=step // 20)
            clock.now += 10
        clock.now += 1.0
        if step == 50:
            mid = read_progress(path)
    pf.update(force=True, phase="done", remaining_s=0)
    # 1 s steps, writes at most every 2 s, plus two per evaluation (it starts, training goes on) and the phases
    assert pf.writes <= 101 / 2 + 2 * 5 + 3, pf.writes
    assert mid["phase"] == "training" and mid["total_steps"] == 100 and 49 <= mid["step"] <= 50
    # at step ~50: ~50 steps left at 1 s plus 3 evaluations left at 10 s
    assert 70 <= mid["remaining_s"] <= 90, mid
    assert read_progress(path)["phase"] == "done" and not list(path.parent.glob(".*tmp"))
    other = ProgressFile(tmp_path / "t2" / "progress.json", clock=clock)
    other.step(_loop_record(3, rank=1))        # ranks other than 0 never write
    assert other.writes == 0 and read_progress(tmp_path / "t2" / "progress.json") is None


def _objectives():
    return [Objective(name="forget_quality", mode="max", scale="log"), Objective(name="model_utility", mode="max")]


def _write_progress(sweep_dir: Path, trial: str, **fields) -> None:
    path = sweep_dir / "trials" / trial / "progress.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(fields))


def test_heartbeat_lines_come_at_most_once_per_interval_per_trial(tmp_path):
    clock = FakeClock()
    out = io.StringIO()
    progress = SweepProgress(_objectives(), total_trials=4, sweep_dir=tmp_path, heartbeat_s=10, poll_s=0,
                             console=Console(file=out, width=300, force_terminal=False), clock=clock)
    progress.trial("a", "running")
    progress.trial("b", "running")
    for second in range(61):               # a minute, the driver polling every second
        clock.now += 1
        _write_progress(tmp_path, "a", phase="training", step=second, total_steps=120, steps_per_epoch=40,
                        epochs=3, remaining_s=120 - second, updated=clock.now)
        if second == 30:
            progress.point("a", 1, {"forget_quality": 0.01, "model_utility": 0.8})
        progress.poll()
    progress.close()
    lines = out.getvalue().splitlines()
    beats = {t: [ln for ln in lines if ln.startswith(f"trial {t} running ") and ":" in ln] for t in "ab"}
    assert 5 <= len(beats["a"]) <= 6 and 5 <= len(beats["b"]) <= 6, lines     # 61 s / 10 s, never more
    assert beats["b"][0].startswith("trial b running 10s: setting up; latest point no point yet"), beats["b"]
    last = beats["a"][-1]
    assert "epoch 2/3, step 59/120; latest point epoch 1: forget_quality=0.01, model_utility=0.8" in last, last
    # a's own pace: 61 s left; b (no progress yet) as long as a's projected 121 s; 2 more such trials, 2 slots
    assert "ends in ~61s" in last and "[0 done, 2 running, 0 failed, 2 left of 4; sweep ends in ~3m]" in last, last
    assert not [ln for ln in lines if ln.startswith("trial a point ")]       # point lines are off by default


def test_point_lines_when_asked_and_nothing_but_the_live_view_in_a_terminal(tmp_path):
    clock = FakeClock()
    out = io.StringIO()
    progress = SweepProgress(_objectives(), total_trials=1, sweep_dir=tmp_path, heartbeat_s=1, poll_s=0,
                             point_lines=True, console=Console(file=out, width=300, force_terminal=False),
                             clock=clock)
    progress.trial("a", "running")
    progress.point("a", 1.5, {"forget_quality": 0.01, "model_utility": 0.8})
    assert out.getvalue().splitlines()[-1] == "trial a point epoch 1.5: forget_quality=0.01, model_utility=0.8"
    progress.close()

    term = io.StringIO()
    live = SweepProgress(_objectives(), total_trials=2, sweep_dir=tmp_path, heartbeat_s=1, poll_s=0,
                         console=Console(file=term, width=200, force_terminal=True), clock=clock)
    live.trial("a", "running")
    _write_progress(tmp_path, "a", phase="evaluating", eval_epoch=2, step=8, total_steps=12, steps_per_epoch=4,
                    epochs=3, remaining_s=30, updated=clock.now)
    clock.now += 100
    assert live.poll() == []                 # no heartbeat lines in a terminal: the view shows it all
    live.point("a", 1, {"forget_quality": 0.01, "model_utility": 0.8})
    view = io.StringIO()
    Console(file=view, width=200).print(live._render())
    live.close()
    text = view.getvalue()
    assert "sweep: 0 done, 1 running, 0 failed, 1 left of 2" in text, text
    assert re.search(r"a .*epoch 2/3, step 8/12, evaluating epoch 2 .*epoch 1: forget_quality=0.01", text), text


# ---------------------------------------------------------------------------------------------- end to end

def _spec(tmp_path: Path, name: str, batch_size: int | None = None) -> Path:
    import yaml

    sys.path.insert(0, str(Path(__file__).parent))
    from test_sweep_e2e import small_spec

    raw = small_spec(tmp_path / "sweeps", name, budget={"num_trials": 2, "max_concurrent": 1, "max_failures": 0})
    raw["fixed"]["epochs"] = 3                 # 3 evaluation points per trial (16 rows, batch 8: 6 steps)
    if batch_size:                             # longer epochs: 16 / batch_size steps each, no accumulation
        raw["fixed"].update(batch_size=batch_size, grad_accum=1)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def _env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("UNLEARN_SWEEP_") or k == "UNLEARN_SWEEP_CACHE"}
    return {**env, "PYTHONUNBUFFERED": "1", "UNLEARN_SWEEP_PROGRESS_WRITE_S": "0.2", **extra}


def _points(sweep_dir: Path) -> list[tuple[str, float]]:
    from sweeps.recording.results import read_results

    return sorted((p.trial_id, p.epoch) for p in read_results(sweep_dir).points)


@pytest.mark.slow
def test_log_lines_of_a_real_sweep_points_and_heartbeats_at_a_bounded_rate(prepared_zoo, tmp_path):
    # warm workers make a 6-step trial finish between two heartbeats: 2-row steps (24 in all), a 1 s beat, and no
    # point lines (each line of a trial restarts its heartbeat clock; point lines are unit-tested above)
    heartbeat = 1.0
    proc = subprocess.Popen([sys.executable, "-m", "unlearn_sweep.cli", "run",
                             str(_spec(tmp_path, "logs", batch_size=2))],
                            cwd=Path(__file__).resolve().parents[2], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            env=_env(UNLEARN_SWEEP_HEARTBEAT_S=str(heartbeat)))  # point lines: off, the default
    stamped = [(time.monotonic(), line.rstrip("\n")) for line in proc.stdout]   # when each line arrived
    assert proc.wait(timeout=900) == 0, "\n".join(ln for _, ln in stamped)
    text = "\n".join(ln for _, ln in stamped)
    points = _points(tmp_path / "sweeps" / "logs")
    trials = sorted({t for t, _ in points})
    # Tune results are evaluation points only: 3 per trial, none for the step-level progress
    assert points == [(t, e) for t in trials for e in (1, 2, 3)], points
    for t in trials:
        mine = [(at, ln) for at, ln in stamped if ln.startswith(f"trial {t} ")]
        assert not [ln for _, ln in mine if ln.startswith(f"trial {t} (DrNPO) point ")], text  # off by default
        beats = [at for at, ln in mine if re.match(rf"trial {t} \(DrNPO\) running \d+s: ", ln)]
        # one heartbeat at most per interval after the trial's last line (its start, a point or a heartbeat)
        for (prev, _), (at, ln) in zip(mine, mine[1:]):
            if at in beats:
                assert at - prev >= heartbeat - 0.5, (ln, at - prev)
        started, ended = mine[0][0], mine[-1][0]
        assert len(beats) <= (ended - started) / heartbeat + 1, text
    assert re.search(r"running \d+s: (setting up|epoch \d/3, step \d+/24)", text), text  # at least one heartbeat
    assert re.search(r"epoch \d/3, step \d+/24.*; ends in ~\d+s", text), text


@pytest.mark.slow
def test_live_view_of_a_real_sweep_in_a_terminal(prepared_zoo, tmp_path):
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "unlearn_sweep.cli", "run", str(_spec(tmp_path, "tty"))],
                            cwd=Path(__file__).resolve().parents[2], stdin=slave, stdout=slave, stderr=slave,
                            env=_env(COLUMNS="200", LINES="60", TERM="xterm-256color", UNLEARN_SWEEP_HEARTBEAT_S="1"),
                            close_fds=True)
    os.close(slave)
    chunks = []
    deadline = time.time() + 900
    while time.time() < deadline:
        ready, _, _ = select.select([master], [], [], 1.0)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:                  # the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    os.close(master)
    assert proc.wait(timeout=60) == 0
    raw = b"".join(chunks).decode("utf-8", "replace")
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", raw)   # the view's cursor moves and colours
    assert "running trials" in text and re.search(r"sweep: \d done, 1 running, 0 failed, \d left of 2", text), text
    assert re.search(r"epoch [123]/3, step [0-6]/6", text), text                # a trial's epoch and step
    assert re.search(r"epoch [12]: forget_quality=\S+, model_utility=", text), text  # its latest point, live
    assert re.search(r"│ ~\d+s", text), text                                  # its estimated end
    assert not re.search(r"running \d+s: ", text)                 # no heartbeat lines in a terminal
    assert "Pareto front" in text
