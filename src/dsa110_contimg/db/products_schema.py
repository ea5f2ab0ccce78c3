"""Schema of the products database: the ``ms_index``, ``images`` and ``detections`` tables and their migrations.

:data:`SCHEMA_VERSION` and the numbered :data:`MIGRATIONS` are applied through
``PRAGMA user_version`` by :func:`dsa110_contimg.db.products.connect` (or
:func:`migrate`).  Everything here is re-exported by
:mod:`dsa110_contimg.db.products`.
"""

from __future__ import annotations

import sqlite3
from typing import Callable

from ..errors import ContimgError
from . import sqlite_base as _base

WHAT = "products database"
"""Name used in error messages."""
SCHEMA_VERSION = 8
"""Version stored in ``PRAGMA user_version`` once every migration has run."""


class ProductsDBError(ContimgError, ValueError):
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


FLAG_COLUMNS: list[tuple[str, str]] = [
    ("ms_path", "TEXT PRIMARY KEY"), ("group_id", "TEXT"), ("created_at", "TEXT"), ("flagger", "TEXT"),
    ("seconds", "REAL"), ("fraction_base", "REAL"), ("fraction_flagged", "REAL"), ("fraction_new", "REAL"),
    ("plot_path", "TEXT"), ("report_json", "TEXT")]
"""Columns of ``flag_reports`` (schema version 4): the RFI flagging report of each MS."""


def _migration_4(conn: sqlite3.Connection) -> None:
    """``flag_reports``: one RFI flagging report per Measurement Set."""
    _create_table(conn, "flag_reports", FLAG_COLUMNS, with_id=False)
    conn.execute("CREATE INDEX IF NOT EXISTS idx_flag_reports_group ON flag_reports (group_id)")


SOURCE_COLUMNS: list[tuple[str, str]] = [
    ("name", "TEXT"), ("ra_deg", "REAL NOT NULL"), ("dec_deg", "REAL NOT NULL"), ("dec_band", "INTEGER NOT NULL"),
    ("ra_err_arcsec", "REAL"), ("dec_err_arcsec", "REAL"), ("ref_ra_deg", "REAL NOT NULL"),
    ("ref_dec_deg", "REAL NOT NULL"), ("pos_w_ra", "REAL NOT NULL DEFAULT 0"), ("pos_wx_ra", "REAL NOT NULL DEFAULT 0"),
    ("pos_w_dec", "REAL NOT NULL DEFAULT 0"), ("pos_wx_dec", "REAL NOT NULL DEFAULT 0"), ("origin", "TEXT"),
    ("catalog_source_id", "INTEGER"), ("catalog_sep_arcsec", "REAL"), ("catalog_flux_jy", "REAL"),
    ("created_at", "TEXT"), ("created_image_id", "INTEGER"),
    ("n_measurements", "INTEGER NOT NULL DEFAULT 0"), ("n_detections", "INTEGER NOT NULL DEFAULT 0"),
    ("sum_w", "REAL NOT NULL DEFAULT 0"), ("sum_wf", "REAL NOT NULL DEFAULT 0"), ("sum_wf2", "REAL NOT NULL DEFAULT 0"),
    ("sum_f", "REAL NOT NULL DEFAULT 0"), ("sum_f2", "REAL NOT NULL DEFAULT 0"),
    ("flux_mean_jy", "REAL"), ("flux_wmean_jy", "REAL"), ("flux_wmean_err_jy", "REAL"), ("flux_max_jy", "REAL"),
    ("eta", "REAL"), ("v_index", "REAL"), ("vs_max", "REAL"), ("m_max", "REAL"),
    ("first_mjd", "REAL"), ("last_mjd", "REAL"), ("first_seen_mjd", "REAL"), ("last_seen_mjd", "REAL"),
    ("new_sigma", "REAL"), ("is_new", "INTEGER NOT NULL DEFAULT 0"), ("is_variable", "INTEGER NOT NULL DEFAULT 0"),
    ("updated_at", "TEXT")]
"""Columns of ``sources`` (schema version 5, after ``id``): position (weighted mean of the detections, with its
running sums about ``ref_*``), catalog counterpart, running flux sums (``w`` = 1/error**2) and the light-curve
statistics derived from them, first/last measured (``*_mjd``) and detected (``*_seen_mjd``), flags."""
MEASUREMENT_COLUMNS: list[tuple[str, str]] = [
    ("source_id", "INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE"),
    ("image_id", "INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE"),
    ("mjd", "REAL NOT NULL"), ("kind", "TEXT NOT NULL"), ("flux_jy", "REAL NOT NULL"),
    ("flux_err_jy", "REAL NOT NULL"), ("local_rms_jy", "REAL"), ("pb", "REAL"), ("ra_deg", "REAL"),
    ("dec_deg", "REAL"), ("detection_id", "INTEGER"), ("det_ra_deg", "REAL"), ("det_dec_deg", "REAL"),
    ("det_ra_err_arcsec", "REAL"), ("det_dec_err_arcsec", "REAL"), ("det_flux_jy", "REAL"), ("sep_arcsec", "REAL"),
    ("de_ruiter", "REAL"), ("backfilled", "INTEGER NOT NULL DEFAULT 0"), ("note", "TEXT")]
"""Columns of ``measurements`` (schema version 5, after ``id``): one forced flux of a source in an image
(``kind`` 'detection' when a blind detection was associated, with its position and weights)."""
PHOTOMETRY_IMAGE_COLUMNS: list[tuple[str, str]] = [
    ("image_id", "INTEGER PRIMARY KEY REFERENCES images(id) ON DELETE CASCADE"), ("group_id", "TEXT"),
    ("ms_path", "TEXT"), ("image_path", "TEXT"), ("pbcor_path", "TEXT"), ("mid_mjd", "REAL NOT NULL"),
    ("first_time_mjd", "REAL"), ("last_time_mjd", "REAL"), ("n_times", "INTEGER"), ("pointing_dec_deg", "REAL"),
    ("fringestop_lon_deg", "REAL"), ("freq_min_hz", "REAL"), ("freq_max_hz", "REAL"), ("ra_deg", "REAL"),
    ("dec_deg", "REAL"), ("dec_band", "INTEGER"), ("radius_deg", "REAL"), ("rms_jy", "REAL"),
    ("beam_major_arcsec", "REAL"), ("beam_minor_arcsec", "REAL"), ("beam_pa_deg", "REAL"), ("n_forced", "INTEGER"),
    ("n_detections", "INTEGER"), ("n_associated", "INTEGER"), ("n_new_sources", "INTEGER"), ("seconds", "REAL"),
    ("created_at", "TEXT")]
"""Columns of ``photometry_images`` (schema version 5): each photometered image, its group and the beam and
footprint a later new source needs to find the earlier images covering it."""
SOURCE_INDICES: list[tuple[str, str, str]] = [
    ("idx_sources_position", "sources", "dec_band, ra_deg"),
    ("idx_sources_eta", "sources", "eta"),
    ("idx_sources_v", "sources", "v_index"),
    ("idx_sources_variable", "sources", "is_variable, eta"),
    ("idx_sources_new", "sources", "is_new, id"),
    ("idx_sources_catalog", "sources", "catalog_source_id"),
    ("idx_measurements_image", "measurements", "image_id"),
    ("idx_measurements_lightcurve", "measurements", "source_id, mjd"),
    ("idx_photometry_images_time", "photometry_images", "mid_mjd"),
    ("idx_photometry_images_position", "photometry_images", "dec_band, ra_deg"),
    ("idx_photometry_images_group", "photometry_images", "group_id"),
]
"""Indices created by schema version 5 (and the unique ``(source_id, image_id)`` of ``measurements``): variable
(eta / V thresholds, the flag), new, by position, by catalog counterpart, by image, a light curve by time."""


def _migration_5(conn: sqlite3.Connection) -> None:
    """Survey science: ``sources``, their ``measurements`` (one per source and image) and ``photometry_images``."""
    _create_table(conn, "sources", SOURCE_COLUMNS, with_id=True)
    _create_table(conn, "measurements", MEASUREMENT_COLUMNS, with_id=True)
    _create_table(conn, "photometry_images", PHOTOMETRY_IMAGE_COLUMNS, with_id=False)
    conn.execute("CREATE UNIQUE INDEX IF NOT EXISTS idx_measurements_source_image "
                 "ON measurements (source_id, image_id)")
    for name, table, columns in SOURCE_INDICES:
        conn.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({columns})")


MOSAIC_COLUMNS: list[tuple[str, str]] = [
    ("name", "TEXT UNIQUE NOT NULL"), ("start_mjd", "REAL"), ("end_mjd", "REAL"), ("created_at", "TEXT"),
    ("updated_at", "TEXT"), ("status", "TEXT NOT NULL"), ("error", "TEXT"), ("fingerprint", "TEXT"),
    ("n_inputs", "INTEGER"), ("n_used", "INTEGER"), ("inputs_json", "TEXT"), ("path", "TEXT"),
    ("weight_path", "TEXT"), ("noise_path", "TEXT"), ("preview_path", "TEXT"), ("projection", "TEXT"),
    ("ra_deg", "REAL"), ("dec_deg", "REAL"), ("width_deg", "REAL"), ("height_deg", "REAL"), ("freq_hz", "REAL"),
    ("beam_major_arcsec", "REAL"), ("beam_minor_arcsec", "REAL"), ("beam_pa_deg", "REAL"), ("rms_jy", "REAL"),
    ("noise_median_jy", "REAL"), ("n_sources", "INTEGER"), ("flux_ratio_median", "REAL"),
    ("astrometry_offset_arcsec", "REAL"), ("qa_json", "TEXT"), ("timings_json", "TEXT"), ("seconds", "REAL")]
"""Columns of ``mosaics`` (schema version 6, after ``id``): one linear mosaic per window of groups (``name``),
its inputs (used or excluded, with the reason), files, grid, beam, noise and QA; ``fingerprint`` identifies the
inputs it was built from (a changed input rebuilds it)."""


def _migration_6(conn: sqlite3.Connection) -> None:
    """``mosaics``: primary-beam-weighted linear mosaics of windows of consecutive groups."""
    _create_table(conn, "mosaics", MOSAIC_COLUMNS, with_id=True)
    conn.execute("CREATE INDEX IF NOT EXISTS idx_mosaics_time ON mosaics (start_mjd)")


SOURCE_ORDER_INDICES: list[tuple[str, str, str]] = [
    ("idx_sources_flux", "sources", "flux_wmean_jy DESC, id"),
    ("idx_sources_n", "sources", "n_measurements DESC, id"),
    ("idx_sources_last", "sources", "last_mjd DESC, id"),
]
"""Indices created by schema version 7: the orders ``flux``, ``n`` and ``last`` of ``/api/sources`` (without them
each page sorts the whole table: a p99 of 120 ms at 100 requests/s over 100,000 sources, ``bench_sources.py``)."""


def _migration_7(conn: sqlite3.Connection) -> None:
    """Indices for the sources listing's orders by flux, number of measurements and last time seen."""
    for name, table, columns in SOURCE_ORDER_INDICES:
        conn.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({columns})")


IMAGE_QUALITY_COLUMNS: list[tuple[str, str]] = [
    ("flux_scale_ratio", "REAL"), ("flux_scale_err", "REAL"), ("flux_scale_n", "INTEGER"),
    ("thermal_noise_jy", "REAL"), ("rms_over_thermal", "REAL"), ("ref_offset_arcsec", "REAL"),
    ("quality_state", "TEXT"), ("gates_json", "TEXT")]
"""Columns added to ``images`` by schema version 8 (:mod:`dsa110_contimg.qa.gates`): flux-scale ratio against the
catalog's compact references, its error and number of references, predicted thermal noise, rms over it, median
reference offset, the worst gate state ('pass', 'warn', 'fail') and every gate (value, thresholds, state) as JSON."""


def _migration_8(conn: sqlite3.Connection) -> None:
    """Per-image quality gates (existing rows get NULL: not assessed) and an index on the gate state."""
    _base.add_missing_columns(conn, "images", IMAGE_QUALITY_COLUMNS)
    conn.execute("CREATE INDEX IF NOT EXISTS idx_images_quality ON images (quality_state)")


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_migration_1, _migration_2, _migration_3, _migration_4,
                                                          _migration_5, _migration_6, _migration_7, _migration_8]
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
