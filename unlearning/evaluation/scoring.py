"""Batched teacher-forced scoring: one forward per length bucket gives every per-item statistic.

For each tokenised item (`input_ids`, `labels` with -100 on the prompt, from `data.tokenization`) one
forward pass yields, exactly as open-unlearning's per-metric passes would (docs/methods.md, "Primitives" and
"Extraction strength, membership inference and privleak"):

* `avg_loss` (mean NLL over the labelled tokens), `prob` = exp(-avg_loss)  -> Q_A_Prob, truth ratio, LOSS/zlib MIA
* `token_log_probs` of the labelled tokens but the last                     -> min-k MIA
* `es` / `em` from the argmax predictions over the same tokens              -> extraction strength, exact memorisation
* `z_scores` (vocab-normalised token scores) when asked                     -> min-k++ MIA

Sequences that share a prompt (a question's answer, paraphrased and perturbed answers) can be packed
into one row around their common prefix (`groups`, see `packing.py`), so the prompt is computed once.
Rows are sorted by length and cut into batches whose padded size stays within `batch_tokens` (right
padding), so a whole evaluation's sequences are scored in one pass with little padding. The
log-softmax is taken only over the positions that predict a labelled token.

    scores = score_items(model, [encode_qa(tok, tmpl, q, a) for q, a in pairs], pad_token_id=tok.pad_token_id,
                         groups=[[0, 1, 2]])      # items 0-2: same question, different answers
    scores[0].avg_loss, scores[0].es, min_k_score(scores[0].token_log_probs)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from unlearning.evaluation.packing import Row, collate_rows, packed_row, plain_row


@dataclass(frozen=True)
class ItemScore:
    """Teacher-forced statistics of one item (see the module docstring)."""

    avg_loss: float
    prob: float
    n_labels: int
    token_log_probs: np.ndarray
    es: float
    em: float | None
    z_scores: np.ndarray | None = None


def length_batches(lengths: Sequence[int], batch_tokens: int, max_batch_size: int) -> list[list[int]]:
    """Item indices, longest first, cut so that len(batch) * longest <= batch_tokens (at least one item)."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        longest = lengths[current[0]] if current else lengths[i]
        if current and ((len(current) + 1) * longest > batch_tokens or len(current) >= max_batch_size):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def model_device(model: torch.nn.Module) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


def extraction_strength_from_preds(preds: np.ndarray, labels: np.ndarray) -> float:
    """OU's ES loop in closed form: k = first suffix start where preds == labels; k = n-1 when none matches.

    With m the last mismatching position, suffixes from k > m match, so k = min(m + 1, n - 1), or 0 when
    every prediction matches. ES = 1 - k/n; 0 for an empty item.
    """
    n = len(labels)
    if n == 0:
        return 0.0
    mismatch = np.nonzero(preds != labels)[0]
    k = 0 if mismatch.size == 0 else min(int(mismatch[-1]) + 1, n - 1)
    return 1 - (k / n)


def exact_memorization_from_preds(preds: np.ndarray, labels: np.ndarray) -> float | None:
    """Fraction of tokens whose argmax is the label, as a float32 division like OU; None if empty."""
    n = len(labels)
    if n == 0:
        return None
    return float(np.float32((preds == labels).sum()) / np.float32(n))


def _z_scores(log_probs: torch.Tensor, targets: torch.Tensor) -> np.ndarray:
    """min-k++ token scores (log p(y) - mu) / sigma over the next-token distribution (float64)."""
    lp = log_probs.double()
    probs = lp.exp()
    mu = (probs * lp).sum(-1)
    sigma = ((probs * lp.square()).sum(-1) - mu.square()).clamp(min=1e-6)
    target = lp.gather(1, targets.unsqueeze(1)).squeeze(1)
    return ((target - mu) / sigma.sqrt()).cpu().numpy()


def _model_dtype(model: torch.nn.Module) -> torch.dtype:
    return next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)


def supports_packing(model: torch.nn.Module) -> bool:
    """Packed rows need a custom 4D attention mask: sdpa and eager attention take one, flash-attention not."""
    impl = getattr(getattr(model, "config", None), "_attn_implementation", None)
    return impl in (None, "sdpa", "eager")


def _score_batch(model: torch.nn.Module, rows: Sequence[Row], pad_token_id: int, want_z: Sequence[bool],
                 attention_from_pad_id: bool) -> list[tuple[int, ItemScore]]:
    device = model_device(model)
    ids, positions, mask = collate_rows(rows, pad_token_id, _model_dtype(model), device, attention_from_pad_id)
    logits = model(input_ids=ids, attention_mask=mask, position_ids=positions).logits
    members = [(r, m) for r, row in enumerate(rows) for m in row.members]
    row_idx = torch.tensor(np.concatenate([np.full(len(m.cols), r) for r, m in members]), device=device,
                           dtype=torch.long)
    col_idx = torch.tensor(np.concatenate([m.cols for _, m in members]), device=device, dtype=torch.long)
    selected = logits[row_idx, col_idx]  # [M, V]: only the positions that predict a labelled token
    log_probs = F.log_softmax(selected.float() if selected.dtype in (torch.float16, torch.bfloat16) else selected, -1)
    targets = torch.tensor(np.concatenate([m.targets for _, m in members]), device=device, dtype=torch.long)
    target_lp = log_probs.gather(1, targets.unsqueeze(1)).squeeze(1)
    preds = log_probs.argmax(-1)
    target_lp_np, preds_np, targets_np = target_lp.cpu().numpy(), preds.cpu().numpy(), targets.cpu().numpy()
    out: list[tuple[int, ItemScore]] = []
    start = 0
    for _, m in members:
        n_pred = len(m.cols)
        span = slice(start, start + n_pred)
        start += n_pred
        nll = -float(np.sum(target_lp_np[span], dtype=np.float64))
        avg = nll / m.n_labels if m.n_labels else float("nan")
        keep = slice(span.start, span.stop - 1) if n_pred else span  # drop the last labelled token
        tok_preds, tok_labels = preds_np[keep], targets_np[keep]
        z = None
        if want_z[m.item]:
            z = _z_scores(log_probs[keep], targets[keep]) if n_pred > 1 else np.zeros(0)
        out.append((m.item, ItemScore(
            avg_loss=avg, prob=float(np.exp(-avg)), n_labels=m.n_labels,
            token_log_probs=target_lp_np[keep].astype(np.float64),
            es=extraction_strength_from_preds(tok_preds, tok_labels),
            em=exact_memorization_from_preds(tok_preds, tok_labels), z_scores=z,
        )))
    return out


def score_items(model: torch.nn.Module, items: Sequence[Mapping[str, Sequence[int]]], *, pad_token_id: int,
                batch_tokens: int = 8192, max_batch_size: int = 64, vocab_stats: bool | Sequence[bool] = False,
                attention_from_pad_id: bool = False, groups: Sequence[Sequence[int]] = ()) -> list[ItemScore]:
    """Score every item (length-bucketed batches, no grad); results in the order of `items`.

    `vocab_stats`: compute min-k++ z-scores (all items, or per item). `groups`: lists of item indices packed
    into one row around their common prefix (see `packing.py`; ignored for flash-attention models). Labels
    of an item must be contiguous (prompt and padding -100), as `encode_qa` / `encode_text` build them.
    """
    want = [vocab_stats] * len(items) if isinstance(vocab_stats, bool) else list(vocab_stats)
    if len(want) != len(items):
        raise ValueError(f"vocab_stats has {len(want)} flags for {len(items)} items")
    grouped = [list(g) for g in groups if len(g) > 1] if supports_packing(model) else []
    in_group = {i for g in grouped for i in g}
    if len(in_group) != sum(len(g) for g in grouped) or any(not 0 <= i < len(items) for i in in_group):
        raise ValueError("groups must be disjoint lists of valid item indices")
    rows = [packed_row(g, items) for g in grouped]
    rows += [plain_row(i, items[i]) for i in range(len(items)) if i not in in_group]
    results: list[ItemScore | None] = [None] * len(items)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for idx in length_batches([len(r.ids) for r in rows], batch_tokens, max_batch_size):
                for i, score in _score_batch(model, [rows[j] for j in idx], pad_token_id, want, attention_from_pad_id):
                    results[i] = score
    finally:
        model.train(was_training)
    return results  # type: ignore[return-value]
