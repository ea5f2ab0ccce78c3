"""Schema of the products database: the ``ms_index``, ``images`` and ``detections`` tables and their migrations.

:data:`SCHEMA_VERSION` and the numbered :data:`MIGRATIONS` are applied through
``PRAGMA user_version`` by :func:`dsa110_contimg.db.products.connect` (or
:func:`migrate`).  Everything here is re-exported by
:mod:`dsa110_contimg.db.products`.
"""

from __future__ import annotations

import sqlite3
from typing import Callable

from . import sqlite_base as _base

WHAT = "products database"
"""Name used in error messages."""
SCHEMA_VERSION = 3
"""Version stored in ``PRAGMA user_version`` once every migration has run."""


class ProductsDBError(ValueError):
    """Bad input or an inconsistent products database; the message says what and which path/id."""


# --------------------------------------------------------------------------- schema

MS_COLUMNS: list[tuple[str, str]] = [
    ("path", "TEXT PRIMARY KEY"),
    ("start_mjd", "REAL"),
    ("end_mjd", "REAL"),
    ("mid_mjd", "REAL"),
    ("processed_at", "TEXT"),
    ("status", "TEXT"),
    ("stage", "TEXT"),
    ("stage_updated_at", "TEXT"),
    ("cal_applied", "INTEGER"),
    ("imagename", "TEXT"),
    ("ra_deg", "REAL"),
    ("dec_deg", "REAL"),
]
"""Columns of ``ms_index`` (schema version 1)."""
IMAGE_CORE_COLUMNS: list[tuple[str, str]] = [
    ("path", "TEXT UNIQUE NOT NULL"),
    ("ms_path", "TEXT"),
    ("created_at", "TEXT"),
    ("type", "TEXT"),
    ("beam_major_arcsec", "REAL"),
    ("noise_jy", "REAL"),
    ("pbcor", "INTEGER"),
]
"""Columns of ``images`` in schema version 1 (after ``id INTEGER PRIMARY KEY``)."""
IMAGE_QA_COLUMNS: list[tuple[str, str]] = [
    ("beam_minor_arcsec", "REAL"),
    ("beam_pa_deg", "REAL"),
    ("peak_jy", "REAL"),
    ("dynamic_range", "REAL"),
    ("backend", "TEXT"),
    ("freq_hz", "REAL"),
    ("thumbnail_path", "TEXT"),
    ("qa_plot_path", "TEXT"),
    ("fits_path", "TEXT"),
    ("n_detections", "INTEGER"),
    ("flux_ratio_median", "REAL"),
    ("astrometry_offset_arcsec", "REAL"),
    ("qa_json", "TEXT"),
    ("timings_json", "TEXT"),
    ("status", "TEXT"),
]
"""Columns added to ``images`` by schema version 2 (``qa_json``/``timings_json`` hold JSON objects)."""
DETECTION_COLUMNS: list[tuple[str, str]] = [
    ("image_id", "INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE"),
    ("ra_deg", "REAL NOT NULL"),
    ("dec_deg", "REAL NOT NULL"),
    ("ra_err_arcsec", "REAL"),
    ("dec_err_arcsec", "REAL"),
    ("peak_jy", "REAL"),
    ("peak_err_jy", "REAL"),
    ("int_jy", "REAL"),
    ("int_err_jy", "REAL"),
    ("snr", "REAL"),
    ("catalog_source_id", "INTEGER"),
    ("catalog_sep_arcsec", "REAL"),
    ("catalog_flux_jy", "REAL"),
]
"""Columns of ``detections`` (schema version 1, after ``id INTEGER PRIMARY KEY``)."""
INDICES: list[tuple[str, str, str]] = [
    ("idx_ms_index_stage", "ms_index", "stage"),
    ("idx_ms_index_status", "ms_index", "status"),
    ("idx_ms_index_mid_mjd", "ms_index", "mid_mjd"),
    ("idx_images_ms_path", "images", "ms_path"),
    ("idx_images_created_at", "images", "created_at"),
    ("idx_detections_image_id", "detections", "image_id"),
]
"""Indices created by schema version 2: (name, table, column)."""


def _create_table(conn: sqlite3.Connection, table: str, columns: list[tuple[str, str]], with_id: bool) -> None:
    cols = [f"{n} {t}" for n, t in columns]
    if with_id:
        cols.insert(0, "id INTEGER PRIMARY KEY")
    conn.execute(f"CREATE TABLE IF NOT EXISTS {table} (\n  " + ",\n  ".join(cols) + "\n)")


def _migration_1(conn: sqlite3.Connection) -> None:
    """Create ``ms_index``, ``images`` (core columns) and ``detections``."""
    _create_table(conn, "ms_index", MS_COLUMNS, with_id=False)
    _create_table(conn, "images", IMAGE_CORE_COLUMNS, with_id=True)
    _create_table(conn, "detections", DETECTION_COLUMNS, with_id=True)


def _migration_2(conn: sqlite3.Connection) -> None:
    """Per-image QA columns (added to existing rows as NULL), ``n_detections`` backfilled, and the indices."""
    _base.add_missing_columns(conn, "images", IMAGE_QA_COLUMNS)
    conn.execute("UPDATE images SET n_detections = "
                 "(SELECT COUNT(*) FROM detections d WHERE d.image_id = images.id) WHERE n_detections IS NULL")
    for name, table, column in INDICES:
        conn.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({column})")


SORT_INDICES: list[tuple[str, str, str]] = [
    ("idx_images_newest", "images", "created_at, id"),
    ("idx_images_type_newest", "images", "type, created_at, id"),
]
"""Indices created by schema version 3: the newest-first listings page through an index, not a sort."""


DETECTION_QA_COLUMNS: list[tuple[str, str]] = [("flux_ratio", "REAL")]
"""Columns added to ``detections`` by schema version 3."""


def _migration_3(conn: sqlite3.Connection) -> None:
    """Indices for paging images newest first (all, or of one type); each detection's catalog flux ratio."""
    _base.add_missing_columns(conn, "detections", DETECTION_QA_COLUMNS)
    for name, table, columns in SORT_INDICES:
        conn.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({columns})")


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_migration_1, _migration_2, _migration_3]
"""``MIGRATIONS[i]`` brings the schema from version ``i`` to ``i + 1``."""
assert len(MIGRATIONS) == SCHEMA_VERSION


def migrate(conn: sqlite3.Connection) -> int:
    """Apply the pending migrations in one transaction; returns the schema version before migrating.

    Raises
    ------
    ProductsDBError
        The database is newer than this code.
    """
    return _base.migrate(conn, MIGRATIONS, WHAT, ProductsDBError)
