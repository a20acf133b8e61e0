"""The names of a run's settings: train-config fields by their short name or dotted path, in one place.

A run is described by one train config (`unlearning.train.config.TrainConfig`, the `unlearn-sweep train` YAML).
Sweep specs (`fixed:`), search spaces and exports name its fields in the same words:

* a dotted path into the config: `train.lr`, `method.hparams.beta`, `model.dtype`, `eval.every`;
* or the short name, the field's own last name when that is unambiguous: `lr` = train.lr, `epochs`,
  `batch_size`, `grad_accum`, `warmup_epochs`, ... (the `train:` section), `dtype` = model.dtype,
  and any method hyperparameter (`beta`, `alpha`, `beta_dv`, `group_ratio`, ...) = method.hparams.<name>;
* the reference code's spellings are accepted for the same fields: `learning_rate`, `num_train_epochs`,
  `per_device_train_batch_size`, `gradient_accumulation_steps`, `sigma_forget`, `sampling_ratio`, `K`,
  `module_regex` (RMU, read as its layer), `guidance_cfg` (T3's head settings), ... (unlearning/methods/names.py;
  a method's own spelling, SIBL's `gamma` = l1_coeff, is applied when the method is built)

    resolve("lr")                              # ("train", "lr")
    resolve("sampling_ratio")                  # ("method", "hparams", "group_ratio")
    merged = with_values(base, {"lr": 3e-4, "beta_dv": 2.0})   # a new dict; validate it with TrainConfig

Whether a method accepts a hyperparameter is decided where it is checked: when the merged dict is
validated as a TrainConfig (the method is built once with its hyperparameters).
"""

from __future__ import annotations

import copy
import difflib
from typing import Any, Mapping

from unlearning.errors import ConfigError
from unlearning.methods.names import CANONICAL_HPARAMS, EXPANDED_HPARAMS, HPARAM_ALIASES, UNSUPPORTED_HPARAMS

# short names of the fields outside method.hparams (section, field)
SECTION_FIELDS: dict[str, tuple[str, ...]] = {
    "train": ("engine", "zero_stage", "lr", "epochs", "batch_size", "grad_accum", "warmup_epochs", "weight_decay",
              "max_grad_norm", "lr_scheduler", "seed", "save_every_steps", "keep_checkpoints", "stop_after_epoch"),
    "model": ("dtype", "attn_implementation", "template"),
    "data": ("forget_split", "retain_split", "max_length", "limit", "source", "corpus"),
}
SHORT_NAMES: dict[str, tuple[str, ...]] = {name: (section, name) for section, names in SECTION_FIELDS.items()
                                           for name in names}
# the reference code's spellings (open-unlearning / HF Trainer) of the same fields
FIELD_ALIASES: dict[str, str] = {
    "learning_rate": "lr", "num_train_epochs": "epochs", "per_device_train_batch_size": "batch_size",
    "per_device_batch_size": "batch_size", "gradient_accumulation_steps": "grad_accum",
    "lr_scheduler_type": "lr_scheduler", "warmup_ratio": "warmup_epochs",
}
TOP_SECTIONS = ("model", "data", "method", "train", "eval")
METHOD_HPARAMS = frozenset(CANONICAL_HPARAMS - {"baldro"})
# every short name (a method hyperparameter named `seed` is method.hparams.seed, written out)
KNOWN_SHORT = frozenset(SHORT_NAMES) | METHOD_HPARAMS


def resolve(name: str) -> tuple[str, ...]:
    """The config path of a field name (short, alias or dotted); ConfigError naming the closest one."""
    if not isinstance(name, str) or not name:
        raise ConfigError("field name", value=name, fix="give a field name such as lr or method.hparams.beta")
    if "." in name:
        parts = tuple(name.split("."))
        if parts[0] not in TOP_SECTIONS or any(not p for p in parts):
            raise ConfigError("field name", field=name, value=name,
                              fix=f"a dotted path starts with one of {', '.join(TOP_SECTIONS)} (e.g. train.lr, "
                                  "method.hparams.beta)")
        if parts[:2] == ("method", "hparams") and len(parts) == 3:
            return ("method", "hparams", HPARAM_ALIASES.get(parts[2], parts[2]))
        return parts
    short = FIELD_ALIASES.get(name, name)
    if short in SHORT_NAMES:
        return SHORT_NAMES[short]
    hparam = HPARAM_ALIASES.get(name, name)
    if hparam in METHOD_HPARAMS or name in EXPANDED_HPARAMS:   # module_regex / guidance_cfg: expanded when built
        return ("method", "hparams", hparam)
    if name in UNSUPPORTED_HPARAMS:
        raise ConfigError("field name", field=name, value=name, fix=UNSUPPORTED_HPARAMS[name])
    raise ConfigError("field name", field=name, value=name, fix=unknown_field_fix(name))


def short_name(path: tuple[str, ...]) -> str:
    """The shortest name that resolves to `path` (its short name when there is one, else the dotted path)."""
    last = path[-1]
    if last in KNOWN_SHORT and resolve(last) == path:
        return last
    return ".".join(path)


def unknown_field_fix(name: str, allowed: Any = None) -> str:
    """'did you mean ...? ...' for a name that is not a field (or not one of `allowed`)."""
    pool = sorted(allowed) if allowed is not None else sorted(KNOWN_SHORT)
    aliases = [a for a, c in {**FIELD_ALIASES, **HPARAM_ALIASES}.items() if c in pool]
    close = difflib.get_close_matches(str(name), pool + aliases, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return f"unknown hyperparameter or train-config field; {hint}use one of {pool}, or a dotted path like train.lr"


def get(config: Mapping[str, Any], path: tuple[str, ...], default: Any = None) -> Any:
    node: Any = config
    for part in path:
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return node


def with_values(config: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of `config` with each named field set (names resolved as above)."""
    out = copy.deepcopy(dict(config))
    for name, value in values.items():
        path = resolve(name)
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError("train config", field=".".join(path), value=value,
                                  fix=f"'{part}' is not a section of the train config")
        node[path[-1]] = value
    return out
