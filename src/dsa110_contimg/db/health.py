"""Health of the three databases and the folders: start-up checks of the daemon and ``contimg doctor``.

Each check returns :class:`Finding` rows (``ok``, ``warn`` or ``error``) naming
the file or folder; nothing here creates, repairs or moves anything.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from ..errors import ContimgError
from . import sqlite_base as _base

OK, WARN, ERROR = "ok", "warn", "error"


class StartupRefused(ContimgError):
    """The daemon will not start: its state is inconsistent (the message says how to proceed)."""


@dataclass(frozen=True)
class Finding:
    """One line of a health report."""

    level: str
    """``ok``, ``warn`` or ``error``."""
    subject: str
    """The database or folder checked."""
    message: str
    """What was found."""


def _databases(settings) -> list[tuple[str, Path, int, str]]:
    from . import cal_registry_schema, products_schema, queue_schema

    return [("ingest queue database", Path(settings.queue_db), queue_schema.SCHEMA_VERSION, "ingest_queue"),
            ("products database", Path(settings.products_db), products_schema.SCHEMA_VERSION, "ms_index"),
            ("calibration registry", Path(settings.cal_registry_db), cal_registry_schema.SCHEMA_VERSION, "caltables")]


def check_database(what: str, path: Path, schema_version: int, table: str, quick: bool = True) -> list[Finding]:
    """Existence, readability, integrity and schema version of one database (read-only; never creates it)."""
    subject = f"{what} {path}"
    if not path.exists():
        return [Finding(WARN, subject, "missing (created on first use)")]
    if not path.is_file():
        return [Finding(ERROR, subject, "is not a regular file")]
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=10.0)
    except sqlite3.Error as exc:
        return [Finding(ERROR, subject, f"cannot be opened: {exc}")]
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        problems = _base.integrity_problems(conn, quick=quick)
        rows = conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] if version else 0
    except sqlite3.DatabaseError as exc:
        return [Finding(ERROR, subject, f"damaged or not an SQLite database: {exc}")]
    finally:
        conn.close()
    out = []
    if problems:
        out.append(Finding(ERROR, subject, "integrity check failed: " + "; ".join(problems[:5])))
    if version > schema_version:
        out.append(Finding(ERROR, subject, f"schema version {version} is newer than this code ({schema_version})"))
    elif version < schema_version:
        out.append(Finding(WARN, subject, f"schema version {version}, migrated to {schema_version} on next write"))
    if not out:
        out.append(Finding(OK, subject, f"schema v{version}, {rows} row(s) in {table}, integrity ok"))
    return out


def check_folder(what: str, path: Path, min_free_bytes: int = 1 << 30) -> list[Finding]:
    """A folder exists (or can be made), is writable, and has free space."""
    subject = f"{what} {path}"
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        return [Finding(ERROR, subject, f"{probe} is not a folder")]
    if not os.access(probe, os.W_OK | os.X_OK):
        return [Finding(ERROR, subject, f"{probe} is not writable")]
    free = shutil.disk_usage(probe).free
    state = "exists" if path.exists() else f"missing (will be created in {probe})"
    level = WARN if free < min_free_bytes else OK
    return [Finding(level, subject, f"{state}, writable, {free / 2**30:.1f} GiB free")]


def doctor(settings, quick: bool = False) -> list[Finding]:
    """Every check of ``contimg doctor``: the three databases (``integrity_check``), then the folders."""
    out: list[Finding] = []
    for what, path, version, table in _databases(settings):
        out += check_database(what, path, version, table, quick=quick)
    for what, path in (("state folder", settings.state_dir), ("incoming folder", settings.incoming_dir),
                       ("output folder", settings.output_dir), ("stage folder", settings.stage_dir)):
        out += check_folder(what, Path(path))
    return out


def processed_records(settings) -> list[str]:
    """What the products database and the registry already hold (e.g. ``'3 Measurement Sets in ...'``)."""
    found = []
    for what, path, table, label in ((
            "products database", Path(settings.products_db), "ms_index", "Measurement Set(s)"),
            ("calibration registry", Path(settings.cal_registry_db), "caltables", "calibration table(s)")):
        if not path.is_file():
            continue
        try:
            conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=10.0)
            try:
                n = conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            finally:
                conn.close()
        except sqlite3.DatabaseError:
            continue  # reported by the integrity checks
        if n:
            found.append(f"{n} {label} in the {what} {path}")
    return found


def check_startup(settings, init: bool = False) -> None:
    """Refuse to start the daemon on inconsistent or damaged state.

    Raises
    ------
    StartupRefused
        The queue database is missing while the products database or the registry
        record processed groups (a new queue would process every file in the incoming
        folder again), unless ``init``; or a database is damaged (the message names it).
    """
    queue_db = Path(settings.queue_db)
    if not queue_db.exists() and not init:
        found = processed_records(settings)
        if found:
            raise StartupRefused(
                f"ingest queue database {queue_db} is missing but {'; '.join(found)}: a new queue would process "
                "everything still in the incoming folder again. Restore the queue database, or start with --init "
                "to create a new one")
    bad = [f for what, path, version, table in _databases(settings)
           for f in check_database(what, path, version, table, quick=True) if f.level == ERROR]
    if bad:
        raise StartupRefused("; ".join(f"{f.subject}: {f.message}" for f in bad)
                             + " (see `contimg doctor`; move the damaged file aside or restore it)")
