"""The report's figures on the hand-computed sweep of report_sweep.py: statuses, one marker per drawn point,
Pareto points highlighted (exactly the front of `sweeps.selection.pareto.pareto_front`), dominated points grey,
forget_quality on a log axis, trial paths in epoch order, the parallel-coordinates view.

    .venv/bin/python -m pytest tests/dashboards/test_report_figures.py -q
"""

from __future__ import annotations

import math

import pytest
from report_sweep import BEFORE, DOMINATED, INFEASIBLE, MISSING, MODEL_A, MODEL_B, N_PLOTTED, N_POINTS, PARETO, TRIALS

from dashboards.pareto_report import front_3d_figure, front_figure, parallel_figure, paths_figure
from dashboards.report_data import GREY, build_report_data
from sweeps.recording.results import read_results

UI = "http://ui.test:5000"


@pytest.fixture
def data(sweep):
    spec, sweep_dir, _ = sweep
    return build_report_data(spec, read_results(sweep_dir), run_url=lambda run: f"{UI}/#/experiments/7/runs/{run}")


def metric(label: str, index: int) -> float:
    trial, epoch = label.split(":")
    return TRIALS[trial][3][int(epoch)][index]


def test_statuses_are_the_hand_computed_ones_and_pareto_fronts(sweep, data):
    from sweeps.selection.pareto import pareto_front

    by_label = {p.label: p.status for p in data.points}
    assert len(by_label) == N_POINTS and len(data.plotted) == N_PLOTTED
    expected = {**{lab: "pareto" for front in PARETO.values() for lab in front},
                **{lab: "dominated" for lab in DOMINATED}, **{lab: "infeasible" for lab in INFEASIBLE},
                **{lab: "missing" for lab in MISSING}, **{lab: "before" for lab in BEFORE}}
    assert by_label == expected
    # exactly the points pareto_front selects, model by model (the target reference = its epoch-0 metrics)
    spec, sweep_dir, _ = sweep
    results = read_results(sweep_dir)
    for model, target in ((MODEL_A, TRIALS["A-dv1"][3][0]), (MODEL_B, TRIALS["B-dv1"][3][0])):
        refs = {"target": {"forget_quality": target[0], "model_utility": target[1], "gibberish_rate": target[2]}}
        res = pareto_front([p for p in results.points if p.model == model], spec.objectives, spec.constraints, refs)
        assert {p.label for p in res.front} == PARETO[model]
        assert {p.label for p in data.points if p.status == "pareto" and p.point.model == model} == PARETO[model]


def test_main_front_one_marker_per_point_pareto_highlighted_dominated_grey(data):
    x, y = data.axes()[0]
    assert (x.name, y.name) == ("forget_quality", "model_utility")
    fig = front_figure(data, x, y, fig_id="front-0")
    traces = {t.name: t for t in fig.data}
    counts = {name: len(t.x) for name, t in traces.items()}
    assert counts == {"before unlearning (epoch 0)": 6, "infeasible (constraint)": 2, "dominated": 3,
                      "Pareto front · tofu-mini/target · DrNPO": 4,
                      "Pareto front · tofu-mini-tiny/target · DrNPO": 2,
                      "Pareto front · tofu-mini-tiny/target · NPO": 1}
    assert sum(counts.values()) == N_PLOTTED
    # raw values are plotted (the axis does the log), one marker per (trial, epoch)
    pareto_a = traces["Pareto front · tofu-mini/target · DrNPO"]
    assert sorted(zip(pareto_a.x, pareto_a.y)) == sorted((metric(lab, 0), metric(lab, 1)) for lab in PARETO[MODEL_A])
    dominated = traces["dominated"]
    assert sorted(zip(dominated.x, dominated.y)) == sorted((metric(lab, 0), metric(lab, 1)) for lab in DOMINATED)
    # greyed vs highlighted: grey colour without outline vs a group colour with a black edge
    for name in ("before unlearning (epoch 0)", "infeasible (constraint)", "dominated"):
        colour = traces[name].marker.color
        assert colour in GREY.values() and colour.lstrip("#")[:2] == colour.lstrip("#")[2:4] == colour.lstrip("#")[4:]
    pareto_colours = {t.marker.color for n, t in traces.items() if n.startswith("Pareto front")}
    assert len(pareto_colours) == 3 and not pareto_colours & set(GREY.values())
    assert all(t.marker.line.color == "black" for n, t in traces.items() if n.startswith("Pareto front"))
    # symbols per model: circles for model A, squares for model B
    assert set(pareto_a.marker.symbol) == {"circle"}
    assert set(traces["Pareto front · tofu-mini-tiny/target · NPO"].marker.symbol) == {"square"}
    # log axis for forget_quality (objective scale log), linear for model_utility
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "linear"
    # the knee of each model is annotated, in log10 units on the log axis (A-dv2:2 has fq 1e-2)
    knees = {a.text: (a.x, a.y) for a in fig.layout.annotations}
    assert knees["knee A-dv2:2"] == pytest.approx((-2.0, 0.585))


def test_hover_shows_hyperparameters_epoch_and_mlflow_link(data):
    fig = front_figure(data, *data.axes()[0])
    trace = next(t for t in fig.data if t.name == "Pareto front · tofu-mini/target · DrNPO")
    i = list(trace.text).index(next(t for t in trace.text if t.startswith("<b>A-dv2</b>, epoch 1")))
    assert "lr=0.0002" in trace.text[i] and "beta_dv=0.7" in trace.text[i] and "epochs=2" in trace.text[i]
    assert "forget_quality = 0.0001" in trace.text[i] and "MLflow run run-A-dv2" in trace.text[i]
    assert trace.customdata[i] == f"{UI}/#/experiments/7/runs/run-A-dv2"


def test_other_pairs_and_3d_front(data):
    pairs = [(x.name, y.name) for x, y in data.axes()]
    assert pairs == [("forget_quality", "model_utility"), ("forget_quality", "gibberish_rate"),
                     ("model_utility", "gibberish_rate")]
    fig = front_figure(data, *data.axes()[2])
    assert fig.layout.xaxis.type == "linear" and fig.layout.yaxis.type == "linear"
    fig3 = front_3d_figure(data)
    assert fig3.layout.scene.xaxis.type == "log" and fig3.layout.scene.zaxis.type == "linear"
    assert sum(len(t.x) for t in fig3.data) == N_PLOTTED
    pareto_b = next(t for t in fig3.data if t.name == "Pareto front · tofu-mini-tiny/target · DrNPO")
    assert sorted(zip(pareto_b.x, pareto_b.y, pareto_b.z)) == [(1e-2, 0.39, 0.10), (5e-2, 0.37, 0.15)]


def test_trial_paths_follow_the_epochs(data):
    fig = paths_figure(data, *data.axes()[0])
    paths = {t.name.split(" ")[0]: t for t in fig.data}
    assert set(paths) == set(TRIALS) and all(t.mode == "lines+markers" for t in fig.data)
    assert list(paths["A-dv1"].x) == [1e-6, 1e-3, 1e-1, 0.3]          # epochs 0..3 in order
    assert list(paths["B-np1"].y) == [0.40, 0.38, 0.38, 0.30]
    assert list(paths["A-np2"].x) == [1e-6]                            # epoch 1 had no forget_quality
    assert sum(len(t.x) for t in fig.data) == N_PLOTTED
    # filled markers on the Pareto front, open ones elsewhere
    assert list(paths["A-dv1"].marker.symbol) == ["circle-open", "circle", "circle", "circle-open"]
    assert fig.layout.xaxis.type == "log"


def test_parallel_coordinates_hparams_against_objectives(data):
    fig = parallel_figure(data)
    par = fig.data[0]
    labels = [d.label for d in par.dimensions]
    assert labels == ["model · method", "lr (log10)", "epochs", "beta_dv (log10)", "epoch", "forget_quality (log10)",
                      "model_utility", "gibberish_rate"]
    n = N_PLOTTED - len(BEFORE)                      # one line per drawn point after unlearning
    assert all(len(d["values"]) == n for d in par.dimensions) and len(par.line.color) == n
    assert sorted(par.line.color).count(1.0) == sum(len(v) for v in PARETO.values())
    assert min(par.dimensions[1]["values"]) == pytest.approx(math.log10(2e-4))       # lr on log10
    assert max(par.dimensions[5]["values"]) == pytest.approx(math.log10(0.3))        # A-dv1:3 (infeasible, drawn)
    # beta_dv (log10; searched on a log scale): plain NPO has none -> the n/a tick below the range
    beta = par.dimensions[3]
    drawn = sorted(v for v in beta["values"] if v != beta.tickvals[0])
    assert beta.ticktext[0] == "n/a" and beta.tickvals[0] < math.log10(0.7) == pytest.approx(drawn[0])
    assert sorted(beta["values"]).count(beta.tickvals[0]) == 5            # A-np1:1-2, B-np1:1-3
    # the categorical axis: one code per model x method
    assert list(par.dimensions[0].ticktext) == sorted({p.group.label for p in data.points})


@pytest.mark.parametrize("objectives", [
    [{"name": "forget_quality", "mode": "max", "scale": "log"}, {"name": "model_utility", "mode": "max"}],
    [{"name": "model_utility", "mode": "max"}],
])
def test_fewer_objectives(sweep, objectives):
    from sweeps.spec import parse_spec

    spec, sweep_dir, _ = sweep
    raw = spec.raw()
    raw["objectives"] = objectives
    data = build_report_data(parse_spec(raw), read_results(sweep_dir))
    assert front_3d_figure(data) is None                   # no 3-D view below three objectives
    (x, y), = data.axes()
    fig = front_figure(data, x, y)
    assert sum(len(t.x) for t in fig.data) == len(data.plotted)
    if len(objectives) == 1:
        # one objective: drawn against the epoch; every point has model_utility, so all 19 are drawn
        assert (x.name, y.name) == ("model_utility", "epoch") and len(data.plotted) == 19
        pareto = next(t for t in fig.data if t.name == "Pareto front · tofu-mini/target · DrNPO")
        assert list(zip(pareto.x, pareto.y)) == [(0.60, 1.0)]   # A-dv2:1 has the best model_utility of model A
    else:
        assert fig.layout.xaxis.type == "log" and len(data.plotted) == 18
