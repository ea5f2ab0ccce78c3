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

from ..conversion.grouping import check_subband_name
from ..telescope import GROUP_SECONDS
from . import sqlite_base as _base

log = logging.getLogger(__name__)

from .queue_schema import (COLLECTING, COMPLETED, FAILED, FILE_COLUMNS, GROUP_ID_FORMAT,  # noqa: F401
                           HEARTBEAT_COLUMNS, HELD, IN_PROGRESS, METRIC_COLUMNS, METRIC_FIELDS,
                           MIGRATIONS, PENDING, QUEUE_COLUMNS, SCHEMA_VERSION, STATES, WHAT, QueueDBError,
                           _iso, _to_unix, _unix)
from .queue_metrics import Heartbeat, beat, get_heartbeat, get_metrics, list_metrics, record_metrics  # noqa: F401
from .queue_core import (AddFileResult, GroupRow, _files, _require, _row_to_group, _set, _tx,  # noqa: F401
                         connect, connect_readonly, get_group)
from .queue_files import (ExtraFile, conflict_reason, conflicts, count_extra_files, decide_duplicate,  # noqa: F401
                          get_extra, hold_for_operator, list_extra_files, release, set_aside, unchecked_duplicates)


# --------------------------------------------------------------------------- collecting


def _registered(conn: sqlite3.Connection, gid: str, sb: int):
    """The row of the file registered for subband ``sb`` of group ``gid``, or None."""
    return conn.execute("SELECT path FROM subband_files WHERE group_id = ? AND subband_idx = ?", (gid, sb)).fetchone()


def _duplicate_subband(conn: sqlite3.Connection, apath: str, other, gid: str, sb: int, state: str, t: float,
                       when: str = "") -> AddFileResult:
    """Set ``apath`` aside as a second file for a subband that ``other`` already fills."""
    set_aside(conn, apath, "duplicate-unchecked", f"second file for sb{sb:02d} (registered: "
              f"{os.path.basename(other['path'])}){when}", gid, sb, now=t)
    return AddFileResult(gid, sb, "duplicate-subband", state, reason="duplicate subband", other_path=other["path"])


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
        ``status`` ``'added'``, or, not added to a group: ``'ignored'`` (not a
        valid subband file name, or a subband index at or above
        ``expected_subbands``: recorded in ``extra_files`` with the reason;
        ``_incomplete`` files are skipped without a record), ``'duplicate-path'``
        (path already registered), ``'known'`` (already set aside earlier),
        ``'duplicate-subband'`` (the group has that subband: recorded as
        ``duplicate-unchecked`` for the daemon to compare, ``other_path`` names
        the registered file), ``'late'`` (the nearest group within the
        tolerance was already claimed or finished: recorded).  Never raises for
        a bad name.
    """
    if isinstance(expected_subbands, bool) or not isinstance(expected_subbands, int) or expected_subbands < 1:
        raise QueueDBError(f"expected_subbands={expected_subbands!r} must be a positive integer")
    if not isinstance(tolerance_s, (int, float)) or not tolerance_s >= 0:
        raise QueueDBError(f"tolerance_s={tolerance_s!r} must be a non-negative number")
    chk = check_subband_name(path, expected_subbands)
    if chk.file is None:
        if chk.in_progress:
            log.debug("ingest queue: skipping %s (%s)", path, chk.reason)
        elif get_extra(conn, path) is None:
            set_aside(conn, path, "ignored", chk.reason, now=now)
        return AddFileResult(None, None, "ignored", reason=chk.reason)
    parsed = chk.file
    t = _unix(now)
    apath, sb = os.path.abspath(os.fspath(path)), parsed.subband
    with _tx(conn):
        dup = conn.execute("SELECT f.group_id, f.subband_idx, q.state FROM subband_files f LEFT JOIN ingest_queue q "
                           "ON q.group_id = f.group_id WHERE f.path = ?", (apath,)).fetchone()
        if dup is not None:
            return AddFileResult(dup["group_id"], int(dup["subband_idx"]), "duplicate-path", dup["state"])
        known = get_extra(conn, apath)
        if known is not None:
            return AddFileResult(known.group_id, known.subband_idx, "known", reason=known.reason)
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
            gid, state = near[0][1], near[0][2]
            other = _registered(conn, gid, sb)
            if other is not None:
                return _duplicate_subband(conn, apath, other, gid, sb, state, t,
                                          f", arrived when the group was {state}")
            reason = f"arrived after group {gid} was {state}"
            set_aside(conn, apath, "late", reason, gid, sb, now=t)
            return AddFileResult(gid, sb, "late", state, reason=reason)
        else:
            gid, state = parsed.timestamp.strftime(GROUP_ID_FORMAT), COLLECTING
            conn.execute("INSERT INTO ingest_queue (group_id, state, received_at, last_update, expected_subbands, "
                         "retry_count, chunk_minutes, next_attempt_at, partial) VALUES (?, ?, ?, ?, ?, 0, ?, 0, 0)",
                         (gid, COLLECTING, _iso(t), _iso(t), expected_subbands, chunk_minutes))
        other = _registered(conn, gid, sb)
        if other is not None:
            return _duplicate_subband(conn, apath, other, gid, sb, state, t)
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
        while True:
            row = conn.execute("SELECT group_id FROM ingest_queue WHERE state = ? AND COALESCE(next_attempt_at, 0) "
                               "<= ? ORDER BY group_id LIMIT 1", (PENDING, t)).fetchone()
            if row is None:
                return None
            reason = conflict_reason(conn, row["group_id"])
            if reason is None:
                break
            hold_for_operator(conn, row["group_id"], reason, now=t)
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
    """Put the held groups whose delay has passed back to ``pending``; returns their ids, oldest first.

    Groups held for an operator (``operator_hold``) stay held.
    """
    t = _unix(now)
    with _tx(conn):
        ids = [r[0] for r in conn.execute("SELECT group_id FROM ingest_queue WHERE state = ? AND "
                                          "COALESCE(next_attempt_at, 0) <= ? AND COALESCE(operator_hold, 0) = 0 "
                                          "ORDER BY group_id", (HELD, t))]
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


def defer(conn: sqlite3.Connection, group_id: str, error: str, retry_after_s: float = 60.0,
          now: float | datetime | None = None) -> None:
    """An environment fault (disk full, read-only, damaged database): back to pending after ``retry_after_s``.

    Not the group's fault: ``retry_count`` is unchanged, the error is recorded, nothing is moved.
    """
    t = _unix(now)
    with _tx(conn):
        _require(conn, group_id, (IN_PROGRESS, PENDING), "defer")
        _set(conn, group_id, t, state=PENDING, error=str(error), next_attempt_at=t + float(retry_after_s))
    log.error("ingest queue: group %s waits %.0f s for the environment to recover: %s", group_id,
              retry_after_s, error)


def clear_reconvert(conn: sqlite3.Connection, group_id: str, now: float | datetime | None = None) -> None:
    """Forget the forced reconversion once the MS has been rebuilt."""
    with _tx(conn):
        _set(conn, group_id, _unix(now), reconvert=0)


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
             operator_hold=0, **extra)
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
