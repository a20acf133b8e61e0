"""Pareto selection: the front against a brute-force O(n^2) check, exact hypervolumes computed by hand and
by inclusion-exclusion, the knee of hand-made fronts, constraints and epoch-0 exclusion.

    .venv/bin/python -m pytest tests/sweeps/test_pareto.py -q
"""

from __future__ import annotations

import itertools
import math
import random

import pytest

from sweeps.selection.pareto import fronts_by_model, hypervolume, knee_index, pareto_front
from sweeps.recording.results import Point, Results
from sweeps.spec.objectives import Constraint, Objective


def Obj(name: str, mode: str = "max", scale: str = "linear") -> Objective:  # noqa: N802 - reads like the class
    return Objective(name=name, mode=mode, scale=scale)


def pt(i, values: dict, epoch: int = 1, model: str = "m") -> Point:
    return Point(trial_id=f"t{i}", epoch=epoch, metrics=dict(values), model=model)


def brute_force_front(points, objectives) -> set:
    """Non-dominated set by the definition, in the raw values (max: larger is better)."""
    def better_eq(a, b, o):
        return a >= b if o.mode == "max" else a <= b

    def strictly(a, b, o):
        return a > b if o.mode == "max" else a < b

    keep = set()
    for p in points:
        dominated = False
        for q in points:
            if q is p:
                continue
            if all(better_eq(q.metrics[o.name], p.metrics[o.name], o) for o in objectives) and \
                    any(strictly(q.metrics[o.name], p.metrics[o.name], o) for o in objectives):
                dominated = True
                break
        if not dominated:
            keep.add(p.key)
    return keep


@pytest.mark.parametrize("dims", [2, 3, 4])
def test_front_equals_brute_force_on_random_sets(dims):
    rng = random.Random(1234 + dims)
    modes = ["max", "min", "max", "min"][:dims]
    objectives = [Obj(f"o{k}", modes[k], "log" if k == 0 else "linear") for k in range(dims)]
    for trial in range(150):
        n = rng.randint(1, 40)
        coarse = trial % 3 == 0  # few distinct values: many ties and duplicates
        points = []
        for i in range(n):
            vals = {o.name: (rng.randint(1, 4) if coarse else rng.uniform(1e-6, 1.0)) for o in objectives}
            points.append(pt(i, vals))
        res = pareto_front(points, objectives)
        assert {p.key for p in res.front} == brute_force_front(points, objectives)
        assert res.knee is not None and res.knee.key in {p.key for p in res.front}


def union_volume(boxes_lo, ref) -> float:
    """Volume of the union of boxes [lo, ref] by inclusion-exclusion (independent of the slicing code)."""
    total = 0.0
    for r in range(1, len(boxes_lo) + 1):
        for subset in itertools.combinations(boxes_lo, r):
            corner = [max(c) for c in zip(*subset)]
            vol = math.prod(max(0.0, R - c) for R, c in zip(ref, corner))
            total += (-1) ** (r + 1) * vol
    return total


def test_hypervolume_by_hand():
    assert hypervolume([(1, 3), (2, 2), (3, 1)], (4, 4)) == pytest.approx(3 + 2 + 1)
    assert hypervolume([(1, 3), (2, 2), (3, 1), (3, 3)], (4, 4)) == pytest.approx(6)  # dominated adds nothing
    assert hypervolume([(0, 0, 0)], (1, 2, 3)) == pytest.approx(6)
    # two boxes 2x2x1 and 1x1x2 overlapping in a unit cube: 4 + 2 - 1
    assert hypervolume([(0, 0, 1), (1, 1, 0)], (2, 2, 2)) == pytest.approx(5)
    assert hypervolume([(5, 5)], (4, 4)) == 0.0 and hypervolume([], (1, 1)) == 0.0
    assert hypervolume([(0.25,)], (1.0,)) == pytest.approx(0.75)


@pytest.mark.parametrize("dims", [2, 3, 4])
def test_hypervolume_matches_inclusion_exclusion(dims):
    rng = random.Random(7 + dims)
    for _ in range(60):
        pts = [tuple(rng.choice([rng.random(), round(rng.random(), 1)]) for _ in range(dims))
               for _ in range(rng.randint(1, 7))]
        ref = [1.0] * dims
        assert hypervolume(pts, ref) == pytest.approx(union_volume(pts, ref), abs=1e-12)


def test_hypervolume_of_a_selection_is_normalised():
    # min/min objectives; normalised over the feasible points = the values themselves here
    objs = [Obj("a", "min"), Obj("b", "min")]
    res = pareto_front([pt(0, {"a": 0, "b": 1}), pt(1, {"a": 1, "b": 0}), pt(2, {"a": 1, "b": 1})], objs)
    # [0,1.1]x[1,1.1] + [1,1.1]x[0,1.1] - [1,1.1]^2 = 0.11 + 0.11 - 0.01
    assert res.hypervolume == pytest.approx(0.21)
    # the same geometry with maximised, scaled objectives gives the same normalised hypervolume
    objs = [Obj("a", "max"), Obj("b", "max")]
    res = pareto_front([pt(0, {"a": 10, "b": 0}), pt(1, {"a": 0, "b": 10}), pt(2, {"a": 0, "b": 0})], objs)
    assert res.hypervolume == pytest.approx(0.21)


def test_knee_of_hand_made_fronts():
    # 2-D, minimise both, already in [0, 1]: line x + y = 1; distances (1 - x - y)/sqrt(2): 0.5 and 0.35
    front = [(0.0, 1.0), (0.2, 0.3), (0.5, 0.15), (1.0, 0.0)]
    assert knee_index(front) == 1
    # the same front with a scaled second objective: min-max normalisation makes it the same knee
    assert knee_index([(x, 100 * y) for x, y in front]) == 1
    # 3-D: extremes (0,1,1), (1,0,1), (1,1,0) -> plane x + y + z = 2; (0.3,0.3,0.3) is farthest
    front3 = [(0, 1, 1), (1, 0, 1), (1, 1, 0), (0.5, 0.5, 0.2), (0.3, 0.3, 0.3)]
    assert knee_index(front3) == 4
    # degenerate fronts: one point; two points normalise to (0, 1) and (1, 0): both on the line, equally
    # near the ideal point -> the first; a 3-D front with only two distinct extremes -> nearest to the ideal
    assert knee_index([(3.0, 4.0)]) == 0
    assert knee_index([(0.0, 1.0), (1.0, 0.2)]) == 0
    assert knee_index([(0, 1, 1), (1, 0, 0), (0.45, 0.45, 0.45), (0.4, 0.8, 0.0)]) == 2
    # a single objective: its best point
    assert knee_index([(3.0,), (1.0,), (2.0,)]) == 1


def test_knee_through_the_selection_uses_directions_and_log_scale():
    objs = [Obj("fq", "max", "log"), Obj("mu", "max")]
    # log10 fq: -10, -4, -1, 0 -> normalised (1 - ...) best-is-0: 1, 0.4, 0.1, 0 ; mu: 1, 0.9, 0.5, 0
    pts = [pt(0, {"fq": 1e-10, "mu": 1.0}), pt(1, {"fq": 1e-4, "mu": 0.9}),
           pt(2, {"fq": 1e-1, "mu": 0.5}), pt(3, {"fq": 1.0, "mu": 0.0})]
    res = pareto_front(pts, objs)
    assert len(res.front) == 4
    # log scale, normalised minimisation coordinates x = -log10(fq)/10, y = 1 - mu:
    # t0 (1, 0), t1 (0.4, 0.1), t2 (0.1, 0.5), t3 (0, 1); extremes t3, t0 -> line x + y = 1;
    # 1 - x - y: t1 0.5, t2 0.4 => knee t1
    assert res.knee.trial_id == "t1"
    # linear scale: x = 1 - fq: t0 1, t1 0.9999, t2 0.9, t3 0; 1 - x - y: t1 -0.0999, t2 -0.4: no point lies
    # beyond the line, so the knee is the point nearest the ideal: t0 and t3 tie at distance 1
    res_lin = pareto_front(pts, [Obj("fq", "max"), Obj("mu", "max")])
    assert res_lin.knee.trial_id in {"t0", "t3"}


def test_constraints_exclusions_and_references():
    objs = [Obj("forget_quality", "max", "log"), Obj("model_utility", "max")]
    con = Constraint.model_validate("model_utility >= 0.9 * target")
    points = [
        pt(0, {"forget_quality": 1e-8, "model_utility": 0.60}, epoch=0),   # before unlearning: the reference
        pt(1, {"forget_quality": 0.5, "model_utility": 0.50}),             # 0.50 < 0.54: violates
        pt(2, {"forget_quality": 0.1, "model_utility": 0.58}),
        pt(3, {"forget_quality": 0.01, "model_utility": 0.59}),
        pt(4, {"forget_quality": 0.0, "model_utility": 0.7}),              # log of 0: left out
        pt(5, {"forget_quality": None, "model_utility": 0.7}),             # NaN/None: left out
        pt(6, {"forget_quality": 0.001, "model_utility": 0.55}),           # feasible but dominated by t2
    ]
    res = fronts_by_model(Results(points=points), objs, [con])["m"]
    assert [p.trial_id for p in res.front] == ["t2", "t3"]
    assert {p.trial_id for p in res.feasible} == {"t2", "t3", "t6"}
    reasons = {p.trial_id: why for p, why in res.excluded}
    assert reasons["t0"].startswith("before unlearning")
    assert reasons["t1"].startswith("constraint") and "limit 0.54" in reasons["t1"]
    assert reasons["t4"].startswith("missing objective") and reasons["t5"].startswith("missing objective")
    assert res.excluded_counts() == {"before unlearning": 1, "constraint": 1, "missing objective": 2}
    # without an epoch-0 point nor a reference record the relative constraint cannot be applied
    res = fronts_by_model(Results(points=points[1:]), objs, [con])["m"]
    assert res.unchecked_constraints and "t1" in {p.trial_id for p in res.front}
    # an explicit reference record wins over epoch 0
    results = Results(points=points, references={("m", "target"): {"model_utility": 0.5}})
    res = fronts_by_model(results, objs, [con])["m"]
    assert "t1" in {p.trial_id for p in res.front}


def test_fronts_are_per_model():
    objs = [Obj("a"), Obj("b")]
    points = [pt(0, {"a": 1, "b": 0}, model="x"), pt(1, {"a": 0, "b": 1}, model="x"),
              pt(2, {"a": 2, "b": 2}, model="y")]
    fronts = fronts_by_model(Results(points=points), objs)
    assert [p.trial_id for p in fronts["x"].front] == ["t0", "t1"]
    assert [p.trial_id for p in fronts["y"].front] == ["t2"]


def test_select_require_chooses_the_knee_among_the_points_that_meet_it():
    """The knee of the front's points meeting select.require; of the whole front when none does. The front
    itself does not change."""
    objs = [Obj("forget_quality", scale="log"), Obj("model_utility")]
    points = [pt(1, {"forget_quality": 1e-11, "model_utility": 0.83}),
              pt(2, {"forget_quality": 1e-7, "model_utility": 0.825}),
              pt(3, {"forget_quality": 1e-4, "model_utility": 0.80}),
              pt(4, {"forget_quality": 0.01, "model_utility": 0.76}),
              pt(5, {"forget_quality": 0.04, "model_utility": 0.75}),
              pt(6, {"forget_quality": 0.1, "model_utility": 0.735}),
              pt(7, {"forget_quality": 0.3, "model_utility": 0.72}),
              pt(8, {"forget_quality": 0.5, "model_utility": 0.60})]
    whole = pareto_front(points, objs)
    assert len(whole.front) == 8 and whole.knee.metrics["forget_quality"] < 0.05  # a point that did not forget
    req = [Constraint.model_validate("forget_quality >= 0.05")]
    chosen = pareto_front(points, objs, requirements=req)
    assert [p.trial_id for p in chosen.front] == [p.trial_id for p in whole.front]
    assert chosen.meets == [p.metrics["forget_quality"] >= 0.05 for p in chosen.front]
    pool = [p for p, ok in zip(chosen.front, chosen.meets) if ok]
    assert len(pool) == 3
    expected = pool[knee_index([[-math.log10(p.metrics["forget_quality"]), -p.metrics["model_utility"]]
                                for p in pool])]
    assert chosen.knee.trial_id == expected.trial_id == "t7" and chosen.requirements == ["forget_quality >= 0.05"]
    # nobody meets it: the knee of the whole front
    none_meet = pareto_front(points, objs, requirements=[Constraint.model_validate("forget_quality >= 0.9")])
    assert not any(none_meet.meets) and none_meet.knee.trial_id == whole.knee.trial_id
