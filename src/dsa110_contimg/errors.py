"""The pipeline's errors: one base, and the three kinds the daemon treats differently.

Every error the pipeline raises on purpose derives from :class:`ContimgError`
and carries a one-line message naming the file (or group) and the problem.  The
streaming daemon sorts them into three kinds, decided once where the problem is
found:

* :class:`BadInputError`: the input itself is wrong (unreadable, malformed,
  all non-finite, ...).  The group fails at once and its files are quarantined.
* :class:`TransientError`: trouble that may pass (a worker lost, a stage timed
  out).  The group is retried with backoff, up to a limit.
* :class:`EnvironmentFault`: the machine, not the data (disk full, read-only
  folder, damaged database).  Nothing is moved; the group waits and is tried
  again once the condition may have cleared, without using up its retries.

:func:`classify` maps any exception (including ``OSError`` and
``sqlite3.DatabaseError`` raised by libraries) onto these kinds.
"""

from __future__ import annotations

import errno
from pathlib import Path

BAD_INPUT, TRANSIENT, ENVIRONMENT, UNKNOWN = "bad-input", "transient", "environment", "unknown"
"""The kinds returned by :func:`classify`."""

_ENV_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EMFILE, errno.ENFILE,
               errno.ENOMEM}


class ContimgError(Exception):
    """Base of every pipeline error; the message is one line naming the file or group and the problem."""

    kind = UNKNOWN

    def __init__(self, message: str, files: list[str | Path] | None = None):
        super().__init__(one_line(str(message)))
        self.files = [Path(f) for f in (files or [])]


class BadInputError(ContimgError, ValueError):
    """The input data are wrong: fail the group now and quarantine :attr:`files`."""

    kind = BAD_INPUT


class TransientError(ContimgError, RuntimeError):
    """Trouble that may pass: retry the group with backoff."""

    kind = TRANSIENT


class StageTimeout(TransientError):
    """A stage ran longer than its wall-clock limit and was killed."""


class EnvironmentFault(ContimgError, RuntimeError):
    """Disk full, read-only folder, damaged database: nothing is moved; try again once it clears."""

    kind = ENVIRONMENT


class DatabaseFault(EnvironmentFault):
    """An SQLite database is damaged, truncated or not a database; the message names the file."""


def one_line(message: str, limit: int = 2000) -> str:
    """Collapse a message onto one line (newlines become ``'; '``) and cap its length."""
    parts = [p.strip() for p in str(message).splitlines() if p.strip()]
    text = "; ".join(parts)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def is_environment_oserror(exc: BaseException) -> bool:
    """True when ``exc`` (or an exception it wraps) is an ``OSError`` about the machine (disk full, read-only, ...)."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, OSError) and exc.errno in _ENV_ERRNOS:
            return True
        text = str(exc).lower()
        if "no space left on device" in text or "read-only file system" in text or "disk quota exceeded" in text:
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def classify(exc: BaseException) -> str:
    """The kind of ``exc``: :data:`BAD_INPUT`, :data:`TRANSIENT`, :data:`ENVIRONMENT` or :data:`UNKNOWN`."""
    import sqlite3

    if isinstance(exc, ContimgError) and exc.kind != UNKNOWN:
        return exc.kind
    if isinstance(exc, sqlite3.DatabaseError) or is_environment_oserror(exc):
        return ENVIRONMENT
    return UNKNOWN
