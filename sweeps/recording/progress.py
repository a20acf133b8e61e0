"""Live sweep progress for the terminal: trials done / running / left, each running trial's epoch and step, its
latest evaluation point and an estimate of its end, the sweep's estimated end, and the best points so far.

A `rich` live view when stdout is a terminal; otherwise (logs, `ray job logs`) one line when a trial starts
and one when it ends, with its best evaluation point (the one the searcher is told, `objectives.best_point`:
constraints satisfied against the search's target, best first objective); between them a short heartbeat
line per running trial at most once per `heartbeat_s` seconds (`UNLEARN_SWEEP_HEARTBEAT_S`, default 180; 0 =
none), and, only when asked (`point_lines`, `UNLEARN_SWEEP_POINT_LINES=1`), one line per evaluation point: a
sweep's log stays readable.

Step-level progress is not a Tune result (every result is an evaluation point to the searcher and the
scheduler): each trial's rank 0 rewrites `<sweep>/trials/<trial id>/progress.json` (`trainables.progress_file`),
which a thread here reads every `poll_s` seconds while trials run (so the sweep folder must be visible to the
driver, as it already must be for the trial artifacts).

    progress = SweepProgress(objectives, total_trials=12, constraints=spec.constraints, sweep_dir=sweep_dir)
    progress.references["m.dv"] = refs            # per search: what its relative constraints compare against
    progress.trial("a1_00000", "running"); progress.point("a1_00000", 1, {...}, search_id="m.dv"); progress.close()

Estimates: a trial's end from its own steps per second so far (evaluations included, `remaining_s` in its
progress file); the sweep's end from the running trials' estimates plus the trials left at the mean duration
of the trials that ended so far (or, before any ended, the running trials' projected durations), shared among
as many slots as trials ran at once.
"""

from __future__ import annotations

import math
import os
import threading
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from sweeps.spec.objectives import best_point

HEARTBEAT_S = 180.0  # a running trial's heartbeat line in logs: at most one per this many seconds
POLL_S = 2.0         # how often the driver reads the running trials' progress files


def heartbeat_s_from_env() -> float:
    """`UNLEARN_SWEEP_HEARTBEAT_S` (seconds between two heartbeat lines of a trial; 0 = none), default 180."""
    try:
        return max(0.0, float(os.environ.get("UNLEARN_SWEEP_HEARTBEAT_S", HEARTBEAT_S)))
    except ValueError:
        return HEARTBEAT_S


def point_lines_from_env() -> bool:
    """`UNLEARN_SWEEP_POINT_LINES=1`: one log line per evaluation point of a running trial (default off)."""
    return os.environ.get("UNLEARN_SWEEP_POINT_LINES", "").strip().lower() in ("1", "true", "yes", "on")


def duration(seconds: float | None) -> str:
    """45s, 12m, 1h05m; "?" when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f}m"
    return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"


class SweepProgress:
    def __init__(self, objectives: Sequence[Any], total_trials: int, console: Console | None = None,
                 constraints: Sequence[Any] = (), sweep_dir: str | Path | None = None,
                 heartbeat_s: float | None = None, point_lines: bool | None = None, poll_s: float = POLL_S,
                 clock: Callable[[], float] = time.time):
        self.objectives = list(objectives)
        self.constraints = list(constraints)
        self.references: dict[str, Mapping[str, float]] = {}  # search id -> constraint references
        self.search_of: dict[str, str] = {}                      # trial id -> search id
        self.search_names: dict[str, str] = {}                   # search id -> its name in the lines (DrNPO)
        self.total = total_trials
        self.console = console or Console()
        self.status: dict[str, str] = {}
        self.reasons: dict[str, str] = {}
        self.best: dict[str, tuple[float, str]] = {}
        self.points: dict[str, list[dict[str, Any]]] = {}  # trial -> its points' metrics (+ "epoch")
        self.sweep_dir = Path(sweep_dir) if sweep_dir is not None else None
        self.heartbeat_s = heartbeat_s_from_env() if heartbeat_s is None else heartbeat_s
        self.point_lines = point_lines_from_env() if point_lines is None else point_lines
        self.poll_s = poll_s
        self.clock = clock
        self.live: dict[str, dict[str, Any]] = {}      # running trial -> its last progress file
        self.started: dict[str, float] = {}            # trial -> when this driver saw it start
        self.durations: list[float] = []               # trials that started and ended under this driver
        self.slots = 1                                 # the most trials seen running at once
        self._last_line: dict[str, float] = {}         # trial -> when a line about it was last printed
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._live = (Live(console=self.console, refresh_per_second=2, get_renderable=self._render)
                      if self.console.is_terminal else None)
        if self._live is not None:
            self._live.start()
        self._poller = None
        if self.sweep_dir is not None and poll_s > 0:
            self._poller = threading.Thread(target=self._poll_loop, name="sweep-progress", daemon=True)
            self._poller.start()

    # ------------------------------------------------------------------ counts and estimates

    def _counts(self) -> dict[str, int]:
        out = {"finished": 0, "running": 0, "failed": 0}
        for st in self.status.values():
            out[st] = out.get(st, 0) + 1
        out["left"] = max(0, self.total - out["finished"] - out["running"] - out["failed"])
        return out

    def trial_remaining(self, trial_id: str, now: float | None = None) -> float | None:
        """Estimated seconds until the trial ends: its own pace (progress file), else the mean trial so far."""
        now = self.clock() if now is None else now
        info = self.live.get(trial_id) or {}
        if info.get("remaining_s") is not None:
            return max(0.0, float(info["remaining_s"]) - max(0.0, now - float(info.get("updated", now))))
        mean = self._mean_duration(now, use_running=False)
        if mean is not None and trial_id in self.started:
            return max(0.0, mean - (now - self.started[trial_id]))
        return None

    def _mean_duration(self, now: float, use_running: bool = True) -> float | None:
        if self.durations:
            return sum(self.durations) / len(self.durations)
        if not use_running:
            return None
        projected = []
        for tid, st in self.status.items():
            rem = self.trial_remaining(tid, now) if st == "running" and tid in self.started else None
            if rem is not None:
                projected.append(now - self.started[tid] + rem)
        return sum(projected) / len(projected) if projected else None

    def sweep_remaining(self, now: float | None = None) -> float | None:
        """Estimated seconds until the sweep ends (see the module docstring); None before anything is known."""
        now = self.clock() if now is None else now
        c = self._counts()
        running = [tid for tid, st in self.status.items() if st == "running"]
        rems = [self.trial_remaining(tid, now) for tid in running]
        if c["running"] == 0 and c["left"] == 0:
            return 0.0
        mean = self._mean_duration(now)
        if mean is None:
            return None
        rems = [max(0.0, mean - (now - self.started.get(tid, now))) if r is None else r for tid, r in zip(running, rems)]
        work = sum(rems) + c["left"] * mean
        return max(max(rems, default=0.0), work / max(1, self.slots))

    def _summary(self, now: float) -> str:
        c = self._counts()
        text = f"{c['finished']} done, {c['running']} running, {c['failed']} failed, {c['left']} left of {self.total}"
        if c["running"] or c["left"]:
            rem = self.sweep_remaining(now)
            if rem is not None:
                text += f"; sweep ends in ~{duration(rem)}"
        return text

    # ------------------------------------------------------------------ what one running trial is doing

    def _where(self, trial_id: str, now: float) -> str:
        """epoch 2/5, step 37/100 (or: setting up / evaluating epoch 2)."""
        info = self.live.get(trial_id)
        if not info or "total_steps" not in info:
            return "setting up"
        step, total = int(info.get("step", 0)), int(info["total_steps"])
        per_epoch = max(1, int(info.get("steps_per_epoch", 1)))
        epochs = math.ceil(float(info.get("epochs", total / per_epoch)) - 1e-9)
        epoch = min(epochs, max(1, math.ceil(step / per_epoch)))  # the epoch in progress, or just ended
        where = f"epoch {epoch}/{epochs}, step {step}/{total}"
        if info.get("phase") == "evaluating":
            where += f", evaluating epoch {info.get('eval_epoch', '?')}"
        return where

    def _latest(self, trial_id: str) -> str:
        pts = self.points.get(trial_id)
        if not pts:
            return "no point yet"
        last = pts[-1]
        return f"epoch {last['epoch']:g}: {self._shown(last)}"

    def _name(self, trial_id: str) -> str:
        return self.search_names.get(self.search_of.get(trial_id, ""), "")

    # ------------------------------------------------------------------ the terminal view

    def _table(self) -> Table:
        c = self._counts()
        t = Table(title=f"trials: {c['finished']} done, {c['running']} running, {c['failed']} failed "
                        f"(of {self.total})")
        t.add_column("objective")
        t.add_column("best so far", justify="right")
        t.add_column("trial:epoch")
        for o in self.objectives:
            val, where = self.best.get(o.name, (math.nan, "-"))
            t.add_row(f"{o.name} ({o.mode})", f"{val:.4g}", where)
        return t

    def _running_table(self, now: float) -> Table:
        t = Table(title="running trials", title_justify="left")
        for col in ("trial", "search", "progress", "latest point", "ends in"):
            t.add_column(col)
        for tid in sorted(tid for tid, st in self.status.items() if st == "running"):
            rem = self.trial_remaining(tid, now)
            t.add_row(tid, self._name(tid) or "-", self._where(tid, now), self._latest(tid),
                      f"~{duration(rem)}" if rem is not None else "?")
        return t

    def _render(self) -> Group:
        with self._lock:
            now = self.clock()
            return Group(Text(f"sweep: {self._summary(now)}"), self._running_table(now), self._table())

    def _refresh(self, line: str | None, trial_id: str | None = None) -> None:
        # the live view redraws itself (refresh_per_second): refreshing it here, under self._lock, could deadlock
        # with its refresh thread, which takes its own lock and then ours (in _render)
        if self._live is None and line is not None:
            self.console.print(line, highlight=False, soft_wrap=True)
            if trial_id is not None:
                self._last_line[trial_id] = self.clock()

    def _shown(self, metrics: Mapping[str, float]) -> str:
        return ", ".join(f"{o.name}={metrics[o.name]:.4g}" for o in self.objectives if o.name in metrics)

    # ------------------------------------------------------------------ events (the driver's recorder)

    def trial(self, trial_id: str, status: str, reason: str | None = None, search_id: str = "") -> None:
        with self._lock:
            now = self.clock()
            if search_id:
                self.search_of[trial_id] = search_id
            if status == "running":
                self.started.setdefault(trial_id, now)
            elif trial_id in self.started and self.status.get(trial_id) == "running":
                self.durations.append(now - self.started.pop(trial_id))
            if status != "running":
                self.live.pop(trial_id, None)
            self.status[trial_id] = status
            self.slots = max(self.slots, self._counts()["running"])
            if reason:
                self.reasons[trial_id] = reason
            suffix = f": {reason}" if reason else ""
            refs = self.references.get(self.search_of.get(trial_id, ""), {})
            best = best_point(self.points.get(trial_id, []), self.objectives, self.constraints, refs)
            if status == "finished" and best is not None:
                suffix = f", best at epoch {best['epoch']:g}: {self._shown(best)}"
            name = self._name(trial_id)
            self._refresh(f"trial {trial_id}{f' ({name})' if name else ''} {status}{suffix}  [{self._summary(now)}]",
                          trial_id)

    def point(self, trial_id: str, epoch: int | float, metrics: Mapping[str, float], search_id: str = "") -> None:
        with self._lock:
            if search_id:
                self.search_of[trial_id] = search_id
            for o in self.objectives:
                v = metrics.get(o.name)
                if v is None or not math.isfinite(v):
                    continue
                best = self.best.get(o.name)
                if best is None or (v > best[0] if o.mode == "max" else v < best[0]):
                    self.best[o.name] = (v, f"{trial_id}:{epoch}")
            self.points.setdefault(trial_id, []).append({**metrics, "epoch": epoch})
            line = None
            if self.point_lines:
                now = self.clock()
                rem = self.trial_remaining(trial_id, now) if self.status.get(trial_id) == "running" else None
                name = self._name(trial_id)
                line = (f"trial {trial_id}{f' ({name})' if name else ''} point {self._latest(trial_id)}"
                        + (f"; ends in ~{duration(rem)}" if rem is not None else ""))
            self._refresh(line, trial_id)

    # ------------------------------------------------------------------ the side channel

    def poll(self) -> list[str]:
        """Read the running trials' progress files; without a terminal, print the heartbeat lines that are due
        (returns them)."""
        lines: list[str] = []
        with self._lock:
            if self.sweep_dir is None:
                return lines
            from trainables.progress_file import PROGRESS_NAME, read_progress

            now = self.clock()
            running = [tid for tid, st in self.status.items() if st == "running"]
            for tid in running:
                info = read_progress(self.sweep_dir / "trials" / tid / PROGRESS_NAME)
                if info is not None:
                    self.live[tid] = info
            if self._live is not None or not self.heartbeat_s:
                return lines
            for tid in running:
                if now - self._last_line.get(tid, self.started.get(tid, now)) < self.heartbeat_s:
                    continue
                name = self._name(tid)
                rem = self.trial_remaining(tid, now)
                line = (f"trial {tid}{f' ({name})' if name else ''} running {duration(now - self.started.get(tid, now))}: "
                        f"{self._where(tid, now)}; latest point {self._latest(tid)}"
                        + (f"; ends in ~{duration(rem)}" if rem is not None else "")
                        + f"  [{self._summary(now)}]")
                self._refresh(line, tid)
                lines.append(line)
        return lines

    def _poll_loop(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                self.poll()
            except Exception:  # noqa: BLE001 - the display must never stop the sweep
                pass

    def close(self) -> None:
        self._stop.set()
        if self._poller is not None:
            self._poller.join(timeout=5)
            self._poller = None
        if self._live is not None:
            self._live.stop()
            self._live = None
