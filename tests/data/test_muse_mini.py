"""muse-mini: MUSE's schema and split semantics on generated data, and open-unlearning's raw-text chunking.

Run: pytest tests/data/test_muse_mini.py -q
"""

from __future__ import annotations

import math
import re

import pytest

from unlearning.data.muse import MUSE_SPLITS, chunk_corpus, load_muse
from unlearning.data.muse_mini import MuseMiniConfig, write

CFG = MuseMiniConfig()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write(CFG, tmp_path_factory.mktemp("muse-mini"))


def split(folder, subset, name):
    return load_muse("news", subset, name, folder)


def authors_in(texts) -> set[str]:
    """The authors named at the start of articles ("<First> <Last> was born in ...")."""
    return {m.group(1) for t in texts for m in [re.match(r"(\S+ \S+) was born in", t)] if m}


def test_every_muse_split_loads_with_the_muse_schema(corpus):
    sizes = {(s, n): len(split(corpus, s, n)) for s, names in MUSE_SPLITS.items() for n in names}
    qa = CFG.qa_per_author
    assert sizes[("raw", "forget")] == 2 * CFG.n_forget  # an article and an interview per author
    assert sizes[("raw", "retain1")] == 2 * CFG.n_retain1 and sizes[("raw", "holdout")] == 2 * CFG.n_holdout
    assert sizes[("knowmem", "forget_qa")] == CFG.n_forget * qa - CFG.icl
    assert sizes[("knowmem", "retain_qa")] == CFG.n_retain2 * qa - CFG.icl
    assert sizes[("knowmem", "forget_qa_icl")] == sizes[("knowmem", "retain_qa_icl")] == CFG.icl
    assert sizes[("verbmem", "forget")] == CFG.n_forget
    assert sizes[("privleak", "forget")] == sizes[("privleak", "holdout")] == 3 * CFG.n_forget


def test_splits_keep_muse_semantics(corpus):
    groups = {g: [r["text"] for r in split(corpus, "raw", g)] for g in ("forget", "retain1", "retain2", "holdout")}
    people = {g: authors_in(t) for g, t in groups.items()}
    assert [len(people[g]) for g in people] == [CFG.n_forget, CFG.n_retain1, CFG.n_retain2, CFG.n_holdout]
    for a in people:
        for b in people:
            assert a == b or not people[a] & people[b], (a, b)

    def named(rows, key):
        return {p for r in rows for g in people for p in people[g] if p in r[key]}

    # knowmem asks about the forget authors (forget_qa) and the evaluation-only retain2 authors (retain_qa)
    assert named(split(corpus, "knowmem", "forget_qa"), "question") == people["forget"]
    assert named(split(corpus, "knowmem", "retain_qa"), "question") <= people["retain2"]
    # the answers are in the forget corpus the target model trains on
    forget_text = "\n\n".join(groups["forget"])
    assert all(f"Question: {r['question']}\nAnswer:\n{r['answer']}" in forget_text
               for r in split(corpus, "knowmem", "forget_qa"))
    # verbmem: prompt + " " + gt is the start of a forget article
    for r in split(corpus, "verbmem", "forget"):
        assert any(t.startswith(f"{r['prompt']} {r['gt']}") for t in groups["forget"])
    # privleak: members from the forget corpus, non-members never trained on
    trained = "\n\n".join(groups["forget"] + groups["retain1"] + groups["retain2"])
    assert all(r["text"] in forget_text for r in split(corpus, "privleak", "forget"))
    assert all(r["text"] not in trained for r in split(corpus, "privleak", "holdout"))
    assert named(split(corpus, "privleak", "holdout"), "text") == people["holdout"]


def test_generation_is_deterministic_in_the_seed(corpus, tmp_path):
    again = write(CFG, tmp_path / "again")
    other = write(MuseMiniConfig(seed=1), tmp_path / "other")
    for name in ("raw/forget.jsonl", "knowmem/retain_qa.jsonl", "privleak/holdout.jsonl"):
        assert (again / name).read_bytes() == (corpus / name).read_bytes()
        assert (other / name).read_bytes() != (corpus / name).read_bytes()
    with pytest.raises(ValueError, match="n_forget"):
        MuseMiniConfig(n_forget=0)


def test_chunk_corpus_cuts_the_joined_tokens_every_max_length(corpus):
    """open-unlearning's PretrainingDataset: join with a blank line, tokenise once, cut, decode."""
    from unlearning.models.tokenizer import train_bpe_tokenizer

    texts = [r["text"] for r in split(corpus, "raw", "forget")]
    tok = train_bpe_tokenizer(texts, vocab_size=400)
    ids = tok("\n\n".join(texts), add_special_tokens=False)["input_ids"]
    chunks = chunk_corpus(tok, texts, 64)
    assert len(chunks) == math.ceil(len(ids) / 64)
    assert "".join(chunks) == "\n\n".join(texts)  # consecutive pieces, nothing lost or repeated
    assert [tok.decode(ids[i:i + 64]) for i in range(0, len(ids), 64)] == chunks
