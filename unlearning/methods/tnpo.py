"""TNPO, token-wise NPO (annahuynhly/BalDRO fork, `src/trainer/unlearn/tnpo.py`,
`src/trainer/utils.py:compute_tnpo_loss`).

Per labelled token: w_t = 2 p_theta^beta / (p_theta^beta + p_ref^beta) = 2 sigmoid(beta (log p_theta -
log p_ref)); per sequence s_i = -(sum_t w_t CE_t) / n_i; L_forget = mean_i s_i; L = gamma*L_forget +
alpha*HF-mean NLL_retain. Defaults beta=0.1, gamma=1, alpha=1.

``detach_weights=True`` (default) treats w_t as a constant: the gradient then equals NPO's token
weighting, i.e. the gradient of (2/beta) sum_t log(1 + (p_theta/p_ref)^beta) per token.
``detach_weights=False`` is the fork's code, where the gradient also flows through w_t (a different
objective). Reference log-probs: ``batch["forget_ref_logps"]`` or a live ``ref_model``.

    out = build_method("TNPO", beta=0.1, detach_weights=False).loss(model, batch, ref_model=ref)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import torch
from torch import Tensor, nn

from unlearning.errors import ConfigError
from unlearning.methods.base import (ForgetTerms, Method, RetainConfig, check_positive, inputs_of,
                                     logits_of, ref_token_logps, token_ce)


@dataclass
class TNPOConfig(RetainConfig):
    """beta=0.1 (weight temperature), detach_weights=True (False = fork's non-detached weights),
    gamma=1, alpha=1, retain_loss_type="NLL"."""

    beta: float = 0.1
    detach_weights: bool = True


def tnpo_sample_losses(logits: Tensor, labels: Tensor, ref_logps: Tensor, beta: float,
                       detach_weights: bool) -> Tensor:
    """``[B]``: s_i = -(sum_t w_t CE_t)/n_i with w_t = 2 sigmoid(beta (log p_theta - log p_ref))."""
    ce, mask = token_ce(logits, labels)
    weight = 2.0 * torch.sigmoid(beta * (-ce - ref_logps))
    if detach_weights:
        weight = weight.detach()
    return -(weight * ce * mask).sum(-1) / mask.sum(-1).clamp(min=1)


class TNPO(Method):
    """Token-wise NPO weighting of gradient ascent."""

    name = "TNPO"
    config_cls = TNPOConfig
    unit = "sample"
    ref_logps_keys = ("forget",)

    def validate(self) -> None:
        super().validate()
        check_positive(self.name, "beta", self.config.beta)
        if not isinstance(self.config.detach_weights, bool):
            raise ConfigError(self.name, field="detach_weights", value=self.config.detach_weights,
                              fix="use true or false")

    def forget_terms(self, model: nn.Module, batch: Mapping[str, Any], ref_model: nn.Module | None = None):
        forget = inputs_of(batch, "forget")
        ref = ref_token_logps(batch, "forget", ref_model, self.name)
        values = tnpo_sample_losses(logits_of(model, forget), forget["labels"], ref, self.config.beta,
                                    self.config.detach_weights)
        return ForgetTerms(values, "sample")
