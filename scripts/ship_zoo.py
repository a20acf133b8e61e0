"""Maintainers: ship this machine's default zoo pair (tofu-mini/target and retain90) in the clone.

    .venv/bin/python scripts/ship_zoo.py           # after a change of the zoo recipe (a new cache key)

Prepares the pair here if the cache lacks it (training it, not copying an older shipped one), then writes it
under unlearning/models/shipped/<zoo folder>/ with its record (unlearning/models/shipped_zoo.py says what is
checked before a shipped model is used). Commit the new folder and remove the old one.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from unlearning.models.prepare import prepare  # noqa: E402
from unlearning.models.shipped_zoo import write  # noqa: E402
from unlearning.models.zoo import DEFAULT_MODELS, ZooConfig, zoo_dir  # noqa: E402


def main() -> None:
    cfg = ZooConfig()
    manifest = prepare(cfg, models=DEFAULT_MODELS, shipped=False)
    print(f"shipped: {write(zoo_dir(cfg), DEFAULT_MODELS, manifest)}")


if __name__ == "__main__":
    main()
