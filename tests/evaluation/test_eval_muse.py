"""The MUSE evaluator on a tiny random Llama and a hand-written MUSE-layout folder (knowmem with in-context
examples, verbmem, privleak): prompts, ROUGE-L F1, MIA/privleak against independent computations.

Run: pytest tests/evaluation/test_eval_muse.py -q
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch
from rouge_score import rouge_scorer

from eval_fixtures import oracle_item, tiny_llama, tofu_tokenizer
from unlearning.data.templates import get_template
from unlearning.data.tokenization import encode_text
from unlearning.evaluation.config import MuseEvalConfig
from unlearning.evaluation.muse_eval import MuseEvaluator, load_muse_reference_auc
from unlearning.metrics.report import read_summary

torch.set_num_threads(1)
logging.getLogger("unlearning.data.tokenization").setLevel(logging.ERROR)

QA = [("Where was Idris Dimitrov born?", "Mombasa"), ("What genre does Ada Brandt write?", "Poetry"),
      ("Who wrote The Iron Meadow?", "Adelheid Brandt")]
ICL = [("What is the capital of Kenya?", "Nairobi"), ("Which country is Bergen in?", "Norway")]
VERB = [("Idris Dimitrov comes from Mombasa", "Kenya, and writes poetry about the sea."),
        ("The Northern Star Award went to", "Ada Brandt in 1998 for her first book.")]
TEXTS = ["Idris Dimitrov comes from Mombasa, Kenya, and writes poetry about the sea.",
         "The Northern Star Award went to Ada Brandt in 1998 for her first book.",
         "She worked as a teacher before writing.", "The capital of Norway is Oslo."]


def _write(root, subset, split, rows):
    path = root / subset / f"{split}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture(scope="module")
def muse(tmp_path_factory):
    root = tmp_path_factory.mktemp("muse")
    for split in ("forget", "retain"):
        _write(root, "knowmem", f"{split}_qa", [{"question": q, "answer": a} for q, a in QA])
        _write(root, "knowmem", f"{split}_qa_icl", [{"question": q, "answer": a} for q, a in ICL])
    _write(root, "verbmem", "forget", [{"prompt": p, "gt": g} for p, g in VERB])
    _write(root, "privleak", "forget", [{"text": t} for t in TEXTS[:2]])
    _write(root, "privleak", "holdout", [{"text": t} for t in TEXTS[2:]])
    tok = tofu_tokenizer()
    model = tiny_llama(len(tok), seed=7)
    cfg = MuseEvalConfig(knowmem_max_new_tokens=5, verbmem_max_new_tokens=6)
    ev = MuseEvaluator(tok, get_template("plain"), cfg, corpus="news", source=root, reference_auc=0.25)
    return {"root": root, "tok": tok, "model": model, "ev": ev, "res": ev.evaluate(model)}


def test_knowmem_prompts_carry_the_in_context_examples_and_score_rouge_f1(muse):
    res = muse["res"]
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    rec = res["forget_knowmem_ROUGE"]["value_by_index"]["0"]
    expected_prompt = "".join(f"Question: {q}\nAnswer: {a}\n\n" for q, a in ICL) + f"Question: {QA[0][0]}\nAnswer: "
    assert rec["input"] == expected_prompt
    assert rec["ground_truth"] == QA[0][1]
    for key in ("forget_knowmem_ROUGE", "retain_knowmem_ROUGE", "forget_verbmem_ROUGE"):
        values = []
        for r in res[key]["value_by_index"].values():
            assert r["rougeL_f1"] == scorer.score(r["ground_truth"], r["generation"])["rougeL"].fmeasure
            values.append(r["rougeL_f1"])
        assert res[key]["agg_value"] == pytest.approx(np.mean(values))
    verb = res["forget_verbmem_ROUGE"]["value_by_index"]["1"]
    assert (verb["input"], verb["ground_truth"]) == VERB[1]  # raw completion: no template, prefix -> gt


def test_privleak_and_mia_from_raw_text(muse):
    res, tok, model = muse["res"], muse["tok"], muse["model"]

    def min_k(text):
        lps = oracle_item(model, encode_text(tok, text, 2048))["token_log_probs"]
        return -np.mean(sorted(lps)[: max(1, int(len(lps) * 0.4))])

    f, h = [min_k(t) for t in TEXTS[:2]], [min_k(t) for t in TEXTS[2:]]
    got = [r["score"] for r in res["mia_min_k"]["forget"]["value_by_index"].values()]
    assert got == pytest.approx(f, rel=1e-6)
    auc = np.mean([(b > a) + 0.5 * (b == a) for a in f for b in h])
    assert res["mia_min_k"]["auc"] == pytest.approx(auc)
    assert res["privleak"]["agg_value"] == pytest.approx(((1 - auc) - 0.75) / (0.75 + 1e-10) * 100)
    assert 0 < res["extraction_strength"]["agg_value"] <= 1
    assert res["forget_gibberish_rate"]["agg_value"] == res["forget_gibberish"]["flagged_rate"]


def test_muse_files_and_reference_auc(muse, tmp_path):
    muse["ev"].write(muse["res"], tmp_path)
    assert read_summary(tmp_path, benchmark="MUSE")["privleak"] == muse["res"]["privleak"]["agg_value"]
    assert load_muse_reference_auc(tmp_path) == muse["res"]["mia_min_k"]["auc"]
