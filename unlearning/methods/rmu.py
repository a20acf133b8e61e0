"""RMU, representation misdirection (open-unlearning `src/trainer/unlearn/rmu.py` @ d3d7cf9e): steer one decoder
layer's hidden states on forget answers
towards a fixed random control vector, and keep them equal to the frozen reference's on retain answers.

* Hidden state h = output of decoder layer ``layer`` (first tuple element), captured by a forward hook.
* Control vector c = steering_coeff * u / ||u||, u ~ Uniform[0,1)^d drawn once from a generator seeded
  with ``seed`` (so every rank and every resume draws the same vector).
* actloss(A, B) per sample = sum over answer tokens (labels != -100, unshifted: the hidden state *at*
  the answer token) of mean_d (A-B)^2, divided by the sample's answer-token count; batch mean.
* ``faithful_broadcast`` (default False): open-unlearning's ``compute_activation_loss`` divides the
  per-sample sums s (shape [B]) by the token counts n kept as shape [B, 1], which broadcasts to a [B, B]
  matrix s_j / n_i whose mean is mean(s) * mean(1/n), not the per-sample mean(s/n). True reproduces that
  (each sample's element is s_i * mean_j(1/n_j), so the plain mean is OU's value; it applies to the forget
  term and to the EMBED_DIFF retain term, as in OU). The default keeps the per-sample form because it is
  what OU's own shape comments (``# Shape: [b, 1]``) and the spec describe, it does not couple a sample's
  loss to the other samples' lengths, and both forms agree whenever all answers in a micro-batch have the
  same length (e.g. batch size 1). Set it to reproduce published OU RMU numbers (10-28% loss difference
  on TOFU-like batches).
* L_forget = actloss(h_theta(forget), c); L_retain ("EMBED_DIFF") = actloss(h_theta(retain),
  h_ref(retain)) (needs ref_model); "NLL" / "KL" retain are also accepted. Defaults layer=7,
  steering_coeff=2 (OU yaml; the class default is 20), gamma=1, alpha=1.
* ``trainable_params_regex`` (default ".*") is for the training loop's optimizer (``trainable_parameters``);
  the WMDP original trained only ``model\\.layers\\.(5|6|7)\\.mlp\\.down_proj\\.weight``.

``layer`` may be negative (-1 = last). A layer outside the model raises ConfigError naming the model's
layer count; ``clamp_layer=True`` instead uses the nearest existing layer (with a warning), for tiny models.

    out = build_method("RMU", layer=7, steering_coeff=2.0).loss(model, batch, ref_model=ref)
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

import torch
from torch import Tensor, nn

from unlearning.errors import ConfigError
from unlearning.methods.base import bare_module, IGNORE_INDEX, ForgetTerms, Method, check_positive, inputs_of, logits_of

_LAYER_PATHS = ("model.layers", "layers", "model.model.layers", "transformer.h", "gpt_neox.layers",
                "model.decoder.layers")


@dataclass
class RMUConfig:
    """layer=7 (decoder block whose output is steered), steering_coeff=2.0, seed=0 (control vector),
    clamp_layer=False, trainable_params_regex=".*", gamma=1, alpha=1, retain_loss_type="EMBED_DIFF",
    faithful_broadcast=False (True = OU's [B]/[B,1] broadcast, mean(s)*mean(1/n); see the module doc)."""

    layer: int = 7
    steering_coeff: float = 2.0
    seed: int = 0
    clamp_layer: bool = False
    trainable_params_regex: str = ".*"
    gamma: float = 1.0
    alpha: float = 1.0
    retain_loss_type: str = "EMBED_DIFF"
    faithful_broadcast: bool = False



def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The model's list of decoder blocks (Llama/Qwen/Mistral ``model.layers``, GPT-2 ``transformer.h``...)."""
    root = bare_module(model)
    for path in _LAYER_PATHS:
        obj: Any = root
        for part in path.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                break
        if isinstance(obj, nn.ModuleList):
            return obj
    raise ConfigError("RMU", field="model", value=type(root).__name__,
                      fix=f"RMU needs a decoder-layer list at one of {list(_LAYER_PATHS)}")


def resolve_layer(n_layers: int, layer: int, clamp: bool) -> int:
    """Index into a list of ``n_layers`` blocks; ConfigError (or clamping) when out of range."""
    if -n_layers <= layer < n_layers:
        return layer % n_layers
    if not clamp:
        raise ConfigError("RMU", field="layer", value=layer,
                          fix=f"the model has {n_layers} decoder layers: use a layer in "
                              f"[{-n_layers}, {n_layers - 1}] (or clamp_layer=true)")
    clamped = n_layers - 1 if layer >= n_layers else 0
    warnings.warn(f"RMU: layer {layer} is outside the model's {n_layers} layers; using layer {clamped}",
                  stacklevel=3)
    return clamped


def layer_hidden(model: nn.Module, inputs: Mapping[str, Tensor], layer: int,
                      clamp: bool = False) -> Tensor:
    """Output hidden states ``[B, T, d]`` of decoder block ``layer`` for one forward pass."""
    blocks = decoder_layers(model)
    block = blocks[resolve_layer(len(blocks), layer, clamp)]
    cache: list[Tensor] = []

    def hook(_module: nn.Module, _inp: Any, out: Any) -> None:
        cache.append(out[0] if isinstance(out, (tuple, list)) else out)

    handle = block.register_forward_hook(hook)
    try:
        logits_of(model, inputs)
    finally:
        handle.remove()
    return cache[0]


def activation_losses(a: Tensor, b: Tensor, labels: Tensor, faithful_broadcast: bool = False) -> Tensor:
    """``[B]``: sum over answer tokens of mean_d (a-b)^2, over the answer-token count (clamped at 1).

    ``faithful_broadcast``: over the batch mean of 1/count instead (OU's broadcast; mean = mean(s)*mean(1/n))."""
    mask = (labels != IGNORE_INDEX).to(torch.float32)
    per_token = (a.float() - b.float()).pow(2).mean(-1)
    sums, counts = (per_token * mask).sum(-1), mask.sum(-1).clamp(min=1)
    if faithful_broadcast:
        return sums * (1.0 / counts).mean()
    return sums / counts


def control_vector(dim: int, steering_coeff: float, seed: int) -> Tensor:
    """c = s * u/||u||, u ~ U[0,1)^dim from ``torch.Generator().manual_seed(seed)`` (CPU, float32)."""
    u = torch.rand(dim, generator=torch.Generator().manual_seed(seed))
    return steering_coeff * u / u.norm()


class RMU(Method):
    """Representation misdirection for unlearning."""

    name = "RMU"
    config_cls = RMUConfig
    unit = "sample"
    retain_loss_types = ("EMBED_DIFF", "NLL", "KL")

    def __init__(self, config: RMUConfig | None = None) -> None:
        super().__init__(config)
        self._control: Tensor | None = None

    def validate(self) -> None:
        super().validate()
        cfg = self.config
        if not isinstance(cfg.layer, int) or isinstance(cfg.layer, bool):
            raise ConfigError(self.name, field="layer", value=cfg.layer, fix="use an integer layer index")
        check_positive(self.name, "steering_coeff", cfg.steering_coeff)
        if not isinstance(cfg.seed, int) or isinstance(cfg.seed, bool):
            raise ConfigError(self.name, field="seed", value=cfg.seed, fix="use an integer seed")
        if not isinstance(cfg.faithful_broadcast, bool):
            raise ConfigError(self.name, field="faithful_broadcast", value=cfg.faithful_broadcast,
                              fix="use true or false")
        try:
            re.compile(cfg.trainable_params_regex)
        except (re.error, TypeError) as exc:
            raise ConfigError(self.name, field="trainable_params_regex", value=cfg.trainable_params_regex,
                              fix=f"give a valid regular expression ({exc})") from None

    @property
    def needs_ref_model(self) -> bool:
        return self.alpha != 0 and self.retain_loss_type in ("EMBED_DIFF", "KL")

    def control(self, dim: int) -> Tensor:
        """The (cached) control vector for hidden size ``dim``."""
        if self._control is None or self._control.shape[0] != dim:
            self._control = control_vector(dim, self.config.steering_coeff, self.config.seed)
        return self._control

    def trainable_parameters(self, model: nn.Module) -> Iterator[tuple[str, nn.Parameter]]:
        """(name, parameter) pairs whose name fully matches ``trainable_params_regex``."""
        pattern = re.compile(self.config.trainable_params_regex)
        return ((n, p) for n, p in bare_module(model).named_parameters() if pattern.fullmatch(n))

    def _hidden(self, model: nn.Module, inputs: Mapping[str, Tensor]) -> Tensor:
        return layer_hidden(model, inputs, self.config.layer, self.config.clamp_layer)

    def forget_terms(self, model: nn.Module, batch: Mapping[str, Any], ref_model: nn.Module | None = None):
        forget = inputs_of(batch, "forget")
        h = self._hidden(model, forget)
        c = self.control(h.shape[-1]).to(device=h.device, dtype=h.dtype)
        return ForgetTerms(activation_losses(h, c.expand_as(h), forget["labels"], self.config.faithful_broadcast),
                           "sample")

    def retain_loss(self, model: nn.Module, retain: Mapping[str, Tensor],
                    ref_model: nn.Module | None = None) -> Tensor:
        if self.retain_loss_type != "EMBED_DIFF":
            return super().retain_loss(model, retain, ref_model)
        if ref_model is None:
            raise ConfigError(self.name, field="ref_model", value=None,
                              fix="retain_loss_type='EMBED_DIFF' needs a live frozen ref_model")
        h = self._hidden(model, retain)
        with torch.no_grad():
            h_ref = self._hidden(ref_model, retain).detach()
        return activation_losses(h, h_ref.to(h.device), retain["labels"], self.config.faithful_broadcast).mean()
