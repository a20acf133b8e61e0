"""NPO (open-unlearning `src/trainer/unlearn/npo.py` @ d3d7cf9e): per sample ell_i = -(2/beta) * log sigmoid(-beta *
r_i), with
r_i = log pi_theta(y|x) - log pi_ref(y|x) (sequence sums over answer tokens); L = gamma*mean + alpha*retain.

    method = build_method("NPO", beta=0.1)
    out = method.loss(model, batch)                     # batch["forget_ref_logps"] cached, or
    out = method.loss(model, batch, ref_model=ref)      # a live frozen reference forward

Both reference paths give the same loss (tests/methods/test_npo.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import torch.nn.functional as F
from torch import Tensor, nn

from unlearning.methods.base import (ForgetTerms, Method, RetainConfig, check_positive, inputs_of,
                                     logits_of, ref_token_logps, token_ce)


@dataclass
class NPOConfig(RetainConfig):
    """beta=0.1 (inverse temperature of the NPO sigmoid); gamma=1, alpha=1, retain_loss_type="NLL"."""

    beta: float = 0.1


def npo_sample_losses(seq_logps: Tensor, ref_seq_logps: Tensor, beta: float) -> Tensor:
    """``[B]``: -(2/beta) log sigmoid(-beta (log pi_theta - log pi_ref)) for sequence-summed log-probs."""
    return -(2.0 / beta) * F.logsigmoid(-beta * (seq_logps - ref_seq_logps))


class NPO(Method):
    """Negative preference optimisation against the frozen reference."""

    name = "NPO"
    config_cls = NPOConfig
    unit = "sample"
    ref_logps_keys = ("forget",)

    def validate(self) -> None:
        super().validate()
        check_positive(self.name, "beta", self.config.beta)

    def forget_terms(self, model: nn.Module, batch: Mapping[str, Any], ref_model: nn.Module | None = None):
        forget = inputs_of(batch, "forget")
        ref = ref_token_logps(batch, "forget", ref_model, self.name)
        ce, _ = token_ce(logits_of(model, forget), forget["labels"])
        return ForgetTerms(npo_sample_losses(-ce.sum(-1), ref.sum(-1), self.config.beta), "sample")
