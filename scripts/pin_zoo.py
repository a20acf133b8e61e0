"""Pin this machine's default zoo pair (tofu-mini/target and retain90) so that other machines sweep the same models.

    .venv/bin/python scripts/pin_zoo.py           # -> $UNLEARN_SWEEP_PINNED_ZOO or <clone>/.cache/pinned-zoo

Prepares the pair here if the cache lacks it (training it, not copying an older pinned one), then writes it with
its record (unlearning/models/pinned_zoo.py says what is checked before a pinned model is used). Share the folder
(a shared file system, a CI cache) and point UNLEARN_SWEEP_PINNED_ZOO at it; never commit weights to git.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from unlearning.models.prepare import prepare  # noqa: E402
from unlearning.models.pinned_zoo import write  # noqa: E402
from unlearning.models.zoo import DEFAULT_MODELS, ZooConfig, zoo_dir  # noqa: E402


def main() -> None:
    cfg = ZooConfig()
    manifest = prepare(cfg, models=DEFAULT_MODELS, pinned=False)
    print(f"pinned: {write(zoo_dir(cfg), DEFAULT_MODELS, manifest)}")


if __name__ == "__main__":
    main()
