"""Per-item primitives of TOFU / MUSE evaluation, computed from a model's logits and the labels.

Pure tensor math, exactly as open-unlearning (OU) `src/evals/metrics/utils.py` and `memorization.py`
compute it; the evaluator that runs the model and batches the data calls these on each batch:

    out = model(input_ids=ids, attention_mask=mask)
    records = probability_records(out.logits, labels)      # [{"prob": p, "avg_loss": l}, ...]
    em = exact_memorization(out.logits, labels)             # [float | None, ...]
    es = extraction_strength(out.logits, labels)            # [float, ...]
    lps = token_log_probs(out.logits, ids, labels)          # per item, for the min-k MIA

Conventions (OU's): `labels` holds -100 (IGNORE_INDEX) on prompt and padding positions; the token at
position t is predicted by the logits at t-1. The token-wise helpers drop the last labelled token
("ignore eos prediction") and return the contiguous span from the first to the second-to-last
labelled position. Aggregates drop `None` items and average multi-answer items first
(`mean_over_items`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

IGNORE_INDEX = -100


def _as_float(logits: torch.Tensor) -> torch.Tensor:
    """Half-precision logits are upcast to float32 (as HF causal LMs return them); others kept."""
    return logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits


def _check_shapes(logits: torch.Tensor, labels: torch.Tensor) -> None:
    if logits.dim() != 3 or labels.dim() != 2 or logits.shape[:2] != labels.shape:
        raise ValueError(
            f"expected logits [B, T, V] and labels [B, T], got {tuple(logits.shape)} and {tuple(labels.shape)}"
        )


def answer_nll(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per item: (sum over answer tokens of -log p(y_t | x, y_<t), number of labelled tokens).

    The count is taken on the unshifted labels, as OU does (`(labels != -100).sum(-1)`).
    """
    _check_shapes(logits, labels)
    logits = _as_float(logits)
    shifted_logits = logits[:, :-1, :]
    shifted_labels = labels[:, 1:]
    token_ce = F.cross_entropy(
        shifted_logits.transpose(1, 2), shifted_labels, ignore_index=IGNORE_INDEX, reduction="none"
    )
    return token_ce.sum(dim=-1), (labels != IGNORE_INDEX).sum(dim=-1)


def avg_nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per item: mean negative log-likelihood over the answer tokens (OU `avg_loss`); NaN if no label."""
    total, count = answer_nll(logits, labels)
    return total / count


def probability_from_avg_nll(avg_loss: float | np.ndarray | torch.Tensor) -> Any:
    """OU `prob` = exp(-avg_loss): the geometric-mean per-token probability of the answer."""
    if isinstance(avg_loss, torch.Tensor):
        return torch.exp(-avg_loss)
    return np.exp(-np.asarray(avg_loss, dtype=np.float64))


def probability_records(logits: torch.Tensor, labels: torch.Tensor) -> list[dict[str, float]]:
    """Per item OU's probability record {"prob": exp(-avg_loss), "avg_loss": avg_loss}."""
    with torch.no_grad():
        losses = avg_nll(logits, labels)
        probs = torch.exp(-losses)
    return [{"prob": float(p), "avg_loss": float(l)} for p, l in zip(probs.tolist(), losses.tolist())]


def labelled_span(labels_row: torch.Tensor) -> torch.Tensor:
    """Positions that carry a label, without the last one (OU: "-1 to ignore eos prediction")."""
    positions = (labels_row != IGNORE_INDEX).nonzero(as_tuple=True)[0][:-1]
    if positions.numel() > 1 and int(positions[-1] - positions[0]) + 1 != positions.numel():
        raise ValueError("labelled positions of an item must be contiguous (prompt and padding = -100)")
    return positions


def token_log_probs(logits: torch.Tensor, input_ids: torch.Tensor, labels: torch.Tensor) -> list[torch.Tensor]:
    """Per item: log p of each answer token except the last (OU `tokenwise_logprobs`); empty if none.

    The target tokens are read from `input_ids`, as OU does.
    """
    _check_shapes(logits, labels)
    with torch.no_grad():
        log_probs = F.log_softmax(_as_float(logits), dim=-1)[:, :-1, :]
        targets = torch.gather(log_probs, 2, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    out: list[torch.Tensor] = []
    for i in range(labels.shape[0]):
        span = labelled_span(labels[i])
        if span.numel() == 0:
            out.append(targets.new_zeros(0))
            continue
        start, end = int(span[0]), int(span[-1])
        out.append(targets[i, start - 1 : end])
    return out


def vocab_log_probs(logits: torch.Tensor, labels: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Per item: ([N, V] log-softmax predicting each answer token but the last, the N label ids).

    OU `tokenwise_vocab_logprobs(..., return_labels=True)`.
    """
    _check_shapes(logits, labels)
    with torch.no_grad():
        log_probs = F.log_softmax(_as_float(logits), dim=-1)[:, :-1, :]
    vocab = logits.shape[-1]
    all_lp: list[torch.Tensor] = []
    all_labels: list[torch.Tensor] = []
    for i in range(labels.shape[0]):
        span = labelled_span(labels[i])
        if span.numel() == 0:
            all_lp.append(log_probs.new_zeros(0, vocab))
            all_labels.append(labels.new_zeros(0))
            continue
        start, end = int(span[0]), int(span[-1])
        all_lp.append(log_probs[i, start - 1 : end])
        all_labels.append(labels[i, span])
    return all_lp, all_labels


def exact_memorization(logits: torch.Tensor, labels: torch.Tensor) -> list[float | None]:
    """Per item: fraction of answer tokens (last excluded) whose argmax prediction is the label.

    None for an item with no such token (OU marks it None and drops it from the mean). The ratio is
    a float32 tensor division, as in OU, so stored values match bit for bit.
    """
    scores: list[float | None] = []
    for lp, lab in zip(*vocab_log_probs(logits, labels)):
        n = len(lab)
        if n == 0:
            scores.append(None)
            continue
        preds = torch.argmax(lp, dim=-1)
        scores.append(((preds == lab).sum() / n).item())
    return scores


def extraction_strength(logits: torch.Tensor, labels: torch.Tensor) -> list[float]:
    """Per item: ES = 1 - k/n, k = first position from which the argmax predictions equal the labels.

    Follows OU's loop exactly: k runs over 0..n-1 and stops at the first matching suffix; when no
    suffix matches, k is left at n-1 (so ES = 1/n, never 0). Items with n = 0 score 0.
    """
    scores: list[float] = []
    for lp, lab in zip(*vocab_log_probs(logits, labels)):
        n = len(lab)
        if n == 0:
            scores.append(0.0)
            continue
        preds = torch.argmax(lp, dim=-1)
        k = 0
        for k in range(n):
            if torch.equal(preds[k:], lab[k:]):
                break
        scores.append(1 - (k / n))
    return scores


def mean_over_items(values: Iterable[float | Sequence[float] | None]) -> float:
    """OU aggregate: drop None items, average each multi-answer item, then average over items."""
    kept = [v for v in values if v is not None]
    if not kept:
        return float("nan")
    arr = np.asarray(kept, dtype=np.float64)
    per_item = arr.mean(axis=tuple(range(1, arr.ndim))) if arr.ndim > 1 else arr
    return float(np.mean(per_item))
