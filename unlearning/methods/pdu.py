"""PDU, primal-dual unlearning (open-unlearning ``src/trainer/unlearn/pdu.py`` at d3d7cf9e, masked since 0e57336).

Forget loss ("logit-margin flattening", squared): at every position t of the forget micro-batch,
m_t = (max_v z_t,v - mean_v z_t,v)^2; L_forget = sum_t m_t * [labels_t != -100] / #{labels_t != -100}, the
reference's masked form ("masked loss PDU (#147)"). As in the reference the mask is the *unshifted* labels: the
counted positions are the answer tokens themselves (the logits at the last answer token count, those at the last
prompt token do not). Before #147 the reference averaged over all B*T positions (prompt and padding included).

Total: L = gamma * L_forget + alpha_k * (L_retain - retain_loss_eps), L_retain the GradDiff retain term
(NLL default, or KL/JSD). With ``primal_dual=True`` (default, PDU.yaml) alpha is a dual variable, the retain
loss a constraint L_retain <= retain_loss_eps:

* warm-up: the dual does not move until the end of epoch ``dual_warmup_epochs`` (the reference's
  ``DualOptimizationCallback.on_epoch_end``: ``state.epoch >= dual_warmup_epochs`` enables updates);
* ``dual_update_upon="step"``: after each micro-batch's loss, alpha <- max(0, alpha + dual_step_size *
  (L_retain - retain_loss_eps)) (every compute_loss call, i.e. every micro-batch, as the reference);
* ``dual_update_upon="epoch"``: at each epoch end (from the end of the warm-up on) one no-grad pass, in eval
  mode, over the epoch's micro-batches: alpha <- max(0, alpha + dual_step_size * (mean_batches L_retain - eps))
  (``post_epoch_dual_param_update``).

The training loop calls :meth:`PDU.end_epoch` at every full epoch's end and checkpoints the dual state
(:meth:`state_dict`). With ``primal_dual=False`` alpha_k = alpha and the shift is a constant. ``retain_loss`` in
the output is the unshifted L_retain; ``extras["retain_preference"]`` is the alpha the loss used. The dual is
per process (under DDP each rank moves its own, as in the reference). Defaults (PDU.yaml): gamma=1, alpha=1,
primal_dual=True, dual_step_size=1, dual_update_upon="step", dual_warmup_epochs=5; retain_loss_eps=0 (PDU.yaml
leaves it mandatory, ``???``; its published TOFU recipe uses 0.3).

    out = build_method("PDU", retain_loss_eps=0.3, dual_warmup_epochs=0).loss(model, batch)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import torch
from torch import Tensor, nn

from unlearning.errors import ConfigError
from unlearning.methods.base import (IGNORE_INDEX, ForgetTerms, LossOutput, Method, RetainConfig, check_choice,
                                     check_number, check_positive, inputs_of, logits_of)

DUAL_UPDATES = ("step", "epoch")


@dataclass
class PDUConfig(RetainConfig):
    """retain_loss_eps=0 (retain-loss budget), primal_dual=True (alpha is a dual variable), dual_step_size=1.0,
    dual_update_upon="step" ("epoch": one retain pass per epoch end), dual_warmup_epochs=5 (epochs before the
    dual moves), gamma=1, alpha=1 (initial dual value), retain_loss_type="NLL"."""

    retain_loss_eps: float = 0.0
    primal_dual: bool = True
    dual_step_size: float = 1.0
    dual_update_upon: str = "step"
    dual_warmup_epochs: float = 5


def logit_margin_losses(logits: Tensor, labels: Tensor) -> ForgetTerms:
    """(max_v z - mean_v z)^2 at every position ``[B, T]``, counted where the unshifted label is not -100."""
    z = logits.float()
    values = (z.max(dim=-1).values - z.mean(dim=-1)).pow(2)
    return ForgetTerms(values, "token", labels != IGNORE_INDEX)


class PDU(Method):
    """Logit-margin flattening on forget with a (primal-dual) constrained retain loss."""

    name = "PDU"
    config_cls = PDUConfig
    unit = "token"

    def __init__(self, config: PDUConfig | None = None) -> None:
        super().__init__(config)
        self.dual_alpha = float(self.config.alpha)
        self.can_update = self.config.dual_warmup_epochs == 0

    def validate(self) -> None:
        super().validate()
        cfg = self.config
        check_number(self.name, "retain_loss_eps", cfg.retain_loss_eps)
        check_positive(self.name, "dual_step_size", cfg.dual_step_size)
        check_choice(self.name, "dual_update_upon", cfg.dual_update_upon, DUAL_UPDATES)
        check_number(self.name, "dual_warmup_epochs", cfg.dual_warmup_epochs)
        if cfg.dual_warmup_epochs < 0:
            raise ConfigError(self.name, field="dual_warmup_epochs", value=cfg.dual_warmup_epochs,
                              fix="use a number of epochs >= 0 (0: the dual moves from the first step)")
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
        forget = inputs_of(batch, "forget")
        return logit_margin_losses(logits_of(model, forget), forget["labels"])

    def retain_term(self, model: nn.Module, batch: Mapping[str, Any], ref_model: nn.Module | None,
                    like: Tensor) -> Tensor:
        if self.config.primal_dual:  # the dual update needs L_retain even while alpha is 0
            return self.retain_loss(model, inputs_of(batch, "retain"), ref_model)
        return super().retain_term(model, batch, ref_model, like)

    def _dual_step(self, shifted_retain: float) -> None:
        self.dual_alpha = max(0.0, self.dual_alpha + self.config.dual_step_size * shifted_retain)

    def combine(self, forget_loss: Tensor, retain_loss: Tensor) -> Tensor:
        """gamma * forget + alpha_k * (retain - eps); then the per-step dual update once the warm-up is over."""
        shifted = retain_loss - self.config.retain_loss_eps
        total = self.gamma * forget_loss + self.dual_alpha * shifted
        cfg = self.config
        if cfg.primal_dual and self.can_update and cfg.dual_update_upon == "step":
            self._dual_step(float(shifted.detach()))
        return total

    def loss(self, model: nn.Module, batch: Mapping[str, Any], ref_model: nn.Module | None = None) -> LossOutput:
        alpha_used = self.dual_alpha
        out = super().loss(model, batch, ref_model)
        out.extras["retain_preference"] = torch.tensor(alpha_used)
        return out

    # --- training-loop hooks ------------------------------------------------------------------------
    @torch.no_grad()
    def end_epoch(self, model: nn.Module, epochs_done: int, batches: Iterable[Mapping[str, Any]],
                  ref_model: nn.Module | None = None) -> None:
        """Called by the loop after each full epoch (model in eval mode): ends the warm-up once
        ``epochs_done >= dual_warmup_epochs``; then, with ``dual_update_upon="epoch"``, one dual step with the
        mean retain loss over ``batches`` (the epoch's micro-batches; consumed only in that case)."""
        cfg = self.config
        if not cfg.primal_dual or epochs_done < cfg.dual_warmup_epochs:
            return
        self.can_update = True
        if cfg.dual_update_upon != "epoch":
            return
        total, count = 0.0, 0
        for batch in batches:
            total = total + self.retain_loss(model, inputs_of(batch, "retain"), ref_model)
            count += 1
        if count:
            self._dual_step(float(total / count - cfg.retain_loss_eps))

    def state_dict(self) -> dict[str, Any]:
        """The dual state the loop checkpoints (so a resumed run continues the same trajectory)."""
        return {"dual_alpha": self.dual_alpha, "can_update": self.can_update}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.dual_alpha, self.can_update = float(state["dual_alpha"]), bool(state["can_update"])
