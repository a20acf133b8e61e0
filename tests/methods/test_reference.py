"""Cached reference log-probs (reference.py) and their equivalence with a live reference forward."""

from __future__ import annotations

import copy

import pytest
import torch

from methods_oracle import label_logps, logits, make_batch
from unlearning.errors import ConfigError, DataError
from unlearning.methods import attach_for_method, build_method, compute_ref_logps, frozen_copy
from unlearning.methods.reference import pad_ref_logps, split_ref_logps


def test_compute_ref_logps_layout(ref_model, batch):
    (lp,) = compute_ref_logps(ref_model, [batch["forget"]])
    labels = batch["forget"]["labels"]
    assert lp.shape == (4, labels.shape[1] - 1) and not lp.requires_grad
    with torch.no_grad():
        rows = label_logps(logits(ref_model, batch["forget"]), labels)
    for b, row in enumerate(rows):
        pos = [t for t in range(labels.shape[1] - 1) if int(labels[b, t + 1]) != -100]
        assert torch.allclose(lp[b, pos].double(), torch.stack(row), atol=1e-5)
        others = [t for t in range(labels.shape[1] - 1) if t not in pos]
        assert float(lp[b, others].abs().sum()) == 0.0


@pytest.mark.parametrize("name,kw", [("NPO", {"beta": 0.1}), ("TNPO", {"beta": 0.5}),
                                     ("TNPO", {"detach_weights": False}), ("IdkDPO", {}),
                                     ("NPO", {"baldro": "dv", "beta_dv": 2.0}),
                                     ("NPO", {"baldro": "g"})])
def test_cached_equals_live_deep_copy(model, name, kw):
    # the realistic setting: ref = deep copy at the start, then the model moves away from it
    live_ref = frozen_copy(model)
    trained = copy.deepcopy(model)
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    batch = make_batch(seed=2)
    method = build_method(name, generator=torch.Generator().manual_seed(0), **kw)
    cached = attach_for_method(method, [batch], live_ref)[0]
    assert set(k for k in cached if k.endswith("_ref_logps")) == {f"{k}_ref_logps" for k in method.needs_ref_logps}
    live_out = method.loss(trained, batch, ref_model=live_ref)
    if kw.get("baldro") == "g":
        method.generator = torch.Generator().manual_seed(0)  # same retain rows as the live run
    cached_out = method.loss(trained, cached)
    assert abs(float(live_out.loss.detach()) - float(cached_out.loss.detach())) < 1e-5
    assert abs(float(live_out.forget_loss.detach())) > 1e-3


def test_missing_reference_and_bad_shape(model, batch):
    with pytest.raises(ConfigError, match="ref_model"):
        build_method("NPO").loss(model, batch)
    bad = dict(batch, forget_ref_logps=torch.zeros(4, 3))
    with pytest.raises(DataError, match="forget_ref_logps"):
        build_method("NPO").loss(model, bad)


def test_split_and_pad_roundtrip(ref_model, batch):
    (lp,) = compute_ref_logps(ref_model, [batch["forget"]])
    lengths = batch["forget"]["attention_mask"].sum(-1).tolist()
    rows = split_ref_logps(lp, lengths)
    assert [r.numel() for r in rows] == [n - 1 for n in lengths]
    assert torch.equal(pad_ref_logps(rows, lp.shape[1] + 1), lp)
    wider = pad_ref_logps(rows, lp.shape[1] + 3)
    assert wider.shape == (4, lp.shape[1] + 2) and torch.equal(wider[:, : lp.shape[1]], lp)
    with pytest.raises(DataError, match="lengths"):
        split_ref_logps(lp, lengths[:2])
    with pytest.raises(DataError, match="seq_len"):
        pad_ref_logps(rows, 3)


def test_frozen_copy_is_frozen_and_eval(model):
    ref = frozen_copy(model)
    assert not ref.training and all(not p.requires_grad for p in ref.parameters())
    assert all(p.requires_grad for p in model.parameters())
