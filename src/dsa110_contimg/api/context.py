"""What every request handler needs: the settings and read-only connections to the three databases.

The API never creates or migrates a database.  Before the pipeline has made one,
:meth:`ApiContext.queue` (and the others) yield ``None`` and the handlers answer
with empty results.  Each request opens its own read-only connection; with WAL
journals the readers never block the daemon that writes.
"""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

from ..config import Settings


@dataclass(frozen=True)
class ApiContext:
    """Settings of the API process and the openers of its databases."""

    settings: Settings
    """Effective settings (database paths, folders, the write token)."""
    heartbeat_stale_s: float = 60.0
    """A daemon whose last heartbeat is older than this is reported as stale."""
    refresh_s: float = 10.0
    """Reload interval of the dashboard's live pages (s; 0 turns it off)."""

    @contextmanager
    def _open(self, opener: Callable[[str], sqlite3.Connection | None], path) -> Iterator[sqlite3.Connection | None]:
        conn = opener(path)
        try:
            yield conn
        finally:
            if conn is not None:
                conn.close()

    def queue(self):
        """Read-only connection to the ingest queue (``None`` before it exists)."""
        from ..db import queue as q

        return self._open(q.connect_readonly, self.settings.queue_db)

    def products(self):
        """Read-only connection to the products database (``None`` before it exists)."""
        from ..db import products as pdb

        return self._open(pdb.connect_readonly, self.settings.products_db)

    def registry(self):
        """Read-only connection to the calibration registry (``None`` before it exists)."""
        from ..db import cal_registry as reg

        return self._open(reg.connect_readonly, self.settings.cal_registry_db)

    @property
    def writes_enabled(self) -> bool:
        """Whether write endpoints are on (``PIPELINE_API_TOKEN`` is set)."""
        return bool(self.settings.api_token)
