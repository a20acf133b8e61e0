"""A sweep as one Ray Tune run: the trainable, every search's searcher and scheduler, the recorder, their restore.

    tuner = make_tuner(spec, [(plan, shared, seeded), ...], recorder, cluster_resources(), resume=False)
    tuner.fit()                                               # or Tuner.restore of <sweep>/tune/sweep on resume

* the trainable is `trainables.trial.run_trial` with the trial's resources; each trial's config carries its
  search's constants (the search's base train config plus what the driver shared, `sweeps.operations.shared`);
* each search has its `sweeps.search.searcher.OptunaSearcher` (sampler from `search.sampler`, warm start from
  `search.warm_start`), its study in the sweep's Optuna storage; `sweeps.search.multiplex.SearchMux` shares the
  trial slots among them (`search.concurrent`) and holds the sweep's concurrency; on `Tuner.restore` its
  `SearchMuxSync` callback reconciles every search with the trials Tune restored (exact resume: no
  configuration asked again, each search's budget held, lost trials closed FAIL and replaced once);
* with `search.scheduler: moasha`, each search has a `sweeps.search.scheduling.MOASHAScheduler` (behind
  `PerSearchScheduler`) that stops trials falling behind on the Pareto ranking of their own search at rungs
  grace * reduction_factor**k epochs (up to the search's longest trial), the objectives and constraints on the
  same scale as everywhere (`sweeps.spec.objectives`); their state is carried across `Tuner.restore` by
  `MOASHAStateCallback`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from sweeps.spec.objectives import Objective
from sweeps.search.searcher import OptunaSearcher
from trainables.trial import run_trial, sweep_constants, trial_resources
from unlearning.errors import ConfigError

TUNE_NAME = "sweep"  # <sweep>/tune/sweep: the one Tune experiment of every search
_USER_PENDING = "TUNE_MAX_PENDING_TRIALS_PG" in os.environ  # set by the user: left alone


def constraint_refs(spec: Any, target: Mapping[str, float]) -> dict[str, float]:
    """The reference values of relative constraints (the target model's epoch-0 metrics)."""
    return {c.metric: target[c.metric] for c in spec.constraints if c.relative_to == "target" and c.metric in target}


def concurrency(spec: Any, total: Mapping[str, float], searches: int = 1) -> int:
    """Trials at once: the spec's max_concurrent, else as many as the cluster's CPUs/GPUs hold (never more than
    the sweep's trials, `searches` x num_trials)."""
    res = spec.resources
    fits = []
    if res.cpus:
        fits.append(int(total["CPU"] // (res.cpus * res.workers + (0.01 if res.workers > 1 or res.gpus else 0))))
    if res.gpus:
        fits.append(int(total["GPU"] // (res.gpus * res.workers)))
    n = max(1, min(fits) if fits else 1)
    return min(n, spec.budget.max_concurrent or n, spec.budget.num_trials * searches)


class SearchedValue:
    """A picklable `result -> searched value` of one objective (the scheduler's view of it)."""

    def __init__(self, objective: Objective):
        self.objective = objective
        self.name = objective.name

    def __call__(self, result: Mapping[str, Any]) -> float | None:
        return self.objective.searched(result)


class Violations:
    """A picklable `result -> [violation, ...]` of the spec's constraints (<= 0 satisfied)."""

    def __init__(self, constraints: list, refs: Mapping[str, float]):
        self.constraints, self.refs = list(constraints), dict(refs)

    def __call__(self, result: Mapping[str, Any]) -> list[float]:
        return [c.violation(result, self.refs) for c in self.constraints]


def make_scheduler(spec: Any, plan: Any, refs: Mapping[str, float], searcher: Any = None) -> Any | None:
    """The early-stopping scheduler of one search: None (every trial runs its schedule), the trajectory
    scheduler (reading `searcher`'s model) or MO-ASHA."""
    if spec.search.scheduler == "trajectory":
        from sweeps.search.scheduling.trajectory import TrajectoryScheduler

        return TrajectoryScheduler(searcher, stop_below=spec.search.stop_below, pause=spec.search.pause)
    if spec.search.scheduler != "moasha":
        return None
    from sweeps.search.scheduling.moasha import MOASHAScheduler

    epochs = plan.space.params.get("epochs")
    max_t = max(epochs.bounds()) if epochs is not None else plan.base["train"]["epochs"]
    return MOASHAScheduler(
        objectives=[(SearchedValue(o), o.mode) for o in spec.objectives], time_attr="epoch",
        grace_period=spec.search.grace, reduction_factor=spec.search.reduction_factor, max_t=max_t,
        constraints=Violations(spec.constraints, refs) if spec.constraints else None)


def plan_epochs(plan: Any) -> Any:
    """Where a trial of this search is evaluated (`sweeps.search.trajectory_model.Epochs`): the searched or fixed
    epoch count, eval.every, the longest run."""
    from sweeps.search.trajectory_space import Epochs
    from unlearning.train.fields import resolve

    fixed = float(plan.base["train"]["epochs"])
    name = next((n for n in plan.space.params if resolve(n) == ("train", "epochs")), None)
    longest = max(float(b) for b in plan.space.params[name].bounds()) if name else fixed
    return Epochs(fixed=fixed, every=float(plan.base["eval"].get("every") or 1.0), longest=longest, param=name)


def make_searcher(spec: Any, plan: Any, refs: Mapping[str, float], seeded: list[dict],
                  target: Mapping[str, float] | None = None) -> OptunaSearcher:
    if spec.search.sampler == "trajectory":
        from sweeps.spec.objectives import hv_reference
        from sweeps.search.trajectory_searcher import TrajectorySearcher

        return TrajectorySearcher(
            space=plan.space.to_optuna(), objectives=spec.objectives, constraints=spec.constraints, references=refs,
            sampler="trajectory", seed=spec.seed, study_name=plan.search_id, storage=spec.optuna_storage(),
            seeded=seeded, hv_reference=hv_reference(spec.objectives, spec.constraints, target or {}),
            epochs=plan_epochs(plan))
    return OptunaSearcher(space=plan.space.to_optuna(), objectives=spec.objectives, constraints=spec.constraints,
                          references=refs, sampler=spec.search.sampler, seed=spec.seed, study_name=plan.search_id,
                          storage=spec.optuna_storage(), seeded=seeded)


def tune_path(spec: Any) -> Path:
    """Where the sweep's one Tune experiment keeps its state."""
    return spec.sweep_dir() / "tune" / TUNE_NAME


def make_tuner(spec: Any, searches: Sequence[tuple[Any, Any, list[dict]]], recorder: Any,
               total: Mapping[str, float], resume: bool) -> Any:
    """The sweep's Tuner over every search, `searches` = [(plan, shared, seeded configs)] (a restored one when
    `resume` and Tune's state exists). The searchers, the schedulers and the recorder are rebuilt from the spec
    either way; a restore then loads their saved state."""
    import ray.tune

    from sweeps.search.multiplex import SearchMux, SearchMuxSync

    resources = {**spec.resources.model_dump(), "max_failures": spec.budget.max_failures}
    trainable = ray.tune.with_resources(run_trial, trial_resources(resources))
    muxed, schedulers = {}, {}
    for plan, shared, seeded in searches:
        refs = constraint_refs(spec, shared.target_metrics)
        consts = sweep_constants(plan.base, search_id=plan.search_id, sweep_dir=str(spec.sweep_dir()),
                                 reference=shared.reference_dir, inputs_cache=shared.inputs_dir, resources=resources,
                                 objective_names=[o.name for o in spec.objectives])
        searcher = make_searcher(spec, plan, refs, seeded, target=shared.target_metrics)
        if hasattr(searcher, "max_trials"):
            searcher.max_trials = spec.budget.num_trials
        muxed[plan.search_id] = (searcher, consts)
        scheduler = make_scheduler(spec, plan, refs, searcher)
        if scheduler is not None:
            schedulers[plan.search_id] = scheduler
    at_once = concurrency(spec, total, searches=len(muxed))
    mux = SearchMux(muxed, num_trials=spec.budget.num_trials, concurrent=spec.search.concurrent,
                    max_concurrent=at_once)
    if not _USER_PENDING:  # without a ConcurrencyLimiter Tune keeps 1 pending trial: let it queue a slot's worth
        os.environ["TUNE_MAX_PENDING_TRIALS_PG"] = str(at_once)
    # the mux learns which trials Tune restored before it proposes anything (exact resume, `sweeps.search.multiplex`)
    callbacks: list[Any] = [SearchMuxSync(mux), recorder]
    scheduler = None
    if schedulers:
        from sweeps.search.scheduling.moasha import MOASHAStateCallback
        from sweeps.search.scheduling.per_search import PerSearchScheduler

        scheduler = PerSearchScheduler(schedulers)
        callbacks.append(MOASHAStateCallback(scheduler))
    path = tune_path(spec)
    if resume and ray.tune.Tuner.can_restore(str(path)):
        try:
            return ray.tune.Tuner.restore(str(path), trainable, resume_unfinished=True, resume_errored=True)
        except ModuleNotFoundError as exc:  # Tune's state pickles the searchers and schedulers by module path
            if not (exc.name or "").startswith("sweeps."):
                raise
            raise ConfigError(str(spec.sweep_dir()), field="tune", value=exc.name,
                              fix="this sweep was started by an earlier unlearn-sweep, before sweeps/ was grouped "
                                  "by role; this version cannot resume it: run the spec again under a new name "
                                  "(--name)") from None
    return ray.tune.Tuner(
        trainable,
        param_space={},  # every trial's config comes from its search's searcher, constants included
        # num_samples -1: the mux says FINISHED once every search proposed its budget (a lost trial's
        # replacement must not be refused by Tune's count); the mux holds the concurrency (`max_concurrent`)
        tune_config=ray.tune.TuneConfig(search_alg=mux, scheduler=scheduler, num_samples=-1,
                                        reuse_actors=True, time_budget_s=spec.budget.time_budget_s,
                                        trial_name_creator=_trial_name, trial_dirname_creator=_trial_name),
        run_config=ray.tune.RunConfig(
            name=TUNE_NAME, storage_path=str(path.parent),
            failure_config=ray.tune.FailureConfig(max_failures=spec.budget.max_failures),
            callbacks=callbacks, verbose=0),
    )


def _trial_name(trial: Any) -> str:
    return f"trial_{trial.trial_id}"
