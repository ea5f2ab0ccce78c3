"""``contimg convert``: UVH5 subband groups -> Measurement Sets."""

from __future__ import annotations

from pathlib import Path

import click

from ..conversion.convert import ConvertOptions
from .common import settings
from .options import OptionSet

WRITERS = ("auto", "monolithic", "direct-subband")
"""The writers ``--writer`` accepts (see :func:`~dsa110_contimg.conversion.convert.choose_writer`)."""

CONVERT = OptionSet(
    ConvertOptions, exclude=("output_dir", "phase_center_deg", "field_name"), choices={"writer": WRITERS},
    types={"stage_dir": click.Path(file_okay=False, path_type=Path),
           "antpos_csv": click.Path(exists=True, dir_okay=False, path_type=Path)},
    settings={"stage_dir": "stage_dir", "expected_subbands": "expected_subbands", "antpos_csv": "antpos_csv",
              "telescope_name": "telescope_name"})
"""The flags of ``contimg convert``, from :class:`~dsa110_contimg.conversion.convert.ConvertOptions`."""


def _phase_centre(calibrator: str | None) -> dict:
    """``phase_center_deg`` and ``field_name`` of a calibrator MS phased to ``calibrator`` (none: {})."""
    if not calibrator:
        return {}
    from ..catalog.calibrators import lookup_calibrator

    try:
        cal = lookup_calibrator(calibrator)
    except KeyError as exc:
        raise click.ClickException(str(exc)) from None
    return {"phase_center_deg": (cal.ra_deg, cal.dec_deg), "field_name": cal.name}


@click.command("convert")
@click.argument("input_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("output_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--start", default=None, help="Only groups at or after this time (ISO).")
@click.option("--end", default=None, help="Only groups at or before this time (ISO).")
@CONVERT
@click.option("--calibrator", default=None, help="Phase to this bundled calibrator (a calibrator MS).")
def convert_cmd(input_dir, output_dir, start, end, calibrator, **kw) -> None:
    """Convert UVH5 subband groups in INPUT_DIR into Measurement Sets in OUTPUT_DIR."""
    from ..casa_env import prepare_casa
    from ..conversion.convert import convert_directory
    from ..conversion.grouping import ConversionInputError

    s = settings()
    prepare_casa(s.state_dir)
    opts = CONVERT.build(kw, s, output_dir=output_dir, **_phase_centre(calibrator))
    results = convert_directory(input_dir, opts, start, end)
    if not results:
        click.echo(f"no subband groups found in {input_dir}")
    failed = 0
    for r in results:
        if isinstance(r, ConversionInputError):
            failed += 1
            click.echo(f"ERROR {r}", err=True)
            continue
        line = f"{r.group_id}: {r.status} [{r.writer}, {r.n_subbands} subbands]"
        if r.missing_subbands:
            line += f" missing {r.missing_subbands} (flagged)"
        if r.ms_path and r.status == "converted":
            line += f" -> {r.ms_path} in {r.timings.get('total', 0):.1f} s"
        click.echo(line)
    if failed:
        raise SystemExit(1)
