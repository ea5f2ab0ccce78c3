"""``contimg catalog``: build and query the master reference catalog.

The ``build-master`` flags are defined once here (:data:`BUILD_MASTER_OPTIONS`)
and the same command object serves ``python -m dsa110_contimg.catalog.build_master``.
Only click is imported at module level; the work is imported inside the commands.
"""

from __future__ import annotations

from pathlib import Path

import click

_UNITS = click.Choice(["jy", "mjy", "ujy"], case_sensitive=False)
_PATH_IN = click.Path(path_type=Path, dir_okay=False)

BUILD_MASTER_OPTIONS = [
    click.option("--nvss", type=_PATH_IN, required=True, help="NVSS catalog (FITS, CSV or TSV)."),
    click.option("--vlass", type=_PATH_IN, default=None, help="VLASS Quick Look epoch 1 catalog."),
    click.option("--first", type=_PATH_IN, default=None, help="FIRST catalog."),
    click.option("--out", type=click.Path(path_type=Path, dir_okay=False), default=None,
                 help="Output SQLite [<PIPELINE_STATE_DIR>/catalogs/master_sources.sqlite3]."),
    click.option("--match-radius-arcsec", type=float, default=7.5, show_default=True,
                 help="Crossmatch radius (arcsec)."),
    click.option("--nvss-flux-unit", type=_UNITS, default="mjy", show_default=True, help="NVSS flux unit."),
    click.option("--vlass-flux-unit", type=_UNITS, default="mjy", show_default=True, help="VLASS flux unit."),
    click.option("--first-flux-unit", type=_UNITS, default="mjy", show_default=True, help="FIRST flux unit."),
    click.option("--nvss-col", multiple=True, metavar="FIELD=COLUMN",
                 help="NVSS column mapping, repeatable (fields: ra, dec, flux, flux_err, maj, min, pa)."),
    click.option("--vlass-col", multiple=True, metavar="FIELD=COLUMN",
                 help="VLASS column mapping, repeatable (fields: ra, dec, flux, flux_err, peak, peak_err, "
                      "isl_rms, dc_maj, dc_min, s_code, duplicate_flag, quality_flag)."),
    click.option("--first-col", multiple=True, metavar="FIELD=COLUMN",
                 help="FIRST column mapping, repeatable (fields: ra, dec, maj, min, pa, fpeak, fint, rms)."),
    click.option("--goodref-snr-min", type=float, default=50.0, show_default=True,
                 help="good_references: NVSS SNR must exceed this."),
    click.option("--goodref-alpha-min", type=float, default=-1.2, show_default=True,
                 help="good_references: minimum spectral index."),
    click.option("--goodref-alpha-max", type=float, default=0.2, show_default=True,
                 help="good_references: maximum spectral index."),
    click.option("--finalref-snr-min", type=float, default=80.0, show_default=True,
                 help="final_references: NVSS SNR must exceed this."),
    click.option("--finalref-ids", type=click.Path(path_type=Path, dir_okay=False), default=None,
                 help="File of stable source ids final_references is restricted to."),
    click.option("--materialize-final", is_flag=True, default=False,
                 help="Also write final_references as the indexed table final_references_table."),
    click.option("--export-view", type=click.Choice(["sources", "good_references", "final_references",
                                                     "final_references_table"]), default=None,
                 help="Table/view to export with --export-csv [good_references]."),
    click.option("--export-csv", type=click.Path(path_type=Path, dir_okay=False), default=None,
                 help="Write the export view to this CSV."),
    click.option("--resolved-maj-arcsec", type=float, default=5.0, show_default=True,
                 help="Deconvolved major axis above which a source is resolved (arcsec)."),
    click.option("--vlass-ql-scale", type=float, default=0.85, show_default=True,
                 help="VLASS QL fluxes above 3 mJy/beam are divided by this (1 disables)."),
]
"""Flags of ``build-master``, shared by the CLI group and ``python -m``."""


def build_master_options(func):
    """Apply :data:`BUILD_MASTER_OPTIONS` to a click command function."""
    for option in reversed(BUILD_MASTER_OPTIONS):
        func = option(func)
    return func


catalog = click.Group("catalog", help="Build and query the master reference catalog (NVSS + VLASS + FIRST).")


@catalog.command("build-master")
@build_master_options
def build_master_cmd(**kw) -> None:
    """Build the master source catalog SQLite from NVSS (+ VLASS, FIRST) tables."""
    from rich.console import Console

    from .build_master import BuildMasterOptions, build_master
    from .errors import CatalogError

    for key in ("nvss_col", "vlass_col", "first_col"):
        kw[key] = list(kw[key])
    for key in ("nvss_flux_unit", "vlass_flux_unit", "first_flux_unit"):
        kw[key] = kw[key].lower()
    try:
        res = build_master(BuildMasterOptions(**kw))
    except CatalogError as exc:
        raise click.ClickException(str(exc)) from None
    con = Console(stderr=False)
    con.print(f"[bold]{res.out}[/bold]: {res.n_sources} sources "
              f"(VLASS matched {res.n_vlass_matched}, FIRST matched {res.n_first_matched}, "
              f"resolved {res.n_resolved}, confused {res.n_confused}, NVSS rows dropped {res.n_dropped}); "
              f"good_references {res.n_good_references}, final_references {res.n_final_references}")
    if res.export_csv is not None:
        con.print(f"exported {res.n_exported} rows to {res.export_csv}")
    con.print("timings (s): " + ", ".join(f"{k} {v}" for k, v in res.timings_s.items()))


@catalog.command("cone")
@click.argument("ra_deg", type=float)
@click.argument("dec_deg", type=float)
@click.option("--radius", "radius_deg", type=float, default=1.0, show_default=True, help="Radius (deg).")
@click.option("--db", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Catalog [<PIPELINE_STATE_DIR>/catalogs/master_sources.sqlite3].")
@click.option("--view", "table", type=click.Choice(["sources", "good_references", "final_references",
                                                    "final_references_table"]),
              default="sources", show_default=True)
@click.option("--refs", is_flag=True, help="Rank by primary-beam-weighted flux (brightest references).")
@click.option("--freq-hz", type=float, default=1.4e9, show_default=True, help="Frequency for --refs.")
@click.option("--limit", type=int, default=50, show_default=True, help="Rows to print.")
def cone_cmd(ra_deg, dec_deg, radius_deg, db, table, refs, freq_hz, limit) -> None:
    """Print the catalog sources within RADIUS of RA_DEG DEC_DEG."""
    from rich.console import Console
    from rich.table import Table

    from .build_master import default_out
    from .errors import CatalogError
    from .query import brightest_references, cone_search

    try:
        path = db if db is not None else default_out()
        if refs:
            rows = brightest_references(path, ra_deg, dec_deg, radius_deg, freq_hz=freq_hz, n=limit, table=table)
        else:
            rows = cone_search(path, ra_deg, dec_deg, radius_deg, table=table)
    except CatalogError as exc:
        raise click.ClickException(str(exc)) from None
    t = Table(title=f"{table} within {radius_deg} deg of ({ra_deg}, {dec_deg}): {len(rows)} rows")
    for name in rows.dtype.names:
        t.add_column(name, justify="right", no_wrap=True)
    for row in rows[:limit]:
        t.add_row(*(_fmt(name, row[name]) for name in rows.dtype.names))
    Console().print(t)


def _fmt(name: str, value) -> str:
    if name == "source_id" or name.endswith("_flag"):
        return str(int(value))
    v = float(value)
    if v != v:
        return "-"
    return f"{v:.5f}" if name in ("ra_deg", "dec_deg", "sep_deg") else f"{v:.4g}"
