"""WGA, weighted gradient ascent (open-unlearning `src/trainer/unlearn/wga.py` @ d3d7cf9e): w_t = p_t^beta
**detached**, per-token ell_t = -w_t * CE_t.

Two reductions of the forget term:
* ``form="token"`` (default, open-unlearning): token mean over all labelled tokens of the micro-batch;
  forget elements are tokens.
* ``form="sequence"`` (annahuynhly/BalDRO fork @98cdfd4, used by DrWGA): s_i = -(sum_t w_t CE_t) / n_i per
  sequence, then the mean over sequences; forget elements are samples.
L = gamma*L_forget + alpha*HF-mean NLL_retain; defaults beta=1, gamma=1, alpha=1.

    out = build_method("WGA", beta=1.0, form="sequence").loss(model, batch)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from torch import Tensor, nn

from unlearning.methods.base import (ForgetTerms, Method, RetainConfig, check_choice, check_number,
                                     inputs_of, logits_of, token_ce)

WGA_FORMS = ("token", "sequence")


@dataclass
class WGAConfig(RetainConfig):
    """beta=1 (weight exponent), form="token" (OU token mean) or "sequence" (fork per-sequence mean),
    gamma=1, alpha=1, retain_loss_type="NLL"."""

    beta: float = 1.0
    form: str = "token"


def wga_token_losses(logits: Tensor, labels: Tensor, beta: float) -> ForgetTerms:
    """ell_t = -(p_t^beta).detach() * CE_t over labelled tokens (token unit)."""
    ce, mask = token_ce(logits, labels)
    weight = (-ce).exp().detach().pow(beta)
    return ForgetTerms(-weight * ce, "token", mask)


class WGA(Method):
    """Weighted gradient ascent."""

    name = "WGA"
    config_cls = WGAConfig

    def validate(self) -> None:
        super().validate()
        check_number(self.name, "beta", self.config.beta)
        check_choice(self.name, "form", self.config.form, WGA_FORMS)

    @property
    def unit(self) -> str:  # type: ignore[override]
        return "token" if self.config.form == "token" else "sample"

    def forget_terms(self, model: nn.Module, batch: Mapping[str, Any], ref_model: nn.Module | None = None):
        forget = inputs_of(batch, "forget")
        terms = wga_token_losses(logits_of(model, forget), forget["labels"], self.config.beta)
        if self.config.form == "token":
            return terms
        return ForgetTerms(terms.per_sample(), "sample")
