"""``contimg caltables``: inspect the calibration registry, retire and re-activate sets.

The registry path is ``CAL_REGISTRY_DB`` (``Settings.cal_registry_db``), read when
a command runs.  Only click and the standard library are imported at module
level; rich is imported inside the commands.
"""

from __future__ import annotations

import json
import sqlite3

import click

caltables = click.Group("caltables", help="Inspect the calibration-table registry (CAL_REGISTRY_DB): "
                                          "list, show, retire and activate calibration sets.")


def _open():
    """Connect to the configured registry; configuration/registry errors become click errors."""
    from ..config import cli_settings
    from ..errors import DatabaseFault
    from .cal_registry import CalRegistryError, connect

    path = cli_settings().cal_registry_db
    try:
        return connect(path)
    except DatabaseFault as exc:  # names the file already
        raise click.ClickException(str(exc)) from None
    except (CalRegistryError, OSError, sqlite3.Error) as exc:  # e.g. locked
        raise click.ClickException(f"calibration registry {path}: {exc}") from None


def _console():
    from rich.console import Console

    return Console(highlight=False)


def _window(calset) -> tuple[str, str]:
    from ..timeconv import mjd_to_iso

    return mjd_to_iso(calset.valid_start_mjd), mjd_to_iso(calset.valid_end_mjd)


@caltables.command("list")
@click.option("--status", type=click.Choice(["active", "retired", "all"]), default="active", show_default=True,
              help="Which sets to list.")
def list_cmd(status: str) -> None:
    """List calibration sets with their tables and validity window (UTC)."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    from .cal_registry import list_sets

    conn = _open()
    try:
        sets = list_sets(conn, None if status == "all" else status)
    finally:
        conn.close()
    con = _console()
    if not sets:
        con.print(Text(f"no {'' if status == 'all' else status + ' '}calibration sets"))
        return
    t = Table(title=f"calibration sets ({status}): {len(sets)}", box=box.SIMPLE_HEAD, pad_edge=False,
              collapse_padding=True)
    t.add_column("set", overflow="fold", max_width=40)
    t.add_column("status", min_width=7, no_wrap=True)
    t.add_column("tables", overflow="fold")
    t.add_column("field", overflow="fold")
    t.add_column("refant", overflow="fold")
    t.add_column("valid (UTC)", overflow="fold")
    for s in sets:
        start, end = _window(s)
        t.add_row(Text(s.set_name), Text(s.status, style="green" if s.status == "active" else "red"),
                  Text(",".join(str(x) for x in s.table_types)), Text(s.cal_field or "-"), Text(s.refant or "-"),
                  Text(f"{start} .. {end}"))
    con.print(t)


@caltables.command("show")
@click.argument("set_name")
def show_cmd(set_name: str) -> None:
    """Show every table of SET_NAME (type, apply order, path, quality metrics) and its provenance."""
    from rich.table import Table
    from rich.text import Text

    from .cal_registry import CalRegistryError, get_set, verify_set_on_disk

    conn = _open()
    try:
        s = get_set(conn, set_name)
    except CalRegistryError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        conn.close()
    start, end = _window(s)
    missing = set(verify_set_on_disk(s))
    con = _console()
    info = Table.grid(padding=(0, 2))
    info.add_column(style="bold")
    info.add_column()
    for key, value in (("set", s.set_name), ("status", s.status), ("valid", f"{start} .. {end}"),
                       ("field", s.cal_field or "-"), ("refant", s.refant or "-"),
                       ("source MS", s.source_ms_path or "-"), ("created", s.created_at or "-"),
                       ("solver", " ".join(x for x in (s.solver_command, s.solver_version) if x) or "-"),
                       ("notes", s.notes or "-")):
        info.add_row(Text(key), Text(str(value)))
    con.print(info)
    t = Table(title=f"{len(s.entries)} tables (apply order)")
    for col in ("order", "type", "path", "on disk", "quality metrics"):
        t.add_column(col, overflow="fold")
    for e in s.entries:
        metrics = json.dumps(e.quality_metrics, indent=2, sort_keys=True) if e.quality_metrics else "-"
        t.add_row(Text(str(e.order_index)), Text(str(e.table_type)), Text(e.path),
                  Text("MISSING", style="bold red") if e.path in missing else Text("ok"), Text(metrics))
    con.print(t)


@caltables.command("retire")
@click.argument("set_name")
@click.option("--reason", required=True, help="Why the set is retired (appended to its notes).")
def retire_cmd(set_name: str, reason: str) -> None:
    """Retire SET_NAME: it is never selected for apply again (kept for provenance)."""
    from .cal_registry import CalRegistryError, retire_set

    conn = _open()
    try:
        retire_set(conn, set_name, reason)
    except CalRegistryError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        conn.close()
    click.echo(f"retired {set_name}")


@caltables.command("activate")
@click.argument("set_name")
def activate_cmd(set_name: str) -> None:
    """Re-activate SET_NAME so that it can be selected for apply."""
    from .cal_registry import CalRegistryError, activate_set

    conn = _open()
    try:
        activate_set(conn, set_name)
    except CalRegistryError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        conn.close()
    click.echo(f"activated {set_name}")
