"""What every request handler needs: the settings and read-only connections to the three databases.

The API never creates or migrates a database.  Before the pipeline has made one,
:meth:`ApiContext.queue` (and the others) yield ``None`` and the handlers answer
with empty results.  Each request opens its own read-only connection; with WAL
journals the readers never block the daemon that writes.  A database that cannot
be read (not SQLite, corrupt pages, unopenable) raises :class:`DatabaseUnavailable`,
answered with a 503 naming the file, whether it fails on opening or mid-query.
"""

from __future__ import annotations

import functools
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

from fastapi import HTTPException

from ..config import Settings
from ..errors import ContimgError

T = TypeVar("T")
CACHE_ENTRIES = 512
"""Answers kept at most; the oldest go first."""
REGISTRY_WHAT = "calibration registry"
"""Name of the calibration registry in error messages (as :mod:`dsa110_contimg.db.cal_registry` names it)."""


class DatabaseUnavailable(HTTPException, ContimgError):
    """A database could not be read: a 503 whose detail names the file and SQLite's error."""

    def __init__(self, what: str, path: str | Path, exc: Exception) -> None:
        super().__init__(status_code=503, detail=f"{what} {path} cannot be read: {exc}")


@contextmanager
def readable(what: str, path: str | Path) -> Iterator[None]:
    """Turn an SQLite error inside the block into :class:`DatabaseUnavailable` for ``path``.

    Parameters
    ----------
    what
        Name of the database, e.g. ``"products database"``.
    path
        Its file.
    """
    try:
        yield
    except sqlite3.DatabaseError as exc:
        raise DatabaseUnavailable(what, path, exc) from exc


@dataclass(frozen=True)
class ApiContext:
    """Settings of the API process and the openers of its databases."""

    settings: Settings
    """Effective settings (database paths, folders, the write token)."""
    heartbeat_stale_s: float = 60.0
    """A daemon whose last heartbeat is older than this is reported as stale."""
    refresh_s: float = 10.0
    """Reload interval of the dashboard's live pages (s; 0 turns it off)."""
    _cache: dict = field(default_factory=dict, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def cached(self, key: tuple, compute: Callable[[], T]) -> T:
        """``compute()``, or its value from less than ``settings.api_cache_s`` ago for the same ``key``.

        A monitoring page polled by many clients then costs one database read per
        interval; answers are at most that many seconds old.
        """
        ttl = self.settings.api_cache_s
        if ttl <= 0:
            return compute()
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and now - hit[0] < ttl:
            return hit[1]
        value = compute()
        with self._lock:
            self._cache[key] = (now, value)
            if len(self._cache) > CACHE_ENTRIES:
                for old in sorted(self._cache, key=lambda k: self._cache[k][0])[:len(self._cache) // 2]:
                    del self._cache[old]
        return value

    def invalidate(self) -> None:
        """Forget every cached answer (after a write through the API)."""
        with self._lock:
            self._cache.clear()

    @contextmanager
    def _open(self, opener: Callable[[Path], sqlite3.Connection | None], what: str,
              path: Path) -> Iterator[sqlite3.Connection | None]:
        with readable(what, path):
            conn = opener(path)
            try:
                yield conn
            finally:
                if conn is not None:
                    conn.close()

    def queue(self):
        """Read-only connection to the ingest queue (``None`` before it exists)."""
        from ..db import queue as q

        return self._open(q.connect_readonly, q.WHAT, self.settings.queue_db)

    def queue_writer(self):
        """Read-write connection to the ingest queue, for the write endpoints (``None`` before it exists)."""
        from ..db import queue as q

        return self._open(lambda p: q.connect(p) if Path(p).is_file() else None, q.WHAT, self.settings.queue_db)

    def products(self):
        """Read-only connection to the products database (``None`` before it exists)."""
        from ..db import products as pdb

        return self._open(pdb.connect_readonly, pdb.WHAT, self.settings.products_db)

    def registry(self):
        """Read-only connection to the calibration registry (``None`` before it exists)."""
        from ..db import cal_registry as reg

        return self._open(reg.connect_readonly, REGISTRY_WHAT, self.settings.cal_registry_db)

    @property
    def product_dirs(self) -> tuple[Path, ...]:
        """Folders whose files the API serves: the output folder.

        The pipeline writes every product it registers there, beside the Measurement
        Set: images and their FITS, thumbnails and QA plots, calibration tables and
        their plots (``<ms>_calqa/``).
        """
        return (Path(self.settings.output_dir),)

    @property
    def writes_enabled(self) -> bool:
        """Whether write endpoints are on (``PIPELINE_API_TOKEN`` is set)."""
        return bool(self.settings.api_token)


def cached(fn: Callable[..., T]) -> Callable[..., T]:
    """Decorator: ``fn(ctx, *args)`` answers through :meth:`ApiContext.cached`, keyed by name and arguments."""
    @functools.wraps(fn)
    def wrapper(ctx: ApiContext, *args: Any, **kwargs: Any) -> T:
        return ctx.cached((fn.__name__, args, tuple(sorted(kwargs.items()))), lambda: fn(ctx, *args, **kwargs))

    return wrapper
