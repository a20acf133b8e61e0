"""The numbers of `benchmarks/bench_search.py`: per searcher the hypervolume fractions at the budgets read, the
early-stopping saving, the late bloomer and who found it, the summary over tables, the margins and the headline.

    summary = summarise(traces, curves, grid_hv, grid_te, ats=[0.15, 0.25], goal=0.95)
    print(headline(across({"drnpo": summary}, 0.25, 0.15)))

Pure: traces and curves in, numbers out (tested without Ray in tests/sweeps/test_bench_search.py).
"""

from __future__ import annotations

import math
import statistics
from typing import Any, Mapping, Sequence

from search_replay import Trace, epochs_to_reach, hv_at
from search_report import LATE_EPOCH, Curves, names_of
from lookup import freeze

NEW_SAMPLERS = ("trajectory",)  # the searchers measured against every other one (the baselines)


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs) if xs else math.nan


def worst(xs: Sequence[float]) -> float:
    return min(xs) if xs else math.nan


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
