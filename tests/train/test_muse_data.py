"""MUSE in the train config: `data: {benchmark: muse, ...}` validates with MUSE's defaults, the data table builds
open-unlearning's raw-text forget/retain chunks, and hub names (muse-bench/MUSE-News) take the same code path
(on a generated folder laid out like the hub id, no network). The TOFU fields keep their errors.

Run: pytest tests/train/test_muse_data.py -q
"""

from __future__ import annotations

import shutil

import pytest

from unlearning.data.muse import chunk_corpus, load_muse
from unlearning.data.muse_mini import MuseMiniConfig, write
from unlearning.errors import ConfigError
from unlearning.train.config import DataSection, parse_train_config
from unlearning.train.data import (
    build_text_forget_retain,
    data_source,
    load_forget_retain,
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write(MuseMiniConfig(), tmp_path_factory.mktemp("muse-mini"))


@pytest.fixture(scope="module")
def tok(corpus):
    from unlearning.models.tokenizer import train_bpe_tokenizer

    return train_bpe_tokenizer([r["text"] for g in ("forget", "retain1", "retain2", "holdout")
                                for r in load_muse("news", "raw", g, corpus)], vocab_size=500)


def config(**data):
    return parse_train_config({"model": {"name": "m"}, "method": {"name": "GradDiff"}, "data": data})


def test_muse_data_section_defaults_and_errors():
    d = DataSection(benchmark="muse")
    assert (d.source, d.forget_split, d.retain_split, d.corpus, d.max_length) == \
        ("muse-mini", "forget", "retain1", "news", 256)
    hub = config(benchmark="muse", source="hub", corpus="MUSE-Books").data
    assert (hub.corpus, hub.max_length) == ("books", 2048)  # open-unlearning's chunk length
    for data, field, fix in [
        ({"benchmark": "muse", "forget_split": "forget10"}, "data.forget_split", "use forget"),
        ({"benchmark": "muse", "retain_split": "retain90"}, "data.retain_split", "retain1"),
        ({"benchmark": "muse", "corpus": "wiki"}, "data.corpus", "'news'"),
        ({"corpus": "news"}, "data.corpus", "benchmark: muse"),
        ({"forget_split": "forget15"}, "data.forget_split", "'forget01', 'forget05' or 'forget10'"),
        ({"benchmark": "wmdp-x"}, "data.benchmark", "tofu"),
    ]:
        with pytest.raises(ConfigError) as err:
            config(**data)
        assert err.value.field == field and fix in err.value.fix, (data, err.value)
    assert DataSection().model_dump() == {"benchmark": "tofu", "source": "tofu-mini", "forget_split": "forget10",
                                          "retain_split": None, "corpus": None, "max_length": 512, "limit": None}


def test_text_items_are_chunks_with_bos_and_every_text_token_labelled(corpus, tok):
    texts = [r["text"] for r in load_muse("news", "raw", "forget", corpus)]
    data = build_text_forget_retain(tok, texts, texts[:2], max_length=48, limit=3)
    chunks = chunk_corpus(tok, texts, 48)
    assert len(data.forget) == 3 and len(data.retain) == len(chunk_corpus(tok, texts[:2], 48))
    for item, chunk in zip(data.forget, chunks):
        ids = tok(chunk)["input_ids"]  # BOS + the chunk
        assert item["input_ids"] == ids[:49] and ids[0] == tok.bos_token_id
        assert item["labels"] == [-100] + ids[1:49]


def test_the_data_table_reads_muse_from_a_folder_and_refuses_idk(corpus, tok):
    from unlearning.data.templates import get_template

    cfg = config(benchmark="muse", source=str(corpus), max_length=64)
    assert data_source(cfg.data, "m") == corpus
    data = load_forget_retain(cfg.data, tok, get_template("zoo"), corpus, seed=0)
    raw = lambda s: [r["text"] for r in load_muse("news", "raw", s, corpus)]  # noqa: E731
    assert len(data.forget) == len(chunk_corpus(tok, raw("forget"), 64))
    assert len(data.retain) == len(chunk_corpus(tok, raw("retain1"), 64))  # open-unlearning's retain split
    two = load_forget_retain(config(benchmark="muse", source=str(corpus), max_length=64, retain_split="retain2").data,
                             tok, get_template("zoo"), corpus)
    assert len(two.retain) == len(chunk_corpus(tok, raw("retain2"), 64))
    with pytest.raises(ConfigError, match="raw text"):
        load_forget_retain(cfg.data, tok, get_template("zoo"), corpus, with_idk=True)


def test_muse_mini_source_needs_prepare(tmp_path, monkeypatch):
    monkeypatch.setenv("UNLEARN_SWEEP_CACHE", str(tmp_path))
    with pytest.raises(ConfigError, match="prepare muse-mini --size tiny"):
        data_source(DataSection(benchmark="muse", source="muse-mini-tiny"), "m")
    with pytest.raises(ConfigError, match="prepare muse-mini`"):
        data_source(DataSection(benchmark="muse"), "muse-mini/target")


def test_hub_names_go_through_the_same_code(corpus, tok, tmp_path, monkeypatch):
    """`source: hub` is muse-bench/MUSE-<corpus>; a generated folder laid out like the hub id stands in for the
    hub (offline), so the run's data and the evaluator read it through the hub name."""
    from unlearning.data.templates import get_template
    from unlearning.evaluation.config import MuseEvalConfig
    from unlearning.evaluation.muse_eval import MuseEvaluator

    assert data_source(DataSection(benchmark="muse", source="hub"), "m") == "muse-bench/MUSE-News"
    assert data_source(DataSection(benchmark="muse", source="hub", corpus="books"), "m") == "muse-bench/MUSE-Books"
    shutil.copytree(corpus, tmp_path / "muse-bench" / "MUSE-News")
    monkeypatch.chdir(tmp_path)
    hub = config(benchmark="muse", source="hub", max_length=64).data
    local = config(benchmark="muse", source=str(corpus), max_length=64).data
    a = load_forget_retain(hub, tok, get_template("zoo"), data_source(hub, "m"))
    b = load_forget_retain(local, tok, get_template("zoo"), data_source(local, "m"))
    assert a.forget == b.forget and a.retain == b.retain
    cfg = MuseEvalConfig(metrics=["forget_knowmem_ROUGE"], max_length=128)
    via_hub = MuseEvaluator(tok, get_template("zoo"), cfg, corpus="news", source=None)  # None = the hub id
    assert via_hub.knowmem["forget"] == MuseEvaluator(tok, get_template("zoo"), cfg, source=corpus).knowmem["forget"]


@pytest.fixture(scope="module")
def memorised(corpus, tok):
    """A tiny Llama trained on a few forget and retain chunks (its state dict) and their dataset."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from unlearning.models.sft import finetune_items

    raw = lambda s: [r["text"] for r in load_muse("news", "raw", s, corpus)]  # noqa: E731
    data = build_text_forget_retain(tok, raw("forget")[:4], raw("retain1")[:4], max_length=64)
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=4,
                                         max_position_embeddings=512, pad_token_id=tok.pad_token_id))
    finetune_items(model, data.forget + data.retain, tok.pad_token_id, epochs=30, lr=1e-2, batch_size=4, seed=0)
    return model, {k: v.clone() for k, v in model.state_dict().items()}, data


@pytest.mark.parametrize("name", ["GradAscent", "GradDiff", "NPO", "SimNPO", "WGA"])
def test_forget_methods_unlearn_muse_text_chunks(memorised, name):
    """Every method that unlearns token sequences runs on the raw-text chunks (with NPO's cached reference
    log-probs); one epoch from a model that learnt them raises the forget chunks' loss."""
    import torch

    from unlearning.methods import build_method
    from unlearning.train.config import LoopConfig
    from unlearning.train.loop import unlearn

    model, state, data = memorised
    model.load_state_dict(state)
    data.ref_logps = {}
    method = build_method(name)
    if method.needs_ref_logps:
        data.attach_ref_logps(model, keys=method.needs_ref_logps)

    def forget_loss() -> float:
        with torch.no_grad():
            batch = data.collator(data.forget)
            return float(model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                               labels=batch["labels"]).loss)

    before = forget_loss()
    history = unlearn(model, method, data, LoopConfig(engine="torch", lr=1e-2, epochs=1, batch_size=4, grad_accum=1,
                                                      warmup_epochs=0.0))
    assert history.steps and all(torch.isfinite(torch.tensor(s["loss"])) for s in history.steps)
    assert forget_loss() > before
