"""Early-stopping schedulers for sweeps: `moasha.MOASHAScheduler` (multi-objective asynchronous successive
halving for Ray Tune) and `lookup.make_lookup_trainable` (a tabular trainable to test and benchmark it)."""
