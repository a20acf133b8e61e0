"""MUSE sweeps at the spec: the muse-mini preset, MUSE metrics as objectives and constraints (MUSE's selection
convention `retain_knowmem_ROUGE >= 0.9 * target`), one-line errors, the smoke spec, export and preflight.

Run: pytest tests/sweeps/test_muse_spec.py -q
"""

from __future__ import annotations

import pytest
import yaml

from sweeps.spec.objectives import Constraint
from sweeps.spec import load_spec, parse_spec
from unlearning.errors import ConfigError


def preset() -> dict:
    from sweeps.spec import PRESET_DIR

    return yaml.safe_load((PRESET_DIR / "muse-mini.yaml").read_text())


def spec_of(tmp_path, **over):
    raw = {**preset(), "storage": str(tmp_path / "runs"), **over}
    return parse_spec(raw, where="spec")


def test_the_preset_builds_muse_train_configs(tmp_path):
    spec = load_spec("muse-mini", check_models=False)
    assert spec.data_label == "muse-mini" and [m.retain_model for m in spec.models] == ["muse-mini/retain"]
    (plan,) = spec.searches()
    assert plan.base["data"] == {"benchmark": "muse", "source": "muse-mini", "forget_split": "forget",
                                 "retain_split": "retain1", "corpus": "news", "max_length": 128, "limit": None}
    settings = plan.base["eval"]["settings"]
    assert "forget_split" not in settings and settings["retain_model"] == "muse-mini/retain"
    assert sorted(plan.space.params) == ["alpha", "lr"]
    # the retain model is derived when the spec leaves it out
    derived = spec_of(tmp_path, models=["muse-mini/target"])
    assert derived.models[0].retain_model == "muse-mini/retain"


def test_muse_selection_convention_is_a_relative_constraint():
    """MUSE keeps an unlearned model whose retain knowmem is at least 90% of the target's."""
    c = Constraint.model_validate("retain_knowmem_ROUGE >= 0.9 * target")
    target = {"retain_knowmem_ROUGE": 0.6}
    assert c.violation({"retain_knowmem_ROUGE": 0.5}, target) == pytest.approx(0.04, rel=1e-9)
    assert c.violation({"retain_knowmem_ROUGE": 0.6}, target) <= 0
    assert c.violation({"retain_knowmem_ROUGE": 0.5}, {}) == 1.0  # no target value yet: violated
    down = Constraint.model_validate("forget_knowmem_ROUGE <= 0.5 * target")
    assert down.violation({"forget_knowmem_ROUGE": 0.2}, {"forget_knowmem_ROUGE": 0.5}) == pytest.approx(-0.05)


@pytest.mark.parametrize("over, field, fix", [
    ({"models": ["tofu-mini/target"]}, "models.0.name", "muse-mini/target"),
    ({"models": [{"name": "muse-mini/target", "retain_model": "tofu-mini/retain90"}]}, "models.0.retain_model",
     "muse-mini/retain"),
    ({"objectives": [{"name": "forget_quality"}]}, "objectives.0.name", "forget_knowmem_ROUGE"),
    ({"constraints": ["model_utility >= 0.9 * target"]}, "constraints.0.metric", "retain_knowmem_ROUGE"),
    ({"eval": {"settings": {"metrics": ["forget_knowmem_ROUGE", "retain_knowmem_ROUGE", "forget_verbmem_ROUGE"]}}},
     "eval.settings.metrics", "add 'forget_gibberish'"),
    ({"eval": {"settings": {"max_new_tokens": 8}}}, "eval.settings.max_new_tokens", "unknown key"),
    ({"data": {"benchmark": "muse", "forget_split": "forget10"}}, "data.forget_split", "use forget"),
])
def test_mistakes_are_one_line_errors(tmp_path, over, field, fix):
    with pytest.raises(ConfigError) as err:
        spec_of(tmp_path, **over)
    assert err.value.field == field and fix in err.value.fix, err.value


def test_hub_muse_needs_a_retain_reference_for_privleak(tmp_path):
    hub = {"data": {"benchmark": "muse", "source": "hub", "corpus": "books"},
           "models": ["muse-bench/MUSE-Books_target"]}
    spec_of(tmp_path, **hub)  # privleak is recorded, not optimised: no reference needed
    with pytest.raises(ConfigError) as err:
        spec_of(tmp_path, **hub, objectives=[{"name": "privleak", "mode": "max"}])
    assert err.value.field == "models.0.retain_model"
    ok = spec_of(tmp_path, **{**hub, "models": [{"name": "muse-bench/MUSE-Books_target",
                                                  "retain_model": "muse-bench/MUSE-Books_retrain"}]},
                 objectives=[{"name": "privleak", "mode": "max"}])
    assert ok.data_label == "muse"


def test_smoke_spec_shrinks_the_muse_budgets(tmp_path):
    smoke = spec_of(tmp_path).smoke()
    settings = smoke.searches()[0].base["eval"]["settings"]
    assert settings["knowmem_max_new_tokens"] == 16 and settings["verbmem_max_new_tokens"] == 16
    assert smoke.searches()[0].base["train"]["epochs"] == 1 and smoke.data.limit == 8


def test_export_writes_a_replayable_muse_config(tmp_path):
    from sweeps.selection.export import export
    from sweeps.recording.results import Point
    from unlearning.train.config import load_train_config

    spec = spec_of(tmp_path)
    plan = spec.searches()[0]
    metrics = {"forget_verbmem_ROUGE": 0.3, "forget_knowmem_ROUGE": 0.2, "retain_knowmem_ROUGE": 0.5}
    point = Point(trial_id="a_00001", epoch=2, metrics=metrics, hparams={"lr": 1e-3, "alpha": 3.0},
                  search_id=plan.search_id, model="muse-mini/target")
    (path,) = export([point], "a_00001:2", tmp_path / "final", spec)
    cfg = load_train_config(path)
    assert cfg.data.benchmark == "muse" and cfg.train.lr == 1e-3 and cfg.method.hparams["alpha"] == 3.0
    assert (cfg.train.epochs, cfg.train.stop_after_epoch) == (spec.searches()[0].base["train"]["epochs"], 2)
    assert cfg.provenance["open_unlearning_command"].startswith("none: the model and muse-mini")
    hub = spec_of(tmp_path, data={"benchmark": "muse", "source": "hub", "corpus": "books"},
                  models=["muse-bench/MUSE-Books_target"])
    point.search_id = hub.searches()[0].search_id
    (path,) = export([point], "a_00001:2", tmp_path / "hub", hub)
    command = load_train_config(path).provenance["open_unlearning_command"]
    for part in ("experiment=unlearn/muse/default", "data_split=Books", "retain_split=retain1", "trainer=NPO",
                 "trainer.args.learning_rate=0.001", "trainer.method_args.alpha=3.0"):
        assert part in command


def test_preflight_checks_a_muse_folder_holds_raw_forget(tmp_path):
    from sweeps.operations.preflight import preflight

    folder, model = tmp_path / "muse", tmp_path / "model"
    (folder / "knowmem").mkdir(parents=True)
    model.mkdir()
    (model / "config.json").write_text("{}")
    spec = spec_of(tmp_path, data={"benchmark": "muse", "source": str(folder)}, models=[str(model)])
    with pytest.raises(ConfigError, match="raw/forget"):
        preflight(spec)
    (folder / "raw").mkdir()
    (folder / "raw" / "forget.jsonl").write_text('{"text": "x"}\n')
    preflight(spec)


def test_preflight_names_a_muse_mini_size_that_is_not_generated(tmp_path, monkeypatch):
    """A generated source of an explicit size must exist (or come from a model of the spec): the hint names
    muse-mini's own zoo (`MuseBenchmark.zoo_data`)."""
    from sweeps.operations.preflight import _check_generated_data

    monkeypatch.setenv("UNLEARN_SWEEP_CACHE", str(tmp_path / "cache"))   # an empty cache: nothing is generated
    spec = spec_of(tmp_path, data={**preset()["data"], "source": "muse-mini-tiny"})
    with pytest.raises(ConfigError, match=r"muse-mini-tiny is not generated .* prepare muse-mini --size tiny"):
        _check_generated_data(spec, "spec")
