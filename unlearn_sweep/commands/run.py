"""`unlearn-sweep run | resume | status`: start a sweep, continue it after an interruption, or summarise it.

    unlearn-sweep run presets/tofu-mini.yaml                   # local Ray on this machine (127.0.0.1)
    unlearn-sweep run presets/tofu-mini.yaml --smoke-test      # the same sweep shrunk to seconds
    unlearn-sweep run SPEC --address auto --tracking-uri http://mlflow:5000 --storage-path /mnt/shared/sweeps
    unlearn-sweep resume runs/sweeps/tofu-mini                 # after Ctrl-C or a killed driver
    unlearn-sweep status runs/sweeps/tofu-mini
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from sweeps.selection.terminal import output_console

RUN_EXAMPLES = """Examples:

  unlearn-sweep run presets/tofu-mini.yaml

  unlearn-sweep run presets/tofu-mini.yaml --smoke-test

  unlearn-sweep run presets/tofu-mini.yaml --address auto --tracking-uri http://127.0.0.1:5000 --storage-path /mnt/shared/sweeps

  ray job submit --address http://127.0.0.1:8265 -- unlearn-sweep run presets/tofu-mini.yaml --address auto
"""


def _load(spec_path: str, smoke: bool, tracking_uri: str | None, storage_path: str | None, name: str | None):
    from sweeps.spec import load_spec, parse_spec

    spec = load_spec(spec_path)
    overrides = {}
    if tracking_uri:
        overrides["tracking"] = {**spec.raw().get("tracking", {}), "uri": tracking_uri}
    if storage_path:
        overrides["storage"] = storage_path
    if name:
        overrides["name"] = name
    if overrides:
        spec = parse_spec({**spec.raw(), **overrides}, where=spec_path, source=spec.source_path, check_models=True)
    return spec.smoke() if smoke else spec


def register(app: typer.Typer) -> None:
    @app.command(epilog=RUN_EXAMPLES)
    def run(
        spec: str = typer.Argument(..., help="Sweep spec YAML (or a preset name from `unlearn-sweep ls presets`)."),
        address: str = typer.Option(None, help="Ray cluster address ('auto', 'ray://host:10001'); default: start "
                                                "a local Ray on 127.0.0.1."),
        tracking_uri: str = typer.Option(None, help="MLflow tracking URI (server or database); default: sqlite "
                                                     "beside the sweep."),
        storage_path: str = typer.Option(None, help="Folder (shared by all nodes on a cluster) for the sweep."),
        name: str = typer.Option(None, help="Override the sweep's name (its folder under the storage path)."),
        smoke_test: bool = typer.Option(False, "--smoke-test", help="Shrink the sweep to seconds (CI, try-outs)."),
        tracking_optional: bool = typer.Option(False, "--tracking-optional", help="Run even when the MLflow store "
                                               "cannot be written (results stay in points.jsonl; `unlearn-sweep "
                                               "sync SWEEP_DIR` writes them to MLflow later)."),
    ) -> None:
        """Run a sweep: Ray Tune + Optuna over the unlearning trainable, MLflow tracking, the Pareto table at the end.

        Ctrl-C / SIGTERM stop it with its state saved; `unlearn-sweep resume` continues it. Exit status: 0 done,
        2 a mistake in the spec or options, 3 no trial finished, 4 searches unfinished before the budget,
        130 / 143 stopped by SIGINT / SIGTERM."""
        from sweeps.operations.service import run_sweep

        loaded = _load(spec, smoke_test, tracking_uri, storage_path, name)
        run_sweep(loaded, address=address, console=output_console(), tracking_optional=tracking_optional, check=True)

    @app.command(epilog="Examples:\n\n  unlearn-sweep resume runs/sweeps/tofu-mini\n\n"
                        "  unlearn-sweep resume runs/sweeps/tofu-mini --address auto")
    def resume(
        sweep: str = typer.Argument(..., help="The sweep folder (<storage>/<name>) or its spec file."),
        address: str = typer.Option(None, help="Ray cluster address; default: a local Ray on 127.0.0.1."),
        tracking_optional: bool = typer.Option(False, "--tracking-optional", help="Continue even when the MLflow "
                                               "store cannot be written (then `unlearn-sweep sync` later)."),
    ) -> None:
        """Continue an interrupted sweep: finished trials are kept, unfinished ones continue.

        The searcher keeps its state and MLflow runs are re-attached (no duplicates). A driver that was killed leaves no lock: the resume takes over and stops what is left of its local Ray."""
        from sweeps.recording.results import moved_sweep_check, resolve_sweep
        from sweeps.operations.service import run_sweep

        loaded, folder = resolve_sweep(sweep)
        moved_sweep_check(loaded, folder)
        run_sweep(loaded, address=address, resume=True, console=output_console(), tracking_optional=tracking_optional,
                  check=True)

    @app.command(epilog="Examples:\n\n  unlearn-sweep status runs/sweeps/tofu-mini")
    def status(sweep: str = typer.Argument(..., help="The sweep folder (<storage>/<name>) or its spec file.")) -> None:
        """Trials finished / running / failed, evaluated points, and where the results are."""
        from sweeps.recording.results import POINTS_FILE, read_results, resolve_sweep

        console = Console()
        spec, sweep_dir = resolve_sweep(sweep)
        results = read_results(sweep_dir)
        counts: dict[str, int] = {}
        for t in results.trials.values():
            counts[t.status] = counts.get(t.status, 0) + 1
        planned = spec.budget.num_trials * len(spec.searches())
        console.print(f"sweep {spec.name}: {planned} trials planned; "
                      + (", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none started"))
        console.print(f"{len(results.points)} evaluated (trial, epoch) points in {Path(sweep_dir) / POINTS_FILE}")
        console.print(f"MLflow: {spec.tracking_uri()}  (browse with `unlearn-sweep ui {sweep_dir}`)")
        for t in results.trials.values():
            if t.status in ("failed", "interrupted"):
                colour = "red" if t.status == "failed" else "yellow"
                console.print(f"[{colour}]{t.status}[/{colour}] {t.trial_id}: {t.reason}")
