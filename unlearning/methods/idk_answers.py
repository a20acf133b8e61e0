"""The "I don't know" answers IdkDPO trains towards (99 refusal sentences written for this project).

    from unlearning.methods.idk_answers import load_idk_answers, sample_idk_answer
    answers = load_idk_answers()                          # 99 strings from idk_answers.txt
    text = sample_idk_answer(torch.Generator().manual_seed(0))

OU draws one IDK answer uniformly at random for every forget item each time it is read (open-unlearning
`src/data/qa.py:QAwithIdkDataset` @ d3d7cf9e); the
data pipeline does that with ``sample_idk_answer`` and its own seeded generator.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch

from unlearning.errors import DataError

IDK_ANSWERS_PATH = Path(__file__).with_name("idk_answers.txt")


@lru_cache(maxsize=4)
def _load(path: str) -> tuple[str, ...]:
    p = Path(path)
    if not p.is_file():
        raise DataError(str(p), value=None, fix="give an existing text file with one answer per line")
    answers = tuple(line.strip() for line in p.read_text(encoding="utf-8").splitlines() if line.strip())
    if not answers:
        raise DataError(str(p), value="empty", fix="the file needs at least one non-empty line")
    return answers


def load_idk_answers(path: str | Path | None = None) -> list[str]:
    """Non-empty lines of ``path`` (default: the bundled idk_answers.txt)."""
    return list(_load(str(path or IDK_ANSWERS_PATH)))


def sample_idk_answer(generator: torch.Generator | None = None, path: str | Path | None = None) -> str:
    """One answer drawn uniformly with ``generator`` (global torch RNG if None)."""
    answers = _load(str(path or IDK_ANSWERS_PATH))
    return answers[int(torch.randint(len(answers), (1,), generator=generator))]
