"""The train YAML: one-line errors naming the field, defaults from the spec, the example config, CLI help.

Run: pytest tests/train/test_config.py -q
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from unlearning.errors import ConfigError
from unlearning.train.config import LoopConfig, load_train_config, parse_train_config

REPO = Path(__file__).resolve().parents[2]
MINIMAL = {"model": {"name": "tofu-mini/target"}, "method": {"name": "NPO"}}


def _error(raw: dict) -> str:
    with pytest.raises(ConfigError) as info:
        parse_train_config(raw, where="t.yaml")
    msg = str(info.value)
    assert "\n" not in msg
    return msg


def test_unknown_key_names_field_and_allowed_keys():
    msg = _error({**MINIMAL, "train": {"lrr": 1e-5}})
    assert "field 'train.lrr'" in msg
    assert "'lr'" in msg and "'grad_accum'" in msg  # the allowed keys are listed
    assert "field 'foo'" in _error({**MINIMAL, "foo": 1})


def test_bad_type_names_field():
    msg = _error({**MINIMAL, "train": {"lr": "fast"}})
    assert "field 'train.lr'" in msg and "'fast'" in msg
    assert "field 'train.engine'" in _error({**MINIMAL, "train": {"engine": "jax"}})
    assert "field 'train.zero_stage'" in _error({**MINIMAL, "train": {"zero_stage": 4}})
    assert "field 'data.forget_split'" in _error({**MINIMAL, "data": {"forget_split": "forget50"}})
    assert "field 'train.epochs'" in _error({**MINIMAL, "train": {"epochs": 0}})


def test_unknown_method_and_hparams_name_field():
    msg = _error({**MINIMAL, "method": {"name": "NPOO"}})
    assert "field 'method.name'" in msg and "'NPOO'" in msg and "SimNPO" in msg
    assert "field 'method.hparams.betaa'" in _error({**MINIMAL, "method": {"name": "NPO", "hparams": {"betaa": 1}}})
    assert "field 'method.hparams.beta'" in _error({**MINIMAL, "method": {"name": "NPO", "hparams": {"beta": -1}}})
    assert "field 'method.baldro'" in _error({**MINIMAL, "method": {"name": "NPO", "baldro": "zz"}})


def test_missing_required_key():
    assert "field 'model'" in _error({"method": {"name": "NPO"}})


def test_defaults_are_the_spec_recipe():
    cfg = parse_train_config(MINIMAL)
    t = cfg.train
    assert (t.lr, t.epochs, t.batch_size, t.grad_accum) == (1e-5, 10, 8, 4)
    assert (t.warmup_epochs, t.weight_decay, t.seed, t.lr_scheduler) == (1.0, 0.01, 0, "linear")
    assert cfg.data.forget_split == "forget10" and cfg.data.max_length == 512


def test_jensun_without_token_ids_is_accepted_at_config_time():
    # the ids come from the tokenizer at run time
    assert parse_train_config({**MINIMAL, "method": {"name": "JensUn"}}).method.name == "JensUn"


def test_aliases_and_wrappers_validate():
    cfg = parse_train_config({**MINIMAL, "method": {"name": "DrNPO", "hparams": {"beta_dv_forget": 2.0}}})
    assert cfg.method.hparams == {"beta_dv_forget": 2.0}


def test_example_config_loads_and_opens_with_its_command():
    path = REPO / "configs" / "train" / "npo_tofu_mini.yaml"
    first = path.read_text().splitlines()[0]
    assert first.startswith("# unlearn-sweep train configs/train/npo_tofu_mini.yaml")
    cfg = load_train_config(path)
    assert cfg.method.name == "NPO" and cfg.train.engine == "deepspeed" and cfg.train.zero_stage == 2
    cfg = load_train_config(path, overrides={"train": {"engine": "torch", "zero_stage": 0}})   # what --engine torch does
    assert cfg.train.engine == "torch" and cfg.train.zero_stage == 0


def test_yaml_file_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {name: x\n")
    with pytest.raises(ConfigError, match="bad.yaml"):
        load_train_config(bad)
    ok = tmp_path / "ok.yaml"
    ok.write_text(yaml.safe_dump({**MINIMAL, "train": {"grad_accum": "two"}}))
    with pytest.raises(ConfigError, match=r"ok\.yaml, field 'train\.grad_accum'"):
        load_train_config(ok)
    with pytest.raises(ConfigError, match="existing YAML"):
        load_train_config(tmp_path / "missing.yaml")


def test_loop_config_refuses_unknown_keys():
    with pytest.raises(Exception, match="warmup_steps"):
        LoopConfig(warmup_steps=3)


def test_cli_help_lists_examples():
    from typer.testing import CliRunner

    from unlearn_sweep.cli import app

    result = CliRunner().invoke(app, ["train", "--help"])
    assert result.exit_code == 0
    assert "unlearn-sweep train configs/train/npo_tofu_mini.yaml" in result.output
    assert "--engine" in result.output and "--out" in result.output


def test_cli_bad_config_is_one_line_exit_2(tmp_path):
    import subprocess
    import sys

    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({**MINIMAL, "train": {"lrr": 1}}))
    proc = subprocess.run([sys.executable, "-m", "unlearn_sweep.cli", "train", str(cfg)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "train.lrr" in lines[0]
