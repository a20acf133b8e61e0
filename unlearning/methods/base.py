"""Shared pieces of every unlearning loss: the Method base class, its outputs and the token primitives.

Notation: docs/methods.md, "Notation and the reference training recipe". Labels use the HF convention:
``labels[:, t]`` is the token the
model must predict at position ``t - 1`` and is -100 on prompt and padding, so every per-token quantity
here has shape ``[B, T-1]`` ("shifted": position t scores ``labels[:, t+1]``).

    from unlearning.methods.base import token_ce, hf_mean_nll
    ce, mask = token_ce(logits, labels)           # CE_t and the labelled-token mask, both [B, T-1]
    nll = hf_mean_nll(logits, labels)             # what HF's causal-LM forward returns as `loss`

A method computes its forget loss as a :class:`ForgetTerms` (per sample ``[B]`` or per token
``[B, T-1]`` + mask) *before* reduction, so BalDRO wrappers (baldro.py) can reweight the elements;
unwrapped, every method's forget loss is the plain mean of its elements (docs/methods.md; open-unlearning
`src/trainer/unlearn/*.py` @ d3d7cf9e), and the total is
``L = gamma * L_forget + alpha * L_retain``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping, Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from unlearning.errors import ConfigError, DataError

IGNORE_INDEX = -100
INPUT_KEYS = ("input_ids", "attention_mask", "labels")
RETAIN_LOSS_TYPES = ("NLL", "KL", "JSD")


# --------------------------------------------------------------------------------------------------
# the contract the training loop is typed against


@runtime_checkable
class UnlearningMethod(Protocol):
    """What `unlearning.train.loop.unlearn` needs of a method (a `Method`, or a BalDRO wrapper around one):
    its name, the reference inputs it reads, and the loss of one micro-batch."""

    name: str

    @property
    def needs_ref_logps(self) -> tuple[str, ...]: ...

    @property
    def needs_ref_model(self) -> bool: ...

    def loss(self, model: nn.Module, batch: Mapping[str, Any], ref_model: nn.Module | None = None) -> "LossOutput": ...

    def hparams(self) -> dict[str, Any]: ...


# --------------------------------------------------------------------------------------------------
# outputs


@dataclass
class ForgetTerms:
    """Un-reduced forget losses: ``values`` is ``[B]`` (unit "sample") or ``[B, T-1]`` (unit "token",
    with a boolean ``mask`` of the elements that count)."""

    values: Tensor
    unit: str
    mask: Tensor | None = None

    def __post_init__(self) -> None:
        if self.unit not in ("sample", "token"):
            raise ValueError(f"ForgetTerms.unit must be 'sample' or 'token', got {self.unit!r}")
        if self.unit == "token" and (self.mask is None or self.mask.shape != self.values.shape):
            raise ValueError("token-level ForgetTerms need a mask of the same shape as values")

    def elements(self) -> Tensor:
        """The counted elements as a 1-D tensor (samples, or labelled tokens in row-major order)."""
        return self.values if self.unit == "sample" else self.values[self.mask]

    def mean(self) -> Tensor:
        """Plain mean over the elements (per-sample mean, or token mean over the whole micro-batch)."""
        if self.unit == "sample":
            return self.values.mean()
        return masked_mean(self.values, self.mask)

    def per_sample(self) -> Tensor:
        """``[B]``: the values themselves, or each row's mean over its counted tokens."""
        if self.unit == "sample":
            return self.values
        return (self.values * self.mask).sum(-1) / self.mask.sum(-1).clamp(min=1)


@dataclass
class LossOutput:
    """What ``Method.loss`` returns. ``loss`` is the differentiable total; ``forget_loss`` and
    ``retain_loss`` are the terms before gamma/alpha; ``per_element`` is the detached 1-D vector of
    forget elements before reduction (``unit`` says what an element is); ``extras`` carries
    wrapper-specific tensors (e.g. BalDRO-G's selected rows, BalDRO-DV's weights)."""

    loss: Tensor
    forget_loss: Tensor
    retain_loss: Tensor
    per_element: Tensor
    unit: str
    extras: dict[str, Tensor] = field(default_factory=dict)

    def scalars(self) -> dict[str, float]:
        """Plain floats for logging."""
        return {"loss": float(self.loss.detach()), "forget_loss": float(self.forget_loss.detach()),
                "retain_loss": float(self.retain_loss.detach())}


# --------------------------------------------------------------------------------------------------
# token primitives (pure functions of logits and labels)


def shift_mask(labels: Tensor) -> Tensor:
    """``[B, T-1]`` bool: which shifted positions carry a label."""
    return labels[:, 1:] != IGNORE_INDEX


def token_ce(logits: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Per-token cross entropy CE_t = -log p(labels[t+1] | <= t) in float32, 0 where unlabelled.

    Returns ``(ce [B, T-1], mask [B, T-1])``."""
    shifted = labels[:, 1:]
    ce = F.cross_entropy(logits[:, :-1, :].float().transpose(1, 2), shifted,
                         ignore_index=IGNORE_INDEX, reduction="none")
    return ce, shifted != IGNORE_INDEX


def masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Sum of ``values`` where ``mask`` over the number of such elements (0 when there are none)."""
    return (values * mask).sum() / mask.sum().clamp(min=1)


def sequence_nll(logits: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """``(NLL_i [B], n_i [B])``: the sequence-summed CE over answer tokens and their count."""
    ce, mask = token_ce(logits, labels)
    return ce.sum(-1), mask.sum(-1)


def hf_mean_nll(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean CE over all labelled tokens of the micro-batch (token-weighted; docs/methods.md, "Notation and the
    reference training recipe").
    A micro-batch without labelled tokens gives 0 (HF would give NaN)."""
    ce, mask = token_ce(logits, labels)
    return masked_mean(ce, mask)


def kl_retain(logits: Tensor, ref_logits: Tensor) -> Tensor:
    """KL(pi_ref || pi_theta) summed over the vocabulary and averaged over **all** B*T positions,
    prompt and padding included (OU's ``kl_div(..., reduction="batchmean")`` on flattened logits)."""
    vocab = logits.shape[-1]
    logp = F.log_softmax(logits.float(), -1).reshape(-1, vocab)
    logq = F.log_softmax(ref_logits.float(), -1).reshape(-1, vocab)
    return F.kl_div(logp, logq, reduction="batchmean", log_target=True)


def jsd(p: Tensor, q: Tensor, eps: float) -> Tensor:
    """Jensen-Shannon divergence over the last dim, JensUn style: m = clamp((p+q)/2, eps), p and q
    clamped at eps, JSD = KL(p||m)/2 + KL(q||m)/2 (natural log, bounded by ln 2)."""
    m = (0.5 * (p + q)).clamp(min=eps)
    pc, qc = p.clamp(min=eps), q.clamp(min=eps)
    log_m = m.log()
    return 0.5 * (pc * (pc.log() - log_m)).sum(-1) + 0.5 * (qc * (qc.log() - log_m)).sum(-1)


def jsd_reference_eps(p: Tensor, q: Tensor, eps: float) -> Tensor:
    """JSD with JensUn's own epsilon placement (its ``jensun_multitok_loss``): p and q clamped at eps
    first, m = (p_c + q_c)/2 from the clamped values and not clamped again."""
    pc, qc = p.clamp(min=eps), q.clamp(min=eps)
    log_m = (0.5 * (pc + qc)).log()
    return 0.5 * (pc * (pc.log() - log_m)).sum(-1) + 0.5 * (qc * (qc.log() - log_m)).sum(-1)


def jsd_retain(logits: Tensor, ref_logits: Tensor, labels: Tensor, eps: float = 1e-9,
               faithful_eps: bool = False) -> Tensor:
    """JensUn retain term: per answer token JSD(p_ref, p_theta), token mean over labelled positions.

    ``faithful_eps``: JensUn's ``jensun_retain_loss`` instead: unclamped log-softmax log-probs, only
    log m clamped (at 1e-10)."""
    mask = shift_mask(labels)
    if faithful_eps:
        logp = F.log_softmax(logits[:, :-1, :].float(), -1)
        logq = F.log_softmax(ref_logits[:, :-1, :].float(), -1)
        p, q = logp.exp(), logq.exp()
        log_m = (0.5 * (p + q)).clamp(min=1e-10).log()
        per_token = 0.5 * (q * (logq - log_m)).sum(-1) + 0.5 * (p * (logp - log_m)).sum(-1)
        return masked_mean(per_token, mask)
    p = F.softmax(logits[:, :-1, :].float(), -1)
    q = F.softmax(ref_logits[:, :-1, :].float(), -1)
    return masked_mean(jsd(q, p, eps), mask)


# --------------------------------------------------------------------------------------------------
# model access


def inputs_of(batch: Mapping[str, Any], key: str) -> dict[str, Tensor]:
    """The ``input_ids``/``attention_mask``/``labels`` of ``batch[key]``; DataError if missing."""
    part = batch.get(key) if isinstance(batch, Mapping) else None
    if not isinstance(part, Mapping):
        raise DataError("training batch", field=key, value=None if part is None else type(part).__name__,
                        fix=f"the batch needs a '{key}' entry with keys {list(INPUT_KEYS)}")
    missing = [k for k in INPUT_KEYS if k not in part]
    if missing:
        raise DataError("training batch", field=f"{key}.{missing[0]}", value=sorted(part),
                        fix=f"batch['{key}'] needs keys {list(INPUT_KEYS)}")
    return {k: part[k] for k in INPUT_KEYS}


def bare_module(model: Any) -> nn.Module:
    """The module under any wrapper (a DeepSpeed engine, DDP): methods that take their own gradients
    (``torch.autograd.grad``) or change weights in place run their forwards on it, because a DeepSpeed engine's
    forward output refuses any autograd call outside ``engine.backward`` (ZeRO 0)."""
    while isinstance(getattr(model, "module", None), nn.Module):
        model = model.module
    return model


def logits_of(model: nn.Module, inputs: Mapping[str, Tensor]) -> Tensor:
    """Forward pass returning ``[B, T, V]`` logits (labels are not passed, so HF computes no loss)."""
    out = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
    return out.logits if hasattr(out, "logits") else out[0]


def ref_logits_of(ref_model: nn.Module, inputs: Mapping[str, Tensor]) -> Tensor:
    """No-grad forward of the frozen reference model."""
    with torch.no_grad():
        return logits_of(ref_model, inputs).detach()


def ref_token_logps(batch: Mapping[str, Any], key: str, ref_model: nn.Module | None,
                    method: str) -> Tensor:
    """Per-token reference log-probs ``[B, T-1]`` of ``batch[key]`` labels (0 where unlabelled).

    Uses ``batch[f"{key}_ref_logps"]`` when present (cached by reference.py), else a live no-grad
    forward of ``ref_model``; raises ConfigError when neither is available."""
    inputs = inputs_of(batch, key)
    labels = inputs["labels"]
    cached = batch.get(f"{key}_ref_logps")
    if cached is not None:
        want = (labels.shape[0], labels.shape[1] - 1)
        if tuple(cached.shape) != want:
            raise DataError("training batch", field=f"{key}_ref_logps", value=tuple(cached.shape),
                            fix=f"cached reference log-probs must have shape [B, T-1] = {list(want)}")
        return cached.to(device=labels.device, dtype=torch.float32)
    if ref_model is None:
        raise ConfigError(method, field="ref_model", value=None,
                          fix=f"pass ref_model=<frozen copy> or attach batch['{key}_ref_logps'] with "
                              "unlearning.methods.reference.attach_ref_logps")
    ce, _ = token_ce(ref_logits_of(ref_model, inputs), labels)
    return -ce


def zero_like_loss(reference: Tensor) -> Tensor:
    """A scalar 0 on the same device (used for absent retain terms)."""
    return reference.new_zeros(())


# --------------------------------------------------------------------------------------------------
# configs and the Method base class


@dataclass
class RetainConfig:
    """Weights shared by the GradDiff family: L = gamma * L_forget + alpha * L_retain.

    gamma: weight of the forget term. alpha: weight of the retain term (0 skips the retain forward).
    retain_loss_type: "NLL" (HF-mean NLL on the retain micro-batch), "KL" (KL(pi_ref||pi_theta) over
    all positions, needs the reference model) or "JSD" (JensUn's token-mean JSD to the reference)."""

    gamma: float = 1.0
    alpha: float = 1.0
    retain_loss_type: str = "NLL"


def check_positive(where: str, name: str, value: float) -> None:
    """ConfigError unless ``value`` is a finite number > 0."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0 or value != value \
            or value == float("inf"):
        raise ConfigError(where, field=name, value=value, fix=f"'{name}' must be a finite number > 0")


def check_number(where: str, name: str, value: float) -> None:
    """ConfigError unless ``value`` is a finite real number."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value != value \
            or abs(value) == float("inf"):
        raise ConfigError(where, field=name, value=value, fix=f"'{name}' must be a finite number")


def check_choice(where: str, name: str, value: Any, choices: tuple[str, ...]) -> None:
    """ConfigError unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ConfigError(where, field=name, value=value, fix=f"use one of {list(choices)}")


class Method:
    """Base class of every unlearning loss.

    Subclasses set ``name``, ``config_cls`` and ``unit`` and implement :meth:`forget_terms`; the retain
    term defaults to the GradDiff options of :class:`RetainConfig`. ``loss`` reduces the forget
    elements with a plain mean, as the spec's unwrapped methods do."""

    name: ClassVar[str] = "Method"
    config_cls: ClassVar[type] = RetainConfig
    unit: ClassVar[str] = "sample"
    retain_loss_types: ClassVar[tuple[str, ...]] = RETAIN_LOSS_TYPES
    ref_logps_keys: ClassVar[tuple[str, ...]] = ()
    wrappable: ClassVar[bool] = True  # whether BalDRO-G/-DV may wrap it (False for gradient-rewriting GRU)

    def __init__(self, config: Any = None) -> None:
        self.config = config if config is not None else self.config_cls()
        self.validate()

    # --- configuration --------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise ConfigError for invalid hyperparameters (subclasses extend it)."""
        cfg = self.config
        if hasattr(cfg, "gamma"):
            check_number(self.name, "gamma", cfg.gamma)
        if hasattr(cfg, "alpha"):
            check_number(self.name, "alpha", cfg.alpha)
        if hasattr(cfg, "retain_loss_type"):
            check_choice(self.name, "retain_loss_type", cfg.retain_loss_type, self.retain_loss_types)

    @property
    def gamma(self) -> float:
        return float(getattr(self.config, "gamma", 1.0))

    @property
    def alpha(self) -> float:
        return float(getattr(self.config, "alpha", 0.0))

    @property
    def retain_loss_type(self) -> str | None:
        return getattr(self.config, "retain_loss_type", None)

    @property
    def needs_ref_logps(self) -> tuple[str, ...]:
        """Batch keys whose per-token reference log-probs this method reads (``<key>_ref_logps``)."""
        return self.ref_logps_keys

    @property
    def needs_ref_model(self) -> bool:
        """Whether a live frozen reference model must be passed to ``loss`` (cached log-probs do not
        replace it)."""
        return self.alpha != 0 and self.retain_loss_type in ("KL", "JSD")

    def hparams(self) -> dict[str, Any]:
        """Flat dict of the method's hyperparameters (for logging and export)."""
        return dataclasses.asdict(self.config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hparams().items())
        return f"{self.name}({args})"

    # --- losses -----------------------------------------------------------------------------------
    def forget_terms(self, model: nn.Module, batch: Mapping[str, Any],
                     ref_model: nn.Module | None = None) -> ForgetTerms:
        """Un-reduced forget losses of ``batch["forget"]``."""
        raise NotImplementedError

    def retain_loss(self, model: nn.Module, retain: Mapping[str, Tensor],
                    ref_model: nn.Module | None = None) -> Tensor:
        """Retain term on one retain micro-batch (``retain`` = input_ids/attention_mask/labels)."""
        kind = self.retain_loss_type
        logits = logits_of(model, retain)
        if kind == "NLL":
            return hf_mean_nll(logits, retain["labels"])
        if ref_model is None:
            raise ConfigError(self.name, field="ref_model", value=None,
                              fix=f"retain_loss_type={kind!r} needs a live frozen ref_model")
        ref = ref_logits_of(ref_model, retain)
        if kind == "KL":
            return kl_retain(logits, ref)
        return jsd_retain(logits, ref, retain["labels"], eps=getattr(self.config, "eps", 1e-9),
                          faithful_eps=bool(getattr(self.config, "faithful_eps", False)))

    def combine(self, forget_loss: Tensor, retain_loss: Tensor) -> Tensor:
        """gamma * forget + alpha * retain."""
        return self.gamma * forget_loss + self.alpha * retain_loss

    def retain_term(self, model: nn.Module, batch: Mapping[str, Any],
                    ref_model: nn.Module | None, like: Tensor) -> Tensor:
        """The retain loss of ``batch["retain"]``, or 0 without a forward when alpha == 0."""
        if self.alpha == 0:
            return zero_like_loss(like)
        return self.retain_loss(model, inputs_of(batch, "retain"), ref_model)

    def loss(self, model: nn.Module, batch: Mapping[str, Any],
             ref_model: nn.Module | None = None) -> LossOutput:
        """Total loss of one micro-batch, reduced exactly as the spec's unwrapped method."""
        terms = self.forget_terms(model, batch, ref_model)
        forget = terms.mean()
        retain = self.retain_term(model, batch, ref_model, forget)
        return LossOutput(self.combine(forget, retain), forget, retain,
                          terms.elements().detach(), terms.unit)
