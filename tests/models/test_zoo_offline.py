"""Tiny zoo building blocks, offline: tokenizer training, save/load round trips, zoo names and cache keys.

    pytest tests/models/test_zoo_offline.py
"""

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

from unlearning.data.templates import get_template
from unlearning.data.tofu_mini import TofuMiniConfig, generate
from unlearning.errors import ConfigError
from unlearning.models.loading import load_bundle, resolve_model_path
from unlearning.models.tokenizer import train_bpe_tokenizer
from unlearning.models.zoo import ZooConfig, parse_zoo_name, zoo_dir


@pytest.fixture(scope="module")
def tokenizer():
    rows = generate(TofuMiniConfig())["full"][:400]
    return train_bpe_tokenizer([t for r in rows for t in (r["question"], r["answer"])], vocab_size=512)


def test_tokenizer_specials_bos_and_roundtrip(tokenizer, tmp_path):
    text = "Where was Elena Varga born?"
    ids = tokenizer(text)["input_ids"]
    assert ids[0] == tokenizer.bos_token_id and tokenizer.pad_token_id != tokenizer.eos_token_id
    assert tokenizer.decode(ids, skip_special_tokens=True) == text
    tokenizer.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    assert again(text)["input_ids"] == ids and again.eos_token == "</s>" and again.pad_token == "<pad>"


def test_model_and_tokenizer_save_load_offline_same_logits_and_generate(tokenizer, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=2, pad_token_id=tokenizer.pad_token_id,
                      bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    model = LlamaForCausalLM(cfg).eval()
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    ids = torch.tensor([tokenizer("Question: Who wrote it?\nAnswer: ")["input_ids"]])
    with torch.no_grad():
        assert torch.equal(model(ids).logits, loaded(ids).logits)
        out = loaded.generate(ids, max_new_tokens=5, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    assert out.shape[1] > ids.shape[1]
    bundle = load_bundle(tmp_path, template="plain")
    assert bundle.template == get_template("plain") and len(bundle.tokenizer) == len(tokenizer)


def test_zoo_names_parse_and_unknown_names_are_clear_errors():
    cfg, model = parse_zoo_name("tofu-mini/target")
    assert cfg.size == "small" and model == "target"
    cfg, model = parse_zoo_name("tofu-mini-tiny/retain90")
    assert cfg.size == "tiny" and model == "retain90"
    assert parse_zoo_name("meta-llama/Llama-3.2-1B-Instruct") is None
    with pytest.raises(ConfigError, match="retain90"):
        parse_zoo_name("tofu-mini/retain80")
    with pytest.raises(ConfigError, match="sizes"):
        parse_zoo_name("tofu-mini-huge/target")


def test_cache_dir_override_and_key_changes_with_config(tmp_path, monkeypatch):
    monkeypatch.setenv("UNLEARN_SWEEP_CACHE", str(tmp_path))
    assert zoo_dir(ZooConfig()).parent == tmp_path / "zoo"
    assert ZooConfig().key() == ZooConfig().key()
    assert ZooConfig(size="tiny").key() != ZooConfig().key()
    assert ZooConfig(data=TofuMiniConfig(seed=1)).key() != ZooConfig().key()
    with pytest.raises(ConfigError, match="unlearn-sweep prepare tofu-mini --size tiny"):
        resolve_model_path("tofu-mini-tiny/target")
