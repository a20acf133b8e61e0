"""TOFU headline metrics: forget_quality, forget_truth_ratio and model_utility (docs/methods.md,
"TOFU headline metrics").

    fq = forget_quality(model_tr, retain_tr)       # KS-test p-value vs the retain model; None without one
    ftr = forget_truth_ratio(model_tr)             # closer_to_1_better aggregate of the same per-item tr
    mu = model_utility({"retain_Q_A_Prob": ..., ...all 9 MODEL_UTILITY_INPUTS})   # scipy hmean

`model_tr` / `retain_tr` are per-item truth ratios (tr = P_wrong / P_correct) on the same forget
split, e.g. from `truth_ratio.truth_ratios` and `reference_logs.EvalLog.scores("forget_truth_ratio")`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from scipy.stats import hmean, ks_2samp

from unlearning.errors import DataError
from unlearning.metrics.truth_ratio import closer_to_1_better

MODEL_UTILITY_INPUTS: tuple[str, ...] = (
    "retain_Q_A_Prob",
    "retain_Q_A_ROUGE",
    "retain_Truth_Ratio",
    "ra_Q_A_Prob_normalised",
    "ra_Q_A_ROUGE",
    "ra_Truth_Ratio",
    "wf_Q_A_Prob_normalised",
    "wf_Q_A_ROUGE",
    "wf_Truth_Ratio",
)


def forget_quality(
    model_truth_ratios: Sequence[float] | np.ndarray,
    reference_truth_ratios: Sequence[float] | np.ndarray | None,
) -> float | None:
    """p-value of the two-sided two-sample KS test (scipy default method: exact at TOFU sizes).

    Higher is better (1 = indistinguishable from the retain model). None when there is no reference
    (OU logs `forget_quality: null` then).
    """
    if reference_truth_ratios is None or len(reference_truth_ratios) == 0:
        return None
    model = np.asarray(model_truth_ratios, dtype=np.float64)
    if model.size == 0:
        raise ValueError("forget_quality: the evaluated model has no per-item truth ratios")
    return float(ks_2samp(model, np.asarray(reference_truth_ratios, dtype=np.float64)).pvalue)


def forget_truth_ratio(model_truth_ratios: Sequence[float] | np.ndarray) -> float:
    """TOFU forget_truth_ratio: mean of min(tr, 1/tr) over the forget split."""
    return closer_to_1_better(model_truth_ratios)


def model_utility(inputs: Mapping[str, float | None], where: str = "model_utility inputs") -> float:
    """Harmonic mean (scipy.stats.hmean) of the 9 MODEL_UTILITY_INPUTS; other keys are ignored.

    Raises DataError naming `where` and the missing / invalid input.
    """
    missing = [name for name in MODEL_UTILITY_INPUTS if name not in inputs]
    if missing:
        raise DataError(
            where,
            field=missing[0],
            value=f"missing {len(missing)} of 9: {', '.join(missing)}",
            fix=f"model_utility needs all of {', '.join(MODEL_UTILITY_INPUTS)}",
        )
    values: list[float] = []
    for name in MODEL_UTILITY_INPUTS:
        value = inputs[name]
        number = float(value) if isinstance(value, (int, float, np.floating)) else math.nan
        if not math.isfinite(number) or number < 0:
            raise DataError(where, field=name, value=value, fix="each model_utility input must be a finite number >= 0")
        values.append(number)
    return float(hmean(values))
