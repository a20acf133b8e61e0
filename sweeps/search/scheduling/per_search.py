"""One early-stopping scheduler per search when a sweep's searches share one Tune run (`sweeps.search.multiplex`).

Trials of different searches (another model, another BalDRO variant) are not comparable: a rung must rank a
trial only against trials of its own search, with its own target's constraint references and its own longest
schedule. `PerSearchScheduler` routes each trial's results to the scheduler of its search, found in the
trial's config (`config[SWEEP_KEY]["search_id"]`); a trial of a search without one (or without that key)
runs to its end, as under FIFO.

    scheduler = PerSearchScheduler({"m.dv": MOASHAScheduler(...), "m.none": MOASHAScheduler(...)})
    ray.tune.RunConfig(callbacks=[MOASHAStateCallback(scheduler)])    # its state rides Tune's checkpoints
"""

from __future__ import annotations

from typing import Any, Mapping

from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from trainables.trial import SWEEP_KEY


class PerSearchScheduler(FIFOScheduler):
    def __init__(self, schedulers: Mapping[str, Any]):
        super().__init__()
        self.schedulers = dict(schedulers)

    def _of(self, trial: Any) -> Any | None:
        sid = (getattr(trial, "config", None) or {}).get(SWEEP_KEY, {}).get("search_id")
        return self.schedulers.get(sid)

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        return True  # each scheduler has its objectives from its constructor

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        sub = self._of(trial)
        return TrialScheduler.CONTINUE if sub is None else sub.on_trial_result(tune_controller, trial, result)

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict) -> None:
        sub = self._of(trial)
        if sub is not None:
            sub.on_trial_complete(tune_controller, trial, result)

    def debug_string(self) -> str:
        return "; ".join(f"{sid}: {s.debug_string()}" for sid, s in self.schedulers.items())

    def get_state(self) -> dict[str, Any]:
        return {sid: s.get_state() for sid, s in self.schedulers.items()}

    def set_state(self, state: Mapping[str, Any]) -> None:
        for sid, sub_state in state.items():
            if sid in self.schedulers:
                self.schedulers[sid].set_state(sub_state)
