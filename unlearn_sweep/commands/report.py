"""`unlearn-sweep report SWEEP`: the Pareto report of a sweep, an interactive HTML page (opens offline) and a
PNG of the main front, written to `<sweep>/report/` and logged to the sweep's parent MLflow run.

    unlearn-sweep report runs/sweeps/tofu-mini
    unlearn-sweep report runs/sweeps/tofu-mini --out /tmp/report --mlflow-ui http://127.0.0.1:5001
    unlearn-sweep report presets/tofu-mini.yaml --no-mlflow

See `dashboards.report` for what the page holds.
"""

from __future__ import annotations

from pathlib import Path

import typer

EXAMPLES = """Examples:

  unlearn-sweep report runs/sweeps/tofu-mini

  unlearn-sweep report runs/sweeps/tofu-mini --out /tmp/report --mlflow-ui http://127.0.0.1:5001

  unlearn-sweep report presets/tofu-mini.yaml --no-mlflow
"""


def register(app: typer.Typer) -> None:
    @app.command(epilog=EXAMPLES)
    def report(
        sweep: str = typer.Argument(..., help="Sweep folder (<storage>/<name>), its spec file, or a preset name."),
        out: Path = typer.Option(None, help="Folder for the report files; default: <sweep>/report."),
        mlflow_ui: str = typer.Option("http://127.0.0.1:5000", help="Base URL of the MLflow UI the run links point "
                                                                    "at (see `unlearn-sweep ui`)."),
        tracking_uri: str = typer.Option(None, help="MLflow tracking URI; default: the spec's, else the sqlite "
                                                    "database beside the sweep."),
        mlflow: bool = typer.Option(True, "--mlflow/--no-mlflow", help="Log the files to the sweep's parent "
                                                                       "MLflow run."),
    ) -> None:
        """Write the Pareto report (interactive HTML + PNG) of a sweep and log it to MLflow."""
        import os

        from dashboards.report import make_report
        from sweeps.recording.results import resolve_sweep

        # an unreachable tracking server costs seconds, not MLflow's default minutes of retries
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "15")

        spec, sweep_dir = resolve_sweep(sweep)
        files = make_report(spec, sweep_dir, out_dir=out, mlflow_ui=mlflow_ui, tracking_uri=tracking_uri,
                            log_to_mlflow=mlflow)
        s = files.summary
        typer.echo(f"{s['n_points']} points ({s['statuses']['pareto']} on a Pareto front) of {s['n_trials']} trials")
        typer.echo(f"report: {files.html}")
        typer.echo(f"png:    {files.png}")
        typer.echo(files.message if files.logged or not mlflow else f"warning: {files.message}")
