"""The sweep's searcher: one Optuna study per search, driven through Ray Tune's public `Searcher` API.

    searcher = OptunaSearcher(space={"lr": FloatDistribution(3e-4, 3e-3, log=True)}, objectives=spec.objectives,
                              constraints=spec.constraints, references={"model_utility": 0.83},
                              sampler="tpe", seed=0, study_name="tofu-mini-target.dv",
                              storage="sqlite:////abs/sweep/optuna.db", seeded=[{"lr": 1e-3}])
    ray.tune.TuneConfig(search_alg=searcher, ...)

`suggest` asks the study for a trial (`Study.ask` with the space's distributions); `on_trial_result` keeps the
trial's evaluation points; `on_trial_complete` picks the trial's best point (`sweeps.spec.objectives.best_point`: the
feasible point best on the first objective, since every point is a candidate for the front and for export, a
trial whose last epochs went too far is still worth the epoch that was right), sets each constraint's
violation on that trial (`Trial.set_constraint`, which Optuna's samplers read) and tells the study the
objectives on their search scale (`Objective.searched`: log10 for forget quality). A trial without any point
carrying every objective (failed before its first evaluation, or NaN throughout) is told FAIL; a trial that
failed later is told its best point before the failure. Only public Optuna and Ray APIs are used.

* Samplers (`search.sampler`): `tpe` (multivariate, constrained; the default), `gp` (Optuna's Gaussian-process
  sampler, multi-objective and constrained), `nsga2`, `random`, and `grid` (every combination of the space's
  discrete values once, in an order shuffled by the seed, for comparison with a bash grid; once every
  combination has been proposed the searcher tells Tune it is FINISHED, so a larger `num_trials` ends early
  instead of re-running combinations).
* Repeats: in a space of discrete values only (a bash-style grid given as lists), a configuration that was
  proposed before is not run again (a trial is deterministic given its config and the sweep's seed): the
  repeat is told the earlier trial's outcome (its values and constraint violations, or FAIL) and the sampler
  is asked again; after `MAX_REPEATS` repeats in a row an unseen combination is drawn at random (seeded), and
  once every combination has been proposed the searcher is FINISHED. Copies carry the user attribute
  `repeat_of` (the earlier trial's number) and never reach Tune.
* Warm start: `seeded` configurations (e.g. the Pareto points of an earlier sweep) are enqueued and evaluated
  first, before the sampler proposes anything.
* What Tune reports: the searched metrics are the objectives' raw names (`metric`), present in every result
  (a failed trial reports them as NaN).
* State: the study lives in its storage (SQLite beside the sweep or an RDB URL); the searcher pickles the
  map of Tune trial ids to Optuna trials, so `Tuner.restore` continues the same study.

Exact resume (after Ctrl-C, SIGTERM or a killed driver, `unlearn-sweep resume` continues each search as if it
had not stopped):

* The sampler is re-seeded before every ask from the study's history alone: `ask_seed(seed, n)` with n the
  number of trials the study holds (asked so far, in any state). Optuna's samplers keep no state but their
  random generator (everything else they read from the storage), so a fresh sampler with that seed proposes
  exactly what the running one would have: the sequence after a resume is a function of what the study holds,
  and a restarted searcher never replays the draws of the first trials (before, its generator restarted from
  `seed` and the first trials after a resume re-ran finished configurations). The same rule holds without an
  interrupt, so an interrupted and an uninterrupted sweep ask the same sequence for the same history.
* Each Optuna trial carries its Tune trial id (user attribute `tune_trial_id`). Tune's state and the searchers'
  state are snapshots (about every second, uploaded file by file), so a killed driver can leave a study with
  trials asked after the last snapshot, or Tune's trial list and the searcher's map from different snapshots.
  `reconcile(known)` (called by `sweeps.search.multiplex.SearchMux` with the trials Tune restored, before anything
  is asked) makes the study agree with Tune: a trial RUNNING in the study (or in the map) that Tune does not
  know is closed FAIL with the user attribute `lost` (`LOST_REASON`), and returned so its search can replace
  it once; a trial Tune knows but the map lacks is taken back from the study by its `tune_trial_id`; a
  trial Tune finished while the map still had it running is told its last result.
"""

from __future__ import annotations

import itertools
import math
import pickle
import random
from typing import Any, Mapping, Sequence

import optuna
from ray.tune.search import Searcher

from sweeps.spec.objectives import Constraint, Objective, best_point

FAILED_KEY = "trial_failed"
MAX_REPEATS = 50  # repeats of earlier configurations told from the record before an unseen one is drawn
SAMPLERS = ("tpe", "gp", "nsga2", "random", "grid")
TUNE_ID_ATTR = "tune_trial_id"  # the Optuna trial's Tune trial id (user attribute)
LOST_ATTR = "lost"              # user attribute of a trial closed FAIL because Tune never ran it to its end
LOST_REASON = ("lost: the driver stopped before Tune saved this trial in its experiment state; "
               "the resumed search ran a new trial in its place")


def ask_seed(seed: int, asked: int) -> int:
    """The sampler's seed for the study's next ask: a function of the sweep's seed and of how many trials the
    study holds, so the same history gives the same proposal whether or not the driver was restarted."""
    return (int(seed) * 1_000_003 + int(asked) * 7_919 + 17) % (2**32 - 1)


def make_sampler(kind: str, seed: int, space: Mapping[str, Any] | None = None,
                 ask: int | None = None) -> optuna.samplers.BaseSampler:
    """The Optuna sampler of `search.sampler`; constrained samplers read the trials' `set_constraint` values.
    `ask`: the seed of this ask (`ask_seed`): the random generator's seed (the grid keeps `seed` for its
    order and draws its next unvisited combination with `ask`)."""
    if kind == "grid":
        grid = {k: list(d.choices) for k, d in (space or {}).items()}
        return _AskTellGridSampler(grid, seed=seed, pick_seed=ask)
    seed = seed if ask is None else ask
    if kind == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if kind == "gp":
        return optuna.samplers.GPSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=4)


class _AskTellGridSampler(optuna.samplers.GridSampler):
    """Optuna's GridSampler without its `study.stop()` once the grid is exhausted: that call only works inside
    `Study.optimize` and raised in `Study.tell` (after the trial was stored), so the last grid trial and every
    later one logged "could not tell Optuna". The searcher ends the search itself (`Searcher.FINISHED`).
    `pick_seed`: the seed of its choice among the unvisited combinations (the order stays `seed`'s)."""

    def __init__(self, search_space: Mapping[str, Any], seed: int | None = None, pick_seed: int | None = None):
        super().__init__(search_space, seed=seed)
        if pick_seed is not None:
            self._rng.rng.seed(pick_seed)

    def after_trial(self, study: optuna.Study, trial: Any, state: Any, values: Any) -> None:
        return None


class OptunaSearcher(Searcher):
    """See the module docstring."""

    def __init__(self, space: Mapping[str, Any], objectives: Sequence[Objective], constraints: Sequence[Constraint],
                 references: Mapping[str, float], sampler: str, seed: int, study_name: str, storage: str,
                 seeded: Sequence[Mapping[str, Any]] = ()):
        super().__init__(metric=[o.name for o in objectives], mode=[o.mode for o in objectives])
        self.space = dict(space)
        self.objectives, self.constraints = list(objectives), list(constraints)
        self.references = dict(references)
        self.sampler_kind, self.seed = sampler, seed
        self.study_name, self.storage = study_name, storage
        self.seeded = [dict(s) for s in seeded]
        self._trials: dict[str, optuna.trial.Trial] = {}  # Tune trial id -> its Optuna trial (pickles with us)
        self._done: set[str] = set()
        self._points: dict[str, list[dict[str, Any]]] = {}  # running trial -> its evaluation points so far
        self._study: optuna.Study | None = None

    # ---- the study ----------------------------------------------------------------------------------

    @property
    def study(self) -> optuna.Study:
        if self._study is None:
            optuna.logging.set_verbosity(optuna.logging.WARNING)
            fresh = not any(s.study_name == self.study_name
                            for s in optuna.get_all_study_summaries(self.storage, include_best_trial=False))
            self._study = optuna.create_study(
                study_name=self.study_name, storage=self.storage, load_if_exists=True,
                directions=["maximize" if o.mode == "max" else "minimize" for o in self.objectives],
                sampler=make_sampler(self.sampler_kind, self.seed, self.space))
            if fresh:
                for params in self.seeded:  # warm start: these are asked (and evaluated) first
                    self._study.enqueue_trial(params, skip_if_exists=True)
        return self._study

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_study"] = None  # the study is in its storage; it is loaded again where it is needed
        return state

    # ---- Ray Tune's Searcher API --------------------------------------------------------------------

    def set_search_properties(self, metric: Any, mode: Any, config: dict, **spec: Any) -> bool:
        return True  # the space and the objectives were given to the constructor

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        discrete = self._discrete()
        if discrete and self._all_proposed():
            return Searcher.FINISHED
        trial = self._ask()
        if discrete and self.sampler_kind != "grid":
            trial = self._skip_repeats(trial)
            if trial is None:
                return Searcher.FINISHED
        self._bind(trial_id, trial)
        return dict(trial.params)

    def _ask(self, space: Mapping[str, Any] | None = None) -> optuna.trial.Trial:
        """`Study.ask` with the sampler re-seeded from the study's history (`ask_seed`; see the module
        docstring): every ask of this searcher and its subclasses goes through here."""
        study = self.study
        asked = len(study.get_trials(deepcopy=False))
        study.sampler = make_sampler(self.sampler_kind, self.seed, self.space, ask=ask_seed(self.seed, asked))
        return study.ask(dict(self.space if space is None else space))

    def _bind(self, trial_id: str, trial: optuna.trial.Trial) -> None:
        """Tune's trial `trial_id` is Optuna's `trial` (kept in the map and in the study, for `reconcile`)."""
        trial.set_user_attr(TUNE_ID_ATTR, trial_id)
        self._trials[trial_id] = trial

    # ---- resume: the study agrees with what Tune restored ----------------------------------------------

    def reconcile(self, known: Mapping[str, tuple[str, dict | None]]) -> list[str]:
        """Make the study agree with the trials Tune restored for this search, `known` = {Tune trial id:
        (Tune status, last result)}: returns the Tune ids (or `#<number>`) of the lost trials it closed FAIL
        (see the module docstring). Idempotent."""
        lost: list[str] = []
        for tid in [t for t in self._trials if t not in known and t not in self._done]:
            if self._close_lost(self._trials[tid].number):
                lost.append(tid)
            self._done.add(tid)
            self._points.pop(tid, None)
        by_tune_id = {}
        for frozen in self.study.get_trials(deepcopy=False):
            tid = frozen.user_attrs.get(TUNE_ID_ATTR)
            if tid is not None:
                by_tune_id[tid] = frozen
            if frozen.state == optuna.trial.TrialState.RUNNING and tid not in known and self._close_lost(frozen.number):
                lost.append(tid or f"#{frozen.number}")
        for tid, (status, last) in known.items():
            if tid not in self._trials and tid in by_tune_id:  # Tune's state is newer than ours: take it back
                self._trials[tid] = optuna.trial.Trial(self.study, by_tune_id[tid]._trial_id)
            if status in ("TERMINATED", "ERROR") and tid in self._trials and tid not in self._done:
                self.on_trial_complete(tid, result=last, error=status == "ERROR")
        return lost

    def _close_lost(self, number: int) -> bool:
        """Close the study's trial `number` FAIL as lost (True), unless it is finished already (False)."""
        frozen = self.study.get_trials(deepcopy=False)[number]
        if frozen.state.is_finished():
            return False
        optuna.trial.Trial(self.study, frozen._trial_id).set_user_attr(LOST_ATTR, LOST_REASON)
        self.study.tell(number, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
        return True

    def counted(self) -> int | None:
        """The trials of this search's budget according to the study: every trial given to Tune (it carries a
        `tune_trial_id`) and not lost; None for a study asked before trials carried their Tune id."""
        trials = self.study.get_trials(deepcopy=False)
        if not any(TUNE_ID_ATTR in t.user_attrs for t in trials):
            return None
        return sum(1 for t in trials if TUNE_ID_ATTR in t.user_attrs and LOST_ATTR not in t.user_attrs)

    # ---- discrete spaces: every combination at most once ----------------------------------------------

    def _discrete(self) -> bool:
        return bool(self.space) and all(isinstance(d, optuna.distributions.CategoricalDistribution)
                                        for d in self.space.values())

    def _key(self, params: Mapping[str, Any]) -> tuple[str, ...]:
        return tuple(repr(params.get(n)) for n in sorted(self.space))

    def _all_proposed(self) -> bool:
        """Every combination of the space's choices has been asked already (counted, not listed)."""
        asked = {self._key(t.params) for t in self.study.get_trials(deepcopy=False)
                 if set(t.params) == set(self.space)}
        return len(asked) >= math.prod(len(d.choices) for d in self.space.values())

    def _unseen(self, exclude: int | None = None) -> list[dict[str, Any]]:
        """The combinations of the space's choices not asked yet (in any state; `exclude`: a trial number)."""
        names = sorted(self.space)
        asked = {self._key(t.params) for t in self.study.get_trials(deepcopy=False) if t.number != exclude}
        return [dict(zip(names, combo)) for combo in itertools.product(*(self.space[n].choices for n in names))
                if self._key(dict(zip(names, combo))) not in asked]

    def _skip_repeats(self, trial: optuna.trial.Trial) -> optuna.trial.Trial | None:
        """`trial`, or the first trial asked after it whose configuration is new (see the module docstring);
        None when no combination is left."""
        for _ in range(MAX_REPEATS):
            earlier = [t for t in self.study.get_trials(deepcopy=False)
                       if t.number != trial.number and self._key(t.params) == self._key(trial.params)]
            if not earlier:
                return trial
            self._tell_repeat(trial, earlier[0])
            trial = self._ask()
        if not any(t.number != trial.number and self._key(t.params) == self._key(trial.params)
                   for t in self.study.get_trials(deepcopy=False)):
            return trial
        unseen = self._unseen(exclude=trial.number)
        self.study.tell(trial, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
        if not unseen:
            return None
        self.study.enqueue_trial(random.Random(self.seed * 7919 + trial.number).choice(unseen))
        return self._ask()

    def _tell_repeat(self, trial: optuna.trial.Trial, earlier: optuna.trial.FrozenTrial) -> None:
        """Close a repeated configuration with the outcome of its earlier trial (FAIL while that one runs)."""
        trial.set_user_attr("repeat_of", earlier.number)
        if earlier.state == optuna.trial.TrialState.COMPLETE and earlier.values is not None:
            for key, value in earlier.constraints.items():
                trial.set_constraint(key, value)
            self.study.tell(trial, list(earlier.values), skip_if_finished=True)
        else:
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        """Keep the trial's evaluation points (what the objectives and constraints read) until it completes."""
        if trial_id in self._trials and trial_id not in self._done and not result.get(FAILED_KEY):
            keys = {o.name for o in self.objectives} | {c.metric for c in self.constraints}
            self._points.setdefault(trial_id, []).append({k: result.get(k) for k in keys})

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        trial = self._trials.get(trial_id)
        if trial is None or trial_id in self._done:
            return
        self._done.add(trial_id)
        points = self._points.pop(trial_id, [])
        if result and not result.get(FAILED_KEY) and not error:
            points.append(result)  # the final result (Tune may not have passed it to on_trial_result)
        # the trial's best point (`objectives.best_point`): a diverged or stopped trial is worth what it reached
        result = best_point(points, self.objectives, self.constraints, self.references) if points else None
        values = [o.searched(result or {}) for o in self.objectives]
        failed = not result or any(v is None for v in values)
        try:
            if failed:
                self.study.tell(trial, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
                return
            for c in self.constraints:
                trial.set_constraint(str(c), c.violation(result, self.references))
            self.study.tell(trial, values, skip_if_finished=True)
        except Exception as exc:  # noqa: BLE001 - a failed tell must never stop the sweep
            optuna.logging.get_logger(__name__).warning("could not tell Optuna about %s: %s", trial_id, exc)

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as fh:
            pickle.dump(self.__getstate__(), fh)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as fh:
            self.__dict__.update(pickle.load(fh))
        self.__dict__.setdefault("_points", {})  # a state saved before points were kept

    def completed_values(self) -> list[tuple[dict[str, Any], list[float]]]:
        """(params, searched objective values) of every COMPLETE trial of the study (for tests and reports)."""
        return [(t.params, list(t.values)) for t in self.study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
                if t.values is not None and all(math.isfinite(v) for v in t.values)]
