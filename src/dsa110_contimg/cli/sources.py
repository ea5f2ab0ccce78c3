"""``contimg sources``: the survey's sources and their light curves, read from the products database.

``contimg sources list [--variable] [--new] [--min-eta X] [--min-v Y] [--limit N] [--json]`` and
``contimg sources show ID [--json]``.  The database is opened read-only: the commands are safe
while the daemon writes.
"""

from __future__ import annotations

import json
from dataclasses import asdict

import click

_ORDERS = ("id", "eta", "v", "flux", "n", "last")


def _connect():
    """Read-only connection to the products database, or None before the pipeline made it."""
    from ..db import products as pdb
    from .common import settings

    return pdb.connect_readonly(settings(create_dirs=False).products_db)


def _f(value, fmt: str = ".3g", scale: float = 1.0) -> str:
    return "-" if value is None else format(value * scale, fmt)


@click.group("sources")
def sources_group() -> None:
    """Survey sources: variability numbers, flags and light curves."""


@sources_group.command("list")
@click.option("--variable", is_flag=True, help="Only sources flagged variable.")
@click.option("--new", is_flag=True, help="Only sources flagged new.")
@click.option("--min-eta", type=float, default=None, help="Only sources with eta at least this.")
@click.option("--min-v", type=float, default=None, help="Only sources with V at least this.")
@click.option("--order", type=click.Choice(_ORDERS), default="id", show_default=True,
              help="id ascending; eta, V, weighted mean flux, measurements, last time descending.")
@click.option("--limit", type=click.IntRange(0), default=50, show_default=True, help="Rows to print.")
@click.option("--offset", type=click.IntRange(0), default=0, show_default=True, help="Rows to skip.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of the sources.")
def list_cmd(variable: bool, new: bool, min_eta: float | None, min_v: float | None, order: str, limit: int,
             offset: int, as_json: bool) -> None:
    """List the survey sources, filtered by their flags and variability numbers.

    Parameters
    ----------
    variable, new
        Only the sources with the flag (without the option: all).
    min_eta, min_v
        Lower bounds of eta and V.
    order, limit, offset
        Order and page.
    as_json
        JSON (every column of each source) instead of a table.
    """
    from ..db import sources as sdb

    conn = _connect()
    rows, total = [], 0
    if conn is not None:
        try:
            args = (variable or None, new or None, min_eta, min_v)
            total = sdb.count_sources(conn, *args)
            rows = sdb.list_sources(conn, *args, limit=limit, offset=offset, order=order)
        finally:
            conn.close()
    if as_json:
        click.echo(json.dumps([asdict(r) for r in rows], indent=1))
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"sources {offset + 1 if rows else 0}-{offset + len(rows)} of {total}"
                    + ("" if conn is not None else " (no products database yet)"))
    for name in ("id", "name", "RA", "Dec", "n", "det", "S_wmean mJy", "eta", "V", "flags", "catalog"):
        t.add_column(name, justify="right", no_wrap=True)
    for r in rows:
        flags = " ".join(f for f, on in (("variable", r.is_variable), ("new", r.is_new)) if on)
        t.add_row(str(r.id), r.name, _f(r.ra_deg, ".5f"), _f(r.dec_deg, "+.5f"), str(r.n_measurements),
                  str(r.n_detections), _f(r.flux_wmean_jy, ".2f", 1e3), _f(r.eta), _f(r.v_index), flags,
                  "-" if r.catalog_source_id is None else str(r.catalog_source_id))
    Console().print(t)


@sources_group.command("show")
@click.argument("source_id", type=click.IntRange(1, 2**63 - 1))
@click.option("--json", "as_json", is_flag=True, help="Print the source and its light curve as JSON.")
def show_cmd(source_id: int, as_json: bool) -> None:
    """Show one source and its light curve: time, flux, error, detection or forced, image id.

    Parameters
    ----------
    source_id
        ``sources.id``.
    as_json
        JSON (the source's columns and ``measurements``, one dict per point) instead of tables.
    """
    from ..db import sources as sdb

    conn = _connect()
    if conn is None:
        raise click.ClickException("no products database yet: the pipeline has not recorded any source")
    try:
        src = sdb.get_source(conn, source_id)
        points = sdb.get_measurements(conn, source_id) if src is not None else []
    finally:
        conn.close()
    if src is None:
        raise click.ClickException(f"source {source_id} not found")
    if as_json:
        click.echo(json.dumps({**asdict(src), "measurements": [asdict(m) for m in points]}, indent=1))
        return
    from rich.console import Console
    from rich.table import Table

    flags = " ".join(f for f, on in (("variable", src.is_variable), ("new", src.is_new)) if on) or "-"
    head = Table(title=f"source {src.id} {src.name}", show_header=False)
    for k, v in (("position (deg)", f"{src.ra_deg:.5f} {src.dec_deg:+.5f}"), ("origin", src.origin),
                 ("catalog match", "-" if src.catalog_source_id is None else
                  f"{src.catalog_source_id} at {_f(src.catalog_sep_arcsec, '.1f')}\", "
                  f"{_f(src.catalog_flux_jy, '.2f', 1e3)} mJy"),
                 ("measurements", f"{src.n_measurements} ({src.n_detections} detections)"),
                 ("weighted mean (mJy)",
                  f"{_f(src.flux_wmean_jy, '.3f', 1e3)} +- {_f(src.flux_wmean_err_jy, '.3f', 1e3)}"),
                 ("eta, V", f"{_f(src.eta)}, {_f(src.v_index)}"), ("flags", flags)):
        head.add_row(k, v)
    lc = Table(title="light curve")
    for name in ("MJD", "flux mJy", "error mJy", "kind", "image", "group"):
        lc.add_column(name, justify="right", no_wrap=True)
    for m in points:
        lc.add_row(f"{m.mjd:.5f}", _f(m.flux_jy, ".3f", 1e3), _f(m.flux_err_jy, ".3f", 1e3),
                   m.kind + (" (backfilled)" if m.backfilled else ""), str(m.image_id), m.group_id or "-")
    console = Console()
    console.print(head)
    console.print(lc)
