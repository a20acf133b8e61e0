"""Live sweep progress for the terminal: trials done / running / failed and the best points so far.

A `rich` live table when stdout is a terminal; otherwise (logs, `ray job logs`) one line when a trial starts
and one when it ends, with its best evaluation point (the one the searcher is told, `objectives.best_point`:
constraints satisfied against the search's target, best first objective), no line per epoch: a sweep's log
stays readable.

    progress = SweepProgress(objectives, total_trials=12, constraints=spec.constraints)
    progress.references["m.dv"] = refs            # per search: what its relative constraints compare against
    progress.trial("a1_00000", "running"); progress.point("a1_00000", 1, {...}, search_id="m.dv"); progress.close()
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from rich.console import Console
from rich.live import Live
from rich.table import Table

from sweeps.objectives import best_point


class SweepProgress:
    def __init__(self, objectives: Sequence[Any], total_trials: int, console: Console | None = None,
                 constraints: Sequence[Any] = ()):
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
        self._live = Live(self._table(), console=self.console, refresh_per_second=2) if self.console.is_terminal else None
        if self._live is not None:
            self._live.start()

    def _counts(self) -> dict[str, int]:
        out = {"finished": 0, "running": 0, "failed": 0}
        for st in self.status.values():
            out[st] = out.get(st, 0) + 1
        return out

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

    def _refresh(self, line: str | None) -> None:
        if self._live is not None:
            self._live.update(self._table())
        elif line is not None:
            self.console.print(line, highlight=False, soft_wrap=True)

    def _shown(self, metrics: Mapping[str, float]) -> str:
        return ", ".join(f"{o.name}={metrics[o.name]:.4g}" for o in self.objectives if o.name in metrics)

    def trial(self, trial_id: str, status: str, reason: str | None = None, search_id: str = "") -> None:
        if search_id:
            self.search_of[trial_id] = search_id
        self.status[trial_id] = status
        if reason:
            self.reasons[trial_id] = reason
        c = self._counts()
        suffix = f": {reason}" if reason else ""
        refs = self.references.get(self.search_of.get(trial_id, ""), {})
        best = best_point(self.points.get(trial_id, []), self.objectives, self.constraints, refs)
        if status == "finished" and best is not None:
            suffix = f", best at epoch {best['epoch']:g}: {self._shown(best)}"
        name = self.search_names.get(self.search_of.get(trial_id, ""))
        self._refresh(f"trial {trial_id}{f' ({name})' if name else ''} {status}{suffix}  [{c['finished']} done, "
                      f"{c['running']} running, "
                      f"{c['failed']} failed of {self.total}]")

    def point(self, trial_id: str, epoch: int | float, metrics: Mapping[str, float], search_id: str = "") -> None:
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
        self._refresh(None)

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
