"""Objectives and constraints: scales, directions, violations, and the point of a trial the searcher is told.

    .venv/bin/python -m pytest tests/sweeps/test_objectives.py -q
"""

from __future__ import annotations

import math

import pytest

from sweeps.spec.objectives import Constraint, Objective, best_point

OBJS = [Objective(name="forget_quality", mode="max", scale="log"), Objective(name="model_utility", mode="max"),
        Objective(name="gibberish_rate", mode="min")]
MU = Constraint.model_validate("model_utility >= 0.9 * target")
REFS = {"model_utility": 0.8}  # limit 0.72


def p(fq, mu, gib=0.0):
    return {"forget_quality": fq, "model_utility": mu, "gibberish_rate": gib}


def test_scales_directions_and_violations():
    fq = OBJS[0]
    assert fq.searched({"forget_quality": 1e-3}) == pytest.approx(-3.0)
    assert fq.minimised({"forget_quality": 1e-3}) == pytest.approx(3.0)
    assert fq.searched({"forget_quality": 0.0}) is None and fq.searched({"forget_quality": math.nan}) is None
    assert OBJS[2].minimised({"gibberish_rate": 0.25}) == 0.25
    assert MU.violation(p(0.1, 0.70), REFS) == pytest.approx(0.02) and MU.violation(p(0.1, 0.75), REFS) < 0
    assert MU.violation({"model_utility": None}, REFS) == 1.0 and MU.violation(p(0.1, 0.75), {}) == 1.0


def test_a_trial_is_worth_its_best_feasible_point_not_its_last():
    # forgetting rises epoch by epoch while utility falls through the constraint at the end
    path = [p(1e-10, 0.82), p(1e-4, 0.79), p(0.2, 0.75), p(0.6, 0.70), p(0.9, 0.50, 0.3)]
    assert best_point(path, OBJS, [MU], REFS) is path[2]
    # without the constraint the furthest point wins; equal first objectives fall to the next ones
    assert best_point(path, OBJS, [], REFS) is path[4]
    tie = [p(0.2, 0.74), p(0.2, 0.76), p(0.2, 0.76, 0.1)]
    assert best_point(tie, OBJS, [MU], REFS) is tie[1]
    # nothing feasible: the least violation (the searcher sees an infeasible trial), later points win ties
    bad = [p(0.5, 0.60), p(0.3, 0.70), p(0.4, 0.70)]
    assert best_point(bad, OBJS, [MU], REFS) is bad[2]
    # points without every objective are never chosen; none usable -> None
    holes = [p(None, 0.8), p(0.0, 0.8), p(1e-5, 0.8)]
    assert best_point(holes, OBJS, [MU], REFS) is holes[2]
    assert best_point(holes[:2], OBJS, [MU], REFS) is None
