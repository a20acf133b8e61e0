"""Loads the real TOFU copy at /work/shared/data/tofu/normalized and checks sizes and the relations of
docs/data-and-zoo.md (skipped when that folder is absent). Expected sizes come from the TOFU paper / dataset card.

Run: .venv/bin/python -m pytest tests/data/test_real_tofu.py -q
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from unlearning.data.tofu import TOFU_SPLITS, load_tofu

TOFU_DIR = (Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "tofu" / "normalized").resolve()

pytestmark = pytest.mark.skipif(not TOFU_DIR.is_dir(),
                                reason=f"real TOFU data not found at {TOFU_DIR} (shared data folder absent)")

SIZES = {"full": 4000, "forget01": 40, "forget05": 200, "forget10": 400,
         "forget01_perturbed": 40, "forget05_perturbed": 200, "forget10_perturbed": 400,
         "retain99": 3960, "retain95": 3800, "retain90": 3600, "holdout01": 40, "holdout05": 200,
         "holdout10": 400, "retain_perturbed": 400, "real_authors": 100, "real_authors_perturbed": 100,
         "world_facts": 117, "world_facts_perturbed": 117}
PAIRS = [("forget01", "retain99", 40), ("forget05", "retain95", 200), ("forget10", "retain90", 400)]


@pytest.fixture(scope="module")
def tofu() -> dict[str, list[dict]]:
    return {split: load_tofu(split, TOFU_DIR) for split in TOFU_SPLITS}


def qa(rows: list[dict]) -> list[tuple[str, str]]:
    return [(r["question"], r["answer"]) for r in rows]


def test_every_split_loads_with_its_size(tofu: dict[str, list[dict]]) -> None:
    assert {split: len(rows) for split, rows in tofu.items()} == SIZES


def test_loader_returns_file_rows_unchanged(tofu: dict[str, list[dict]]) -> None:
    lines = (TOFU_DIR / "full.jsonl").read_text(encoding="utf-8").splitlines()
    assert tofu["full"][0] == json.loads(lines[0])
    assert tofu["full"][-1] == json.loads(lines[-1])


@pytest.mark.parametrize(("forget", "retain", "n"), PAIRS)
def test_forget_is_tail_and_retain_is_head_of_full(tofu: dict[str, list[dict]], forget: str, retain: str,
                                                   n: int) -> None:
    full = qa(tofu["full"])
    assert qa(tofu[forget]) == full[len(full) - n:]
    assert qa(tofu[retain]) == full[: len(full) - n]
    assert qa(tofu[retain]) + qa(tofu[forget]) == full  # forget ∪ retain == full, disjoint, in order


@pytest.mark.parametrize("forget", ["forget01", "forget05", "forget10"])
def test_perturbed_forget_has_same_question_answer(tofu: dict[str, list[dict]], forget: str) -> None:
    assert qa(tofu[f"{forget}_perturbed"]) == qa(tofu[forget])
    assert all(len(r["perturbed_answer"]) == 5 for r in tofu[f"{forget}_perturbed"])


def test_holdout_prefixes_and_disjoint_from_full(tofu: dict[str, list[dict]]) -> None:
    assert tofu["holdout01"] == tofu["holdout10"][:40]
    assert tofu["holdout05"] == tofu["holdout10"][:200]
    full_questions = {r["question"] for r in tofu["full"]}
    assert not full_questions & {r["question"] for r in tofu["holdout10"]}


def test_retain_perturbed_comes_from_the_first_441_rows_of_full(tofu: dict[str, list[dict]]) -> None:
    head = set(qa(tofu["full"][:441]))
    assert all(pair in head for pair in qa(tofu["retain_perturbed"]))
    assert set(qa(tofu["retain_perturbed"])).isdisjoint(qa(tofu["forget10"]))


def test_multiple_choice_answer_is_one_of_the_options(tofu: dict[str, list[dict]]) -> None:
    for split in ("real_authors", "world_facts"):
        for r in tofu[split]:
            assert r["answer"] in {r["option1"], r["option2"], r["option3"], r["option4"]}
        perturbed = tofu[f"{split}_perturbed"]
        assert [r["question"] for r in perturbed] == [r["question"] for r in tofu[split]]
        assert all(len(r["perturbed_answer"]) == 3 for r in perturbed)
