"""The training loop's optional method hooks: GRU's begin_micro_batch (accumulated-gradient projection), PDU's
end_epoch (dual warm-up and per-epoch dual update) and state_dict (the dual variable survives a resume).

Run: pytest tests/train/test_method_hooks.py -q
"""

from __future__ import annotations

import pytest
import torch

from train_fixtures import TEMPLATE, loop_cfg, make_model
from unlearning.methods.gru import GRU
from unlearning.methods.pdu import PDU, PDUConfig
from unlearning.train.data import build_forget_retain
from unlearning.train.loop import unlearn


def _data(tok, rows):
    return build_forget_retain(tok, TEMPLATE, *rows, max_length=128, seed=0)


class SpyPDU(PDU):
    def __init__(self, config):
        super().__init__(config)
        self.calls, self.alphas = [], []

    def loss(self, model, batch, ref_model=None):
        out = super().loss(model, batch, ref_model)
        self.alphas.append(float(out.extras["retain_preference"]))
        return out

    def end_epoch(self, model, epochs_done, batches, ref_model=None):
        batches = list(batches)
        self.calls.append((epochs_done, model.module.training if hasattr(model, "module") else model.training,
                           torch.is_grad_enabled(), len(batches)))
        super().end_epoch(model, epochs_done, iter(batches), ref_model)
        self.alphas.append(self.dual_alpha)


def test_end_epoch_runs_after_every_full_epoch_in_eval_mode_and_moves_the_epoch_dual(tok, rows):
    # 8 forget rows, batch 3 -> 3 micro-batches per epoch; grad_accum 2
    method = SpyPDU(PDUConfig(retain_loss_eps=0.5, dual_update_upon="epoch", dual_warmup_epochs=2))
    unlearn(make_model(len(tok), seed=5), method, _data(tok, rows), loop_cfg(batch_size=3, grad_accum=2, epochs=3))
    assert method.calls == [(1, False, False, 3), (2, False, False, 3), (3, False, False, 3)]
    # 3 losses + the epoch end, per epoch: alpha fixed through the warm-up (2 epochs), then one step per epoch end
    per_epoch = [method.alphas[i:i + 4] for i in range(0, 12, 4)]
    assert per_epoch[0] == [1.0] * 4 and per_epoch[1][:3] == [1.0] * 3
    assert per_epoch[1][3] != 1.0 and per_epoch[2][:3] == [per_epoch[1][3]] * 3 and per_epoch[2][3] != per_epoch[1][3]


def test_gru_is_told_its_place_in_each_optimizer_step(tok, rows):
    seen = []

    class SpyGRU(GRU):
        def begin_micro_batch(self, index, size):
            seen.append((index, size))
            super().begin_micro_batch(index, size)

    history = unlearn(make_model(len(tok), seed=5), SpyGRU(), _data(tok, rows),
                      loop_cfg(batch_size=3, grad_accum=2, epochs=2))
    assert seen == [(0, 2), (1, 2), (0, 1)] * 2          # micro-batches 3,3,2 -> steps of 2 and 1, per epoch
    assert len(history.steps) == 4


def test_pdu_dual_state_is_checkpointed_so_a_resumed_run_continues_it(tok, rows, tmp_path):
    cfg = dict(batch_size=3, grad_accum=2, epochs=3, lr=5e-3)
    hp = dict(retain_loss_eps=0.5, dual_step_size=0.5, dual_warmup_epochs=1)
    whole = PDU(PDUConfig(**hp))
    straight = make_model(len(tok), seed=5)
    unlearn(straight, whole, _data(tok, rows), loop_cfg(**cfg))
    first = PDU(PDUConfig(**hp))
    model = make_model(len(tok), seed=5)
    unlearn(model, first, _data(tok, rows), loop_cfg(stop_after_epoch=2, **cfg), checkpoint_dir=tmp_path)
    assert first.can_update and first.dual_alpha != 1.0
    resumed = PDU(PDUConfig(**hp))                       # a new process: alpha 1, warm-up not over
    unlearn(model, resumed, _data(tok, rows), loop_cfg(**cfg), checkpoint_dir=tmp_path)
    assert resumed.dual_alpha == pytest.approx(whole.dual_alpha, rel=1e-6)
    for p, q in zip(model.parameters(), straight.parameters()):
        assert torch.allclose(p, q, atol=1e-6)
