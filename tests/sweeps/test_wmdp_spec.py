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


# --------------------------------------------------------------------------------------------------
# data.benchmark: wmdp (RMU on WMDP's corpora; wmdp-mini's made from tofu-mini), evaluated by its lm_eval block


def corpora_spec(**over) -> dict:
    raw = preset()
    raw.update(name="wmdp-corpora", models=["tofu-mini/target"], data={"benchmark": "wmdp", "source": "wmdp-mini"},
               eval={"every": 1}, objectives=None)
    del raw["select"]
    raw.update(over)
    return {k: v for k, v in raw.items() if v is not None}


def test_a_wmdp_spec_trains_on_the_corpora_and_reads_its_lm_eval_block(tmp_path):
    from sweeps.selection.export import open_unlearning_command
    from sweeps.spec import parse_spec

    spec = parse_spec({**corpora_spec(), "storage": str(tmp_path)}, where="spec", check_models=False)
    [plan] = spec.searches()
    assert spec.data_label == "wmdp-mini" and not spec.retain_derived and spec.models[0].retain_model is None
    assert plan.base["data"] == {"benchmark": "wmdp", "source": "wmdp-mini", "forget_split": "cyber-forget-corpus",
                                 "retain_split": "cyber-retain-corpus", "corpus": "cyber", "max_length": 64,
                                 "limit": None}
    # no lm_eval block given: wmdp-mini's tasks, written into the plan the trials run
    assert plan.base["eval"]["settings"] == {"lm_eval": {"tasks": ["wmdp_mini", "mmlu_mini"]}}
    assert [(o.name, o.mode) for o in spec.objectives] == [("wmdp_mini_acc", "min"), ("mmlu_mini_acc", "max")]
    smoke = spec.smoke()
    assert smoke.searches()[0].base["eval"]["settings"]["lm_eval"]["limit"] == 8
    assert open_unlearning_command(spec, plan, plan.base, "t").startswith("none: the model and wmdp-mini are")


@pytest.mark.parametrize("over, field, fix", [
    ({"models": [{"name": "tofu-mini/target", "retain_model": "tofu-mini/retain90"}]}, "models.0.retain_model",
     "no retain model"),
    ({"models": ["muse-mini/target"]}, "models.0.name", "tofu-mini zoo model"),
    ({"eval": {"settings": {"metrics": ["forget_quality"]}}}, "eval.settings.metrics", "lm-evaluation-harness alone"),
    ({"method": {"name": "IdkDPO"}, "search_space": {"lr": {"low": 1.0e-3, "high": 2.0e-3}}}, "method.name",
     "raw text"),
    ({"data": {"benchmark": "wmdp", "source": "wmdp-mini", "corpus": "bio"}}, "data.corpus", "one corpus pair"),
    ({"data": {"benchmark": "wmdp", "source": "tofu-mini"}}, "data.source", "set data.benchmark: tofu"),
    ({"data": {"benchmark": "tofu", "source": "wmdp-mini"}}, "data.source", "set data.benchmark: wmdp"),
    ({"data": {"benchmark": "wmdp", "source": "hub", "corpus": "bio"}}, "data.source", "not on the hub"),
    ({"data": {"benchmark": "wmdp", "source": "hub"}, "models": ["org/model"],
      "eval": {"settings": {"lm_eval": {"tasks": ["wmdp_mini", "mmlu_mini"]}}}}, "lm_eval.tasks", "wmdp-mini"),
    ({"data": {"benchmark": "wmdp", "source": "hub"}, "models": ["org/model"],
      "objectives": [{"name": "wmdp_mini_acc", "mode": "min"}],
      "eval": {"settings": {"lm_eval": {"tasks": ["wmdp_cyber"], "data_files": {"wmdp_cyber": "DATA"}}}}},
     "objectives.0.name", "did you mean 'wmdp_cyber_acc'"),
])
def test_wmdp_spec_mistakes_are_one_line_errors(over, field, fix, tmp_path):
    from sweeps.spec import parse_spec
    from unlearning.errors import ConfigError

    local = tmp_path / "wmdp-cyber.jsonl"   # a local copy of wmdp_cyber's data: no hub, no task index download
    local.write_text(json.dumps({"question": "q?", "choices": ["a", "b", "c", "d"], "answer": 1}) + "\n")
    raw = json.loads(json.dumps(corpora_spec(**over)).replace('"DATA"', json.dumps(str(local))))
    with pytest.raises(ConfigError) as err:
        parse_spec({**raw, "storage": str(tmp_path)}, where="spec", check_models=False)
    assert field in str(err.value.field) and fix in err.value.fix and "\n" not in str(err.value), err.value


def test_a_corpora_folder_without_both_files_is_refused_and_exports_its_paths(tmp_path):
    from types import SimpleNamespace

    from sweeps.spec import parse_spec
    from unlearning.benchmarks.registry import get_benchmark
    from unlearning.errors import ConfigError
    from unlearning.train.config import DataSection

    folder = tmp_path / "wmdp-corpora"
    folder.mkdir()
    (folder / "cyber-forget-corpus.jsonl").write_text(json.dumps({"text": "x"}) + "\n")
    local = tmp_path / "wmdp-cyber.jsonl"
    local.write_text(json.dumps({"question": "q?", "choices": ["a", "b", "c", "d"], "answer": 1}) + "\n")
    raw = corpora_spec(data={"benchmark": "wmdp", "source": str(folder)}, models=["org/model"], storage=str(tmp_path),
                       eval={"every": 0.5, "settings": {"lm_eval": {"tasks": ["wmdp_cyber"],
                                                                    "data_files": {"wmdp_cyber": str(local)}}}},
                       objectives=[{"name": "wmdp_cyber_acc", "mode": "min"}])
    with pytest.raises(ConfigError, match=r"field 'data.source'.*cyber-retain-corpus.*data/wmdp/wmdp-corpora"):
        parse_spec(raw, where="spec", check_models=False)
    (folder / "cyber-retain-corpus.jsonl").write_text(json.dumps({"text": "y"}) + "\n")
    spec = parse_spec(raw, where="spec", check_models=False)
    assert spec.searches()[0].base["data"]["max_length"] == 512   # open-unlearning's chunks on real data
    # open-unlearning's WMDP experiment, reading this folder's files instead of data/wmdp/wmdp-corpora
    wmdp, model = get_benchmark("wmdp"), SimpleNamespace(name="org/model")
    args = wmdp.open_unlearning_args(spec.data, model, "RMU", "t")
    assert args[1:3] == ["experiment=unlearn/wmdp/default", "data_split=cyber"]
    assert f"data.forget.WMDP_forget.args.hf_args.data_files={folder}/cyber-forget-corpus.jsonl" in args
    assert "trainer.args.max_steps=-1" in args   # every chunk, `epochs` times (no limit)
    hub = wmdp.open_unlearning_args(DataSection(benchmark="wmdp", source="hub", limit=1280), model, "RMU", "t")
    assert not any("data_files" in a or "max_steps" in a or "max_length" in a for a in hub)   # the experiment's own
