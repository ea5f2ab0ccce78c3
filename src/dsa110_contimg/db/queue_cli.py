"""``contimg queue ...`` (inspect and nudge the ingest queue) and ``contimg doctor`` (health of the state)."""

from __future__ import annotations

import click


def _settings():
    from ..config import cli_settings

    return cli_settings()


@click.group("queue")
def queue_group() -> None:
    """Inspect and nudge the ingest queue."""


@queue_group.command("status")
@click.option("--limit", type=int, default=20, show_default=True)
def queue_status(limit) -> None:
    """Counts by state and the most recent groups."""
    from rich.console import Console
    from rich.table import Table

    from . import queue as q

    conn = q.connect(_settings().queue_db)
    try:
        counts, groups = q.counts_by_state(conn), q.list_groups(conn, limit=limit)
        hb = q.get_heartbeat(conn, "stream")
        extra, n_extra = q.list_extra_files(conn, limit=limit), q.count_extra_files(conn)
    finally:
        conn.close()
    click.echo(", ".join(f"{k} {v}" for k, v in counts.items()))
    if hb is not None:
        click.echo(f"daemon heartbeat: {hb.updated_at} (pid {hb.pid} on {hb.host})")
    table = Table()
    for col in ("group", "state", "stage", "subbands", "retries", "error"):
        table.add_column(col)
    for g in groups:
        table.add_row(g.group_id, g.state, g.processing_stage or "", f"{len(g.files)}/{g.expected_subbands}",
                      str(g.retry_count), (g.error or "")[:60])
    Console().print(table)
    if extra:
        click.echo(f"files set aside ({n_extra}; newest first):")
        for e in extra:
            where = f" [{e.group_id}]" if e.group_id else ""
            click.echo(f"  {e.kind:<10} {e.name}{where}: {e.reason}")


def _on_queue(action):
    """Run ``action(conn)`` on the configured queue; its errors (unknown group, wrong state) exit with a message."""
    from . import queue as q

    conn = q.connect(_settings().queue_db)
    try:
        return action(conn)
    except q.QueueDBError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        conn.close()


@queue_group.command("retry")
@click.argument("group_id")
@click.option("--restart", is_flag=True, help="Start again from the first stage.")
def queue_retry(group_id, restart) -> None:
    """Put a failed or held group back into the queue."""
    from . import queue as q

    _on_queue(lambda conn: q.retry(conn, group_id, restart=restart))
    click.echo(f"{group_id} re-queued")


@queue_group.command("reprocess")
@click.argument("group_id")
def queue_reprocess(group_id) -> None:
    """Process a completed (or failed, held, pending) group again from its first stage."""
    import getpass

    from . import queue as q

    old = _on_queue(lambda conn: q.reprocess(conn, group_id, requested_by=f"contimg queue ({getpass.getuser()})"))
    click.echo(f"{group_id} queued again (was {old})")


@queue_group.command("reset-stale")
def queue_reset_stale() -> None:
    """Put groups left in progress (by a crashed daemon) back to pending."""
    from . import queue as q

    groups = _on_queue(q.reset_stale)
    click.echo(f"re-queued {len(groups)} group(s)" + (": " + ", ".join(groups) if groups else ""))




@queue_group.command("release")
@click.argument("group_id")
@click.option("--keep", "keep", required=True, help="The file to keep for the subband in conflict (path or name).")
def queue_release(group_id, keep) -> None:
    """Resolve a duplicate subband with different content: keep one file, the group goes on."""
    from . import queue as q

    kept = _on_queue(lambda conn: q.release(conn, group_id, keep))
    click.echo(f"{group_id}: kept {kept}")


@click.command("doctor")
@click.option("--quick", is_flag=True, help="PRAGMA quick_check instead of the full integrity_check.")
def doctor_cmd(quick) -> None:
    """Check the three databases (integrity, schema version) and the folders; exit 1 if anything is wrong."""
    from ..config import load_settings
    from .health import ERROR, doctor

    try:
        settings = load_settings(create_dirs=False)
    except Exception as exc:  # noqa: BLE001 - a configuration error is a finding too
        raise click.ClickException(f"configuration error: {exc}") from None
    findings = doctor(settings, quick=quick)
    for f in findings:
        click.echo(f"{f.level.upper():5} {f.subject}: {f.message}")
    errors = [f for f in findings if f.level == ERROR]
    if errors:
        raise click.ClickException(f"{len(errors)} problem(s) found")
    click.echo("all checks passed")
