"""MO-ASHA (`sweeps.search.scheduling.moasha`; its rung ranking alone: test_moasha_ranking.py): the promotion rule
on a scripted sequence of results with hand-computed decisions (and against Ray's ASHA on one objective), fractional-epoch rungs,
save/restore of the rung state, and real Ray Tune runs of the lookup trainable over a 12 x 9 synthetic
grid: dominated configs stop at the first rung, the front's configs run to max_t, every reported point
reaches the callbacks (the front over them has the whole grid's hypervolume for 36 of 108 trial-epochs),
and a sweep interrupted and resumed with `Tuner.restore` keeps the rung state.

    .venv/bin/python -m pytest tests/sweeps/test_moasha.py -q                  # all (about 30-50 s on 2 cores)
    .venv/bin/python -m pytest tests/sweeps/test_moasha.py -q -m "not slow"    # no Ray cluster (about 4 s)
"""

from __future__ import annotations

import math
import os
import pickle
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import moocore
import numpy as np
import pytest

from sweeps.search.scheduling.moasha import Evaluation, MOASHAScheduler, MOASHAStateCallback, rung_milestones

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))  # the lookup trainable: benchmark code
from lookup import POINTS_KEY, freeze, grid_param_space, make_lookup_trainable  # noqa: E402

CONTINUE, STOP = "CONTINUE", "STOP"


@dataclass(frozen=True)
class FakeTrial:
    """All the scheduler reads from a Tune trial."""

    trial_id: str


def gibberish_limit(result) -> list[float]:
    """The constraint of these tests: gibberish_rate <= 0.2 (a missing rate violates)."""
    return [result.get("gibberish_rate", 1.0) - 0.2]


# --------------------------------------------------------------------------------------------------
# the promotion rule on scripted results

# (trial, epoch, a, b, gibberish_rate, expected decision); objectives a, b both minimised, eta 3,
# rungs at epochs 1 and 3, max_t 9. Recorded count m before each rung-1 result and its quota floor((m-1)/3):
SCRIPT = [
    ("t1", 1, 0, 10, 0.0, CONTINUE),   # m=0: empty rung
    ("t2", 1, 10, 0, 0.0, CONTINUE),   # m=1, quota 0: front {t1, t2}, both extremes (infinite crowding) tie
    ("t3", 1, 6, 6, 0.0, STOP),        # m=2, quota 0: interior of front {t1, t3, t2}, both extremes ahead
    ("t4", 1, 11, 11, 0.0, STOP),      # m=3: dominated by all
    ("t5", 1, 12, 12, 0.0, STOP),      # m=4, quota 1: 4 ahead
    ("t6", 1, 13, 13, 0.0, STOP),      # m=5, quota 1
    ("t7", 1, 14, 14, 0.0, STOP),      # m=6, quota 1
    ("t8", 1, 2, 5, 0.0, CONTINUE),    # m=7, quota 2: front {t1, t8, t2} (t8 dominates t3), 2 extremes ahead
    ("t9", 1, 1, 8, 0.0, STOP),        # m=8, quota 2: front {t1, t9, t8, t2}; crowding t8 1.7 > t9 0.7: k=3
    ("t10", 1, 5, 1, 0.0, CONTINUE),   # m=9, quota 2: crowding t10 1.3 > t8 1.1 > t9 0.7: k=2 (the extremes)
    ("t11", 1, -1, -1, 0.5, STOP),     # m=10, quota 3: dominates everything but infeasible: k=10
    ("t12", 1, 0, 10, 0.0, CONTINUE),  # m=11, quota 3: duplicate of the extreme t1, ties t1 and t2: k=0
    ("t13", 1, 0, 10, 0.3, STOP),      # m=12, quota 3: t12's objectives but infeasible: 11 feasible ahead
    ("t1", 2, 0, 9, 0.0, CONTINUE),    # between rungs: no decision
    ("t1", 1, 0, 10, 0.0, CONTINUE),   # an epoch already judged (a retried trial): no decision
    ("t1", 3, 0, 9, 0.0, CONTINUE),    # rung 3, m=0
    ("t8", 3, 2, 4, 0.0, CONTINUE),    # rung 3, m=1: front {t1, t8}, both extremes
    ("t10", 3, 3, 3, 0.0, CONTINUE),   # m=2, quota 0: front {t1, t8, t10}, t10 has the best b: extreme, k=0
    ("t2", 3, 4, 4, 0.0, STOP),        # m=3, quota 0: dominated by t8 and t10
    ("t1", 9, 0, 8, 0.0, STOP),        # max_t
]


def scripted_scheduler(**kwargs) -> MOASHAScheduler:
    return MOASHAScheduler([("a", "min"), ("b", "min")], time_attr="epoch", grace_period=1, reduction_factor=3,
                           max_t=9, constraints=gibberish_limit, **kwargs)


def result(epoch, a, b, gib) -> dict:
    return {"epoch": epoch, "a": a, "b": b, "gibberish_rate": gib, "step": int(epoch * 4)}


def test_promotions_follow_the_ranking():
    scheduler = scripted_scheduler()
    assert scheduler.milestones == [1.0, 3.0]
    decisions = [scheduler.on_trial_result(None, FakeTrial(tid), result(e, a, b, g)) for tid, e, a, b, g, _ in SCRIPT]
    assert decisions == [expected for *_, expected in SCRIPT]
    assert set(scheduler.recorded(1.0)) == {f"t{i}" for i in range(1, 14)}
    assert set(scheduler.recorded(3.0)) == {"t1", "t8", "t10", "t2"}
    assert scheduler.stopped_at == {"t3": 1.0, "t4": 1.0, "t5": 1.0, "t6": 1.0, "t7": 1.0, "t9": 1.0,
                                    "t11": 1.0, "t13": 1.0, "t2": 3.0}
    assert scheduler.debug_string() == ("Using MO-ASHA (eta=3, max_t=9): 9 stopped; "
                                        "epoch 1: 13 recorded (8 stopped), epoch 3: 4 recorded (1 stopped)")


def test_failed_reports_and_results_without_progress_are_ignored():
    scheduler = scripted_scheduler()
    scheduler.on_trial_result(None, FakeTrial("t1"), result(1, 0, 0, 0.0))
    failed = {"trial_failed": 1, "failure_reason": "loss became NaN", "epoch": 1, "a": math.nan, "b": math.nan}
    assert scheduler.on_trial_result(None, FakeTrial("t2"), failed) == CONTINUE
    assert scheduler.on_trial_result(None, FakeTrial("t3"), {"a": 9, "b": 9}) == CONTINUE
    scheduler.on_trial_complete(None, FakeTrial("t2"), failed)
    assert set(scheduler.recorded(1.0)) == {"t1"}
    # a result missing an objective is judged, ranks last, and is stopped
    assert scheduler.on_trial_result(None, FakeTrial("t4"), {"epoch": 1, "a": 5}) == STOP


def test_on_trial_complete_records_a_result_no_decision_saw():
    scheduler = scripted_scheduler()
    scheduler.on_trial_complete(None, FakeTrial("t1"), result(3, 0, 0, 0.0))
    scheduler.on_trial_complete(None, FakeTrial("t1"), result(3, 5, 5, 0.0))  # once per rung
    assert scheduler.recorded(3.0) == {"t1": Evaluation((0.0, 0.0), 0.0)} and scheduler.recorded(1.0) == {}


def test_min_samples_required_lets_the_first_results_of_a_rung_through():
    scheduler = scripted_scheduler(min_samples_required=3)
    decisions = [scheduler.on_trial_result(None, FakeTrial(tid), result(1, a, b, 0.0))
                 for tid, a, b in [("t1", 0, 0), ("t2", 5, 5), ("t3", 6, 6), ("t4", 7, 7)]]
    assert decisions == [CONTINUE, CONTINUE, CONTINUE, STOP]


def test_fractional_epoch_rungs():
    assert rung_milestones(0.5, 3, 9) == [0.5, 1.5, 4.5]
    assert rung_milestones(0.1, 3, 1) == [0.1, 0.3, 0.9]
    assert rung_milestones(1, 3, 9) == [1.0, 3.0] and rung_milestones(1, 2, 1) == []
    scheduler = MOASHAScheduler([("a", "min")], grace_period=0.5, reduction_factor=3, max_t=9)
    every_half = [0.5, 1.0, 1.5, 2.0, 4.5]
    for epoch in every_half:
        scheduler.on_trial_result(None, FakeTrial("half"), {"epoch": epoch, "a": 1.0})
    for epoch in (1, 2, 5):  # evaluated every epoch: judged at the first point past each milestone
        scheduler.on_trial_result(None, FakeTrial("whole"), {"epoch": epoch, "a": 1.0 + epoch})
    scheduler.on_trial_result(None, FakeTrial("late"), {"epoch": 5, "a": 0.0})  # jumps to the 4.5 rung only
    assert set(scheduler.recorded(0.5)) == {"half", "whole"}
    assert set(scheduler.recorded(1.5)) == {"half", "whole"}
    assert set(scheduler.recorded(4.5)) == {"half", "whole", "late"}
    assert scheduler.recorded(1.5)["whole"].vector == (3.0,)  # the epoch-2 result
    assert scheduler.on_trial_result(None, FakeTrial("half"), {"epoch": 9.0, "a": 0.0}) == STOP  # max_t


def test_single_objective_matches_rays_asha_where_its_percentile_needs_no_interpolation():
    from ray.tune.schedulers import AsyncHyperBandScheduler

    rng = np.random.default_rng(3)
    ours = MOASHAScheduler([("v", "max")], time_attr="epoch", grace_period=1, reduction_factor=3, max_t=9)
    ray_asha = AsyncHyperBandScheduler(time_attr="epoch", metric="v", mode="max", grace_period=1, max_t=9,
                                       reduction_factor=3)
    compared = 0
    for m, value in enumerate(rng.normal(size=60)):
        trial = FakeTrial(f"t{m}")
        ray_asha.on_trial_add(None, trial)
        mine = ours.on_trial_result(None, trial, {"epoch": 1, "v": float(value)})
        theirs = ray_asha.on_trial_result(None, trial, {"epoch": 1, "v": float(value)})
        if mine == CONTINUE:
            assert theirs == CONTINUE, "never more lenient than Ray's ASHA"
        if m == 0 or (m - 1) % 3 == 0:
            assert mine == theirs
            compared += 1
    assert compared == 21


# --------------------------------------------------------------------------------------------------
# state


def test_scheduler_state_round_trips_and_decides_like_the_original(tmp_path):
    original = scripted_scheduler()
    half = len(SCRIPT) // 2
    for tid, e, a, b, g, _ in SCRIPT[:half]:
        original.on_trial_result(None, FakeTrial(tid), result(e, a, b, g))
    pickled = pickle.loads(pickle.dumps(original))
    original.save(str(tmp_path / "moasha.pkl"))
    restored = scripted_scheduler()
    restored.restore(str(tmp_path / "moasha.pkl"))
    via_callback = scripted_scheduler()
    MOASHAStateCallback(via_callback).set_state(MOASHAStateCallback(original).get_state())
    copies = [pickled, restored, via_callback]
    assert all(c.get_state() == original.get_state() for c in copies)
    for tid, e, a, b, g, expected in SCRIPT[half:]:
        decisions = {s.on_trial_result(None, FakeTrial(tid), result(e, a, b, g)) for s in [original, *copies]}
        assert decisions == {expected}
    assert all(c.get_state() == original.get_state() for c in copies)
    # the state is what decides: t9 stops against the recorded rung, but passes on an empty one
    assert scripted_scheduler().on_trial_result(None, FakeTrial("t9"), result(1, 1, 8, 0.0)) == CONTINUE


def test_state_of_another_configuration_is_refused():
    state = scripted_scheduler().get_state()
    with pytest.raises(ValueError, match="another configuration"):
        MOASHAScheduler([("a", "min"), ("b", "max")], max_t=9).set_state(state)
    with pytest.raises(ValueError, match="another configuration"):
        MOASHAScheduler([("a", "min"), ("b", "min")], max_t=27).set_state(state)
    with pytest.raises(ValueError, match="version"):
        scripted_scheduler().set_state({**state, "version": 99})


# --------------------------------------------------------------------------------------------------
# real Ray Tune runs of the lookup trainable

# name: (lr, alpha, final log10 forget quality, final model utility, gibberish rate). Ray's grid varies
# alpha fastest, so trials start in this order. Forget quality rises and utility falls by the same
# amounts for every config at a given epoch, so every rung compares configs as their final values do.
CONFIGS = {
    "A": (1e-5, 0.5, -1.0, 0.50, 0.05),    # front until K: run first, survives
    "B": (1e-5, 1.0, -8.0, 0.62, 0.05),    # the best utility: an extreme of the front
    "C": (1e-5, 2.0, -9.0, 0.45, 0.05),    # dominated by A and B
    "K": (2e-5, 0.5, -0.5, 0.61, 0.05),    # the best forget quality: an extreme, dominates A
    "M": (2e-5, 1.0, -4.0, 0.615, 0.05),   # non-dominated but interior: stopped by the quota
    "I": (2e-5, 2.0, 0.0, 0.70, 0.50),     # dominates everything, infeasible
    "N": (5e-5, 0.5, -2.0, math.nan, 0.05),  # utility missing (NaN)
    "D1": (5e-5, 1.0, -12.0, 0.40, 0.05),
    "D2": (5e-5, 2.0, -15.0, 0.35, 0.05),
    "D3": (1e-4, 0.5, -10.0, 0.42, 0.05),
    "D4": (1e-4, 1.0, -20.0, 0.30, 0.05),
    "D5": (1e-4, 2.0, -11.0, 0.44, 0.05),
}
EPOCHS = 9
OBJECTIVES = [("log10_forget_quality", "max"), ("model_utility", "max")]
SURVIVORS = {"A", "B", "K"}


def synthetic_table() -> dict:
    table = {}
    for lr, alpha, fq, mu, gib in CONFIGS.values():
        table[freeze({"lr": lr, "alpha": alpha})] = [
            {"epoch": e, "step": 4 * e, "log10_forget_quality": fq + 2 * (e / EPOCHS - 1),
             "model_utility": mu + 0.1 * (1 - e / EPOCHS), "gibberish_rate": gib} for e in range(1, EPOCHS + 1)]
    return table


def config_name(config: dict) -> str:
    return next(n for n, (lr, alpha, *_) in CONFIGS.items() if (lr, alpha) == (config["lr"], config["alpha"]))


def grid_scheduler() -> MOASHAScheduler:
    return MOASHAScheduler(OBJECTIVES, time_attr="epoch", grace_period=1, reduction_factor=3, max_t=EPOCHS,
                           constraints=gibberish_limit)


def replay(scheduler: MOASHAScheduler, names: list[str]) -> dict[str, int]:
    """Run configs one after another through `scheduler` without Ray; returns each one's last epoch."""
    table, last = synthetic_table(), {}
    for name in names:
        lr, alpha, *_ = CONFIGS[name]
        for point in table[freeze({"lr": lr, "alpha": alpha})]:
            last[name] = point["epoch"]
            if scheduler.on_trial_result(None, FakeTrial(name), dict(point)) == STOP:
                break
    return last


def test_lookup_table_helpers():
    table = synthetic_table()
    space = grid_param_space(table)
    assert space == {"alpha": {"grid_search": [0.5, 1.0, 2.0]}, "lr": {"grid_search": [1e-5, 2e-5, 5e-5, 1e-4]}}
    assert freeze({"lr": 1e-5, "alpha": 0.5}) == freeze({"alpha": 0.5, "lr": 1e-5}) in table
    with pytest.raises(ValueError, match="full grid"):
        grid_param_space({k: v for k, v in table.items() if k != freeze({"lr": 1e-4, "alpha": 2.0})})
    with pytest.raises(ValueError, match="freeze"):
        make_lookup_trainable({"A": table[freeze({"lr": 1e-5, "alpha": 0.5})]})
    assert callable(make_lookup_trainable({"A": []}, key=lambda config: config["name"]))


def make_collector():
    from ray.tune import Callback

    class Collector(Callback):
        """Every result in the order Tune handed it to the scheduler, and each trial's (id, config name)."""

        def __init__(self):
            self.results, self.started = [], []

        def on_trial_start(self, iteration, trials, trial, **info):
            self.started.append((trial.trial_id, config_name(trial.config)))

        def on_trial_result(self, iteration, trials, trial, result, **info):
            self.results.append((trial.trial_id, config_name(trial.config), dict(result)))

    return Collector()


@pytest.mark.slow  # 9-19 s, plus 9-19 s to start Ray, on 2 busy cores
def test_real_tuner_stops_dominated_configs_and_keeps_every_point(local_ray, tmp_path):
    import ray.tune
    from ray.tune.search.basic_variant import BasicVariantGenerator

    table, scheduler, collector = synthetic_table(), grid_scheduler(), make_collector()
    tuner = ray.tune.Tuner(
        make_lookup_trainable(table), param_space=grid_param_space(table),
        tune_config=ray.tune.TuneConfig(search_alg=BasicVariantGenerator(max_concurrent=2), scheduler=scheduler,
                                        reuse_actors=True),
        run_config=ray.tune.RunConfig(name="moasha-grid", storage_path=str(tmp_path), verbose=0,
                                      callbacks=[collector, MOASHAStateCallback(scheduler)]))
    grid = tuner.fit()
    assert not grid.errors and len(grid) == len(CONFIGS)
    created = [name for _, name in sorted(collector.started)]  # trial ids end in the variant's index
    assert created == list(CONFIGS), "Ray's grid order (alpha fastest) is what this test is built on"

    last = {config_name(r.config): r.metrics["epoch"] for r in grid}
    assert {n for n, e in last.items() if e == EPOCHS} == SURVIVORS
    assert all(last[n] == 1 for n in set(CONFIGS) - SURVIVORS), last
    consumed = sum(r.metrics[POINTS_KEY] for r in grid)
    assert consumed == 3 * EPOCHS + 9 * 1 == 36 and consumed <= len(CONFIGS) * EPOCHS / 2

    # every point a trial reported reached the callbacks (the STOP-ing one flagged done), in order
    by_trial: dict[str, list[dict]] = {}
    for trial_id, _, res in collector.results:
        by_trial.setdefault(trial_id, []).append(res)
    assert len(by_trial) == len(CONFIGS)
    for points in by_trial.values():
        assert [p["epoch"] for p in points] == list(range(1, len(points) + 1))
        assert [p[POINTS_KEY] for p in points] == [p["epoch"] for p in points]
        assert [bool(p.get("done")) for p in points] == [False] * (len(points) - 1) + [True]

    # the scheduler decided on exactly what Tune passed it: replaying the sequence gives the same STOPs
    offline = grid_scheduler()
    for trial_id, _, res in collector.results:
        assert offline.on_trial_result(None, FakeTrial(trial_id), res) == (STOP if res.get("done") else CONTINUE)
    assert offline.get_state() == scheduler.get_state()

    # the Pareto selection runs over every collected point: M was stopped at epoch 1, yet its epoch-1
    # point (utility 0.704, the highest seen with forget quality >= -5.8) is on the front
    feasible = [(name, res) for _, name, res in collector.results if usable(res)]
    matrix = np.array([[res[k] for k, _ in OBJECTIVES] for _, res in feasible])
    on_front = moocore.is_nondominated(matrix, maximise=True, keep_weakly=True)
    front = {(name, res["epoch"]) for (name, res), keep in zip(feasible, on_front) if keep}
    assert ("M", 1) in front and {name for name, _ in front} >= {"B", "K", "M"}
    # ... and it is the front of the whole grid: the same hypervolume for a third of the trial-epochs
    everything = np.array([[p[k] for k, _ in OBJECTIVES] for points in table.values() for p in points if usable(p)])
    assert hypervolume(matrix, everything) == pytest.approx(hypervolume(everything, everything))


def usable(res: dict) -> bool:
    return gibberish_limit(res)[0] <= 0 and all(math.isfinite(res[k]) for k, _ in OBJECTIVES)


def hypervolume(points: np.ndarray, span: np.ndarray) -> float:
    """moocore's hypervolume with each objective min-max normalised over `span` (0 = best), reference 1.1."""
    lo, hi = span.min(axis=0), span.max(axis=0)
    return moocore.hypervolume((hi - points) / (hi - lo), ref=[1.1] * points.shape[1])


@pytest.mark.slow  # 5-9 s (with Ray started), 25-35 s alone
def test_resumed_sweep_keeps_the_rung_state(local_ray, tmp_path):
    import ray.tune

    table, scheduler = synthetic_table(), grid_scheduler()
    marker = tmp_path / "interrupted"
    interrupter = make_interrupter(marker)
    tuner = ray.tune.Tuner(
        make_lookup_trainable(table), param_space=grid_param_space(table),
        tune_config=ray.tune.TuneConfig(scheduler=scheduler, max_concurrent_trials=1, reuse_actors=True),
        run_config=ray.tune.RunConfig(name="moasha-resume", storage_path=str(tmp_path), verbose=0,
                                      callbacks=[interrupter, MOASHAStateCallback(scheduler)]))
    tuner.fit()
    assert marker.exists()
    before = scheduler.recorded(1.0)
    assert 3 <= len(before) < len(CONFIGS), "interrupted after C, with trials left"

    path = str(tmp_path / "moasha-resume")
    assert ray.tune.Tuner.can_restore(path)
    grid = ray.tune.Tuner.restore(path, make_lookup_trainable(table), resume_unfinished=True).fit()
    assert not grid.errors and len(grid) == len(CONFIGS)
    last = {config_name(r.config): r.metrics["epoch"] for r in grid}
    assert {n for n, e in last.items() if e == EPOCHS} == SURVIVORS, last
    assert last["M"] == 1  # judged against A, B, C (and K) recorded before the interruption
    # without the rung state M would have met K alone at both rungs and run to max_t
    assert replay(grid_scheduler(), ["K", "M"])["M"] == EPOCHS
    assert replay(grid_scheduler(), ["A", "B", "C", "K", "M"])["M"] == 1


def make_interrupter(marker: Path):
    from ray.tune import Callback

    class Interrupter(Callback):
        """Ends the Tune run the way Ctrl-C does (SIGUSR1: state saved, unfinished trials resumable) once C
        is done; the marker keeps the restored copy of this callback from firing again."""

        def __init__(self, marker: Path):
            self.marker = marker

        def on_trial_complete(self, iteration, trials, trial, **info):
            if config_name(trial.config) == "C" and not self.marker.exists():
                self.marker.touch()
                os.kill(os.getpid(), signal.SIGUSR1)

    return Interrupter(marker)
