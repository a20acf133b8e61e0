"""Trajectory search (`sweeps.search.trajectory_model`, `sweeps.search.trajectory_searcher`,
`sweeps.search.scheduling.trajectory`): the encoding and evaluation points, the model reading crossing curves, the searcher's state surviving a restore,
and real Ray Tune runs of the lookup trainable: the searcher receives every evaluation point of every trial
(stopped and failed ones included), the stopping rule keeps a crafted late bloomer that MO-ASHA stops, and a
paused trial continues from its checkpoint with the same points as an unpaused one.

    .venv/bin/python -m pytest tests/sweeps/test_trajectory.py -q                  # all (about 2-3 min on 2 cores)
    .venv/bin/python -m pytest tests/sweeps/test_trajectory.py -q -m "not slow"    # no Ray (seconds)
"""

from __future__ import annotations

import math
import pickle
import shutil
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest

from sweeps.spec.objectives import Constraint, Objective
from sweeps.selection.pareto import hypervolume
from sweeps.search.searcher import FAILED_KEY
from sweeps.search.trajectory_model import TrajectoryModel
from sweeps.search.trajectory_space import Encoding, Epochs
from sweeps.search.trajectory_searcher import TrajectorySearcher

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))  # the lookup trainable: benchmark code
from lookup import POINTS_KEY, freeze, make_lookup_trainable  # noqa: E402

OBJECTIVES = [Objective(name="forget_quality", mode="max", scale="log"), Objective(name="model_utility", mode="max")]
CONSTRAINTS = [Constraint.model_validate("model_utility >= 0.9 * target")]
REFS = {"model_utility": 0.8}
HV_REF = [10.0, -0.72]  # log10 FQ of the "target" -10, utility bound 0.72 (minimisation space)
XS = [0, 1, 2, 3, 4, 5]
EPOCHS = 9


def bloom(x: int, e: int, trade_off: float = 0.0) -> dict:
    """A crafted trajectory: larger x blooms later (worse early) and ends forgetting more; utility feasible,
    equal for all x, or (`trade_off` > 0) lower for larger x, so every run's last point is on the front."""
    log_fq = -10.0 + (5.0 + x) * (e / EPOCHS) ** (1.0 + x)
    return {"epoch": e, "step": 4 * e, "forget_quality": 10.0 ** log_fq, "model_utility": 0.80 - trade_off * x}


def bloom_table(trade_off: float = 0.0) -> dict:
    return {freeze({"x": x}): [bloom(x, e, trade_off) for e in range(1, EPOCHS + 1)] for x in XS}


def searcher(tmp_path, name: str, seeded=(), n_init: int = 2, db: str | None = None) -> TrajectorySearcher:
    space = {"x": optuna.distributions.CategoricalDistribution(XS)}
    return TrajectorySearcher(space=space, objectives=OBJECTIVES, constraints=CONSTRAINTS, references=REFS,
                              sampler="trajectory", seed=0, study_name=name,
                              storage=f"sqlite:///{tmp_path / ((db or name) + '.db')}", seeded=list(seeded),
                              hv_reference=HV_REF, epochs=Epochs(fixed=EPOCHS, every=1, longest=EPOCHS),
                              n_init=n_init)


# --------------------------------------------------------------------------------------------------
# no Ray


def test_encoding_orders_numeric_choices_and_one_hot_encodes_the_rest():
    space = {"lr": optuna.distributions.CategoricalDistribution([5e-4, 1e-3, 2e-3]),
             "mode": optuna.distributions.CategoricalDistribution(["a", "b"]),
             "alpha": optuna.distributions.FloatDistribution(1.0, 9.0)}
    enc = Encoding(space)
    assert enc.width == 4
    lo, mid = enc.encode({"lr": 5e-4, "mode": "b", "alpha": 5.0}), enc.encode({"lr": 1e-3, "mode": "a", "alpha": 9.0})
    assert lo.tolist() == [0.0, 0.0, 1.0, 0.5]
    assert mid[0] == pytest.approx(0.5) and mid[1:3].tolist() == [1.0, 0.0] and mid[3] == 1.0  # log-spaced: 1e-3 mid
    assert enc.discrete_size() is None


def test_evaluation_points_follow_eval_every():
    assert Epochs(fixed=15, every=3, longest=15).points({}) == [3, 6, 9, 12, 15]
    assert Epochs(fixed=10, every=4, longest=10).points({}) == [4, 8, 10]  # the run's end is always a point
    assert Epochs(fixed=2, every=0.5, longest=2).points({}) == [0.5, 1.0, 1.5, 2.0]
    assert Epochs(fixed=15, every=1, longest=15, param="epochs").points({"epochs": 5}) == [1, 2, 3, 4, 5]


def _model(space: dict, longest_first: bool = True) -> TrajectoryModel:
    return TrajectoryModel(space, OBJECTIVES, CONSTRAINTS, REFS, HV_REF,
                           Epochs(fixed=15, every=1, longest=15, param="epochs"), seed=0, longest_first=longest_first)


def test_longest_runs_are_the_candidates_until_none_is_left():
    cat = optuna.distributions.CategoricalDistribution
    space = {"lr": cat([5e-4, 1e-3, 2e-3]), "epochs": cat([5, 10, 15])}
    model, rng = _model(space), np.random.default_rng(0)
    assert {c["epochs"] for c in model.candidates(rng)} == {15}
    every_long = [{"lr": lr, "epochs": 15} for lr in (5e-4, 1e-3, 2e-3)]
    rest = model.candidates(rng, exclude=every_long)  # every longest run tried: the shorter ones come in
    assert len(rest) == 6 and {c["epochs"] for c in rest} == {5, 10}
    assert len(_model(space, longest_first=False).candidates(rng)) == 9  # the rule off: every length at once
    # a continuous space: the epoch count is set to the longest
    ranged = {"lr": optuna.distributions.FloatDistribution(5e-4, 2e-3, log=True),
              "epochs": optuna.distributions.IntDistribution(5, 15)}
    assert {c["epochs"] for c in _model(ranged).candidates(rng)} == {15}


def test_first_configuration_is_the_centre_of_the_space_then_random():
    cat = optuna.distributions.CategoricalDistribution
    space = {"lr": cat([5e-4, 1e-3, 2e-3]), "alpha": cat([1, 3, 8]), "epochs": cat([5, 10, 15])}
    model = _model(space)
    assert model.initial(np.random.default_rng(0)) == {"lr": 1e-3, "alpha": 3, "epochs": 15}
    assert model.initial(np.random.default_rng(1)) == {"lr": 1e-3, "alpha": 3, "epochs": 15}  # seed-free
    # the centre already ran (a warm start): a random longest run instead, never an excluded one
    other = model.initial(np.random.default_rng(0), exclude=[{"lr": 1e-3, "alpha": 3, "epochs": 15}])
    assert other["epochs"] == 15 and other != {"lr": 1e-3, "alpha": 3, "epochs": 15}
    ranged = _model({"lr": optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True)})
    assert ranged.initial(np.random.default_rng(0))["lr"] == pytest.approx(1e-3, rel=1e-9)  # geometric middle


def test_a_model_saved_before_the_longest_first_rule_continues_without_it():
    model = _model({"epochs": optuna.distributions.CategoricalDistribution([5, 15])})
    state = model.__getstate__()
    del state["longest_first"]
    restored = TrajectoryModel.__new__(TrajectoryModel)
    restored.__setstate__(state)
    assert restored.longest_first is False
    assert len(restored.candidates(np.random.default_rng(0))) == 2


def test_model_expects_a_late_bloomer_to_improve_and_a_spent_run_not_to():
    model = TrajectoryModel({"x": optuna.distributions.CategoricalDistribution(XS)}, OBJECTIVES, CONSTRAINTS, REFS,
                            HV_REF, Epochs(fixed=EPOCHS, every=1, longest=EPOCHS), seed=0, samples=64)
    for x in (0, 2, 3, 4):  # finished runs: later x, later and higher bloom
        for e in range(1, EPOCHS + 1):
            model.observe(f"t{x}", {"x": x}, e, bloom(x, e))
    for e in (1, 2, 3):     # x = 5 has only its early, worst-looking points so far
        model.observe("t5", {"x": 5}, e, bloom(5, e))
    for e in range(1, 8):   # x = 1, dominated all along, two points left
        model.observe("t1", {"x": 1}, e, bloom(1, e))
    assert model.fit()
    _, late = model.outlook("t5")
    _, spent = model.outlook("t1")
    assert late > 0.5 > spent, (late, spent)


def test_screen_scores_every_candidate_at_once_as_one_by_one():
    """The screen predicts all candidates' points in one call per metric; each score equals the one computed
    from that candidate's own prediction (mean + 1 sd, per epoch), so batching changes no choice."""
    space = {"x": optuna.distributions.FloatDistribution(0.0, 5.0),
             "epochs": optuna.distributions.IntDistribution(3, EPOCHS)}
    model = TrajectoryModel(space, OBJECTIVES, CONSTRAINTS, REFS, HV_REF,
                            Epochs(fixed=EPOCHS, every=1, longest=EPOCHS, param="epochs"), seed=0,
                            longest_first=False)
    for x in (0, 2, 4):
        for e in range(1, EPOCHS + 1):
            model.observe(f"t{x}", {"x": float(x), "epochs": EPOCHS}, e, bloom(x, e, trade_off=0.01))
    assert model.fit()
    cands = model.candidates(np.random.default_rng(3))
    front = model.observed_front()
    base_hv = hypervolume(front, HV_REF)
    assert len(cands) > 50 and len({c["epochs"] for c in cands}) > 1  # runs of several lengths
    one_by_one = []
    for params in cands:
        values = {m: mean + sd for m, (mean, sd) in  # both objectives are maximised: mean + 1 sd
                  model._predict(params, model.epochs.points(params), return_std=True).items()}
        vecs, ok = model._vectors(values)
        one_by_one.append(float(model._improvement(front, base_hv, vecs[None], ok[None])[0])
                          / model.epochs.length(params))
    batched = model._optimistic_all(cands, front, base_hv)
    assert any(v > 0 for v in one_by_one)
    np.testing.assert_allclose(batched, one_by_one, rtol=1e-9, atol=0)


def test_scheduler_asks_the_model_once_per_change_of_what_it_knows(tmp_path, monkeypatch):
    """Tune calls choose_trial_to_run over and over between two evaluation points; each paused trial's outlook is
    computed once per model version (and set of other running trials), and is the model's own answer."""
    from types import SimpleNamespace

    from ray.tune.experiment import Trial

    from sweeps.search.scheduling.trajectory import TrajectoryScheduler

    s = searcher(tmp_path, "cache")
    table = bloom_table()
    for i, x in enumerate((0, 2, 4)):
        for point in table[freeze({"x": x})][:EPOCHS if i < 2 else 3]:
            s.model.observe(f"t{i}", {"x": x}, point["epoch"], point)
    s._params.update({"t0": {"x": 0}, "t1": {"x": 2}, "t2": {"x": 4}})
    s.paused.add("t2")
    calls = []
    real = type(s.model).outlook
    monkeypatch.setattr(type(s.model), "outlook", lambda self, *a, **k: calls.append(a) or real(self, *a, **k))
    sched = TrajectoryScheduler(s)
    trials = [SimpleNamespace(trial_id="t2", status=Trial.PAUSED)]
    controller = SimpleNamespace(get_trials=lambda: trials)
    monkeypatch.setattr(s, "can_propose", lambda: True)
    for _ in range(5):
        sched.choose_trial_to_run(controller)
    assert len(calls) == 1
    first = sched._outlook("t2", unknown=(0.0, 0.0))
    assert first == real(s.model, "t2", running=s.running_params())
    s.model.observe("t2", {"x": 4}, 4, table[freeze({"x": 4})][3])    # a new point: the model's answer may change
    sched.choose_trial_to_run(controller)
    assert len(calls) == 2      # once more, for the new version (the direct call above is not counted)


def test_searcher_state_survives_pickling_with_every_observation(tmp_path):
    s = searcher(tmp_path, "state")
    table = bloom_table()
    for i in range(3):
        config = s.suggest(f"t{i}")
        for point in table[freeze(config)]:
            s.on_trial_result(f"t{i}", dict(point))
        s.on_trial_complete(f"t{i}", dict(table[freeze(config)][-1]))
    path = tmp_path / "searcher.pkl"
    s.save(str(path))
    shutil.copy(tmp_path / "state.db", tmp_path / "copy.db")  # the study as the interrupted driver left it
    restored = searcher(tmp_path, "state", db="copy")
    restored.restore(str(path))
    restored.storage, restored._study = f"sqlite:///{tmp_path / 'copy.db'}", None  # the state names state.db
    assert restored.model.n_obs == s.model.n_obs == 3 * EPOCHS
    # the same observations, the same next proposal (the model's draws are seeded from the study's history)
    assert restored.suggest("t3") == s.suggest("t3-uninterrupted")
    assert pickle.loads(pickle.dumps(restored.model)).n_obs == 3 * EPOCHS


# --------------------------------------------------------------------------------------------------
# real Ray Tune


def run_lookup(table, search, scheduler, tmp_path, name, checkpoints=False, concurrent=1):
    import ray.tune
    from ray.tune import Callback

    class Seen(Callback):
        def __init__(self):
            self.results: list[tuple[str, dict]] = []

        def on_trial_result(self, iteration, trials, trial, result, **info):
            self.results.append((trial.trial_id, {k: v for k, v in result.items() if not isinstance(v, dict)}))

    seen = Seen()
    trainable, limit = make_lookup_trainable(table, checkpoints=checkpoints), concurrent
    if isinstance(search, TrajectorySearcher):  # it holds the limit itself, a paused trial not counted
        search.max_live, search.max_trials, limit = concurrent, len(table), None
        trainable = ray.tune.with_resources(trainable, {"cpu": 2})  # one at a time on the 2-CPU local Ray
    tuner = ray.tune.Tuner(
        trainable, param_space={},
        tune_config=ray.tune.TuneConfig(search_alg=search, scheduler=scheduler, num_samples=len(table),
                                        max_concurrent_trials=limit),
        run_config=ray.tune.RunConfig(name=name, storage_path=str(tmp_path / "tune"), verbose=0, callbacks=[seen]))
    tuner.fit()
    return seen.results


@pytest.mark.slow
def test_searcher_receives_every_point_of_stopped_and_failed_trials(local_ray, tmp_path):
    from sweeps.search.scheduling.trajectory import TrajectoryScheduler

    table = bloom_table()
    # x = 3 fails after its first point (before any stopping decision): its point counts, the report does not
    table[freeze({"x": 3})] = [*table[freeze({"x": 3})][:1],
                               {FAILED_KEY: 1, "failure_reason": "NaN loss", "epoch": 1,
                                "forget_quality": math.nan, "model_utility": math.nan}]
    s = searcher(tmp_path, "every", seeded=[{"x": x} for x in XS])
    results = run_lookup(table, s, TrajectoryScheduler(s, stop_below=0.5, pause=False), tmp_path, "every")
    points = {(tid, r["epoch"]) for tid, r in results if not r.get(FAILED_KEY)}
    observed = {(tid, o.epoch) for tid, pts in s.model.obs.items() for o in pts}
    assert observed == points
    assert len(s.model.obs) == len(XS)                     # every trial, the failed one included
    assert len(s.model.obs[next(t for t, r in results if r.get(FAILED_KEY))]) == 1
    assert any(len(pts) < EPOCHS for t, pts in s.model.obs.items() if s._params[t] != {"x": 3})  # some stopped


@pytest.mark.slow
def test_trajectory_rule_keeps_the_late_bloomer_that_moasha_stops(local_ray, tmp_path):
    from sweeps.search.scheduling.moasha import MOASHAScheduler
    from sweeps.search.scheduling.trajectory import TrajectoryScheduler
    from sweeps.search.tuning import SearchedValue, Violations

    # the same order both ways (warm start, one trial at a time): the two ends of the family first, then x = 3,
    # a late bloomer inside it: worse than x = 0 and 1 at MO-ASHA's rungs (epochs 1 and 3), better at the end
    order = [{"x": x} for x in (0, 5, 1, 3, 2, 4)]
    table = bloom_table(trade_off=0.004)
    late = searcher(tmp_path, "late", seeded=order)
    kept = run_lookup(table, late, TrajectoryScheduler(late, stop_below=0.1, pause=False), tmp_path, "late")
    moasha = MOASHAScheduler(objectives=[(SearchedValue(o), o.mode) for o in OBJECTIVES], time_attr="epoch",
                             grace_period=1, reduction_factor=3, max_t=EPOCHS,
                             constraints=Violations(CONSTRAINTS, REFS))
    plain = searcher(tmp_path, "asha", seeded=order)
    cut = run_lookup(table, plain, moasha, tmp_path, "asha")

    def last_epoch(results, s):
        tid = next(t for t, p in s._params.items() if p == {"x": 3})
        return max(r["epoch"] for t, r in results if t == tid)

    assert last_epoch(cut, plain) < EPOCHS          # MO-ASHA cuts it at a rung: it ranks last there
    assert last_epoch(kept, late) == EPOCHS         # the trajectory rule lets it bloom
    assert bloom(3, EPOCHS, 0.004)["forget_quality"] in [r["forget_quality"] for _, r in kept]


@pytest.mark.slow
def test_paused_trial_continues_from_its_checkpoint_with_the_same_points(local_ray, tmp_path):
    from sweeps.search.scheduling.trajectory import TrajectoryScheduler

    table = bloom_table()
    order = [{"x": x} for x in XS]
    s = searcher(tmp_path, "pause", seeded=order)
    sched = TrajectoryScheduler(s, min_points=2, stop_below=0.999, pause=True)  # pauses at nearly every point
    results = run_lookup(table, s, sched, tmp_path, "pause", checkpoints=True)
    paused = [t for t, d in sched.decisions.items() if any(k == "pause" for _, _, k in d)]
    resumed = [t for t, d in sched.decisions.items() if any(k == "resume" for _, _, k in d)]
    assert paused and set(resumed) <= set(paused) and resumed
    for tid in resumed:
        x = s._params[tid]["x"]
        mine = [r for t, r in results if t == tid]
        # each point once, in order, continuing after the pause (not replayed from the first), the table's values
        assert [r[POINTS_KEY] for r in mine] == list(range(1, len(mine) + 1))
        assert [r["forget_quality"] for r in mine] == [p["forget_quality"] for p in table[freeze({"x": x})][:len(mine)]]
