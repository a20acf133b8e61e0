"""The report page: one self-contained HTML file (plotly.js inlined once, so it opens offline) holding the
figures, a table of Pareto points with MLflow links, and a JSON summary for tests and scripts.

    from dashboards.html import Section, write_page
    write_page(path, title, intro_html, [Section("front-0", "Main front", fig, "...")], summary={...},
               tables_html="<table>...</table>")

The summary sits in `<script id="report-data" type="application/json">`. Clicking a point whose
`customdata` is a URL opens it in a new tab (its MLflow run).
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

CLICK_JS = """
var gd = document.getElementById('{plot_id}');
gd.on('plotly_click', function (ev) {
  var p = ev && ev.points && ev.points[0];
  var url = p && (Array.isArray(p.customdata) ? p.customdata[0] : p.customdata);
  if (url) { window.open(url, '_blank', 'noopener'); }
});
"""

STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 2em; }
p.note { color: #555; font-size: 0.92em; }
table { border-collapse: collapse; font-size: 0.88em; margin: 8px 0 24px; }
th, td { border-bottom: 1px solid #ddd; padding: 3px 8px; text-align: right; }
th { background: #f4f4f4; } td.l, th.l { text-align: left; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 4px; }
"""


@dataclass
class Section:
    div_id: str
    title: str
    figure: Any  # plotly Figure
    note: str = ""


def _script_json(obj: Any) -> str:
    """JSON safe inside a <script> element."""
    return json.dumps(obj, indent=1, sort_keys=False).replace("</", "<\\/")


def figure_div(section: Section) -> str:
    return section.figure.to_html(full_html=False, include_plotlyjs=False, div_id=section.div_id,
                                  post_script=CLICK_JS, config={"displaylogo": False, "responsive": True})


def write_page(path: str | Path, title: str, intro_html: str, sections: Sequence[Section],
               summary: dict[str, Any], tables_html: str = "") -> Path:
    """Write the page; returns its path."""
    from plotly.offline import get_plotlyjs

    body = [f"<h1>{html.escape(title)}</h1>", intro_html]
    for s in sections:
        body.append(f'<h2 id="h-{s.div_id}">{html.escape(s.title)}</h2>')
        if s.note:
            body.append(f'<p class="note">{s.note}</p>')
        body.append(figure_div(s))
    body.append(tables_html)
    page = "\n".join([
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>", f"<style>{STYLE}</style>",
        f'<script type="text/javascript">{get_plotlyjs()}</script>',
        f'<script id="report-data" type="application/json">{_script_json(summary)}</script>',
        "</head>", "<body>", *body, "</body>", "</html>", ""])
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out
