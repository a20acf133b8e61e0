"""Sweep spec validation: the shipped presets load, and malformed specs fail with ONE line naming the field
path, the value and the fix, before anything starts.

    .venv/bin/python -m pytest tests/sweeps/test_spec.py -q
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from sweeps.spec import PRESET_DIR, first_line_command, list_presets, load_spec
from unlearning.errors import ConfigError


def base(tmp_path: Path) -> dict:
    return {
        "name": "t",
        "models": ["tofu-mini/target"],
        "data": {"source": "tofu-mini", "forget_split": "forget10"},
        "method": {"name": "NPO", "baldro": ["dv", "none"]},
        "fixed": {"beta": 0.1},
        "search_space": {"lr": {"low": 1e-4, "high": 1e-3, "log": True},
                         "beta_dv": {"low": 0.5, "high": 10.0, "log": True}},
        "storage": str(tmp_path / "runs"),
    }


def write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def set_path(data: dict, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    node = data
    for key in parents:
        node = node.setdefault(key, {})
    if value is DELETE:
        node.pop(last)
    else:
        node[last] = value


DELETE = object()

# (edit path, new value, field named in the error, text of the value, text of the fix)
MALFORMED = [
    ("budgett", {"num_trials": 3}, "budgett", "num_trials", "did you mean 'budget'"),
    ("resources.gpu", 1, "resources.gpu", "1", "did you mean 'gpus'"),
    ("budget.num_trials", "many", "budget.num_trials", "'many'", "whole number"),
    ("budget.num_trials", -3, "budget.num_trials", "-3", "greater than or equal to 1"),
    ("budget.time_budget_s", 0, "budget.time_budget_s", "0", "greater than 0"),
    ("search_space.beta_dv", {"low": 2.0, "high": 2.0}, "search_space.beta_dv.high", "2.0", "empty range"),
    ("search_space.beta_dv", {"low": 10.0, "high": 0.5, "log": True}, "search_space.beta_dv.low", "10.0", "swap"),
    ("search_space.beta_dv", {"low": 0.0, "high": 1.0, "log": True}, "search_space.beta_dv.low", "0.0", "low > 0"),
    ("search_space.dv_mode", [], "search_space.dv_mode.choices", "[]", "at least one choice"),
    ("search_space.dv_mode", ["softmin", "softest"], "search_space.dv_mode.choices", "'softest'", "softmin"),
    ("search_space.betadv", [1.0, 2.0], "search_space.betadv", "betadv", "did you mean 'beta_dv'"),
    ("search_space.epochs", {"low": 1.5, "high": 3}, "search_space.epochs.low", "1.5", "integer hyperparameter"),
    ("search_space.lr", 0.001, "search_space.lr", "0.001", "put it under `fixed:`"),
    ("search_space", "npo-large", "search_space", "npo-large", "unknown preset"),
    ("method.name", "NPOO", "method.name", "NPOO", "use one of"),
    ("method.baldro", "dvv", "method.baldro", "dvv", "use none, g (BalDRO-G) or dv"),
    ("method.name", "DrNPO", "method.baldro", "'none'", "already means BalDRO-DV"),  # with baldro [dv, none]
    ("fixed.beta1", 5.0, "fixed.beta1", "5.0", "has no hyperparameter 'beta1'"),
    ("fixed.group_ratio", 0.5, "fixed.group_ratio", "0.5", "has no hyperparameter 'group_ratio'"),
    ("fixed.lr", -1.0, "fixed.lr", "-1.0", "greater than 0"),
    ("fixed.beta_dv", 2.0, "search_space.beta_dv", "beta_dv", "both fixed and searched"),
    ("fixed.sigma_forget", 2.0, "search_space.beta_dv", "beta_dv", "both fixed and searched"),
    ("data.forget_split", "forget15", "data.forget_split", "forget15", "'forget01', 'forget05' or 'forget10'"),
    ("data.benchmark", "tofu-maxi", "data.benchmark", "tofu-maxi", "'tofu'"),
    ("benchmark", {"name": "tofu-mini"}, "benchmark", "benchmark", "train config's `data:` section"),
    ("deepspeed", {"zero_stage": 2}, "deepspeed", "deepspeed", "put them under fixed:"),
    ("fixed.learning_rat", 1e-3, "fixed.learning_rat", "0.001", "did you mean 'learning_rate'"),
    ("fixed", {"model.name": "x"}, "fixed.model.name", "x", "the sweep sets this itself"),
    ("resources", {"workers": 2, "cpus": 0, "gpus": 1}, "resources.cpus", "0", "needs >= 1 CPU"),
    ("resources", {"workers": 1.5}, "resources.workers", "1.5", "whole number"),
    ("resources", {"cpus": -2}, "resources.cpus", "-2", "greater than or equal to 0"),
    ("resources", {"cpus": 0, "gpus": 0}, "resources.cpus", "0", "at least one CPU or one GPU"),
    ("resources", {"gpus": 1.5}, "resources.gpus", "1.5", "fraction below 1"),
    ("fixed.zero_stage", 4, "fixed.zero_stage", "4", "0, 1, 2 or 3"),
    ("fixed", {"beta": 0.1, "engine": "torch", "zero_stage": 2}, "fixed.zero_stage", "2", "engine: deepspeed"),
    ("objectives", [{"name": "forget_qualty"}], "objectives.0.name", "forget_qualty", "did you mean 'forget_quality'"),
    ("objectives", [{"name": "model_utility", "mode": "maximize"}], "objectives.0.mode", "maximize", "'max' or 'min'"),
    ("objectives", [], "objectives", "[]", "at least one objective"),
    ("constraints", ["model_utility => 0.9"], "constraints.0", "model_utility => 0.9", "METRIC >= NUMBER"),
    ("constraints", ["model_utilty >= 0.9 * target"], "constraints.0.metric", "model_utilty", "did you mean"),
    ("select.require", ["forget_qualty >= 0.05"], "select.require.0.metric", "forget_qualty", "did you mean"),
    ("select.require", ["forget_quality = 0.05"], "select.require.0", "forget_quality = 0.05", "METRIC >= NUMBER"),
    ("select", {"requires": []}, "select.requires", "requires", "did you mean 'require'"),
    ("tracking.uri", "file:///tmp/mlruns", "tracking.uri", "file:///tmp/mlruns", "file store is deprecated"),
    ("tracking.uri", "./mlruns", "tracking.uri", "./mlruns", "sqlite:////abs/path/mlflow.db"),
    ("tracking.uri", "sqlite:///mlflow.db", "tracking.uri", "sqlite:///mlflow.db", "absolute sqlite path"),
    ("eval.settings.metrics", ["model_utility"], "eval.settings.metrics", "model_utility", "add 'forget_quality'"),
    ("eval.settings.max_new_tokens", 0, "eval.settings.max_new_tokens", "0", "greater than or equal to 1"),
    ("eval.every", 0, "eval.every", "0", "greater than 0"),
    ("name", "my sweep", "name", "my sweep", "letters, digits"),
    ("models", [{"name": "tofu-mini/target", "retain_model": "tofu-mini/retain95"}], "models.0.retain_model",
     "tofu-mini/retain95", "tofu-mini/retain90"),
    ("models", ["meta-llama/Llama-3.2-1B"], "models.0.name", "meta-llama/Llama-3.2-1B", "give data.source hub"),
    ("models", [], "models", "[]", "at least one entry"),
    ("storage", "s3://bucket/sweeps", "storage", "s3://bucket/sweeps", "mount a bucket"),
    ("search.storage", "optuna.db", "search.storage", "optuna.db", "Optuna RDB URL"),
]


@pytest.mark.parametrize("path,value,field,shown,fix", MALFORMED, ids=[f"{m[0]}={m[1]!r}"[:60] for m in MALFORMED])
def test_malformed_spec_is_one_clear_line(tmp_path, path, value, field, shown, fix):
    data = base(tmp_path)
    set_path(data, path, value)
    spec_file = write(tmp_path, data)
    with pytest.raises(ConfigError) as info:
        load_spec(spec_file, check_models=False)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(str(spec_file))
    assert f"field '{field}'" in msg, msg
    assert shown in msg.split(". Fix:")[0], msg
    assert fix in msg.split(". Fix:")[1], msg


def test_missing_key_and_not_a_mapping(tmp_path):
    data = base(tmp_path)
    del data["method"]
    with pytest.raises(ConfigError, match=r"field 'method'.*this key is required"):
        load_spec(write(tmp_path, data), check_models=False)
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="a sweep spec is a mapping"):
        load_spec(tmp_path / "list.yaml", check_models=False)
    (tmp_path / "broken.yaml").write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="line 2.*fix the YAML syntax"):
        load_spec(tmp_path / "broken.yaml", check_models=False)


def test_unprepared_zoo_models_validate_and_a_wrong_zoo_name_is_one_line(tmp_path, monkeypatch):
    """A valid zoo name need not be prepared yet (the driver trains it on demand); a wrong one is refused."""
    monkeypatch.setenv("UNLEARN_SWEEP_CACHE", str(tmp_path / "empty-cache"))
    spec = load_spec(write(tmp_path, base(tmp_path)))
    assert spec.models[0].name == "tofu-mini/target" and spec.models[0].retain_model == "tofu-mini/retain90"
    data = base(tmp_path)
    data["models"] = ["tofu-mini/retain80"]
    with pytest.raises(ConfigError) as info:
        load_spec(write(tmp_path, data))
    assert "retain80" in str(info.value) and "retain90" in str(info.value)


def test_missing_local_model_folder(tmp_path):
    data = base(tmp_path)
    data["data"] = {"source": "hub", "forget_split": "forget01"}
    data["objectives"] = [{"name": "model_utility"}]  # no retain-based metric: no retain reference needed
    data["models"] = [str(tmp_path / "no-such-model")]
    with pytest.raises(ConfigError) as info:
        load_spec(write(tmp_path, data))
    assert "field 'models.0.name'" in str(info.value) and "config.json" in str(info.value)
    # a hub id is left to the hub; a real local folder passes
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    data["models"] = ["org/some-model", str(tmp_path / "model")]
    assert [m.name for m in load_spec(write(tmp_path, data)).models] == data["models"]


def test_muse_specs_use_muse_fields(tmp_path):
    """A MUSE sweep names MUSE's splits (a TOFU split is refused at the spec, naming the field) and metrics
    (tests/sweeps/test_muse_spec.py covers the rest)."""
    data = base(tmp_path)
    data["data"] = {"benchmark": "muse", "source": "hub", "forget_split": "forget10"}
    data["models"] = [{"name": "org/muse-model", "retain_model": "org/muse-retain"}]
    with pytest.raises(ConfigError, match=r"field 'data.forget_split'.*use forget"):
        load_spec(write(tmp_path, data), check_models=False)
    data["data"] = {"benchmark": "muse", "source": "hub"}
    spec = load_spec(write(tmp_path, data), check_models=False)
    assert spec.data_label == "muse" and spec.objectives[0].name == "forget_verbmem_ROUGE"  # MUSE's defaults
    data["objectives"] = [{"name": "forget_quality"}]
    with pytest.raises(ConfigError, match=r"field 'objectives.0.name'.*forget_knowmem_ROUGE"):
        load_spec(write(tmp_path, data), check_models=False)


# --------------------------------------------------------------------------------------------------
# valid specs


def test_every_preset_loads_and_starts_with_its_command():
    names = list_presets()
    assert "tofu-mini" in names and len(names) >= 2
    for name in names:
        spec = load_spec(name, check_models=False)
        path = PRESET_DIR / f"{name}.yaml"
        assert path.read_text().startswith("# unlearn-sweep run ")
        assert first_line_command(path) == f"unlearn-sweep run presets/{name}.yaml"
        assert spec.searches()


def test_default_preset_resolves_as_designed():
    spec = load_spec("tofu-mini", check_models=False)
    assert spec.method.base == "NPO" and spec.method.variants == ["dv", "none"]
    plans = spec.searches()
    assert [(p.search_id, p.label) for p in plans] == [("tofu-mini-target.dv", "DrNPO"), ("tofu-mini-target.none", "NPO")]
    # BalDRO-DV's temperature is searched only in the DV search; group_ratio (BalDRO-G) in neither
    assert plans[0].space.names() == ["lr", "alpha", "beta_dv"]
    assert plans[1].space.names() == ["lr", "alpha"]
    assert spec.space.params["lr"].low == 5e-4 and spec.space.params["lr"].log
    assert spec.space.params["alpha"].high == 10.0 and spec.eval.every == 3
    assert plans[0].base["train"]["epochs"] == 15
    assert [str(c) for c in spec.select.require] == ["forget_quality >= 0.05", "gibberish_rate <= 0.05"]
    # every search starts from one complete train config: the spec's data/fixed/eval in the train config's words
    base = plans[0].base
    assert base["model"]["name"] == "tofu-mini/target" and base["method"] == {
        "name": "NPO", "baldro": "dv", "hparams": base["method"]["hparams"]}
    assert (base["train"]["batch_size"], base["train"]["grad_accum"], base["train"]["engine"]) == (8, 4, "deepspeed")
    assert base["method"]["hparams"]["beta"] == 0.1 and base["method"]["hparams"]["dv_mode"] == "softmin"
    assert base["eval"]["settings"]["retain_model"] == "tofu-mini/retain90" and base["eval"]["every"] == 3
    assert "beta_dv" not in plans[1].base["method"]["hparams"]
    assert sum(spec.budget.num_trials for _ in plans) == 6
    assert spec.models[0].retain_model == "tofu-mini/retain90"
    assert [(o.name, o.mode, o.scale) for o in spec.objectives] == [
        ("forget_quality", "max", "log"), ("model_utility", "max", "linear"), ("gibberish_rate", "min", "linear")]
    c = spec.constraints[0]
    assert (c.metric, c.op, c.value, c.relative_to) == ("model_utility", ">=", 0.9, "target")
    assert c.threshold(0.5) == pytest.approx(0.45) and c.satisfied(0.46, 0.5) and not c.satisfied(0.44, 0.5)
    uri = spec.tracking_uri()
    assert uri.startswith("sqlite:////") and uri.endswith("/runs/sweeps/tofu-mini/mlflow.db")


def test_defaults_aliases_and_inline_preset_override(tmp_path):
    data = base(tmp_path)
    del data["search_space"]
    data["fixed"] = {"learning_rate": 3e-4, "sampling_ratio": 0.3}   # OU / BalDRO spellings
    data["method"] = {"name": "NPO", "baldro": "g"}
    spec = load_spec(write(tmp_path, data), check_models=False)
    cfg = spec.searches()[0].base   # the reference spellings name the same train-config fields
    assert cfg["train"]["lr"] == 3e-4 and cfg["method"]["hparams"]["group_ratio"] == 0.3
    # no search_space: the tofu-mini preset of the NPO family, minus what is fixed or not for this variant
    data["fixed"] = {}
    spec = load_spec(write(tmp_path, data), check_models=False)
    assert spec.space.names() == ["lr", "alpha", "group_ratio"]
    # a preset extended inline: lr replaced, dv_mode added, epochs excluded
    data["method"] = {"name": "NPO", "baldro": "dv"}
    data["search_space"] = {"preset": "npo", "lr": {"low": 2e-5, "high": 4e-5}, "dv_mode": ["softmin", "softmax"],
                            "exclude": ["epochs"]}
    spec = load_spec(write(tmp_path, data), check_models=False)
    assert spec.space.names() == ["lr", "grad_accum", "beta_dv", "dv_mode"]
    assert (spec.space.params["lr"].low, spec.space.params["lr"].log) == (2e-5, False)


def test_alias_method_keeps_its_defaults(tmp_path):
    data = base(tmp_path)
    data["method"] = {"name": "DrWGA"}
    data["fixed"] = {}
    data["search_space"] = {"lr": {"low": 1e-5, "high": 5e-5, "log": True}}
    spec = load_spec(write(tmp_path, data), check_models=False)
    assert spec.method.base == "WGA" and spec.method.variants == ["dv"]
    hp = spec.searches()[0].base["method"]["hparams"]
    assert (hp["form"], hp["beta_dv"]) == ("sequence", 2.0)  # DrWGA's yaml defaults


def test_smoke_shrinks_and_round_trips(tmp_path):
    spec = load_spec("tofu-mini", check_models=False)
    smoke = spec.smoke()
    assert smoke.smoke_test and smoke.name == "tofu-mini-smoke"
    assert (smoke.budget.num_trials, smoke.budget.max_concurrent, smoke.budget.max_failures) == (2, 1, 0)
    assert smoke.fixed["epochs"] == 1 and "epochs" not in smoke.space.names()
    plan = smoke.searches()[0]
    assert plan.base["train"]["epochs"] == 1 and plan.base["data"]["limit"] == 8
    assert plan.base["eval"]["settings"]["max_new_tokens"] == 16
    assert plan.space.names() == ["lr", "alpha", "beta_dv"]
    # the written copy is a spec that loads back to the same searches (same base configs, same spaces)
    path = tmp_path / "copy.yaml"
    path.write_text(spec.to_yaml())
    again = load_spec(path, check_models=False)
    assert [(p.search_id, p.space, p.base) for p in again.searches()] == [
        (p.search_id, p.space, p.base) for p in spec.searches()]
    assert again.constraints == spec.constraints and again.objectives == spec.objectives


def test_resources_check_fits():
    spec = load_spec("tofu-llama-3.2-1b-drnpo", check_models=False)
    spec.resources.check_fits({"CPU": 16, "GPU": 1})
    with pytest.raises(ConfigError, match=r"field 'gpus'.*needs 1 GPU.*cluster has 0"):
        spec.resources.check_fits({"CPU": 16})


def test_unchanged_base_is_valid(tmp_path):
    data = base(tmp_path)
    spec = load_spec(write(tmp_path, copy.deepcopy(data)), check_models=False)
    assert spec.storage == str((tmp_path / "runs").resolve())
    assert spec.sweep_dir() == tmp_path.resolve() / "runs" / "t"
