"""Train the tiny zoo's byte-level BPE tokenizer on benchmark text, offline, with `tokenizers`.

The result is a `transformers.PreTrainedTokenizerFast` with `<s>` (BOS, added by `add_special_tokens=True`
like Llama tokenizers), `</s>` (EOS) and a separate `<pad>`; it saves and loads with
`save_pretrained` / `AutoTokenizer.from_pretrained(dir)` and no hub access.

    from unlearning.models.tokenizer import train_bpe_tokenizer
    tok = train_bpe_tokenizer(["Question: ...", ...], vocab_size=2048)
"""

from __future__ import annotations

from typing import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

PAD, BOS, EOS = "<pad>", "<s>", "</s>"


def train_bpe_tokenizer(texts: Iterable[str], vocab_size: int = 2048, min_frequency: int = 2) -> PreTrainedTokenizerFast:
    """A byte-level BPE trained on `texts` (deterministic for the same texts and settings)."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=[PAD, BOS, EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer=trainer)
    bos_id = tok.token_to_id(BOS)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, bos_id)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD, model_max_length=512,
        clean_up_tokenization_spaces=False,
    )
