"""`unlearn-sweep ls`: what a sweep spec can name: methods (and reference aliases), sweep presets,
search-space presets.

    unlearn-sweep ls                 # everything
    unlearn-sweep ls methods         # methods, their aliases and default hyperparameters
    unlearn-sweep ls presets         # sweep presets in presets/ and the command that runs each
    unlearn-sweep ls spaces          # search-space presets in search_spaces/ and their dimensions
    unlearn-sweep ls --wide          # tables however wide (a narrow terminal gets one block per entry)
"""

from __future__ import annotations

import typer
from rich.table import Table

EXAMPLES = """Examples:

  unlearn-sweep ls

  unlearn-sweep ls methods

  unlearn-sweep ls spaces
"""
SECTIONS = ("methods", "presets", "spaces")


def methods_table() -> Table:
    from unlearning.methods.names import CANONICAL_METHODS, METHOD_ALIASES
    from unlearning.methods.registry import method_defaults

    table = Table(title="Methods (method.name; baldro: none | g | dv wraps any of them but GRU, SIBL, T3 and LUNAR)")
    table.add_column("method")
    table.add_column("reference aliases")
    table.add_column("hyperparameters (defaults)")
    for name in CANONICAL_METHODS:
        aliases = [f"{a} (= baldro {t.baldro})" if t.baldro else a for a, t in METHOD_ALIASES.items() if t.method == name]
        defaults = ", ".join(f"{k}={v}" for k, v in method_defaults(name).items())
        table.add_row(name, ", ".join(aliases) or "-", defaults or "-")
    table.add_row("BalDRO-DV", "baldro: dv", ", ".join(f"{k}={v}" for k, v in method_defaults("DrNPO").items()
                                                        if k not in method_defaults("NPO") and k != "baldro"))
    table.add_row("BalDRO-G", "baldro: g", ", ".join(f"{k}={v}" for k, v in method_defaults("GroupNPO").items()
                                                      if k not in method_defaults("NPO") and k != "baldro"))
    table.add_row("training", "-", "lr, epochs, batch_size, grad_accum, warmup_epochs, weight_decay, max_grad_norm, "
                                    "lr_scheduler")
    return table


def presets_table() -> Table:
    from sweeps.spec import PRESET_DIR, first_line_command, list_presets
    from search_spaces.loader import read_yaml

    table = Table(title=f"Sweep presets ({PRESET_DIR})")
    table.add_column("preset")
    table.add_column("description")
    table.add_column("command")
    for name in list_presets():
        path = PRESET_DIR / f"{name}.yaml"
        raw = read_yaml(path) or {}
        table.add_row(name, str(raw.get("description", "")), first_line_command(path))
    return table


def _dim(p) -> str:
    if p.type == "categorical":
        return "{" + ", ".join(str(c) for c in p.choices) + "}"
    return f"{p.low:g}..{p.high:g}" + (" log" if p.log else "")


def spaces_table() -> Table:
    from search_spaces.loader import PRESET_DIR, list_presets, load_preset

    table = Table(title=f"Search-space presets ({PRESET_DIR})")
    table.add_column("space")
    table.add_column("for methods")
    table.add_column("dimensions")
    for name in list_presets():
        s = load_preset(name)
        table.add_row(name, ", ".join(s.methods), ", ".join(f"{k} {_dim(p)}" for k, p in s.params.items()))
    return table


def register(app: typer.Typer) -> None:
    @app.command(name="ls", epilog=EXAMPLES)
    def ls(section: str = typer.Argument("all", help="methods, presets, spaces or all."),
           wide: bool = typer.Option(False, "--wide", help="Tables however wide (default: tables that fit the "
                                                           "terminal, one block per entry where they do not).")
           ) -> None:
        """List the methods (with aliases), the sweep presets and the search-space presets."""
        from sweeps.selection.terminal import output_console, print_table
        from unlearning.errors import ConfigError

        if section not in (*SECTIONS, "all"):
            raise ConfigError("ls", field="section", value=section, fix=f"use one of {[*SECTIONS, 'all']}")
        console = output_console()
        builders = {"methods": methods_table, "presets": presets_table, "spaces": spaces_table}
        for name in SECTIONS:
            if section in (name, "all"):
                print_table(console, builders[name](), wide=wide)
