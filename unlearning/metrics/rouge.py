"""ROUGE of greedy generations against ground truths, with open-unlearning's text clean-up rules.

As OU `utils.py:eval_text_similarity` (docs/methods.md, "Primitives"): the decoded generation is cut at the
first occurrence of the EOS string or any stopword, then stripped; the ground truth is the decoded
labels minus the decoded prompt, stripped. Scores come from
`rouge_score.RougeScorer(["rouge1", "rougeL"], use_stemmer=True).score(target=gt, prediction=gen)`.
TOFU reports rougeL **recall**, MUSE rougeL **F1**.

    gen = clean_generation(decoded, eos_text="</s>", stopwords=["\\n\\n", "Question:"])
    rec = rouge_record(ground_truth, gen)        # {"rouge1_recall", "rougeL_f1", "rougeL_recall"}
    res = rouge_metric(gts, gens, "rougeL_recall", inputs=prompts)   # OU {"agg_value", "value_by_index"}
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from rouge_score import rouge_scorer

from unlearning.metrics.primitives import mean_over_items

ROUGE_KEYS = ("rouge1_recall", "rougeL_f1", "rougeL_recall")


@lru_cache(maxsize=1)
def _scorer() -> rouge_scorer.RougeScorer:
    return rouge_scorer.RougeScorer(["rouge1", "rougeL"], use_stemmer=True)


def clean_generation(text: str, eos_text: str | None, stopwords: Sequence[str] | None = None) -> str:
    """Cut `text` at the first EOS string / stopword occurrence, then strip whitespace.

    Mirrors OU exactly, including its quirk: when the tokenizer has no EOS token (eos_text None)
    OU drops the configured stopwords as well, so only `strip()` is applied. Empty stopwords are
    ignored.
    """
    words = [eos_text, *(stopwords or [])] if eos_text is not None else []
    for word in words:
        if word and word in text:
            text = text.split(word)[0]
    return text.strip()


def ground_truth_text(full_text: str, input_text: str) -> str:
    """OU ground truth: decoded label tokens with every occurrence of the decoded prompt removed, stripped."""
    return full_text.replace(input_text, "").strip()


def rouge_record(ground_truth: str, generation: str) -> dict[str, float]:
    """OU per-item scores: rouge1 recall, rougeL F1 and rougeL recall of `generation` vs `ground_truth`."""
    scores = _scorer().score(ground_truth, generation)
    return {
        "rouge1_recall": scores["rouge1"].recall,
        "rougeL_f1": scores["rougeL"].fmeasure,
        "rougeL_recall": scores["rougeL"].recall,
    }


def rouge_metric(
    ground_truths: Sequence[str],
    generations: Sequence[str],
    rouge_type: str,
    inputs: Sequence[str] | None = None,
    indices: Sequence[int | str] | None = None,
) -> dict[str, Any]:
    """OU rouge result: agg = mean of `rouge_type` over items; per item the scores plus the texts.

    rouge_type: "rougeL_recall" (TOFU), "rougeL_f1" (MUSE) or "rouge1_recall".
    """
    if rouge_type not in ROUGE_KEYS:
        raise ValueError(f"unknown rouge_type {rouge_type!r}; use one of {ROUGE_KEYS}")
    if len(ground_truths) != len(generations) or (inputs is not None and len(inputs) != len(generations)):
        raise ValueError("ground_truths, generations (and inputs) must have one entry per item")
    keys = [str(i) for i in (indices if indices is not None else range(len(generations)))]
    if len(keys) != len(generations):
        raise ValueError(f"{len(keys)} indices given for {len(generations)} items")
    value_by_index: dict[str, dict[str, Any]] = {}
    for n, (key, gt, gen) in enumerate(zip(keys, ground_truths, generations)):
        record: dict[str, Any] = rouge_record(gt, gen)
        if inputs is not None:
            record["input"] = inputs[n]
        record["ground_truth"] = gt
        record["generation"] = gen
        value_by_index[key] = record
    agg = mean_over_items(r[rouge_type] for r in value_by_index.values())
    return {"agg_value": agg, "value_by_index": value_by_index}
