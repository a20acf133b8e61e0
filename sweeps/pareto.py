"""Pareto selection over every evaluated (trial, epoch) point: non-dominated set, hypervolume, knee.

    from sweeps.pareto import pareto_front
    res = pareto_front(points, objectives, constraints=spec.constraints, references={"model_utility": 0.62})
    res.front            # non-dominated feasible points, best first on the first objective
    res.excluded         # [(point, reason)]: before unlearning, missing/NaN objective, constraint violated
    res.hypervolume      # in the normalised space (see below)
    res.knee             # the knee point (None when the front is empty)

Objectives are (name, mode max|min, scale linear|log) (the spec's `Objective`s). Every value is first
mapped to a *minimisation* space: log10 when scale is log (forget_quality's p-values span 1e-25..1;
values <= 0 cannot be logged and exclude the point), then negated when the mode is max.

* Non-dominated: a dominates b when a is <= b on every objective and < on at least one (minimisation
  space). Ties (equal vectors) are all kept.
* Hypervolume: each objective is min-max normalised over the feasible points (0 = best value seen,
  1 = worst; an objective with a single value maps to 0), and the volume dominated by the front up to the
  reference point (1.1, ..., 1.1) is computed exactly (`hypervolume`, recursive slicing: exact for any
  number of objectives, fine for the tens-to-hundreds of points of a sweep). `hypervolume()` itself works
  in any space with any reference point.
* Knee: normalise the front alone (0 best, 1 worst per objective), take the extreme points (the best
  point on each objective) and the hyperplane through them (a line for 2 objectives); the knee is the
  front point farthest from that plane on the side of the ideal point (0, ..., 0). When the extremes do
  not span a plane (fewer than d distinct extremes) or no point lies strictly beyond it, the knee is
  the point nearest (Euclidean) to the ideal point. Ties go to the point nearer the ideal, then to the
  earlier one. A single objective's knee is its best point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from sweeps.results import Point, finite

REFERENCE_POINT = 1.1


@dataclass
class ParetoResult:
    front: list[Point]
    excluded: list[tuple[Point, str]] = field(default_factory=list)
    feasible: list[Point] = field(default_factory=list)
    hypervolume: float = 0.0
    knee: Point | None = None
    objectives: list[Any] = field(default_factory=list)
    unchecked_constraints: list[str] = field(default_factory=list)

    def excluded_counts(self) -> dict[str, int]:
        """How many points were left out, by kind of reason."""
        out: dict[str, int] = {}
        for _, reason in self.excluded:
            key = reason.split(":")[0]
            out[key] = out.get(key, 0) + 1
        return out


# --------------------------------------------------------------------------------------------------
# transforms


def transform(value: float, mode: str, scale: str = "linear") -> float:
    """A raw objective value in the minimisation space (log10 first when scale is log, then negate for max)."""
    v = math.log10(value) if scale == "log" else value
    return -v if mode == "max" else v


def objective_vector(point: Point, objectives: Sequence[Any]) -> tuple[list[float] | None, str | None]:
    """The point's minimisation-space vector, or (None, reason) when an objective is missing or invalid."""
    vec = []
    for obj in objectives:
        v = point.metrics.get(obj.name)
        if not finite(v):
            return None, f"missing objective: {obj.name} is {v!r}"
        if getattr(obj, "scale", "linear") == "log" and v <= 0:
            return None, f"missing objective: {obj.name}={v} cannot be put on a log scale"
        vec.append(transform(float(v), obj.mode, getattr(obj, "scale", "linear")))
    return vec, None


# --------------------------------------------------------------------------------------------------
# dominance


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """a dominates b (minimisation): no worse anywhere, strictly better somewhere."""
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def non_dominated(vectors: Sequence[Sequence[float]]) -> list[int]:
    """Indices of the non-dominated vectors (minimisation), in input order.

    Sorted sweep: after sorting lexicographically, a vector can only be dominated by one sorted before it,
    and if it is dominated at all it is dominated by a member of the running front."""
    order = sorted(range(len(vectors)), key=lambda i: tuple(vectors[i]))
    front: list[int] = []
    for i in order:
        if not any(dominates(vectors[j], vectors[i]) for j in front):
            front.append(i)
    return sorted(front)


# --------------------------------------------------------------------------------------------------
# hypervolume


def _hv2(points: list[tuple[float, float]], ref: Sequence[float]) -> float:
    """Exact 2-D hypervolume (minimisation) of points already strictly below ref."""
    pts = sorted(points)
    area, best_y = 0.0, ref[1]
    for i, (x, y) in enumerate(pts):
        if y < best_y:
            area += (ref[0] - x) * (best_y - y)
            best_y = y
    return area


def hypervolume(vectors: Iterable[Sequence[float]], reference: Sequence[float]) -> float:
    """Exact volume dominated by ``vectors`` and bounded by ``reference`` (minimisation space).

    Points not strictly better than the reference in every coordinate add nothing. Recursive slicing on
    the last coordinate, with an exact sweep for 2 dimensions."""
    ref = [float(r) for r in reference]
    pts = [tuple(float(x) for x in v) for v in vectors if all(x < r for x, r in zip(v, ref))]
    if not pts:
        return 0.0
    d = len(ref)
    if d == 1:
        return ref[0] - min(p[0] for p in pts)
    if d == 2:
        return _hv2(pts, ref)
    pts.sort(key=lambda p: p[-1])
    volume = 0.0
    for i, p in enumerate(pts):
        top = pts[i + 1][-1] if i + 1 < len(pts) else ref[-1]
        depth = top - p[-1]
        if depth > 0:
            volume += depth * hypervolume([q[:-1] for q in pts[: i + 1]], ref[:-1])
    return volume


# --------------------------------------------------------------------------------------------------
# knee


def _normalise(mat: np.ndarray) -> np.ndarray:
    lo, hi = mat.min(axis=0), mat.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    return (mat - lo) / span


def knee_index(vectors: Sequence[Sequence[float]]) -> int | None:
    """Index of the knee of a front given in minimisation space (see the module docstring)."""
    if not len(vectors):
        return None
    mat = np.asarray(vectors, dtype=float)
    n, d = mat.shape
    if n == 1:
        return 0
    if d == 1:
        return int(np.argmin(mat[:, 0]))
    norm = _normalise(mat)
    ideal_dist = np.linalg.norm(norm, axis=1)
    nearest = int(np.lexsort((np.arange(n), ideal_dist))[0])
    extremes = np.unique(np.asarray([norm[int(np.argmin(mat[:, k]))] for k in range(d)]), axis=0)
    if len(extremes) < d:
        return nearest
    centre = extremes.mean(axis=0)
    _, s, vt = np.linalg.svd(extremes - centre)
    if len(s) >= d - 1 and s[d - 2] < 1e-12:
        return nearest
    normal = vt[-1]
    if normal @ (np.zeros(d) - centre) < 0:  # orient towards the ideal point
        normal = -normal
    dist = (norm - centre) @ normal
    best = float(dist.max())
    if best <= 1e-12:
        return nearest
    ties = np.flatnonzero(dist >= best - 1e-12)
    return int(min(ties, key=lambda i: (ideal_dist[i], i)))


# --------------------------------------------------------------------------------------------------
# the whole selection


def pareto_front(points: Sequence[Point], objectives: Sequence[Any], constraints: Sequence[Any] = (),
                 references: Mapping[str, Mapping[str, float | None]] | None = None,
                 include_epoch0: bool = False) -> ParetoResult:
    """Feasible non-dominated points, hypervolume and knee (see the module docstring).

    ``references``: role ("target" / "retain") -> metrics, for constraints relative to a reference model.
    A constraint whose reference is unknown is not applied and is listed in ``unchecked_constraints``.
    Epoch-0 points (before unlearning) are excluded unless ``include_epoch0``."""
    refs = references or {}
    res = ParetoResult(front=[], objectives=list(objectives))
    active = []
    for con in constraints:
        ref_value = None
        if getattr(con, "relative_to", None):
            ref_value = refs.get(con.relative_to, {}).get(con.metric)
            if not finite(ref_value):
                res.unchecked_constraints.append(f"{con} (no {con.relative_to} value of {con.metric})")
                continue
        active.append((con, ref_value))
    feasible, vectors = [], []
    for p in points:
        if p.epoch == 0 and not include_epoch0:
            res.excluded.append((p, "before unlearning: epoch 0 is the unmodified model"))
            continue
        vec, why = objective_vector(p, objectives)
        if vec is None:
            res.excluded.append((p, why or "missing objective"))
            continue
        broken = None
        for con, ref_value in active:
            v = p.metrics.get(con.metric)
            if not finite(v):
                broken = f"constraint: {con.metric} is {v!r}"
                break
            if not con.satisfied(float(v), ref_value):
                lim = con.threshold(ref_value)
                broken = f"constraint: {con} fails ({con.metric}={v:.4g}, limit {lim:.4g})"
                break
        if broken:
            res.excluded.append((p, broken))
            continue
        feasible.append(p)
        vectors.append(vec)
    res.feasible = feasible
    if not feasible:
        return res
    idx = non_dominated(vectors)
    mat = np.asarray(vectors, dtype=float)
    norm = _normalise(mat)
    res.hypervolume = hypervolume(norm[idx].tolist(), [REFERENCE_POINT] * mat.shape[1])
    front_vecs = [vectors[i] for i in idx]
    k = knee_index(front_vecs)
    order = sorted(range(len(idx)), key=lambda j: (front_vecs[j], feasible[idx[j]].label))
    res.front = [feasible[idx[j]] for j in order]
    res.knee = feasible[idx[k]] if k is not None else None
    return res


def fronts_by_model(results, objectives: Sequence[Any], constraints: Sequence[Any] = ()) -> dict[str, ParetoResult]:
    """One Pareto selection per model of a sweep's `Results` (variants of a model share the front);
    reference values come from `Results.reference` (the target's epoch-0 evaluation by default)."""
    models = list(dict.fromkeys(p.model for p in results.points))
    out = {}
    for model in models:
        pts = [p for p in results.points if p.model == model]
        refs = {role: results.reference(model, role) for role in ("target", "retain")}
        out[model] = pareto_front(pts, objectives, constraints, refs)
    return out
