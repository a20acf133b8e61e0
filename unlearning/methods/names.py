"""Canonical names of methods and hyperparameters, and the aliases the reference repositories use.

    from unlearning.methods.names import canonicalize, resolve_method_name
    canonicalize({"sigma_forget": 2.0, "sampling_ratio": 0.5})   # {"beta_dv": 2.0, "group_ratio": 0.5}
    resolve_method_name("DrNPO")                                 # MethodAlias("NPO", "dv", {})

Method names are matched case-insensitively. Reference class names imply a BalDRO wrapper (``Dr*`` ->
BalDRO-DV, ``Group*`` -> BalDRO-G) and sometimes defaults (DrWGA: the fork's per-sequence WGA with
beta_dv=2.0, its yaml default).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from unlearning.errors import ConfigError

CANONICAL_METHODS = ("GradAscent", "GradDiff", "IdkDPO", "NPO", "SimNPO", "RMU", "SatImp", "WGA", "TNPO",
                     "UNDIAL", "JensUn", "CEU", "PDU", "GRU", "SIBL", "T3", "LUNAR", "LMCleaner")


@dataclass(frozen=True)
class MethodAlias:
    """What a method name means: the base method, the implied wrapper ("g", "dv" or None), defaults."""

    method: str
    baldro: str | None = None
    defaults: Mapping[str, Any] = field(default_factory=dict)


METHOD_ALIASES: dict[str, MethodAlias] = {
    "DPO": MethodAlias("IdkDPO"),
    "GradJSDiff": MethodAlias("JensUn"),
    "CE-U": MethodAlias("CEU"),
    "LMCleanerBatch": MethodAlias("LMCleaner"),         # open-unlearning configs/trainer/LMCleanerBatch.yaml
    "LMCleanerBatchLevel": MethodAlias("LMCleaner"),    # its handler class
    "DrNPO": MethodAlias("NPO", "dv"),
    "GroupNPO": MethodAlias("NPO", "g"),
    "DrSimNPO": MethodAlias("SimNPO", "dv"),
    "GroupSimNPO": MethodAlias("SimNPO", "g"),
    "DrSatImp": MethodAlias("SatImp", "dv"),
    "GroupSatImp": MethodAlias("SatImp", "g"),
    "DrTNPO": MethodAlias("TNPO", "dv"),
    "DrWGA": MethodAlias("WGA", "dv", {"form": "sequence", "beta_dv": 2.0}),
}

# accepted spellings of the `baldro` hyperparameter
BALDRO_VALUES: dict[str, str | None] = {
    "none": None, "": None, "off": None,
    "g": "g", "group": "g", "baldro-g": "g", "baldro_g": "g",
    "dv": "dv", "dro": "dv", "baldro-dv": "dv", "baldro_dv": "dv",
}

# alias -> canonical hyperparameter name (BalDRO's naming split, OPTML's npo_coeff, WMDP's layer_id)
HPARAM_ALIASES: dict[str, str] = {
    "beta_dv_forget": "beta_dv",
    "sigma_forget": "beta_dv",
    "sigma": "beta_dv",
    "sigma_retain": "beta_dv_retain",
    "sampling_ratio": "group_ratio",
    "npo_coeff": "gamma",
    "layer_id": "layer",
    "epsilon": "retain_loss_eps",
    "layer_idx_list": "layers",
    "coeff_list": "coeffs",
    "K": "inner_steps",                 # open-unlearning SIBL.yaml: inner iterations per outer iteration
    "T": "outer_steps",                 # open-unlearning SIBL.yaml: outer iterations
    "num_epochs": "fit_epochs",         # open-unlearning Lunar.yaml: epochs of the estimated-net fit
}

# aliases that mean something else in one method (open-unlearning SIBL.yaml: gamma = the L1 coefficient)
METHOD_HPARAM_ALIASES: dict[str, dict[str, str]] = {
    "SIBL": {"gamma": "l1_coeff"},
    # open-unlearning Lunar.yaml method_args: the estimated-net fit's lr / batch_size, data_path of harmful.json
    "LUNAR": {"lr": "fit_lr", "batch_size": "fit_batch_size", "data_path": "direction_prompts"},
    # open-unlearning LMCleanerBatch.yaml: K = the truncation window, training_log_dir = the log folder
    "LMCleaner": {"K": "window", "training_log_dir": "training_log"},
}

# reference names whose value is rewritten into project fields by canonicalize (see _expand)
# RMU.yaml module_regex "model\.layers\.7" -> layer 7; T3.yaml guidance_cfg {hidden_size, ...} -> head_*
EXPANDED_HPARAMS = ("module_regex", "guidance_cfg")
GUIDANCE_CFG_KEYS = {"hidden_size": "head_hidden_size", "num_hidden_layers": "head_layers",
                     "activation_str": "head_activation", "bias": "head_bias"}

# reference names of procedures the project does not implement: refused with what to do instead
UNSUPPORTED_HPARAMS: dict[str, str] = {}

# every canonical hyperparameter of every method config and wrapper (checked against the dataclasses
# by tests/methods/test_names_registry.py)
CANONICAL_HPARAMS = frozenset({
    "gamma", "alpha", "retain_loss_type", "beta", "delta", "beta1", "beta2", "form", "detach_weights",
    "faithful_ignore_index", "target_token_ids", "eps", "layer", "steering_coeff", "seed", "clamp_layer",
    "trainable_params_regex", "baldro", "beta_dv", "dv_mode", "unit", "forget_dro", "retain_dro",
    "beta_dv_retain", "retain_reduction", "group_ratio", "faithful_broadcast", "faithful_eps",
    "ignore_first_n_answer_tokens", "retain_loss_eps", "primal_dual", "dual_step_size", "dual_update_upon",
    "dual_warmup_epochs", "gamma_gru",
    "forget_loss_type", "rho", "inner_steps", "eta_in", "eta_theta", "l1_coeff", "use_sparsity", "sparsity",
    "sparsity_method", "use_implicit", "cg_iters", "cg_tol", "outer_update", "outer_steps", "guidance_scale",
    "base_temp",
    "head_hidden_size", "head_layers", "head_activation", "head_bias", "layers", "coeffs", "direction_prompts",
    "fit", "fit_lr", "fit_epochs", "fit_batch_size",
    "training_log", "window", "hessian_mode", "damping", "max_step", "log_alignment",
    "pooling", "pool_temp", "extraction_layer",
})

RETAIN_TYPE_ALIASES = {"nll": "NLL", "kl": "KL", "jsd": "JSD", "jensun": "JSD", "embed_diff": "EMBED_DIFF"}


def all_method_names() -> list[str]:
    """Canonical names followed by the reference aliases."""
    return list(CANONICAL_METHODS) + list(METHOD_ALIASES)


def resolve_method_name(name: str) -> MethodAlias:
    """Canonical method (case-insensitive) or alias -> MethodAlias; ConfigError listing valid names."""
    if isinstance(name, str):
        for canonical in CANONICAL_METHODS:
            if canonical.lower() == name.lower():
                return MethodAlias(canonical)
        for alias, target in METHOD_ALIASES.items():
            if alias.lower() == name.lower():
                return target
    raise ConfigError("method", field="name", value=name,
                      fix=f"use one of {all_method_names()}")


def canonical_baldro(value: Any) -> str | None:
    """Normalise the ``baldro`` value to None, "g" or "dv"."""
    if value is None:
        return None
    if isinstance(value, str) and value.strip().lower() in BALDRO_VALUES:
        return BALDRO_VALUES[value.strip().lower()]
    raise ConfigError("method", field="baldro", value=value,
                      fix="use none, 'g' (BalDRO-G) or 'dv' (BalDRO-DV)")


_LAYER_REGEX = re.compile(r"(?:.*\.)?(?:layers|h|blocks)\.(-?\d+)")


def _expand(key: str, value: Any) -> dict[str, Any]:
    """The project fields a reference name in EXPANDED_HPARAMS stands for; ConfigError if they cannot be read."""
    if key == "module_regex":
        match = _LAYER_REGEX.fullmatch(value.replace("\\", "")) if isinstance(value, str) else None
        if match is None:
            raise ConfigError("method hyperparameters", field=key, value=value,
                              fix="module_regex must name one decoder layer, like model\\.layers\\.7 (the project "
                                  "steers one layer by index: or give layer=7)")
        return {"layer": int(match.group(1))}
    unknown = sorted(set(value) - set(GUIDANCE_CFG_KEYS)) if isinstance(value, Mapping) else ["(not a mapping)"]
    if unknown:
        raise ConfigError("method hyperparameters", field=key, value=value,
                          fix=f"guidance_cfg takes {sorted(GUIDANCE_CFG_KEYS)} (T3.yaml); '{unknown[0]}' is not one")
    return {GUIDANCE_CFG_KEYS[k]: v for k, v in value.items()}


def canonicalize(hparams: Mapping[str, Any], method: str | None = None) -> dict[str, Any]:
    """Rename aliases to canonical names (``method``'s own aliases first, e.g. SIBL's gamma = l1_coeff) and
    expand ``module_regex`` / ``guidance_cfg``. ConfigError on unknown names, on reference names of procedures
    the project does not implement (UNSUPPORTED_HPARAMS) and on two names for the same hyperparameter (e.g. both
    ``beta_dv`` and ``sigma_forget``). Also normalises the values of ``baldro`` and ``retain_loss_type``."""
    out: dict[str, Any] = {}
    source: dict[str, str] = {}
    own = METHOD_HPARAM_ALIASES.get(method or "", {})
    for key, value in hparams.items():
        if key in UNSUPPORTED_HPARAMS:
            raise ConfigError("method hyperparameters", field=key, value=value, fix=UNSUPPORTED_HPARAMS[key])
        items = _expand(key, value).items() if key in EXPANDED_HPARAMS else [(key, value)]
        for name, item in items:
            canonical = own.get(name) or HPARAM_ALIASES.get(name, name)
            if canonical not in CANONICAL_HPARAMS:
                close = difflib.get_close_matches(name, [*CANONICAL_HPARAMS, *HPARAM_ALIASES, *own], n=1)
                raise ConfigError("method hyperparameters", field=key, value=value,
                                  fix=(f"did you mean '{close[0]}'? " if close else "") +
                                  f"use one of {sorted(CANONICAL_HPARAMS)} (aliases: {sorted(HPARAM_ALIASES)})")
            if canonical in out:
                raise ConfigError("method hyperparameters", field=key, value=value,
                                  fix=f"'{key}' and '{source[canonical]}' both set '{canonical}'; give only one")
            if canonical == "baldro":
                item = canonical_baldro(item)
            elif canonical == "retain_loss_type" and isinstance(item, str):
                item = RETAIN_TYPE_ALIASES.get(item.lower(), item)
            out[canonical] = item
            source[canonical] = key
    return out
