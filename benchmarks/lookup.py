"""A tabular ("lookup") Ray Tune trainable: replays precomputed evaluation points per configuration, so a
scheduler can be tested or benchmarked on a grid in seconds, without training anything.

Test and benchmark code, not part of the `sweeps` package: the benchmarks import it as a sibling module and
the tests put `benchmarks/` on `sys.path` first (`sys.path.insert(0, str(REPO / "benchmarks")); from lookup import ...`).

    table = {freeze({"lr": 1e-5, "alpha": 1.0}): [{"epoch": 1, "step": 4, "model_utility": 0.61}, ...], ...}
    tuner = ray.tune.Tuner(make_lookup_trainable(table), param_space=grid_param_space(table),
                           tune_config=ray.tune.TuneConfig(scheduler=scheduler))
    grid = tuner.fit()
    consumed = sum(r.metrics[POINTS_KEY] for r in grid)   # evaluation points actually run, over all trials

`table` maps a configuration key to that configuration's evaluation points in order. With the default key,
table keys are `freeze(params)` of the sampled hyperparameters and the trainable looks itself up by the
same names in its config (other config entries are ignored); pass `key=` to map a config to a table key
any other way. The trainable reports one point per `ray.tune.report` call, adding POINTS_KEY (how many
points this trial has reported, this one included): a scheduler's STOP ends it after that report, so the
last POINTS_KEY of each trial sums to the trial-epochs (points) the sweep consumed. Without `checkpoints` it
keeps no checkpoint: a trial retried or resumed by Tune replays its points from the first; with
`checkpoints=True` each report carries a Tune checkpoint (the count of points reported), and a trial that a
scheduler PAUSEd continues after its last reported point when it is resumed. Standard library and Ray only.
"""

from __future__ import annotations

import itertools
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Hashable, Mapping, Sequence

import ray.cloudpickle
import ray.tune

POINTS_KEY = "lookup_points"
Table = Mapping[Hashable, Sequence[Mapping[str, Any]]]


def freeze(params: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    """A hashable, order-independent table key for a dict of (hashable) hyperparameter values."""
    return tuple(sorted(params.items()))


def parameter_names(table: Table) -> list[str]:
    """The hyperparameter names of a table keyed by `freeze(...)` (every key must have the same names)."""
    if not all(isinstance(key, tuple) and all(isinstance(p, tuple) and len(p) == 2 for p in key) for key in table):
        raise ValueError("table keys must be freeze(params); pass key= to make_lookup_trainable for other keys")
    names = {tuple(name for name, _ in key) for key in table}
    if len(names) != 1:
        raise ValueError(f"table keys must be freeze(params) of the same parameter names, got {sorted(names)}")
    return list(names.pop())


def grid_param_space(table: Table) -> dict[str, Any]:
    """A Tune param_space with one `grid_search` per hyperparameter (values in first-seen order); the table
    must hold the full product of those values, so the grid runs each table entry exactly once."""
    names = parameter_names(table)
    values = {name: list(dict.fromkeys(dict(key)[name] for key in table)) for name in names}
    product = {freeze(dict(zip(names, combo))) for combo in itertools.product(*values.values())}
    if product != set(table):
        raise ValueError("the table is not a full grid of its parameter values; build a param_space yourself")
    return {name: ray.tune.grid_search(vals) for name, vals in values.items()}


def make_lookup_trainable(table: Table, *, key: Callable[[Mapping[str, Any]], Hashable] | None = None,
                          seconds_per_point: float = 0.0, checkpoints: bool = False) -> Callable[[dict], None]:
    """A Tune function trainable reporting `table[key(config)]` point by point (see the module docstring);
    `seconds_per_point` sleeps before each report to mimic training time; `checkpoints` makes it pausable."""
    rows = {k: [dict(point) for point in points] for k, points in table.items()}  # plain data, pickled along
    names = parameter_names(rows) if key is None else None

    def table_key(config: Mapping[str, Any]) -> Hashable:
        return key(config) if key is not None else freeze({name: config[name] for name in names})

    def lookup_trainable(config: dict) -> None:
        wanted = table_key(config)
        if wanted not in rows:
            raise KeyError(f"no table entry for {wanted!r}")
        start = 0
        if checkpoints and (ckpt := ray.tune.get_checkpoint()) is not None:
            with ckpt.as_directory() as folder:
                start = int(Path(folder, "points").read_text(encoding="utf-8"))
        for count, point in enumerate(rows[wanted][start:], start=start + 1):
            if seconds_per_point > 0:
                time.sleep(seconds_per_point)
            if not checkpoints:
                ray.tune.report({**point, POINTS_KEY: count})
                continue
            with tempfile.TemporaryDirectory(prefix="lookup-ckpt-") as folder:
                Path(folder, "points").write_text(str(count), encoding="utf-8")
                ray.tune.report({**point, POINTS_KEY: count},
                                checkpoint=ray.tune.Checkpoint.from_directory(folder))

    return lookup_trainable


# Ray workers cannot import this module by name (benchmarks/ is not a package on their path): the trainable and
# what it uses travel by value.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
