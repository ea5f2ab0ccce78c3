"""``contimg demo``: the streaming demo, its summary table, then the dashboard."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

import click


def should_serve(no_serve: bool) -> bool:
    """Serve the dashboard after the demo only in an interactive terminal, never under CI or ``--no-serve``."""
    return not no_serve and not os.environ.get("CI") and sys.stdin.isatty() and sys.stdout.isatty()


@click.command("demo")
@click.option("--preset", type=click.Choice(["full", "medium", "small"]), default="small", show_default=True)
@click.option("--groups", type=int, default=4, show_default=True, help="Groups to simulate and stream.")
@click.option("--executor", type=click.Choice(["dask", "inline"]), default="dask", show_default=True)
@click.option("--no-serve", is_flag=True, help="Exit after the summary instead of serving the dashboard.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface the dashboard binds.")
@click.option("--port", type=int, default=8000, show_default=True, help="Dashboard port (another if busy).")
def demo_cmd(preset: str, groups: int, executor: str, no_serve: bool, host: str, port: int) -> None:
    """Simulate a few groups (the first with a calibrator), stream them through the pipeline, summarise.

    Ends by printing the dashboard URL; in a terminal it serves the dashboard until Ctrl-C.
    """
    from rich.console import Console
    from rich.table import Table

    from ..api.cli import free_port, serve, settings_env
    from ..config import cli_settings
    from .demo import run_demo

    s = cli_settings()
    res = run_demo(s, preset=preset, n_groups=groups, executor=executor)
    table = Table(title="dsa110-contimg demo")
    for col in ("group", "state", "stage", "convert s", "calibrate s", "apply s", "image s", "latency s",
                "rms mJy/bm", "sources found/injected", "image"):
        table.add_column(col)

    def f(v):
        return "" if v is None else f"{v:.1f}"

    for r in res.rows:
        table.add_row(r["group"], r["state"], r["stage"], f(r["convert_s"]), f(r["calibrate_s"] or None),
                      f(r["apply_s"]), f(r["image_s"]), f(r["latency_s"]),
                      f"{r['rms_mjy']:.2f}" if r["rms_mjy"] else "", f"{r['found']}/{r['injected']}",
                      Path(r["image"]).name if r["image"] else r["error"][:50])
    Console(width=200).print(table)
    click.echo(f"products: {res.settings.output_dir}")
    click.echo(f"databases: {res.settings.queue_db}, {res.settings.products_db}, {res.settings.cal_registry_db}")
    serving = should_serve(no_serve)
    port = free_port(host, port) if serving else port
    click.echo(f"dashboard: http://{host}:{port}/")
    if serving:
        click.echo("serving the dashboard of this demo; press Ctrl-C to stop")
        serve(res.settings, host, port)
    else:
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in settings_env(res.settings).items())
        click.echo(f"to browse it later: {env} contimg api --port {port}")
    if res.failed:
        raise SystemExit(f"{res.failed} group(s) failed")
