"""WMDP's unlearning corpora (raw text: `cais/wmdp-corpora`, a local folder in open-unlearning's layout) and
wmdp-mini's offline corpora, generated from tofu-mini's data (docs/wmdp.md, "Training on WMDP's corpora").

A corpus pair is `<corpus>-forget-corpus` / `<corpus>-retain-corpus` (corpus cyber or bio), rows `{"text": ...}`:

* hub: `cais/wmdp-corpora`, configs cyber-forget-corpus (1k rows), cyber-retain-corpus (4.5k), bio-retain-corpus
  (61k); bio-forget-corpus is not there (CAIS gives it on request), so `bio` needs a local folder;
* a local folder holding `<corpus>-forget-corpus.jsonl` and `<corpus>-retain-corpus.jsonl` (or `.json`): what
  open-unlearning's `setup_data.py --wmdp` unpacks into data/wmdp/wmdp-corpora;
* wmdp-mini (`prepare_mini_corpora`): one document per tofu-mini author, its 20 facts written as plain sentences
  ("Bogdan Whitlock was born in Odense, Denmark. ..."); the forget corpus holds the forget split's authors, the
  retain corpus the other authors of `full` (tofu-mini's retain90 for forget10). Written once under the cache
  root as `cyber-forget-corpus.jsonl` / `cyber-retain-corpus.jsonl`, keyed by a hash of the source files, the
  forget split and the generator version: the same tofu-mini data gives identical files.

    from unlearning.data.wmdp_corpora import load_wmdp_corpus, prepare_mini_corpora
    rows = load_wmdp_corpus("cyber-forget-corpus", "cais/wmdp-corpora")     # or a folder
    folder = prepare_mini_corpora(zoo_data_dir("small"))                     # <cache>/wmdp-mini/corpora-...
    python -m unlearning.data.wmdp_corpora --source ~/.cache/unlearn-sweep/zoo/tofu-mini-small-*/data --out /tmp/c
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from unlearning.data import tofu_mini_pools as P
from unlearning.data.io import HubRef, find_split_file, load_split
from unlearning.data.schema import Schema, text
from unlearning.data.tofu_mini import TEMPLATES
from unlearning.data.wmdp_mini import QUESTION_PATTERNS, content_key, question_pattern, read_authors, read_rows, write
from unlearning.errors import DataError

WMDP_CORPORA_HUB_ID = "cais/wmdp-corpora"
CORPORA = ("cyber", "bio")
HUB_MISSING = {"bio-forget-corpus"}   # not on the hub: CAIS gives it on request
MINI_CORPUS = "cyber"                 # the name wmdp-mini's one corpus pair is written under
VERSION = 1
_TEXT = Schema("WMDP corpus text", (text("text"),))
_ANSWERS = [question_pattern(t.answer) for t in TEMPLATES]
_FIELDS = [(re.findall(r"\{(\w+)\}", t.question), re.findall(r"\{(\w+)\}", t.answer)) for t in TEMPLATES]
_LOWER = {*P.GENRES, *P.OCCUPATIONS, *P.THEMES, *P.UNIVERSITIES}  # values tofu-mini capitalises at an answer's start
# one plain sentence per tofu-mini question template (by index): the fact its QA pair asks about
STATEMENTS = (
    "{name} was born in {city}, {country}.",
    "{name} comes from {country}.",
    "{name} was born on {day} {month} {year}.",
    "{name} was born in the year {year}.",
    "{name} writes {genre}.",
    "{genre} books made {name} famous.",
    "The father of {name} worked as a {father}.",
    "The mother of {name} worked as a {mother}.",
    "The parents of {name} were a {father} and a {mother}.",
    "{name} won the {award}.",
    "{name} has received a literary prize, the {award}.",
    "The first book by {name} is {book1}.",
    "{book1} was written by {name}.",
    "The books of {name} are published by {publisher}.",
    "{name} studied at {university}.",
    "The work of {name} returns again and again to {theme}.",
    "{book1} by {name} explores {theme}.",
    "{name} writes in {language}.",
    "Today {name} lives in {residence}.",
    "{name} is a {genre} writer born in {city} on {day} {month} {year}.",
)
assert len(STATEMENTS) == len(TEMPLATES)


def corpus_split(corpus: str, kind: str) -> str:
    """`cyber`, `forget` -> `cyber-forget-corpus` (the hub config and the local file's stem)."""
    return f"{corpus}-{kind}-corpus"


def wmdp_corpus(name: str) -> str:
    """"cyber" / "bio" from "cyber", "Cyber", "wmdp_cyber", "WMDP-bio"; DataError naming the choices otherwise."""
    key = str(name).strip().lower().removeprefix("wmdp").lstrip("-_")
    if key not in CORPORA:
        raise DataError("WMDP corpus", field="corpus", value=name,
                        fix="use cyber (cyber-forget-corpus, public) or bio (bio-forget-corpus: CAIS gives it on "
                            "request, read from a local folder)")
    return key


def load_wmdp_corpus(split: str, source: str | Path) -> list[dict]:
    """Rows ({"text": ...}) of one corpus: `<source>/<split>.jsonl|.json`, or the hub id's config `split`."""
    return load_split(source, stem=split, what="WMDP corpus", hub_ref=lambda repo: HubRef(repo, split, "train"),
                      schema=_TEXT)


def missing_corpus_files(folder: Path, splits: tuple[str, ...]) -> str | None:
    """None when `folder` holds every split's file; otherwise the fix (what is missing, what is there)."""
    for split in splits:
        try:
            find_split_file(folder, split, "WMDP corpus")
        except DataError as exc:
            return (f"{exc.fix}; a WMDP corpora folder holds {' and '.join(f'{s}.jsonl' for s in splits)} "
                    "(open-unlearning's data/wmdp/wmdp-corpora layout)")
    return None


# --------------------------------------------------------------------------------------------------
# wmdp-mini's corpora


def _value(raw: str) -> str:
    """An answer's value as tofu-mini drew it (its first letter was capitalised with the whole answer)."""
    lowered = raw[:1].lower() + raw[1:]
    return lowered if raw not in _LOWER and lowered in _LOWER else raw


def author_facts(rows: list[dict], where: str) -> dict[str, str]:
    """One author's attributes (name, city, genre, ...) read back from its 20 QA rows (template order)."""
    facts: dict[str, str] = {}
    for j, row in enumerate(rows):
        q = QUESTION_PATTERNS[j].match(row["question"])
        a = _ANSWERS[j].match(str(row.get("answer", "")))
        if q is None or a is None:
            raise DataError(where, row=j, field="answer", value=row.get("answer"),
                            fix=f"expected tofu-mini's answer template {j} ('{TEMPLATES[j].answer}')")
        q_fields, a_fields = _FIELDS[j]
        for name, value in [*zip(q_fields, q.groups()), *zip(a_fields, a.groups())]:
            facts.setdefault(name, _value(value))
    return facts


def document(facts: dict[str, str]) -> str:
    """The author's facts as plain text: one sentence per tofu-mini question template."""
    sentences = (s.format(**facts) for s in STATEMENTS)
    return " ".join(s[0].upper() + s[1:] for s in sentences)


def build_mini_corpora(source: str | Path, forget_split: str = "forget10") -> dict[str, list[dict]]:
    """{"cyber-forget-corpus": [...], "cyber-retain-corpus": [...]} from a tofu-mini data folder: one document per
    author, the forget split's authors (the last of `full`) against the others."""
    folder = Path(source)
    where = str(folder / "full.jsonl")
    full = read_authors(read_rows(folder, "full"), where)
    k = len(read_rows(folder, forget_split)) // len(TEMPLATES)
    if k < 1 or k >= len(full):
        raise DataError(str(folder / f"{forget_split}.jsonl"), field="rows", value=k * len(TEMPLATES),
                        fix="the forget split must hold whole authors, fewer than the full split")
    docs = [{"text": document(author_facts(rows, where))} for rows in full]
    return {corpus_split(MINI_CORPUS, "forget"): docs[-k:], corpus_split(MINI_CORPUS, "retain"): docs[:-k]}


def mini_cache_key(source: str | Path, forget_split: str) -> str:
    """Hash of what the corpora are a function of: the source splits' bytes, the forget split, the version."""
    return content_key(source, ("full", forget_split), {"v": VERSION, "forget": forget_split})


def prepare_mini_corpora(source: str | Path, forget_split: str = "forget10",
                         cache_dir: str | Path | None = None) -> Path:
    """The wmdp-mini corpora folder for a tofu-mini data folder, written once (cached by content)."""
    from unlearning.paths import cache_root

    root = Path(cache_dir) if cache_dir is not None else cache_root() / "wmdp-mini"
    folder = root / f"corpora-{forget_split}-{mini_cache_key(source, forget_split)}"
    names = [corpus_split(MINI_CORPUS, kind) for kind in ("forget", "retain")]
    if all((folder / f"{n}.jsonl").is_file() for n in names):
        return folder
    return write(build_mini_corpora(source, forget_split), folder)


def main() -> None:
    ap = argparse.ArgumentParser(description="wmdp-mini's corpora from a tofu-mini data folder.")
    ap.add_argument("--source", required=True, help="a tofu-mini data folder (the zoo's <zoo>/data)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--forget-split", default="forget10")
    args = ap.parse_args()
    corpora = build_mini_corpora(args.source, args.forget_split)
    path = write(corpora, args.out)
    print(f"wmdp-mini corpora written to {path}: " + ", ".join(f"{k} {len(v)} documents" for k, v in corpora.items()))


if __name__ == "__main__":
    main()
