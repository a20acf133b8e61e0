"""Mutation check of the metric and method tests: break one formula at a time and see which tests fail.

    python benchmarks/mutation_check.py                    # every mutation: metrics, then methods
    python benchmarks/mutation_check.py --only M01 X14     # a subset
    python benchmarks/mutation_check.py --list             # what each mutation does

Each mutation is a one-line source edit, applied to a **throw-away copy** of the repository in a temporary folder
(the working tree is never edited):

* M.. edit unlearning/metrics/*.py (e.g. the KS test made one-sided, the truth ratio inverted, a term dropped
  from model_utility); the metric tests run (`tests/metrics`, golden tests against open-unlearning's stored eval
  logs included);
* X.. edit unlearning/methods/*.py, at least one per method file: a loss formula, its masking (which positions
  count), its reduction (sum / mean / denominator), or the procedure around it (PDU's warm-up and epoch dual,
  GRU's accumulation, EMA and projection test, SIBL's fresh batches, LUNAR's fit, LMCleaner's propagation and log
  alignment); the fidelity tests run (`tests/methods/test_fidelity.py`: every method against an independent
  transcription of its reference code, and `tests/methods/test_procedures.py`: what the procedure cases assume).
  BalDRO (baldro.py) is a wrapper with its own tests (test_baldro_*.py), not a fidelity case, and is not mutated.

The table lists, per mutation, the test functions that failed, each with (failed cases / parametrised cases). A
mutation no test catches is reported as SURVIVED (with the reason where known). The last line is
``<k> of <n> mutations caught (metrics <a>/<b>, methods <c>/<d>)``.
The golden tests need ../shared/data/tofu/reference_eval_logs; without them they skip and say so.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from xml.etree import ElementTree

ROOT = Path(__file__).resolve().parents[1]
SHARED = (ROOT.parent / "shared").resolve()

# id -> (file, original text, mutated text, what it breaks)
MUTATIONS: dict[str, tuple[str, str, str, str]] = {
    "M01": ("tofu_metrics.py", "ks_2samp(model, np.asarray(reference_truth_ratios, dtype=np.float64)).pvalue",
            "ks_2samp(model, np.asarray(reference_truth_ratios, dtype=np.float64), alternative='less').pvalue",
            "forget_quality: KS one-sided (alternative='less')"),
    "M02": ("tofu_metrics.py", "ks_2samp(model, np.asarray(reference_truth_ratios, dtype=np.float64)).pvalue",
            "ks_2samp(model, np.asarray(reference_truth_ratios, dtype=np.float64), alternative='greater').pvalue",
            "forget_quality: KS one-sided, the other side (alternative='greater')"),
    "M03": ("tofu_metrics.py", "ks_2samp(model, np.asarray(reference_truth_ratios, dtype=np.float64)).pvalue",
            "ks_2samp(model, np.asarray(reference_truth_ratios, dtype=np.float64), method='asymp').pvalue",
            "forget_quality: asymptotic instead of exact KS p-value"),
    "M04": ("truth_ratio.py", "    return p_wrong / (p_correct + TR_EPS)\n",
            "    return p_correct / (p_wrong + TR_EPS)\n", "truth ratio inverted (P_c / P_w)"),
    "M05": ("truth_ratio.py", '    wrong = _per_item_mean(wrong_avg_losses, "wrong_avg_losses")',
            '    wrong = -np.log(np.mean(np.exp(-np.asarray(wrong_avg_losses, dtype=np.float64)), axis=-1))',
            "truth ratio: arithmetic mean of the wrong answers' probabilities instead of the geometric"),
    "M06": ("truth_ratio.py", "    return float(np.mean(np.minimum(arr, 1 / (arr + TR_EPS))))",
            "    return float(np.mean(arr))", "closer_to_1_better: min(tr, 1/tr) term dropped"),
    "M07": ("truth_ratio.py", "    return float(np.mean(np.maximum(0, 1 - arr)))",
            "    return float(np.mean(1 - arr))", "true_better: max(0, .) dropped"),
    "M08": ("truth_ratio.py", "    return p_wrong / (p_correct + TR_EPS)\n", "    return p_wrong / p_correct\n",
            "truth ratio: the +1e-10 dropped"),
    "M09": ("tofu_metrics.py", "    return float(hmean(values))", "    return float(np.mean(values))",
            "model_utility: arithmetic instead of harmonic mean"),
    "M10": ("tofu_metrics.py", "    for name in MODEL_UTILITY_INPUTS:\n        value = inputs[name]",
            "    for name in MODEL_UTILITY_INPUTS[:-1]:\n        value = inputs[name]",
            "model_utility: one of the 9 inputs (wf_Truth_Ratio) dropped"),
    "M11": ("truth_ratio.py", "    probs = correct / (correct + wrong_sum + TR_EPS)",
            "    probs = correct / (correct + TR_EPS)", "probability_w_options: the wrong answers' sum dropped"),
    "M12": ("privacy.py", "    return u / (f.size * h.size)", "    return 1 - u / (f.size * h.size)",
            "MIA AUC: forget / holdout labels swapped"),
    "M13": ("privacy.py", "    ref = default_reference if reference_auc is None else reference_auc",
            "    ref = default_reference", "privleak: the retain model's reference AUC ignored"),
    "M14": ("rouge.py", '        "rougeL_recall": scores["rougeL"].recall,', '        "rougeL_recall": scores["rougeL"].precision,',
            "ROUGE: rougeL precision reported as recall"),
    "M15": ("rouge.py", 'rouge_scorer.RougeScorer(["rouge1", "rougeL"], use_stemmer=True)',
            'rouge_scorer.RougeScorer(["rouge1", "rougeL"], use_stemmer=False)', "ROUGE: stemmer off"),
    "M16": ("primitives.py", "    return float(np.mean(per_item))", "    return float(np.median(per_item))",
            "per-item aggregate: median instead of mean"),
    "M17": ("truth_ratio.py", "    prob_mean_eps: float = TR_EPS,", "    prob_mean_eps: float = 0.0,",
            "truth_ratio prob_mean: the reference's +1e-10 dropped"),
}
# id -> (file under unlearning/methods, original text, mutated text, what it breaks)
METHOD_MUTATIONS: dict[str, tuple[str, str, str, str]] = {
    "X01": ("grad_ascent.py", '    return ForgetTerms(-ce, "token", mask)', '    return ForgetTerms(-ce, "token", mask | True)',
            "GradAscent masking: prompt and padding positions counted in the token mean"),
    "X02": ("grad_diff.py", '        return ascent_token_losses(logits_of(model, forget), forget["labels"])',
            '        return ascent_token_losses(logits_of(model, forget).detach(), forget["labels"])',
            "GradDiff loss: the forget term detached (no ascent gradient)"),
    "X03": ("npo.py", "    return -(2.0 / beta) * F.logsigmoid(-beta * (seq_logps - ref_seq_logps))",
            "    return -(1.0 / beta) * F.logsigmoid(-beta * (seq_logps - ref_seq_logps))", "NPO loss: 2/beta -> 1/beta"),
    "X04": ("npo.py", "npo_sample_losses(-ce.sum(-1), ref.sum(-1)", "npo_sample_losses(-ce.mean(-1), ref.mean(-1)",
            "NPO reduction: per-token mean instead of the sequence sum of log-probs"),
    "X05": ("simnpo.py", "    margin = nll_sum / n_tokens.clamp(min=1) - delta", "    margin = nll_sum - delta",
            "SimNPO reduction: length normalisation dropped"),
    "X06": ("idk_dpo.py", "((win_logps - win_ref) - (lose_logps - lose_ref))",
            "((win_logps - win_ref) + (lose_logps - lose_ref))", "IdkDPO loss: lose margin sign flipped"),
    "X07": ("satimp.py", "    weight = p.pow(beta1) * (1 - p).pow(beta2)", "    weight = p.pow(beta1)",
            "SatImp loss: the importance factor (1-p)^beta2 dropped"),
    "X08": ("satimp.py", '    return ForgetTerms(-weight * ce, "token", mask)',
            '    return ForgetTerms(-weight * ce, "token", mask | True)', "SatImp masking: every position counted"),
    "X09": ("wga.py", "    weight = (-ce).exp().detach().pow(beta)", "    weight = (-ce).exp().pow(beta)",
            "WGA loss: weights not detached"),
    "X10": ("tnpo.py", "    return -(weight * ce * mask).sum(-1) / mask.sum(-1).clamp(min=1)",
            "    return -(weight * ce * mask).sum(-1) / mask.shape[-1]", "TNPO reduction: divided by T-1, not n_i"),
    "X11": ("undial.py", "    target = F.softmax(ref_logits[:, :-1, :].float() - beta * onehot, dim=-1)",
            "    target = F.softmax(ref_logits[:, :-1, :].float() + beta * onehot, dim=-1)",
            "UNDIAL loss: the target logit raised instead of lowered"),
    "X12": ("jensun.py", "    answer_pos = (mask.long().cumsum(-1) - 1).clamp(min=0)",
            "    answer_pos = mask.long().cumsum(-1).clamp(min=0)", "JensUn masking: target tokens cycled off by one"),
    "X13": ("ceu.py", "    first = labelled & (labelled.long().cumsum(-1) <= n)",
            "    first = labelled & (labelled.long().cumsum(-1) < n)", "CE-U masking: one answer token too few ignored"),
    "X14": ("pdu.py", '    return ForgetTerms(values, "token", labels != IGNORE_INDEX)',
            '    return ForgetTerms(values, "token", torch.ones_like(labels, dtype=torch.bool))',
            "PDU masking: every B*T position counted (the pre-#147 form)"),
    "X15": ("pdu.py", "    values = (z.max(dim=-1).values - z.mean(dim=-1)).pow(2)",
            "    values = (z.max(dim=-1).values - z.mean(dim=-1)).abs()", "PDU loss: margin not squared"),
    "X16": ("pdu.py", "        self.can_update = True\n", "", "PDU dual: the warm-up never ends"),
    "X17": ("pdu.py", "            self._dual_step(float(total / count - cfg.retain_loss_eps))",
            "            self._dual_step(float(total - cfg.retain_loss_eps))",
            "PDU epoch dual reduction: sum of the retain losses instead of their mean"),
    "X18": ("gru.py", "self.retain_ema = [k * g if prev is None else k * g + (1 - k) * r for g, r in",
            "self.retain_ema = [k * g if prev is None else (1 - k) * g + k * r for g, r in",
            "GRU: EMA weights swapped"),
    "X19": ("gru.py", "                    a.add_(g / size)", "                    a.copy_(g / size)",
            "GRU accumulation: only the step's last micro-batch gradient kept"),
    "X20": ("gru.py", "    if dot >= 0:", "    if dot <= 0:", "GRU: projection applied when not conflicting"),
    "X21": ("rmu.py", "    per_token = (a.float() - b.float()).pow(2).mean(-1)",
            "    per_token = (a.float() - b.float()).pow(2).sum(-1)", "RMU reduction: sum over the hidden dim"),
    "X22": ("rmu.py", "    mask = (labels != IGNORE_INDEX).to(torch.float32)",
            "    mask = torch.ones_like(labels, dtype=torch.float32)", "RMU masking: every position counted"),
    "X23": ("sibl.py", "        values = z.max(dim=-1).values - z.mean(dim=-1)",
            "        values = (z.max(dim=-1).values - z.mean(dim=-1)).pow(2)",
            "SIBL loss: the logit margin squared (PDU's form)"),
    "X24": ("t3.py", "        total = (sums[0] + sums[1]) / (counts[0] + counts[1]).clamp_min(1)",
            "        total = sums[0] / counts[0].clamp_min(1) + sums[1] / counts[1].clamp_min(1)",
            "T3 reduction: per-part means added instead of one mean over both parts"),
    "X25": ("t3.py", "        return (hidden * m).cumsum(dim=1) / m.cumsum(dim=1).clamp_min(1)",
            "        return (hidden * m).cumsum(dim=1) / m.sum(dim=1, keepdim=True).clamp_min(1)",
            "T3 masking: pooled features divided by the row's length, not the causal count"),
    "X26": ("lunar.py", "            term = err.mean()", "            term = err.sum(-1).mean()",
            "LUNAR reduction: squared error summed over the hidden dim"),
    "X27": ("base.py", "    return (values * mask).sum() / mask.sum().clamp(min=1)",
            "    return (values * mask).sum() / mask.numel()", "token mean (base.masked_mean): divided by B*(T-1)"),
    "X28": ("base.py", "    ce = F.cross_entropy(logits[:, :-1, :].float().transpose(1, 2), shifted,",
            "    ce = F.cross_entropy(logits[:, 1:, :].float().transpose(1, 2), shifted,",
            "token CE (base.token_ce): logits shifted the wrong way"),
    "X29": ("sibl.py", "        return [order.tolist()[:batch_size] for order in orders]",
            "        return [list(range(batch_size)) for _ in orders]",
            "SIBL T: every outer iteration on the same first rows, not a fresh shuffle"),
    "X30": ("lunar_fit.py", "EXPONENTIAL_GAMMA = 0.9 ", "EXPONENTIAL_GAMMA = 0.95 ",
            "LUNAR fit: ExponentialLR decay 0.95 instead of the reference's 0.9"),
    "X31": ("lunar_fit.py", "batch_size=batch_size, shuffle=True)", "batch_size=batch_size, shuffle=False)",
            "LUNAR fit: token vectors in order, not reshuffled per epoch"),
    "X32": ("lmcleaner.py", "                v = v - eta * hvp(net, batch, v, params).detach()",
            "                v = v + eta * hvp(net, batch, v, params).detach()",
            "LMCleaner: Hessian-vector term added instead of subtracted"),
    "X33": ("lmcleaner.py", "                    v = v - eta * self.config.damping * v",
            "                    v = v - self.config.damping * v", "LMCleaner: damping not scaled by the step's lr"),
    "X34": ("lmcleaner.py", "            update = (lambda t: log.update(t - 1) if t > 0 else",
            "            update = (lambda t: log.update(t) if t > 0 else",
            "LMCleaner reference alignment: the step's own update instead of the logger's previous one"),
    "X35": ("lmcleaner.py", "            for s in range(tz + 1, min(tz + self.config.window, end) + 1):",
            "            for s in range(tz + 1, min(tz + self.config.window, end)):",
            "LMCleaner: propagation window one step short"),
}
# why a mutation can survive the golden tests (shown in the table)
EXPECTED_SURVIVORS = {
    "M17": "open-unlearning's stored logs hold no prob_mean values; only the unit tests pin it",
}


def make_copy(dest: Path) -> Path:
    """The repository pieces the metric tests need, under dest/main, with dest/shared -> the real shared data."""
    repo = dest / "main"
    repo.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", ".cache")
    for name in ("unlearning", "tests"):
        shutil.copytree(ROOT / name, repo / name, ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", repo / "pyproject.toml")
    if SHARED.is_dir():
        (dest / "shared").symlink_to(SHARED, target_is_directory=True)
    return repo


def run_tests(repo: Path, targets: list[str]) -> tuple[dict[str, tuple[int, int]], str]:
    """{file::test_function: (failed cases, all cases)} for the functions with a failure, and pytest's tail."""
    env = {**os.environ, "PYTHONPATH": str(repo)}
    xml = repo / "junit.xml"
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--tb=no", f"--junitxml={xml}", *targets]
    out = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, timeout=1800)
    counts: dict[str, list[int]] = {}
    for case in ElementTree.parse(xml).getroot().iter("testcase"):
        name = re.sub(r"\[.*", "", case.get("name", ""))  # a parametrised case counts for its function
        key = f"{case.get('classname', '').split('.')[-1]}.py::{name}"
        seen = counts.setdefault(key, [0, 0])
        seen[1] += 1
        seen[0] += case.find("failure") is not None or case.find("error") is not None
    tail = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else out.stderr[-300:]
    return {k: (f, n) for k, (f, n) in counts.items() if f}, tail


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="+", default=None)
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--targets", nargs="+", default=["tests/metrics"], help="tests run for the metric mutations")
    ap.add_argument("--method-targets", nargs="+",
                    default=["tests/methods/test_fidelity.py", "tests/methods/test_procedures.py"],
                    help="tests run for the method mutations")
    args = ap.parse_args()
    groups = {"metrics": (MUTATIONS, args.targets), "methods": (METHOD_MUTATIONS, args.method_targets)}
    chosen = {(group, key): value for group, (table, _) in groups.items() for key, value in table.items()
              if args.only is None or key in args.only}
    if args.list:
        for (group, key), (file, _, _, what) in chosen.items():
            print(f"{key}  {group}/{file:<16} {what}")
        return 0
    caught = {group: 0 for group in groups}
    total = {group: sum(1 for g, _ in chosen if g == group) for group in groups}
    with tempfile.TemporaryDirectory(prefix="mutation-check-") as tmp:
        repo = make_copy(Path(tmp))
        check = subprocess.run([sys.executable, "-c", "import unlearning; print(unlearning.__file__)"], cwd=repo,
                               env={**os.environ, "PYTHONPATH": str(repo)}, capture_output=True, text=True)
        assert check.stdout.strip().startswith(str(repo)), f"tests would import the working tree: {check.stdout}"
        for group, (_, targets) in groups.items():
            if not total[group]:
                continue
            baseline, tail = run_tests(repo, targets)
            print(f"baseline of {group} (no mutation, {' '.join(targets)}): {tail}")
            if baseline:
                print(f"baseline failures, fix them first: {sorted(baseline)}")
                return 1
        for (group, key), (file, old, new, what) in chosen.items():
            path = repo / "unlearning" / group / file
            original = path.read_text()
            assert original.count(old) == 1, f"{key}: the text to mutate is not unique/present in {group}/{file}"
            path.write_text(original.replace(old, new))
            try:
                failed, tail = run_tests(repo, groups[group][1])
            finally:
                path.write_text(original)
            caught[group] += bool(failed)
            shown = "; ".join(f"{t} ({f}/{n})" for t, (f, n) in sorted(failed.items())) if failed else (
                "SURVIVED" + (f" ({EXPECTED_SURVIVORS[key]})" if key in EXPECTED_SURVIVORS else ""))
            print(f"{key} {what}\n      -> {shown}   [{tail}]", flush=True)
        print(f"{sum(caught.values())} of {len(chosen)} mutations caught (metrics {caught['metrics']}/{total['metrics']}, "
              f"methods {caught['methods']}/{total['methods']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
