"""File side of the master catalog build: input ids and provenance, row inserts, metadata, CSV export."""

from __future__ import annotations

import csv
import hashlib
import os
import sqlite3
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from . import schema
from .errors import CatalogError


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


def insert_rows(conn: sqlite3.Connection, cols: dict[str, np.ndarray], chunk: int = 200_000) -> None:
    """Insert the ``sources`` columns (``NaN`` becomes NULL through the schema's SQL) in chunks."""
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


def build_meta(opts, tables, provenance, result, final_ids) -> dict[str, object]:
    """The ``meta`` rows of a build: definitions, thresholds, counts and every input's provenance."""
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
