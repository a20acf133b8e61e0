"""Robustness: worst case over question variants, and the relearning attack on a tiny random Llama.

Run: pytest tests/evaluation/test_eval_robustness.py -q
"""

from __future__ import annotations

import logging
import math

import pytest
import torch
from rouge_score import rouge_scorer

from eval_fixtures import _splits, oracle_item, tiny_llama, tofu_tokenizer
from unlearning.data.templates import get_template
from unlearning.data.tokenization import encode_qa
from unlearning.errors import DataError
from unlearning.evaluation.config import EvalConfig, RelearnConfig
from unlearning.evaluation.robustness import paraphrase_worst_case, relearn, relearning_attack
from unlearning.evaluation.tofu_eval import TofuEvaluator

torch.set_num_threads(1)
logging.getLogger("unlearning.data.tokenization").setLevel(logging.ERROR)
TEMPLATE = get_template("plain")


def test_worst_case_takes_the_most_leaking_variant():
    tok = tofu_tokenizer()
    model = tiny_llama(len(tok), seed=4)
    rows = _splits()["forget10_perturbed"][:3]
    res = paraphrase_worst_case(model, tok, TEMPLATE, rows, max_new_tokens=4)
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    for i, row in enumerate(rows):
        probs = [math.exp(-oracle_item(model, encode_qa(tok, TEMPLATE, q, row["answer"]))["avg_loss"])
                 for q in (row["question"], row["paraphrased_question"])]
        rec = res["forget_Q_A_Prob_worst"]["value_by_index"][str(i)]
        assert rec["probs"] == pytest.approx(probs, rel=1e-6)
        assert rec["prob"] == pytest.approx(max(probs), rel=1e-6)
        assert rec["question"] == (row["question"], row["paraphrased_question"])[probs.index(max(probs))]
        r = res["forget_Q_A_ROUGE_worst"]["value_by_index"][str(i)]
        assert r["rougeL_recall"] == max(r["recalls"])
        assert r["rougeL_recall"] == scorer.score(row["answer"], r["generation"])["rougeL"].recall
    worst = [r["rougeL_recall"] for r in res["forget_Q_A_ROUGE_worst"]["value_by_index"].values()]
    assert res["forget_leak_rate_worst"]["agg_value"] == sum(w >= 0.5 for w in worst) / 3
    assert set(res["forget_Q_A_ROUGE_by_variant"]["by_variant"]) == {"0", "1"}
    with pytest.raises(DataError, match="question variant"):
        paraphrase_worst_case(model, tok, TEMPLATE, rows, variants=lambda r: [""], max_new_tokens=2)


def test_relearning_recovers_the_forget_answers_and_leaves_the_model_alone(tmp_path):
    from eval_fixtures import small_tofu_dir

    tok = tofu_tokenizer()
    model = tiny_llama(len(tok), seed=6, dtype=torch.float32, scale=1.0)
    data = small_tofu_dir(tmp_path, rows=4)
    before_params = [p.detach().clone() for p in model.parameters()]
    ev = TofuEvaluator(tok, TEMPLATE, EvalConfig(metrics=["forget_Q_A_Prob"]), data)
    rows = _splits()["forget10_perturbed"][:4]  # relearn on the forget set itself (JensUn's "slice of the forget set")
    out = relearning_attack(model, tok, TEMPLATE, rows, RelearnConfig(steps=8, lr=3e-3, batch_size=2),
                            evaluate=ev.evaluate)
    before = out["before"]["forget_Q_A_Prob"]["agg_value"]
    after = out["after"]["forget_Q_A_Prob"]["agg_value"]
    assert after > 2 * before  # the answers' probability comes back
    assert all(torch.equal(a, b) for a, b in zip(before_params, model.parameters()))  # the original is untouched
    assert out["config"]["steps"] == 8
    with pytest.raises(DataError, match="at least one"):
        relearn(model, tok, TEMPLATE, [], RelearnConfig(steps=1))
