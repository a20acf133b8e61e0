"""The `trajectory` searcher: proposes configurations from a model of every evaluation point of every trial.

    searcher = TrajectorySearcher(space=..., objectives=..., constraints=..., references={"model_utility": 0.83},
                                  sampler="trajectory", seed=0, study_name="m.dv", storage="sqlite:///...",
                                  hv_reference=[11.0, -0.744, 1.0], epochs=Epochs(fixed=15, every=3, longest=15))
    ray.tune.TuneConfig(search_alg=SearchMux({"m.dv": (searcher, consts)}, ...))

An `OptunaSearcher` (same study, same warm start, same best-point `tell` per trial, so `status`, reports and
resumes read it as any other search) whose proposals come from `sweeps.search.trajectory_model.TrajectoryModel`:

* every result of every trial (finished, stopped, paused or failed after some points) is one observation of
  (configuration, evaluation point) -> objectives and constraint metrics;
* the warm-start configurations run first (Optuna's queue, as every search's); then the first `n_init`
  configurations are random ones drawn by the model among its candidates (the longest runs first: see
  `sweeps.search.trajectory_model`), never one already run;
* afterwards each proposal is the configuration with the largest expected hypervolume improvement of the
  feasible front per epoch of compute, over its whole trajectory, with the running trials counted at their
  predicted mean; it is enqueued in the study and asked, so the study holds it like any other trial;
* in a discrete space nothing is proposed twice, and the search is FINISHED when every configuration was run;
* the model's random draws are seeded from the sweep's seed and the number of trials asked so far, so a
  resumed search (its observations restored with the searcher's state) proposes what it would have proposed.

The stopping rule that reads the same model is `sweeps.search.scheduling.trajectory.TrajectoryScheduler`.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import optuna

from sweeps.spec.objectives import Constraint, Objective
from sweeps.search.searcher import FAILED_KEY, OptunaSearcher
from sweeps.search.trajectory_model import TrajectoryModel
from sweeps.search.trajectory_space import Epochs

N_INIT = 1  # random configurations before the model proposes (each brings a whole trajectory; measured in
            # docs/search.md: 1 and 2 tie within noise, 3 is worse)


class TrajectorySearcher(OptunaSearcher):
    """See the module docstring."""

    def __init__(self, space: Mapping[str, Any], objectives: Sequence[Objective], constraints: Sequence[Constraint],
                 references: Mapping[str, float], sampler: str, seed: int, study_name: str, storage: str,
                 hv_reference: Sequence[float], epochs: Epochs, seeded: Sequence[Mapping[str, Any]] = (),
                 n_init: int = N_INIT):
        super().__init__(space=space, objectives=objectives, constraints=constraints, references=references,
                         sampler="random", seed=seed, study_name=study_name, storage=storage, seeded=seeded)
        self.n_init = int(n_init)
        self.model = TrajectoryModel(space, objectives, constraints, references, hv_reference, epochs, seed=seed)
        self._params: dict[str, dict[str, Any]] = {}  # Tune trial id -> its configuration
        self._scores: dict[str, float] = {}           # Tune trial id -> the proposal's score (improvement/epoch)
        self.live: set[str] = set()
        self.max_trials: int | None = None  # the search's budget (set by the sweep); None = Tune's num_samples
        self.max_live: int | None = None    # trials running at once when no mux limits them (the replay); None: no limit
        self.paused: set[str] = set()       # trials the trajectory scheduler paused (they hold no slot)
        self._finished = False

    # ---- proposals ---------------------------------------------------------------------------------

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if self.max_live is not None and len(self.live - self.paused) >= self.max_live:
            return None  # Tune asks again when a slot frees (a trial ends or is paused)
        waiting = self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,))
        if waiting:
            config = super().suggest(trial_id)  # the warm start
        else:
            config = self._propose(trial_id, initial=len(self._params) < self.n_init or not self.model.fit())
        if isinstance(config, dict):
            self._params[trial_id] = dict(config)
            self.live.add(trial_id)
        elif config == OptunaSearcher.FINISHED:
            self._finished = True
        return config

    def _propose(self, trial_id: str, initial: bool = False) -> dict[str, Any] | str | None:
        """The model's proposal (`initial`: a random draw among its candidates), enqueued in the study and asked;
        seeded from the sweep's seed and the trials asked so far, so a resumed search draws the same."""
        asked = len(self.study.get_trials(deepcopy=False))
        rng = np.random.default_rng([self.seed, asked])
        running = {t: self._params[t] for t in self.live if t in self._params}
        done = [p for t, p in self._params.items() if t not in self.live]
        if initial:
            params, score = self.model.initial(rng, exclude=[*done, *running.values()]), float("inf")
        else:
            params, score = self.model.propose(running=running, exclude=done, rng=rng)
        self._scores[trial_id] = score
        if params is None:
            self._finished = True
            return OptunaSearcher.FINISHED
        self.study.enqueue_trial(params, skip_if_exists=False)
        trial = self._ask()  # the enqueued configuration (the study records it as any other trial)
        trial.set_user_attr("proposed_by", "random" if initial else "trajectory")
        self._bind(trial_id, trial)
        return dict(trial.params)

    # ---- observations ------------------------------------------------------------------------------

    def _observe(self, trial_id: str, result: Mapping[str, Any] | None) -> None:
        if not result or result.get(FAILED_KEY) or trial_id not in self._params:
            return
        epoch = result.get("epoch")
        if isinstance(epoch, (int, float)):
            self.model.observe(trial_id, self._params[trial_id], float(epoch), result)

    def can_propose(self) -> bool:
        """Whether this search will still start a new configuration (not finished, budget left)."""
        return not self._finished and (self.max_trials is None or len(self._params) < self.max_trials)

    def on_point(self, trial_id: str, result: Mapping[str, Any]) -> None:
        """Give the model one evaluation point now (the scheduler calls it before deciding; idempotent)."""
        self._observe(trial_id, result)

    def params_of(self, trial_id: str) -> dict[str, Any] | None:
        return self._params.get(trial_id)

    def proposal_score(self, trial_id: str) -> float:
        """The expected improvement per epoch the trial was proposed with (random ones: +inf, they run)."""
        return self._scores.get(trial_id, float("inf"))

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        super().on_trial_result(trial_id, result)
        self._observe(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        self._observe(trial_id, result)
        self.live.discard(trial_id)
        self.paused.discard(trial_id)
        super().on_trial_complete(trial_id, result=result, error=error)

    def running_params(self) -> dict[str, dict[str, Any]]:
        """The configurations of the trials running now (paused ones excluded)."""
        return {t: self._params[t] for t in self.live - self.paused if t in self._params}

    def reconcile(self, known: Mapping[str, tuple[str, dict | None]]) -> list[str]:
        """As `OptunaSearcher.reconcile`; a lost trial is no longer running for the model (its points stay)."""
        lost = super().reconcile(known)
        for tid in list(self.live):
            if tid not in known or known[tid][0] in ("TERMINATED", "ERROR"):
                self.live.discard(tid)
        return lost

    def observations(self) -> int:
        """How many evaluation points the model holds (every trial's, finished or not)."""
        return self.model.n_obs
