"""Every method, and both forms where the project has a reference option, equals an independent transcription
of the reference code (reference_forms/) in loss and gradient on shared float32 inputs (fidelity_cases.py;
the same cases benchmarks/bench_fidelity.py prints), and the check can tell the two forms apart."""

from __future__ import annotations

import pytest
import torch

import fidelity_cases as F
import reference_forms as R
from unlearning.methods import build_method

OPTION_CASES = [c for c in F.CASES if c.option]


def _id(case: F.Case) -> str:
    return f"{case.method}-{case.option or case.notes or case.form}".replace(" ", "_")


@pytest.mark.parametrize("case", F.CASES, ids=_id)
def test_method_matches_its_reference_form(case: F.Case) -> None:
    loss, grad = F.run_case(case)
    assert loss <= F.LOSS_TOL and grad <= F.GRAD_TOL, (loss, grad)


@pytest.mark.parametrize("case", OPTION_CASES, ids=_id)
def test_the_two_forms_are_told_apart(case: F.Case) -> None:
    """Scored against the other form's reference, the method is outside the tolerance (so passing the
    fidelity test above says which form it computes)."""
    loss, grad = F.contrast(case)
    assert loss > F.LOSS_TOL or grad > F.GRAD_TOL, (loss, grad)


def test_rmu_reference_form_is_mean_s_times_mean_inverse_n() -> None:
    """The broadcast quirk written out: mean over the [B, B] matrix s_j / n_i = mean(s) * mean(1/n)."""
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(3, 5, 4, generator=gen), torch.randn(3, 5, 4, generator=gen)
    mask = torch.tensor([[0, 1, 1, 0, 0], [0, 1, 1, 1, 1], [1, 1, 1, 1, 1]], dtype=torch.bool)
    s = [float(((a[i] - b[i]) ** 2).mean(-1)[mask[i]].sum()) for i in range(3)]
    n = [int(mask[i].sum()) for i in range(3)]
    broadcast = sum(s) / 3 * sum(1 / k for k in n) / 3
    per_sample = sum(x / k for x, k in zip(s, n)) / 3
    assert float(R.activation_loss_ou(a, b, mask)) == pytest.approx(broadcast, rel=1e-6)
    assert float(R.activation_loss_project(a, b, mask)) == pytest.approx(per_sample, rel=1e-6)
    from unlearning.methods.rmu import activation_losses
    labels = torch.where(mask, 1, -100)
    assert float(activation_losses(a, b, labels, faithful_broadcast=True).mean()) == pytest.approx(broadcast, rel=1e-6)
    assert float(activation_losses(a, b, labels).mean()) == pytest.approx(per_sample, rel=1e-6)
    assert abs(broadcast - per_sample) > 0.05 * per_sample


def test_gru_projects_and_pdu_moves_its_dual_variable() -> None:
    """The multi-step cases exercise the branches they claim to: GRU's projection fires, PDU's alpha moves."""
    parts, model, ref = F._setup(0)
    gru = build_method("GRU")
    fired = []
    for _ in range(3):
        model.zero_grad(set_to_none=True)
        out = gru.loss(model, parts)
        out.loss.backward()
        fired.append(bool(out.extras["gru_projected"]))
        F._sgd(list(model.parameters()), [p.grad for p in model.parameters()])
    assert all(fired)
    pdu = build_method("PDU", primal_dual=True, retain_loss_eps=2.0, dual_step_size=0.5, dual_warmup_epochs=0)
    outs = [pdu.loss(model, parts) for _ in range(3)]
    alphas = [float(o.extras["retain_preference"]) for o in outs]
    assert alphas[0] == 1.0 and len(set(alphas)) == 3
    for before, after, out in zip(alphas, alphas[1:] + [pdu.dual_alpha], outs):   # alpha' = max(0, alpha + 0.5 (r - 2))
        assert after == pytest.approx(max(0.0, before + 0.5 * (float(out.retain_loss.detach()) - 2.0)), rel=1e-6)


def test_pdu_forget_is_the_masked_form_not_the_pre_147_one() -> None:
    """The project's PDU forget loss is the reference's masked mean (labels != -100) and is far from the old
    mean over all B*T positions (what the project computed before)."""
    parts, model, _ = F._setup(0)
    logits = (model.shared + model.logits["forget"]).detach()
    labels = parts["forget"]["labels"]
    got = float(build_method("PDU").loss(model, parts).forget_loss.detach())
    assert got == pytest.approx(float(R.pdu_forget(logits, labels)), rel=1e-6)
    assert abs(got - float(R.pdu_forget_unmasked(logits))) > 1e-3 * got


def _pdu_case(**hp):
    return next(c for c in F.CASES if c.method == "PDU" and all(c.hparams.get(k) == v for k, v in hp.items()))


def test_pdu_warm_up_and_epoch_updates_move_the_dual_when_the_reference_does() -> None:
    """The fidelity cases exercise what they claim: the dual is still during the warm-up, moves per micro-batch in
    step mode afterwards, and only at epoch ends in epoch mode ("m": after a micro-batch, "e": after an epoch)."""
    _, step = F.pdu_trajectory(_pdu_case(dual_warmup_epochs=1, dual_update_upon=None))
    assert [a for _, a in step[:5]] == [1.0] * 5                        # epoch 1 (4 micro-batches + its end)
    moved = [a for kind, a in step[5:] if kind == "m"]
    assert len(set(moved)) == len(moved) == 8                           # every later micro-batch moves it
    _, epoch = F.pdu_trajectory(_pdu_case(dual_update_upon="epoch"))
    values = [a for _, a in epoch]
    assert values[:4] == [1.0] * 4 and values[4] != 1.0                  # first update: the end of epoch 1
    assert values[5:9] == [values[4]] * 4 and values[9] != values[4]     # still in epoch 2, moved at its end
    _, yaml = F.pdu_trajectory(_pdu_case(dual_warmup_epochs=None, dual_update_upon=None, dual_step_size=None))
    assert [a for _, a in yaml[:15]] == [1.0] * 15 and yaml[15][1] != 1.0   # PDU.yaml: 5 warm-up epochs of 3


def test_gru_at_grad_accum_4_projects_the_accumulated_gradient(monkeypatch) -> None:
    """Without the loop's begin_micro_batch (each micro-batch projected on its own, the project's former
    behaviour) the grad_accum 4 case leaves the tolerance: the fidelity case can tell the two apart."""
    case = next(c for c in F.CASES if c.method == "GRU" and c.loop.get("grad_accum") == 4)
    from unlearning.methods.gru import GRU
    monkeypatch.setattr(GRU, "begin_micro_batch", lambda self, index, size: None)
    assert F.run_case(case)[1] > 100 * F.GRAD_TOL


def test_gru_npo_at_grad_accum_4_differs_from_the_reference_npo_branch() -> None:
    """A documented difference: the reference's NPO branch never advances its step counter, so at grad_accum > 1 it
    projects every micro-batch and carries the restored gradient into the next one; the project accumulates."""
    case = F.Case("GRU", "project default", {"forget_loss_type": "NPO"}, runner=F.run_gru, loop={"grad_accum": 4})
    assert F.run_case(case)[1] > 100 * F.GRAD_TOL


def test_ceu_first_answer_token_is_not_scored() -> None:
    """CE-U's ignore_first_n_answer_tokens matters: n = 0 and n = 1 give different losses, and n = 1 is
    the reference default."""
    parts, model, _ = F._setup(0)
    logits = (model.shared + model.logits["forget"]).detach()
    labels = parts["forget"]["labels"]
    assert build_method("CEU").config.ignore_first_n_answer_tokens == 1
    one = float(build_method("CEU").loss(model, parts).loss.detach())
    zero = float(build_method("CEU", ignore_first_n_answer_tokens=0).loss(model, parts).loss.detach())
    assert one == pytest.approx(float(R.ceu(logits, labels, 1)), rel=1e-6)
    assert zero == pytest.approx(float(R.ceu(logits, labels, 0)), rel=1e-6)
    assert abs(one - zero) > 1e-3 * abs(one)


def test_sibl_rejects_bad_hyperparameters_in_one_line() -> None:
    from unlearning.errors import ConfigError

    for bad in ({"sparsity": 1.0}, {"inner_steps": -1}, {"cg_iters": 0}, {"outer_update": "adam"}, {"rho": 0},
                {"sparsity_method": "random"}, {"l1_coeff": -1e-4}, {"use_implicit": "yes"}):
        with pytest.raises(ConfigError) as err:
            build_method("SIBL", **bad)
        assert "\n" not in str(err.value) and next(iter(bad)) in str(err.value)
    assert build_method("SIBL", epsilon=0.3).config.retain_loss_eps == 0.3   # the reference's spelling


def test_sibl_mask_dual_variable_and_correction_do_what_they_claim() -> None:
    """The magnitude mask keeps 1 - sparsity of each weight matrix and freezes the rest (masked entries do not
    move); lambda follows max(0, lambda + rho r); the CG correction changes the outer direction."""
    import copy

    from methods_oracle import make_llama

    parts = F.make_parts(0, F.V)
    model = make_llama(100, vocab=F.V)
    start = {n: p.detach().clone() for n, p in model.named_parameters()}
    method = build_method("SIBL", **F.SIBL_HP)
    lambdas = [method.lambda_dual]
    for _ in range(2):
        out = method.loss(model, parts)
        lambdas.append(method.lambda_dual)
        assert lambdas[-1] == pytest.approx(max(0.0, lambdas[-2] + float(out.extras["sibl_residual"])), rel=1e-6)
    assert lambdas[1] > 0
    for (name, p), mask in zip(model.named_parameters(), method.masks):
        moved = (p.detach() != start[name])
        assert not (moved & (mask == 0)).any(), name
        if "weight" in name and p.dim() >= 2:
            assert 0.4 <= float(mask.mean()) <= 0.6 and moved.any(), name
    plain, corrected = (build_method("SIBL", **{**F.SIBL_HP, "outer_update": "optimizer", "use_implicit": flag})
                        for flag in (False, True))
    grads = []
    for m in (plain, corrected):
        twin = copy.deepcopy(make_llama(100, vocab=F.V))
        m.lambda_dual = 1.0
        m.loss(twin, parts).loss.backward()
        grads.append(torch.cat([p.grad.reshape(-1) for p in twin.parameters()]))
    assert float((grads[0] - grads[1]).abs().max()) > 1e-3 * float(grads[1].abs().max())
