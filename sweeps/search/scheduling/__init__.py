"""Early-stopping schedulers for sweeps: `moasha.MOASHAScheduler` (multi-objective asynchronous successive
halving for Ray Tune), `trajectory` and `per_search`. The tabular trainable that tests and benchmarks them
is `benchmarks/lookup.py` (test and benchmark code, not part of the package)."""
