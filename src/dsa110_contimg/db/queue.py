"""Ingest queue of the streaming daemon (``PIPELINE_QUEUE_DB``): subband groups, their state, timings, heartbeat.

Tables: ``ingest_queue`` (one row per observation, ``group_id`` = timestamp of
its first file: state, retry bookkeeping and the last finished
``processing_stage`` a restart resumes from), ``subband_files`` (one file per
subband of a group, a path registered once), ``performance_metrics``
(per-group timings) and ``heartbeat`` (liveness of the daemons).

States::

    collecting -> pending -> in_progress -> completed
                     ^            |-> pending (retry with backoff) -> ... -> failed
                     |            `-> held (waiting for a calibration set)
                     `-- release_held / retry / reset_stale

A group becomes ``pending`` once all its expected subbands are present
(:func:`add_file`), or flagged *partial* after a timeout
(:func:`promote_timed_out`; the daemon's ``--allow-partial`` rules decide).
Every write runs in one transaction (a savepoint inside an open one); times are
UTC ISO strings, plus the unix time ``next_attempt_at`` before which a
pending/held group is not claimed/released.  ``now`` arguments take a unix
time or a :class:`~datetime.datetime` (naive = UTC).

Examples
--------
>>> import tempfile, os
>>> conn = connect(os.path.join(tempfile.mkdtemp(), "queue.sqlite3"))
>>> add_file(conn, "/data/2025-10-02T00:00:00_sb00.hdf5", expected_subbands=2).status
'added'
>>> add_file(conn, "/data/2025-10-02T00:00:01_sb01.hdf5", expected_subbands=2).state
'pending'
>>> g = claim_next(conn)
>>> g.group_id, g.state, sorted(g.files)
('2025-10-02T00:00:00', 'in_progress', [0, 1])
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any

from ..conversion.grouping import parse_subband_name
from . import sqlite_base as _base

log = logging.getLogger(__name__)

from .queue_schema import (COLLECTING, COMPLETED, FAILED, FILE_COLUMNS, GROUP_ID_FORMAT,  # noqa: F401
                           GROUP_SECONDS, HEARTBEAT_COLUMNS, HELD, IN_PROGRESS, METRIC_COLUMNS, METRIC_FIELDS,
                           MIGRATIONS, PENDING, QUEUE_COLUMNS, SCHEMA_VERSION, STATES, WHAT, QueueDBError,
                           _iso, _to_unix, _unix)
from .queue_metrics import Heartbeat, beat, get_heartbeat, get_metrics, list_metrics, record_metrics  # noqa: F401


# --------------------------------------------------------------------------- records


@dataclass
class AddFileResult:
    """Outcome of :func:`add_file`."""

    group_id: str | None
    """Group the file belongs to (``None`` when ``status == 'ignored'``)."""
    subband_idx: int | None
    """Subband index parsed from the name (``None`` when ignored)."""
    status: str
    """``'added'``, ``'duplicate-path'``, ``'duplicate-subband'``, ``'late'`` or ``'ignored'``."""
    state: str | None = None
    """State of the group after the call."""


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
    """Why the group is held (waiting for a calibration set)."""
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


# --------------------------------------------------------------------------- collecting


def add_file(conn: sqlite3.Connection, path: str | os.PathLike[str], tolerance_s: float = 30.0,
             expected_subbands: int = 16, chunk_minutes: float | None = None,
             now: float | datetime | None = None) -> AddFileResult:
    """Register one subband file (only its name is parsed; stored absolute), creating or completing its group.

    The file joins the *collecting* or *pending* group whose ``group_id`` is
    nearest its timestamp within ``tolerance_s``, else a new collecting group
    ``group_id = timestamp`` is created with ``expected_subbands`` and
    ``chunk_minutes``.  A group holding all its expected subbands becomes
    pending (and stops being partial).  ``now`` is the registration time.

    Returns
    -------
    AddFileResult
        ``status`` ``'added'``, or, with nothing stored: ``'ignored'`` (not a
        subband file name, e.g. ``_incomplete``), ``'duplicate-path'`` (path
        already registered), ``'duplicate-subband'`` (the group has that
        subband), ``'late'`` (the nearest group within the tolerance was
        already claimed or finished).
    """
    if isinstance(expected_subbands, bool) or not isinstance(expected_subbands, int) or expected_subbands < 1:
        raise QueueDBError(f"expected_subbands={expected_subbands!r} must be a positive integer")
    if not isinstance(tolerance_s, (int, float)) or not tolerance_s >= 0:
        raise QueueDBError(f"tolerance_s={tolerance_s!r} must be a non-negative number")
    parsed = parse_subband_name(path)
    if parsed is None:
        log.debug("ingest queue: ignoring %s (not a subband file name)", path)
        return AddFileResult(None, None, "ignored")
    t = _unix(now)
    apath, sb = os.path.abspath(os.fspath(path)), parsed.subband
    with _tx(conn):
        dup = conn.execute("SELECT f.group_id, f.subband_idx, q.state FROM subband_files f LEFT JOIN ingest_queue q "
                           "ON q.group_id = f.group_id WHERE f.path = ?", (apath,)).fetchone()
        if dup is not None:
            return AddFileResult(dup["group_id"], int(dup["subband_idx"]), "duplicate-path", dup["state"])
        lo, hi = (parsed.timestamp + timedelta(seconds=s * tolerance_s) for s in (-1, 1))
        near = [(abs((datetime.strptime(r["group_id"], GROUP_ID_FORMAT) - parsed.timestamp).total_seconds()),
                 r["group_id"], r["state"])
                for r in conn.execute("SELECT group_id, state FROM ingest_queue WHERE group_id BETWEEN ? AND ?",
                                      (lo.strftime(GROUP_ID_FORMAT), hi.strftime(GROUP_ID_FORMAT)))]
        near.sort()
        joinable = [n for n in near if n[2] in (COLLECTING, PENDING)]
        if joinable:
            gid, state = joinable[0][1], joinable[0][2]
        elif near:
            log.warning("ingest queue: %s arrived after group %s was %s; ignored", apath, near[0][1], near[0][2])
            return AddFileResult(near[0][1], sb, "late", near[0][2])
        else:
            gid, state = parsed.timestamp.strftime(GROUP_ID_FORMAT), COLLECTING
            conn.execute("INSERT INTO ingest_queue (group_id, state, received_at, last_update, expected_subbands, "
                         "retry_count, chunk_minutes, next_attempt_at, partial) VALUES (?, ?, ?, ?, ?, 0, ?, 0, 0)",
                         (gid, COLLECTING, _iso(t), _iso(t), expected_subbands, chunk_minutes))
        other = conn.execute("SELECT path FROM subband_files WHERE group_id = ? AND subband_idx = ?",
                             (gid, sb)).fetchone()
        if other is not None:
            log.warning("ingest queue: %s duplicates subband %02d of group %s (%s); ignored",
                        apath, sb, gid, other["path"])
            return AddFileResult(gid, sb, "duplicate-subband", state)
        conn.execute("INSERT INTO subband_files (group_id, subband_idx, path, added_at) VALUES (?, ?, ?, ?)",
                     (gid, sb, apath, _iso(t)))
        row = conn.execute("SELECT expected_subbands, (SELECT COUNT(*) FROM subband_files f WHERE f.group_id = "
                           "q.group_id) AS n FROM ingest_queue q WHERE group_id = ?", (gid,)).fetchone()
        if row["n"] >= (row["expected_subbands"] or expected_subbands):
            state = PENDING
            _set(conn, gid, t, state=PENDING, partial=0, notes=None)
        else:
            _set(conn, gid, t)
    return AddFileResult(gid, sb, "added", state)


def promote_timed_out(conn: sqlite3.Connection, now: float | datetime | None = None,
                      timeout_s: float = 2 * GROUP_SECONDS) -> list[str]:
    """Make collecting groups first registered over ``timeout_s`` ago pending, flagged ``partial``.

    Returns the promoted group ids, oldest first; their ``notes`` list the missing subbands.
    """
    t = _unix(now)
    promoted = []
    with _tx(conn):
        rows = conn.execute("SELECT group_id, received_at FROM ingest_queue WHERE state = ? ORDER BY group_id",
                            (COLLECTING,)).fetchall()
        for r in rows:
            if r["received_at"] is not None and t - _to_unix(r["received_at"]) <= timeout_s:
                continue
            g = get_group(conn, r["group_id"])
            note = (f"partial: {len(g.files)}/{g.expected_subbands} subbands after {timeout_s:.0f} s, missing "
                    + ",".join(f"sb{i:02d}" for i in g.missing_subbands))
            _set(conn, g.group_id, t, state=PENDING, partial=1, notes=note)
            log.warning("ingest queue: group %s %s", g.group_id, note)
            promoted.append(g.group_id)
    return promoted


# --------------------------------------------------------------------------- processing


def claim_next(conn: sqlite3.Connection, now: float | datetime | None = None) -> GroupRow | None:
    """Atomically take the oldest pending group due (``next_attempt_at <= now``) and make it ``in_progress``.

    Two connections never claim the same group (the select and the update run
    under one write lock).  Returns the claimed group with its files, or ``None``.
    """
    t = _unix(now)
    with _tx(conn):
        row = conn.execute("SELECT group_id FROM ingest_queue WHERE state = ? AND COALESCE(next_attempt_at, 0) <= ? "
                           "ORDER BY group_id LIMIT 1", (PENDING, t)).fetchone()
        if row is None:
            return None
        _set(conn, row["group_id"], t, state=IN_PROGRESS)
        return get_group(conn, row["group_id"])


def checkpoint(conn: sqlite3.Connection, group_id: str, stage: str, checkpoint_path: str | None = None,
               now: float | datetime | None = None) -> None:
    """Record ``stage`` as the last finished stage of the in-progress group (and its product, when given)."""
    if not isinstance(stage, str) or not stage.strip():
        raise QueueDBError(f"stage must be a non-empty string, got {stage!r}")
    with _tx(conn):
        _require(conn, group_id, (IN_PROGRESS,), "checkpoint")
        values: dict[str, Any] = {"processing_stage": stage.strip()}
        if checkpoint_path is not None:
            values["checkpoint_path"] = os.fspath(checkpoint_path)
        _set(conn, group_id, _unix(now), **values)


def complete(conn: sqlite3.Connection, group_id: str, now: float | datetime | None = None) -> None:
    """Mark the in-progress group ``completed``."""
    with _tx(conn):
        _require(conn, group_id, (IN_PROGRESS,), "complete")
        _set(conn, group_id, _unix(now), state=COMPLETED)


def hold(conn: sqlite3.Connection, group_id: str, reason: str, retry_after_s: float = 300.0,
         now: float | datetime | None = None) -> None:
    """Park the group as ``held`` (waiting for a calibration set); :func:`release_held` retries it after ``retry_after_s``.

    Not a failure: ``retry_count`` is unchanged.
    """
    t = _unix(now)
    with _tx(conn):
        _require(conn, group_id, (IN_PROGRESS, PENDING, HELD), "hold")
        _set(conn, group_id, t, state=HELD, hold_reason=str(reason), next_attempt_at=t + float(retry_after_s))


def release_held(conn: sqlite3.Connection, now: float | datetime | None = None) -> list[str]:
    """Put the held groups whose delay has passed back to ``pending``; returns their ids, oldest first."""
    t = _unix(now)
    with _tx(conn):
        ids = [r[0] for r in conn.execute("SELECT group_id FROM ingest_queue WHERE state = ? AND "
                                          "COALESCE(next_attempt_at, 0) <= ? ORDER BY group_id", (HELD, t))]
        for gid in ids:
            _set(conn, gid, t, state=PENDING)
    return ids


def fail(conn: sqlite3.Connection, group_id: str, error: str, max_retries: int = 3, backoff_s: float = 30.0,
         now: float | datetime | None = None) -> str:
    """Record a failed attempt; returns the new state, ``'pending'`` (retry with backoff) or ``'failed'``.

    ``retry_count`` is incremented; while it is below ``max_retries`` the group
    is retried from ``now + backoff_s * 2**(retry_count - 1)``, else it is failed.
    """
    t = _unix(now)
    with _tx(conn):
        _require(conn, group_id, (IN_PROGRESS, PENDING), "fail")
        count = int(conn.execute("SELECT COALESCE(retry_count, 0) FROM ingest_queue WHERE group_id = ?",
                                 (group_id,)).fetchone()[0]) + 1
        if count < max_retries:
            _set(conn, group_id, t, state=PENDING, retry_count=count, error=str(error),
                 next_attempt_at=t + backoff_s * 2 ** (count - 1))
            log.warning("ingest queue: group %s failed (attempt %d/%d), retry in %.0f s: %s",
                        group_id, count, max_retries, backoff_s * 2 ** (count - 1), error)
            return PENDING
        _set(conn, group_id, t, state=FAILED, retry_count=count, error=str(error))
    log.error("ingest queue: group %s failed after %d attempts: %s", group_id, count, error)
    return FAILED


def fail_permanently(conn: sqlite3.Connection, group_id: str, error: str,
                     now: float | datetime | None = None) -> None:
    """Mark the group ``failed`` without retry (bad input)."""
    with _tx(conn):
        _require(conn, group_id, (COLLECTING, PENDING, IN_PROGRESS, HELD), "fail")
        _set(conn, group_id, _unix(now), state=FAILED, error=str(error))
    log.error("ingest queue: group %s failed permanently: %s", group_id, error)


def reset_stale(conn: sqlite3.Connection, now: float | datetime | None = None) -> list[str]:
    """Start-up housekeeping: groups left ``in_progress`` by a crash go back to ``pending`` (stage kept)."""
    t = _unix(now)
    with _tx(conn):
        ids = [r[0] for r in conn.execute("SELECT group_id FROM ingest_queue WHERE state = ? ORDER BY group_id",
                                          (IN_PROGRESS,))]
        for gid in ids:
            _set(conn, gid, t, state=PENDING, next_attempt_at=t)
    if ids:
        log.warning("ingest queue: %d stale in-progress group(s) back to pending: %s", len(ids), ", ".join(ids))
    return ids


def _requeue(conn: sqlite3.Connection, group_id: str, allowed: tuple[str, ...], action: str, restart: bool,
             now: float | datetime | None, note: str | None = None) -> str:
    """Make a group in one of ``allowed`` states pending now (``retry_count`` 0, error cleared);
    ``restart`` forgets the checkpoint; ``note`` is appended to ``notes``.  Returns the state it left."""
    t = _unix(now)
    with _tx(conn):
        old = _require(conn, group_id, allowed, action)
        extra: dict[str, Any] = {"processing_stage": None, "checkpoint_path": None} if restart else {}
        if note:
            notes = conn.execute("SELECT notes FROM ingest_queue WHERE group_id = ?", (group_id,)).fetchone()[0]
            line = f"{note} at {_iso(t)} (was {old})"
            extra["notes"] = f"{notes}; {line}" if notes else line
        _set(conn, group_id, t, state=PENDING, retry_count=0, error=None, hold_reason=None, next_attempt_at=t,
             **extra)
    return old


def retry(conn: sqlite3.Connection, group_id: str, restart: bool = False,
          now: float | datetime | None = None) -> None:
    """Operator retry: a failed, held or backing-off pending group becomes pending now, ``retry_count`` 0.

    ``restart=True`` also forgets the checkpoint (processing starts from the first stage).
    """
    _requeue(conn, group_id, (FAILED, HELD, PENDING), "retry", restart, now)


def reprocess(conn: sqlite3.Connection, group_id: str, requested_by: str = "operator",
              now: float | datetime | None = None) -> str:
    """Operator request to process a group again from its first stage; returns the state it left.

    Allowed from ``completed``, ``failed``, ``held`` and ``pending`` (not while it is
    collecting or in progress).  The checkpoint is forgotten, so the daemon re-runs
    every stage (conversion is skipped when its MS exists); the request is noted.
    """
    old = _requeue(conn, group_id, (COMPLETED, FAILED, HELD, PENDING), "reprocess", True, now,
                   note=f"reprocess requested by {requested_by}")
    log.info("ingest queue: group %s queued again by %s (was %s)", group_id, requested_by, old)
    return old


# --------------------------------------------------------------------------- reading


def list_groups(conn: sqlite3.Connection, state: str | None = None, limit: int = 100,
                offset: int = 0) -> list[GroupRow]:
    """Groups (all, or those in ``state``), newest ``group_id`` first, with their files."""
    if state is not None and state not in STATES:
        raise QueueDBError(f"unknown state {state!r}; expected one of {', '.join(STATES)}")
    for name, v in (("limit", limit), ("offset", offset)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise QueueDBError(f"{name}={v!r} must be a non-negative integer")
    where, args = ("WHERE state = ?", [state]) if state else ("", [])
    rows = conn.execute(f"SELECT * FROM ingest_queue {where} ORDER BY group_id DESC LIMIT ? OFFSET ?",
                        [*args, limit, offset]).fetchall()
    files = _files(conn, [r["group_id"] for r in rows])
    return [_row_to_group(r, files[r["group_id"]]) for r in rows]


def counts_by_state(conn: sqlite3.Connection) -> dict[str, int]:
    """Number of groups in each state (every state of :data:`STATES` present, 0 when empty)."""
    counts = dict.fromkeys(STATES, 0)
    for r in conn.execute("SELECT state, COUNT(*) FROM ingest_queue GROUP BY state"):
        counts[r[0]] = r[1]
    return counts
