"""Token primitives of unlearning/methods/base.py against explicit loops (docs/methods.md, "Notation and the
reference training recipe")."""

from __future__ import annotations

import math

import torch

from methods_oracle import close, hf_mean, label_logps, logits, softmax64
from unlearning.methods.base import (ForgetTerms, hf_mean_nll, jsd, jsd_retain, kl_retain, sequence_nll,
                                     token_ce)


def test_token_ce_and_sequence_nll_match_loops(model, batch):
    part = batch["forget"]
    with torch.no_grad():
        lg = logits(model, part)
    ce, mask = token_ce(lg, part["labels"])
    rows = label_logps(lg, part["labels"])
    assert ce.shape == (4, part["labels"].shape[1] - 1)
    for b, row in enumerate(rows):
        assert int(mask[b].sum()) == len(row)
        assert torch.allclose(ce[b][mask[b]].double(), -torch.stack(row), atol=1e-5)
        assert float(ce[b][~mask[b]].abs().sum()) == 0.0
    nll, n = sequence_nll(lg, part["labels"])
    assert n.tolist() == [5, 7, 2, 4]
    for b, row in enumerate(rows):
        assert close(nll[b], -sum(row))


def test_hf_mean_is_token_weighted_not_sequence_weighted(model, batch):
    part = batch["forget"]
    with torch.no_grad():
        lg = logits(model, part)
    got = hf_mean_nll(lg, part["labels"])
    assert close(got, hf_mean(lg, part["labels"]))
    rows = label_logps(lg, part["labels"])
    per_seq_mean = sum(-sum(r) / len(r) for r in rows) / len(rows)
    assert abs(float(got) - float(per_seq_mean)) > 1e-3  # unequal answer lengths make them differ


def test_kl_retain_averages_over_all_positions(model, ref_model, batch):
    part = batch["retain"]
    with torch.no_grad():
        lg, rl = logits(model, part), logits(ref_model, part)
    B, T, _ = lg.shape
    total = 0.0
    for b in range(B):
        for t in range(T):  # every position, prompt and padding included
            p, q = softmax64(lg[b, t]), softmax64(rl[b, t])
            total += float((q * (q.log() - p.log())).sum())
    assert close(kl_retain(lg, rl), total / (B * T))


def test_jsd_formula_and_bounds():
    p = torch.tensor([[0.7, 0.2, 0.1], [1.0, 0.0, 0.0]], dtype=torch.float64)
    q = torch.tensor([[0.1, 0.1, 0.8], [0.0, 1.0, 0.0]], dtype=torch.float64)
    got = jsd(p, q, eps=1e-12)
    m = (p[0] + q[0]) / 2
    expect0 = 0.5 * sum(p[0, i] * math.log(p[0, i] / m[i]) for i in range(3)) + \
        0.5 * sum(q[0, i] * math.log(q[0, i] / m[i]) for i in range(3))
    assert close(got[0], expect0)
    assert abs(float(got[1]) - math.log(2)) < 1e-9  # disjoint supports: the ln 2 bound


def test_jsd_retain_masks_to_answer_tokens(model, ref_model, batch):
    part = batch["retain"]
    with torch.no_grad():
        lg, rl = logits(model, part), logits(ref_model, part)
    vals = []
    for b in range(lg.shape[0]):
        for t in range(lg.shape[1] - 1):
            if int(part["labels"][b, t + 1]) == -100:
                continue
            p, q = softmax64(rl[b, t]), softmax64(lg[b, t])
            m = (p + q) / 2
            vals.append(0.5 * float((p * (p / m).log()).sum()) + 0.5 * float((q * (q / m).log()).sum()))
    assert close(jsd_retain(lg, rl, part["labels"]), sum(vals) / len(vals), tol=1e-4)


def test_forget_terms_reductions():
    values = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    mask = torch.tensor([[True, True, False], [False, False, True]])
    t = ForgetTerms(values, "token", mask)
    assert t.elements().tolist() == [1.0, 2.0, 6.0]
    assert close(t.mean(), 3.0)
    assert t.per_sample().tolist() == [1.5, 6.0]
    s = ForgetTerms(torch.tensor([1.0, 3.0]), "sample")
    assert close(s.mean(), 2.0) and s.elements().tolist() == [1.0, 3.0]
