"""`unlearn-sweep sync SWEEP_DIR`: write a sweep's points.jsonl to MLflow (after a run without tracking).

    unlearn-sweep sync runs/sweeps/tofu-mini
    unlearn-sweep sync runs/sweeps/tofu-mini --tracking-uri http://127.0.0.1:5000
"""

from __future__ import annotations

import typer
from rich.console import Console


def register(app: typer.Typer) -> None:
    @app.command(epilog="Examples:\n\n  unlearn-sweep sync runs/sweeps/tofu-mini\n\n"
                        "  unlearn-sweep sync runs/sweeps/tofu-mini --tracking-uri http://127.0.0.1:5000")
    def sync(
        sweep: str = typer.Argument(..., help="The sweep folder (<storage>/<name>) or its spec file."),
        tracking_uri: str = typer.Option(None, help="MLflow store to write to; default: the sweep's own."),
    ) -> None:
        """Write a sweep's trials and evaluation points to MLflow (after a run without tracking).

        Points already in MLflow are skipped, so running it twice adds nothing."""
        from sweeps.recording.results import resolve_sweep
        from sweeps.recording.sync import sync_tracking
        from sweeps.recording.tracking import open_tracker

        spec, sweep_dir = resolve_sweep(sweep)
        uri = tracking_uri or spec.tracking_uri()
        tracker = open_tracker(uri, spec.experiment_name())
        counts = sync_tracking(spec, sweep_dir, tracker)
        left = len(tracker.pending)
        Console().print(f"synced {counts['trials']} trial(s) of {sweep_dir} to {uri}: {counts['points']} point(s) "
                        f"written, {counts['skipped']} already there" + (f"; {left} operation(s) failed" if left
                                                                        else ""))
        if left:
            raise typer.Exit(1)
