"""SimNPO (open-unlearning `src/trainer/unlearn/simnpo.py` @ d3d7cf9e): reference-free NPO on length-normalised NLL
with a margin.

Per sample m_i = NLL_i / n_i - delta and ell_i = -(2/beta) log sigmoid(beta * m_i); L = gamma*mean +
alpha*HF-mean NLL_retain. Defaults delta=0, beta=4.5, gamma=0.125, alpha=1 (OU SimNPO.yaml). The margin
sits inside the beta product (OU's code); n_i counts the scored (shifted) answer tokens, clamped at 1.

    method = build_method("SimNPO", beta=4.5, delta=0.0, gamma=0.125)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import torch.nn.functional as F
from torch import Tensor, nn

from unlearning.methods.base import (ForgetTerms, Method, RetainConfig, check_number, check_positive,
                                     inputs_of, logits_of, sequence_nll)


@dataclass
class SimNPOConfig(RetainConfig):
    """beta=4.5 (sigmoid temperature), delta=0.0 (margin on the mean NLL), gamma=0.125, alpha=1."""

    beta: float = 4.5
    delta: float = 0.0
    gamma: float = 0.125


def simnpo_sample_losses(nll_sum: Tensor, n_tokens: Tensor, beta: float, delta: float) -> Tensor:
    """``[B]``: -(2/beta) log sigmoid(beta (NLL_i/n_i - delta))."""
    margin = nll_sum / n_tokens.clamp(min=1) - delta
    return -(2.0 / beta) * F.logsigmoid(beta * margin)


class SimNPO(Method):
    """Simple NPO (no reference model)."""

    name = "SimNPO"
    config_cls = SimNPOConfig
    unit = "sample"

    def validate(self) -> None:
        super().validate()
        check_positive(self.name, "beta", self.config.beta)
        check_number(self.name, "delta", self.config.delta)

    def forget_terms(self, model: nn.Module, batch: Mapping[str, Any], ref_model: nn.Module | None = None):
        forget = inputs_of(batch, "forget")
        nll, n = sequence_nll(logits_of(model, forget), forget["labels"])
        return ForgetTerms(simnpo_sample_losses(nll, n, self.config.beta, self.config.delta), "sample")
