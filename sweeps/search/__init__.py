"""Searching a sweep's space: the searchers, the schedulers and the one Ray Tune run that drives them.

`searcher` (one Optuna study per search), `trajectory_model`, `trajectory_space`, `trajectory_searcher` (the
`trajectory` searcher), `scheduling/` (MO-ASHA, trajectory, per-search schedulers), `multiplex` (every search in
one Tune run), `tuning` (the Tuner), `warm_start` (seeds from finished sweeps' fronts). Below operations; it
imports selection (hypervolume, Pareto fronts), recording (the results file) and spec, never the other way.
"""
