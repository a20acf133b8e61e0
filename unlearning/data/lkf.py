"""LKF (JensUn, docs/lkf.md; nmndeep/JensUn-Unlearning @ 9d0cfd5101cb) splits, row schemas, `load_lkf`, and
`lkf_question_variants`.

    from unlearning.data.lkf import load_lkf, lkf_question_variants
    rows = load_lkf("forget_eval_para")                 # hub: nmndeep/LKF-forget_eval_para, split "train"
    rows = load_lkf("retain_standard", "/data/lkf")     # local: /data/lkf/retain_standard.jsonl (or .json)
    variants = lkf_question_variants(rows[0])           # original question + its paraphrases
    rows = load_lkf("forget_standard", lkf_source("lkf-mini"))   # the offline lkf-mini (unlearning.benchmarks.lkf)

Every split has `question`, `answer`; the `*_eval_para` splits also carry paraphrase columns
`q_qwen1..5`, `q_phi1..5`, `q_mist1..5` (optional: checked when present, null/absent is fine). The
relearning set is published as `LKF-relearn_standard`; "relearn" is accepted as a short name for it.
"""

from __future__ import annotations

from unlearning.data.io import HubRef, load_split
from unlearning.data.schema import Schema, text
from unlearning.errors import DataError

LKF_HUB_PREFIX = "nmndeep/LKF"
LKF_SPLITS = ("forget_standard", "forget_train_para", "forget_eval_para",
              "retain_standard", "retain_train_para", "retain_eval_para", "relearn_standard")
LKF_SPLIT_ALIASES = {"relearn": "relearn_standard"}
LKF_PARAPHRASE_FIELDS = tuple(f"q_{model}{i}" for model in ("qwen", "phi", "mist") for i in range(1, 6))

_QA = Schema("LKF question/answer", (text("question"), text("answer")))
_EVAL_PARA = Schema("LKF question/answer (+ paraphrases)",
                    (text("question"), text("answer"), *(text(f, required=False) for f in LKF_PARAPHRASE_FIELDS)))


def lkf_split(split: str) -> str:
    """Canonical split name ("relearn" -> "relearn_standard"); DataError listing the valid names otherwise."""
    name = LKF_SPLIT_ALIASES.get(split, split)
    if name not in LKF_SPLITS:
        raise DataError("LKF split", field="split", value=split,
                        fix=f"use one of: {', '.join(LKF_SPLITS + tuple(LKF_SPLIT_ALIASES))}")
    return name


def load_lkf(split: str, source: str | Path | None = None) -> list[dict]:
    """Rows of one LKF split, schema-checked.

    `source`: None -> hub `nmndeep/LKF-<split>` (split "train"); a local folder -> `<source>/<split>.jsonl|.json`
    (the canonical name, e.g. relearn_standard.jsonl); another hub prefix `owner/name` -> `owner/name-<split>`.
    """
    name = lkf_split(split)
    schema = _EVAL_PARA if name.endswith("_eval_para") else _QA
    return load_split(LKF_HUB_PREFIX if source is None else source, stem=name, what="LKF split",
                      hub_ref=lambda prefix: HubRef(f"{prefix}-{name}", None, "train"), schema=schema)


LKF_TRAIN_DEFAULTS = {"forget_split": "forget_standard", "retain_split": "retain_standard"}
LKF_TRAIN_SPLITS = ("forget_standard", "forget_train_para", "retain_standard", "retain_train_para")


def lkf_question_variants(row: dict) -> list[str]:
    """The row's original question followed by every present, non-empty paraphrase, in the order
    q_qwen1..5, q_phi1..5, q_mist1..5 (the 16 variants of a forget_eval_para fact when all are present)."""
    variants = [row["question"]]
    variants += [row[f] for f in LKF_PARAPHRASE_FIELDS if isinstance(row.get(f), str) and row[f].strip()]
    return variants
