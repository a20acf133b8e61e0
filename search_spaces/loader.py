"""Search spaces: parse preset YAMLs (`search_spaces/*.yaml`) or inline specs into a typed `SearchSpace`,
and convert it to Optuna distributions or Ray Tune domains.

    from search_spaces.loader import load_preset, parse_space, list_presets
    space = load_preset("npo")                                   # search_spaces/npo.yaml
    space = parse_space({"lr": {"low": 1e-5, "high": 5e-5, "log": True}, "epochs": [5, 10]})
    space.to_optuna()      # {"lr": FloatDistribution(1e-5, 5e-5, log=True), "epochs": CategoricalDistribution(...)}
    space.to_tune()        # {"lr": tune.loguniform(1e-5, 5e-5), "epochs": tune.choice([5, 10])}  (imports ray)

One dimension per train-config field, named as everywhere else (`unlearning.train.fields`: the short name
`lr`, `epochs`, `beta_dv`, ..., a dotted path such as `method.hparams.beta`, or the reference code's spelling
`learning_rate`, `sampling_ratio`, ...; a dimension is keyed by the field's short name). Forms:

    lr:        {low: 1.0e-5, high: 5.0e-5, log: true}      # float (the default for ranges)
    epochs:    {low: 1, high: 3}                           # int: epochs, batch_size, grad_accum, layer
    beta:      {type: int, low: 1, high: 9, step: 2}       # explicit type (float | int | categorical)
    dv_mode:   [softmin, softmax]                          # a list = categorical choices
    grad_accum: {choices: [2, 4]}

Preset files hold `description:`, `methods:` (the base methods the preset is meant for), `params:` and optionally
`fixed:` (train-config values the method's reference recipe pins, e.g. T3's batch 1 and weight decay 0: a sweep
using the preset gets them under its own `fixed:` unless it sets or searches that field itself).
Mistakes (unknown names, empty or inverted ranges, log ranges through 0, ...) raise `ConfigError` naming
`<name>.<field>`, the value and the fix.
"""

from __future__ import annotations

import difflib
import math
from pathlib import Path
from typing import Any, Literal, Mapping, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from unlearning.errors import ConfigError
from unlearning.train.fields import resolve, short_name
from unlearning.yaml_io import read_yaml

PRESET_DIR = Path(__file__).resolve().parent
# integer-valued fields (a range of them samples integers unless `type:` says otherwise)
INT_FIELDS = frozenset({"epochs", "batch_size", "grad_accum", "layer", "seed", "zero_stage"})


# --------------------------------------------------------------------------------------------------
# names: the train config's own (unlearning.train.fields); a dimension is keyed by the field's short name


def _did_you_mean(name: Any, pool: list[str]) -> str:
    close = difflib.get_close_matches(str(name), pool, n=1)
    return f"did you mean '{close[0]}'? " if close else ""


def field_key(name: Any) -> str:
    """The key of a dimension: the short name of the train-config field `name` resolves to (ConfigError if it
    names no field)."""
    try:
        return short_name(resolve(name))
    except ConfigError as exc:
        raise ConfigError("search space", field=str(name), value=name, fix=exc.fix) from None


# --------------------------------------------------------------------------------------------------
# dimensions


class _Dim(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def check_range(self) -> None:
        """low < high, shared by the numeric dimensions (`low` and `high` are theirs)."""
        if self.low > self.high:
            raise ConfigError("search space", field="low", value=self.low,
                              fix=f"low must be below high ({self.high}): swap them")
        if self.low == self.high:
            raise ConfigError("search space", field="high", value=self.high,
                              fix="empty range (low == high): widen it, or move the value to `fixed:`")


class FloatParam(_Dim):
    """A continuous range [low, high]; log=True samples log-uniformly (low must be > 0)."""

    type: Literal["float"] = "float"
    low: float
    high: float
    log: bool = False
    step: float | None = Field(None, gt=0)

    def check(self) -> None:
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise ConfigError("search space", field="low", value=(self.low, self.high), fix="give finite bounds")
        self.check_range()
        if self.log and self.low <= 0:
            raise ConfigError("search space", field="low", value=self.low,
                              fix="a log range needs low > 0 (e.g. 1.0e-5), or set log: false")
        if self.log and self.step is not None:
            raise ConfigError("search space", field="step", value=self.step, fix="step and log: true cannot be combined")

    def bounds(self) -> tuple[float, float]:
        return self.low, self.high


class IntParam(_Dim):
    """An integer range [low, high] (both included); log=True samples log-uniformly (low >= 1)."""

    type: Literal["int"] = "int"
    low: int
    high: int
    log: bool = False
    step: int = Field(1, ge=1)

    def check(self) -> None:
        self.check_range()
        if self.log and self.low < 1:
            raise ConfigError("search space", field="low", value=self.low, fix="a log int range needs low >= 1")
        if self.log and self.step != 1:
            raise ConfigError("search space", field="step", value=self.step, fix="step and log: true cannot be combined")
        if (self.high - self.low) % self.step:
            raise ConfigError("search space", field="step", value=self.step,
                              fix=f"high - low ({self.high - self.low}) must be a multiple of step")

    def bounds(self) -> tuple[int, int]:
        return self.low, self.high


class CategoricalParam(_Dim):
    """A finite set of choices (numbers, strings, booleans); sampled uniformly."""

    type: Literal["categorical"] = "categorical"
    choices: list[Union[bool, int, float, str]]

    def check(self) -> None:
        if not self.choices:
            raise ConfigError("search space", field="choices", value=[], fix="give at least one choice")
        seen: list[Any] = []
        for c in self.choices:
            if any(type(c) is type(s) and c == s for s in seen):
                raise ConfigError("search space", field="choices", value=self.choices,
                                  fix=f"the choice {c!r} is listed twice: remove the duplicate")
            seen.append(c)

    def bounds(self) -> tuple[Any, ...]:
        return tuple(self.choices)


Param = Union[FloatParam, IntParam, CategoricalParam]
_TYPES: dict[str, type[_Dim]] = {"float": FloatParam, "int": IntParam, "categorical": CategoricalParam}


def first_error(exc: ValidationError) -> dict[str, Any]:
    """The error to show: an unknown key first (a typo also makes its intended key 'missing')."""
    errors = exc.errors()
    return next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])


def _one_line(exc: ValidationError, name: str, cls: type[_Dim]) -> ConfigError:
    err = first_error(exc)
    loc = ".".join(str(p) for p in err["loc"])
    if err["type"] == "extra_forbidden":
        fix = f"unknown key; a {cls.__name__.removesuffix('Param').lower()} dimension takes {sorted(cls.model_fields)}"
    elif err["type"] == "missing":
        fix = "this key is required"
    elif err["type"] in ("int_from_float", "int_parsing"):
        fix = f"'{name}' is an integer hyperparameter: give whole numbers (or type: float)"
    else:
        fix = err["msg"]
    return ConfigError("search space", field=f"{name}.{loc}" if loc else name, value=err.get("input"), fix=fix)


def parse_param(name: str, raw: Any) -> Param:
    """One dimension from its YAML form (see the module docstring); ConfigError naming `name.field`."""
    if isinstance(raw, list):
        raw = {"type": "categorical", "choices": raw}
    if not isinstance(raw, Mapping):
        raise ConfigError("search space", field=name, value=raw,
                          fix="a single value is not a search dimension: put it under `fixed:`, or give a list "
                              "of choices or {low, high}")
    data = dict(raw)
    kind = data.get("type")
    if kind is None:
        kind = "categorical" if "choices" in data else ("int" if name in INT_FIELDS else "float")
        data["type"] = kind
    if kind not in _TYPES:
        raise ConfigError("search space", field=f"{name}.type", value=kind, fix=f"use one of {sorted(_TYPES)}")
    cls = _TYPES[kind]
    try:
        dim = cls.model_validate(data)
    except ValidationError as exc:
        raise _one_line(exc, name, cls) from None
    try:
        dim.check()
    except ConfigError as exc:
        raise ConfigError("search space", field=f"{name}.{exc.field}", value=exc.value, fix=exc.fix) from None
    return dim


# --------------------------------------------------------------------------------------------------
# the space


class SearchSpace(BaseModel):
    """Typed search space: canonical name -> dimension (order kept)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    params: dict[str, Param] = Field(default_factory=dict)
    description: str = ""
    methods: tuple[str, ...] = ()
    fixed: dict[str, Any] = Field(default_factory=dict)   # a preset's pinned values, keyed by short name

    def names(self) -> list[str]:
        return list(self.params)

    def only(self, names: Any) -> "SearchSpace":
        """A copy keeping only the dimensions whose names are in ``names``."""
        keep = set(names)
        return self.model_copy(update={"params": {k: v for k, v in self.params.items() if k in keep}})

    def without(self, names: Any) -> "SearchSpace":
        drop = set(names)
        return self.model_copy(update={"params": {k: v for k, v in self.params.items() if k not in drop}})

    def to_optuna(self) -> dict[str, Any]:
        """Optuna distributions (`optuna.distributions.*`), one per dimension."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        out: dict[str, Any] = {}
        for name, p in self.params.items():
            if isinstance(p, FloatParam):
                out[name] = FloatDistribution(p.low, p.high, log=p.log, step=p.step)
            elif isinstance(p, IntParam):
                out[name] = IntDistribution(p.low, p.high, log=p.log, step=p.step)
            else:
                out[name] = CategoricalDistribution(list(p.choices))
        return out

    def to_tune(self) -> dict[str, Any]:
        """Ray Tune domains (imports ray): loguniform/uniform/quniform, randint/lograndint/qrandint, choice.

        Tune's randint excludes its upper bound, so an int range [low, high] becomes randint(low, high + 1)."""
        from ray import tune

        out: dict[str, Any] = {}
        for name, p in self.params.items():
            if isinstance(p, FloatParam):
                if p.log:
                    out[name] = tune.loguniform(p.low, p.high)
                elif p.step is not None:
                    out[name] = tune.quniform(p.low, p.high, p.step)
                else:
                    out[name] = tune.uniform(p.low, p.high)
            elif isinstance(p, IntParam):
                if p.log:
                    out[name] = tune.lograndint(p.low, p.high + 1)
                elif p.step != 1:
                    out[name] = tune.qrandint(p.low, p.high, p.step)
                else:
                    out[name] = tune.randint(p.low, p.high + 1)
            else:
                out[name] = tune.choice(list(p.choices))
        return out


RESERVED_KEYS = ("preset", "exclude")


def parse_params(raw: Mapping[str, Any]) -> dict[str, Param]:
    """Field name -> dimension, keyed by the field's short name; ConfigError on names that are no train-config
    field or that name one field twice."""
    out: dict[str, Param] = {}
    source: dict[str, str] = {}
    for key, value in raw.items():
        name = field_key(key)
        if name in out:
            raise ConfigError("search space", field=str(key), value=key,
                              fix=f"'{key}' and '{source[name]}' both mean '{name}': keep one")
        out[name] = parse_param(name, value)
        source[name] = str(key)
    return out


def parse_space(raw: Any) -> SearchSpace:
    """A search space from its inline form: a preset name, or a mapping of dimensions that may also hold
    `preset: NAME` (start from that preset; the dimensions given replace or add to it) and
    `exclude: [names]` (drop those dimensions)."""
    if isinstance(raw, str):
        return load_preset(raw)
    if raw is None:
        return SearchSpace()
    if not isinstance(raw, Mapping):
        raise ConfigError("search space", value=type(raw).__name__,
                          fix="give a preset name (see `unlearn-sweep ls`) or a mapping name -> range")
    data = dict(raw)
    preset = data.pop("preset", None)
    exclude = data.pop("exclude", None) or []
    if not isinstance(exclude, list) or not all(isinstance(e, str) for e in exclude):
        raise ConfigError("search space", field="exclude", value=exclude, fix="give a list of hyperparameter names")
    base = load_preset(preset) if preset is not None else SearchSpace()
    params = {**base.params, **parse_params(data)}
    for name in exclude:
        canonical = field_key(name)
        if canonical not in params:
            raise ConfigError("search space", field="exclude", value=name,
                              fix=f"nothing to exclude: the space has {sorted(params)}")
        params.pop(canonical)
    fixed = {k: v for k, v in base.fixed.items() if k not in params}
    return SearchSpace(params=params, description=base.description, methods=base.methods, fixed=fixed)


# --------------------------------------------------------------------------------------------------
# presets


def list_presets() -> list[str]:
    """Names of the preset files in search_spaces/ (without .yaml)."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def preset_path(name: str) -> Path:
    if not isinstance(name, str) or name not in list_presets():
        raise ConfigError("search space", field="preset", value=name,
                          fix=f"unknown preset; {_did_you_mean(name, list_presets())}use one of {list_presets()} "
                              f"(files in {PRESET_DIR})")
    return PRESET_DIR / f"{name}.yaml"


_PRESET_KEYS = ("description", "methods", "params", "fixed")


def load_preset(name: str) -> SearchSpace:
    """Parse `search_spaces/<name>.yaml`; a broken file is a ConfigError naming the file and field."""
    path = preset_path(name)
    raw = read_yaml(path) or {}
    where = str(path)
    if not isinstance(raw, Mapping):
        raise ConfigError(where, value=type(raw).__name__, fix=f"a preset is a mapping with keys {list(_PRESET_KEYS)}")
    extra = [k for k in raw if k not in _PRESET_KEYS]
    if extra:
        raise ConfigError(where, field=str(extra[0]), value=extra[0], fix=f"unknown key; allowed: {list(_PRESET_KEYS)}")
    try:
        params = parse_params(raw.get("params") or {})
    except ConfigError as exc:
        raise ConfigError(where, field=f"params.{exc.field}", value=exc.value, fix=exc.fix) from None
    methods = raw.get("methods") or []
    if not isinstance(methods, list):
        raise ConfigError(where, field="methods", value=methods, fix="give a list of method names")
    fixed_raw = raw.get("fixed") or {}
    if not isinstance(fixed_raw, Mapping):
        raise ConfigError(where, field="fixed", value=fixed_raw, fix="give a mapping field -> value")
    fixed: dict[str, Any] = {}
    for key, value in fixed_raw.items():
        try:
            name = field_key(key)
        except ConfigError as exc:
            raise ConfigError(where, field=f"fixed.{key}", value=key, fix=exc.fix) from None
        if name in params or name in fixed:
            raise ConfigError(where, field=f"fixed.{key}", value=key, fix=f"'{name}' is set twice: keep one")
        fixed[name] = value
    return SearchSpace(params=params, description=str(raw.get("description") or ""), methods=tuple(methods),
                       fixed=fixed)


def default_preset(method: str, benchmark: str) -> str | None:
    """The preset for a base method: `tofu-mini-<...>` first on tofu-mini, then any whose `methods` list it."""
    names = list_presets()
    ordered = [n for n in names if n.startswith("tofu-mini")] if benchmark == "tofu-mini" else []
    ordered += [n for n in names if not n.startswith("tofu-mini")]
    for name in ordered:
        if method in load_preset(name).methods:
            return name
    return None
