"""An LKF sweep end to end on lkf-mini (LKF's splits made from tofu-mini's facts; the zoo's target knows them): the
worst case over 16 question variants and the relearning attack as objectives, the attack at the last point only.

The preset's shape (presets/lkf-mini.yaml) cut to 2 trials of 2 epochs: real Ray, Optuna and MLflow.

    pytest tests/sweeps/test_lkf_sweep.py -q       (the e2e test is slow: ~60-90 s on 2 cores, zoo prepared)
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


def preset() -> dict:
    return yaml.safe_load((REPO / "presets" / "lkf-mini.yaml").read_text())


def test_preset_resolves_and_lkf_mistakes_are_one_line_spec_errors(tmp_path):
    from sweeps.spec import load_spec
    from unlearning.errors import ConfigError

    spec = load_spec("lkf-mini", check_models=False)
    [plan] = spec.searches()
    assert plan.base["data"]["benchmark"] == "lkf" and plan.base["data"]["forget_split"] == "forget_standard"
    assert [(o.name, o.mode) for o in spec.objectives] == [
        ("forget_Q_A_ROUGE_worst", "min"), ("retain_Q_A_ROUGE", "max"), ("forget_Q_A_ROUGE_worst_relearn", "min")]
    assert plan.base["eval"]["settings"]["robustness"]["relearn"]["source"] == "relearn"

    def refused(mutate, needle):
        raw = preset()
        mutate(raw)
        path = tmp_path / "bad.yaml"
        path.write_text(yaml.safe_dump(raw, sort_keys=False))
        with pytest.raises(ConfigError, match=needle) as err:
            load_spec(path, check_models=False)
        assert "\n" not in str(err.value)

    refused(lambda r: r["objectives"].append({"name": "forget_quality", "mode": "max"}),
            r"field 'objectives.3.name'.*unknown metric")  # LKF has no retain model, so no forget_quality
    refused(lambda r: r["data"].update(forget_split="forget10"), r"field 'data.forget_split'.*forget_standard")
    refused(lambda r: r["eval"]["settings"]["robustness"]["relearn"].update(steps=5000),
            r"field 'eval.settings.robustness.relearn.steps'.*at most 1000")
    refused(lambda r: r["eval"]["settings"].update(metrics=["forget_Q_A_ROUGE_worst", "retain_Q_A_ROUGE"]),
            r"field 'eval.settings.metrics'.*add 'forget_Q_A_ROUGE_worst_relearn'")
    refused(lambda r: r.update(models=[{"name": "tofu-mini/target", "retain_model": "tofu-mini/retain95"}]),
            r"field 'models.0.retain_model'.*no retain model")


def test_lkf_train_config_defaults_and_split_errors():
    from unlearning.errors import ConfigError
    from unlearning.train.config import parse_train_config

    base = {"model": {"name": "tofu-mini/target"}, "method": {"name": "NPO"}}
    data = parse_train_config({**base, "data": {"benchmark": "lkf"}}).data
    assert (data.source, data.forget_split, data.retain_split) == ("lkf-mini", "forget_standard", "retain_standard")
    hub = parse_train_config({**base, "data": {"benchmark": "lkf", "source": "hub",
                                               "forget_split": "forget_train_para"}}).data
    assert (hub.source, hub.forget_split) == ("hub", "forget_train_para")
    with pytest.raises(ConfigError, match=r"field 'data.retain_split'.*retain_standard"):
        parse_train_config({**base, "data": {"benchmark": "lkf", "retain_split": "retain90"}})


@pytest.mark.slow
def test_lkf_mini_sweep_searches_worst_case_and_relearning_objectives(prepared_zoo, ray_local, tmp_path):
    from mlflow import MlflowClient

    from sweeps.selection.export import export
    from sweeps.selection.pareto import sweep_fronts
    from sweeps.recording.results import read_results
    from sweeps.operations.service import run_sweep
    from sweeps.spec import load_spec
    from unlearning.train.config import load_train_config

    raw = preset()
    raw.update(name="lkf-e2e", storage=str(tmp_path / "sweeps"), tracking={},
               budget={"num_trials": 2, "max_concurrent": 2, "max_failures": 0})
    raw["fixed"]["epochs"] = 2
    raw["eval"]["every"] = 1
    raw["eval"]["settings"].update(retain_limit=5, max_new_tokens=16)
    raw["eval"]["settings"]["robustness"]["relearn"].update(every=None, steps=5, rows=10)  # at the last point only
    raw["constraints"] = []
    raw["search_space"] = {"lr": {"low": 2.0e-3, "high": 3.0e-3, "log": True}, "alpha": {"low": 2.0, "high": 4.0}}
    path = tmp_path / "lkf-e2e.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    spec = load_spec(path)
    try:
        sweep_dir = run_sweep(spec)
    finally:
        import ray

        ray.shutdown()
    results = read_results(sweep_dir)
    assert {t.status for t in results.trials.values()} == {"finished"} and len(results.trials) == 2
    target = results.reference("tofu-mini/target")
    # the zoo's target knows lkf-mini's forget facts (measured ROUGE 0.81, worst of 16 variants 0.84) and is
    # attacked once by the driver (epoch 0)
    assert target["forget_Q_A_ROUGE_worst"] >= 0.6 and target["forget_Q_A_ROUGE_worst_relearn"] >= 0.5
    points = sorted((p for p in results.points if p.epoch > 0), key=lambda p: (p.trial_id, p.epoch))
    assert [p.epoch for p in points] == [1, 2, 1, 2]
    for p in points:
        assert p.metrics["forget_Q_A_ROUGE_worst"] >= p.metrics["forget_Q_A_ROUGE"] - 1e-9  # a max over variants
        assert 0 <= p.metrics["retain_Q_A_ROUGE"] <= 1
        attacked = p.epoch == 2  # every: null = the last point only; the other point has no attack metric
        value = p.metrics.get("forget_Q_A_ROUGE_worst_relearn")
        assert (value is not None and math.isfinite(value)) == attacked, (p.epoch, value)
        assert (p.metrics.get("relearn_seconds") or 0) > 0 if attacked else "relearn_seconds" not in p.metrics
    # NPO at lr 2e-3..3e-3 forgets within 2 epochs: the worst case drops well below the target's
    assert all(p.metrics["forget_Q_A_ROUGE_worst"] <= target["forget_Q_A_ROUGE_worst"] - 0.3
               for p in points if p.epoch == 2)
    front = sweep_fronts(spec, results)["tofu-mini/target"].front  # (sweep_fronts: the spec's own objectives)
    assert front and all(p.epoch == 2 for p in front)  # only attacked points have every objective
    # the knee exports as an LKF train config that `unlearn-sweep train` replays (measured: the same numbers)
    knee = sweep_fronts(spec, results)["tofu-mini/target"].knee
    [path] = export(results, "knee", tmp_path / "export", spec)
    exported = load_train_config(path)
    assert (exported.data.benchmark, exported.data.source, exported.data.forget_split) == (
        "lkf", "lkf-mini", "forget_standard") and knee is not None
    assert "JensUn" in path.read_text() or "embedded" in path.read_text()
    client = MlflowClient(f"sqlite:///{sweep_dir / 'mlflow.db'}")
    runs = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])
            if r.data.tags.get("run_role") == "trial"]
    assert len(runs) == 2
    for r in runs:
        history = client.get_metric_history(r.info.run_id, "forget_Q_A_ROUGE_worst_relearn")
        assert sorted(m.step for m in history)[0] == 0 and len(history) == 2  # the target (step 0) and epoch 2
