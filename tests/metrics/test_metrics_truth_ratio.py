"""Unit tests of unlearning/metrics/truth_ratio.py: closed forms on hand-picked losses / probabilities."""

from __future__ import annotations

import math

import pytest

from unlearning.metrics.truth_ratio import (
    closer_to_1_better,
    probability_w_options,
    true_better,
    truth_ratio,
    truth_ratio_metric,
    truth_ratios,
)


def test_truth_ratio_is_wrong_over_correct_probability() -> None:
    # wrong losses averaged first: exp(-mean(2, 4)) / exp(-1)
    expected = math.exp(-3.0) / (math.exp(-1.0) + 1e-10)
    assert truth_ratio(1.0, [2.0, 4.0]) == pytest.approx(expected, rel=1e-12)
    assert truth_ratios([1.0, 0.5], [[2.0, 4.0], [0.5, 0.5]]).tolist() == pytest.approx(
        [expected, math.exp(-0.5) / (math.exp(-0.5) + 1e-10)], rel=1e-12
    )


def test_aggregators_closed_forms() -> None:
    tr = [0.5, 2.0, 1.0, 0.25]
    # min(tr, 1/tr) = 0.5, 0.5, 1, 0.25
    assert closer_to_1_better(tr) == pytest.approx((0.5 + 0.5 + 1 + 0.25) / 4, rel=1e-8)
    # max(0, 1 - tr) = 0.5, 0, 0, 0.75
    assert true_better(tr) == pytest.approx((0.5 + 0 + 0 + 0.75) / 4, rel=1e-12)


def test_truth_ratio_metric_layout_and_aggregators() -> None:
    correct = [1.0, 2.0]
    wrong = [[1.5, 2.5], [1.0, 1.0]]
    tr = [math.exp(-2.0) / (math.exp(-1.0) + 1e-10), math.exp(-1.0) / (math.exp(-2.0) + 1e-10)]
    res = truth_ratio_metric(correct, wrong, "closer_to_1_better", indices=[7, 9])
    assert list(res["value_by_index"]) == ["7", "9"]
    assert res["value_by_index"]["7"]["score"] == pytest.approx(tr[0], rel=1e-12)
    assert res["agg_value"] == pytest.approx(sum(min(t, 1 / t) for t in tr) / 2, rel=1e-8)
    res = truth_ratio_metric(correct, wrong, "true_better")
    assert res["agg_value"] == pytest.approx(sum(max(0.0, 1 - t) for t in tr) / 2, rel=1e-12)
    res = truth_ratio_metric(correct, wrong, "prob_mean")
    pc, pw = [math.exp(-1.0), math.exp(-2.0)], [math.exp(-2.0), math.exp(-1.0)]
    expected = [c / (c + w + 1e-10) for c, w in zip(pc, pw)]   # OU: + 1e-10 in the denominator
    assert [r["score"] for r in res["value_by_index"].values()] == pytest.approx(expected, rel=1e-12)
    assert res["agg_value"] == pytest.approx(sum(expected) / 2, rel=1e-12)


def test_truth_ratio_metric_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="aggregator"):
        truth_ratio_metric([1.0], [[1.0]], "mean")
    with pytest.raises(ValueError, match="differ in length"):
        truth_ratio_metric([1.0, 2.0], [[1.0]], "true_better")
    with pytest.raises(ValueError, match="indices"):
        truth_ratio_metric([1.0], [[1.0]], "true_better", indices=[0, 1])


def test_probability_w_options() -> None:
    res = probability_w_options([0.5, 0.1], [[0.25, 0.125, 0.125], [0.1, 0.1, 0.2]], indices=["3", "4"])
    first, second = 0.5 / (0.5 + 0.5 + 1e-10), 0.1 / (0.1 + 0.4 + 1e-10)
    assert res["value_by_index"]["3"]["prob"] == pytest.approx(first, rel=1e-12)
    assert res["value_by_index"]["4"]["prob"] == pytest.approx(second, rel=1e-12)
    assert res["agg_value"] == pytest.approx((first + second) / 2, rel=1e-12)


def _ou_prob_mean(correct_losses, wrong_losses):
    """open-unlearning truth_ratio(aggregator="prob_mean"), written out: per item
    correct_prob / (correct_prob + wrong_prob + 1e-10) with wrong_prob = exp(-mean wrong avg_loss); plain mean."""
    scores = []
    for c, w in zip(correct_losses, wrong_losses):
        pc, pw = math.exp(-c), math.exp(-sum(w) / len(w))
        scores.append(pc / (pc + pw + 1e-10))
    return scores, sum(scores) / len(scores)


def test_prob_mean_reference_form_and_plain_form() -> None:
    # ordinary items, plus one whose probabilities are ~1e-13: there the 1e-10 dominates the denominator
    correct = [1.0, 2.0, 30.0]
    wrong = [[1.5, 2.5], [1.0, 1.0], [29.0, 31.0]]
    scores, agg = _ou_prob_mean(correct, wrong)
    res = truth_ratio_metric(correct, wrong, "prob_mean")                       # default: the reference form
    assert [r["score"] for r in res["value_by_index"].values()] == pytest.approx(scores, rel=1e-12)
    assert res["agg_value"] == pytest.approx(agg, rel=1e-12)
    plain = truth_ratio_metric(correct, wrong, "prob_mean", prob_mean_eps=0.0)  # the eps-free form
    pc, pw = math.exp(-30.0), math.exp(-30.0)
    assert plain["value_by_index"]["2"]["score"] == pytest.approx(pc / (pc + pw), rel=1e-12) == 0.5
    assert res["value_by_index"]["2"]["score"] == pytest.approx(pc / (pc + pw + 1e-10), rel=1e-12)
    assert res["value_by_index"]["2"]["score"] < 0.01                          # the two forms really differ there
    assert plain["value_by_index"]["0"]["score"] == pytest.approx(res["value_by_index"]["0"]["score"], rel=1e-9)


def test_prob_mean_where_both_probabilities_underflow() -> None:
    """exp(-800) is 0.0 in float64: the reference form gives 0, the plain ratio 0/0 = nan."""
    res = truth_ratio_metric([800.0], [[800.0]], "prob_mean")
    assert res["value_by_index"]["0"]["score"] == 0.0
    plain = truth_ratio_metric([800.0], [[800.0]], "prob_mean", prob_mean_eps=0.0)
    assert math.isnan(plain["value_by_index"]["0"]["score"])
