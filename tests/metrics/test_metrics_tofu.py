"""Unit tests of unlearning/metrics/tofu_metrics.py: hmean utility and the exact KS forget quality."""

from __future__ import annotations

from itertools import combinations

import pytest

from unlearning.errors import DataError
from unlearning.metrics.tofu_metrics import MODEL_UTILITY_INPUTS, forget_quality, forget_truth_ratio, model_utility


def ks_exact_pvalue_by_enumeration(a: list[float], b: list[float]) -> float:
    """Two-sided exact p-value: share of all relabelings of the pooled sample with D >= observed."""

    def d_stat(x: list[float], y: list[float]) -> float:
        pts = x + y
        return max(abs(sum(v <= p for v in x) / len(x) - sum(v <= p for v in y) / len(y)) for p in pts)

    pooled = a + b
    observed = d_stat(a, b)
    hits = total = 0
    for chosen in combinations(range(len(pooled)), len(a)):
        x = [pooled[i] for i in chosen]
        y = [pooled[i] for i in range(len(pooled)) if i not in chosen]
        total += 1
        hits += d_stat(x, y) >= observed - 1e-12
    return hits / total


def test_model_utility_is_harmonic_mean_of_the_nine_inputs() -> None:
    values = dict.fromkeys(MODEL_UTILITY_INPUTS, 1.0)
    values["wf_Truth_Ratio"] = 0.5
    assert model_utility(values) == pytest.approx(9 / (8 + 2))
    values = {name: 0.1 * (i + 1) for i, name in enumerate(MODEL_UTILITY_INPUTS)}
    assert model_utility(values | {"forget_quality": 0.0}) == pytest.approx(9 / sum(1 / v for v in values.values()))
    assert model_utility(dict.fromkeys(MODEL_UTILITY_INPUTS, 0.0)) == 0.0


def test_model_utility_names_a_missing_or_bad_input() -> None:
    values = dict.fromkeys(MODEL_UTILITY_INPUTS, 0.5)
    del values["ra_Q_A_ROUGE"]
    with pytest.raises(DataError, match="ra_Q_A_ROUGE") as err:
        model_utility(values, where="run7/TOFU_EVAL.json")
    assert "run7/TOFU_EVAL.json" in str(err.value)
    with pytest.raises(DataError, match="retain_Q_A_Prob"):
        model_utility(dict.fromkeys(MODEL_UTILITY_INPUTS, 0.5) | {"retain_Q_A_Prob": None})
    with pytest.raises(DataError, match="wf_Q_A_ROUGE"):
        model_utility(dict.fromkeys(MODEL_UTILITY_INPUTS, 0.5) | {"wf_Q_A_ROUGE": -0.1})


@pytest.mark.parametrize(
    "a,b",
    [
        ([1.0, 2.0, 3.0], [4.0, 5.0, 6.0]),  # D = 1: p = 2 / C(6, 3) = 0.1
        ([0.3, 1.2, 2.5, 0.9, 1.7], [1.1, 2.2, 3.1, 0.4, 2.9]),
        ([0.1, 0.5, 0.6, 2.0], [0.2, 0.3, 0.7, 0.8, 1.5]),  # unequal sizes
    ],
)
def test_forget_quality_is_exact_two_sided_ks_pvalue(a: list[float], b: list[float]) -> None:
    assert forget_quality(a, b) == pytest.approx(ks_exact_pvalue_by_enumeration(a, b), rel=1e-9)


def test_forget_quality_closed_form_and_missing_reference() -> None:
    assert forget_quality([1.0, 2.0, 3.0], [4.0, 5.0, 6.0]) == pytest.approx(0.1)
    assert forget_quality([1.0, 2.0], None) is None
    assert forget_quality([1.0, 2.0], []) is None
    with pytest.raises(ValueError, match="no per-item"):
        forget_quality([], [1.0])


def test_forget_truth_ratio_is_closer_to_one_mean() -> None:
    assert forget_truth_ratio([0.5, 2.0, 1.0]) == pytest.approx((0.5 + 0.5 + 1.0) / 3, rel=1e-8)
