"""The muse-mini zoo: which tiny models exist for muse-mini, their names, and where they live in the cache.

A muse-mini zoo is identified by a `MuseZooConfig` (corpus size and seed, model size, tokenizer and training
settings); its folder is `<cache>/zoo/muse-mini-<size>-<hash of the config>/` with `data/` (the corpus in
MUSE's layout, `unlearning.data.muse_mini`), `tokenizer/`, `target/` (trained on forget + retain1 + retain2),
`retain/` (retain1 + retain2: MUSE's "retrain" model) and `manifest.json`. Names in configs:
`muse-mini/target`, `muse-mini/retain` (default size) or `muse-mini-<size>/<model>`; `muse-mini` as a data
source means the default zoo's `data/` folder. Prepared by `unlearning.models.muse_prepare`.

    from unlearning.models.muse_zoo import MuseZooConfig, muse_zoo_dir
    print(muse_zoo_dir(MuseZooConfig()))
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from unlearning.data.muse_mini import MuseMiniConfig
from unlearning.errors import ConfigError
from unlearning.models.zoo_names import SIZES, split_zoo_name
from unlearning.paths import cache_root

MUSE_ZOO = "muse-mini"
MUSE_ZOO_MODELS = ("target", "retain")
# what each model trains on (raw/* splits of the corpus)
MUSE_TRAIN_SPLITS = {"target": ("forget", "retain1", "retain2"), "retain": ("retain1", "retain2")}


@dataclass(frozen=True)
class MuseTrainSettings:
    """Next-token training on the raw documents (one sequence per document), AdamW with a one-cycle rate.

    quiz_copies: the interview questions of the model's authors are also shuffled across authors into quiz
    sheets of `quiz_sheet` questions, this many times, so the model answers a question whatever precedes it
    (a knowmem prompt puts other authors' questions first); without them a model this small ties an answer
    to its place in its interview (knowmem ROUGE 0.31 with the in-context examples, measured), where a
    pretrained 7B model answers from what it read. The sheets are training data only, not part of raw/*."""

    epochs: int = 40
    quiz_copies: int = 3
    quiz_sheet: int = 6
    lr: float = 3e-3
    batch_size: int = 4
    seed: int = 0


@dataclass(frozen=True)
class MuseZooConfig:
    """Everything that determines a muse-mini zoo's files; its hash names the cache folder."""

    data: MuseMiniConfig = field(default_factory=MuseMiniConfig)
    size: str = "small"
    vocab_size: int = 2048
    train: MuseTrainSettings = field(default_factory=MuseTrainSettings)
    version: int = 1

    def __post_init__(self) -> None:
        if self.size not in SIZES:
            raise ConfigError("zoo", field="size", value=self.size, fix=f"use one of {sorted(SIZES)}")

    def key(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]

    @property
    def head(self) -> str:
        """The name prefix of this zoo's models (`muse-mini` or `muse-mini-<size>`)."""
        return MUSE_ZOO if self.size == "small" else f"{MUSE_ZOO}-{self.size}"


def muse_zoo_dir(cfg: MuseZooConfig) -> Path:
    return cache_root() / "zoo" / f"{MUSE_ZOO}-{cfg.size}-{cfg.key()}"


def parse_muse_zoo_name(name: str) -> tuple[MuseZooConfig, str] | None:
    """`muse-mini/target` -> (default config, "target"); `muse-mini-tiny/retain` -> (tiny, ...); None for other
    names; ConfigError for a muse-mini name with an unknown size or model."""
    parts = split_zoo_name(name, MUSE_ZOO, "small", SIZES, MUSE_ZOO_MODELS)
    return None if parts is None else (MuseZooConfig(size=parts[0]), parts[1])


def muse_data_dir(size: str = "small") -> Path:
    """The corpus folder of the muse-mini zoo of `size` (`<dir>/<subset>/<split>.jsonl`)."""
    return muse_zoo_dir(MuseZooConfig(size=size)) / "data"
