"""T3, classifier-guided decoding (open-unlearning ``src/trainer/unlearn/t3.py`` + ``src/model/t3.py``).

T3 does not change the language model: it freezes it and trains a small guidance head that tells retain text
from forget text, token by token; the unlearned model is the frozen LM whose next-token log-probabilities are
shifted by the head's log-sigmoid scores.

* Features: s_t = the mean of the final (post-norm) hidden states over the attended positions <= t (causal
  masked mean pooling, the reference's ``pooling="mean"``; prompt tokens count, padding does not).
* Head (``DataSplitClassifier``): Linear(d, head_hidden_size) -> activation (``head_activation``: id | relu |
  gelu | tanh) -> (``head_layers`` - 1) x [Linear(hidden, hidden) -> activation] -> Linear(hidden, V, no bias);
  ``head_bias`` on the hidden Linears only. c_t = head(s_t) in R^V.
* Training loss of a micro-batch: at every scored position t (shifted label y = labels[t+1] != -100) of the
  retain part (target 1) and of the forget part (target 0), BCE-with-logits(c_t[y], target); the sum over both
  parts divided by the number of scored positions (the reference's ``loss_sum / total_valid``). Only the head
  is trained (the base is frozen: ``requires_grad`` off, eval mode).
* Inference: logits' = log_softmax(z)/base_temp + guidance_scale * logsigmoid(c_t) (the reference's
  ``_guide_logits``); scoring renormalises them. :class:`T3Model` computes them for plain, packed (4D masks:
  the pooled mean is taken over the positions each query attends to) and KV-cached forwards (running sums kept
  in the cache, rows selected with it).

The run's model is the :class:`T3Model` (``prepare_model``, called by ``run_train``): the loop trains its head,
the evaluator decodes through it, ``save_pretrained`` writes the base model plus ``t3_head.pt`` (read back by
:func:`load_t3`). Not reproduced: ``pooling="attn"`` and ``extraction_layer != -1`` (the reference refuses them
too); the reference's sampling generation (the evaluator decodes greedily). Scope: the head is called outside
the engine's forward, so ZeRO-3 (partitioned weights) is refused. Defaults (reference T3.yaml): guidance_scale 1,
base_temp 1, pooling mean, pool_temp null, extraction_layer -1 (the only values accepted, as in the reference),
head_hidden_size 100, head_layers 1, head_activation id, head_bias false (its trainer args: lr 5e-2,
weight_decay 0, 1 epoch, batch 1). BalDRO cannot wrap T3 (its loss is a classifier's, not a forget loss).

    method = build_method("T3")
    model = method.prepare_model(model)           # frozen LM + head; method.loss(model, batch) trains the head
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from unlearning.errors import ConfigError
from unlearning.methods.base import (IGNORE_INDEX, LossOutput, Method, check_choice, check_positive, inputs_of)

ACTIVATIONS = {"id": nn.Identity, "relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}
HEAD_FILE = "t3_head.pt"


@dataclass
class T3Config:
    """guidance_scale=1.0, base_temp=1.0, head_hidden_size=100, head_layers=1, head_activation="id",
    head_bias=False, seed=0 (the head's initialisation); the reference's pooling="mean", pool_temp=None and
    extraction_layer=-1 (the only values its T3 trains with: ``T3CausalLM.pooling_fn_dict`` holds mean alone,
    pool_temp is stored but read by no pooling it has, and its classifier-only training refuses any
    extraction_layer but -1; open-unlearning src/model/t3.py @ b78505f4)."""

    guidance_scale: float = 1.0
    base_temp: float = 1.0
    head_hidden_size: int = 100
    head_layers: int = 1
    head_activation: str = "id"
    head_bias: bool = False
    seed: int = 0
    pooling: str = "mean"
    pool_temp: float | None = None
    extraction_layer: int = -1


def guidance_head(dim: int, vocab: int, hidden: int, layers: int, activation: str, bias: bool) -> nn.Sequential:
    """The reference's DataSplitClassifier stack (its ``proj``)."""
    act = ACTIVATIONS[activation]
    mods: list[nn.Module] = [nn.Linear(dim, hidden, bias=bias), act()]
    for _ in range(layers - 1):
        mods += [nn.Linear(hidden, hidden, bias=bias), act()]
    mods.append(nn.Linear(hidden, vocab, bias=False))
    return nn.Sequential(*mods)


def mean_pool(hidden: Tensor, attention_mask: Tensor | None) -> Tensor:
    """Causal masked mean of ``hidden`` [B, T, d]: position t averages the positions its query attends to.

    2D mask [B, T] (or None): the positions <= t with mask 1 (0 where there is none yet). 4D additive mask
    [B, 1, T, T] (packed rows): the keys with mask 0."""
    if attention_mask is None or attention_mask.dim() == 2:
        if attention_mask is None:
            attention_mask = torch.ones(hidden.shape[:2], device=hidden.device)
        m = attention_mask.to(device=hidden.device, dtype=hidden.dtype).unsqueeze(-1)
        return (hidden * m).cumsum(dim=1) / m.cumsum(dim=1).clamp_min(1)
    allowed = (attention_mask[:, 0] == 0).to(hidden.dtype)
    return allowed @ hidden / allowed.sum(-1, keepdim=True).clamp_min(1)


def guide_logits(base_logits: Tensor, head_logits: Tensor, guidance_scale: float, base_temp: float) -> Tensor:
    """log_softmax(z)/base_temp + guidance_scale * logsigmoid(c)."""
    return F.log_softmax(base_logits, dim=-1) / base_temp + guidance_scale * F.logsigmoid(head_logits)


def target_logits(head: nn.Sequential, pooled: Tensor, targets: Tensor) -> Tensor:
    """c_t[y_t] for every position without the [.., V] product: the last Linear's row of each target."""
    x = pooled
    for layer in head[:-1]:
        x = layer(x)
    return (x * head[-1].weight[targets]).sum(-1)


class T3Model(nn.Module):
    """A frozen causal LM plus a guidance head; ``forward`` returns the guided logits (see the module doc)."""

    def __init__(self, base: nn.Module, head: nn.Sequential, guidance_scale: float, base_temp: float) -> None:
        super().__init__()
        self.base, self.head = base, head
        self.guidance_scale, self.base_temp = float(guidance_scale), float(base_temp)
        for p in self.base.parameters():
            p.requires_grad_(False)
        self.base.eval()

    @property
    def config(self) -> Any:
        return self.base.config

    @property
    def generation_config(self) -> Any:
        return getattr(self.base, "generation_config", None)

    def train(self, mode: bool = True) -> "T3Model":
        super().train(mode)
        self.base.eval()  # the base always stays in eval mode, as the reference's
        return self

    def final_hidden(self, **kwargs: Any) -> tuple[Any, Tensor]:
        out = self.base(output_hidden_states=True, **kwargs)
        return out, out.hidden_states[-1]

    def head_target_logits(self, inputs: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
        """(c_t[y_t] [B, T-1], scored mask [B, T-1]) for one batch part; the base runs without gradients."""
        with torch.no_grad():
            _, hidden = self.final_hidden(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
        pooled = mean_pool(hidden.detach(), inputs["attention_mask"])[:, :-1]
        shifted = inputs["labels"][:, 1:]
        scored = shifted != IGNORE_INDEX
        return target_logits(self.head, pooled, shifted.masked_fill(~scored, 0)), scored

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None, past_key_values: Any = None,
                use_cache: bool = False, **kwargs: Any) -> Any:
        from transformers.modeling_outputs import CausalLMOutputWithPast

        kwargs.pop("labels", None)
        if use_cache and past_key_values is None:
            from transformers import DynamicCache

            past_key_values = _T3Cache(DynamicCache(config=self.base.config))
        cache = past_key_values if isinstance(past_key_values, _T3Cache) else None
        out, hidden = self.final_hidden(input_ids=input_ids, attention_mask=attention_mask,
                                        past_key_values=cache.inner if cache is not None else past_key_values,
                                        use_cache=use_cache, **kwargs)
        if cache is not None:
            pooled = cache.pool(hidden, attention_mask[:, -hidden.shape[1]:] if attention_mask is not None else None)
        else:
            pooled = mean_pool(hidden, attention_mask)
        logits = guide_logits(out.logits, self.head(pooled), self.guidance_scale, self.base_temp)
        return CausalLMOutputWithPast(logits=logits, past_key_values=cache if cache is not None else None)

    def save_pretrained(self, path: str | Path, **kwargs: Any) -> None:
        """The base model as HF writes it, plus ``t3_head.pt`` (head weights and the guidance settings)."""
        self.base.save_pretrained(path, **kwargs)
        torch.save({"head": self.head.state_dict(), "guidance_scale": self.guidance_scale,
                    "base_temp": self.base_temp, "layers": len(self.head) // 2,
                    "hidden": self.head[0].out_features, "bias": self.head[0].bias is not None,
                    "activation": next(k for k, v in ACTIVATIONS.items() if isinstance(self.head[1], v))},
                   Path(path) / HEAD_FILE)


class _T3Cache:
    """The base model's KV cache plus the running (sum, count) of the pooled hidden states per row."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.sums, self.counts = inner, None, None

    def pool(self, hidden: Tensor, step_mask: Tensor | None) -> Tensor:
        m = (torch.ones(hidden.shape[:2], device=hidden.device) if step_mask is None else step_mask)
        m = m.to(device=hidden.device, dtype=hidden.dtype).unsqueeze(-1)
        sums, counts = (hidden * m).cumsum(1), m.cumsum(1)
        if self.sums is not None:
            sums, counts = sums + self.sums[:, None], counts + self.counts[:, None]
        self.sums, self.counts = sums[:, -1], counts[:, -1]
        return sums / counts.clamp_min(1)

    def batch_select_indices(self, indices: Tensor) -> None:
        self.inner.batch_select_indices(indices)
        self.sums, self.counts = self.sums[indices], self.counts[indices]

    def get_seq_length(self, *args: Any) -> int:
        return self.inner.get_seq_length(*args)


def load_t3(path: str | Path, base: nn.Module) -> T3Model:
    """The T3 model saved by :meth:`T3Model.save_pretrained` around ``base`` (loaded from the same folder)."""
    state = torch.load(Path(path) / HEAD_FILE, map_location="cpu", weights_only=False)
    head = guidance_head(base.config.hidden_size, base.config.vocab_size, state["hidden"], state["layers"],
                         state["activation"], state["bias"])
    head.load_state_dict(state["head"])
    p = next(base.parameters())
    return T3Model(base, head.to(device=p.device, dtype=p.dtype), state["guidance_scale"], state["base_temp"])


def _unwrap(model: Any) -> Any:
    while not isinstance(model, T3Model) and isinstance(getattr(model, "module", None), nn.Module):
        model = model.module
    return model


class T3(Method):
    """Train a retain-vs-forget guidance head on a frozen LM; decode with the guided logits."""

    name = "T3"
    config_cls = T3Config
    unit = "token"
    wrappable = False

    def validate(self) -> None:
        super().validate()
        cfg = self.config
        check_positive(self.name, "base_temp", cfg.base_temp)
        if not isinstance(cfg.guidance_scale, (int, float)) or isinstance(cfg.guidance_scale, bool) \
                or not cfg.guidance_scale >= 0 or cfg.guidance_scale == float("inf"):
            raise ConfigError(self.name, field="guidance_scale", value=cfg.guidance_scale,
                              fix="use a finite number >= 0 (0 decodes with the base model alone)")
        for key in ("head_hidden_size", "head_layers", "seed"):
            value = getattr(cfg, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < (0 if key == "seed" else 1):
                raise ConfigError(self.name, field=key, value=value,
                                  fix=f"use an integer >= {0 if key == 'seed' else 1}")
        check_choice(self.name, "head_activation", cfg.head_activation, tuple(ACTIVATIONS))
        if cfg.head_layers > 1 and cfg.head_activation == "id":
            raise ConfigError(self.name, field="head_layers", value=cfg.head_layers,
                              fix="more than one hidden layer needs a non-identity head_activation (relu, gelu, tanh)")
        if not isinstance(cfg.head_bias, bool):
            raise ConfigError(self.name, field="head_bias", value=cfg.head_bias, fix="use true or false")
        if cfg.pooling != "mean":
            raise ConfigError(self.name, field="pooling", value=cfg.pooling,
                              fix="use mean: the reference T3 implements mean pooling only (src/model/t3.py)")
        if cfg.pool_temp is not None:
            check_positive(self.name, "pool_temp", cfg.pool_temp)  # kept, as the reference keeps it: no effect
        if cfg.extraction_layer != -1 or isinstance(cfg.extraction_layer, bool):
            raise ConfigError(self.name, field="extraction_layer", value=cfg.extraction_layer,
                              fix="use -1 (the final hidden states): the reference's head training refuses other "
                                  "layers")

    @property
    def needs_ref_model(self) -> bool:
        return False

    def prepare_model(self, model: nn.Module, data: Any = None, tokenizer: Any = None) -> T3Model:
        """Freeze ``model`` and wrap it with a new guidance head (initialised from ``seed``)."""
        if isinstance(model, T3Model):
            return model
        cfg, p = self.config, next(model.parameters())
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            head = guidance_head(model.config.hidden_size, model.config.vocab_size, cfg.head_hidden_size,
                                 cfg.head_layers, cfg.head_activation, cfg.head_bias)
        return T3Model(model, head.to(device=p.device, dtype=p.dtype), cfg.guidance_scale, cfg.base_temp)

    def loss(self, model: nn.Module, batch: Mapping[str, Any], ref_model: nn.Module | None = None) -> LossOutput:
        if getattr(model, "zero_stage", 0) == 3:
            raise ConfigError(self.name, field="train.zero_stage", value=3,
                              fix="T3 calls its head outside the engine's forward: use zero_stage 0-2 or engine torch")
        t3 = _unwrap(model)
        if not isinstance(t3, T3Model):
            raise ConfigError(self.name, field="model", value=type(t3).__name__,
                              fix="wrap the model first: model = method.prepare_model(model) (run_train does)")
        sums, counts, per_part = [], [], {}
        for part, target in (("retain", 1.0), ("forget", 0.0)):
            logits, scored = t3.head_target_logits(inputs_of(batch, part))
            x = logits[scored]
            bce = F.binary_cross_entropy_with_logits(x, torch.full_like(x, target), reduction="none")
            sums.append(bce.sum())
            counts.append(scored.sum())
            per_part[part] = bce
        total = (sums[0] + sums[1]) / (counts[0] + counts[1]).clamp_min(1)
        forget = per_part["forget"].mean() if per_part["forget"].numel() else total.new_zeros(())
        retain = per_part["retain"].mean() if per_part["retain"].numel() else total.new_zeros(())
        return LossOutput(total, forget.detach(), retain.detach(), per_part["forget"].detach(), "token")
