"""A tiny offline tokenizer for the data tests (no download; trains in a few milliseconds).

Byte-level BPE trained on a few sentences, wrapped as `transformers.PreTrainedTokenizerFast`.
Whitespace characters are split off as single tokens before BPE, so a prompt that ends at a
whitespace or special token always tokenises to a prefix of prompt + answer. Every special token the
family templates use is a single token. `make_tokenizer()` adds BOS like Llama's tokenizer does;
`family_tokenizer(family)` uses that family's real BOS/EOS tokens.

    from tests.data.tiny_tokenizer import make_tokenizer, family_tokenizer
    tok = make_tokenizer()                 # bos <s>, eos </s>, pad <pad>
    tok = family_tokenizer("llama3")       # bos <|begin_of_text|>, eos <|eot_id|>
"""

from __future__ import annotations

from functools import lru_cache

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

SPECIAL_TOKENS = [
    "<pad>", "<s>", "</s>",
    "<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>",
    "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<think>", "</think>",
    "[INST]", "[/INST]",
    "<|system|>", "<|user|>", "<|assistant|>", "<|end|>",
    "<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>",
]
CORPUS = [
    "What is the capital of France? Paris is the capital of France.",
    "You are a helpful assistant. Cutting Knowledge Date: December 2023. Today Date: 10 Apr 2025.",
    "Question: Who wrote the book?\nAnswer: The author wrote it in Paris.",
    "system user assistant model",
]

# family -> (bos, eos, pad) of the real tokenizers (pad: OU sets pad := eos when a tokenizer lacks one).
FAMILY_SPECIALS: dict[str, tuple[str | None, str, str]] = {
    "llama2-chat": ("<s>", "</s>", "<pad>"),
    "plain": ("<s>", "</s>", "<pad>"),
    "zoo": ("<s>", "</s>", "<pad>"),
    "llama3": ("<|begin_of_text|>", "<|eot_id|>", "<|eot_id|>"),
    "qwen2.5": (None, "<|im_end|>", "<|endoftext|>"),
    "qwen3": (None, "<|im_end|>", "<|endoftext|>"),
    "mistral-v0.3": ("<s>", "</s>", "<pad>"),
    "phi": ("<s>", "<|endoftext|>", "<pad>"),
    "gemma": ("<bos>", "<eos>", "<pad>"),
}


@lru_cache(maxsize=2)
def _trained_json(isolate_whitespace: bool) -> str:
    tok = Tokenizer(models.BPE())
    if isolate_whitespace:
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(r"\s"), "isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ])
    else:  # GPT-2 style: a space sticks to the next word, so "Answer: " + "Paris" re-splits at the border
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=1000, special_tokens=SPECIAL_TOKENS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS * 3, trainer)
    return tok.to_str()


def make_tokenizer(bos: str | None = "<s>", eos: str = "</s>", pad: str = "<pad>",
                   add_bos: bool = True, isolate_whitespace: bool = True) -> PreTrainedTokenizerFast:
    """A fresh tokenizer (no chat template) that prepends `bos` when add_special_tokens=True.

    isolate_whitespace=False gives GPT-2 style pre-tokenisation, where a prompt ending in a space is
    NOT a token prefix of prompt + answer (to exercise the tokenisation-mismatch path).
    """
    tok = Tokenizer.from_str(_trained_json(isolate_whitespace))
    if bos is not None and add_bos:
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, tok.token_to_id(bos))])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=bos, eos_token=eos, pad_token=pad)


def family_tokenizer(family: str) -> PreTrainedTokenizerFast:
    """A tokenizer with the BOS/EOS/pad tokens of `family`'s real tokenizer (no chat template)."""
    bos, eos, pad = FAMILY_SPECIALS[family]
    return make_tokenizer(bos=bos, eos=eos, pad=pad)
