"""The unlearning dataset (spec §1 ForgetRetainDataset), its per-rank order, collation and cached
reference log-probs.

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

from unlearning.data.collators import TrainCollator
from unlearning.data.templates import PromptTemplate
from unlearning.data.tokenization import encode_qa
from unlearning.errors import DataError
from unlearning.methods.idk_answers import sample_idk_answer
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
    """Tokenise question/answer rows (``encode_qa``) into a ForgetRetainDataset."""
    def encode(rows: Sequence[Mapping[str, Any]], what: str) -> list[dict[str, list[int]]]:
        out = []
        for i, r in enumerate(rows):
            if "question" not in r or "answer" not in r:
                raise DataError(what, row=i, field="question" if "question" not in r else "answer",
                                value=None, fix="every row needs 'question' and 'answer' strings")
            out.append(encode_qa(tokenizer, template, r["question"], r["answer"], max_length))
        return out

    idk = None
    if with_idk:
        gen = torch.Generator().manual_seed(int(seed))
        idk = [encode_qa(tokenizer, template, r["question"], sample_idk_answer(gen), max_length)
               for r in forget_rows]
    return ForgetRetainDataset(encode(forget_rows, "forget set"), encode(retain_rows, "retain set"),
                               tokenizer.pad_token_id, idk=idk, seed=seed, rank=rank)


# --------------------------------------------------------------------------------------------------
# benchmarks: where a run's forget/retain examples come from (`data.benchmark`), one entry each


def build_text_forget_retain(tokenizer: Any, forget_texts: Sequence[str], retain_texts: Sequence[str],
                             max_length: int, limit: int | None = None, seed: int = 0,
                             rank: int = 0) -> ForgetRetainDataset:
    """Raw-text corpora (MUSE) as a ForgetRetainDataset: each corpus cut into `max_length`-token chunks
    (`unlearning.data.muse.chunk_corpus`, open-unlearning's recipe), each chunk a raw-text item (BOS + text, every
    text token labelled); `limit` keeps the first forget chunks."""
    from unlearning.data.muse import chunk_corpus
    from unlearning.data.tokenization import encode_text

    def items(texts: Sequence[str]) -> list[dict[str, list[int]]]:
        return [encode_text(tokenizer, c, max_length) for c in chunk_corpus(tokenizer, texts, max_length)]

    return ForgetRetainDataset(items(forget_texts)[:limit], items(retain_texts), tokenizer.pad_token_id, seed=seed,
                               rank=rank)


def _tofu_source(data: Any, model_name: str) -> Any:
    from unlearning.train.run import resolve_source

    return resolve_source(data.source, model_name)


def _tofu_examples(data: Any, tokenizer: Any, template: PromptTemplate, source: Any, with_idk: bool, seed: int,
                   rank: int) -> ForgetRetainDataset:
    from unlearning.data.tofu import load_tofu, retain_split_for

    forget_rows = load_tofu(data.forget_split, source)[: data.limit]
    retain_rows = load_tofu(data.retain_split or retain_split_for(data.forget_split), source)
    return build_forget_retain(tokenizer, template, forget_rows, retain_rows, max_length=data.max_length,
                               with_idk=with_idk, seed=seed, rank=rank)


def _muse_source(data: Any, model_name: str) -> Any:
    """muse-mini[-<size>] -> the muse-mini zoo's corpus; hub -> muse-bench/MUSE-<corpus>; else a folder / hub id."""
    from pathlib import Path

    from unlearning.data.muse import MUSE_HUB_IDS
    from unlearning.errors import ConfigError
    from unlearning.models.muse_zoo import MUSE_ZOO, muse_data_dir, parse_muse_zoo_name

    source = data.source
    if source == "hub":
        return MUSE_HUB_IDS[data.corpus]
    if source == MUSE_ZOO or source.startswith(f"{MUSE_ZOO}-"):
        parsed = parse_muse_zoo_name(model_name) if source == MUSE_ZOO else None
        size = parsed[0].size if parsed else ("small" if source == MUSE_ZOO else source[len(MUSE_ZOO) + 1:])
        path = muse_data_dir(size)
        if not path.is_dir():
            flag = "" if size == "small" else f" --size {size}"
            raise ConfigError("train config", field="data.source", value=source,
                              fix=f"muse-mini is not generated yet: run `unlearn-sweep prepare muse-mini{flag}`")
        return path
    return Path(source) if Path(source).exists() else source


def _muse_examples(data: Any, tokenizer: Any, template: PromptTemplate, source: Any, with_idk: bool, seed: int,
                   rank: int) -> ForgetRetainDataset:
    from unlearning.data.muse import load_muse
    from unlearning.errors import ConfigError

    if with_idk:
        raise ConfigError("train config", field="method.name", value="IdkDPO",
                          fix="IdkDPO needs questions for its 'I don't know' answers; MUSE trains on raw text: "
                              "pick a method that unlearns token sequences (GradAscent, GradDiff, NPO, SimNPO, ...)")
    texts = lambda split: [r["text"] for r in load_muse(data.corpus, "raw", split, source)]  # noqa: E731
    return build_text_forget_retain(tokenizer, texts(data.forget_split), texts(data.retain_split), data.max_length,
                                    limit=data.limit, seed=seed, rank=rank)


def _lkf_source(data: Any, model_name: str) -> Any:
    from unlearning.data.lkf import resolve_lkf_source

    return resolve_lkf_source(data.source, model_name)


def _lkf_examples(data: Any, tokenizer: Any, template: PromptTemplate, source: Any, with_idk: bool, seed: int,
                  rank: int) -> ForgetRetainDataset:
    from unlearning.data.lkf import load_lkf

    return build_forget_retain(tokenizer, template, load_lkf(data.forget_split, source)[: data.limit],
                               load_lkf(data.retain_split, source), max_length=data.max_length, with_idk=with_idk,
                               seed=seed, rank=rank)


# benchmark -> (where its data is: (data section, model name) -> source,
#               its examples: (data, tokenizer, template, source, with_idk, seed, rank) -> ForgetRetainDataset)
BENCHMARK_DATA: dict[str, tuple[Any, Any]] = {
    "tofu": (_tofu_source, _tofu_examples),
    "muse": (_muse_source, _muse_examples),
    "lkf": (_lkf_source, _lkf_examples),
}


def data_source(data: Any, model_name: str) -> Any:
    """Where the run's data comes from (a folder or a hub id) for the data section's benchmark."""
    return BENCHMARK_DATA[data.benchmark][0](data, model_name)


def load_forget_retain(data: Any, tokenizer: Any, template: PromptTemplate, source: Any, with_idk: bool = False,
                       seed: int = 0, rank: int = 0) -> ForgetRetainDataset:
    """The run's forget/retain examples for the data section's benchmark (see BENCHMARK_DATA)."""
    return BENCHMARK_DATA[data.benchmark][1](data, tokenizer, template, source, with_idk, seed, rank)
