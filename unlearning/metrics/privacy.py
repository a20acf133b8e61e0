"""Membership-inference (MIA) scores, their AUC, and privleak, as open-unlearning computes them.

Per-item scores (OU `src/evals/metrics/mia/*.py`; higher score = less likely a training member):
    loss_score(avg_loss)                                  # LOSS attack
    zlib_score(avg_loss, answer_text)                     # avg_loss / len(zlib.compress(utf-8 text))
    min_k_score(token_log_probs, k=0.4)                   # -mean of the lowest max(1, int(n*k)) log-probs
    min_k_plus_plus_score(vocab_log_probs, token_log_probs, k=0.4)   # same on vocab-normalised z-scores
AUC: labels forget = 0, holdout = 1 (so AUC -> 1 when the forget set is memorised), with ties
counted half, i.e. sklearn `roc_auc_score` (computed here from average ranks with scipy).
privleak (docs/methods.md, "Extraction strength, membership inference and privleak"):
((1 - auc) - (1 - ref)) / ((1 - ref) + 1e-10) * 100, where ref is the retain model's AUC or 0.5 when no reference is available.

    res = mia_result(forget_scores, holdout_scores)      # OU layout incl. "auc" and "agg_value"
    privleak(res["auc"], reference_auc=retain_auc)
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from scipy.stats import rankdata

PRIVLEAK_EPS = 1e-10
DEFAULT_REFERENCE_AUC = 0.5
MIN_K = 0.4

ArrayLike = Sequence[float] | np.ndarray | torch.Tensor


def _np(x: ArrayLike) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def loss_score(avg_loss: float) -> float:
    """LOSS attack: the item's average answer NLL."""
    return float(avg_loss)


def zlib_score(avg_loss: float, text: str) -> float:
    """zlib attack: average answer NLL divided by the zlib-compressed byte length of the answer text."""
    return float(avg_loss) / len(zlib.compress(text.encode("utf-8")))


def min_k_score(token_log_probs: ArrayLike, k: float = MIN_K) -> float:
    """Min-k% attack: minus the mean of the max(1, int(n*k)) smallest token log-probs; 0 if n = 0."""
    lp = _np(token_log_probs)
    if lp.size == 0:
        return 0.0
    num_k = max(1, int(len(lp) * k))
    return float(-np.mean(np.sort(lp)[:num_k]))


def min_k_plus_plus_score(vocab_log_probs: ArrayLike, token_log_probs: ArrayLike, k: float = MIN_K) -> float:
    """Min-k%++ attack: min-k on z = (log p(y_t) - mu_t) / sigma_t over the next-token distribution.

    mu_t = sum_v p_v log p_v, sigma_t^2 = sum_v p_v (log p_v)^2 - mu_t^2 (clamped at 1e-6).
    `vocab_log_probs` is [n, V] log-softmax, `token_log_probs` the n target log-probs; 0 if n = 0.
    """
    target = _np(token_log_probs)
    if target.size == 0:
        return 0.0
    all_lp = _np(vocab_log_probs)
    if all_lp.ndim != 2 or all_lp.shape[0] != target.shape[0]:
        raise ValueError(f"vocab_log_probs must be [n, V] with n = {target.shape[0]}, got {all_lp.shape}")
    probs = np.exp(all_lp)
    mu = (probs * all_lp).sum(-1)
    sigma = np.maximum((probs * np.square(all_lp)).sum(-1) - np.square(mu), 1e-6)
    z = (target - mu) / np.sqrt(sigma)
    num_k = max(1, int(len(z) * k))
    return float(-np.mean(np.sort(z)[:num_k]))


def mia_auc(forget_scores: ArrayLike, holdout_scores: ArrayLike) -> float:
    """ROC AUC of the scores with labels forget = 0, holdout = 1 (ties count one half).

    Equals sklearn.metrics.roc_auc_score(labels, scores) = P(holdout score > forget score).
    """
    f, h = _np(forget_scores), _np(holdout_scores)
    if f.size == 0 or h.size == 0:
        raise ValueError(f"need scores for both groups, got {f.size} forget and {h.size} holdout")
    if not (np.all(np.isfinite(f)) and np.all(np.isfinite(h))):
        raise ValueError("MIA scores must be finite")
    ranks = rankdata(np.concatenate([f, h]))  # average ranks for ties
    rank_sum_holdout = float(ranks[f.size :].sum())
    u = rank_sum_holdout - h.size * (h.size + 1) / 2
    return u / (f.size * h.size)


def _scores_block(scores: ArrayLike, indices: Sequence[int | str] | None) -> dict[str, Any]:
    arr = _np(scores)
    keys = [str(i) for i in (indices if indices is not None else range(arr.size))]
    if len(keys) != arr.size:
        raise ValueError(f"{len(keys)} indices given for {arr.size} scores")
    return {
        "agg_value": float(np.mean(arr)),
        "value_by_index": {k: {"score": float(s)} for k, s in zip(keys, arr)},
    }


def mia_result(
    forget_scores: ArrayLike,
    holdout_scores: ArrayLike,
    forget_indices: Sequence[int | str] | None = None,
    holdout_indices: Sequence[int | str] | None = None,
) -> dict[str, Any]:
    """OU MIA result: {"forget": {agg, by index}, "holdout": {...}, "auc": a, "agg_value": a}."""
    auc = mia_auc(forget_scores, holdout_scores)
    return {
        "forget": _scores_block(forget_scores, forget_indices),
        "holdout": _scores_block(holdout_scores, holdout_indices),
        "auc": auc,
        "agg_value": auc,
    }


def privleak(auc: float, reference_auc: float | None = None, default_reference: float = DEFAULT_REFERENCE_AUC) -> float:
    """privleak in percent relative to the retain model's AUC (`default_reference` when None).

    ~0 = like the retain model; -100 = fully memorised; large positive = over-unlearned.
    """
    ref = default_reference if reference_auc is None else reference_auc
    checked = []
    for name, value in (("auc", auc), ("reference_auc", ref)):
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = float("nan")
        if not math.isfinite(number):
            raise ValueError(f"privleak: {name} must be a finite number, got {value!r}")
        checked.append(number)
    score, ref_score = 1 - checked[0], 1 - checked[1]
    return (score - ref_score) / (ref_score + PRIVLEAK_EPS) * 100
