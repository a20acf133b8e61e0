"""Every method and every reference alias: loss + backward on the tiny Llama give finite gradients."""

from __future__ import annotations

import copy
import math
from types import SimpleNamespace

import pytest
import torch

from fidelity_cases import _IdsTokenizer
from unlearning.errors import ConfigError
from unlearning.methods import METHOD_ALIASES, METHODS, build_method

EXTRA = {"JensUn": {"target_token_ids": [3, 4]}, "RMU": {"layer": 1}, "LUNAR": {"layers": [0], "fit": "loop"},
         "SIBL": {"inner_steps": 0, "cg_iters": 2, "outer_update": "optimizer"}}  # no in-place step, a gradient
# rewrite the gradient / update the weights / train a head / refit down_proj: BalDRO wrappers reweight a forget loss
NOT_WRAPPABLE = {"GRU", "SIBL", "T3", "LUNAR"}


def _rows(part):
    return [{"input_ids": i[m.bool()].tolist(), "labels": lab[m.bool()].tolist()}
            for i, m, lab in zip(part["input_ids"], part["attention_mask"], part["labels"])]


CASES = [(n, None) for n in METHOD_ALIASES] + [(n, w) for n in METHODS for w in (None, "g", "dv")]


@pytest.mark.parametrize("name,baldro", CASES)
def test_loss_backward_finite(model, ref_model, batch, name, baldro):
    base = METHOD_ALIASES[name].method if name in METHOD_ALIASES else name
    kw = dict(EXTRA.get(base, {}))
    if baldro:
        kw["baldro"] = baldro
        if base == "PDU":  # only its fixed-alpha form is wrappable (primal_dual is true by default)
            kw["primal_dual"] = False
    if base == "LMCleaner":   # a procedure on a training log: tests/methods/test_procedures.py, fidelity_procedures.py
        if baldro:
            with pytest.raises(ConfigError, match="cannot wrap"):
                build_method(name, **kw)
        else:
            with pytest.raises(ConfigError, match="training_log"):
                build_method(name, **kw).prepare_model(model, SimpleNamespace(forget=[]), None)
        return
    if baldro and base in NOT_WRAPPABLE:
        with pytest.raises(ConfigError, match="cannot wrap"):
            build_method(name, **kw)
        return
    method = build_method(name, generator=torch.Generator().manual_seed(0), **kw)
    if hasattr(method, "prepare_model"):  # T3 wraps (and freezes) the model, LUNAR reads the forget prompts
        model = method.prepare_model(copy.deepcopy(model), SimpleNamespace(forget=_rows(batch["forget"])),
                                     _IdsTokenizer())
    out = method.loss(model, batch, ref_model=ref_model)
    assert out.loss.dim() == 0 and math.isfinite(float(out.loss.detach()))
    out.loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert any(float(g.abs().sum()) > 0 for g in grads)
