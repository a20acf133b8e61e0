"""Greedy generation: KV cache == no cache == transformers' own greedy `generate`, per-sequence EOS stop.

Run: pytest tests/evaluation/test_eval_generation.py -q
"""

from __future__ import annotations

import pytest
import torch

from eval_fixtures import tiny_llama, tofu_tokenizer
from unlearning.evaluation.generation import decode_generations, eos_ids, greedy_generate, stopword_stop

torch.set_num_threads(1)
PAD, EOS = 0, 2


@pytest.fixture(scope="module")
def model():
    return tiny_llama(64, seed=5)


@pytest.fixture(scope="module")
def prompts():
    g = torch.Generator().manual_seed(1)
    return [torch.randint(3, 64, (n,), generator=g).tolist() for n in (5, 9, 3, 12, 7, 7, 1)]


def test_cache_equals_no_cache_and_single_items(model, prompts):
    cached = greedy_generate(model, prompts, eos_token_ids=[EOS], pad_token_id=PAD, max_new_tokens=12, batch_size=3)
    uncached = greedy_generate(model, prompts, eos_token_ids=[EOS], pad_token_id=PAD, max_new_tokens=12,
                               batch_size=3, use_cache=False)
    singles = [greedy_generate(model, [p], eos_token_ids=[EOS], pad_token_id=PAD, max_new_tokens=12)[0]
               for p in prompts]
    assert cached == uncached == singles


def test_matches_transformers_generate(model, prompts):
    ours = greedy_generate(model, prompts, eos_token_ids=[EOS], pad_token_id=PAD, max_new_tokens=10, batch_size=4)
    for p, got in zip(prompts, ours):
        out = model.generate(torch.tensor([p]), attention_mask=torch.ones(1, len(p), dtype=torch.long),
                             max_new_tokens=10, do_sample=False, eos_token_id=EOS, pad_token_id=PAD)
        ref = out[0, len(p):].tolist()
        assert got == (ref[: ref.index(EOS)] if EOS in ref else ref)


def test_each_sequence_stops_at_its_own_eos(model, prompts):
    free = greedy_generate(model, prompts, eos_token_ids=[], pad_token_id=PAD, max_new_tokens=12)  # no stop token
    assert all(len(f) == 12 for f in free)
    stop_token = free[1][4]  # a token that sequence 1 emits at step 5
    stopped = greedy_generate(model, prompts, eos_token_ids=[stop_token], pad_token_id=PAD, max_new_tokens=12,
                              batch_size=len(prompts))
    for before, after in zip(free, stopped):
        cut = before.index(stop_token) if stop_token in before else len(before)
        assert after == before[:cut]  # EOS excluded; sequences without it run to max_new_tokens
    assert len(stopped[1]) == free[1].index(stop_token) <= 4
    assert any(len(s) == 12 for s in stopped)


def test_stop_function_and_decoding():
    tok = tofu_tokenizer()
    model = tiny_llama(len(tok), seed=2)
    prompt = tok("Question: Where was Idris Dimitrov born?\nAnswer: ")["input_ids"]
    free = greedy_generate(model, [prompt], eos_token_ids=eos_ids(tok), pad_token_id=tok.pad_token_id,
                           max_new_tokens=8)[0]
    text_prefix = tok.decode(free[:3], skip_special_tokens=True)
    word = text_prefix[-2:] if len(text_prefix) >= 2 else text_prefix
    stop = stopword_stop(tok, [word])
    stopped = greedy_generate(model, [prompt], eos_token_ids=eos_ids(tok), pad_token_id=tok.pad_token_id,
                              max_new_tokens=8, stop=stop)[0]
    first = next(n for n in range(1, len(free) + 1) if word in tok.decode(free[:n], skip_special_tokens=True))
    assert stopped == free[:first]
    assert decode_generations(tok, [stopped]) == [tok.decode(stopped, skip_special_tokens=True)]
    assert stopword_stop(tok, []) is None and stopword_stop(tok, [""]) is None


def test_eos_ids_include_generation_config(model):
    tok = tofu_tokenizer()
    model.generation_config.eos_token_id = [7, 9]
    try:
        assert eos_ids(tok, model) == {tok.eos_token_id, 7, 9}
    finally:
        model.generation_config.eos_token_id = None
