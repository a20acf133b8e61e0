"""The WMDP-style preset (presets/wmdp-mini.yaml) resolves, and mistakes in its lm-eval block are one-line spec errors.

    pytest tests/sweeps/test_wmdp_spec.py -q        (~15-30 s: names outside wmdp-mini read lm-eval's task index)
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


def preset() -> dict:
    return yaml.safe_load((REPO / "presets" / "wmdp-mini.yaml").read_text())


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
