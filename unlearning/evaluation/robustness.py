"""Robustness of unlearning (JensUn's "unlearning that lasts", docs/lkf.md; JensUn's evaluation:
nmndeep/JensUn-Unlearning @ 9d0cfd5101cb, `src/eval.py`, `src/evals/worst_eval.py`).

`robust_eval.py` turns both into evaluator entries a sweep can search for; this module holds the two parts.

1. Worst case over question variants: each forget fact is asked with every variant of its question
   (TOFU: `question` and `paraphrased_question`; LKF: the original + 15 paraphrases,
   `data.lkf.lkf_question_variants`). Per fact the most-leaking variant counts: the highest answer
   probability and the highest ROUGE-L recall of the greedy answer. Without an LLM judge, a fact
   "leaks" when its worst-case ROUGE-L recall reaches `leak_threshold` (default 0.5); the leak rate
   is the analogue of JensUn's J_P.
2. Relearning attack: a copy of the unlearned model is fine-tuned with plain answer NLL on a small set (a
   disjoint set, or a slice of the forget set), then the forget metrics are measured again. The original
   model is not modified. `RelearnConfig.recipe`: "steps" (`steps` optimizer steps, a cheap attack for
   sweeps) or "jensun" (JensUn's `GradLearn` recipe: epochs over a forget-anchored sampler, gradient
   accumulation, linear decay; `config.JENSUN_RELEARN`).

    res = paraphrase_worst_case(model, tok, tmpl, rows, variants=lambda r: [r["question"], r["paraphrased_question"]])
    res["forget_Q_A_Prob_worst"]["agg_value"], res["forget_leak_rate_worst"]["agg_value"]
    out = relearning_attack(model, tok, tmpl, relearn_rows, RelearnConfig(steps=10), evaluate=lambda m: ev.evaluate(m))
    out["before"], out["after"]
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from unlearning.data.collators import TrainCollator
from unlearning.data.templates import PromptTemplate
from unlearning.data.tokenization import encode_qa
from unlearning.errors import DataError
from unlearning.evaluation.config import RelearnConfig
from unlearning.evaluation.generation import decode_generations, eos_ids, greedy_generate, qa_generation_item
from unlearning.evaluation.scoring import model_device, score_items
from unlearning.metrics.rouge import clean_generation, rouge_record

VariantsFn = Callable[[Mapping[str, Any]], Sequence[str]]


def tofu_variants(row: Mapping[str, Any]) -> list[str]:
    """TOFU question variants: the question and its paraphrase."""
    return [row["question"], row["paraphrased_question"]]


def paraphrase_worst_case(model: Any, tokenizer: Any, template: PromptTemplate, rows: Sequence[Mapping[str, Any]],
                          variants: VariantsFn = tofu_variants, *, max_new_tokens: int = 200,
                          leak_threshold: float = 0.5, batch_tokens: int = 8192, max_batch_size: int = 64,
                          generation_batch_size: int = 64, max_length: int = 512,
                          answer_after: str | None = None) -> dict[str, Any]:
    """Per fact, the most-leaking question variant (highest answer prob and ROUGE-L recall); OU-style entries.

    Returns `forget_Q_A_Prob_worst`, `forget_Q_A_ROUGE_worst`, `forget_leak_rate_worst` (share of facts whose
    worst-case recall >= leak_threshold) and `forget_Q_A_ROUGE_by_variant` (mean recall of each variant slot).
    `answer_after`: keep only the text after the last occurrence of this marker in a generation (JensUn's
    `x.split("ANSWER:")[-1].strip()`).
    """
    questions: list[list[str]] = []
    for i, row in enumerate(rows):
        qs = [q for q in variants(row) if isinstance(q, str) and q.strip()]
        if not qs:
            raise DataError("paraphrase_worst_case", row=i, field="question", value=None,
                            fix="every fact needs at least one non-empty question variant")
        questions.append(qs)
    flat = [(i, q) for i, qs in enumerate(questions) for q in qs]
    scored = [encode_qa(tokenizer, template, q, rows[i]["answer"], max_length) for i, q in flat]
    prompts = [qa_generation_item(tokenizer, template, q, rows[i]["answer"], max_length) for i, q in flat]
    pad = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id)
    scores = score_items(model, scored, pad_token_id=pad, batch_tokens=batch_tokens, max_batch_size=max_batch_size)
    gens = decode_generations(tokenizer, greedy_generate(
        model, [p["input_ids"] for p in prompts], eos_token_ids=eos_ids(tokenizer, model), pad_token_id=pad,
        max_new_tokens=max_new_tokens, batch_size=generation_batch_size))
    eos_text = tokenizer.decode([tokenizer.eos_token_id]) if tokenizer.eos_token_id is not None else None

    per_fact: dict[int, list[tuple[float, float, str, str]]] = {}
    for n, (i, q) in enumerate(flat):
        gen = clean_generation(gens[n], eos_text)
        if answer_after:
            gen = gen.split(answer_after)[-1].strip()
        recall = rouge_record(prompts[n]["ground_truth"], gen)["rougeL_recall"]
        per_fact.setdefault(i, []).append((scores[n].prob, recall, q, gen))

    prob_items, rouge_items, by_variant = {}, {}, {}
    for i, entries in per_fact.items():
        best_p = max(range(len(entries)), key=lambda j: entries[j][0])
        best_r = max(range(len(entries)), key=lambda j: entries[j][1])
        prob_items[str(i)] = {"prob": entries[best_p][0], "question": entries[best_p][2],
                              "probs": [e[0] for e in entries]}
        rouge_items[str(i)] = {"rougeL_recall": entries[best_r][1], "question": entries[best_r][2],
                               "generation": entries[best_r][3], "recalls": [e[1] for e in entries],
                               "generations": [e[3] for e in entries]}
        for j, e in enumerate(entries):
            by_variant.setdefault(j, []).append(e[1])
    worst_recall = [r["rougeL_recall"] for r in rouge_items.values()]
    return {
        "forget_Q_A_Prob_worst": {"agg_value": float(np.mean([p["prob"] for p in prob_items.values()])),
                                  "value_by_index": prob_items},
        "forget_Q_A_ROUGE_worst": {"agg_value": float(np.mean(worst_recall)), "value_by_index": rouge_items},
        "forget_leak_rate_worst": {"agg_value": float(np.mean([r >= leak_threshold for r in worst_recall])),
                                   "threshold": leak_threshold},
        "forget_Q_A_ROUGE_by_variant": {"agg_value": float(np.mean(worst_recall)),
                                        "by_variant": {str(j): float(np.mean(v)) for j, v in by_variant.items()}},
    }


def jensun_schedule(anchor: int, n_rows: int, config: RelearnConfig, seed: int = 0) -> list[list[list[int]]]:
    """JensUn's relearning batches: per optimizer step, its micro-batches of relearning-row indices.

    ForgetRetainDataset(anchor="forget") has `anchor` items (the forget set's size), item i pairing forget row i
    with a uniformly drawn retain (here: relearning) row; GradLearn trains on the retain side only. An epoch is
    ceil(anchor / batch_size) micro-batches; every `grad_accum` of them (and the epoch's remainder) make one
    optimizer step; `epochs` epochs."""
    gen = torch.Generator().manual_seed(seed)
    steps: list[list[list[int]]] = []
    for _ in range(config.epochs):
        order = torch.randperm(anchor, generator=gen).tolist()  # the shuffled forget anchor: only its length counts
        draws = torch.randint(0, n_rows, (len(order),), generator=gen).tolist()
        micro = [draws[i: i + config.batch_size] for i in range(0, len(draws), config.batch_size)]
        steps += [micro[i: i + config.grad_accum] for i in range(0, len(micro), config.grad_accum)]
    return steps


def relearn(model: torch.nn.Module, tokenizer: Any, template: PromptTemplate, rows: Sequence[Mapping[str, Any]],
            config: RelearnConfig | None = None, anchor: int | None = None) -> torch.nn.Module:
    """A fine-tuned COPY of `model` (`model` itself, its gradients and the caller's RNG state are left as they
    were; it costs a second copy of the weights plus AdamW's two moments while it runs).

    recipe "steps": `config.steps` AdamW steps of mean answer NLL on batches of `rows`, constant lr. recipe
    "jensun": the steps of `jensun_schedule` (`anchor` = the forget set's size; default len(rows)), each the mean
    of its micro-batches' losses, lr decaying linearly from `config.lr` to 0 over all steps."""
    cfg = config or RelearnConfig()
    if not rows:
        raise DataError("relearning set", fix="give at least one question/answer row to relearn on")
    items = [encode_qa(tokenizer, template, r["question"], r["answer"], cfg.max_length) for r in rows]
    pad = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id)
    collate = TrainCollator(pad)
    attacked = copy.deepcopy(model)
    attacked.train()
    for p in attacked.parameters():
        p.requires_grad_(True)
    device = model_device(attacked)
    optimizer = torch.optim.AdamW(attacked.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    rng = random.Random(cfg.seed)
    order: list[int] = []
    # gradients on even inside an evaluation hook (the loop evaluates under no_grad); the caller's RNG streams
    # (CPU and the model's GPU) are restored afterwards, so a run's trajectory does not depend on the attack
    devices = [device] if device.type == "cuda" else []
    with torch.enable_grad(), torch.random.fork_rng(devices=devices):
        if cfg.recipe == "jensun":
            plan = jensun_schedule(anchor or len(items), len(items), cfg, cfg.seed)
            for k, micro in enumerate(plan):
                for group in optimizer.param_groups:  # HF's linear schedule, no warm-up: lr * (1 - k / total)
                    group["lr"] = cfg.lr * (1.0 - k / len(plan))
                optimizer.zero_grad(set_to_none=True)
                for idx in micro:
                    batch = {key: v.to(device) for key, v in collate([items[i] for i in idx]).items()}
                    loss = attacked(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                    labels=batch["labels"]).loss
                    (loss / len(micro)).backward()
                optimizer.step()
        for _ in range(cfg.steps if cfg.recipe == "steps" else 0):
            while len(order) < cfg.batch_size:  # epochs of shuffled rows, as many as the steps need
                fresh = list(range(len(items)))
                rng.shuffle(fresh)
                order.extend(fresh)
            idx, order = order[: cfg.batch_size], order[cfg.batch_size:]
            batch = {k: v.to(device) for k, v in collate([items[i] for i in idx]).items()}
            loss = attacked(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                            labels=batch["labels"]).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    del optimizer
    attacked.eval()
    return attacked


def relearning_attack(model: torch.nn.Module, tokenizer: Any, template: PromptTemplate,
                      rows: Sequence[Mapping[str, Any]], config: RelearnConfig | None,
                      evaluate: Callable[[torch.nn.Module], dict[str, Any]]) -> dict[str, Any]:
    """{"before": evaluate(model), "after": evaluate(relearned copy), "config": ...}; `model` is unchanged."""
    cfg = config or RelearnConfig()
    before = evaluate(model)
    after = evaluate(relearn(model, tokenizer, template, rows, cfg))
    return {"before": before, "after": after, "config": cfg.model_dump()}
