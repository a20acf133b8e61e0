"""Which TOFU metric needs which model outputs, and which entries a selected metric brings along.

A need is (group, kind): group = forget | holdout | retain | ra | wf (the split), kind = answer |
para | pert (teacher-forced scoring of the answer, paraphrased answer, perturbed answers) or gen (greedy
generation). `TofuEvaluator` computes exactly the needs of the selected metrics, each once.

    metrics_closure(["forget_quality"])   # ['forget_quality', 'forget_truth_ratio', 'forget_Q_A_PARA_Prob', ...]
    needs_of(["privleak"])                # {('forget', 'answer'), ('holdout', 'answer')}
"""

from __future__ import annotations

from collections.abc import Sequence

from unlearning.evaluation.config import TOFU_METRICS
from unlearning.metrics.tofu_metrics import MODEL_UTILITY_INPUTS

# group -> split (forget/holdout resolved from the config)
UTILITY_SPLITS = {"retain": "retain_perturbed", "ra": "real_authors_perturbed", "wf": "world_facts_perturbed"}

Need = tuple[str, str]  # (group, kind); kind: answer | para | pert | gen

PROB_KINDS = {"Q_A_Prob": "answer", "Q_A_PARA_Prob": "para", "Q_A_PERT_Prob": "pert", "Q_A_ROUGE": "gen"}
NEEDS: dict[str, set[Need]] = {
    **{f"{g}_{m}": {(g, k)} for g in ("forget", "retain", "ra", "wf") for m, k in PROB_KINDS.items()
       if not (g in ("ra", "wf") and k == "para")},
    "forget_truth_ratio": {("forget", "para"), ("forget", "pert")},
    "forget_quality": {("forget", "para"), ("forget", "pert")},
    "forget_Q_A_gibberish": {("forget", "gen")},
    "retain_Truth_Ratio": {("retain", "para"), ("retain", "pert")},
    **{f"{g}_{m}": {(g, "answer"), (g, "pert")} for g in ("ra", "wf")
       for m in ("Truth_Ratio", "Q_A_Prob_normalised")},
    "extraction_strength": {("forget", "answer")},
    "exact_memorization": {("forget", "answer")},
    **{m: {("forget", "answer"), ("holdout", "answer")}
       for m in ("mia_min_k", "mia_min_k_plus_plus", "mia_loss", "mia_zlib", "privleak")},
    "model_utility": set(),
}
INCLUDES: dict[str, tuple[str, ...]] = {
    "model_utility": MODEL_UTILITY_INPUTS,
    "forget_quality": ("forget_truth_ratio",),
    "privleak": ("mia_min_k",),
    "forget_truth_ratio": ("forget_Q_A_PARA_Prob", "forget_Q_A_PERT_Prob"),
    "retain_Truth_Ratio": ("retain_Q_A_PARA_Prob", "retain_Q_A_PERT_Prob"),
    **{f"{g}_{m}": (f"{g}_Q_A_Prob", f"{g}_Q_A_PERT_Prob") for g in ("ra", "wf")
       for m in ("Truth_Ratio", "Q_A_Prob_normalised")},
}


def metrics_closure(selected: Sequence[str]) -> list[str]:
    """The selected metrics plus the entries they are built from, in TOFU_METRICS order."""
    todo, seen = list(selected), set()
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(INCLUDES.get(name, ()))
    return [m for m in TOFU_METRICS if m in seen]


def needs_of(metrics: Sequence[str]) -> set[Need]:
    return set().union(*(NEEDS[m] for m in metrics)) if metrics else set()
