"""`unlearn-sweep sync SWEEP_DIR`: write a sweep's results file to MLflow, idempotently.

For a sweep that ran with `--tracking-optional` while the store was down, or whose store was lost: every
trial of `points.jsonl` gets its child run (found by tags, created once, as the live recorder does), its
params, each evaluation point not yet logged (by MLflow step), its artifacts and its final status; the sweep's
parent run too. Running it twice logs nothing new.

    from sweeps.recording.sync import sync_tracking
    counts = sync_tracking(spec, sweep_dir, tracker)     # {"trials": 12, "points": 96, "skipped": 0}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sweeps.recording.recorder import (describe_sweep, experiment_description, log_point, log_target_point,
                                       open_trial_run)
from sweeps.recording.results import read_results

STATUS = {"finished": "FINISHED", "failed": "FAILED", "interrupted": "KILLED"}


def sync_tracking(spec: Any, sweep_dir: str | Path, tracker: Any) -> dict[str, int]:
    """Bring the MLflow store up to date with `<sweep_dir>/points.jsonl`; returns what was written."""
    sweep_dir = Path(sweep_dir)
    results = read_results(sweep_dir)
    parent = tracker.parent_run(sweep_id=spec.name, name=spec.name,
                                tags={"method": spec.method.base, "baldro_variants": ",".join(spec.method.variants),
                                      "benchmark": spec.data_label})
    tracker.log_text(parent, spec.to_yaml(), "config/sweep.yaml")
    tracker.describe_experiment(experiment_description(spec))
    describe_sweep(tracker, parent, spec.objectives, sorted({k for t in results.trials.values() for k in t.hparams}))
    counts = {"trials": 0, "points": 0, "skipped": 0}
    plans = {p.search_id: p for p in spec.searches()}
    by_trial: dict[str, list] = {}
    for p in results.points:
        if p.epoch != 0:
            by_trial.setdefault(p.trial_id, []).append(p)
    for tid, trial in results.trials.items():
        plan = plans.get(trial.search_id)
        if plan is None:
            continue
        ref = open_trial_run(tracker, parent, plan, tid, trial.hparams)
        have = tracker.logged_steps(ref)
        if 0 not in have:
            log_target_point(tracker, ref, results.reference(plan.model.name, "target"), spec.objectives)
        for point in sorted(by_trial.get(tid, []), key=lambda q: q.epoch):
            step = point.step if point.step is not None else int(point.epoch)
            if step in have:
                counts["skipped"] += 1
                continue
            log_point(tracker, ref, point, spec.objectives)
            counts["points"] += 1
        for name, folder in (("config.yaml", "config"), ("result.json", "eval")):
            path = sweep_dir / "trials" / tid / name
            if path.is_file():
                tracker.log_artifact(ref, path, folder)
        if trial.status in STATUS:
            tracker.end_run(ref, STATUS[trial.status], reason=trial.reason if trial.status != "finished" else None)
        counts["trials"] += 1
    if results.trials and all(t.status in ("finished", "failed") for t in results.trials.values()):
        tracker.end_run(parent, "FINISHED")
    tracker.flush()
    return counts
