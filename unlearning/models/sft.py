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


def _batches(items: list[dict], batch_size: int, collate: TrainCollator):
    """The items in order, `batch_size` at a time (evaluation; training's shuffled order is `SftRun`'s)."""
    for i in range(0, len(items), batch_size):
        yield collate(items[i:i + batch_size])


def finetune(model: torch.nn.Module, tokenizer: Any, template: PromptTemplate, rows: Sequence[dict], *,
             epochs: int, lr: float, batch_size: int, seed: int, weight_decay: float = 0.0,
             on_epoch: Callable[[int, float], None] | None = None) -> dict[str, float]:
    """Train on `rows` (question/answer dicts) for `epochs`; returns {"tokens", "steps", "final_loss"}.
    `on_epoch(epoch, mean_loss)` is called after each epoch (1-based), e.g. to print progress."""
    return finetune_items(model, encode_rows(tokenizer, template, rows), tokenizer.pad_token_id, epochs=epochs,
                          lr=lr, batch_size=batch_size, seed=seed, weight_decay=weight_decay, on_epoch=on_epoch)


class SftRun:
    """The SFT run, one optimizer step at a time: what `finetune_items` runs, and what LMCleaner's zoo log replays
    (`unlearning.models.training_log`), so that the replay is the zoo's own run by construction. Each epoch's
    batches are one permutation of the items (a generator seeded with `seed`) cut every `batch_size`."""

    def __init__(self, model: torch.nn.Module, items: list[dict], pad_token_id: int, *, epochs: int, lr: float,
                 batch_size: int, seed: int, weight_decay: float = 0.0) -> None:
        self.model, self.items, self.batch_size = model, items, batch_size
        self.collate = TrainCollator(pad_token_id)
        self.gen = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        self.steps_per_epoch = math.ceil(len(items) / batch_size)
        self.total = epochs * self.steps_per_epoch
        self.opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
        self.sched = torch.optim.lr_scheduler.OneCycleLR(self.opt, max_lr=lr, total_steps=self.total,
                                                         pct_start=0.05, anneal_strategy="linear")
        model.train()
        self.t, self._order = 0, []

    def step(self) -> tuple[float, list[int], float, int]:
        """The next optimizer step: (its learning rate, its rows, its loss, its tokens)."""
        if not self._order:
            order = torch.randperm(len(self.items), generator=self.gen).tolist()
            self._order = [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        indices = self._order.pop(0)
        lr = self.opt.param_groups[0]["lr"]
        batch = self.collate([self.items[j] for j in indices])
        out = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"])
        out.loss.backward()
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        self.sched.step()
        self.t += 1
        return lr, indices, float(out.loss.detach()), int(batch["attention_mask"].sum())


def finetune_items(model: torch.nn.Module, items: list[dict], pad_token_id: int, *, epochs: int, lr: float,
                   batch_size: int, seed: int, weight_decay: float = 0.0,
                   on_epoch: Callable[[int, float], None] | None = None) -> dict[str, float]:
    """`finetune` on tokenised items (input_ids / labels / attention_mask, e.g. raw text from `encode_text`)."""
    run = SftRun(model, items, pad_token_id, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
                 weight_decay=weight_decay)
    tokens, loss_val = 0, float("nan")
    for epoch in range(epochs):
        running = 0.0
        for _ in range(run.steps_per_epoch):
            _lr, _rows, loss, n_tokens = run.step()
            tokens, running = tokens + n_tokens, running + loss
        loss_val = running / max(run.steps_per_epoch, 1)
        if on_epoch is not None:
            on_epoch(epoch + 1, loss_val)
    model.eval()
    return {"tokens": tokens, "steps": run.total, "final_loss": loss_val}


@torch.no_grad()
def answer_probability(model: torch.nn.Module, tokenizer: Any, template: PromptTemplate, rows: Sequence[dict],
                       batch_size: int = 64) -> float:
    """Mean over items of exp(-mean NLL of the answer tokens) (TOFU's per-token answer probability)."""
    model.eval()
    items = encode_rows(tokenizer, template, rows)
    collate = TrainCollator(tokenizer.pad_token_id)
    probs: list[torch.Tensor] = []
    for batch in _batches(items, batch_size, collate):
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        probs.append(torch.exp(-avg_nll(logits, batch["labels"])))
    return float(torch.cat(probs).mean())
