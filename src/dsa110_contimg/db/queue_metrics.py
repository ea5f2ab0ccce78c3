"""Timings and heartbeats of the ingest queue: the ``performance_metrics`` and ``heartbeat`` tables.

Re-exported by :mod:`dsa110_contimg.db.queue`; the daemon writes them, the API reads them.
"""

from __future__ import annotations

import json
import math
import os
import socket
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from . import sqlite_base as _base
from .queue_schema import METRIC_COLUMNS, METRIC_FIELDS, QueueDBError, _iso, _to_unix, _unix


def _tx(conn: sqlite3.Connection):
    return _base.transaction(conn, "queue_metrics")


@dataclass
class Heartbeat:
    """Last sign of life of a daemon."""

    name: str
    """Daemon name, the key."""
    pid: int | None
    """Process id."""
    host: str | None
    """Host name."""
    updated_at: str
    """Time of the last beat (ISO UTC)."""
    info: dict[str, Any] = field(default_factory=dict)
    """Free-form state the daemon reported."""

    def age_s(self, now: float | datetime | None = None) -> float:
        """Seconds since the last beat."""
        return _unix(now) - _to_unix(self.updated_at)


# --------------------------------------------------------------------------- metrics


def record_metrics(conn: sqlite3.Connection, group_id: str, metrics: dict[str, Any],
                   now: float | datetime | None = None) -> None:
    """Insert or update the timings of ``group_id``; only the keys given (non-``None``) change.

    Keys of :data:`METRIC_FIELDS` (seconds) and ``writer_type`` have columns;
    other keys (JSON values) are merged into ``extra_json``.  ``recorded_at``
    is stamped now unless given.  Idempotent.
    """
    if not isinstance(metrics, dict) or "group_id" in metrics:
        raise QueueDBError(f"metrics of group {group_id!r} must be a dict without 'group_id'")
    values: dict[str, Any] = {c: None for c, _ in METRIC_COLUMNS}
    extra: dict[str, Any] = {}
    for k, v in metrics.items():
        if k in METRIC_FIELDS and v is not None:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise QueueDBError(f"metric {k}={v!r} of group {group_id!r} must be a finite number")
            values[k] = float(v)
        elif k in ("writer_type", "recorded_at"):
            values[k] = None if v is None else str(v)
        elif k not in METRIC_FIELDS:
            extra[k] = v
    values.update(group_id=group_id, recorded_at=values["recorded_at"] or _iso(_unix(now)))
    with _tx(conn):
        old = conn.execute("SELECT extra_json FROM performance_metrics WHERE group_id = ?", (group_id,)).fetchone()
        if extra or old is not None:
            merged = {**json.loads(old[0] or "{}"), **extra} if old is not None else extra
            try:
                values["extra_json"] = json.dumps(merged, sort_keys=True) if merged else None
            except (TypeError, ValueError) as exc:
                raise QueueDBError(f"metrics of group {group_id!r} are not JSON-serialisable: {exc}") from None
        cols = list(values)
        sets = ", ".join(f"{c} = COALESCE(excluded.{c}, performance_metrics.{c})" for c in cols if c != "group_id")
        conn.execute(f"INSERT INTO performance_metrics ({', '.join(cols)}) VALUES ({', '.join(':' + c for c in cols)}) "
                     f"ON CONFLICT(group_id) DO UPDATE SET {sets}", values)


def _metrics_row(row: sqlite3.Row) -> dict[str, Any]:
    d = dict(row)
    extra = json.loads(d.pop("extra_json", None) or "{}")
    return {**extra, **d}


def get_metrics(conn: sqlite3.Connection, group_id: str) -> dict[str, Any] | None:
    """Timings of ``group_id`` as one flat dict (columns, then the ``extra_json`` keys), or ``None``."""
    row = conn.execute("SELECT * FROM performance_metrics WHERE group_id = ?", (group_id,)).fetchone()
    return None if row is None else _metrics_row(row)


def list_metrics(conn: sqlite3.Connection, limit: int = 100) -> list[dict[str, Any]]:
    """Timings of the newest ``limit`` groups (by ``group_id``, newest first)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise QueueDBError(f"limit={limit!r} must be a non-negative integer")
    return [_metrics_row(r) for r in
            conn.execute("SELECT * FROM performance_metrics ORDER BY group_id DESC LIMIT ?", (limit,))]


# --------------------------------------------------------------------------- heartbeat


def beat(conn: sqlite3.Connection, name: str, info: dict[str, Any] | None = None,
         now: float | datetime | None = None) -> None:
    """Record that daemon ``name`` (this process and host) is alive, with optional JSON ``info``."""
    try:
        info_json = json.dumps(info or {}, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise QueueDBError(f"heartbeat info of {name!r} is not JSON-serialisable: {exc}") from None
    with _tx(conn):
        conn.execute("INSERT INTO heartbeat (name, pid, host, updated_at, info_json) VALUES (?, ?, ?, ?, ?) "
                     "ON CONFLICT(name) DO UPDATE SET pid = excluded.pid, host = excluded.host, "
                     "updated_at = excluded.updated_at, info_json = excluded.info_json",
                     (name, os.getpid(), socket.gethostname(), _iso(_unix(now)), info_json))


def get_heartbeat(conn: sqlite3.Connection, name: str) -> Heartbeat | None:
    """Last heartbeat of daemon ``name``, or ``None``."""
    r = conn.execute("SELECT * FROM heartbeat WHERE name = ?", (name,)).fetchone()
    if r is None:
        return None
    return Heartbeat(r["name"], r["pid"], r["host"], r["updated_at"], json.loads(r["info_json"] or "{}"))
