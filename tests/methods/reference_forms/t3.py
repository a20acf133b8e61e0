"""T3 (OU src/model/t3.py, src/trainer/unlearn/t3.py) on a base model and the head's projection.

Part of the `reference_forms` oracle package (its __init__ says where each formula is transcribed from).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .shared import IGNORE

# --------------------------------------------------------------------------------------------------
# T3 (OU src/model/t3.py T3CausalLM + src/trainer/unlearn/t3.py), written on a base model and the head's proj


def t3_mean_pool(hidden, attention_mask):
    """``_mean_pool``: masked cumulative sum over the cumulative token count (clamped at 1)."""
    mask = attention_mask.to(dtype=hidden.dtype).unsqueeze(-1)
    return (hidden * mask).cumsum(dim=1) / mask.cumsum(dim=1).clamp_min(1)


def t3_classifier_logits(base, proj, part):
    """``forward(classifier_only=True)``: the decoder's last hidden state without gradients, mean-pooled,
    [:, :-1], and the target token's logit through ``target_token_logits``."""
    with torch.no_grad():
        hidden = base.get_decoder()(input_ids=part["input_ids"], attention_mask=part["attention_mask"],
                                    use_cache=False, return_dict=True).last_hidden_state
    pooled = t3_mean_pool(hidden, part["attention_mask"])
    shifted = part["labels"][:, 1:].contiguous()
    safe = shifted.masked_fill(shifted == IGNORE, 0)
    b, t, h = pooled[:, :-1, :].shape
    x = pooled[:, :-1, :].contiguous().reshape(-1, h)
    for layer in proj[:-1]:
        x = layer(x)
    selected = proj[-1].weight.index_select(0, safe.reshape(-1))
    return (x * selected).sum(dim=-1).view(b, t)


def t3_loss(base, proj, parts):
    """T3.compute_loss: BCE sums of retain (label 1) and forget (label 0) scored positions over their count."""
    loss_sum, total_valid = torch.tensor(0.0), torch.tensor(0.0)
    for split in ("retain", "forget"):
        logits = t3_classifier_logits(base, proj, parts[split]).flatten()
        shifted = parts[split]["labels"][:, 1:].contiguous()
        labels = torch.full_like(shifted, int(split == "retain"))
        labels[shifted == IGNORE] = IGNORE
        labels = labels.flatten()
        valid = labels != IGNORE
        if valid.any():
            loss_sum = loss_sum + F.binary_cross_entropy_with_logits(logits[valid], labels[valid].to(logits.dtype),
                                                                     reduction="sum")
            total_valid = total_valid + valid.sum()
    return loss_sum / total_valid.clamp_min(1)


def t3_guided_logits(base, proj, input_ids, attention_mask, guidance_scale, base_temp):
    """The non-classifier forward: base logits and hidden_states[-1], pooled, the full head, ``_guide_logits``."""
    out = base(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
    pooled = t3_mean_pool(out.hidden_states[-1], attention_mask)
    b, t, h = pooled.shape
    classifier = proj(pooled.view(-1, h)).view(b, t, -1)
    return F.log_softmax(out.logits, dim=2) / base_temp + guidance_scale * F.logsigmoid(classifier)
