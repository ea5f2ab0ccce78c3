"""Core records and helpers of the ingest queue (rows, connections, transactions); see :mod:`.queue`."""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass, field, fields
from typing import Any

from . import sqlite_base as _base
from .queue_schema import IN_PROGRESS, MIGRATIONS, WHAT, QueueDBError, _iso  # noqa: F401

# --------------------------------------------------------------------------- records


@dataclass
class AddFileResult:
    """Outcome of :func:`add_file`."""

    group_id: str | None
    """Group the file belongs to (``None`` when ``status == 'ignored'``)."""
    subband_idx: int | None
    """Subband index parsed from the name (``None`` when ignored)."""
    status: str
    """``'added'``, ``'duplicate-path'``, ``'duplicate-subband'``, ``'late'``, ``'ignored'`` or ``'known'``
    (already set aside by an earlier call)."""
    state: str | None = None
    """State of the group after the call."""
    reason: str | None = field(default=None, compare=False)
    """Why the file was not added (``None`` when added)."""
    other_path: str | None = field(default=None, compare=False)
    """For ``'duplicate-subband'``: the file already registered for that subband."""


@dataclass
class GroupRow:
    """One group of ``ingest_queue`` with its files."""

    group_id: str
    """Timestamp of the group's first file (``YYYY-mm-ddTHH:MM:SS``), the key."""
    state: str
    """One of :data:`STATES`."""
    received_at: str | None = None
    """When the first file was registered (ISO UTC)."""
    last_update: str | None = None
    """Last change of the row (ISO UTC)."""
    expected_subbands: int = 16
    """Number of subbands a complete group has."""
    retry_count: int = 0
    """Failed attempts so far (reset by :func:`retry`)."""
    error: str | None = None
    """Last error."""
    checkpoint_path: str | None = None
    """Product of the last finished stage (e.g. the Measurement Set)."""
    processing_stage: str | None = None
    """Last finished stage; a restart resumes after it."""
    chunk_minutes: float | None = None
    """Length of the group (min), when known."""
    next_attempt_at: float = 0.0
    """Unix time before which the group is not claimed (pending) or released (held)."""
    partial: bool = False
    """Promoted to pending by the timeout with subbands missing."""
    notes: str | None = None
    """Free-form note, e.g. which subbands a partial group lacks."""
    hold_reason: str | None = None
    """Why the group is held (waiting for a calibration set, or for an operator)."""
    operator_hold: bool = False
    """Held until an operator resolves it (``contimg queue release``); never released by time."""
    reconvert: bool = False
    """The next conversion rebuilds the MS even if one exists (an operator swapped a subband file)."""
    files: dict[int, str] = field(default_factory=dict)
    """Subband index -> path."""

    @property
    def missing_subbands(self) -> list[int]:
        """Subband indices ``0 .. expected_subbands-1`` without a file."""
        return [i for i in range(self.expected_subbands) if i not in self.files]


# --------------------------------------------------------------------------- helpers


def connect(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """Open (creating if needed) the queue read-write, WAL mode; :class:`QueueDBError` when its schema is too new."""
    conn = _base.open_database(path, MIGRATIONS, WHAT, QueueDBError)
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def connect_readonly(path: str | os.PathLike[str]) -> sqlite3.Connection | None:
    """Open the queue read-only (e.g. for the API); ``None`` when missing or uninitialised, never creates it.

    Raises :class:`QueueDBError` when the file is not an SQLite database.
    """
    return _base.open_initialised_readonly(path, WHAT, QueueDBError)


def _tx(conn: sqlite3.Connection):
    return _base.transaction(conn, "queue")


def _files(conn: sqlite3.Connection, group_ids: list[str]) -> dict[str, dict[int, str]]:
    out: dict[str, dict[int, str]] = {g: {} for g in group_ids}
    for r in conn.execute("SELECT group_id, subband_idx, path FROM subband_files WHERE group_id IN "
                          "(SELECT value FROM json_each(?)) ORDER BY subband_idx", (json.dumps(group_ids),)):
        out[r["group_id"]][int(r["subband_idx"])] = r["path"]
    return out


def _row_to_group(row: sqlite3.Row, files: dict[int, str]) -> GroupRow:
    d = dict(row)
    g = GroupRow(**{f.name: d[f.name] for f in fields(GroupRow) if d.get(f.name) is not None}, files=files)
    g.partial, g.next_attempt_at = bool(g.partial), float(g.next_attempt_at)
    g.operator_hold, g.reconvert = bool(g.operator_hold), bool(g.reconvert)
    return g


def get_group(conn: sqlite3.Connection, group_id: str) -> GroupRow | None:
    """The group ``group_id`` with its files, or ``None``."""
    row = conn.execute("SELECT * FROM ingest_queue WHERE group_id = ?", (group_id,)).fetchone()
    return None if row is None else _row_to_group(row, _files(conn, [group_id])[group_id])


def _require(conn: sqlite3.Connection, group_id: str, allowed: tuple[str, ...], action: str) -> str:
    row = conn.execute("SELECT state FROM ingest_queue WHERE group_id = ?", (group_id,)).fetchone()
    if row is None:
        raise QueueDBError(f"cannot {action} group {group_id!r}: not in the {WHAT}")
    if row["state"] not in allowed:
        raise QueueDBError(f"cannot {action} group {group_id!r}: it is {row['state']!r}, "
                           f"expected {' or '.join(map(repr, allowed))}")
    return row["state"]


def _set(conn: sqlite3.Connection, group_id: str, now: float, **values: Any) -> None:
    values["last_update"] = _iso(now)
    conn.execute(f"UPDATE ingest_queue SET {', '.join(f'{k} = :{k}' for k in values)} WHERE group_id = :gid",
                 {**values, "gid": group_id})
