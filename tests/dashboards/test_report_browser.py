"""The report page in headless Chromium (no network features): a screenshot is a real image, and the drawn
DOM has one marker (SVG path.point) per evaluated point on every 2-D front, with the Pareto points drawn in
the highlighted "Pareto front" traces, coloured and outlined, and the others grey.

    .venv/bin/python -m pytest tests/dashboards/test_report_browser.py -q        (needs /usr/bin/chromium)
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from browser import CHROMIUM, SKIP_REASON, parse_dom, render
from report_sweep import BEFORE, DOMINATED, INFEASIBLE, N_PLOTTED, PARETO

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not CHROMIUM.is_file(), reason=SKIP_REASON)]


def rgb(style: str, prop: str) -> tuple[int, ...] | None:
    m = re.search(rf"(?:^|;)\s*{prop}:\s*rgb\((\d+), (\d+), (\d+)\)", style)
    return tuple(int(v) for v in m.groups()) if m else None


def test_report_page_in_headless_chromium(sweep, tmp_path):
    from dashboards.report import make_report

    spec, sweep_dir, _ = sweep
    files = make_report(spec, sweep_dir, out_dir=tmp_path / "report", log_to_mlflow=False)
    url = files.html.as_uri()
    png = tmp_path / "report.png"
    root = parse_dom(render(url, tmp_path, png=png, budget_ms=5000, window="1300,2400"))
    page = files.html.read_text(encoding="utf-8")
    summary = json.loads(re.search(r'<script id="report-data" type="application/json">(.*?)</script>', page, re.S)[1])
    n_pareto = sum(len(v) for v in PARETO.values())
    assert summary["n_plotted"] == N_PLOTTED and len(summary["pareto_labels"]) == n_pareto
    for fig_id in ("front-0", "front-1", "front-2"):
        plot = root.find(fig_id)
        assert plot is not None, f"plot {fig_id} not in the DOM"
        points = plot.select("g.scatterlayer", "path.point")
        assert len(points) == N_PLOTTED, fig_id                       # one marker per drawn point
        traces = {next(c[len("trace"):] for c in g.classes if c.startswith(f"trace{fig_id}-")): g
                  for g in plot.select("g.scatterlayer", "g.trace")}
        drawn = {uid: len(g.find_all("path.point")) for uid, g in traces.items()}
        expected = {f"{fig_id}-before": len(BEFORE), f"{fig_id}-infeasible": len(INFEASIBLE),
                    f"{fig_id}-dominated": len(DOMINATED), f"{fig_id}-pareto-0": 4, f"{fig_id}-pareto-2": 2,
                    f"{fig_id}-pareto-3": 1}
        assert drawn == expected
        assert sum(n for uid, n in drawn.items() if "-pareto-" in uid) == n_pareto
        # the legend names the highlighted traces "Pareto front · <model> · <method>"
        legend = [n.attrs.get("data-unformatted") for n in plot.find_all("text.legendtext")]
        assert sum(name.startswith("Pareto front") for name in legend) == 3 and "dominated" in legend
        # highlighted: the group's colour with a black outline; greyed: r = g = b, no outline
        for uid, g in traces.items():
            for p in g.find_all("path.point"):
                style = p.attrs["style"]
                fill = rgb(style, "fill")
                if "-pareto-" in uid:
                    assert len(set(fill)) > 1 and rgb(style, "stroke") == (0, 0, 0), (uid, style)
                else:
                    assert len(set(fill)) == 1, (uid, style)
    # the trial paths: one line trace per trial, every drawn point once
    paths = root.find("paths")
    assert len(paths.select("g.scatterlayer", "path.point")) == N_PLOTTED
    assert len(paths.select("g.scatterlayer", "g.trace")) == 6
    # the 3-D scene (WebGL) and the parallel coordinates exist; the Pareto table has a row per Pareto point
    assert root.find("front-3d").find_all("div.gl-container") or root.find("front-3d").find_all("canvas")
    assert root.find("parallel").find_all("g.parcoords")
    table = root.find("pareto-table")
    assert len(table.find_all("tr")) == 1 + n_pareto
    # the screenshot: a real PNG with plots drawn on it (the group colour #1f77b4 of model A's DrNPO front)
    check_screenshot(png, (1300, 2400))


def check_screenshot(png, size: tuple[int, int]) -> None:
    import matplotlib.image as mpimg

    raw = png.read_bytes()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n" and len(raw) > 30_000
    img = mpimg.imread(png)
    assert img.shape[1::-1] == size
    pix = (img[..., :3] * 255).round().astype(int).reshape(-1, 3)
    assert len(np.unique(pix, axis=0)) > 200
    assert (np.abs(pix - [0x1F, 0x77, 0xB4]).sum(axis=1) < 10).sum() > 200
