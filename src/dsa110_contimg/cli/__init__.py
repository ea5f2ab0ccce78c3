"""The one command-line interface: ``contimg``.

One module per stage or command group; the root group loads a command's module
only when the command is used (or listed by ``contimg --help``), and heavy
libraries (pyuvdata, casatools, casatasks, distributed) are imported inside the
commands, so ``import dsa110_contimg.cli`` stays light.  The flags of the stage
commands are generated from their options dataclasses (:mod:`.options`).

Any pipeline error (:class:`~dsa110_contimg.errors.ContimgError`) ends a command
with its one-line message and exit code 1; ``-v`` shows the traceback instead.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
from pathlib import Path

import click

COMMANDS: dict[str, str] = {
    "config": "dsa110_contimg.cli.config:config_cmd",
    "simulate": "dsa110_contimg.cli.simulate:simulate_cmd",
    "convert": "dsa110_contimg.cli.convert:convert_cmd",
    "flag": "dsa110_contimg.cli.flag:flag_cmd",
    "calibrators": "dsa110_contimg.cli.calibrate:calibrators_group",
    "calibrate": "dsa110_contimg.cli.calibrate:calibrate_cmd",
    "apply": "dsa110_contimg.cli.calibrate:apply_cmd",
    "selfcal": "dsa110_contimg.cli.selfcal:selfcal_cmd",
    "image": "dsa110_contimg.cli.image:image_cmd",
    "image-worker": "dsa110_contimg.cli.image:image_worker_group",
    "stream": "dsa110_contimg.cli.stream:stream_cmd",
    "demo": "dsa110_contimg.cli.demo:demo_cmd",
    "queue": "dsa110_contimg.db.queue_cli:queue_group",
    "doctor": "dsa110_contimg.db.queue_cli:doctor_cmd",
    "caltables": "dsa110_contimg.db.cal_registry_cli:caltables",
    "catalog": "dsa110_contimg.catalog.cli:catalog",
    "api": "dsa110_contimg.api.cli:api_cmd",
    "sources": "dsa110_contimg.cli.sources:sources_group",
    "mosaic": "dsa110_contimg.cli.mosaic:mosaic_cmd",
}
"""Command name -> ``module:attribute`` of its click command, imported on first use."""


def _docstring(name: str) -> str | None:
    """The docstring of command ``name``'s function, read from its module's source without importing it."""
    module, attr = COMMANDS[name].split(":")
    try:
        spec = importlib.util.find_spec(module)
        tree = ast.parse(Path(spec.origin).read_text())
    except (ImportError, AttributeError, TypeError, OSError, SyntaxError):
        return None
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == attr:
            return ast.get_docstring(node)
    return None


class _Main(click.Group):
    """The root group: commands are loaded on first use; any pipeline error
    (:class:`~dsa110_contimg.errors.ContimgError`) ends the command with its one-line
    message and exit code 1; ``-v`` shows the traceback instead."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMANDS))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        cmd = super().get_command(ctx, name)
        if cmd is None and name in COMMANDS:
            module, attr = COMMANDS[name].split(":")
            cmd = getattr(importlib.import_module(module), attr)
            self.add_command(cmd, name)
        return cmd

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list of ``contimg --help``, without importing the commands' modules (it stays fast)."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(n) for n in names)
        rows = []
        for name in names:
            cmd = self.commands.get(name)
            doc = None if cmd is not None else _docstring(name)
            if doc is None:
                cmd = self.get_command(ctx, name)
                if cmd is None or cmd.hidden:
                    continue
                rows.append((name, cmd.get_short_help_str(limit)))
            else:
                rows.append((name, click.utils.make_default_short_help(doc, limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context):
        from ..errors import ContimgError

        try:
            return super().invoke(ctx)
        except ContimgError as exc:
            if ctx.obj and ctx.obj.get("verbose"):
                raise
            raise click.ClickException(str(exc)) from None


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Debug detail: every log line, Dask's and the libraries' too, "
                                                    "and tracebacks.")
@click.option("-q", "--quiet", is_flag=True, help="Warnings and errors only.")
@click.version_option(package_name="dsa110-contimg")
@click.pass_context
def main(ctx: click.Context, verbose: bool, quiet: bool) -> None:
    """dsa110-contimg: real-time continuum imaging pipeline of the DSA-110."""
    from .. import logs

    if verbose and quiet:
        raise click.UsageError("-v and -q exclude each other")
    verbosity = logs.VERBOSE if verbose else logs.QUIET if quiet else logs.NORMAL
    ctx.obj = {"verbose": verbose, "verbosity": verbosity}
    logs.configure(verbosity)


if __name__ == "__main__":  # pragma: no cover
    main()
