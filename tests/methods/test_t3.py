"""T3's decoding side: the guided logits equal the reference's formula for plain, packed and KV-cached forwards,
the head round-trips through save_pretrained / load_t3, and bad settings are refused in one line. (Its training
loss and head gradient are in the fidelity cases.)

Run: pytest tests/methods/test_t3.py -q
"""

from __future__ import annotations

import pytest
import torch

import reference_forms as R
from methods_oracle import make_batch, make_llama
from unlearning.errors import ConfigError
from unlearning.evaluation.generation import greedy_generate
from unlearning.methods import build_method
from unlearning.methods.t3 import T3Model, load_t3


def _t3(scale: float = 1.0, temp: float = 1.0) -> T3Model:
    model = build_method("T3", guidance_scale=scale, base_temp=temp, seed=3).prepare_model(make_llama(0))
    with torch.no_grad():  # a head that disagrees with the base model visibly
        model.head[-1].weight.mul_(40.0)
    return model.eval()


def test_guided_logits_equal_the_reference_formula_on_padded_rows() -> None:
    model, part = _t3(scale=1.5, temp=0.7), make_batch(seed=0)["forget"]
    with torch.no_grad():
        got = model(input_ids=part["input_ids"], attention_mask=part["attention_mask"]).logits
        want = R.t3_guided_logits(model.base, model.head, part["input_ids"], part["attention_mask"], 1.5, 0.7)
        base = model.base(input_ids=part["input_ids"], attention_mask=part["attention_mask"]).logits
    keep = part["attention_mask"].bool()
    assert torch.allclose(got[keep], want[keep], rtol=1e-6, atol=1e-6 * float(want.abs().max()))
    moved = (got.log_softmax(-1) - base.log_softmax(-1))[keep].abs().max()
    assert float(moved) > 0.1  # the head changes the distribution


def test_a_4d_mask_pools_over_the_attended_keys() -> None:
    """The packed-scoring path: a 4D additive mask equal to the causal padding mask gives the same logits."""
    model, part = _t3(), make_batch(seed=1)["retain"]
    ids, mask = part["input_ids"], part["attention_mask"]
    T = ids.shape[1]
    allowed = torch.tril(torch.ones(T, T, dtype=torch.bool))[None] & mask.bool()[:, None, :]
    additive = torch.zeros(allowed.shape).masked_fill(~allowed, torch.finfo(torch.float32).min)[:, None]
    with torch.no_grad():
        two_d = model(input_ids=ids, attention_mask=mask).logits
        four_d = model(input_ids=ids, attention_mask=additive).logits
    keep = mask.bool()
    assert torch.allclose(two_d[keep], four_d[keep], rtol=1e-5, atol=1e-5 * float(two_d.abs().max()))


def test_cached_greedy_decoding_equals_uncached_and_differs_from_the_base() -> None:
    model = _t3(scale=3.0)
    gen = torch.Generator().manual_seed(5)
    prompts = [torch.randint(2, 48, (n,), generator=gen).tolist() for n in (3, 6, 4, 7)]
    kw = dict(eos_token_ids=[0], pad_token_id=1, max_new_tokens=8)
    cached = greedy_generate(model, prompts, use_cache=True, **kw)
    plain = greedy_generate(model, prompts, use_cache=False, **kw)
    base = greedy_generate(model.base, prompts, use_cache=True, **kw)
    assert cached == plain
    assert cached != base


def test_save_and_load_round_trip(tmp_path) -> None:
    model, part = _t3(scale=2.0), make_batch(seed=0)["forget"]
    model.save_pretrained(tmp_path)
    again = load_t3(tmp_path, make_llama(0).eval())
    with torch.no_grad():
        a = model(input_ids=part["input_ids"], attention_mask=part["attention_mask"]).logits
        b = again(input_ids=part["input_ids"], attention_mask=part["attention_mask"]).logits
    assert torch.equal(a, b)


def test_a_saved_t3_folder_loads_as_the_guided_model(tmp_path) -> None:
    """What `unlearn-sweep eval` / `train`'s evaluation load: `load_model` on the folder T3 saved gives the guided
    model (not the bare base), with the same logits."""
    from unlearning.models.loading import load_model

    model, part = _t3(scale=2.0), make_batch(seed=0)["forget"]
    model.eval()
    model.save_pretrained(tmp_path)
    loaded = load_model(tmp_path)
    assert isinstance(loaded, T3Model)
    with torch.no_grad():
        a = model(input_ids=part["input_ids"], attention_mask=part["attention_mask"]).logits
        b = loaded(input_ids=part["input_ids"], attention_mask=part["attention_mask"]).logits
    assert torch.equal(a, b)


def test_only_the_head_trains_and_bad_settings_are_one_line_errors() -> None:
    model = _t3()
    assert all(not p.requires_grad for p in model.base.parameters())
    assert all(p.requires_grad for p in model.head.parameters())
    model.train()
    assert not model.base.training and model.head.training
    with pytest.raises(ConfigError, match="prepare_model"):
        build_method("T3").loss(make_llama(0), make_batch(seed=0))
    for bad in ({"base_temp": 0}, {"guidance_scale": -1.0}, {"head_layers": 2}, {"head_activation": "swish"},
                {"head_hidden_size": 0}, {"head_bias": "no"}):
        with pytest.raises(ConfigError) as err:
            build_method("T3", **bad)
        assert "\n" not in str(err.value) and next(iter(bad)) in str(err.value)
    with pytest.raises(ConfigError, match="cannot wrap"):
        build_method("T3", baldro="dv")
