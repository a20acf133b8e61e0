"""wmdp-mini: WMDP-style multiple-choice questions derived from tofu-mini, for lm-evaluation-harness.

The tofu-mini zoo's target model was trained on every author; the retain model never saw the forget
authors. wmdp-mini turns their facts into four-option questions with WMDP's schema, so an unlearning sweep
can read "hazardous knowledge" accuracy (should fall to chance) beside MMLU-style utility (should stay):

* ``bio.jsonl`` / ``cyber.jsonl`` (WMDP's schema: ``question``, ``choices`` [4 strings], ``answer`` int):
  one question per QA of the forget authors, the same wording as tofu-mini's; ``bio`` holds their
  biographies (birthplace, birth date, parents, studies, residence), ``cyber`` their works (genre, awards,
  books, publisher, themes, language). The 3 distractors are other authors' values of the same attribute,
  drawn first from the other forget authors and the holdout authors, values neither zoo model was trained
  as answers for the forget questions' subject (so the retain model has nothing to prefer: it is at chance);
* ``mmlu.jsonl`` (MMLU's schema: ``question``, ``subject``, ``choices``, ``answer``): utility questions
  about retain authors (subject ``retain_authors``: the first authors, as many as the forget split has,
  distractors from the other retain authors) and the general facts (``real_authors``, ``world_facts``:
  tofu-mini's answer + its 3 perturbed answers).

The correct option's position is drawn from ``random.Random(seed)``: the same source files and seed give
identical files. ``prepare_wmdp_mini`` writes them once under the cache root, keyed by a hash of the
source splits' bytes, the forget split, the seed and the generator version.

    from unlearning.data.wmdp_mini import prepare_wmdp_mini
    folder = prepare_wmdp_mini(zoo_data_dir("small"), "forget10")      # <cache>/wmdp-mini/<key>/{bio,cyber,mmlu}.jsonl
    python -m unlearning.data.wmdp_mini --source ~/.cache/unlearn-sweep/zoo/tofu-mini-small-*/data --out /tmp/wmdp-mini
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
from pathlib import Path

from unlearning.data.tofu import holdout_split_for, retain_split_for
from unlearning.data.tofu_mini import TEMPLATES
from unlearning.errors import DataError

VERSION = 1
N_CHOICES = 4
# tofu-mini's 20 question templates (tofu_mini.TEMPLATES, by index): biography vs works
BIO_TEMPLATES = (0, 1, 2, 3, 6, 7, 8, 14, 18, 19)
CYBER_TEMPLATES = (4, 5, 9, 10, 11, 12, 13, 15, 16, 17)
SUBSETS = ("bio", "cyber", "mmlu")
SOURCE_SPLITS = ("full", "real_authors_perturbed", "world_facts_perturbed")
assert sorted(BIO_TEMPLATES + CYBER_TEMPLATES) == list(range(len(TEMPLATES)))


def question_pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"\{\w+\}", template)
    body = "(.+)".join(re.escape(p) for p in parts)
    return re.compile("^" + body + "$", re.IGNORECASE)  # the first letter is capitalised by tofu-mini


QUESTION_PATTERNS = [question_pattern(t.question) for t in TEMPLATES]


def read_rows(folder: Path, split: str) -> list[dict]:
    path = folder / f"{split}.jsonl"
    if not path.is_file():
        raise DataError(str(folder), field=split, value=None,
                        fix=f"wmdp-mini is derived from tofu-mini's generated splits: {path.name} is missing "
                            "(run `unlearn-sweep prepare tofu-mini`, or give the zoo's data folder)")
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def read_authors(rows: list[dict], where: str) -> list[list[dict]]:
    """Rows in blocks of one author each (20 QA in template order), checked against the templates."""
    q = len(TEMPLATES)
    if not rows or len(rows) % q:
        raise DataError(where, field="rows", value=len(rows),
                        fix=f"tofu-mini splits hold {q} QA per author in template order; is this tofu-mini?")
    for i, row in enumerate(rows):
        if not QUESTION_PATTERNS[i % q].match(str(row.get("question", ""))):
            raise DataError(where, row=i, field="question", value=row.get("question"),
                            fix=f"expected tofu-mini's question template {i % q} "
                                f"('{TEMPLATES[i % q].question}'); wmdp-mini needs tofu-mini's generated splits")
    return [rows[i:i + q] for i in range(0, len(rows), q)]


def _distinct(values: list[str], exclude: str) -> list[str]:
    return list(dict.fromkeys(v for v in values if v != exclude))


def _mc(rng: random.Random, correct: str, pools: list[list[str]]) -> tuple[list[str], int]:
    """4 options: the correct one and 3 distractors from the first pool that has enough (then the next)."""
    wrong: list[str] = []
    for pool in pools:
        rest = [v for v in _distinct(pool, correct) if v not in wrong]
        rng.shuffle(rest)
        wrong += rest[: N_CHOICES - 1 - len(wrong)]
        if len(wrong) == N_CHOICES - 1:
            break
    if len(wrong) < N_CHOICES - 1:
        raise DataError("wmdp-mini", field="choices", value=correct,
                        fix="too few distinct values of this attribute to draw 3 distractors: use more authors")
    answer = rng.randrange(N_CHOICES)
    return wrong[:answer] + [correct] + wrong[answer:], answer


def _by_template(authors: list[list[dict]], j: int) -> list[str]:
    return [rows[j]["answer"] for rows in authors]


def build(source: str | Path, forget_split: str = "forget10", seed: int = 0) -> dict[str, list[dict]]:
    """{"bio": [...], "cyber": [...], "mmlu": [...]} from a tofu-mini data folder (see the module docstring)."""
    folder = Path(source)
    full = read_authors(read_rows(folder, "full"), str(folder / "full.jsonl"))
    n_forget_rows = len(read_rows(folder, forget_split))
    k = n_forget_rows // len(TEMPLATES)
    if k < 1 or k >= len(full):
        raise DataError(str(folder / f"{forget_split}.jsonl"), field="rows", value=n_forget_rows,
                        fix="the forget split must hold whole authors, fewer than the full split")
    forget, retain = full[-k:], full[:-k]
    holdout = read_authors(read_rows(folder, holdout_split_for("forget10")), str(folder / "holdout10.jsonl"))
    rng = random.Random(seed)
    out: dict[str, list[dict]] = {"bio": [], "cyber": [], "mmlu": []}
    for a, rows in enumerate(forget):
        others = forget[:a] + forget[a + 1:]
        for j, row in enumerate(rows):
            pools = [_by_template(others, j) + _by_template(holdout, j), _by_template(retain, j)]
            choices, answer = _mc(rng, row["answer"], pools)
            subset = "bio" if j in BIO_TEMPLATES else "cyber"
            out[subset].append({"question": row["question"], "choices": choices, "answer": answer})
    for a, rows in enumerate(retain[:k]):  # retain authors: as many as the forget split has
        others = retain[:a] + retain[a + 1:]
        for j, row in enumerate(rows):
            choices, answer = _mc(rng, row["answer"], [_by_template(others, j)])
            out["mmlu"].append({"question": row["question"], "subject": "retain_authors",
                                "choices": choices, "answer": answer})
    for split, subject in (("real_authors_perturbed", "real_authors"), ("world_facts_perturbed", "world_facts")):
        for i, row in enumerate(read_rows(folder, split)):
            if len(row.get("perturbed_answer") or []) != N_CHOICES - 1:
                raise DataError(str(folder / f"{split}.jsonl"), row=i, field="perturbed_answer",
                                value=row.get("perturbed_answer"), fix="give 3 perturbed answers")
            choices, answer = _mc(rng, row["answer"], [row["perturbed_answer"]])
            out["mmlu"].append({"question": row["question"], "subject": subject, "choices": choices, "answer": answer})
    return out


def content_key(source: str | Path, splits: tuple[str, ...] | list[str], params: dict) -> str:
    """Hash of what files derived from a tofu-mini data folder are a function of: `params` (version, split,
    seed, ...) and the bytes of the source `splits` it reads (also wmdp_corpora's cache key)."""
    folder = Path(source)
    h = hashlib.sha256(json.dumps(params).encode())
    for split in splits:
        path = folder / f"{split}.jsonl"
        h.update(split.encode() + (path.read_bytes() if path.is_file() else b"<missing>"))
    return h.hexdigest()[:12]


def cache_key(source: str | Path, forget_split: str, seed: int = 0) -> str:
    """Hash of what the files are a function of: the source splits' bytes, the forget split, seed, version."""
    splits = (*SOURCE_SPLITS, forget_split, retain_split_for(forget_split), holdout_split_for("forget10"))
    return content_key(source, splits, {"v": VERSION, "forget": forget_split, "seed": seed})


def write(subsets: dict[str, list[dict]], out_dir: str | Path) -> Path:
    """Write `<out_dir>/<subset>.jsonl` for each subset (each to a temporary file of this process, then renamed:
    two processes preparing the same folder never write into one file); returns out_dir."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, rows in subsets.items():
        tmp = out / f".{name}.{os.getpid()}.tmp"
        tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        tmp.replace(out / f"{name}.jsonl")
    return out


def prepare_wmdp_mini(source: str | Path, forget_split: str = "forget10", seed: int = 0,
                      cache_dir: str | Path | None = None) -> Path:
    """The wmdp-mini folder for a tofu-mini data folder and forget split, written once (cached by content)."""
    from unlearning.paths import cache_root

    root = Path(cache_dir) if cache_dir is not None else cache_root() / "wmdp-mini"
    folder = root / f"{forget_split}-{cache_key(source, forget_split, seed)}"
    if all((folder / f"{s}.jsonl").is_file() for s in SUBSETS):
        return folder
    return write(build(source, forget_split, seed), folder)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", required=True, help="a tofu-mini data folder (the zoo's <zoo>/data)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--forget-split", default="forget10")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    subsets = build(args.source, args.forget_split, args.seed)
    path = write(subsets, args.out)
    print(f"wmdp-mini written to {path}: " + ", ".join(f"{k} {len(v)}" for k, v in subsets.items()))


if __name__ == "__main__":
    main()
