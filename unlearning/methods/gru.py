"""GRU, gradient-rectified unlearning (open-unlearning PR #83 ``src/trainer/unlearn/gru.py`` at 911e52a1;
arXiv:2503.09117).

GRU changes the update direction, not the loss. Per optimizer step of n micro-batches (``grad_accum``), with
theta the trainable parameters:

* g_f = mean over the step's micro-batches of grad of the forget loss: -HF-mean NLL of the forget batch
  (``forget_loss_type="GradAscent"``, default) or NPO's loss with ``beta`` (``"NPO"``; the reference hard-codes
  beta 0.1);
* g_r = mean over the step's micro-batches of grad of the HF-mean NLL of the retain batch;
* r_k = gamma_gru * g_r + (1 - gamma_gru) * r_{k-1}, r_0 = 0 (an EMA of the accumulated retain gradient,
  updated once per optimizer step);
* if <g_f, r_k> < 0 the conflicting component is removed: g = g_f - <g_f, r_k> / <r_k, r_k> * r_k;
  else g = g_f. The parameters move along g only (the retain gradient is used for the projection alone,
  as in the reference, where gamma and alpha play no part).

This is the reference's GradAscent branch at any ``gradient_accumulation_steps``: ``store_grads`` accumulates
(loss / GA).backward() of each micro-batch, and the projection runs on the accumulated gradient every GA-th
micro-batch. The training loop tells the method where it is in the step (:meth:`GRU.begin_micro_batch`); the
loss of every micro-batch but the last has a zero gradient, the last one's gradient is n * g (the loop divides
each micro-batch loss by n), so the optimizer applies g. Called without the loop (no ``begin_micro_batch``),
every call is a one-micro-batch step. ``loss`` returns a scalar whose value is the forget loss (a linear
surrogate sum_p <p, g_p> minus its detached value carries the gradient); ``extras["gru_dot"]`` is <g_f, r_k>
(NaN before the step's last micro-batch) and ``extras["gru_projected"]`` whether the projection was applied.
Dot products are accumulated per parameter tensor in Python floats, as the reference does.

Differences from the reference, all at grad_accum > 1 only: (1) its NPO branch never advances its step counter,
so it projects every micro-batch and the projected gradient restored into ``param.grad`` is added into the next
micro-batch's forget gradient; here NPO accumulates like GradAscent. (2) Its counter does not restart at epoch
ends, so when an epoch's micro-batches are not a multiple of GA its projection points drift from the optimizer
steps; here every step (the epoch's last, shorter one included) projects its own mean gradient. Scope (the
reference's own README: single GPU, no DeepSpeed): one process, torch engine or ZeRO stage 0. The EMA state is
not checkpointed (a resumed run restarts it at 0). BalDRO wrappers cannot wrap GRU (they reweight a loss, GRU
rewrites a gradient). Defaults (reference class): gamma_gru=0.8, forget_loss_type="GradAscent".

    out = build_method("GRU", gamma_gru=0.8).loss(model, batch)      # out.loss.backward() applies g
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import torch
from torch import Tensor, nn

from unlearning.errors import ConfigError
from unlearning.methods.base import (bare_module, ForgetTerms, LossOutput, Method, check_choice, check_positive,
                                     hf_mean_nll, inputs_of, logits_of, ref_token_logps, token_ce)
from unlearning.methods.grad_ascent import ascent_token_losses
from unlearning.methods.npo import npo_sample_losses

FORGET_LOSS_TYPES = ("GradAscent", "NPO")


@dataclass
class GRUConfig:
    """gamma_gru=0.8 (EMA weight of the newest retain gradient), forget_loss_type="GradAscent" ("NPO"),
    beta=0.1 (NPO temperature, used with forget_loss_type="NPO")."""

    gamma_gru: float = 0.8
    forget_loss_type: str = "GradAscent"
    beta: float = 0.1


def _grads(loss: Tensor, params: list[nn.Parameter]) -> list[Tensor]:
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g.detach() for p, g in zip(params, grads)]


def _dot(a: list[Tensor], b: list[Tensor]) -> float:
    return sum(float((x * y).sum()) for x, y in zip(a, b))


def rectify(g_forget: list[Tensor], retain_ema: list[Tensor]) -> tuple[list[Tensor], float]:
    """(g_f minus its projection on the retain EMA when the two conflict (<g_f, r> < 0), else g_f; <g_f, r>)."""
    dot = _dot(g_forget, retain_ema)
    if dot >= 0:
        return g_forget, dot
    scale = dot / _dot(retain_ema, retain_ema)
    return [g - scale * r for g, r in zip(g_forget, retain_ema)], dot


class GRU(Method):
    """Gradient ascent (or NPO) with the retain-conflicting gradient component projected out."""

    name = "GRU"
    config_cls = GRUConfig
    wrappable = False

    def __init__(self, config: GRUConfig | None = None) -> None:
        super().__init__(config)
        self.retain_ema: list[Tensor] | None = None
        self.micro: tuple[int, int] = (0, 1)           # (index in the optimizer step, micro-batches in it)
        self.accumulated: tuple[list[Tensor], list[Tensor]] | None = None   # (sum g_f / n, sum g_r / n)

    def begin_micro_batch(self, index: int, size: int) -> None:
        """Loop hook: the next ``loss`` call is micro-batch ``index`` of an optimizer step of ``size``."""
        self.micro = (int(index), int(size))

    def validate(self) -> None:
        super().validate()
        cfg = self.config
        check_positive(self.name, "gamma_gru", cfg.gamma_gru)
        if cfg.gamma_gru > 1:
            raise ConfigError(self.name, field="gamma_gru", value=cfg.gamma_gru, fix="use 0 < gamma_gru <= 1")
        check_choice(self.name, "forget_loss_type", cfg.forget_loss_type, FORGET_LOSS_TYPES)
        check_positive(self.name, "beta", cfg.beta)

    @property
    def unit(self) -> str:  # type: ignore[override]
        return "token" if self.config.forget_loss_type == "GradAscent" else "sample"

    @property
    def needs_ref_logps(self) -> tuple[str, ...]:
        return ("forget",) if self.config.forget_loss_type == "NPO" else ()

    @property
    def needs_ref_model(self) -> bool:
        return False

    def forget_terms(self, model: nn.Module, batch: Mapping[str, Any], ref_model: nn.Module | None = None):
        forget = inputs_of(batch, "forget")
        logits = logits_of(model, forget)
        if self.config.forget_loss_type == "GradAscent":
            return ascent_token_losses(logits, forget["labels"])
        ref = ref_token_logps(batch, "forget", ref_model, self.name)
        ce, _ = token_ce(logits, forget["labels"])
        return ForgetTerms(npo_sample_losses(-ce.sum(-1), ref.sum(-1), self.config.beta), "sample")

    def loss(self, model: nn.Module, batch: Mapping[str, Any], ref_model: nn.Module | None = None) -> LossOutput:
        index, size = self.micro
        self.micro = (0, 1)
        model = bare_module(model)  # its gradients are torch.autograd.grad calls: no engine forward (base.bare_module)
        params = [p for p in model.parameters() if p.requires_grad]
        terms = self.forget_terms(model, batch, ref_model)
        forget = terms.mean()
        g_forget = _grads(forget, params)
        retain_inputs = inputs_of(batch, "retain")
        retain = hf_mean_nll(logits_of(model, retain_inputs), retain_inputs["labels"])
        g_retain = _grads(retain, params)
        if index == 0 or self.accumulated is None:
            self.accumulated = ([g / size for g in g_forget], [g / size for g in g_retain])
        else:
            for acc, new in zip(self.accumulated, (g_forget, g_retain)):
                for a, g in zip(acc, new):
                    a.add_(g / size)
        if index < size - 1:  # not the step's last micro-batch: only accumulate
            zero = sum(p.sum() for p in params) * 0.0
            return LossOutput(forget.detach() + zero, forget.detach(), retain.detach(), terms.elements().detach(),
                              terms.unit, {"gru_dot": torch.tensor(float("nan")), "gru_projected": torch.tensor(False)})
        acc_forget, acc_retain = self.accumulated
        self.accumulated = None
        k = self.config.gamma_gru
        prev = self.retain_ema
        self.retain_ema = [k * g if prev is None else k * g + (1 - k) * r for g, r in
                           zip(acc_retain, prev if prev is not None else acc_retain)]
        direction, dot = rectify(acc_forget, self.retain_ema)
        linear = sum((p * (size * g)).sum() for p, g in zip(params, direction))
        surrogate = forget.detach() + (linear - linear.detach())
        return LossOutput(surrogate, forget.detach(), retain.detach(), terms.elements().detach(), terms.unit,
                          {"gru_dot": torch.tensor(dot), "gru_projected": torch.tensor(dot < 0)})
