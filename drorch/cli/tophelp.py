"""``drorch --help``: the usage line, the global options, one line per command.

Rendered here, in typer's layout, from a table of summaries instead of by typer's
formatter, which would build every command first and imports ``rich.markdown``
(~50 ms) on the way. Each command's own ``--help`` is typer's.
"""

from __future__ import annotations

import os
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.padding import Padding
from rich.panel import Panel
from rich.table import Table


def _console() -> Console:
    """stdout, as wide as typer makes it (``TERMINAL_WIDTH`` caps it, as for typer)."""
    width = os.environ.get("TERMINAL_WIDTH")
    return Console(highlight=False, width=int(width) if width else None)


def _panel(title: str, rows: list[tuple[str, str]]) -> Panel:
    table = Table(highlight=False, show_header=False, expand=True, box=None, pad_edge=False,
                  padding=(0, 1))
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column(ratio=1)
    for name, text in rows:
        table.add_row(escape(name), escape(text))
    return Panel(table, title=title, title_align="left", border_style="dim")


def _options(ctx: Any) -> list[tuple[str, str]]:
    """The group's own options (``--debug``, ``--help``), from click: never out of date."""
    rows = []
    for param in ctx.command.get_params(ctx):
        names = ", ".join(getattr(param, "opts", []) + getattr(param, "secondary_opts", []))
        rows.append((names, getattr(param, "help", None) or ""))
    return rows


def render_top_help(ctx: Any, text: str, summaries: dict[str, str], footer: str) -> None:
    """Print the top-level help on stdout."""
    console = _console()
    console.print()
    console.print(f" [yellow]Usage:[/] [bold]{escape(ctx.command_path)} [OPTIONS] COMMAND [ARGS]...[/]")
    console.print()
    console.print(Padding(escape(text), (0, 1)))
    console.print()
    console.print(_panel("Options", _options(ctx)))
    console.print(_panel("Commands", list(summaries.items())))
    console.print(Padding(f"[dim]{escape(footer)} `drorch COMMAND --help` says more.[/]", (0, 1)))
