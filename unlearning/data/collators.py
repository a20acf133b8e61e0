"""Batch collators: pad tokenised items (from unlearning.data.tokenization) into tensors.

    from unlearning.data.collators import TrainCollator, GenerationCollator
    batch = TrainCollator(tokenizer.pad_token_id)([item_a, item_b])       # right padding
    gen = GenerationCollator(tokenizer.pad_token_id)([prompt_a, prompt_b])  # left padding

input_ids are padded with the pad id, labels with -100, attention_mask with 0. Items may nest
(e.g. {"forget": {...}, "retain": {...}} or {"original": ..., "alternate": ...}); every nested dict
that holds "input_ids" is padded on its own, and other scalar fields (e.g. "index") are stacked.

attention_mask: by default each item's own mask is kept (1 on every real token, 0 on padding).
open-unlearning instead recomputes it as `input_ids != pad_id`. When the pad id equals a token
that occurs inside sequences (Llama-3: pad := eos = <|eot_id|>, which closes every system, user and
assistant turn) that hides those real tokens from attention. `attention_from_pad_id=True`
reproduces OU exactly, quirk included; the default False is the correct mask.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import torch

from unlearning.errors import ConfigError, DataError

IGNORE_INDEX = -100
Side = Literal["left", "right"]


def _round_up(length: int, multiple: int | None) -> int:
    if not multiple:
        return length
    return -(-length // multiple) * multiple


def pad_sequences(seqs: Sequence[Sequence[int] | torch.Tensor], value: int, side: Side,
                  pad_to_multiple_of: int | None = None) -> torch.Tensor:
    """Stack 1-D int sequences into a (B, T) long tensor, padding with `value` on `side`."""
    rows = [torch.as_tensor(s, dtype=torch.long).reshape(-1) for s in seqs]
    length = _round_up(max((len(r) for r in rows), default=0), pad_to_multiple_of)
    out = torch.full((len(rows), length), value, dtype=torch.long)
    for i, r in enumerate(rows):
        if len(r):
            if side == "right":
                out[i, : len(r)] = r
            else:
                out[i, length - len(r):] = r
    return out


class TrainCollator:
    """Pads training/scoring items; labels share the input_ids layout (same length, same side)."""

    def __init__(self, pad_token_id: int, padding_side: Side = "right", attention_from_pad_id: bool = False,
                 pad_to_multiple_of: int | None = None):
        if isinstance(pad_token_id, bool) or not isinstance(pad_token_id, int):
            raise ConfigError("collator", field="pad_token_id", value=pad_token_id,
                              fix="the tokenizer has no pad token: set tokenizer.pad_token = tokenizer.eos_token "
                                  "(as open-unlearning does) and pass tokenizer.pad_token_id")
        if padding_side not in ("left", "right"):
            raise ConfigError("collator", field="padding_side", value=padding_side, fix="use 'left' or 'right'")
        if pad_to_multiple_of is not None and (not isinstance(pad_to_multiple_of, int) or pad_to_multiple_of < 1):
            raise ConfigError("collator", field="pad_to_multiple_of", value=pad_to_multiple_of,
                              fix="use a positive integer or None")
        self.pad_token_id = pad_token_id
        self.padding_side: Side = padding_side
        self.attention_from_pad_id = attention_from_pad_id
        self.pad_to_multiple_of = pad_to_multiple_of

    def __call__(self, items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        if not items:
            raise ValueError("cannot collate an empty list of items")
        if "input_ids" in items[0]:
            return self._collate_flat(items)
        return {key: self._collate_field(key, [it[key] for it in items]) for key in items[0]}

    def _collate_field(self, key: str, values: list[Any]) -> Any:
        if isinstance(values[0], Mapping):
            return self(values)
        try:
            return torch.as_tensor(values)
        except (TypeError, ValueError, RuntimeError):
            return values  # strings and ragged lists pass through unchanged

    def _attention(self, items: Sequence[Mapping[str, Any]], input_ids: torch.Tensor) -> torch.Tensor:
        if self.attention_from_pad_id:
            return (input_ids != self.pad_token_id).long()
        masks = [it.get("attention_mask", [1] * len(it["input_ids"])) for it in items]
        return pad_sequences(masks, 0, self.padding_side, self.pad_to_multiple_of)

    def _labels(self, items: Sequence[Mapping[str, Any]]) -> torch.Tensor:
        for i, it in enumerate(items):
            if len(it["labels"]) != len(it["input_ids"]):
                raise DataError("TrainCollator", row=i, field="labels", value=len(it["labels"]),
                                fix=f"labels must be as long as input_ids ({len(it['input_ids'])}); "
                                    "use GenerationCollator for generation items")
        return pad_sequences([it["labels"] for it in items], IGNORE_INDEX, self.padding_side,
                             self.pad_to_multiple_of)

    def _collate_flat(self, items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        input_ids = pad_sequences([it["input_ids"] for it in items], self.pad_token_id, self.padding_side,
                                  self.pad_to_multiple_of)
        batch: dict[str, Any] = {"input_ids": input_ids, "attention_mask": self._attention(items, input_ids)}
        if "labels" in items[0]:
            batch["labels"] = self._labels(items)
        for key in items[0]:
            if key not in batch:
                batch[key] = self._collate_field(key, [it[key] for it in items])
        return batch


class GenerationCollator(TrainCollator):
    """Left-pads prompts for `generate`; labels (answer ids, any length) are right-padded with -100
    to their own longest length, so `labels[labels != -100]` is the ground truth of each row."""

    def __init__(self, pad_token_id: int, attention_from_pad_id: bool = False,
                 pad_to_multiple_of: int | None = None):
        super().__init__(pad_token_id, "left", attention_from_pad_id, pad_to_multiple_of)

    def _labels(self, items: Sequence[Mapping[str, Any]]) -> torch.Tensor:
        return pad_sequences([it["labels"] for it in items], IGNORE_INDEX, "right")
