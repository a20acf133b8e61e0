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

How: each searcher is replayed against the table through the service's own pieces (`search_replay.py`): the
lookup trainable (`sweeps.scheduling.lookup`), the searcher over the grid's discrete values (one
`CategoricalDistribution` per hyperparameter) and its scheduler, built from the base spec's objectives,
constraint, grace, reduction factor, stop_below and pause. A searcher is named sampler[+scheduler]
(`search_replay.searcher_name`): `grid` (Optuna's grid sampler: every combination once in an order shuffled by
the seed, then finished), `random`, `tpe`, `gp`, `nsga2`, `trajectory` (`sweeps.trajectory_searcher`: a GP model
of every evaluation point, proposals by expected feasible-HV improvement per epoch); `+moasha` adds our
`MOASHAScheduler` (tofu-mini: rungs at epochs 1, 3, 9; max_t = the longest run), `+stop` the trajectory
scheduler (`sweeps.scheduling.trajectory`: pauses/stops a trial whose remaining points are unlikely to add HV;
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
constraint), in (log10 forget_quality up, model_utility up, gibberish_rate down), with `sweeps.pareto.hypervolume`
(moocore, exact) against the reference point `sweeps.objectives.hv_reference` (log10 of the target's forget
quality, 0.9 x the target's model utility, gibberish 1.0). A table's grid hypervolume is that of every feasible
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
through `sweeps.service.run_sweep`: the landscape's own spec of that grid (`bench_landscape.entry_spec`: same
model, data, fixed values and discrete space, from benchmarks/landscape.yaml) with the winner's
sampler/scheduler, seed 0, and num_trials = the winner's median trials at 25% of the grid's trial-epochs; its
points.jsonl gives the same hypervolume fraction (against the table's grid HV and reference point).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from search_replay import (  # noqa: E402
    SCHEDULER_SUFFIX, Setup, Trace, consumed, epochs_to_reach, grid_hypervolume, grid_runs, grid_trial_epochs,
    hv_at, hv_curve, load_landscape, replay, searcher_name, start_ray, stop_ray, trials_within,
)
from sweeps.scheduling.lookup import freeze  # noqa: E402

DATA = REPO / "benchmarks" / "data"
TABLE_PREFIX = "landscape-"
DEFAULT_SPEC = REPO / "sweeps" / "tofu-mini.yaml"
DEFAULT_SEARCHERS = "grid,random,tpe,gp,trajectory,trajectory+stop"
SAMPLER_NAMES = ("grid", "random", "tpe", "gp", "nsga2", "trajectory")
SCHEDULERS = ("none", "moasha", "trajectory")
NEW_SAMPLERS = ("trajectory",)  # the searchers measured against every other one (the baselines)
SAVING_GOAL = 0.30
LATE_EPOCH = 9  # a late bloomer's point: at epoch >= 9 (tofu-mini's last MO-ASHA rung)


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
    """The spec the landscape was run from (landscape.json's base_spec), else tofu-mini."""
    meta = folder / "landscape.json"
    if meta.is_file():
        base = json.loads(meta.read_text(encoding="utf-8")).get("base_spec")
        if base and (REPO / base).is_file():
            return REPO / base
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
# summaries (pure: traces and curves in, numbers out; tested without Ray)


Curves = Mapping[tuple[str, int], Sequence[tuple[int, float]]]


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs) if xs else math.nan


def worst(xs: Sequence[float]) -> float:
    return min(xs) if xs else math.nan


def names_of(traces: Sequence[Trace]) -> list[str]:
    return list(dict.fromkeys(t.name for t in traces))


def summarise(traces: Sequence[Trace], curves: Curves, grid_hv: float, grid_te: float, ats: Sequence[float],
              goal: float) -> dict[str, dict[str, Any]]:
    """Per searcher: HV fraction at each `ats` x grid_te (per seed, median, worst), final HV fraction (median),
    trial-epochs to `goal` x grid HV (median, seeds that reached it), trials (median), wall seconds."""
    out: dict[str, dict[str, Any]] = {}
    for name in names_of(traces):
        mine = [t for t in traces if t.name == name]
        entry: dict[str, Any] = {"seeds": len(mine), "at": {}}
        for at in ats:
            fr = [hv_at(curves[(name, t.seed)], at * grid_te) / grid_hv for t in mine]
            entry["at"][at] = {"per_seed": fr, "median": median(fr), "worst": worst(fr)}
        reach = [epochs_to_reach(curves[(name, t.seed)], goal * grid_hv) for t in mine]
        entry.update(final_median=median([(c[-1][1] if (c := curves[(name, t.seed)]) else 0.0) / grid_hv
                                          for t in mine]),
                     to_goal_median=median([r for r in reach if math.isfinite(r)]) if any(map(math.isfinite, reach))
                     else math.inf,
                     reached=sum(math.isfinite(r) for r in reach),
                     trials_median=median([t.trials for t in mine]),
                     wall_s=sum(t.wall_s for t in mine))
        out[name] = entry
    return out


def savings(traces: Sequence[Trace], curves: Curves) -> dict[str, dict[str, Any]]:
    """Per searcher with a scheduler whose plain sampler was run too: the early-stopping saving per seed,
    1 - T_s / F_s (see the module docstring), its median and worst, and how many seeds reached H_s."""
    out = {}
    for name in names_of(traces):
        early = {t.seed: t for t in traces if t.name == name and t.scheduler != "none"}
        if not early:
            continue
        sampler = next(iter(early.values())).sampler
        plain = {t.seed: t for t in traces if t.sampler == sampler and t.scheduler == "none"}
        seeds = sorted(set(plain) & set(early))
        if not seeds:
            continue
        per_seed, reached = [], 0
        for s in seeds:
            base = curves[(sampler, s)]
            h = base[-1][1] if base else 0.0
            first = epochs_to_reach(base, h) if base else 0.0
            needed = epochs_to_reach(curves[(name, s)], h)
            reached += math.isfinite(needed)
            per_seed.append(1 - needed / first if first and math.isfinite(first) else math.nan)
        out[name] = {"plain": sampler, "seeds": len(seeds), "reached": reached, "per_seed": per_seed,
                     "median": median(per_seed), "worst": worst(per_seed)}
    return out


def late_bloomer(grid: Sequence[Mapping[str, Any]], setup: Any, min_epoch: int = LATE_EPOCH
                 ) -> dict[str, Any] | None:
    """The feasible point (`setup.vector` not None) with the highest forget_quality among the grid's points at
    epoch >= min_epoch: {"params", "epoch", "forget_quality"}; None when there is none."""
    best = None
    for run in grid:
        for p in run["points"]:
            fq = p.get("forget_quality")
            if (p.get("epoch") or 0) < min_epoch or fq is None or setup.vector(p) is None:
                continue
            if best is None or fq > best["forget_quality"]:
                best = {"params": dict(run["hparams"]), "epoch": p["epoch"], "forget_quality": fq}
    return best


def holds_point(trace: Trace, params: Mapping[str, Any], epoch: Any, budget: float) -> bool:
    """Whether the trace reported the point (same configuration, same epoch) within its first `budget`
    trial-epochs (a failure report is not a point)."""
    key, count = freeze(params), 0
    for item in trace.points:
        if item["result"].get("trial_failed"):
            continue
        count += 1
        if count > budget + 1e-9:
            return False
        if item["result"].get("epoch") == epoch and freeze(item["params"]) == key:
            return True
    return False


def late_hits(traces: Sequence[Trace], bloomer: Mapping[str, Any] | None, budget: float) -> dict[str, list[int]]:
    """Per searcher: the seeds whose trace holds the late bloomer within `budget` trial-epochs."""
    return {name: ([t.seed for t in traces if t.name == name
                    and holds_point(t, bloomer["params"], bloomer["epoch"], budget)] if bloomer else [])
            for name in names_of(traces)}


def across(per_table: Mapping[str, Mapping[str, dict[str, Any]]], at: float, early: float
           ) -> dict[str, dict[str, Any]]:
    """Per searcher over tables (each a summarise() result): the worst table's median at `at` and `early`
    (and which table), the worst seed at `at` over all tables, seeds (the fewest of any table)."""
    out: dict[str, dict[str, Any]] = {}
    names = list(dict.fromkeys(n for s in per_table.values() for n in s))
    for name in names:
        rows = {key: s[name] for key, s in per_table.items() if name in s}
        worst_key = min(rows, key=lambda k: rows[k]["at"][at]["median"])
        out[name] = {"tables": len(rows), "seeds": min(r["seeds"] for r in rows.values()),
                     "worst_table": worst_key, "median_at": rows[worst_key]["at"][at]["median"],
                     "median_early": min(r["at"][early]["median"] for r in rows.values()),
                     "worst_seed_at": min(r["at"][at]["worst"] for r in rows.values())}
    return out


def is_new(name: str) -> bool:
    return name.partition("+")[0] in NEW_SAMPLERS


def margins(per_table: Mapping[str, Mapping[str, dict[str, Any]]], at: float) -> dict[str, dict[str, Any]]:
    """Per table: the best new searcher's median at `at` minus the best baseline's (None when one side is
    missing)."""
    out = {}
    for key, s in per_table.items():
        new = {n: v["at"][at]["median"] for n, v in s.items() if is_new(n)}
        base = {n: v["at"][at]["median"] for n, v in s.items() if not is_new(n)}
        if not new or not base:
            out[key] = None
            continue
        bn, bb = max(new, key=new.get), max(base, key=base.get)
        out[key] = {"new": bn, "new_median": new[bn], "baseline": bb, "baseline_median": base[bb],
                    "margin": new[bn] - base[bb]}
    return out


def best_searcher(summary: Mapping[str, dict[str, Any]]) -> str:
    """The searcher with the highest worst-table median at 25% (ties: the better worst seed, then 15%)."""
    return max(summary, key=lambda n: (summary[n]["median_at"], summary[n]["worst_seed_at"],
                                       summary[n]["median_early"]))


def headline(summary: Mapping[str, dict[str, Any]], at: float = 0.25, early: float = 0.15) -> str:
    name = best_searcher(summary)
    s = summary[name]
    return (f"best: {name} reaches {s['median_at']:.3f} of the grid's hypervolume at {100 * at:.0f}% of its "
            f"trial-epochs (worst table, median of {s['seeds']} seeds, worst {s['worst_seed_at']:.3f}); "
            f"at {100 * early:.0f}%: {s['median_early']:.3f}")


# --------------------------------------------------------------------------------------------------
# printed


def saved_txt(x: float) -> str:
    """A saving: -inf = the stopping variant never reached the plain one's final HV."""
    return "not reached" if x == -math.inf else "n/a" if not math.isfinite(x) else f"{100 * x:.0f}%"


def table_lines(summary: Mapping[str, dict[str, Any]], ats: Sequence[float], goal: float, grid_te: int
                ) -> list[str]:
    cols = " | ".join(f"HV@{100 * a:.0f}% med worst" for a in ats)
    head = f"{'searcher':>15} | seeds | {cols} | final | to {goal:g} HV (med) | reached | trials"
    lines = [head, "-" * len(head)]
    for name, s in summary.items():
        at_txt = " | ".join(f"{s['at'][a]['median']:>9.3f} {s['at'][a]['worst']:>6.3f}" for a in ats)
        to_goal = s["to_goal_median"]
        to_goal_txt = (f"{to_goal:.0f} ({100 * to_goal / grid_te:.0f}% grid)" if math.isfinite(to_goal)
                       else "not reached")
        lines.append(f"{name:>15} | {s['seeds']:>5} | {at_txt} | {s['final_median']:>5.3f} | {to_goal_txt:>16} | "
                     f"{s['reached']:>3}/{s['seeds']:<3} | {s['trials_median']:>6.0f}")
    return lines


def saving_lines(saved: Mapping[str, dict[str, Any]]) -> list[str]:
    lines = []
    for name, s in saved.items():
        ok = math.isfinite(s["median"]) and s["median"] >= SAVING_GOAL
        lines.append(f"early stopping, {name} vs {s['plain']}: reaches {s['plain']}'s final HV in {s['reached']}/"
                     f"{s['seeds']} seeds; trial-epochs saved against when {s['plain']} first reached it: median "
                     f"{saved_txt(s['median'])}, worst {saved_txt(s['worst'])} "
                     f"({'>=' if ok else '<'} {100 * SAVING_GOAL:.0f}%{'' if ok else ': misses'})")
    return lines


def late_lines(bloomer: Mapping[str, Any] | None, hits: Mapping[str, list[int]], seeds: Mapping[str, int]
               ) -> list[str]:
    if bloomer is None:
        return [f"late bloomer: no feasible point at epoch >= {LATE_EPOCH}"]
    params = ", ".join(f"{k}={v}" for k, v in bloomer["params"].items())
    found = ", ".join(f"{name} {len(h)}/{seeds[name]}" for name, h in hits.items())
    return [f"late bloomer (best feasible forget_quality at epoch >= {LATE_EPOCH}): {params} at epoch "
            f"{bloomer['epoch']} (FQ {bloomer['forget_quality']:.3g}); found within the budget: {found}"]


def summary_lines(summary: Mapping[str, dict[str, Any]], marg: Mapping[str, Any], at: float, early: float
                  ) -> list[str]:
    head = (f"{'searcher':>15} | tables | worst table | median@{100 * at:.0f}% | median@{100 * early:.0f}% | "
            f"worst seed@{100 * at:.0f}%")
    lines = [f"summary over tables (worst table's median; worst seed over all tables):", head, "-" * len(head)]
    for name, s in summary.items():
        lines.append(f"{name:>15} | {s['tables']:>6} | {s['worst_table']:>11} | {s['median_at']:>10.3f} | "
                     f"{s['median_early']:>10.3f} | {s['worst_seed_at']:>13.3f}")
    for key, m in marg.items():
        if m is None:
            lines.append(f"margin at {100 * at:.0f}%, {key}: needs a new (trajectory) searcher and a baseline")
        else:
            lines.append(f"margin at {100 * at:.0f}%, {key}: best new {m['new']} {m['new_median']:.3f} - best "
                         f"baseline {m['baseline']} {m['baseline_median']:.3f} = {m['margin']:+.3f}")
    return lines


# --------------------------------------------------------------------------------------------------
# outputs


def finite(x: Any) -> Any:
    """JSON has no inf/NaN: they are written as null (recursively; float keys as strings)."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, Mapping):
        return {(f"{k:g}" if isinstance(k, float) else k): finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [finite(v) for v in x]
    return x


def write_table(out: Path, info: dict[str, Any], traces: Sequence[Trace], curves: Curves, grid_hv: float,
                summary: Mapping, saved: Mapping, bloomer: Any, hits: Mapping) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "curves.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["searcher", "seed", "trial_epochs", "hypervolume", "fraction"])
        for t in traces:
            for te, hv in curves[(t.name, t.seed)]:
                w.writerow([t.name, t.seed, te, f"{hv:.6g}", f"{hv / grid_hv:.6f}"])
    replays = [{"searcher": t.name, "sampler": t.sampler, "scheduler": t.scheduler, "seed": t.seed,
                "trials": t.trials, "wall_s": round(t.wall_s, 2), "curve": curves[(t.name, t.seed)],
                "order": [[p["trial"], {k: p["params"][k] for k in sorted(p["params"])}, p["result"].get("epoch")]
                          for p in t.points]} for t in traces]
    (out / "bench_search.json").write_text(json.dumps(finite({
        "setup": info, "summary": summary, "early_stopping": saved,
        "late_bloomer": {"point": bloomer, "seeds_found": hits}, "replays": replays})) + "\n", encoding="utf-8")


def draw_png(path: Path, panels: Sequence[dict[str, Any]], ats: Sequence[float]) -> None:
    """One panel per table: median HV fraction per searcher against trial-epochs as % of the grid's, min..max
    band over seeds, dotted lines at `ats` (matplotlib Agg, as bench_landscape)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import numpy as np

    n = len(panels)
    fig, axes = plt.subplots(1, n, figsize=(5.2 * n + 0.6, 4.6), dpi=110, squeeze=False, sharey=True)
    samplers = list(dict.fromkeys(t.sampler for p in panels for t in p["traces"]))
    styles = {"none": "-", "moasha": "--", "trajectory": "-."}
    for ax, p in zip(axes[0], panels):
        grid_te, grid_hv, traces, curves = p["grid_te"], p["grid_hv"], p["traces"], p["curves"]
        xs = np.arange(0, int(p["budget"]) + 1)
        for name in names_of(traces):
            mine = [t for t in traces if t.name == name]
            ys = np.array([[hv_at(curves[(name, t.seed)], x) / grid_hv for x in xs] for t in mine])
            colour = plt.cm.tab10(samplers.index(mine[0].sampler) % 10)
            ax.plot(100 * xs / grid_te, np.median(ys, axis=0), color=colour, ls=styles.get(mine[0].scheduler, ":"),
                    lw=1.6, label=name)
            ax.fill_between(100 * xs / grid_te, ys.min(axis=0), ys.max(axis=0), color=colour, alpha=0.12,
                            linewidth=0)
        for at in ats:
            ax.axvline(100 * at, color="black", lw=0.8, ls=":")
        ax.set_xlim(0, 100 * xs[-1] / grid_te)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel(f"trial-epochs, % of the grid's ({grid_te})")
        ax.set_title(f"{p['label']} ({len(p['grid'])} runs), median of {p['seeds']} seeds", fontsize=10)
    axes[0][0].set_ylabel("hypervolume of the feasible points / the grid's")
    axes[0][-1].legend(fontsize=8, loc="lower right", ncol=1)
    fig.suptitle("search efficiency on the landscape tables: band min..max over seeds; dotted: "
                 + ", ".join(f"{100 * a:.0f}%" for a in ats) + " of the grid's trial-epochs", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# --------------------------------------------------------------------------------------------------
# live


def live_run(label: str, winner: str, n_trials: int, setup: Setup, grid_hv: float, out: Path) -> str:
    """One live sweep of `winner` on the landscape's own spec of the grid `label` (see the module docstring);
    returns its result line."""
    from bench_landscape import entry_spec, load_grid

    from sweeps.pareto import hypervolume
    from sweeps.results import read_results
    from sweeps.service import run_sweep
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
    points = [p for p in read_results(sweep_dir).points if p.epoch and p.search_id == search_id]
    vectors = [v for p in points if (v := setup.vector(p.metrics)) is not None]
    frac = hypervolume(vectors, setup.reference) / grid_hv
    return (f"live: {winner} on tofu-mini reaches {frac:.3f} of the table grid's hypervolume with {len(points)} "
            f"trial-epochs ({n_trials} trials; the replay's budget was its median at 25%) -> {sweep_dir}")


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
