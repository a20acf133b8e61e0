"""The sweep's progress lines when stdout is not a terminal (logs, `ray job logs`): one line per trial start and
end, the end with the trial's best point (the searcher's: constraints against the target, then the first
objective), none per epoch, nothing wrapped.

    .venv/bin/python -m pytest tests/sweeps/test_progress.py -q
"""

from __future__ import annotations

import io

from rich.console import Console

from sweeps.objectives import Constraint, Objective
from sweeps.progress import SweepProgress


def test_one_line_per_trial_event_with_the_best_point():
    out = io.StringIO()
    objs = [Objective(name="forget_quality", mode="max", scale="log"), Objective(name="model_utility", mode="max")]
    progress = SweepProgress(objs, total_trials=3, console=Console(file=out, width=40, force_terminal=False))
    progress.status["old"] = "finished"  # a trial of an earlier run of a resumed sweep
    progress.search_names["m.dv"] = "DrNPO"
    progress.trial("t1", "running", search_id="m.dv")
    for epoch, fq in ((1, 1e-9), (2, 0.2)):
        progress.point("t1", epoch, {"forget_quality": fq, "model_utility": 0.8 - 0.01 * epoch})
    progress.trial("t1", "finished")
    progress.trial("t2", "failed", "loss became NaN at step 3")
    progress.close()
    lines = out.getvalue().splitlines()
    assert lines == [
        "trial t1 (DrNPO) running  [1 done, 1 running, 0 failed of 3]",
        "trial t1 (DrNPO) finished, best at epoch 2: forget_quality=0.2, model_utility=0.78  [2 done, 0 running, 0 "
        "failed of 3]",
        "trial t2 failed: loss became NaN at step 3  [2 done, 0 running, 1 failed of 3]",
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
