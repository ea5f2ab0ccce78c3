"""SQL of the master catalog: table, indices, views, meta.

``sources`` holds one row per NVSS source.  The position index is
``(dec_band, ra_deg)`` with ``dec_band = floor((dec + 90) / DEC_BAND_DEG)``: a
cone query probes the few bands it touches, each with an RA range scan.  The
index also carries the columns of a default cone query (covering index).
"""

from __future__ import annotations

import sqlite3

SCHEMA_VERSION = "1"
"""Bumped when columns or views change incompatibly."""
DEC_BAND_DEG = 1.0
"""Width of the declination bands of the position index (deg)."""

SOURCE_COLUMNS: list[tuple[str, str, str, str]] = [
    ("source_id", "INTEGER PRIMARY KEY", "i8", "Stable id from the NVSS position (0.1 arcsec grid)"),
    ("ra_deg", "REAL NOT NULL", "f8", "NVSS J2000 right ascension (deg)"),
    ("dec_deg", "REAL NOT NULL", "f8", "NVSS J2000 declination (deg)"),
    ("dec_band", "INTEGER NOT NULL", "i8", "Declination band of the position index"),
    ("s_nvss", "REAL NOT NULL", "f8", "NVSS 1.4 GHz integrated flux density (Jy)"),
    ("e_s_nvss", "REAL", "f8", "Error of s_nvss (Jy)"),
    ("snr_nvss", "REAL", "f8", "s_nvss / e_s_nvss"),
    ("nvss_maj_arcsec", "REAL", "f8", "NVSS deconvolved major axis (arcsec)"),
    ("nvss_min_arcsec", "REAL", "f8", "NVSS deconvolved minor axis (arcsec)"),
    ("s_vlass", "REAL", "f8", "VLASS 3 GHz Total_flux of the nearest clean component, as catalogued (Jy)"),
    ("e_s_vlass", "REAL", "f8", "Error of s_vlass (Jy)"),
    ("s_vlass_peak", "REAL", "f8", "VLASS Peak_flux of that component (Jy/beam)"),
    ("s_vlass_corr", "REAL", "f8", "s_vlass corrected for the Quick Look bias; used for alpha (Jy)"),
    ("vlass_dc_maj_arcsec", "REAL", "f8", "VLASS deconvolved major axis DC_Maj (arcsec)"),
    ("vlass_sep_arcsec", "REAL", "f8", "Separation NVSS-VLASS (arcsec)"),
    ("n_vlass", "INTEGER NOT NULL", "i8", "Clean VLASS components within the match radius"),
    ("s_first_peak", "REAL", "f8", "FIRST Fpeak of the nearest component (Jy/beam)"),
    ("s_first_int", "REAL", "f8", "FIRST Fint of the nearest component (Jy)"),
    ("first_maj_arcsec", "REAL", "f8", "FIRST deconvolved major axis Maj (arcsec)"),
    ("first_min_arcsec", "REAL", "f8", "FIRST deconvolved minor axis Min (arcsec)"),
    ("first_sep_arcsec", "REAL", "f8", "Separation NVSS-FIRST (arcsec)"),
    ("n_first", "INTEGER NOT NULL", "i8", "FIRST components within the match radius"),
    ("alpha", "REAL", "f8", "Spectral index from s_nvss (1.4 GHz) and s_vlass_corr (3.0 GHz)"),
    ("e_alpha", "REAL", "f8", "Error of alpha from the flux errors"),
    ("resolved_flag", "INTEGER", "i8", "1 resolved, 0 compact, NULL unknown (deconvolved size)"),
    ("size_source", "INTEGER NOT NULL", "i8", "Origin of resolved_flag: 0 none, 1 FIRST, 2 VLASS"),
    ("confusion_flag", "INTEGER NOT NULL", "i8",
     "1 when more than one VLASS or FIRST component lies within the radius"),
]
"""(name, SQL type, numpy dtype, description) of every column of ``sources``."""

COLUMN_NAMES = [c[0] for c in SOURCE_COLUMNS]
POSITION_INDEX_COLUMNS = ("dec_band", "ra_deg", "dec_deg", "source_id", "s_nvss", "snr_nvss", "s_vlass", "alpha",
                          "resolved_flag", "confusion_flag")
"""The position index: ``(dec_band, ra_deg)`` for the range scans, then the columns a default cone
query and the reference views read, so that those queries never touch the table (covering index)."""
VIEWS = ("sources", "good_references", "final_references", "final_references_table")
"""Tables/views that can be queried or exported."""


def create_sources(conn: sqlite3.Connection) -> None:
    """Create the ``sources`` and ``meta`` tables (no indices yet)."""
    cols = ",\n  ".join(f"{name} {sqltype}" for name, sqltype, _, _ in SOURCE_COLUMNS)
    conn.execute(f"CREATE TABLE sources (\n  {cols}\n)")
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")


def insert_sql() -> str:
    """Parameterised INSERT for all columns of ``sources``."""
    return f"INSERT INTO sources ({', '.join(COLUMN_NAMES)}) VALUES ({', '.join('?' * len(COLUMN_NAMES))})"


def create_indices(conn: sqlite3.Connection, table: str = "sources") -> None:
    """Covering position index :data:`POSITION_INDEX_COLUMNS`; run after the bulk insert."""
    conn.execute(f"CREATE INDEX idx_{table}_pos ON {table} ({', '.join(POSITION_INDEX_COLUMNS)})")


def create_views(conn: sqlite3.Connection, goodref_snr_min: float, goodref_alpha_min: float,
                 goodref_alpha_max: float, finalref_snr_min: float, restrict_to_ids: bool) -> None:
    """Create ``good_references`` and ``final_references`` with the thresholds baked in.

    ``good_references``: ``snr_nvss > goodref_snr_min``, ``goodref_alpha_min <= alpha <=
    goodref_alpha_max`` (alpha must be known, i.e. a VLASS match), not resolved
    (``resolved_flag`` 0 or unknown), not confused.  ``final_references``: the good
    references with ``snr_nvss > finalref_snr_min``, and, when ``restrict_to_ids``, only
    the ids of table ``final_reference_ids``.
    """
    conn.execute(
        "CREATE VIEW good_references AS SELECT * FROM sources WHERE "
        f"snr_nvss > {float(goodref_snr_min)!r} AND alpha >= {float(goodref_alpha_min)!r} "
        f"AND alpha <= {float(goodref_alpha_max)!r} AND IFNULL(resolved_flag, 0) = 0 AND confusion_flag = 0")
    where = f"snr_nvss > {float(finalref_snr_min)!r}"
    if restrict_to_ids:
        where += " AND source_id IN (SELECT source_id FROM final_reference_ids)"
    conn.execute(f"CREATE VIEW final_references AS SELECT * FROM good_references WHERE {where}")


def create_final_ids(conn: sqlite3.Connection, ids: list[int]) -> None:
    """Table of the stable ids allowed in ``final_references``."""
    conn.execute("CREATE TABLE final_reference_ids (source_id INTEGER PRIMARY KEY)")
    conn.executemany("INSERT OR IGNORE INTO final_reference_ids VALUES (?)", ((int(i),) for i in ids))


def materialize_final(conn: sqlite3.Connection) -> None:
    """Copy ``final_references`` into the indexed table ``final_references_table``."""
    conn.execute("CREATE TABLE final_references_table AS SELECT * FROM final_references ORDER BY source_id")
    create_indices(conn, "final_references_table")


def write_meta(conn: sqlite3.Connection, meta: dict[str, object]) -> None:
    """Insert or replace ``meta`` rows (values stored as text)."""
    conn.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                     [(k, "" if v is None else str(v)) for k, v in meta.items()])


def has_table(conn: sqlite3.Connection, name: str) -> bool:
    """Whether a table or view of that name exists."""
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE name = ? AND type IN ('table', 'view')",
                       (name,)).fetchone()
    return row is not None
