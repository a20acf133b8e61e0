"""Independent oracles for the method tests: explicit Python loops over tokens in float64, written from
the formulas of open-unlearning's trainers (locuslab/open-unlearning @ d3d7cf9e, src/trainer/unlearn/*.py;
docs/methods.md); no code under test is called here."""

from __future__ import annotations

import math

import torch
from transformers import LlamaConfig, LlamaForCausalLM

VOCAB = 48


def make_llama(seed: int, vocab: int = VOCAB) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=2)
    model = LlamaForCausalLM(cfg)
    with torch.no_grad():  # larger logits than the default init, so weights/probabilities vary visibly
        model.lm_head.weight.mul_(20.0)
    return model


def make_part(gen: torch.Generator, prompt_lens: list[int], answer_lens: list[int], vocab: int = VOCAB,
              pad_to: int | None = None) -> dict[str, torch.Tensor]:
    """Right-padded rows: prompt (labels -100), answer (labels = ids), padding (mask 0, labels -100)."""
    lengths = [p + a for p, a in zip(prompt_lens, answer_lens)]
    T = pad_to or max(lengths)
    ids = torch.zeros(len(lengths), T, dtype=torch.long)
    mask = torch.zeros_like(ids)
    labels = torch.full_like(ids, -100)
    for i, (p, a) in enumerate(zip(prompt_lens, answer_lens)):
        row = torch.randint(2, vocab, (p + a,), generator=gen)
        ids[i, : p + a] = row
        mask[i, : p + a] = 1
        labels[i, p: p + a] = row[p:]
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def make_batch(seed: int = 0, vocab: int = VOCAB) -> dict:
    gen = torch.Generator().manual_seed(seed)
    return {
        "forget": make_part(gen, [3, 2, 4, 3], [5, 7, 2, 4], vocab),
        "retain": make_part(gen, [2, 4, 3, 2], [6, 3, 5, 1], vocab),
        "idk": make_part(gen, [3, 2, 4, 3], [3, 4, 3, 2], vocab),
    }


def logits(model, part) -> torch.Tensor:
    return model(input_ids=part["input_ids"], attention_mask=part["attention_mask"]).logits


def label_logps(lg: torch.Tensor, labels: torch.Tensor) -> list[list[torch.Tensor]]:
    """Per row, the list of log p(label) of its answer tokens, via a hand-written log-softmax."""
    rows = []
    for b in range(lg.shape[0]):
        row = []
        for t in range(lg.shape[1] - 1):
            y = int(labels[b, t + 1])
            if y == -100:
                continue
            z = lg[b, t].double()
            row.append(z[y] - torch.log(torch.exp(z - z.max()).sum()) - z.max())
        rows.append(row)
    return rows


def seq_logp(lg, labels) -> list[torch.Tensor]:
    return [sum(r, torch.zeros((), dtype=torch.float64)) for r in label_logps(lg, labels)]


def hf_mean(lg, labels) -> torch.Tensor:
    rows = label_logps(lg, labels)
    flat = [x for r in rows for x in r]
    return -sum(flat) / len(flat)


def softmax64(z: torch.Tensor) -> torch.Tensor:
    z = z.double()
    e = torch.exp(z - z.max())
    return e / e.sum()


def log_sigmoid(x: torch.Tensor) -> torch.Tensor:
    return -torch.log1p(torch.exp(-x)) if float(x) > 0 else x - torch.log1p(torch.exp(x))


def close(a, b, tol: float = 1e-5) -> bool:
    a = float(a.detach()) if isinstance(a, torch.Tensor) else float(a)
    b = float(b.detach()) if isinstance(b, torch.Tensor) else float(b)
    return math.isclose(a, b, rel_tol=tol, abs_tol=tol)
