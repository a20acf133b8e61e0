"""BalDRO-DV (nxZhai/BalDRO @ 12a0b0cc35de): DV aggregate, implied weights, limits, stability, and the Dr*
reproductions."""

from __future__ import annotations

import math

import pytest
import torch

from methods_oracle import close, hf_mean, label_logps, log_sigmoid, logits, seq_logp
from unlearning.errors import ConfigError
from unlearning.methods import build_method, dv_reduce, dv_weights
from unlearning.methods.baldro import BalDRODV
from unlearning.methods.npo import NPO

LOSSES = [0.3, -1.2, 2.5, 0.9, 0.0]


def _softmin_literal(vals, beta):
    """-beta * log(mean(exp(-ell/beta))), written as in the BalDRO code."""
    return -beta * math.log(sum(math.exp(-v / beta) for v in vals) / len(vals))


@pytest.mark.parametrize("beta", [0.5, 1.0, 7.0])
def test_dv_values_match_literal_formula(beta):
    ell = torch.tensor(LOSSES, dtype=torch.float64)
    assert close(dv_reduce(ell, beta, "softmin"), _softmin_literal(LOSSES, beta), tol=1e-10)
    softmax = beta * math.log(sum(math.exp(v / beta) for v in LOSSES) / len(LOSSES))
    assert close(dv_reduce(ell, beta, "softmax"), softmax, tol=1e-10)


@pytest.mark.parametrize("mode,sign", [("softmin", -1.0), ("softmax", 1.0)])
def test_dv_gradient_weights_are_softmax(mode, sign):
    beta = 0.8
    ell = torch.tensor(LOSSES, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(dv_reduce(ell, beta, mode), ell)
    e = [math.exp(sign * v / beta) for v in LOSSES]
    expect = torch.tensor([x / sum(e) for x in e], dtype=torch.float64)
    assert torch.allclose(grad, expect, atol=1e-12)
    assert torch.allclose(dv_weights(ell, beta, mode), expect, atol=1e-12)
    assert close(grad.sum(), 1.0)


def test_dv_limits():
    ell = torch.tensor(LOSSES, dtype=torch.float64)
    mean = sum(LOSSES) / len(LOSSES)
    gaps = [abs(float(dv_reduce(ell, b, "softmin")) - mean) for b in (1.0, 10.0, 100.0, 1e4)]
    assert gaps == sorted(gaps, reverse=True) and gaps[-1] < 1e-3
    assert abs(float(dv_reduce(ell, 1e4, "softmax")) - mean) < 1e-3
    assert close(dv_reduce(ell, 1e-3, "softmin"), min(LOSSES), tol=1e-2)
    assert close(dv_reduce(ell, 1e-3, "softmax"), max(LOSSES), tol=1e-2)


def test_dv_is_stable_for_large_ratios():
    beta = 1.0
    ell = torch.tensor([1e4, 1e4 + 1.0, 2e4], dtype=torch.float64, requires_grad=True)
    got = dv_reduce(ell, beta, "softmin")
    # shift by the minimum by hand: min - beta*log(mean(exp(-(ell-min)/beta)))
    expect = 1e4 - beta * math.log((1 + math.exp(-1.0) + 0.0) / 3)
    assert math.isfinite(float(got.detach())) and close(got, expect, tol=1e-9)
    (grad,) = torch.autograd.grad(got, ell)
    assert torch.isfinite(grad).all() and close(grad[0], 1 / (1 + math.exp(-1.0)), tol=1e-9)
    big = dv_reduce(torch.tensor([-3e4, 0.0], dtype=torch.float32), 2.0, "softmax")
    assert math.isfinite(float(big)) and close(big, 2.0 * math.log(0.5) + 0.0, tol=1e-5)
    assert float(dv_reduce(torch.tensor([], dtype=torch.float32), 1.0)) == 0.0


def _npo_per_sample(model, ref_model, batch, beta):
    with torch.no_grad():
        th = seq_logp(logits(model, batch["forget"]), batch["forget"]["labels"])
        rf = seq_logp(logits(ref_model, batch["forget"]), batch["forget"]["labels"])
    return [float(-(2 / beta) * log_sigmoid(-beta * (a - b))) for a, b in zip(th, rf)]


def _retain_seq_sums(model, batch):
    with torch.no_grad():
        return [float(-s) for s in seq_logp(logits(model, batch["retain"]), batch["retain"]["labels"])]


def test_drnpo_reproduces_reference_class(model, ref_model, batch):
    # move the model away from the reference first is unnecessary: ref_model has different weights
    per = _npo_per_sample(model, ref_model, batch, 0.1)
    assert max(per) - min(per) > 0.1
    out = build_method("DrNPO", beta=0.1, beta_dv_forget=2.0).loss(model, batch, ref_model=ref_model)
    retain = _retain_seq_sums(model, batch)
    assert close(out.forget_loss, _softmin_literal(per, 2.0))
    assert close(out.retain_loss, sum(retain) / len(retain))  # sequence-summed NLL, mean over samples
    assert close(out.loss, out.forget_loss + out.retain_loss)
    w = [math.exp(-v / 2.0) for v in per]
    assert torch.allclose(out.extras["dv_weights"].double(), torch.tensor([x / sum(w) for x in w],
                                                                          dtype=torch.float64), atol=1e-5)
    same = build_method("NPO", beta=0.1, baldro="dv", beta_dv=2.0).loss(model, batch, ref_model=ref_model)
    assert close(same.loss, out.loss)


def test_dv_retain_dro_and_softmax(model, ref_model, batch):
    per = _npo_per_sample(model, ref_model, batch, 0.1)
    retain = _retain_seq_sums(model, batch)
    out = build_method("DrNPO", beta_dv=1.5, dv_mode="softmax", retain_dro=True, sigma_retain=3.0).loss(
        model, batch, ref_model=ref_model)
    assert close(out.forget_loss, 1.5 * math.log(sum(math.exp(v / 1.5) for v in per) / 4))
    assert close(out.retain_loss, 3.0 * math.log(sum(math.exp(v / 3.0) for v in retain) / 4))


def test_drsimnpo_uses_hf_mean_retain(model, batch):
    out = build_method("DrSimNPO", sigma_forget=1.0).loss(model, batch)
    with torch.no_grad():
        lr = logits(model, batch["retain"])
    assert close(out.retain_loss, hf_mean(lr, batch["retain"]["labels"]))
    forced = build_method("DrSimNPO", retain_reduction="sequence_sum").loss(model, batch)
    retain = _retain_seq_sums(model, batch)
    assert close(forced.retain_loss, sum(retain) / 4)


def test_drsatimp_is_per_token_and_unit_sample_option(model, batch):
    with torch.no_grad():
        lf = logits(model, batch["forget"])
    rows = label_logps(lf, batch["forget"]["labels"])
    tok = [[-(math.exp(float(x)) ** 5) * (1 - math.exp(float(x))) * float(-x) for x in r] for r in rows]
    flat = [v for r in tok for v in r]
    out = build_method("DrSatImp", sigma_forget=0.01).loss(model, batch)
    assert out.unit == "token" and out.per_element.numel() == len(flat)
    assert close(out.forget_loss, _softmin_literal(flat, 0.01), tol=1e-4)
    retain = _retain_seq_sums(model, batch)
    assert close(out.retain_loss, sum(retain) / 4)
    per_sample = build_method("DrSatImp", sigma_forget=0.01, unit="sample").loss(model, batch)
    assert close(per_sample.forget_loss, _softmin_literal([sum(r) / len(r) for r in tok], 0.01), tol=1e-4)


def test_dv_config_errors():
    with pytest.raises(ConfigError, match="per-sample"):
        build_method("NPO", baldro="dv", unit="token")
    with pytest.raises(ConfigError, match="dv_mode"):
        build_method("NPO", baldro="dv", dv_mode="max")
    with pytest.raises(ConfigError, match="beta_dv"):
        BalDRODV(NPO(), beta_dv=0.0)
    with pytest.raises(ConfigError, match="retain_reduction"):
        build_method("GradDiff", retain_loss_type="KL", baldro="dv", retain_reduction="sequence_sum")
    with pytest.raises(ConfigError, match="retain_dro"):
        build_method("NPO", baldro="dv", retain_dro=True, retain_reduction="hf_mean")
    with pytest.raises(ConfigError, match="stacked"):
        BalDRODV(BalDRODV(NPO()))


@pytest.mark.parametrize("name,reduction", [("DrTNPO", "sum"), ("DrWGA", "hf"), ("DrNPO", "sum"),
                                            ("DrSatImp", "sum"), ("DrSimNPO", "hf")])
def test_reference_retain_reductions(model, ref_model, batch, name, reduction):
    out = build_method(name).loss(model, batch, ref_model=ref_model)
    if reduction == "sum":
        retain = _retain_seq_sums(model, batch)
        assert close(out.retain_loss, sum(retain) / len(retain))
    else:
        with torch.no_grad():
            assert close(out.retain_loss, hf_mean(logits(model, batch["retain"]), batch["retain"]["labels"]))


def test_drwga_is_per_sequence_with_beta_dv_2(model, batch):
    with torch.no_grad():
        rows = label_logps(logits(model, batch["forget"]), batch["forget"]["labels"])
    seq = [sum(-math.exp(float(x)) * float(-x) for x in r) / len(r) for r in rows]  # WGA beta=1
    out = build_method("DrWGA").loss(model, batch)
    assert out.unit == "sample" and close(out.forget_loss, _softmin_literal(seq, 2.0))
