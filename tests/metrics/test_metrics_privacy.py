"""Unit tests of unlearning/metrics/privacy.py: MIA scores, AUC convention and privleak by hand."""

from __future__ import annotations

import math
import zlib
from itertools import product

import numpy as np
import pytest
import torch

from unlearning.metrics.privacy import (
    loss_score,
    mia_auc,
    mia_result,
    min_k_plus_plus_score,
    min_k_score,
    privleak,
    zlib_score,
)


def test_min_k_takes_lowest_fraction_at_least_one() -> None:
    lp = [-1.0, -5.0, -3.0, -2.0, -4.0]
    assert min_k_score(lp, k=0.4) == pytest.approx((5.0 + 4.0) / 2)  # int(5 * 0.4) = 2 lowest
    assert min_k_score([-1.0, -2.0], k=0.4) == pytest.approx(2.0)  # int(0.8) = 0 -> 1
    assert min_k_score(torch.tensor([-0.5, -0.25, -3.0, -1.0]), k=0.5) == pytest.approx(2.0)
    assert min_k_score([], k=0.4) == 0.0


def test_min_k_plus_plus_by_hand() -> None:
    vocab_probs = [[0.5, 0.25, 0.25], [0.8, 0.1, 0.1], [0.2, 0.3, 0.5]]
    targets = [1, 0, 2]
    z = []
    for row, tok in zip(vocab_probs, targets):
        lp = [math.log(p) for p in row]
        mu = sum(p * l for p, l in zip(row, lp))
        var = max(sum(p * l * l for p, l in zip(row, lp)) - mu * mu, 1e-6)
        z.append((lp[tok] - mu) / math.sqrt(var))
    vocab_lp = np.log(np.array(vocab_probs))
    target_lp = [math.log(vocab_probs[i][t]) for i, t in enumerate(targets)]
    # n = 3, k = 0.4 -> int(1.2) = 1 lowest z-score; k = 0.7 -> 2
    assert min_k_plus_plus_score(vocab_lp, target_lp, k=0.4) == pytest.approx(-min(z), rel=1e-12)
    assert min_k_plus_plus_score(vocab_lp, target_lp, k=0.7) == pytest.approx(-sum(sorted(z)[:2]) / 2, rel=1e-12)
    assert min_k_plus_plus_score(np.zeros((0, 3)), [], k=0.4) == 0.0


def test_min_k_plus_plus_clamps_variance_of_a_certain_prediction() -> None:
    probs = [1.0 - 2e-12, 1e-12, 1e-12]
    lp = [math.log(p) for p in probs]
    mu = sum(p * l for p, l in zip(probs, lp))
    assert sum(p * l * l for p, l in zip(probs, lp)) - mu * mu < 1e-6  # variance below the clamp
    expected = -(lp[0] - mu) / math.sqrt(1e-6)
    assert min_k_plus_plus_score(np.array([lp]), [lp[0]], k=0.4) == pytest.approx(expected, rel=1e-9)


def test_loss_and_zlib_scores() -> None:
    assert loss_score(1.25) == 1.25
    text = "Basil Mahfouz Al-Kuwaiti"
    assert zlib_score(2.0, text) == pytest.approx(2.0 / len(zlib.compress(text.encode("utf-8"))))


def test_auc_convention_forget_is_negative_class() -> None:
    # memorised forget set = low loss; holdout = high loss -> AUC 1
    assert mia_auc([0.1, 0.2, 0.3], [1.0, 2.0]) == 1.0
    assert mia_auc([1.0, 2.0], [0.1, 0.2, 0.3]) == 0.0
    # ties count 1/2: pairs (1,2) (1,3) (2,2) (2,3) -> (1 + 1 + 0.5 + 1) / 4
    assert mia_auc([1.0, 2.0], [2.0, 3.0]) == pytest.approx(0.875)


def test_auc_equals_pairwise_probability_on_random_scores() -> None:
    rng = np.random.default_rng(0)
    forget = np.round(rng.normal(size=37), 1)  # rounding creates ties
    holdout = np.round(rng.normal(0.5, size=41), 1)
    pairs = [1.0 if h > f else 0.5 if h == f else 0.0 for f, h in product(forget, holdout)]
    assert mia_auc(forget, holdout) == pytest.approx(sum(pairs) / len(pairs), rel=1e-12)
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    labels = [0] * len(forget) + [1] * len(holdout)
    assert mia_auc(forget, holdout) == pytest.approx(
        sklearn_metrics.roc_auc_score(labels, np.concatenate([forget, holdout])), rel=1e-12
    )


def test_mia_result_layout() -> None:
    res = mia_result([0.1, 0.3], [0.2, 0.4], holdout_indices=[10, 11])
    assert res["auc"] == res["agg_value"] == pytest.approx(0.75)
    assert res["forget"]["agg_value"] == pytest.approx(0.2)
    assert res["forget"]["value_by_index"] == {"0": {"score": 0.1}, "1": {"score": 0.3}}
    assert list(res["holdout"]["value_by_index"]) == ["10", "11"]
    with pytest.raises(ValueError, match="both groups"):
        mia_auc([], [1.0])


def test_privleak_formula_and_default_reference() -> None:
    assert privleak(0.5, reference_auc=0.5) == 0.0
    assert privleak(1.0, reference_auc=0.5) == pytest.approx((0.0 - 0.5) / (0.5 + 1e-10) * 100, rel=1e-15)
    assert privleak(0.3, reference_auc=0.6) == pytest.approx((0.7 - 0.4) / (0.4 + 1e-10) * 100, rel=1e-15)
    assert privleak(0.7) == pytest.approx((0.3 - 0.5) / (0.5 + 1e-10) * 100, rel=1e-15)  # default 0.5
    assert privleak(1.0, reference_auc=1.0) == 0.0  # 1e-10 guards the division
    with pytest.raises(ValueError, match="auc"):
        privleak(float("nan"))
