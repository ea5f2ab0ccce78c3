"""``contimg config``: the effective settings and where each value came from."""

from __future__ import annotations

import click

from .common import settings


@click.command("config")
def config_cmd() -> None:
    """Print the effective settings and where each value came from."""
    from rich.console import Console
    from rich.table import Table

    s = settings()
    table = Table(title="dsa110-contimg settings")
    for col in ("variable", "value", "source"):
        table.add_column(col)
    for row in s.as_rows():
        table.add_row(*row)
    Console().print(table)
