"""Greedy generation for ROUGE / gibberish: left padding, KV cache, each sequence stops at its own EOS.

Plain argmax decoding, as open-unlearning's `generate(do_sample=False)` (docs/methods.md, "Primitives"). Prompts
are sorted by length and batched with left padding (position ids follow the attention mask). With
`use_cache=True` the prompt is encoded once and each step feeds one token per sequence through the
KV cache; a sequence that emits EOS (or meets `stop`) leaves the batch at once (its rows are dropped
from the cache), so the batch never keeps decoding finished sequences. `use_cache=False` recomputes the
whole sequence every step (same tokens; used by the tests and the naive benchmark).

    ids = greedy_generate(model, [encode_prompt(tok, tmpl, q, a)["input_ids"] for q, a in pairs],
                          eos_token_ids=eos_ids(tok, model), pad_token_id=tok.pad_token_id, max_new_tokens=200)
    texts = decode_generations(tok, ids)          # skip_special_tokens, like OU
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch

from unlearning.data.collators import pad_sequences
from unlearning.data.templates import PromptTemplate
from unlearning.data.tokenization import full_and_prompt_ids
from unlearning.evaluation.scoring import model_device
from unlearning.metrics.rouge import ground_truth_text

StopFn = Callable[[list[int]], bool]


def eos_ids(tokenizer: Any, model: Any = None) -> set[int]:
    """EOS ids that end a generation: the tokenizer's EOS plus the model's generation_config EOS ids."""
    ids: set[int] = set()
    if getattr(tokenizer, "eos_token_id", None) is not None:
        ids.add(int(tokenizer.eos_token_id))
    gen_cfg = getattr(model, "generation_config", None)
    extra = getattr(gen_cfg, "eos_token_id", None) if gen_cfg is not None else None
    if extra is not None:
        ids.update(int(i) for i in (extra if isinstance(extra, (list, tuple)) else [extra]))
    if not ids:
        raise ValueError("no EOS token: set tokenizer.eos_token (generation needs a stop token)")
    return ids


def _accepts_logits_to_keep(model: Any) -> bool:
    try:
        return "logits_to_keep" in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False


def _last_logits(model: Any, keep_kw: bool, **kwargs: Any) -> tuple[torch.Tensor, Any]:
    if keep_kw:
        kwargs["logits_to_keep"] = 1
    out = model(**kwargs)
    return out.logits[:, -1, :], getattr(out, "past_key_values", None)


def _generate_batch(model: Any, prompts: list[list[int]], eos: set[int], pad_token_id: int, max_new_tokens: int,
                    use_cache: bool, stop: StopFn | None) -> list[list[int]]:
    device = model_device(model)
    keep_kw = _accepts_logits_to_keep(model)
    ids = pad_sequences(prompts, pad_token_id, "left").to(device)
    mask = pad_sequences([[1] * len(p) for p in prompts], 0, "left").to(device)
    eos_t = torch.tensor(sorted(eos), dtype=torch.long, device=device)
    active = list(range(len(prompts)))  # batch row -> prompt index
    generated: list[list[int]] = [[] for _ in prompts]
    cache = None
    step_ids = ids
    for step in range(max_new_tokens):
        if use_cache:
            pos = (mask.cumsum(-1) - 1).clamp(min=0)[:, -step_ids.shape[1]:]
            logits, cache = _last_logits(model, keep_kw, input_ids=step_ids, attention_mask=mask, position_ids=pos,
                                         past_key_values=cache, use_cache=True)
        else:
            pos = (mask.cumsum(-1) - 1).clamp(min=0)
            logits, _ = _last_logits(model, keep_kw, input_ids=ids, attention_mask=mask, position_ids=pos,
                                     use_cache=False)
        next_tok = logits.argmax(-1)
        finished = torch.isin(next_tok, eos_t).tolist()
        tokens = next_tok.tolist()
        keep: list[int] = []
        for row, prompt_idx in enumerate(active):
            if finished[row]:
                continue
            generated[prompt_idx].append(tokens[row])
            if stop is None or not stop(generated[prompt_idx]):
                keep.append(row)
        if not keep or step == max_new_tokens - 1:
            break
        if len(keep) < len(active):
            sel = torch.tensor(keep, device=device)
            ids, mask, next_tok = ids[sel], mask[sel], next_tok[sel]
            if cache is not None:
                cache.batch_select_indices(sel)
            active = [active[r] for r in keep]
        step_ids = next_tok.unsqueeze(1)
        ids = torch.cat([ids, step_ids], dim=1)
        mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=1)
    return generated


def greedy_generate(model: Any, prompts: Sequence[Sequence[int]], *, eos_token_ids: Iterable[int], pad_token_id: int,
                    max_new_tokens: int = 200, batch_size: int = 64, use_cache: bool = True,
                    stop: StopFn | None = None) -> list[list[int]]:
    """Greedy continuations (EOS not included) of every prompt, in the order given.

    `stop(generated_ids) -> bool` ends a sequence early (e.g. a stopword in its decoded text); the token
    that triggered it is kept, as the text is cut at the stopword afterwards anyway.
    """
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    eos = set(int(i) for i in eos_token_ids)
    order = sorted(range(len(prompts)), key=lambda i: (len(prompts[i]), i))
    results: list[list[int]] = [[] for _ in prompts]
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                idx = order[start:start + batch_size]
                outs = _generate_batch(model, [list(prompts[i]) for i in idx], eos, pad_token_id, max_new_tokens,
                                       use_cache, stop)
                for i, out in zip(idx, outs):
                    results[i] = out
    finally:
        model.train(was_training)
    return results


def decode_generations(tokenizer: Any, generated: Sequence[Sequence[int]]) -> list[str]:
    """Decode like OU (skip special tokens). OU also passes clean_up_tokenization_spaces=True, which
    transformers 5 ignores for BPE tokenizers (Llama, Qwen, ...); the tokenizer's own setting is used."""
    return tokenizer.batch_decode([list(g) for g in generated], skip_special_tokens=True)


def stopword_stop(tokenizer: Any, stopwords: Sequence[str]) -> StopFn | None:
    """A `stop` function that ends a sequence once its decoded text contains any stopword (None if none)."""
    words = [w for w in stopwords if w]
    if not words:
        return None

    def stop(ids: list[int]) -> bool:
        text = tokenizer.decode(ids, skip_special_tokens=True)
        return any(w in text for w in words)

    return stop


def qa_generation_item(tokenizer: Any, template: PromptTemplate, question: str, answer: str, max_length: int = 512,
                       few_shot: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
    """A QA generation item: prompt ids, the decoded prompt and the ground truth, as OU derives them.

    OU's ground truth is the decoded full conversation with the decoded prompt removed (`ground_truth_text`),
    which stays right when the prompt does not tokenise to a prefix of prompt + answer (e.g. a template
    ending in a space with a GPT-2 style BPE); slicing the answer ids off the full ids would not.
    """
    full, prompt = full_and_prompt_ids(tokenizer, template, question, answer, max_length, few_shot)
    prompt_text = tokenizer.decode(prompt, skip_special_tokens=True)
    full_text = tokenizer.decode(full, skip_special_tokens=True)
    return {"input_ids": prompt, "input_text": prompt_text, "ground_truth": ground_truth_text(full_text, prompt_text)}
