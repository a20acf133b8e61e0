"""TOFU truth ratio (per item + the three aggregators) and probability_w_options, from per-item losses.

As open-unlearning `memorization.py:truth_ratio` / `probability_w_options` (docs/methods.md, "Primitives"):

    tr = exp(-mean(wrong avg_loss)) / (exp(-correct avg_loss) + 1e-10)     # P_wrong / P_correct
    closer_to_1_better = mean(min(tr, 1/(tr + 1e-10)))   # forget split (forget_truth_ratio)
    true_better        = mean(max(0, 1 - tr))            # retain / real authors / world facts
    prob_mean          = mean(P_c / (P_c + P_w + 1e-10)) # added to OU in Dec 2025

`prob_mean_eps` (default 1e-10 = open-unlearning's form) is the constant in prob_mean's denominator; 0.0
gives the plain ratio. The default follows the reference because these numbers are compared with OU's
own logs, and because it stays finite (0) where both probabilities underflow to 0, where the plain
ratio is 0/0. The two forms differ by < 1e-10 / (P_c + P_w) relative.

Use:
    res = truth_ratio_metric(para_losses, pert_losses, "closer_to_1_better")
    res["agg_value"], res["value_by_index"]["0"]["score"]
    probability_w_options(true_probs, [[p1, p2, p3], ...])["agg_value"]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

TR_EPS = 1e-10

Losses = Sequence[float] | Sequence[Sequence[float]]


def _per_item_mean(values: Losses, name: str) -> np.ndarray:
    """OU `aggregate_to_1D`: an item with several answers is represented by their mean."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 0 or arr.shape[0] == 0:
        raise ValueError(f"{name}: need a non-empty list of per-item values, got {values!r}")
    return arr.mean(axis=tuple(range(1, arr.ndim))) if arr.ndim > 1 else arr


def _probs(correct_avg_losses: Losses, wrong_avg_losses: Losses) -> tuple[np.ndarray, np.ndarray]:
    correct = _per_item_mean(correct_avg_losses, "correct_avg_losses")
    wrong = _per_item_mean(wrong_avg_losses, "wrong_avg_losses")
    if correct.shape != wrong.shape:
        raise ValueError(f"correct ({correct.shape[0]} items) and wrong ({wrong.shape[0]} items) differ in length")
    return np.exp(-correct), np.exp(-wrong)


def _keys(indices: Sequence[int | str] | None, n: int) -> list[str]:
    keys = [str(i) for i in (indices if indices is not None else range(n))]
    if len(keys) != n:
        raise ValueError(f"{len(keys)} indices given for {n} items")
    return keys


def truth_ratios(correct_avg_losses: Losses, wrong_avg_losses: Losses) -> np.ndarray:
    """Per item tr = P_w / (P_c + 1e-10), P = exp(-avg_loss), wrong losses averaged first."""
    p_correct, p_wrong = _probs(correct_avg_losses, wrong_avg_losses)
    return p_wrong / (p_correct + TR_EPS)


def truth_ratio(correct_avg_loss: float | Sequence[float], wrong_avg_losses: float | Sequence[float]) -> float:
    """One item's truth ratio (see `truth_ratios`)."""
    correct = float(np.mean(np.asarray(correct_avg_loss, dtype=np.float64)))
    wrong = float(np.mean(np.asarray(wrong_avg_losses, dtype=np.float64)))
    return float(np.exp(-wrong) / (np.exp(-correct) + TR_EPS))


def closer_to_1_better(tr: Sequence[float] | np.ndarray) -> float:
    """Forget-set aggregate: mean of min(tr, 1/(tr + 1e-10)); 1 = true and wrong equally likely."""
    arr = np.asarray(tr, dtype=np.float64)
    return float(np.mean(np.minimum(arr, 1 / (arr + TR_EPS))))


def true_better(tr: Sequence[float] | np.ndarray) -> float:
    """Retain/RA/WF aggregate: mean of max(0, 1 - tr); higher = true answer preferred."""
    arr = np.asarray(tr, dtype=np.float64)
    return float(np.mean(np.maximum(0, 1 - arr)))


TR_AGGREGATORS: dict[str, Callable[[Sequence[float] | np.ndarray], float]] = {
    "closer_to_1_better": closer_to_1_better,
    "true_better": true_better,
}


def truth_ratio_metric(
    correct_avg_losses: Losses,
    wrong_avg_losses: Losses,
    aggregator: str,
    indices: Sequence[int | str] | None = None,
    prob_mean_eps: float = TR_EPS,
) -> dict[str, Any]:
    """OU truth_ratio result {"agg_value", "value_by_index": {idx: {"score": s}}}.

    aggregator: "closer_to_1_better" | "true_better" (score = tr) or "prob_mean"
    (score = P_c / (P_c + P_w + prob_mean_eps), agg = plain mean; prob_mean_eps=0.0 drops OU's 1e-10).
    """
    if aggregator == "prob_mean":
        p_correct, p_wrong = _probs(correct_avg_losses, wrong_avg_losses)
        with np.errstate(invalid="ignore"):
            scores = p_correct / (p_correct + p_wrong + prob_mean_eps)
        agg = float(np.mean(scores))
    elif aggregator in TR_AGGREGATORS:
        scores = truth_ratios(correct_avg_losses, wrong_avg_losses)
        agg = TR_AGGREGATORS[aggregator](scores)
    else:
        raise ValueError(
            f"unknown truth-ratio aggregator {aggregator!r}; use closer_to_1_better, true_better or prob_mean"
        )
    keys = _keys(indices, len(scores))
    return {"agg_value": agg, "value_by_index": {k: {"score": float(s)} for k, s in zip(keys, scores)}}


def probability_w_options(
    correct_probs: Sequence[float],
    wrong_probs: Sequence[Sequence[float]],
    indices: Sequence[int | str] | None = None,
) -> dict[str, Any]:
    """OU probability_w_options: per item P_true / (P_true + sum_j P_wrong_j + 1e-10); mean over items."""
    correct = np.asarray(correct_probs, dtype=np.float64)
    wrong = np.asarray(wrong_probs, dtype=np.float64)
    if correct.ndim != 1 or wrong.shape[:1] != correct.shape:
        raise ValueError(f"need one true prob and a list of wrong probs per item, got {correct.shape} / {wrong.shape}")
    wrong_sum = wrong.sum(axis=tuple(range(1, wrong.ndim))) if wrong.ndim > 1 else wrong
    probs = correct / (correct + wrong_sum + TR_EPS)
    keys = _keys(indices, len(probs))
    return {"agg_value": float(np.mean(probs)), "value_by_index": {k: {"prob": float(p)} for k, p in zip(keys, probs)}}
