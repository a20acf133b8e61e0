"""The bundled "I don't know" answers: 99 distinct lines, our own text, seeded sampling."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from unlearning.errors import DataError
from unlearning.methods.idk_answers import IDK_ANSWERS_PATH, load_idk_answers, sample_idk_answer

TOFU_IDK = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "tofu" / "idk" / "idontknow.jsonl"


def test_99_distinct_answers():
    answers = load_idk_answers()
    assert len(answers) == 99 and len(set(answers)) == 99
    assert all(a and a == a.strip() for a in answers)


def test_sampling_is_seeded_and_uniform_over_the_file():
    a = [sample_idk_answer(torch.Generator().manual_seed(s)) for s in range(5)]
    b = [sample_idk_answer(torch.Generator().manual_seed(s)) for s in range(5)]
    assert a == b and all(x in load_idk_answers() for x in a)
    gen = torch.Generator().manual_seed(0)
    assert len({sample_idk_answer(gen) for _ in range(400)}) > 90


def test_bad_path(tmp_path):
    with pytest.raises(DataError, match="existing text file"):
        load_idk_answers(tmp_path / "missing.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n")
    with pytest.raises(DataError, match="non-empty"):
        load_idk_answers(empty)


def test_not_copied_from_tofu():
    if not TOFU_IDK.is_file():
        pytest.skip(f"TOFU idk file not found at {TOFU_IDK}")
    theirs = set()
    for line in TOFU_IDK.read_text().splitlines():  # plain text lines (JSON strings also accepted)
        if line.strip():
            try:
                text = json.loads(line)
            except json.JSONDecodeError:
                text = line
            theirs.add(str(text).strip().lower().rstrip("."))
    assert len(theirs) > 50
    ours = {a.lower().rstrip(".") for a in IDK_ANSWERS_PATH.read_text().splitlines() if a.strip()}
    assert not ours & theirs
