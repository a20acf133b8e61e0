"""The frozen reference model and its cached per-token log-probs (NPO, TNPO, IdkDPO read them).

A frozen model on a fixed set gives the same numbers every step, so the driver computes them once:

    from unlearning.methods.reference import frozen_copy, compute_ref_logps, attach_for_method
    ref = frozen_copy(model)                                   # deep copy, eval mode, no grad
    batches = attach_for_method(method, batches, ref)          # adds batch["forget_ref_logps"], ...
    # or per example, to re-collate after shuffling:
    rows = split_ref_logps(compute_ref_logps(ref, [b["forget"] for b in batches])[0], lengths)
    batch["forget_ref_logps"] = pad_ref_logps(rows, seq_len)

Layout: ``Float[B, T-1]``; position t holds log p_ref(labels[:, t+1] | tokens <= t), 0.0 where that label
is -100 (the same shift as ``base.token_ce``). Right padding: a row of unpadded length L has L-1 values.
"""

from __future__ import annotations

import copy
from typing import Any, Iterable, Mapping, Sequence

import torch
from torch import Tensor, nn

from unlearning.errors import DataError
from unlearning.methods.base import INPUT_KEYS, inputs_of, logits_of, token_ce


def frozen_copy(model: nn.Module) -> nn.Module:
    """Deep copy of ``model`` in eval mode with every parameter frozen (the spec's pi_ref)."""
    ref = copy.deepcopy(model)
    ref.eval()
    for p in ref.parameters():
        p.requires_grad_(False)
    return ref


def token_logps(model: nn.Module, inputs: Mapping[str, Tensor]) -> Tensor:
    """``Float[B, T-1]`` label log-probs of one collated micro-batch (no grad, eval mode, float32)."""
    missing = [k for k in INPUT_KEYS if k not in inputs]
    if missing:
        raise DataError("reference batch", field=missing[0], value=sorted(inputs),
                        fix=f"each batch needs keys {list(INPUT_KEYS)}")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            ce, _ = token_ce(logits_of(model, inputs), inputs["labels"])
    finally:
        model.train(was_training)
    return (-ce).detach()


def compute_ref_logps(model: nn.Module, batches: Iterable[Mapping[str, Tensor]]) -> list[Tensor]:
    """Per-token reference log-probs for each collated micro-batch (input_ids/attention_mask/labels)."""
    return [token_logps(model, b) for b in batches]


def attach_ref_logps(batches: Iterable[Mapping[str, Any]], model: nn.Module,
                     keys: Sequence[str] = ("forget",)) -> list[dict[str, Any]]:
    """Copies of the training batches with ``batch[f"{key}_ref_logps"]`` added for every key."""
    out = []
    for batch in batches:
        new = dict(batch)
        for key in keys:
            new[f"{key}_ref_logps"] = token_logps(model, inputs_of(batch, key))
        out.append(new)
    return out


def attach_for_method(method: Any, batches: Iterable[Mapping[str, Any]], model: nn.Module) -> list[dict[str, Any]]:
    """``attach_ref_logps`` for the keys the method declares in ``needs_ref_logps``."""
    return attach_ref_logps(batches, model, tuple(method.needs_ref_logps))


def split_ref_logps(logps: Tensor, lengths: Sequence[int]) -> list[Tensor]:
    """Per-example rows of a ``[B, T-1]`` tensor: row i keeps its first ``lengths[i] - 1`` values
    (``lengths`` = unpadded token counts of the right-padded inputs)."""
    if len(lengths) != logps.shape[0]:
        raise DataError("reference log-probs", field="lengths", value=len(lengths),
                        fix=f"give one length per row ({logps.shape[0]} rows)")
    rows = []
    for i, n in enumerate(lengths):
        if not 1 <= n <= logps.shape[1] + 1:
            raise DataError("reference log-probs", row=i, field="lengths", value=n,
                            fix=f"a length must lie in [1, {logps.shape[1] + 1}] (the padded length)")
        rows.append(logps[i, : n - 1].clone())
    return rows


def pad_ref_logps(rows: Sequence[Tensor], seq_len: int) -> Tensor:
    """Right-pad per-example rows with 0.0 into ``[B, seq_len - 1]`` (the collated batch's T)."""
    out = torch.zeros(len(rows), seq_len - 1, dtype=torch.float32)
    for i, row in enumerate(rows):
        if row.numel() > seq_len - 1:
            raise DataError("reference log-probs", row=i, field="seq_len", value=seq_len,
                            fix=f"the row has {row.numel()} values; seq_len must be >= {row.numel() + 1}")
        out[i, : row.numel()] = row.float().cpu()
    return out
