"""Mosaics in the products database (``mosaics``, schema version 6): one row per window of groups.

Written only by the daemon and ``contimg mosaic`` (:func:`upsert`, keyed by the window's ``name``: rebuilding a
window replaces its row); read by the API (:func:`list_mosaics`, :func:`get`).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from typing import Any

OK = "ok"
"""Status of a built mosaic."""
FAILED = "failed"
"""Status of a window whose mosaic could not be built (``error`` says why)."""


@dataclass
class MosaicRecord:
    """One row of ``mosaics`` (``inputs``, ``qa`` and ``timings`` are stored as JSON)."""

    name: str
    """Window name: the UTC start of the window, or the name given to ``contimg mosaic``."""
    status: str
    """'ok' or 'failed'."""
    start_mjd: float | None = None
    """Start of the first input's data (MJD)."""
    end_mjd: float | None = None
    """End of the last input's data (MJD)."""
    error: str | None = None
    """Why it failed (status 'failed')."""
    fingerprint: str | None = None
    """Identity of the inputs it was built from (paths and modification times)."""
    n_inputs: int = 0
    """Images offered."""
    n_used: int = 0
    """Images combined."""
    inputs: list[dict[str, Any]] = field(default_factory=list)
    """Per input: ``image``, ``group_id``, ``used`` and, when left out, ``reason``."""
    path: str | None = None
    """Mosaic FITS."""
    weight_path: str | None = None
    """Weight map FITS (sum of pb**2 / rms**2)."""
    noise_path: str | None = None
    """Predicted noise map FITS (weight ** -1/2)."""
    preview_path: str | None = None
    """PNG preview with WCS axes."""
    projection: str | None = None
    """'SIN' or 'CAR'."""
    ra_deg: float | None = None
    """Centre of the grid (deg)."""
    dec_deg: float | None = None
    """Centre of the grid (deg)."""
    width_deg: float | None = None
    """Extent along RA (deg on the sky)."""
    height_deg: float | None = None
    """Extent along Dec (deg)."""
    freq_hz: float | None = None
    """Frequency of the inputs."""
    beam_major_arcsec: float | None = None
    """Restoring beam of the mosaic (FWHM, arcsec)."""
    beam_minor_arcsec: float | None = None
    """Restoring beam of the mosaic (FWHM, arcsec)."""
    beam_pa_deg: float | None = None
    """Restoring beam position angle (deg)."""
    rms_jy: float | None = None
    """Measured rms (robust) where the weight is high."""
    noise_median_jy: float | None = None
    """Median of the predicted noise map over the same pixels."""
    n_sources: int | None = None
    """Sources found by the QA."""
    flux_ratio_median: float | None = None
    """Median measured / catalog flux of the matched sources."""
    astrometry_offset_arcsec: float | None = None
    """Median offset from the catalog positions."""
    qa: dict[str, Any] = field(default_factory=dict)
    """The QA report."""
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds per step."""
    seconds: float | None = None
    """Time the build took."""
    id: int | None = None
    """Row id (set when read)."""
    created_at: str | None = None
    """When the window was first recorded (ISO UTC)."""
    updated_at: str | None = None
    """When it was last rebuilt (ISO UTC)."""


_JSON = {"inputs": "inputs_json", "qa": "qa_json", "timings": "timings_json"}
_AUTO = ("id", "created_at", "updated_at")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def upsert(conn: sqlite3.Connection, rec: MosaicRecord) -> int:
    """Insert the window's row or replace its content (same ``name``, same id); returns the id."""
    values = {_JSON.get(k, k): (json.dumps(v) if k in _JSON else v) for k, v in asdict(rec).items()
              if k not in _AUTO}
    now = _now()
    cols = list(values)
    sets = ", ".join(f"{c} = excluded.{c}" for c in cols if c != "name")
    with conn:
        conn.execute(f"INSERT INTO mosaics ({', '.join(cols)}, created_at, updated_at) "
                     f"VALUES ({', '.join(':' + c for c in cols)}, :now, :now) "
                     f"ON CONFLICT(name) DO UPDATE SET {sets}, updated_at = :now", dict(values, now=now))
    return int(conn.execute("SELECT id FROM mosaics WHERE name = ?", (rec.name,)).fetchone()[0])


def _record(row: sqlite3.Row) -> MosaicRecord:
    keys = row.keys()
    kw: dict[str, Any] = {}
    for f in fields(MosaicRecord):
        col = _JSON.get(f.name, f.name)
        if col not in keys:
            continue
        kw[f.name] = json.loads(row[col] or ("[]" if f.name == "inputs" else "{}")) if f.name in _JSON else row[col]
    return MosaicRecord(**kw)


def _has_table(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'mosaics'").fetchone() is not None


def get(conn: sqlite3.Connection, mosaic_id: int) -> MosaicRecord | None:
    """The mosaic with this id, or ``None`` (also for a database older than schema version 6)."""
    if not _has_table(conn):
        return None
    row = conn.execute("SELECT * FROM mosaics WHERE id = ?", (int(mosaic_id),)).fetchone()
    return None if row is None else _record(row)


def get_by_name(conn: sqlite3.Connection, name: str) -> MosaicRecord | None:
    """The mosaic of window ``name``, or ``None``."""
    if not _has_table(conn):
        return None
    row = conn.execute("SELECT * FROM mosaics WHERE name = ?", (name,)).fetchone()
    return None if row is None else _record(row)


def list_mosaics(conn: sqlite3.Connection, limit: int = 50, offset: int = 0,
                 status: str | None = None) -> list[MosaicRecord]:
    """Mosaics newest window first."""
    if not _has_table(conn):
        return []
    where, args = ("WHERE status = ?", [status]) if status else ("", [])
    rows = conn.execute(f"SELECT * FROM mosaics {where} ORDER BY start_mjd DESC, id DESC LIMIT ? OFFSET ?",
                        [*args, int(limit), int(offset)]).fetchall()
    return [_record(r) for r in rows]


def count(conn: sqlite3.Connection, status: str | None = None) -> int:
    """Number of mosaics (of one status)."""
    if not _has_table(conn):
        return 0
    where, args = ("WHERE status = ?", [status]) if status else ("", [])
    return int(conn.execute(f"SELECT COUNT(*) FROM mosaics {where}", args).fetchone()[0])


def registered_paths(conn: sqlite3.Connection) -> set[str]:
    """Every file a mosaic row names (the API serves only these)."""
    if not _has_table(conn):
        return set()
    out: set[str] = set()
    for row in conn.execute("SELECT path, weight_path, noise_path, preview_path FROM mosaics"):
        out.update(p for p in row if p)
    return out
