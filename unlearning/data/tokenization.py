"""Token ids for QA pairs and raw text, with loss labels, exactly as open-unlearning builds them.

    from unlearning.data.tokenization import encode_qa, encode_prompt, encode_text
    item = encode_qa(tokenizer, template, "Who wrote X?", "Y did.")        # training / scoring
    gen = encode_prompt(tokenizer, template, "Who wrote X?", "Y did.")     # generation (ROUGE)
    raw = encode_text(tokenizer, "A paragraph of a book ...", max_length=2048)  # MUSE raw text

Behaviour (OU `src/data/utils.py:preprocess_chat_instance`):
* chat path (`template.apply_chat_template`): full ids = chat template over [system?, few-shot turns,
  user, assistant] with `add_generation_prompt=False`; prompt ids = the same without the last
  assistant turn, with `add_generation_prompt=True`. No truncation on this path. BOS comes from the
  template (the tokenizer adds no special tokens here).
* tag path: `tokenizer(prompt_text + answer, add_special_tokens=True, truncation=True,
  max_length=max_length)` (the tokenizer adds BOS), and the same for the prompt text alone.
* then EOS is appended when the full ids do not already end with it (so a truncated sequence can be
  max_length + 1 long, as in OU); labels are -100 over the first len(prompt ids) positions and the
  full ids after them. A prompt that does not tokenise to a prefix of the full ids, or leaves no
  answer token, is logged as a warning (OU masks by length all the same).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from unlearning.data.templates import PromptTemplate, require_chat_template
from unlearning.errors import ConfigError, DataError

IGNORE_INDEX = -100
logger = logging.getLogger(__name__)


def _as_ids(result: Any) -> list[int]:
    """`apply_chat_template(tokenize=True)` / tokenizer output as a flat list of ints.

    transformers 5 returns a BatchEncoding from `apply_chat_template(tokenize=True)` unless
    `return_dict=False` is passed; both are accepted here.
    """
    if isinstance(result, Mapping):  # BatchEncoding is a UserDict, hence a Mapping
        result = result["input_ids"]
    if hasattr(result, "tolist"):
        result = result.tolist()
    ids = list(result)
    if ids and isinstance(ids[0], (list, tuple)):  # a batch of one conversation
        ids = list(ids[0])
    return [int(i) for i in ids]


def _check_inputs(where: str, question: Any, answer: Any, few_shot: Sequence[tuple[str, str]],
                  max_length: Any) -> None:
    if not isinstance(question, str):
        raise DataError(where, field="question", value=question, fix="the question must be a string")
    if not isinstance(answer, str):
        raise DataError(where, field="answer", value=answer, fix="the answer must be a string")
    for i, shot in enumerate(few_shot):
        if not (isinstance(shot, (tuple, list)) and len(shot) == 2 and all(isinstance(s, str) for s in shot)):
            raise DataError(where, row=i, field="few_shot", value=shot,
                            fix="each few-shot example must be a (question, answer) pair of strings")
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
        raise ConfigError(where, field="max_length", value=max_length, fix="use a positive integer")


def _eos_id(tokenizer: Any) -> int:
    eos = getattr(tokenizer, "eos_token_id", None)
    if eos is None:
        raise ConfigError("tokenizer", field="eos_token", value=None,
                          fix="the tokenizer needs an EOS token (set tokenizer.eos_token)")
    return int(eos)


def full_and_prompt_ids(tokenizer: Any, template: PromptTemplate, question: str, answer: str,
                        max_length: int = 512, few_shot: Sequence[tuple[str, str]] = ()
                        ) -> tuple[list[int], list[int]]:
    """(full ids ending with EOS, prompt ids): the two token sequences OU derives every item from."""
    _check_inputs("encode_qa", question, answer, few_shot, max_length)
    eos = _eos_id(tokenizer)
    if template.apply_chat_template:
        require_chat_template(tokenizer, template)
        chat = template.messages(question, answer, few_shot)
        kwargs = template.chat_template_kwargs()
        full = _as_ids(tokenizer.apply_chat_template(chat, tokenize=True, add_generation_prompt=False,
                                                     return_dict=False, **kwargs))
        prompt = _as_ids(tokenizer.apply_chat_template(chat[:-1], tokenize=True, add_generation_prompt=True,
                                                       return_dict=False, **kwargs))
    else:
        prompt_text = template.wrap_prompt(question, few_shot)
        full = _as_ids(tokenizer(prompt_text + answer, add_special_tokens=True, max_length=max_length,
                                 truncation=True)["input_ids"])
        prompt = _as_ids(tokenizer(prompt_text, add_special_tokens=True, max_length=max_length,
                                   truncation=True)["input_ids"])
    if not full or full[-1] != eos:
        full.append(eos)
    if full[: len(prompt)] != prompt:
        logger.warning("Tokenization mismatch: the prompt ids are not a prefix of the full ids "
                       "(question %r); labels are masked by prompt length as OU does", question[:60])
    if len(prompt) >= len(full):
        logger.warning("Tokenization mismatch: no answer token left to label (question %r)", question[:60])
    return full, prompt


def encode_qa(tokenizer: Any, template: PromptTemplate, question: str, answer: str, max_length: int = 512,
              few_shot: Sequence[tuple[str, str]] = ()) -> dict[str, list[int]]:
    """Training/scoring item: input_ids = prompt + answer (+ EOS), labels -100 over the prompt."""
    full, prompt = full_and_prompt_ids(tokenizer, template, question, answer, max_length, few_shot)
    n_prompt = min(len(prompt), len(full))
    labels = [IGNORE_INDEX] * n_prompt + full[n_prompt:]
    return {"input_ids": full, "labels": labels, "attention_mask": [1] * len(full)}


def encode_prompt(tokenizer: Any, template: PromptTemplate, question: str, answer: str, max_length: int = 512,
                  few_shot: Sequence[tuple[str, str]] = ()) -> dict[str, list[int]]:
    """Generation item: input_ids = the prompt only; labels = the answer ids (ground truth, EOS included).

    OU returns the whole conversation as labels here and removes the decoded prompt text from the
    decoded labels before ROUGE; giving the answer ids directly yields the same ground-truth text.
    """
    full, prompt = full_and_prompt_ids(tokenizer, template, question, answer, max_length, few_shot)
    return {"input_ids": prompt, "labels": full[len(prompt):], "attention_mask": [1] * len(prompt)}


def _text_ids(tokenizer: Any, prefix: str, text: str, max_length: int, insert_space: bool
              ) -> tuple[list[int], list[int]]:
    if not isinstance(text, str):
        raise DataError("encode_text", field="text", value=text, fix="the text must be a string")
    if not isinstance(prefix, str):
        raise DataError("encode_text", field="prefix", value=prefix, fix="the prefix must be a string")
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
        raise ConfigError("encode_text", field="max_length", value=max_length, fix="use a positive integer")
    full = _as_ids(tokenizer(prefix + (" " if insert_space else "") + text, add_special_tokens=True)["input_ids"])
    prefix_ids = _as_ids(tokenizer(prefix, add_special_tokens=True)["input_ids"])
    return full[: len(prefix_ids) + max_length], prefix_ids


def encode_text(tokenizer: Any, text: str, max_length: int, prefix: str = "",
                insert_space: bool = False) -> dict[str, list[int]]:
    """Raw-text item (MUSE raw / verbmem / privleak), OU `preprocess_pretraining_instance`.

    ids = tokenizer(prefix [+ " "] + text) with BOS, cut to len(prefix ids) + max_length tokens.
    Every text token is labelled; the prefix ids (with an empty prefix: just the BOS, or the first
    token when the tokenizer adds no BOS) get -100. Position 0 is never a target after the
    next-token shift anyway, so without a prefix this is "all tokens labelled".
    """
    full, prefix_ids = _text_ids(tokenizer, prefix, text, max_length, insert_space)
    n_masked = min(max(len(prefix_ids), 1), len(full))
    labels = [IGNORE_INDEX] * n_masked + full[n_masked:]
    return {"input_ids": full, "labels": labels, "attention_mask": [1] * len(full)}


def encode_text_prompt(tokenizer: Any, prefix: str, text: str, max_length: int,
                       insert_space: bool = False) -> dict[str, list[int]]:
    """Generation item for a text completion (MUSE verbmem): input_ids = prefix ids; labels = the
    continuation ids (the ground truth, cut to max_length tokens)."""
    full, prefix_ids = _text_ids(tokenizer, prefix, text, max_length, insert_space)
    return {"input_ids": prefix_ids, "labels": full[len(prefix_ids):], "attention_mask": [1] * len(prefix_ids)}
