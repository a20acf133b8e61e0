"""Fidelity cases: every method (both forms where it has a reference option) run through ``build_method(...)
.loss`` and through its independently transcribed reference formula (reference_forms/) on the same random
float32 inputs; each case reports the relative loss and gradient differences.

The "model" is a table of leaf logits (and layer-0 hidden states, for RMU) per batch part, so the
gradient is taken w.r.t. the logits themselves. Used by tests/methods/test_fidelity.py and
benchmarks/bench_fidelity.py:

    for case in CASES: rel_loss, rel_grad = run_case(case)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Callable

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

import reference_forms as R
from unlearning.methods import build_method

B, T, V, D = 4, 14, 128, 16     # V >= 100: UNDIAL's reference form indexes vocabulary id V-100
PARTS = ("forget", "retain", "idk")
JENSUN_IDS = [5, 9, 17]
JENSUN_VOCAB = 32000            # a real vocabulary size: the two eps placements differ by ~V*eps
SEED_CONTROL = 3                # RMU control-vector seed
LOSS_TOL = 2e-6                 # float32 tolerance (relative) for the loss ...
GRAD_TOL = 5e-6                 # ... and for the gradient (max abs difference / max abs reference gradient)


def make_parts(seed: int, vocab: int = V) -> dict[str, dict[str, torch.Tensor]]:
    """Right-padded rows: prompt (labels -100), answer (labels = ids), padding; lengths vary per row."""
    gen = torch.Generator().manual_seed(seed)
    parts = {}
    for name in PARTS:
        ids = torch.randint(0, vocab, (B, T), generator=gen)
        mask = torch.zeros(B, T, dtype=torch.long)
        labels = torch.full((B, T), -100)
        for b in range(B):
            prompt = int(torch.randint(2, 5, (1,), generator=gen))
            answer = int(torch.randint(2, T - prompt + 1, (1,), generator=gen))
            mask[b, : prompt + answer] = 1
            labels[b, prompt: prompt + answer] = ids[b, prompt: prompt + answer]
        parts[name] = {"input_ids": ids, "attention_mask": mask, "labels": labels}
    return parts


class _PassThrough(nn.Module):
    def forward(self, h):
        return (h,)


class LogitsModel(nn.Module):
    """Logits of batch part n = a shared leaf table + the part's own leaf table (so forget and retain
    gradients overlap, as they do through a real model's weights); the part's hidden states are routed
    through ``layers[0]`` so a forward hook sees them."""

    def __init__(self, parts: dict[str, dict[str, torch.Tensor]], gen: torch.Generator, vocab: int = V) -> None:
        super().__init__()
        self.ids = {name: p["input_ids"] for name, p in parts.items()}
        self.shared = nn.Parameter(2 * torch.randn(B, T, vocab, generator=gen))
        self.logits = nn.ParameterDict({n: nn.Parameter(2 * torch.randn(B, T, vocab, generator=gen)) for n in parts})
        self.hidden = nn.ParameterDict({n: nn.Parameter(torch.randn(B, T, D, generator=gen)) for n in parts})
        self.layers = nn.ModuleList([_PassThrough()])

    def forward(self, input_ids, attention_mask=None, **_: Any):
        name = next(n for n, ids in self.ids.items() if torch.equal(ids, input_ids))
        self.layers[0](self.hidden[name])
        return SimpleNamespace(logits=self.shared + self.logits[name])


@dataclass
class Case:
    method: str
    form: str                                   # "reference" or "project default"
    hparams: dict[str, Any]
    reference: Callable[..., torch.Tensor] | None = None   # (theta, ref, parts) -> loss
    runner: Callable[["Case", int], tuple[float, float]] | None = None
    option: str = ""                            # the hparam that selects this form, if any
    notes: str = field(default="")
    vocab: int = V
    loop: dict[str, int] = field(default_factory=dict)   # multi-step runners: grad_accum, micro_batches, epochs


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).abs().max() / b.double().abs().max().clamp(min=1e-30))


def _setup(seed: int, vocab: int = V):
    parts = make_parts(seed, vocab)
    gen = torch.Generator().manual_seed(seed + 100)
    model, ref = LogitsModel(parts, gen, vocab), LogitsModel(parts, gen, vocab)
    for p in ref.parameters():
        p.requires_grad_(False)
    return parts, model, ref


def _leaves(model: LogitsModel) -> tuple[dict[str, torch.Tensor], list[torch.Tensor]]:
    named = {n: p.detach().clone().requires_grad_(True) for n, p in model.named_parameters()}
    return named, list(named.values())


def _views(named: dict[str, torch.Tensor]) -> dict[str, SimpleNamespace]:
    return {n: SimpleNamespace(logits=named["shared"] + named[f"logits.{n}"], hidden=named[f"hidden.{n}"])
            for n in PARTS}


def run_single(case: Case, seed: int = 0) -> tuple[float, float]:
    parts, model, ref = _setup(seed, case.vocab)
    out = build_method(case.method, **case.hparams).loss(model, parts, ref_model=ref)
    out.loss.backward()
    named, leaves = _leaves(model)
    theta = _views(named)
    fixed = _views({n: p.detach() for n, p in ref.named_parameters()})
    expect = case.reference(theta, fixed, parts)
    expect.backward()
    grads = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in model.parameters()])
    ref_grads = torch.cat([(x.grad if x.grad is not None else torch.zeros_like(x)).reshape(-1) for x in leaves])
    return _rel(out.loss.detach(), expect.detach()), _rel(grads, ref_grads)


def _sgd(params, grads, lr=0.5):
    with torch.no_grad():
        for p, g in zip(params, grads):
            p.sub_(lr * g)


# configs/trainer/PDU.yaml @ d3d7cf9e6b3c125d16687d4232680d8d83548f1a (retain_loss_eps is ??? there: 0 here)
PDU_YAML = {"gamma": 1.0, "alpha": 1.0, "retain_loss_eps": 0.0, "primal_dual": True, "dual_step_size": 1.0,
            "dual_update_upon": "step", "dual_warmup_epochs": 5}


def _setup_micro(seed: int, m: int):
    """m distinct micro-batches on one LogitsModel (part names forget0, retain0, forget1, ...)."""
    batches = [make_parts(seed + 17 * j) for j in range(m)]
    named_parts = {f"{name}{j}": b[name] for j, b in enumerate(batches) for name in ("forget", "retain")}
    gen = torch.Generator().manual_seed(seed + 100)
    model, ref = LogitsModel(named_parts, gen), LogitsModel(named_parts, gen)
    ref.requires_grad_(False)
    return batches, model, ref


def _logits(named: dict[str, torch.Tensor], part: str) -> torch.Tensor:
    return named["shared"] + named[f"logits.{part}"]


def _flat_grads(params) -> torch.Tensor:
    return torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params])


def pdu_trajectory(case: Case, seed: int = 0) -> tuple[tuple[float, float], list[tuple[str, float]]]:
    """The training loop's order of calls on both sides: ``epochs`` x ``micro_batches`` distinct micro-batches in
    optimizer steps of ``grad_accum`` (each loss / grad_accum, gradients accumulated, SGD per step), and at each
    epoch end the loop's ``end_epoch`` hook (no grad, the epoch's micro-batches) against the reference's
    DualOptimizationCallback.on_epoch_end. Returns ((worst rel loss or dual difference, worst rel step-gradient
    difference), the project's dual value after every micro-batch ("m") and epoch end ("e"))."""
    loop = {"grad_accum": 1, "micro_batches": 3, "epochs": 1, **case.loop}
    ga, m = loop["grad_accum"], loop["micro_batches"]
    batches, model, _ = _setup_micro(seed, m)
    method = build_method(case.method, **case.hparams)
    hp = {**PDU_YAML, **case.hparams}
    oracle = R.PDUReference(hp["gamma"], hp["alpha"], hp["retain_loss_eps"], hp["primal_dual"], hp["dual_step_size"],
                            hp["dual_update_upon"], hp["dual_warmup_epochs"])
    named, leaves = _leaves(model)
    worst, trace = [0.0, 0.0], []

    def dual_diff() -> float:
        return _rel(torch.tensor(method.dual_alpha), torch.tensor(float(oracle.preferences[1])).clamp(min=1e-30))

    for epoch in range(loop["epochs"]):
        for start in range(0, m, ga):
            group = list(range(start, min(start + ga, m)))
            model.zero_grad(set_to_none=True)
            for x in leaves:
                x.grad = None
            for j in group:
                batch = batches[j]
                out = method.loss(model, batch)
                (out.loss / len(group)).backward()
                expect = oracle(R.pdu_forget(_logits(named, f"forget{j}"), batch["forget"]["labels"]),
                                R.hf_loss(_logits(named, f"retain{j}"), batch["retain"]["labels"]))
                (expect / len(group)).backward()
                worst[0] = max(worst[0], _rel(out.loss.detach(), expect.detach()), dual_diff())
                trace.append(("m", method.dual_alpha))
            g, gr = _flat_grads(model.parameters()), _flat_grads(leaves)
            worst[1] = max(worst[1], _rel(g, gr))
            _sgd(list(model.parameters()), [p.grad if p.grad is not None else torch.zeros_like(p)
                                            for p in model.parameters()])
            _sgd(leaves, [x.grad if x.grad is not None else torch.zeros_like(x) for x in leaves])
        with torch.no_grad():
            method.end_epoch(model, epoch + 1, iter(batches))
            oracle.on_epoch_end(epoch + 1, [R.hf_loss(_logits(named, f"retain{j}"), b["retain"]["labels"])
                                            for j, b in enumerate(batches)])
        worst[0] = max(worst[0], dual_diff())
        trace.append(("e", method.dual_alpha))
    return (worst[0], worst[1]), trace


def run_pdu(case: Case, seed: int = 0) -> tuple[float, float]:
    """PDU through :func:`pdu_trajectory` (dual variable, warm-up and epoch updates carried over)."""
    return pdu_trajectory(case, seed)[0]


def run_gru(case: Case, seed: int = 0, steps: int = 3) -> tuple[float, float]:
    """``steps`` optimizer steps of ``grad_accum`` distinct micro-batches: the method with the loop's
    ``begin_micro_batch`` calls and each loss / grad_accum backpropagated, against the reference's store_grads /
    projection / restore_gradients; the step's accumulated gradient is compared, then SGD on both sides."""
    ga = case.loop.get("grad_accum", 1)
    batches, model, ref = _setup_micro(seed, ga * steps)
    method = build_method(case.method, **case.hparams)
    kind = case.hparams.get("forget_loss_type", "GradAscent")
    oracle = R.GRUReference(case.hparams.get("gamma_gru", 0.8), ga, kind)
    named, leaves = _leaves(model)
    fixed = {n: p.detach() for n, p in ref.named_parameters()}
    worst = (0.0, 0.0)
    for s in range(steps):
        model.zero_grad(set_to_none=True)
        for k in range(ga):
            j = s * ga + k
            batch = batches[j]
            method.begin_micro_batch(k, ga)
            out = method.loss(model, batch, ref_model=ref)
            (out.loss / ga).backward()
            f_labels = batch["forget"]["labels"]
            forget = (R.dpo(None, None, None, _logits(named, f"forget{j}"), _logits(fixed, f"forget{j}"), f_labels,
                            case.hparams.get("beta", 0.1)) if kind == "NPO"
                      else R.grad_ascent(_logits(named, f"forget{j}"), f_labels))
            retain = R.hf_loss(_logits(named, f"retain{j}"), batch["retain"]["labels"])
            oracle.training_step(leaves, forget, retain)
            worst = (max(worst[0], _rel(out.loss.detach(), forget.detach())), worst[1])
        g, direction = _flat_grads(model.parameters()), _flat_grads(leaves)
        worst = (worst[0], max(worst[1], _rel(g, direction)))
        _sgd(list(model.parameters()), [p.grad if p.grad is not None else torch.zeros_like(p) for p in model.parameters()])
        _sgd(leaves, [x.grad if x.grad is not None else torch.zeros_like(x) for x in leaves])
        for x in leaves:   # the trainer's zero_grad after the optimizer step
            x.grad = None
    return worst


SIBL_HP = {"outer_steps": None, "retain_loss_eps": 0.1, "rho": 1.0, "inner_steps": 2, "eta_in": 0.05,
           "eta_theta": 0.05, "l1_coeff": 1e-3, "sparsity": 0.5, "use_implicit": True, "cg_iters": 5, "cg_tol": 1e-6}


def _flat_params(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def run_sibl(case: Case, seed: int = 0, steps: int = 3, ce_form: str = "hf") -> tuple[float, float]:
    """A tiny real Llama (SIBL needs curvature and weight matrices for its mask), 3 outer iterations on both
    sides (inner retain steps, CG-corrected outer direction, dual variable carried). ``outer_update=optimizer``:
    the loss's gradient against the reference's masked outer direction, SGD at eta_theta applied to both;
    ``sgd``: the method updates the weights itself, and the weights after each step are compared.

    ``ce_form="masked_mean"``: the reference's retain NLL (the model's own HF loss) is summed as sum(CE*mask)/n,
    the same number in exact arithmetic. With the CG correction this is needed for a float32 comparison: conjugate
    gradients on the ill-conditioned inner Hessian amplify the last-bit difference between the two summation
    orders (~1.6e-7 in the right-hand side) to 3e-5..5e-5 in the outer direction (seeds 0-2), while with the
    masked-mean sum the method and the reference agree bit for bit over 3 steps (difference 0.0)."""
    import copy

    from methods_oracle import make_llama

    hp = {**SIBL_HP, **case.hparams}
    parts = make_parts(seed, V)
    model = make_llama(seed + 100, vocab=V)
    twin = copy.deepcopy(model)
    method = build_method("SIBL", **hp)
    oracle = R.SIBLReference(twin, hp["retain_loss_eps"], hp["rho"], hp["inner_steps"], hp["eta_in"], hp["eta_theta"],
                             hp["l1_coeff"], hp["sparsity"], hp["use_implicit"], hp["cg_iters"], hp["cg_tol"])
    if ce_form == "masked_mean":
        oracle._hf_loss = lambda part: R.masked_mean_nll(
            twin(input_ids=part["input_ids"], attention_mask=part["attention_mask"]).logits, part["labels"])
    worst = (0.0, 0.0)
    for _ in range(steps):
        model.zero_grad(set_to_none=True)
        out = method.loss(model, parts)
        out.loss.backward()
        with sdpa_kernel([SDPBackend.MATH]):  # as the method: double backward needs the math attention kernel
            l_fgt, l_ret, direction = oracle.step(parts["forget"], parts["retain"])
        loss = max(_rel(out.forget_loss, l_fgt), _rel(out.retain_loss, l_ret))
        if hp.get("outer_update", "sgd") == "optimizer":
            grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in model.parameters()]
            grad = _rel(torch.cat([g.reshape(-1) for g in grads]),
                        torch.cat([direction[n].reshape(-1) for n, _ in model.named_parameters()]))
            _sgd(list(model.parameters()), grads, lr=hp["eta_theta"])
        else:
            grad = _rel(_flat_params(model), _flat_params(twin))
        worst = (max(worst[0], loss), max(worst[1], grad))
    return worst


def run_t3(case: Case, seed: int = 0, steps: int = 3) -> tuple[float, float]:
    """A tiny real Llama as the frozen base: the T3 loss and the head's gradient against the reference's
    classifier path, SGD on the head between 3 micro-batches (both sides' heads start equal)."""
    import copy

    from methods_oracle import make_llama

    parts = make_parts(seed, V)
    method = build_method("T3", **case.hparams)
    model = method.prepare_model(make_llama(seed + 100, vocab=V))
    proj = copy.deepcopy(model.head)
    worst = (0.0, 0.0)
    for _ in range(steps):
        model.zero_grad(set_to_none=True)
        proj.zero_grad(set_to_none=True)
        out = method.loss(model, parts)
        out.loss.backward()
        expect = R.t3_loss(model.base, proj, parts)
        expect.backward()
        g = torch.cat([p.grad.reshape(-1) for p in model.head.parameters()])
        gr = torch.cat([p.grad.reshape(-1) for p in proj.parameters()])
        worst = (max(worst[0], _rel(out.loss.detach(), expect.detach())), max(worst[1], _rel(g, gr)))
        _sgd(list(model.head.parameters()), [p.grad for p in model.head.parameters()], lr=0.05)
        _sgd(list(proj.parameters()), [p.grad for p in proj.parameters()], lr=0.05)
    return worst


class _IdsTokenizer:
    """Test double of a tokenizer for LUNAR's refusal prompts: "5 17 3" -> ids [5, 17, 3]; a word that is not a
    number -> an id from its characters (so the "idk" sentences tokenise too)."""

    pad_token_id = 0

    def __call__(self, text, **_):
        return {"input_ids": [int(t) if t.isdigit() else 2 + sum(map(ord, t)) % 40 for t in text.split()]}


def run_lunar(case: Case, seed: int = 0, steps: int = 3) -> tuple[float, float]:
    """A tiny real Llama; the refusal direction (prepare_model on a prompts file) against the reference's
    candidate directions, then 3 micro-batches of the regression loss and the down_proj gradients against the
    reference's estimated nets (SGD on both). The loss column is the worse of the loss and the direction."""
    import copy
    import json
    import tempfile
    import warnings
    from types import SimpleNamespace

    from methods_oracle import make_llama

    gen = torch.Generator().manual_seed(seed + 7)
    refusal = [torch.randint(1, V, (int(n),), generator=gen).tolist() for n in torch.randint(3, 9, (6,), generator=gen)]
    parts = make_parts(seed, V)
    rows = [{"input_ids": ids[m.bool()].tolist(), "labels": lab[m.bool()].tolist()}
            for ids, m, lab in zip(parts["forget"]["input_ids"], parts["forget"]["attention_mask"], parts["forget"]["labels"])]
    model = make_llama(seed + 100, vocab=V)
    ref = copy.deepcopy(model).requires_grad_(False)
    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/harmful.json"
        with open(path, "w") as f:
            json.dump([" ".join(map(str, p)) for p in refusal], f)
        method = build_method("LUNAR", direction_prompts=path, **case.hparams)
        with warnings.catch_warnings():  # the last layer's direction fallback is announced; it is what is tested
            warnings.simplefilter("ignore")
            method.prepare_model(model, SimpleNamespace(forget=rows), _IdsTokenizer())
    layers, coeffs = method.resolved, method.coeff_list
    forget_prompts = [r["input_ids"][: next(i for i, v in enumerate(r["labels"]) if v != -100)] for r in rows]
    candidates = R.lunar_candidate_directions(ref, refusal, forget_prompts)
    directions = [R.lunar_direction(candidates, layer) for layer in layers]
    worst_dir = _rel(method.directions, torch.stack(directions))
    estimated = [ref.model.layers[layer].mlp.down_proj.weight.detach().clone().requires_grad_(True) for layer in layers]
    trained = [model.model.layers[layer].mlp.down_proj.weight for layer in layers]
    for n, p in model.named_parameters():
        p.requires_grad_(any(p is t for t in trained))
    worst = (worst_dir, 0.0)
    for _ in range(steps):
        model.zero_grad(set_to_none=True)
        out = method.loss(model, parts, ref_model=ref)
        out.loss.backward()
        for w in estimated:
            w.grad = None
        expect = R.lunar_loss(ref, estimated, parts, layers, coeffs, directions)
        expect.backward()
        g = torch.cat([t.grad.reshape(-1) for t in trained])
        gr = torch.cat([w.grad.reshape(-1) for w in estimated])
        worst = (max(worst[0], _rel(out.loss.detach(), expect.detach())), max(worst[1], _rel(g, gr)))
        _sgd(trained, [t.grad for t in trained], lr=0.5)
        _sgd(estimated, [w.grad for w in estimated], lr=0.5)
    return worst


def _l(part, parts):
    return parts[part]["labels"]


def _rmu(faithful: bool):
    def reference(th, fx, parts):
        u = torch.rand(D, generator=torch.Generator().manual_seed(SEED_CONTROL))
        control = (u / torch.norm(u) * 2.5).view(1, 1, D)
        return R.rmu(th["forget"].hidden, control, _l("forget", parts), th["retain"].hidden, fx["retain"].hidden,
                     _l("retain", parts), 0.7, 1.3, faithful)
    return reference


CASES: list[Case] = [
    Case("GradAscent", "reference", {}, lambda th, fx, p: R.grad_ascent(th["forget"].logits, _l("forget", p))),
    Case("GradDiff", "reference", {"gamma": 0.7, "alpha": 1.3},
         lambda th, fx, p: 0.7 * R.grad_ascent(th["forget"].logits, _l("forget", p))
         + 1.3 * R.hf_loss(th["retain"].logits, _l("retain", p)), notes="retain NLL"),
    Case("GradDiff", "reference", {"retain_loss_type": "KL"},
         lambda th, fx, p: R.grad_ascent(th["forget"].logits, _l("forget", p))
         + R.kl_divergence(th["retain"].logits, fx["retain"].logits), notes="retain KL"),
    Case("IdkDPO", "reference", {"beta": 0.1, "alpha": 0.5},
         lambda th, fx, p: R.dpo(th["idk"].logits, fx["idk"].logits, _l("idk", p), th["forget"].logits,
                                 fx["forget"].logits, _l("forget", p), 0.1)
         + 0.5 * R.hf_loss(th["retain"].logits, _l("retain", p))),
    Case("NPO", "reference", {"beta": 0.1},
         lambda th, fx, p: R.dpo(None, None, None, th["forget"].logits, fx["forget"].logits, _l("forget", p), 0.1)
         + R.hf_loss(th["retain"].logits, _l("retain", p))),
    Case("SimNPO", "reference", {"beta": 4.5, "delta": 0.5},
         lambda th, fx, p: 0.125 * R.simnpo(th["forget"].logits, _l("forget", p), 4.5, 0.5)
         + R.hf_loss(th["retain"].logits, _l("retain", p))),
    Case("RMU", "reference", {"layer": 0, "steering_coeff": 2.5, "seed": SEED_CONTROL, "gamma": 0.7, "alpha": 1.3,
                              "faithful_broadcast": True}, _rmu(True), option="faithful_broadcast=true"),
    Case("RMU", "project default", {"layer": 0, "steering_coeff": 2.5, "seed": SEED_CONTROL, "gamma": 0.7,
                                    "alpha": 1.3}, _rmu(False), option="faithful_broadcast=false"),
    Case("SatImp", "reference", {},
         lambda th, fx, p: 0.1 * R.satimp(th["forget"].logits, _l("forget", p), 5.0, 1.0)
         + R.hf_loss(th["retain"].logits, _l("retain", p))),
    Case("SimNPO", "reference", {"beta": 4.5, "delta": 5.0, "alpha": 0.0},
         lambda th, fx, p: 0.125 * R.simnpo(th["forget"].logits, _l("forget", p), 4.5, 5.0),
         notes="forget term alone, unsaturated margin (delta 5)"),
    Case("SatImp", "reference", {"beta1": 1.0, "beta2": 1.0, "alpha": 0.0},
         lambda th, fx, p: 0.1 * R.satimp(th["forget"].logits, _l("forget", p), 1.0, 1.0),
         notes="forget term alone, beta1 = beta2 = 1"),
    Case("WGA", "reference", {"beta": 2.0},
         lambda th, fx, p: R.wga(th["forget"].logits, _l("forget", p), 2.0)
         + R.hf_loss(th["retain"].logits, _l("retain", p))),
    Case("TNPO", "reference", {"beta": 0.5, "detach_weights": False},
         lambda th, fx, p: R.tnpo(th["forget"].logits, fx["forget"].logits, _l("forget", p), 0.5, False)
         + R.hf_loss(th["retain"].logits, _l("retain", p)), option="detach_weights=false"),
    Case("TNPO", "project default", {"beta": 0.5},
         lambda th, fx, p: R.tnpo(th["forget"].logits, fx["forget"].logits, _l("forget", p), 0.5, True)
         + R.hf_loss(th["retain"].logits, _l("retain", p)), option="detach_weights=true"),
    Case("UNDIAL", "reference", {"beta": 3.0, "faithful_ignore_index": True},
         lambda th, fx, p: R.undial(th["forget"].logits, fx["forget"].logits, _l("forget", p), 3.0),
         option="faithful_ignore_index=true"),
    Case("UNDIAL", "project default", {"beta": 3.0},
         lambda th, fx, p: R.undial_project(th["forget"].logits, fx["forget"].logits, _l("forget", p), 3.0),
         option="faithful_ignore_index=false"),
    Case("JensUn", "reference", {"target_token_ids": JENSUN_IDS, "faithful_eps": True},
         lambda th, fx, p: R.jensun_forget(th["forget"].logits, _l("forget", p), JENSUN_IDS)
         + R.jensun_retain(th["retain"].logits, fx["retain"].logits, _l("retain", p)), option="faithful_eps=true",
         vocab=JENSUN_VOCAB, notes=f"V={JENSUN_VOCAB}: the eps terms scale with V*eps"),
    Case("JensUn", "project default", {"target_token_ids": JENSUN_IDS},
         lambda th, fx, p: R.jensun_forget_project(th["forget"].logits, _l("forget", p), JENSUN_IDS)
         + R.jensun_retain_project(th["retain"].logits, fx["retain"].logits, _l("retain", p)),
         option="faithful_eps=false", vocab=JENSUN_VOCAB, notes=f"V={JENSUN_VOCAB}"),
    Case("CEU", "reference", {"ignore_first_n_answer_tokens": 1},
         lambda th, fx, p: R.ceu(th["forget"].logits, _l("forget", p), 1)),
    Case("PDU", "reference", {"retain_loss_eps": 2.0, "dual_step_size": 0.5, "gamma": 0.7, "dual_warmup_epochs": 0},
         runner=run_pdu, notes="step dual, no warm-up; 3 micro-batches, grad_accum 1"),
    Case("PDU", "reference", {"retain_loss_eps": 2.0, "dual_step_size": 0.5, "dual_warmup_epochs": 1},
         runner=run_pdu, loop={"grad_accum": 2, "micro_batches": 4, "epochs": 3},
         notes="step dual after 1 warm-up epoch; 3 epochs x 4 micro-batches, grad_accum 2"),
    Case("PDU", "reference", {"retain_loss_eps": 2.0, "dual_step_size": 0.5, "dual_warmup_epochs": 1,
                              "dual_update_upon": "epoch"}, runner=run_pdu,
         loop={"grad_accum": 2, "micro_batches": 4, "epochs": 3},
         notes="epoch dual after 1 warm-up epoch; 3 epochs x 4 micro-batches, grad_accum 2"),
    Case("PDU", "reference", {"retain_loss_eps": 2.0}, runner=run_pdu, loop={"micro_batches": 2, "epochs": 6},
         notes="PDU.yaml defaults (5 warm-up epochs, step dual); 6 epochs x 2 micro-batches"),
    Case("GRU", "reference", {"gamma_gru": 0.8}, runner=run_gru, notes="3 steps, GradAscent forget, grad_accum 1"),
    Case("GRU", "reference", {"gamma_gru": 0.8}, runner=run_gru, loop={"grad_accum": 4},
         notes="3 steps, GradAscent forget, grad_accum 4 (accumulated gradient projected)"),
    Case("GRU", "reference", {"gamma_gru": 0.9, "forget_loss_type": "NPO"}, runner=run_gru,
         notes="3 steps, NPO forget, grad_accum 1"),
    Case("SIBL", "reference", {"outer_update": "optimizer", "use_implicit": False}, runner=run_sibl,
         notes="tiny Llama, 3 outer steps (K=2, dual carried), no CG; grad = masked outer direction"),
    Case("SIBL", "reference", {"outer_update": "optimizer"}, runner=lambda c, s=0: run_sibl(c, s, ce_form="masked_mean"),
         notes="+ CG correction (5 it.); reference NLL summed as sum(CE*mask)/n (see run_sibl)"),
    Case("SIBL", "reference", {"outer_update": "sgd"}, runner=lambda c, s=0: run_sibl(c, s, ce_form="masked_mean"),
         notes="the method's own SGD step; grad column = the weights after each of 3 steps"),
    Case("T3", "reference", {}, runner=run_t3, notes="tiny Llama base, head trained 3 steps; grad = head"),
    Case("T3", "reference", {"head_hidden_size": 24, "head_layers": 2, "head_activation": "gelu", "head_bias": True},
         runner=run_t3, notes="2-layer GELU head with biases"),
    Case("LUNAR", "reference", {"layers": [0], "coeffs": [2.0], "fit": "loop"}, runner=run_lunar,
         notes="fit loop: direction + 3 regression steps of the loop form; grad = down_proj"),
    Case("LUNAR", "reference", {"layers": [0, 1], "coeffs": [3.0], "fit": "loop"}, runner=run_lunar,
         notes="fit loop, layers 0 and 1 (the last: direction fallback; coeff padded with 2.0)"),
]


def run_case(case: Case, seed: int = 0) -> tuple[float, float]:
    """(max relative loss difference, max relative gradient difference) of one case."""
    return (case.runner or run_single)(case, seed)


def other_form(case: Case) -> Case | None:
    """The same method's other form (for a case with a reference option), else None."""
    for other in CASES:
        if other.method == case.method and other.option and case.option and other.option != case.option:
            return other
    return None


def contrast(case: Case, seed: int = 0) -> tuple[float, float] | None:
    """The case's method and settings scored against the *other* form's reference formula: how far apart the
    two forms are (the fidelity check must be able to tell them apart)."""
    other = other_form(case)
    if other is None or other.reference is None:
        return None
    return run_single(Case(case.method, case.form, case.hparams, other.reference, vocab=case.vocab), seed)


from fidelity_procedures import PROCEDURE_CASES  # noqa: E402  (procedures: SIBL's T, LUNAR's fit, LMCleaner)

CASES += PROCEDURE_CASES
