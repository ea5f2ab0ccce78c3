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
:data:`MIGRATIONS`, applied by :func:`connect` through ``PRAGMA user_version``.

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
import math
import os
import sqlite3
from datetime import datetime, timedelta, timezone
from typing import Any, Sequence

from . import sqlite_base as _base
from .cal_registry_schema import (CORE_COLUMNS, MIGRATIONS, PROVENANCE_COLUMNS, SCHEMA_VERSION,  # noqa: F401
                                  CalRegistryError, CalSet, CalTableEntry)

DEFAULT_VALIDITY_HOURS = 12.0
"""Default length of a set's validity window, from the calibrator transit (hours)."""
STATUSES = ("active", "retired")
"""Allowed values of ``caltables.status``."""

_MJD_EPOCH = datetime(1858, 11, 17, tzinfo=timezone.utc)



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


def mjd_to_iso(mjd: float | None) -> str:
    """Format an MJD (UTC) as ``YYYY-MM-DDTHH:MM:SSZ`` (``'-'`` for ``None``)."""
    if mjd is None:
        return "-"
    return (_MJD_EPOCH + timedelta(days=float(mjd))).strftime("%Y-%m-%dT%H:%M:%SZ")


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


def _loads(text: str | None) -> dict[str, Any] | None:
    if text is None or text == "":
        return None
    try:
        return json.loads(text)
    except ValueError:
        return {"_unparsed": text}


def _finite(value: Any, what: str) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise CalRegistryError(f"{what}={value!r} is not a number") from None
    if not math.isfinite(x):
        raise CalRegistryError(f"{what}={value!r} is not finite")
    return x


def _append_note(old: str | None, note: str) -> str:
    return note if not old else f"{old}; {note}"


def _rows_to_sets(rows: Sequence[sqlite3.Row]) -> list[CalSet]:
    groups: dict[str, list[sqlite3.Row]] = {}
    for r in rows:
        groups.setdefault(r["set_name"], []).append(r)
    out = []
    for name, rs in groups.items():
        rs = sorted(rs, key=lambda r: (r["order_index"] if r["order_index"] is not None else 1 << 62, r["id"]))
        first = rs[0]
        starts = [r["valid_start_mjd"] for r in rs if r["valid_start_mjd"] is not None]
        ends = [r["valid_end_mjd"] for r in rs]
        entries = [CalTableEntry(path=r["path"], table_type=r["table_type"], order_index=r["order_index"],
                                 quality_metrics=_loads(r["quality_metrics"]),
                                 solver_params=_loads(r["solver_params"]),
                                 # a reader (the API) may see a registry not yet migrated to version 3
                                 qa_plot_path=r["qa_plot_path"] if "qa_plot_path" in r.keys() else None)
                   for r in rs]
        out.append(CalSet(
            set_name=name, entries=entries,
            valid_start_mjd=min(starts) if starts else None,
            valid_end_mjd=None if any(e is None for e in ends) else max(ends),
            status="active" if all(r["status"] == "active" for r in rs) else "retired",
            cal_field=first["cal_field"], refant=first["refant"], source_ms_path=first["source_ms_path"],
            created_at=max((r["created_at"] for r in rs if r["created_at"]), default=None),
            solver_command=first["solver_command"], solver_version=first["solver_version"],
            notes=first["notes"] or "",
        ))
    return out


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


def get_set(conn: sqlite3.Connection, set_name: str) -> CalSet:
    """Return the set called ``set_name``.

    Raises
    ------
    CalRegistryError
        No such set.
    """
    rows = conn.execute("SELECT * FROM caltables WHERE set_name = ?", (set_name,)).fetchall()
    if not rows:
        raise CalRegistryError(f"unknown calibration set {set_name!r}")
    return _rows_to_sets(rows)[0]


def delete_set(conn: sqlite3.Connection, set_name: str) -> int:
    """Remove every row of ``set_name`` (used when a solve is redone and its tables overwritten).

    Returns
    -------
    int
        Rows removed (0 when the set does not exist).
    """
    with _transaction(conn):
        return conn.execute("DELETE FROM caltables WHERE set_name = ?", (set_name,)).rowcount


def list_sets(conn: sqlite3.Connection, status: str | None = None) -> list[CalSet]:
    """Return the sets, ordered by validity start then name.

    Parameters
    ----------
    status
        ``'active'``, ``'retired'``, or ``None``/``'all'`` for every set.
    """
    if status not in (None, "all") + STATUSES:
        raise CalRegistryError(f"status must be one of {', '.join(STATUSES)} or 'all', got {status!r}")
    sets = _rows_to_sets(conn.execute("SELECT * FROM caltables ORDER BY id").fetchall())
    if status in STATUSES:
        sets = [s for s in sets if s.status == status]
    return sorted(sets, key=lambda s: (s.valid_start_mjd is None, s.valid_start_mjd or 0.0, s.set_name))


def active_set_at(conn: sqlite3.Connection, mjd: float) -> CalSet | None:
    """The active set to apply to data taken at ``mjd``.

    Among the active sets whose window contains ``mjd`` (ends inclusive), the
    one whose validity start (the calibrator transit) is nearest in time to
    ``mjd``; ties go to the most recently created set.

    Parameters
    ----------
    conn
        Connection from :func:`connect`.
    mjd
        Time of the data (MJD UTC).

    Returns
    -------
    CalSet or None
        ``None`` when no active set covers ``mjd`` (see :func:`nearest_active_set`).
    """
    found = sets_valid_at(conn, mjd, limit=1)
    return found[0] if found else None


def sets_valid_at(conn: sqlite3.Connection, mjd: float, limit: int = -1) -> list[CalSet]:
    """Every active set whose window contains ``mjd``, in :func:`active_set_at`'s order of preference."""
    t = _finite(mjd, "mjd")
    rows = conn.execute(
        "SELECT set_name, MIN(valid_start_mjd) AS s, MAX(IFNULL(valid_end_mjd, 1e308)) AS e, "
        "SUM(valid_end_mjd IS NULL) AS n_open, MAX(created_at) AS c, MAX(id) AS i, "
        "SUM(status != 'active') AS n_retired FROM caltables GROUP BY set_name "
        "HAVING n_retired = 0 AND s IS NOT NULL AND s <= :t AND (e >= :t OR n_open > 0) "
        "ORDER BY ABS(:t - s), c DESC, i DESC LIMIT :n", {"t": t, "n": int(limit)}).fetchall()
    return [get_set(conn, r["set_name"]) for r in rows]


def nearest_active_set(conn: sqlite3.Connection, mjd: float, max_gap_hours: float | None = None) -> CalSet | None:
    """The active set covering ``mjd``, else the active set whose window is nearest to it.

    Use this as an explicit fallback when :func:`active_set_at` finds nothing
    (e.g. a late calibrator); the caller decides whether extrapolating is acceptable.

    Parameters
    ----------
    conn
        Connection from :func:`connect`.
    mjd
        Time of the data (MJD UTC).
    max_gap_hours
        Largest allowed distance between ``mjd`` and the nearest window edge;
        ``None`` for no limit.

    Returns
    -------
    CalSet or None
        The set, or ``None`` when there is no active set within ``max_gap_hours``.
    """
    found = active_set_at(conn, mjd)
    if found is not None:
        return found
    t = float(mjd)
    candidates: list[tuple[float, float, CalSet]] = []
    for s in list_sets(conn, "active"):
        if s.valid_start_mjd is None:
            continue
        if t < s.valid_start_mjd:
            gap = s.valid_start_mjd - t
        else:
            gap = t - s.valid_end_mjd if s.valid_end_mjd is not None else 0.0
        candidates.append((gap, abs(t - s.valid_start_mjd), s))
    if not candidates:
        return None
    # most recent first, then (stable) smallest gap, nearest transit
    candidates.sort(key=lambda c: c[2].created_at or "", reverse=True)
    candidates.sort(key=lambda c: (c[0], c[1]))
    gap, _, best = candidates[0]
    if max_gap_hours is not None and gap * 24.0 > float(max_gap_hours):
        return None
    return best


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
