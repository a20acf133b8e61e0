"""GradAscent, GradDiff, NPO, SimNPO, IdkDPO, SatImp, WGA, TNPO against loop oracles (open-unlearning
`src/trainer/unlearn/*.py` @ d3d7cf9e, the BalDRO fork's tnpo.py)."""

from __future__ import annotations

import math

import pytest
import torch

from methods_oracle import close, hf_mean, label_logps, log_sigmoid, logits, seq_logp, softmax64
from unlearning.methods import build_method
from unlearning.methods.satimp import satimp_token_losses
from unlearning.methods.tnpo import tnpo_sample_losses
from unlearning.methods.wga import wga_token_losses


def _oracles(model, ref_model, batch):
    with torch.no_grad():
        return {k: (logits(model, batch[k]), logits(ref_model, batch[k])) for k in ("forget", "retain", "idk")}


def test_grad_ascent_is_minus_hf_mean(model, batch):
    out = build_method("GradAscent").loss(model, batch)
    with torch.no_grad():
        expect = -hf_mean(logits(model, batch["forget"]), batch["forget"]["labels"])
    assert close(out.loss, expect) and close(out.forget_loss, expect) and float(out.retain_loss) == 0.0
    assert out.unit == "token" and out.per_element.numel() == 18


@pytest.mark.parametrize("retain_type", ["NLL", "KL"])
def test_grad_diff(model, ref_model, batch, retain_type):
    lg = _oracles(model, ref_model, batch)
    out = build_method("GradDiff", gamma=0.5, alpha=2.0, retain_loss_type=retain_type).loss(
        model, batch, ref_model=ref_model)
    forget = -hf_mean(lg["forget"][0], batch["forget"]["labels"])
    if retain_type == "NLL":
        retain = hf_mean(lg["retain"][0], batch["retain"]["labels"])
    else:
        p_all, q_all = lg["retain"]
        B, T, _ = p_all.shape
        retain = 0.0
        for b in range(B):
            for t in range(T):
                q, p = softmax64(q_all[b, t]), softmax64(p_all[b, t])
                retain += float((q * (q.log() - p.log())).sum()) / (B * T)
    assert close(out.loss, 0.5 * forget + 2.0 * retain)


def test_npo_matches_formula(model, ref_model, batch):
    lg = _oracles(model, ref_model, batch)
    beta = 0.1
    out = build_method("NPO", beta=beta).loss(model, batch, ref_model=ref_model)
    theta = seq_logp(lg["forget"][0], batch["forget"]["labels"])
    ref = seq_logp(lg["forget"][1], batch["forget"]["labels"])
    # (2/beta) log(1 + (pi_theta/pi_ref)^beta), the spec's second form
    per = [(2 / beta) * math.log1p(math.exp(beta * float(t - r))) for t, r in zip(theta, ref)]
    assert torch.allclose(out.per_element.double(), torch.tensor(per, dtype=torch.float64), rtol=1e-5)
    assert close(out.loss, sum(per) / 4 + hf_mean(lg["retain"][0], batch["retain"]["labels"]))


@pytest.mark.parametrize("delta", [0.0, 1.0])
def test_simnpo_matches_formula(model, batch, delta):
    beta, gamma = 4.5, 0.125
    with torch.no_grad():
        lf, lr = logits(model, batch["forget"]), logits(model, batch["retain"])
    out = build_method("SimNPO", beta=beta, delta=delta).loss(model, batch)
    per = []
    for row in label_logps(lf, batch["forget"]["labels"]):
        m = -sum(row) / len(row) - delta
        per.append(float(-(2 / beta) * log_sigmoid(beta * m)))
    assert close(out.forget_loss, sum(per) / 4)
    assert close(out.loss, gamma * sum(per) / 4 + hf_mean(lr, batch["retain"]["labels"]))


def test_idk_dpo_matches_formula(model, ref_model, batch):
    lg = _oracles(model, ref_model, batch)
    beta = 0.1
    out = build_method("IdkDPO", beta=beta, alpha=0.3).loss(model, batch, ref_model=ref_model)
    w = [a - b for a, b in zip(seq_logp(lg["idk"][0], batch["idk"]["labels"]),
                               seq_logp(lg["idk"][1], batch["idk"]["labels"]))]
    lo = [a - b for a, b in zip(seq_logp(lg["forget"][0], batch["forget"]["labels"]),
                                seq_logp(lg["forget"][1], batch["forget"]["labels"]))]
    per = [float(-(2 / beta) * log_sigmoid(beta * (a - b))) for a, b in zip(w, lo)]
    assert close(out.loss, sum(per) / 4 + 0.3 * hf_mean(lg["retain"][0], batch["retain"]["labels"]))


def test_satimp_and_wga_token_means(model, batch):
    with torch.no_grad():
        lf, lr = logits(model, batch["forget"]), logits(model, batch["retain"])
    rows = label_logps(lf, batch["forget"]["labels"])
    flat = [x for r in rows for x in r]
    sat = [-(math.exp(float(x)) ** 5) * (1 - math.exp(float(x))) * float(-x) for x in flat]
    out = build_method("SatImp").loss(model, batch)  # defaults beta1=5, beta2=1, gamma=0.1, alpha=1
    assert close(out.loss, 0.1 * sum(sat) / len(sat) + hf_mean(lr, batch["retain"]["labels"]))
    wga = [-(math.exp(float(x)) ** 2.0) * float(-x) for x in flat]
    out = build_method("WGA", beta=2.0, alpha=0.0).loss(model, batch)
    assert close(out.loss, sum(wga) / len(wga)) and out.per_element.numel() == len(flat)
    seq = [sum(-(math.exp(float(x)) ** 2.0) * float(-x) for x in r) / len(r) for r in rows]
    out = build_method("WGA", beta=2.0, alpha=0.0, form="sequence").loss(model, batch)
    assert close(out.loss, sum(seq) / len(seq)) and out.unit == "sample"
    assert abs(sum(seq) / 4 - sum(wga) / len(wga)) > 1e-6  # the two reductions really differ


def test_tnpo_matches_formula(model, ref_model, batch):
    lg = _oracles(model, ref_model, batch)
    beta = 0.5
    theta = label_logps(lg["forget"][0], batch["forget"]["labels"])
    ref = label_logps(lg["forget"][1], batch["forget"]["labels"])
    per = []
    for tr, rr in zip(theta, ref):
        s = 0.0
        for lt, lrf in zip(tr, rr):
            pt, pr = math.exp(float(lt)) ** beta, math.exp(float(lrf)) ** beta
            s += -(2 * pt / (pt + pr)) * float(-lt)
        per.append(s / len(tr))
    for detach in (True, False):
        out = build_method("TNPO", beta=beta, detach_weights=detach, alpha=0.0).loss(model, batch, ref_model)
        assert close(out.loss, sum(per) / 4)


# ---------------------------------------------------------------- gradients through (un)detached weights

def _leaf_logits(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    lg = (3 * torch.randn(2, 5, 7, generator=gen, dtype=torch.float64)).requires_grad_(True)
    labels = torch.tensor([[-100, -100, 3, 1, 6], [-100, 2, 0, -100, -100]])
    return lg, labels


def _hand_ce(lg, labels):
    """[(b, t, CE)] for labelled shifted positions, by hand."""
    out = []
    for b in range(lg.shape[0]):
        for t in range(lg.shape[1] - 1):
            y = int(labels[b, t + 1])
            if y != -100:
                out.append((b, t, -(lg[b, t, y] - torch.logsumexp(lg[b, t], 0))))
    return out


@pytest.mark.parametrize("which", ["satimp", "wga"])
def test_weight_is_detached(which):
    lg, labels = _leaf_logits()
    if which == "satimp":
        got = satimp_token_losses(lg, labels, 2.0, 1.5).mean()

        def weight(p):
            return p ** 2.0 * (1 - p) ** 1.5
    else:
        got = wga_token_losses(lg, labels, 1.5).mean()

        def weight(p):
            return p ** 1.5
    (g_got,) = torch.autograd.grad(got, lg)
    ces = _hand_ce(lg, labels)
    detached = -sum(weight(torch.exp(-ce).detach()) * ce for _, _, ce in ces) / len(ces)
    attached = -sum(weight(torch.exp(-ce)) * ce for _, _, ce in ces) / len(ces)
    assert close(got, detached)
    (g_det,) = torch.autograd.grad(detached, lg, retain_graph=True)
    (g_att,) = torch.autograd.grad(attached, lg)
    assert torch.allclose(g_got.double(), g_det, atol=1e-6)
    assert not torch.allclose(g_det, g_att, atol=1e-4)


def test_tnpo_gradient_detached_and_fork_forms():
    lg, labels = _leaf_logits(1)
    ref = torch.zeros(2, 4, dtype=torch.float64)
    gen = torch.Generator().manual_seed(2)
    ref_vals = -torch.rand(2, 4, generator=gen, dtype=torch.float64) * 3
    mask = labels[:, 1:] != -100
    ref[mask] = ref_vals[mask]
    beta = 0.7
    grads = {}
    for detach in (True, False):
        got = tnpo_sample_losses(lg, labels, ref, beta, detach).mean()
        per = {0: [], 1: []}
        for b, t, ce in _hand_ce(lg, labels):
            pt = torch.exp(-ce) ** beta
            pr = torch.exp(ref[b, t]) ** beta
            w = 2 * pt / (pt + pr)
            per[b].append((w.detach() if detach else w) * ce)
        expect = sum(-sum(v) / len(v) for v in per.values()) / 2
        assert close(got, expect)
        (g_got,) = torch.autograd.grad(got, lg)
        (g_exp,) = torch.autograd.grad(expect, lg)
        assert torch.allclose(g_got.double(), g_exp, atol=1e-6)
        grads[detach] = g_got
    assert not torch.allclose(grads[True], grads[False], atol=1e-4)
