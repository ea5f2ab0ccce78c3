"""Schema of the calibration registry: the ``caltables`` table and its numbered migrations."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any, Callable

from ..errors import ContimgError
from .sqlite_base import add_missing_columns

SCHEMA_VERSION = 3
"""Version stored in ``PRAGMA user_version`` once every migration has run."""


class CalRegistryError(ContimgError, ValueError):
    """Bad input or an inconsistent registry; the message says what and which set/path."""


CORE_COLUMNS: list[tuple[str, str]] = [
    ("set_name", "TEXT NOT NULL"),
    ("path", "TEXT UNIQUE NOT NULL"),
    ("table_type", "TEXT"),
    ("order_index", "INTEGER"),
    ("cal_field", "TEXT"),
    ("refant", "TEXT"),
    ("created_at", "TEXT"),
    ("valid_start_mjd", "REAL"),
    ("valid_end_mjd", "REAL"),
    ("status", "TEXT NOT NULL DEFAULT 'active'"),
    ("notes", "TEXT"),
]
"""Columns of schema version 1 (after ``id INTEGER PRIMARY KEY``)."""
PROVENANCE_COLUMNS: list[tuple[str, str]] = [
    ("source_ms_path", "TEXT"),
    ("solver_command", "TEXT"),
    ("solver_version", "TEXT"),
    ("solver_params", "TEXT"),
    ("quality_metrics", "TEXT"),
]
"""Columns added by schema version 2 (``solver_params`` and ``quality_metrics`` hold JSON)."""
QA_COLUMNS: list[tuple[str, str]] = [("qa_plot_path", "TEXT")]
"""Columns added by schema version 3: the solution plot of each table (served by the API)."""


@dataclass
class CalTableEntry:
    """One calibration table of a set."""

    path: str
    """Path of the CASA table (a directory); stored absolute."""
    table_type: str
    """Kind of solution, e.g. ``'K'``, ``'B'``, ``'G'``."""
    order_index: int
    """Position in the apply order within the set (ascending)."""
    quality_metrics: dict[str, Any] | None = None
    """Solution quality (e.g. flagged fraction, SNR), stored as JSON."""
    solver_params: dict[str, Any] | None = None
    """Parameters the solver was called with, stored as JSON."""
    qa_plot_path: str | None = None
    """PNG plot of the solutions (stored absolute; the API serves it)."""


@dataclass
class CalSet:
    """All tables of one solve, with their shared validity window and status."""

    set_name: str
    entries: list[CalTableEntry]
    """Tables sorted by ``order_index`` (the apply order)."""
    valid_start_mjd: float | None
    valid_end_mjd: float | None
    """``None`` means open-ended (only possible for rows migrated from an old registry)."""
    status: str
    cal_field: str | None = None
    refant: str | None = None
    source_ms_path: str | None = None
    created_at: str | None = None
    """ISO 8601 UTC creation time."""
    solver_command: str | None = None
    solver_version: str | None = None
    notes: str = ""

    @property
    def paths(self) -> list[str]:
        """Table paths in apply order."""
        return [e.path for e in self.entries]

    @property
    def table_types(self) -> list[str]:
        """Table types in apply order."""
        return [e.table_type for e in self.entries]

    def contains(self, mjd: float) -> bool:
        """Whether ``mjd`` lies in the validity window (ends inclusive)."""
        if self.valid_start_mjd is None or mjd < self.valid_start_mjd:
            return False
        return self.valid_end_mjd is None or mjd <= self.valid_end_mjd


def _migration_1(conn: sqlite3.Connection) -> None:
    """Create ``caltables`` with the core columns, or complete a pre-versioning table."""
    cols = ",\n  ".join(f"{n} {t}" for n, t in CORE_COLUMNS)
    conn.execute(f"CREATE TABLE IF NOT EXISTS caltables (\n  id INTEGER PRIMARY KEY,\n  {cols}\n)")
    add_missing_columns(conn, "caltables", CORE_COLUMNS)
    # rows of an old registry may lack what the code relies on
    conn.execute("UPDATE caltables SET set_name = 'legacy-' || id WHERE set_name IS NULL")
    conn.execute("UPDATE caltables SET status = 'active' WHERE status IS NULL")
    try:
        conn.execute("CREATE UNIQUE INDEX IF NOT EXISTS ux_caltables_path ON caltables (path)")
    except sqlite3.IntegrityError as exc:
        raise CalRegistryError(f"cannot migrate the calibration registry: duplicate table paths ({exc})") from None


def _migration_2(conn: sqlite3.Connection) -> None:
    """Provenance columns and the lookup indices."""
    add_missing_columns(conn, "caltables", PROVENANCE_COLUMNS)
    conn.execute("CREATE INDEX IF NOT EXISTS idx_caltables_status_valid "
                 "ON caltables (status, valid_start_mjd, valid_end_mjd)")
    conn.execute("CREATE INDEX IF NOT EXISTS idx_caltables_set ON caltables (set_name)")


def _migration_3(conn: sqlite3.Connection) -> None:
    """Path of each table's QA plot."""
    add_missing_columns(conn, "caltables", QA_COLUMNS)


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_migration_1, _migration_2, _migration_3]
"""``MIGRATIONS[i]`` brings the schema from version ``i`` to ``i + 1``."""
assert len(MIGRATIONS) == SCHEMA_VERSION
