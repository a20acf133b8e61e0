"""The unlearning training loop: config, ForgetRetain data, DeepSpeed / plain-torch engines, `unlearn`.

    from unlearning.train import unlearn, run_train, load_train_config
    history = unlearn(model, method, data, cfg)               # the one loop (loop.py)
    result = run_train(load_train_config("configs/train/npo_tofu_mini.yaml"))   # a whole run (run.py)

Imports are lazy so `import unlearning.train.config` never pulls DeepSpeed in.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "TrainConfig": "config", "LoopConfig": "config", "load_train_config": "config",
    "parse_train_config": "config",
    "ForgetRetainDataset": "data", "build_forget_retain": "data",
    "unlearn": "loop", "TrainingDiverged": "loop", "TrainHistory": "loop",
    "run_train": "run",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f"unlearning.train.{_EXPORTS[name]}"), name)
    raise AttributeError(name)
