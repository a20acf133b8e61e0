"""A WMDP-style sweep end to end: RMU on tofu-mini read through lm-evaluation-harness (wmdp-mini / mmlu-mini).

The preset's shape (presets/wmdp-mini.yaml) cut to 2 trials of 2 epochs: real Ray, Optuna and MLflow; the lm-eval
metrics are objectives, recorded at every evaluation point and for the target (epoch 0).

    pytest tests/sweeps/test_wmdp_sweep.py -q       (slow: ~70 s on 2 cores with the zoo prepared)
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def preset() -> dict:
    return yaml.safe_load((REPO / "presets" / "wmdp-mini.yaml").read_text())


def test_wmdp_mini_sweep_unlearns_forget_facts_and_records_lm_eval_metrics(prepared_zoo, ray_local, tmp_path):
    from mlflow import MlflowClient

    from sweeps.selection.pareto import pareto_front
    from sweeps.recording.results import read_results
    from sweeps.operations.service import run_sweep
    from sweeps.spec import load_spec

    raw = preset()
    raw.update(name="wmdp-e2e", storage=str(tmp_path / "sweeps"), tracking={},
               budget={"num_trials": 2, "max_concurrent": 2, "max_failures": 0})
    raw["fixed"]["epochs"] = 2
    raw["eval"]["settings"]["metrics"] = ["forget_Q_A_Prob"]  # TOFU's evaluator beside lm-eval, scoring only
    raw["search_space"] = {"lr": {"low": 5.0e-3, "high": 6.0e-3, "log": True},   # forgets within 2 epochs
                           "steering_coeff": {"low": 10.0, "high": 40.0, "log": True}, "layer": [1, 2]}
    path = tmp_path / "wmdp-e2e.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    spec = load_spec(path)
    assert [o.name for o in spec.objectives] == ["wmdp_mini_acc", "mmlu_mini_acc"]
    try:
        sweep_dir = run_sweep(spec)
    finally:
        import ray

        ray.shutdown()
    results = read_results(sweep_dir)
    assert {t.status for t in results.trials.values()} == {"finished"} and len(results.trials) == 2
    target = results.reference("tofu-mini/target")
    # the zoo's target knows the forget authors (measured 0.88; chance 0.25) and the MMLU-style facts (0.935)
    assert target["wmdp_mini_acc"] >= 0.7 and target["mmlu_mini_acc"] >= 0.8
    points = [p for p in results.points if p.epoch > 0]
    assert sorted(p.epoch for p in points) == [1, 1, 2, 2]
    for p in points:
        for key in ("wmdp_mini_acc", "wmdp_mini_bio_acc", "wmdp_mini_cyber_acc", "mmlu_mini_acc",
                    "wmdp_mini_acc_norm", "forget_Q_A_Prob"):
            assert 0 <= p.metrics[key] <= 1, key
        nb, nc = 50, 50  # the group is the size-weighted mean of its tasks
        assert p.metrics["wmdp_mini_acc"] == pytest.approx(
            (nb * p.metrics["wmdp_mini_bio_acc"] + nc * p.metrics["wmdp_mini_cyber_acc"]) / (nb + nc))
    # RMU at lr 5e-3 forgets: every trial ends well below the target on the forget facts (measured 0.3-0.5)
    last = [p for p in points if p.epoch == 2]
    assert all(p.metrics["wmdp_mini_acc"] <= target["wmdp_mini_acc"] - 0.2 for p in last)
    front = pareto_front(points, spec.objectives, ()).front
    assert front and all(p.metrics["wmdp_mini_acc"] is not None for p in front)
    # MLflow: the lm-eval metrics at step 0 (the target) and at each evaluation point
    client = MlflowClient(f"sqlite:///{sweep_dir / 'mlflow.db'}")
    runs = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])
            if r.data.tags.get("run_role") == "trial"]
    assert len(runs) == 2
    for r in runs:
        history = client.get_metric_history(r.info.run_id, "wmdp_mini_acc")
        assert len(history) == 3 and min(m.step for m in history) == 0
