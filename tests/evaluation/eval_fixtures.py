"""Shared helpers for the evaluation tests: a trimmed tofu-mini folder, a BPE tokenizer and a tiny random Llama.

Everything is offline and built in well under a second:

    data = small_tofu_dir(tmp_path, rows=4)          # every tofu-mini split cut to its first `rows` rows
    tok = tofu_tokenizer()                           # byte-level BPE trained on tofu-mini text (cached)
    model = tiny_llama(len(tok), seed=0)             # 2 layers, hidden 32, float64 for exact comparisons
    oracle_item(model, encode_qa(...))               # per-item statistics by explicit float64 loops
"""

from __future__ import annotations

import json
import math
import os
from functools import lru_cache
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from unlearning.data.tofu_mini import TofuMiniConfig, generate
from unlearning.models.tokenizer import train_bpe_tokenizer

MINI = TofuMiniConfig(n_authors=10, seed=0)


@lru_cache(maxsize=1)
def _splits() -> dict[str, list[dict]]:
    return generate(MINI)


def small_tofu_dir(root: Path, rows: int = 4, overrides: dict[str, int] | None = None) -> Path:
    """Write every tofu-mini split, cut to its first `rows` rows (per-split `overrides`), under root/tofu."""
    out = root / "tofu"
    out.mkdir(parents=True, exist_ok=True)
    for name, split_rows in _splits().items():
        n = (overrides or {}).get(name, rows)
        with open(out / f"{name}.jsonl", "w", encoding="utf-8") as f:
            for r in split_rows[:n]:
                f.write(json.dumps(r) + "\n")
    return out


@lru_cache(maxsize=1)
def tofu_tokenizer():
    texts: list[str] = []
    for split_rows in _splits().values():
        for r in split_rows:
            for v in r.values():
                texts.extend([v] if isinstance(v, str) else v)
    return train_bpe_tokenizer(texts, vocab_size=400)


def tiny_llama(vocab: int, seed: int = 0, dtype: torch.dtype = torch.float64, scale: float = 8.0) -> LlamaForCausalLM:
    """A random 2-layer Llama; lm_head scaled so its predictions are confident and differ between tokens."""
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512)
    model = LlamaForCausalLM(cfg).to(dtype)
    with torch.no_grad():
        model.lm_head.weight.mul_(scale)
    return model.eval()


def oracle_item(model, item: dict) -> dict:
    """Per-token loop in float64 on the unpadded sequence, straight from the definitions (docs/methods.md,
    "Primitives", "Extraction strength, membership inference and privleak")."""
    ids = torch.tensor([item["input_ids"]])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0].double()
    labels = item["labels"]
    labelled = [t for t in range(1, len(labels)) if labels[t] != -100]
    lps, preds, zs = [], [], []
    for t in labelled:
        row = logits[t - 1]
        logp = row - torch.logsumexp(row, 0)
        lps.append(float(logp[labels[t]]))
        preds.append(int(torch.argmax(row)))
        p = logp.exp()
        mu = float((p * logp).sum())
        var = max(float((p * logp * logp).sum()) - mu * mu, 1e-6)
        zs.append((lps[-1] - mu) / math.sqrt(var))
    n_labels = sum(1 for y in labels if y != -100)
    avg = -sum(lps) / n_labels
    tok_labels = [labels[t] for t in labelled][:-1]
    tok_preds = preds[:-1]
    n = len(tok_labels)
    k = 0
    for k in range(n):  # OU's loop, verbatim semantics
        if tok_preds[k:] == tok_labels[k:]:
            break
    es = 1 - k / n if n else 0.0
    em = sum(a == b for a, b in zip(tok_preds, tok_labels)) / n if n else None
    return {"avg_loss": avg, "token_log_probs": lps[:-1], "es": es, "em": em, "z": zs[:-1]}
