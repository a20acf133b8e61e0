"""How a zoo model is named: `<family>[-<size>]/<model>` (tofu-mini/target, tofu-mini-tiny/retain90, muse-mini/retain).

    split_zoo_name("tofu-mini-tiny/target", "tofu-mini", "small", SIZES, ZOO_MODELS)   # ("tiny", "target")
    split_zoo_name("meta-llama/Llama-3.2-1B", "tofu-mini", ...)                         # None: not this family

A name of the family with an unknown size or model is a one-line ConfigError naming what exists.
"""

from __future__ import annotations

from typing import Iterable

from unlearning.errors import ConfigError


def split_zoo_name(name: str, family: str, default_size: str, sizes: Iterable[str],
                   models: Iterable[str]) -> tuple[str, str] | None:
    """(size, model) of a `family` zoo name, None for any other name (hub ids, paths)."""
    head, _, model = str(name).partition("/")
    if head != family and not head.startswith(f"{family}-"):
        return None
    size = default_size if head == family else head[len(family) + 1:]
    if size not in set(sizes):
        raise ConfigError(str(name), field="model", value=name,
                          fix=f"zoo sizes are {sorted(sizes)}, e.g. {family}-tiny/target")
    models = list(models)
    if model not in models:
        raise ConfigError(str(name), field="model", value=name,
                          fix=f"{family} models are {models}, e.g. {family}/target")
    return size, model
