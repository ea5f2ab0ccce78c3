"""``contimg api``: serve the monitoring API and dashboard."""

from __future__ import annotations

import errno
import socket

import click


def free_port(host: str, preferred: int) -> int:
    """``preferred`` when it can be bound on ``host``, else a free port the system picks."""
    for port in (preferred, 0):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host, port))
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
                continue
            return s.getsockname()[1]
    raise OSError(f"no free port on {host}")  # pragma: no cover


def serve(settings, host: str = "127.0.0.1", port: int = 8000, log_level: str = "warning",
          refresh_s: float = 10.0) -> None:
    """Serve the app for ``settings`` with uvicorn until interrupted (Ctrl-C)."""
    import uvicorn

    from .app import create_app

    uvicorn.run(create_app(settings, refresh_s), host=host, port=port, log_level=log_level)


def settings_env(settings) -> dict[str, str]:
    """The environment variables that make ``contimg api`` read the databases and folders of ``settings``."""
    return {"PIPELINE_STATE_DIR": str(settings.state_dir), "PIPELINE_QUEUE_DB": str(settings.queue_db),
            "PIPELINE_PRODUCTS_DB": str(settings.products_db), "CAL_REGISTRY_DB": str(settings.cal_registry_db),
            "PIPELINE_INCOMING_DIR": str(settings.incoming_dir), "PIPELINE_OUTPUT_DIR": str(settings.output_dir)}


@click.command("api")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind (loopback by default).")
@click.option("--port", type=int, default=8000, show_default=True)
@click.option("--log-level", type=click.Choice(["critical", "error", "warning", "info", "debug"]), default="info",
              show_default=True)
@click.option("--refresh", "refresh_s", type=float, default=10.0, show_default=True,
              help="Reload interval of the dashboard's live pages (s; 0: off).")
def api_cmd(host: str, port: int, log_level: str, refresh_s: float) -> None:
    """Serve the monitoring API (/api, OpenAPI at /docs) and the dashboard (/)."""
    from ..config import cli_settings

    s = cli_settings(create_dirs=False)  # a read-only service: it creates nothing
    click.echo(f"dashboard: http://{host}:{port}/  (queue {s.queue_db}, products {s.products_db}, "
               f"registry {s.cal_registry_db}; writes {'enabled' if s.api_token else 'disabled'})")
    serve(s, host, port, log_level, refresh_s)
