"""Fidelity report: every unlearning method against an independent transcription of its reference code.

    python benchmarks/bench_fidelity.py                 # the table the README's fidelity table comes from
    python benchmarks/bench_fidelity.py --seeds 0 1 2   # worst case over several random inputs

For each method (and both forms where the project has a reference option: RMU faithful_broadcast, UNDIAL
faithful_ignore_index, JensUn faithful_eps, TNPO detach_weights), ``build_method(...).loss`` and the
reference formula (tests/methods/reference_forms/: open-unlearning / JensUn / BalDRO-fork code written
out on tensors) are evaluated on the same random float32 inputs (4 rows x 14 tokens, prompts, answers and
padding; logits = a shared table + a per-part table, so forget and retain gradients overlap). Printed per
case: max relative loss difference |L - L_ref| / |L_ref| and max relative gradient difference
max|g - g_ref| / max|g_ref| over the seeds, and, for option cases, the same numbers against the *other*
form's reference ("vs other form": what the check must be able to tell apart). PDU runs the training loop's
order of calls (micro-batches in optimizer steps of grad_accum 1 or 2, the loop's end_epoch hook against the
reference's DualOptimizationCallback) over 1-6 epochs: step dual without warm-up, after a 1-epoch warm-up, the
per-epoch dual, and PDU.yaml's defaults (5 warm-up epochs); its loss column also holds the dual variable's
difference. GRU runs 3 optimizer steps at grad_accum 1 and 4 (the accumulated gradient projected, as the
reference's GradAscent branch) with its retain-gradient EMA carried over, SIBL 3 outer
iterations on a tiny real Llama (inner retain steps, CG-corrected outer direction, dual variable; see
fidelity_cases.run_sibl for why its CG cases sum the reference's NLL as sum(CE*mask)/n) and its T-iteration
procedure through the real loop against the reference's train() (tests/methods/fidelity_procedures.py), T3 3 head-training
steps on a frozen tiny Llama, LUNAR its refusal direction and 3 regression steps of the chosen down_proj (fit:
loop) and its reference fit through the loop (fit: reference), LMCleaner its corrections through the loop from a
training log recorded on a tiny Llama, in both log alignments (tests/methods/fidelity_procedures.py). The last line
is the headline; "within float32 tolerance" means loss <= LOSS_TOL and gradient <= GRAD_TOL
(tests/methods/fidelity_cases.py). Exit status 1 when a case is outside it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "methods")]

import torch  # noqa: E402

from fidelity_cases import CASES, GRAD_TOL, LOSS_TOL, contrast, run_case  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{'method':<11}{'form':<17}{'option':<29}{'rel loss':>10}{'rel grad':>10}  {'vs other form':<20} notes")
    worst_loss = worst_grad = 0.0
    ok_methods: dict[str, bool] = {}
    for case in CASES:
        loss, grad = map(max, zip(*(run_case(case, s) for s in args.seeds)))
        other = contrast(case, args.seeds[0])
        within = loss <= LOSS_TOL and grad <= GRAD_TOL
        ok_methods[case.method] = ok_methods.get(case.method, True) and within
        worst_loss, worst_grad = max(worst_loss, loss), max(worst_grad, grad)
        vs = f"{other[0]:.1e} / {other[1]:.1e}" if other else "-"
        print(f"{case.method:<11}{case.form:<17}{case.option or '-':<29}{loss:>10.1e}{grad:>10.1e}  {vs:<20} "
              f"{'' if within else 'OUTSIDE TOLERANCE '}{case.notes}")
    n_ok = sum(ok_methods.values())
    print(f"fidelity: {n_ok} of {len(ok_methods)} methods within float32 tolerance of the reference form, both forms "
          f"where there is an option (max rel loss diff {worst_loss:.1e}, max rel grad diff {worst_grad:.1e}; "
          f"tolerance {LOSS_TOL:.0e} / {GRAD_TOL:.0e})")
    return 0 if n_ok == len(ok_methods) else 1


if __name__ == "__main__":
    sys.exit(main())
