"""The plotly figures of the Pareto report, built from `dashboards.report_data.ReportData`.

    from dashboards.pareto_report import front_figure, front_3d_figure, paths_figure, parallel_figure
    x, y = data.axes()[0]
    fig = front_figure(data, x, y)          # 2-D front of one objective pair

Every drawn point is one marker of exactly one trace, so a browser test can count them (plotly draws a
2-D scatter marker as an SVG `path.point` inside `g.trace<uid>`). Trace names and uids:

    "before unlearning (epoch 0)"  uid <fig>-before      grey, the target model (one per trial)
    "infeasible (constraint)"      uid <fig>-infeasible  light grey, a constraint fails
    "dominated"                    uid <fig>-dominated   grey, feasible but dominated
    "Pareto front · <model> · <method>"  uid <fig>-pareto-<k>   the group's colour, outlined; knee annotated

Grey traces keep each point's model symbol. Hover shows the trial, epoch, objectives, hyperparameters and
MLflow run; `customdata` holds the run's MLflow UI URL (the page opens it on click). A log-scale objective
(forget_quality) is drawn on a log axis; the parallel-coordinates view shows it as log10.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import plotly.graph_objects as go

from dashboards.report_data import (GREY, STATUS_TEXT, SYMBOLS_2D, SYMBOLS_3D, Axis, ReportData, ReportPoint,
                                    log10_or_none)

HOVER = "%{text}<extra></extra>"
DASHES = ("solid", "dot", "dash", "dashdot", "longdash")
LAYOUT = dict(template="plotly_white", hovermode="closest", margin=dict(l=70, r=20, t=50, b=60),
              legend=dict(font=dict(size=11)))


def trace_specs(data: ReportData,
                points: Sequence[ReportPoint] | None = None) -> list[tuple[str, str, list[ReportPoint]]]:
    """(uid suffix, trace name, points) of the front traces, in drawing order, empty ones left out."""
    pts = data.plotted if points is None else [p for p in points if p.plottable]
    out = [(status, STATUS_TEXT[status], [p for p in pts if p.status == status])
           for status in ("before", "infeasible", "dominated")]
    for k, g in enumerate(data.groups):
        out.append((f"pareto-{k}", f"Pareto front · {g.label}",
                    [p for p in pts if p.status == "pareto" and p.group == g]))
    return [(uid, name, members) for uid, name, members in out if members]


def _marker(uid: str, members: Sequence[ReportPoint], symbols: Sequence[str], three_d: bool) -> dict[str, Any]:
    sym = [symbols[p.group.symbol % len(symbols)] for p in members]
    if uid.startswith("pareto"):
        colour = members[0].group.colour
        size = [13 if p.knee else 10 for p in members] if not three_d else 6
        return dict(color=colour, symbol=sym, size=size, opacity=1.0,
                    line=dict(color="black", width=[2.5 if p.knee else 1.2 for p in members] if not three_d else 1))
    status = uid
    return dict(color=GREY[status], symbol=sym, size=7 if not three_d else 4,
                opacity=0.85 if status != "infeasible" else 0.7, line=dict(width=0))


def _axis(axis: Axis, data: ReportData) -> dict[str, Any]:
    """Axis layout; a log axis gets one tick per power of ten (every k-th one past 8 decades)."""
    out: dict[str, Any] = dict(title=dict(text=axis.title), type="log" if axis.log else "linear", zeroline=False)
    if axis.log:
        logs = [math.log10(v) for v in (axis.value(p.point) for p in data.plotted) if v is not None]
        span = (max(logs) - min(logs)) if logs else 1.0
        out.update(exponentformat="power", dtick=max(1, math.ceil(span / 8)))
    return out


def front_figure(data: ReportData, x: Axis, y: Axis, fig_id: str = "front") -> go.Figure:
    """One 2-D projection of every model's Pareto front (the fronts are over all objectives)."""
    fig = go.Figure()
    for uid, name, members in trace_specs(data):
        fig.add_trace(go.Scatter(
            x=[x.value(p.point) for p in members], y=[y.value(p.point) for p in members], mode="markers",
            name=name, uid=f"{fig_id}-{uid}", text=[p.hover for p in members], hovertemplate=HOVER,
            customdata=[p.url or "" for p in members], marker=_marker(uid, members, SYMBOLS_2D, False)))
    for p in data.plotted:
        if p.knee:
            fig.add_annotation(x=_ann(x, p), y=_ann(y, p), text=f"knee {p.label}", showarrow=True, arrowhead=2,
                               ax=30, ay=-30, font=dict(size=10))
    fig.update_layout(title=dict(text=f"{x.name} vs {y.name}"), xaxis=_axis(x, data), yaxis=_axis(y, data),
                      height=520, **LAYOUT)
    return fig


def _ann(axis: Axis, p: ReportPoint) -> float | None:
    """Annotation coordinates are in axis units: log10 on a log axis."""
    v = axis.value(p.point)
    return log10_or_none(v) if axis.log else v


def front_3d_figure(data: ReportData, fig_id: str = "front-3d") -> go.Figure | None:
    """The fronts in the space of the first three objectives (None when there are fewer than three)."""
    if len(data.objectives) < 3:
        return None
    x, y, z = data.objectives[:3]
    fig = go.Figure()
    for uid, name, members in trace_specs(data):
        fig.add_trace(go.Scatter3d(
            x=[x.value(p.point) for p in members], y=[y.value(p.point) for p in members],
            z=[z.value(p.point) for p in members], mode="markers", name=name, uid=f"{fig_id}-{uid}",
            text=[p.hover for p in members], hovertemplate=HOVER, customdata=[p.url or "" for p in members],
            marker=_marker(uid, members, SYMBOLS_3D, True)))
    fig.update_layout(title=dict(text="Pareto fronts across models and methods"), height=640,
                      scene=dict(xaxis=_axis(x, data), yaxis=_axis(y, data), zaxis=_axis(z, data)), **LAYOUT)
    return fig


def paths_figure(data: ReportData, x: Axis, y: Axis, fig_id: str = "paths") -> go.Figure:
    """Each trial's epoch-by-epoch path through the (x, y) plane: epoch 0 -> 1 -> ...; filled markers are on
    the Pareto front, open ones are not."""
    fig = go.Figure()
    by_trial: dict[str, list[ReportPoint]] = {}
    for p in data.plotted:
        by_trial.setdefault(p.point.trial_id, []).append(p)
    seen_groups: set[str] = set()
    per_group: dict[str, int] = {}
    for i, (trial, members) in enumerate(by_trial.items()):
        members.sort(key=lambda p: p.point.epoch)
        g = members[0].group
        k = per_group[g.label] = per_group.get(g.label, -1) + 1  # trials of one group differ by dash
        base = SYMBOLS_2D[g.symbol % len(SYMBOLS_2D)]
        fig.add_trace(go.Scatter(
            x=[x.value(p.point) for p in members], y=[y.value(p.point) for p in members], mode="lines+markers",
            name=f"{trial} ({g.label})", uid=f"{fig_id}-{i}", legendgroup=g.label,
            legendgrouptitle=dict(text=g.label) if g.label not in seen_groups else None,
            text=[p.hover for p in members], hovertemplate=HOVER, customdata=[p.url or "" for p in members],
            line=dict(color=g.colour, width=1.5, dash=DASHES[k % len(DASHES)]),
            marker=dict(color=g.colour, size=[10 if p.status == "pareto" else 7 for p in members],
                        symbol=[base if p.status == "pareto" else f"{base}-open" for p in members])))
        seen_groups.add(g.label)
    fig.update_layout(title=dict(text=f"Trial paths by epoch: {x.name} vs {y.name}"), xaxis=_axis(x, data),
                      yaxis=_axis(y, data), height=520, **LAYOUT)
    return fig


def _dimension(label: str, values: list[Any], log: bool = False) -> dict[str, Any]:
    """A parcoords axis; strings become ticked codes, missing values sit on an 'n/a' tick below the range."""
    if any(isinstance(v, str) or isinstance(v, bool) for v in values if v is not None):
        cats = sorted({str(v) for v in values if v is not None})
        codes = [cats.index(str(v)) if v is not None else -1 for v in values]
        ticks = ([-1] if -1 in codes else []) + list(range(len(cats)))
        text = (["n/a"] if -1 in codes else []) + cats
        return dict(label=label, values=codes, tickvals=ticks, ticktext=text, range=[min(ticks), max(ticks)])
    nums = [math.log10(v) if (log and v is not None and v > 0) else (None if log else v) for v in values]
    present = [v for v in nums if v is not None and math.isfinite(v)]
    if not present:
        return {}
    lo, hi = min(present), max(present)
    if len(present) == len(nums):
        return dict(label=label + (" (log10)" if log else ""), values=nums,
                    range=[lo, hi] if hi > lo else [lo - 1, hi + 1])
    na = lo - 0.15 * ((hi - lo) or 1.0)
    return dict(label=label + (" (log10)" if log else ""), values=[na if v is None else v for v in nums],
                range=[na, hi if hi > lo else lo + 1], tickvals=[na, lo, hi],
                ticktext=["n/a", f"{lo:.3g}", f"{hi:.3g}"])


def parallel_figure(data: ReportData, fig_id: str = "parallel") -> go.Figure | None:
    """Hyperparameters against objectives, one line per unlearned point (epoch >= 1); Pareto lines in colour."""
    pts = [p for p in data.plotted if p.point.epoch >= 1]
    if not pts:
        return None
    dims = [_dimension("model · method", [p.group.label for p in pts])]
    for name in data.hparams:
        dims.append(_dimension(name, [p.point.hparams.get(name) for p in pts], log=name in data.log_params))
    dims.append(_dimension("epoch", [p.point.epoch for p in pts]))
    for a in data.objectives:
        dims.append(_dimension(a.name, [a.value(p.point) for p in pts], log=a.log))
    colour = [{"pareto": 1.0, "dominated": 0.5}.get(p.status, 0.0) for p in pts]
    fig = go.Figure(go.Parcoords(
        uid=f"{fig_id}-lines", dimensions=[d for d in dims if d],
        line=dict(color=colour, cmin=0, cmax=1, showscale=False,
                  colorscale=[[0.0, GREY["infeasible"]], [0.5, GREY["dominated"]], [1.0, "#d62728"]])))
    fig.update_layout(title=dict(text="Hyperparameters vs objectives (red: Pareto front, grey: dominated, "
                                      "light grey: infeasible)"), height=520, template="plotly_white",
                      margin=dict(l=170, r=80, t=110, b=40))
    return fig
