"""Shared pieces of the reference trainers (OU src/trainer/utils.py): the HF mean loss, batch NLL, KL, DPO, the retain terms.

Part of the `reference_forms` oracle package (its __init__ says where each formula is transcribed from).
"""

from __future__ import annotations

import torch.nn.functional as F

IGNORE = -100


# --------------------------------------------------------------------------------------------------
# shared pieces (OU trainer/utils.py)


def hf_loss(logits, labels):
    """What an HF causal-LM forward returns as ``outputs.loss``."""
    vocab = logits.shape[-1]
    return F.cross_entropy(logits[..., :-1, :].reshape(-1, vocab), labels[..., 1:].reshape(-1), ignore_index=IGNORE)


def batch_nll(logits, labels):
    """OU compute_batch_nll: per-sequence summed CE over scored tokens."""
    loss = F.cross_entropy(logits[..., :-1, :].transpose(-1, -2), labels[..., 1:], ignore_index=IGNORE,
                           reduction="none")
    return loss.sum(dim=-1)


def kl_divergence(logits, ref_logits):
    """OU compute_kl_divergence: batchmean KL(ref || model) over all flattened positions."""
    vocab = logits.shape[-1]
    ref = F.log_softmax(ref_logits, dim=-1).view(-1, vocab)
    cur = F.log_softmax(logits, dim=-1).view(-1, vocab)
    return F.kl_div(cur, ref, reduction="batchmean", log_target=True)


def dpo(win_logits, win_ref_logits, win_labels, lose_logits, lose_ref_logits, lose_labels, beta):
    """OU compute_dpo_loss (either side may be None)."""
    win_ratio = lose_ratio = 0.0
    if win_logits is not None:
        win_ratio = -(batch_nll(win_logits, win_labels) - batch_nll(win_ref_logits, win_labels).detach())
    if lose_logits is not None:
        lose_ratio = -(batch_nll(lose_logits, lose_labels) - batch_nll(lose_ref_logits, lose_labels).detach())
    return -2 / beta * F.logsigmoid(beta * (win_ratio - lose_ratio)).mean()


def retain_term(kind, logits, labels, ref_logits=None):
    return hf_loss(logits, labels) if kind == "NLL" else kl_divergence(logits, ref_logits)


def _shifted_token_nll(logits, labels):
    vocab = logits.shape[-1]
    shift = labels[..., 1:]
    nll = F.cross_entropy(logits[..., :-1, :].reshape(-1, vocab), shift.reshape(-1), ignore_index=IGNORE,
                          reduction="none")
    return nll, shift.reshape(-1)
