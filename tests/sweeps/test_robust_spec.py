"""Robustness metrics (worst case over question variants, after the relearning attack) as sweep objectives and
constraints: accepted like forget_quality, refused in one line when not evaluated or mis-set.

    .venv/bin/python -m pytest tests/sweeps/test_robust_spec.py -q
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sweeps.spec import parse_spec
from unlearning.errors import ConfigError

METRICS = ["forget_quality", "model_utility", "forget_Q_A_ROUGE_worst", "forget_Q_A_ROUGE_worst_relearn"]


def robust_spec(tmp_path: Path, **over) -> dict:
    spec = {
        "name": "robust", "models": ["tofu-mini/target"], "method": {"name": "NPO"},
        "data": {"source": "tofu-mini", "forget_split": "forget10"},
        "search_space": {"lr": {"low": 5e-4, "high": 2e-3, "log": True}},
        "eval": {"every": 3, "settings": {"metrics": METRICS, "robustness": {"relearn": {"steps": 10, "rows": 20}}}},
        "objectives": [{"name": "forget_quality", "mode": "max", "scale": "log"},
                       {"name": "forget_Q_A_ROUGE_worst_relearn", "mode": "min"}],
        "constraints": ["model_utility >= 0.9 * target", "forget_Q_A_ROUGE_worst <= 0.5 * target"],
        "storage": str(tmp_path / "runs"),
    }
    spec.update(over)
    return spec


def test_robust_metrics_are_objectives_and_constraints(tmp_path):
    spec = parse_spec(robust_spec(tmp_path))
    assert [o.name for o in spec.objectives] == ["forget_quality", "forget_Q_A_ROUGE_worst_relearn"]
    settings = spec.searches()[0].base["eval"]["settings"]
    assert settings["robustness"]["relearn"]["steps"] == 10 and settings["metrics"] == METRICS


def test_a_robust_objective_must_be_evaluated(tmp_path):
    data = robust_spec(tmp_path)
    data["eval"]["settings"]["metrics"] = ["forget_quality", "model_utility", "forget_Q_A_ROUGE_worst"]
    with pytest.raises(ConfigError) as err:
        parse_spec(data)
    assert "eval.settings.metrics" in str(err.value) and "add 'forget_Q_A_ROUGE_worst_relearn'" in str(err.value)


@pytest.mark.parametrize("relearn, field, words", [
    ({"steps": 100000}, "eval.settings.robustness.relearn.steps", "at most 1000"),
    ({"lr": -1}, "eval.settings.robustness.relearn.lr", "greater than 0"),
    ({"every": 0}, "eval.settings.robustness.relearn.every", "greater than or equal to 1"),
    ({"subset": 3}, "eval.settings.robustness.relearn.subset", "unknown key"),
])
def test_the_attacks_cost_is_bounded_in_the_spec(tmp_path, relearn, field, words):
    data = robust_spec(tmp_path)
    data["eval"]["settings"]["robustness"] = {"relearn": relearn}
    with pytest.raises(ConfigError) as err:
        parse_spec(data)
    msg = str(err.value)
    assert f"'{field}'" in msg and words in msg and "\n" not in msg


def test_unknown_robust_name_gets_a_suggestion(tmp_path):
    data = robust_spec(tmp_path, objectives=[{"name": "forget_Q_A_ROUGE_worst_relearned", "mode": "min"}])
    with pytest.raises(ConfigError, match="did you mean 'forget_Q_A_ROUGE_worst_relearn'"):
        parse_spec(data)
