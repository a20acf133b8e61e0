"""Load any Hugging Face causal LM (hub id, local path, or tiny-zoo name) with its tokenizer and template.

    from unlearning.models.loading import load_bundle
    b = load_bundle("tofu-mini/target")                       # zoo model (run `unlearn-sweep prepare` first)
    b = load_bundle("meta-llama/Llama-3.2-1B-Instruct", dtype="bfloat16", attn_implementation="sdpa")
    b.model, b.tokenizer, b.template

Zoo names resolve to folders in the cache (see `unlearning.models.zoo`); anything else goes to
`AutoModelForCausalLM.from_pretrained`, which reads a local folder or the hub (set `HF_HUB_OFFLINE=1`
to refuse network access). Tokenizers without a pad token get pad := eos (as open-unlearning does).
A folder saved by the T3 method (the base model plus `t3_head.pt`) loads as the guided T3 model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from unlearning.data.templates import PromptTemplate, ensure_chat_template, get_template
from unlearning.errors import ConfigError
from unlearning.models.zoo import parse_zoo_name, zoo_dir
from unlearning.models.zoo_model import TEMPLATE_FILE

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class ModelBundle:
    """A model with the tokenizer and prompt template that go with it."""

    model: Any
    tokenizer: Any
    template: PromptTemplate
    name: str


def resolve_model_path(name: str | Path) -> str:
    """Zoo names -> their cache folder (error if not prepared yet); other names are returned unchanged."""
    parsed = parse_zoo_name(str(name))
    if parsed is None:
        return str(name)
    cfg, model = parsed
    path = zoo_dir(cfg) / model
    if not (path / "config.json").exists():
        size = "" if cfg.size == "small" else f" --size {cfg.size}"
        bench = str(name).split("/", 1)[0].removesuffix(f"-{cfg.size}")
        raise ConfigError(str(name), field="model", value=str(name),
                          fix=f"the zoo model is not prepared yet: run `unlearn-sweep prepare {bench}{size}`")
    return str(path)




def template_for(name: str | Path) -> PromptTemplate:
    """The prompt template of a model: named in its folder's `prompt_template.txt` when present (zoo models
    carry one), else detected from the model name."""
    hint = Path(resolve_model_path(name)) / TEMPLATE_FILE
    if hint.is_file():
        return get_template(hint.read_text().strip())
    return get_template(str(name))


def resolve_dtype(dtype: str) -> str:
    """"auto" -> "bfloat16" on CUDA, "float32" on CPU."""
    if dtype == "auto":
        return "bfloat16" if torch.cuda.is_available() else "float32"
    return dtype


def load_tokenizer(name: str | Path, template: PromptTemplate | None = None):
    from transformers import AutoTokenizer

    path = resolve_model_path(name)
    try:
        tok = AutoTokenizer.from_pretrained(path)
    except OSError as exc:
        raise ConfigError(str(name), field="model", value=str(name),
                          fix=f"give a local model folder, a zoo name or a reachable hub id ({exc})") from None
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    if template is not None and template.apply_chat_template:
        ensure_chat_template(tok, template)
    return tok


def load_model(name: str | Path, dtype: str = "float32", attn_implementation: str | None = None,
               device: str | torch.device = "cpu"):
    from transformers import AutoModelForCausalLM

    if dtype not in DTYPES:
        raise ConfigError(str(name), field="dtype", value=dtype, fix=f"use one of {sorted(DTYPES)}")
    path = resolve_model_path(name)
    kwargs: dict[str, Any] = {"dtype": DTYPES[dtype]}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    try:
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except OSError as exc:
        raise ConfigError(str(name), field="model", value=str(name),
                          fix=f"give a local model folder, a zoo name or a reachable hub id ({exc})") from None
    model = model.to(device)
    if Path(path).is_dir():  # a model unlearnt by T3: the base plus its guidance head, decoded through both
        from unlearning.methods.t3 import HEAD_FILE, load_t3

        if (Path(path) / HEAD_FILE).is_file():
            return load_t3(path, model)
    return model


def load_bundle(name: str | Path, dtype: str = "float32", attn_implementation: str | None = None,
                device: str | torch.device = "cpu", template: str | None = None) -> ModelBundle:
    """Model + tokenizer + template in one call; `template` overrides the family detected from the name."""
    tmpl = get_template(template) if template else template_for(name)
    tok = load_tokenizer(name, tmpl)
    model = load_model(name, dtype=dtype, attn_implementation=attn_implementation, device=device)
    return ModelBundle(model=model, tokenizer=tok, template=tmpl, name=str(name))
