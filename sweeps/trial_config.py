"""One trial's complete train config (the `unlearn-sweep train` YAML layout) from a sweep spec, a search
plan and the sampled hyperparameters. Used by export (final runs) and by the trainable (each trial).

    from sweeps.trial_config import train_config
    plan = spec.searches()[0]
    cfg = train_config(spec, plan, {"lr": 3e-4, "epochs": 2, "beta_dv": 1.5}, output_dir="runs/t1")
    cfg["method"]["hparams"]       # every method hyperparameter, defaults written out
    cfg["train"]["lr"], cfg["train"]["epochs"]

Every hyperparameter is written explicitly (method and wrapper defaults included), so a config replays the
same run even if a default changes later. Hyperparameter names are canonical (see search_spaces.loader).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from search_spaces.loader import TRAIN_HPARAMS, canonical_name
from unlearning.errors import ConfigError


def split_hparams(hparams: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(train-config `train:` fields, method hyperparameters), names canonicalised."""
    train, method = {}, {}
    for key, value in hparams.items():
        name = canonical_name(key) or key
        if name in TRAIN_HPARAMS:
            train[TRAIN_HPARAMS[name]] = value
        else:
            method[name] = value
    return train, method


def method_hparams(plan, sampled: Mapping[str, Any]) -> dict[str, Any]:
    """Every hyperparameter of the plan's method + wrapper: defaults, then fixed, then sampled."""
    from unlearning.methods.registry import WRAPPER_CONFIGS, method_defaults

    out = method_defaults(plan.method)
    if plan.variant != "none":
        out.update(dataclasses.asdict(WRAPPER_CONFIGS[plan.variant]()))
    _, fixed = split_hparams(plan.fixed)
    _, chosen = split_hparams(sampled)
    out.update(fixed)
    out.update(chosen)
    out.pop("baldro", None)
    if out.get("target_token_ids") == []:  # JensUn: filled from the tokenizer at run time
        out.pop("target_token_ids")
    return out


def loop_settings(spec, plan, sampled: Mapping[str, Any]) -> dict[str, Any]:
    """The `train:` section: LoopConfig defaults, the spec's engine/ZeRO stage and seed, fixed, sampled."""
    from unlearning.train.config import LoopConfig

    out = LoopConfig().model_dump()
    out.update(engine=spec.deepspeed.engine, zero_stage=spec.deepspeed.zero_stage, seed=spec.seed)
    train_fixed, _ = split_hparams(plan.fixed)
    train_chosen, _ = split_hparams(sampled)
    out.update(train_fixed)
    out.update(train_chosen)
    return out


def data_section(spec) -> dict[str, Any]:
    b = spec.benchmark
    if b.name == "muse":
        raise ConfigError("export", field="benchmark.name", value="muse",
                          fix="MUSE runs cannot be replayed by `unlearn-sweep train` yet (its data section is TOFU-only)")
    out: dict[str, Any] = {"benchmark": "tofu", "source": b.source or ("tofu-mini" if b.name == "tofu-mini" else "hub"),
                           "forget_split": b.forget_split, "max_length": b.max_length}
    if b.limit is not None:
        out["limit"] = b.limit
    return out


def eval_section(spec, plan=None) -> dict[str, Any]:
    """The train config's `eval:` section; with a plan, its settings also name the retain reference
    (`retain_logs` or `retain_model`) that forget_quality and privleak are computed against."""
    settings = dict(spec.eval)
    every = settings.pop("every", 1.0)  # when to evaluate is the loop's business, not the evaluator's
    if spec.benchmark.name != "muse":
        settings["forget_split"] = spec.benchmark.forget_split
    if plan is not None and (plan.model.retain_logs or plan.model.retain_model):
        key = "retain_logs" if plan.model.retain_logs else "retain_model"
        settings[key] = plan.model.retain_logs or plan.model.retain_model
    return {"enabled": True, "on_start": True, "every": every, "settings": settings}


def for_plan(plan, hparams: Mapping[str, Any]) -> dict[str, Any]:
    """The hyperparameters that apply to the plan's method and variant (canonical names); others dropped."""
    from sweeps.spec import accepted_hparams

    ok = accepted_hparams(plan.method, plan.variant)
    return {canonical_name(k) or k: v for k, v in hparams.items() if (canonical_name(k) or k) in ok}


def train_config(spec, plan, sampled: Mapping[str, Any], *, output_dir: str) -> dict[str, Any]:
    """The TrainConfig-shaped dict of one trial (validate it with unlearning.train.config.parse_train_config).
    Sampled values that do not apply to the plan's variant (beta_dv for a plain run) are ignored."""
    sampled = for_plan(plan, sampled)
    return {
        "model": {"name": plan.model.name, "dtype": spec.deepspeed.dtype},
        "data": data_section(spec),
        "method": {"name": plan.method, "baldro": None if plan.variant == "none" else plan.variant,
                   "hparams": method_hparams(plan, sampled)},
        "train": loop_settings(spec, plan, sampled),
        "eval": eval_section(spec, plan),
        "output_dir": output_dir,
    }
