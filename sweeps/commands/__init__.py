"""CLI commands of `unlearn-sweep`, one module each; `register_all` adds them to the typer app.

To add a command: write `sweeps/commands/<name>.py` with a function `register(app)` that decorates its
command with `@app.command(...)`, and list the module in `COMMANDS` below.
"""

from __future__ import annotations

import importlib

COMMANDS = ["prepare", "train", "eval", "pareto", "export", "ls", "run", "report", "ui"]


def register_all(app) -> None:
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"sweeps.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"sweeps.commands.{name}":
                continue  # command not written yet
            raise
        module.register(app)
