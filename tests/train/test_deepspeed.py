"""DeepSpeed ZeRO-2/3 (CPU, gloo) against the plain-torch trajectory, in one process and in two, and
checkpoint -> resume under ZeRO-3.

The first DeepSpeed init on a machine JIT-compiles shm_comm (~45-90 s, cached in
<repo>/.cache/torch_extensions); later inits take ~3 s.

Run: pytest tests/train/test_deepspeed.py -q
"""

from __future__ import annotations

import pytest
import torch
import torch.multiprocessing as mp

from train_fixtures import TEMPLATE, Interrupt, loop_cfg, make_model, make_tokenizer, qa_rows, reference_run
from unlearning.methods import build_method
from unlearning.methods.reference import frozen_copy
from unlearning.train.data import build_forget_retain
from unlearning.train.engine import free_port
from unlearning.train.loop import unlearn
from train_workers import two_rank_worker

# DeepSpeed's comm layer calls torch.distributed functions that torch 2.13 marks deprecated
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::FutureWarning")]

CFG = dict(lr=2e-3, epochs=2, batch_size=3, grad_accum=2, warmup_epochs=1.5, weight_decay=0.1,
           max_grad_norm=0.5, lr_scheduler="linear")


def _run(tok, rows, name, engine, stage, hparams=None, live_ref=False, **extra):
    model = make_model(len(tok), seed=5)
    method = build_method(name, **(hparams or {}))
    data = build_forget_retain(tok, TEMPLATE, *rows, max_length=128, seed=0)
    if method.needs_ref_logps:
        data.attach_ref_logps(model, keys=method.needs_ref_logps)
    ref = frozen_copy(model) if live_ref or method.needs_ref_model else None
    history = unlearn(model, method, data, loop_cfg(engine=engine, zero_stage=stage, **{**CFG, **extra}),
                      ref_model=ref)
    return history, model


@pytest.mark.parametrize("name,stage,hparams", [
    ("NPO", 2, None), ("NPO", 3, None), ("UNDIAL", 3, {"alpha": 1.0}), ("RMU", 0, {"layer": 1}),
    ("RMU", 3, {"layer": 1}),
    # the procedures that take their own gradients (torch.autograd.grad on the model's outputs, in-place steps):
    # a DeepSpeed engine's forward refuses autograd outside engine.backward, so they must run on the bare module
    ("SIBL", 0, {"T": 2, "eta_theta": 0.02, "inner_steps": 2, "cg_iters": 3}), ("GRU", 0, None), ("PDU", 0, None),
])
def test_zero_matches_plain_torch_in_one_process(tok, rows, name, stage, hparams):
    torch_hist, torch_model = _run(tok, rows, name, "torch", 0, hparams)
    ds_hist, ds_model = _run(tok, rows, name, "deepspeed", stage, hparams)
    assert len(ds_hist.steps) == len(torch_hist.steps) == (2 if name == "SIBL" else 4)   # SIBL: T outer steps
    assert [s["lr"] for s in ds_hist.steps] == pytest.approx([s["lr"] for s in torch_hist.steps], abs=1e-15)
    assert ds_hist.losses() == pytest.approx(torch_hist.losses(), rel=1e-5, abs=1e-6)
    for (n, p), q in zip(ds_model.named_parameters(), torch_model.parameters()):
        assert p.shape == q.shape and torch.allclose(p, q, atol=1e-5), n   # ZeRO-3 weights gathered back


def test_zero3_checkpoint_resume_is_identical(tok, rows, tmp_path):
    cfg = loop_cfg(engine="deepspeed", zero_stage=3, epochs=2, batch_size=2, grad_accum=2,
                   warmup_epochs=1.0, weight_decay=0.01, max_grad_norm=1.0, lr_scheduler="linear",
                   save_every_steps=1)
    full_model = make_model(len(tok), seed=4)
    method = build_method("GroupNPO", generator=torch.Generator().manual_seed(1))
    data = build_forget_retain(tok, TEMPLATE, *rows, max_length=128, seed=0)
    data.attach_ref_logps(full_model, keys=("forget",))
    full = unlearn(full_model, method, data, cfg)

    crashed = make_model(len(tok), seed=4)
    method = Interrupt(build_method("GroupNPO", generator=torch.Generator().manual_seed(1)), after=5)
    with pytest.raises(RuntimeError, match="simulated crash"):
        unlearn(crashed, method, data, cfg, checkpoint_dir=tmp_path)        # dies in step 3 (epoch 2)
    resumed_model = make_model(len(tok), seed=4)
    method = build_method("GroupNPO", generator=torch.Generator().manual_seed(77))
    resumed = unlearn(resumed_model, method, data, cfg, checkpoint_dir=tmp_path)
    assert resumed.resumed_from_step == 2 and len(resumed.steps) == 4
    assert resumed.losses() == pytest.approx(full.losses(), rel=1e-6, abs=1e-7)
    for p, q in zip(resumed_model.parameters(), full_model.parameters()):
        assert torch.allclose(p, q, atol=1e-6)


def test_two_processes_match_plain_torch_with_the_same_per_rank_data(tmp_path):
    # 8 rows, 2 ranks -> 4 each, batch 3 -> micro-batches 3,1 per rank, accum 2 -> 1 step per epoch
    cfg = dict(lr=2e-3, epochs=3, batch_size=3, grad_accum=2, warmup_epochs=1.5, weight_decay=0.1,
               max_grad_norm=0.5, lr_scheduler="linear")
    mp.spawn(two_rank_worker, args=(2, free_port(), str(tmp_path), {"model_seed": 6, "cfg": cfg}), nprocs=2,
             join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(2)]

    # the same math in this process: one model, both ranks' micro-batches, gradients averaged over ranks
    tok = make_tokenizer()
    model = make_model(len(tok), seed=6)
    method = build_method("NPO")
    datasets = []
    for _ in range(2):
        d = build_forget_retain(tok, TEMPLATE, *qa_rows(), max_length=128, seed=0)
        d.attach_ref_logps(model, keys=("forget",))
        datasets.append(d)
    cfg.pop("batch_size"), cfg.pop("grad_accum"), cfg.pop("lr_scheduler")
    losses, lrs = reference_run(model, method, datasets, batch=3, accum=2, clip=cfg.pop("max_grad_norm"), **cfg)
    assert lrs == pytest.approx([0.0, 2e-3, 1e-3])   # warmup floor(1.5*8/(3*2*2)) = 1 step of 3
    for key in ("torch0", "deepspeed2", "deepspeed3"):
        for r in range(2):
            got = ranks[r][key]
            assert got["lrs"] == pytest.approx(lrs, abs=1e-15), key
            assert got["losses"] == pytest.approx(losses, rel=1e-5, abs=1e-6), (key, r)
            for n, p in model.named_parameters():
                assert torch.allclose(got["params"][n], p.detach(), atol=1e-5), (key, r, n)
        assert ranks[0][key]["draws"] != ranks[1][key]["draws"], "ranks drew the same retain examples"
        assert ranks[0][key]["draws"] == ranks[0]["torch0"]["draws"]   # reproducible per (seed, rank)
