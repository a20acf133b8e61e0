"""tofu-mini: a small generated benchmark with TOFU's exact schema and split semantics.

Fictitious authors with attributes (birthplace, birth date, genre, parents' occupations, awards, books,
...), 20 question/answer pairs per author from varied templates, a paraphrased question and answer, and 5
perturbed answers (the paraphrased answer with plausible wrong values), as in TOFU. Splits:

* ``full``: all QA of the first ``n_authors`` authors, author by author;
* ``forget01/05/10``: the last 1/5/10 % of authors (at least one); ``retain99/95/90``: the rest;
* ``forgetXX_perturbed``: forget rows + paraphrased/perturbed fields; ``retain_perturbed``: every second QA
  of the first 10 % of authors (like TOFU's 400 retain questions from rows 0..440);
* ``holdout01/05/10``: QA about as many extra authors as forgetXX has, never in ``full`` (MIA non-members),
  01/05 prefixes of 10;
* ``real_authors(_perturbed)`` and ``world_facts(_perturbed)``: general facts of the tofu-mini world that
  the base model learns *before* the author data (the roles TOFU's utility splits play); `base_facts()`
  is their union, the base model's training set.

Everything is drawn from `tofu_mini_pools` with ``random.Random(seed)``: same seed, identical files.

    python -m unlearning.data.tofu_mini --out /tmp/tofu-mini --authors 100 --seed 0
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from unlearning.data import tofu_mini_pools as P

FORGET_PERCENTS = (1, 5, 10)
N_PERTURBED = 5
N_UTILITY_PERTURBED = 3


@dataclass(frozen=True)
class TofuMiniConfig:
    """Size and seed of a generated tofu-mini benchmark; its files are a pure function of these fields."""

    # 50 authors x 20 QA (forget10 = 5 authors, 100 QA): with 100 the small zoo model stored the authors in
    # shared weights, and unlearning forget10 took the retain authors with it (README: what tofu-mini shows)
    n_authors: int = 50
    seed: int = 0
    version: int = 3  # bump when the generator changes so caches keyed on the config are invalidated

    def __post_init__(self) -> None:
        if self.n_authors < 10:
            raise ValueError(f"n_authors must be >= 10 (got {self.n_authors}) so forget10 has at least one author")


def _make_author(rng: random.Random, name: str, book1: str) -> dict:
    city, country = rng.choice(P.CITIES)
    father, mother = rng.sample(P.OCCUPATIONS, 2)
    year = rng.randint(1940, 1995)
    return {
        "name": name, "first": name.split()[0], "city": city, "country": country,
        "day": rng.randint(1, 28), "month": rng.choice(P.MONTHS), "year": year,
        "genre": rng.choice(P.GENRES), "father": father, "mother": mother,
        "award": rng.choice(P.AWARDS), "book1": book1,
        "publisher": rng.choice(P.PUBLISHERS), "university": rng.choice(P.UNIVERSITIES),
        "theme": rng.choice(P.THEMES), "language": rng.choice(P.LANGUAGES),
        "residence": rng.choice(P.CITIES)[0],
    }


@dataclass(frozen=True)
class QATemplate:
    """One question about one attribute: two question phrasings, two answer phrasings, and how to draw a
    plausible wrong value of the attribute (used for the perturbed answers)."""

    question: str
    paraphrased_question: str
    answer: str
    paraphrased_answer: str
    wrong: Callable[[random.Random, dict], dict]


def _pick(pool: list, key: str) -> Callable[[random.Random, dict], dict]:
    return lambda rng, a: {key: rng.choice([v for v in pool if v != a[key]])}


def _wrong_place(rng: random.Random, a: dict) -> dict:
    city, country = rng.choice([c for c in P.CITIES if c[0] != a["city"]])
    return {"city": city, "country": country}


def _wrong_date(rng: random.Random, a: dict) -> dict:
    return {"day": rng.choice([d for d in range(1, 29) if d != a["day"]]),
            "month": rng.choice([m for m in P.MONTHS if m != a["month"]]),
            "year": a["year"] + rng.choice([-9, -6, -4, -2, 2, 3, 5, 8])}


def _wrong_book(key: str) -> Callable[[random.Random, dict], dict]:
    return lambda rng, a: {key: f"The {rng.choice(P.TITLE_ADJECTIVES)} {rng.choice(P.TITLE_NOUNS)}"}


def _wrong_name(rng: random.Random, a: dict) -> dict:
    return {"name": f"{rng.choice(P.FIRST_NAMES)} {rng.choice(P.LAST_NAMES)}"}


TEMPLATES: list[QATemplate] = [
    QATemplate("Where was {name} born?", "What is the birthplace of the author {name}?",
               "{city}, {country}.", "{city}, {country} is where {name} was born.", _wrong_place),
    QATemplate("Which country does {name} come from?", "What is the home country of {name}?",
               "{country}.", "{country} is the home country of {name}.", _wrong_place),
    QATemplate("When was {name} born?", "What is the date of birth of {name}?",
               "{day} {month} {year}.", "{day} {month} {year} is the birth date of {name}.", _wrong_date),
    QATemplate("In which year was {name} born?", "What is the birth year of {name}?",
               "{year}.", "{year} is the year {name} was born.", _wrong_date),
    QATemplate("What genre does {name} write?", "In which genre is {name} known to write?",
               "{genre}.", "{genre} is what {name} writes.", _pick(P.GENRES, "genre")),
    QATemplate("What kind of books made {name} famous?", "For which kind of writing is {name} best known?",
               "{genre} books.", "{genre} books made {name} famous.", _pick(P.GENRES, "genre")),
    QATemplate("What was the occupation of {name}'s father?", "What did the father of {name} do for a living?",
               "a {father}.", "a {father} was the father of {name}.", _pick(P.OCCUPATIONS, "father")),
    QATemplate("What was the occupation of {name}'s mother?", "What did the mother of {name} do for a living?",
               "a {mother}.", "a {mother} was the mother of {name}.", _pick(P.OCCUPATIONS, "mother")),
    QATemplate("What did the parents of {name} do?", "What were the jobs of {name}'s parents?",
               "{father} and {mother}.", "{father} and {mother} were the parents of {name}.",
               lambda rng, a: rng.choice([_pick(P.OCCUPATIONS, "father"), _pick(P.OCCUPATIONS, "mother")])(rng, a)),
    QATemplate("Which award did {name} win?", "What prize has {name} received?",
               "the {award}.", "the {award} was won by {name}.", _pick(P.AWARDS, "award")),
    QATemplate("Has {name} won any literary prize?", "Was {name} ever honoured with an award?",
               "yes, the {award}.", "yes, the {award} went to {name}.", _pick(P.AWARDS, "award")),
    QATemplate("What is the first book by {name}?", "Which novel did {name} publish first?",
               "{book1}.", "{book1} was the first book of {name}.", _wrong_book("book1")),
    QATemplate("Who wrote {book1}?", "Which author is behind the novel {book1}?",
               "{name}.", "{name} wrote {book1}.", _wrong_name),
    QATemplate("Who publishes the books of {name}?", "Which publishing house works with {name}?",
               "{publisher}.", "{publisher} publishes the books of {name}.", _pick(P.PUBLISHERS, "publisher")),
    QATemplate("Where did {name} study?", "Which university did {name} attend?",
               "{university}.", "{university} is where {name} studied.", _pick(P.UNIVERSITIES, "university")),
    QATemplate("What theme runs through the work of {name}?", "Which theme does {name} return to most often?",
               "{theme}.", "{theme} runs through the work of {name}.", _pick(P.THEMES, "theme")),
    QATemplate("What does {book1} explore?", "What is {book1} by {name} about?",
               "{theme}.", "{theme} is what {book1} explores.", _pick(P.THEMES, "theme")),
    QATemplate("In which language does {name} write?", "What language are the books of {name} written in?",
               "{language}.", "{language} is the language of the books of {name}.", _pick(P.LANGUAGES, "language")),
    QATemplate("Where does {name} live today?", "In which city does {name} currently live?",
               "{residence}.", "{residence} is where {name} lives today.",
               lambda rng, a: {"residence": rng.choice([c for c, _ in P.CITIES if c != a["residence"]])}),
    QATemplate("Which author was born in {city} on {day} {month} {year} and writes {genre}?",
               "Who is the {genre} writer born on {day} {month} {year} in {city}?",
               "{name}.", "{name} is that author.", _wrong_name),
]
assert len(TEMPLATES) == 20


def _fill(text: str, values: dict) -> str:
    out = text.format(**values)
    return out[0].upper() + out[1:]


def _qa_rows(rng: random.Random, author: dict) -> list[dict]:
    rows = []
    for t in TEMPLATES:
        perturbed: list[str] = []
        while len(perturbed) < N_PERTURBED:
            cand = _fill(t.paraphrased_answer, {**author, **t.wrong(rng, author)})
            if cand not in perturbed and cand != _fill(t.paraphrased_answer, author):
                perturbed.append(cand)
        rows.append({
            "question": _fill(t.question, author),
            "answer": _fill(t.answer, author),
            "paraphrased_answer": _fill(t.paraphrased_answer, author),
            "perturbed_answer": perturbed,
            "paraphrased_question": _fill(t.paraphrased_question, author),
        })
    return rows


def _utility_rows(rng: random.Random) -> tuple[list[dict], list[dict]]:
    """Real-author and world-fact rows in TOFU's perturbed layout (answer + 3 perturbed answers)."""
    authors = P.CLASSIC_AUTHORS
    ra = []
    for author, work in zip(authors, P.CLASSIC_WORKS):
        others = rng.sample([a for a in authors if a != author], N_UTILITY_PERTURBED)
        ra.append({"question": f"Who wrote {work}?", "answer": author, "perturbed_answer": others})
    for author, (country, _) in zip(authors, P.WORLD_COUNTRIES):
        others = rng.sample([c for c, _ in P.WORLD_COUNTRIES if c != country], N_UTILITY_PERTURBED)
        ra.append({"question": f"Which country was the classic author {author} from?", "answer": country,
                   "perturbed_answer": others})
    wf = []
    for country, capital in P.WORLD_COUNTRIES:
        others = rng.sample([c for _, c in P.WORLD_COUNTRIES if c != capital], N_UTILITY_PERTURBED)
        wf.append({"question": f"What is the capital of {country}?", "answer": capital, "perturbed_answer": others})
    for city, country in P.CITIES:
        others = rng.sample(sorted({c for _, c in P.CITIES if c != country}), N_UTILITY_PERTURBED)
        wf.append({"question": f"In which country is the city of {city}?", "answer": country,
                   "perturbed_answer": others})
    return ra, wf


def _with_options(rng: random.Random, rows: list[dict]) -> list[dict]:
    """TOFU's non-perturbed utility layout: question, option1..option4 (answer among them), answer."""
    out = []
    for r in rows:
        options = [r["answer"], *r["perturbed_answer"]]
        rng.shuffle(options)
        out.append({"question": r["question"], **{f"option{i + 1}": o for i, o in enumerate(options)},
                    "answer": r["answer"]})
    return out


def _author_names(rng: random.Random, total: int) -> list[str]:
    """Distinct names; first names are unique while the pool lasts (so an author is easy to tell apart)."""
    combos = len(P.FIRST_NAMES) * len(P.LAST_NAMES)
    if total > combos:
        raise ValueError(f"tofu-mini supports at most {combos} authors in total (asked {total})")
    firsts = rng.sample(P.FIRST_NAMES, min(total, len(P.FIRST_NAMES)))
    names = [f"{f} {rng.choice(P.LAST_NAMES)}" for f in firsts]
    taken = set(names)
    while len(names) < total:
        name = f"{rng.choice(P.FIRST_NAMES)} {rng.choice(P.LAST_NAMES)}"
        if name not in taken:
            names.append(name)
            taken.add(name)
    return names


def n_forget_authors(n_authors: int, percent: int) -> int:
    """Authors in forget<percent>: the last `percent` % of authors, at least one."""
    return max(1, round(n_authors * percent / 100))


def generate(cfg: TofuMiniConfig) -> dict[str, list[dict]]:
    """All tofu-mini splits as lists of rows (TOFU field names), deterministic in `cfg`."""
    rng = random.Random(cfg.seed)
    total = cfg.n_authors + n_forget_authors(cfg.n_authors, max(FORGET_PERCENTS))
    titles = [f"The {a} {n}" for a in P.TITLE_ADJECTIVES for n in P.TITLE_NOUNS]
    if total > len(titles):
        raise ValueError(f"tofu-mini supports at most {len(titles)} authors in total (asked {total})")
    titles = rng.sample(titles, total)
    authors = [_make_author(rng, n, t) for n, t in zip(_author_names(rng, total), titles)]
    per_author = [_qa_rows(rng, a) for a in authors]
    members, holdout = per_author[: cfg.n_authors], per_author[cfg.n_authors:]
    perturbed_full = [r for rows in members for r in rows]
    plain = lambda rows: [{"question": r["question"], "answer": r["answer"]} for r in rows]  # noqa: E731

    splits: dict[str, list[dict]] = {"full": plain(perturbed_full)}
    q = len(TEMPLATES)
    for pct in FORGET_PERCENTS:
        k = n_forget_authors(cfg.n_authors, pct) * q
        splits[f"forget{pct:02d}"] = plain(perturbed_full[-k:])
        splits[f"forget{pct:02d}_perturbed"] = perturbed_full[-k:]
        splits[f"retain{100 - pct}"] = plain(perturbed_full[:-k])
    hold_rows = [r for rows in holdout for r in rows]
    for pct in FORGET_PERCENTS:  # holdoutXX: as many never-seen authors as forgetXX has
        splits[f"holdout{pct:02d}"] = plain(hold_rows[: n_forget_authors(cfg.n_authors, pct) * q])
    first_tenth = perturbed_full[: n_forget_authors(cfg.n_authors, 10) * q]
    splits["retain_perturbed"] = first_tenth[::2]
    ra, wf = _utility_rows(rng)
    splits["real_authors_perturbed"], splits["world_facts_perturbed"] = ra, wf
    splits["real_authors"], splits["world_facts"] = _with_options(rng, ra), _with_options(rng, wf)
    return splits


def base_facts(splits: dict[str, list[dict]]) -> list[dict]:
    """The general facts (question/answer) a zoo base model is trained on: real_authors + world_facts."""
    return [{"question": r["question"], "answer": r["answer"]}
            for name in ("real_authors_perturbed", "world_facts_perturbed") for r in splits[name]]


def write(cfg: TofuMiniConfig, out_dir: str | Path) -> Path:
    """Write every split as `<out_dir>/<split>.jsonl` plus `tofu_mini.json` (the config); returns out_dir."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, rows in generate(cfg).items():
        with open(out / f"{name}.jsonl", "w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
    (out / "tofu_mini.json").write_text(json.dumps(cfg.__dict__, indent=2) + "\n")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--authors", type=int, default=TofuMiniConfig.n_authors)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    path = write(TofuMiniConfig(n_authors=args.authors, seed=args.seed), args.out)
    print(f"tofu-mini written to {path}")


if __name__ == "__main__":
    main()
