"""A sweep's searches and the one complete train config each of them starts from.

    plans = build_plans(spec)          # one SearchPlan per (model, BalDRO variant), in spec order
    plan.base                          # the full `unlearn-sweep train` config (a dict, validated once)
    plan.space                         # the dimensions this variant searches (train-config field names)
    trial = with_values(plan.base, {"lr": 3e-4, "beta_dv": 2.0})   # what a trial runs (validated once there)

The base config is the train config's own vocabulary, filled from the spec: `model.name` from `models:`,
`data` from `data:`, `method.name`/`baldro` from `method:` with every method and wrapper default written out,
the loop's defaults, `seed`, then every `fixed:` value (named as a search space names them), and `eval` from
`eval:` with the retain reference. A trial receives it with its sampled values (`trainables.trial`), and an
export writes exactly that merged object.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any, Mapping

from pydantic import ValidationError

from search_spaces.loader import SearchSpace
from unlearning.errors import ConfigError, UserError
from unlearning.train.fields import resolve, short_name, with_values


@dataclass(frozen=True)
class SearchPlan:
    """One search of the sweep: one model x one BalDRO variant, its base train config and its space."""

    search_id: str  # e.g. "tofu-mini-target.dv"
    model: Any  # the spec's ModelSpec (name, retain_model, retain_logs)
    variant: str  # "none" | "g" | "dv"
    method: str  # canonical base method
    label: str  # reference-style name: NPO, DrNPO, GroupNPO
    base: dict[str, Any]  # the complete, validated train config every trial of the search starts from
    space: SearchSpace  # this variant's dimensions only


def variant_label(method: str, variant: str) -> str:
    """NPO + dv -> DrNPO, + g -> GroupNPO, + none -> NPO (the reference code's class names)."""
    return {"none": method, "dv": f"Dr{method}", "g": f"Group{method}"}[variant]


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")


def method_hparam_names(method: str, variant: str) -> set[str]:
    """The method hyperparameters a (base method, variant) takes: the method's and its wrapper's."""
    from unlearning.methods.registry import WRAPPER_CONFIGS, method_defaults

    names = set(method_defaults(method))
    if variant != "none":
        names |= {f.name for f in dataclasses.fields(WRAPPER_CONFIGS[variant])}
    return names - {"baldro"}


def applies(name: str, method: str, variant: str) -> bool:
    """Whether a field name applies to this variant (method hyperparameters only where the method has them)."""
    path = resolve(name)
    return path[:2] != ("method", "hparams") or path[2] in method_hparam_names(method, variant)


def method_defaults_written_out(method: str, variant: str, alias_defaults: Mapping[str, Any]) -> dict[str, Any]:
    """Every hyperparameter of the method and its wrapper with its default (so a config replays the same run
    even if a default changes later); JensUn's tokenizer-dependent target ids are left to the run."""
    from unlearning.methods.registry import WRAPPER_CONFIGS, method_defaults

    out = method_defaults(method)
    if variant != "none":
        out.update(dataclasses.asdict(WRAPPER_CONFIGS[variant]()))
    out.update(alias_defaults)
    out.pop("baldro", None)
    if out.get("target_token_ids") == []:
        out.pop("target_token_ids")
    return out


def validate_train_config(cfg: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Validate as a TrainConfig; the complete config back as a plain dict (defaults filled). ConfigError
    naming the train-config field otherwise."""
    from unlearning.train.config import TrainConfig, one_line_error

    try:
        return TrainConfig.model_validate(dict(cfg)).model_dump(mode="json")
    except ValidationError as exc:
        raise one_line_error(exc, where) from None


def check_field_value(method: str, variant: str, name: str, value: Any) -> None:
    """Validate one train-config field value on a minimal config of (method, variant): ConfigError if bad."""
    cfg = {"model": {"name": "model"}, "method": {"name": method, "baldro": None if variant == "none" else variant}}
    validate_train_config(with_values(cfg, {name: value}), "spec")


def _rename(exc: UserError, field: str) -> ConfigError:
    return ConfigError("spec", field=field, value=exc.value, fix=exc.fix)


def base_config(spec: Any, model: Any, variant: str) -> dict[str, Any]:
    """The complete train config of one search (see the module docstring); ConfigError naming the spec field."""
    method = spec.method.base
    settings = spec.benchmark.plan_settings(spec, dict(spec.eval.settings))  # TOFU's adds the forget split
    if model.retain_logs or model.retain_model:
        key = "retain_logs" if model.retain_logs else "retain_model"
        settings[key] = model.retain_logs or model.retain_model
    cfg: dict[str, Any] = {
        "model": {"name": model.name},
        "data": spec.data.model_dump(mode="json"),
        "method": {"name": method, "baldro": None if variant == "none" else variant,
                   "hparams": method_defaults_written_out(method, variant, spec.method.alias_defaults)},
        "train": {"seed": spec.seed},
        "eval": {**spec.eval.model_dump(mode="json"), "enabled": True, "settings": settings},
        "output_dir": "runs/train",
    }
    cfg = with_values(cfg, {name: value for name, value in spec.fixed.items() if applies(name, method, variant)})
    try:
        return validate_train_config(cfg, "spec")
    except UserError as exc:  # data.* and eval.* are the spec's own sections; train.* / method.* come from fixed:
        field = exc.field or ""
        given = next((k for k in spec.fixed if resolve(k) == tuple(field.split("."))), None)
        raise _rename(exc, f"fixed.{given}" if given else field) from None


def check_space(space: SearchSpace, base: Mapping[str, Any], method: str, variant: str) -> SearchSpace:
    """This variant's dimensions, each end (each choice) validated on the base config."""
    from search_spaces.loader import FloatParam, IntParam

    mine = space.only(n for n in space.params if applies(n, method, variant))
    for name, dim in mine.params.items():
        ends = dim.bounds()
        for end in ends:
            try:
                validate_train_config(with_values(base, {name: end}), "spec")
            except UserError as exc:
                part = "choices" if not isinstance(dim, (FloatParam, IntParam)) else (
                    "low" if end == ends[0] else "high")
                raise ConfigError("spec", field=f"search_space.{name}.{part}", value=end, fix=exc.fix) from None
    return mine


def build_plans(spec: Any) -> list[SearchPlan]:
    """One plan per (model, variant) of a validated spec, in spec order."""
    plans = []
    for m in spec.models:
        for v in spec.method.variants:
            base = base_config(spec, m, v)
            plans.append(SearchPlan(search_id=f"{slug(m.name)}.{v}", model=m, variant=v, method=spec.method.base,
                                    label=variant_label(spec.method.base, v), base=base,
                                    space=check_space(spec.space, base, spec.method.base, v)))
    return plans


def sampled_names(values: Mapping[str, Any]) -> dict[str, Any]:
    """Sampled values keyed by their fields' short names (what points.jsonl and MLflow show)."""
    return {short_name(resolve(k)): v for k, v in values.items()}
