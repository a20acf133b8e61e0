"""MUSE-News / MUSE-Books splits (docs/muse.md, docs/data-and-zoo.md): subsets, splits, row schemas, and `load_muse`.

    from unlearning.data.muse import load_muse
    qa = load_muse("news", "knowmem", "forget_qa")                      # hub: muse-bench/MUSE-News
    vm = load_muse("books", "verbmem", "forget", source="/data/muse-books")  # <source>/verbmem/forget.jsonl
    chunks = chunk_corpus(tokenizer, [r["text"] for r in load_muse("news", "raw", "forget")], max_length=2048)

Subsets and their splits: knowmem (forget_qa, retain_qa, forget_qa_icl, retain_qa_icl: question, answer),
verbmem (forget: prompt, gt), privleak (forget, retain, holdout: text), raw (forget, retain1, retain2,
holdout: text). A local folder holds one corpus as `<source>/<subset>/<split>.jsonl` (or `.json`).
`chunk_corpus` cuts a raw split into the training texts of open-unlearning's MUSE recipe (its
`PretrainingDataset`: the texts joined by a blank line, tokenised once, cut every `max_length` tokens).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from unlearning.data.io import HubRef, load_split
from unlearning.data.schema import Schema, text
from unlearning.errors import DataError

MUSE_HUB_IDS = {"news": "muse-bench/MUSE-News", "books": "muse-bench/MUSE-Books"}

_QA = Schema("MUSE knowmem question/answer", (text("question"), text("answer")))
_VERBMEM = Schema("MUSE verbmem prompt/gt", (text("prompt"), text("gt")))
_TEXT = Schema("MUSE text", (text("text"),))

MUSE_SPLITS: dict[str, dict[str, Schema]] = {
    "knowmem": {s: _QA for s in ("forget_qa", "retain_qa", "forget_qa_icl", "retain_qa_icl")},
    "verbmem": {"forget": _VERBMEM},
    "privleak": {s: _TEXT for s in ("forget", "retain", "holdout")},
    "raw": {s: _TEXT for s in ("forget", "retain1", "retain2", "holdout")},
}


def muse_corpus(corpus: str) -> str:
    """Canonical corpus key "news" / "books" from "news", "News", "MUSE-News", "muse-bench/MUSE-News", ..."""
    key = corpus.strip().lower().rsplit("/", 1)[-1].removeprefix("muse-").removeprefix("muse_")
    if key not in MUSE_HUB_IDS:
        raise DataError("MUSE corpus", field="corpus", value=corpus,
                        fix="use 'news' (MUSE-News) or 'books' (MUSE-Books)")
    return key


def muse_schema(subset: str, split: str) -> Schema:
    """The row schema of one MUSE subset/split; DataError listing the valid names otherwise."""
    if subset not in MUSE_SPLITS:
        raise DataError("MUSE subset", field="subset", value=subset, fix=f"use one of: {', '.join(MUSE_SPLITS)}")
    if split not in MUSE_SPLITS[subset]:
        raise DataError(f"MUSE subset '{subset}'", field="split", value=split,
                        fix=f"use one of the '{subset}' splits: {', '.join(MUSE_SPLITS[subset])}")
    return MUSE_SPLITS[subset][split]


def load_muse(corpus: str, subset: str, split: str, source: str | Path | None = None) -> list[dict]:
    """Rows of one MUSE split, schema-checked.

    `source`: None -> the corpus' hub id; a local folder -> `<source>/<subset>/<split>.jsonl|.json`; another
    hub id -> `datasets.load_dataset(source, name=subset, split=split)`. DataError on an unknown corpus,
    subset or split, a missing file, an unreachable hub, or a row that does not match the schema.
    """
    hub_id = MUSE_HUB_IDS[muse_corpus(corpus)]
    schema = muse_schema(subset, split)
    return load_split(hub_id if source is None else source,
                      stem=f"{subset}/{split}", what=f"MUSE {subset} split",
                      hub_ref=lambda repo: HubRef(repo, subset, split), schema=schema)


def chunk_corpus(tokenizer: Any, texts: Sequence[str], max_length: int) -> list[str]:
    """open-unlearning's MUSE training texts: `texts` joined with "\\n\\n", tokenised without special tokens,
    cut into consecutive pieces of `max_length` tokens, each decoded back to text (an empty last piece is
    dropped; the pieces are tokenised again, with BOS, as raw-text items by the caller)."""
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
        raise DataError("MUSE chunks", field="max_length", value=max_length, fix="use a positive integer")
    ids = tokenizer("\n\n".join(texts), add_special_tokens=False, verbose=False)["input_ids"]  # longer than the model
    return [tokenizer.decode(ids[i:i + max_length]) for i in range(0, len(ids), max_length)]
