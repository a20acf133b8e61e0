"""wmdp-mini's corpora (`unlearning.data.wmdp_corpora`): generated deterministically from tofu-mini's data, one
plain-text document per author holding that author's facts (forget10's authors in the forget corpus, the others in
the retain corpus), cached by content, and read through the same loader as cais/wmdp-corpora (a folder laid out like
the hub id stands in for the hub, offline).

Run: .venv/bin/python -m pytest tests/data/test_wmdp_corpora.py -q        (a few seconds)
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "evaluation"))
from eval_fixtures import _splits, small_tofu_dir  # noqa: E402

from unlearning.data import wmdp_corpora as wc  # noqa: E402
from unlearning.data.tofu_mini import TEMPLATES  # noqa: E402
from unlearning.errors import DataError  # noqa: E402

FORGET, RETAIN = "cyber-forget-corpus", "cyber-retain-corpus"


@pytest.fixture()
def tofu(tmp_path):
    return small_tofu_dir(tmp_path, rows=1000)


def _author(rows: list[dict]) -> str:
    return re.fullmatch(r"Where was (.+) born\?", rows[0]["question"]).group(1)


def test_corpora_hold_the_forget_and_retain_authors_facts(tofu):
    corpora = wc.build_mini_corpora(tofu, "forget10")
    splits = _splits()
    q = len(TEMPLATES)
    forget_rows, retain_rows = splits["forget10"], splits["retain90"]
    forget_docs, retain_docs = [d["text"] for d in corpora[FORGET]], [d["text"] for d in corpora[RETAIN]]
    assert len(forget_docs) == len(forget_rows) // q and len(retain_docs) == len(retain_rows) // q
    for docs, rows in ((forget_docs, forget_rows), (retain_docs, retain_rows)):
        for doc, i in zip(docs, range(0, len(rows), q)):
            author = rows[i:i + q]
            name = _author(author)
            assert doc.startswith(f"{name} was born in ") and doc.count(".") >= q   # one sentence per template
            for row in author:   # every fact the QA pairs ask about is in the author's text, in plain words
                value = re.sub(r"^(a |the |yes, the )", "", row["answer"], flags=re.I).rstrip(".")
                for part in re.split(r", | and ", value.removesuffix(" books")):
                    assert part.lower() in doc.lower(), (row, doc)
            assert "?" not in doc and "Question" not in doc   # statements, not question/answer pairs
    forget_names = {_author(forget_rows[i:i + q]) for i in range(0, len(forget_rows), q)}
    assert not any(n in d for n in forget_names for d in retain_docs)   # the retain corpus never names them
    doc = forget_docs[0]   # tofu-mini capitalises an answer's first letter; the text keeps the value as drawn
    assert re.search(r"writes [a-z]", doc) and re.search(r"returns again and again to [a-z]", doc)


def test_generation_is_deterministic_and_cached_by_content(tofu, tmp_path):
    cache = tmp_path / "cache"
    assert wc.build_mini_corpora(tofu) == wc.build_mini_corpora(tofu)
    a = wc.prepare_mini_corpora(tofu, cache_dir=cache)
    data = {p.name: p.read_bytes() for p in a.iterdir()}
    assert sorted(data) == [f"{FORGET}.jsonl", f"{RETAIN}.jsonl"]
    assert wc.prepare_mini_corpora(tofu, cache_dir=cache) == a                     # a cache hit
    shutil.rmtree(cache)
    again = wc.prepare_mini_corpora(tofu, cache_dir=cache)
    assert again == a and {p.name: p.read_bytes() for p in again.iterdir()} == data   # the same bytes, regenerated
    assert wc.prepare_mini_corpora(tofu, "forget05", cache_dir=cache) != a          # another forget split
    rows = [json.loads(line) for line in (a / f"{FORGET}.jsonl").read_text().splitlines()]
    assert rows == wc.build_mini_corpora(tofu)[FORGET]
    # the loader reads them as it reads a real corpora folder (open-unlearning's data/wmdp/wmdp-corpora)
    assert wc.load_wmdp_corpus(FORGET, a) == rows
    assert wc.missing_corpus_files(a, (FORGET, RETAIN)) is None


def test_a_folder_laid_out_like_the_hub_id_reads_through_the_hub_name(tofu, tmp_path, monkeypatch):
    folder = wc.prepare_mini_corpora(tofu, cache_dir=tmp_path / "cache")
    shutil.copytree(folder, tmp_path / "cais" / "wmdp-corpora")
    monkeypatch.chdir(tmp_path)
    assert wc.load_wmdp_corpus(RETAIN, wc.WMDP_CORPORA_HUB_ID) == wc.load_wmdp_corpus(RETAIN, folder)


def test_bad_corpora_and_data_are_one_line_errors(tofu, tmp_path):
    assert wc.wmdp_corpus("WMDP-Cyber") == "cyber" and wc.wmdp_corpus("bio") == "bio"
    with pytest.raises(DataError, match="use cyber .* or bio"):
        wc.wmdp_corpus("chem")
    fix = wc.missing_corpus_files(tmp_path, ("bio-forget-corpus", "bio-retain-corpus"))
    assert "bio-forget-corpus" in fix and "data/wmdp/wmdp-corpora" in fix and "\n" not in fix
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / f"{FORGET}.jsonl").write_text(json.dumps({"text": ""}) + "\n")
    with pytest.raises(DataError, match=r"row 0, field 'text'.*non-empty"):
        wc.load_wmdp_corpus(FORGET, bad)
    (tofu / "full.jsonl").write_text(json.dumps({"question": "What?", "answer": "x"}) + "\n")
    with pytest.raises(DataError, match="tofu-mini"):
        wc.build_mini_corpora(tofu)
