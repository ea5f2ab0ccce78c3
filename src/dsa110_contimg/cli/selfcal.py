"""``contimg selfcal``: self-calibrate one calibrated MS (phase rounds, then optionally amplitude and phase)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..selfcal.run import SelfcalOptions
from .common import settings
from .options import OptionSet

SELFCAL = OptionSet(SelfcalOptions, rename={"phase_solints": ("--phase-solint",)})
"""The flags of ``contimg selfcal``, from :class:`~dsa110_contimg.selfcal.run.SelfcalOptions`."""


@click.command("selfcal")
@click.argument("ms_path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@SELFCAL
@click.option("--catalog", "catalog_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Master catalog for the reference sources (default: PIPELINE_CATALOG_DB when it exists).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the rounds (interval, mode, rms, dynamic range, flux ratio, kept or why not) as JSON.")
def selfcal_cmd(ms_path, catalog_path, json_path, **kw) -> None:
    """Self-calibrate MS_PATH's CORRECTED_DATA in place; a round is kept only if it lowers the residual rms and keeps
    the reference sources' flux."""
    from ..casa_env import prepare_casa
    from ..selfcal.run import selfcal_ms

    s = settings()
    prepare_casa(s.state_dir)
    cat = catalog_path or (s.catalog_path if s.catalog_path and Path(s.catalog_path).is_file() else None)
    try:
        res = selfcal_ms(ms_path, SELFCAL.build(kw, s), cat)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    for r in res.rounds:
        state = "kept" if r.accepted else f"rejected: {r.reason}"
        click.echo(f"  round {r.index} {r.mode or '-':2s} {r.solint or '-':>5s}: rms {1e3 * r.rms_jy:.3f} mJy/beam, "
                   f"DR {r.dynamic_range:.0f}, {state}")
    click.echo(res.summary())
    if json_path is not None:
        Path(json_path).write_text(json.dumps(res.to_dict(), indent=1))
        click.echo(f"rounds: {json_path}")
