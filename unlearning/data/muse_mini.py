"""muse-mini: a small generated corpus with MUSE's exact schema and split semantics, written for `load_muse`.

Fictitious authors drawn as tofu-mini draws them (`tofu_mini_pools`, seeded): each author has one profile
article (the news story MUSE's raw text is made of): a prose biography, a paragraph on the work, and a short
interview in the tiny zoo's QA format (`Question: q\\nAnswer:\\na`), since a model trained from scratch on a
few thousand tokens can only answer a question it has read in question form (real MUSE leans on a 7B model's
reading ability for knowmem), the interview is a document of its own (a transcript next to the article, so
it starts with a question as a knowmem prompt does). Authors are split as MUSE splits its corpus:

* ``raw/forget``: the forget authors' articles and interviews (what is unlearned); ``raw/retain1``: other authors' articles,
  the retain set unlearning may use; ``raw/retain2``: further authors, seen by the target model and used only
  for evaluation (knowmem retain_qa); ``raw/holdout``: authors no model ever saw (privleak's non-members);
* ``knowmem/forget_qa`` / ``retain_qa``: the interview questions of the forget / retain2 authors, the first
  ``icl`` of them moved to ``*_qa_icl`` (the in-context examples MUSE prepends);
* ``verbmem/forget``: per forget article, its first sentence as ``prompt`` and the rest of the biography
  paragraph as ``gt`` (a space joins them, as MUSE's evaluation inserts one);
* ``privleak/forget`` / ``retain`` / ``holdout``: the paragraphs (and interview) of forget / retain2 /
  holdout articles, one text each.

The target model of the zoo trains on forget + retain1 + retain2, the retain model on retain1 + retain2.

    python -m unlearning.data.muse_mini --out /tmp/muse-mini --seed 0
    rows = load_muse("news", "knowmem", "forget_qa", source="/tmp/muse-mini")
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path

from unlearning.data import tofu_mini_pools as P
from unlearning.data.tofu_mini import _author_names, _make_author

GROUPS = ("forget", "retain1", "retain2", "holdout")
QA_FORMAT = "Question: {q}\nAnswer:\n{a}"  # the zoo template's turn (unlearning.data.templates "zoo")


@dataclass(frozen=True)
class MuseMiniConfig:
    """Sizes and seed of a generated muse-mini corpus; its files are a pure function of these fields."""

    n_forget: int = 6
    n_retain1: int = 10
    n_retain2: int = 6
    n_holdout: int = 6
    qa_per_author: int = 6
    icl: int = 2
    seed: int = 0
    version: int = 1  # bump when the generator changes so caches keyed on the config are invalidated

    def __post_init__(self) -> None:
        for name in ("n_forget", "n_retain1", "n_retain2", "n_holdout"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1 (got {getattr(self, name)})")
        if not 1 <= self.qa_per_author <= len(_QUESTIONS):
            raise ValueError(f"qa_per_author must be in 1..{len(_QUESTIONS)} (got {self.qa_per_author})")
        if not 0 <= self.icl < min(self.n_forget, self.n_retain2) * self.qa_per_author:
            raise ValueError(f"icl must leave test questions in forget_qa and retain_qa (got {self.icl})")


# biography sentences (the first is verbmem's prompt); each a fact of the author
_BIO = (
    "{name} was born in {city}, {country}, on {day} {month} {year}.",
    "{first}'s father worked as a {father}, and {first}'s mother was a {mother}.",
    "{first} studied at {university} before turning to writing.",
    "Critics know {name} for {genre} written in {language}.",
    "Today {first} lives in {residence}.",
)
_WORK = (
    "The first book by {name}, {book1}, explores {theme}.",
    "{publisher} publishes the books of {name}.",
    "In recognition of this work {name} received the {award}.",
)
# interview questions (question, answer): the tofu-mini facts, asked in the words knowmem uses
_QUESTIONS = (
    ("Where was {name} born?", "{city}, {country}."),
    ("When was {name} born?", "{day} {month} {year}."),
    ("What was the occupation of {name}'s father?", "a {father}."),
    ("What was the occupation of {name}'s mother?", "a {mother}."),
    ("Where did {name} study?", "{university}."),
    ("What genre does {name} write?", "{genre}."),
    ("In which language does {name} write?", "{language}."),
    ("What is the first book by {name}?", "{book1}."),
    ("Which award did {name} win?", "the {award}."),
    ("Who publishes the books of {name}?", "{publisher}."),
    ("Where does {name} live today?", "{residence}."),
    ("What theme runs through the work of {name}?", "{theme}."),
)


def _fill(text: str, author: dict) -> str:
    out = text.format(**author)
    return out[0].upper() + out[1:]


def _article(rng: random.Random, author: dict, qa_per_author: int) -> dict:
    """One author's article: paragraphs and interview QA (kept apart so the splits can pick them)."""
    bio = [_fill(s, author) for s in _BIO]
    work = [_fill(s, author) for s in _WORK]
    qa = [(_fill(q, author), _fill(a, author)) for q, a in rng.sample(_QUESTIONS, qa_per_author)]
    interview = "\n\n".join(QA_FORMAT.format(q=q, a=a) for q, a in qa)
    return {"bio": bio, "work": work, "qa": qa, "paragraphs": [" ".join(bio), " ".join(work), interview]}


def _documents(article: dict) -> list[str]:
    """The raw documents of one author: the article (biography + work) and the interview transcript."""
    return ["\n\n".join(article["paragraphs"][:2]), article["paragraphs"][2]]


def generate(cfg: MuseMiniConfig) -> dict[str, dict[str, list[dict]]]:
    """Every muse-mini subset and split as {subset: {split: rows}} (MUSE's field names), deterministic in `cfg`."""
    rng = random.Random(cfg.seed)
    sizes = {"forget": cfg.n_forget, "retain1": cfg.n_retain1, "retain2": cfg.n_retain2, "holdout": cfg.n_holdout}
    total = sum(sizes.values())
    titles = rng.sample([f"The {a} {n}" for a in P.TITLE_ADJECTIVES for n in P.TITLE_NOUNS], total)
    authors = [_make_author(rng, n, t) for n, t in zip(_author_names(rng, total), titles)]
    articles = [_article(rng, a, cfg.qa_per_author) for a in authors]
    groups: dict[str, list[dict]] = {}
    start = 0
    for group in GROUPS:
        groups[group] = articles[start:start + sizes[group]]
        start += sizes[group]

    def qa_rows(group: str) -> list[dict]:
        return [{"question": q, "answer": a} for art in groups[group] for q, a in art["qa"]]

    forget_qa, retain_qa = qa_rows("forget"), qa_rows("retain2")
    return {
        "raw": {g: [{"text": d} for a in groups[g] for d in _documents(a)] for g in GROUPS},
        "knowmem": {"forget_qa": forget_qa[cfg.icl:], "forget_qa_icl": forget_qa[:cfg.icl],
                    "retain_qa": retain_qa[cfg.icl:], "retain_qa_icl": retain_qa[:cfg.icl]},
        "verbmem": {"forget": [{"prompt": a["bio"][0], "gt": " ".join(a["bio"][1:])} for a in groups["forget"]]},
        "privleak": {name: [{"text": p} for a in groups[g] for p in a["paragraphs"]]
                     for name, g in (("forget", "forget"), ("retain", "retain2"), ("holdout", "holdout"))},
    }


def write(cfg: MuseMiniConfig, out_dir: str | Path) -> Path:
    """Write every split as `<out_dir>/<subset>/<split>.jsonl` plus `muse_mini.json` (the config)."""
    out = Path(out_dir)
    for subset, splits in generate(cfg).items():
        (out / subset).mkdir(parents=True, exist_ok=True)
        for split, rows in splits.items():
            with open(out / subset / f"{split}.jsonl", "w", encoding="utf-8") as f:
                for r in rows:
                    f.write(json.dumps(r, ensure_ascii=False) + "\n")
    (out / "muse_mini.json").write_text(json.dumps(asdict(cfg), indent=2) + "\n")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print(f"muse-mini written to {write(MuseMiniConfig(seed=args.seed), args.out)}")


if __name__ == "__main__":
    main()
