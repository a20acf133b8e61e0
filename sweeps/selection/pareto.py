"""Pareto selection over every evaluated (trial, epoch) point: non-dominated set, hypervolume, knee.

    from sweeps.selection.pareto import pareto_front
    res = pareto_front(points, objectives, constraints=spec.constraints, references={"model_utility": 0.62})
    res.front            # non-dominated feasible points, best first on the first objective
    res.excluded         # [(point, reason)]: before unlearning, missing/NaN objective, constraint violated
    res.hypervolume      # in the normalised space (see below)
    res.knee             # the knee point (None when the front is empty)

Objectives are the spec's `sweeps.spec.objectives.Objective`s; every value is mapped to a *minimisation* space by
`Objective.minimised` (log10 when scale is log: forget_quality's p-values span 1e-45..1, values <= 0 cannot be
logged and exclude the point; then negated when the mode is max).

* Non-dominated: a dominates b when a is <= b on every objective and < on at least one (minimisation
  space); computed with `moocore.is_nondominated`. Ties (equal vectors) are all kept.
* Hypervolume: each objective is min-max normalised over the feasible points (0 = best value seen,
  1 = worst; an objective with a single value maps to 0), and the volume dominated by the front up to the
  reference point (1.1, ..., 1.1) is computed exactly by `moocore.hypervolume`. `hypervolume()` itself works
  in any space with any reference point.
* Knee: normalise the front alone (0 best, 1 worst per objective), take the extreme points (the best
  point on each objective) and the hyperplane through them (a line for 2 objectives); the knee is the
  front point farthest from that plane on the side of the ideal point (0, ..., 0). When the extremes do
  not span a plane (fewer than d distinct extremes) or no point lies strictly beyond it, the knee is
  the point nearest (Euclidean) to the ideal point. Ties go to the point nearer the ideal, then to the one
  first in the front's fixed order (objective vector, then the trial:epoch label), so two identical sweeps
  pick the same knee whatever order their points arrived in. A single objective's knee is its best point.
  With `requirements` (the spec's `select.require`, e.g. forget_quality >= 0.05), the knee is that of the
  front points meeting them all (normalised among themselves); when none does, of the whole front.
  With `first` (the spec's `select.first`, MUSE's checkpoint rule), only each trial's first evaluation point
  (lowest epoch) that meets those conditions is in the knee's pool (and must meet `requirements` too).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from sweeps.recording.results import Point, finite

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
    requirements: list[str] = field(default_factory=list)  # the spec's select.require, as written
    meets: list[bool] = field(default_factory=list)  # per front point: meets every requirement

    def excluded_counts(self) -> dict[str, int]:
        """How many points were left out, by kind of reason."""
        out: dict[str, int] = {}
        for _, reason in self.excluded:
            key = reason.split(":")[0]
            out[key] = out.get(key, 0) + 1
        return out


# --------------------------------------------------------------------------------------------------
# vectors, dominance, hypervolume (moocore)


def objective_vector(point: Point, objectives: Sequence[Any]) -> tuple[list[float] | None, str | None]:
    """The point's minimisation-space vector (`Objective.minimised`), or (None, reason) when an objective is
    missing or cannot be put on its scale."""
    vec = []
    for obj in objectives:
        v = obj.minimised(point.metrics)
        if v is None:
            return None, f"missing objective: {obj.name} is {point.metrics.get(obj.name)!r}"
        vec.append(v)
    return vec, None


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """a dominates b (minimisation): no worse anywhere, strictly better somewhere."""
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def non_dominated(vectors: Sequence[Sequence[float]]) -> list[int]:
    """Indices of the non-dominated vectors (minimisation; equal vectors are all kept), in input order."""
    import moocore

    if not len(vectors):
        return []
    mask = moocore.is_nondominated(np.asarray(vectors, dtype=float), keep_weakly=True)
    return [int(i) for i in np.flatnonzero(mask)]


def hypervolume(vectors: Iterable[Sequence[float]], reference: Sequence[float]) -> float:
    """The volume dominated by ``vectors`` and bounded by ``reference`` (minimisation space; moocore's exact
    algorithm). Points not strictly better than the reference in every coordinate add nothing."""
    import moocore

    pts = [list(v) for v in vectors if all(x < r for x, r in zip(v, reference))]
    if not pts:
        return 0.0
    return float(moocore.hypervolume(np.asarray(pts, dtype=float), ref=np.asarray(reference, dtype=float)))


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
                 include_epoch0: bool = False, requirements: Sequence[Any] = (),
                 first: Sequence[Any] = ()) -> ParetoResult:
    """Feasible non-dominated points, hypervolume and knee (see the module docstring).

    ``references``: role ("target" / "retain") -> metrics, for constraints relative to a reference model.
    A constraint whose reference is unknown is not applied and is listed in ``unchecked_constraints``.
    ``requirements`` (the spec's `select.require`) choose the pool of the knee, not the front; ``first`` (the
    spec's `select.first`) keeps in that pool only each trial's first point meeting its conditions.
    Epoch-0 points (before unlearning) are excluded unless ``include_epoch0``."""
    refs = references or {}
    res = ParetoResult(front=[], objectives=list(objectives), requirements=[str(r) for r in requirements])
    if first:
        res.requirements.append("first point of its trial with " + " and ".join(str(c) for c in first))
    active = _with_references(constraints, refs, res.unchecked_constraints)
    required = _with_references(requirements, refs, res.unchecked_constraints)
    firsts = first_points(points, first, refs, res.unchecked_constraints, include_epoch0) if first else None
    feasible, vectors = [], []
    for p in points:
        if p.epoch == 0 and not include_epoch0:
            res.excluded.append((p, "before unlearning: epoch 0 is the unmodified model"))
            continue
        vec, why = objective_vector(p, objectives)
        if vec is None:
            res.excluded.append((p, why or "missing objective"))
            continue
        broken = _first_broken(p, active)
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
    # the front in a fixed order (objective vector, then trial:epoch label), whatever order the points came in,
    # so the knee's tie-break (nearer the ideal, then the earlier in this order) is the same in every run
    order = sorted(idx, key=lambda i: (vectors[i], feasible[i].label))
    res.front = [feasible[i] for i in order]
    res.meets = [_first_broken(p, required) is None and (firsts is None or p.key in firsts) for p in res.front]
    # the knee of the front points that meet select.require (of the whole front when none does)
    pool = [j for j, ok in enumerate(res.meets) if ok] or list(range(len(order)))
    k = knee_index([vectors[order[j]] for j in pool])
    res.knee = res.front[pool[k]] if k is not None else None
    return res


def first_points(points: Sequence[Point], conditions: Sequence[Any],
                 refs: Mapping[str, Mapping[str, float | None]] | None = None, unchecked: list[str] | None = None,
                 include_epoch0: bool = False) -> set[tuple[str, int | float]]:
    """MUSE's checkpoint rule: the keys (trial, epoch) of each trial's first point (lowest epoch; epoch 0 only with
    ``include_epoch0``) that meets every condition (e.g. forget_knowmem_ROUGE <= 1.0 * retain). A condition whose
    reference is unknown is noted in ``unchecked`` and not applied."""
    active = _with_references(conditions, refs or {}, unchecked if unchecked is not None else [])
    best: dict[str, Point] = {}
    for p in points:
        if (p.epoch == 0 and not include_epoch0) or _first_broken(p, active) is not None:
            continue
        if p.trial_id not in best or p.epoch < best[p.trial_id].epoch:
            best[p.trial_id] = p
    return {p.key for p in best.values()}


def _with_references(conditions: Sequence[Any], refs: Mapping[str, Mapping[str, float | None]],
                     unchecked: list[str]) -> list[tuple[Any, float | None]]:
    """(condition, its reference value) for each condition whose reference is known; the others are noted."""
    out = []
    for con in conditions:
        ref_value = None
        if getattr(con, "relative_to", None):
            ref_value = refs.get(con.relative_to, {}).get(con.metric)
            if not finite(ref_value):
                unchecked.append(f"{con} (no {con.relative_to} value of {con.metric})")
                continue
        out.append((con, ref_value))
    return out


def _first_broken(point: Point, conditions: Sequence[tuple[Any, float | None]]) -> str | None:
    """Why the point fails the first condition it fails (None when it meets them all)."""
    for con, ref_value in conditions:
        v = point.metrics.get(con.metric)
        if not finite(v):
            return f"constraint: {con.metric} is {v!r}"
        if not con.satisfied(float(v), ref_value):
            return f"constraint: {con} fails ({con.metric}={v:.4g}, limit {con.threshold(ref_value):.4g})"
    return None


def fronts_by_model(results, objectives: Sequence[Any], constraints: Sequence[Any] = (),
                    requirements: Sequence[Any] = (), first: Sequence[Any] = ()) -> dict[str, ParetoResult]:
    """One Pareto selection per model of a sweep's `Results` (variants of a model share the front);
    reference values come from `Results.reference` (the target's epoch-0 evaluation by default)."""
    models = list(dict.fromkeys(p.model for p in results.points))
    out = {}
    for model in models:
        pts = [p for p in results.points if p.model == model]
        refs = {role: results.reference(model, role) for role in ("target", "retain")}
        out[model] = pareto_front(pts, objectives, constraints, refs, requirements=requirements, first=first)
    return out


def sweep_fronts(spec: Any, results) -> dict[str, ParetoResult]:
    """The fronts of a sweep as its spec defines them (objectives, constraints, select.require, select.first)."""
    return fronts_by_model(results, spec.objectives, spec.constraints, spec.select.require,
                           getattr(spec.select, "first", ()))
