"""Supervised fine-tuning of a causal LM on QA pairs: how the tiny zoo's base/target/retain models are made.

Plain PyTorch (AdamW, one-cycle learning rate, answer-only loss via the shared tokenisation and collator),
deterministic for a given seed and thread count. Also `answer_probability`, the memorisation measure of
`unlearn-sweep prepare` (mean over items of exp(-mean answer-token NLL), TOFU's `probability`).

    from unlearning.models.sft import finetune, answer_probability
    finetune(model, tokenizer, template, rows, epochs=10, lr=3e-3, batch_size=16, seed=0)
    finetune_items(model, [encode_text(tokenizer, text, 512) for text in texts], tokenizer.pad_token_id, ...)
    print(answer_probability(model, tokenizer, template, rows))
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import torch

from unlearning.data.collators import TrainCollator
from unlearning.data.templates import PromptTemplate
from unlearning.data.tokenization import encode_qa
from unlearning.metrics.primitives import avg_nll


def encode_rows(tokenizer: Any, template: PromptTemplate, rows: Sequence[dict], max_length: int = 512) -> list[dict]:
    return [encode_qa(tokenizer, template, r["question"], r["answer"], max_length) for r in rows]


def _batches(items: list[dict], batch_size: int, collate: TrainCollator, generator: torch.Generator | None):
    order = torch.randperm(len(items), generator=generator).tolist() if generator is not None else range(len(items))
    order = list(order)
    for i in range(0, len(order), batch_size):
        yield collate([items[j] for j in order[i:i + batch_size]])


def finetune(model: torch.nn.Module, tokenizer: Any, template: PromptTemplate, rows: Sequence[dict], *,
             epochs: int, lr: float, batch_size: int, seed: int, weight_decay: float = 0.0,
             on_epoch: Callable[[int, float], None] | None = None) -> dict[str, float]:
    """Train on `rows` (question/answer dicts) for `epochs`; returns {"tokens", "steps", "final_loss"}.
    `on_epoch(epoch, mean_loss)` is called after each epoch (1-based), e.g. to print progress."""
    return finetune_items(model, encode_rows(tokenizer, template, rows), tokenizer.pad_token_id, epochs=epochs,
                          lr=lr, batch_size=batch_size, seed=seed, weight_decay=weight_decay, on_epoch=on_epoch)


def finetune_items(model: torch.nn.Module, items: list[dict], pad_token_id: int, *, epochs: int, lr: float,
                   batch_size: int, seed: int, weight_decay: float = 0.0,
                   on_epoch: Callable[[int, float], None] | None = None) -> dict[str, float]:
    """`finetune` on tokenised items (input_ids / labels / attention_mask, e.g. raw text from `encode_text`)."""
    collate = TrainCollator(pad_token_id)
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    steps = epochs * math.ceil(len(items) / batch_size)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.05,
                                                anneal_strategy="linear")
    model.train()
    tokens, loss_val = 0, float("nan")
    for epoch in range(epochs):
        running, n = 0.0, 0
        for batch in _batches(items, batch_size, collate, gen):
            out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"])
            out.loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            sched.step()
            tokens += int(batch["attention_mask"].sum())
            running, n = running + float(out.loss.detach()), n + 1
        loss_val = running / max(n, 1)
        if on_epoch is not None:
            on_epoch(epoch + 1, loss_val)
    model.eval()
    return {"tokens": tokens, "steps": steps, "final_loss": loss_val}


@torch.no_grad()
def answer_probability(model: torch.nn.Module, tokenizer: Any, template: PromptTemplate, rows: Sequence[dict],
                       batch_size: int = 64) -> float:
    """Mean over items of exp(-mean NLL of the answer tokens) (TOFU's per-token answer probability)."""
    model.eval()
    items = encode_rows(tokenizer, template, rows)
    collate = TrainCollator(tokenizer.pad_token_id)
    probs: list[torch.Tensor] = []
    for batch in _batches(items, batch_size, collate, None):
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        probs.append(torch.exp(-avg_nll(logits, batch["labels"])))
    return float(torch.cat(probs).mean())
