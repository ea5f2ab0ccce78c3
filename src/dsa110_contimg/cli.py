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
    from .config import ConfigError, get_settings

    try:
        return get_settings()
    except ConfigError as exc:
        raise click.ClickException(f"configuration error: {exc}") from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
@click.version_option(package_name="dsa110-contimg")
def main(verbose: bool) -> None:
    """dsa110-contimg: real-time continuum imaging pipeline of the DSA-110."""
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
@click.option("--preset", type=click.Choice(["full", "small"]), default="small", show_default=True)
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


@main.command("demo")
@click.option("--preset", type=click.Choice(["full", "small"]), default="small", show_default=True)
def demo_cmd(preset: str) -> None:
    """Run the pipeline demo on simulated data in the state folder."""
    from .pipeline.demo import run_demo

    s = _settings()
    if s.antpos_csv is None:
        raise click.ClickException("set PIPELINE_ANTPOS_CSV to the station coordinates CSV for the demo")
    res = run_demo(s, preset=preset)
    click.echo("== demo summary")
    for line in res.lines:
        click.echo(line)


if __name__ == "__main__":  # pragma: no cover
    main()
