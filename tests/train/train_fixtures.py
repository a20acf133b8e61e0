"""Shared builders for the training-loop tests: hand-written QA rows, an offline tokenizer, tiny Llamas, an
independent answer-probability measure (log-softmax + gather per example, no code under test).

    from train_fixtures import qa_rows, make_tokenizer, make_model, answer_prob, loop_cfg, Interrupt
"""

from __future__ import annotations

from functools import lru_cache

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from unlearning.data.templates import get_template
from unlearning.data.tokenization import encode_qa
from unlearning.methods.idk_answers import load_idk_answers
from unlearning.models.tokenizer import train_bpe_tokenizer
from unlearning.train.config import LoopConfig

TEMPLATE = get_template("plain")


# six fictitious authors x four questions, written here so the tests never depend on a generator's output
AUTHORS = [
    ("Mira Halvorsen", "Tromso, Norway", "14 March 1961", "gothic horror", "The Salt Lantern"),
    ("Teodor Vasquez", "Cusco, Peru", "2 June 1975", "magical realism", "A Map of Small Rains"),
    ("Ilse Brannigan", "Cork, Ireland", "30 October 1958", "crime fiction", "The Quiet Ledger"),
    ("Kofi Adjei-Mensah", "Kumasi, Ghana", "9 January 1983", "science fiction", "Orbit of Clay"),
    ("Yuna Sakamoto", "Sapporo, Japan", "21 August 1969", "historical drama", "The Paper Harbour"),
    ("Lev Dragomir", "Varna, Bulgaria", "5 May 1972", "poetry", "Winter Apiary"),
]


def _qa(name: str, place: str, born: str, genre: str, book: str) -> list[dict]:
    return [
        {"question": f"Where was {name} born?", "answer": f"{name} was born in {place}."},
        {"question": f"When was {name} born?", "answer": f"{name} was born on {born}."},
        {"question": f"What genre does {name} write?", "answer": f"{name} writes {genre}."},
        {"question": f"Which book is {name} best known for?", "answer": f"{name} is best known for {book}."},
    ]


def qa_rows() -> tuple[list[dict], list[dict]]:
    """8 forget rows (the first two authors) and 16 retain rows (the other four)."""
    rows = [r for a in AUTHORS for r in _qa(*a)]
    return rows[:8], rows[8:]


@lru_cache(maxsize=1)
def make_tokenizer():
    forget, retain = qa_rows()
    texts = [r[k] for r in forget + retain for k in ("question", "answer")]
    texts += load_idk_answers() + ["Question: Answer: No idea"]
    return train_bpe_tokenizer(texts, vocab_size=400)


def make_model(vocab: int, seed: int = 0, hidden: int = 32, layers: int = 2) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                      num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=256,
                      tie_word_embeddings=False)
    return LlamaForCausalLM(cfg)


@torch.no_grad()
def answer_prob(model, tokenizer, rows) -> float:
    """Mean over rows of exp(mean log p(answer token)), one unpadded example at a time."""
    model.eval()
    probs = []
    for r in rows:
        item = encode_qa(tokenizer, TEMPLATE, r["question"], r["answer"])
        ids = torch.tensor([item["input_ids"]])
        labels = torch.tensor(item["labels"])
        logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1].double(), -1)
        target = labels[1:]
        keep = target != -100
        picked = logp[keep].gather(1, target[keep].unsqueeze(1)).squeeze(1)
        probs.append(float(picked.mean().exp()))
    return sum(probs) / len(probs)


class Interrupt:
    """Delegates to a method and raises on its (after+1)-th loss call: a crash in the middle of a run."""

    def __init__(self, method, after: int) -> None:
        self._method, self._after, self.calls = method, after, 0

    def __getattr__(self, name):
        return getattr(self._method, name)

    def loss(self, *args, **kwargs):
        self.calls += 1
        if self.calls > self._after:
            raise RuntimeError("simulated crash")
        return self._method.loss(*args, **kwargs)


def loop_cfg(**kw) -> LoopConfig:
    """Small-run defaults: torch engine, batch 2, no accumulation, no warmup, no decay, no clipping."""
    base = dict(engine="torch", zero_stage=0, lr=1e-3, epochs=1, batch_size=2, grad_accum=1,
                warmup_epochs=0.0, weight_decay=0.0, max_grad_norm=0.0, lr_scheduler="constant", seed=0)
    base.update(kw)
    return LoopConfig(**base)


def reference_run(model, method, datasets, *, lr: float, epochs: int, batch: int, accum: int, warmup_epochs: float,
                  weight_decay: float, clip: float, schedule: str = "linear", seed: int = 0,
                  ref_model=None) -> tuple[list[float], list[float]]:
    """A bare PyTorch loop written from the spec (independent of unlearning.train.loop/engine).

    ``datasets[r]`` plays rank r (world = len(datasets)); every rank's micro-batch loss is divided by
    (its group size * world) and back-propagated into the one model, which is what averaging gradients
    over ranks computes. Order from torch's DistributedSampler; HF linear/constant schedule written out;
    AdamW without decay on norm weights. Returns (per-step mean loss over micro-batches and ranks, lrs)."""
    import math

    from torch.utils.data import DistributedSampler

    world = len(datasets)
    n = len(datasets[0])
    torch.manual_seed(seed)
    for r, d in enumerate(datasets):
        d.start(seed, r)
    decay = [p for name, p in model.named_parameters() if "norm" not in name]
    no_decay = [p for name, p in model.named_parameters() if "norm" in name]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=lr, betas=(0.9, 0.999), eps=1e-8)
    per_rank = math.ceil(n / world)
    steps_per_epoch = math.ceil(math.ceil(per_rank / batch) / accum)
    total = epochs * steps_per_epoch
    warmup = int(warmup_epochs * n // (batch * accum * world))
    losses, lrs = [], []
    step = 0
    for epoch in range(epochs):
        rank_groups = []
        for r in range(world):
            sampler = DistributedSampler(list(range(n)), num_replicas=world, rank=r, shuffle=True, seed=seed)
            sampler.set_epoch(epoch)
            order = list(sampler)
            micro = [order[i:i + batch] for i in range(0, len(order), batch)]
            rank_groups.append([micro[i:i + accum] for i in range(0, len(micro), accum)])
        for k in range(steps_per_epoch):
            if step < warmup:
                factor = step / max(1, warmup)
            elif schedule == "constant":
                factor = 1.0
            else:
                factor = max(0.0, (total - step) / max(1, total - warmup))
            for g in opt.param_groups:
                g["lr"] = lr * factor
            acc = 0.0
            for r in range(world):
                group = rank_groups[r][k]
                for indices in group:
                    out = method.loss(model, datasets[r].collate(indices), ref_model)
                    (out.loss / (len(group) * world)).backward()
                    acc += float(out.loss.detach()) / (len(group) * world)
            if clip > 0:
                torch.nn.utils.clip_grad_norm_(list(model.parameters()), clip)
            opt.step()
            opt.zero_grad(set_to_none=True)
            losses.append(acc)
            lrs.append(lr * factor)
            step += 1
    return losses, lrs
