"""The unlearning dataset (ForgetRetainDataset, docs/methods.md), its per-rank order, collation and cached
reference log-probs; the examples come from the run's benchmark (`unlearning.benchmarks`).

    from unlearning.train.data import build_forget_retain
    data = build_forget_retain(tokenizer, template, forget_rows, retain_rows, max_length=512,
                               with_idk=True, seed=0)          # IdkDPO needs the IDK alternates
    data.attach_ref_logps(ref_model, keys=("forget", "idk"))   # once, before training
    data.start(seed=0, rank=rank)                              # per-rank retain generator
    batch = data.collate(data.micro_batches(epoch=0, rank=rank, world=2, batch_size=8)[0])

* Length = |forget|; item i = forget[i] + one retain example drawn uniformly with a generator seeded by
  ``retain_seed(seed, rank)``: draws differ across ranks (fix of OU issue #139, where every rank drew the
  same ones) and are reproducible per (seed, rank). Draws happen when an item is read, in order; the
  generator state is part of the checkpoint, so a resumed run draws the same retain examples.
* IdkDPO: item i also carries an "idk" example = the forget question with an "I don't know" answer.
  OU redraws that answer at every read; here it is drawn once per example (generator seeded with
  ``seed``, the same on every rank) so its reference log-probs can be cached with the data.
* Cached reference log-probs (NPO, TNPO, IdkDPO): per example, ``ref_logps[key][i]`` = the frozen
  model's label log-probs of that example (length L_i - 1); collation pads them to the batch's
  ``[B, T-1]`` under ``batch[f"{key}_ref_logps"]``, the key the methods read.
* Order: the forget indices of an epoch are a permutation seeded by ``seed + epoch`` (the same on every
  rank), padded by repetition to a multiple of the world size and dealt round-robin (rank r takes
  positions r, r+W, ...), exactly as ``torch.utils.data.DistributedSampler``; micro-batches are
  consecutive chunks of ``batch_size`` (the last one may be smaller; nothing is dropped).
"""

from __future__ import annotations

import hashlib
import math
from typing import Any, Mapping, Sequence

import torch
from torch import Tensor, nn

from unlearning.benchmarks.base import qa_examples, text_items
from unlearning.benchmarks.registry import get_benchmark
from unlearning.data.collators import TrainCollator
from unlearning.data.templates import PromptTemplate
from unlearning.errors import DataError
from unlearning.methods.reference import pad_ref_logps, split_ref_logps, token_logps

PARTS = ("forget", "retain", "idk")


def retain_seed(seed: int, rank: int) -> int:
    """Seed of rank ``rank``'s retain generator: a hash of (seed, rank), so no two (seed, rank) pairs
    share a stream (plain ``seed + rank`` would make (0, 1) and (1, 0) draw the same examples)."""
    digest = hashlib.sha256(f"retain:{int(seed)}:{int(rank)}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def epoch_indices(n: int, epoch: int, seed: int, rank: int = 0, world: int = 1, shuffle: bool = True) -> list[int]:
    """This rank's forget indices for ``epoch`` (DistributedSampler semantics, see module docstring)."""
    if shuffle:
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch)).tolist()
    else:
        order = list(range(n))
    total = math.ceil(n / world) * world
    order = (order * math.ceil(total / max(n, 1)))[:total] if n else []
    return order[rank:total:world]


def micro_batches_per_epoch(n: int, batch_size: int, world: int = 1) -> int:
    """Micro-batches each rank runs per epoch: ceil(ceil(n / world) / batch_size)."""
    return math.ceil(math.ceil(n / world) / batch_size)


class ForgetRetainDataset:
    """Tokenised forget/retain (and IDK) examples with per-example cached reference log-probs."""

    def __init__(self, forget: Sequence[Mapping[str, list[int]]], retain: Sequence[Mapping[str, list[int]]],
                 pad_token_id: int, idk: Sequence[Mapping[str, list[int]]] | None = None, seed: int = 0,
                 rank: int = 0) -> None:
        if not forget:
            raise DataError("forget set", value=0, fix="the forget split has no rows; check the split name/source")
        if not retain:
            raise DataError("retain set", value=0, fix="the retain split has no rows; check the split name/source")
        if idk is not None and len(idk) != len(forget):
            raise DataError("IDK alternates", value=len(idk), fix=f"give one per forget example ({len(forget)})")
        self.forget = list(forget)
        self.retain = list(retain)
        self.idk = list(idk) if idk is not None else None
        self.collator = TrainCollator(pad_token_id)
        self.ref_logps: dict[str, list[Tensor]] = {}
        self.generator = torch.Generator()
        self.start(seed, rank)

    # --- per-rank retain generator -------------------------------------------------------------------
    def start(self, seed: int, rank: int) -> None:
        """(Re)seed the retain generator for ``rank`` (call once per run, before the first item)."""
        self.seed, self.rank = int(seed), int(rank)
        self.generator.manual_seed(retain_seed(seed, rank))

    def state_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "rank": self.rank, "generator": self.generator.get_state()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.seed, self.rank = int(state["seed"]), int(state["rank"])
        self.generator.set_state(state["generator"])

    # --- items ---------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.forget)

    def draw_retain(self) -> int:
        """One uniform retain index from this rank's generator."""
        return int(torch.randint(len(self.retain), (1,), generator=self.generator))

    def __getitem__(self, i: int) -> dict[str, Any]:
        item: dict[str, Any] = {"forget": self.forget[i], "retain": self.retain[self.draw_retain()], "index": i}
        if self.idk is not None:
            item["idk"] = self.idk[i]
        for key, rows in self.ref_logps.items():
            item[f"{key}_ref_logps"] = rows[i]
        return item

    def collate(self, indices: Sequence[int]) -> dict[str, Any]:
        """One micro-batch: each part right-padded on its own, cached log-probs padded to match."""
        items = [self[i] for i in indices]
        logps = {k: [it.pop(k) for it in items] for k in list(items[0]) if k.endswith("_ref_logps")}
        batch = self.collator(items)
        for k, rows in logps.items():
            part = k[: -len("_ref_logps")]
            batch[k] = pad_ref_logps(rows, batch[part]["input_ids"].shape[1])
        return batch

    def micro_batches(self, epoch: int, rank: int, world: int, batch_size: int) -> list[list[int]]:
        """This rank's micro-batches (lists of forget indices) for ``epoch``."""
        order = epoch_indices(len(self), epoch, self.seed, rank, world)
        return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]

    # --- cached reference log-probs --------------------------------------------------------------------
    def attach_ref_logps(self, ref_model: nn.Module, keys: Sequence[str] = ("forget",), batch_size: int = 16,
                         device: str | torch.device | None = None) -> None:
        """Compute the frozen model's per-token label log-probs of every example of each part in
        ``keys`` once (no grad, eval mode) and keep them per example."""
        device = device or next(ref_model.parameters()).device
        for key in keys:
            examples = self.forget if key == "forget" else self.idk if key == "idk" else None
            if examples is None:
                raise DataError("reference log-probs", field="keys", value=key,
                                fix="cache 'forget' (NPO, TNPO, IdkDPO) or 'idk' (IdkDPO, needs with_idk=True)")
            rows: list[Tensor] = []
            for s in range(0, len(examples), batch_size):
                chunk = examples[s:s + batch_size]
                inputs = {k: v.to(device) for k, v in self.collator(chunk).items() if isinstance(v, Tensor)}
                logps = token_logps(ref_model, inputs).float().cpu()
                rows += split_ref_logps(logps, [len(e["input_ids"]) for e in chunk])
            self.ref_logps[key] = rows


def build_forget_retain(tokenizer: Any, template: PromptTemplate, forget_rows: Sequence[Mapping[str, Any]],
                        retain_rows: Sequence[Mapping[str, Any]], max_length: int = 512, with_idk: bool = False,
                        seed: int = 0, rank: int = 0) -> ForgetRetainDataset:
    """Tokenise question/answer rows (``encode_qa``, `unlearning.benchmarks.base.qa_examples`) into a
    ForgetRetainDataset."""
    forget, retain, idk = qa_examples(tokenizer, template, forget_rows, retain_rows, max_length, with_idk, seed)
    return ForgetRetainDataset(forget, retain, tokenizer.pad_token_id, idk=idk, seed=seed, rank=rank)


def build_text_forget_retain(tokenizer: Any, forget_texts: Sequence[str], retain_texts: Sequence[str],
                             max_length: int, limit: int | None = None, seed: int = 0,
                             rank: int = 0) -> ForgetRetainDataset:
    """Raw-text corpora (MUSE) as a ForgetRetainDataset (`unlearning.benchmarks.base.text_items`); `limit` keeps the
    first forget chunks."""
    return ForgetRetainDataset(text_items(tokenizer, forget_texts, max_length)[:limit],
                               text_items(tokenizer, retain_texts, max_length), tokenizer.pad_token_id, seed=seed,
                               rank=rank)


def data_source(data: Any, model_name: str) -> Any:
    """Where the run's data comes from (a folder or a hub id): its benchmark's `source`."""
    return get_benchmark(data.benchmark).source(data, model_name)


def load_forget_retain(data: Any, tokenizer: Any, template: PromptTemplate, source: Any, with_idk: bool = False,
                       seed: int = 0, rank: int = 0) -> ForgetRetainDataset:
    """The run's forget/retain examples: its benchmark's `examples` (`unlearning.benchmarks`)."""
    forget, retain, idk = get_benchmark(data.benchmark).examples(data, tokenizer, template, source, with_idk, seed)
    return ForgetRetainDataset(forget, retain, tokenizer.pad_token_id, idk=idk, seed=seed, rank=rank)
