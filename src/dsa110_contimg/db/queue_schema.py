"""Schema of the ingest queue: states, the four tables and their numbered migrations."""

from __future__ import annotations

import math
import sqlite3
from datetime import datetime, timezone
from typing import Any

from ..errors import ContimgError
from . import sqlite_base as _base

WHAT = "ingest queue database"
"""Name used in error messages."""

COLLECTING, PENDING, IN_PROGRESS, COMPLETED, FAILED, HELD = (
    "collecting", "pending", "in_progress", "completed", "failed", "held")
STATES = (COLLECTING, PENDING, IN_PROGRESS, COMPLETED, FAILED, HELD)
"""Every state of a group."""
GROUP_ID_FORMAT = "%Y-%m-%dT%H:%M:%S"
"""Format of ``group_id`` (the timestamp of the group's first file)."""


class QueueDBError(ContimgError, ValueError):
    """Bad input, an unknown group or a forbidden state change; the message names the group."""


# --------------------------------------------------------------------------- times


def _unix(now: float | datetime | None) -> float:
    """``now`` (unix time, datetime (naive = UTC) or ``None`` for the current time) -> unix time."""
    if now is None:
        return datetime.now(timezone.utc).timestamp()
    if isinstance(now, datetime):
        return (now if now.tzinfo else now.replace(tzinfo=timezone.utc)).timestamp()
    if isinstance(now, bool) or not isinstance(now, (int, float)) or not math.isfinite(now):
        raise QueueDBError(f"now={now!r} must be a unix time or a datetime")
    return float(now)


def _iso(t: float) -> str:
    """Unix time -> ISO 8601 UTC string ending in ``Z``."""
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _to_unix(value: Any) -> float:
    """Stored time (ISO string, or a unix number from an older queue) -> unix time."""
    if isinstance(value, (int, float)):
        return float(value)
    return _unix(datetime.fromisoformat(str(value).replace("Z", "+00:00")))


# --------------------------------------------------------------------------- schema

QUEUE_COLUMNS: list[tuple[str, str]] = [
    ("group_id", "TEXT PRIMARY KEY"), ("state", "TEXT NOT NULL"), ("received_at", "TEXT"),
    ("last_update", "TEXT"), ("expected_subbands", "INTEGER"), ("retry_count", "INTEGER DEFAULT 0"),
    ("error", "TEXT"), ("checkpoint_path", "TEXT"), ("processing_stage", "TEXT"), ("chunk_minutes", "REAL"),
    ("next_attempt_at", "REAL DEFAULT 0"), ("partial", "INTEGER DEFAULT 0"), ("notes", "TEXT"),
    ("hold_reason", "TEXT"),
]
"""Columns of ``ingest_queue`` created by migration 1."""
QUEUE_COLUMNS_V2: list[tuple[str, str]] = [("operator_hold", "INTEGER DEFAULT 0"), ("reconvert", "INTEGER DEFAULT 0")]
"""Columns added by migration 2: held until an operator resolves it; rebuild the MS on the next conversion."""
EXTRA_KINDS = ("ignored", "late", "duplicate-unchecked", "duplicate", "conflict", "rejected")
"""Kinds of ``extra_files``: a name or file set aside, a file after its group was claimed, a second file for a
subband (not yet compared / identical copy dropped / different content, group held / not kept by the operator)."""
EXTRA_COLUMNS: list[tuple[str, str]] = [
    ("path", "TEXT PRIMARY KEY"), ("name", "TEXT NOT NULL"), ("kind", "TEXT NOT NULL"), ("reason", "TEXT"),
    ("group_id", "TEXT"), ("subband_idx", "INTEGER"), ("added_at", "TEXT"), ("resolved_at", "TEXT")]
"""Columns of ``extra_files``: every file the queue saw but does not process as a group's subband."""

FILE_COLUMNS: list[tuple[str, str]] = [
    ("group_id", "TEXT NOT NULL REFERENCES ingest_queue(group_id) ON DELETE CASCADE"),
    ("subband_idx", "INTEGER NOT NULL"), ("path", "TEXT UNIQUE NOT NULL"), ("added_at", "TEXT"),
]
"""Columns of ``subband_files`` (primary key ``(group_id, subband_idx)``)."""
METRIC_FIELDS: tuple[str, ...] = (
    "load_time", "phase_time", "write_time", "total_time", "cal_k_time", "cal_b_time", "cal_g_time",
    "apply_time", "image_time", "qa_time", "latency_s")
"""Numeric columns of ``performance_metrics`` (seconds)."""
METRIC_COLUMNS: list[tuple[str, str]] = (
    [("group_id", "TEXT PRIMARY KEY"), ("writer_type", "TEXT"), ("recorded_at", "TEXT")]
    + [(f, "REAL") for f in METRIC_FIELDS] + [("extra_json", "TEXT")])
"""Columns of ``performance_metrics``; ``extra_json`` holds the keys without a column."""
HEARTBEAT_COLUMNS: list[tuple[str, str]] = [
    ("name", "TEXT PRIMARY KEY"), ("pid", "INTEGER"), ("host", "TEXT"), ("updated_at", "TEXT"),
    ("info_json", "TEXT")]
"""Columns of ``heartbeat``."""


def _migration_1(conn: sqlite3.Connection) -> None:
    """Create the four tables (or complete the columns of an older queue) and their indices."""
    for table, cols, extra in (("ingest_queue", QUEUE_COLUMNS, ""),
                               ("subband_files", FILE_COLUMNS, ",\n  PRIMARY KEY (group_id, subband_idx)"),
                               ("performance_metrics", METRIC_COLUMNS, ""),
                               ("heartbeat", HEARTBEAT_COLUMNS, "")):
        conn.execute(f"CREATE TABLE IF NOT EXISTS {table} (\n  "
                     + ",\n  ".join(f"{n} {t}" for n, t in cols) + extra + "\n)")
        _base.add_missing_columns(conn, table, cols)
    conn.execute("CREATE INDEX IF NOT EXISTS idx_ingest_queue_state ON ingest_queue (state, group_id)")
    conn.execute("CREATE INDEX IF NOT EXISTS idx_subband_files_group ON subband_files (group_id)")
    conn.execute("CREATE UNIQUE INDEX IF NOT EXISTS idx_subband_files_path ON subband_files (path)")
    conn.execute("CREATE UNIQUE INDEX IF NOT EXISTS idx_metrics_group ON performance_metrics (group_id)")


def _migration_2(conn: sqlite3.Connection) -> None:
    """Operator holds, forced reconversion, and the ``extra_files`` table (set-aside names, duplicates)."""
    _base.add_missing_columns(conn, "ingest_queue", QUEUE_COLUMNS_V2)
    conn.execute("CREATE TABLE IF NOT EXISTS extra_files (\n  "
                 + ",\n  ".join(f"{n} {t}" for n, t in EXTRA_COLUMNS) + "\n)")
    conn.execute("CREATE INDEX IF NOT EXISTS idx_extra_files_group ON extra_files (group_id, kind)")
    conn.execute("CREATE INDEX IF NOT EXISTS idx_extra_files_kind ON extra_files (kind, added_at)")


MIGRATIONS = [_migration_1, _migration_2]
"""``MIGRATIONS[i]`` brings the schema from version ``i`` to ``i + 1``."""
SCHEMA_VERSION = len(MIGRATIONS)
"""Version stored in ``PRAGMA user_version`` once every migration has run."""
