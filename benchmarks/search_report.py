"""What `benchmarks/bench_search.py` prints and writes: the per-table lines, the early-stopping and late-bloomer
lines, the summary over tables, each table's curves.csv / bench_search.json and the PNG of the curves.

    lines = table_lines(summary, ats=[0.15, 0.25], goal=0.95, grid_te=540)
    draw_png(Path("docs/bench_search.png"), panels, ats=[0.15, 0.25])

Pure output: the numbers come from bench_search's summaries (`summarise`, `savings`, `across`, `margins`).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

from search_replay import Trace, hv_at

Curves = Mapping[tuple[str, int], Sequence[tuple[int, float]]]
SAVING_GOAL = 0.30
LATE_EPOCH = 9  # a late bloomer's point: at epoch >= 9 (tofu-mini's last MO-ASHA rung)


def names_of(traces: Sequence[Trace]) -> list[str]:
    return list(dict.fromkeys(t.name for t in traces))


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
