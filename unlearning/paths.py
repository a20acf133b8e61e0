"""Where unlearn-sweep keeps what it builds: the cache of generated data and zoo models.

`UNLEARN_SWEEP_CACHE` overrides the default `~/.cache/unlearn-sweep`.

    from unlearning.paths import cache_root
    print(cache_root())
"""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "UNLEARN_SWEEP_CACHE"


def cache_root() -> Path:
    """The cache directory (created on first use)."""
    root = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "unlearn-sweep").expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root
