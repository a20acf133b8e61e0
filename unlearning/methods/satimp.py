"""SatImp (open-unlearning `src/trainer/unlearn/satimp.py` @ d3d7cf9e): token-weighted gradient ascent with
saturation/importance weights.

Per labelled token: p_t = exp(-CE_t), w_t = p_t^beta1 * (1 - p_t)^beta2 **detached**, ell_t = -w_t * CE_t;
L_forget = token mean over the micro-batch; L = gamma*L_forget + alpha*HF-mean NLL_retain.
Defaults follow OU's SatImp.yaml: beta1=5, beta2=1, gamma=0.1, alpha=1 (the class defaults / the
original paper use gamma=1, alpha=0.1; pass them explicitly to reproduce that).

    out = build_method("SatImp", beta1=5.0, beta2=1.0).loss(model, batch)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from torch import Tensor, nn

from unlearning.methods.base import (ForgetTerms, Method, RetainConfig, check_number, inputs_of,
                                     logits_of, token_ce)


@dataclass
class SatImpConfig(RetainConfig):
    """beta1=5 (saturation exponent on p), beta2=1 (importance exponent on 1-p), gamma=0.1, alpha=1."""

    beta1: float = 5.0
    beta2: float = 1.0
    gamma: float = 0.1


def satimp_token_losses(logits: Tensor, labels: Tensor, beta1: float, beta2: float) -> ForgetTerms:
    """ell_t = -(p^beta1 (1-p)^beta2).detach() * CE_t over labelled tokens (token unit)."""
    ce, mask = token_ce(logits, labels)
    p = (-ce).exp().detach()
    weight = p.pow(beta1) * (1 - p).pow(beta2)
    return ForgetTerms(-weight * ce, "token", mask)


class SatImp(Method):
    """Saturation/importance weighted unlearning."""

    name = "SatImp"
    config_cls = SatImpConfig
    unit = "token"

    def validate(self) -> None:
        super().validate()
        check_number(self.name, "beta1", self.config.beta1)
        check_number(self.name, "beta2", self.config.beta2)

    def forget_terms(self, model: nn.Module, batch: Mapping[str, Any], ref_model: nn.Module | None = None):
        forget = inputs_of(batch, "forget")
        return satimp_token_losses(logits_of(model, forget), forget["labels"], self.config.beta1,
                                   self.config.beta2)
