"""``contimg flag``: RFI flagging of a Measurement Set (AOFlagger by default, or CASA flagdata)."""

from __future__ import annotations

from pathlib import Path

import click

from ..flagging.options import FlagOptions
from .common import settings
from .options import OptionSet

FLAG = OptionSet(FlagOptions, choices={"flagger": ("aoflagger", "casa"), "aoflagger_input": ("stokes-i", "xx-yy")},
                 types={"strategy": click.Path(exists=True, dir_okay=False, path_type=Path),
                        "qa_dir": click.Path(file_okay=False, path_type=Path)})
"""The flags of ``contimg flag``, from :class:`~dsa110_contimg.flagging.options.FlagOptions`."""


@click.command("flag")
@click.argument("ms_path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@FLAG
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the report (fractions per subband, antenna, integration; times) as JSON here.")
def flag_cmd(ms_path, json_path, **kw) -> None:
    """Flag RFI in an MS: keep the existing flags, add AOFlagger (or CASA) and MAD-clip flags, print a summary."""
    from ..casa_env import prepare_casa
    from ..flagging import flag_ms

    s = settings()
    prepare_casa(s.state_dir)
    res = flag_ms(ms_path, FLAG.build(kw, s))
    click.echo(res.summary())
    if json_path is not None:
        res.to_json(json_path)
        click.echo(f"report: {json_path}")
    if res.qa_png:
        click.echo(f"QA plot: {res.qa_png}")
