"""Build the master reference catalog from NVSS (+ VLASS, FIRST).

Stage function :func:`build_master` (options in, result out); ``python -m
dsa110_contimg.catalog.build_master`` and ``contimg catalog build-master`` run it
with the same command, defined here (:data:`build_master_cmd`; the ``contimg catalog`` group of
:mod:`dsa110_contimg.catalog.cli` loads it on first use, so that listing the group stays free of numpy).

Choices where the survey data leave room:

* alpha uses *integrated* fluxes of both surveys: NVSS ``S1.4`` (NVSS has no peak
  column) and VLASS ``Total_flux`` of the nearest clean component, the latter
  divided by ``vlass_ql_scale`` (0.85) when its ``Peak_flux`` exceeds 3 mJy/beam
  (Quick Look epoch 1 fluxes are ~15% low there).
* ``resolved_flag`` = deconvolved major axis > ``resolved_maj_arcsec`` (5"), from the
  nearest FIRST component (``Maj``), else from VLASS ``DC_Maj``; NULL when neither.
* ``confusion_flag`` = more than one clean VLASS component *or* more than one FIRST
  component within the match radius of the NVSS position.
* The build writes a temporary file next to the output and renames it over the
  output only after everything (including the optional CSV export) succeeded.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

import click
import numpy as np

from ..config import get_settings
from . import schema
from .assemble import assemble_sources
from .errors import CatalogError
from .master_io import build_meta, export_csv, file_provenance, insert_rows, read_id_file
from .readers import FIRST, NVSS, VLASS, SurveyTable, flux_factor, parse_column_mapping, read_survey

log = logging.getLogger(__name__)

@dataclass
class BuildMasterOptions:
    """Options of :func:`build_master` (mirrors ``contimg catalog build-master``)."""

    nvss: Path
    """NVSS catalog (FITS, CSV or TSV); required."""
    vlass: Path | None = None
    """VLASS Quick Look epoch 1 catalog; optional."""
    first: Path | None = None
    """FIRST catalog; optional."""
    out: Path | None = None
    """Output SQLite file; default ``<PIPELINE_STATE_DIR>/catalogs/master_sources.sqlite3``."""
    match_radius_arcsec: float = 7.5
    """Crossmatch radius NVSS-VLASS and NVSS-FIRST (arcsec)."""
    nvss_flux_unit: str = "mjy"
    """Unit of the NVSS flux columns: jy, mjy or ujy."""
    vlass_flux_unit: str = "mjy"
    """Unit of the VLASS flux columns: jy, mjy or ujy."""
    first_flux_unit: str = "mjy"
    """Unit of the FIRST flux columns: jy, mjy or ujy."""
    nvss_col: list[str] = field(default_factory=list)
    """Explicit NVSS column mappings ``FIELD=COLUMN`` (e.g. ``ra=RAJ2000``)."""
    vlass_col: list[str] = field(default_factory=list)
    """Explicit VLASS column mappings ``FIELD=COLUMN``."""
    first_col: list[str] = field(default_factory=list)
    """Explicit FIRST column mappings ``FIELD=COLUMN``."""
    goodref_snr_min: float = 50.0
    """good_references: minimum NVSS SNR (exclusive)."""
    goodref_alpha_min: float = -1.2
    """good_references: minimum spectral index (inclusive)."""
    goodref_alpha_max: float = 0.2
    """good_references: maximum spectral index (inclusive)."""
    finalref_snr_min: float = 80.0
    """final_references: minimum NVSS SNR (exclusive)."""
    finalref_ids: Path | None = None
    """File of stable source ids (one per line) final_references is restricted to."""
    materialize_final: bool = False
    """Also write final_references as an indexed table final_references_table."""
    export_view: str | None = None
    """Table or view to export with export_csv (default: good_references)."""
    export_csv: Path | None = None
    """Write the rows of export_view to this CSV file."""
    resolved_maj_arcsec: float = 5.0
    """Deconvolved major axis above which a source is resolved (arcsec)."""
    vlass_ql_scale: float = 0.85
    """VLASS QL fluxes above 3 mJy/beam are divided by this (1 disables the correction)."""


@dataclass
class BuildMasterResult:
    """What :func:`build_master` produced."""

    out: Path
    """The catalog written."""
    n_sources: int
    """Rows of ``sources``."""
    n_input_rows: dict[str, int]
    """Rows read per survey."""
    n_vlass_clean: int
    """VLASS rows passing the quality flags."""
    n_vlass_matched: int
    """Sources with a VLASS counterpart."""
    n_first_matched: int
    """Sources with a FIRST counterpart."""
    n_resolved: int
    """Sources flagged resolved."""
    n_confused: int
    """Sources flagged confused."""
    n_good_references: int
    """Rows of ``good_references``."""
    n_final_references: int
    """Rows of ``final_references``."""
    n_dropped: int
    """NVSS rows dropped (blank position/flux or duplicate position)."""
    export_csv: Path | None = None
    """CSV written, if any."""
    n_exported: int = 0
    """Rows exported."""
    timings_s: dict[str, float] = field(default_factory=dict)
    """Wall time per step (s)."""


def _validate(opts: BuildMasterOptions) -> None:
    for name in ("nvss_flux_unit", "vlass_flux_unit", "first_flux_unit"):
        flux_factor(getattr(opts, name), what="--" + name.replace("_", "-"))
    if not opts.match_radius_arcsec > 0:
        raise CatalogError(f"--match-radius-arcsec {opts.match_radius_arcsec}: must be > 0")
    if opts.goodref_alpha_min > opts.goodref_alpha_max:
        raise CatalogError(f"--goodref-alpha-min {opts.goodref_alpha_min} > --goodref-alpha-max "
                           f"{opts.goodref_alpha_max}")
    if not opts.vlass_ql_scale > 0:
        raise CatalogError(f"--vlass-ql-scale {opts.vlass_ql_scale}: must be > 0")
    if opts.export_view is not None and opts.export_view not in schema.VIEWS:
        raise CatalogError(f"--export-view {opts.export_view!r}: expected one of {', '.join(schema.VIEWS)}")
    if opts.export_view is not None and opts.export_csv is None:
        raise CatalogError("--export-view needs --export-csv")
    if opts.export_view == "final_references_table" and not opts.materialize_final:
        raise CatalogError("--export-view final_references_table needs --materialize-final")


def default_out() -> Path:
    """The master catalog's default path, :attr:`~dsa110_contimg.config.Settings.catalog_path`."""
    return get_settings().catalog_path


def build_master(opts: BuildMasterOptions) -> BuildMasterResult:
    """Build the master catalog SQLite file.

    Parameters
    ----------
    opts
        Inputs, output, thresholds.

    Returns
    -------
    BuildMasterResult
        Output path, counts and timings.

    Raises
    ------
    CatalogError
        Bad option, unreadable/invalid input or unwritable output.  The existing
        catalog at ``opts.out`` is then left untouched.
    """
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    _validate(opts)
    out = Path(opts.out) if opts.out is not None else default_out()
    final_ids = read_id_file(opts.finalref_ids) if opts.finalref_ids is not None else None

    def lap(step: str, start: float) -> float:
        now = time.perf_counter()
        timings[step] = round(now - start, 3)
        return now

    t = time.perf_counter()
    tables: dict[str, SurveyTable] = {}
    for spec, path, unit, cols in ((NVSS, opts.nvss, opts.nvss_flux_unit, opts.nvss_col),
                                   (VLASS, opts.vlass, opts.vlass_flux_unit, opts.vlass_col),
                                   (FIRST, opts.first, opts.first_flux_unit, opts.first_col)):
        if path is not None:
            tables[spec.name] = read_survey(Path(path), spec, unit, parse_column_mapping(cols, spec))
            t = lap(f"read_{spec.name}", t)
    columns, counts = assemble_sources(tables["nvss"], tables.get("vlass"), tables.get("first"), opts)
    t = lap("crossmatch", t)
    provenance = {name: file_provenance(tab.path) for name, tab in tables.items()}
    t = lap("sha256", t)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    try:
        conn = sqlite3.connect(tmp)
        try:
            conn.execute("PRAGMA journal_mode=OFF")
            conn.execute("PRAGMA synchronous=OFF")
            conn.execute("PRAGMA cache_size=-262144")
            schema.create_sources(conn)
            insert_rows(conn, columns)
            t = lap("insert", t)
            schema.create_indices(conn)
            if final_ids is not None:
                schema.create_final_ids(conn, final_ids)
            schema.create_views(conn, opts.goodref_snr_min, opts.goodref_alpha_min, opts.goodref_alpha_max,
                                opts.finalref_snr_min, restrict_to_ids=final_ids is not None)
            if opts.materialize_final:
                schema.materialize_final(conn)
            t = lap("index", t)
            n_good = conn.execute("SELECT COUNT(*) FROM good_references").fetchone()[0]
            n_final = conn.execute("SELECT COUNT(*) FROM final_references").fetchone()[0]
            result = BuildMasterResult(
                out=out, n_sources=len(columns["source_id"]),
                n_input_rows={k: v.n_rows for k, v in tables.items()},
                n_vlass_clean=counts["n_vlass_clean"],
                n_vlass_matched=int(np.isfinite(columns["vlass_sep_arcsec"]).sum()),
                n_first_matched=int(np.isfinite(columns["first_sep_arcsec"]).sum()),
                n_resolved=int(np.nansum(columns["resolved_flag"] == 1)),
                n_confused=int(columns["confusion_flag"].sum()),
                n_good_references=n_good, n_final_references=n_final, n_dropped=counts["n_dropped"])
            meta = build_meta(opts, tables, provenance, result, final_ids)
            schema.write_meta(conn, meta)
            conn.commit()
            if opts.export_csv is not None:
                result.export_csv = Path(opts.export_csv)
                result.n_exported = export_csv(conn, opts.export_view or "good_references", opts.export_csv)
                t = lap("export", t)
            conn.execute("ANALYZE")
            conn.commit()
        finally:
            conn.close()
        os.replace(tmp, out)
    except sqlite3.Error as exc:
        tmp.unlink(missing_ok=True)
        raise CatalogError(f"{out}: cannot write catalog ({exc})") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    timings["total"] = round(time.perf_counter() - t0, 3)
    result.timings_s = timings
    log.info("master catalog %s: %d sources, %d good / %d final references (%.1f s)", out, result.n_sources,
             result.n_good_references, result.n_final_references, timings["total"])
    return result


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
"""Flags of ``build-master`` (``contimg catalog build-master`` and ``python -m``)."""


def build_master_options(func):
    """Apply :data:`BUILD_MASTER_OPTIONS` to a click command function."""
    for option in reversed(BUILD_MASTER_OPTIONS):
        func = option(func)
    return func


@click.command("build-master")
@build_master_options
def build_master_cmd(**kw) -> None:
    """Build the master source catalog SQLite from NVSS (+ VLASS, FIRST) tables."""
    from rich.console import Console

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


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``python -m dsa110_contimg.catalog.build_master`` (the same command as the CLI's)."""
    build_master_cmd.main(args=argv, prog_name="python -m dsa110_contimg.catalog.build_master")


if __name__ == "__main__":
    main()
