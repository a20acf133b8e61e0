"""The sweep service, grouped by role; the arrows run one way, top to bottom (pyproject `[tool.importlinter]`):

    operations/   the driver: `run_sweep`, preflight, the Ray it runs on, its lock and signals, the plan, exit status
    search/       the searchers (Optuna, trajectory), the schedulers, one Ray Tune run of every search, warm start
    selection/    Pareto fronts, hypervolume and knee, the Pareto table, exporting chosen points as train configs
    recording/    the results file (points.jsonl), the Tune recorder, MLflow tracking and sync, live progress
    spec/         the sweep spec: its model, sections, objectives and constraints, checks, plans, presets

The presets themselves (`tofu-mini`, ...) are `presets/*.yaml` beside this package.
"""
