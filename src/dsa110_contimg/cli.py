"""The one command-line interface: ``contimg``.

Heavy libraries (pyuvdata, casatools, casacore) are imported inside the
commands that need them, so ``contimg --help`` starts fast.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def _settings():
    from .config import cli_settings

    return cli_settings()


class _Main(click.Group):
    """The root group: any pipeline error (:class:`~dsa110_contimg.errors.ContimgError`) ends the command with
    its one-line message and exit code 1; ``-v`` shows the traceback instead."""

    def invoke(self, ctx: click.Context):
        from .errors import ContimgError

        try:
            return super().invoke(ctx)
        except ContimgError as exc:
            if ctx.obj and ctx.obj.get("verbose"):
                raise
            raise click.ClickException(str(exc)) from None


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
@click.version_option(package_name="dsa110-contimg")
@click.pass_context
def main(ctx: click.Context, verbose: bool) -> None:
    """dsa110-contimg: real-time continuum imaging pipeline of the DSA-110."""
    ctx.obj = {"verbose": verbose}
    _setup_logging(verbose)


@main.command("config")
def config_cmd() -> None:
    """Print the effective settings and where each value came from."""
    from rich.console import Console
    from rich.table import Table

    s = _settings()
    table = Table(title="dsa110-contimg settings")
    for col in ("variable", "value", "source"):
        table.add_column(col)
    for row in s.as_rows():
        table.add_row(*row)
    Console().print(table)


@main.command("simulate")
@click.option("--output-dir", "-o", type=click.Path(path_type=Path), default=None,
              help="Where to write the files (default: PIPELINE_INCOMING_DIR).")
@click.option("--preset", type=click.Choice(["full", "medium", "small"]), default="small", show_default=True)
@click.option("--groups", type=int, default=1, show_default=True, help="Consecutive groups to write.")
@click.option("--start", default="2025-10-02T00:12:00", show_default=True, help="Start of the first group (UTC).")
@click.option("--dec", "dec_deg", type=float, default=None, help="Pointing declination (deg) [54.5734].")
@click.option("--sources", "sources_csv", type=click.Path(exists=True, path_type=Path), default=None,
              help="CSV of point sources: ra_deg, dec_deg, flux_jy, alpha.")
@click.option("--n-sources", type=int, default=20, show_default=True, help="Sources per group in the default field.")
@click.option("--calibrator", default=None, help="Calibrator name or 'RA,DEC[,FLUX]' transiting mid-group.")
@click.option("--calibrator-flux", "calibrator_flux_jy", type=float, default=None, help="Calibrator flux (Jy).")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--noise/--no-noise", default=True, show_default=True)
@click.option("--sefd", "sefd_jy", type=float, default=5800.0, show_default=True, help="SEFD (Jy) for the noise.")
@click.option("--gains/--unit-gains", default=True, show_default=True, help="Random antenna gains or unit gains.")
@click.option("--phase-drift", "phase_drift_deg_per_hour", type=float, default=0.0, show_default=True,
              help="Scatter of gain-phase drift rates (deg/hour).")
@click.option("--flag-fraction", type=float, default=0.0, show_default=True)
@click.option("--jitter", "jitter_s", type=float, default=3.0, show_default=True,
              help="Maximum per-file timestamp jitter (s).")
@click.option("--antpos-csv", type=click.Path(exists=True, path_type=Path), default=None,
              help="Station coordinates CSV (default: PIPELINE_ANTPOS_CSV).")
def simulate_cmd(output_dir, **kw) -> None:
    """Write groups of 16 correlator-style UVH5 subband files and their truth."""
    from .simulate.core import SimulateOptions, simulate

    s = _settings()
    opts = SimulateOptions(output_dir=output_dir or s.incoming_dir, progress=sys.stderr.isatty(), **kw)
    try:
        res = simulate(opts)
    except (ValueError, KeyError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    for g in res.groups:
        click.echo(f"group {g.start_iso}: {len(g.files)} files, truth {g.truth_path}")
    click.echo(f"wrote {res.bytes_written / 1e6:.1f} MB in {res.wall_s:.1f} s")


@main.command("convert")
@click.argument("input_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("output_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--start", default=None, help="Only groups at or after this time (ISO).")
@click.option("--end", default=None, help="Only groups at or before this time (ISO).")
@click.option("--writer", type=click.Choice(["auto", "monolithic", "direct-subband"]), default="auto",
              show_default=True)
@click.option("--stage-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Scratch folder (default: PIPELINE_STAGE_DIR).")
@click.option("--tolerance-s", type=float, default=30.0, show_default=True, help="Grouping tolerance (s).")
@click.option("--expected-subbands", type=int, default=None, help="Subbands per group [PIPELINE_EXPECTED_SUBBANDS].")
@click.option("--allow-partial", is_flag=True, help="Convert groups with missing subbands (flagged channels).")
@click.option("--skip-existing", is_flag=True, help="Skip groups whose MS exists.")
@click.option("--dry-run", is_flag=True, help="Only list what would be converted.")
@click.option("--phase-per-integration", is_flag=True, help="One field per integration (meridian_icrs_tN).")
@click.option("--calibrator", default=None, help="Phase to this bundled calibrator (a calibrator MS).")
def convert_cmd(input_dir, output_dir, start, end, writer, stage_dir, tolerance_s, expected_subbands,
                allow_partial, skip_existing, dry_run, phase_per_integration, calibrator) -> None:
    """Convert UVH5 subband groups in INPUT_DIR into Measurement Sets in OUTPUT_DIR."""
    from .casa_env import prepare_casa
    from .conversion.convert import ConvertOptions, convert_directory
    from .conversion.grouping import ConversionInputError

    s = _settings()
    prepare_casa(s.state_dir)
    opts = ConvertOptions(output_dir=output_dir, writer=writer, stage_dir=stage_dir or s.stage_dir,
                          tolerance_s=tolerance_s, expected_subbands=expected_subbands or s.expected_subbands,
                          allow_partial=allow_partial, skip_existing=skip_existing, dry_run=dry_run,
                          phase_per_integration=phase_per_integration, antpos_csv=s.antpos_csv,
                          telescope_name=s.telescope_name)
    if calibrator:
        from .calibration.calibrators import lookup_calibrator

        try:
            cal = lookup_calibrator(calibrator)
        except KeyError as exc:
            raise click.ClickException(str(exc)) from None
        opts.phase_center_deg, opts.field_name = (cal.ra_deg, cal.dec_deg), cal.name
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


@main.group("calibrators")
def calibrators_group() -> None:
    """Calibrators transiting through the beam."""


@calibrators_group.command("find")
@click.option("--ms", "ms_path", type=click.Path(exists=True, path_type=Path), default=None,
              help="A converted group (its time range and pointing).")
@click.option("--start", default=None, help="Group start (ISO UTC), instead of --ms.")
@click.option("--end", default=None, help="Group end (ISO UTC), instead of --ms.")
@click.option("--dec", "dec_deg", type=float, default=None, help="Pointing declination (deg), instead of --ms.")
@click.option("--window-minutes", type=float, default=60.0, show_default=True)
@click.option("--min-pb-response", type=float, default=0.3, show_default=True)
@click.option("--dec-tolerance-deg", type=float, default=2.0, show_default=True)
def calibrators_find_cmd(ms_path, start, end, dec_deg, window_minutes, min_pb_response, dec_tolerance_deg) -> None:
    """List calibrators transiting during (or near) a group, ranked by beam-weighted flux."""
    from datetime import datetime

    from rich.console import Console
    from rich.table import Table

    from .calibration.transits import FindOptions, find_calibrators, ms_time_range_and_dec

    s = _settings()
    if ms_path is not None:
        t0, t1, dec = ms_time_range_and_dec(ms_path)
    elif start and end and dec_deg is not None:
        def mjd(text):
            return (datetime.fromisoformat(text) - datetime(1858, 11, 17)).total_seconds() / 86400.0
        t0, t1, dec = mjd(start), mjd(end), dec_deg
    else:
        raise click.UsageError("give --ms, or --start, --end and --dec")
    catalog = s.state_dir / "catalogs" / "master_sources.sqlite3"
    found = find_calibrators(t0, t1, dec, FindOptions(window_minutes, min_pb_response, dec_tolerance_deg,
                                                      catalog_path=catalog))
    table = Table(title=f"calibrators near MJD {t0:.5f}-{t1:.5f}, dec {dec:.3f}")
    for col in ("name", "RA", "Dec", "transit (UTC)", "in group", "PB", "S (Jy)", "S x PB", "model"):
        table.add_column(col)
    from datetime import timedelta

    for t in found:
        c = t.calibrator
        when = (datetime(1858, 11, 17) + timedelta(days=t.transit_mjd)).strftime("%Y-%m-%dT%H:%M:%S")
        table.add_row(c.name, f"{c.ra_deg:.4f}", f"{c.dec_deg:.4f}", when, "yes" if t.in_group else "no",
                      f"{t.pb_response:.2f}", f"{c.flux_at(1.4e9):.2f}", f"{t.weighted_flux_jy:.2f}", c.model_name)
    Console().print(table)
    if not found:
        click.echo("no calibrator transits through the beam in this window")


@main.command("calibrate")
@click.argument("ms_path", type=click.Path(exists=True, path_type=Path))
@click.option("--field", default="", help="CASA-style field selection (ids, A~B, lists, name globs).")
@click.option("--refant", default="103", show_default=True)
@click.option("--do-k", is_flag=True, help="Solve delays first.")
@click.option("--gain-calmode", type=click.Choice(["p", "ap"]), default="p", show_default=True)
@click.option("--gain-solint", default="60s", show_default=True)
@click.option("--uvrange", default="", help="uv range for the solves.")
@click.option("--minsnr", type=float, default=3.0, show_default=True)
@click.option("--fast", is_flag=True, help="Average in time and frequency before solving.")
@click.option("--min-baseline-m", type=float, default=50.0, show_default=True)
@click.option("--calibrator", default=None, help="Calibrator name (default: the brightest transiting one).")
@click.option("--validity-hours", type=float, default=12.0, show_default=True,
              help="Validity span of the registered set, from the calibrator transit.")
@click.option("--no-register", is_flag=True, help="Solve only; do not register the tables.")
def calibrate_cmd(ms_path, validity_hours, no_register, **kw) -> None:
    """Solve K (optional), bandpass and gain tables on a calibrator MS, and register them."""
    from .calibration.apply import register_solution
    from .calibration.solve import CalibrateOptions, CalibrationError, calibrate_ms

    s = _settings()
    try:
        res = calibrate_ms(ms_path, CalibrateOptions(**kw))
        name = None if no_register else register_solution(res, s.cal_registry_db, validity_hours)
    except (CalibrationError, ValueError, KeyError) as exc:
        raise click.ClickException(str(exc)) from None
    if res.refant_note:
        click.echo(res.refant_note)
    for k, p in res.tables.items():
        click.echo(f"{k}: {p}  {res.metrics.get(k, {})}")
    click.echo("timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in res.timings.items()))
    if name:
        click.echo(f"registered set {name} in {s.cal_registry_db}")


@main.command("apply")
@click.argument("ms_path", type=click.Path(exists=True, path_type=Path))
def apply_cmd(ms_path) -> None:
    """Apply the calibration set valid at the MS mid-time (fills CORRECTED_DATA)."""
    from .calibration.apply import apply_calibration
    from .calibration.solve import CalibrationError

    s = _settings()
    try:
        res = apply_calibration(ms_path, s.cal_registry_db)
    except CalibrationError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"applied {res.set_name} ({', '.join(p.name for p in res.tables)}) to {ms_path} "
               f"in {res.timings['total']:.1f} s")


def _image_options(kw: dict):
    from .imaging.image import ImageOptions

    return ImageOptions(backend=kw["backend"], quick=kw["quick"], skip_fits=kw["skip_fits"], imsize=kw["imsize"],
                        cell_arcsec=kw["cell_arcsec"], niter=kw["niter"], weighting=kw["weighting"],
                        robust=kw["robust"], threshold_jy=kw["threshold"], datacolumn=kw["datacolumn"])


def _imaging_flags(f):
    for opt in reversed([
        click.option("--backend", type=click.Choice(["wsclean", "tclean"]), default=None,
                     help="Imager (default: WSClean when installed, else tclean)."),
        click.option("--quick", is_flag=True, help="Cap image size and iterations for a fast look."),
        click.option("--skip-fits", is_flag=True, help="Keep the native products only."),
        click.option("--imsize", type=int, default=None, help="Image size (pixels)."),
        click.option("--cell-arcsec", type=float, default=None, help="Pixel size (arcsec)."),
        click.option("--niter", type=int, default=None, help="Clean iterations."),
        click.option("--weighting", type=click.Choice(["natural", "uniform", "briggs"]), default="briggs",
                     show_default=True),
        click.option("--robust", type=float, default=0.0, show_default=True),
        click.option("--threshold", type=float, default=None, help="Stopping threshold (Jy)."),
        click.option("--datacolumn", type=click.Choice(["auto", "data", "corrected"]), default="auto",
                     show_default=True),
    ]):
        f = opt(f)
    return f


@main.command("image")
@click.argument("ms_path", type=click.Path(exists=True, path_type=Path))
@_imaging_flags
def image_cmd(ms_path, **kw) -> None:
    """Image an MS (WSClean or tclean), export FITS, run QA and record the products."""
    from .imaging.image import ImagingError
    from .pipeline.image_stage import image_and_record

    s = _settings()
    catalog = s.state_dir / "catalogs" / "master_sources.sqlite3"
    try:
        res = image_and_record(ms_path, s.products_db, _image_options(kw), catalog if catalog.is_file() else None)
    except ImagingError as exc:
        raise click.ClickException(str(exc)) from None
    img = res.image
    for w in img.warnings:
        click.echo(f"warning: {w}", err=True)
    click.echo(f"{img.images.backend}: {img.images.image} ({img.imsize} px x {img.cell_arcsec}\", niter "
               f"{img.niter}, {img.datacolumn})")
    if img.images.pbcor:
        click.echo(f"primary-beam corrected: {img.images.pbcor}")
    if res.qa is not None:
        q = res.qa
        click.echo(f"QA: rms {q.rms_jy * 1e3:.2f} mJy/beam, peak {q.peak_jy:.3f} Jy/beam, DR {q.dynamic_range:.0f}, "
                   f"beam {q.bmaj_arcsec:.1f}\"x{q.bmin_arcsec:.1f}\", {q.n_sources} sources, "
                   f"{q.n_matched} matched; thumbnail {q.thumbnail_path}")
    click.echo("timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in {**img.timings, **res.timings}.items()))


@main.group("image-worker")
def image_worker_group() -> None:
    """Image every MS of a folder that has no image yet."""


@image_worker_group.command("scan")
@click.argument("ms_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@_imaging_flags
def image_worker_scan(ms_dir, **kw) -> None:
    """Image the MSs in MS_DIR not yet in the products DB, once."""
    from .pipeline.image_worker import scan_once

    s = _settings()
    res = scan_once(ms_dir, s.products_db, _image_options(kw))
    click.echo(f"imaged {len(res.imaged)}, already done {res.skipped}, failed {len(res.failed)}")
    for ms, err in res.failed.items():
        click.echo(f"FAILED {ms}: {err}", err=True)


@image_worker_group.command("daemon")
@click.argument("ms_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--interval", type=float, default=30.0, show_default=True, help="Seconds between scans.")
@_imaging_flags
def image_worker_daemon(ms_dir, interval, **kw) -> None:
    """Keep imaging new MSs in MS_DIR (Ctrl-C to stop)."""
    from .pipeline.image_worker import run_daemon

    s = _settings()
    try:
        run_daemon(ms_dir, s.products_db, _image_options(kw), interval_s=interval)
    except KeyboardInterrupt:
        click.echo("stopped")


@main.command("stream")
@click.option("--input-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Incoming folder [PIPELINE_INCOMING_DIR].")
@click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Products folder [PIPELINE_OUTPUT_DIR].")
@click.option("--workers", type=int, default=1, show_default=True, help="Groups processed at once.")
@click.option("--scheduler", default=None, help="Existing Dask scheduler (tcp://host:8786).")
@click.option("--executor", type=click.Choice(["dask", "inline"]), default="dask", show_default=True)
@click.option("--poll", "poll_interval_s", type=float, default=1.0, show_default=True, help="Loop period (s).")
@click.option("--no-inotify", is_flag=True, help="Poll only (network filesystems).")
@click.option("--group-timeout-s", type=float, default=2 * 309.24, show_default=True)
@click.option("--max-retries", type=int, default=3, show_default=True)
@click.option("--until-idle", is_flag=True, help="Exit when every group is completed or failed.")
@click.option("--stage-timeout-s", type=float, default=None,
              help="Wall-clock limit of one stage (s) [PIPELINE_STAGE_TIMEOUT_S, 1800].")
@click.option("--init", is_flag=True,
              help="Create a new queue database even though products exist (everything in incoming is redone).")
def stream_cmd(input_dir, output_dir, workers, scheduler, executor, poll_interval_s, no_inotify, group_timeout_s,
               max_retries, until_idle, stage_timeout_s, init) -> None:
    """Watch the incoming folder and process every group exactly once (convert, calibrate, apply, image)."""
    from .casa_env import prepare_casa
    from .pipeline.stream import StreamDaemon, StreamOptions

    s = _settings()
    prepare_casa(s.state_dir)
    opts = StreamOptions(input_dir=input_dir or s.incoming_dir, output_dir=output_dir or s.output_dir,
                         workers=workers, scheduler=scheduler, executor=executor, poll_interval_s=poll_interval_s,
                         use_inotify=not no_inotify, group_timeout_s=group_timeout_s, max_retries=max_retries,
                         stage_timeout_s=stage_timeout_s, init=init)
    click.echo(f"watching {opts.input_dir} -> {opts.output_dir} ({executor}, {workers} worker(s))")
    try:
        stats = StreamDaemon(opts, s).run(until_idle=until_idle)
    except KeyboardInterrupt:
        click.echo("stopped")
        return
    click.echo(f"completed {len(stats.completed)}, failed {len(stats.failed)}")


def _register_subgroups() -> None:
    from .api.cli import api_cmd
    from .catalog.cli import catalog
    from .db.cal_registry_cli import caltables
    from .pipeline.demo_cli import demo_cmd

    from .db.queue_cli import doctor_cmd, queue_group

    for command in (catalog, caltables, api_cmd, demo_cmd, queue_group, doctor_cmd):
        main.add_command(command)


_register_subgroups()

if __name__ == "__main__":  # pragma: no cover
    main()
