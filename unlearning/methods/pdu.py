"""PDU, primal-dual unlearning (open-unlearning ``src/trainer/unlearn/pdu.py``).

Forget loss ("logit-margin flattening", squared): at **every** position of the forget micro-batch (prompt
and padding included, as in the reference, which flattens all B*T logits), (max_v z_t,v - mean_v z_t,v)^2;
L_forget = the mean over all B*T positions. It is 0 when every position's logits are flat.

Total: L = gamma * L_forget + alpha_k * (L_retain - retain_loss_eps), L_retain the GradDiff retain term
(NLL default, or KL/JSD). With ``primal_dual=False`` (default) alpha_k = alpha and the shift by
retain_loss_eps is a constant (no effect on the gradient). With ``primal_dual=True`` alpha is a dual
variable: after each micro-batch's loss, alpha_{k+1} = max(0, alpha_k + dual_step_size * (L_retain -
retain_loss_eps)), i.e. the retain loss is a constraint L_retain <= retain_loss_eps (the reference's
``dual_update_upon="step"``, updated on every compute_loss call = every micro-batch).

Not reproduced: the reference's ``dual_update_upon="epoch"`` (a no-grad pass over the whole retain set at
each epoch end) and ``dual_warmup_epochs > 0`` need an epoch callback the training loop does not offer;
the dual variable is per process and is not saved in checkpoints (a resumed run restarts it at alpha).
``retain_loss`` in the output is the unshifted L_retain; ``extras["retain_preference"]`` is alpha_k.
Defaults (reference class): gamma=1, alpha=1, retain_loss_eps=0, primal_dual=False, dual_step_size=1.

    out = build_method("PDU", primal_dual=True, retain_loss_eps=0.5).loss(model, batch)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import torch
from torch import Tensor, nn

from unlearning.errors import ConfigError
from unlearning.methods.base import (ForgetTerms, LossOutput, Method, RetainConfig, check_number,
                                     check_positive, inputs_of, logits_of)


@dataclass
class PDUConfig(RetainConfig):
    """retain_loss_eps=0 (retain-loss budget), primal_dual=False (True: alpha is a dual variable updated
    each micro-batch), dual_step_size=1.0, gamma=1, alpha=1 (initial dual value), retain_loss_type="NLL"."""

    retain_loss_eps: float = 0.0
    primal_dual: bool = False
    dual_step_size: float = 1.0


def logit_margin_losses(logits: Tensor) -> ForgetTerms:
    """(max_v z - mean_v z)^2 at every one of the B*T positions (token unit, all positions counted)."""
    z = logits.float()
    values = (z.max(dim=-1).values - z.mean(dim=-1)).pow(2)
    return ForgetTerms(values, "token", torch.ones_like(values, dtype=torch.bool))


class PDU(Method):
    """Logit-margin flattening on forget with a (primal-dual) constrained retain loss."""

    name = "PDU"
    config_cls = PDUConfig
    unit = "token"

    def __init__(self, config: PDUConfig | None = None) -> None:
        super().__init__(config)
        self.dual_alpha = float(self.config.alpha)

    def validate(self) -> None:
        super().validate()
        cfg = self.config
        check_number(self.name, "retain_loss_eps", cfg.retain_loss_eps)
        check_positive(self.name, "dual_step_size", cfg.dual_step_size)
        if not isinstance(cfg.primal_dual, bool):
            raise ConfigError(self.name, field="primal_dual", value=cfg.primal_dual, fix="use true or false")
        if cfg.primal_dual and cfg.alpha < 0:
            raise ConfigError(self.name, field="alpha", value=cfg.alpha,
                              fix="with primal_dual the initial dual value alpha must be >= 0")

    @property
    def wrappable(self) -> bool:
        """BalDRO wrappers skip the retain forward while alpha is 0, which would freeze the dual variable."""
        return not self.config.primal_dual

    @property
    def alpha(self) -> float:
        return self.dual_alpha

    @property
    def needs_ref_model(self) -> bool:
        return (self.config.primal_dual or self.alpha != 0) and self.retain_loss_type in ("KL", "JSD")

    def forget_terms(self, model: nn.Module, batch: Mapping[str, Any], ref_model: nn.Module | None = None):
        return logit_margin_losses(logits_of(model, inputs_of(batch, "forget")))

    def retain_term(self, model: nn.Module, batch: Mapping[str, Any], ref_model: nn.Module | None,
                    like: Tensor) -> Tensor:
        if self.config.primal_dual:  # the dual update needs L_retain even while alpha is 0
            return self.retain_loss(model, inputs_of(batch, "retain"), ref_model)
        return super().retain_term(model, batch, ref_model, like)

    def combine(self, forget_loss: Tensor, retain_loss: Tensor) -> Tensor:
        """gamma * forget + alpha_k * (retain - eps); then the dual step when primal_dual."""
        shifted = retain_loss - self.config.retain_loss_eps
        total = self.gamma * forget_loss + self.dual_alpha * shifted
        if self.config.primal_dual:
            self.dual_alpha = max(0.0, self.dual_alpha + self.config.dual_step_size * float(shifted.detach()))
        return total

    def loss(self, model: nn.Module, batch: Mapping[str, Any], ref_model: nn.Module | None = None) -> LossOutput:
        alpha_used = self.dual_alpha
        out = super().loss(model, batch, ref_model)
        out.extras["retain_preference"] = torch.tensor(alpha_used)
        return out
