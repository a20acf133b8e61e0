"""`unlearn-sweep pareto SWEEP`: the Pareto front of a sweep's evaluated (trial, epoch) points as a table.

    unlearn-sweep pareto runs/sweeps/tofu-mini          # a sweep folder (holds spec.yaml + points.jsonl)
    unlearn-sweep pareto sweeps/tofu-mini.yaml          # or its spec file / preset name
    unlearn-sweep pareto tofu-mini --all                # also the feasible points that are dominated

One table per model (the BalDRO variants of a model share its front): objectives, the searched
hyperparameters and the MLflow run id; the knee is marked. Below it: the hypervolume, why points were left
out (epoch 0, missing objectives, constraints) and the trials' statuses.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

EXAMPLES = """Examples:

  unlearn-sweep pareto runs/sweeps/tofu-mini

  unlearn-sweep pareto sweeps/tofu-mini.yaml --all
"""


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.2e}"
    return str(v)


def front_table(model: str, res, spec, show_all: bool = False) -> Table:
    """A rich table of one model's front (and, with show_all, its dominated feasible points)."""
    from sweeps.spec import variant_label

    names = spec.space.names()
    table = Table(title=f"Pareto front: {model}  ({len(res.front)} of {len(res.feasible)} feasible points, "
                        f"hypervolume {res.hypervolume:.4f})")
    for col in ("", "trial", "epoch", "method"):
        table.add_column(col)
    for obj in spec.objectives:
        arrow = "↑" if obj.mode == "max" else "↓"
        table.add_column(f"{obj.name} {arrow}" + (" (log)" if obj.scale == "log" else ""), justify="right")
    for name in names:
        table.add_column(name, justify="right", style="cyan")
    table.add_column("mlflow run", style="dim")
    rows = list(res.front)
    if show_all:
        on_front = {p.key for p in res.front}
        rows += [p for p in res.feasible if p.key not in on_front]
    front_keys = {p.key for p in res.front}
    for p in rows:
        mark = "★ knee" if res.knee is not None and p.key == res.knee.key else ("" if p.key in front_keys else "dominated")
        table.add_row(mark, p.trial_id, str(p.epoch), variant_label(spec.method.base, p.variant),
                      *(_fmt(p.metrics.get(o.name)) for o in spec.objectives),
                      *(_fmt(p.hparams.get(n)) for n in names), p.mlflow_run_id or "-")
    return table


def print_pareto(spec, sweep_dir, console: Console, show_all: bool = False) -> bool:
    """Print each model's Pareto table, trial counts and failures; False when there are no points yet."""
    from sweeps.pareto import fronts_by_model
    from sweeps.results import POINTS_FILE, read_results

    results = read_results(sweep_dir)
    if not results.points:
        console.print(f"no evaluated points yet in {Path(sweep_dir) / POINTS_FILE}")
        return False
    fronts = fronts_by_model(results, spec.objectives, spec.constraints)
    for model, res in fronts.items():
        console.print(front_table(model, res, spec, show_all))
        counts = res.excluded_counts()
        if counts:
            console.print("left out: " + ", ".join(f"{n} {k}" for k, n in counts.items()))
        for c in res.unchecked_constraints:
            console.print(f"[yellow]constraint not applied:[/yellow] {c}")
    statuses: dict[str, int] = {}
    for t in results.trials.values():
        statuses[t.status] = statuses.get(t.status, 0) + 1
    if statuses:
        console.print("trials: " + ", ".join(f"{n} {s}" for s, n in sorted(statuses.items())))
    for t in results.trials.values():
        if t.status == "failed":
            console.print(f"[red]failed[/red] {t.trial_id}: {t.reason}")
    if results.skipped_lines:
        console.print(f"[yellow]{results.skipped_lines} unreadable line(s) in {POINTS_FILE} skipped[/yellow]")
    return True


def register(app: typer.Typer) -> None:
    @app.command(epilog=EXAMPLES)
    def pareto(
        sweep: str = typer.Argument(..., help="Sweep folder (<storage>/<name>), its spec file, or a preset name."),
        show_all: bool = typer.Option(False, "--all", help="Also list the dominated feasible points."),
    ) -> None:
        """Print the Pareto front over every evaluated (trial, epoch) point of a sweep, with its knee."""
        from sweeps.results import resolve_sweep

        console = Console(width=max(Console().width, 160))
        spec, sweep_dir = resolve_sweep(sweep)
        if not print_pareto(spec, sweep_dir, console, show_all):
            raise typer.Exit(1)
