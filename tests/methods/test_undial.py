"""UNDIAL (open-unlearning `src/trainer/unlearn/undial.py` @ d3d7cf9e): mask-correct default and the faithful -100
indexing option."""

from __future__ import annotations

import math

import pytest
import torch

from methods_oracle import close, logits, make_batch, make_llama, softmax64
from unlearning.errors import ConfigError
from unlearning.methods import build_method


def _soft_ce(student, teacher, target, beta):
    z = teacher.double().clone()
    if target is not None:
        z[target] -= beta
    q = softmax64(z)
    return -float((q * torch.log(softmax64(student))).sum())


def test_undial_mask_correct(model, ref_model, batch):
    beta = 3.0
    out = build_method("UNDIAL", beta=beta).loss(model, batch, ref_model=ref_model)
    part = batch["forget"]
    with torch.no_grad():
        s, t = logits(model, part), logits(ref_model, part)
    vals = [_soft_ce(s[b, i], t[b, i], int(part["labels"][b, i + 1]), beta)
            for b in range(4) for i in range(s.shape[1] - 1) if int(part["labels"][b, i + 1]) != -100]
    assert close(out.forget_loss, sum(vals) / len(vals)) and close(out.loss, sum(vals) / len(vals))
    assert float(out.retain_loss) == 0.0  # alpha defaults to 0
    with_retain = build_method("UNDIAL", beta=beta, alpha=1.0).loss(model, batch, ref_model=ref_model)
    assert float(with_retain.retain_loss.detach()) > 0


@pytest.mark.parametrize("beta", [2.0, -8.0])  # a negative beta raises the token: makes id V-100 visible
def test_undial_faithful_ignore_index_artefact(beta):
    vocab = 128
    model, ref = make_llama(0, vocab), make_llama(1, vocab)
    batch = make_batch(3, vocab)
    out = build_method("UNDIAL", beta=beta, faithful_ignore_index=True).loss(model, batch, ref_model=ref)
    part = batch["forget"]
    with torch.no_grad():
        s, t = logits(model, part), logits(ref, part)
    vals, no_artefact = [], []
    for b in range(4):
        for i in range(s.shape[1] - 1):  # every position; label -100 hits vocabulary id V-100
            y = int(part["labels"][b, i + 1])
            vals.append(_soft_ce(s[b, i], t[b, i], y if y != -100 else vocab - 100, beta))
            no_artefact.append(_soft_ce(s[b, i], t[b, i], y if y != -100 else None, beta))
    assert close(out.forget_loss, sum(vals) / len(vals))
    if beta < 0:
        assert not close(out.forget_loss, sum(no_artefact) / len(no_artefact), tol=1e-3)
    masked = build_method("UNDIAL", beta=beta).loss(model, batch, ref_model=ref)
    assert not math.isclose(float(masked.forget_loss.detach()), float(out.forget_loss.detach()), rel_tol=1e-4)


def test_undial_faithful_needs_100_ids_and_ref(model, ref_model, batch):
    with pytest.raises(ConfigError, match="faithful_ignore_index"):
        build_method("UNDIAL", faithful_ignore_index=True).loss(model, batch, ref_model=ref_model)
    with pytest.raises(ConfigError, match="ref_model"):
        build_method("UNDIAL").loss(model, batch)
