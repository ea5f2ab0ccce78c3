"""Shared SQLite plumbing of the pipeline's databases: WAL connections, transactions, migrations.

Every database module owns its schema as a list of numbered migrations
(``migrations[i]`` brings the schema from version ``i`` to ``i + 1``), applied
through ``PRAGMA user_version`` by :func:`open_database`.
"""

from __future__ import annotations

import math
import os
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from ..errors import DatabaseFault

Migration = Callable[[sqlite3.Connection], None]


def finite_float(value: Any, what: str, error: type[Exception], reject_bool: bool = False, hint: str = "") -> float:
    """``float(value)``, or ``error`` naming ``what`` when it is not a finite number (nor a bool, with
    ``reject_bool``); ``hint`` is appended to the not-finite message."""
    if reject_bool and isinstance(value, bool):
        raise error(f"{what}={value!r} must be a number")
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise error(f"{what}={value!r} is not a number") from None
    if not math.isfinite(x):
        raise error(f"{what}={value!r} is not finite{hint}")
    return x


def table_columns(conn: sqlite3.Connection, table: str) -> set[str]:
    """Column names of ``table`` (empty when it does not exist)."""
    return {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}


def add_missing_columns(conn: sqlite3.Connection, table: str, columns: Sequence[tuple[str, str]]) -> None:
    """Add the columns an older ``table`` lacks (``ALTER TABLE`` cannot add UNIQUE/NOT NULL: relaxed)."""
    have = table_columns(conn, table)
    for name, sqltype in columns:
        if name in have:
            continue
        relaxed = sqltype.replace("UNIQUE", "").replace("NOT NULL", "").strip()
        conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {relaxed}")


@contextmanager
def transaction(conn: sqlite3.Connection, savepoint: str = "sp") -> Iterator[None]:
    """All-or-nothing block: ``BEGIN IMMEDIATE`` .. ``COMMIT``, or a savepoint inside an open transaction."""
    if conn.in_transaction:
        conn.execute(f"SAVEPOINT {savepoint}")
        try:
            yield
        except BaseException:
            conn.execute(f"ROLLBACK TO SAVEPOINT {savepoint}")
            conn.execute(f"RELEASE SAVEPOINT {savepoint}")
            raise
        conn.execute(f"RELEASE SAVEPOINT {savepoint}")
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def migrate(conn: sqlite3.Connection, migrations: Sequence[Migration], what: str,
            error: type[Exception] = RuntimeError) -> int:
    """Apply pending migrations in one transaction; returns the version found before.

    Raises
    ------
    error
        When the database's version is newer than ``len(migrations)``.
    """
    target = len(migrations)
    with transaction(conn, "migrate"):
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > target:
            raise error(f"{what} schema version {version} is newer than this code understands ({target}); "
                        "upgrade dsa110_contimg")
        for step in range(version, target):
            migrations[step](conn)
        if version != target:
            conn.execute(f"PRAGMA user_version = {target:d}")
    return version


def open_database(path: str | os.PathLike[str], migrations: Sequence[Migration], what: str,
                  error: type[Exception] = RuntimeError) -> sqlite3.Connection:
    """Open (creating if needed) a database in WAL mode and bring its schema up to date.

    Parameters
    ----------
    path
        SQLite file (parent folders are created), or ``':memory:'``.
    migrations
        The module's numbered migrations.
    what
        Name used in error messages.
    error
        Exception class raised for a too-new schema.

    Returns
    -------
    sqlite3.Connection
        Autocommit mode (callers open their own transactions), rows as :class:`sqlite3.Row`.
    """
    target = str(path)
    if target != ":memory:":
        Path(target).expanduser().parent.mkdir(parents=True, exist_ok=True)
        target = str(Path(target).expanduser())
    try:
        conn = sqlite3.connect(target, timeout=30.0, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise DatabaseFault(f"{what} {target} cannot be opened: {exc}") from None
    conn.row_factory = sqlite3.Row
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA busy_timeout = 30000")
        migrate(conn, migrations, what, error)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise DatabaseFault(f"{what} {target} is damaged or not an SQLite database ({exc}); "
                            "see `contimg doctor`") from None
    except Exception:
        conn.close()
        raise
    return conn


def open_readonly(path: str | os.PathLike[str]) -> sqlite3.Connection | None:
    """Open an existing database read-only (``None`` when it does not exist yet)."""
    p = Path(path)
    if not p.is_file():
        return None
    conn = sqlite3.connect(f"{p.resolve().as_uri()}?mode=ro", uri=True, timeout=30.0, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    return conn


def open_initialised_readonly(path: str | os.PathLike[str], what: str,
                              error: type[Exception] = RuntimeError) -> sqlite3.Connection | None:
    """Read-only connection to a database a writer has set up; ``None`` when missing or uninitialised.

    Never creates the file (the API reads databases before the pipeline has made them).

    Raises
    ------
    error
        The file exists but is not an SQLite database.
    """
    p = Path(path).expanduser()
    conn = open_readonly(p)
    if conn is None:
        return None
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise error(f"{what} {p} cannot be read: {exc}") from None
    if version == 0:
        conn.close()
        return None
    return conn


def integrity_problems(conn: sqlite3.Connection, quick: bool = True) -> list[str]:
    """What ``PRAGMA quick_check`` (or ``integrity_check``) reports; empty when the database is sound."""
    pragma = "quick_check" if quick else "integrity_check"
    rows = [str(r[0]) for r in conn.execute(f"PRAGMA {pragma}(20)")]
    return [] if rows == ["ok"] else rows
