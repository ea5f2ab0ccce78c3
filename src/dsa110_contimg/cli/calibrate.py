"""``contimg calibrators find``, ``contimg calibrate`` and ``contimg apply``: the calibration stages."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from ..calibration.solve import CalibrateOptions
from ..calibration.transits import FindOptions
from ..errors import ContimgError
from ..timeconv import datetime_to_mjd, mjd_to_datetime
from .common import master_catalog, settings
from .options import OptionSet

CALIBRATE = OptionSet(CalibrateOptions, choices={"gain_calmode": ("p", "ap")})
"""The flags of ``contimg calibrate``, from :class:`~dsa110_contimg.calibration.solve.CalibrateOptions`."""

FIND = OptionSet(FindOptions, exclude=("catalog_path",))
"""The flags of ``contimg calibrators find``, from :class:`~dsa110_contimg.calibration.transits.FindOptions`."""


@click.group("calibrators")
def calibrators_group() -> None:
    """Calibrators transiting through the beam."""


@calibrators_group.command("find")
@click.option("--ms", "ms_path", type=click.Path(exists=True, path_type=Path), default=None,
              help="A converted group (its time range and pointing).")
@click.option("--start", default=None, help="Group start (ISO UTC), instead of --ms.")
@click.option("--end", default=None, help="Group end (ISO UTC), instead of --ms.")
@click.option("--dec", "dec_deg", type=float, default=None, help="Pointing declination (deg), instead of --ms.")
@FIND
def calibrators_find_cmd(ms_path, start, end, dec_deg, **kw) -> None:
    """List calibrators transiting during (or near) a group, ranked by beam-weighted flux."""
    from rich.console import Console
    from rich.table import Table

    from ..calibration.transits import find_calibrators, ms_time_range_and_dec
    from ..casa_env import prepare_casa

    s = settings()
    prepare_casa(s.state_dir)  # casacore's measures (UTC conversions) from the current leap-second data
    if ms_path is not None:
        t0, t1, dec = ms_time_range_and_dec(ms_path)
    elif start and end and dec_deg is not None:
        t0, t1, dec = datetime_to_mjd(datetime.fromisoformat(start)), datetime_to_mjd(datetime.fromisoformat(end)), \
            dec_deg
    else:
        raise click.UsageError("give --ms, or --start, --end and --dec")
    found = find_calibrators(t0, t1, dec, FIND.build(kw, catalog_path=master_catalog(s)))
    table = Table(title=f"calibrators near MJD {t0:.5f}-{t1:.5f}, dec {dec:.3f}")
    for col in ("name", "RA", "Dec", "transit (UTC)", "in group", "PB", "S (Jy)", "S x PB", "model"):
        table.add_column(col)
    for t in found:
        c = t.calibrator
        when = mjd_to_datetime(t.transit_mjd).strftime("%Y-%m-%dT%H:%M:%S")
        table.add_row(c.name, f"{c.ra_deg:.4f}", f"{c.dec_deg:.4f}", when, "yes" if t.in_group else "no",
                      f"{t.pb_response:.2f}", f"{c.flux_at(1.4e9):.2f}", f"{t.weighted_flux_jy:.2f}", c.model_name)
    Console().print(table)
    if not found:
        click.echo("no calibrator transits through the beam in this window")


@click.command("calibrate")
@click.argument("ms_path", type=click.Path(exists=True, path_type=Path))
@CALIBRATE
@click.option("--validity-hours", type=float, default=12.0, show_default=True,
              help="Validity span of the registered set, from the calibrator transit.")
@click.option("--no-register", is_flag=True, help="Solve only; do not register the tables.")
def calibrate_cmd(ms_path, validity_hours, no_register, **kw) -> None:
    """Solve K (optional), bandpass and gain tables on a calibrator MS, and register them."""
    from .. import logs
    from ..pipeline.calsets import register_solution
    from ..calibration.solve import calibrate_ms

    s = settings()
    logs.adopt_astropy()
    try:
        res = calibrate_ms(ms_path, CALIBRATE.build(kw))
        name = None if no_register else register_solution(res, s.cal_registry_db, validity_hours)
    except ContimgError:
        raise
    except (ValueError, KeyError) as exc:
        raise click.ClickException(str(exc)) from None
    if res.refant_note:
        click.echo(res.refant_note)
    for k, p in res.tables.items():
        click.echo(f"{k}: {p}  {res.metrics.get(k, {})}")
    click.echo("timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in res.timings.items()))
    if name:
        click.echo(f"registered set {name} in {s.cal_registry_db}")


@click.command("apply")
@click.argument("ms_path", type=click.Path(exists=True, path_type=Path))
def apply_cmd(ms_path) -> None:
    """Apply the calibration set valid at the MS mid-time (fills CORRECTED_DATA)."""
    from ..pipeline.calsets import apply_calibration

    s = settings()
    res = apply_calibration(ms_path, s.cal_registry_db)
    click.echo(f"applied {res.set_name} ({', '.join(p.name for p in res.tables)}) to {ms_path} "
               f"in {res.timings['total']:.1f} s")
