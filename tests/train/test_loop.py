"""`unlearn` with the plain-torch engine: the trajectory of a bare loop, schedule, hooks, NaN, resume.

Run: pytest tests/train/test_loop.py -q
"""

from __future__ import annotations

import json
import math

import pytest
import torch

from train_fixtures import TEMPLATE, Interrupt, loop_cfg, make_model, reference_run
from unlearning.errors import ConfigError
from unlearning.methods import build_method
from unlearning.train.data import build_forget_retain
from unlearning.train.loop import TrainingDiverged, unlearn


class NaNAt(Interrupt):
    def loss(self, *args, **kwargs):
        self.calls += 1
        out = self._method.loss(*args, **kwargs)
        if self.calls == self._after:
            out.loss = out.loss * float("nan")
        return out


def _data(tok, rows, method, model, seed=0):
    data = build_forget_retain(tok, TEMPLATE, *rows, max_length=128, with_idk="idk" in method.needs_ref_logps,
                               seed=seed)
    if method.needs_ref_logps:
        data.attach_ref_logps(model, keys=method.needs_ref_logps)
    return data


def _params(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize("name", ["NPO", "GroupNPO"])
def test_matches_a_bare_pytorch_loop(tok, rows, name):
    # 8 forget rows, batch 3 -> micro-batches of 3,3,2; accum 2 -> groups of 2 and 1 (uneven last group)
    kw = dict(lr=2e-3, epochs=2, warmup_epochs=1.5, weight_decay=0.1, max_grad_norm=0.5)
    model, ref_model = make_model(len(tok), seed=5), make_model(len(tok), seed=5)
    method = build_method(name, generator=torch.Generator().manual_seed(9))
    history = unlearn(model, method, _data(tok, rows, method, model),
                      loop_cfg(batch_size=3, grad_accum=2, lr_scheduler="linear", **kw))
    ref_method = build_method(name, generator=torch.Generator().manual_seed(9))
    losses, lrs = reference_run(ref_model, ref_method, [_data(tok, rows, ref_method, ref_model)], batch=3, accum=2,
                                clip=kw.pop("max_grad_norm"), **kw)
    assert history.total_steps == 4 and history.warmup_steps == 2  # floor(1.5*8/(3*2*1)) = 2
    assert [s["lr"] for s in history.steps] == pytest.approx(lrs, abs=1e-15)
    assert lrs == pytest.approx([0.0, 1e-3, 2e-3, 1e-3])           # warmup 0, 1/2, then (4-s)/(4-2)
    assert history.losses() == pytest.approx(losses, rel=1e-6, abs=1e-6)
    for (n, p), q in zip(model.named_parameters(), ref_model.parameters()):
        assert torch.allclose(p, q, atol=1e-6), n


def test_eval_hook_runs_at_start_and_after_each_epoch(tok, rows):
    seen = []

    def hook(module, epoch):
        seen.append((epoch, module.training, torch.is_grad_enabled()))
        return {"n_params": sum(p.numel() for p in module.parameters())}

    model = make_model(len(tok), seed=1)
    method = build_method("GradDiff")
    history = unlearn(model, method, _data(tok, rows, method, model), loop_cfg(epochs=3), eval_hook=hook)
    assert seen == [(0, False, False), (1, False, False), (2, False, False), (3, False, False)]
    assert [e["epoch"] for e in history.evals] == [0, 1, 2, 3]
    assert history.evals[0]["n_params"] == sum(p.numel() for p in model.parameters())
    assert len(history.steps) == 3 * 4 and not model.training


def test_nan_loss_raises_before_the_update(tok, rows):
    model = make_model(len(tok), seed=1)
    method = NaNAt(build_method("GradAscent"), after=3)
    with pytest.raises(TrainingDiverged, match=r"optimizer step 3 \(epoch 0\).*loss=nan") as info:
        unlearn(model, method, _data(tok, rows, method, model), loop_cfg())
    assert info.value.step == 3 and math.isnan(info.value.values["loss"])
    assert all(torch.isfinite(p).all() for p in model.parameters())


@pytest.mark.parametrize("name", ["NPO", "GroupNPO"])
def test_checkpoint_resume_continues_the_identical_trajectory(tok, rows, tmp_path, name):
    cfg = loop_cfg(epochs=3, batch_size=2, grad_accum=2, lr_scheduler="linear", warmup_epochs=1.0,
                   weight_decay=0.01, max_grad_norm=1.0, save_every_steps=1)
    # uninterrupted: 3 epochs x 2 steps, retain draws + BalDRO-G subsets from seeded generators
    full_model = make_model(len(tok), seed=4)
    method = build_method(name, generator=torch.Generator().manual_seed(1))
    full = unlearn(full_model, method, _data(tok, rows, method, full_model), cfg)

    crashed = make_model(len(tok), seed=4)
    method = Interrupt(build_method(name, generator=torch.Generator().manual_seed(1)), after=9)  # steps 1-4 run, dies in step 5
    with pytest.raises(RuntimeError, match="simulated crash"):
        unlearn(crashed, method, _data(tok, rows, method, crashed), cfg, checkpoint_dir=tmp_path)
    marker = json.loads((tmp_path / "latest.json").read_text())
    assert marker["global_step"] == 4 and marker["epoch"] == 2 and marker["step_in_epoch"] == 0
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["step-0000003", "step-0000004"]

    resumed_model = make_model(len(tok), seed=4)
    method = build_method(name, generator=torch.Generator().manual_seed(123))  # state comes from the checkpoint
    resumed = unlearn(resumed_model, method, _data(tok, rows, method, resumed_model), cfg, checkpoint_dir=tmp_path)
    assert resumed.resumed_from_step == 4
    assert resumed.losses() == full.losses()             # bit-identical, all 6 steps
    for p, q in zip(resumed_model.parameters(), full_model.parameters()):
        assert torch.equal(p, q)


def test_resume_with_changed_settings_is_refused(tok, rows, tmp_path):
    model = make_model(len(tok), seed=4)
    method = build_method("GradDiff")
    unlearn(model, method, _data(tok, rows, method, model), loop_cfg(lr=1e-3), checkpoint_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"field 'train\.lr'"):
        unlearn(model, method, _data(tok, rows, method, model), loop_cfg(lr=2e-3), checkpoint_dir=tmp_path)
    again = unlearn(model, method, _data(tok, rows, method, model), loop_cfg(lr=2e-3), checkpoint_dir=tmp_path,
                    resume=False)
    assert again.resumed_from_step is None and len(again.steps) == 4


def test_rmu_trains_only_the_regex_parameters(tok, rows):
    model = make_model(len(tok), seed=2)
    before = _params(model)
    method = build_method("RMU", layer=1, trainable_params_regex=r"model\.layers\.1\.mlp\..*")
    ref = make_model(len(tok), seed=2).eval()
    unlearn(model, method, _data(tok, rows, method, model), loop_cfg(), ref_model=ref)
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed == {f"model.layers.1.mlp.{m}.weight" for m in ("gate_proj", "up_proj", "down_proj")}


def test_missing_reference_is_a_config_error(tok, rows):
    model = make_model(len(tok))
    data = build_forget_retain(tok, TEMPLATE, *rows)
    with pytest.raises(ConfigError, match="ref_logps"):
        unlearn(model, build_method("NPO"), data, loop_cfg())
    with pytest.raises(ConfigError, match="ref_model"):
        unlearn(model, build_method("UNDIAL"), data, loop_cfg())


def test_stop_after_epoch_replays_the_first_epochs_of_a_longer_run(tok, rows):
    """An exported earlier epoch of a sweep trial: same schedule (over all epochs), stopped early."""
    runs = []
    for stop in (None, 1):
        model = make_model(len(tok), seed=3)
        method = build_method("NPO")
        cfg = loop_cfg(batch_size=4, grad_accum=1, lr=2e-3, epochs=3, warmup_epochs=1.0,
                       lr_scheduler="linear", stop_after_epoch=stop)
        runs.append(unlearn(model, method, _data(tok, rows, method, model), cfg))
    full, stopped = runs
    per_epoch = full.steps_per_epoch
    assert len(stopped.steps) == per_epoch and len(full.steps) == 3 * per_epoch
    assert [s["lr"] for s in stopped.steps] == pytest.approx([s["lr"] for s in full.steps[:per_epoch]])
    assert stopped.losses() == pytest.approx(full.losses()[:per_epoch], rel=1e-6)
    assert stopped.steps[-1]["lr"] > 0  # the decay continues past the stop: it is not a 1-epoch schedule
