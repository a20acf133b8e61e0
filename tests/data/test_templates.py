"""Tests for unlearning.data.templates: each family's prompt text, family lookup, chat-template attach.

Expected strings are written by hand from each family's documented prompt format.
Run: .venv/bin/python -m pytest tests/data/test_templates.py -q
"""

from __future__ import annotations

import dataclasses

import pytest
from tiny_tokenizer import family_tokenizer, make_tokenizer

from unlearning.data.templates import (
    FAMILIES,
    TEMPLATES,
    ensure_chat_template,
    get_template,
    load_chat_template,
    render,
)
from unlearning.errors import ConfigError

Q, A = "What is the capital of France?", "Paris."
SYS = "You are a helpful assistant."

# family -> (full conversation text, generation prompt text), written by hand.
EXPECTED: dict[str, tuple[str, str]] = {
    "llama2-chat": (
        "[INST] What is the capital of France? [/INST]Paris.",
        "[INST] What is the capital of France? [/INST]",
    ),
    "llama3": (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
        "Cutting Knowledge Date: December 2023\nToday Date: 10 Apr 2025\n\n"
        "You are a helpful assistant.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nWhat is the capital of France?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nParis.<|eot_id|>",
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
        "Cutting Knowledge Date: December 2023\nToday Date: 10 Apr 2025\n\n"
        "You are a helpful assistant.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nWhat is the capital of France?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n",
    ),
    "qwen2.5": (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n"
        "<|im_start|>assistant\nParis.<|im_end|>\n",
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n"
        "<|im_start|>assistant\n",
    ),
    "qwen3": (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n"
        "<|im_start|>assistant\n<think>\n\n</think>\n\nParis.<|im_end|>\n",
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n"
        "<|im_start|>assistant\n<think>\n\n</think>\n\n",
    ),
    "mistral-v0.3": (
        "<s>[INST] What is the capital of France?[/INST] Paris.</s>",
        "<s>[INST] What is the capital of France?[/INST]",
    ),
    "phi": (
        "<|system|>\nYou are a helpful assistant.<|end|>\n<|user|>\nWhat is the capital of France?<|end|>\n"
        "<|assistant|>\nParis.<|end|>\n<|endoftext|>",
        "<|system|>\nYou are a helpful assistant.<|end|>\n<|user|>\nWhat is the capital of France?<|end|>\n"
        "<|assistant|>\n",
    ),
    "gemma": (
        "<bos><start_of_turn>user\nWhat is the capital of France?<end_of_turn>\n"
        "<start_of_turn>model\nParis.<end_of_turn>\n",
        "<bos><start_of_turn>user\nWhat is the capital of France?<end_of_turn>\n<start_of_turn>model\n",
    ),
    "plain": (
        "Question: What is the capital of France?\nAnswer: Paris.",
        "Question: What is the capital of France?\nAnswer: ",
    ),
    "zoo": (
        "Question: What is the capital of France?\nAnswer:\nParis.",
        "Question: What is the capital of France?\nAnswer:\n",
    ),
}


def test_every_family_has_an_expected_rendering() -> None:
    assert set(EXPECTED) == set(FAMILIES)


@pytest.mark.parametrize("family", sorted(EXPECTED))
def test_render_matches_the_family_prompt_format(family: str) -> None:
    tok = family_tokenizer(family)
    template = get_template(family)
    ensure_chat_template(tok, template)
    full, prompt = EXPECTED[family]
    assert render(tok, template, Q, A) == full
    assert render(tok, template, Q) == prompt


def test_template_values_follow_open_unlearning_configs() -> None:
    assert TEMPLATES["llama3"].chat_template_kwargs() == {"date_string": "10 Apr 2025"}
    assert TEMPLATES["qwen3"].chat_template_kwargs() == {"enable_thinking": False}
    assert TEMPLATES["mistral-v0.3"].chat_template_kwargs() == {}
    assert TEMPLATES["mistral-v0.3"].system_prompt is None and TEMPLATES["gemma"].system_prompt is None
    for fam in ("llama3", "qwen2.5", "qwen3", "phi"):
        assert TEMPLATES[fam].system_prompt == SYS
    assert [f for f in FAMILIES if not TEMPLATES[f].apply_chat_template] == ["llama2-chat", "plain", "zoo"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        TEMPLATES["plain"].user_start_tag = "Q: "  # type: ignore[misc]


def test_plain_few_shot_is_muse_question_answer_blocks() -> None:
    text = render(make_tokenizer(), get_template("plain"), "Q3?", "A3.", few_shot=[("Q1?", "A1."), ("Q2?", "A2.")])
    assert text == "Question: Q1?\nAnswer: A1.\n\nQuestion: Q2?\nAnswer: A2.\n\nQuestion: Q3?\nAnswer: A3."


def test_llama2_chat_few_shot_closes_examples_with_a_space() -> None:
    text = render(make_tokenizer(), get_template("llama2-chat"), "Q2?", few_shot=[("Q1?", "A1.")])
    assert text == "[INST] Q1? [/INST]A1. [INST] Q2? [/INST]"


def test_llama3_few_shot_turns_come_between_system_and_question() -> None:
    tok = ensure_chat_template(family_tokenizer("llama3"), get_template("llama3"))
    text = render(tok, get_template("llama3"), "Q2?", few_shot=[("Q1?", " A1. ")])
    assert text == (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
        "Cutting Knowledge Date: December 2023\nToday Date: 10 Apr 2025\n\nYou are a helpful assistant.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nQ1?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nA1.<|eot_id|>"  # contents are trimmed
        "<|start_header_id|>user<|end_header_id|>\n\nQ2?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )


def test_llama3_template_default_date_and_no_system() -> None:
    tok = ensure_chat_template(family_tokenizer("llama3"), get_template("llama3"))
    bare = dataclasses.replace(get_template("llama3"), system_prompt=None, date_string=None)
    assert render(tok, bare, "Q?") == (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
        "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nQ?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    )


def test_qwen3_thinking_enabled_prompt_has_no_empty_think_block() -> None:
    tok = ensure_chat_template(family_tokenizer("qwen3"), get_template("qwen3"))
    thinking = dataclasses.replace(get_template("qwen3"), enable_thinking=True, system_prompt=None)
    assert render(tok, thinking, "Q?") == "<|im_start|>user\nQ?<|im_end|>\n<|im_start|>assistant\n"
    # Earlier assistant turns (few-shot) carry no think block; the final one does.
    assert render(tok, thinking, "Q2?", "A2.", few_shot=[("Q1?", "A1.")]) == (
        "<|im_start|>user\nQ1?<|im_end|>\n<|im_start|>assistant\nA1.<|im_end|>\n"
        "<|im_start|>user\nQ2?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nA2.<|im_end|>\n"
    )


def test_qwen25_without_system_inserts_the_model_default() -> None:
    tok = ensure_chat_template(family_tokenizer("qwen2.5"), get_template("qwen2.5"))
    bare = dataclasses.replace(get_template("qwen2.5"), system_prompt=None)
    assert render(tok, bare, "Q?") == (
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\nQ?<|im_end|>\n<|im_start|>assistant\n"
    )


def test_mistral_system_prompt_goes_to_the_last_user_turn_only() -> None:
    tok = ensure_chat_template(family_tokenizer("mistral-v0.3"), get_template("mistral-v0.3"))
    with_sys = dataclasses.replace(get_template("mistral-v0.3"), system_prompt="Be brief.")
    assert render(tok, with_sys, "Q?") == "<s>[INST] Be brief.\n\nQ?[/INST]"
    assert render(tok, with_sys, "Q?", "A.") == "<s>[INST] Q?[/INST] A.</s>"


def test_gemma_rejects_a_system_prompt() -> None:
    tok = ensure_chat_template(family_tokenizer("gemma"), get_template("gemma"))
    with pytest.raises(Exception, match="System role not supported"):
        render(tok, dataclasses.replace(get_template("gemma"), system_prompt=SYS), "Q?")


@pytest.mark.parametrize("model_id, family", [
    ("meta-llama/Llama-3.2-1B-Instruct", "llama3"),
    ("meta-llama/Llama-3.1-8B-Instruct", "llama3"),
    ("open-unlearning/tofu_Llama-3.2-1B-Instruct_full", "llama3"),
    ("Qwen/Qwen3-8B", "qwen3"),
    ("Qwen/Qwen2.5-7B-Instruct", "qwen2.5"),
    ("mistralai/Mistral-7B-Instruct-v0.3", "mistral-v0.3"),
    ("microsoft/Phi-3.5-mini-instruct", "phi"),
    ("google/gemma-7b-it", "gemma"),
    ("microsoft/phi-1_5", "plain"),
    ("locuslab/tofu_ft_phi-1.5", "plain"),
    ("meta-llama/Llama-2-7b-hf", "plain"),
    ("muse-bench/MUSE-News_target", "plain"),
    ("meta-llama/Llama-2-7b-chat-hf", "llama2-chat"),
    ("locuslab/tofu_ft_llama2-7b", "llama2-chat"),
    ("/models/saved/tofu_Llama-2-7b-chat-hf_full", "llama2-chat"),
])
def test_get_template_maps_model_ids(model_id: str, family: str) -> None:
    assert get_template(model_id).family == family


@pytest.mark.parametrize("name", ["gpt2", "HuggingFaceH4/zephyr-7b-beta", "mistralai/Mistral-7B-Instruct-v0.2"])
def test_get_template_unknown_name_lists_the_families(name: str) -> None:
    with pytest.raises(ConfigError) as err:
        get_template(name)
    assert name in str(err.value)
    for fam in FAMILIES:
        assert fam in str(err.value)


def test_ensure_chat_template_keeps_a_tokenizers_own_template() -> None:
    tok = make_tokenizer()
    tok.chat_template = "{% for m in messages %}{{ m['content'] }}|{% endfor %}"
    ensure_chat_template(tok, get_template("llama3"))
    assert render(tok, get_template("llama3"), "Q?", "A.") == "You are a helpful assistant.|Q?|A.|"


def test_ensure_chat_template_attaches_ours_only_for_chat_families() -> None:
    tok = make_tokenizer()
    ensure_chat_template(tok, get_template("plain"))
    assert tok.chat_template is None
    ensure_chat_template(tok, get_template("gemma"))
    assert tok.chat_template == load_chat_template("gemma")


def test_chat_family_without_a_chat_template_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="ensure_chat_template"):
        render(make_tokenizer(), get_template("qwen2.5"), "Q?")


def test_every_chat_family_ships_a_jinja_template() -> None:
    for fam in FAMILIES:
        if TEMPLATES[fam].apply_chat_template:
            assert "messages" in load_chat_template(fam)
    with pytest.raises(ConfigError, match="shipped"):
        load_chat_template("plain")
