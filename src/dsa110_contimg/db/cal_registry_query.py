"""Calibration registry queries: a set by name, the sets, and the set valid at a time (read-only).

Part of :mod:`dsa110_contimg.db.cal_registry` (which re-exports these functions);
a connection from its ``connect`` or ``connect_readonly``.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any, Sequence

from .cal_registry_schema import CalRegistryError, CalSet, CalTableEntry
from .sqlite_base import finite_float

STATUSES = ("active", "retired")
"""Allowed values of ``caltables.status``."""


def _loads(text: str | None) -> dict[str, Any] | None:
    if text is None or text == "":
        return None
    try:
        return json.loads(text)
    except ValueError:
        return {"_unparsed": text}


def _finite(value: Any, what: str) -> float:
    return finite_float(value, what, CalRegistryError)


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
