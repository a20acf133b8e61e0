"""One search as a Ray Tune run: the trainable, the searcher, the scheduler, the recorder, and their restore.

    tuner = make_tuner(spec, plan, shared, recorder, resume=False)     # or Tuner.restore on resume
    tuner.fit()

* the trainable is `trainables.trial.run_trial` with the trial's resources; its constant config is the
  search's base train config plus what the driver shared (`sweeps.shared`);
* the searcher is `sweeps.searcher.OptunaSearcher` (sampler from `search.sampler`, warm start from
  `search.warm_start`), its study in the sweep's Optuna storage;
* with `search.scheduler: moasha`, `sweeps.scheduling.MOASHAScheduler` stops trials that fall behind on the
  Pareto ranking at rungs grace * reduction_factor**k epochs (up to the search's longest trial), the
  objectives and constraints on the same scale as everywhere (`sweeps.objectives`); its state is carried
  across `Tuner.restore` by `MOASHAStateCallback`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from sweeps.objectives import Objective
from sweeps.searcher import OptunaSearcher
from trainables.trial import SWEEP_KEY, run_trial, sweep_constants, trial_resources


def constraint_refs(spec: Any, target: Mapping[str, float]) -> dict[str, float]:
    """The reference values of relative constraints (the target model's epoch-0 metrics)."""
    return {c.metric: target[c.metric] for c in spec.constraints if c.relative_to == "target" and c.metric in target}


def concurrency(spec: Any, total: Mapping[str, float]) -> int:
    """Trials at once: the spec's max_concurrent, else as many as the cluster's CPUs/GPUs hold."""
    res = spec.resources
    fits = []
    if res.cpus:
        fits.append(int(total["CPU"] // (res.cpus * res.workers + (0.01 if res.workers > 1 or res.gpus else 0))))
    if res.gpus:
        fits.append(int(total["GPU"] // (res.gpus * res.workers)))
    n = max(1, min(fits) if fits else 1)
    return min(n, spec.budget.max_concurrent or n, spec.budget.num_trials)


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


def make_scheduler(spec: Any, plan: Any, refs: Mapping[str, float]) -> tuple[Any, list]:
    """(scheduler, callbacks) of the search: FIFO, or MO-ASHA with the callback that keeps its state."""
    if spec.search.scheduler != "moasha":
        return None, []
    from sweeps.scheduling.moasha import MOASHAScheduler, MOASHAStateCallback

    epochs = plan.space.params.get("epochs")
    max_t = max(epochs.bounds()) if epochs is not None else plan.base["train"]["epochs"]
    scheduler = MOASHAScheduler(
        objectives=[(SearchedValue(o), o.mode) for o in spec.objectives], time_attr="epoch",
        grace_period=spec.search.grace, reduction_factor=spec.search.reduction_factor, max_t=max_t,
        constraints=Violations(spec.constraints, refs) if spec.constraints else None)
    return scheduler, [MOASHAStateCallback(scheduler)]


def make_searcher(spec: Any, plan: Any, refs: Mapping[str, float], seeded: list[dict]) -> OptunaSearcher:
    return OptunaSearcher(space=plan.space.to_optuna(), objectives=spec.objectives, constraints=spec.constraints,
                          references=refs, sampler=spec.search.sampler, seed=spec.seed, study_name=plan.search_id,
                          storage=spec.optuna_storage(), seeded=seeded)


def make_tuner(spec: Any, plan: Any, shared: Any, recorder: Any, total: Mapping[str, float], resume: bool,
               seeded: list[dict] | None = None) -> Any:
    """The Tuner of one search (a restored one when `resume` and Tune's state exists)."""
    import ray.tune

    tune_root = spec.sweep_dir() / "tune"
    path = tune_root / plan.search_id
    resources = {**spec.resources.model_dump(), "max_failures": spec.budget.max_failures}
    trainable = ray.tune.with_resources(run_trial, trial_resources(resources))
    refs = constraint_refs(spec, shared.target_metrics)
    scheduler, callbacks = make_scheduler(spec, plan, refs)
    if resume and ray.tune.Tuner.can_restore(str(path)):
        return ray.tune.Tuner.restore(str(path), trainable, resume_unfinished=True, resume_errored=True)
    consts = sweep_constants(plan.base, search_id=plan.search_id, sweep_dir=str(spec.sweep_dir()),
                             reference=shared.reference_dir, inputs_cache=shared.inputs_dir, resources=resources,
                             objective_names=[o.name for o in spec.objectives])
    return ray.tune.Tuner(
        trainable,
        param_space={SWEEP_KEY: consts},
        tune_config=ray.tune.TuneConfig(search_alg=make_searcher(spec, plan, refs, seeded or []),
                                        scheduler=scheduler, num_samples=spec.budget.num_trials,
                                        max_concurrent_trials=concurrency(spec, total), reuse_actors=True,
                                        time_budget_s=spec.budget.time_budget_s,
                                        trial_name_creator=_trial_name, trial_dirname_creator=_trial_name),
        run_config=ray.tune.RunConfig(
            name=plan.search_id, storage_path=str(Path(tune_root)),
            failure_config=ray.tune.FailureConfig(max_failures=spec.budget.max_failures),
            callbacks=[recorder, *callbacks], verbose=0),
    )


def _trial_name(trial: Any) -> str:
    return f"trial_{trial.trial_id}"
