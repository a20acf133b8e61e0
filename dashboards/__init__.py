"""What a person looks at after a sweep: the Pareto report (interactive HTML + PNG) and the MLflow UI.

    unlearn-sweep report runs/sweeps/tofu-mini      # -> runs/sweeps/tofu-mini/report/pareto_report.html + .png
    unlearn-sweep ui runs/sweeps/tofu-mini          # the MLflow UI on the sweep's store, 127.0.0.1:5000

Modules: `report_data` (points -> plot-ready rows: status, group, hover, MLflow link), `pareto_report`
(the plotly figures), `html` (the self-contained page), `png` (the matplotlib PNG of the main front),
`mlflow_links` (run URLs, artifact logging), `report` (all of it for one sweep), `mlflow_ui` (the server).
Reads sweep results only (`sweeps.recording.results`, `sweeps.selection.pareto`), never training code.
"""
