"""Benchmark: search efficiency on the committed tofu-mini landscape tables, replayed through the real Ray Tune
searcher and scheduler.

    python benchmarks/bench_search.py                                   # every table, every searcher, 5 seeds
    python benchmarks/bench_search.py --tables graddiff --seeds 1 --searchers random,trajectory,trajectory+stop \\
        --budget 0.3                                                    # a quick look (a few minutes)
    python benchmarks/bench_search.py --landscape runs/landscape --grid NPO   # one table of a landscape run
    python benchmarks/bench_search.py --tables drnpo --live             # + one live sweep of the winner (minutes)
    python benchmarks/bench_search.py --epochs 15 --budget 0.5          # the run length fixed, as the default sweep's

What it measures: how much of a grid's Pareto front a searcher finds for a fraction of the grid's compute, on
every table. A table is one grid of a landscape (`benchmarks/bench_landscape.py`: every run of the grid, every
epoch's evaluation). The committed ones are the `benchmarks/data/landscape-*` folders (runs.jsonl +
landscape.json with its own target): `drnpo` (DrNPO = NPO + BalDRO-DV, 54 runs), `npo` (NPO, 54 runs),
`graddiff` (GradDiff, 27 runs); a table's label is the one label of its runs.jsonl. By default every committed
table is replayed; `--tables drnpo,npo` selects; `--landscape DIR [--grid LABEL]` replays one grid of any
landscape folder instead (--grid may be left out when the folder holds one label).

Files: this script reads the tables and runs the replays; `search_replay.py` replays one search, `search_summary.py`
computes the numbers below, `search_report.py` prints and writes them.

How: each searcher is replayed against the table through the service's own pieces (`search_replay.py`): the
lookup trainable (`benchmarks/lookup.py`), the searcher over the grid's discrete values (one
`CategoricalDistribution` per hyperparameter) and its scheduler, built from the base spec's objectives,
constraint, grace, reduction factor, stop_below and pause. A searcher is named sampler[+scheduler]
(`search_replay.searcher_name`): `grid` (Optuna's grid sampler: every combination once in an order shuffled by
the seed, then finished), `random`, `tpe`, `gp`, `nsga2`, `trajectory` (`sweeps.search.trajectory_searcher`: a GP model
of every evaluation point, proposals by expected feasible-HV improvement per epoch); `+moasha` adds our
`MOASHAScheduler` (tofu-mini: rungs at epochs 1, 3, 9; max_t = the longest run), `+stop` the trajectory
scheduler (`sweeps.search.scheduling.trajectory`: pauses/stops a trial whose remaining points are unlikely to add HV;
trajectory sampler only). Default searchers: grid, random, tpe, gp, trajectory, trajectory+stop, over `--seeds`
(default 5) seeds. Trials run one at a time (max_concurrent_trials=1), so Tune asks for the next configuration
only after the previous trial was told: a replay is deterministic given its seed. A failed run replays its
points, then the failure report (`trial_failed`, NaN objectives): the searcher tells it FAIL and goes on.

Trial-epochs (the budget axis): the evaluation points trials actually reported, summed over trials (a trial
stopped at epoch 3 counts 3; a failed run counts its points; a configuration proposed twice is paid twice, as
in the service). A grid's trial-epochs are the sum of its runs' epochs (DrNPO: 54 runs of 5/10/15 epochs = 540).
Each replay runs until it has consumed `--budget` (default 0.5) x the grid's trial-epochs, or its searcher is
finished.

Hypervolume: of the *feasible* points seen so far (model_utility >= 0.9 x the target's, the base spec's
constraint), in (log10 forget_quality up, model_utility up, gibberish_rate down), with
`sweeps.selection.pareto.hypervolume` (moocore, exact) against the reference point
`sweeps.spec.objectives.hv_reference` (log10 of the target's forget quality, 0.9 x the target's model utility, gibberish 1.0). A table's grid hypervolume is that of every feasible
point of every run of it; results are fractions of it (per table: each table has its own target).

Printed, per table: one line per replay; then per searcher the HV fraction at 15% and at 25% of the grid's
trial-epochs (`--at-early`, `--at`; median and worst over seeds), the final HV (median), the trial-epochs to reach
`--goal` (0.95) of the grid's HV (median, and in how many seeds it did) and trials run (median); the
early-stopping saving per sampler run with and without its scheduler; the late-bloomer check. Then the summary
over tables and last the headline.

Early stopping, per pair (plain sampler P, P+scheduler S; tpe vs tpe+moasha, trajectory vs trajectory+stop) and
seed s: H_s = the final HV of P (its whole budget); F_s = the trial-epochs at which P first reached H_s; T_s = the
trial-epochs S (same seed) needs to reach H_s (inf when it does not within the budget); saving_s = 1 - T_s / F_s.
Printed: the median and worst saving over seeds and whether the median is >= 30%.

Late bloomer: the table's best late-blooming point = the feasible point with the highest forget_quality among
the points at epoch >= 9 (a configuration that only gets there late; MO-ASHA's last rung). Printed: in how many
seeds each searcher's trace holds that exact point (same configuration, same epoch) within its budget.

Summary over tables: per searcher the worst table's median HV fraction at 25% and at 15%, and its worst seed at
25% over all tables; per table, the margin of the best new searcher (the trajectory sampler, with or without
its scheduler) over the best baseline (every other searcher run: grid, random, tpe, gp, ...) in median at 25%.
The last line is the headline, the searcher with the highest worst-table median at 25%:
`best: <searcher> reaches <r> of the grid's hypervolume at 25% of its trial-epochs (worst table, median of N
seeds, worst <w>); at 15%: <r15>` (<w>: its worst seed over all tables at 25%; <r15>: its worst-table median
at 15%).

Output (in --out, default runs/bench-search):
* `<table>/curves.csv`: searcher, seed, trial_epochs, hypervolume, fraction (of the table grid's), one row per point;
* `<table>/bench_search.json`: the setup (grid, reference point, grid HV and trial-epochs, budget, rungs), per
  searcher the summary, the early-stopping savings, the late bloomer and its hits, per replay its trials, wall
  time, curve and the order of its points ([trial, params, epoch]);
* `summary.json`: the summary over tables, the margins and the headline;
* `bench_search.png`: one panel per table, the median HV fraction per searcher against trial-epochs as % of the
  grid's, a min..max band over seeds, dotted lines at 15% and 25%.

--live (one table only: `--landscape` or a single `--tables` entry): one live sweep of the winner on tofu-mini
through `sweeps.operations.service.run_sweep`: the landscape's own spec of that grid (`bench_landscape.entry_spec`: same
model, data, fixed values and discrete space, from benchmarks/landscape.yaml) with the winner's
sampler/scheduler, seed 0, and num_trials = the winner's median trials at 25% of the grid's trial-epochs; its
points.jsonl gives the same hypervolume fraction (against the table's grid HV and reference point).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from search_replay import (  # noqa: E402
    SCHEDULER_SUFFIX, Setup, consumed, grid_hypervolume, grid_runs, grid_trial_epochs, hv_at, hv_curve,
    load_landscape, replay, searcher_name, start_ray, stop_ray, trials_within,
)
from search_report import (  # noqa: E402  (the printed lines and written files)
    draw_png, finite, late_lines, saving_lines, summary_lines, table_lines, write_table,
)
from search_summary import (  # noqa: E402  (the numbers)
    across, headline, late_bloomer, late_hits, margins, median, savings, summarise,
)

DATA = REPO / "benchmarks" / "data"
TABLE_PREFIX = "landscape-"
DEFAULT_SPEC = REPO / "presets" / "tofu-mini.yaml"
DEFAULT_SEARCHERS = "grid,random,tpe,gp,trajectory,trajectory+stop"
SAMPLER_NAMES = ("grid", "random", "tpe", "gp", "nsga2", "trajectory")
SCHEDULERS = ("none", "moasha", "trajectory")


# --------------------------------------------------------------------------------------------------
# inputs


@dataclass
class Table:
    """One grid to replay: its short key (the output folder), its label in runs.jsonl and its folder."""

    key: str
    label: str
    folder: Path
    # filled in by load()
    grid: list[dict[str, Any]] = field(default_factory=list)
    target: dict[str, float] = field(default_factory=dict)
    setup: Setup | None = None
    grid_hv: float = 0.0
    grid_te: int = 0


def folder_labels(folder: Path) -> list[str]:
    runs, _ = load_landscape(folder)
    return sorted({r["label"] for r in runs if r.get("label")})


def committed_tables(data: Path = DATA) -> dict[str, Path]:
    """key -> folder of every committed table (benchmarks/data/landscape-*/ with a runs.jsonl)."""
    return {p.name[len(TABLE_PREFIX):]: p for p in sorted(data.glob(f"{TABLE_PREFIX}*"))
            if (p / "runs.jsonl").is_file()}


def resolve_tables(tables: str | None, landscape: Path | None, grid: str | None, data: Path = DATA) -> list[Table]:
    """--landscape DIR [--grid LABEL]: that one grid; else the committed tables (--tables selects, by key)."""
    if landscape is not None:
        if not (landscape / "runs.jsonl").is_file():
            raise SystemExit(f"{landscape}: no runs.jsonl (run benchmarks/bench_landscape.py --out {landscape} first)")
        labels = folder_labels(landscape)
        if grid is None:
            if len(labels) != 1:
                raise SystemExit(f"{landscape} holds the grids {labels}: name one with --grid")
            grid = labels[0]
        elif grid not in labels:
            raise SystemExit(f"{landscape}: no runs labelled {grid} (labels: {labels})")
        return [Table(grid.lower(), grid, landscape)]
    if grid is not None:
        raise SystemExit("--grid goes with --landscape (the committed tables are selected with --tables)")
    found = committed_tables(data)
    if not found:
        raise SystemExit(f"no committed table: {data}/{TABLE_PREFIX}*/runs.jsonl")
    keys = list(found) if not tables else [k.strip().lower() for k in tables.split(",") if k.strip()]
    if bad := [k for k in keys if k not in found]:
        raise SystemExit(f"unknown table {bad}: the committed tables are {list(found)}")
    out = []
    for key in keys:
        labels = folder_labels(found[key])
        if len(labels) != 1:
            raise SystemExit(f"{found[key]}: a committed table holds one grid, this one {labels}")
        out.append(Table(key, labels[0], found[key]))
    return out


def base_spec_path(folder: Path) -> Path:
    """The spec the landscape was run from (landscape.json's base_spec), else tofu-mini. A preset's path from
    before the presets moved (`sweeps/tofu-mini.yaml`, in the landscapes of benchmarks/data/) is read from presets/."""
    meta = folder / "landscape.json"
    if meta.is_file():
        base = json.loads(meta.read_text(encoding="utf-8")).get("base_spec")
        for path in ([REPO / base, REPO / "presets" / Path(base).name] if base else []):
            if path.is_file():
                return path
    return DEFAULT_SPEC


def load(table: Table, epochs: int | None = None) -> Table:
    """The table's grid, setup, hypervolume and trial-epochs; `epochs`: only its runs of that length (the run
    length fixed, as the default sweep fixes it: the key gains `-<epochs>ep`)."""
    runs, table.target = load_landscape(table.folder)
    table.grid = grid_runs(runs, table.label)
    if epochs is not None:
        table.grid = [r for r in table.grid if r["hparams"].get("epochs") == epochs]
        table.key = f"{table.key}-{epochs}ep"
    table.setup = Setup.from_spec(base_spec_path(table.folder), table.target)
    table.grid_hv, table.grid_te = grid_hypervolume(table.grid, table.setup), grid_trial_epochs(table.grid)
    return table


def parse_searchers(text: str) -> list[tuple[str, str, str]]:
    """'grid,tpe+moasha,trajectory+stop' -> [(name, sampler, scheduler)], the name as `searcher_name` writes it
    (`+moasha`: MO-ASHA; `+stop` (or `+trajectory`): the trajectory scheduler, trajectory sampler only)."""
    from_suffix = {suffix: scheduler for scheduler, suffix in SCHEDULER_SUFFIX.items()}
    out: list[tuple[str, str, str]] = []
    for item in (s.strip() for s in text.split(",")):
        if not item:
            continue
        sampler, plus, suffix = item.partition("+")
        scheduler = (from_suffix.get(suffix, suffix) if plus else "none").strip()
        if sampler not in SAMPLER_NAMES or scheduler not in SCHEDULERS or (plus and scheduler == "none"):
            raise SystemExit(f"unknown searcher {item!r}: a sampler ({', '.join(SAMPLER_NAMES)}), optionally "
                             f"+moasha (MO-ASHA) or +stop (the trajectory scheduler), e.g. {DEFAULT_SEARCHERS}")
        if scheduler == "trajectory" and sampler != "trajectory":
            raise SystemExit(f"{item}: the trajectory scheduler (+stop) needs the trajectory sampler")
        name = searcher_name(sampler, scheduler)
        if name not in [n for n, _, _ in out]:
            out.append((name, sampler, scheduler))
    if not out:
        raise SystemExit("--searchers: no searcher named")
    return out


# --------------------------------------------------------------------------------------------------
# live


def live_run(label: str, winner: str, n_trials: int, setup: Setup, grid_hv: float, out: Path) -> str:
    """One live sweep of `winner` on the landscape's own spec of the grid `label` (see the module docstring);
    returns its result line."""
    from bench_landscape import entry_spec, load_grid

    from sweeps.selection.pareto import hypervolume
    from sweeps.recording.results import read_results
    from sweeps.operations.service import run_sweep
    from sweeps.spec import load_spec, parse_spec

    grid_file = load_grid(REPO / "benchmarks" / "landscape.yaml")
    base_raw = load_spec(REPO / grid_file["base_spec"]).raw()
    storage = out / "live"
    specs = [entry_spec(base_raw, entry, storage) for entry in grid_file["grids"]]
    spec = next((s for s in specs if s.searches()[0].label == label), None)
    if spec is None:
        raise SystemExit(f"--live: benchmarks/landscape.yaml has no grid labelled {label}")
    (_, sampler, scheduler), = parse_searchers(winner)
    raw = spec.raw()
    raw.update(name=f"bench-search-live-{winner.replace('+', '-')}-{time.strftime('%Y%m%d-%H%M%S')}",
               seed=0, search={**raw.get("search", {}), "sampler": sampler, "scheduler": scheduler},
               budget={**raw.get("budget", {}), "num_trials": n_trials, "time_budget_s": None})
    live = parse_spec(raw, where=f"bench_search --live ({winner})")
    print(f"live: {live.name}: {winner}, {n_trials} trials on {live.models[0].name} (this trains real models)")
    sweep_dir = run_sweep(live, tracking_optional=True)
    search_id = live.searches()[0].search_id
    results = read_results(sweep_dir)
    points = [p for p in results.points if p.epoch and p.search_id == search_id]
    vectors = [v for p in points if (v := setup.vector(p.metrics)) is not None]
    frac = hypervolume(vectors, setup.reference) / grid_hv
    # the same points judged against this machine's own zoo target (the table's zoo may have trained differently)
    own_target = {k: v for k, v in results.reference(live.models[0].name).items() if isinstance(v, (int, float))}
    own = Setup.from_spec(REPO / "presets" / "tofu-mini.yaml", own_target) if own_target else None
    feasible = [p for p in points if own is not None and own.vector(p.metrics) is not None]
    best = max(feasible, key=lambda p: p.metrics.get("forget_quality", 0.0), default=None)
    own_line = "" if best is None else (
        f"; against this zoo's own target (model_utility {own_target.get('model_utility', math.nan):.3f}, the "
        f"table's {setup.references.get('model_utility', math.nan):.3f}): {len(feasible)} of {len(points)} points "
        f"feasible, the best forget_quality {best.metrics['forget_quality']:.3g} at model_utility "
        f"{best.metrics.get('model_utility', math.nan):.3f} ({best.hparams}, epoch {best.epoch:g})")
    return (f"live: {winner} on tofu-mini reaches {frac:.3f} of the table grid's hypervolume with {len(points)} "
            f"trial-epochs ({n_trials} trials; the replay's budget was its median at 25%){own_line} -> {sweep_dir}")


# --------------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tables", default=None,
                    help=f"committed tables to replay, by key (default: every {DATA.relative_to(REPO)}/"
                         f"{TABLE_PREFIX}*: {','.join(committed_tables())})")
    ap.add_argument("--landscape", type=Path, default=None,
                    help="instead: one landscape folder (runs.jsonl, landscape.json), e.g. runs/landscape")
    ap.add_argument("--grid", default=None, help="with --landscape: the grid's label in its runs.jsonl")
    ap.add_argument("--searchers", default=DEFAULT_SEARCHERS,
                    help="sampler[+moasha|+stop], comma-separated; samplers: " + ",".join(SAMPLER_NAMES))
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--budget", type=float, default=0.5, help="trial-epochs per replay, x the grid's")
    ap.add_argument("--at", type=float, default=0.25, help="the headline's budget, x the grid's trial-epochs")
    ap.add_argument("--at-early", type=float, default=0.15, help="the earlier budget read, x the grid's")
    ap.add_argument("--goal", type=float, default=0.95, help="HV fraction whose trial-epochs are reported")
    ap.add_argument("--epochs", type=int, default=None,
                    help="replay only each grid's runs of this many epochs (the run length fixed, as the default "
                         "sweep fixes it at 15)")
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "bench-search")
    ap.add_argument("--live", action="store_true",
                    help="then one live sweep of the winner on tofu-mini (one table only; minutes)")
    args = ap.parse_args(argv)
    if args.budget < max(args.at, args.at_early):
        ap.error(f"--budget {args.budget} must be >= --at {args.at} and --at-early {args.at_early}")
    if args.seeds < 1:
        ap.error("--seeds must be >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    searchers = parse_searchers(args.searchers)
    tables = [load(t, args.epochs) for t in resolve_tables(args.tables, args.landscape, args.grid)]
    if args.live and len(tables) != 1:
        raise SystemExit("--live runs one table's winner: name one with --tables KEY or --landscape DIR")
    ats = sorted({args.at_early, args.at})
    for t in tables:
        if not t.grid:
            raise SystemExit(f"{t.folder}: no runs labelled {t.label}")
        if t.grid_hv <= 0:
            raise SystemExit(f"{t.key}: the grid has no feasible point beyond the reference point: nothing to compare")

    panels, per_table, lines_per_table = [], {}, []
    temp = start_ray()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-search-") as work:
            for t in tables:
                budget, at_te = math.ceil(args.budget * t.grid_te), args.at * t.grid_te
                failed = sum(r.get("status") != "ok" for r in t.grid)
                print(f"{t.key}: {t.label} grid of {t.folder}: {len(t.grid)} runs ({failed} failed), {t.grid_te} "
                      f"trial-epochs, hypervolume {t.grid_hv:.4g} at reference "
                      f"{[round(x, 4) for x in t.setup.reference]}"
                      f"; each replay: {budget} trial-epochs, one trial at a time", flush=True)
                plan = [(name, sampler, scheduler, seed) for name, sampler, scheduler in searchers
                        for seed in range(args.seeds)]
                traces, curves = [], {}
                for i, (name, sampler, scheduler, seed) in enumerate(plan, start=1):
                    trace = replay(t.grid, t.setup, sampler, scheduler, seed, budget, Path(work))
                    curve = hv_curve(trace, t.setup)
                    traces.append(trace)
                    curves[(trace.name, seed)] = curve
                    print(f"  [{i}/{len(plan)}] {t.key} {trace.name} seed {seed}: {trace.trials} trials, "
                          f"{consumed(trace)} trial-epochs, HV {hv_at(curve, at_te) / t.grid_hv:.3f} of the grid's at "
                          f"{100 * args.at:.0f}%, {(curve[-1][1] if curve else 0) / t.grid_hv:.3f} at the end "
                          f"({trace.wall_s:.1f}s)", flush=True)
                summary = summarise(traces, curves, t.grid_hv, t.grid_te, ats, args.goal)
                saved = savings(traces, curves)
                bloomer = late_bloomer(t.grid, t.setup)
                hits = late_hits(traces, bloomer, budget)
                info = {"table": t.key, "landscape": str(t.folder), "grid": t.label, "runs": len(t.grid),
                        "failed_runs": failed, "grid_trial_epochs": t.grid_te, "budget_trial_epochs": budget,
                        "at": ats, "goal": args.goal, "grid_hypervolume": t.grid_hv,
                        "reference_point": t.setup.reference,
                        "target": t.target, "objectives": [o.label for o in t.setup.objectives],
                        "constraints": [str(c) for c in t.setup.constraints], "grace": t.setup.grace,
                        "reduction_factor": t.setup.reduction_factor, "seeds": args.seeds}
                write_table(args.out / t.key, info, traces, curves, t.grid_hv, summary, saved, bloomer, hits)
                per_table[t.key] = summary
                panels.append({"label": t.label, "grid": t.grid, "grid_te": t.grid_te, "grid_hv": t.grid_hv,
                               "budget": budget, "traces": traces, "curves": curves, "seeds": args.seeds})
                lines_per_table.append([f"== {t.key} ({t.label}, {len(t.grid)} runs, grid {t.grid_te} trial-epochs, "
                                        f"budget {budget}) ==", *table_lines(summary, ats, args.goal, t.grid_te),
                                        *saving_lines(saved),
                                        *late_lines(bloomer, hits, {n: s["seeds"] for n, s in summary.items()})])
                if args.live:
                    name = max(summary, key=lambda n: (summary[n]["at"][args.at]["median"],
                                                       summary[n]["at"][args.at]["worst"]))
                    n_trials = math.ceil(median([trials_within(tr, at_te) for tr in traces if tr.name == name]))
                    live = (t, name, n_trials)
    finally:
        stop_ray(temp)

    overall = across(per_table, args.at, args.at_early)
    marg = margins(per_table, args.at)
    head = headline(overall, args.at, args.at_early)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps(finite({
        "tables": [t.key for t in tables], "searchers": [n for n, _, _ in searchers], "seeds": args.seeds,
        "budget": args.budget, "at": args.at, "at_early": args.at_early, "summary": overall, "margins": marg,
        "headline": head})) + "\n", encoding="utf-8")
    draw_png(args.out / "bench_search.png", panels, ats)
    print(f"wrote {args.out}/<table>/curves.csv and bench_search.json for {', '.join(per_table)}, "
          f"{args.out / 'summary.json'}, {args.out / 'bench_search.png'}")
    for lines in lines_per_table:
        print("\n".join(lines))
    print("\n".join(summary_lines(overall, marg, args.at, args.at_early)))
    if args.live:
        t, name, n_trials = live
        print(live_run(t.label, name, n_trials, t.setup, t.grid_hv, args.out))
    print(head)


if __name__ == "__main__":
    main()
