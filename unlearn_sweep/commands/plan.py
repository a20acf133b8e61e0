"""`unlearn-sweep plan SPEC`: what a sweep will do, without running it, and about how long it will take.

    unlearn-sweep plan presets/tofu-mini.yaml                 # this machine; a short probe for the estimate
    unlearn-sweep plan presets/tofu-mini.yaml --no-probe      # the overview alone (instant)
    unlearn-sweep plan SPEC --address auto                    # a running Ray cluster's resources (read only)
    unlearn-sweep plan SPEC --smoke-test                      # the sweep `run --smoke-test` would run

The spec is validated as `run` validates it (one-line errors, exit 2). Then: the searches (model x variant)
with their trials, epochs, trial-epochs and evaluation points, the searcher and scheduler, a trial's
resources and how many run at once; a trial that needs more than the machine (or cluster) has is named by
its resource, in one line, exit 2. The probe (`sweeps.operations.overview`) runs a few optimiser steps and one
evaluation per model with the sweep's own code in a temporary folder and scales them into an estimate.
"""

from __future__ import annotations

import typer

EXAMPLES = """Examples:

  unlearn-sweep plan presets/tofu-mini.yaml

  unlearn-sweep plan presets/tofu-mini.yaml --no-probe

  unlearn-sweep plan presets/tofu-llama-3.2-1b-drnpo.yaml --address auto
"""


def register(app: typer.Typer) -> None:
    @app.command(epilog=EXAMPLES)
    def plan(
        spec: str = typer.Argument(..., help="Sweep spec YAML (or a preset name from `unlearn-sweep ls presets`)."),
        address: str = typer.Option(None, help="Ray cluster address ('auto', 'ray://host:10001') whose resources "
                                                "to plan for (connects read-only); default: this machine."),
        probe: bool = typer.Option(True, "--probe/--no-probe", help="Measure a few optimiser steps and one "
                                   "evaluation per model on this machine for the wall-time estimate."),
        smoke_test: bool = typer.Option(False, "--smoke-test", help="Plan the sweep shrunk as `run --smoke-test`."),
        storage_path: str = typer.Option(None, help="The storage folder `run --storage-path` would use."),
        name: str = typer.Option(None, help="The sweep name `run --name` would use."),
    ) -> None:
        """Validate a sweep spec and show what the sweep will do (searches, trials, evaluation points, searcher,
        scheduler, resources, trials at once) and an estimate of its wall time, without running it."""
        from sweeps.operations.overview import (cluster_machine, local_machine, print_estimate, print_overview,
                                                probe_skip_reason, probe_sweep, sweep_overview)
        from sweeps.selection.terminal import output_console
        from unlearn_sweep.commands.run import _load

        console = output_console()
        loaded = _load(spec, smoke_test, None, storage_path, name)
        machine = cluster_machine(loaded, address) if address else local_machine(loaded)
        overview = sweep_overview(loaded, machine)
        print_overview(overview, console)
        if machine.short is not None:
            raise machine.short  # one line naming the resource (exit 2)
        if not probe:
            return
        skip = probe_skip_reason(loaded)
        if skip:
            console.print(f"no probe: {skip}", highlight=False, markup=False)
            return
        probes = probe_sweep(loaded, log=lambda m: console.print(f"[dim]{m}[/dim]", highlight=False))
        print_estimate(overview, probes, console)
