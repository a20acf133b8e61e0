"""Every search of a sweep in one Ray Tune run: one searcher per search, sharing the cluster's trial slots fairly.

    mux = SearchMux({"tofu-mini-target.dv": (searcher_dv, consts_dv), "tofu-mini-target.none": (searcher_np, consts_np)},
                    num_trials=6, concurrent=True)
    ray.tune.TuneConfig(search_alg=mux, num_samples=mux.total, max_concurrent_trials=4)

A sweep runs one search per (model, BalDRO variant), each with its own Optuna study (`sweeps.searcher`). They run
in ONE Tune experiment (`<sweep>/tune/sweep`): when Tune has a free trial slot it asks the mux, which asks the
search that most needs it, so no slot idles while any search still has trials to run:

* `concurrent: true` (the spec's `search.concurrent`, the default): the search with the fewest trials running now
  (ties: fewest started so far, then the spec's order). With c slots and n searches each search holds about
  c / n slots, and each study has fewer unfinished trials when it proposes the next one than if it had the
  whole cluster to itself;
* `concurrent: false`: the searches in the spec's order; the next one starts when the one before has proposed
  all its trials (its last trials still run beside the next search's first ones, so slots never idle at a
  search's tail).

Each trial's config carries its search's constants (`trainables.trial.SWEEP_KEY`, with the search id) next to
the sampled values, so the trainable, the recorder and the scheduler (`sweeps.scheduling.per_search`) know which
search a trial belongs to. The mux's state (which trial belongs to which search, the counts, each searcher's
state) is saved with Tune's experiment state, so `Tuner.restore` continues every search where it was.
"""

from __future__ import annotations

import pickle
from typing import Any, Mapping

from ray.tune.search import Searcher

from trainables.trial import SWEEP_KEY


class SearchMux(Searcher):
    """Routes Tune's suggest / result / complete calls to one searcher per search (see the module docstring)."""

    def __init__(self, searches: Mapping[str, tuple[Searcher, Mapping[str, Any]]], num_trials: int,
                 concurrent: bool = True):
        super().__init__()
        if not searches:
            raise ValueError("SearchMux needs at least one search")
        self.order = list(searches)
        self.searchers = {sid: s for sid, (s, _) in searches.items()}
        self.consts = {sid: dict(c) for sid, (_, c) in searches.items()}
        self.num_trials = int(num_trials)
        self.concurrent = bool(concurrent)
        self.owner: dict[str, str] = {}                 # Tune trial id -> search id
        self.started = {sid: 0 for sid in self.order}  # trials proposed per search
        self.live: dict[str, set[str]] = {sid: set() for sid in self.order}
        self.finished: set[str] = set()                # searches that will propose nothing more

    @property
    def total(self) -> int:
        """Tune's num_samples: every search's budget."""
        return self.num_trials * len(self.order)

    def set_search_properties(self, metric: Any, mode: Any, config: dict, **spec: Any) -> bool:
        return True  # each searcher got its space and objectives from its constructor

    def _open(self) -> list[str]:
        return [sid for sid in self.order if sid not in self.finished and self.started[sid] < self.num_trials]

    def _candidates(self) -> list[str]:
        open_ = self._open()
        if not self.concurrent:
            return open_[:1]
        return sorted(open_, key=lambda sid: (len(self.live[sid]), self.started[sid], self.order.index(sid)))

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        while True:
            candidates = self._candidates()
            if not candidates:
                return Searcher.FINISHED
            for sid in candidates:
                config = self.searchers[sid].suggest(trial_id)
                if config == Searcher.FINISHED:
                    self.finished.add(sid)
                    break  # the order may have changed: ask again
                if config is None:
                    continue  # this search waits (nothing to propose now); try the next one
                self.owner[trial_id] = sid
                self.started[sid] += 1
                self.live[sid].add(trial_id)
                return {SWEEP_KEY: self.consts[sid], **config}
            else:
                return None  # every open search is waiting

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        sid = self.owner.get(trial_id)
        if sid is not None:
            self.searchers[sid].on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        sid = self.owner.get(trial_id)
        if sid is None:
            return
        self.live[sid].discard(trial_id)
        self.searchers[sid].on_trial_complete(trial_id, result=result, error=error)

    # ---- state (Tune's experiment checkpoints) ------------------------------------------------------

    def _state(self) -> dict[str, Any]:
        return {"owner": self.owner, "started": self.started, "live": self.live, "finished": self.finished,
                "searchers": {sid: s.__getstate__() for sid, s in self.searchers.items()}}

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as fh:
            pickle.dump(self._state(), fh)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as fh:
            state = pickle.load(fh)
        # the searchers were rebuilt by the driver (same spec): restore their state in place
        subs = state.pop("searchers")
        self.__dict__.update(state)
        for sid, sub in subs.items():
            if sid in self.searchers:
                self.searchers[sid].__dict__.update(sub)
                self.searchers[sid].__dict__.setdefault("_points", {})
