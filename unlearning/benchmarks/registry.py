"""The benchmark registry: every benchmark by its `data.benchmark` name, and the lookups the rest of the code uses.

    from unlearning.benchmarks.registry import BENCHMARKS, get_benchmark, trained_names
    get_benchmark("muse").default_objectives      # MUSE's default sweep objectives
    trained_names()                               # ("tofu", "muse", "lkf", "wmdp"): what `data.benchmark` accepts

Adding a benchmark: write its module (a class satisfying `base.Benchmark`) and list its instance below
(docs/contributing.md, "Adding a benchmark").
"""

from __future__ import annotations

from typing import Any, Mapping

from unlearning.benchmarks.base import Benchmark
from unlearning.benchmarks.lkf import LKF
from unlearning.benchmarks.muse import MUSE
from unlearning.benchmarks.tofu import TOFU
from unlearning.benchmarks.wmdp import WMDP
from unlearning.errors import ConfigError

BENCHMARKS: dict[str, Benchmark] = {b.name: b for b in (TOFU, MUSE, LKF, WMDP)}


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


def addons(own: str | None = None) -> list[Any]:
    """The benchmarks read beside a run's own evaluation, through their block in `eval.settings` (WMDP's lm_eval);
    `own`: the run's benchmark, left out (a `data.benchmark: wmdp` run's block is its own evaluation)."""
    return [b for b in BENCHMARKS.values() if b.settings_key is not None and b.name != own]


def addon_blocks(settings: Mapping[str, Any], where: str = "eval.settings",
                 own: str | None = None) -> tuple[dict[str, Any], list[Any]]:
    """(the settings without the add-on blocks, [(add-on benchmark, its validated block)]); `own` as `addons`."""
    rest = dict(settings)
    found = []
    for bench in addons(own):
        block = rest.pop(bench.settings_key, None)
        if block is not None:
            found.append((bench, bench.parse(block, where)))
    return rest, found


def addon_metric_names(spec: Any) -> tuple[dict[str, Any], tuple[str, ...]]:
    """(a spec's eval.settings without the add-on blocks, the metrics those blocks report); errors name the spec
    field `eval.settings.<block>.<field>`."""
    from unlearning.errors import UserError

    try:
        rest, found = addon_blocks(spec.eval.settings, where="spec")
        return rest, tuple(m for bench, cfg in found for m in bench.addon_metrics(spec, cfg))
    except UserError as exc:
        raise ConfigError("spec", field=f"eval.settings.{exc.field}", value=exc.value, fix=exc.fix) from None
