"""Build the master reference catalog from NVSS (+ VLASS, FIRST).

Stage function :func:`build_master` (options in, result out); ``python -m
dsa110_contimg.catalog.build_master`` and ``contimg catalog build-master`` run it
with the same flags (defined once in :mod:`dsa110_contimg.catalog.cli`).

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

import csv
import hashlib
import logging
import os
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from . import schema
from .crossmatch import (NVSS_FREQ_HZ, VLASS_FREQ_HZ, crossmatch, dec_band, position_ids, resolved_flag,
                         spectral_index, spectral_index_error, take, vlass_clean_mask, vlass_ql_corrected)
from .errors import CatalogError
from .readers import FIRST, NVSS, VLASS, SurveyTable, flux_factor, parse_column_mapping, read_survey

log = logging.getLogger(__name__)

DEFAULT_RELATIVE_OUT = Path("catalogs") / "master_sources.sqlite3"
"""Default output below ``PIPELINE_STATE_DIR``."""


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


def read_id_file(path: Path) -> list[int]:
    """Read stable source ids: one per line (first comma/whitespace field), ``#`` comments, optional header."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogError(f"{path}: cannot read --finalref-ids file ({exc})") from None
    ids = []
    for lineno, line in enumerate(lines, start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        first = text.replace(",", " ").split()[0]
        if lineno == 1 and first.lower() == "source_id":
            continue
        try:
            ids.append(int(first))
        except ValueError:
            raise CatalogError(f"{path}: line {lineno}: {first!r} is not an integer source_id") from None
    return ids


def file_provenance(path: Path) -> dict[str, object]:
    """sha256, size and modification time of an input file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    st = path.stat()
    return {"path": str(path.resolve()), "sha256": h.hexdigest(), "size_bytes": st.st_size,
            "mtime_iso": datetime.fromtimestamp(st.st_mtime, timezone.utc).isoformat()}


def assemble_sources(nvss: SurveyTable, vlass: SurveyTable | None, first: SurveyTable | None,
                     opts: BuildMasterOptions) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Crossmatch and derive every column of ``sources`` (pure numpy, no I/O).

    Returns
    -------
    columns : dict
        Column name -> array, sorted by ``source_id``; NaN means NULL.
    counts : dict
        ``n_dropped``, ``n_vlass_clean``.
    """
    c = nvss.columns
    s = c["flux"]
    keep = np.isfinite(c["ra"]) & np.isfinite(c["dec"]) & np.isfinite(s)
    ra, dec = c["ra"][keep], c["dec"][keep]
    n = len(ra)
    if n == 0:
        raise CatalogError(f"{nvss.path}: no NVSS row has a position and a flux")
    ids = position_ids(ra, dec)
    order = np.argsort(ids, kind="stable")
    ids_sorted = ids[order]
    unique = np.ones(n, dtype=bool)
    unique[1:] = ids_sorted[1:] != ids_sorted[:-1]
    rows = np.flatnonzero(keep)[order[unique]]  # NVSS rows used, sorted by id
    n_dropped = nvss.n_rows - len(rows)
    if n - len(rows):
        log.warning("NVSS: %d rows share a position (0.1 arcsec) with another row; kept the first", n - len(rows))
    ra, dec = c["ra"][rows], c["dec"][rows]
    m = len(rows)

    def nv(key):
        return c[key][rows] if key in c else np.full(m, np.nan)

    e_s = nv("flux_err")
    with np.errstate(divide="ignore", invalid="ignore"):
        snr = np.where(e_s > 0, nv("flux") / e_s, np.nan)
    out = {"source_id": ids_sorted[unique], "ra_deg": ra, "dec_deg": dec,
           "dec_band": dec_band(dec, schema.DEC_BAND_DEG), "s_nvss": nv("flux"), "e_s_nvss": e_s,
           "snr_nvss": snr, "nvss_maj_arcsec": nv("maj"), "nvss_min_arcsec": nv("min")}
    nan = np.full(m, np.nan)
    n_vlass_clean = 0
    if vlass is not None:
        v = vlass.columns
        clean = vlass_clean_mask(v.get("duplicate_flag"), v.get("quality_flag"))
        clean &= np.isfinite(v["ra"]) & np.isfinite(v["dec"]) & np.isfinite(v["flux"])
        n_vlass_clean = int(clean.sum())
        vc = {k: a[clean] for k, a in v.items()}
        mv = crossmatch(ra, dec, vc["ra"], vc["dec"], opts.match_radius_arcsec)
        corr = vlass_ql_corrected(vc["flux"], vc.get("peak"), opts.vlass_ql_scale)
        out.update(s_vlass=take(vc["flux"], mv.index), e_s_vlass=take(vc.get("flux_err", nan[:0]), mv.index),
                   s_vlass_peak=take(vc.get("peak", nan[:0]), mv.index), s_vlass_corr=take(corr, mv.index),
                   vlass_dc_maj_arcsec=take(vc.get("dc_maj", nan[:0]), mv.index),
                   vlass_sep_arcsec=mv.sep_arcsec, n_vlass=mv.n_within)
    else:
        out.update(s_vlass=nan, e_s_vlass=nan, s_vlass_peak=nan, s_vlass_corr=nan, vlass_dc_maj_arcsec=nan,
                   vlass_sep_arcsec=nan, n_vlass=np.zeros(m, dtype=np.int64))
    if first is not None:
        f = first.columns
        ok = np.isfinite(f["ra"]) & np.isfinite(f["dec"])
        fc = {k: a[ok] for k, a in f.items()}
        mf = crossmatch(ra, dec, fc["ra"], fc["dec"], opts.match_radius_arcsec)
        out.update(s_first_peak=take(fc.get("fpeak", nan[:0]), mf.index),
                   s_first_int=take(fc.get("fint", nan[:0]), mf.index),
                   first_maj_arcsec=take(fc["maj"], mf.index), first_min_arcsec=take(fc.get("min", nan[:0]), mf.index),
                   first_sep_arcsec=mf.sep_arcsec, n_first=mf.n_within)
    else:
        out.update(s_first_peak=nan, s_first_int=nan, first_maj_arcsec=nan, first_min_arcsec=nan,
                   first_sep_arcsec=nan, n_first=np.zeros(m, dtype=np.int64))
    out["alpha"] = spectral_index(out["s_nvss"], NVSS_FREQ_HZ, out["s_vlass_corr"], VLASS_FREQ_HZ)
    out["e_alpha"] = spectral_index_error(out["s_nvss"], e_s, NVSS_FREQ_HZ, out["s_vlass_corr"],
                                          out["e_s_vlass"] / np.where(out["s_vlass"] > 0, out["s_vlass"], np.nan)
                                          * out["s_vlass_corr"], VLASS_FREQ_HZ)
    flag, src = resolved_flag(out["first_maj_arcsec"], out["vlass_dc_maj_arcsec"], opts.resolved_maj_arcsec)
    out["resolved_flag"] = np.where(flag < 0, np.nan, flag.astype(float))
    out["size_source"] = src
    out["confusion_flag"] = ((out["n_vlass"] > 1) | (out["n_first"] > 1)).astype(np.int64)
    return out, {"n_dropped": int(n_dropped), "n_vlass_clean": n_vlass_clean}


def _insert(conn: sqlite3.Connection, cols: dict[str, np.ndarray], chunk: int = 200_000) -> None:
    n = len(cols["source_id"])
    sql = schema.insert_sql()
    for start in range(0, n, chunk):
        lists = [cols[name][start:start + chunk].tolist() for name in schema.COLUMN_NAMES]
        conn.executemany(sql, zip(*lists))


def export_csv(conn: sqlite3.Connection, view: str, path: Path) -> int:
    """Write every row of ``view`` to ``path`` (header = column names, atomically); return the row count."""
    if view not in schema.VIEWS or not schema.has_table(conn, view):
        raise CatalogError(f"{path}: cannot export {view!r}: no such table or view")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    cur = conn.execute(f"SELECT * FROM {view} ORDER BY source_id")
    n = 0
    try:
        with open(tmp, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow([d[0] for d in cur.description])
            while rows := cur.fetchmany(50_000):
                w.writerows(rows)
                n += len(rows)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise CatalogError(f"{path}: cannot write CSV export ({exc.strerror or exc})") from None
    return n


def default_out() -> Path:
    """``<PIPELINE_STATE_DIR>/catalogs/master_sources.sqlite3``."""
    from ..config import get_settings

    return get_settings().state_dir / DEFAULT_RELATIVE_OUT


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
            _insert(conn, columns)
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
            meta = _meta(opts, tables, provenance, result, final_ids)
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


def _meta(opts, tables, provenance, result, final_ids) -> dict[str, object]:
    meta: dict[str, object] = {
        "schema_version": schema.SCHEMA_VERSION,
        "build_time_iso": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "dec_band_deg": schema.DEC_BAND_DEG,
        "alpha_definition": "ln(s_vlass_corr/s_nvss)/ln(3.0/1.4): integrated fluxes (NVSS S1.4, VLASS Total_flux)",
        "resolved_definition": (f"deconvolved major axis > {opts.resolved_maj_arcsec} arcsec "
                                "(FIRST Maj, else VLASS DC_Maj)"),
        "confusion_definition": "more than one clean VLASS or more than one FIRST component within the match radius",
        "vlass_quality_cut": "Duplicate_flag < 2 and Quality_flag in {0, 4}",
        "n_sources": result.n_sources, "n_good_references": result.n_good_references,
        "n_final_references": result.n_final_references,
        "finalref_ids_count": "" if final_ids is None else len(set(final_ids)),
    }
    for key, value in asdict(opts).items():
        if key in ("nvss", "vlass", "first", "out", "export_csv", "export_view"):
            continue
        meta[key] = ",".join(value) if isinstance(value, list) else value
    for name, tab in tables.items():
        for key, value in provenance[name].items():
            meta[f"input.{name}.{key}"] = value
        meta[f"input.{name}.rows"] = tab.n_rows
        meta[f"input.{name}.columns"] = ",".join(f"{k}={v}" for k, v in tab.mapping.items())
    if "vlass" in tables:
        meta["input.vlass.rows_clean"] = result.n_vlass_clean
    return meta


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``python -m dsa110_contimg.catalog.build_master`` (same flags as the CLI)."""
    from .cli import build_master_cmd

    build_master_cmd.main(args=argv, prog_name="python -m dsa110_contimg.catalog.build_master")


if __name__ == "__main__":
    main()
