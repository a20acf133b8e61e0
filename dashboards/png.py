"""The PNG of the main 2-D Pareto front (matplotlib, Agg: no browser, no kaleido).

    from dashboards.png import write_front_png
    write_front_png(data, *data.axes()[0], "report/pareto_front.png")

Same encoding as the HTML page: Pareto points in their model x method colour with a black edge (the knee
labelled), dominated points grey, infeasible ones light grey, epoch-0 points dark grey; a log-scale
objective on a log axis.
"""

from __future__ import annotations

from pathlib import Path

from dashboards.report_data import GREY, STATUS_TEXT, SYMBOLS_MPL, Axis, ReportData


def write_front_png(data: ReportData, x: Axis, y: Axis, path: str | Path, dpi: int = 120) -> Path:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 6), dpi=dpi)
    try:
        for status in ("before", "infeasible", "dominated"):
            members = data.with_status(status)
            for i, sym in enumerate(SYMBOLS_MPL):
                group = [p for p in members if p.group.symbol % len(SYMBOLS_MPL) == i]
                if group:
                    ax.scatter([x.value(p.point) for p in group], [y.value(p.point) for p in group], s=28,
                               marker=sym, c=GREY[status], alpha=0.85, linewidths=0, zorder=2,
                               label=STATUS_TEXT[status] if i == min(p.group.symbol for p in members) else None)
        for g in data.groups:
            group = [p for p in data.with_status("pareto") if p.group == g]
            if not group:
                continue
            ax.scatter([x.value(p.point) for p in group], [y.value(p.point) for p in group], s=70,
                       marker=SYMBOLS_MPL[g.symbol % len(SYMBOLS_MPL)], c=g.colour, edgecolors="black",
                       linewidths=1.0, zorder=3, label=f"Pareto front · {g.label}")
            for p in group:
                if p.knee:
                    ax.annotate(f"knee {p.label}", (x.value(p.point), y.value(p.point)), xytext=(12, 12),
                                textcoords="offset points", fontsize=8, arrowprops=dict(arrowstyle="->"))
        if x.log:
            ax.set_xscale("log")
        if y.log:
            ax.set_yscale("log")
        ax.set_xlabel(x.title)
        ax.set_ylabel(y.title)
        ax.set_title(f"{data.sweep}: Pareto front ({x.name} vs {y.name})")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="best")
        fig.tight_layout()
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, format="png")
    finally:
        plt.close(fig)
    return out
