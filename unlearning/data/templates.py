"""Prompt templates per model family: how a question/answer pair becomes the text a model sees.

One frozen `PromptTemplate` per family, with the values of open-unlearning's `configs/model/*.yaml`
(`template_args`) and the BalDRO fork's Qwen3 / Mistral configs. Chat families go through the
tokenizer's own jinja chat template (`apply_chat_template=True`); the others are built from the
string tags (`user_start_tag + question + user_end_tag + asst_start_tag + answer`).

    from unlearning.data.templates import get_template, ensure_chat_template, render
    template = get_template("meta-llama/Llama-3.2-1B-Instruct")   # or get_template("llama3")
    ensure_chat_template(tokenizer, template)   # attach our jinja only if the tokenizer has none
    print(render(tokenizer, template, "Who wrote X?", "Y did."))

Families: llama2-chat, llama3, qwen2.5, qwen3, mistral-v0.3, phi (Phi-3/3.5 mini instruct), gemma,
plain ("Question: {q}\\nAnswer: {a}", used by OU for phi-1_5, Llama-2-7b-hf / 13b-hf and MUSE),
zoo ("Question: {q}\\nAnswer:\\n{a}", the tiny tofu-mini models).
The jinja files in `chat_templates/` reproduce each family's public prompt format; real hub
tokenizers ship their own template, which always wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unlearning.errors import ConfigError

CHAT_TEMPLATE_DIR = Path(__file__).resolve().parent / "chat_templates"
DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."


@dataclass(frozen=True)
class PromptTemplate:
    """How to wrap a QA pair for one model family (mirrors OU's `template_args`).

    `apply_chat_template=True`: messages [system?, user, assistant] go through the tokenizer's chat
    template, with `date_string` / `enable_thinking` passed to it when set. Otherwise the tags are
    concatenated (`system_prompt_with_special_tokens` first, when set) and the tokenizer adds BOS.
    The tags of chat families are kept (OU keeps them too) so that
    `dataclasses.replace(t, apply_chat_template=False)` gives OU's manual-tag variant.
    """

    family: str
    apply_chat_template: bool
    system_prompt: str | None = None
    date_string: str | None = None
    enable_thinking: bool | None = None
    user_start_tag: str = ""
    user_end_tag: str = ""
    asst_start_tag: str = ""
    asst_end_tag: str = ""
    system_prompt_with_special_tokens: str | None = None

    def chat_template_kwargs(self) -> dict[str, Any]:
        """Extra variables for the jinja template: only those that are set (as OU / the fork do)."""
        kwargs: dict[str, Any] = {}
        if self.date_string is not None:
            kwargs["date_string"] = self.date_string
        if self.enable_thinking is not None:
            kwargs["enable_thinking"] = self.enable_thinking
        return kwargs

    def messages(self, question: str, answer: str | None = None,
                 few_shot: Sequence[tuple[str, str]] = ()) -> list[dict[str, str]]:
        """Chat messages: [system?] + few-shot user/assistant turns + user question [+ assistant answer]."""
        chat: list[dict[str, str]] = []
        if self.system_prompt:
            chat.append({"role": "system", "content": self.system_prompt})
        for shot_q, shot_a in few_shot:
            chat += [{"role": "user", "content": shot_q}, {"role": "assistant", "content": shot_a}]
        chat.append({"role": "user", "content": question})
        if answer is not None:
            chat.append({"role": "assistant", "content": answer})
        return chat

    def wrap_prompt(self, question: str, few_shot: Sequence[tuple[str, str]] = ()) -> str:
        """Tag path: the prompt text up to (and including) the assistant start tag; BOS not included."""
        text = self.system_prompt_with_special_tokens or ""
        for shot_q, shot_a in few_shot:
            text += (self.user_start_tag + shot_q + self.user_end_tag
                     + self.asst_start_tag + shot_a + self.asst_end_tag)
        return text + self.user_start_tag + question + self.user_end_tag + self.asst_start_tag


_LLAMA3_SYSTEM_TOKENS = ("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
                         f"{DEFAULT_SYSTEM_PROMPT}<|eot_id|>")
_CHATML_TAGS = dict(user_start_tag="<|im_start|>user\n", user_end_tag="<|im_end|>\n",
                    asst_start_tag="<|im_start|>assistant\n", asst_end_tag="<|im_end|>\n",
                    system_prompt_with_special_tokens=f"<|im_start|>system\n{DEFAULT_SYSTEM_PROMPT}<|im_end|>\n")

TEMPLATES: dict[str, PromptTemplate] = {
    # OU Llama-2-7b-chat-hf.yaml: no chat template; an empty asst_start_tag (OU: a leading space
    # tokenised badly at the border); asst_end_tag " " only closes few-shot answers.
    "llama2-chat": PromptTemplate("llama2-chat", False, user_start_tag="[INST] ", user_end_tag=" [/INST]",
                                  asst_start_tag="", asst_end_tag=" "),
    "llama3": PromptTemplate("llama3", True, system_prompt=DEFAULT_SYSTEM_PROMPT, date_string="10 Apr 2025",
                             user_start_tag="<|start_header_id|>user<|end_header_id|>\n\n",
                             user_end_tag="<|eot_id|>",
                             asst_start_tag="<|start_header_id|>assistant<|end_header_id|>\n\n",
                             asst_end_tag="<|eot_id|>", system_prompt_with_special_tokens=_LLAMA3_SYSTEM_TOKENS),
    "qwen2.5": PromptTemplate("qwen2.5", True, system_prompt=DEFAULT_SYSTEM_PROMPT, **_CHATML_TAGS),
    "qwen3": PromptTemplate("qwen3", True, system_prompt=DEFAULT_SYSTEM_PROMPT, enable_thinking=False,
                            **_CHATML_TAGS),
    "mistral-v0.3": PromptTemplate("mistral-v0.3", True, user_start_tag="[INST] ", user_end_tag=" [/INST]",
                                   asst_start_tag="", asst_end_tag="</s>"),
    "phi": PromptTemplate("phi", True, system_prompt=DEFAULT_SYSTEM_PROMPT,
                          user_start_tag="<|user|>\n", user_end_tag="<|end|>\n",
                          asst_start_tag="<|assistant|>\n", asst_end_tag="<|end|>\n",
                          system_prompt_with_special_tokens=f"<|system|>\n{DEFAULT_SYSTEM_PROMPT}<|end|>\n"),
    "gemma": PromptTemplate("gemma", True, user_start_tag="<bos><start_of_turn>user\n",
                            user_end_tag="<end_of_turn>\n", asst_start_tag="<start_of_turn>model\n",
                            asst_end_tag="<end_of_turn>\n"),
    "plain": PromptTemplate("plain", False, user_start_tag="Question: ", user_end_tag="\n",
                            asst_start_tag="Answer: ", asst_end_tag="\n\n"),
    # the tiny zoo's own format: the answer starts after a newline, so with a byte-level BPE the prompt
    # ids are always a prefix of the full ids (a trailing "Answer: " space would merge into the answer)
    "zoo": PromptTemplate("zoo", False, user_start_tag="Question: ", user_end_tag="\n",
                          asst_start_tag="Answer:\n", asst_end_tag="\n\n"),
}
FAMILIES: tuple[str, ...] = tuple(TEMPLATES)


def _has(name: str, *parts: str) -> bool:
    return any(p in name for p in parts)


def _family_of_model_id(model_id: str) -> str | None:
    """Best-effort family of a hub id or local path (matched on the lower-cased name)."""
    name = model_id.lower().replace("_", "-")
    instruct = _has(name, "instruct", "-chat", "-it")
    if _has(name, "zephyr"):
        return None  # OU supports it, our families do not: an explicit error is better than a guess
    if _has(name, "qwen3"):
        return "qwen3"
    if _has(name, "qwen2.5", "qwen2-5"):
        return "qwen2.5" if instruct else "plain"
    if _has(name, "mistral"):
        if not instruct:
            return "plain"
        return "mistral-v0.3" if _has(name, "v0.3", "v0-3") else None
    if _has(name, "phi-3", "phi3"):
        return "phi"
    if _has(name, "phi-1", "phi-2", "phi1", "phi2"):
        return "plain"
    if _has(name, "gemma"):
        return "gemma" if instruct else "plain"
    if _has(name, "llama-3", "llama3"):
        return "llama3" if instruct else "plain"
    if _has(name, "tofu-ft-llama2"):  # locuslab/tofu_ft_llama2-7b: TOFU fine-tune of Llama-2-7b-chat
        return "llama2-chat"
    if _has(name, "llama-2", "llama2"):
        return "llama2-chat" if _has(name, "chat") else "plain"
    if _has(name, "muse-bench"):  # MUSE target/retrain models are Llama-2-7b-hf fine-tunes
        return "plain"
    return None


def get_template(name_or_model_id: str) -> PromptTemplate:
    """The template of a family name (see FAMILIES) or of a hub model id / local model path."""
    if name_or_model_id in TEMPLATES:
        return TEMPLATES[name_or_model_id]
    family = _family_of_model_id(str(name_or_model_id))
    if family is None:
        raise ConfigError("model.template", field="template", value=name_or_model_id,
                          fix=f"use one of the families {', '.join(FAMILIES)} "
                              "(set the template family explicitly when the model id does not name it)")
    return TEMPLATES[family]


def load_chat_template(family: str) -> str:
    """The jinja source we ship for a chat family (`chat_templates/<family>.jinja`)."""
    path = CHAT_TEMPLATE_DIR / f"{family}.jinja"
    if not path.is_file():
        shipped = sorted(p.stem for p in CHAT_TEMPLATE_DIR.glob("*.jinja"))
        raise ConfigError(str(path), field="family", value=family,
                          fix=f"no chat template is shipped for this family; shipped: {', '.join(shipped)}")
    return path.read_text(encoding="utf-8")


def ensure_chat_template(tokenizer: Any, template: PromptTemplate) -> Any:
    """Attach our jinja template when `template` needs one and the tokenizer has none; returns tokenizer.

    A tokenizer's own template (every real hub instruct tokenizer has one) is never replaced.
    """
    if template.apply_chat_template and not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = load_chat_template(template.family)
    return tokenizer


def require_chat_template(tokenizer: Any, template: PromptTemplate) -> None:
    """ConfigError when a chat-template family meets a tokenizer without a chat template."""
    if template.apply_chat_template and not getattr(tokenizer, "chat_template", None):
        raise ConfigError("tokenizer", field="chat_template", value=None,
                          fix=f"template family '{template.family}' needs a chat template: call "
                              "unlearning.data.templates.ensure_chat_template(tokenizer, template) first")


def render(tokenizer: Any, template: PromptTemplate, question: str, answer: str | None = None,
           few_shot: Sequence[tuple[str, str]] = ()) -> str:
    """The exact text of a training example (answer given) or of a generation prompt (answer None).

    Chat path: the chat template's output, BOS included when the template emits it. Tag path: the
    tag string, without the BOS that the tokenizer adds when encoding.
    """
    if not template.apply_chat_template:
        prompt = template.wrap_prompt(question, few_shot)
        return prompt if answer is None else prompt + answer
    require_chat_template(tokenizer, template)
    return tokenizer.apply_chat_template(template.messages(question, answer, few_shot), tokenize=False,
                                         add_generation_prompt=answer is None,
                                         **template.chat_template_kwargs())
