"""Multi-objective asynchronous successive halving (MO-ASHA) as a Ray Tune scheduler.

Ray Tune's ASHA and Optuna's pruners stop trials on one metric; an unlearning sweep has several objectives
(forget quality, model utility, gibberish rate) and constraints. This scheduler stops the trials that fall
behind on the sweep's *Pareto ranking* at the ASHA rungs (Schmucker et al. 2021, arXiv 2106.12639), so a
grid reaches (nearly) the same front for a fraction of the trial-epochs.

    objectives = [("log10_forget_quality", "max"), ("model_utility", "max")]
    scheduler = MOASHAScheduler(objectives, time_attr="epoch", grace_period=1, reduction_factor=3, max_t=9,
                                constraints=lambda r: [r.get("gibberish_rate", 1.0) - 0.2])
    tuner = ray.tune.Tuner(trainable, param_space=space,
                           tune_config=ray.tune.TuneConfig(scheduler=scheduler),
                           run_config=ray.tune.RunConfig(callbacks=[MOASHAStateCallback(scheduler)]))

Rungs. Milestones are `grace_period * reduction_factor**k` below `max_t`, in units of `time_attr` (the
reported epoch label; fractions such as 0.5 work). A result is judged at the highest milestone it has
reached (time >= milestone), once per trial and rung: the first result at or past a milestone is the one
recorded there (with evaluations every epoch and rungs at 1.5, a trial is judged on its epoch-2 result).
A trial whose evaluations jump over a rung is never recorded there (Ray's ASHA back-fills the skipped rung
with a later result; this one does not). A result at `time_attr >= max_t` stops the trial (Ray's
`stop_last_trials=True`). One bracket (Ray's `brackets=1`, MO-ASHA's setting).

Promotion rule (Ray's ASHA rule, on ranks). Let the rung already hold `m` results of other trials and
let `k` of them rank strictly ahead of the new result (ranking below; equal keys are ties, not "ahead").
* m < min_samples_required (default 1, so only m == 0): CONTINUE (Ray: no cutoff on an empty rung).
* otherwise CONTINUE iff k <= floor((m - 1) / reduction_factor), else STOP.
Ray's ASHA continues iff the value is >= the (1 - 1/eta) percentile of the recorded values; ranks carry
no magnitudes to interpolate, so the percentile is taken as the next order statistic up (numpy's
"higher"), which is exactly the rule above. With one objective and no constraints the decisions equal
Ray's whenever Ray's percentile falls on a sample ((m - 1) / eta integral); otherwise ours is at most one
order statistic stricter. Note that Ray's ASHA has no "fewer than eta results lets it continue" floor: the
second trial at a rung already has to match the first. `min_samples_required=reduction_factor` adds that
floor (the trial continues, its result is recorded) for sweeps with few trials. Every judged result is
recorded, stopped trials included: they keep raising the bar, as in ASHA.

Ranking of the results at a rung (`rank_keys`; smaller key = better):
1. feasible results (every objective present and finite, every constraint value <= 0), by non-dominated
   rank (`moocore.pareto_rank`; duplicates share a rank), ties in a rank by crowding distance, larger first;
2. infeasible results (some constraint value > 0, or a non-finite constraint value: infinite violation),
   by total violation sum(max(0, c)), smaller first; they come after every feasible result even when they
   dominate it;
3. results with a missing, non-numeric or non-finite objective, all tied, last.
Results reporting `trial_failed: 1` (the trainable's own failure report) are ignored: that trial ends itself.

Tie-break: crowding distance (NSGA-II, Deb et al. 2002) rather than MO-ASHA's epsilon-net (Salinas et al.
2021, the default of Syne Tune's MOASHA). The MO-ASHA paper compares both; crowding fits this setting better:
* it is symmetric in the objectives. The epsilon-net is a greedy farthest-point order seeded with the best
  point of one chosen objective, so that objective wins every tie at the small rungs of a ~100-run sweep
  (with two mutually non-dominated results, the one better on the seed objective is always "ahead");
* it needs no distance across objectives with different units (log10 forget quality spans ~20, utility
  ~0.1): each objective's gap is normalised by its own range on the front, while the epsilon-net needs
  Euclidean distances in a jointly normalised space that one outlier squeezes;
* every objective's best point on a front has infinite crowding distance, so a new extreme (the best
  forget quality or utility seen at the rung) is never behind anything in its front, and the extremes
  span the front that the Pareto selection and its hypervolume see.
The cost: extremes tie (all infinite), so a rung can keep a little more than 1/eta (ties continue), and
interior points of a front lose to its extremes until the rung holds enough results. The crowding distance
here is order-independent: it is computed on the front's distinct vectors (duplicates share it), a point
takes infinity when it attains an objective's minimum or maximum on the front, an interior point adds
(next distinct value - previous distinct value) / range per objective, and a front of one or two distinct
vectors is all boundary.

Ray integration notes:
* State across `Tuner.restore`: Tune saves the searcher and the callbacks with the experiment, never the
  scheduler (the `tuner.pkl` copy is pickled when the Tuner is built, i.e. empty). Add
  `MOASHAStateCallback(scheduler)` to `RunConfig.callbacks`: Tune checkpoints its `get_state()` with the
  trial states and restores it into the unpickled scheduler on resume. `save()`/`restore()` (the rung
  state only) and pickling the scheduler (cloudpickle when `constraints` is a lambda) also round-trip it.
* With Ray's OptunaSearch as the searcher, a STOPped trial is told to Optuna as COMPLETE with the
  objectives of the result that stopped it (Ray's searcher API has no "pruned by the scheduler").
* `_supports_buffered_results = False`: Tune then forces `TUNE_RESULT_BUFFER_LENGTH=1` if it was set, so
  every result is judged before the trainable computes the next one (function trainables block in
  `ray.tune.report` until Tune asks for the next result).
* A STOP result still reaches the callbacks (flagged `done=True`), so the driver's recorder keeps every
  evaluated point of stopped trials for the Pareto selection. The scheduler never pauses trials;
  `reuse_actors` does not change its decisions (state is keyed by trial id). Tune's own stoppers end a
  trial without asking the scheduler; its last result is then recorded from `on_trial_complete`.
* Trials must report `time_attr` (results without it are not judged). Tune's strict metric check is not
  engaged (the scheduler's `metric` stays unset): results missing an objective rank last instead of
  raising.
"""

from __future__ import annotations

import logging
import math
import pickle
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import moocore
import numpy as np
from ray.tune import Callback
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

log = logging.getLogger(__name__)

Objective = tuple[str, str]  # (metric key, "max" | "min")
ConstraintFn = Callable[[Mapping[str, Any]], Sequence[float]]  # one value per constraint, <= 0 feasible
RankKey = tuple[int, float, float]  # (class, rank or violation, -crowding); smaller is better

FAILED_KEY = "trial_failed"
STATE_VERSION = 1
TOLERANCE = 1e-9  # float slack for milestones (0.1 * 3 ** 2 != 0.9) and the promotion quota
FEASIBLE, INFEASIBLE, MISSING = 0, 1, 2


class Evaluation(NamedTuple):
    """A result as the ranking sees it: the objective vector in minimisation space (None when an objective
    is missing or non-finite) and the total constraint violation (0.0 when feasible)."""

    vector: tuple[float, ...] | None
    violation: float


# --------------------------------------------------------------------------------------------------
# ranking (no Ray)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _violation(result: Mapping[str, Any], constraints: ConstraintFn | None) -> float:
    if constraints is None:
        return 0.0
    try:
        values = [float(c) for c in constraints(result)]
    except Exception as exc:  # noqa: BLE001 - a broken constraint must not crash the Tune run
        log.warning("MO-ASHA: constraint function failed (%s); the result counts as infeasible", exc)
        return math.inf
    return sum(math.inf if math.isnan(c) else max(0.0, c) for c in values)


def _key_name(key: Any) -> str:
    return str(getattr(key, "name", key))


def evaluate(result: Mapping[str, Any], objectives: Sequence[Objective],
             constraints: ConstraintFn | None = None) -> Evaluation:
    """The result's `Evaluation`: objectives negated where the mode is max, constraints summed."""
    vector = []
    for key, mode in objectives:
        value = _number(key(result) if callable(key) else result.get(key))
        if value is None:
            return Evaluation(None, 0.0)
        vector.append(-value if mode == "max" else value)
    return Evaluation(tuple(vector), _violation(result, constraints))


def crowding_distance(front: np.ndarray) -> np.ndarray:
    """Order-independent NSGA-II crowding distance of the rows of `front` (minimisation space, one front)."""
    unique, inverse = np.unique(front, axis=0, return_inverse=True)
    inverse = np.asarray(inverse).reshape(-1)
    distance = np.zeros(len(unique))
    if len(unique) <= 2:
        return np.full(len(front), math.inf)
    for column in unique.T:
        lo, hi = column.min(), column.max()
        if hi <= lo:
            continue
        values = np.unique(column)  # sorted distinct values
        pos = np.searchsorted(values, column)
        interior = (column > lo) & (column < hi)
        gaps = (values[np.minimum(pos + 1, len(values) - 1)] - values[np.maximum(pos - 1, 0)]) / (hi - lo)
        distance[interior] += gaps[interior]
        distance[(column == lo) | (column == hi)] = math.inf
    return distance[inverse]


def rank_keys(evaluations: Sequence[Evaluation]) -> list[RankKey]:
    """One sort key per evaluation (see the module docstring); equal keys are ties."""
    keys: list[RankKey] = [(MISSING, 0.0, 0.0)] * len(evaluations)
    feasible = []
    for i, ev in enumerate(evaluations):
        if ev.vector is None:
            continue
        if ev.violation > 0:
            keys[i] = (INFEASIBLE, ev.violation, 0.0)
        else:
            feasible.append(i)
    if not feasible:
        return keys
    matrix = np.array([evaluations[i].vector for i in feasible], dtype=float)
    fronts = np.asarray(moocore.pareto_rank(matrix))
    for front in np.unique(fronts):
        members = np.flatnonzero(fronts == front)
        for member, crowd in zip(members, crowding_distance(matrix[members])):
            keys[feasible[member]] = (FEASIBLE, float(front), -float(crowd))
    return keys


def rank_order(evaluations: Sequence[Evaluation]) -> list[int]:
    """Indices of `evaluations`, best first (ties keep their input order)."""
    keys = rank_keys(evaluations)
    return sorted(range(len(keys)), key=keys.__getitem__)


def rank_results(results: Sequence[Mapping[str, Any]], objectives: Sequence[Objective],
                 constraints: ConstraintFn | None = None) -> list[int]:
    """Indices of raw Tune results, best first, as a rung ranks them."""
    return rank_order([evaluate(r, objectives, constraints) for r in results])


def promotes(recorded: Sequence[RankKey], new: RankKey, reduction_factor: float,
             min_samples_required: int = 1) -> bool:
    """ASHA's rule on ranks: continue iff at most floor((m - 1) / eta) of the m recorded keys are strictly
    ahead of `new` (always when m < min_samples_required)."""
    m = len(recorded)
    if m < max(1, min_samples_required):
        return True
    ahead = sum(1 for key in recorded if key < new)
    return ahead <= math.floor((m - 1) / reduction_factor + TOLERANCE)


def rung_milestones(grace_period: float, reduction_factor: float, max_t: float) -> list[float]:
    """grace * eta**k for every k with a milestone below max_t (a trial reaching max_t stops anyway)."""
    milestones, k = [], 0
    while grace_period * reduction_factor ** k < max_t - TOLERANCE:
        milestones.append(float(f"{grace_period * reduction_factor ** k:.12g}"))  # 0.3, not 0.30000000000000004
        k += 1
    return milestones


# --------------------------------------------------------------------------------------------------
# the scheduler


class MOASHAScheduler(FIFOScheduler):
    """MO-ASHA for Ray Tune (see the module docstring for the rungs, the rule and the ranking).

    Args:
        objectives: (metric key, "max" | "min") pairs, the keys the trials report.
        time_attr: the progress key of the results (the evaluation's epoch label; may be fractional).
        grace_period: the first rung, in `time_attr` units.
        reduction_factor: eta; the top 1/eta of a rung continue.
        max_t: a result at or past it stops the trial.
        constraints: result -> one value per constraint, <= 0 when satisfied (Optuna's convention), or None.
        min_samples_required: judge a result only when the rung already holds this many (1 = Ray's ASHA).
    """

    _supports_buffered_results = False

    def __init__(self, objectives: Sequence[Objective], *, time_attr: str = "epoch", grace_period: float = 1,
                 reduction_factor: float = 3, max_t: float, constraints: ConstraintFn | None = None,
                 min_samples_required: int = 1):
        # a key is a result key, or a callable `result -> value` with a `name` (e.g. the sweep's log10 scale)
        objectives = [(key if callable(key) else str(key), str(mode)) for key, mode in objectives]
        if not objectives:
            raise ValueError("MOASHAScheduler needs at least one objective")
        if any(mode not in ("max", "min") for _, mode in objectives):
            raise ValueError(f"objective modes must be 'max' or 'min', got {objectives}")
        if len({_key_name(key) for key, _ in objectives}) != len(objectives):
            raise ValueError(f"objectives repeat a metric key: {objectives}")
        if not 0 < grace_period <= max_t:
            raise ValueError(f"need 0 < grace_period <= max_t, got grace_period={grace_period}, max_t={max_t}")
        if reduction_factor <= 1:
            raise ValueError(f"reduction_factor must be > 1, got {reduction_factor}")
        if min_samples_required < 1:
            raise ValueError(f"min_samples_required must be >= 1, got {min_samples_required}")
        super().__init__()
        self._objectives = objectives
        self._constraints = constraints
        self._time_attr = time_attr
        self._eta = float(reduction_factor)
        self._max_t = float(max_t)
        self._min_samples = int(min_samples_required)
        self._milestones = rung_milestones(float(grace_period), self._eta, self._max_t)
        self._rungs: list[dict[str, Evaluation]] = [{} for _ in self._milestones]
        self._stopped_at: dict[str, float] = {}  # trial id -> milestone of the rung that stopped it

    # -- read-only views ---------------------------------------------------------------------------
    @property
    def objectives(self) -> list[Objective]:
        return list(self._objectives)

    @property
    def milestones(self) -> list[float]:
        return list(self._milestones)

    def recorded(self, milestone: float) -> dict[str, Evaluation]:
        """The results recorded at the rung of `milestone` (trial id -> Evaluation), a copy."""
        return dict(self._rungs[self._milestones.index(milestone)])

    @property
    def stopped_at(self) -> dict[str, float]:
        """Trials stopped by a rung (not by max_t): trial id -> that rung's milestone."""
        return dict(self._stopped_at)

    # -- Tune's scheduler API --------------------------------------------------------------------
    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        """Objectives come from the constructor; TuneConfig's metric/mode (single-objective) are ignored."""
        return True

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        progress = self._progress(result)
        if progress is None:
            return TrialScheduler.CONTINUE
        action = TrialScheduler.CONTINUE
        rung = self._pending_rung(trial.trial_id, progress)
        if rung is not None:
            action = self._judge(rung, trial.trial_id, result)
        if progress >= self._max_t - TOLERANCE:
            action = TrialScheduler.STOP
        return action

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict) -> None:
        """Record the final result at its rung when no decision saw it (e.g. a Tune stopper ended the trial)."""
        progress = self._progress(result or {})
        if progress is None:
            return
        rung = self._pending_rung(trial.trial_id, progress)
        if rung is not None:
            self._rungs[rung][trial.trial_id] = self._evaluate(result)

    def debug_string(self) -> str:
        rungs = ", ".join(f"{self._time_attr} {m:g}: {len(r)} recorded"
                          f" ({sum(1 for s in self._stopped_at.values() if s == m)} stopped)"
                          for m, r in zip(self._milestones, self._rungs))
        return f"Using MO-ASHA (eta={self._eta:g}, max_t={self._max_t:g}): {len(self._stopped_at)} stopped; {rungs}"

    # -- state -------------------------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        """The rung state as plain data (what `set_state` and `MOASHAStateCallback` round-trip)."""
        return {"version": STATE_VERSION, **self._signature(),
                "rungs": [{tid: [list(ev.vector) if ev.vector is not None else None, ev.violation]
                           for tid, ev in rung.items()} for rung in self._rungs],
                "stopped_at": dict(self._stopped_at)}

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Restore `get_state()`'s rungs; refuses a state of a differently configured scheduler."""
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"MO-ASHA state version {state.get('version')!r} is not {STATE_VERSION}")
        theirs = {key: state.get(key) for key in self._signature()}
        if theirs != self._signature():
            raise ValueError(f"MO-ASHA state of another configuration: {theirs} != {self._signature()}")
        self._rungs = [{tid: Evaluation(tuple(vec) if vec is not None else None, float(violation))
                        for tid, (vec, violation) in rung.items()} for rung in state["rungs"]]
        self._stopped_at = dict(state["stopped_at"])

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as f:
            pickle.dump(self.get_state(), f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            self.set_state(pickle.load(f))

    # -- internals ---------------------------------------------------------------------------------
    def _signature(self) -> dict[str, Any]:
        return {"objectives": [[_key_name(k), m] for k, m in self._objectives], "time_attr": self._time_attr,
                "milestones": list(self._milestones), "reduction_factor": self._eta}

    def _progress(self, result: Mapping[str, Any]) -> float | None:
        if result.get(FAILED_KEY):
            return None
        return _number(result.get(self._time_attr))

    def _pending_rung(self, trial_id: str, progress: float) -> int | None:
        """The highest rung reached by `progress`, unless the trial is recorded there or higher."""
        for i in reversed(range(len(self._milestones))):
            if trial_id in self._rungs[i]:
                return None
            if progress >= self._milestones[i] - TOLERANCE:
                return i
        return None

    def _evaluate(self, result: Mapping[str, Any]) -> Evaluation:
        return evaluate(result, self._objectives, self._constraints)

    def _judge(self, rung: int, trial_id: str, result: Mapping[str, Any]) -> str:
        recorded = self._rungs[rung]
        new = self._evaluate(result)
        keys = rank_keys([*recorded.values(), new])
        go_on = promotes(keys[:-1], keys[-1], self._eta, self._min_samples)
        recorded[trial_id] = new
        if go_on:
            return TrialScheduler.CONTINUE
        self._stopped_at[trial_id] = self._milestones[rung]
        return TrialScheduler.STOP


class MOASHAStateCallback(Callback):
    """Carries a `MOASHAScheduler`'s rung state through Tune's experiment checkpoints, so `Tuner.restore`
    resumes with it (Tune restores callbacks, not schedulers). Pass the scheduler given to TuneConfig:

        ray.tune.RunConfig(callbacks=[MOASHAStateCallback(scheduler)])
    """

    def __init__(self, scheduler: MOASHAScheduler):
        self._scheduler = scheduler

    def get_state(self) -> dict[str, Any] | None:
        return {"moasha": self._scheduler.get_state()}

    def set_state(self, state: dict) -> None:
        if state and "moasha" in state:
            self._scheduler.set_state(state["moasha"])
