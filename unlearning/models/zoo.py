"""The tiny model zoo: Llama-architecture configs, and where prepared zoo models live in the cache.

A zoo is identified by a `ZooConfig` (tofu-mini size and seed, model size, tokenizer and training
settings). Its folder is `<cache>/zoo/tofu-mini-<size>-<hash of the config>/` and holds `data/` (the
generated benchmark), `tokenizer/`, `base/`, `target/`, `retain99/`, `retain95/`, `retain90/` and
`manifest.json`. Changing any setting changes the hash, so a stale cache is never reused.

Names users put in configs: `tofu-mini/target`, `tofu-mini/retain90`, ... (default size) or
`tofu-mini-<size>/<model>` (e.g. `tofu-mini-tiny/target`); `tofu-mini` as a benchmark source means
the default zoo's `data/` folder.

    from unlearning.models.zoo import ZooConfig, zoo_dir
    print(zoo_dir(ZooConfig()))
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from unlearning.data.tofu_mini import FORGET_PERCENTS, TofuMiniConfig
from unlearning.errors import ConfigError
from unlearning.models.muse_zoo import MuseZooConfig, muse_zoo_dir, parse_muse_zoo_name
from unlearning.models.zoo_names import DEFAULT_SIZE, SIZES, ModelSize, split_zoo_name
from unlearning.paths import cache_root

__all__ = ["ModelSize", "SIZES", "DEFAULT_SIZE", "ZOO_MODELS", "DEFAULT_MODELS", "TrainSettings", "ZooConfig",
           "zoo_dir", "parse_zoo_name", "zoo_data_dir"]
ZOO_MODELS = ("base", "target", *(f"retain{100 - p}" for p in FORGET_PERCENTS))
DEFAULT_MODELS = ("target", "retain90")  # what `prepare` trains unless asked for more (the default sweep's pair)


@dataclass(frozen=True)
class TrainSettings:
    """Supervised fine-tuning recipe used to build the zoo models (plain PyTorch, AdamW, one-cycle LR).

    base_repeats: the general facts (real authors, world facts) appear this many times per epoch in the
    target/retain training sets, so they are learnt as robustly as a pretrained model's knowledge (with 1,
    unlearning an author also wiped them: model utility fell with forget quality, measured in
    benchmarks/bench_landscape.py's history, see the README)."""

    base_epochs: int = 10
    epochs: int = 20
    lr: float = 3e-3
    batch_size: int = 16
    base_repeats: int = 5
    seed: int = 0


@dataclass(frozen=True)
class ZooConfig:
    """Everything that determines the zoo's files; its hash names the cache folder."""

    data: TofuMiniConfig = field(default_factory=TofuMiniConfig)
    size: str = DEFAULT_SIZE
    vocab_size: int = 2048
    train: TrainSettings = field(default_factory=TrainSettings)
    version: int = 3  # bump when the training recipe changes in a way the fields do not capture

    def __post_init__(self) -> None:
        if self.size not in SIZES:
            raise ConfigError("zoo", field="size", value=self.size, fix=f"use one of {sorted(SIZES)}")

    def key(self) -> str:
        blob = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


def zoo_dir(cfg: ZooConfig | MuseZooConfig) -> Path:
    if isinstance(cfg, MuseZooConfig):
        return muse_zoo_dir(cfg)
    return cache_root() / "zoo" / f"tofu-mini-{cfg.size}-{cfg.key()}"


def parse_zoo_name(name: str) -> tuple[ZooConfig | MuseZooConfig, str] | None:
    """`tofu-mini/target` -> (default config, "target"); `tofu-mini-tiny/retain90` -> (tiny, ...);
    `muse-mini/target` -> (MuseZooConfig(), "target") (`unlearning.models.muse_zoo`).
    Returns None for names that are not zoo names (hub ids, paths)."""
    muse = parse_muse_zoo_name(name)
    if muse is not None:
        return muse
    parts = split_zoo_name(name, "tofu-mini", DEFAULT_SIZE, SIZES, ZOO_MODELS)
    return None if parts is None else (ZooConfig(size=parts[0]), parts[1])


def zoo_data_dir(size: str = DEFAULT_SIZE) -> Path:
    return zoo_dir(ZooConfig(size=size)) / "data"
