"""What the sweep optimises: objectives and constraints, and the one place their scale and direction live.

    obj = Objective(name="forget_quality", mode="max", scale="log")
    obj.searched({"forget_quality": 1e-3})     # -3.0: the value the searcher, the scheduler and the report use
    obj.minimised({"forget_quality": 1e-3})    #  3.0: the same in the minimisation space (Pareto, hypervolume)
    Constraint.model_validate("model_utility >= 0.9 * target").violation({"model_utility": 0.5}, {"model_utility": 0.6})

A log-scaled objective (forget_quality's p-values span 1e-45..1) is searched, ranked and drawn as log10; a value
<= 0 cannot be logged and counts as missing. A missing or non-finite value is None everywhere: the searcher
records the trial FAILED, the scheduler ranks it last, the Pareto selection leaves the point out.
Constraints follow Optuna's convention: a violation <= 0 is satisfied.
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal, Mapping, Sequence

from pydantic import BaseModel, ConfigDict, model_validator

from unlearning.errors import ConfigError


def _number(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
        return None
    return float(x)


class Objective(BaseModel):
    """One objective: a metric, its direction (max | min) and scale (linear | log = log10)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    mode: Literal["max", "min"] = "max"
    scale: Literal["linear", "log"] = "linear"

    def searched(self, metrics: Mapping[str, Any]) -> float | None:
        """The objective on its search scale (log10 for a log objective), None when missing or not loggable."""
        x = _number(metrics.get(self.name))
        if x is None:
            return None
        if self.scale == "log":
            return math.log10(x) if x > 0 else None
        return x

    def minimised(self, metrics: Mapping[str, Any]) -> float | None:
        """The searched value in the minimisation space (negated for a maximised objective)."""
        v = self.searched(metrics)
        return None if v is None else (-v if self.mode == "max" else v)

    @property
    def label(self) -> str:
        return f"{self.name} ({self.mode}{', log' if self.scale == 'log' else ''})"


_CONSTRAINT = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(>=|<=|>|<)\s*([-+0-9.eE]+)\s*(?:\*\s*(target|retain))?\s*$")


class Constraint(BaseModel):
    """metric op value [x reference]: e.g. "model_utility >= 0.9 * target" = at least 90 % of the target
    model's model_utility (the target's value is its epoch-0 evaluation); "gibberish_rate <= 0.2"."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    metric: str
    op: Literal[">=", "<=", ">", "<"]
    value: float
    relative_to: Literal["target", "retain"] | None = None

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, data: Any) -> Any:
        if isinstance(data, str):
            m = _CONSTRAINT.match(data)
            if not m:
                raise ConfigError("constraint", value=data,
                                  fix="write 'METRIC >= NUMBER', 'METRIC <= NUMBER' or 'METRIC >= NUMBER * target' "
                                      "(e.g. 'model_utility >= 0.9 * target')")
            try:
                value = float(m.group(3))
            except ValueError:
                raise ConfigError("constraint", value=data, fix=f"'{m.group(3)}' is not a number") from None
            return {"metric": m.group(1), "op": m.group(2), "value": value, "relative_to": m.group(4)}
        return data

    def __str__(self) -> str:
        rhs = f"{self.value:g}" + (f" * {self.relative_to}" if self.relative_to else "")
        return f"{self.metric} {self.op} {rhs}"

    def threshold(self, reference: float | None) -> float:
        """The absolute bound: value, or value x the reference model's metric."""
        if self.relative_to is None:
            return self.value
        if reference is None:
            raise ConfigError("constraint", field="relative_to", value=self.relative_to,
                              fix=f"no {self.relative_to} value of {self.metric} is known yet")
        return self.value * reference

    def satisfied(self, value: float, reference: float | None = None) -> bool:
        t = self.threshold(reference)
        return {">=": value >= t, "<=": value <= t, ">": value > t, "<": value < t}[self.op]

    def violation(self, metrics: Mapping[str, Any], references: Mapping[str, float] | None = None) -> float:
        """Optuna's convention: <= 0 when satisfied, > 0 by how much it is violated (1.0 when the metric or the
        reference value is unknown)."""
        x = _number(metrics.get(self.metric))
        ref = (references or {}).get(self.metric)
        if x is None or (self.relative_to is not None and ref is None):
            return 1.0
        bound = self.threshold(ref)
        return bound - x if self.op in (">=", ">") else x - bound


def best_point(results: list[Mapping[str, Any]], objectives: list[Objective], constraints: list[Constraint],
               references: Mapping[str, float] | None = None) -> Mapping[str, Any] | None:
    """The evaluation point of one trial that the searcher is told (every point is a candidate for the front
    and for export, so a trial is worth its best point, not its last): among the points with every objective
    present and every constraint satisfied, the best on the first objective (ties: the next objectives, then
    the later point); without such a point, the one with every objective present and the least total
    violation (ties: the later point); None when no point has every objective."""
    usable = [(i, r) for i, r in enumerate(results) if all(o.minimised(r) is not None for o in objectives)]
    if not usable:
        return None

    def violation(r: Mapping[str, Any]) -> float:
        return sum(max(0.0, c.violation(r, references)) for c in constraints)

    feasible = [(i, r) for i, r in usable if violation(r) <= 0]
    if feasible:
        return min(feasible, key=lambda ir: (*(o.minimised(ir[1]) for o in objectives), -ir[0]))[1]
    return min(usable, key=lambda ir: (violation(ir[1]), -ir[0]))[1]


FQ_FLOOR_LOG10 = -12.0  # a log objective's reference when the target's value is unknown


def hv_reference(objectives: Sequence[Objective], constraints: Sequence[Constraint],
                 target: Mapping[str, float]) -> list[float]:
    """The hypervolume reference point in the minimisation space: per objective, the value a point must beat
    to count (the searcher's acquisition, the benchmarks and the reports measure against it).

    * a log-scaled objective (forget quality): the target's own log10 value (FQ_FLOOR_LOG10 when unknown): a
      model that forgets no better than before unlearning has unlearned nothing;
    * a maximised objective bounded below by a constraint (model utility >= 0.9 x target): that bound, the
      worst value a feasible point can have;
    * a minimised rate (gibberish): 1.0, its worst possible value;
    * any other objective: the target's value (0 when unknown)."""
    ref = []
    for o in objectives:
        bound = next((c for c in constraints if c.metric == o.name and c.op in (">=", ">")), None)
        value = _number(target.get(o.name))
        if o.scale == "log":
            searched = math.log10(value) if value and value > 0 else FQ_FLOOR_LOG10
        elif o.mode == "max" and bound is not None and (bound.relative_to is None or value is not None):
            searched = bound.threshold(target.get(bound.metric))
        elif o.mode == "min" and o.name.endswith("rate"):
            searched = 1.0
        else:
            searched = value if value is not None else 0.0
        ref.append(-searched if o.mode == "max" else searched)
    return ref


def tracked_metrics(metrics: Mapping[str, Any], objectives: Sequence[Objective]) -> dict[str, Any]:
    """A point's metrics as MLflow shows them: every metric, plus `<name>_log10` beside each log-scale
    objective (forget_quality 3.2e-33 -> forget_quality_log10 -32.5), whose raw value MLflow's tables cut."""
    out = dict(metrics)
    for o in objectives:
        if o.scale == "log":
            value = o.searched(metrics)
            if value is not None:
                out[f"{o.name}_log10"] = value
    return out
