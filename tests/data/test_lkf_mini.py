"""lkf-mini: LKF's exact splits and fields generated from tofu-mini's facts, deterministic, and read through the
same loader as the hub's nmndeep/LKF-* (tested on a generated folder laid out like the hub ids).

Run: .venv/bin/python -m pytest tests/data/test_lkf_mini.py -q
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "evaluation"))
from eval_fixtures import _splits, small_tofu_dir  # noqa: E402

from unlearning.data.lkf import LKF_PARAPHRASE_FIELDS, LKF_SPLITS, lkf_question_variants, load_lkf  # noqa: E402
from unlearning.benchmarks.lkf_mini import PARAPHRASES, write_lkf_mini  # noqa: E402


@pytest.fixture()
def lkf_dir(tmp_path):
    tofu = small_tofu_dir(tmp_path, rows=1000)
    return write_lkf_mini(tofu, tmp_path / "lkf-mini")


def test_every_lkf_split_with_lkf_fields(lkf_dir):
    splits = _splits()
    rows = {s: load_lkf(s, lkf_dir) for s in LKF_SPLITS}  # schema-checked on load
    facts = splits["forget05_perturbed"]
    assert [(r["question"], r["answer"]) for r in rows["forget_standard"]] == [(f["question"], f["answer"]) for f in facts]
    assert len(rows["forget_train_para"]) == 2 * len(facts)
    assert {r["question"] for r in rows["forget_train_para"]} == \
        {f[k] for f in facts for k in ("question", "paraphrased_question")}
    for row, fact in zip(rows["forget_eval_para"], facts):
        assert set(row) == {"question", "answer", *LKF_PARAPHRASE_FIELDS}
        variants = lkf_question_variants(row)
        assert len(variants) == 16 == len(set(variants)) and variants[0] == fact["question"]
        assert fact["paraphrased_question"] in variants  # the hand-written paraphrase is one of the 15
    assert len(PARAPHRASES["qwen"]) == len(PARAPHRASES["phi"]) == len(PARAPHRASES["mist"]) == 5
    # retain: everything the target learnt but the forget facts; its evaluation has the question + 6 variants
    assert [r["question"] for r in rows["retain_standard"]] == [r["question"] for r in splits["retain95"]]
    assert all(len(lkf_question_variants(r)) == 7 for r in rows["retain_eval_para"])
    # the relearning set is disjoint from the forget facts (LKF's general-knowledge set)
    forget_q = {f["question"] for f in facts}
    assert rows["relearn_standard"] and not forget_q & {r["question"] for r in rows["relearn_standard"]}
    assert load_lkf("relearn", lkf_dir) == rows["relearn_standard"]


def test_deterministic_from_the_tofu_mini_files(tmp_path, lkf_dir):
    again = write_lkf_mini(tmp_path / "tofu", tmp_path / "again")
    for split in LKF_SPLITS:
        assert (again / f"{split}.jsonl").read_bytes() == (lkf_dir / f"{split}.jsonl").read_bytes()
    assert json.loads((again / "lkf_mini.json").read_text())["rows"]["forget_eval_para"] == 20


def test_hub_names_go_through_the_same_loader(tmp_path, lkf_dir, monkeypatch):
    """`source: hub` reads nmndeep/LKF-<split> (split "train") with datasets.load_dataset; a folder laid out like
    the hub ids stands in for the hub, so this is the hub code path end to end, offline."""
    hub = tmp_path / "hub"
    for split in LKF_SPLITS:
        (hub / "nmndeep" / f"LKF-{split}").mkdir(parents=True)
        shutil.copy(lkf_dir / f"{split}.jsonl", hub / "nmndeep" / f"LKF-{split}" / "train.jsonl")
    monkeypatch.chdir(hub)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf" / "datasets"))
    for split in ("forget_standard", "forget_eval_para", "relearn_standard"):
        assert load_lkf(split) == load_lkf(split, lkf_dir)  # None = the hub prefix nmndeep/LKF
    assert load_lkf("retain_standard", "nmndeep/LKF") == load_lkf("retain_standard", lkf_dir)


def test_train_sources_resolve(tmp_path, lkf_dir, monkeypatch):
    from unlearning.benchmarks.lkf import lkf_source as resolve_lkf_source
    from unlearning.errors import ConfigError

    assert resolve_lkf_source("hub") is None  # nmndeep/LKF-<split>
    assert resolve_lkf_source(str(lkf_dir)) == lkf_dir
    assert resolve_lkf_source("someone/LKF-copy") == "someone/LKF-copy"  # another hub prefix
    monkeypatch.setenv("UNLEARN_SWEEP_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(ConfigError, match="prepare tofu-mini --size tiny"):
        resolve_lkf_source("lkf-mini-tiny")
