"""Tests for unlearning.data.muse and unlearning.data.lkf on fixture files written here (no network).

Run: .venv/bin/python -m pytest tests/data/test_muse_lkf_loaders.py -q
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from unlearning.data.lkf import LKF_SPLITS, lkf_question_variants, load_lkf
from unlearning.data.muse import MUSE_SPLITS, load_muse
from unlearning.errors import DataError


def write_jsonl(path: Path, rows: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


# ---------------------------------------------------------------- MUSE

def test_muse_subsets_and_splits() -> None:
    assert {k: set(v) for k, v in MUSE_SPLITS.items()} == {
        "knowmem": {"forget_qa", "retain_qa", "forget_qa_icl", "retain_qa_icl"},
        "verbmem": {"forget"},
        "privleak": {"forget", "retain", "holdout"},
        "raw": {"forget", "retain1", "retain2", "holdout"},
    }


def test_muse_loads_local_folder_layout(tmp_path: Path) -> None:
    qa = [{"question": "Who won?", "answer": "Team A"}, {"question": "When?", "answer": "2023"}]
    vm = [{"prompt": "Once upon a time", "gt": " there was a wizard."}]
    pl = [{"text": "A held-out news story."}]
    raw = [{"text": "Chunk one."}, {"text": "Chunk two."}]
    write_jsonl(tmp_path / "knowmem" / "forget_qa_icl.jsonl", qa)
    write_jsonl(tmp_path / "verbmem" / "forget.jsonl", vm)
    (tmp_path / "privleak").mkdir()
    (tmp_path / "privleak" / "holdout.json").write_text(json.dumps(pl), encoding="utf-8")
    write_jsonl(tmp_path / "raw" / "retain2.jsonl", raw)
    assert load_muse("news", "knowmem", "forget_qa_icl", tmp_path) == qa
    assert load_muse("News", "verbmem", "forget", str(tmp_path)) == vm
    assert load_muse("MUSE-Books", "privleak", "holdout", tmp_path) == pl
    assert load_muse("muse-bench/MUSE-Books", "raw", "retain2", tmp_path) == raw


@pytest.mark.parametrize(("subset", "split", "rows", "index", "field", "more"), [
    ("verbmem", "forget", [{"prompt": "p", "gt": "g"}, {"prompt": "p"}], 1, "'gt'", ["<missing>"]),
    ("knowmem", "retain_qa", [{"question": "q", "answer": ["a"]}], 0, "'answer'", ["list"]),
    ("privleak", "forget", [{"text": "t"}, {"text": "t"}, {"text": ""}], 2, "'text'", ["non-empty"]),
    ("raw", "retain1", [{"text": 3.5}], 0, "'text'", ["got 3.5", "float"]),
], ids=["verbmem-missing-gt", "knowmem-list-answer", "privleak-empty-text", "raw-float-text"])
def test_muse_bad_row_names_file_row_and_field(tmp_path: Path, subset: str, split: str, rows: list, index: int,
                                               field: str, more: list[str]) -> None:
    write_jsonl(tmp_path / subset / f"{split}.jsonl", rows)
    with pytest.raises(DataError) as err:
        load_muse("news", subset, split, tmp_path)
    msg = str(err.value)
    assert f"{subset}/{split}.jsonl" in msg and f"row {index}" in msg and field in msg
    for text in more:
        assert text in msg


def test_muse_missing_file_names_the_subset_path(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "knowmem" / "forget_qa.jsonl", [{"question": "q", "answer": "a"}])
    with pytest.raises(DataError) as err:
        load_muse("books", "knowmem", "retain_qa", tmp_path)
    msg = str(err.value)
    assert str(tmp_path) in msg and "knowmem/retain_qa.jsonl" in msg and "knowmem/retain_qa.json " in msg
    assert "forget_qa.jsonl" in msg


@pytest.mark.parametrize(("args", "text"), [
    (("wiki", "knowmem", "forget_qa"), "'news'"),
    (("news", "scal", "forget"), "knowmem, verbmem, privleak, raw"),
    (("news", "knowmem", "forget"), "forget_qa, retain_qa, forget_qa_icl, retain_qa_icl"),
    (("books", "raw", "retain"), "forget, retain1, retain2, holdout"),
])
def test_muse_unknown_names_list_the_valid_ones(tmp_path: Path, args: tuple[str, str, str], text: str) -> None:
    with pytest.raises(DataError, match=text):
        load_muse(*args, source=tmp_path)


def test_muse_hub_when_offline_raises_clear_error(offline_hub: None) -> None:
    with pytest.raises(DataError) as err:
        load_muse("books", "knowmem", "forget_qa")
    msg = str(err.value)
    assert "muse-bench/MUSE-Books" in msg and "name=knowmem" in msg and "split=forget_qa" in msg
    assert "offline mode is on" in msg and "knowmem/forget_qa.jsonl" in msg


# ---------------------------------------------------------------- LKF

def para_row(i: int, models: tuple[str, ...] = ("qwen", "phi", "mist")) -> dict:
    row = {"question": f"Q{i}?", "answer": f"A{i}"}
    for m in models:
        for k in range(1, 6):
            row[f"q_{m}{k}"] = f"Q{i} as {m} #{k}?"
    return row


def test_lkf_loads_local_splits(tmp_path: Path) -> None:
    std = [{"question": "Who painted X?", "answer": "Y"}]
    write_jsonl(tmp_path / "forget_standard.jsonl", std)
    write_jsonl(tmp_path / "forget_eval_para.jsonl", [para_row(0), para_row(1)])
    write_jsonl(tmp_path / "relearn_standard.jsonl", std)
    assert load_lkf("forget_standard", tmp_path) == std
    assert load_lkf("forget_eval_para", tmp_path) == [para_row(0), para_row(1)]
    assert load_lkf("relearn", tmp_path) == std  # short name for relearn_standard
    assert set(LKF_SPLITS) == {"forget_standard", "forget_train_para", "forget_eval_para", "retain_standard",
                               "retain_train_para", "retain_eval_para", "relearn_standard"}


def test_lkf_question_variants_order_and_count() -> None:
    variants = lkf_question_variants(para_row(3))
    assert len(variants) == 16
    assert variants[0] == "Q3?"
    assert variants[1] == "Q3 as qwen #1?" and variants[5] == "Q3 as qwen #5?"
    assert variants[6] == "Q3 as phi #1?" and variants[15] == "Q3 as mist #5?"
    # only the present, non-null, non-empty paraphrases (hub rows carry nulls for absent columns)
    row = {"question": "Q?", "answer": "A", "q_phi2": "P2?", "q_qwen1": None, "q_mist3": "", "extra": "x"}
    assert lkf_question_variants(row) == ["Q?", "P2?"]


def test_lkf_eval_para_paraphrases_are_optional_but_checked(tmp_path: Path) -> None:
    rows = [{"question": "Q?", "answer": "A", "q_qwen1": "Q1?", "q_phi1": None},
            {"question": "Q2?", "answer": "A2", "q_mist2": 7}]
    write_jsonl(tmp_path / "retain_eval_para.jsonl", rows)
    with pytest.raises(DataError) as err:
        load_lkf("retain_eval_para", tmp_path)
    msg = str(err.value)
    assert "retain_eval_para.jsonl" in msg and "row 1" in msg and "'q_mist2'" in msg and "got 7" in msg
    write_jsonl(tmp_path / "retain_eval_para.jsonl", rows[:1])
    assert load_lkf("retain_eval_para", tmp_path) == rows[:1]


def test_lkf_bad_row_and_missing_file(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "retain_standard.jsonl", [{"question": "Q?", "answer": "A"}, {"question": "Q?"}])
    with pytest.raises(DataError) as err:
        load_lkf("retain_standard", tmp_path)
    msg = str(err.value)
    assert "retain_standard.jsonl" in msg and "row 1" in msg and "'answer'" in msg
    with pytest.raises(DataError) as err:
        load_lkf("forget_train_para", tmp_path)
    msg = str(err.value)
    assert "forget_train_para.jsonl" in msg and "forget_train_para.json " in msg and str(tmp_path) in msg


def test_lkf_unknown_split_lists_valid_names(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        load_lkf("forget_para", tmp_path)
    msg = str(err.value)
    assert "'forget_para'" in msg and "forget_eval_para" in msg and "relearn_standard" in msg


def test_lkf_hub_when_offline_raises_clear_error(offline_hub: None) -> None:
    with pytest.raises(DataError) as err:
        load_lkf("forget_eval_para")
    msg = str(err.value)
    assert "nmndeep/LKF-forget_eval_para" in msg and "split=train" in msg
    assert "offline mode is on" in msg and "forget_eval_para.jsonl" in msg
