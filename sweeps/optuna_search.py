"""Multi-objective Optuna search for Ray Tune, with constraints the sampler honours.

    searcher = make_searcher(spec, plan, constraint_refs={"model_utility": 0.61})
    ray.tune.TuneConfig(search_alg=searcher, ...)    # metric/mode live on the searcher only (MO)

`OptunaSearch` knows nothing of constraints, so `ConstrainedOptunaSearch` sets each completed trial's constraint
values (<= 0 means satisfied) on the Optuna trial with `Trial.set_constraint` (Optuna 5's API; the samplers read
them from the trial, no deprecated `constraints_func`) before `tell`, and marks a trial FAIL (not a crashed
`tell`) when it failed or reported non-finite objectives.
Optuna sees a trial's *last* reported epoch (the objectives its hyperparameters, epochs included, produce);
the Pareto selection afterwards looks at every epoch of every trial. The study lives in the sweep's Optuna
storage (SQLite beside the sweep, or an RDB URL on a cluster), one study per search.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import optuna
from ray.tune.search.optuna import OptunaSearch

FAILED_KEY = "trial_failed"


def constraint_values(constraints: Sequence[Any], result: Mapping[str, Any], refs: Mapping[str, float]) -> list[float]:
    """One value per constraint, <= 0 when satisfied (Optuna's convention); a missing metric violates."""
    values = []
    for c in constraints:
        x = result.get(c.metric)
        if not isinstance(x, (int, float)) or not math.isfinite(x):
            values.append(1.0)
            continue
        threshold = c.threshold(refs.get(c.metric))
        values.append(threshold - x if c.op in (">=", ">") else x - threshold)
    return values


class ConstrainedOptunaSearch(OptunaSearch):
    """OptunaSearch that records constraint values and failures before telling Optuna."""

    def __init__(self, *args: Any, constraints: Sequence[Any] = (), constraint_refs: Mapping[str, float] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._constraints = list(constraints)
        self._refs = dict(constraint_refs or {})

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id in self._completed_trials:
            return super().on_trial_complete(trial_id, result, error)
        ot_trial = self._ot_trials.get(trial_id)
        values = [result.get(m) for m in self.metric] if result else None
        finite = values is not None and all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)
        if ot_trial is not None and (error or not finite or (result or {}).get(FAILED_KEY)):
            try:
                self._ot_study.tell(ot_trial, None, state=optuna.trial.TrialState.FAIL)
            except Exception:  # noqa: BLE001 - a failed tell must never stop the sweep
                pass
            self._completed_trials.add(trial_id)
            return None
        if ot_trial is not None and self._constraints:
            for c, value in zip(self._constraints, constraint_values(self._constraints, result or {}, self._refs)):
                ot_trial.set_constraint(str(c), value)
        return super().on_trial_complete(trial_id, result, error)


def objective_key(objective: Any) -> str:
    """The name a trial reports the objective under (log-scaled objectives get a `log10_` twin)."""
    return f"log10_{objective.name}" if getattr(objective, "scale", "linear") == "log" else objective.name


def make_sampler(kind: str, seed: int) -> optuna.samplers.BaseSampler:
    """The Optuna sampler of `search.sampler`; constrained samplers read the trials' `set_constraint` values."""
    if kind == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=4)


def make_searcher(spec: Any, plan: Any, constraint_refs: Mapping[str, float]) -> ConstrainedOptunaSearch:
    objectives = list(spec.objectives)
    return ConstrainedOptunaSearch(
        space=plan.space.to_optuna(),
        metric=[objective_key(o) for o in objectives],
        mode=[o.mode for o in objectives],
        sampler=make_sampler(spec.search.sampler, spec.seed),
        study_name=plan.search_id,
        storage=optuna.storages.RDBStorage(spec.optuna_storage()),
        constraints=spec.constraints,
        constraint_refs=constraint_refs,
    )
