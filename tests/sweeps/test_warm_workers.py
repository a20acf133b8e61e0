"""Warm Ray workers on a real local Ray: the service's `init_ray` has every worker import the trial's heavy
modules as it starts (`trainables/warm_imports.py`), so the sweep's first Tune trial finds torch imported when its
function starts (its actor's start, before Tune's `on_trial_start`, paid the imports); with
UNLEARN_SWEEP_COLD_WORKERS=1 it does not.

    .venv/bin/python -m pytest tests/sweeps/test_warm_workers.py -q
"""

from __future__ import annotations

import os
import sys
import time

import pytest

from trainables import warm_imports


def test_import_heavy_skips_what_cannot_be_imported():
    got = warm_imports.import_heavy(("json", "no_such_module_for_unlearn_sweep", "csv"))
    assert set(got) >= {"json", "csv"} and "no_such_module_for_unlearn_sweep" not in got
    assert warm_imports.finished_at is not None and warm_imports.finished_at <= time.time()


def _probe(config):
    """The trial: what its worker had imported when it started."""
    import ray.tune

    from trainables import warm_imports as w

    torch_before = "torch" in sys.modules   # this function imports nothing heavy itself
    # the first evaluation point's imports (rouge-score + nltk, scipy.stats): 2.8 s of the first trial's own clock
    eval_before = all(m in sys.modules for m in ("rouge_score", "nltk", "scipy.stats", "unlearning.benchmarks.tofu"))
    ray.tune.report({"torch_before": torch_before, "eval_before": eval_before, "pid": os.getpid(),
                     "hook_done": w.finished_at or 0.0, "started": time.time()})


def _first_trial(monkeypatch, tmp_path, cold: bool) -> tuple[dict, float]:
    import ray
    import ray.tune

    from sweeps.operations.service import init_ray
    from sweeps.spec import load_spec

    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])   # this test module is not importable in workers
    monkeypatch.setenv(warm_imports.ENV_OFF, "1" if cold else "0")
    spec = load_spec("tofu-mini", check_models=False)
    init_ray(spec, None)
    try:
        fit_at = time.time()   # the Tuner starts: from here on the trial's clock runs
        tuner = ray.tune.Tuner(ray.tune.with_resources(_probe, {"cpu": 1}), param_space={},
                               tune_config=ray.tune.TuneConfig(num_samples=1, reuse_actors=True),
                               run_config=ray.tune.RunConfig(storage_path=str(tmp_path / "tune"), verbose=0))
        result = tuner.fit()[0].metrics
    finally:
        ray.shutdown()
    return result, fit_at


@pytest.mark.slow
def test_the_first_trial_lands_in_a_warm_worker(monkeypatch, tmp_path):
    result, fit_at = _first_trial(monkeypatch, tmp_path, cold=False)
    assert result["torch_before"] and result["eval_before"], result
    # imported by the hook as the trial's worker started, before the trial's function ran
    assert 0 < result["hook_done"] <= result["started"], (result, fit_at)


@pytest.mark.slow
def test_cold_workers_leave_the_imports_to_the_trial(monkeypatch, tmp_path):
    result, _ = _first_trial(monkeypatch, tmp_path, cold=True)
    assert not result["torch_before"] and not result["eval_before"] and result["hook_done"] == 0.0, result
