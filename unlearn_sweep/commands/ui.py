"""`unlearn-sweep ui SWEEP`: the MLflow UI on the sweep's tracking store (127.0.0.1:5000 by default).

    unlearn-sweep ui runs/sweeps/tofu-mini
    unlearn-sweep ui runs/sweeps/tofu-mini --port 5001
    unlearn-sweep ui presets/tofu-mini.yaml --tracking-uri postgresql://mlflow@db/mlflow

The store is the sweep's: the spec's `tracking.uri`, else the SQLite database beside the sweep. A sweep that
tracks to an MLflow server (http://...) already has its UI there: the command prints it and exits. Runs
until Ctrl-C; see `dashboards.mlflow_ui`.
"""

from __future__ import annotations

import typer

EXAMPLES = """Examples:

  unlearn-sweep ui runs/sweeps/tofu-mini

  unlearn-sweep ui runs/sweeps/tofu-mini --port 5001

  unlearn-sweep report runs/sweeps/tofu-mini --mlflow-ui http://127.0.0.1:5001   # links that open this UI
"""


def register(app: typer.Typer) -> None:
    @app.command(epilog=EXAMPLES)
    def ui(
        sweep: str = typer.Argument(..., help="Sweep folder (<storage>/<name>), its spec file, or a preset name."),
        port: int = typer.Option(5000, min=1, max=65535, help="Port of the UI."),
        host: str = typer.Option("127.0.0.1", help="Interface to listen on (127.0.0.1: this machine only)."),
        tracking_uri: str = typer.Option(None, help="MLflow tracking URI; default: the spec's, else the sqlite "
                                                    "database beside the sweep."),
    ) -> None:
        """Start the MLflow UI on a sweep's tracking store and print its URL; Ctrl-C stops it."""
        from dashboards.mlflow_links import sqlite_path, store_missing, sweep_tracking_uri
        from dashboards.mlflow_ui import serve
        from sweeps.recording.results import resolve_sweep
        from unlearning.errors import ConfigError

        spec, sweep_dir = resolve_sweep(sweep)
        uri = sweep_tracking_uri(spec, sweep_dir, tracking_uri)
        if uri.startswith(("http://", "https://")):
            typer.echo(f"this sweep tracks to the MLflow server at {uri}: open its UI there")
            return
        missing = store_missing(uri)
        if missing:
            raise ConfigError(str(sweep_dir), field="tracking", value=uri,
                              fix=f"{missing}: run the sweep first, or give the store with --tracking-uri")
        db = sqlite_path(uri)
        artifacts = db.parent / "mlartifacts" if db is not None else None
        code = serve(uri, host=host, port=port, artifacts_dir=artifacts, experiment=spec.experiment_name(),
                     echo=typer.echo, log_path=sweep_dir / "mlflow-ui.log" if sweep_dir.is_dir() else None)
        raise typer.Exit(code)
