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
    """The exported name, its module imported on first use (plain imports, no module names as strings)."""
    where = _EXPORTS.get(name)
    if where == "config":
        from unlearning.train import config as module
    elif where == "data":
        from unlearning.train import data as module
    elif where == "loop":
        from unlearning.train import loop as module
    elif where == "run":
        from unlearning.train import run as module
    else:
        raise AttributeError(name)
    return getattr(module, name)
