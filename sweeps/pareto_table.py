"""The Pareto table of a sweep as the terminal shows it (`unlearn-sweep pareto`, and the end of every sweep).

    from sweeps.pareto_table import print_pareto
    print_pareto(spec, "runs/sweeps/tofu-mini", Console(width=160), show_all=False)

One table per model (the BalDRO variants of a model share its front): objectives, the searched
hyperparameters and the MLflow run id; the knee is marked, and with `select.require` the front points
that meet it (✓, the knee's pool). Below it: why points were left out (epoch 0,
missing objectives, constraints) and the trials' statuses.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.2e}"
    return str(v)


def front_table(model: str, res, spec, show_all: bool = False) -> Table:
    """A rich table of one model's front (and, with show_all, its dominated feasible points)."""
    from sweeps.plans import variant_label

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
    meets = {p.key for p, ok in zip(res.front, res.meets) if ok} if res.requirements else set()
    for p in rows:
        if res.knee is not None and p.key == res.knee.key:
            mark = "★ knee"
        elif p.key not in front_keys:
            mark = "dominated"
        else:
            mark = "✓" if p.key in meets else ""
        table.add_row(mark, p.trial_id, str(p.epoch), variant_label(spec.method.base, p.variant),
                      *(_fmt(p.metrics.get(o.name)) for o in spec.objectives),
                      *(_fmt(p.hparams.get(n)) for n in names), p.mlflow_run_id or "-")
    return table


def print_pareto(spec, sweep_dir, console: Console, show_all: bool = False) -> bool:
    """Print each model's Pareto table, trial counts and failures; False when there are no points yet."""
    from sweeps.pareto import sweep_fronts
    from sweeps.results import POINTS_FILE, read_results

    results = read_results(sweep_dir)
    if not results.points:
        console.print(f"no evaluated points yet in {Path(sweep_dir) / POINTS_FILE}")
        return False
    fronts = sweep_fronts(spec, results)
    for model, res in fronts.items():
        console.print(front_table(model, res, spec, show_all))
        counts = res.excluded_counts()
        if counts:
            console.print("left out: " + ", ".join(f"{n} {k}" for k, n in counts.items()))
        for c in res.unchecked_constraints:
            console.print(f"[yellow]constraint not applied:[/yellow] {c}")
        if res.requirements and res.front:
            n = sum(res.meets)
            console.print(f"select.require ({'; '.join(res.requirements)}): " + (
                f"{n} front point(s) meet it (✓), the knee is chosen among them" if n else
                "[yellow]no front point meets it; the knee is chosen over the whole front[/yellow]"))
    statuses: dict[str, int] = {}
    for t in results.trials.values():
        statuses[t.status] = statuses.get(t.status, 0) + 1
    if statuses:
        console.print("trials: " + ", ".join(f"{n} {s}" for s, n in sorted(statuses.items())))
    for t in results.trials.values():
        if t.status in ("failed", "interrupted"):
            colour = "red" if t.status == "failed" else "yellow"
            console.print(f"[{colour}]{t.status}[/{colour}] {t.trial_id}: {t.reason}")
    if results.skipped_lines:
        console.print(f"[yellow]{results.skipped_lines} unreadable line(s) in {POINTS_FILE} skipped[/yellow]")
    return True
