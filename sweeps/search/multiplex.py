"""Every search of a sweep in one Ray Tune run: one searcher per search, sharing the cluster's trial slots fairly.

    mux = SearchMux({"tofu-mini-target.dv": (searcher_dv, consts_dv), "tofu-mini-target.none": (searcher_np, consts_np)},
                    num_trials=6, concurrent=True, max_concurrent=4)
    ray.tune.TuneConfig(search_alg=mux, num_samples=-1)     # the mux ends the run and holds the concurrency
    ray.tune.RunConfig(callbacks=[SearchMuxSync(mux), ...])  # exact resume (see below)

A sweep runs one search per (model, BalDRO variant), each with its own Optuna study (`sweeps.search.searcher`). They run
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
the sampled values, so the trainable, the recorder and the scheduler (`sweeps.search.scheduling.per_search`) know which
search a trial belongs to. The mux's state (which trial belongs to which search, the counts, each searcher's
state) is saved with Tune's experiment state, so `Tuner.restore` continues every search where it was.

Exact resume: Tune's trial list and the searchers' state are saved about every second and uploaded file by
file, so after a killed driver they can come from different moments, and the studies can hold trials asked
after the last snapshot. `SearchMuxSync` (a Tune callback next to the mux) hands the mux the trials Tune
restored before the first trial is asked after a restore; `reconcile` then rebuilds from them which trial
belongs to which search and which are live, lets each searcher close FAIL the trials Tune does not know
(`OptunaSearcher.reconcile`: `lost`, replaced once) and recounts each search's `started` from its study
(`OptunaSearcher.counted`: the trials given to Tune, not lost), so each search runs exactly `num_trials` trials
besides the lost ones. The mux also holds the sweep's trial concurrency itself (`max_concurrent`): Tune's
`ConcurrencyLimiter` would keep a lost trial's slot for ever. Tune's `num_samples` is unlimited (-1): the mux
says FINISHED when every search has proposed its budget, so a replacement is never refused by Tune's count.
"""

from __future__ import annotations

import logging
import pickle
from typing import Any, Mapping

from ray.tune import Callback
from ray.tune.search import Searcher

from trainables.trial import SWEEP_KEY

log = logging.getLogger(__name__)


class SearchMux(Searcher):
    """Routes Tune's suggest / result / complete calls to one searcher per search (see the module docstring)."""

    def __init__(self, searches: Mapping[str, tuple[Searcher, Mapping[str, Any]]], num_trials: int,
                 concurrent: bool = True, max_concurrent: int | None = None):
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
        self.max_concurrent = max_concurrent            # trials live at once, all searches (None: Tune decides)
        self.lost: dict[str, list[str]] = {sid: [] for sid in self.order}  # trials closed lost at resumes
        self._restored = False                          # restored, not yet reconciled with Tune's trials

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

    def occupied(self) -> int:
        """Trials holding a slot: live ones, less those a scheduler paused (freeze-thaw frees their slot)."""
        return sum(len(live - getattr(self.searchers[sid], "paused", set())) for sid, live in self.live.items())

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        limit = getattr(self, "max_concurrent", None)
        if limit and self.occupied() >= limit:
            return None  # every slot is taken: Tune asks again later
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

    # ---- resume: agree with the trials Tune restored ------------------------------------------------

    def reconcile(self, trials: Any) -> dict[str, list[str]]:
        """After a restore: `trials` are Tune's restored trials (objects with trial_id, status, config,
        last_result). Rebuilds owner / live / started from them and the studies (see the module docstring);
        returns {search id: [lost trial ids]} for this restore."""
        known: dict[str, dict[str, tuple[str, dict | None]]] = {sid: {} for sid in self.order}
        for t in trials:
            sid = ((t.config or {}).get(SWEEP_KEY) or {}).get("search_id") or self.owner.get(t.trial_id)
            if sid in known:
                known[sid][t.trial_id] = (str(t.status), getattr(t, "last_result", None) or None)
        lost_now: dict[str, list[str]] = {}
        self.__dict__.setdefault("lost", {})
        for sid in self.order:
            searcher = self.searchers[sid]
            mine = known[sid]
            self.owner = {tid: s for tid, s in self.owner.items() if s != sid or tid in mine}
            self.owner.update({tid: sid for tid in mine})
            self.live[sid] = {tid for tid, (status, _) in mine.items() if status not in ("TERMINATED", "ERROR")}
            if hasattr(searcher, "reconcile"):
                lost = searcher.reconcile(mine)
                counted = searcher.counted() if hasattr(searcher, "counted") else None
                if counted is not None:
                    self.started[sid] = counted
                if lost:
                    lost_now[sid] = lost
                    self.lost.setdefault(sid, []).extend(lost)
                    log.warning("search %s: %d trial(s) lost when the driver stopped (%s), closed FAIL in the "
                                "study and replaced", sid, len(lost), ", ".join(lost))
            if self.started[sid] < self.num_trials:
                self.finished.discard(sid)
        self._restored = False
        return lost_now

    # ---- state (Tune's experiment checkpoints) ------------------------------------------------------

    def _state(self) -> dict[str, Any]:
        return {"owner": self.owner, "started": self.started, "live": self.live, "finished": self.finished,
                "lost": getattr(self, "lost", {}),
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
        self._restored = True  # SearchMuxSync reconciles with Tune's trials before the next suggest


class SearchMuxSync(Callback):
    """Hands `mux` the trials Tune restored, once after each restore and before anything is asked (Tune calls
    `on_step_begin` before it asks its searcher for trials). Pass the mux given to TuneConfig:

        ray.tune.RunConfig(callbacks=[SearchMuxSync(mux)])
    """

    def __init__(self, mux: SearchMux):
        self.mux = mux

    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        if getattr(self.mux, "_restored", False):
            self.mux.reconcile(trials)
