"""WMDP in the train config: `data: {benchmark: wmdp, ...}` validates with open-unlearning's WMDP defaults, the data
table builds raw-text forget/retain chunks from a corpora folder (the reference's data/wmdp/wmdp-corpora layout) or
the hub name (a folder laid out like cais/wmdp-corpora stands in, offline), and every bad input is one line naming
the field, the value and the fix before any compute.

Run: .venv/bin/python -m pytest tests/train/test_wmdp_data.py -q        (a few seconds)
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "evaluation"))
from eval_fixtures import small_tofu_dir  # noqa: E402

from unlearning.data.muse import chunk_corpus  # noqa: E402
from unlearning.data.templates import get_template  # noqa: E402
from unlearning.data.wmdp_corpora import load_wmdp_corpus, prepare_mini_corpora  # noqa: E402
from unlearning.errors import ConfigError  # noqa: E402
from unlearning.train.config import DataSection, parse_train_config  # noqa: E402
from unlearning.train.data import data_source, load_forget_retain  # noqa: E402


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    """A corpora folder with both corpus pairs (wmdp-mini's text under the cyber and the bio names)."""
    root = tmp_path_factory.mktemp("wmdp-data")
    folder = prepare_mini_corpora(small_tofu_dir(root, rows=1000), cache_dir=root / "cache")
    out = root / "wmdp-corpora"
    shutil.copytree(folder, out)
    for kind in ("forget", "retain"):
        shutil.copy(out / f"cyber-{kind}-corpus.jsonl", out / f"bio-{kind}-corpus.jsonl")
    return out


@pytest.fixture(scope="module")
def tok(corpora):
    from unlearning.models.tokenizer import train_bpe_tokenizer

    return train_bpe_tokenizer([r["text"] for k in ("forget", "retain")
                                for r in load_wmdp_corpus(f"cyber-{k}-corpus", corpora)], vocab_size=400)


def config(method: str = "RMU", **data):
    return parse_train_config({"model": {"name": "m"}, "method": {"name": method}, "data": data})


def test_wmdp_data_section_defaults_follow_open_unlearning():
    d = DataSection(benchmark="wmdp")
    assert (d.source, d.corpus, d.forget_split, d.retain_split, d.max_length) == \
        ("wmdp-mini", "cyber", "cyber-forget-corpus", "cyber-retain-corpus", 64)
    hub = config(benchmark="wmdp", source="hub").data   # OU WMDP_forget.yaml: max_length 512
    assert (hub.corpus, hub.forget_split, hub.max_length) == ("cyber", "cyber-forget-corpus", 512)
    bio = config(benchmark="wmdp", source="hub", forget_split="bio-forget-corpus").data   # the corpus follows
    assert (bio.corpus, bio.retain_split) == ("bio", "bio-retain-corpus")
    assert config(benchmark="wmdp", source="hub", corpus="WMDP-Bio").data.corpus == "bio"


@pytest.mark.parametrize("data, field, fix", [
    ({"corpus": "chem"}, "data.corpus", "use cyber"),
    ({"corpus": "cyber", "forget_split": "bio-forget-corpus"}, "data.forget_split", "corpus cyber unlearns"),
    ({"forget_split": "forget10"}, "data.forget_split", "cyber-forget-corpus and bio-forget-corpus"),
    ({"retain_split": "retain90"}, "data.retain_split", "cyber-retain-corpus and bio-retain-corpus"),
])
def test_bad_data_sections_are_one_line_errors(data, field, fix):
    with pytest.raises(ConfigError) as err:
        config(benchmark="wmdp", **data)
    assert err.value.field == field and fix in err.value.fix and "\n" not in str(err.value)


def test_bad_sources_are_one_line_errors_before_any_compute(corpora, tmp_path, monkeypatch):
    monkeypatch.setenv("UNLEARN_SWEEP_CACHE", str(tmp_path / "cache"))
    (tmp_path / "empty").mkdir()
    (tmp_path / "file.jsonl").write_text("{}\n")
    cases = [
        ({"source": "hub", "corpus": "bio"}, "data.source", "bio-forget-corpus is not on the hub"),
        ({"source": str(tmp_path / "empty")}, "data.source", "cyber-forget-corpus.jsonl and cyber-retain-corpus"),
        ({"source": str(tmp_path / "file.jsonl")}, "data.source", "is a file"),
        ({"source": "wmdp-mini", "corpus": "bio"}, "data.corpus", "one corpus pair"),
        ({"source": "wmdp-mini-tiny"}, "data.source", "prepare tofu-mini --size tiny"),
    ]
    for data, field, fix in cases:
        cfg = config(benchmark="wmdp", **data)
        with pytest.raises(ConfigError) as err:
            data_source(cfg.data, "tofu-mini/target")
        assert err.value.field == field and fix in err.value.fix and "\n" not in str(err.value), (data, err.value)
        assert str(err.value.value) in (data["source"], data.get("corpus"))


def test_the_data_table_reads_corpus_chunks_and_refuses_question_methods(corpora, tok):
    cfg = config(benchmark="wmdp", source=str(corpora), max_length=48, limit=5)
    assert data_source(cfg.data, "m") == corpora
    data = load_forget_retain(cfg.data, tok, get_template("zoo"), corpora)
    text = lambda s: [r["text"] for r in load_wmdp_corpus(s, corpora)]  # noqa: E731
    forget = chunk_corpus(tok, text("cyber-forget-corpus"), 48)
    assert len(forget) > 5 and len(data.forget) == 5   # limit: the first forget chunks
    assert len(data.retain) == len(chunk_corpus(tok, text("cyber-retain-corpus"), 48))
    for item, chunk in zip(data.forget, forget):   # BOS + the chunk, every text token labelled
        ids = tok(chunk)["input_ids"][:49]
        assert item["input_ids"] == ids and item["labels"] == [-100] + ids[1:]
    bio = config(benchmark="wmdp", source=str(corpora), corpus="bio", retain_split="cyber-retain-corpus").data
    assert len(load_forget_retain(bio, tok, get_template("zoo"), corpora).forget) == len(chunk_corpus(
        tok, text("bio-forget-corpus"), 512))
    with pytest.raises(ConfigError, match="field 'method.name'.*raw text"):
        load_forget_retain(cfg.data, tok, get_template("zoo"), corpora, with_idk=True)


def test_the_hub_name_goes_through_the_same_code(corpora, tok, tmp_path, monkeypatch):
    hub = config(benchmark="wmdp", source="hub", max_length=48).data
    assert data_source(hub, "m") == "cais/wmdp-corpora"
    shutil.copytree(corpora, tmp_path / "cais" / "wmdp-corpora")
    monkeypatch.chdir(tmp_path)
    local = config(benchmark="wmdp", source=str(corpora), max_length=48).data
    a = load_forget_retain(hub, tok, get_template("zoo"), data_source(hub, "m"))
    b = load_forget_retain(local, tok, get_template("zoo"), data_source(local, "m"))
    assert a.forget == b.forget and a.retain == b.retain


@pytest.mark.slow   # the default tofu-mini zoo (cached after its first build)
def test_a_wmdp_mini_run_trains_on_the_corpus_and_reports_lm_eval_accuracy(prepared_zoo, tmp_path):
    """RMU on wmdp-mini's forget corpus (the tofu-mini zoo's target, 8 chunks of 64 tokens, 2 steps), evaluated by
    the default lm_eval tasks (no block given): wmdp_mini and mmlu_mini accuracies, the group and its members."""
    from unlearning.train.run import run_train

    cfg = parse_train_config({
        "model": {"name": "tofu-mini/target", "dtype": "float32"},
        "data": {"benchmark": "wmdp", "source": "wmdp-mini", "limit": 8},
        "method": {"name": "RMU", "hparams": {"layer": 1, "steering_coeff": 55.0, "alpha": 1.0}},
        "train": {"engine": "torch", "lr": 6e-3, "epochs": 1, "batch_size": 4, "grad_accum": 1, "warmup_epochs": 0},
        "eval": {"enabled": True, "on_start": False, "every": 1},
        "output_dir": str(tmp_path / "run"),
    })
    result = run_train(cfg)
    steps = result["history"]["steps"]
    assert len(steps) == 2 and all(s["loss"] == s["loss"] for s in steps)   # 8 forget chunks / batch 4
    [point] = result["evals"]
    assert point["epoch"] == 1
    for key in ("wmdp_mini_acc", "wmdp_mini_bio_acc", "wmdp_mini_cyber_acc", "mmlu_mini_acc", "mmlu_mini_acc_norm"):
        assert 0.0 <= point[key] <= 1.0, key
    assert not any(k.startswith(("forget_", "model_utility")) for k in point)   # lm-eval alone, no TOFU metrics
