"""The pieces every zoo build shares (tofu-mini's `prepare.py`, muse-mini's `muse_prepare.py`): a random-init tiny
Llama of a zoo size, the zoo's tokenizer, and saving a trained model with its prompt-template file.

    tok = load_zoo_tokenizer(zoo_root)                      # <zoo>/tokenizer
    model = new_model("small", seed=0, tokenizer=tok)       # the same weights for the same seed
    save_model(model, tok, zoo_root / "target", template="zoo")

It imports nothing of the project but the size table (`zoo_names`), so neither zoo build imports the other.
"""

from __future__ import annotations

from pathlib import Path

from unlearning.models.zoo_names import SIZES

TEMPLATE_FILE = "prompt_template.txt"  # a model folder's prompt-template name (read by `models.loading`)


def new_model(size: str, seed: int, tokenizer):
    """A random-init tiny Llama of `size` (the same weights for the same seed)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    s = SIZES[size]
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=s.hidden, intermediate_size=s.intermediate,
        num_hidden_layers=s.layers, num_attention_heads=s.heads, num_key_value_heads=s.heads,
        max_position_embeddings=512, tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
    )
    return LlamaForCausalLM(config)


def load_zoo_tokenizer(root: Path):
    """The zoo's BPE tokenizer (`<root>/tokenizer`)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(root / "tokenizer")


def save_model(model, tokenizer, path: Path, template: str) -> None:
    """Weights, tokenizer and the template file to `path`, written to `<path>.tmp` and renamed (atomic)."""
    import shutil

    from transformers.utils import logging as hf_logging

    tmp = path.with_name(path.name + ".tmp")
    hf_logging.disable_progress_bar()  # no "Writing model shards" bar per model
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / TEMPLATE_FILE).write_text(template + "\n")
    if path.exists():
        shutil.rmtree(path)
    tmp.rename(path)
