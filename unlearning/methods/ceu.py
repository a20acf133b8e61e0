"""CE-U, cross-entropy unlearning (open-unlearning ``src/trainer/unlearn/ceu.py``; arXiv:2503.01224).

At every scored answer position t the target distribution is the model's own next-token distribution with
the true token removed: q_t = softmax(z_t with z_t[y_t] = -inf), computed from the **detached** logits.
The forget loss is the soft-label cross entropy -sum_v q_t,v log p_theta,t(v), token mean over the scored
positions of the micro-batch. Its gradient w.r.t. the logits is p_theta,t - q_t: all probability mass of
the true token is pushed to the others in proportion to their current probabilities.

``ignore_first_n_answer_tokens`` (default 1, the reference's default, from the paper's footnote): the
first n answer tokens of every row are not scored (their labels are set to -100 before the shift).

L = gamma * L_forget + alpha * L_retain; open-unlearning's CEU has no retain term, so the defaults are
gamma=1, alpha=0 (the retain forward is skipped); alpha > 0 adds the usual NLL/KL/JSD retain term.

    out = build_method("CEU", ignore_first_n_answer_tokens=1).loss(model, batch)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from unlearning.errors import ConfigError
from unlearning.methods.base import IGNORE_INDEX, ForgetTerms, Method, RetainConfig, inputs_of, logits_of


@dataclass
class CEUConfig(RetainConfig):
    """ignore_first_n_answer_tokens=1 (answer tokens per row left unscored), gamma=1, alpha=0 (the reference
    has no retain term), retain_loss_type="NLL"."""

    ignore_first_n_answer_tokens: int = 1
    alpha: float = 0.0


def drop_first_answer_tokens(labels: Tensor, n: int) -> Tensor:
    """``labels`` with the first ``n`` labelled positions of every row set to -100 (unshifted)."""
    labelled = labels != IGNORE_INDEX
    first = labelled & (labelled.long().cumsum(-1) <= n)
    return labels.masked_fill(first, IGNORE_INDEX)


def ceu_token_losses(logits: Tensor, labels: Tensor, ignore_first_n: int = 1) -> ForgetTerms:
    """-sum_v q_t,v log p_t(v), q_t = softmax(detached z_t with the label's logit at -inf) (token unit)."""
    shifted = drop_first_answer_tokens(labels, ignore_first_n)[:, 1:]
    mask = shifted != IGNORE_INDEX
    z = logits[:, :-1, :].float()
    index = torch.where(mask, shifted, torch.zeros_like(shifted)).unsqueeze(-1)
    target = F.softmax(z.detach().scatter(-1, index, float("-inf")), dim=-1)
    return ForgetTerms(-(target * F.log_softmax(z, dim=-1)).sum(-1), "token", mask)


class CEU(Method):
    """Cross-entropy unlearning: move the true token's probability mass onto the other tokens."""

    name = "CEU"
    config_cls = CEUConfig
    unit = "token"

    def validate(self) -> None:
        super().validate()
        n = self.config.ignore_first_n_answer_tokens
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise ConfigError(self.name, field="ignore_first_n_answer_tokens", value=n,
                              fix="use an integer >= 0 (0 scores every answer token)")

    def forget_terms(self, model: nn.Module, batch: Mapping[str, Any], ref_model: nn.Module | None = None):
        forget = inputs_of(batch, "forget")
        return ceu_token_losses(logits_of(model, forget), forget["labels"],
                                self.config.ignore_first_n_answer_tokens)
