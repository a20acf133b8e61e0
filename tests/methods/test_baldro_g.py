"""BalDRO-G (nxZhai/BalDRO @ 12a0b0cc35de): exact group selection, seeded retain subset, base loss on the sub-batch."""

from __future__ import annotations

import math

import pytest
import torch

from methods_oracle import close, hf_mean, label_logps, log_sigmoid, logits, make_batch, seq_logp
from unlearning.errors import ConfigError
from unlearning.methods import attach_ref_logps, build_method
from unlearning.methods.baldro import group_size, select_group


def test_group_size_and_selection_on_hand_built_scores():
    assert [group_size(b, 0.5) for b in (1, 2, 3, 4, 8)] == [1, 1, 1, 2, 4]
    assert group_size(10, 0.3) == 3 and group_size(4, 1.0) == 4 and group_size(5, 0.01) == 1
    scores = torch.tensor([2.0, 0.5, 3.0, 0.5, 1.0, 4.0, 0.1, 9.0])
    assert select_group(scores, 0.5).tolist() == [1, 3, 4, 6]  # the 4 lowest mean NLLs, row order
    tied = torch.tensor([1.0, 1.0, 1.0, 0.0])
    assert select_group(tied, 0.5).tolist() == [0, 3]  # ties go to the lower row index


def _mean_nll(model, part):
    with torch.no_grad():
        rows = label_logps(logits(model, part), part["labels"])
    return [float(-sum(r) / len(r)) for r in rows]


def _rows(part, idx):
    return {k: v[idx] for k, v in part.items()}


def test_group_npo_selects_documented_rows(model, ref_model):
    batch = make_batch(seed=4)
    nll = _mean_nll(model, batch["forget"])
    keep = sorted(sorted(range(4), key=lambda i: nll[i])[:2])
    seed = 123
    r_idx = torch.randperm(4, generator=torch.Generator().manual_seed(seed))[:2]
    method = build_method("GroupNPO", sampling_ratio=0.5, generator=torch.Generator().manual_seed(seed))
    out = method.loss(model, batch, ref_model=ref_model)
    assert out.extras["group_forget_idx"].tolist() == keep
    assert out.extras["group_retain_idx"].tolist() == r_idx.tolist()
    sub_f, sub_r = _rows(batch["forget"], keep), _rows(batch["retain"], r_idx)
    with torch.no_grad():
        th = seq_logp(logits(model, sub_f), sub_f["labels"])
        rf = seq_logp(logits(ref_model, sub_f), sub_f["labels"])
        lr = logits(model, sub_r)
    per = [float(-(2 / 0.1) * log_sigmoid(-0.1 * (a - b))) for a, b in zip(th, rf)]
    assert close(out.forget_loss, sum(per) / 2)
    assert close(out.retain_loss, hf_mean(lr, sub_r["labels"]))
    out.loss.backward()


def test_group_idk_dpo_keeps_pairs_and_cached_logps_aligned(model, ref_model):
    batch = attach_ref_logps([make_batch(seed=5)], ref_model, keys=("forget", "idk"))[0]
    method = build_method("IdkDPO", baldro="g", group_ratio=0.5, alpha=0.0)
    out = method.loss(model, batch)  # cached reference log-probs only
    keep = out.extras["group_forget_idx"].tolist()
    assert keep == sorted(sorted(range(4), key=lambda i: _mean_nll(model, batch["forget"])[i])[:2])
    sub_f, sub_i = _rows(batch["forget"], keep), _rows(batch["idk"], keep)
    with torch.no_grad():
        lose = [a - b for a, b in zip(seq_logp(logits(model, sub_f), sub_f["labels"]),
                                      seq_logp(logits(ref_model, sub_f), sub_f["labels"]))]
        win = [a - b for a, b in zip(seq_logp(logits(model, sub_i), sub_i["labels"]),
                                     seq_logp(logits(ref_model, sub_i), sub_i["labels"]))]
    per = [float(-(2 / 0.1) * log_sigmoid(0.1 * (w - lo))) for w, lo in zip(win, lose)]
    assert close(out.forget_loss, sum(per) / 2)


def test_group_satimp_token_mean_on_subset(model):
    batch = make_batch(seed=6)
    gen = torch.Generator().manual_seed(0)
    out = build_method("GroupSatImp", generator=gen).loss(model, batch)
    keep = out.extras["group_forget_idx"].tolist()
    sub = _rows(batch["forget"], keep)
    with torch.no_grad():
        rows = label_logps(logits(model, sub), sub["labels"])
    vals = [-(math.exp(float(x)) ** 5) * (1 - math.exp(float(x))) * float(-x) for r in rows for x in r]
    assert close(out.forget_loss, sum(vals) / len(vals))


def test_group_ratio_errors():
    for bad in (0.0, 1.5, -1):
        with pytest.raises(ConfigError, match="group_ratio"):
            build_method("NPO", baldro="g", group_ratio=bad)
