"""`unlearn-sweep export SWEEP --pick knee|pareto|TRIAL[:EPOCH] --out DIR`: train configs for the final runs.

    unlearn-sweep export runs/sweeps/tofu-mini --pick knee --out final/
    unlearn-sweep export runs/sweeps/tofu-mini --pick pareto --out final/
    unlearn-sweep export runs/sweeps/tofu-mini --pick 3f2a1_00004:2 --out final/
    unlearn-sweep train final/<file>.yaml                # replay one

Each YAML holds the full train config plus `provenance:` (objectives, MLflow run, versions, topology)
and the equivalent open-unlearning command line.
"""

from __future__ import annotations

from pathlib import Path

import typer

EXAMPLES = """Examples:

  unlearn-sweep export runs/sweeps/tofu-mini --pick knee --out final/

  unlearn-sweep export presets/tofu-mini.yaml --pick pareto --out final/

  unlearn-sweep export runs/sweeps/tofu-mini --pick 3f2a1_00004:2 --out final/
"""


def register(app: typer.Typer) -> None:
    @app.command(epilog=EXAMPLES)
    def export(
        sweep: str = typer.Argument(..., help="Sweep folder (<storage>/<name>), its spec file, or a preset name."),
        pick: str = typer.Option("knee", help="knee (per model), pareto (the whole front), TRIAL_ID or "
                                             "TRIAL_ID:EPOCH; comma-separate several."),
        out: Path = typer.Option(..., help="Folder for the exported YAML files."),
    ) -> None:
        """Write one `unlearn-sweep train` YAML per chosen point (replays the trial with the sweep's seed)."""
        import yaml

        from sweeps.selection.export import export as run_export
        from sweeps.recording.results import read_results, resolve_sweep

        spec, sweep_dir = resolve_sweep(sweep)
        paths = run_export(read_results(sweep_dir), pick, out, spec)
        for path in paths:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
            prov = doc["provenance"]
            objectives = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                   for k, v in prov["objectives"].items())
            typer.echo(f"{path}  ({prov['method']}, trial {prov['trial_id']} epoch {prov['epoch']}: {objectives})")
        typer.echo(f"{len(paths)} config(s) written; run one with: unlearn-sweep train {paths[0]}")
