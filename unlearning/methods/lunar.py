"""LUNAR, unlearning by neural activation redirection (open-unlearning ``src/trainer/unlearn/lunar.py``, after
facebookresearch/LUNAR ``run_lunar.py``).

LUNAR is not a loss on the language model's outputs: it re-fits the MLP down-projection of chosen layers by
least squares on activations, so that forget text is mapped to activations shifted along a "refusal" direction
while everything else keeps its original MLP output. Only ``layers.{l}.mlp.down_proj.weight`` trains.

* Direction (once, before training; ``prepare_model``): per layer l, the mean over the refusal prompts minus
  the mean over the forget prompts of the input of decoder block l+1 (= the output of block l) at the last
  token (block l itself when l is the last layer, with a warning: the reference's out-of-range fallback).
* Regression data, per token of a sequence (every attended token of the forget and retain rows), computed with
  the **original** model (the frozen reference copy): x = the input of down_proj, target = (block output +
  coeff_l * direction_l on forget tokens) - (the input of ``post_attention_layernorm``), i.e. the original MLP
  output, shifted on forget tokens.
* Loss of a micro-batch: sum over the layers of the mean squared error of x W_l^T against the target over the
  forget and retain tokens of the micro-batch together (the reference's ``MSELoss`` on a batch that mixes them),
  W_l = the model's own down_proj weight being trained (initialised, as the reference's estimated net, from the
  original weight). ``forget_loss`` / ``retain_loss`` report the same error on each part alone.

How the regression is fitted (``fit``):
* ``reference`` (default; locuslab/open-unlearning pull request #171, ``lunar.py`` / ``Lunar.yaml`` @ a2550b5):
  the reference's own procedure (``unlearning/methods/lunar_fit.py``): the token vectors of the **whole** forget
  and retain sets (one row per forward), a separate copy of each down_proj fitted with AdamW(``fit_lr`` 1e-3,
  torch's weight decay 0.01) and ExponentialLR(0.9 per epoch) for ``fit_epochs`` 100 epochs over shuffled batches
  of ``fit_batch_size`` 64 vectors, then copied into the model. The loop runs it as its first optimizer step (one
  micro-batch per epoch, ``micro_batches`` hook; the loss handed back has no gradient, so set ``weight_decay: 0``,
  as the preset does, or AdamW's decoupled decay nudges the weights); evaluation at epoch 0 sees the original
  model, at epoch 1 the fitted one; later epochs change nothing (run ``epochs: 1``). The reference's names
  ``lr``, ``num_epochs``, ``batch_size`` (method arguments there) are accepted for fit_lr, fit_epochs,
  fit_batch_size under ``method.hparams``.
* ``loop``: the project's former form: the loop's micro-batches (one retain row per forget row) feed the same
  regression to the model's own weights with the loop's AdamW and schedule (``lr``, ``epochs``, ``batch_size``,
  ``weight_decay``), activations from the frozen reference copy (``needs_ref_model``).

Other differences: the reference's refusal prompts are ``<data_path>/splits/harmful.json`` (``unverified.json``
with ``use_unverified``), instructions the chat model refuses, from the LUNAR authors' data, which open-unlearning
does not ship (its ``data_path`` default is a local folder): ``direction_prompts`` is a path to such a file (JSON list
of strings or of objects with instruction / question / text / prompt, JSONL, or text lines; a folder is read as the
reference's ``data_path``: ``<folder>/splits/harmful.json``), or ``idk`` (default): the project's 99 "I don't know"
sentences (``idk_answers.txt``), which small zoo models can represent; the forget side of the direction uses each
forget row's prompt as the model reads it (chat template included), where the reference tokenises the raw
question; prompts are left-padded in batches of 32 with matching position ids (the reference right-pads, so its
last position is padding for the shorter prompts of a batch).

Defaults (reference Lunar.yaml): layers [7] (``layer_idx_list``), coeffs [2.0] (``coeff_list``; a shorter list is
padded with 2.0, as the reference), fit reference with fit_lr 1e-3, fit_epochs 100, fit_batch_size 64. A layer
outside the model is a ConfigError naming its layer count (``clamp_layer: true`` uses the nearest one). Llama-style
blocks (``mlp.down_proj``, ``post_attention_layernorm``) only; not ZeRO-3. BalDRO cannot wrap LUNAR.

    method = build_method("LUNAR", layers=[1], coeffs=[2.0])
    method.prepare_model(model, data, tokenizer)          # the direction (run_train calls it)
    out = method.loss(model, batch)                       # fit reference: the whole fit, in place, once
    out = build_method("LUNAR", fit="loop").loss(model, batch, ref_model=frozen_copy_of_the_original)
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import torch
from torch import Tensor, nn

from unlearning.errors import ConfigError, DataError
from unlearning.methods.base import bare_module, IGNORE_INDEX, LossOutput, Method, check_choice, check_positive, inputs_of
from unlearning.methods.idk_answers import load_idk_answers
from unlearning.methods.lunar_fit import mlp_activations
from unlearning.methods.rmu import decoder_layers

DEFAULT_COEFF = 2.0
PROMPT_KEYS = ("instruction", "question", "text", "prompt")
FITS = ("reference", "loop")
HARMFUL_FILE = ("splits", "harmful.json")   # the reference's <data_path>/splits/harmful.json


@dataclass
class LUNARConfig:
    """layers=[7] (decoder blocks whose down_proj is re-fitted; an int = one layer), coeffs=[2.0] (one per layer,
    padded with 2.0; a number = the same for every layer), direction_prompts="idk" (or a path to refusal
    prompts, or the reference's data_path folder), clamp_layer=False, fit="reference" (or "loop"), fit_lr=1e-3,
    fit_epochs=100, fit_batch_size=64 (the reference fit's settings)."""

    layers: list = field(default_factory=lambda: [7])
    coeffs: list = field(default_factory=lambda: [DEFAULT_COEFF])
    direction_prompts: str = "idk"
    clamp_layer: bool = False
    fit: str = "reference"
    fit_lr: float = 1e-3
    fit_epochs: int = 100
    fit_batch_size: int = 64



def load_prompts(spec: str) -> list[str]:
    """The refusal prompts: ``idk`` = the project's IDK sentences, else a JSON / JSONL / text file."""
    if spec == "idk":
        return load_idk_answers()
    path = Path(spec)
    if path.is_dir() and path.joinpath(*HARMFUL_FILE).is_file():
        path = path.joinpath(*HARMFUL_FILE)     # the reference's data_path layout
    if not path.is_file():
        raise DataError("LUNAR", field="direction_prompts", value=spec,
                        fix="give a JSON/JSONL/text file of refusal-eliciting prompts, the reference's data_path "
                            "folder (holding splits/harmful.json), or 'idk'")
    text = path.read_text()
    if path.suffix == ".json":
        rows = json.loads(text)
    elif path.suffix == ".jsonl":
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    else:
        rows = [line.strip() for line in text.splitlines() if line.strip()]
    prompts = [r if isinstance(r, str) else next((r[k] for k in PROMPT_KEYS if isinstance(r.get(k), str)), None)
               for r in (rows if isinstance(rows, list) else [])]
    if not prompts or any(p is None for p in prompts):
        raise DataError("LUNAR", field="direction_prompts", value=spec,
                        fix=f"the file must hold a list of strings or of objects with one of {list(PROMPT_KEYS)}")
    return prompts


def last_token_means(model: nn.Module, prompts: Sequence[Sequence[int]], blocks: Sequence[int], pad_id: int,
                     batch_size: int = 32) -> Tensor:
    """[len(blocks), d]: the mean over ``prompts`` of each block's input at the prompt's last token
    (left-padded batches, position ids from the mask, no gradients)."""
    layers = decoder_layers(model)
    device = next(model.parameters()).device
    sums: list[Tensor] = [torch.zeros(0)] * len(blocks)
    captured: dict[int, Tensor] = {}
    handles = [layers[b].register_forward_pre_hook(
        lambda _m, args, kwargs=None, i=i: captured.__setitem__(i, (args[0] if args else kwargs["hidden_states"])[:, -1]),
        with_kwargs=True) for i, b in enumerate(blocks)]
    try:
        with torch.no_grad():
            for start in range(0, len(prompts), batch_size):
                chunk = [list(p) for p in prompts[start:start + batch_size]]
                width = max(len(p) for p in chunk)
                ids = torch.tensor([[pad_id] * (width - len(p)) + p for p in chunk], device=device)
                mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in chunk], device=device)
                model(input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp(min=0))
                for i in range(len(blocks)):
                    total = captured[i].float().sum(0)
                    sums[i] = total if start == 0 else sums[i] + total
    finally:
        for h in handles:
            h.remove()
    return torch.stack(sums) / len(prompts)


def forget_prompt_ids(rows: Sequence[Mapping[str, Sequence[int]]]) -> list[list[int]]:
    """Each row's prompt: its tokens before the first labelled one."""
    out = []
    for row in rows:
        labels = list(row["labels"])
        first = next((i for i, v in enumerate(labels) if v != IGNORE_INDEX), len(labels))
        out.append(list(row["input_ids"])[:first])
    return out


class LUNAR(Method):
    """Re-fit chosen down-projections so that forget activations move along a refusal direction."""

    name = "LUNAR"
    config_cls = LUNARConfig
    unit = "token"
    wrappable = False

    def __init__(self, config: LUNARConfig | None = None) -> None:
        super().__init__(config)
        self.resolved: list[int] | None = None
        self.directions: Tensor | None = None
        self.rows: tuple[Sequence[Any], Sequence[Any]] | None = None   # (forget, retain) rows for the reference fit
        self.fitted = False
        self.fit_losses: list[float] = []

    def validate(self) -> None:
        super().validate()
        cfg = self.config
        if isinstance(cfg.layers, int) and not isinstance(cfg.layers, bool):
            cfg.layers = [cfg.layers]  # one layer (a search space samples scalars)
        if isinstance(cfg.coeffs, (int, float)) and not isinstance(cfg.coeffs, bool):
            cfg.coeffs = [float(cfg.coeffs)] * (len(cfg.layers) if isinstance(cfg.layers, list) else 1)
        if not isinstance(cfg.layers, (list, tuple)) or not cfg.layers or \
                any(not isinstance(v, int) or isinstance(v, bool) for v in cfg.layers) or len(set(cfg.layers)) < len(cfg.layers):
            raise ConfigError(self.name, field="layers", value=cfg.layers, fix="give a non-empty list of distinct layer indices, e.g. [7]")
        if not isinstance(cfg.coeffs, (list, tuple)) or len(cfg.coeffs) > len(cfg.layers) or \
                any(not isinstance(v, (int, float)) or isinstance(v, bool) or v != v or abs(v) == float("inf")
                    for v in cfg.coeffs):
            raise ConfigError(self.name, field="coeffs", value=cfg.coeffs,
                              fix="give at most one finite coefficient per layer (missing ones are 2.0)")
        if not isinstance(cfg.direction_prompts, str) or not cfg.direction_prompts:
            raise ConfigError(self.name, field="direction_prompts", value=cfg.direction_prompts,
                              fix="use 'idk' or a path to a file of refusal prompts")
        if not isinstance(cfg.clamp_layer, bool):
            raise ConfigError(self.name, field="clamp_layer", value=cfg.clamp_layer, fix="use true or false")
        check_choice(self.name, "fit", cfg.fit, FITS)
        check_positive(self.name, "fit_lr", cfg.fit_lr)
        for key in ("fit_epochs", "fit_batch_size"):
            value = getattr(cfg, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(self.name, field=key, value=value, fix="use an integer >= 1")

    @property
    def coeff_list(self) -> list[float]:
        c = [float(v) for v in self.config.coeffs]
        return c + [DEFAULT_COEFF] * (len(self.config.layers) - len(c))

    @property
    def needs_ref_model(self) -> bool:
        return self.config.fit == "loop"  # its regression's inputs and targets come from the original model

    def micro_batches(self, data: Any, epoch: int, rank: int, world: int, batch_size: int) -> list[list[int]] | None:
        """fit reference: one micro-batch per epoch (the fit runs in the first step); loop: the data's order."""
        return [[0]] if self.config.fit == "reference" else None

    def state_dict(self) -> dict[str, Any]:
        return {"fitted": self.fitted}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.fitted = bool(state.get("fitted", False))

    def resolve_layers(self, model: nn.Module) -> list[int]:
        n = len(decoder_layers(model))
        out = []
        for layer in self.config.layers:
            if -n <= layer < n:
                out.append(layer % n)
            elif self.config.clamp_layer:
                out.append(n - 1 if layer >= n else 0)
                warnings.warn(f"LUNAR: layer {layer} is outside the model's {n} layers; using {out[-1]}", stacklevel=2)
            else:
                raise ConfigError(self.name, field="layers", value=self.config.layers,
                                  fix=f"the model has {n} decoder layers: use indices in [{-n}, {n - 1}] "
                                      "(or clamp_layer: true)")
        block = decoder_layers(model)[out[0]]
        if not hasattr(getattr(block, "mlp", None), "down_proj") or not hasattr(block, "post_attention_layernorm"):
            raise ConfigError(self.name, field="model", value=type(bare_module(model)).__name__,
                              fix="LUNAR needs Llama-style blocks with mlp.down_proj and post_attention_layernorm")
        if len(set(out)) < len(out):
            raise ConfigError(self.name, field="layers", value=self.config.layers, fix="the layers resolve to the same block")
        return out

    def trainable_parameters(self, model: nn.Module) -> Iterator[tuple[str, nn.Parameter]]:
        """Only the chosen blocks' ``mlp.down_proj.weight``."""
        wanted = {id(decoder_layers(model)[l].mlp.down_proj.weight) for l in self.resolve_layers(model)}
        return ((n, p) for n, p in bare_module(model).named_parameters() if id(p) in wanted)

    def prepare_model(self, model: nn.Module, data: Any, tokenizer: Any) -> nn.Module:
        """Compute the refusal directions with the (original) model; returns it unchanged."""
        layers = self.resolve_layers(model)
        n = len(decoder_layers(model))
        blocks = []
        for layer in layers:
            if layer + 1 >= n:
                warnings.warn(f"LUNAR: layer {layer} is the last one; its direction is read at its own input "
                              "(the reference's fallback)", stacklevel=2)
            blocks.append(min(layer + 1, n - 1))
        refusal = [tokenizer(text, truncation=True, max_length=512)["input_ids"] for text in
                   load_prompts(self.config.direction_prompts)]
        forget = [p for p in forget_prompt_ids(data.forget) if p]
        if not forget:
            raise DataError("LUNAR", field="forget", value=0, fix="the forget rows have no prompt tokens")
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        was_training = model.training
        model.eval()
        self.set_directions(last_token_means(model, refusal, blocks, pad) - last_token_means(model, forget, blocks, pad),
                            layers)
        model.train(was_training)
        self.rows = (list(data.forget), list(getattr(data, "retain", [])))
        return model

    def set_directions(self, directions: Tensor, layers: list[int]) -> None:
        """``directions`` [len(layers), d] (float32), for the resolved ``layers``."""
        self.directions, self.resolved = directions.float(), list(layers)

    def loss(self, model: nn.Module, batch: Mapping[str, Any], ref_model: nn.Module | None = None) -> LossOutput:
        if self.directions is None or self.resolved is None:
            raise ConfigError(self.name, field="direction", value=None,
                              fix="compute it first: method.prepare_model(model, data, tokenizer) (run_train does)")
        if getattr(model, "zero_stage", 0) == 3:
            raise ConfigError(self.name, field="train.zero_stage", value=3, fix="use zero_stage 0-2 or engine torch")
        if self.config.fit == "reference":
            return self._reference_fit(model)
        if ref_model is None:
            raise ConfigError(self.name, field="ref_model", value=None, fix="pass a frozen copy of the original model")
        forget_in, retain_in = inputs_of(batch, "forget"), inputs_of(batch, "retain")
        acts_f = mlp_activations(ref_model, forget_in, self.resolved)
        acts_r = mlp_activations(ref_model, retain_in, self.resolved)
        blocks = decoder_layers(model)
        total, parts = None, {"forget": [], "retain": []}
        for i, layer in enumerate(self.resolved):
            weight = blocks[layer].mlp.down_proj.weight
            (xf, of, mf), (xr, orr, mr) = acts_f[i], acts_r[i]
            shift = (self.coeff_list[i] * self.directions[i]).to(device=of.device, dtype=of.dtype)
            target = torch.cat([(of + shift) - mf, orr - mr])
            x = torch.cat([xf, xr]).to(weight.device)
            err = (nn.functional.linear(x, weight) - target.to(weight.device)).pow(2)
            term = err.mean()
            total = term if total is None else total + term
            parts["forget"].append(err[: xf.shape[0]].mean().detach())
            parts["retain"].append(err[xf.shape[0]:].mean().detach())
        per_token = torch.stack(parts["forget"]).sum()
        return LossOutput(total, per_token, torch.stack(parts["retain"]).sum(), per_token.reshape(1), "sample")

    def _reference_fit(self, model: nn.Module) -> LossOutput:
        """The reference's whole fit on the first call (lunar_fit.py), weights copied in; a no-op afterwards."""
        from unlearning.methods.lunar_fit import fit_down_proj, regression_data

        cfg = self.config
        weights = [decoder_layers(model)[l].mlp.down_proj.weight for l in self.resolved]
        if not self.fitted:
            if self.rows is None:
                raise ConfigError(self.name, field="data", value=None,
                                  fix="compute the direction first: method.prepare_model(model, data, tokenizer)")
            xs, ys = regression_data(bare_module(model), self.rows[0], self.rows[1], self.resolved, self.directions,
                                     self.coeff_list)
            fitted, self.fit_losses = fit_down_proj([w.detach() for w in weights], xs, ys, cfg.fit_lr,
                                                    cfg.fit_epochs, cfg.fit_batch_size)
            with torch.no_grad():
                for w, new in zip(weights, fitted):
                    w.copy_(new)
            self.fitted = True
        value = torch.tensor(self.fit_losses[-1] if self.fit_losses else 0.0, device=weights[0].device)
        zero = 0.0 * sum(w.reshape(-1)[0] for w in weights)   # no gradient: the fit already moved the weights
        return LossOutput(value + zero, value, value, value.reshape(1), "sample",
                          {"lunar_fit_epochs": torch.tensor(float(len(self.fit_losses)))})
