"""Mutation check of the metric tests: break one metric formula at a time and see which tests fail.

    python benchmarks/mutation_check.py                    # every mutation, tests/metrics
    python benchmarks/mutation_check.py --only M01 M04     # a subset
    python benchmarks/mutation_check.py --list             # what each mutation does

Each mutation is a one-line source edit of unlearning/metrics/*.py (e.g. the KS test made one-sided, the truth
ratio inverted, a term dropped from model_utility). It is applied to a **throw-away copy** of the repository
in a temporary folder (the working tree is never edited), and the metric tests (`tests/metrics`, golden tests
against open-unlearning's stored eval logs included) run there; the table lists, per mutation, the test
functions that failed, each with (failed cases / parametrised cases). A mutation no test catches is reported as
SURVIVED (with the reason where known).
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
    ap.add_argument("--targets", nargs="+", default=["tests/metrics"])
    args = ap.parse_args()
    chosen = {k: v for k, v in MUTATIONS.items() if args.only is None or k in args.only}
    if args.list:
        for key, (file, _, _, what) in chosen.items():
            print(f"{key}  {file:<16} {what}")
        return 0
    with tempfile.TemporaryDirectory(prefix="mutation-check-") as tmp:
        repo = make_copy(Path(tmp))
        check = subprocess.run([sys.executable, "-c", "import unlearning; print(unlearning.__file__)"], cwd=repo,
                               env={**os.environ, "PYTHONPATH": str(repo)}, capture_output=True, text=True)
        assert check.stdout.strip().startswith(str(repo)), f"tests would import the working tree: {check.stdout}"
        baseline, tail = run_tests(repo, args.targets)
        print(f"baseline (no mutation): {tail}")
        if baseline:
            print(f"baseline failures, fix them first: {sorted(baseline)}")
            return 1
        survived = 0
        for key, (file, old, new, what) in chosen.items():
            path = repo / "unlearning" / "metrics" / file
            original = path.read_text()
            assert original.count(old) == 1, f"{key}: the text to mutate is not unique/present in {file}"
            path.write_text(original.replace(old, new))
            try:
                failed, tail = run_tests(repo, args.targets)
            finally:
                path.write_text(original)
            survived += not failed
            caught = "; ".join(f"{t} ({f}/{n})" for t, (f, n) in sorted(failed.items())) if failed else (
                "SURVIVED" + (f" ({EXPECTED_SURVIVORS[key]})" if key in EXPECTED_SURVIVORS else ""))
            print(f"{key} {what}\n      -> {caught}   [{tail}]")
        print(f"mutation check: {len(chosen) - survived} of {len(chosen)} mutations caught by tests/metrics")
    return 0


if __name__ == "__main__":
    sys.exit(main())
