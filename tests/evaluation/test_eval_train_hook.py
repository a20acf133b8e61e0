"""The `unlearn-sweep train` evaluation hook: settings from the train config, a retain reference, flat metrics.

Run: pytest tests/evaluation/test_eval_train_hook.py -q
"""

from __future__ import annotations

import logging

import pytest
import torch

from eval_fixtures import small_tofu_dir, tiny_llama, tofu_tokenizer
from unlearning.errors import ConfigError
from unlearning.benchmarks.hook import make_train_eval_hook
from unlearning.benchmarks.tofu import default_retain_model
from unlearning.models.loading import load_bundle
from unlearning.train.config import parse_train_config

torch.set_num_threads(1)
logging.getLogger("unlearning.data.tokenization").setLevel(logging.ERROR)


def _config(root, data, settings):
    return parse_train_config({
        "model": {"name": str(root / "model"), "template": "plain", "dtype": "float32"},
        "data": {"source": str(data), "forget_split": "forget05"},
        "method": {"name": "GradAscent"},
        "eval": {"enabled": True, "settings": settings},
        "output_dir": str(root / "run"),
    })


def test_hook_returns_flat_metrics_with_a_reference(tmp_path, monkeypatch):
    monkeypatch.setenv("UNLEARN_SWEEP_CACHE", str(tmp_path / "cache"))
    tok = tofu_tokenizer()
    for name, seed in (("model", 0), ("retain", 1)):
        tiny_llama(len(tok), seed=seed, dtype=torch.float32).save_pretrained(tmp_path / name)
        tok.save_pretrained(tmp_path / name)
    data = small_tofu_dir(tmp_path, rows=3)
    cfg = _config(tmp_path, data, {"metrics": ["forget_quality", "model_utility"], "max_new_tokens": 2,
                                   "retain_model": str(tmp_path / "retain")})
    bundle = load_bundle(cfg.model.name, template="plain")
    hook = make_train_eval_hook(cfg, bundle)
    first = hook(bundle.model, 1)
    assert first == hook(bundle.model, 2)  # same model, same numbers
    assert 0 <= first["forget_quality"] <= 1 and "model_utility" in first and "retain_Truth_Ratio" in first
    assert all(isinstance(v, float) for v in first.values())
    with pytest.raises(ConfigError, match="eval.settings"):
        make_train_eval_hook(_config(tmp_path, data, {"max_new_tokenz": 2}), bundle)


def test_default_retain_model_for_zoo_names():
    assert default_retain_model("tofu-mini/target", "forget10") == "tofu-mini/retain90"
    assert default_retain_model("tofu-mini-tiny/target", "forget01") == "tofu-mini-tiny/retain99"
    assert default_retain_model("meta-llama/Llama-3.2-1B-Instruct", "forget10") is None
