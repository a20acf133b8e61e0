"""TOFU splits (docs/data-and-zoo.md): names, row schemas, split relations, and `load_tofu`.

    from unlearning.data.tofu import load_tofu, retain_split_for
    forget = load_tofu("forget10", "/path/to/tofu/normalized")   # local folder: forget10.jsonl / .json
    retain = load_tofu(retain_split_for("forget10"))             # hub: locuslab/TOFU, config "retain90"

A local folder holds one `<split>.jsonl` (or `<split>.json`, a JSON array) per split with TOFU's field
names; the generated offline benchmark `tofu-mini` uses the same layout and is loaded the same way, so
nothing here assumes TOFU's 200 authors or its split sizes. Every row is schema-checked (see SCHEMAS).
"""

from __future__ import annotations

from pathlib import Path

from unlearning.data.io import HubRef, load_split
from unlearning.data.schema import Schema, text, text_list
from unlearning.errors import DataError

TOFU_HUB_ID = "locuslab/TOFU"

QA = Schema("TOFU question/answer", (text("question"), text("answer")))
PERTURBED = Schema("TOFU perturbed (5 perturbed answers)", (
    text("question"), text("answer"), text("paraphrased_answer"),
    text_list("perturbed_answer", 5), text("paraphrased_question"),
))
MULTIPLE_CHOICE = Schema("TOFU multiple-choice", (
    text("question"), text("option1"), text("option2"), text("option3"), text("option4"), text("answer"),
))
PERTURBED3 = Schema("TOFU perturbed (3 perturbed answers)", (
    text("question"), text("answer"), text_list("perturbed_answer", 3),
))

FORGET_PERCENTS = (1, 5, 10)
FORGET_SPLITS = tuple(f"forget{p:02d}" for p in FORGET_PERCENTS)

SCHEMAS: dict[str, Schema] = {
    **{s: QA for s in FORGET_SPLITS},
    **{f"{s}_perturbed": PERTURBED for s in FORGET_SPLITS},
    **{f"retain{100 - p:02d}": QA for p in FORGET_PERCENTS},
    "retain_perturbed": PERTURBED,
    "real_authors": MULTIPLE_CHOICE,
    "real_authors_perturbed": PERTURBED3,
    "world_facts": MULTIPLE_CHOICE,
    "world_facts_perturbed": PERTURBED3,
    **{f"holdout{p:02d}": QA for p in FORGET_PERCENTS},
    "full": QA,
}
TOFU_SPLITS: tuple[str, ...] = tuple(SCHEMAS)


def _check_split(split: str, where: str) -> Schema:
    if split not in SCHEMAS:
        raise DataError(where, field="split", value=split, fix=f"use one of the TOFU splits: {', '.join(TOFU_SPLITS)}")
    return SCHEMAS[split]


def forget_percent(forget_split: str) -> int:
    """1, 5 or 10 for forget01 / forget05 / forget10; DataError for anything else."""
    if forget_split not in FORGET_SPLITS:
        raise DataError("TOFU forget split", field="split", value=forget_split,
                        fix=f"use one of: {', '.join(FORGET_SPLITS)}")
    return int(forget_split[len("forget"):])


def retain_split_for(forget_split: str) -> str:
    """The retain split complementing a forget split: "forget10" -> "retain90"."""
    return f"retain{100 - forget_percent(forget_split):02d}"


def holdout_split_for(forget_split: str) -> str:
    """The same-size never-seen split (MIA non-members): "forget10" -> "holdout10"."""
    return f"holdout{forget_percent(forget_split):02d}"


def perturbed_split_for(forget_split: str) -> str:
    """The forget split with paraphrased/perturbed answers: "forget10" -> "forget10_perturbed"."""
    forget_percent(forget_split)
    return f"{forget_split}_perturbed"


def load_tofu(split: str, source: str | Path = TOFU_HUB_ID) -> list[dict]:
    """Rows of one TOFU split, schema-checked.

    `source`: an existing local folder (reads `<split>.jsonl`, else `<split>.json`), or a hub dataset id
    (`datasets.load_dataset(source, name=split, split="train")`). DataError on an unknown split, a missing
    file, an unreachable hub, or any row that does not match the split's schema.
    """
    schema = _check_split(split, str(source))
    return load_split(source, stem=split, what="TOFU split",
                      hub_ref=lambda repo: HubRef(repo, split, "train"), schema=schema)
