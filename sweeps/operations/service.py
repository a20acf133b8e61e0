"""The sweep service: one validated spec in, the Pareto front, MLflow runs and exportable configs out.

    from sweeps.operations.service import run_sweep
    run_sweep(load_spec("presets/tofu-mini.yaml"))                    # local Ray on this machine
    run_sweep(spec, address="auto")                                   # an existing Ray cluster
    run_sweep(spec, resume=True)                                      # after Ctrl-C or a killed driver

Before anything is started or written: the machine fit (`sweeps.operations.preflight`), the tracking store (within
seconds), zoo models nobody prepared yet (trained once), the folder's driver lock. Per search (model x BalDRO
variant): the driver prepares the shared work once (`sweeps.operations.shared`); then ONE `ray.tune.Tuner`
(`sweeps.search.tuning`: a searcher and a scheduler per search, sharing the trial slots, `sweeps.search.multiplex`)
runs every search's `trainables.trial.run_trial` with the driver-side `SweepRecorder` (points.jsonl + MLflow). Tune
state lives in `<sweep>/tune/sweep`, so `resume=True` restores it (`Tuner.restore`): finished trials are not re-run
and every searcher keeps its state; unfinished trials continue from their last epoch checkpoint. Ctrl-C / SIGTERM
stop the whole sweep cleanly (`sweeps.operations.interrupts`). At the end the Pareto table is printed, then (when
MLflow is behind points.jsonl) the `unlearn-sweep sync SWEEP_DIR` command; with `check=True` (the CLI) a sweep in
which no trial finished, or whose searches ended unfinished before the budget, raises
`sweeps.operations.outcome.SweepUnfinished` (exit 3 / 4).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rich.console import Console

# the Ray a sweep runs on (re-exported: `sweeps.operations.service.init_ray`, `LOOPBACK_ENV`)
from sweeps.operations.ray_cluster import LOOPBACK_ENV, cluster_resources, init_ray, local_ray_cpus  # noqa: F401
from unlearning.errors import ConfigError


def absolute_spec(spec: Any) -> Any:
    """The spec with its storage folder made absolute (trials run in other working directories)."""
    from sweeps.spec import parse_spec

    storage = str(Path(spec.storage).expanduser().resolve())
    if storage == spec.storage:
        return spec
    return parse_spec({**spec.raw(), "storage": storage}, where=spec.source_path or spec.name, source=spec.source_path)


def run_searches(spec: Any, plans: list[Any], tracker: Any, parent: Any, results: Any, progress: Any,
                 console: Console, resume: bool, stop: Any) -> dict[str, tuple[float, float]]:
    """Every search of the sweep in one Tuner (or its restore); returns per-trial (wall, work) seconds.

    The shared work of each search (`sweeps.operations.shared`) is prepared first, one search after the other;
    then the searches' trials share the cluster (`sweeps.search.multiplex`, `search.concurrent`)."""
    from sweeps.recording import recorder as rec
    from sweeps.operations.shared import prepare_shared
    from sweeps.search.tuning import constraint_refs, make_tuner, tune_path
    from sweeps.search.warm_start import warm_start_configs

    old = [p.search_id for p in plans if (spec.sweep_dir() / "tune" / p.search_id).is_dir()]
    if resume and old and not tune_path(spec).is_dir():
        raise ConfigError(str(spec.sweep_dir()), field="tune", value=f"tune/{old[0]}",
                          fix="this sweep was started by an earlier unlearn-sweep (one Tune run per search), which "
                              "this version cannot resume: run the spec again under a new name (--name)")
    labels = [p.label for p in plans]  # how the progress lines name a trial's search: its label when unique
    progress.search_names.update({p.search_id: p.label if labels.count(p.label) == 1 else p.search_id for p in plans})
    searches = []
    for plan in plans:
        console.print(f"search {plan.search_id}: {plan.label} on {plan.model.name}, {spec.budget.num_trials} trials",
                      soft_wrap=True)
        shared = prepare_shared(spec, plan, log=lambda m: console.print(f"[dim]{m}[/dim]", soft_wrap=True))
        results.reference(plan.model.name, "target", shared.target_metrics)
        progress.references[plan.search_id] = constraint_refs(spec, shared.target_metrics)  # a trial's best point
        seeded = warm_start_configs(spec, plan)
        if seeded:
            console.print(f"warm start of {plan.search_id}: {len(seeded)} configuration(s) from "
                          f"{', '.join(spec.search.warm_start)} first", soft_wrap=True)
        searches.append((plan, shared, seeded))
    rec.ACTIVE_PROGRESS = progress
    recorder = rec.SweepRecorder({plan.search_id: (plan, shared.target_metrics) for plan, shared, _ in searches},
                                 tracker, parent, results, objectives=spec.objectives)
    tuner = make_tuner(spec, searches, recorder, cluster_resources(), resume)
    with stop.tuning():  # Ctrl-C / SIGTERM: Tune saves its state and leaves running trials to resume
        tuner.fit()
    return recorder.timings


ORPHAN_REASON = ("lost: the driver stopped before Tune saved this trial in its experiment state, so the "
                 "resumed search ran a new trial in its place")


def _close_orphans(sweep_dir: Path, results: Any, tracker: Any, parent: Any) -> None:
    """After every Tuner has run to its end (not interrupted) no trial can still be running: a trial recorded
    as started (or interrupted) but unknown to the restored Tune state (the driver was killed between its
    start and Tune's next state snapshot) is closed as failed with that reason, in points.jsonl and in
    MLflow (status KILLED)."""
    from sweeps.recording.results import read_results

    for t in read_results(sweep_dir).trials.values():
        if t.status in ("running", "interrupted"):
            results.trial(t.trial_id, "failed", search_id=t.search_id, model=t.model, variant=t.variant,
                          reason=ORPHAN_REASON, hparams=t.hparams, mlflow_run_id=t.mlflow_run_id)
            tracker.end_run(tracker.child_run(parent, trial_id=t.trial_id), "KILLED", reason=ORPHAN_REASON)


def _close_interrupted(sweep_dir: Path, results: Any, tracker: Any, parent: Any, sig: str) -> None:
    """An interrupted sweep: trials still running are marked interrupted (points.jsonl) and their MLflow runs
    KILLED with the reason; `unlearn-sweep resume` continues them (their runs are re-attached)."""
    from sweeps.recording.results import read_results

    reason = f"interrupted by {sig}: `unlearn-sweep resume {sweep_dir}` continues this trial"
    for t in read_results(sweep_dir).trials.values():
        if t.status == "running":
            results.trial(t.trial_id, "interrupted", search_id=t.search_id, model=t.model, variant=t.variant,
                          reason=reason, hparams=t.hparams, mlflow_run_id=t.mlflow_run_id)
            tracker.end_run(tracker.child_run(parent, trial_id=t.trial_id), "KILLED", reason=reason)
    tracker.end_run(parent, "KILLED", reason=f"interrupted by {sig}: `unlearn-sweep resume {sweep_dir}` continues "
                                             "the sweep")


def run_sweep(spec: Any, address: str | None = None, resume: bool = False, console: Console | None = None,
              tracking_optional: bool = False, check: bool = False) -> Path:
    """Run (or resume) every search of `spec`; returns the sweep folder. See the module docstring.

    Raises SweepInterrupted after a Ctrl-C / SIGTERM once the state is saved and the runs are closed, and a
    one-line ConfigError before any side effect when the spec cannot run here (machine fit, tracking store
    down, another driver on the same folder). `check`: SweepUnfinished at the end when no trial finished or the
    searches ended unfinished before the budget (`sweeps.operations.outcome`)."""
    from sweeps.operations.preflight import preflight

    # can it run here? checked before Ray starts or anything is written
    preflight(spec, address, tracking_optional=tracking_optional)
    if address is None:  # a new install: DeepSpeed's CPU op and the bytecode, at the lowest priority (once)
        from trainables.warm_cache import start as warm_caches

        warm_caches()
    from sweeps.operations.driver_lock import DriverLock
    from sweeps.operations.interrupts import SweepInterrupted, SweepInterrupts
    from sweeps.recording.results import write_spec_copy
    from sweeps.recording.tracking import open_tracker
    from unlearning.models.prepare import ensure_zoo_models

    if console is None:
        from sweeps.selection.terminal import output_console

        console = output_console()
    from sweeps.operations.overview import local_machine, print_overview, sweep_overview, unconnected_cluster

    spec = absolute_spec(spec)
    sweep_dir = spec.sweep_dir()
    if not resume and (sweep_dir / "points.jsonl").exists():
        raise ConfigError(str(sweep_dir), field="name", value=spec.name,
                          fix=f"this sweep already has results: `unlearn-sweep resume {sweep_dir}` continues it, "
                              f"or run it under another name (`unlearn-sweep run SPEC --name {spec.name}-2`)")
    DriverLock(sweep_dir).check_free()  # another driver on this folder: one line, before anything is printed
    # what the sweep will do (`unlearn-sweep plan` without the probe); a cluster's resources once connected
    machine = unconnected_cluster(address) if address else local_machine(spec, checked=True)
    print_overview(sweep_overview(spec, machine), console)
    say = lambda msg: console.print(f"[dim]{msg}[/dim]")  # noqa: E731
    tracker = open_tracker(spec.tracking_uri(), spec.experiment_name(), optional=tracking_optional, log=say)
    t0 = time.perf_counter()
    with SweepInterrupts() as stop:
        try:
            # zoo models the spec names but nobody prepared yet are trained here, once, before Ray starts
            ensure_zoo_models([n for m in spec.models for n in (m.name, m.retain_model)], log=say)
            with DriverLock(sweep_dir, log=say) as lock:
                write_spec_copy(spec, sweep_dir)
                return _drive(spec, sweep_dir, address, resume, console, tracker, lock, stop, t0, check=check)
        except SweepInterrupted as exc:  # a signal outside tuner.fit(): nothing to save but what is written
            tracker.flush()
            raise SweepInterrupted(exc.signal, f"`unlearn-sweep resume {sweep_dir}` continues the sweep") from None


def _drive(spec: Any, sweep_dir: Path, address: str | None, resume: bool, console: Console, tracker: Any,
           lock: Any, stop: Any, t0: float, check: bool = False) -> Path:
    import ray

    from sweeps.operations.interrupts import SweepInterrupted
    from sweeps.selection.pareto_table import print_pareto
    from sweeps.recording.recorder import experiment_description
    from sweeps.recording.progress import SweepProgress
    from sweeps.recording.results import ResultsLog, read_results

    started_ray = not ray.is_initialized() and address is None
    session = init_ray(spec, address)
    stop.install()  # ray.init takes SIGTERM for its core worker: take it back
    if started_ray and session:
        lock.record(ray_session=session)  # a later driver stops what is left of it if this one is killed
    try:
        spec.resources.check_fits(cluster_resources())
        if address:
            from sweeps.operations.overview import Machine, machine_line, sweep_overview

            total = cluster_resources()
            machine = Machine(f"the Ray cluster at {address}", total["CPU"], total["GPU"])
            console.print(machine_line(sweep_overview(spec, machine)), highlight=False, markup=False)
        parent = tracker.parent_run(sweep_id=spec.name, name=spec.name,
                                    tags={"method": spec.method.base,
                                          "baldro_variants": ",".join(spec.method.variants),
                                          "benchmark": spec.data_label,
                                          "forget_split": spec.data.forget_split})
        tracker.log_text(parent, spec.to_yaml(), "config/sweep.yaml")
        tracker.describe_experiment(experiment_description(spec))
        results = ResultsLog(sweep_dir)
        plans = spec.searches()
        progress = SweepProgress(spec.objectives, total_trials=spec.budget.num_trials * len(plans), console=console,
                                 constraints=spec.constraints, sweep_dir=sweep_dir)  # reads trials' progress.json
        if resume:  # count the trials of the earlier runs too
            progress.status.update({t.trial_id: t.status for t in read_results(sweep_dir).trials.values()
                                    if t.status in ("finished", "failed")})
        try:
            t_tune = time.perf_counter()
            timings = run_searches(spec, plans, tracker, parent, results, progress, console, resume, stop)
            tune_seconds = time.perf_counter() - t_tune
            if stop.signal:
                _close_interrupted(sweep_dir, results, tracker, parent, stop.signal)
            else:
                _close_orphans(sweep_dir, results, tracker, parent)
        finally:
            progress.close()
            tracker.flush()
        if stop.signal:
            _say_behind(tracker, sweep_dir, console)
            raise SweepInterrupted(stop.signal, f"state saved; `unlearn-sweep resume {sweep_dir}` continues the "
                                                "sweep")
    finally:
        if started_ray:
            ray.shutdown()  # every Ray process this driver started goes with it
    wall = time.perf_counter() - t0
    tracker.log_metrics(parent, {"sweep_wall_seconds": wall}, step=0)
    tracker.end_run(parent, "FINISHED")
    tracker.flush()
    console.print(f"sweep {spec.name} finished in {wall:.1f}s; results in {sweep_dir}", soft_wrap=True)
    if timings:  # time a trial spent outside its own training + evaluation (scheduling, start-up, model load)
        trial_wall = sum(w for w, _ in timings.values())
        share = 1 - sum(k for _, k in timings.values()) / trial_wall
        console.print(f"per-trial overhead (Ray scheduling, process start, model load): {100 * share:.1f}% of "
                      f"trial time ({trial_wall / len(timings):.1f}s per trial on average)", soft_wrap=True)
        tracker.log_metrics(parent, {"trial_overhead_share": share}, step=0)
    print_pareto(spec, sweep_dir, console)  # fits the console: compact on a narrow terminal, LOG_WIDTH in logs
    _say_behind(tracker, sweep_dir, console)
    if check:
        from sweeps.operations.outcome import check_outcome

        check_outcome(spec, sweep_dir, tune_seconds)
    return sweep_dir


def _say_behind(tracker: Any, sweep_dir: Path, console: Console) -> None:
    """When MLflow is behind points.jsonl: a line per failure cause and the `unlearn-sweep sync` command."""
    for line in tracker.behind(sweep_dir):
        console.print(f"[yellow]{line}[/yellow]", soft_wrap=True)
