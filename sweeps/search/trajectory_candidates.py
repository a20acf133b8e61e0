"""Which configurations the trajectory model scores next (`sweeps.search.trajectory_model.TrajectoryModel`'s
candidates): the whole discrete space, or a scrambled Sobol design plus moves around the observed front; the
longest run first; the centre of the space as the first configuration.

    cands = model.candidates(np.random.default_rng(0), exclude=[...])   # what `propose` scores
    first = model.initial(np.random.default_rng(0))                     # before the model can propose

A mixin: it reads the model's encoding, run lengths (`epochs`), observations and front, and keeps no state.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

import numpy as np

from sweeps.search.trajectory_space import _Dim

MAX_ENUMERATED = 4096   # a discrete space up to this size is scored whole; larger ones are sampled


class Candidates:
    """The candidate configurations of a `TrajectoryModel` (see the module docstring)."""

    def candidates(self, rng: np.random.Generator, exclude: Iterable[Mapping[str, Any]] = (),
                   n_random: int = 512) -> list[dict[str, Any]]:
        """Configurations to score: the whole discrete space less `exclude`, or a scrambled Sobol design plus
        perturbations of the configurations on the observed front (continuous spaces)."""
        skip = {self._key(p) for p in exclude}
        size = self.encoding.discrete_size()
        if size is not None and size <= MAX_ENUMERATED:
            return self._longest_first([p for p in self.encoding.enumerate() if self._key(p) not in skip])
        from scipy.stats import qmc

        dims = len(self.encoding.dims)
        unit = qmc.Sobol(dims, scramble=True, seed=rng).random_base2(max(1, int(math.log2(n_random))))
        cands = [self.encoding.decode(u) for u in unit]
        front = self.observed_front()
        best = [p for k, p in self.params.items() if self._on_front(k, front)]
        for p in best:  # local moves around what works
            centre = np.asarray([self._unit_of(d, p[d.name]) for d in self.encoding.dims])
            for _ in range(16):
                cands.append(self.encoding.decode(centre + rng.normal(0, 0.08, size=dims)))
        if self.longest_first and self.epochs.param in self.encoding.names():
            cands = [{**p, self.epochs.param: self._longest_value()} for p in cands]
        return [p for p in {self._key(p): p for p in cands}.values() if self._key(p) not in skip]

    def _longest_value(self) -> Any:
        d = next(d for d in self.encoding.dims if d.name == self.epochs.param)
        if d.kind == "range":
            return int(round(d.hi)) if d.integer else d.hi
        return max(d.choices, key=float)

    def _longest_first(self, cands: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The longest-run candidates while any is left (with `longest_first`), else every candidate."""
        if not self.longest_first or self.epochs.param not in self.encoding.names():
            return cands
        longest = [p for p in cands if self.epochs.length(p) >= self.epochs.longest - 1e-9]
        return longest or cands

    def initial(self, rng: np.random.Generator, exclude: Iterable[Mapping[str, Any]] = ()) -> dict[str, Any] | None:
        """A configuration before the model has data to propose from: the centre of the space (each ordered
        dimension at its middle, log ranges at their geometric middle; the longest run) when nothing has run yet,
        else a random one among the candidates (the longest runs first). Measured against a random first
        configuration (docs/search.md): the centre's trajectory tells the model more, and no seed starts in a
        corner where every run breaks."""
        exclude = list(exclude)
        cands = self.candidates(rng, exclude=exclude)
        if not cands:
            return None
        if not self.obs:
            centre = self.encoding.decode([0.5] * len(self.encoding.dims))
            if self.longest_first and self.epochs.param in centre:
                centre[self.epochs.param] = self._longest_value()
            match = next((c for c in cands if self._key(c) == self._key(centre)), None)
            if match is not None or self.encoding.discrete_size() is None:
                return dict(match or centre)
        return dict(cands[int(rng.integers(len(cands)))])

    def _unit_of(self, d: _Dim, v: Any) -> float:
        if d.kind == "onehot":
            return (d.choices.index(v) + 0.5) / len(d.choices)
        return self.encoding._unit(d, float(v))
