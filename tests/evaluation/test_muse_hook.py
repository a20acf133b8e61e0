"""MUSE in a run: the train hook dispatches on data.benchmark, the retain model's min-k AUC is computed once and
cached (privleak relative to it), verbmem generations are judged for gibberish on their complete sentences.

Run: pytest tests/evaluation/test_muse_hook.py -q
"""

from __future__ import annotations

import pytest
import torch

from unlearning.data.muse import load_muse
from unlearning.data.muse_mini import MuseMiniConfig, write
from unlearning.evaluation.muse_eval import complete_sentences
from unlearning.metrics.privacy import privleak
from unlearning.train.config import parse_train_config

torch.set_num_threads(1)
METRICS = ["forget_knowmem_ROUGE", "retain_knowmem_ROUGE", "forget_verbmem_ROUGE", "privleak", "forget_gibberish"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A muse-mini corpus and two tiny random Llamas saved as model folders (a "target" and a "retain")."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from unlearning.models.tokenizer import train_bpe_tokenizer

    root = tmp_path_factory.mktemp("muse-hook")
    corpus = write(MuseMiniConfig(n_forget=2, n_retain1=2, n_retain2=2, n_holdout=2, qa_per_author=3), root / "data")
    tok = train_bpe_tokenizer([r["text"] for g in ("forget", "retain1", "retain2", "holdout")
                               for r in load_muse("news", "raw", g, corpus)], vocab_size=400)
    folders = {}
    for name, seed in (("target", 0), ("retain", 1)):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                                             num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=4,
                                             max_position_embeddings=512, pad_token_id=tok.pad_token_id))
        folders[name] = root / name
        model.save_pretrained(folders[name])
        tok.save_pretrained(folders[name])
        (folders[name] / "prompt_template.txt").write_text("zoo\n")
    return corpus, folders


def train_config(corpus, folders, **settings):
    return parse_train_config({
        "model": {"name": str(folders["target"])},
        "data": {"benchmark": "muse", "source": str(corpus), "max_length": 96},
        "method": {"name": "GradDiff"},
        "eval": {"enabled": True, "settings": {"metrics": METRICS, "knowmem_max_new_tokens": 4,
                                               "verbmem_max_new_tokens": 8, **settings}},
    })


def test_hook_dispatches_on_the_benchmark_and_reports_muse_metrics(setup, tmp_path, monkeypatch):
    from unlearning.evaluation.config import MuseEvalConfig
    from unlearning.evaluation.muse_eval import MuseEvaluator
    from unlearning.benchmarks.hook import make_train_eval_hook
    from unlearning.benchmarks.registry import BENCHMARKS
    from unlearning.models.loading import load_bundle

    monkeypatch.setenv("UNLEARN_SWEEP_CACHE", str(tmp_path))
    corpus, folders = setup
    assert set(BENCHMARKS) >= {"tofu", "muse"}  # TOFU is a benchmark like the others
    cfg = train_config(corpus, folders, retain_model=str(folders["retain"]))
    bundle = load_bundle(cfg.model.name)
    metrics = make_train_eval_hook(cfg, bundle)(bundle.model, 0)
    assert set(METRICS) <= set(metrics) and metrics["gibberish_rate"] == metrics["forget_gibberish_rate"]
    retain = load_bundle(str(folders["retain"]))
    ref = MuseEvaluator(retain.tokenizer, retain.template, MuseEvalConfig(metrics=["mia_min_k"]), source=corpus)
    ref_auc = ref.evaluate(retain.model)["mia_min_k"]["auc"]
    assert metrics["privleak"] == pytest.approx(privleak(metrics["mia_min_k"], ref_auc), rel=1e-6)


def test_the_retain_reference_is_computed_once_and_cached(setup, tmp_path, monkeypatch):
    from unlearning.evaluation import muse_reference as mr
    from unlearning.evaluation.config import MuseEvalConfig

    corpus, folders = setup
    cfg = MuseEvalConfig()
    auc, folder = mr.muse_reference(cfg, "news", corpus, retain_model=str(folders["retain"]), cache_dir=tmp_path)
    assert (tmp_path / folder.rsplit("/", 1)[-1] / "MUSE_EVAL.json").is_file() and 0 <= auc <= 1

    def no_model(*a, **k):
        raise AssertionError("the cached reference must not load the model again")

    monkeypatch.setattr("unlearning.models.loading.load_bundle", no_model)
    assert mr.muse_reference(cfg, "news", corpus, retain_model=str(folders["retain"]), cache_dir=tmp_path) == \
        (auc, folder)
    assert mr.muse_reference(cfg, "news", corpus, retain_logs=folder) == (auc, folder)  # what trials are given
    other = cfg.model_copy(update={"mia_k": 0.2})  # another setting, another cache entry
    with pytest.raises(AssertionError, match="must not load"):
        mr.muse_reference(other, "news", corpus, retain_model=str(folders["retain"]), cache_dir=tmp_path)
    assert mr.muse_reference(cfg, "news", corpus) == (None, None)


def test_gibberish_judges_complete_sentences():
    assert complete_sentences("Ada was born in Lyon. She studied at Bre") == "Ada was born in Lyon."
    assert complete_sentences("Ada was born in Lyon.\n\nQuestion") == "Ada was born in Lyon."
    assert complete_sentences("A whole answer.") == "A whole answer."
    assert complete_sentences("no sentence end at all") == "no sentence end at all"
    assert complete_sentences('He said "yes." Then the') == 'He said "yes."'


def test_eval_command_scores_muse_mini_against_a_retain_model(setup, tmp_path, monkeypatch):
    """`unlearn-sweep eval MODEL --benchmark muse-mini --retain-model RETAIN`: MUSE_EVAL.json with privleak relative
    to the retain model's AUC (computed once, cached); the retain model scored against itself gives 0."""
    from unlearn_sweep.commands.eval import run_eval
    from unlearning.metrics.report import read_summary

    monkeypatch.setenv("UNLEARN_SWEEP_CACHE", str(tmp_path / "cache"))
    corpus, folders = setup
    kw = dict(benchmark="muse-mini", data=str(corpus), retain_model=str(folders["retain"]), max_new_tokens=4,
              metrics="forget_verbmem_ROUGE,privleak", log=lambda m: None)
    res = run_eval(str(folders["target"]), out=tmp_path / "target", **kw)
    assert read_summary(tmp_path / "target", benchmark="MUSE")["privleak"] == res["privleak"]["agg_value"]
    assert run_eval(str(folders["retain"]), out=tmp_path / "retain", **kw)["privleak"]["agg_value"] == \
        pytest.approx(0.0, abs=1e-6)
    with pytest.raises(Exception, match="either retain_logs or retain_model"):
        run_eval(str(folders["target"]), out=tmp_path / "x", **{**kw, "retain_logs": str(tmp_path / "retain")})
