"""The TOFU evaluator on a tiny random Llama and a trimmed tofu-mini: every metric against an independent
computation (float64 per-item loops, transformers' greedy `generate`, rouge-score, scipy), the OU file
layout, metric selection, references and their cache.

Run: pytest tests/evaluation/test_eval_tofu.py -q
"""

from __future__ import annotations

import copy
import json
import logging
import math
import zlib

import numpy as np
import pytest
import torch
from rouge_score import rouge_scorer
from scipy.stats import hmean, ks_2samp

from eval_fixtures import oracle_item, small_tofu_dir, tiny_llama, tofu_tokenizer
from unlearning.data.templates import get_template
from unlearning.data.tofu import load_tofu
from unlearning.data.tokenization import encode_prompt, encode_qa
from unlearning.errors import ConfigError, DataError
from unlearning.evaluation.config import EvalConfig, parse_config
from unlearning.evaluation.reference import RetainReference, compute_reference, load_reference
from unlearning.evaluation.tofu_eval import TofuEvaluator
from unlearning.metrics.reference_logs import EvalLog
from unlearning.metrics.report import read_eval, read_summary

torch.set_num_threads(1)
logging.getLogger("unlearning.data.tokenization").setLevel(logging.ERROR)
TEMPLATE = get_template("plain")
NEW_TOKENS = 6


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tok = tofu_tokenizer()
    data = small_tofu_dir(tmp_path_factory.mktemp("tofu"), rows=4)
    model, retain = tiny_llama(len(tok), seed=0), tiny_llama(len(tok), seed=1)
    cfg = EvalConfig(forget_split="forget10", max_new_tokens=NEW_TOKENS, batch_tokens=256)
    ref_results = TofuEvaluator(tok, TEMPLATE, cfg.model_copy(update={"metrics": ["forget_quality", "privleak"]}),
                                data).evaluate(retain)
    reference = RetainReference.from_results(ref_results, "retain (in memory)")
    evaluator = TofuEvaluator(tok, TEMPLATE, cfg, data, reference)
    return {"tok": tok, "data": data, "model": model, "retain": retain, "cfg": cfg, "reference": reference,
            "evaluator": evaluator, "results": evaluator.evaluate(model)}


def _loss(env, question, answer):
    return oracle_item(env["model"], encode_qa(env["tok"], TEMPLATE, question, answer))


def _tr(para, perts):
    """tr = P_wrong / P_correct with per-token geometric-mean probabilities (docs/methods.md, "Primitives")."""
    return math.exp(-np.mean(perts)) / (math.exp(-para) + 1e-10)


def _auc(forget, holdout):
    """P(holdout score > forget score) + half the ties, by counting pairs."""
    pairs = [(h > f) + 0.5 * (h == f) for f in forget for h in holdout]
    return sum(pairs) / len(pairs)


def test_probabilities_and_truth_ratios(env):
    res, data = env["results"], env["data"]
    forget = load_tofu("forget10_perturbed", data)
    tr_expected = []
    for i, row in enumerate(forget):
        ans = _loss(env, row["question"], row["answer"])["avg_loss"]
        para = _loss(env, row["question"], row["paraphrased_answer"])["avg_loss"]
        perts = [_loss(env, row["question"], p)["avg_loss"] for p in row["perturbed_answer"]]
        rec = res["forget_Q_A_Prob"]["value_by_index"][str(i)]
        assert rec["prob"] == pytest.approx(math.exp(-ans), rel=1e-6)
        assert res["forget_Q_A_PERT_Prob"]["value_by_index"][str(i)]["avg_loss"] == pytest.approx(perts, rel=1e-6)
        tr_expected.append(_tr(para, perts))
    got_tr = [r["score"] for r in res["forget_truth_ratio"]["value_by_index"].values()]
    assert got_tr == pytest.approx(tr_expected, rel=1e-6)
    assert res["forget_truth_ratio"]["agg_value"] == pytest.approx(
        np.mean([min(t, 1 / t) for t in tr_expected]), rel=1e-6)
    ref_tr = env["reference"].truth_ratios
    assert res["forget_quality"]["agg_value"] == pytest.approx(ks_2samp(tr_expected, ref_tr).pvalue, rel=1e-9)

    retain = load_tofu("retain_perturbed", data)
    tr_ret = [_tr(_loss(env, r["question"], r["paraphrased_answer"])["avg_loss"],
                  [_loss(env, r["question"], p)["avg_loss"] for p in r["perturbed_answer"]]) for r in retain]
    assert res["retain_Truth_Ratio"]["agg_value"] == pytest.approx(np.mean([max(0, 1 - t) for t in tr_ret]), rel=1e-6)

    ra = load_tofu("real_authors_perturbed", data)
    norm, tr_ra = [], []
    for r in ra:
        true = _loss(env, r["question"], r["answer"])["avg_loss"]
        wrong = [_loss(env, r["question"], p)["avg_loss"] for p in r["perturbed_answer"]]
        norm.append(math.exp(-true) / (math.exp(-true) + sum(math.exp(-w) for w in wrong) + 1e-10))
        tr_ra.append(_tr(true, wrong))
    assert res["ra_Q_A_Prob_normalised"]["agg_value"] == pytest.approx(np.mean(norm), rel=1e-6)
    assert res["ra_Truth_Ratio"]["agg_value"] == pytest.approx(np.mean([max(0, 1 - t) for t in tr_ra]), rel=1e-6)


def test_rouge_against_transformers_generate(env):
    res, tok, model = env["results"], env["tok"], env["model"]
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    for i, row in enumerate(load_tofu("world_facts_perturbed", env["data"])):
        prompt = encode_prompt(tok, TEMPLATE, row["question"], row["answer"])["input_ids"]
        out = model.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                             max_new_tokens=NEW_TOKENS, do_sample=False, pad_token_id=tok.eos_token_id)
        gen = tok.decode(out[0, len(prompt):], skip_special_tokens=True).split(tok.eos_token)[0].strip()
        rec = res["wf_Q_A_ROUGE"]["value_by_index"][str(i)]
        assert rec["generation"] == gen and rec["ground_truth"] == row["answer"]
        assert rec["rougeL_recall"] == scorer.score(row["answer"], gen)["rougeL"].recall


def test_mia_privleak_es_em_and_model_utility(env):
    res, tok = env["results"], env["tok"]
    forget = load_tofu("forget10_perturbed", env["data"])
    holdout = load_tofu("holdout10", env["data"])
    f_stats = [_loss(env, r["question"], r["answer"]) for r in forget]
    h_stats = [_loss(env, r["question"], r["answer"]) for r in holdout]

    def min_k(lps, k=0.4):
        return -np.mean(sorted(lps)[: max(1, int(len(lps) * k))])

    f_mk, h_mk = [min_k(s["token_log_probs"]) for s in f_stats], [min_k(s["token_log_probs"]) for s in h_stats]
    assert [r["score"] for r in res["mia_min_k"]["forget"]["value_by_index"].values()] == pytest.approx(f_mk, rel=1e-6)
    assert res["mia_min_k"]["auc"] == pytest.approx(_auc(f_mk, h_mk))
    f_pp = [min_k(s["z"]) for s in f_stats]
    assert [r["score"] for r in res["mia_min_k_plus_plus"]["forget"]["value_by_index"].values()] == \
        pytest.approx(f_pp, rel=1e-6)
    # zlib text = the decoded labelled tokens (OU `extract_target_texts_from_processed_data`)
    texts = [tok.decode([t for t in encode_qa(tok, TEMPLATE, r["question"], r["answer"])["labels"] if t != -100],
                        skip_special_tokens=True) for r in forget]
    zl = [s["avg_loss"] / len(zlib.compress(t.encode("utf-8"))) for s, t in zip(f_stats, texts)]
    assert [r["score"] for r in res["mia_zlib"]["forget"]["value_by_index"].values()] == pytest.approx(zl, rel=1e-6)
    assert res["mia_loss"]["auc"] == pytest.approx(_auc([s["avg_loss"] for s in f_stats],
                                                        [s["avg_loss"] for s in h_stats]))
    ref_auc = env["reference"].mia_auc
    expected = ((1 - res["mia_min_k"]["auc"]) - (1 - ref_auc)) / (1 - ref_auc + 1e-10) * 100
    assert res["privleak"]["agg_value"] == pytest.approx(expected)
    assert [r["score"] for r in res["extraction_strength"]["value_by_index"].values()] == \
        pytest.approx([s["es"] for s in f_stats])
    assert res["exact_memorization"]["agg_value"] == pytest.approx(np.mean([s["em"] for s in f_stats]), rel=1e-6)
    nine = ["retain_Q_A_Prob", "retain_Q_A_ROUGE", "retain_Truth_Ratio", "ra_Q_A_Prob_normalised", "ra_Q_A_ROUGE",
            "ra_Truth_Ratio", "wf_Q_A_Prob_normalised", "wf_Q_A_ROUGE", "wf_Truth_Ratio"]
    values = [res[k]["agg_value"] for k in nine]
    if min(values) > 0:
        assert res["model_utility"]["agg_value"] == pytest.approx(hmean(values), rel=1e-12)
    else:  # random models often score ROUGE 0; hmean of a list containing 0 is 0
        assert res["model_utility"]["agg_value"] == 0.0
    gib = res["forget_Q_A_gibberish"]
    assert 0 <= gib["agg_value"] <= 1 and res["forget_Q_A_gibberish_rate"]["agg_value"] == gib["flagged_rate"]


def test_files_in_ou_layout_load_back(env, tmp_path):
    res = env["results"]
    eval_path, summary_path = env["evaluator"].write(res, tmp_path)
    assert (eval_path.name, summary_path.name) == ("TOFU_EVAL.json", "TOFU_SUMMARY.json")
    stored = read_eval(tmp_path)
    assert stored["forget_truth_ratio"]["value_by_index"]["2"]["score"] == pytest.approx(
        res["forget_truth_ratio"]["value_by_index"]["2"]["score"], rel=1e-15)
    summary = read_summary(tmp_path)
    assert summary["model_utility"] == res["model_utility"]["agg_value"]
    assert summary["forget_quality"] == res["forget_quality"]["agg_value"]
    log = EvalLog.load(tmp_path)
    assert log.mia_auc() == res["mia_min_k"]["auc"]
    assert log.utility_inputs()["ra_Truth_Ratio"] == res["ra_Truth_Ratio"]["agg_value"]
    ref = load_reference(tmp_path)
    assert list(ref.truth_ratios) == [r["score"] for r in res["forget_truth_ratio"]["value_by_index"].values()]
    assert json.loads(eval_path.read_text())["mia_min_k"]["forget"]["value_by_index"]["0"]["score"] > 0


def test_model_evaluated_against_itself_is_perfect(env):
    self_ref = RetainReference.from_results(env["results"], "self")
    cfg = env["cfg"].model_copy(update={"metrics": ["forget_quality", "privleak"]})
    res = TofuEvaluator(env["tok"], TEMPLATE, cfg, env["data"], self_ref).evaluate(env["model"])
    assert res["forget_quality"]["agg_value"] == 1.0
    assert res["privleak"]["agg_value"] == pytest.approx(0.0, abs=1e-6)


def test_metric_selection_runs_only_what_is_needed(env):
    tok, data = env["tok"], env["data"]
    fq = TofuEvaluator(tok, TEMPLATE, EvalConfig(metrics=["forget_quality"]), data)
    assert fq.gen_items == [] and len(fq.score_items) == 4 * (1 + 5)  # para + 5 perturbed per forget row
    assert sorted(fq.evaluate(env["model"])) == ["forget_Q_A_PARA_Prob", "forget_Q_A_PERT_Prob", "forget_quality",
                                                 "forget_truth_ratio"]
    mu = TofuEvaluator(tok, TEMPLATE, EvalConfig(metrics=["model_utility"], max_new_tokens=2), data)
    assert set(mu.groups) == {"retain", "ra", "wf"}
    assert len(mu.gen_items) == 12 and len(mu.score_items) == 4 * 7 + 2 * 4 * 4
    res = mu.evaluate(env["model"])
    assert "model_utility" in res and not any(k.startswith(("forget", "mia")) for k in res)
    assert mu.evaluate(env["model"])["model_utility"] == res["model_utility"]  # deterministic


def test_no_reference_and_wrong_reference(env):
    tok, data = env["tok"], env["data"]
    cfg = EvalConfig(metrics=["forget_quality", "privleak"])
    res = TofuEvaluator(tok, TEMPLATE, cfg, data).evaluate(env["model"])
    assert res["forget_quality"]["agg_value"] is None
    auc = res["mia_min_k"]["auc"]
    assert res["privleak"]["agg_value"] == pytest.approx(((1 - auc) - 0.5) / (0.5 + 1e-10) * 100)
    wrong = RetainReference(np.ones(40), 0.5, "retain99/TOFU_EVAL.json")
    with pytest.raises(DataError, match="same split"):
        TofuEvaluator(tok, TEMPLATE, cfg, data, wrong).evaluate(env["model"])


def test_question_key(env):
    tok, data = env["tok"], env["data"]
    cfg = EvalConfig(metrics=["forget_Q_A_ROUGE"], question_key="paraphrased_question", max_new_tokens=2)
    res = TofuEvaluator(tok, TEMPLATE, cfg, data).evaluate(env["model"])
    row = load_tofu("forget10_perturbed", data)[0]
    assert row["paraphrased_question"] in res["forget_Q_A_ROUGE"]["value_by_index"]["0"]["input"]
    with pytest.raises(DataError, match="question_key"):
        TofuEvaluator(tok, TEMPLATE, EvalConfig(question_key="nope"), data)


def test_config_errors():
    with pytest.raises(ConfigError, match="metrics"):
        parse_config(EvalConfig, {"metrics": ["forget_quality", "bogus"]})
    with pytest.raises(ConfigError, match="unknown key"):
        parse_config(EvalConfig, {"max_new_token": 5})
    with pytest.raises(ConfigError, match="forget_split"):
        parse_config(EvalConfig, {"forget_split": "forget20"})
    assert parse_config(EvalConfig, {"forget_split": "forget01"}).holdout() == "holdout01"


def test_reference_computed_once_then_cached(env, tmp_path):
    tok = env["tok"]
    folder = tmp_path / "retain-model"
    env["retain"].save_pretrained(folder)
    tok.save_pretrained(folder)
    cfg = EvalConfig(forget_split="forget10", batch_tokens=256)
    first = compute_reference(str(folder), cfg, env["data"], cache_dir=tmp_path / "cache", template="plain")
    cached = list((tmp_path / "cache").iterdir())
    assert len(cached) == 1 and (cached[0] / "TOFU_EVAL.json").is_file()
    direct = TofuEvaluator(tok, TEMPLATE, cfg.model_copy(update={"metrics": ["forget_truth_ratio", "mia_min_k"]}),
                           env["data"]).evaluate(copy.deepcopy(env["retain"]).float())
    np.testing.assert_allclose(first.truth_ratios,
                               [r["score"] for r in direct["forget_truth_ratio"]["value_by_index"].values()], rtol=1e-5)
    # mark the cached file: a second call must return the marked value, i.e. read the cache, not re-evaluate
    log = json.loads((cached[0] / "TOFU_EVAL.json").read_text())
    log["mia_min_k"]["auc"] = 0.123
    (cached[0] / "TOFU_EVAL.json").write_text(json.dumps(log))
    again = compute_reference(str(folder), cfg, env["data"], cache_dir=tmp_path / "cache", template="plain")
    assert again.mia_auc == 0.123
    other = compute_reference(str(folder), cfg.model_copy(update={"max_length": 256}), env["data"],
                              cache_dir=tmp_path / "cache", template="plain")
    assert other.mia_auc != 0.123 and len(list((tmp_path / "cache").iterdir())) == 2


def test_layout_matches_open_unlearning_logs(env, tmp_path):
    """Entry by entry, our TOFU_EVAL.json has the keys of OU's (top level and per item), so files compare 1:1."""
    from pathlib import Path

    ou_path = (Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "tofu" / "reference_eval_logs"
               / "tofu_Llama-2-7b-chat-hf_retain90" / "TOFU_EVAL.json").resolve()
    if not ou_path.is_file():
        pytest.skip(f"open-unlearning reference log not found at {ou_path}")
    ou = json.loads(ou_path.read_text())
    env["evaluator"].write(env["results"], tmp_path)
    ours = read_eval(tmp_path)
    shared = sorted(set(ou) & set(ours))
    assert len(shared) >= 25, shared
    for name in shared:
        assert set(ours[name]) == set(ou[name]), name
        if "value_by_index" in ou[name]:
            assert set(ours[name]["value_by_index"]["0"]) == set(ou[name]["value_by_index"]["0"]), name
        for group in ("forget", "holdout"):
            if group in ou[name]:
                assert set(ours[name][group]) == set(ou[name][group]), name
    assert set(ou) - set(ours) == {"mia_gradnorm"}  # the one OU metric we do not compute
