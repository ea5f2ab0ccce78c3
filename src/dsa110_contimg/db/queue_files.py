"""Files the ingest queue saw but does not process as a group's subband (``extra_files``).

Kinds (:data:`~.queue_schema.EXTRA_KINDS`):

* ``ignored``: a name that is not a subband file (impossible date, non-ASCII
  digits, subband out of range) or a path that is not a regular file (FIFO,
  symlink, folder): set aside with the reason, never processed.
* ``late``: a file that arrived after its group was claimed or finished.
* ``duplicate-unchecked``: a second file for a subband the group already has,
  not yet compared with it (the daemon compares the contents).
* ``duplicate``: an identical copy, dropped with a note on the group.
* ``conflict``: a copy with different content: the group is held for an
  operator (:func:`release` keeps one of them).
* ``rejected``: the copy the operator did not keep.

Every path is recorded once, so a restart neither re-registers nor re-logs it.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from .queue_core import _require, _set, _tx, get_group
from .queue_schema import (COLLECTING, COMPLETED, EXTRA_KINDS, FAILED, HELD, IN_PROGRESS, PENDING, QueueDBError,
                           _iso, _unix)

log = logging.getLogger(__name__)

OPEN_KINDS = ("duplicate-unchecked", "conflict")
"""Kinds that still need a decision."""


@dataclass(frozen=True)
class ExtraFile:
    """One row of ``extra_files``."""

    path: str
    """File path as seen (undecodable bytes escaped)."""
    name: str
    """File name."""
    kind: str
    """One of :data:`~.queue_schema.EXTRA_KINDS`."""
    reason: str | None
    """Why it is not processed."""
    group_id: str | None
    """Group it belongs to, when known."""
    subband_idx: int | None
    """Subband it claims, when known."""
    added_at: str | None
    """When the queue saw it (ISO UTC)."""
    resolved_at: str | None
    """When a duplicate was decided (ISO UTC)."""


def safe_text(value: str | os.PathLike[str]) -> str:
    """A path as text SQLite can store: undecodable bytes (surrogates) become backslash escapes."""
    return os.fsencode(value).decode("utf-8", "backslashreplace")


def _row(r: sqlite3.Row) -> ExtraFile:
    return ExtraFile(r["path"], r["name"], r["kind"], r["reason"], r["group_id"],
                     None if r["subband_idx"] is None else int(r["subband_idx"]), r["added_at"], r["resolved_at"])


def get_extra(conn: sqlite3.Connection, path: str | os.PathLike[str]) -> ExtraFile | None:
    """The ``extra_files`` row of ``path`` (absolute), or ``None``."""
    r = conn.execute("SELECT * FROM extra_files WHERE path = ?", (safe_text(os.path.abspath(path)),)).fetchone()
    return None if r is None else _row(r)


def set_aside(conn: sqlite3.Connection, path: str | os.PathLike[str], kind: str, reason: str,
              group_id: str | None = None, subband_idx: int | None = None,
              now: float | datetime | None = None) -> bool:
    """Record ``path`` as not processed (``kind``, ``reason``); returns False when it was already recorded.

    Logs one warning the first time a path is recorded, nothing after (restarts included).
    """
    if kind not in EXTRA_KINDS:
        raise QueueDBError(f"unknown extra-file kind {kind!r}; expected one of {', '.join(EXTRA_KINDS)}")
    apath = safe_text(os.path.abspath(path))
    with _tx(conn):
        cur = conn.execute("INSERT OR IGNORE INTO extra_files (path, name, kind, reason, group_id, subband_idx, "
                           "added_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                           (apath, Path(apath).name, kind, reason, group_id, subband_idx, _iso(_unix(now))))
    if cur.rowcount:
        where = f" (group {group_id})" if group_id else ""
        log.warning("ingest queue: %s set aside as %s%s: %s", Path(apath).name, kind, where, reason)
    return bool(cur.rowcount)


def list_extra_files(conn: sqlite3.Connection, group_id: str | None = None, kinds: tuple[str, ...] | None = None,
                     limit: int = 100, offset: int = 0) -> list[ExtraFile]:
    """Rows of ``extra_files`` (of one group and/or some kinds), newest first."""
    where, args = [], []
    if group_id is not None:
        where.append("group_id = ?")
        args.append(group_id)
    if kinds:
        where.append(f"kind IN ({', '.join('?' * len(kinds))})")
        args.extend(kinds)
    sql = ("SELECT * FROM extra_files" + (f" WHERE {' AND '.join(where)}" if where else "")
           + " ORDER BY added_at DESC, path LIMIT ? OFFSET ?")
    if not _has_table(conn):
        return []
    return [_row(r) for r in conn.execute(sql, [*args, int(limit), int(offset)])]


def _has_table(conn: sqlite3.Connection) -> bool:
    """False for a queue of schema v1 opened read-only (not migrated yet): nothing set aside to show."""
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'extra_files'").fetchone() \
        is not None


def count_extra_files(conn: sqlite3.Connection, kinds: tuple[str, ...] | None = None) -> int:
    """Number of ``extra_files`` rows (of some kinds)."""
    if not _has_table(conn):
        return 0
    if not kinds:
        return int(conn.execute("SELECT COUNT(*) FROM extra_files").fetchone()[0])
    return int(conn.execute(f"SELECT COUNT(*) FROM extra_files WHERE kind IN ({', '.join('?' * len(kinds))})",
                            kinds).fetchone()[0])


def unchecked_duplicates(conn: sqlite3.Connection) -> list[tuple[ExtraFile, str | None]]:
    """Duplicates not compared yet, each with the path registered for its subband (``None`` if gone)."""
    out = []
    for r in conn.execute("SELECT e.*, f.path AS registered FROM extra_files e LEFT JOIN subband_files f ON "
                          "f.group_id = e.group_id AND f.subband_idx = e.subband_idx WHERE e.kind = ? "
                          "ORDER BY e.added_at", ("duplicate-unchecked",)):
        out.append((_row(r), r["registered"]))
    return out


def _append_note(conn: sqlite3.Connection, group_id: str, note: str) -> str:
    old = conn.execute("SELECT notes FROM ingest_queue WHERE group_id = ?", (group_id,)).fetchone()
    notes = old[0] if old is not None else None
    return f"{notes}; {note}" if notes else note


def conflicts(conn: sqlite3.Connection, group_id: str) -> list[ExtraFile]:
    """Unresolved different-content duplicates of the group."""
    return [_row(r) for r in conn.execute("SELECT * FROM extra_files WHERE group_id = ? AND kind = ? "
                                          "ORDER BY subband_idx, path", (group_id, "conflict"))]


def conflict_reason(conn: sqlite3.Connection, group_id: str) -> str | None:
    """Operator-readable reason naming both files of every conflict, or ``None`` when there is none."""
    rows = conflicts(conn, group_id)
    if not rows:
        return None
    g = get_group(conn, group_id)
    parts = []
    for c in rows:
        reg = Path(g.files.get(c.subband_idx, "?")).name if g else "?"
        parts.append(f"sb{c.subband_idx:02d}: {reg} and {c.name} differ")
    return (f"duplicate subband with different content ({'; '.join(parts)}); keep one with "
            f"`contimg queue release {group_id} --keep FILE`")


def hold_for_operator(conn: sqlite3.Connection, group_id: str, reason: str,
                      now: float | datetime | None = None) -> None:
    """Hold the group until an operator releases it (never released by time)."""
    t = _unix(now)
    with _tx(conn):
        _require(conn, group_id, (PENDING, IN_PROGRESS, HELD, COMPLETED, FAILED), "hold")
        _set(conn, group_id, t, state=HELD, hold_reason=reason, operator_hold=1, next_attempt_at=t)
    log.warning("ingest queue: group %s held for an operator: %s", group_id, reason)


def decide_duplicate(conn: sqlite3.Connection, path: str, identical: bool,
                     now: float | datetime | None = None) -> str:
    """Record the comparison of a duplicate with the registered file; returns its new kind.

    Identical: ``duplicate`` (dropped, noted on the group).  Different: ``conflict``; the
    group is held for an operator now if it is pending, held or finished (a collecting or
    in-progress group is held when it is next claimed or between two stages).
    """
    t = _unix(now)
    kind = "duplicate" if identical else "conflict"
    with _tx(conn):
        r = conn.execute("SELECT group_id, subband_idx, name FROM extra_files WHERE path = ?", (path,)).fetchone()
        if r is None:
            raise QueueDBError(f"{path}: not a recorded duplicate")
        reason = ("identical copy of the registered file, dropped" if identical
                  else "different content from the registered file")
        conn.execute("UPDATE extra_files SET kind = ?, reason = ?, resolved_at = ? WHERE path = ?",
                     (kind, reason, _iso(t) if identical else None, path))
        gid = r["group_id"]
        if identical and gid is not None:
            _set(conn, gid, t, notes=_append_note(conn, gid, f"identical copy {r['name']} of "
                                                             f"sb{r['subband_idx']:02d} dropped"))
    if not identical and gid is not None:
        state = conn.execute("SELECT state FROM ingest_queue WHERE group_id = ?", (gid,)).fetchone()
        if state is not None and state[0] not in (COLLECTING, IN_PROGRESS):
            hold_for_operator(conn, gid, conflict_reason(conn, gid), now=t)
    return kind


def _match(candidates: list[str], keep: str) -> str | None:
    for c in candidates:
        if keep in (c, Path(c).name) or os.path.abspath(keep) == c:
            return c
    return None


def release(conn: sqlite3.Connection, group_id: str, keep: str, now: float | datetime | None = None) -> str:
    """Operator decision on a duplicate subband: keep ``keep`` (a path or file name) for its subband.

    The other file of that subband is recorded ``rejected`` (left where it is, never
    processed).  Once no conflict is left the group is pending again; when the kept file
    replaces the one the group was registered with, the group restarts from conversion and
    rebuilds its MS.  Returns the path kept.
    """
    t = _unix(now)
    with _tx(conn):
        _require(conn, group_id, (HELD, PENDING, COMPLETED, FAILED), "release")
        rows = conflicts(conn, group_id)
        if not rows:
            raise QueueDBError(f"group {group_id!r} has no duplicate subband waiting for a decision")
        g = get_group(conn, group_id)
        chosen = None
        for c in rows:
            reg = g.files.get(c.subband_idx)
            chosen = _match([c.path] + ([reg] if reg else []), keep)
            if chosen is not None:
                sb = c.subband_idx
                break
        if chosen is None:
            names = ", ".join(sorted({c.name for c in rows} | {Path(g.files[c.subband_idx]).name for c in rows
                                                              if c.subband_idx in g.files}))
            raise QueueDBError(f"{keep!r} is not one of the files in conflict in group {group_id} ({names})")
        reg = g.files.get(sb)
        swapped = chosen != reg
        if swapped:
            conn.execute("DELETE FROM extra_files WHERE path = ?", (chosen,))
            conn.execute("UPDATE subband_files SET path = ? WHERE group_id = ? AND subband_idx = ?",
                         (chosen, group_id, sb))
            conn.execute("INSERT OR REPLACE INTO extra_files (path, name, kind, reason, group_id, subband_idx, "
                         "added_at, resolved_at) VALUES (?, ?, 'rejected', ?, ?, ?, ?, ?)",
                         (reg, Path(reg).name, f"operator kept {Path(chosen).name}", group_id, sb, _iso(t), _iso(t)))
        conn.execute("UPDATE extra_files SET kind = 'rejected', reason = ?, resolved_at = ? WHERE group_id = ? "
                     "AND subband_idx = ? AND kind = 'conflict'",
                     (f"operator kept {Path(chosen).name}", _iso(t), group_id, sb))
        note = _append_note(conn, group_id, f"operator kept {Path(chosen).name} for sb{sb:02d} at {_iso(t)}")
        if conflicts(conn, group_id):
            _set(conn, group_id, t, notes=note, hold_reason=conflict_reason(conn, group_id))
        else:
            extra = {"processing_stage": None, "checkpoint_path": None, "reconvert": 1} if swapped and \
                g.processing_stage else {}
            _set(conn, group_id, t, notes=note, state=PENDING, operator_hold=0, hold_reason=None, retry_count=0,
                 error=None, next_attempt_at=t, **extra)
    log.info("ingest queue: group %s: operator kept %s for sb%02d", group_id, chosen, sb)
    return chosen
