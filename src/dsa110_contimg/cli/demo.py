"""``contimg demo``: the streaming demo, its summary table, then the dashboard."""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from ..pipeline.demo_cli import should_serve
from ..simulate.presets import PRESETS
from .common import settings


@click.command("demo")
@click.option("--preset", type=click.Choice(sorted(PRESETS)), default="small", show_default=True)
@click.option("--groups", type=int, default=4, show_default=True, help="Groups to simulate and stream.")
@click.option("--executor", type=click.Choice(["dask", "inline"]), default="dask", show_default=True)
@click.option("--rfi", type=click.Choice(["none", "light", "heavy"]), default="light", show_default=True,
              help="Interference injected by the simulator (removed by the flag stage).")
@click.option("--no-serve", is_flag=True, help="Exit after the summary instead of serving the dashboard.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface the dashboard binds.")
@click.option("--port", type=int, default=8000, show_default=True, help="Dashboard port (another if busy).")
def demo_cmd(preset: str, groups: int, executor: str, rfi: str, no_serve: bool, host: str, port: int) -> None:
    """Simulate a few groups (the first with a calibrator), stream them through the pipeline, summarise.

    Prints one line per group and stage, then the summary table (a row per group), then the dashboard URL;
    in a terminal it serves the dashboard until Ctrl-C.
    """
    from rich.console import Console
    from rich.table import Table

    from ..api.cli import free_port, serve, settings_env
    from ..pipeline.demo import run_demo

    res = run_demo(settings(), preset=preset, n_groups=groups, executor=executor, rfi=rfi)
    table = Table(title="dsa110-contimg demo")
    for col in ("group", "state", "stage", "convert s", "flag s", "flagged %", "calibrate s", "apply s", "image s",
                "latency s",
                "rms mJy/bm", "sources found/injected", "image"):
        table.add_column(col)

    def f(v):
        return "" if v is None else f"{v:.1f}"

    for r in res.rows:
        table.add_row(r["group"], r["state"], r["stage"], f(r["convert_s"]), f(r.get("flag_s")),
                      f(r.get("flagged_pct")), f(r["calibrate_s"] or None),
                      f(r["apply_s"]), f(r["image_s"]), f(r["latency_s"]),
                      f"{r['rms_mjy']:.2f}" if r["rms_mjy"] else "", f"{r['found']}/{r['injected']}",
                      Path(r["image"]).name if r["image"] else r["error"][:50])
    Console(width=200).print(table)
    m = res.mosaic
    if m is not None and m.status == "ok":
        click.echo(f"mosaic of the target groups: {m.n_used}/{m.n_inputs} images, rms "
                   f"{1e3 * (m.rms_jy or float('nan')):.2f} mJy/bm (predicted {1e3 * (m.noise_median_jy or 0):.2f}), "
                   f"{m.n_sources or 0} sources -> {m.path}")
    elif m is not None:
        click.echo(f"mosaic of the target groups failed: {m.error}")
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
