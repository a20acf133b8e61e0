"""Tests for unlearning.data.collators: right/left padding, label and attention padding, OU's pad-id mask.

Expected tensors are written by hand.
Run: .venv/bin/python -m pytest tests/data/test_collators.py -q
"""

from __future__ import annotations

import pytest
import torch
from tiny_tokenizer import make_tokenizer

from unlearning.data.collators import GenerationCollator, TrainCollator
from unlearning.data.templates import get_template
from unlearning.data.tokenization import encode_prompt, encode_qa
from unlearning.errors import ConfigError, DataError

PAD = 0
A = {"input_ids": [5, 6, 7], "labels": [-100, 6, 7], "attention_mask": [1, 1, 1]}
B = {"input_ids": [5, 8, 9, 10, 11], "labels": [-100, -100, 9, 10, 11], "attention_mask": [1, 1, 1, 1, 1]}


def test_train_collator_pads_on_the_right() -> None:
    batch = TrainCollator(PAD)([A, B])
    assert torch.equal(batch["input_ids"], torch.tensor([[5, 6, 7, 0, 0], [5, 8, 9, 10, 11]]))
    assert torch.equal(batch["labels"], torch.tensor([[-100, 6, 7, -100, -100], [-100, -100, 9, 10, 11]]))
    assert torch.equal(batch["attention_mask"], torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]))
    assert batch["input_ids"].dtype == batch["labels"].dtype == batch["attention_mask"].dtype == torch.long


def test_train_collator_left_padding_option() -> None:
    batch = TrainCollator(PAD, padding_side="left")([A, B])
    assert torch.equal(batch["input_ids"], torch.tensor([[0, 0, 5, 6, 7], [5, 8, 9, 10, 11]]))
    assert torch.equal(batch["labels"], torch.tensor([[-100, -100, -100, 6, 7], [-100, -100, 9, 10, 11]]))
    assert torch.equal(batch["attention_mask"], torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]]))


def test_generation_collator_left_pads_prompts_and_right_pads_answers() -> None:
    p1 = {"input_ids": [5, 6], "labels": [7, 8, 2], "attention_mask": [1, 1]}
    p2 = {"input_ids": [5, 9, 10, 11], "labels": [12], "attention_mask": [1, 1, 1, 1]}
    batch = GenerationCollator(PAD)([p1, p2])
    assert torch.equal(batch["input_ids"], torch.tensor([[0, 0, 5, 6], [5, 9, 10, 11]]))
    assert torch.equal(batch["attention_mask"], torch.tensor([[0, 0, 1, 1], [1, 1, 1, 1]]))
    assert torch.equal(batch["labels"], torch.tensor([[7, 8, 2], [12, -100, -100]]))


def test_pad_to_multiple_of() -> None:
    batch = TrainCollator(PAD, pad_to_multiple_of=4)([A, B])
    assert batch["input_ids"].shape == (2, 8)
    assert torch.equal(batch["input_ids"][1], torch.tensor([5, 8, 9, 10, 11, 0, 0, 0]))
    assert torch.equal(batch["labels"][0], torch.tensor([-100, 6, 7, -100, -100, -100, -100, -100]))
    assert torch.equal(batch["attention_mask"][0], torch.tensor([1, 1, 1, 0, 0, 0, 0, 0]))
    gen = GenerationCollator(PAD, pad_to_multiple_of=4)([{"input_ids": [5, 6, 7, 8, 9], "labels": [1]}])
    assert torch.equal(gen["input_ids"], torch.tensor([[0, 0, 0, 5, 6, 7, 8, 9]]))


def test_open_unlearning_pad_id_attention_quirk() -> None:
    # Llama-3: pad = eos = <|eot_id|> (id 2 here) also closes every turn inside the sequence.
    item = {"input_ids": [1, 4, 2, 5, 2, 6, 2], "labels": [-100, -100, -100, -100, -100, 6, 2]}
    short = {"input_ids": [1, 4, 2], "labels": [-100, 4, 2]}
    ours = TrainCollator(pad_token_id=2)([item, short])
    assert torch.equal(ours["attention_mask"], torch.tensor([[1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0, 0]]))
    ou = TrainCollator(pad_token_id=2, attention_from_pad_id=True)([item, short])
    assert torch.equal(ou["attention_mask"], torch.tensor([[1, 1, 0, 1, 0, 1, 0], [1, 1, 0, 0, 0, 0, 0]]))
    assert torch.equal(ours["input_ids"], ou["input_ids"]) and torch.equal(ours["labels"], ou["labels"])


def test_nested_items_and_index_field() -> None:
    items = [{"forget": A, "retain": B, "index": 3}, {"forget": B, "retain": A, "index": 7}]
    batch = TrainCollator(PAD)(items)
    assert torch.equal(batch["forget"]["input_ids"], torch.tensor([[5, 6, 7, 0, 0], [5, 8, 9, 10, 11]]))
    assert torch.equal(batch["retain"]["labels"], torch.tensor([[-100, -100, 9, 10, 11], [-100, 6, 7, -100, -100]]))
    assert torch.equal(batch["index"], torch.tensor([3, 7]))
    flat = TrainCollator(PAD)([{**A, "index": 1}, {**B, "index": 2}])
    assert torch.equal(flat["index"], torch.tensor([1, 2]))


def test_missing_attention_mask_means_all_real_tokens() -> None:
    batch = TrainCollator(PAD)([{"input_ids": [5, 0, 6], "labels": [5, 0, 6]}, {"input_ids": [7], "labels": [7]}])
    assert torch.equal(batch["attention_mask"], torch.tensor([[1, 1, 1], [1, 0, 0]]))


def test_user_errors() -> None:
    with pytest.raises(ConfigError, match="pad_token"):
        TrainCollator(None)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="padding_side"):
        TrainCollator(PAD, padding_side="middle")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="pad_to_multiple_of"):
        TrainCollator(PAD, pad_to_multiple_of=0)
    with pytest.raises(DataError, match="GenerationCollator"):
        TrainCollator(PAD)([{"input_ids": [1, 2, 3], "labels": [3]}])


def test_encoded_items_round_trip_through_the_collators() -> None:
    tok = make_tokenizer()
    plain = get_template("plain")
    qa = [("What is the capital of France?", "Paris."), ("Who wrote the book?", "The author wrote it in Paris.")]
    items = [encode_qa(tok, plain, q, a) for q, a in qa]
    batch = TrainCollator(tok.pad_token_id)(items)
    for row, item in enumerate(items):
        n = len(item["input_ids"])
        assert batch["input_ids"][row, :n].tolist() == item["input_ids"]
        assert batch["labels"][row, n:].tolist() == [-100] * (batch["labels"].shape[1] - n)
        labelled = batch["labels"][row][batch["labels"][row] != -100].tolist()
        assert tok.decode(labelled) == qa[row][1] + "</s>"
    gens = [encode_prompt(tok, plain, q, a) for q, a in qa]
    gen = GenerationCollator(tok.pad_token_id)(gens)
    for row, item in enumerate(gens):
        assert gen["input_ids"][row, gen["input_ids"].shape[1] - len(item["input_ids"]):].tolist() == item["input_ids"]
        assert tok.decode(gen["labels"][row][gen["labels"][row] != -100].tolist()) == qa[row][1] + "</s>"

