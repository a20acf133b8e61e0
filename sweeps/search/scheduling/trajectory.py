"""Stopping and continuing trials from their predicted standing (the `trajectory` scheduler).

    scheduler = TrajectoryScheduler(searcher, min_points=2, stop_below=0.1, pause=True)
    ray.tune.TuneConfig(scheduler=PerSearchScheduler({"m.dv": scheduler}), ...)

Rung-based early stopping (ASHA, MO-ASHA) keeps what ranks well *now*; unlearning runs bloom late (utility dips,
then recovers as the learning rate anneals), so it cuts the runs that would have won. This scheduler asks the
search's trajectory model (`sweeps.search.trajectory_model`, the one its `TrajectorySearcher` proposes from, which holds
every evaluation point of every trial) what the rest of a running trial is worth:

* after each evaluation point (from the `min_points`-th on, never at a trial's last point, and only once the
  model has seen `min_complete` runs (default 2) to their end: before that it cannot know how runs end) it draws the trial's
  remaining points from the posterior given everything observed, this trial's points so far included, and
  estimates the chance that any of them is feasible *and* adds hypervolume to the front (the other running
  trials counted at their predicted mean);
* below `stop_below` the trial is PAUSED (`pause: true`, freeze-thaw) or STOPPED; its points so far stay
  candidates for the front and for export either way;
* when a trial slot frees up, a paused trial whose expected improvement per remaining epoch (re-estimated with
  what the sweep has learnt since) beats the configuration waiting to start (the searcher's proposal score) is
  continued first, from its checkpoint (the sweep's trainable resumes from its own output folder: same trial id,
  same folder); when nothing is waiting, the most promising paused trial continues, and one whose chance is
  still below `stop_below` is stopped at its next point;
* trials of other searches are not its business (`sweeps.search.scheduling.per_search` routes them).

Its state is the searcher's (the model's observations and which trials are paused; a paused trial holds no
trial slot, `sweeps.search.multiplex`), saved and restored with it; the scheduler itself keeps only its decisions.
"""

from __future__ import annotations

from typing import Any

from ray.tune.experiment import Trial
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from sweeps.search.searcher import FAILED_KEY


class TrajectoryScheduler(FIFOScheduler):
    """See the module docstring."""

    _outlooks_at: Any = None   # (class defaults: a scheduler pickled before the cache existed restores without it)
    _outlooks: dict = {}

    def __init__(self, searcher: Any, min_points: int = 2, stop_below: float = 0.1, pause: bool = True,
                 min_complete: int = 2):
        super().__init__()
        self.searcher = searcher
        self.min_points = int(min_points)
        self.min_complete = int(min_complete)
        self.stop_below = float(stop_below)
        self.pause = bool(pause)
        self.decisions: dict[str, list[tuple[float, float, str]]] = {}  # trial -> [(epoch, chance, decision)]
        self._outlooks: dict[tuple, tuple[float, float]] = {}  # the model's answers at its current version
        self._outlooks_at: Any = None

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        return True

    @property
    def paused(self) -> set[str]:
        """The trials this scheduler paused: kept by the searcher, whose state rides Tune's checkpoints (and which
        frees their trial slots)."""
        return self.searcher.paused

    def _outlook(self, trial_id: str, unknown: tuple[float, float]) -> tuple[float, float]:
        """The model's (improvement per remaining epoch, chance to improve) of a trial; `unknown` while the
        model cannot predict yet."""
        model = self.searcher.model
        if not model.fit(refit_hyper=False) or not model.ready():
            return unknown
        running = self.searcher.running_params()
        # Tune asks choose_trial_to_run many times between two evaluation points; the answer is a function of the
        # model's version, the trial and the other running configurations, so it is computed once per change
        if self._outlooks_at != model.version:
            self._outlooks, self._outlooks_at = {}, model.version
        key = (trial_id, tuple(sorted((k, repr(sorted(p.items()))) for k, p in running.items() if k != trial_id)))
        if key not in self._outlooks:
            self._outlooks[key] = model.outlook(trial_id, running=running)
        return self._outlooks[key]

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        if result.get(FAILED_KEY):
            return TrialScheduler.CONTINUE
        tid = trial.trial_id
        self.searcher.on_point(tid, result)  # the model sees the point before deciding (idempotent)
        model = self.searcher.model
        points = model.obs.get(tid, [])
        params = self.searcher.params_of(tid)
        if len(points) < self.min_points or params is None or self._complete() < self.min_complete:
            return TrialScheduler.CONTINUE
        done = max(o.epoch for o in points)
        if done >= model.epochs.length(params) - 1e-9:
            return TrialScheduler.CONTINUE  # its last point: the trial ends by itself
        _, chance = self._outlook(tid, unknown=(float("inf"), 1.0))  # unknown: go on
        if chance >= self.stop_below:
            self.decisions.setdefault(tid, []).append((done, chance, "continue"))
            return TrialScheduler.CONTINUE
        if self.pause and tid not in self.paused and self._can_pause(trial):
            self.paused.add(tid)
            self.decisions.setdefault(tid, []).append((done, chance, "pause"))
            return TrialScheduler.PAUSE
        self.decisions.setdefault(tid, []).append((done, chance, "stop"))
        return TrialScheduler.STOP

    def _complete(self) -> int:
        """How many runs the model has seen to their last point (what it knows of how runs end)."""
        model = self.searcher.model
        return sum(1 for tid, pts in model.obs.items() if (p := self.searcher.params_of(tid)) is not None and pts
                   and max(o.epoch for o in pts) >= model.epochs.length(p) - 1e-9)

    @staticmethod
    def _can_pause(trial: Any) -> bool:
        return getattr(trial, "status", None) == Trial.RUNNING

    def choose_trial_to_run(self, tune_controller: Any) -> Any | None:
        trials = tune_controller.get_trials()
        pending = [t for t in trials if t.status == Trial.PENDING]
        paused = [t for t in trials if t.status == Trial.PAUSED and t.trial_id in self.paused]
        best, best_score = None, float("-inf")
        for t in paused:
            score, _ = self._outlook(t.trial_id, unknown=(0.0, 0.0))
            if score > best_score:
                best, best_score = t, score
        if pending:
            waiting = self.searcher.proposal_score(pending[0].trial_id)
            if best is not None and best_score > waiting:
                return self._resume(best)
            return pending[0]
        if best is not None and not self.searcher.can_propose():
            return self._resume(best)  # nothing new will come: the most promising paused trial goes on
        return None  # Tune asks the searcher for the next configuration first, then this again

    def _resume(self, trial: Any) -> Any:
        self.paused.discard(trial.trial_id)
        self.decisions.setdefault(trial.trial_id, []).append((-1.0, -1.0, "resume"))
        return trial

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict) -> None:
        self.paused.discard(trial.trial_id)

    def on_trial_remove(self, tune_controller: Any, trial: Any) -> None:
        self.paused.discard(trial.trial_id)

    def debug_string(self) -> str:
        return f"TrajectoryScheduler: {len(self.paused)} paused"

    def get_state(self) -> dict[str, Any]:
        return {"decisions": dict(self.decisions)}

    def set_state(self, state: dict[str, Any]) -> None:
        self.decisions = dict(state.get("decisions", {}))
