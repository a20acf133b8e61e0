"""Exact resume of a search without Ray: the searcher re-seeds its sampler from the study's history, so a searcher
restarted from its saved state and the study's storage proposes what an uninterrupted one would; a trial asked
after the last saved state is closed FAIL as lost and replaced once; the mux recounts each search's budget from
its study. The real-driver cases (Ctrl-C, SIGTERM, SIGKILL, then `unlearn-sweep resume`) are in test_faults.py.

    .venv/bin/python -m pytest tests/sweeps/test_resume_exact.py -q       # a few seconds
"""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution

from sweeps.search.multiplex import SearchMux
from sweeps.spec.objectives import Objective
from sweeps.search.searcher import LOST_ATTR, TUNE_ID_ATTR, OptunaSearcher
from trainables.trial import SWEEP_KEY

OBJECTIVES = [Objective(name="forget_quality", mode="max", scale="log"), Objective(name="model_utility", mode="max")]
SPACE = {"lr": FloatDistribution(1e-4, 1e-2, log=True), "alpha": FloatDistribution(0.5, 5.0)}


def outcome(config: dict) -> dict:
    """A deterministic trial result of a configuration (two competing objectives)."""
    lr, alpha = config["lr"], config.get("alpha", 1.0)
    return {"forget_quality": min(1.0, lr * 50), "model_utility": 0.9 - 10 * lr - 0.01 * alpha}


def searcher(storage: str, sampler: str = "tpe", space: dict | None = None, name: str = "m.dv") -> OptunaSearcher:
    return OptunaSearcher(space=space or SPACE, objectives=OBJECTIVES, constraints=[], references={},
                          sampler=sampler, seed=3, study_name=name, storage=storage)


def restart(old: OptunaSearcher, tmp_path: Path, sampler: str, space: dict | None = None) -> OptunaSearcher:
    """A new driver: the searcher rebuilt from the spec, its state restored from its last save."""
    path = tmp_path / f"state-{id(old)}.pkl"
    old.save(str(path))
    new = searcher(old.storage, sampler, space, old.study_name)
    new.restore(str(path))
    return new


def run(tmp_path: Path, tag: str, sampler: str, n: int, restarts=(), space: dict | None = None) -> list[dict]:
    """n trials one after the other (each finished before the next is asked), the searcher restarted before
    the trials numbered in `restarts`; returns the proposed configurations."""
    s = searcher(f"sqlite:///{tmp_path / (tag + '.db')}", sampler, space)
    configs = []
    for i in range(n):
        if i in restarts:
            s = restart(s, tmp_path, sampler, space)
        config = s.suggest(f"t{i}")
        configs.append(config)
        s.on_trial_complete(f"t{i}", result=outcome(config))
    return configs


@pytest.mark.parametrize("sampler", ["tpe", "random", "nsga2"])
def test_a_restarted_searcher_continues_the_uninterrupted_sequence(tmp_path, sampler):
    n = 7  # TPE: 4 random start-up trials, then the model
    straight = run(tmp_path, "straight", sampler, n)
    resumed = run(tmp_path, "resumed", sampler, n, restarts=(2, 5))
    assert resumed == straight
    keys = [tuple(sorted(c.items())) for c in resumed]
    assert len(set(keys)) == n, "no configuration proposed twice"


def test_a_grid_is_continued_not_restarted(tmp_path):
    space = {"lr": CategoricalDistribution([1e-3, 2e-3, 4e-3]), "alpha": CategoricalDistribution([1, 3])}
    straight = run(tmp_path, "straight", "grid", 6, space=space)
    resumed = run(tmp_path, "resumed", "grid", 6, restarts=(1, 4), space=space)
    assert resumed == straight and len({tuple(sorted(c.items())) for c in resumed}) == 6


def test_a_trial_asked_after_the_last_save_is_closed_lost_and_replaced_like_a_failed_one(tmp_path):
    storage = f"sqlite:///{tmp_path / 'killed.db'}"
    s = searcher(storage)
    for i in range(3):
        s.on_trial_complete(f"t{i}", result=outcome(s.suggest(f"t{i}")))
    state = tmp_path / "saved.pkl"
    s.save(str(state))          # Tune's last snapshot
    lost_config = s.suggest("t3")  # asked, then the driver is killed before the next snapshot
    back = searcher(storage)
    back.restore(str(state))
    known = {f"t{i}": ("TERMINATED", None) for i in range(3)}
    assert back.reconcile(known) == ["t3"]
    assert back.reconcile(known) == []  # idempotent
    frozen = back.study.get_trials()[3]
    assert frozen.state == optuna.trial.TrialState.FAIL and frozen.user_attrs[TUNE_ID_ATTR] == "t3"
    assert "lost" in frozen.user_attrs[LOST_ATTR]
    assert back.counted() == 3      # the lost trial is not part of the budget: it is replaced once
    replacement = back.suggest("t4")
    assert replacement != lost_config

    # without the kill, the same history (3 finished, the 4th failed) asks the same next configuration
    u = searcher(f"sqlite:///{tmp_path / 'straight.db'}")
    for i in range(3):
        u.on_trial_complete(f"t{i}", result=outcome(u.suggest(f"t{i}")))
    assert u.suggest("t3") == lost_config
    u.on_trial_complete("t3", error=True)
    assert u.suggest("t4") == replacement


def test_a_trial_tune_knows_but_the_saved_searcher_does_not_is_taken_back(tmp_path):
    storage = f"sqlite:///{tmp_path / 'newer-tune.db'}"
    s = searcher(storage)
    s.on_trial_complete("t0", result=outcome(s.suggest("t0")))
    state = tmp_path / "saved.pkl"
    s.save(str(state))             # the searcher's state is older than Tune's trial list
    config = s.suggest("t1")
    back = searcher(storage)
    back.restore(str(state))
    assert back.reconcile({"t0": ("TERMINATED", None), "t1": ("RUNNING", None)}) == []
    back.on_trial_complete("t1", result=outcome(config))
    states = [t.state for t in back.study.get_trials()]
    assert states == [optuna.trial.TrialState.COMPLETE] * 2 and back.counted() == 2


def test_the_mux_recounts_each_search_from_its_study_after_a_restore(tmp_path):
    storage = f"sqlite:///{tmp_path / 'mux.db'}"
    searches = {sid: (searcher(storage, name=sid), {"search_id": sid}) for sid in ("m.dv", "m.none")}
    mux = SearchMux(searches, num_trials=2, concurrent=True, max_concurrent=2)
    configs = {}
    for tid in ("a", "b"):
        configs[tid] = mux.suggest(tid)
    assert mux.suggest("x") is None  # both slots taken
    mux.on_trial_complete("a", result=outcome(configs["a"]))
    state = tmp_path / "mux.pkl"
    mux.save(str(state))              # snapshot: a finished, b running
    configs["c"] = mux.suggest("c")   # asked after the snapshot: lost at the kill
    lost_sid = configs["c"][SWEEP_KEY]["search_id"]

    again = SearchMux({sid: (searcher(storage, name=sid), {"search_id": sid}) for sid in ("m.dv", "m.none")},
                      num_trials=2, concurrent=True, max_concurrent=2)
    again.restore(str(state))
    trials = [SimpleNamespace(trial_id=tid, status=st, config=configs[tid], last_result=None)
              for tid, st in (("a", "TERMINATED"), ("b", "PENDING"))]
    assert again.reconcile(trials) == {lost_sid: ["c"]}
    assert sum(again.started.values()) == 2 and {k: len(v) for k, v in again.live.items()} == {
        configs["b"][SWEEP_KEY]["search_id"]: 1, **{sid: 0 for sid in again.order
                                                    if sid != configs["b"][SWEEP_KEY]["search_id"]}}
    # a configuration is a search's (the searches share the sweep's seed: their draws pair up across searches)
    key = lambda c: (c[SWEEP_KEY]["search_id"], tuple(sorted((k, v) for k, v in c.items() if k != SWEEP_KEY)))  # noqa: E731
    seen = {key(c) for c in configs.values()}
    for tid in ("d", "e"):           # the budget: 2 per search, the lost one replaced once
        config = again.suggest(tid)
        assert config is not None
        config = key(config)
        assert config not in seen
        seen.add(config)
        again.on_trial_complete(tid, result=outcome(dict(config[1])))
    again.on_trial_complete("b", result=outcome(configs["b"]))
    assert again.suggest("f") == "FINISHED"
    for sid, (s, _) in searches.items():
        trials = s.study.get_trials()
        assert sum(1 for t in trials if t.state == optuna.trial.TrialState.COMPLETE) == 2
        assert not [t for t in trials if t.state == optuna.trial.TrialState.RUNNING]
        assert all(math.isfinite(v) for t in trials if t.values for v in t.values)


def test_a_sweep_saved_before_the_modules_moved_is_refused_in_one_line(tmp_path):
    """Tune's saved state pickles the searchers and schedulers by module path (the flat modules of sweeps/ before
    it was grouped by role): resuming such a sweep is a ConfigError (exit 2, one line), not a traceback."""
    from sweeps.search.tuning import make_tuner, tune_path
    from sweeps.spec import PRESET_DIR, load_spec
    from unlearning.errors import ConfigError

    raw = (PRESET_DIR / "tofu-mini.yaml").read_text().replace("storage: runs/sweeps", f"storage: {tmp_path}")
    (tmp_path / "old.yaml").write_text(raw)
    spec = load_spec(tmp_path / "old.yaml", check_models=False)
    shared = SimpleNamespace(target_metrics={"model_utility": 0.85, "forget_quality": 1e-15, "gibberish_rate": 0.0},
                             reference_dir=str(tmp_path / "ref"), inputs_dir=str(tmp_path / "inputs"))
    tune_path(spec).mkdir(parents=True)
    (tune_path(spec) / "tuner.pkl").write_bytes(b"\x80\x04csweeps.flat_module\nSearchMux\n.")  # a moved module
    with pytest.raises(ConfigError, match="'sweeps.flat_module'.*before sweeps/ was grouped by role"):
        make_tuner(spec, [(spec.searches()[0], shared, [])], None, {"CPU": 2.0}, resume=True)
