"""The Pareto table of a sweep as the terminal shows it (`unlearn-sweep pareto`, and the end of every sweep).

    from sweeps.selection.pareto_table import print_pareto
    print_pareto(spec, "runs/sweeps/tofu-mini", Console(width=80), show_all=False)   # fits 80 columns
    print_pareto(spec, "runs/sweeps/tofu-mini", console, wide=True)                  # the full table

One table per model (the BalDRO variants of a model share its front): objectives, the searched
hyperparameters and the MLflow run id; the knee is marked, and with `select.require` the front points
that meet it (✓, the knee's pool). Below it: why points were left out (epoch 0,
missing objectives, constraints) and the trials' statuses.

Width: the full table (one column per objective and per hyperparameter, full run ids) when it fits the
console or `wide=True` (the console is widened for it: `--wide`); otherwise the compact table: one
`TRIAL:EPOCH` column (what `export --pick` takes), objectives under short names with a legend line, 2-3
significant digits, the hyperparameters folded into one `name=value` column and run ids cut to 8
characters, so that each point stays on one line of an 80-column terminal.
"""

from __future__ import annotations

from pathlib import Path

from rich import box
from rich.console import Console
from rich.table import Table

SHORT_RUN_ID = 8  # characters of an MLflow run id in the compact table (32 hex in full)


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.2e}"
    return str(v)


def _short(v, digits: int = 3) -> str:
    """A number in about 6 characters: `digits` significant digits (0.789, 12.3), 2 in scientific notation
    below 0.01 and from 10^4 (1.6e-7, 1e-3, 2.5e4); None -> -."""
    if v is None:
        return "-"
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, int):
        return str(v) if abs(v) < 10**6 else f"{v:.1e}".replace("e+0", "e").replace("e+", "e")
    if v != v or v in (float("inf"), float("-inf")):
        return str(v)
    if v == 0:
        return "0"
    if abs(v) < 1e-2 or abs(v) >= 1e4:
        mant, exp = f"{v:.1e}".split("e")
        return f"{mant.removesuffix('.0')}e{int(exp)}"
    return f"{v:.{digits}g}"


def short_names(names: list[str]) -> dict[str, str]:
    """forget_quality -> fq, model_utility -> mu (initials of the parts); names kept when that is ambiguous."""
    short = {n: "".join(p[0] for p in n.split("_") if p) if "_" in n else n[:8] for n in names}
    return short if len(set(short.values())) == len(short) else {n: n for n in names}


def _rows(res, show_all: bool):
    rows = list(res.front)
    if show_all:
        on_front = {p.key for p in res.front}
        rows += [p for p in res.feasible if p.key not in on_front]
    return rows


def compact_table(model: str, res, spec, show_all: bool = False, run_ids: bool = True) -> Table:
    """The same rows in fewer columns (see the module docstring), without a title (`title(model, res)` goes
    above it, on the console's width); `legend(spec)` names its short columns."""
    from sweeps.spec import variant_label

    names = spec.space.names()
    short = short_names([o.name for o in spec.objectives])
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=0)  # one space between columns
    table.add_column("", no_wrap=True)
    table.add_column("trial:epoch", no_wrap=True)
    table.add_column("method", no_wrap=True)
    for obj in spec.objectives:
        table.add_column(short[obj.name] + ("↑" if obj.mode == "max" else "↓"), justify="right", no_wrap=True)
    # without run ids this is the last layout left: a long list of hyperparameters wraps inside its cell
    table.add_column("hyperparameters", style="cyan", no_wrap=run_ids, overflow="fold")
    if run_ids:
        table.add_column("run", style="dim", no_wrap=True)
    for p in _rows(res, show_all):
        hp = " ".join(f"{n}={_short(p.hparams[n], 2)}" for n in names if p.hparams.get(n) is not None)
        cells = [_mark(p, res, compact=True), f"{p.trial_id}:{p.epoch}", variant_label(spec.method.base, p.variant),
                 *(_short(p.metrics.get(o.name)) for o in spec.objectives), hp or "-"]
        if run_ids:
            cells.append((p.mlflow_run_id or "-")[:SHORT_RUN_ID])
        table.add_row(*cells)
    return table


def title(model: str, res) -> str:
    return (f"Pareto front: {model}  ({len(res.front)} of {len(res.feasible)} feasible points, "
            f"hypervolume {res.hypervolume:.4f})")


def legend(spec, show_all: bool = False) -> str:
    """The compact table's key: short objective names, marks."""
    short = short_names([o.name for o in spec.objectives])
    objs = ", ".join(f"{short[o.name]} {o.name}" + (" (log)" if o.scale == "log" else "")
                     for o in spec.objectives if short[o.name] != o.name)
    marks = ("★ knee" + (", ✓ meets select.require" if spec.select.require else "")
             + (", · dominated" if show_all else ""))
    return "; ".join(x for x in (objs, marks, "--wide: every column") if x)


def _mark(p, res, compact: bool = False) -> str:
    front_keys = {q.key for q in res.front}
    meets = {q.key for q, ok in zip(res.front, res.meets) if ok} if res.requirements else set()
    if res.knee is not None and p.key == res.knee.key:
        return "★" if compact else "★ knee"
    if p.key not in front_keys:
        return "·" if compact else "dominated"
    return "✓" if p.key in meets else ""


def front_table(model: str, res, spec, show_all: bool = False) -> Table:
    """A rich table of one model's front (and, with show_all, its dominated feasible points)."""
    from sweeps.spec import variant_label

    names = spec.space.names()
    table = Table(title=title(model, res))
    for col in ("", "trial", "epoch", "method"):
        table.add_column(col)
    for obj in spec.objectives:
        arrow = "↑" if obj.mode == "max" else "↓"
        table.add_column(f"{obj.name} {arrow}" + (" (log)" if obj.scale == "log" else ""), justify="right")
    for name in names:
        table.add_column(name, justify="right", style="cyan")
    table.add_column("mlflow run", style="dim")
    for p in _rows(res, show_all):
        table.add_row(_mark(p, res), p.trial_id, str(p.epoch), variant_label(spec.method.base, p.variant),
                      *(_fmt(p.metrics.get(o.name)) for o in spec.objectives),
                      *(_fmt(p.hparams.get(n)) for n in names), p.mlflow_run_id or "-")
    return table


def model_table(console: Console, model: str, res, spec, show_all: bool = False, wide: bool = False) -> None:
    """Print one model's front: the full table when it fits `console` (or `wide`), else the compact one."""
    from sweeps.selection.terminal import fits, print_wide

    full = front_table(model, res, spec, show_all)
    if wide or fits(console, full):
        print_wide(console, full)
        return
    table = compact_table(model, res, spec, show_all)
    if not fits(console, table):  # the run ids go first (`--wide` or `export` show them)
        table = compact_table(model, res, spec, show_all, run_ids=False)
    console.print(title(model, res), style="italic")
    console.print(table)
    console.print(legend(spec, show_all), style="dim")


def print_pareto(spec, sweep_dir, console: Console, show_all: bool = False, wide: bool = False) -> bool:
    """Print each model's Pareto table, trial counts and failures; False when there are no points yet.
    The table fits `console`'s width (compact when the full one does not), or is whole with `wide`."""
    from sweeps.selection.pareto import sweep_fronts
    from sweeps.recording.results import POINTS_FILE, read_results

    results = read_results(sweep_dir)
    if not results.points:
        console.print(f"no evaluated points yet in {Path(sweep_dir) / POINTS_FILE}")
        return False
    fronts = sweep_fronts(spec, results)
    for model, res in fronts.items():
        model_table(console, model, res, spec, show_all, wide)
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
