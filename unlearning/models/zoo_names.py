"""How a zoo model is named: `<family>[-<size>]/<model>` (tofu-mini/target, tofu-mini-tiny/retain90, muse-mini/retain),
and the model sizes every zoo shares (`SIZES`, `DEFAULT_SIZE`). It imports nothing of the project but
`unlearning.errors`, so both zoos (`zoo.py`, `muse_zoo.py`) read it without importing each other.

    split_zoo_name("tofu-mini-tiny/target", "tofu-mini", "small", SIZES, ZOO_MODELS)   # ("tiny", "target")
    split_zoo_name("meta-llama/Llama-3.2-1B", "tofu-mini", ...)                         # None: not this family

A name of the family with an unknown size or model is a one-line ConfigError naming what exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from unlearning.errors import ConfigError


@dataclass(frozen=True)
class ModelSize:
    """Shape of a tiny Llama: hidden size, layers, attention heads, MLP width."""

    hidden: int
    layers: int
    heads: int
    intermediate: int


SIZES: dict[str, ModelSize] = {
    "tiny": ModelSize(hidden=64, layers=2, heads=4, intermediate=256),
    "small": ModelSize(hidden=128, layers=4, heads=4, intermediate=512),
    "base": ModelSize(hidden=256, layers=4, heads=8, intermediate=1024),
}
DEFAULT_SIZE = "small"


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
