"""The Pareto report of one sweep: read its points.jsonl, draw the figures, write the HTML page and the PNG
into `<sweep>/report/` (or another folder), log both to the sweep's parent MLflow run.

    from dashboards.report import make_report
    out = make_report(spec, sweep_dir)                # -> ReportFiles(html, png, logged, message, data, summary)
    unlearn-sweep report runs/sweeps/tofu-mini        # the same from the command line

Page sections: the 2-D fronts (div ids front-0, front-1, ... one per objective pair, front-0 the main
one), the 3-D front (front-3d, three or more objectives), the trial paths (paths), the parallel
coordinates (parallel), and a table of the Pareto points with links to their MLflow runs. The embedded
`report-data` JSON summary lists every figure's traces with their point counts and labels.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dashboards.html import Section, write_page
from dashboards.mlflow_links import DEFAULT_UI, experiment_id, log_report_files, run_url, sweep_tracking_uri
from dashboards.pareto_report import front_3d_figure, front_figure, parallel_figure, paths_figure, trace_specs
from dashboards.png import write_front_png
from dashboards.report_data import ReportData, build_report_data, fmt
from unlearning.errors import DataError

HTML_FILE = "pareto_report.html"
PNG_FILE = "pareto_front.png"


@dataclass
class ReportFiles:
    html: Path
    png: Path
    logged: bool
    message: str
    data: ReportData
    summary: dict[str, Any] = field(default_factory=dict)


def _trace_summary(fig: Any) -> list[dict[str, Any]]:
    out = []
    for t in fig.data:
        n = len(t.line.color) if t.type == "parcoords" else len(t.x)
        out.append({"name": t.name, "uid": t.uid, "type": t.type, "n": n})
    return out


def summary_of(data: ReportData, figures: dict[str, tuple[str, Any]], mlflow: dict[str, Any]) -> dict[str, Any]:
    """The JSON embedded in the page: counts, Pareto labels, every figure's traces."""
    return {
        "sweep": data.sweep, "method": data.method,
        "objectives": [{"name": a.name, "mode": a.mode, "log": a.log} for a in data.objectives],
        "n_points": len(data.points), "n_plotted": len(data.plotted), "n_trials": data.n_trials(),
        "statuses": data.status_counts(),
        "pareto": data.pareto_labels(),
        "pareto_labels": [p.label for p in data.points if p.status == "pareto"],
        "knee": {m: (r.knee.label if r.knee else None) for m, r in data.fronts.items()},
        "hypervolume": {m: r.hypervolume for m, r in data.fronts.items()},
        "front_traces": [{"uid": uid, "name": name, "labels": [p.label for p in members]}
                         for uid, name, members in trace_specs(data)],
        "figures": {div_id: {"kind": kind, "traces": _trace_summary(fig)} for div_id, (kind, fig) in figures.items()},
        "mlflow": mlflow,
    }


def _intro(data: ReportData, mlflow: dict[str, Any]) -> str:
    objs = ", ".join(f"{a.name} ({a.mode}{', log' if a.log else ''})" for a in data.objectives)
    counts = data.status_counts()
    parts = [f"<p>Method {html.escape(data.method)}; objectives {html.escape(objs)}. "
             f"{len(data.points)} evaluated (trial, epoch) points of "
             f"{data.n_trials()} trials: {counts['pareto']} on a Pareto front, "
             f"{counts['dominated']} dominated, {counts['infeasible']} infeasible (constraint), "
             f"{counts['before']} before unlearning (epoch 0), {counts['missing']} with a missing objective "
             f"(not drawn).</p>", "<ul>"]
    for model, res in data.fronts.items():
        knee = res.knee.label if res.knee else "-"
        parts.append(f"<li>{html.escape(model)}: {len(res.front)} Pareto points of {len(res.feasible)} feasible, "
                     f"hypervolume {res.hypervolume:.4f}, knee {html.escape(knee)}</li>")
    parts.append("</ul>")
    note = ("Fronts are per model, over all objectives: in a 2-D view a Pareto point can look dominated "
            "because of an objective not shown. Hover a point for its hyperparameters; click it to open its "
            f"MLflow run ({html.escape(mlflow['ui'])}, start it with <code>unlearn-sweep ui</code>).")
    if mlflow.get("note"):
        note += f" No MLflow links: {html.escape(mlflow['note'])}."
    parts.append(f'<p class="note">{note}</p>')
    return "\n".join(parts)


def pareto_table(data: ReportData) -> str:
    """HTML table of the Pareto points, per model, with their MLflow links."""
    rows = ["<h2>Pareto points</h2>", '<table id="pareto-table"><tr><th class="l">model · method</th>'
            '<th class="l">trial</th><th>epoch</th>'
            + "".join(f"<th>{html.escape(a.name)}</th>" for a in data.objectives)
            + "".join(f"<th>{html.escape(h)}</th>" for h in data.hparams) + '<th class="l">MLflow run</th></tr>']
    for p in data.points:
        if p.status != "pareto":
            continue
        run = p.point.mlflow_run_id or "-"
        link = f'<a href="{html.escape(p.url)}" target="_blank">{html.escape(run)}</a>' if p.url else html.escape(run)
        rows.append(
            f'<tr><td class="l"><span class="swatch" style="background:{p.group.colour}"></span>'
            f"{html.escape(p.group.label)}</td><td class=\"l\">{html.escape(p.point.trial_id)}"
            f"{' (knee)' if p.knee else ''}</td><td>{p.point.epoch}</td>"
            + "".join(f"<td>{fmt(p.point.metrics.get(a.name))}</td>" for a in data.objectives)
            + "".join(f"<td>{html.escape(fmt(p.point.hparams.get(h)))}</td>" for h in data.hparams)
            + f'<td class="l">{link}</td></tr>')
    rows.append("</table>")
    return "\n".join(rows)


def make_report(spec: Any, sweep_dir: str | Path, out_dir: str | Path | None = None, mlflow_ui: str = DEFAULT_UI,
                tracking_uri: str | None = None, log_to_mlflow: bool = True) -> ReportFiles:
    """Write the HTML page and the PNG of a sweep (see the module docstring); DataError when the sweep has
    no evaluated point yet. Logging to MLflow is never fatal: `logged` and `message` say what happened."""
    from sweeps.recording.results import POINTS_FILE, read_results

    sweep_dir = Path(sweep_dir)
    results = read_results(sweep_dir)
    if not results.points:
        raise DataError(str(sweep_dir / POINTS_FILE), value=None,
                        fix="no evaluated points yet: run the sweep first (`unlearn-sweep run SPEC`), or give "
                            "the folder of a sweep that has results")
    uri = sweep_tracking_uri(spec, sweep_dir, tracking_uri)
    exp, why = experiment_id(uri, spec.experiment_name())
    mlflow = {"ui": mlflow_ui, "tracking_uri": uri, "experiment": spec.experiment_name(), "experiment_id": exp,
              "note": why}
    data = build_report_data(spec, results, run_url=lambda run_id: run_url(mlflow_ui, exp, run_id))
    if not data.plotted:
        raise DataError(str(sweep_dir / POINTS_FILE), value=None,
                        fix="no point has every objective "
                            f"({', '.join(a.name for a in data.objectives)}): check the evaluator's metrics")
    pairs = data.axes()
    figures: dict[str, tuple[str, Any]] = {}
    sections = []
    for i, (x, y) in enumerate(pairs):
        fig = front_figure(data, x, y, fig_id=f"front-{i}")
        figures[f"front-{i}"] = ("front2d", fig)
        sections.append(Section(f"front-{i}", f"{'Main front' if i == 0 else 'Front'}: {x.name} vs {y.name}", fig))
    fig3 = front_3d_figure(data)
    if fig3 is not None:
        figures["front-3d"] = ("front3d", fig3)
        sections.append(Section("front-3d", "3-D front across models and methods", fig3))
    x, y = pairs[0]
    fig = paths_figure(data, x, y)
    figures["paths"] = ("paths", fig)
    sections.append(Section("paths", "Each trial's path through objective space, epoch by epoch", fig,
                            "Lines join a trial's evaluations in epoch order, starting at the target model "
                            "(epoch 0); filled markers are Pareto points, open ones are not."))
    par = parallel_figure(data)
    if par is not None:
        figures["parallel"] = ("parallel", par)
        sections.append(Section("parallel", "Hyperparameters against objectives", par,
                                "Drag along an axis to filter; missing values (a hyperparameter a variant "
                                "does not have) sit on the n/a tick."))
    out = Path(out_dir) if out_dir is not None else sweep_dir / "report"
    summary = summary_of(data, figures, mlflow)
    page = write_page(out / HTML_FILE, f"Pareto report: {data.sweep}", _intro(data, mlflow), sections, summary,
                      pareto_table(data))
    png = write_front_png(data, x, y, out / PNG_FILE)
    logged, message = False, "not logged to MLflow (--no-mlflow)"
    if log_to_mlflow:
        logged, message = log_report_files(uri, spec.experiment_name(), spec.name, [page, png])
    return ReportFiles(html=page, png=png, logged=logged, message=message, data=data, summary=summary)
