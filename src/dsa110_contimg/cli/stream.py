"""``contimg stream``: the streaming daemon (watch, queue, convert, calibrate, apply, image)."""

from __future__ import annotations

import click

from ..pipeline.stream import StreamOptions
from .common import settings
from .options import OptionSet

STREAM = OptionSet(StreamOptions, choices={"executor": ("dask", "inline")},
                   rename={"poll_interval_s": "--poll", "use_inotify": "--inotify/--no-inotify"},
                   settings={"input_dir": "incoming_dir", "output_dir": "output_dir"})
"""The flags of ``contimg stream``, from :class:`~dsa110_contimg.pipeline.stream.StreamOptions`."""


@click.command("stream")
@STREAM
@click.option("--until-idle", is_flag=True, help="Exit when every group is completed or failed.")
def stream_cmd(until_idle, **kw) -> None:
    """Watch the incoming folder and process every group exactly once (convert, calibrate, apply, image)."""
    from ..casa_env import prepare_casa
    from ..pipeline.stream import StreamDaemon

    s = settings()
    prepare_casa(s.state_dir)
    opts = STREAM.build(kw, s)
    click.echo(f"watching {opts.input_dir} -> {opts.output_dir} ({opts.executor}, {opts.workers} worker(s))")
    try:
        stats = StreamDaemon(opts, s).run(until_idle=until_idle)
    except KeyboardInterrupt:
        click.echo("stopped")
        return
    click.echo(f"completed {len(stats.completed)}, failed {len(stats.failed)}")
