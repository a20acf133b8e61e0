"""Replaying a search over a tabular landscape through the real Ray Tune, `OptunaSearcher` and `MOASHAScheduler`
(the pieces of `benchmarks/bench_search.py` that do not print or draw).

    runs, target = load_landscape(Path("runs/landscape"))          # runs.jsonl + landscape.json's "target"
    grid = grid_runs(runs, "DrNPO")                                # the 54 runs of one grid
    setup = Setup.from_spec(REPO / "presets/tofu-mini.yaml", target)  # objectives, constraint, rungs, reference
    start_ray()
    trace = replay(grid, setup, sampler="tpe", scheduler="moasha", seed=0, budget=540, workdir=tmp)
    curve = hv_curve(trace, setup)                                 # [(trial-epochs, HV of feasible points so far)]

* The table: `freeze(hparams) -> points` (`benchmarks/lookup.py`). A failed run replays its points, then
  the trainable's own failure report (`trainables.worker_loop.failure_report`: `trial_failed: 1`, the epoch
  of the last point, NaN objectives), which MO-ASHA ignores and the searcher tells Optuna as FAIL.
* The space: one `optuna.distributions.CategoricalDistribution` per hyperparameter, the grid's values in
  table order; the searcher and the scheduler are built as `sweeps.search.tuning.make_searcher` / `make_scheduler`
  build them (objectives and constraints of the base spec, `SearchedValue` / `Violations`, rungs at
  grace * reduction_factor**k epochs up to the grid's longest run, the spec's `search.grace` and
  `search.reduction_factor`).
* One trial at a time (`max_concurrent_trials=1`): Tune asks the searcher for the next configuration only
  after the previous trial ended and was told, so a replay is deterministic given the seed.
* Trial-epochs: every evaluation point a trial reported (a STOPped trial counts what it ran; a failure
  report is not a point). A `BudgetStopper` ends the Tune run once the budget is consumed; a sampler that
  proposes a configuration again pays for it again (the service does not deduplicate either).
* Hypervolume: of the feasible points seen so far, in the minimisation space of the objectives
  (`Objective.minimised`), against `Setup.reference` (see `reference_point`), with
  `sweeps.selection.pareto.hypervolume`.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from sweeps.spec.objectives import hv_reference as reference_point
from sweeps.selection.pareto import hypervolume
from lookup import POINTS_KEY, freeze, make_lookup_trainable
from sweeps.search.searcher import FAILED_KEY

RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0", "RAY_AIR_NEW_OUTPUT": "0",
           "RAY_AUTH_MODE": "disabled", "RAY_DEDUP_LOGS": "1", "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "1000",
           # a replay reads results from its callbacks: no CSV/JSON/TensorBoard file per result
           "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1"}


# --------------------------------------------------------------------------------------------------
# the table


def load_landscape(folder: Path) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """(every run of `runs.jsonl`, the target's metrics from `landscape.json`; {} when it is not there)."""
    runs = []
    for line in (folder / "runs.jsonl").read_text(encoding="utf-8").splitlines():
        try:
            runs.append(json.loads(line))
        except ValueError:
            continue  # a line cut by a killed run
    meta = folder / "landscape.json"
    target = json.loads(meta.read_text(encoding="utf-8")).get("target", {}) if meta.is_file() else {}
    return runs, {k: v for k, v in target.items() if isinstance(v, (int, float))}


def grid_runs(runs: Sequence[Mapping[str, Any]], label: str) -> list[dict[str, Any]]:
    """The runs of one grid, in file order (the last record of a run id wins)."""
    by_id = {r["run_id"]: dict(r) for r in runs if r.get("label") == label}
    return list(by_id.values())


def failure_point(run: Mapping[str, Any], objective_names: Sequence[str]) -> dict[str, Any]:
    """What a failed trial reports last (`trainables.worker_loop.failure_report`), after its points."""
    last = run["points"][-1]["epoch"] if run["points"] else 0
    return {FAILED_KEY: 1, "failure_reason": run.get("reason") or "failed", "epoch": last,
            **{name: float("nan") for name in objective_names}}


def build_table(runs: Sequence[Mapping[str, Any]], objective_names: Sequence[str]) -> dict[Any, list[dict]]:
    """`freeze(hparams) -> [point, ...]` for the lookup trainable (a failed run ends with its failure report)."""
    table = {}
    for run in runs:
        points = [dict(p) for p in run["points"]]
        if run.get("status") != "ok":
            points.append(failure_point(run, objective_names))
        table[freeze(run["hparams"])] = points
    return table


def grid_values(runs: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """Each hyperparameter's values in first-seen (table) order."""
    names = list(runs[0]["hparams"])
    return {n: list(dict.fromkeys(r["hparams"][n] for r in runs)) for n in names}


def grid_trial_epochs(runs: Sequence[Mapping[str, Any]]) -> int:
    """The full grid's trial-epochs: the sum of the runs' epochs (what a bash grid pays)."""
    return int(sum(r["hparams"].get("epochs", len(r["points"])) for r in runs))


# --------------------------------------------------------------------------------------------------
# objectives, constraint, reference point, rungs


@dataclass
class Setup:
    """What the replay optimises and how the hypervolume is measured."""

    objectives: list[Any]            # sweeps.spec.objectives.Objective
    constraints: list[Any]           # sweeps.spec.objectives.Constraint
    references: dict[str, float]     # constraint reference values (the target's metrics)
    reference: list[float]           # hypervolume reference point, minimisation space
    grace: float = 1.0
    reduction_factor: float = 3.0
    stop_below: float = 0.1
    pause: bool = True

    @classmethod
    def from_spec(cls, spec_path: Path, target: Mapping[str, float]) -> Setup:
        from sweeps.spec import load_spec

        spec = load_spec(spec_path, check_models=False)
        refs = {c.metric: target[c.metric] for c in spec.constraints if c.relative_to == "target" and c.metric in target}
        return cls(objectives=list(spec.objectives), constraints=list(spec.constraints), references=refs,
                   reference=reference_point(spec.objectives, spec.constraints, target),
                   grace=spec.search.grace, reduction_factor=spec.search.reduction_factor,
                   stop_below=spec.search.stop_below, pause=spec.search.pause)

    def vector(self, point: Mapping[str, Any]) -> list[float] | None:
        """The point's minimisation-space vector when it is feasible and every objective is known, else None."""
        if point.get(FAILED_KEY):
            return None
        if any(c.violation(point, self.references) > 0 for c in self.constraints):
            return None
        vec = [o.minimised(point) for o in self.objectives]
        return None if any(v is None for v in vec) else vec


def grid_hypervolume(runs: Sequence[Mapping[str, Any]], setup: Setup) -> float:
    """HV of every feasible point of every run of the grid."""
    vecs = [v for r in runs for p in r["points"] if (v := setup.vector(p)) is not None]
    return hypervolume(vecs, setup.reference)


# --------------------------------------------------------------------------------------------------
# Ray and one replayed search


def start_ray(num_cpus: int = 2) -> str:
    """A private local Ray on the loopback interface (its own short temp folder, returned)."""
    for key, value in RAY_ENV.items():
        os.environ.setdefault(key, value)
    import ray

    temp = tempfile.mkdtemp(prefix="bsearch-ray-", dir="/tmp")  # short: Ray's socket paths must fit
    ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, _temp_dir=temp, _node_ip_address="127.0.0.1",
             log_to_driver=False, object_store_memory=100 * 1024 * 1024, logging_level="ERROR",
             configure_logging=False)
    return temp


def stop_ray(temp: str | None) -> None:
    import ray

    ray.shutdown()
    if temp:
        shutil.rmtree(temp, ignore_errors=True)


@dataclass
class Trace:
    """One replayed search: its points in the order Tune handed them over."""

    sampler: str
    scheduler: str       # none | moasha | trajectory
    seed: int
    points: list[dict[str, Any]] = field(default_factory=list)  # {"trial", "params", "result"}
    trials: int = 0
    wall_s: float = 0.0
    decisions: dict[str, list] = field(default_factory=dict)  # the trajectory scheduler's, per trial

    @property
    def name(self) -> str:
        return searcher_name(self.sampler, self.scheduler)

    @property
    def moasha(self) -> bool:
        return self.scheduler == "moasha"


def searcher_name(sampler: str, scheduler: str) -> str:
    """tpe, tpe+moasha, trajectory+stop (the trajectory scheduler), ..."""
    return sampler if scheduler == "none" else f"{sampler}+{SCHEDULER_SUFFIX.get(scheduler, scheduler)}"


SCHEDULER_SUFFIX = {"trajectory": "stop"}


def _recorder_and_stopper(budget: int):
    from ray.tune import Callback
    from ray.tune.stopper import Stopper

    class Recorder(Callback):
        """Every result in the order Tune handed it to the scheduler and the searcher."""

        def __init__(self):
            self.points: list[dict[str, Any]] = []
            self.trials: list[str] = []

        def on_trial_start(self, iteration, trials, trial, **info):
            if trial.trial_id not in self.trials:  # a paused trial that continues starts again: one trial
                self.trials.append(trial.trial_id)

        def on_trial_result(self, iteration, trials, trial, result, **info):
            self.points.append({"trial": trial.trial_id, "params": dict(trial.config),
                                "result": {k: v for k, v in result.items() if not isinstance(v, dict)}})

    class BudgetStopper(Stopper):
        """Ends the whole run once `budget` evaluation points (trial-epochs) have been reported."""

        def __init__(self):
            self.seen: set[tuple[str, Any]] = set()  # Tune passes a trial's last result again when it ends

        def __call__(self, trial_id, result):
            if not result.get(FAILED_KEY):
                self.seen.add((trial_id, result.get(POINTS_KEY)))
            return False

        def stop_all(self):
            return len(self.seen) >= budget

    return Recorder(), BudgetStopper()


def table_epochs(runs: Sequence[Mapping[str, Any]]) -> Any:
    """Where the table's runs are evaluated (`sweeps.search.trajectory_model.Epochs`): every epoch, up to each run's."""
    from sweeps.search.trajectory_space import Epochs

    values = grid_values(runs)
    longest = float(max(values.get("epochs", [len(r["points"]) for r in runs])))
    return Epochs(fixed=longest, every=1.0, longest=longest, param="epochs" if "epochs" in values else None)


def replay(runs: Sequence[Mapping[str, Any]], setup: Setup, sampler: str, scheduler: str, seed: int, budget: int,
           workdir: Path) -> Trace:
    """Run one search (sampler; scheduler none, moasha or trajectory; seed) over the grid's table on the real
    Tune until it has consumed `budget` trial-epochs (or the searcher is done); see the module docstring."""
    import optuna
    import ray.tune

    from sweeps.search.scheduling.moasha import MOASHAScheduler, MOASHAStateCallback
    from sweeps.search.searcher import OptunaSearcher
    from sweeps.search.tuning import SearchedValue, Violations

    name = f"{searcher_name(sampler, scheduler)}-s{seed}"
    folder = workdir / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    table = build_table(runs, [o.name for o in setup.objectives])
    space = {n: optuna.distributions.CategoricalDistribution(v) for n, v in grid_values(runs).items()}
    common = dict(space=space, objectives=setup.objectives, constraints=setup.constraints,
                  references=setup.references, sampler=sampler, seed=seed, study_name=name,
                  storage=f"sqlite:///{folder / 'optuna.db'}")
    if sampler == "trajectory":
        from sweeps.search.trajectory_searcher import TrajectorySearcher

        searcher = TrajectorySearcher(**common, hv_reference=setup.reference, epochs=table_epochs(runs))
        searcher.max_live = 1  # one trial at a time, a paused one not counted (Tune's limiter would count it)
    else:
        searcher = OptunaSearcher(**common)
    sched, callbacks = None, []
    if scheduler == "moasha":
        max_t = max(grid_values(runs).get("epochs", [len(r["points"]) for r in runs]))
        sched = MOASHAScheduler(
            objectives=[(SearchedValue(o), o.mode) for o in setup.objectives], time_attr="epoch",
            grace_period=setup.grace, reduction_factor=setup.reduction_factor, max_t=max_t,
            constraints=Violations(setup.constraints, setup.references) if setup.constraints else None)
        callbacks = [MOASHAStateCallback(sched)]
    elif scheduler == "trajectory":
        from sweeps.search.scheduling.trajectory import TrajectoryScheduler

        if sampler != "trajectory":
            raise ValueError("the trajectory scheduler needs the trajectory sampler")
        sched = TrajectoryScheduler(searcher, stop_below=setup.stop_below, pause=setup.pause)
    recorder, stopper = _recorder_and_stopper(budget)
    trainable = make_lookup_trainable(table, checkpoints=scheduler == "trajectory" and setup.pause)
    limiter = 1
    if sampler == "trajectory":  # the searcher holds the limit; every CPU per trial keeps it one at a time
        trainable, limiter = ray.tune.with_resources(trainable, {"cpu": ray.cluster_resources().get("CPU", 1)}), None
    tuner = ray.tune.Tuner(
        trainable, param_space={},
        tune_config=ray.tune.TuneConfig(search_alg=searcher, scheduler=sched, num_samples=budget + 1,
                                        max_concurrent_trials=limiter, reuse_actors=True),
        run_config=ray.tune.RunConfig(name=name, storage_path=str(folder / "tune"), stop=stopper, verbose=0,
                                      callbacks=[recorder, *callbacks]))
    # the run's ResultGrid looks for result files that the disabled loggers never wrote; the results are the
    # recorder's, so its "Failed to fetch metrics" warning (one line per trial) says nothing here
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    t0 = time.perf_counter()
    tuner.fit()
    trace = Trace(sampler, scheduler, seed, points=recorder.points, trials=len(recorder.trials),
                  wall_s=time.perf_counter() - t0)
    if scheduler == "trajectory":
        trace.decisions = {k: list(v) for k, v in sched.decisions.items()}
    shutil.rmtree(folder, ignore_errors=True)
    return trace


# --------------------------------------------------------------------------------------------------
# curves


def hv_curve(trace: Trace, setup: Setup) -> list[tuple[int, float]]:
    """[(trial-epochs consumed, HV of the feasible points seen so far)], one entry per evaluation point."""
    curve, front, hv, consumed = [], [], 0.0, 0
    for item in trace.points:
        result = item["result"]
        if result.get(FAILED_KEY):
            continue
        consumed += 1
        vec = setup.vector(result)
        if vec is not None and all(x < r for x, r in zip(vec, setup.reference)) \
                and not any(all(a <= b for a, b in zip(f, vec)) for f in front):
            front = [f for f in front if not all(a <= b for a, b in zip(vec, f))] + [vec]
            hv = hypervolume(front, setup.reference)
        curve.append((consumed, hv))
    return curve


def hv_at(curve: Sequence[tuple[int, float]], trial_epochs: float) -> float:
    """The HV reached within `trial_epochs` (0 before the first point)."""
    best = 0.0
    for te, hv in curve:
        if te > trial_epochs + 1e-9:
            break
        best = hv
    return best


def epochs_to_reach(curve: Sequence[tuple[int, float]], target_hv: float) -> float:
    """Trial-epochs at which the curve first reaches `target_hv` (inf when it never does)."""
    return next((float(te) for te, hv in curve if hv >= target_hv * (1 - 1e-12)), math.inf)


def consumed(trace: Trace) -> int:
    return sum(1 for item in trace.points if not item["result"].get(FAILED_KEY))


def trials_within(trace: Trace, trial_epochs: float) -> int:
    """How many trials reported a point within the first `trial_epochs` trial-epochs."""
    seen, count = set(), 0
    for item in trace.points:
        if item["result"].get(FAILED_KEY):
            continue
        count += 1
        if count > trial_epochs + 1e-9:
            break
        seen.add(item["trial"])
    return len(seen)


def distinct_configs(trace: Trace) -> int:
    """How many different configurations the search ran (a sampler may propose one again)."""
    return len({freeze(item["params"]) for item in trace.points})
