"""Tests for unlearning.data.tokenization: label masks, EOS, truncation, generation items, raw text.

Expected ids are computed here by tokenising hand-written strings (prompt text, full text) with the
tiny test tokenizer, independently of the code under test.
Run: .venv/bin/python -m pytest tests/data/test_tokenization.py -q
"""

from __future__ import annotations

import logging

import pytest
import torch
from tiny_tokenizer import family_tokenizer, make_tokenizer
from transformers import BatchEncoding

from unlearning.data.templates import ensure_chat_template, get_template
from unlearning.data.tokenization import (
    IGNORE_INDEX,
    _as_ids,
    encode_prompt,
    encode_qa,
    encode_text,
    encode_text_prompt,
)
from unlearning.errors import ConfigError, DataError

Q, A = "What is the capital of France?", "Paris."

# family -> (hand-written prompt text, hand-written labelled text), with that family's real BOS/EOS.
# The prompt text includes the BOS; the labelled text includes what follows the answer (EOS included).
CASES: dict[str, tuple[str, str]] = {
    "llama2-chat": ("<s>[INST] What is the capital of France? [/INST]", "Paris.</s>"),
    "plain": ("<s>Question: What is the capital of France?\nAnswer: ", "Paris.</s>"),
    "llama3": (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
        "Cutting Knowledge Date: December 2023\nToday Date: 10 Apr 2025\n\nYou are a helpful assistant.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nWhat is the capital of France?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n",
        "Paris.<|eot_id|>",  # ends with EOS (= <|eot_id|>): nothing appended
    ),
    "qwen2.5": (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
        "Paris.<|im_end|>\n<|im_end|>",  # template ends with "\n", so OU appends EOS <|im_end|>
    ),
    "qwen3": (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n",
        "Paris.<|im_end|>\n<|im_end|>",
    ),
    "mistral-v0.3": ("<s>[INST] What is the capital of France?[/INST]", " Paris.</s>"),
    "phi": (
        "<|system|>\nYou are a helpful assistant.<|end|>\n<|user|>\nWhat is the capital of France?<|end|>\n"
        "<|assistant|>\n",
        "Paris.<|end|>\n<|endoftext|>",
    ),
    "gemma": (
        "<bos><start_of_turn>user\nWhat is the capital of France?<end_of_turn>\n<start_of_turn>model\n",
        "Paris.<end_of_turn>\n<eos>",
    ),
}


def _ids(tok, text: str) -> list[int]:
    return tok(text, add_special_tokens=False)["input_ids"]


def _tok(family: str):
    return ensure_chat_template(family_tokenizer(family), get_template(family))


@pytest.mark.parametrize("family", sorted(CASES))
def test_labels_mask_exactly_the_prompt(family: str) -> None:
    tok = _tok(family)
    prompt_text, labelled_text = CASES[family]
    prompt_ids, labelled_ids = _ids(tok, prompt_text), _ids(tok, labelled_text)
    item = encode_qa(tok, get_template(family), Q, A)
    assert item["input_ids"] == prompt_ids + labelled_ids
    assert item["labels"] == [IGNORE_INDEX] * len(prompt_ids) + labelled_ids
    assert item["attention_mask"] == [1] * len(prompt_ids + labelled_ids)
    assert tok.decode([t for t, lab in zip(item["input_ids"], item["labels"]) if lab != IGNORE_INDEX]) == labelled_text
    assert item["input_ids"].count(tok.eos_token_id) == (prompt_text + labelled_text).count(tok.eos_token)


@pytest.mark.parametrize("family", sorted(CASES))
def test_generation_prompt_is_the_prefix_and_labels_are_the_answer(family: str) -> None:
    tok = _tok(family)
    prompt_text, labelled_text = CASES[family]
    gen = encode_prompt(tok, get_template(family), Q, A)
    train = encode_qa(tok, get_template(family), Q, A)
    assert gen["input_ids"] == _ids(tok, prompt_text)
    assert gen["input_ids"] == train["input_ids"][: len(gen["input_ids"])]
    assert gen["labels"] == _ids(tok, labelled_text)
    assert gen["attention_mask"] == [1] * len(gen["input_ids"])


def test_eos_appended_once_when_the_template_does_not_end_with_it() -> None:
    # llama3 template with a tokenizer whose EOS is </s>: "<|eot_id|>" then one appended "</s>".
    tok = ensure_chat_template(make_tokenizer(), get_template("llama3"))
    item = encode_qa(tok, get_template("llama3"), Q, A)
    eot, eos = tok.convert_tokens_to_ids("<|eot_id|>"), tok.eos_token_id
    assert item["input_ids"][-2:] == [eot, eos]
    assert item["input_ids"].count(eos) == 1


def test_eos_not_doubled_when_the_answer_already_ends_with_it() -> None:
    tok = make_tokenizer()
    item = encode_qa(tok, get_template("plain"), Q, "Paris.</s>")
    assert item["input_ids"] == [tok.bos_token_id] + _ids(tok, "Question: " + Q + "\nAnswer: Paris.</s>")
    assert item["input_ids"].count(tok.eos_token_id) == 1


def test_bos_once_on_the_chat_path() -> None:
    tok = _tok("mistral-v0.3")  # the tokenizer would add <s> itself; the template already has it
    item = encode_qa(tok, get_template("mistral-v0.3"), Q, A)
    assert item["input_ids"][0] == tok.bos_token_id
    assert item["input_ids"].count(tok.bos_token_id) == 1


def test_few_shot_examples_are_part_of_the_masked_prompt() -> None:
    tok = make_tokenizer()
    shots = [("Who wrote the book?", "The author.")]
    item = encode_qa(tok, get_template("plain"), Q, A, few_shot=shots)
    prompt = "Question: Who wrote the book?\nAnswer: The author.\n\nQuestion: " + Q + "\nAnswer: "
    n_prompt = 1 + len(_ids(tok, prompt))  # + BOS
    assert item["labels"] == [IGNORE_INDEX] * n_prompt + _ids(tok, "Paris.</s>")


def test_tag_path_truncates_then_appends_eos_like_open_unlearning() -> None:
    tok = make_tokenizer()
    long_answer = "Paris is the capital of France. " * 10
    item = encode_qa(tok, get_template("plain"), Q, long_answer, max_length=40)
    full = [tok.bos_token_id] + _ids(tok, "Question: " + Q + "\nAnswer: " + long_answer)
    assert item["input_ids"] == full[:40] + [tok.eos_token_id]  # 41 = max_length + the appended EOS
    n_prompt = 1 + len(_ids(tok, "Question: " + Q + "\nAnswer: "))
    assert item["labels"] == [IGNORE_INDEX] * n_prompt + full[n_prompt:40] + [tok.eos_token_id]


def test_prompt_longer_than_max_length_leaves_only_the_eos_label() -> None:
    tok = make_tokenizer()
    item = encode_qa(tok, get_template("plain"), Q, A, max_length=5)
    assert len(item["input_ids"]) == 6
    assert item["labels"] == [IGNORE_INDEX] * 5 + [tok.eos_token_id]


def test_chat_path_is_not_truncated() -> None:
    tok = _tok("llama3")
    item = encode_qa(tok, get_template("llama3"), Q, A, max_length=5)
    assert len(item["input_ids"]) == len(_ids(tok, CASES["llama3"][0] + CASES["llama3"][1]))
    assert len(item["input_ids"]) > 5


def test_prompt_that_is_not_a_token_prefix_is_warned_and_masked_by_length(caplog) -> None:
    # GPT-2 style pre-tokenisation: the prompt ends with a lone " ", the full text has " Paris".
    tok = make_tokenizer(isolate_whitespace=False)
    prompt_ids = tok("Question: " + Q + "\nAnswer: ")["input_ids"]
    full_ids = tok("Question: " + Q + "\nAnswer: " + A)["input_ids"]
    assert full_ids[: len(prompt_ids)] != prompt_ids  # the premise of this test
    with caplog.at_level(logging.WARNING, logger="unlearning.data.tokenization"):
        item = encode_qa(tok, get_template("plain"), Q, A)
    assert "not a prefix" in caplog.text
    assert item["labels"][: len(prompt_ids)] == [IGNORE_INDEX] * len(prompt_ids)
    assert item["labels"][len(prompt_ids):] == (full_ids + [tok.eos_token_id])[len(prompt_ids):]


def test_apply_chat_template_tokenize_returns_a_batch_encoding_in_transformers_5() -> None:
    tok = _tok("gemma")
    out = tok.apply_chat_template([{"role": "user", "content": "Q?"}], tokenize=True)
    assert isinstance(out, BatchEncoding)  # why _as_ids unwraps mappings
    expected = _ids(tok, "<bos><start_of_turn>user\nQ?<end_of_turn>\n")
    assert _as_ids(out) == expected
    assert _as_ids(expected) == expected
    assert _as_ids(torch.tensor([expected])) == expected


def test_bad_inputs_are_user_errors() -> None:
    tok = make_tokenizer()
    with pytest.raises(DataError, match="answer"):
        encode_qa(tok, get_template("plain"), Q, None)  # type: ignore[arg-type]
    with pytest.raises(DataError, match="few_shot"):
        encode_qa(tok, get_template("plain"), Q, A, few_shot=[("only a question",)])  # type: ignore[list-item]
    with pytest.raises(ConfigError, match="max_length"):
        encode_qa(tok, get_template("plain"), Q, A, max_length=0)
    with pytest.raises(ConfigError, match="ensure_chat_template"):
        encode_qa(make_tokenizer(), get_template("llama3"), Q, A)


def test_encode_text_labels_every_token_after_bos() -> None:
    tok = make_tokenizer()
    text = "Paris is the capital of France."
    body = _ids(tok, text)
    item = encode_text(tok, text, max_length=512)
    assert item["input_ids"] == [tok.bos_token_id] + body
    assert item["labels"] == [IGNORE_INDEX] + body
    assert item["attention_mask"] == [1] * (len(body) + 1)
    cut = encode_text(tok, text, max_length=4)
    assert cut["input_ids"] == [tok.bos_token_id] + body[:4]


def test_encode_text_without_bos_masks_only_the_first_token() -> None:
    tok = make_tokenizer(bos=None)
    body = _ids(tok, "Paris is the capital.")
    item = encode_text(tok, "Paris is the capital.", max_length=512)
    assert item["input_ids"] == body
    assert item["labels"] == [IGNORE_INDEX] + body[1:]


def test_encode_text_prefix_and_its_generation_variant() -> None:
    tok = make_tokenizer()
    prefix, cont = "The capital of France", "is Paris."
    prefix_ids = [tok.bos_token_id] + _ids(tok, prefix)
    full = [tok.bos_token_id] + _ids(tok, prefix + " " + cont)
    item = encode_text(tok, cont, max_length=512, prefix=prefix, insert_space=True)
    assert item["input_ids"] == full
    assert item["labels"] == [IGNORE_INDEX] * len(prefix_ids) + full[len(prefix_ids):]
    gen = encode_text_prompt(tok, prefix, cont, max_length=2, insert_space=True)
    assert gen["input_ids"] == prefix_ids
    assert gen["labels"] == full[len(prefix_ids): len(prefix_ids) + 2]
