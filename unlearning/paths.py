"""Where unlearn-sweep keeps what it builds: the cache of generated data and zoo models, and the compiled torch
extensions (DeepSpeed's CPU ops).

`UNLEARN_SWEEP_CACHE` overrides the default `~/.cache/unlearn-sweep`; `TORCH_EXTENSIONS_DIR` (torch's own
variable) the default `<clone>/.cache/torch_extensions`.

    from unlearning.paths import cache_root, torch_extensions_dir
    print(cache_root(), torch_extensions_dir())
"""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "UNLEARN_SWEEP_CACHE"
REPO_ROOT = Path(__file__).resolve().parents[1]


def cache_root() -> Path:
    """The cache directory (created on first use)."""
    root = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "unlearn-sweep").expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root


def torch_extensions_dir() -> Path:
    """Where torch builds its JIT extensions: TORCH_EXTENSIONS_DIR, else `<clone>/.cache/torch_extensions`."""
    return Path(os.environ.get("TORCH_EXTENSIONS_DIR") or REPO_ROOT / ".cache" / "torch_extensions").expanduser()
