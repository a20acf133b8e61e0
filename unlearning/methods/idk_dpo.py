"""IdkDPO (open-unlearning `src/trainer/unlearn/dpo.py` @ d3d7cf9e): DPO with the "I don't know" answer as winner
and the true answer as loser.

Per sample ell_i = -(2/beta) log sigmoid(beta (Delta_w - Delta_l)), Delta = log pi_theta - log pi_ref of
the sequence-summed answer log-probs; Delta_w on ``batch["idk"]`` (same question, IDK answer), Delta_l on
``batch["forget"]``. L = gamma*mean + alpha*HF-mean NLL_retain; defaults beta=0.1, gamma=alpha=1.
Reference log-probs come from ``batch["forget_ref_logps"]`` / ``batch["idk_ref_logps"]`` or a live
``ref_model``. The IDK answers themselves: unlearning.methods.idk_answers.

    out = build_method("IdkDPO", beta=0.1).loss(model, batch, ref_model=ref)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import torch.nn.functional as F
from torch import Tensor, nn

from unlearning.errors import DataError
from unlearning.methods.base import (ForgetTerms, Method, RetainConfig, check_positive, inputs_of,
                                     logits_of, ref_token_logps, token_ce)


@dataclass
class IdkDPOConfig(RetainConfig):
    """beta=0.1 (DPO temperature; the loss carries OU's 2/beta scale); gamma=1, alpha=1, NLL retain."""

    beta: float = 0.1


def dpo_sample_losses(win_logps: Tensor, win_ref: Tensor, lose_logps: Tensor, lose_ref: Tensor,
                      beta: float) -> Tensor:
    """``[B]``: -(2/beta) log sigmoid(beta ((w - w_ref) - (l - l_ref))) on sequence log-probs."""
    return -(2.0 / beta) * F.logsigmoid(beta * ((win_logps - win_ref) - (lose_logps - lose_ref)))


class IdkDPO(Method):
    """DPO towards refusals on the forget questions."""

    name = "IdkDPO"
    config_cls = IdkDPOConfig
    unit = "sample"
    ref_logps_keys = ("forget", "idk")

    def validate(self) -> None:
        super().validate()
        check_positive(self.name, "beta", self.config.beta)

    def forget_terms(self, model: nn.Module, batch: Mapping[str, Any], ref_model: nn.Module | None = None):
        forget, idk = inputs_of(batch, "forget"), inputs_of(batch, "idk")
        if idk["input_ids"].shape[0] != forget["input_ids"].shape[0]:
            raise DataError("training batch", field="idk.input_ids", value=tuple(idk["input_ids"].shape),
                            fix="batch['idk'] must hold one IDK answer per forget row (same batch size)")
        lose_ref = ref_token_logps(batch, "forget", ref_model, self.name).sum(-1)
        win_ref = ref_token_logps(batch, "idk", ref_model, self.name).sum(-1)
        lose_ce, _ = token_ce(logits_of(model, forget), forget["labels"])
        win_ce, _ = token_ce(logits_of(model, idk), idk["labels"])
        values = dpo_sample_losses(-win_ce.sum(-1), win_ref, -lose_ce.sum(-1), lose_ref, self.config.beta)
        return ForgetTerms(values, "sample")
