"""GradAscent (open-unlearning `src/trainer/unlearn/grad_ascent.py` @ d3d7cf9e): L = -(HF-mean NLL of the forget
micro-batch); no retain term, no reference.

    from unlearning.methods import build_method
    out = build_method("GradAscent").loss(model, batch)   # batch["forget"] only

Forget elements are tokens: ell_t = -CE_t over the labelled tokens of the micro-batch, so the plain
token mean is exactly -HF-mean NLL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from torch import nn

from unlearning.methods.base import ForgetTerms, Method, inputs_of, logits_of, token_ce


@dataclass
class GradAscentConfig:
    """GradAscent has no hyperparameters (gamma is implicitly 1, there is no retain term)."""


def ascent_token_losses(logits, labels) -> ForgetTerms:
    """ell_t = -CE_t for every labelled token (token unit)."""
    ce, mask = token_ce(logits, labels)
    return ForgetTerms(-ce, "token", mask)


class GradAscent(Method):
    """Plain gradient ascent on the forget answers."""

    name = "GradAscent"
    config_cls = GradAscentConfig
    unit = "token"

    def forget_terms(self, model: nn.Module, batch: Mapping[str, Any], ref_model: nn.Module | None = None):
        forget = inputs_of(batch, "forget")
        return ascent_token_losses(logits_of(model, forget), forget["labels"])
