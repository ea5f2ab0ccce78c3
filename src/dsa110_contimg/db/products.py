"""Products database (``PIPELINE_PRODUCTS_DB``): Measurement Sets, images, QA numbers and detections.

Three tables:

``ms_index``
    One row per Measurement Set, keyed by its path: time range, pointing,
    pipeline stage/status and whether calibration was applied.
``images``
    One row per image product (keyed by path, with an integer ``id``): the MS
    it came from, type, beam, noise and the per-image QA numbers (peak, dynamic
    range, crossmatch flux ratio and astrometric offset, thumbnail and QA plot
    paths, free-form QA and timing dicts stored as JSON).
``detections``
    Sources found in an image (``image_id`` references ``images.id``, deleted
    with the image), with their catalog match if any.

The schema (:data:`SCHEMA_VERSION` and the numbered :data:`MIGRATIONS`, applied
by :func:`connect` through ``PRAGMA user_version``) lives in
:mod:`~dsa110_contimg.db.products_schema`, the record dataclasses and their
row conversion in :mod:`~dsa110_contimg.db.products_records`; both are
re-exported here.
The database is in WAL mode, so the API can read (:func:`connect_readonly`)
while the pipeline writes.  Every write function runs in one transaction
(a savepoint when the caller already holds one).

Paths (``ms_index.path``, ``images.path`` and every ``*_path`` column) are
stored absolute (:func:`os.path.abspath`, symlinks are not resolved), and
looked up the same way.

Upserts only overwrite the columns given as non-``None``: ``None`` means
"unknown / unchanged", never "erase".

Examples
--------
>>> import tempfile, os
>>> conn = connect(os.path.join(tempfile.mkdtemp(), "products.sqlite3"))
>>> _ = upsert_ms(conn, MSRecord("/data/ms/2025-10-02T00:00:00.ms", start_mjd=60950.0, end_mjd=60950.0035,
...                              stage="converted", status="ok"))
>>> get_ms(conn, "/data/ms/2025-10-02T00:00:00.ms").stage
'converted'
>>> image_id = upsert_image(conn, ImageRecord("/data/img/x-image.fits",
...                                           ms_path="/data/ms/2025-10-02T00:00:00.ms", noise_jy=1e-3))
>>> replace_detections(conn, image_id, [Detection(ra_deg=128.7, dec_deg=55.6, peak_jy=1.2)])
1
>>> get_image(conn, image_id).n_detections
1
"""

from __future__ import annotations

import os
import sqlite3
from datetime import datetime, timezone
from typing import Any, Iterable

from . import sqlite_base as _base
from .products_records import (_BOOL, _DETECTION_KINDS, _IMAGE_DB_NAME, _IMAGE_KINDS, _INT,  # noqa: F401
                               _JSON, _MS_KINDS, _PATH, _REAL, _TEXT, Detection, ImageRecord, MSRecord,
                               _abspath, _check_name, _from_db, _jsonable, _page, _record_values, _row_to, _to_db,
                               _upsert_sql)
from .products_schema import (DETECTION_COLUMNS, IMAGE_CORE_COLUMNS, IMAGE_QA_COLUMNS,  # noqa: F401
                              INDICES, MIGRATIONS, MS_COLUMNS, SCHEMA_VERSION, WHAT, ProductsDBError,
                              _create_table, _migration_1, _migration_2,
                              migrate)


# --------------------------------------------------------------------------- connections


def connect(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """Open (creating if needed) the products database read-write and bring its schema up to date.

    Parameters
    ----------
    path
        SQLite file (parent folders are created), e.g. ``settings.products_db``.

    Returns
    -------
    sqlite3.Connection
        Autocommit mode (the functions of this module open their own transactions),
        WAL journal, foreign keys enforced, rows as :class:`sqlite3.Row`.

    Raises
    ------
    ProductsDBError
        The database's schema is newer than this code.
    """
    conn = _base.open_database(path, MIGRATIONS, WHAT, ProductsDBError)
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def connect_readonly(path: str | os.PathLike[str]) -> sqlite3.Connection | None:
    """Open the products database read-only, for readers such as the API; never creates it.

    Reads work while the pipeline writes (WAL): they see the last committed state.

    Returns
    -------
    sqlite3.Connection or None
        ``None`` when the file does not exist yet or has not been initialised
        (schema version 0) by a writer.

    Raises
    ------
    ProductsDBError
        The file exists but is not an SQLite database.
    """
    return _base.open_initialised_readonly(path, WHAT, ProductsDBError)


def _transaction(conn: sqlite3.Connection):
    """All-or-nothing block (see :func:`dsa110_contimg.db.sqlite_base.transaction`)."""
    return _base.transaction(conn, "products")


# --------------------------------------------------------------------------- conversion helpers


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


# --------------------------------------------------------------------------- ms_index


_MS_SQL = _upsert_sql(
    "ms_index", "path", list(_MS_KINDS),
    special={
        # an explicit time wins; otherwise re-stamp only when the stage actually changes
        "stage_updated_at": "COALESCE(:stage_updated_at_given, CASE WHEN excluded.stage IS NOT NULL "
                            "AND excluded.stage IS NOT ms_index.stage THEN excluded.stage_updated_at "
                            "ELSE ms_index.stage_updated_at END)",
    })


def upsert_ms(conn: sqlite3.Connection, rec: MSRecord) -> MSRecord:
    """Insert or update the Measurement Set ``rec.path``, overwriting only the fields given (non-``None``).

    Idempotent: the same record twice leaves one row with the same values.
    ``mid_mjd`` defaults to the middle of ``start_mjd`` and ``end_mjd`` when
    both are known; ``stage_updated_at`` is stamped with the current time when
    the stage is new or changes (unless given explicitly).

    Parameters
    ----------
    conn
        Connection from :func:`connect`.
    rec
        The record; its ``path`` is the key.

    Returns
    -------
    MSRecord
        The row as stored.

    Raises
    ------
    ProductsDBError
        Missing path, a non-finite or non-numeric number, an end before the start.
    """
    if not isinstance(rec, MSRecord):
        raise ProductsDBError(f"upsert_ms needs an MSRecord, got {type(rec).__name__}")
    values = _record_values(rec, _MS_KINDS, {}, f"MS {rec.path!r}")
    path = values["path"]
    if values["start_mjd"] is not None and values["end_mjd"] is not None:
        if values["end_mjd"] < values["start_mjd"]:
            raise ProductsDBError(f"MS {path}: end_mjd {values['end_mjd']} is before start_mjd {values['start_mjd']}")
        if values["mid_mjd"] is None:
            values["mid_mjd"] = 0.5 * (values["start_mjd"] + values["end_mjd"])
    given = values["stage_updated_at"]
    values["stage_updated_at_given"] = given
    if given is None and values["stage"] is not None:
        values["stage_updated_at"] = _now_iso()
    with _transaction(conn):
        conn.execute(_MS_SQL, values)
        row = conn.execute("SELECT * FROM ms_index WHERE path = ?", (path,)).fetchone()
    return _row_to(MSRecord, row, _MS_KINDS, {})


def update_ms_stage(conn: sqlite3.Connection, path: str | os.PathLike[str], stage: str,
                    status: str | None = None) -> MSRecord:
    """Set the stage (and optionally the status) of a registered MS and stamp ``stage_updated_at``.

    Raises
    ------
    ProductsDBError
        The MS is not in the database, or ``stage`` is empty.
    """
    p = _abspath(path, "MS path")
    stage = _check_name(stage, f"stage of MS {p}")
    if status is not None:
        status = _check_name(status, f"status of MS {p}")
    with _transaction(conn):
        cur = conn.execute("UPDATE ms_index SET stage = ?, status = COALESCE(?, status), stage_updated_at = ? "
                           "WHERE path = ?", (stage, status, _now_iso(), p))
        if cur.rowcount == 0:
            raise ProductsDBError(f"MS {p} is not in the {WHAT} (upsert_ms it first)")
        row = conn.execute("SELECT * FROM ms_index WHERE path = ?", (p,)).fetchone()
    return _row_to(MSRecord, row, _MS_KINDS, {})


def get_ms(conn: sqlite3.Connection, path: str | os.PathLike[str]) -> MSRecord | None:
    """The MS stored at ``path``, or ``None``."""
    row = conn.execute("SELECT * FROM ms_index WHERE path = ?", (_abspath(path, "MS path"),)).fetchone()
    return _row_to(MSRecord, row, _MS_KINDS, {})


def list_ms(conn: sqlite3.Connection, stage: str | None = None, status: str | None = None,
            limit: int = 100, offset: int = 0) -> list[MSRecord]:
    """Measurement Sets, newest data first (``mid_mjd`` descending, unknown times last, then path).

    Parameters
    ----------
    stage, status
        Keep only rows with this stage / status (``None``: any).
    limit, offset
        Page of the result.
    """
    limit, offset = _page(limit, offset)
    where, args = _where({"stage": stage, "status": status})
    sql = f"SELECT * FROM ms_index{where} ORDER BY mid_mjd IS NULL, mid_mjd DESC, path LIMIT ? OFFSET ?"
    return [_row_to(MSRecord, r, _MS_KINDS, {}) for r in conn.execute(sql, (*args, limit, offset))]


def count_ms(conn: sqlite3.Connection, stage: str | None = None, status: str | None = None) -> int:
    """Number of rows :func:`list_ms` pages through with the same filters."""
    where, args = _where({"stage": stage, "status": status})
    return conn.execute(f"SELECT COUNT(*) FROM ms_index{where}", args).fetchone()[0]


def _where(filters: dict[str, Any]) -> tuple[str, list[Any]]:
    """``WHERE`` clause (with a leading space, or empty) and its arguments for the non-``None`` filters."""
    items = [(k, v) for k, v in filters.items() if v is not None]
    if not items:
        return "", []
    return " WHERE " + " AND ".join(f"{k} = ?" for k, _ in items), [v for _, v in items]


# --------------------------------------------------------------------------- images


_IMAGE_COLUMNS = [_IMAGE_DB_NAME.get(n, n) for n in _IMAGE_KINDS]
_IMAGE_SQL = _upsert_sql("images", "path", _IMAGE_COLUMNS,
                         special={"created_at": "COALESCE(:created_at_given, images.created_at)"})


def upsert_image(conn: sqlite3.Connection, rec: ImageRecord) -> int:
    """Insert or update the image ``rec.path``, overwriting only the fields given (non-``None``).

    Idempotent: the same record twice leaves one row and the same id.
    ``created_at`` is set to now on first insert unless given; ``qa`` and
    ``timings`` replace the stored dicts as a whole.  ``rec.id`` is ignored.

    Parameters
    ----------
    conn, rec
        As for :func:`upsert_ms`: a connection from :func:`connect` and the record (its ``path`` is the key).

    Returns
    -------
    int
        The image id (stable across upserts of the same path).

    Raises
    ------
    ProductsDBError
        Missing path, a non-finite or non-numeric number, a QA dict that is not JSON-serialisable.
    """
    if not isinstance(rec, ImageRecord):
        raise ProductsDBError(f"upsert_image needs an ImageRecord, got {type(rec).__name__}")
    values = _record_values(rec, _IMAGE_KINDS, _IMAGE_DB_NAME, f"image {rec.path!r}")
    if values["n_detections"] is not None and values["n_detections"] < 0:
        raise ProductsDBError(f"image {values['path']}: n_detections={values['n_detections']} is negative")
    values["created_at_given"] = values["created_at"]
    if values["created_at"] is None:
        values["created_at"] = _now_iso()
    with _transaction(conn):
        conn.execute(_IMAGE_SQL, values)
        return int(conn.execute("SELECT id FROM images WHERE path = ?", (values["path"],)).fetchone()[0])


def get_image(conn: sqlite3.Connection, image_id: int) -> ImageRecord | None:
    """The image with id ``image_id``, or ``None``."""
    row = conn.execute("SELECT * FROM images WHERE id = ?", (_to_db(_INT, image_id, "image_id"),)).fetchone()
    return _row_to(ImageRecord, row, _IMAGE_KINDS, _IMAGE_DB_NAME, extra=("id",))


def get_image_by_path(conn: sqlite3.Connection, path: str | os.PathLike[str]) -> ImageRecord | None:
    """The image stored at ``path``, or ``None``."""
    row = conn.execute("SELECT * FROM images WHERE path = ?", (_abspath(path, "image path"),)).fetchone()
    return _row_to(ImageRecord, row, _IMAGE_KINDS, _IMAGE_DB_NAME, extra=("id",))


def list_images(conn: sqlite3.Connection, limit: int = 100, offset: int = 0,
                ms_path: str | os.PathLike[str] | None = None, type: str | None = None) -> list[ImageRecord]:
    """Images, newest first (``created_at`` descending, unknown times last, then id descending).

    Parameters
    ----------
    limit, offset
        Page of the result.
    ms_path
        Keep only the images made from this Measurement Set.
    type
        Keep only this kind of product (e.g. ``'image'``, ``'pbcor'``).
    """
    limit, offset = _page(limit, offset)
    where, args = _image_filters(ms_path, type)
    rows = conn.execute(f"SELECT * FROM images{where} ORDER BY created_at DESC, id DESC "
                        "LIMIT ? OFFSET ?", (*args, limit, offset))
    return [_row_to(ImageRecord, r, _IMAGE_KINDS, _IMAGE_DB_NAME, extra=("id",)) for r in rows]


def count_images(conn: sqlite3.Connection, ms_path: str | os.PathLike[str] | None = None,
                 type: str | None = None) -> int:
    """Number of rows :func:`list_images` pages through with the same filters."""
    where, args = _image_filters(ms_path, type)
    return conn.execute(f"SELECT COUNT(*) FROM images{where}", args).fetchone()[0]


def _image_filters(ms_path: str | os.PathLike[str] | None, type: str | None) -> tuple[str, list[Any]]:
    return _where({"ms_path": None if ms_path is None else _abspath(ms_path, "ms_path"), "type": type})


def ms_paths_with_images(conn: sqlite3.Connection) -> set[str]:
    """Paths of the Measurement Sets that have at least one image (for backfilling the rest)."""
    return {r[0] for r in conn.execute("SELECT DISTINCT ms_path FROM images WHERE ms_path IS NOT NULL")}


# --------------------------------------------------------------------------- detections


_DETECTION_COLUMNS = ["image_id", *_DETECTION_KINDS]
_DETECTION_SQL = (f"INSERT INTO detections ({', '.join(_DETECTION_COLUMNS)}) "
                  f"VALUES ({', '.join(':' + c for c in _DETECTION_COLUMNS)})")


def _detection_values(image_id: int, i: int, d: Detection) -> dict[str, Any]:
    if not isinstance(d, Detection):
        raise ProductsDBError(f"image {image_id}: detection {i} is a {type(d).__name__}, not a Detection")
    label = f"image {image_id} detection {i}"
    values = _record_values(d, _DETECTION_KINDS, {}, label)
    if values["ra_deg"] is None or values["dec_deg"] is None:
        raise ProductsDBError(f"{label}: ra_deg and dec_deg are required")
    if not -90.0 <= values["dec_deg"] <= 90.0:
        raise ProductsDBError(f"{label}: dec_deg={values['dec_deg']} is outside [-90, 90]")
    values["ra_deg"] %= 360.0
    values["image_id"] = image_id
    return values


def replace_detections(conn: sqlite3.Connection, image_id: int, detections: Iterable[Detection]) -> int:
    """Replace all detections of an image with ``detections`` and update ``images.n_detections``, atomically.

    Every detection is checked before anything is written; an empty list
    clears the image's detections.  ``Detection.id``/``image_id`` are ignored.

    Returns
    -------
    int
        Number of detections stored.

    Raises
    ------
    ProductsDBError
        Unknown image id, or an invalid detection (index named); the database is unchanged.
    """
    iid = _to_db(_INT, image_id, "image_id")
    rows = [_detection_values(iid, i, d) for i, d in enumerate(detections)]
    with _transaction(conn):
        if conn.execute("SELECT 1 FROM images WHERE id = ?", (iid,)).fetchone() is None:
            raise ProductsDBError(f"unknown image id {iid}: no such row in images (upsert_image it first)")
        conn.execute("DELETE FROM detections WHERE image_id = ?", (iid,))
        conn.executemany(_DETECTION_SQL, rows)
        conn.execute("UPDATE images SET n_detections = ? WHERE id = ?", (len(rows), iid))
    return len(rows)


def get_detections(conn: sqlite3.Connection, image_id: int) -> list[Detection]:
    """Detections of an image, in the order they were stored (empty for an unknown id)."""
    rows = conn.execute("SELECT * FROM detections WHERE image_id = ? ORDER BY id",
                        (_to_db(_INT, image_id, "image_id"),))
    return [_row_to(Detection, r, _DETECTION_KINDS, {}, extra=("image_id", "id")) for r in rows]


__all__ = [
    "SCHEMA_VERSION", "MIGRATIONS", "ProductsDBError", "MSRecord", "ImageRecord", "Detection",
    "migrate", "connect", "connect_readonly", "upsert_ms", "update_ms_stage", "get_ms", "list_ms",
    "upsert_image", "get_image", "get_image_by_path", "list_images", "count_images", "count_ms", "ms_paths_with_images",
    "replace_detections", "get_detections",
]
