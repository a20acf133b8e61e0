"""One-line errors for pydantic validation failures of a sweep spec: `<file>, field '<dotted.path>': got
<value>. Fix: <fix>` (an unknown key names the allowed keys and the closest one).

    try:
        SweepSpec.model_validate(raw)
    except ValidationError as exc:
        raise spec_error(exc, "presets/x.yaml", SweepSpec) from None
"""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel, ValidationError

from search_spaces.loader import first_error
from unlearning.errors import ConfigError, UserError


def _shorten(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        text = repr(value)
        return text if len(text) <= 80 else f"{type(value).__name__} of {len(value)}"
    return value


_FIELD_HINTS = {  # union-typed fields, whose pydantic messages name internal types
    "search_space": "give a preset name (see `unlearn-sweep ls`) or a mapping name -> {low, high} or [choices]",
    "method.baldro": "use none, g or dv, or a list of them (e.g. [dv, none])",
    "tracking.uri": "give sqlite:////abs/path/mlflow.db or http://host:5000",
}
_FIXES = {
    "int_parsing": "give a whole number", "int_from_float": "give a whole number",
    "float_parsing": "give a number", "bool_parsing": "give true or false", "string_type": "give a string",
    "list_type": "give a list", "dict_type": "give a mapping (key: value)", "model_type": "give a mapping (key: value)",
    "too_short": "give at least one entry",
}


def _sub_model(root: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    cls: Any = root
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)) or part not in cls.model_fields:
            return None
        ann = cls.model_fields[part].annotation
        for _ in range(3):  # unwrap list[X] / X | None
            args = [a for a in getattr(ann, "__args__", ()) if isinstance(a, type) and issubclass(a, BaseModel)]
            if args:
                ann = args[0]
                break
            inner = getattr(ann, "__args__", None)
            if not inner:
                break
            ann = inner[0]
        cls = ann
    return cls if isinstance(cls, type) and issubclass(cls, BaseModel) else None


def spec_error(exc: ValidationError, where: str, root: type[BaseModel]) -> ConfigError:
    """The first pydantic error as ONE line: `<file>, field '<dotted.path>': got <value>. Fix: <fix>`."""
    err = first_error(exc)
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and ("[" in p or p in ("str", "list[...]"))))
    field = ".".join(str(p) for p in loc)
    value = err.get("input")
    inner = (err.get("ctx") or {}).get("error")
    if isinstance(inner, UserError) and inner.where.endswith((".yaml", ".yml")):
        return ConfigError(inner.where, field=inner.field, value=inner.value, fix=inner.fix)  # another file's fault
    if isinstance(inner, UserError):
        sub = inner.field
        if sub and field and (field == sub or field.endswith("." + sub) or sub.startswith(field + ".")):
            full = field if len(field) >= len(sub) else sub
        elif sub and field:
            full = f"{field}.{sub}"
        else:
            full = sub or field or None
        return ConfigError(where, field=full, value=_shorten(inner.value), fix=inner.fix.replace("\n", " "))
    kind = err["type"]
    if kind == "extra_forbidden":
        parent = _sub_model(root, loc[:-1])
        allowed = sorted(parent.model_fields) if parent is not None else []
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        return ConfigError(where, field=field, value=_shorten(value), fix=f"unknown key; {hint}allowed here: {allowed}")
    if kind == "missing":
        return ConfigError(where, field=field, value=None, fix="this key is required")
    if kind == "literal_error":
        expected = (err.get("ctx") or {}).get("expected", "")
        return ConfigError(where, field=field, value=_shorten(value), fix=f"use one of {expected}")
    if kind in ("greater_than_equal", "greater_than", "less_than", "less_than_equal"):
        return ConfigError(where, field=field, value=value, fix=err["msg"].replace("Input should", "it must"))
    fix = _FIELD_HINTS.get(field) or _FIXES.get(kind, err["msg"].removeprefix("Value error, "))
    return ConfigError(where, field=field or None, value=_shorten(value), fix=fix)
