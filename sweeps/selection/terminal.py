"""Consoles and tables sized to where the output goes: the terminal's width, or a fixed width in logs.

    from sweeps.selection.terminal import output_console, print_table
    console = output_console()                # a terminal: its width; a pipe / log: $COLUMNS, else LOG_WIDTH
    print_table(console, table, wide=False)   # the table if it fits, else one block per row (never a wrapped row)
    print_table(console, table, wide=True)    # the full table at the width it needs (`--wide`)

A table that needs more columns than the console has is not squeezed by rich (which wraps its cells and so
splits each row over several lines): `print_table` prints it as a list instead, and `unlearn-sweep pareto`
has its own compact layout (`sweeps.selection.pareto_table`). In logs (output not a terminal) the width is fixed at
LOG_WIDTH, or widened to what a table needs, so a log line is never wrapped by the console.
"""

from __future__ import annotations

import os

from rich.console import Console
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

LOG_WIDTH = 160  # columns when the output is not a terminal (logs, pipes, CI)


def output_console(width: int | None = None) -> Console:
    """A Console for command output: `width` when given, else the terminal's width; not a terminal (a log, a
    pipe): $COLUMNS when set, else LOG_WIDTH."""
    if width is not None:
        return Console(width=width)
    probe = Console()  # rich reads $COLUMNS itself
    return probe if probe.is_terminal or os.environ.get("COLUMNS", "").isdigit() else Console(width=LOG_WIDTH)


def table_width(console: Console, table) -> int:
    """The columns `table` (any renderable) needs to show every cell on one line."""
    return console.measure(table, options=console.options.update_width(10_000)).maximum


def fits(console: Console, table: Table) -> bool:
    return table_width(console, table) <= console.width


def print_wide(console: Console, renderable) -> None:
    """Print `renderable` whole: the console is widened to the width it needs for this one print."""
    need = table_width(console, renderable)
    if need <= console.width:
        console.print(renderable)
        return
    saved = console.width
    console.width = need
    try:
        console.print(renderable)
    finally:
        console.width = saved


def print_table(console: Console, table: Table, wide: bool = False) -> None:
    """The table when it fits (or `wide`), else each row as a block: its first cell, then `column: value`
    lines indented under it."""
    if wide or fits(console, table):
        print_wide(console, table)
        return
    if table.title:
        console.print(Text(str(table.title), style="bold"))
    columns = [(str(c.header), list(c.cells)) for c in table.columns]
    for r in range(len(columns[0][1]) if columns else 0):
        console.print(_text(columns[0][1][r]), style="bold")
        block = Table.grid(padding=(0, 1))
        block.add_column(style="dim", no_wrap=True)
        block.add_column(overflow="fold")  # a long value wraps under itself, beside its column's name
        for header, cells in columns[1:]:
            block.add_row(f"{header}:", _text(cells[r]))
        console.print(Padding(block, (0, 0, 0, 2), expand=False))


def _text(cell) -> Text:
    return Text.from_markup(cell) if isinstance(cell, str) else cell
