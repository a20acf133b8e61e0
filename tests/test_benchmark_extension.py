"""Adding a benchmark touches its own module and the registry's list only: a benchmark defined here (TOFU's
behaviour under another name, `toytofu`), listed in `registry.BENCHMARKS`, goes through the sweep spec, the plan of
its search, the driver's shared work (retain reference, target evaluation) and a trial's training and evaluation
(the sweep's own trial without Ray, as `benchmarks/bench_landscape.py` runs it) with no other file changed. If any
module outside `unlearning/benchmarks/` branched on "tofu", this benchmark would fail there.

    .venv/bin/python -m pytest tests/test_benchmark_extension.py -q      # about a minute (the zoo cached)
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

from unlearning.benchmarks.tofu import TofuBenchmark

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_landscape import _run_one  # noqa: E402

pytestmark = pytest.mark.slow   # trains the default zoo on first use


class ToyTofu(TofuBenchmark):
    """A new benchmark: its own name and title, everything else TOFU's."""

    name, title = "toytofu", "Toy TOFU"


def test_a_benchmark_listed_in_the_registry_runs_a_trial_with_no_other_change(prepared_zoo, tmp_path, monkeypatch):
    from sweeps.operations.shared import prepare_shared
    from sweeps.spec import load_spec, parse_spec
    from unlearning.benchmarks import registry

    monkeypatch.setitem(registry.BENCHMARKS, ToyTofu.name, ToyTofu())
    raw = load_spec("tofu-mini").raw()
    raw.update(data={**raw["data"], "benchmark": "toytofu"}, fixed={**raw["fixed"], "epochs": 1, "engine": "torch"},
               eval={**raw["eval"], "every": 1}, storage=str(tmp_path), name="toy")
    raw["method"] = {**raw["method"], "baldro": ["none"]}
    spec = parse_spec(raw, where="toy spec")
    assert registry.get_benchmark(spec.data.benchmark).title == "Toy TOFU"
    plan = spec.searches()[0]
    shared = prepare_shared(spec, plan, log=lambda m: None)
    assert math.isfinite(shared.target_metrics["forget_quality"])   # the target's evaluation, by the new benchmark
    run = {"run_id": "toy-1", "label": plan.label, "base_method": plan.method, "variant": plan.variant,
           "hparams": {"lr": 1e-3, "alpha": 5.0}}
    record = _run_one(run, plan.base, {"reference_dir": shared.reference_dir, "inputs_dir": shared.inputs_dir},
                      str(tmp_path / "trial"), [o.name for o in spec.objectives])
    assert record["status"] == "ok", record["reason"]
    (point,) = record["points"]
    assert point["epoch"] == 1 and all(math.isfinite(point[k]) for k in ("forget_quality", "model_utility"))
