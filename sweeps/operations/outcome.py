"""Did the sweep do its job? The exit status of `unlearn-sweep run | resume` once the sweep has ended.

    from sweeps.operations.outcome import check_outcome, SweepUnfinished
    check_outcome(spec, sweep_dir, tune_seconds=812.0)   # None, or raises SweepUnfinished (exit 3 or 4)

    0    every search ran its trials (or its space was exhausted, or time_budget_s ended it) and a trial finished
    2    a user mistake (spec, command line, a store that cannot be written): one line, before anything runs
    3    no trial finished: every trial failed (or none ran)
    4    the searches ended unfinished for a reason other than the budget: fewer trials ran than planned
    130  SIGINT (Ctrl-C), 143 SIGTERM: the state is saved, `unlearn-sweep resume SWEEP_DIR` continues

A search "ran its trials" when num_trials of them ended (finished or failed), or fewer when its space holds fewer
configurations (a grid, or lists of values only: each is tried once). The budget is the spec's
`budget.time_budget_s`: a sweep stopped by it after running at least one trial to its end exits 0.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

NO_TRIAL_FINISHED = 3
SEARCHES_UNFINISHED = 4
EXIT_CODES = {0: "done", 2: "user mistake", NO_TRIAL_FINISHED: "no trial finished",
              SEARCHES_UNFINISHED: "searches unfinished (not the budget)", 130: "SIGINT", 143: "SIGTERM"}


class SweepUnfinished(Exception):
    """The sweep ran to its end but did not do its job; `exit_code` is 3 or 4 (see the module docstring)."""

    def __init__(self, message: str, exit_code: int):
        self.exit_code = exit_code
        super().__init__(message)


def planned_trials(spec: Any, plan: Any) -> int:
    """Trials a search runs: num_trials, or fewer when its space is lists of values only (each tried once)."""
    params = plan.space.params.values()
    if params and all(hasattr(d, "choices") for d in params):
        return min(spec.budget.num_trials, math.prod(len(d.choices) for d in params))
    return spec.budget.num_trials


def check_outcome(spec: Any, sweep_dir: str | Path, tune_seconds: float | None) -> None:
    """Raise SweepUnfinished (one line: why, and where to look) when no trial of the sweep finished, or when a
    search ran fewer trials than planned and the time budget was not what stopped it (`tune_seconds`: how long
    this run's Tune experiment ran)."""
    from sweeps.recording.results import read_results

    sweep_dir = Path(sweep_dir)
    trials = read_results(sweep_dir).trials.values()
    ended = [t for t in trials if t.status in ("finished", "failed")]
    finished = [t for t in ended if t.status == "finished"]
    status = f"`unlearn-sweep status {sweep_dir}` lists every trial"
    if not finished:
        failed = [t for t in ended if t.status == "failed"]
        reason = ((failed[0].reason or "").strip().splitlines() or ["no reason recorded"])[0][:160] if failed else ""
        first = f" (first: {failed[0].trial_id}: {reason})" if failed else ""
        what = f"all {len(failed)} failed{first}" if failed else "none ran"
        raise SweepUnfinished(f"no trial of sweep {spec.name} finished: {what}; {status}", NO_TRIAL_FINISHED)
    budget = spec.budget.time_budget_s
    if budget is not None and tune_seconds is not None and tune_seconds >= 0.95 * budget:
        return  # stopped by the time budget: the searches are as finished as the budget allows
    short = []
    for plan in spec.searches():
        done = sum(t.search_id == plan.search_id for t in ended)
        want = planned_trials(spec, plan)
        if done < want:
            short.append(f"{plan.search_id} {done}/{want}")
    if short:
        raise SweepUnfinished(f"sweep {spec.name} ended with its searches unfinished ({', '.join(short)} trials "
                              f"ended) and its time budget was not reached; {status}",
                              SEARCHES_UNFINISHED)
