"""What every request handler needs: the settings and read-only connections to the three databases.

The API never creates or migrates a database.  Before the pipeline has made one,
:meth:`ApiContext.queue` (and the others) yield ``None`` and the handlers answer
with empty results.  Each request opens its own read-only connection; with WAL
journals the readers never block the daemon that writes.
"""

from __future__ import annotations

import functools
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, TypeVar

from ..config import Settings

T = TypeVar("T")
CACHE_ENTRIES = 512
"""Answers kept at most; the oldest go first."""


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


def cached(fn: Callable[..., T]) -> Callable[..., T]:
    """Decorator: ``fn(ctx, *args)`` answers through :meth:`ApiContext.cached`, keyed by name and arguments."""
    @functools.wraps(fn)
    def wrapper(ctx: ApiContext, *args: Any, **kwargs: Any) -> T:
        return ctx.cached((fn.__name__, args, tuple(sorted(kwargs.items()))), lambda: fn(ctx, *args, **kwargs))

    return wrapper
