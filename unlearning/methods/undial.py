"""UNDIAL (open-unlearning `src/trainer/unlearn/undial.py` @ d3d7cf9e): self-distillation towards the frozen teacher
with the true token's logit lowered.

At every scored position t the target is q_t = softmax(z_ref,t - beta * onehot(y_t)); the forget loss is
the soft-label cross entropy -sum_v q_t,v log p_theta,t(v). L = gamma*L_forget + alpha*HF-mean NLL_retain;
defaults beta=10, gamma=1, alpha=0 (the retain forward is skipped while alpha == 0).

``faithful_ignore_index=False`` (default, mask-correct): only answer positions (shifted label != -100)
count, and the loss is their token mean. ``faithful_ignore_index=True`` reproduces open-unlearning's
code: all B*(T-1) positions count, and at positions whose label is -100 the one-hot lands on vocabulary
id V-100 (Python negative indexing), so that token's teacher logit is lowered by beta. Needs V >= 100.
The default is mask-correct because the reference's form distils prompt and padding positions too (so the
loss depends on how much padding a micro-batch has) and lowers an arbitrary token's logit there; the two
forms differ by 1-4% in loss on TOFU-like batches. Set it to reproduce published open-unlearning UNDIAL
numbers (benchmarks/bench_fidelity.py checks both forms against the reference code).

    out = build_method("UNDIAL", beta=10.0).loss(model, batch, ref_model=ref)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from unlearning.errors import ConfigError
from unlearning.methods.base import (IGNORE_INDEX, ForgetTerms, Method, RetainConfig, check_number,
                                     inputs_of, logits_of, ref_logits_of)


@dataclass
class UNDIALConfig(RetainConfig):
    """beta=10 (logit reduction of the true token), faithful_ignore_index=False (True = OU's unmasked
    loss with the -100 indexing artefact), gamma=1, alpha=0, retain_loss_type="NLL"."""

    beta: float = 10.0
    faithful_ignore_index: bool = False
    alpha: float = 0.0


def undial_token_losses(logits: Tensor, ref_logits: Tensor, labels: Tensor, beta: float,
                        faithful_ignore_index: bool = False) -> ForgetTerms:
    """Soft-label CE to the adjusted teacher at every shifted position (token unit)."""
    vocab = logits.shape[-1]
    shifted = labels[:, 1:]
    labelled = shifted != IGNORE_INDEX
    if faithful_ignore_index:
        if vocab < -IGNORE_INDEX:
            raise ConfigError("UNDIAL", field="faithful_ignore_index", value=True,
                              fix=f"the -100 indexing artefact needs a vocabulary of >= 100 ids (got {vocab}); "
                                  "use faithful_ignore_index=false")
        index = torch.where(labelled, shifted, shifted + vocab)
        count = torch.ones_like(labelled)
    else:
        index = torch.where(labelled, shifted, torch.zeros_like(shifted))
        count = labelled
    onehot = F.one_hot(index, vocab).to(torch.float32) * count.unsqueeze(-1)
    target = F.softmax(ref_logits[:, :-1, :].float() - beta * onehot, dim=-1)
    log_p = F.log_softmax(logits[:, :-1, :].float(), dim=-1)
    return ForgetTerms(-(target * log_p).sum(-1), "token", count)


class UNDIAL(Method):
    """Unlearning via self-distillation with adjusted logits."""

    name = "UNDIAL"
    config_cls = UNDIALConfig
    unit = "token"

    def validate(self) -> None:
        super().validate()
        check_number(self.name, "beta", self.config.beta)
        if not isinstance(self.config.faithful_ignore_index, bool):
            raise ConfigError(self.name, field="faithful_ignore_index",
                              value=self.config.faithful_ignore_index, fix="use true or false")

    @property
    def needs_ref_model(self) -> bool:
        return True

    def forget_terms(self, model: nn.Module, batch: Mapping[str, Any], ref_model: nn.Module | None = None):
        if ref_model is None:
            raise ConfigError(self.name, field="ref_model", value=None,
                              fix="UNDIAL distils from the frozen reference: pass ref_model=<frozen copy>")
        forget = inputs_of(batch, "forget")
        return undial_token_losses(logits_of(model, forget), ref_logits_of(ref_model, forget),
                                   forget["labels"], self.config.beta, self.config.faithful_ignore_index)
