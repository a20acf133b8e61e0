"""MO-ASHA's rung ranking on its own (`sweeps.search.scheduling.moasha`): non-dominated sorting with mixed modes
against a brute-force peeling, crowding-distance ties, infeasible and missing results last, and the promotion
quota on ranks. The promotion rule, state and real Ray Tune runs: tests/sweeps/test_moasha.py.

    .venv/bin/python -m pytest tests/sweeps/test_moasha_ranking.py -q          # no Ray (about 2 s)
"""

from __future__ import annotations

import itertools
import math
import random

import numpy as np
import pytest

from sweeps.search.scheduling.moasha import (FEASIBLE, INFEASIBLE, MISSING, Evaluation, crowding_distance, evaluate,
                                             promotes, rank_keys, rank_order, rank_results)


def gibberish_limit(result) -> list[float]:
    """The constraint of these tests: gibberish_rate <= 0.2 (a missing rate violates)."""
    return [result.get("gibberish_rate", 1.0) - 0.2]

def brute_force_fronts(rows: list[tuple[float, ...]], modes: list[str]) -> list[int]:
    """Front index of each row by peeling non-dominated sets, straight from the definition."""
    def dominates(a, b):
        better_eq = all((x >= y) if m == "max" else (x <= y) for x, y, m in zip(a, b, modes))
        return better_eq and any((x > y) if m == "max" else (x < y) for x, y, m in zip(a, b, modes))

    front_of, remaining, front = [None] * len(rows), set(range(len(rows))), 0
    while remaining:
        layer = {i for i in remaining if not any(dominates(rows[j], rows[i]) for j in remaining)}
        for i in layer:
            front_of[i] = front
        remaining -= layer
        front += 1
    return front_of


def test_non_dominated_order_with_mixed_modes():
    objectives = [("fq", "max"), ("gib", "min")]
    results = [{"fq": -3, "gib": 0.3}, {"fq": 0, "gib": 0.1}, {"fq": -2, "gib": 0.2}, {"fq": -1, "gib": 0.05}]
    keys = rank_keys([evaluate(r, objectives) for r in results])
    assert [k[:2] for k in keys] == [(FEASIBLE, 2.0), (FEASIBLE, 0.0), (FEASIBLE, 1.0), (FEASIBLE, 0.0)]
    assert rank_results(results, objectives)[2:] == [2, 0]
    # the modes matter: maximising gibberish turns the order around on that axis
    flipped = rank_keys([evaluate(r, [("fq", "max"), ("gib", "max")]) for r in results])
    assert flipped[0][1] == 0.0 and flipped[3][1] == 1.0


def test_front_numbers_match_brute_force_on_random_points_with_ties():
    rng = random.Random(7)
    modes = ["max", "min", "max"]
    objectives = [(f"m{i}", mode) for i, mode in enumerate(modes)]
    for _ in range(30):
        rows = [tuple(float(rng.randint(0, 4)) for _ in modes) for _ in range(rng.randint(1, 25))]
        keys = rank_keys([evaluate(dict(zip(("m0", "m1", "m2"), row)), objectives) for row in rows])
        assert [int(k[1]) for k in keys] == brute_force_fronts(rows, modes)
        for i, j in itertools.combinations(range(len(rows)), 2):
            if rows[i] == rows[j]:
                assert keys[i] == keys[j], "duplicates tie"


def test_crowding_distance_breaks_ties_within_a_front():
    # one front (both minimised): the extremes tie at infinity, then the larger cuboid first:
    # (2,5): (10-1)/10 + (8-0)/10 = 1.7 > (1,8): (2-0)/10 + (10-5)/10 = 0.7
    points = [(1, 8), (10, 0), (2, 5), (0, 10)]
    evaluations = [Evaluation(p, 0.0) for p in points]
    keys = rank_keys(evaluations)
    assert keys[1] == keys[3] == (FEASIBLE, 0.0, -math.inf)
    assert keys[2] == (FEASIBLE, 0.0, pytest.approx(-1.7)) and keys[0] == (FEASIBLE, 0.0, pytest.approx(-0.7))
    assert rank_order(evaluations) == [1, 3, 2, 0]
    # order-independent, and duplicates share their distance
    shuffled = [points[i] for i in (2, 0, 3, 1)] + [(2, 5)]
    distances = crowding_distance(np.array(shuffled, dtype=float))
    assert list(distances) == pytest.approx([1.7, 0.7, math.inf, math.inf, 1.7])
    assert list(crowding_distance(np.array([[1.0, 2.0], [2.0, 1.0]]))) == [math.inf, math.inf]


def test_infeasible_ranks_after_every_feasible_result_even_when_it_dominates():
    objectives = [("fq", "max"), ("model_utility", "max")]
    results = [
        {"fq": 0.0, "model_utility": 0.9, "gibberish_rate": 0.5},     # dominates all, violates by 0.3
        {"fq": -9.0, "model_utility": 0.1, "gibberish_rate": 0.0},    # feasible, dominated by everything
        {"fq": 0.0, "model_utility": 0.9, "gibberish_rate": 0.25},    # same objectives, violates by 0.05
        {"fq": -5.0, "model_utility": 0.5, "gibberish_rate": 0.1},    # feasible
        {"fq": 0.0, "model_utility": 0.9, "gibberish_rate": float("nan")},  # NaN constraint: infinite violation
        {"fq": 0.0, "model_utility": 0.9},                            # no rate: violates by 0.8
    ]
    assert rank_results(results, objectives, gibberish_limit) == [3, 1, 2, 0, 5, 4]
    keys = rank_keys([evaluate(r, objectives, gibberish_limit) for r in results])
    assert keys[2] == (INFEASIBLE, pytest.approx(0.05), 0.0) and keys[4] == (INFEASIBLE, math.inf, 0.0)
    # an infeasible result loses the tie against a feasible one with the same objectives
    tie = [dict(results[0]), {**results[0], "gibberish_rate": 0.1}]
    assert rank_results(tie, objectives, gibberish_limit) == [1, 0]


@pytest.mark.parametrize("bad", [None, float("nan"), float("inf"), "0.5", True, "missing"])
def test_missing_or_non_finite_objective_ranks_last(bad):
    objectives = [("fq", "max"), ("model_utility", "max")]
    broken = {"fq": 0.0, "gibberish_rate": 0.0}
    if bad != "missing":
        broken["model_utility"] = bad
    results = [broken, {"fq": -9.0, "model_utility": 0.1, "gibberish_rate": 0.9},
               {"fq": -9.0, "model_utility": 0.1, "gibberish_rate": 0.0}]
    assert evaluate(broken, objectives).vector is None
    assert rank_results(results, objectives, gibberish_limit) == [2, 1, 0]
    assert rank_keys([evaluate(r, objectives, gibberish_limit) for r in results])[0] == (MISSING, 0.0, 0.0)


def test_promotes_is_asha_quota_on_ranks():
    # m recorded keys, k of them strictly ahead: continue iff k <= floor((m - 1) / eta)
    ahead, behind, same = (0, 0.0, -5.0), (0, 1.0, 0.0), (0, 0.5, 0.0)
    assert promotes([], same, 3)
    assert promotes([same], same, 3) and not promotes([ahead], same, 3)         # ties continue
    assert not promotes([ahead, behind, behind], same, 3)                          # m=3: floor(2/3)=0
    assert promotes([ahead, behind, behind, behind], same, 3)                      # m=4: floor(3/3)=1
    assert not promotes([ahead, ahead, behind, behind, behind, behind, behind], same, 3.5)  # floor(6/3.5)=1
    assert promotes([ahead, ahead], same, 3, min_samples_required=3)               # fewer than 3 recorded


