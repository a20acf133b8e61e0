"""Benchmarks: what makes a TOFU, MUSE, LKF or WMDP-style run differ, one module each (docs/architecture.md).

    from unlearning.benchmarks.registry import get_benchmark
    bench = get_benchmark("tofu")               # the `data.benchmark` of a train config or sweep spec
    bench.source(config.data, config.model.name)

Modules: tofu, muse, lkf (+ lkf_mini, its generated data), wmdp (lm-eval multiple choice beside a run's own
evaluation), hook (the per-epoch evaluation of `unlearn-sweep train`), base (the `Benchmark` protocol), registry.
"""
