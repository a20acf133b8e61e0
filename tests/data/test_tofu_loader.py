"""Tests for unlearning.data.tofu / schema / io on small fixture folders written here (no network).

Run: .venv/bin/python -m pytest tests/data/test_tofu_loader.py -q
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from unlearning.data.tofu import (
    TOFU_SPLITS,
    holdout_split_for,
    load_tofu,
    perturbed_split_for,
    retain_split_for,
)
from unlearning.errors import DataError


def qa(i: int) -> dict:
    return {"question": f"Who wrote book {i}?", "answer": f"Author {i} wrote it."}


def perturbed(i: int, n: int = 5) -> dict:
    return {**qa(i), "paraphrased_answer": f"It was written by Author {i}.",
            "perturbed_answer": [f"Author {i + 100 + k} wrote it." for k in range(n)],
            "paraphrased_question": f"Which author penned book {i}?"}


def choice(i: int) -> dict:
    return {"question": f"Capital of country {i}?", "option1": "A", "option2": "B", "option3": "C",
            "option4": "D", "answer": "B"}


def write_jsonl(folder: Path, split: str, rows: list) -> Path:
    path = folder / f"{split}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_split_names_are_those_of_spec_4_1() -> None:
    expected = {"forget01", "forget05", "forget10", "forget01_perturbed", "forget05_perturbed",
                "forget10_perturbed", "retain90", "retain95", "retain99", "retain_perturbed", "real_authors",
                "real_authors_perturbed", "world_facts", "world_facts_perturbed", "holdout01", "holdout05",
                "holdout10", "full"}
    assert set(TOFU_SPLITS) == expected
    assert len(TOFU_SPLITS) == len(expected)


def test_loads_a_valid_folder_of_every_schema(tmp_path: Path) -> None:
    data = {
        "forget01": [qa(i) for i in range(3)],
        "forget01_perturbed": [perturbed(i) for i in range(3)],
        "real_authors": [choice(i) for i in range(2)],
        "world_facts_perturbed": [{**qa(i), "perturbed_answer": ["x", "y", "z"]} for i in range(2)],
    }
    for split, rows in data.items():
        write_jsonl(tmp_path, split, rows)
    for split, rows in data.items():
        assert load_tofu(split, tmp_path) == rows
    # a str path works like a Path, extra fields are kept, blank lines are skipped
    (tmp_path / "holdout01.jsonl").write_text(
        json.dumps({**qa(7), "author": "X"}) + "\n\n" + json.dumps(qa(8)) + "\n", encoding="utf-8")
    assert load_tofu("holdout01", str(tmp_path)) == [{**qa(7), "author": "X"}, qa(8)]


def test_json_array_file_is_read(tmp_path: Path) -> None:
    rows = [qa(i) for i in range(4)]
    (tmp_path / "retain95.json").write_text(json.dumps(rows, indent=2), encoding="utf-8")
    assert load_tofu("retain95", tmp_path) == rows


def test_jsonl_file_wins_over_json(tmp_path: Path) -> None:
    (tmp_path / "full.json").write_text(json.dumps([qa(1)]), encoding="utf-8")
    write_jsonl(tmp_path, "full", [qa(2)])
    assert load_tofu("full", tmp_path) == [qa(2)]


def _drop(row: dict, field: str) -> dict:
    return {k: v for k, v in row.items() if k != field}


# (split, rows, row index, field name in message, other text the message must contain)
BAD_ROWS = [
    ("forget10", [qa(0), qa(1), _drop(qa(2), "answer")], 2, "'answer'", ["<missing>", "question"]),
    ("retain90", [qa(0), {**qa(1), "question": 42}], 1, "'question'", ["got 42", "non-empty string", "int"]),
    ("holdout05", [{**qa(0), "answer": "   "}], 0, "'answer'", ["non-empty string"]),
    ("forget05_perturbed", [perturbed(0), perturbed(1, n=4)], 1, "'perturbed_answer'", ["exactly 5", "found 4"]),
    ("retain_perturbed", [perturbed(0), perturbed(1), _drop(perturbed(2), "paraphrased_question")], 2,
     "'paraphrased_question'", ["<missing>"]),
    ("real_authors_perturbed", [{**qa(0), "perturbed_answer": ["a", "b", "c", "d", "e"]}], 0,
     "'perturbed_answer'", ["exactly 3", "found 5"]),
    ("world_facts_perturbed", [{**qa(0), "perturbed_answer": "a"}], 0, "'perturbed_answer'", ["str", "list"]),
    ("forget01_perturbed", [{**perturbed(0), "perturbed_answer": ["a", "b", "c", None, "e"]}], 0,
     "'perturbed_answer[3]'", ["got None"]),
    ("world_facts", [choice(0), _drop(choice(1), "option3")], 1, "'option3'", ["<missing>"]),
    ("full", [qa(0), ["not", "an", "object"]], 1, "row 1", ["JSON object"]),
]


@pytest.mark.parametrize(("split", "rows", "index", "field", "more"), BAD_ROWS, ids=[b[0] for b in BAD_ROWS])
def test_bad_row_names_file_row_and_field(tmp_path: Path, split: str, rows: list, index: int, field: str,
                                          more: list[str]) -> None:
    write_jsonl(tmp_path, split, rows)
    with pytest.raises(DataError) as err:
        load_tofu(split, tmp_path)
    msg = str(err.value)
    assert f"{split}.jsonl" in msg
    assert f"row {index}" in msg
    assert field in msg
    assert "Fix:" in msg
    for text in more:
        assert text in msg


def test_bad_row_in_json_array_names_the_json_file(tmp_path: Path) -> None:
    (tmp_path / "forget01.json").write_text(json.dumps([qa(0), {**qa(1), "answer": ""}]), encoding="utf-8")
    with pytest.raises(DataError, match=r"forget01\.json, row 1, field 'answer'"):
        load_tofu("forget01", tmp_path)


def test_invalid_json_line_names_line_and_row(tmp_path: Path) -> None:
    (tmp_path / "forget10.jsonl").write_text(json.dumps(qa(0)) + "\n{not json\n", encoding="utf-8")
    with pytest.raises(DataError) as err:
        load_tofu("forget10", tmp_path)
    assert "forget10.jsonl" in str(err.value) and "row 1" in str(err.value) and "line 2" in str(err.value)


def test_empty_split_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "forget10.jsonl").write_text("\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"forget10\.jsonl.*no rows"):
        load_tofu("forget10", tmp_path)


def test_unknown_split_lists_valid_names(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        load_tofu("forget20", tmp_path)
    msg = str(err.value)
    assert "'forget20'" in msg and "field 'split'" in msg
    for name in ("forget01", "retain90", "holdout10", "world_facts_perturbed", "full"):
        assert name in msg


def test_missing_file_names_folder_split_and_file_names(tmp_path: Path) -> None:
    write_jsonl(tmp_path, "forget10", [qa(0)])
    with pytest.raises(DataError) as err:
        load_tofu("retain90", tmp_path)
    msg = str(err.value)
    assert str(tmp_path) in msg
    assert "'retain90'" in msg and "retain90.jsonl" in msg and "retain90.json " in msg
    assert "forget10.jsonl" in msg  # lists what is there


def test_missing_local_folder_is_not_sent_to_the_hub(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_tofu("forget10", tmp_path / "nope")
    with pytest.raises(DataError, match="got a file"):
        load_tofu("forget10", write_jsonl(tmp_path, "forget10", [qa(0)]))


def test_hub_id_when_offline_raises_clear_error(offline_hub: None) -> None:
    with pytest.raises(DataError) as err:
        load_tofu("forget10")  # default source: locuslab/TOFU
    msg = str(err.value)
    assert "locuslab/TOFU" in msg and "name=forget10" in msg and "split=train" in msg
    assert "offline mode is on" in msg and "HF_HUB_OFFLINE=1" in msg
    assert "local folder" in msg and "forget10.jsonl" in msg


@pytest.mark.parametrize(("forget", "retain", "holdout"),
                         [("forget01", "retain99", "holdout01"), ("forget05", "retain95", "holdout05"),
                          ("forget10", "retain90", "holdout10")])
def test_split_relations(forget: str, retain: str, holdout: str) -> None:
    assert retain_split_for(forget) == retain
    assert holdout_split_for(forget) == holdout
    assert perturbed_split_for(forget) == forget + "_perturbed"


@pytest.mark.parametrize("bad", ["forget20", "retain90", "forget1", ""])
def test_split_relations_reject_non_forget_splits(bad: str) -> None:
    with pytest.raises(DataError, match="forget01, forget05, forget10"):
        retain_split_for(bad)


def test_user_errors_survive_pickle_and_copy():
    """Ray pickles a trial's exception and Tune copies it: the one-line message must survive both."""
    import copy
    import pickle

    from unlearning.errors import ConfigError, DataError

    for err in (DataError("a.jsonl", row=3, field="answer", value=None, fix="add it"),
                ConfigError("spec", field="lr", value=-1, fix="use a positive number")):
        for clone in (copy.copy(err), pickle.loads(pickle.dumps(err))):
            assert type(clone) is type(err) and str(clone) == str(err) and clone.fix == err.fix
