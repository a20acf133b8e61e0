"""`unlearn-sweep pareto SWEEP`: the Pareto front of a sweep's evaluated (trial, epoch) points as a table.

    unlearn-sweep pareto runs/sweeps/tofu-mini          # a sweep folder (holds spec.yaml + points.jsonl)
    unlearn-sweep pareto presets/tofu-mini.yaml         # or its spec file / preset name
    unlearn-sweep pareto tofu-mini --all                # also the feasible points that are dominated
    unlearn-sweep pareto tofu-mini --wide               # every column, however wide (e.g. | less -S)

One table per model (the BalDRO variants of a model share its front): objectives, the searched
hyperparameters and the MLflow run id; the knee is marked. Below it: the hypervolume, why points were left
out (epoch 0, missing objectives, constraints) and the trials' statuses. The table fits the terminal (a
compact layout on narrow ones, see `sweeps.selection.pareto_table`); in logs it is drawn LOG_WIDTH (160) columns wide.
"""

from __future__ import annotations

import typer
from sweeps.selection.pareto_table import print_pareto

EXAMPLES = """Examples:

  unlearn-sweep pareto runs/sweeps/tofu-mini

  unlearn-sweep pareto presets/tofu-mini.yaml --all

  unlearn-sweep pareto runs/sweeps/tofu-mini --wide | less -S
"""


def register(app: typer.Typer) -> None:
    @app.command(epilog=EXAMPLES)
    def pareto(
        sweep: str = typer.Argument(..., help="Sweep folder (<storage>/<name>), its spec file, or a preset name."),
        show_all: bool = typer.Option(False, "--all", help="Also list the dominated feasible points."),
        wide: bool = typer.Option(False, "--wide", help="The full table (every objective and hyperparameter in "
                                                        "its own column, full run ids), however wide."),
    ) -> None:
        """Print the Pareto front over every evaluated (trial, epoch) point of a sweep, with its knee."""
        from sweeps.recording.results import resolve_sweep
        from sweeps.selection.terminal import output_console

        spec, sweep_dir = resolve_sweep(sweep)
        if not print_pareto(spec, sweep_dir, output_console(), show_all, wide=wide):
            raise typer.Exit(1)
