"""A sweep's evaluated points made ready to plot: each (trial, epoch) point with its Pareto status, its
model x method group (colour, symbol), its hover text and the URL of its MLflow run.

    from dashboards.report_data import build_report_data
    data = build_report_data(spec, read_results(sweep_dir), run_url=lambda run_id: "http://...")
    data.plotted            # points whose objectives can all be drawn (finite; > 0 on a log axis)
    data.axes()             # the 2-D pairs of objective axes; data.axes()[0] is the main front

Statuses (from `sweeps.selection.pareto.sweep_fronts`: one front per model, every objective, the spec's
constraints): "pareto" (on the model's front), "dominated" (feasible, not on the front), "infeasible"
(a constraint fails), "before" (epoch 0: the target model before unlearning), "missing" (an objective
is missing or NaN; such points are counted but cannot be drawn).
"""

from __future__ import annotations

import html
import itertools
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from sweeps.selection.pareto import ParetoResult, sweep_fronts
from sweeps.recording.results import Point, Results, finite

STATUSES = ("pareto", "dominated", "infeasible", "before", "missing")
STATUS_TEXT = {"pareto": "Pareto front", "dominated": "dominated", "infeasible": "infeasible (constraint)",
               "before": "before unlearning (epoch 0)", "missing": "objective missing"}
# one colour per model x method group, one symbol per model (plotly 2-D, plotly 3-D, matplotlib)
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#bcbd22")
SYMBOLS_2D = ("circle", "square", "diamond", "triangle-up", "pentagon", "hexagon", "star", "cross")
SYMBOLS_3D = ("circle", "square", "diamond", "cross", "x", "circle-open", "square-open", "diamond-open")
SYMBOLS_MPL = ("o", "s", "D", "^", "p", "h", "*", "P")
GREY = {"dominated": "#9e9e9e", "infeasible": "#cfcfcf", "before": "#616161"}


@dataclass(frozen=True)
class Axis:
    """One plotted quantity: an objective (or the epoch when the sweep has a single objective)."""

    name: str
    mode: str = "max"  # max | min ("" for the epoch)
    log: bool = False

    @property
    def title(self) -> str:
        if not self.mode:
            return self.name
        better = "higher" if self.mode == "max" else "lower"
        return f"{self.name} ({better} is better{', log scale' if self.log else ''})"

    def value(self, point: Point) -> float | None:
        if self.name == "epoch" and not self.mode:
            return float(point.epoch)
        v = point.metrics.get(self.name)
        if not finite(v) or (self.log and v <= 0):
            return None
        return float(v)


@dataclass(frozen=True)
class Group:
    """A model x BalDRO variant: its legend label, colour and symbol index (per model)."""

    model: str
    variant: str
    label: str
    colour: str
    symbol: int


@dataclass
class ReportPoint:
    point: Point
    status: str
    group: Group
    values: dict[str, float | None]
    url: str | None = None
    reason: str | None = None
    knee: bool = False
    hover: str = ""

    @property
    def label(self) -> str:
        return self.point.label

    @property
    def plottable(self) -> bool:
        return all(v is not None for v in self.values.values())


@dataclass
class ReportData:
    sweep: str
    method: str
    objectives: list[Axis]
    hparams: list[str]
    points: list[ReportPoint]
    groups: list[Group]
    fronts: dict[str, ParetoResult]
    results: Results
    log_params: set[str] = field(default_factory=set)

    @property
    def plotted(self) -> list[ReportPoint]:
        return [p for p in self.points if p.plottable]

    def with_status(self, status: str, points: Sequence[ReportPoint] | None = None) -> list[ReportPoint]:
        return [p for p in (self.plotted if points is None else points) if p.status == status]

    def axes(self) -> list[tuple[Axis, Axis]]:
        """Every pair of objectives (the first is the main front); a single objective is paired with the epoch."""
        if len(self.objectives) == 1:
            return [(self.objectives[0], Axis("epoch", mode=""))]
        return list(itertools.combinations(self.objectives, 2))

    def status_counts(self) -> dict[str, int]:
        """Evaluated points per status (drawn or not)."""
        return {s: sum(p.status == s for p in self.points) for s in STATUSES}

    def n_trials(self) -> int:
        return len({p.point.trial_id for p in self.points})

    def pareto_labels(self) -> dict[str, list[str]]:
        return {model: [p.label for p in res.front] for model, res in self.fronts.items()}


def fmt(value: Any) -> str:
    """Short human form of a metric or hyperparameter value."""
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return str(value)
    return f"{value:.4g}"


def _status(point: Point, res: ParetoResult) -> tuple[str, str | None]:
    if any(p.key == point.key for p in res.front):
        return "pareto", None
    if any(p.key == point.key for p in res.feasible):
        return "dominated", None
    reason = next((why for p, why in res.excluded if p.key == point.key), "")
    kind = reason.split(":")[0]
    if kind == "before unlearning":
        return "before", reason
    if kind == "constraint":
        return "infeasible", reason
    return "missing", reason


def _hover(rp: ReportPoint, objectives: Sequence[Axis], hparams: Sequence[str]) -> str:
    p = rp.point
    lines = [f"<b>{html.escape(p.trial_id)}</b>, epoch {p.epoch}",
             f"{html.escape(rp.group.label)}: {STATUS_TEXT[rp.status]}{' (knee)' if rp.knee else ''}"]
    lines += [f"{html.escape(a.name)} = {fmt(p.metrics.get(a.name))}" for a in objectives]
    names = list(hparams) + sorted(k for k in p.hparams if k not in hparams)
    shown = [f"{html.escape(k)}={html.escape(fmt(p.hparams[k]))}" for k in names if k in p.hparams]
    for i in range(0, len(shown), 3):
        lines.append(", ".join(shown[i:i + 3]))
    if rp.reason and rp.status in ("infeasible", "missing"):
        lines.append(html.escape(rp.reason))
    if rp.url:
        lines.append(f"MLflow run {html.escape(p.mlflow_run_id or '')} (click the point to open it)")
    elif p.mlflow_run_id:
        lines.append(f"MLflow run {html.escape(p.mlflow_run_id)}")
    return "<br>".join(lines)


def build_report_data(spec: Any, results: Results, run_url: Callable[[str], str | None] | None = None) -> ReportData:
    """Statuses, groups, hover texts and MLflow URLs of every evaluated point of a sweep (see the module
    docstring). ``run_url(run_id)`` gives a run's MLflow UI address (None: no link)."""
    from sweeps.spec import variant_label
    from search_spaces.loader import FloatParam, IntParam

    objectives = [Axis(o.name, o.mode, o.scale == "log") for o in spec.objectives]
    fronts = sweep_fronts(spec, results)
    models = list(fronts)
    groups: dict[tuple[str, str], Group] = {}
    for p in results.points:
        key = (p.model, p.variant)
        if key not in groups:
            groups[key] = Group(p.model, p.variant, f"{p.model} · {variant_label(spec.method.base, p.variant)}",
                                PALETTE[len(groups) % len(PALETTE)], models.index(p.model) % len(SYMBOLS_2D))
    hparams = spec.space.names()
    log_params = {n for n, d in spec.space.params.items() if isinstance(d, (FloatParam, IntParam)) and d.log}
    out = []
    for p in results.points:
        res = fronts[p.model]
        status, reason = _status(p, res)
        url = run_url(p.mlflow_run_id) if (run_url and p.mlflow_run_id) else None
        rp = ReportPoint(point=p, status=status, group=groups[(p.model, p.variant)], url=url, reason=reason,
                         values={a.name: a.value(p) for a in objectives},
                         knee=res.knee is not None and res.knee.key == p.key)
        rp.hover = _hover(rp, objectives, hparams)
        out.append(rp)
    return ReportData(sweep=spec.name, method=spec.method.base, objectives=objectives, hparams=hparams,
                      points=out, groups=list(groups.values()), fronts=fronts, results=results,
                      log_params=log_params)


def log10_or_none(v: float | None) -> float | None:
    return math.log10(v) if v is not None and v > 0 else None
