"""The sweep's searcher (`sweeps.search.searcher.OptunaSearcher`) on the real Ray Tune, over a tiny synthetic table
replayed by the lookup trainable (no training): every sampler runs a constrained three-objective search that
proposes only values of the space and leaves COMPLETE trials carrying the objectives and constraint values of
their best point (the feasible point best on forget quality, else the least violating one); a warm start
evaluates the seeded configurations first, in order; a trial without a point carrying every objective (NaN
throughout) is told FAIL, a trial that failed after a point is told that point, and the search goes on; an interrupted search resumed with `Tuner.restore` continues
the same study without re-running finished trials (the scheduler's resume is test_moasha's).

    .venv/bin/python -m pytest tests/sweeps/test_search.py -q          # about 40-70 s on 2 busy cores
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import signal
import sys
from collections import Counter
from pathlib import Path

import pytest

from sweeps.spec.objectives import Constraint, Objective
from sweeps.search.searcher import FAILED_KEY, SAMPLERS, OptunaSearcher

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))  # the lookup trainable: benchmark code
from lookup import freeze, make_lookup_trainable  # noqa: E402

pytestmark = pytest.mark.slow  # every test here starts (or shares) a local Ray

VALUES = {"lr": [1e-3, 2e-3, 4e-3], "alpha": [1, 3]}
EPOCHS = 3
TARGET_MU = 0.8
OBJECTIVES = [Objective(name="forget_quality", mode="max", scale="log"), Objective(name="model_utility", mode="max"),
              Objective(name="gibberish_rate", mode="min")]
CONSTRAINT = Constraint.model_validate("model_utility >= 0.9 * target")  # >= 0.72 here
CONFIGS = [dict(zip(VALUES, combo)) for combo in itertools.product(*VALUES.values())]


def final_metrics(config: dict) -> dict[str, float]:
    """The last point of a configuration: a larger lr forgets more and keeps less utility; alpha keeps utility
    (lr 4e-3 violates the constraint at its last point; with alpha 1 at every point)."""
    rank = VALUES["lr"].index(config["lr"])
    return {"forget_quality": 10.0 ** (-6 + 2 * rank), "model_utility": 0.8 - 0.06 * rank + 0.01 * config["alpha"],
            "gibberish_rate": 0.01 * rank}


def synthetic_table(broken: dict | None = None) -> dict:
    """freeze(config) -> EPOCHS points converging to `final_metrics`; `broken` maps a config's freeze key to the
    points that replace its own."""
    table = {}
    for config in CONFIGS:
        end = final_metrics(config)
        table[freeze(config)] = [
            {"epoch": e, "step": 4 * e, "forget_quality": end["forget_quality"] * 10.0 ** (e - EPOCHS),
             "model_utility": end["model_utility"] + 0.012 * (EPOCHS - e), "gibberish_rate": end["gibberish_rate"]}
            for e in range(1, EPOCHS + 1)]
    table.update(broken or {})
    return table


def space():
    from optuna.distributions import CategoricalDistribution

    return {name: CategoricalDistribution(values) for name, values in VALUES.items()}


def make_searcher(tmp_path: Path, sampler: str, seeded=(), name: str = "search") -> OptunaSearcher:
    return OptunaSearcher(space=space(), objectives=OBJECTIVES, constraints=[CONSTRAINT],
                          references={"model_utility": TARGET_MU}, sampler=sampler, seed=3, study_name=name,
                          storage=f"sqlite:///{tmp_path / 'optuna.db'}", seeded=seeded)


def make_tuner(tmp_path: Path, searcher: OptunaSearcher, table: dict, num_samples: int, callbacks=(),
               name: str = "search"):
    import ray.tune

    return ray.tune.Tuner(
        make_lookup_trainable(table), param_space={},
        tune_config=ray.tune.TuneConfig(search_alg=searcher, num_samples=num_samples, max_concurrent_trials=1,
                                        reuse_actors=True),
        run_config=ray.tune.RunConfig(name=name, storage_path=str(tmp_path / "tune"), verbose=0,
                                      callbacks=list(callbacks)))


def make_starts():
    from ray.tune import Callback

    class Starts(Callback):
        """The configurations in the order Tune started their trials."""

        def __init__(self):
            self.configs = []

        def on_trial_start(self, iteration, trials, trial, **info):
            self.configs.append(dict(trial.config))

    return Starts()


def study(tmp_path: Path, name: str = "search"):
    import optuna

    return optuna.load_study(study_name=name, storage=f"sqlite:///{tmp_path / 'optuna.db'}")


def expected_point(config: dict, table: dict | None = None) -> dict[str, float]:
    """The point the searcher must tell, worked out on this table: forget quality rises and utility falls
    with the epoch, so the best feasible point is the last one with utility >= 0.72, and a configuration
    without one is worth its first (least violating) point."""
    points = (table or synthetic_table())[freeze(config)]
    feasible = [p for p in points if p["model_utility"] >= 0.9 * TARGET_MU]
    return feasible[-1] if feasible else points[0]


def expected_values(config: dict, table: dict | None = None) -> list[float]:
    point = expected_point(config, table)
    return [math.log10(point["forget_quality"]), point["model_utility"], point["gibberish_rate"]]


# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_every_sampler_runs_a_constrained_search_on_real_tune(local_ray, tmp_path, sampler, caplog):
    from optuna.trial import TrialState

    caplog.set_level(logging.WARNING, logger="sweeps.search.searcher")
    starts = make_starts()
    grid = make_tuner(tmp_path, make_searcher(tmp_path, sampler), synthetic_table(), num_samples=8,
                      callbacks=[starts]).fit()
    assert not grid.errors
    # a space of discrete values: every sampler runs each of the 6 combinations once, then the searcher is
    # finished (8 trials asked for); repeats a sampler proposed were told the earlier outcome, never run
    runs = len(CONFIGS)
    assert len(grid) == len(starts.configs) == runs
    assert all(set(c) == set(VALUES) and all(c[k] in VALUES[k] for k in VALUES) for c in starts.configs)
    assert sorted(map(freeze, starts.configs)) == sorted(map(freeze, CONFIGS))

    everything = study(tmp_path).trials
    trials = [t for t in everything if "repeat_of" not in t.user_attrs]
    for copy in (t for t in everything if "repeat_of" in t.user_attrs):
        original = everything[copy.user_attrs["repeat_of"]]
        assert copy.params == original.params and copy.values == original.values
        assert copy.constraints == original.constraints
    assert [t.state for t in trials] == [TrialState.COMPLETE] * runs
    assert Counter(freeze(t.params) for t in trials) == Counter(map(freeze, starts.configs))
    for t in trials:  # the best point's objectives on their search scale, and its constraint violation
        assert t.values == pytest.approx(expected_values(t.params))
        mu = expected_point(t.params)["model_utility"]
        assert t.constraints == {str(CONSTRAINT): pytest.approx(0.9 * TARGET_MU - mu)}
    if sampler == "grid":  # lr 4e-3 with alpha 1 is infeasible at every point; lr 4e-3 with alpha 3 at its last
        assert sum(v > 0 for t in trials for v in t.constraints.values()) == 1
        (t43,) = [t for t in trials if t.params == {"lr": 4e-3, "alpha": 3}]
        assert t43.values[0] == pytest.approx(math.log10(final_metrics(t43.params)["forget_quality"]) - 1)
    assert not [r for r in caplog.records if r.name == "sweeps.search.searcher"], "every tell went through"


def test_warm_start_evaluates_the_seeded_configurations_first_in_order(local_ray, tmp_path):
    seeded = [{"lr": 4e-3, "alpha": 3}, {"lr": 1e-3, "alpha": 1}, {"lr": 2e-3, "alpha": 3}]
    starts = make_starts()
    grid = make_tuner(tmp_path, make_searcher(tmp_path, "tpe", seeded=seeded), synthetic_table(), num_samples=5,
                      callbacks=[starts]).fit()
    assert not grid.errors and len(grid) == 5
    assert starts.configs[:3] == seeded
    assert [t.params for t in study(tmp_path).trials[:3]] == seeded


def test_a_trial_without_a_usable_point_is_told_fail_a_failed_one_its_best_point(local_ray, tmp_path):
    from optuna.trial import TrialState

    reported_failure = {"lr": 4e-3, "alpha": 1}  # one point, then the trainable's failure report
    nan_objective = {"lr": 2e-3, "alpha": 1}     # every point has a NaN utility (no failure flag)
    ok = synthetic_table()
    broken = {
        freeze(reported_failure): [ok[freeze(reported_failure)][0],
                                   {FAILED_KEY: 1, "failure_reason": "TrainingDiverged: loss is NaN", "epoch": 1,
                                    "forget_quality": math.nan, "model_utility": math.nan,
                                    "gibberish_rate": math.nan}],
        freeze(nan_objective): [{**p, "model_utility": math.nan} for p in ok[freeze(nan_objective)]],
    }
    starts = make_starts()
    grid = make_tuner(tmp_path, make_searcher(tmp_path, "random", seeded=[reported_failure, nan_objective]),
                      synthetic_table(broken), num_samples=4, callbacks=[starts]).fit()
    assert not grid.errors and len(grid) == 4, "a failed trial does not stop the search"
    assert starts.configs[:2] == [reported_failure, nan_objective]
    trials = [t for t in study(tmp_path).trials if "repeat_of" not in t.user_attrs]
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE,
                                         TrialState.COMPLETE]
    # the diverged trial is worth the point it reached before the failure report (its only one, infeasible)
    table = synthetic_table(broken)
    assert trials[0].values == pytest.approx(expected_values(reported_failure, table))
    assert trials[0].constraints[str(CONSTRAINT)] > 0
    assert trials[1].values is None and trials[1].constraints == {}  # nothing a sampler could mistake for a result
    for t in trials[2:]:
        assert t.values == pytest.approx(expected_values(t.params))


def make_interrupter(marker: Path, after: int):
    from ray.tune import Callback

    class Interrupter(Callback):
        """Ends the Tune run the way Ctrl-C does (SIGUSR1: state saved, unfinished trials resumable) once
        `after` trials completed; the marker keeps the restored copy from firing again."""

        def __init__(self):
            self.done = 0

        def on_trial_complete(self, iteration, trials, trial, **info):
            self.done += 1
            if self.done == after and not marker.exists():
                marker.touch()
                os.kill(os.getpid(), signal.SIGUSR1)

    return Interrupter()


def logging_trainable(table: dict, log: Path):
    """The lookup trainable, appending each start's Tune trial id to `log` first."""
    import ray.tune

    lookup = make_lookup_trainable(table)

    def trainable(config: dict) -> None:
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"trial": ray.tune.get_context().get_trial_id(), **config}) + "\n")
        lookup(config)

    return trainable


def test_a_resumed_search_continues_the_same_study(local_ray, tmp_path):
    import optuna
    import ray.tune
    from optuna.trial import TrialState

    log, marker = tmp_path / "starts.jsonl", tmp_path / "interrupted"
    trainable = logging_trainable(synthetic_table(), log)
    searcher = make_searcher(tmp_path, "tpe", seeded=[{"lr": 1e-3, "alpha": 3}])
    tuner = ray.tune.Tuner(
        trainable, param_space={},
        tune_config=ray.tune.TuneConfig(search_alg=searcher, num_samples=6, max_concurrent_trials=1, reuse_actors=True),
        run_config=ray.tune.RunConfig(name="resume", storage_path=str(tmp_path / "tune"), verbose=0,
                                      callbacks=[make_interrupter(marker, after=3)]))
    tuner.fit()
    assert marker.exists()
    before = [t for t in study(tmp_path).trials if "repeat_of" not in t.user_attrs]
    finished = [t for t in before if t.state == TrialState.COMPLETE]
    assert len(finished) == 3 and len(before) < 6, "interrupted with trials left"
    started_before = [json.loads(line)["trial"] for line in log.read_text().splitlines()]

    path = str(tmp_path / "tune" / "resume")
    assert ray.tune.Tuner.can_restore(path)
    grid = ray.tune.Tuner.restore(path, trainable, resume_unfinished=True).fit()
    assert not grid.errors and len(grid) == 6

    # one study, continued: the finished trials kept, every trial told (none left RUNNING), six in all
    summaries = optuna.get_all_study_summaries(f"sqlite:///{tmp_path / 'optuna.db'}")
    assert [s.study_name for s in summaries] == ["search"]
    after = [t for t in study(tmp_path).trials if "repeat_of" not in t.user_attrs]
    assert [t.state for t in after] == [TrialState.COMPLETE] * 6
    assert [(t.number, t.params, t.values) for t in after[:3]] == [(t.number, t.params, t.values) for t in finished]
    assert after[0].params == {"lr": 1e-3, "alpha": 3}, "the seeded configuration is not enqueued again"
    assert Counter(freeze(t.params) for t in after) == Counter(freeze(r.config) for r in grid)
    # the finished trials did not run again (only the unfinished one, if any, is started again)
    starts = Counter(json.loads(line)["trial"] for line in log.read_text().splitlines())
    done_ids = [tid for tid in started_before if starts[tid] == 1]
    assert len(done_ids) >= 3 and sum(starts.values()) <= 6 + 1
    assert len(starts) == 6
