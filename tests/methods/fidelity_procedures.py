"""Fidelity cases for the methods that are training procedures rather than losses (SIBL's T outer iterations,
LUNAR's reference fit, LMCleaner's replayed training log): the project's method run through the real training
loop (``unlearning.train.loop.unlearn``, torch engine) against the reference procedure transcribed in
reference_forms/, on a tiny real Llama. Each runner returns (worst relative loss difference, worst relative
weight/gradient difference), like fidelity_cases' runners; the cases join ``fidelity_cases.CASES``.

    import fidelity_cases                      # first: it extends its CASES with PROCEDURE_CASES
    from fidelity_procedures import run_sibl_procedure
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

import reference_forms as R
from fidelity_cases import SIBL_HP, V, Case, _flat_params, _rel
from methods_oracle import make_llama
from unlearning.methods import build_method
from unlearning.train.config import LoopConfig
from unlearning.train.data import ForgetRetainDataset
from unlearning.train.loop import unlearn


def token_rows(seed: int, n: int, vocab: int = V) -> list[dict[str, list[int]]]:
    """n question/answer rows as token ids: prompt (labels -100) then answer (labels = ids), lengths vary."""
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(n):
        prompt, answer = int(torch.randint(2, 5, (1,), generator=gen)), int(torch.randint(2, 7, (1,), generator=gen))
        ids = torch.randint(2, vocab, (prompt + answer,), generator=gen).tolist()
        rows.append({"input_ids": ids, "labels": [-100] * prompt + ids[prompt:], "attention_mask": [1] * len(ids)})
    return rows


def token_data(seed: int, n_forget: int = 6, n_retain: int = 5) -> ForgetRetainDataset:
    return ForgetRetainDataset(token_rows(seed, n_forget), token_rows(seed + 1, n_retain), pad_token_id=0, seed=seed)


def loop_config(**kw: Any) -> LoopConfig:
    base = dict(engine="torch", zero_stage=0, lr=1e-3, epochs=1, batch_size=2, grad_accum=1, warmup_epochs=0.0,
                weight_decay=0.0, max_grad_norm=0.0, lr_scheduler="constant", seed=0)
    return LoopConfig(**{**base, **kw})


class Recorder:
    """Wraps a dataset's ``collate`` and keeps every micro-batch the loop collated, in order."""

    def __init__(self, data: ForgetRetainDataset) -> None:
        self.batches: list[dict[str, Any]] = []
        self._collate = data.collate
        data.collate = self

    def __call__(self, indices):
        batch = self._collate(indices)
        self.batches.append(batch)
        return batch


class FreshIterator:
    """A "dataloader" whose k-th ``iter()`` starts at the k-th recorded batch: what the reference sees when the
    project's sampler draws that batch first in its k-th fresh iterator."""

    def __init__(self, batches: list[dict[str, Any]]) -> None:
        self.batches, self.calls = batches, 0

    def __iter__(self):
        start, self.calls = self.calls, self.calls + 1
        return iter(self.batches[start:])


def run_sibl_procedure(case: Case, seed: int = 0) -> tuple[float, float]:
    """SIBL at T outer iterations through the loop (``micro_batches`` hook: T fresh batches of batch_size) against
    the reference's ``SIBL.train(T)`` fed the same batches: the loop's per-step losses against the reference's
    history (loss column) and the weights after the run (grad column). The reference's NLL is summed as
    sum(CE*mask)/n when the CG correction is on (see fidelity_cases.run_sibl)."""
    hp = {**SIBL_HP, **case.hparams}
    steps, ga = hp["outer_steps"], case.loop.get("grad_accum", 1)
    data = token_data(seed)
    model = make_llama(seed + 100, vocab=V)
    twin = copy.deepcopy(model)
    record = Recorder(data)
    history = unlearn(model, build_method("SIBL", **hp), data, loop_config(grad_accum=ga, batch_size=2))
    oracle = R.SIBLReference(twin, hp["retain_loss_eps"], hp["rho"], hp["inner_steps"], hp["eta_in"], hp["eta_theta"],
                             hp["l1_coeff"], hp["sparsity"], hp["use_implicit"], hp["cg_iters"], hp["cg_tol"])
    if hp["use_implicit"]:
        oracle._hf_loss = lambda part: R.masked_mean_nll(
            twin(input_ids=part["input_ids"], attention_mask=part["attention_mask"]).logits, part["labels"])
    with sdpa_kernel([SDPBackend.MATH]):
        expect = oracle.train(steps, FreshIterator(record.batches))
    assert len(record.batches) == steps and all(len(b["forget"]["input_ids"]) == 2 for b in record.batches)
    got = [(s["forget_loss"], s["retain_loss"]) for s in history.steps]
    if ga > 1:   # a step's losses are the means over its micro-batches
        expect = [tuple(sum(v) / len(g) for v in zip(*g)) for g in
                  (expect[i:i + ga] for i in range(0, len(expect), ga))]
    loss = max(_rel(torch.tensor(a), torch.tensor(b)) for a, b in zip(got, expect))
    return loss, _rel(_flat_params(model), _flat_params(twin))


def _tensor_rows(rows):
    return {"input_ids": [torch.tensor(r["input_ids"]) for r in rows],
            "attention_mask": [torch.ones(len(r["input_ids"]), dtype=torch.long) for r in rows]}


def run_lunar_fit(case: Case, seed: int = 0) -> tuple[float, float]:
    """LUNAR ``fit: reference`` through the loop (its first step runs the whole fit) against the reference's
    estimated-net fit (reference_forms.lunar_reference_fit) from the same torch seed, on the same directions: the last
    epoch's mean loss (loss column) and the fitted down_proj weights (grad column)."""
    import json
    import tempfile
    import warnings

    from fidelity_cases import _IdsTokenizer

    hp = {"fit_epochs": 3, "fit_batch_size": 8, **case.hparams}
    data = token_data(seed, n_forget=5, n_retain=4)
    model = make_llama(seed + 100, vocab=V)
    twin = copy.deepcopy(model)
    gen = torch.Generator().manual_seed(seed + 7)
    refusal = [" ".join(map(str, torch.randint(1, V, (int(n),), generator=gen).tolist()))
               for n in torch.randint(3, 9, (6,), generator=gen)]
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")   # the last layer's direction fallback is announced
        path = f"{tmp}/harmful.json"
        with open(path, "w") as f:
            json.dump(refusal, f)
        method = build_method("LUNAR", direction_prompts=path, **hp)
        method.prepare_model(model, data, _IdsTokenizer())
    history = unlearn(model, method, data, loop_config(epochs=1))
    cfg = method.config
    torch.manual_seed(0)   # the loop's seed (train.seed 0) before the fit, the same global RNG draws
    weights, losses = R.lunar_reference_fit(twin, _tensor_rows(data.forget), _tensor_rows(data.retain), method.resolved,
                                            method.coeff_list, list(method.directions), cfg.fit_lr, cfg.fit_epochs,
                                            cfg.fit_batch_size)
    got = torch.cat([model.model.layers[l].mlp.down_proj.weight.detach().reshape(-1) for l in method.resolved])
    loss = max(_rel(torch.tensor(method.fit_losses), torch.tensor(losses)),
               _rel(torch.tensor(history.steps[0]["loss"]), torch.tensor(losses[-1])))
    assert len(history.steps) == 1 and len(method.fit_losses) == cfg.fit_epochs
    return loss, _rel(got, torch.cat([w.reshape(-1) for w in weights]))


def train_with_logs(seed: int, rows, steps_per_epoch_batch: int = 2, epochs: int = 2):
    """A tiny Llama trained on ``rows`` (AdamW, linear decay, a seeded shuffle per epoch), logged both ways: the
    project's LogRecorder (u_t = step t's own update) and the reference's TrainingLogger (u taken before each step's
    update). Returns (model, recorder, reference logger)."""
    from unlearning.data.collators import TrainCollator
    from unlearning.methods.lmcleaner_log import LogRecorder, flat

    model = make_llama(seed + 100, vocab=V)
    collate = TrainCollator(0)
    opt = torch.optim.AdamW(model.parameters(), lr=5e-3)
    total = epochs * -(-len(rows) // steps_per_epoch_batch)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1 - s / total)
    rec, ref_log = LogRecorder(rows, 0), R.ReferenceTrainingLogger()
    gen, step = torch.Generator().manual_seed(seed), 0
    for _ in range(epochs):
        order = torch.randperm(len(rows), generator=gen).tolist()
        for i in range(0, len(order), steps_per_epoch_batch):
            idx = order[i:i + steps_per_epoch_batch]
            batch = collate([rows[j] for j in idx])
            before, lr = flat(model.parameters()), opt.param_groups[0]["lr"]
            out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"])
            out.loss.backward()
            ref_log.training_step(model, step, lr, idx)
            opt.step()
            opt.zero_grad(set_to_none=True)
            sched.step()
            rec.step(lr, idx, before, flat(model.parameters()))
            step += 1
    return model, rec, ref_log


def run_lmcleaner(case: Case, seed: int = 0) -> tuple[float, float]:
    """LMCleaner through the loop (its first step applies every correction) on a log recorded while a tiny Llama was
    trained, against the reference's _apply_unlearning on the same final weights. ``log_alignment: reference``: the
    reference reads its own TrainingLogger's log; ``update`` (default): the reference fed the steps' own updates
    (u_t, tau = N so that propagation reaches the last step), i.e. the algorithm it states with the log aligned.
    Loss column: the audit's v norms; grad column: the weights after all corrections."""
    import tempfile

    from unlearning.methods.lmcleaner_log import TrainingLog

    rows = token_rows(seed + 3, 8)
    model, rec, ref_log = train_with_logs(seed, rows)
    twin = copy.deepcopy(model)
    data = ForgetRetainDataset(rows[:2], rows[2:], pad_token_id=0, seed=seed)
    with tempfile.TemporaryDirectory() as tmp:
        hp = {"training_log": str(rec.write(tmp)), "window": 3, "damping": 1e-2, **case.hparams}
        method = build_method("LMCleaner", **hp)
        method.prepare_model(model, data, None)
        unlearn(model, method, data, loop_config(epochs=1))
    forget_ids = [i for i, r in enumerate(rows) if any(r["input_ids"] == f["input_ids"] for f in rows[:2])]
    batch_for = lambda s: TrainingLog.batch(method.log, s)  # noqa: E731  the log's rows, collated
    math_sdpa = sdpa_kernel([SDPBackend.MATH])
    if method.config.log_alignment == "reference":
        with math_sdpa:
                expect = R.lmcleaner_batch_reference(twin, ref_log.sample_indices, ref_log.etas, ref_log.us,
                                                 ref_log.current_step, forget_ids, batch_for, hp["window"],
                                                 hp["damping"], hp.get("max_step"))
    else:
        n = len(rec.steps)
        with math_sdpa:
            expect = R.lmcleaner_batch_reference(twin, {s.step: list(s.indices) for s in rec.steps},
                                                 {s.step: s.lr for s in rec.steps}, dict(rec.updates),
                                                 n if hp.get("max_step") is None else hp["max_step"] + 1, forget_ids,
                                                 batch_for, hp["window"], hp["damping"])
    assert [a["tz"] for a in method.audit] == [a["tz"] for a in expect] and expect
    loss = _rel(torch.tensor([a["v_norm"] for a in method.audit]), torch.tensor([a["v_norm"] for a in expect]))
    return loss, _rel(_flat_params(model), _flat_params(twin))


PROCEDURE_CASES: list[Case] = [
    Case("SIBL", "reference", {"outer_steps": 3, "use_implicit": False}, runner=run_sibl_procedure,
         notes="T=3 outer iterations through the loop, each a fresh batch of 2; no CG; grad = weights after"),
    Case("SIBL", "reference", {"outer_steps": 3}, runner=run_sibl_procedure,
         notes="T=3 with CG correction (5 it.), the reference's train() loop"),
    Case("SIBL", "reference", {"outer_steps": 4, "use_implicit": False}, runner=run_sibl_procedure,
         loop={"grad_accum": 2}, notes="T=4 at grad_accum 2 (the outer step is SIBL's own: unchanged)"),
    Case("LUNAR", "reference", {"layers": [0], "coeffs": [2.0]}, runner=run_lunar_fit,
         notes="fit reference: whole-set token vectors, AdamW 1e-3 + ExponentialLR(0.9), 3 epochs of batch 8"),
    Case("LUNAR", "reference", {"layers": [0, 1], "coeffs": [3.0], "fit_lr": 3e-3, "fit_epochs": 4},
         runner=run_lunar_fit, notes="fit reference, two layers fitted together (one optimizer, losses summed)"),
    Case("LMCleaner", "reference", {"log_alignment": "reference"}, runner=run_lmcleaner,
         notes="the reference's TrainingLogger pairing (u of step j-1 at record j); K=3, damping 1e-2, 8 logged steps"),
    Case("LMCleaner", "project default", {}, runner=run_lmcleaner,
         notes="each step's own update (the stated algorithm), propagated to the last step; K=3"),
    Case("LMCleaner", "project default", {"window": 800, "damping": 1e-4}, runner=run_lmcleaner,
         notes="LMCleanerBatch.yaml's K 800 / damping 1e-4 (the window covers the whole run)"),
]
