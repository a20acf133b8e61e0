"""Golden tests: our metric math reproduces the values stored in open-unlearning's own eval logs.

Logs: /work/shared/data/tofu/reference_eval_logs (BalDRO copy of OU's `open-unlearning/eval`; every test
skips, naming the path, when they are absent). The retain models' TOFU_EVAL.json hold per-item values; the
full models hold only TOFU_SUMMARY.json. Every comparison is relative (no absolute floor) or, for p-values,
on the log scale, so each test fails when its formula is wrong; benchmarks/mutation_check.py shows which
test catches which mutated metric.
Run: .venv/bin/python -m pytest tests/metrics/test_metrics_golden.py -q
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction
from functools import lru_cache

import numpy as np
import pytest

from metrics_reflogs import FORGET_FOR_RETAIN, MODELS, RETAIN_LOGS, REF_DIR, load_log, require_reference_logs
from unlearning.metrics.primitives import mean_over_items, probability_from_avg_nll
from unlearning.metrics.privacy import mia_auc, privleak
from unlearning.metrics.reference_logs import EvalLog
from unlearning.metrics.report import read_eval, read_summary, write_report
from unlearning.metrics.rouge import clean_generation, rouge_metric
from unlearning.metrics.tofu_metrics import forget_quality, forget_truth_ratio, model_utility
from unlearning.metrics.truth_ratio import closer_to_1_better, probability_w_options, true_better, truth_ratio_metric

REL = 1e-6


def close(ours: float, stored: float, rel: float = REL) -> bool:
    """Purely relative (no absolute floor): a stored 0 must be reproduced exactly, a stored 1e-27 to 1e-6."""
    return abs(ours - stored) <= rel * abs(stored)


def log_close(ours: float, stored: float, tol: float = REL) -> bool:
    """p-values compared on the log scale: |log p - log p*| <= tol (i.e. relative 1e-6 at any magnitude)."""
    return ours > 0 and stored > 0 and abs(math.log(ours) - math.log(stored)) <= tol


def eval_log(name: str) -> dict:
    return load_log(f"{name}/TOFU_EVAL.json")


# --- forget_quality ---------------------------------------------------------------------------------
# Oracle, independent of scipy: the two-sided KS statistic D of two samples by hand, and its exact p-value
# for n = m by counting lattice paths with integers: P(D >= k/n) = 1 - #{paths (0,0) -> (n,n) with
# |i - j| < k throughout} / C(2n, n) (Gnedenko-Korolyuk), exact as a fraction before the final division.


def ks_statistic_by_hand(a: np.ndarray, b: np.ndarray) -> float:
    points = np.concatenate([a, b])
    return max(abs(np.mean(a <= x) - np.mean(b <= x)) for x in points)


@lru_cache(maxsize=None)
def exact_ks_pvalue(n: int, k: int) -> float:
    """Two-sided P(D_{n,n} >= k/n) under H0, from integer path counts."""
    prev: list[int] = []
    for i in range(n + 1):
        cur = [0] * (n + 1)
        for j in range(max(0, i - k + 1), min(n, i + k - 1) + 1):
            cur[j] = 1 if i == j == 0 else (prev[j] if i else 0) + (cur[j - 1] if j else 0)
        prev = cur
    total = math.comb(2 * n, n)
    return float(Fraction(total - prev[n], total))


def ks_k_for_pvalue(n: int, p: float) -> int:
    """The integer k whose exact p-value P(D >= k/n) is closest to p on the log scale (p decreases in k)."""
    lo, hi = 1, n
    while lo < hi:  # smallest k with p(k) <= p
        mid = (lo + hi) // 2
        lo, hi = (mid + 1, hi) if exact_ks_pvalue(n, mid) > p else (lo, mid)
    return min((k for k in (lo - 1, lo) if k >= 1), key=lambda k: abs(math.log(exact_ks_pvalue(n, k)) - math.log(p)))


def _retain_truth_ratios(model: str, retain: str) -> np.ndarray:
    return EvalLog.load(require_reference_logs() / f"tofu_{model}_{retain}").truth_ratios()


@pytest.mark.parametrize("retain,model_a,model_b", [(r, a, b) for r in FORGET_FOR_RETAIN
                                                    for a, b in itertools.combinations(MODELS, 2)])
def test_forget_quality_between_stored_distributions(retain: str, model_a: str, model_b: str) -> None:
    """Golden value from the stored per-item truth ratios themselves: two retain models' distributions on
    the same forget split, D by hand, p by exact path counting; our forget_quality must match in log p."""
    a, b = _retain_truth_ratios(model_a, retain), _retain_truth_ratios(model_b, retain)
    n = {"forget01": 40, "forget05": 200, "forget10": 400}[FORGET_FOR_RETAIN[retain]]
    assert len(a) == len(b) == n
    k = round(ks_statistic_by_hand(a, b) * n)
    assert ks_statistic_by_hand(a, b) == pytest.approx(k / n, abs=1e-12)
    golden = exact_ks_pvalue(n, k)
    assert log_close(forget_quality(a, b), golden) and log_close(forget_quality(b, a), golden)


# The full models' per-item forget_truth_ratio values are NOT stored (only TOFU_SUMMARY.json), so their
# sample cannot be rebuilt. What can be checked: (1) the stored forget_quality is exactly the two-sided
# exact KS p-value of D = k/n for an integer k, which is derived here from the stored value with the
# independent oracle (not hard-coded), and (2) our forget_quality reproduces the stored value, in log p,
# for a sample at that D built from the retain model's real per-item truth ratios.
@pytest.mark.parametrize("model,retain", [(m, r) for m in MODELS for r in FORGET_FOR_RETAIN])
def test_forget_quality_of_full_model_matches_stored(model: str, retain: str) -> None:
    split = FORGET_FOR_RETAIN[retain]
    stored = load_log(f"tofu_{model}_full/evals_{split}/TOFU_SUMMARY.json")["forget_quality"]
    retain_tr = _retain_truth_ratios(model, retain)
    n = {"forget01": 40, "forget05": 200, "forget10": 400}[split]
    assert len(retain_tr) == n and len(set(retain_tr.tolist())) == n
    k = ks_k_for_pvalue(n, stored)
    assert log_close(exact_ks_pvalue(n, k), stored, tol=1e-9)  # the stored value is an exact KS p-value
    ordered = np.sort(retain_tr)
    full_like = np.concatenate([ordered[k:], ordered[-1] + 1.0 + np.arange(k)])  # k lowest moved above all
    assert ks_statistic_by_hand(full_like, retain_tr) == pytest.approx(k / n, abs=1e-12)
    assert log_close(forget_quality(full_like, retain_tr), stored)


@pytest.mark.parametrize("name", RETAIN_LOGS)
def test_retain_logs_have_no_forget_quality_without_reference(name: str) -> None:
    data = eval_log(name)
    assert data["forget_quality"]["agg_value"] is None
    assert forget_quality(EvalLog(REF_DIR / name, data).truth_ratios(), None) is None


# --- model_utility ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", RETAIN_LOGS)
def test_model_utility_from_its_nine_stored_inputs(name: str) -> None:
    log = EvalLog(REF_DIR / name / "TOFU_EVAL.json", eval_log(name))
    assert close(model_utility(log.utility_inputs()), log.agg("model_utility"))
    summary = load_log(f"{name}/TOFU_SUMMARY.json")
    assert close(model_utility(log.utility_inputs()), summary["model_utility"])


# --- truth ratios, probabilities, ES/EM aggregates ------------------------------------------------
TR_SOURCES = {
    "forget_truth_ratio": ("forget_Q_A_PARA_Prob", "forget_Q_A_PERT_Prob", "closer_to_1_better"),
    "retain_Truth_Ratio": ("retain_Q_A_PARA_Prob", "retain_Q_A_PERT_Prob", "true_better"),
    "ra_Truth_Ratio": ("ra_Q_A_Prob", "ra_Q_A_PERT_Prob", "true_better"),
    "wf_Truth_Ratio": ("wf_Q_A_Prob", "wf_Q_A_PERT_Prob", "true_better"),
}


@pytest.mark.parametrize("name", RETAIN_LOGS)
def test_truth_ratios_from_stored_losses_and_aggregates(name: str) -> None:
    data = eval_log(name)
    for metric, (correct_key, wrong_key, aggregator) in TR_SOURCES.items():
        correct = [r["avg_loss"] for r in data[correct_key]["value_by_index"].values()]
        wrong = [r["avg_loss"] for r in data[wrong_key]["value_by_index"].values()]
        ours = truth_ratio_metric(correct, wrong, aggregator, indices=list(data[correct_key]["value_by_index"]))
        stored = data[metric]
        assert ours["value_by_index"].keys() == stored["value_by_index"].keys()
        for idx, record in stored["value_by_index"].items():
            assert close(ours["value_by_index"][idx]["score"], record["score"]), (metric, idx)
        assert close(ours["agg_value"], stored["agg_value"]), metric
        stored_tr = [r["score"] for r in stored["value_by_index"].values()]
        agg = closer_to_1_better if aggregator == "closer_to_1_better" else true_better
        assert close(agg(stored_tr), stored["agg_value"]), metric
    forget_tr = [r["score"] for r in data["forget_truth_ratio"]["value_by_index"].values()]
    assert close(forget_truth_ratio(forget_tr), data["forget_truth_ratio"]["agg_value"])


@pytest.mark.parametrize("name", RETAIN_LOGS)
def test_probability_metrics_from_stored_items(name: str) -> None:
    data = eval_log(name)
    for prefix in ("ra", "wf"):
        correct = [r["prob"] for r in data[f"{prefix}_Q_A_Prob"]["value_by_index"].values()]
        wrong = [r["prob"] for r in data[f"{prefix}_Q_A_PERT_Prob"]["value_by_index"].values()]
        ours = probability_w_options(correct, wrong)
        stored = data[f"{prefix}_Q_A_Prob_normalised"]
        assert close(ours["agg_value"], stored["agg_value"])
        for (idx, record), ours_record in zip(stored["value_by_index"].items(), ours["value_by_index"].values()):
            assert close(ours_record["prob"], record["prob"]), idx
    for metric, entry in data.items():
        if metric.endswith("_Prob") and "value_by_index" in entry:
            records = list(entry["value_by_index"].values())
            assert close(mean_over_items(r["prob"] for r in records), entry["agg_value"]), metric
            # stored prob is the float32 exp(-avg_loss)
            np.testing.assert_allclose(
                probability_from_avg_nll([r["avg_loss"] for r in records]), [r["prob"] for r in records], rtol=1e-6
            )
    for metric in ("exact_memorization", "extraction_strength"):
        scores = [r["score"] for r in data[metric]["value_by_index"].values()]
        assert close(mean_over_items(scores), data[metric]["agg_value"]), metric


# --- ROUGE ------------------------------------------------------------------------------------------
ROUGE_METRICS = ["forget_Q_A_ROUGE", "ra_Q_A_ROUGE", "retain_Q_A_ROUGE", "wf_Q_A_ROUGE"]


@pytest.fixture(scope="module")
def scored_pairs() -> dict[tuple[str, str], dict]:
    """Our scores of every distinct stored (ground truth, generation) pair (~5k of the ~10k stored)."""
    pairs: dict[tuple[str, str], None] = {}
    for name in RETAIN_LOGS:
        data = eval_log(name)
        for metric in ROUGE_METRICS:
            for r in data[metric]["value_by_index"].values():
                pairs[(r["ground_truth"], r["generation"])] = None
    keys = list(pairs)
    ours = rouge_metric([gt for gt, _ in keys], [gen for _, gen in keys], "rougeL_recall")
    return dict(zip(keys, ours["value_by_index"].values()))


@pytest.mark.parametrize("name", RETAIN_LOGS)
def test_rouge_of_every_stored_generation(name: str, scored_pairs: dict) -> None:
    data = eval_log(name)
    assert sorted(m for m in data if m.endswith("_ROUGE")) == ROUGE_METRICS
    for metric in ROUGE_METRICS:
        stored = data[metric]
        records = list(stored["value_by_index"].values())
        for idx, record in stored["value_by_index"].items():
            mine = scored_pairs[(record["ground_truth"], record["generation"])]
            for key in ("rougeL_recall", "rouge1_recall", "rougeL_f1"):
                assert close(mine[key], record[key]), (metric, idx, key)
        # stored generations were already cut and stripped: cleaning them again changes nothing
        gens = [r["generation"] for r in records]
        assert [clean_generation(g, eos_text="</s>", stopwords=None) for g in gens] == gens
    # the full OU per-item record (scores + texts) and the aggregate, for one metric end to end
    stored = data["wf_Q_A_ROUGE"]
    records = list(stored["value_by_index"].values())
    ours = rouge_metric(
        [r["ground_truth"] for r in records], [r["generation"] for r in records], "rougeL_recall",
        inputs=[r["input"] for r in records], indices=list(stored["value_by_index"]),
    )
    assert ours["value_by_index"] == stored["value_by_index"]
    assert close(ours["agg_value"], stored["agg_value"])
    for metric in ROUGE_METRICS:
        records = data[metric]["value_by_index"].values()
        recalls = [scored_pairs[(r["ground_truth"], r["generation"])]["rougeL_recall"] for r in records]
        assert close(mean_over_items(recalls), data[metric]["agg_value"]), metric


# --- MIA AUC and privleak ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", RETAIN_LOGS)
def test_mia_aucs_from_stored_scores_and_retain_privleak(name: str) -> None:
    data = eval_log(name)
    log = EvalLog(REF_DIR / name / "TOFU_EVAL.json", data)
    mia_metrics = [m for m in data if m.startswith("mia_")]
    assert set(mia_metrics) == {"mia_gradnorm", "mia_loss", "mia_min_k", "mia_min_k_plus_plus", "mia_zlib"}
    for metric in mia_metrics:
        auc = mia_auc(log.mia_scores(metric, "forget"), log.mia_scores(metric, "holdout"))
        assert close(auc, data[metric]["auc"]), metric
        assert close(float(np.mean(log.mia_scores(metric, "forget"))), data[metric]["forget"]["agg_value"], rel=1e-6)
    # a retain model's own privleak is relative to the default reference AUC 0.5
    assert close(privleak(log.mia_auc()), data["privleak"]["agg_value"])


@pytest.mark.parametrize("model,retain", [(m, r) for m in MODELS for r in FORGET_FOR_RETAIN])
def test_privleak_of_full_model_against_retain_auc(model: str, retain: str) -> None:
    full = load_log(f"tofu_{model}_full/evals_{FORGET_FOR_RETAIN[retain]}/TOFU_SUMMARY.json")
    retain_auc = EvalLog.load(REF_DIR / f"tofu_{model}_{retain}").mia_auc()
    # 1e-12: the same float64 formula as OU's. At AUC 1.0 privleak is -100 * (1-ref) / (1-ref + 1e-10), so the
    # reference AUC only moves the 10th-12th digit there; a looser tolerance could not tell a wrong reference.
    assert close(privleak(full["mia_min_k"], reference_auc=retain_auc), full["privleak"], rel=1e-12)


# --- reading and writing logs -----------------------------------------------------------------------
def test_full_model_logs_are_summaries_without_per_item_values() -> None:
    require_reference_logs()
    log = EvalLog.load(REF_DIR / f"tofu_{MODELS[0]}_full" / "evals_forget01")
    assert log.is_summary and log.path.name == "TOFU_SUMMARY.json"
    assert close(log.agg("forget_quality"), 0.0012708143485281624)
    assert close(log.agg("model_utility"), 0.6275553508047139)


def test_report_round_trip_of_a_stored_log(tmp_path) -> None:
    name = RETAIN_LOGS[0]
    data = eval_log(name)
    eval_path, summary_path = write_report(tmp_path, data)
    assert read_eval(tmp_path) == data
    ours = read_summary(tmp_path)
    assert ours == {metric: entry["agg_value"] for metric, entry in data.items()}
    stored_summary = load_log(f"{name}/TOFU_SUMMARY.json")  # OU's summary lists only the top-level metrics
    assert {metric: ours[metric] for metric in stored_summary} == stored_summary
    assert eval_path.read_text().splitlines()[:3] == (REF_DIR / name / "TOFU_EVAL.json").read_text().splitlines()[:3]
