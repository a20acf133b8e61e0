"""BalDRO wrappers (nxZhai/BalDRO @ 12a0b0cc35de, `src/trainer/unlearn/*.py`, `src/trainer/utils.py`): reweight any
method's per-element forget losses.

    from unlearning.methods import build_method
    m = build_method("NPO", beta=0.1, baldro="dv", beta_dv=2.0)      # = DrNPO
    m = build_method("SatImp", baldro="g", group_ratio=0.5)           # = GroupSatImp
    out = m.loss(model, batch, ref_model=None); out.loss.backward()

**BalDRO-DV** (:class:`BalDRODV`, classes Dr* of nxZhai/BalDRO): replaces the plain mean of the forget
elements ell_1..ell_N by a Donsker-Varadhan (KL-DRO) aggregate, computed with log-sum-exp:

* ``dv_mode="softmin"`` (default; what the released BalDRO code does):
  L = -beta_dv * (logsumexp(-ell/beta_dv) - log N). Its gradient weights are softmax(-ell/beta_dv): the
  elements with the *lowest* loss are up-weighted.
* ``dv_mode="softmax"`` (textbook KL-penalised worst case): L = +beta_dv * (logsumexp(ell/beta_dv) - log N),
  weights softmax(+ell/beta_dv).
Both tend to the plain mean as beta_dv grows. N is the number of elements in the micro-batch.
``unit``: "auto" (the base method's own unit: tokens for SatImp/WGA-token/GradAscent/GradDiff/UNDIAL/
JensUn, samples otherwise — reproduces DrSatImp's per-token DV), "sample" (token losses are first
averaged per sequence) or "token" (only for token-level methods).
Retain term: ``retain_reduction`` = "auto" reproduces the reference classes (DrNPO/DrSatImp/DrTNPO: mean
over samples of the **sequence-summed** NLL; DrSimNPO/DrWGA: HF-mean NLL; other methods: their own retain
loss), or "sequence_sum", "sequence_mean" (mean of per-sequence token means), "hf_mean", "base".
``retain_dro=True`` applies the same DV aggregate (same dv_mode, ``beta_dv_retain``) to per-sequence NLLs.

**BalDRO-G** (:class:`BalDROG`, classes Group*): rank the B forget samples by mean token NLL under the
current model (no-grad forward; only the ranking is used), keep the k = max(1, int(B*group_ratio))
lowest-NLL (best remembered) samples — ties go to the lower row index — and draw k retain rows uniformly
without replacement with the ``generator`` given (global RNG if None). The base loss, with its own
reductions, is computed on that sub-batch.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Mapping

import torch
from torch import Tensor, nn

from unlearning.errors import ConfigError
from unlearning.methods.base import (LossOutput, Method, check_choice, check_positive, hf_mean_nll,
                                     inputs_of, logits_of, sequence_nll, zero_like_loss)

DV_MODES = ("softmin", "softmax")
DV_UNITS = ("auto", "sample", "token")
RETAIN_REDUCTIONS = ("auto", "base", "sequence_sum", "sequence_mean", "hf_mean")
# retain reduction of the reference Dr* classes (retain_dro=False), keyed by base method name
REFERENCE_RETAIN_REDUCTION = {"NPO": "sequence_sum", "SatImp": "sequence_sum", "TNPO": "sequence_sum",
                              "SimNPO": "hf_mean", "WGA": "hf_mean"}


# --------------------------------------------------------------------------------------------------
# DV aggregate


def dv_reduce(values: Tensor, beta: float, mode: str = "softmin") -> Tensor:
    """Donsker-Varadhan aggregate of a 1-D tensor of losses (log-sum-exp, stable for |ell/beta| ~ 1e4).

    softmin: -beta (logsumexp(-ell/beta) - log N); softmax: +beta (logsumexp(ell/beta) - log N).
    An empty tensor gives 0."""
    flat = values.reshape(-1)
    if flat.numel() == 0:
        return flat.sum()
    sign = -1.0 if mode == "softmin" else 1.0
    log_n = math.log(flat.numel())
    return sign * beta * (torch.logsumexp(sign * flat / beta, dim=0) - log_n)


def dv_weights(values: Tensor, beta: float, mode: str = "softmin") -> Tensor:
    """The implied per-element weights d(dv_reduce)/d(ell) = softmax(-+ell/beta) (detached, sum to 1)."""
    sign = -1.0 if mode == "softmin" else 1.0
    return torch.softmax(sign * values.detach().reshape(-1) / beta, dim=0)


# --------------------------------------------------------------------------------------------------
# shared wrapper behaviour


class _Wrapper:
    """Delegates the Method interface (gamma, alpha, reference needs, hparams) to ``base``."""

    kind: str = ""

    def __init__(self, base: Method) -> None:
        if isinstance(base, _Wrapper):
            raise ConfigError(type(self).__name__, field="base", value=base.name,
                              fix="BalDRO-G and BalDRO-DV cannot be stacked; pick one")
        self.base = base

    @property
    def name(self) -> str:
        return f"{self.base.name}+BalDRO-{self.kind.upper()}"

    @property
    def unit(self) -> str:
        return self.base.unit

    @property
    def gamma(self) -> float:
        return self.base.gamma

    @property
    def alpha(self) -> float:
        return self.base.alpha

    @property
    def needs_ref_logps(self) -> tuple[str, ...]:
        return self.base.needs_ref_logps

    @property
    def needs_ref_model(self) -> bool:
        return self.base.needs_ref_model

    def hparams(self) -> dict[str, Any]:
        return {**self.base.hparams(), "baldro": self.kind, **dataclasses.asdict(self.config)}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hparams().items())
        return f"{type(self).__name__}({args})"


# --------------------------------------------------------------------------------------------------
# BalDRO-DV


@dataclass
class BalDRODVConfig:
    """beta_dv=1.0 (DV temperature of the forget term), dv_mode="softmin" (BalDRO code) | "softmax",
    unit="auto" | "sample" | "token", forget_dro=True (False = plain mean), retain_dro=False,
    beta_dv_retain=1.0, retain_reduction="auto" (see module docstring)."""

    beta_dv: float = 1.0
    dv_mode: str = "softmin"
    unit: str = "auto"
    forget_dro: bool = True
    retain_dro: bool = False
    beta_dv_retain: float = 1.0
    retain_reduction: str = "auto"


class BalDRODV(_Wrapper):
    """Distributionally robust (DV) reweighting of a method's forget elements."""

    kind = "dv"

    def __init__(self, base: Method, beta_dv: float = 1.0, dv_mode: str = "softmin", unit: str = "auto",
                 forget_dro: bool = True, retain_dro: bool = False, beta_dv_retain: float = 1.0,
                 retain_reduction: str = "auto") -> None:
        super().__init__(base)
        self.config = BalDRODVConfig(beta_dv, dv_mode, unit, forget_dro, retain_dro, beta_dv_retain,
                                     retain_reduction)
        self._validate()
        self.element_unit = base.unit if unit == "auto" else unit
        self.retain_mode = self._resolve_retain()

    def _validate(self) -> None:
        cfg, where = self.config, "BalDRO-DV"
        check_positive(where, "beta_dv", cfg.beta_dv)
        check_positive(where, "beta_dv_retain", cfg.beta_dv_retain)
        check_choice(where, "dv_mode", cfg.dv_mode, DV_MODES)
        check_choice(where, "unit", cfg.unit, DV_UNITS)
        check_choice(where, "retain_reduction", cfg.retain_reduction, RETAIN_REDUCTIONS)
        for flag in ("forget_dro", "retain_dro"):
            if not isinstance(getattr(cfg, flag), bool):
                raise ConfigError(where, field=flag, value=getattr(cfg, flag), fix="use true or false")
        if cfg.unit == "token" and self.base.unit != "token":
            raise ConfigError(where, field="unit", value="token",
                              fix=f"{self.base.name} yields per-sample losses only; use unit='sample' or 'auto'")

    def _resolve_retain(self) -> str:
        cfg, base = self.config, self.base
        nll = base.retain_loss_type == "NLL"
        mode = cfg.retain_reduction
        if mode == "auto":
            mode = REFERENCE_RETAIN_REDUCTION.get(base.name, "base") if nll else "base"
            if cfg.retain_dro:
                mode = "sequence_sum" if nll else "base"
        if mode != "base" and not nll:
            raise ConfigError("BalDRO-DV", field="retain_reduction", value=cfg.retain_reduction,
                              fix=f"'{mode}' applies to the NLL retain loss; {base.name} uses "
                                  f"retain_loss_type={base.retain_loss_type!r}: use retain_reduction='base'")
        if cfg.retain_dro and mode not in ("sequence_sum", "sequence_mean"):
            raise ConfigError("BalDRO-DV", field="retain_dro", value=True,
                              fix="retain_dro needs per-sequence retain NLLs: retain_loss_type='NLL' and "
                                  "retain_reduction 'sequence_sum' (reference) or 'sequence_mean'")
        return mode

    def forget_elements(self, model: nn.Module, batch: Mapping[str, Any],
                        ref_model: nn.Module | None = None) -> tuple[Tensor, Tensor]:
        """(1-D elements in ``element_unit``, the base method's plain-mean forget loss)."""
        terms = self.base.forget_terms(model, batch, ref_model)
        elements = terms.elements() if self.element_unit == terms.unit else terms.per_sample()
        return elements, terms.mean()

    def retain_loss(self, model: nn.Module, batch: Mapping[str, Any], ref_model: nn.Module | None,
                    like: Tensor) -> Tensor:
        """Retain term with the resolved reduction (and DV when retain_dro)."""
        if self.alpha == 0:
            return zero_like_loss(like)
        if self.retain_mode == "base":
            return self.base.retain_term(model, batch, ref_model, like)
        retain = inputs_of(batch, "retain")
        logits = logits_of(model, retain)
        if self.retain_mode == "hf_mean":
            return hf_mean_nll(logits, retain["labels"])
        nll, n = sequence_nll(logits, retain["labels"])
        per_seq = nll if self.retain_mode == "sequence_sum" else nll / n.clamp(min=1)
        if self.config.retain_dro:
            return dv_reduce(per_seq, self.config.beta_dv_retain, self.config.dv_mode)
        return per_seq.mean()

    def loss(self, model: nn.Module, batch: Mapping[str, Any],
             ref_model: nn.Module | None = None) -> LossOutput:
        cfg = self.config
        elements, plain = self.forget_elements(model, batch, ref_model)
        extras: dict[str, Tensor] = {"forget_loss_plain": plain.detach()}
        if cfg.forget_dro:
            forget = dv_reduce(elements, cfg.beta_dv, cfg.dv_mode)
            extras["dv_weights"] = dv_weights(elements, cfg.beta_dv, cfg.dv_mode)
        else:
            forget = plain
        retain = self.retain_loss(model, batch, ref_model, forget)
        total = self.base.combine(forget, retain)
        return LossOutput(total, forget, retain, elements.detach(), self.element_unit, extras)


# --------------------------------------------------------------------------------------------------
# BalDRO-G


@dataclass
class BalDROGConfig:
    """group_ratio=0.5 (rho: fraction of the forget micro-batch kept, k = max(1, int(B*rho)))."""

    group_ratio: float = 0.5


def group_size(batch_size: int, group_ratio: float) -> int:
    """k = max(1, int(B * rho)) (int() truncation, as the reference code)."""
    return max(1, int(batch_size * group_ratio))


def mean_token_nll(model: nn.Module, inputs: Mapping[str, Tensor]) -> Tensor:
    """``[B]`` per-sample mean token NLL under ``model`` (no grad)."""
    with torch.no_grad():
        nll, n = sequence_nll(logits_of(model, inputs), inputs["labels"])
    return nll / n.clamp(min=1)


def select_group(mean_nll: Tensor, group_ratio: float) -> Tensor:
    """Row indices (ascending) of the k lowest mean NLLs; ties favour the lower row index."""
    k = group_size(mean_nll.shape[0], group_ratio)
    order = torch.sort(mean_nll.detach().float().cpu(), stable=True).indices[:k]
    return order.sort().values.to(mean_nll.device)


def retain_subset(retain_size: int, k: int, generator: torch.Generator | None,
                  device: torch.device) -> Tensor:
    """min(k, B_r) retain rows uniformly without replacement (randperm on the CPU generator)."""
    perm = torch.randperm(retain_size, generator=generator)
    return perm[: min(k, retain_size)].to(device)


def _take_rows(part: Mapping[str, Any], idx: Tensor, size: int) -> dict[str, Any]:
    return {k: (v.index_select(0, idx.to(v.device)) if isinstance(v, Tensor) and v.dim() > 0
                and v.shape[0] == size else v) for k, v in part.items()}


def subset_batch(batch: Mapping[str, Any], forget_idx: Tensor, retain_idx: Tensor | None) -> dict[str, Any]:
    """Sub-batch: forget-aligned entries (forget, idk, forget/idk ref log-probs) take ``forget_idx``;
    retain entries take ``retain_idx``; anything else is passed through unchanged."""
    b_forget = inputs_of(batch, "forget")["input_ids"].shape[0]
    out: dict[str, Any] = {}
    for key, value in batch.items():
        is_retain = key == "retain" or key.startswith("retain_")
        idx = retain_idx if is_retain else forget_idx
        if idx is None:
            out[key] = value
        elif isinstance(value, Mapping):
            size = value["input_ids"].shape[0] if "input_ids" in value else b_forget
            out[key] = _take_rows(value, idx, size)
        elif isinstance(value, Tensor) and value.dim() > 0:
            size = batch["retain"]["input_ids"].shape[0] if is_retain else b_forget
            out[key] = value.index_select(0, idx.to(value.device)) if value.shape[0] == size else value
        else:
            out[key] = value
    return out


class BalDROG(_Wrapper):
    """Hard worst-group selection: train on the best-remembered k forget samples."""

    kind = "g"

    def __init__(self, base: Method, group_ratio: float = 0.5,
                 generator: torch.Generator | None = None) -> None:
        super().__init__(base)
        self.config = BalDROGConfig(group_ratio)
        ratio = self.config.group_ratio
        check_positive("BalDRO-G", "group_ratio", ratio)
        if ratio > 1:
            raise ConfigError("BalDRO-G", field="group_ratio", value=ratio, fix="use 0 < group_ratio <= 1")
        self.generator = generator

    def loss(self, model: nn.Module, batch: Mapping[str, Any],
             ref_model: nn.Module | None = None) -> LossOutput:
        forget = inputs_of(batch, "forget")
        scores = mean_token_nll(model, forget)
        forget_idx = select_group(scores, self.config.group_ratio)
        retain_idx = None
        if isinstance(batch.get("retain"), Mapping) and self.alpha != 0:
            b_retain = inputs_of(batch, "retain")["input_ids"].shape[0]
            retain_idx = retain_subset(b_retain, forget_idx.numel(), self.generator,
                                       batch["retain"]["input_ids"].device)
        out = self.base.loss(model, subset_batch(batch, forget_idx, retain_idx), ref_model)
        out.extras.update({"group_forget_idx": forget_idx, "group_mean_nll": scores})
        if retain_idx is not None:
            out.extras["group_retain_idx"] = retain_idx
        return out
