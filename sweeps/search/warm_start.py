"""Warm start: seed a search with the Pareto configurations of finished sweeps (another model, another split).

    seeded = warm_start_configs(spec, plan)   # [{"lr": 1e-3, "alpha": 6.2, ...}, ...]: asked first by the searcher

For each folder in `search.warm_start`, the Pareto front of its evaluated points (`sweeps.selection.pareto`, with its
own spec's objectives and constraints) gives configurations; each keeps the values of the fields this search's
space searches (clipped into this space's ranges; a categorical value outside the choices is replaced by the
nearest choice), so a front found on a small model is where the search on a large one starts. Duplicates are
dropped.
"""

from __future__ import annotations

from typing import Any


def _fit(dim: Any, value: Any) -> Any:
    """`value` made valid for the dimension (clipped into a range, nearest choice of a categorical)."""
    if hasattr(dim, "choices"):
        if value in dim.choices:
            return value
        numeric = [c for c in dim.choices if isinstance(c, (int, float)) and not isinstance(c, bool)]
        if isinstance(value, (int, float)) and numeric:
            return min(numeric, key=lambda c: abs(c - value))
        return dim.choices[0]
    lo, hi = dim.bounds()
    value = min(max(value, lo), hi)
    return int(round(value)) if isinstance(lo, int) and isinstance(hi, int) else float(value)


def warm_start_configs(spec: Any, plan: Any) -> list[dict[str, Any]]:
    """The seeded configurations of `plan`'s search (see the module docstring)."""
    from sweeps.selection.pareto import sweep_fronts
    from sweeps.recording.results import read_results, resolve_sweep

    out: list[dict[str, Any]] = []
    for folder in spec.search.warm_start:
        other, sweep_dir = resolve_sweep(folder)
        fronts = sweep_fronts(other, read_results(sweep_dir))
        for front in fronts.values():
            for point in front.front:
                config = {name: _fit(dim, point.hparams[name]) for name, dim in plan.space.params.items()
                          if name in point.hparams}
                if config and config not in out:
                    out.append(config)
    return out
