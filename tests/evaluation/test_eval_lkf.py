"""The LKF evaluator (`unlearning/evaluation/lkf_eval.py`) on lkf-mini made from a trimmed tofu-mini and a tiny
random Llama: each metric against its definition, and the relearning attack on LKF's disjoint set.

Run: pytest tests/evaluation/test_eval_lkf.py -q
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import torch
from rouge_score import rouge_scorer

from eval_fixtures import oracle_item, small_tofu_dir, tiny_llama, tofu_tokenizer
from unlearning.data.lkf import lkf_question_variants, load_lkf
from unlearning.benchmarks.lkf_mini import write_lkf_mini
from unlearning.data.templates import get_template
from unlearning.data.tokenization import encode_qa
from unlearning.errors import ConfigError
from unlearning.evaluation.config import LkfEvalConfig, RelearnConfig, parse_config
from unlearning.evaluation.generation import greedy_generate, qa_generation_item
from unlearning.evaluation.lkf_eval import LkfEvaluator
from unlearning.evaluation.robustness import relearn

torch.set_num_threads(1)
logging.getLogger("unlearning.data.tokenization").setLevel(logging.ERROR)
TEMPLATE = get_template("plain")
SCORER = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def _answer(model, tok, q, a):
    item = qa_generation_item(tok, TEMPLATE, q, a, 512)
    out = greedy_generate(model, [item["input_ids"]], eos_token_ids=[tok.eos_token_id], pad_token_id=tok.pad_token_id,
                          max_new_tokens=5)[0]
    recall = SCORER.score(a, tok.decode(out, skip_special_tokens=True).strip())["rougeL"].recall
    return recall, math.exp(-oracle_item(model, encode_qa(tok, TEMPLATE, q, a))["avg_loss"])


def test_lkf_metrics_follow_their_definitions(tmp_path):
    tok = tofu_tokenizer()
    model = tiny_llama(len(tok), seed=3, dtype=torch.float32, scale=1.0)
    lkf = write_lkf_mini(small_tofu_dir(tmp_path, rows=3), tmp_path / "lkf")
    metrics = ["forget_Q_A_Prob", "forget_Q_A_ROUGE", "forget_leak_rate", "forget_Q_A_gibberish", "retain_Q_A_Prob",
               "retain_Q_A_ROUGE", "forget_Q_A_Prob_worst", "forget_Q_A_ROUGE_worst", "forget_leak_rate_worst",
               "forget_Q_A_ROUGE_relearn", "forget_Q_A_ROUGE_worst_relearn"]
    cfg = parse_config(LkfEvalConfig, {"metrics": metrics, "max_new_tokens": 5, "retain_limit": 2, "robustness": {
        "leak_threshold": 0.2, "relearn": {"steps": 4, "lr": 3e-3, "rows": 2, "batch_size": 2}}})
    ev = LkfEvaluator(tok, TEMPLATE, cfg, lkf)
    params = [p.detach().clone() for p in model.parameters()]
    out = ev.evaluate(model, None)
    assert all(torch.equal(a, b) for a, b in zip(params, model.parameters()))

    forget = load_lkf("forget_eval_para", lkf)
    per = [[_answer(model, tok, q, f["answer"]) for q in lkf_question_variants(f)] for f in forget]
    assert all(len(v) == 16 for v in per)
    assert out["forget_Q_A_Prob"]["agg_value"] == pytest.approx(np.mean([v[0][1] for v in per]), rel=1e-5)
    assert out["forget_Q_A_ROUGE"]["agg_value"] == pytest.approx(np.mean([v[0][0] for v in per]), rel=1e-6)
    assert out["forget_leak_rate"]["agg_value"] == pytest.approx(np.mean([v[0][0] >= 0.2 for v in per]))
    assert out["forget_Q_A_Prob_worst"]["agg_value"] == pytest.approx(
        np.mean([max(p for _, p in v) for v in per]), rel=1e-5)
    assert out["forget_Q_A_ROUGE_worst"]["agg_value"] == pytest.approx(
        np.mean([max(r for r, _ in v) for v in per]), rel=1e-6)
    assert out["forget_leak_rate_worst"]["agg_value"] == pytest.approx(
        np.mean([max(r for r, _ in v) >= 0.2 for v in per]))
    # retain: the mean over the first retain_limit rows and all their variants (JensUn's J_avg)
    retain = load_lkf("retain_eval_para", lkf)[:2]
    ret = [_answer(model, tok, q, r["answer"]) for r in retain for q in lkf_question_variants(r)]
    assert len(ret) == 14 and out["retain_Q_A_ROUGE"]["answers"] == 14
    assert out["retain_Q_A_ROUGE"]["agg_value"] == pytest.approx(np.mean([r for r, _ in ret]), rel=1e-6)
    assert out["retain_Q_A_Prob"]["agg_value"] == pytest.approx(np.mean([p for _, p in ret]), rel=1e-5)
    assert 0 <= out["forget_Q_A_gibberish_rate"]["agg_value"] <= 1
    # relearning on 2 rows of LKF's disjoint relearn_standard set, then every forget fact again
    assert ev.robust.measured == list(range(len(forget)))
    assert {r["question"] for r in ev.robust.relearn_rows} <= {r["question"] for r in load_lkf("relearn", lkf)}
    attacked = relearn(model, tok, TEMPLATE, ev.robust.relearn_rows,
                       RelearnConfig(steps=4, lr=3e-3, rows=2, batch_size=2))
    after = [[_answer(attacked, tok, q, f["answer"])[0] for q in lkf_question_variants(f)] for f in forget]
    assert out["forget_Q_A_ROUGE_relearn"]["agg_value"] == pytest.approx(np.mean([v[0] for v in after]), rel=1e-6)
    assert out["forget_Q_A_ROUGE_worst_relearn"]["agg_value"] == pytest.approx(np.mean([max(v) for v in after]),
                                                                               rel=1e-6)


def test_lkf_settings_refuse_what_lkf_does_not_have():
    with pytest.raises(ConfigError, match="unknown metric.*forget_quality"):
        parse_config(LkfEvalConfig, {"metrics": ["forget_quality"]}, where="eval.settings")
    assert "forget_quality_relearn" not in LkfEvalConfig().selected()
    assert not any(m.endswith("_relearn") for m in LkfEvalConfig().selected())  # the attack is opt-in
