"""Calibration registry: which calibration tables to apply at a given time.

One SQLite table, ``caltables``, holds one row per CASA calibration table.  The
rows of one solve (e.g. the K, B and G tables from one calibrator transit) form
a *set* that shares a name, a validity window, a status and its provenance; the
``order_index`` of each row is the order in which the tables are applied.

A set is valid from ``valid_start_mjd`` (by default the calibrator transit) to
``valid_end_mjd`` (by default the start plus :data:`DEFAULT_VALIDITY_HOURS`),
both ends inclusive.  :func:`active_set_at` picks, among the *active* sets whose
window contains a time, the one whose start is nearest to that time (ties: the
most recently created).  Retired sets are never selected but stay in the
registry for provenance.

This module owns the schema: :data:`SCHEMA_VERSION` and the numbered
:data:`MIGRATIONS`, applied by :func:`connect` through ``PRAGMA user_version``,
and the writes; the queries live in :mod:`.cal_registry_query` and are
available here too (``reg.active_set_at``).

Examples
--------
>>> import tempfile, os
>>> d = tempfile.mkdtemp()
>>> os.mkdir(os.path.join(d, "cal.G"))
>>> conn = connect(os.path.join(d, "reg.sqlite3"))
>>> s = register_set(conn, "3C286_60950", [CalTableEntry(os.path.join(d, "cal.G"), "G", 0)],
...                  valid_start_mjd=60950.25)
>>> active_set_at(conn, 60950.5).set_name
'3C286_60950'
>>> active_set_at(conn, 60951.0) is None
True
"""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import datetime, timezone
from typing import Any, Sequence

from . import sqlite_base as _base
from .cal_registry_query import (STATUSES, _finite, _loads, active_set_at, get_set, list_sets,  # noqa: F401
                                 nearest_active_set, sets_valid_at)
from .cal_registry_schema import (CORE_COLUMNS, MIGRATIONS, PROVENANCE_COLUMNS, SCHEMA_VERSION,  # noqa: F401
                                  CalRegistryError, CalSet, CalTableEntry)

DEFAULT_VALIDITY_HOURS = 12.0
"""Default length of a set's validity window, from the calibrator transit (hours)."""




# --------------------------------------------------------------------------- schema


def migrate(conn: sqlite3.Connection) -> int:
    """Apply the pending migrations in one transaction; returns the schema version before migrating.

    Raises
    ------
    CalRegistryError
        The database is newer than this code, or an old table cannot be migrated.
    """
    return _base.migrate(conn, MIGRATIONS, "calibration registry", CalRegistryError)


def connect(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """Open (creating if needed) the registry at ``path`` and bring its schema up to date.

    Returns
    -------
    sqlite3.Connection
        Autocommit mode (the functions of this module open their own transactions),
        WAL journal, rows as :class:`sqlite3.Row`.
    """
    return _base.open_database(path, MIGRATIONS, "calibration registry", CalRegistryError)


def connect_readonly(path: str | os.PathLike[str]) -> sqlite3.Connection | None:
    """Open the registry read-only (e.g. for the API); ``None`` when missing or uninitialised, never creates it."""
    return _base.open_initialised_readonly(path, "calibration registry", CalRegistryError)


def _transaction(conn: sqlite3.Connection):
    """All-or-nothing block (see :func:`dsa110_contimg.db.sqlite_base.transaction`)."""
    return _base.transaction(conn, "cal_registry")


# --------------------------------------------------------------------------- helpers


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _abspath(path: str | os.PathLike[str]) -> str:
    return os.path.abspath(os.path.expanduser(os.fspath(path)))


def _dumps(value: dict[str, Any] | None, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise CalRegistryError(f"{what} must be a dict, got {type(value).__name__}")
    try:
        return json.dumps(value, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise CalRegistryError(f"{what} is not JSON-serialisable: {exc}") from None


def _append_note(old: str | None, note: str) -> str:
    return note if not old else f"{old}; {note}"


def _missing(paths: Sequence[str]) -> list[str]:
    return [p for p in paths if not os.path.isdir(p)]


# --------------------------------------------------------------------------- API


def register_set(conn: sqlite3.Connection, set_name: str, entries: Sequence[CalTableEntry], *,
                 valid_start_mjd: float, valid_end_mjd: float | None = None,
                 span_hours: float = DEFAULT_VALIDITY_HOURS, cal_field: str | None = None,
                 refant: str | None = None, source_ms_path: str | os.PathLike[str] | None = None,
                 solver_command: str | None = None, solver_version: str | None = None,
                 notes: str = "") -> CalSet:
    """Register the tables of one solve as an active set, all or nothing.

    Every check (tables present on disk, unique paths and order, a sane window,
    JSON-serialisable metadata) runs before anything is written; the rows are
    then inserted in one transaction.

    Parameters
    ----------
    conn
        Connection from :func:`connect`.
    set_name
        Unique name of the set (e.g. ``'0834+555_2025-10-02T00:12'``).
    entries
        The tables; their paths must be existing directories (CASA tables).
    valid_start_mjd
        Start of validity (MJD UTC), normally the calibrator transit.
    valid_end_mjd
        End of validity (MJD UTC); default ``valid_start_mjd + span_hours / 24``.
    span_hours
        Window length when ``valid_end_mjd`` is not given.
    cal_field, refant, source_ms_path, solver_command, solver_version, notes
        Provenance stored on every row.

    Returns
    -------
    CalSet
        The set as stored.

    Raises
    ------
    CalRegistryError
        Missing table(s) on disk (all named), a path or set name already
        registered, duplicate paths/order indices, or an invalid window.  The
        registry is unchanged.
    """
    name = (set_name or "").strip()
    if not name:
        raise CalRegistryError("set_name must be a non-empty string")
    entries = list(entries)
    if not entries:
        raise CalRegistryError(f"set {name!r}: no calibration tables given")
    start = _finite(valid_start_mjd, "valid_start_mjd")
    if valid_end_mjd is None:
        span = _finite(span_hours, "span_hours")
        if span <= 0:
            raise CalRegistryError(f"span_hours={span_hours!r} must be positive")
        end = start + span / 24.0
    else:
        end = _finite(valid_end_mjd, "valid_end_mjd")
    if end <= start:
        raise CalRegistryError(f"set {name!r}: valid_end_mjd {end} is not after valid_start_mjd {start}")

    rows = []
    seen_paths: set[str] = set()
    seen_order: set[int] = set()
    for i, e in enumerate(entries):
        if not isinstance(e, CalTableEntry):
            raise CalRegistryError(f"set {name!r}: entry {i} is a {type(e).__name__}, not a CalTableEntry")
        path = _abspath(e.path)
        if path in seen_paths:
            raise CalRegistryError(f"set {name!r}: table {path} listed twice")
        seen_paths.add(path)
        if not e.table_type or not str(e.table_type).strip():
            raise CalRegistryError(f"set {name!r}: table {path} has no table_type")
        try:
            order = int(e.order_index)
        except (TypeError, ValueError):
            raise CalRegistryError(f"set {name!r}: table {path} has order_index {e.order_index!r}, "
                                   "not an integer") from None
        if order in seen_order:
            raise CalRegistryError(f"set {name!r}: order_index {order} used twice")
        seen_order.add(order)
        rows.append((path, str(e.table_type).strip(), order,
                     _dumps(e.solver_params, f"solver_params of {path}"),
                     _dumps(e.quality_metrics, f"quality_metrics of {path}"),
                     _abspath(e.qa_plot_path) if e.qa_plot_path else None))

    missing = [p for p in (r[0] for r in rows) if not os.path.exists(p)]
    not_dirs = [p for p in (r[0] for r in rows) if os.path.exists(p) and not os.path.isdir(p)]
    if missing or not_dirs:
        parts = []
        if missing:
            parts.append("missing on disk: " + ", ".join(missing))
        if not_dirs:
            parts.append("not a directory (a CASA table is a directory): " + ", ".join(not_dirs))
        raise CalRegistryError(f"set {name!r} not registered; " + "; ".join(parts))

    ms_path = _abspath(source_ms_path) if source_ms_path is not None else None
    created = _now_iso()
    with _transaction(conn):
        if conn.execute("SELECT 1 FROM caltables WHERE set_name = ? LIMIT 1", (name,)).fetchone():
            raise CalRegistryError(f"set {name!r} is already registered")
        marks = ",".join("?" * len(rows))
        taken = conn.execute(f"SELECT path, set_name FROM caltables WHERE path IN ({marks})",
                             [r[0] for r in rows]).fetchall()
        if taken:
            raise CalRegistryError(f"set {name!r} not registered; table(s) already registered: "
                                   + ", ".join(f"{t['path']} (set {t['set_name']!r})" for t in taken))
        try:
            conn.executemany(
                "INSERT INTO caltables (set_name, path, table_type, order_index, cal_field, refant, created_at, "
                "valid_start_mjd, valid_end_mjd, status, notes, source_ms_path, solver_command, solver_version, "
                "solver_params, quality_metrics, qa_plot_path) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'active', ?, ?, ?, ?, ?, ?, ?)",
                [(name, path, ttype, order, cal_field, refant, created, start, end, notes or "", ms_path,
                  solver_command, solver_version, params, metrics, plot)
                 for path, ttype, order, params, metrics, plot in rows])
        except sqlite3.IntegrityError as exc:  # a concurrent writer won the race
            raise CalRegistryError(f"set {name!r} not registered: {exc}") from None
    return get_set(conn, name)


def delete_set(conn: sqlite3.Connection, set_name: str) -> int:
    """Remove every row of ``set_name`` (used when a solve is redone and its tables overwritten).

    Returns
    -------
    int
        Rows removed (0 when the set does not exist).
    """
    with _transaction(conn):
        return conn.execute("DELETE FROM caltables WHERE set_name = ?", (set_name,)).rowcount


def _set_status(conn: sqlite3.Connection, set_name: str, status: str, note: str) -> CalSet:
    with _transaction(conn):
        rows = conn.execute("SELECT id, notes FROM caltables WHERE set_name = ?", (set_name,)).fetchall()
        if not rows:
            raise CalRegistryError(f"unknown calibration set {set_name!r}")
        conn.executemany("UPDATE caltables SET status = ?, notes = ? WHERE id = ?",
                         [(status, _append_note(r["notes"], note), r["id"]) for r in rows])
    return get_set(conn, set_name)


def retire_set(conn: sqlite3.Connection, set_name: str, reason: str = "") -> CalSet:
    """Mark a set retired (never selected again); ``reason`` is appended to its notes.

    Raises
    ------
    CalRegistryError
        No such set.
    """
    note = f"retired {_now_iso()}" + (f": {reason.strip()}" if reason and reason.strip() else "")
    return _set_status(conn, set_name, "retired", note)


def activate_set(conn: sqlite3.Connection, set_name: str) -> CalSet:
    """Mark a set active again (noted in its notes).

    Raises
    ------
    CalRegistryError
        No such set.
    """
    return _set_status(conn, set_name, "active", f"activated {_now_iso()}")


def update_quality(conn: sqlite3.Connection, path: str | os.PathLike[str], metrics: dict[str, Any]) -> dict[str, Any]:
    """Merge ``metrics`` into the quality metrics of the table at ``path``.

    Returns
    -------
    dict
        The metrics now stored.

    Raises
    ------
    CalRegistryError
        The path is not registered, or the metrics are not a JSON-serialisable dict.
    """
    p = _abspath(path)
    _dumps(metrics, f"quality_metrics of {p}")
    with _transaction(conn):
        row = conn.execute("SELECT id, quality_metrics FROM caltables WHERE path = ?", (p,)).fetchone()
        if row is None:
            raise CalRegistryError(f"calibration table {p} is not registered")
        merged = dict(_loads(row["quality_metrics"]) or {})
        merged.update(metrics)
        conn.execute("UPDATE caltables SET quality_metrics = ? WHERE id = ?",
                     (_dumps(merged, f"quality_metrics of {p}"), row["id"]))
    return merged


def verify_set_on_disk(calset: CalSet) -> list[str]:
    """Paths of the set's tables that are not (or no longer) directories on disk, in apply order."""
    return _missing(calset.paths)
