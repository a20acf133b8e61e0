"""Benchmark: search efficiency on the tofu-mini landscape, replayed through the real Ray Tune searcher and scheduler.

    python benchmarks/bench_search.py                                   # every searcher, 5 seeds, 100% budget
    python benchmarks/bench_search.py --seeds 2 --searchers random,tpe  # a quick look (a minute or two)
    python benchmarks/bench_search.py --landscape runs/landscape --grid NPO --budget 0.5   # a full landscape
    python benchmarks/bench_search.py --live                            # + one live sweep of the winner (minutes)

What it measures: how much of the grid's Pareto front a searcher finds for a fraction of the grid's compute.
The landscape (`benchmarks/bench_landscape.py`: every run of a grid, every epoch's evaluation) is the table;
each searcher is replayed against it through the service's own pieces (`search_replay.py`): the lookup
trainable (`sweeps.scheduling.lookup`), our `OptunaSearcher` over the grid's discrete values (one
`CategoricalDistribution` per hyperparameter) and, for "+moasha", our `MOASHAScheduler` with the base spec's
objectives, constraint, grace and reduction factor (tofu-mini: rungs at epochs 1, 3, 9; max_t = 15, the
longest run). Searchers: `grid` (Optuna's grid sampler: every combination once, in an order shuffled by the
seed, then the searcher is finished), `random`, `tpe`, `gp` (and `nsga2` on request), each with and without
MO-ASHA, over `--seeds` seeds (the searcher's seed). Trials run one at a time (max_concurrent_trials=1), so
Tune asks for the next configuration only after the previous trial was told: a replay is deterministic given
its seed. A failed run replays its points, then the failure report (`trial_failed`, NaN objectives): the
searcher tells it FAIL and goes on.

Trial-epochs (the budget axis): the evaluation points trials actually reported, summed over trials (a trial
stopped by MO-ASHA at epoch 3 counts 3; a failed run counts its points; a configuration proposed twice is paid
twice, as in the service). The full grid's trial-epochs are the sum of its runs' epochs (54 DrNPO runs with
epochs 5/10/15: 540). Each replay runs until it has consumed `--budget` x the grid's trial-epochs (or its
searcher is finished).

Hypervolume: of the *feasible* points seen so far (model_utility >= 0.9 x the target's, the base spec's
constraint), in (log10 forget_quality up, model_utility up, gibberish_rate down), with `sweeps.pareto.hypervolume`
(moocore, exact) against the reference point (log10 of the target's forget quality, 0.9 x the target's model
utility, gibberish 1.0): a point counts only where it forgets better than the model before unlearning, keeps
the utility the constraint demands (the worst feasible value) and is not all gibberish (the worst rate). The
grid's hypervolume is that of every feasible point of every run; results are fractions of it (a ratio, so
the axes' units do not matter).

Output (in --out, default runs/bench-search):
* `curves.csv`: searcher, seed, trial_epochs, hypervolume, fraction (of the grid's), one row per point;
* `bench_search.json`: the setup (grid, reference point, grid HV and trial-epochs, rungs), per searcher the
  summary, per replay its trials, wall time, curve and the order of its points ([trial, params, epoch]);
* `bench_search.png`: HV fraction against trial-epochs, the median per searcher and a min..max band.
Printed: one line per replay, the table (per searcher: HV at 25% of the grid's trial-epochs as a fraction of
the grid's HV, median and worst over seeds; the final HV; median trial-epochs to reach 0.95 of it and in how
many seeds it did; trials and distinct configurations run, median; wall seconds), the early-stopping saving
per sampler, and last the headline
`best: <searcher> reaches <ratio> of the grid's hypervolume at 25% of its trial-epochs (median of N seeds, worst <w>)`.

Early stopping ("MO early stopping saves >= 40% of trial-epochs at equal final hypervolume against the same
sampler without it"), per sampler and seed s: H_s = the HV the sampler without MO-ASHA reaches with its whole
budget B_s; T_s = the trial-epochs the sampler with MO-ASHA (same seed) needs to reach H_s (inf when it does
not within the budget); saving_s = 1 - T_s / B_s. Printed: the median and worst saving over seeds, whether the
median meets 40%, and the same against the trial-epochs the sampler itself first reached H_s (stricter).

--live: one live sweep of the winner on tofu-mini through `sweeps.service.run_sweep`: the landscape's own spec of
that grid (`bench_landscape.entry_spec`: same model, data, fixed values and discrete space) with the winner's
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
from pathlib import Path
from typing import Any, Sequence

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from search_replay import (
    Setup, Trace, consumed, distinct_configs, epochs_to_reach, grid_hypervolume, grid_runs, grid_trial_epochs, hv_at,
    hv_curve, load_landscape, replay, searcher_name, start_ray, stop_ray, trials_within,
)

DEFAULT_LANDSCAPE = REPO / "runs" / "landscape"
FALLBACK_LANDSCAPE = REPO / "benchmarks" / "data" / "landscape-drnpo"  # committed: the DrNPO grid, reduced
DEFAULT_SPEC = REPO / "sweeps" / "tofu-mini.yaml"
SAVING_GOAL = 0.40


# --------------------------------------------------------------------------------------------------
# inputs


def landscape_folder(arg: Path | None) -> Path:
    """--landscape, or runs/landscape (falling back to the committed DrNPO grid, benchmarks/data/landscape-drnpo,
    with a message, when it has no runs yet: a fresh clone replays without re-running the grid)."""
    if arg is not None:
        if not (arg / "runs.jsonl").is_file():
            raise SystemExit(f"{arg}: no runs.jsonl (run benchmarks/bench_landscape.py --out {arg} first)")
        return arg
    if (DEFAULT_LANDSCAPE / "runs.jsonl").is_file():
        return DEFAULT_LANDSCAPE
    if (FALLBACK_LANDSCAPE / "runs.jsonl").is_file():
        print(f"note: {DEFAULT_LANDSCAPE.relative_to(REPO)} has no runs.jsonl; replaying the committed grid "
              f"{FALLBACK_LANDSCAPE.relative_to(REPO)}")
        return FALLBACK_LANDSCAPE
    raise SystemExit(f"no landscape: neither {DEFAULT_LANDSCAPE} nor {FALLBACK_LANDSCAPE} has runs.jsonl "
                     "(python benchmarks/bench_landscape.py writes it)")


def base_spec_path(folder: Path) -> Path:
    """The spec the landscape was run from (landscape.json's base_spec), else tofu-mini."""
    meta = folder / "landscape.json"
    if meta.is_file():
        base = json.loads(meta.read_text(encoding="utf-8")).get("base_spec")
        if base and (REPO / base).is_file():
            return REPO / base
    return DEFAULT_SPEC


# --------------------------------------------------------------------------------------------------
# summaries


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs) if xs else math.nan


def summarise(traces: list[Trace], curves: dict[tuple[str, int], list], grid_hv: float, at_te: float,
              goal: float) -> dict[str, dict[str, Any]]:
    """Per searcher: HV fraction at `at_te` (median, worst), trial-epochs to `goal` x grid HV, trials."""
    out: dict[str, dict[str, Any]] = {}
    for name in dict.fromkeys(t.name for t in traces):
        mine = [t for t in traces if t.name == name]
        at = [hv_at(curves[(name, t.seed)], at_te) / grid_hv for t in mine]
        reach = [epochs_to_reach(curves[(name, t.seed)], goal * grid_hv) for t in mine]
        out[name] = {"seeds": len(mine), "hv_at_median": median(at), "hv_at_worst": min(at),
                     "final_median": median([c[-1][1] / grid_hv if (c := curves[(name, t.seed)]) else 0.0
                                             for t in mine]),
                     "to_goal_median": median(reach), "reached": sum(math.isfinite(r) for r in reach),
                     "trials_median": median([t.trials for t in mine]),
                     "configs_median": median([distinct_configs(t) for t in mine]),
                     "wall_s": sum(t.wall_s for t in mine)}
    return out


def savings(traces: list[Trace], curves: dict[tuple[str, int], list]) -> dict[str, dict[str, Any]]:
    """Per sampler run both ways: the early-stopping saving (see the module docstring)."""
    out = {}
    for sampler in dict.fromkeys(t.sampler for t in traces):
        plain = {t.seed: t for t in traces if t.sampler == sampler and not t.moasha}
        early = {t.seed: t for t in traces if t.sampler == sampler and t.moasha}
        seeds = sorted(set(plain) & set(early))
        if not seeds:
            continue
        vs_budget, vs_first, reached = [], [], 0
        for s in seeds:
            base_curve = curves[(searcher_name(sampler, False), s)]
            h, budget = (base_curve[-1][1], consumed(plain[s])) if base_curve else (0.0, 0)
            needed = epochs_to_reach(curves[(searcher_name(sampler, True), s)], h)
            reached += math.isfinite(needed)
            vs_budget.append(1 - needed / budget if budget else math.nan)
            vs_first.append(1 - needed / max(1.0, epochs_to_reach(base_curve, h)))
        out[sampler] = {"seeds": len(seeds), "reached": reached, "median": median(vs_budget), "worst": min(vs_budget),
                        "median_vs_first_reach": median(vs_first)}
    return out


def pct(x: float) -> str:
    return "none" if not math.isfinite(x) else f"{100 * x:.0f}%"


def table_lines(summary: dict[str, dict[str, Any]], at: float, goal: float, grid_te: int) -> list[str]:
    head = (f"{'searcher':>14} | seeds | HV@{100 * at:.0f}% median | worst | final HV median | "
            f"trial-epochs to {goal:g} HV (median) | reached | trials (median) | distinct configs | wall s")
    lines = [head, "-" * len(head)]
    for name, s in summary.items():
        to_goal = s["to_goal_median"]
        to_goal_txt = (f"{to_goal:.0f} ({100 * to_goal / grid_te:.0f}% of grid)" if math.isfinite(to_goal)
                       else "not reached")
        lines.append(f"{name:>14} | {s['seeds']:>5} | {s['hv_at_median']:>15.3f} | {s['hv_at_worst']:.3f} | "
                     f"{s['final_median']:>15.3f} | {to_goal_txt:>33} | {s['reached']:>4}/{s['seeds']:<2} | "
                     f"{s['trials_median']:>15.0f} | {s['configs_median']:>16.0f} | {s['wall_s']:>6.0f}")
    return lines


def saving_lines(saved: dict[str, dict[str, Any]]) -> list[str]:
    lines = []
    for sampler, s in saved.items():
        verdict = "meets" if s["median"] >= SAVING_GOAL else "misses"
        lines.append(f"early stopping, {sampler}: {sampler}+moasha reaches the final HV of {sampler} alone in "
                     f"{s['reached']}/{s['seeds']} seeds within the budget; trial-epochs saved {pct(s['median'])} "
                     f"(median; worst {pct(s['worst'])}): {verdict} the {100 * SAVING_GOAL:.0f}% goal; saved against "
                     f"the trial-epochs {sampler} alone first reached it: {pct(s['median_vs_first_reach'])}")
    return lines


def headline(summary: dict[str, dict[str, Any]], at: float) -> str:
    name, s = max(summary.items(), key=lambda kv: (kv[1]["hv_at_median"], kv[1]["hv_at_worst"]))
    return (f"best: {name} reaches {s['hv_at_median']:.3f} of the grid's hypervolume at {100 * at:.0f}% of its "
            f"trial-epochs (median of {s['seeds']} seeds, worst {s['hv_at_worst']:.3f})")


# --------------------------------------------------------------------------------------------------
# outputs


def finite_only(d: dict[str, Any]) -> dict[str, Any]:
    """JSON has no inf/NaN: they are written as null."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


def write_outputs(out: Path, setup_info: dict[str, Any], traces: list[Trace], curves: dict, grid_hv: float,
                  summary: dict, saved: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "curves.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["searcher", "seed", "trial_epochs", "hypervolume", "fraction"])
        for t in traces:
            for te, hv in curves[(t.name, t.seed)]:
                w.writerow([t.name, t.seed, te, f"{hv:.6g}", f"{hv / grid_hv:.6f}"])
    replays = [{"searcher": t.name, "sampler": t.sampler, "moasha": t.moasha, "seed": t.seed, "trials": t.trials,
                "wall_s": round(t.wall_s, 2), "curve": curves[(t.name, t.seed)],
                "order": [[p["trial"], {k: p["params"][k] for k in sorted(p["params"])}, p["result"].get("epoch")]
                          for p in t.points]} for t in traces]
    (out / "bench_search.json").write_text(json.dumps({
        "setup": setup_info, "summary": {k: finite_only(v) for k, v in summary.items()},
        "early_stopping": {k: finite_only(v) for k, v in saved.items()}, "replays": replays}) + "\n", encoding="utf-8")
    draw_png(out / "bench_search.png", traces, curves, grid_hv, setup_info)


def draw_png(path: Path, traces: list[Trace], curves: dict, grid_hv: float, info: dict[str, Any]) -> None:
    """Median HV fraction per searcher against trial-epochs, min..max band (matplotlib Agg, as bench_landscape)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import numpy as np

    grid_te = info["grid_trial_epochs"]
    xs = np.arange(0, int(info["budget_trial_epochs"]) + 1)
    fig, ax = plt.subplots(figsize=(8.5, 5), dpi=110)
    samplers = list(dict.fromkeys(t.sampler for t in traces))
    for name in dict.fromkeys(t.name for t in traces):
        mine = [t for t in traces if t.name == name]
        ys = np.array([[hv_at(curves[(name, t.seed)], x) / grid_hv for x in xs] for t in mine])
        colour = plt.cm.tab10(samplers.index(mine[0].sampler) % 10)  # a sampler's colour, dashed with MO-ASHA
        ax.plot(xs, np.median(ys, axis=0), color=colour, ls="--" if "+moasha" in name else "-", lw=1.6, label=name)
        ax.fill_between(xs, ys.min(axis=0), ys.max(axis=0), color=colour, alpha=0.12, linewidth=0)
    ax.axvline(info["at"] * grid_te, color="black", lw=0.8, ls=":")
    ax.axhline(info["goal"], color="black", lw=0.8, ls=":")
    ax.set_xlabel(f"trial-epochs consumed (the full grid: {grid_te})")
    ax.set_ylabel("hypervolume of the feasible points / the grid's")
    ax.set_ylim(0, 1.02)
    ax.set_xlim(0, xs[-1])
    ax.legend(fontsize=8, loc="lower right", ncol=2)
    ax.set_title(f"{info['grid']} grid of {Path(info['landscape']).name}: median over {info['seeds']} seeds, "
                 f"band min..max; dotted: {100 * info['at']:.0f}% of the grid, {info['goal']:g} of its HV", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# --------------------------------------------------------------------------------------------------
# live


def live_run(label: str, winner: str, n_trials: int, setup: Setup, grid_hv: float, out: Path) -> str:
    """One live sweep of `winner` on the landscape's own spec of the grid `label` (see the module docstring);
    returns its result line."""
    from bench_landscape import entry_spec, load_grid

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
    sampler, _, scheduler = winner.partition("+")
    raw = spec.raw()
    raw.update(name=f"bench-search-live-{sampler}{'-moasha' if scheduler else ''}-{time.strftime('%Y%m%d-%H%M%S')}",
               seed=0, search={**raw.get("search", {}), "sampler": sampler, "scheduler": scheduler or "none"},
               budget={**raw.get("budget", {}), "num_trials": n_trials, "time_budget_s": None})
    live = parse_spec(raw, where=f"bench_search --live ({winner})")
    print(f"live: {live.name}: {winner}, {n_trials} trials on {live.models[0].name} (this trains real models)")
    sweep_dir = run_sweep(live, tracking_optional=True)
    search_id = live.searches()[0].search_id
    points = [p for p in read_results(sweep_dir).points if p.epoch and p.search_id == search_id]
    vectors = [v for p in points if (v := setup.vector(p.metrics)) is not None]
    from sweeps.pareto import hypervolume

    frac = hypervolume(vectors, setup.reference) / grid_hv
    return (f"live: {winner} on tofu-mini reaches {frac:.3f} of the table grid's hypervolume with {len(points)} "
            f"trial-epochs ({n_trials} trials; the replay's budget was its median at 25%) -> {sweep_dir}")


# --------------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--landscape", type=Path, default=None,
                    help=f"landscape folder (default {DEFAULT_LANDSCAPE.relative_to(REPO)}, else "
                         f"{FALLBACK_LANDSCAPE.relative_to(REPO)})")
    ap.add_argument("--grid", default="DrNPO", help="the grid's label in runs.jsonl (DrNPO = NPO + BalDRO-DV)")
    ap.add_argument("--searchers", default="grid,random,tpe,gp", help="samplers: grid,random,tpe,gp,nsga2")
    ap.add_argument("--schedulers", default="none,moasha", help="none, moasha or both")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--budget", type=float, default=1.0, help="trial-epochs per replay, x the grid's")
    ap.add_argument("--at", type=float, default=0.25, help="the headline's budget, x the grid's trial-epochs")
    ap.add_argument("--goal", type=float, default=0.95, help="HV fraction whose trial-epochs are reported")
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "bench-search")
    ap.add_argument("--live", action="store_true", help="then one live sweep of the winner on tofu-mini (minutes)")
    args = ap.parse_args(argv)
    if args.budget < args.at:
        ap.error(f"--budget {args.budget} must be >= --at {args.at}")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    from sweeps.searcher import SAMPLERS

    samplers = [s.strip() for s in args.searchers.split(",") if s.strip()]
    schedulers = [s.strip() for s in args.schedulers.split(",") if s.strip()]
    if bad := [s for s in samplers if s not in SAMPLERS] + [s for s in schedulers if s not in ("none", "moasha")]:
        raise SystemExit(f"unknown searcher/scheduler {bad}: samplers {list(SAMPLERS)}, schedulers none, moasha")
    folder = landscape_folder(args.landscape)
    runs, target = load_landscape(folder)
    grid = grid_runs(runs, args.grid)
    if not grid:
        raise SystemExit(f"{folder}: no runs labelled {args.grid} (labels: {sorted({r['label'] for r in runs})})")
    setup = Setup.from_spec(base_spec_path(folder), target)
    grid_hv, grid_te = grid_hypervolume(grid, setup), grid_trial_epochs(grid)
    budget, at_te = math.ceil(args.budget * grid_te), args.at * grid_te
    failed = sum(r.get("status") != "ok" for r in grid)
    print(f"{args.grid} grid of {folder}: {len(grid)} runs ({failed} failed), {grid_te} trial-epochs, hypervolume "
          f"{grid_hv:.4g} at reference {[round(x, 4) for x in setup.reference]} (minimisation space: -log10 FQ, "
          f"-MU, gibberish); each replay: {budget} trial-epochs, one trial at a time")
    if grid_hv <= 0:
        raise SystemExit("the grid has no feasible point beyond the reference point: nothing to compare")

    plan = [(s, m == "moasha", seed) for s in samplers for m in schedulers for seed in range(args.seeds)]
    traces, curves = [], {}
    temp = start_ray()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-search-") as work:
            for i, (sampler, moasha, seed) in enumerate(plan, start=1):
                trace = replay(grid, setup, sampler, moasha, seed, budget, Path(work))
                curve = hv_curve(trace, setup)
                traces.append(trace)
                curves[(trace.name, seed)] = curve
                print(f"[{i}/{len(plan)}] {trace.name} seed {seed}: {trace.trials} trials, {consumed(trace)} "
                      f"trial-epochs, HV {hv_at(curve, at_te) / grid_hv:.3f} of the grid's at {100 * args.at:.0f}%, "
                      f"{(curve[-1][1] if curve else 0) / grid_hv:.3f} at the end ({trace.wall_s:.1f}s)", flush=True)
    finally:
        stop_ray(temp)

    summary = summarise(traces, curves, grid_hv, at_te, args.goal)
    saved = savings(traces, curves)
    info = {"landscape": str(folder), "grid": args.grid, "runs": len(grid), "failed_runs": failed,
            "grid_trial_epochs": grid_te, "budget_trial_epochs": budget, "at": args.at, "goal": args.goal,
            "grid_hypervolume": grid_hv, "reference_point": setup.reference, "target": target,
            "objectives": [o.label for o in setup.objectives], "constraints": [str(c) for c in setup.constraints],
            "grace": setup.grace, "reduction_factor": setup.reduction_factor, "seeds": args.seeds}
    write_outputs(args.out, info, traces, curves, grid_hv, summary, saved)
    print(f"wrote {args.out / 'curves.csv'}, {args.out / 'bench_search.json'}, {args.out / 'bench_search.png'}")
    for line in [*table_lines(summary, args.at, args.goal, grid_te), *saving_lines(saved)]:
        print(line)
    if args.live:
        name = max(summary, key=lambda n: (summary[n]["hv_at_median"], summary[n]["hv_at_worst"]))
        n_trials = math.ceil(median([trials_within(t, at_te) for t in traces if t.name == name]))
        print(live_run(args.grid, name, n_trials, setup, grid_hv, args.out))
    print(headline(summary, args.at))


if __name__ == "__main__":
    main()
