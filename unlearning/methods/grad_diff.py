"""GradDiff (open-unlearning `src/trainer/unlearn/grad_diff.py` @ d3d7cf9e): L = gamma * (-HF-mean NLL_forget) +
alpha * L_retain, retain NLL (default) or KL.

    out = build_method("GradDiff", alpha=1.0, retain_loss_type="KL").loss(model, batch, ref_model=ref)

The reference model is only needed when retain_loss_type is "KL" (or "JSD").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from torch import nn

from unlearning.methods.base import Method, RetainConfig, inputs_of, logits_of
from unlearning.methods.grad_ascent import ascent_token_losses


@dataclass
class GradDiffConfig(RetainConfig):
    """gamma=1 (forget weight), alpha=1 (retain weight), retain_loss_type="NLL" ("KL", "JSD")."""


class GradDiff(Method):
    """Gradient ascent on forget + gradient descent on retain."""

    name = "GradDiff"
    config_cls = GradDiffConfig
    unit = "token"

    def forget_terms(self, model: nn.Module, batch: Mapping[str, Any], ref_model: nn.Module | None = None):
        forget = inputs_of(batch, "forget")
        return ascent_token_losses(logits_of(model, forget), forget["labels"])
