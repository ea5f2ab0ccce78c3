"""``contimg catalog``: build and query the master reference catalog.

``build-master`` is :data:`dsa110_contimg.catalog.build_master.build_master_cmd` (the
command of ``python -m dsa110_contimg.catalog.build_master`` too), loaded on first
use; only click is imported at module level, the work inside the commands.
"""

from __future__ import annotations

from pathlib import Path

import click


class _CatalogGroup(click.Group):
    """``build-master`` is loaded when it is used (its module imports numpy)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | {"build-master"})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name == "build-master" and name not in self.commands:
            from .build_master import build_master_cmd

            self.add_command(build_master_cmd, name)
        return super().get_command(ctx, name)


catalog = _CatalogGroup("catalog", help="Build and query the master reference catalog (NVSS + VLASS + FIRST).")


@catalog.command("cone")
@click.argument("ra_deg", type=float)
@click.argument("dec_deg", type=float)
@click.option("--radius", "radius_deg", type=float, default=1.0, show_default=True, help="Radius (deg).")
@click.option("--db", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Catalog [<PIPELINE_STATE_DIR>/catalogs/master_sources.sqlite3].")
@click.option("--view", "table", type=click.Choice(["sources", "good_references", "final_references",
                                                    "final_references_table"]),
              default="sources", show_default=True)
@click.option("--refs", is_flag=True, help="Rank by primary-beam-weighted flux (brightest references).")
@click.option("--freq-hz", type=float, default=1.4e9, show_default=True, help="Frequency for --refs.")
@click.option("--limit", type=int, default=50, show_default=True, help="Rows to print.")
def cone_cmd(ra_deg, dec_deg, radius_deg, db, table, refs, freq_hz, limit) -> None:
    """Print the catalog sources within RADIUS of RA_DEG DEC_DEG."""
    from rich.console import Console
    from rich.table import Table

    from ..config import get_settings
    from .errors import CatalogError
    from .query import brightest_references, cone_search

    try:
        path = db if db is not None else get_settings().catalog_path
        if refs:
            rows = brightest_references(path, ra_deg, dec_deg, radius_deg, freq_hz=freq_hz, n=limit, table=table)
        else:
            rows = cone_search(path, ra_deg, dec_deg, radius_deg, table=table)
    except CatalogError as exc:
        raise click.ClickException(str(exc)) from None
    t = Table(title=f"{table} within {radius_deg} deg of ({ra_deg}, {dec_deg}): {len(rows)} rows")
    for name in rows.dtype.names:
        t.add_column(name, justify="right", no_wrap=True)
    for row in rows[:limit]:
        t.add_row(*(_fmt(name, row[name]) for name in rows.dtype.names))
    Console().print(t)


def _fmt(name: str, value) -> str:
    if name == "source_id" or name.endswith("_flag"):
        return str(int(value))
    v = float(value)
    if v != v:
        return "-"
    return f"{v:.5f}" if name in ("ra_deg", "dec_deg", "sep_deg") else f"{v:.4g}"
