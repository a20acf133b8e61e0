"""Robustness metrics as evaluator entries (`unlearning/evaluation/robust_eval.py`): their definitions, the attack
schedule, the settings' one-line errors, and that the attack never touches the evaluated model.

Run: pytest tests/evaluation/test_eval_robust_objectives.py -q
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import torch
from rouge_score import rouge_scorer
from scipy.stats import ks_2samp

from eval_fixtures import _splits, oracle_item, small_tofu_dir, tiny_llama, tofu_tokenizer
from unlearning.data.templates import get_template
from unlearning.data.tokenization import encode_qa
from unlearning.errors import ConfigError, DataError
from unlearning.evaluation.config import EvalConfig, RelearnConfig, parse_config
from unlearning.evaluation.generation import greedy_generate, qa_generation_item
from unlearning.evaluation.robust_eval import attack_schedule, relearn_split, tofu_robustness, with_robustness
from unlearning.evaluation.robustness import relearn
from unlearning.evaluation.tofu_eval import TofuEvaluator
from unlearning.metrics.reference_logs import RetainReference

torch.set_num_threads(1)
logging.getLogger("unlearning.data.tokenization").setLevel(logging.ERROR)
TEMPLATE = get_template("plain")
RELEARN = {"steps": 6, "lr": 3e-3, "batch_size": 2, "rows": 2, "seed": 1}
ALL_RELEARN = ["forget_Q_A_Prob_relearn", "forget_Q_A_ROUGE_relearn", "forget_leak_rate_relearn",
               "forget_Q_A_ROUGE_worst_relearn", "forget_leak_rate_worst_relearn", "forget_quality_relearn"]


def _setup(tmp_path, metrics, relearn_cfg=RELEARN, rows=5, reference=True):
    tok = tofu_tokenizer()
    model = tiny_llama(len(tok), seed=6, dtype=torch.float32, scale=1.0)
    data = small_tofu_dir(tmp_path, rows=rows)
    cfg = parse_config(EvalConfig, {"forget_split": "forget10", "metrics": metrics, "max_new_tokens": 6,
                                    "robustness": {"leak_threshold": 0.25, "relearn": relearn_cfg}})
    ref = None
    if reference:
        rng = np.random.default_rng(0)
        ref = RetainReference(truth_ratios=rng.uniform(0.2, 1.0, rows), mia_auc=None, source="test")
    ev = TofuEvaluator(tok, TEMPLATE, cfg, data, ref)
    return tok, model, data, cfg, ev


def _recall_prob(model, tok, question, answer, max_new_tokens=6):
    """ROUGE-L recall of the greedy answer and the answer's per-token probability, from the definitions."""
    item = qa_generation_item(tok, TEMPLATE, question, answer, 512)
    out = greedy_generate(model, [item["input_ids"]], eos_token_ids=[tok.eos_token_id], pad_token_id=tok.pad_token_id,
                          max_new_tokens=max_new_tokens)[0]
    text = tok.decode(out, skip_special_tokens=True).strip()
    recall = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True).score(answer, text)["rougeL"].recall
    prob = math.exp(-oracle_item(model, encode_qa(tok, TEMPLATE, question, answer))["avg_loss"])
    return recall, prob


def test_worst_and_relearn_metrics_follow_their_definitions(tmp_path):
    metrics = ["forget_Q_A_Prob", "forget_Q_A_Prob_worst", "forget_Q_A_ROUGE_worst", "forget_leak_rate_worst",
               *ALL_RELEARN]
    tok, model, data, cfg, ev = _setup(tmp_path, metrics)
    robust = tofu_robustness(ev, cfg, data)
    facts = _splits()["forget10_perturbed"][:5]
    out = with_robustness(ev, robust).evaluate(model, None)

    # worst case: per fact the larger of (question, paraphrased_question), then the mean over facts
    per = [[_recall_prob(model, tok, q, f["answer"]) for q in (f["question"], f["paraphrased_question"])]
           for f in facts]
    assert out["forget_Q_A_Prob_worst"]["agg_value"] == pytest.approx(np.mean([max(p for _, p in v) for v in per]),
                                                                       rel=1e-5)
    worst_r = [max(r for r, _ in v) for v in per]
    assert out["forget_Q_A_ROUGE_worst"]["agg_value"] == pytest.approx(np.mean(worst_r), rel=1e-6)
    assert out["forget_leak_rate_worst"]["agg_value"] == pytest.approx(np.mean([r >= 0.25 for r in worst_r]))
    assert out["forget_Q_A_Prob_worst"]["agg_value"] >= out["forget_Q_A_Prob"]["agg_value"] * (1 - 1e-6)

    # after the attack: an independently relearned copy, on the facts that were not relearned
    chosen, measured = relearn_split(5, cfg.robustness, "forget", facts, facts)
    assert len(chosen) == 2 and len(measured) == 3 and not {f["question"] for f in chosen} & \
        {facts[i]["question"] for i in measured}
    attacked = relearn(model, tok, TEMPLATE, chosen, RelearnConfig(**RELEARN))
    after = [[_recall_prob(attacked, tok, q, facts[i]["answer"])
              for q in (facts[i]["question"], facts[i]["paraphrased_question"])] for i in measured]
    assert out["forget_Q_A_Prob_relearn"]["agg_value"] == pytest.approx(np.mean([v[0][1] for v in after]), rel=1e-5)
    assert out["forget_Q_A_ROUGE_relearn"]["agg_value"] == pytest.approx(np.mean([v[0][0] for v in after]), rel=1e-6)
    assert out["forget_leak_rate_relearn"]["agg_value"] == pytest.approx(np.mean([v[0][0] >= 0.25 for v in after]))
    assert out["forget_Q_A_ROUGE_worst_relearn"]["agg_value"] == pytest.approx(
        np.mean([max(r for r, _ in v) for v in after]), rel=1e-6)
    assert out["forget_leak_rate_worst_relearn"]["agg_value"] == pytest.approx(
        np.mean([max(r for r, _ in v) >= 0.25 for v in after]))
    # forget_quality_relearn: KS p-value of the attacked copy's truth ratios vs the retain model's, measured facts
    tr = TofuEvaluator(tok, TEMPLATE, cfg.model_copy(update={"metrics": ["forget_truth_ratio"]}), data) \
        .evaluate(attacked)["forget_truth_ratio"]["value_by_index"]
    ref = ev.reference.truth_ratios
    expected = ks_2samp([tr[str(i)]["score"] for i in measured], [ref[i] for i in measured]).pvalue
    assert out["forget_quality_relearn"]["agg_value"] == pytest.approx(expected, rel=1e-9)
    assert out["relearn_seconds"]["agg_value"] > 0 and out["robust_worst_seconds"]["agg_value"] > 0


def test_the_attack_never_touches_the_evaluated_model(tmp_path):
    tok, model, data, cfg, ev = _setup(tmp_path, ["forget_Q_A_Prob", "forget_Q_A_Prob_relearn"])
    ev = with_robustness(ev, tofu_robustness(ev, cfg, data))
    for p in model.parameters():
        p.grad = torch.full_like(p, 0.5)  # a training step's leftover gradients stay as they were too
    params = {n: p.detach().clone() for n, p in model.named_parameters()}
    rng = torch.get_rng_state()
    with torch.no_grad():  # as the training loop calls its evaluation hook
        first = ev.evaluate(model, 0)
    assert torch.equal(rng, torch.get_rng_state())  # the run's random stream is not consumed by the attack
    assert all(torch.equal(params[n], p) for n, p in model.named_parameters())
    assert all(torch.equal(p.grad, torch.full_like(p, 0.5)) for p in model.parameters())
    assert not model.training
    # the attack did train (a copy): the relearned facts' probability moved, and a second call is identical
    assert first["forget_Q_A_Prob_relearn"]["agg_value"] != pytest.approx(first["forget_Q_A_Prob"]["agg_value"],
                                                                          rel=1e-3)
    assert ev.evaluate(model, 0)["forget_Q_A_Prob_relearn"] == first["forget_Q_A_Prob_relearn"]


def test_attack_schedule_start_last_and_every_kth_point():
    final_only = attack_schedule(every_eval=3, final_epoch=15, every=None)
    assert [e for e in (0, 3, 6, 9, 12, 15) if final_only(e)] == [0, 15]
    every2 = attack_schedule(every_eval=3, final_epoch=15, every=2)
    assert [e for e in (0, 3, 6, 9, 12, 15) if every2(e)] == [0, 6, 12, 15]
    halves = attack_schedule(every_eval=0.5, final_epoch=2, every=1)
    assert all(halves(e) for e in (0.5, 1, 1.5, 2))
    assert [e for e in (1, 2, 3) if attack_schedule(None, 3, 1)(e)] == [3]  # no intermediate points at all


def test_relearn_points_are_absent_where_not_attacked(tmp_path):
    tok, model, data, cfg, ev = _setup(tmp_path, ["forget_Q_A_ROUGE_relearn"], reference=False)
    robust = tofu_robustness(ev, cfg, data, attack_at=attack_schedule(1, 3, None))
    assert "forget_Q_A_ROUGE_relearn" not in robust.evaluate(model, 1)
    assert "forget_Q_A_ROUGE_relearn" in robust.evaluate(model, 3)
    assert tofu_robustness(ev, cfg.model_copy(update={"metrics": ["forget_quality"]}), data) is None  # opt-in


@pytest.mark.parametrize("settings, field, words", [
    ({"steps": 5000}, "robustness.relearn.steps", "at most 1000"),
    ({"rows": 10**6}, "robustness.relearn.rows", "at most 100000"),
    ({"lr": 0}, "robustness.relearn.lr", "greater than 0"),
    ({"lr": 3}, "robustness.relearn.lr", "less than or equal to 1"),
    ({"every": 0}, "robustness.relearn.every", "greater than or equal to 1"),
    ({"source": "holdout"}, "robustness.relearn.source", "'forget', 'retain' or 'relearn'"),
    ({"stepz": 3}, "robustness.relearn.stepz", "allowed keys: steps, lr, batch_size, rows, source, every"),
])
def test_relearn_settings_are_checked_in_one_line(settings, field, words):
    with pytest.raises(ConfigError) as err:
        parse_config(EvalConfig, {"robustness": {"relearn": settings}}, where="eval.settings")
    msg = str(err.value)
    assert f"'{field}'" in msg and words in msg and "\n" not in msg


def test_relearning_sets_that_leave_nothing_to_measure_are_refused(tmp_path):
    tok, model, data, cfg, ev = _setup(tmp_path, ["forget_Q_A_Prob_relearn"], {**RELEARN, "rows": 5})
    with pytest.raises(DataError, match="rows < 5"):
        tofu_robustness(ev, cfg, data)
    cfg = cfg.model_copy(update={"robustness": cfg.robustness.model_copy(
        update={"relearn": RelearnConfig(**{**RELEARN, "source": "relearn"})})})
    with pytest.raises(DataError, match="TOFU has no relearning set"):
        tofu_robustness(ev, cfg, data)
    # a retain-split attack measures every forget fact
    cfg = cfg.model_copy(update={"robustness": cfg.robustness.model_copy(
        update={"relearn": RelearnConfig(**{**RELEARN, "source": "retain", "rows": 3})})})
    robust = tofu_robustness(ev, cfg, data)
    assert robust.measured == [0, 1, 2, 3, 4] and len(robust.relearn_rows) == 3
    assert {r["question"] for r in robust.relearn_rows} <= {r["question"] for r in _splits()["retain90"][:5]}
