"""The benchmark registry: every benchmark by its `data.benchmark` name, and the lookups the rest of the code uses.

    from unlearning.benchmarks.registry import BENCHMARKS, get_benchmark, trained_names
    get_benchmark("muse").default_objectives      # MUSE's default sweep objectives
    trained_names()                               # ("tofu", "muse", "lkf"): what `data.benchmark` accepts

Adding a benchmark: write its module (a class satisfying `base.Benchmark`) and list its instance below
(docs/contributing.md, "Adding a benchmark").
"""

from __future__ import annotations

from typing import Any

from unlearning.benchmarks.base import Benchmark
from unlearning.benchmarks.lkf import LKF
from unlearning.benchmarks.muse import MUSE
from unlearning.benchmarks.tofu import TOFU
from unlearning.errors import ConfigError

BENCHMARKS: dict[str, Benchmark] = {b.name: b for b in (TOFU, MUSE, LKF)}


def get_benchmark(name: str) -> Any:
    """The benchmark called `name` (a `data.benchmark` value); a one-line ConfigError listing the names otherwise."""
    if name not in BENCHMARKS:
        raise ConfigError("benchmark", field="data.benchmark", value=name, fix=f"use one of {', '.join(BENCHMARKS)}")
    return BENCHMARKS[name]


def trained_names() -> tuple[str, ...]:
    """The benchmarks a run trains on (what `data.benchmark` accepts)."""
    return tuple(n for n, b in BENCHMARKS.items() if b.trains)


def minis() -> dict[str, str]:
    """Each benchmark's generated data source (tofu-mini) -> the benchmark (tofu)."""
    return {b.mini: n for n, b in BENCHMARKS.items() if b.trains and b.mini}
