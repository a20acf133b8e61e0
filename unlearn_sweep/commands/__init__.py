"""CLI commands of `unlearn-sweep`, one module each; `register_all` adds them to the typer app.

To add a command: write `unlearn_sweep/commands/<name>.py` with a function `register(app)` that decorates its
command with `@app.command(...)`, import it below and add it to `COMMANDS`.
"""

from __future__ import annotations

from unlearn_sweep.commands import eval, export, ls, pareto, plan, prepare, report, run, sync, train, ui  # noqa: A004

COMMANDS = (prepare, train, eval, plan, run, sync, pareto, export, report, ui, ls)


def register_all(app) -> None:
    for module in COMMANDS:
        module.register(app)
