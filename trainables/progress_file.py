"""A running trial's progress side channel: `<sweep>/trials/<trial id>/progress.json`, rewritten atomically.

Tune results are evaluation points only (the searcher and the scheduler treat every result as one), so the
step-level progress of a trial never goes through `tune.report`: rank 0 of the trial rewrites this small JSON
file at a bounded rate (at most once per `UNLEARN_SWEEP_PROGRESS_WRITE_S` seconds, default 2, plus once at
every phase change), and the driver's progress printer (`sweeps.recording.progress`) reads it.

    progress = ProgressFile(Path(output_dir) / PROGRESS_NAME)   # enabled=False on ranks other than 0
    progress.update(phase="setup", force=True)
    progress.step(record)        # a loop position (`unlearning.train.loop.unlearn`'s on_step)
    read_progress(path)          # the driver: the last whole file, or None

Fields: phase (setup | training | evaluating | done | failed), step, total_steps, steps_per_epoch, epochs,
epoch (training progress, 1 = end of the first epoch), loss, eval_epoch (the point being evaluated),
start_step and loop_started (the first position this process saw and when), updated (time.time() of the
write), remaining_s (estimated seconds to the trial's end as of `updated`: the steps left at this process's
seconds per step, plus the evaluation points left at its seconds per evaluation; evaluations are not counted
before the first one ends), pid.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Callable, Mapping

PROGRESS_NAME = "progress.json"
WRITE_EVERY_S = 2.0


def write_every_s() -> float:
    """Seconds between two writes (`UNLEARN_SWEEP_PROGRESS_WRITE_S`, default 2)."""
    try:
        return max(0.0, float(os.environ.get("UNLEARN_SWEEP_PROGRESS_WRITE_S", WRITE_EVERY_S)))
    except ValueError:
        return WRITE_EVERY_S


class ProgressFile:
    """Writes one trial's progress.json (see the module docstring); never raises into training."""

    def __init__(self, path: str | Path, every_s: float | None = None, enabled: bool = True,
                 clock: Callable[[], float] = time.time):
        self.path = Path(path)
        self.every_s = write_every_s() if every_s is None else every_s
        self.enabled = enabled
        self.clock = clock
        self.state: dict[str, Any] = {"phase": "setup", "pid": os.getpid()}
        self._last_write = -float("inf")
        self.writes = 0
        self.eval_s, self.evals = 0.0, 0  # time spent in the evaluations this process ran, and how many
        self._eval_started: float | None = None

    def update(self, force: bool = False, **fields: Any) -> None:
        if not self.enabled:
            return
        now = self.clock()
        if "phase" in fields:
            self._enter(fields["phase"], now)
        self.state.update(fields)
        if force or now - self._last_write >= self.every_s:
            self._write(now)

    def _enter(self, phase: str, now: float) -> None:
        """Count the time of evaluations (from entering "evaluating" to leaving it)."""
        if phase == "evaluating" and self.state.get("phase") != "evaluating":
            self._eval_started = now
        elif phase != "evaluating" and self._eval_started is not None:
            self.eval_s += now - self._eval_started
            self.evals += 1
            self._eval_started = None

    def step(self, record: Mapping[str, Any]) -> None:
        """A loop position: written when the interval has passed (the first one at once)."""
        if not self.enabled or record.get("rank", 0) != 0:
            return
        now = self.clock()
        first = "start_step" not in self.state
        if first:
            self.state.update(start_step=int(record["step"]), loop_started=now)
        fields = {k: record[k] for k in ("step", "total_steps", "steps_per_epoch", "epochs", "epoch", "loss")
                  if k in record}
        phase_changed = self.state.get("phase") != "training"
        self._enter("training", now)  # an evaluation that just ended is counted before the estimate
        done = int(record["step"]) - self.state["start_step"]
        if done > 0:
            per_step = max(0.0, now - self.state["loop_started"] - self.eval_s) / done
            per_point = self.eval_s / self.evals if self.evals else 0.0  # unknown before the first one
            fields["remaining_s"] = (max(0, int(record["total_steps"]) - int(record["step"])) * per_step
                                     + int(record.get("points_left", 0)) * per_point)
        self.update(force=first or phase_changed, phase="training", **fields)

    def _write(self, now: float) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps({**self.state, "updated": now}))
            os.replace(tmp, self.path)  # readers see the old file or the new one, never half of one
            self._last_write = now
            self.writes += 1
        except OSError:  # progress is informative only: a full disk must not fail the trial
            pass


def read_progress(path: str | Path) -> dict[str, Any] | None:
    """The trial's last progress (None when it has written none yet or the file is unreadable)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
