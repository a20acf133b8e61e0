"""Where the trajectory model reads a configuration and its evaluation points: the configuration as a point of
the unit cube (`Encoding`) and the epochs at which a run of it is evaluated (`Epochs`).

    enc = Encoding({"lr": optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True)})
    enc.encode({"lr": 1e-3})                               # array([0.5])
    Epochs(fixed=15, every=3, longest=15).points({})       # [3.0, 6.0, 9.0, 12.0, 15.0]

Used by `sweeps.search.trajectory_model`; Ray-free, it takes Optuna distributions only to read their ranges.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

# --------------------------------------------------------------------------------------------------
# encoding a configuration


@dataclass
class _Dim:
    name: str
    kind: str                      # "range" | "ordinal" | "onehot"
    lo: float = 0.0
    hi: float = 1.0
    log: bool = False
    integer: bool = False
    choices: list[Any] = field(default_factory=list)

    def width(self) -> int:
        return len(self.choices) if self.kind == "onehot" else 1


def _numeric(values: Sequence[Any]) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values)


class Encoding:
    """A configuration as a point of [0, 1]^d: ranges (log where the distribution is), numeric choices as an
    ordered axis (log-spaced when they are positive and span a factor of 4 or more), other choices one-hot."""

    def __init__(self, space: Mapping[str, Any]):
        import optuna.distributions as od

        self.dims: list[_Dim] = []
        for name, dist in space.items():
            if isinstance(dist, od.CategoricalDistribution):
                choices = list(dist.choices)
                if _numeric(choices) and len(set(choices)) > 1:
                    vals = sorted(set(float(c) for c in choices))
                    log = vals[0] > 0 and vals[-1] / vals[0] >= 4
                    self.dims.append(_Dim(name, "ordinal", vals[0], vals[-1], log=log, choices=choices))
                else:
                    self.dims.append(_Dim(name, "onehot", choices=choices))
            else:
                integer = isinstance(dist, od.IntDistribution)
                self.dims.append(_Dim(name, "range", float(dist.low), float(dist.high), log=bool(dist.log),
                                      integer=integer))
        self.width = sum(d.width() for d in self.dims)

    def names(self) -> list[str]:
        return [d.name for d in self.dims]

    def _unit(self, d: _Dim, v: float) -> float:
        if d.hi == d.lo:
            return 0.5
        if d.log:
            return (math.log(v) - math.log(d.lo)) / (math.log(d.hi) - math.log(d.lo))
        return (v - d.lo) / (d.hi - d.lo)

    def encode(self, params: Mapping[str, Any]) -> np.ndarray:
        out: list[float] = []
        for d in self.dims:
            v = params[d.name]
            if d.kind == "onehot":
                out.extend(1.0 if v == c else 0.0 for c in d.choices)
            else:
                out.append(self._unit(d, float(v)))
        return np.asarray(out, dtype=float)

    def decode(self, unit: Sequence[float], rng: np.random.Generator | None = None) -> dict[str, Any]:
        """A unit-cube point back to a configuration (ranges only; choices are enumerated, not decoded)."""
        params: dict[str, Any] = {}
        for d, u in zip(self.dims, unit):
            u = min(max(float(u), 0.0), 1.0)
            if d.kind == "range":
                v = math.exp(math.log(d.lo) + u * (math.log(d.hi) - math.log(d.lo))) if d.log else d.lo + u * (d.hi - d.lo)
                params[d.name] = int(round(v)) if d.integer else v
            elif d.kind == "ordinal":
                params[d.name] = min(d.choices, key=lambda c: abs(self._unit(d, float(c)) - u))
            else:
                params[d.name] = d.choices[int(u * len(d.choices)) % len(d.choices)]
        return params

    def discrete_size(self) -> int | None:
        """How many configurations the space has, when every dimension is a list of choices (else None)."""
        if any(d.kind == "range" for d in self.dims):
            return None
        return math.prod(len(d.choices) for d in self.dims)

    def enumerate(self) -> list[dict[str, Any]]:
        names = [d.name for d in self.dims]
        return [dict(zip(names, combo)) for combo in itertools.product(*(d.choices for d in self.dims))]


@dataclass(frozen=True)
class Epochs:
    """Where a configuration's evaluation points are: `param` names the searched epoch count (None when the run
    length is fixed at `fixed`), `every` is eval.every (a fraction of an epoch, or N epochs), `longest` the
    longest run the space allows."""

    fixed: float
    every: float
    longest: float
    param: str | None = None

    def length(self, params: Mapping[str, Any]) -> float:
        return float(params[self.param]) if self.param and self.param in params else float(self.fixed)

    def points(self, params: Mapping[str, Any]) -> list[float]:
        """The epochs at which a run of `params` is evaluated (the last one at its end)."""
        length = self.length(params)
        n = max(1, int(math.floor(length / self.every + 1e-9)))
        pts = [round(self.every * (i + 1), 9) for i in range(n)]
        if pts[-1] < length - 1e-9:
            pts.append(length)
        return pts
