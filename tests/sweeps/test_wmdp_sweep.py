"""A WMDP-style sweep end to end: RMU on tofu-mini read through lm-evaluation-harness (wmdp-mini / mmlu-mini).

The preset's shape (sweeps/wmdp-mini.yaml) cut to 2 trials of 2 epochs: real Ray, Optuna and MLflow; the lm-eval
metrics are objectives, recorded at every evaluation point and for the target (epoch 0).

    pytest tests/sweeps/test_wmdp_sweep.py -q       (slow: ~70 s on 2 cores with the zoo prepared)
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


def preset() -> dict:
    return yaml.safe_load((REPO / "sweeps" / "wmdp-mini.yaml").read_text())


def test_preset_resolves_and_lm_eval_mistakes_are_one_line_spec_errors(tmp_path):
    from sweeps.spec import load_spec
    from unlearning.errors import ConfigError

    spec = load_spec("wmdp-mini", check_models=False)
    [plan] = spec.searches()
    assert plan.label == "RMU" and plan.space.names() == ["lr", "steering_coeff", "alpha", "layer"]
    assert plan.base["data"]["benchmark"] == "tofu" and plan.base["eval"]["settings"]["lm_eval"] == {
        "tasks": ["wmdp_mini", "mmlu_mini"]}
    assert [(o.name, o.mode) for o in spec.objectives] == [("wmdp_mini_acc", "min"), ("mmlu_mini_acc", "max")]

    def refused(mutate, needle):
        raw = preset()
        mutate(raw)
        path = tmp_path / "bad.yaml"
        path.write_text(yaml.safe_dump(raw, sort_keys=False))
        with pytest.raises(ConfigError, match=needle) as err:
            load_spec(path, check_models=False)
        assert "\n" not in str(err.value)

    refused(lambda r: r["objectives"][0].update(name="wmdp_mini_accuracy"),
            r"field 'objectives.0.name'.*did you mean 'wmdp_mini_acc'")
    refused(lambda r: r["select"].update(require=["wmdp_acc <= 0.3"]), r"field 'select.require.0.metric'")
    refused(lambda r: r["eval"]["settings"]["lm_eval"].update(tasks=["wmdp_mini", "mmlu_minii"]),
            r"field 'eval.settings.lm_eval.tasks': got 'mmlu_minii'.*did you mean 'mmlu_mini'")
    refused(lambda r: r["eval"]["settings"]["lm_eval"].update(batch=8),
            r"field 'eval.settings.lm_eval.batch'.*allowed keys")
    refused(lambda r: r["eval"]["settings"]["lm_eval"].update(limit=-1), r"field 'eval.settings.lm_eval.limit'")
    refused(lambda r: r.update(data={"source": str(tmp_path), "forget_split": "forget10"},
                               models=[{"name": "org/model", "retain_model": "org/retain"}]),
            r"field 'eval.settings.lm_eval.tasks'.*derived from tofu-mini")

    # lm-eval's registered tasks by name; a local copy's relative path is made absolute for the trials
    local = tmp_path / "wmdp-bio.jsonl"
    local.write_text(json.dumps({"question": "q?", "choices": ["a", "b", "c", "d"], "answer": 1}) + "\n")
    raw = preset()
    raw["eval"]["settings"]["lm_eval"] = {"tasks": ["wmdp_bio", "mmlu"],
                                          "data_files": {"wmdp_bio": os.path.relpath(local)}}
    raw["objectives"] = [{"name": "wmdp_bio_acc", "mode": "min"}, {"name": "mmlu_acc", "mode": "max"}]
    del raw["select"]
    path = tmp_path / "hub.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    [plan] = load_spec(path, check_models=False).searches()
    assert plan.base["eval"]["settings"]["lm_eval"] == {"tasks": ["wmdp_bio", "mmlu"],
                                                        "data_files": {"wmdp_bio": str(local.resolve())}}


@pytest.mark.slow
def test_wmdp_mini_sweep_unlearns_forget_facts_and_records_lm_eval_metrics(prepared_zoo, tmp_path):
    from mlflow import MlflowClient

    from sweeps.pareto import pareto_front
    from sweeps.results import read_results
    from sweeps.service import LOOPBACK_ENV, run_sweep
    from sweeps.spec import load_spec

    for k, v in LOOPBACK_ENV.items():
        os.environ.setdefault(k, v)
    raw = preset()
    raw.update(name="wmdp-e2e", storage=str(tmp_path / "sweeps"), tracking={},
               budget={"num_trials": 2, "max_concurrent": 2, "max_failures": 0})
    raw["fixed"]["epochs"] = 2
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
                    "wmdp_mini_acc_norm", "forget_quality"):
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
