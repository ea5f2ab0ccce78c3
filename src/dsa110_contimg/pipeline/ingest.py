"""The daemon's view of the incoming folder: register subband files, set aside everything else, compare duplicates.

Nothing here raises for a bad file: a name that cannot be parsed, a path that is
not a regular file, or a second file for a subband is recorded in the queue's
``extra_files`` with its reason (once) and the scan goes on.  Only an
environment fault (the queue database itself damaged) propagates.
"""

from __future__ import annotations

import filecmp
import logging
import os
import stat
from pathlib import Path

from ..conversion.grouping import check_subband_name, is_regular_file
from ..db import queue as q
from ..errors import ENVIRONMENT, classify

log = logging.getLogger(__name__)

PATTERN = "*_sb*.hdf5"
"""Glob of the names offered to the queue (the queue's parser decides)."""


def file_kind(path: str | Path) -> str:
    """``'regular file'``, ``'symlink'``, ``'FIFO'``, ``'folder'``, ``'socket'``, ``'device'`` or ``'missing'``."""
    try:
        mode = os.lstat(path).st_mode
    except (OSError, ValueError):
        return "missing"
    for test, name in ((stat.S_ISREG, "regular file"), (stat.S_ISLNK, "symlink"), (stat.S_ISFIFO, "FIFO"),
                       (stat.S_ISDIR, "folder"), (stat.S_ISSOCK, "socket")):
        if test(mode):
            return name
    return "device"


def scan_folder(conn, folder: Path, seen: set[str], tolerance_s: float, expected_subbands: int) -> int:
    """Offer the new files of ``folder`` to the queue; returns how many joined a group.

    ``seen`` holds the paths this process already offered (updated in place), so the
    periodic scan costs no database query for them.
    """
    try:
        candidates = sorted(Path(folder).glob(PATTERN))
    except OSError as exc:
        log.error("cannot list the incoming folder %s: %s", folder, exc)
        return 0
    added = 0
    for p in candidates:
        key = str(p)
        if key in seen:
            continue
        try:
            chk = check_subband_name(p, expected_subbands)
            if chk.in_progress:
                continue  # renamed when complete; offered then
            if chk.file is not None and not is_regular_file(p):
                if q.get_extra(conn, p) is None:
                    q.set_aside(conn, p, "ignored", f"not a regular file ({file_kind(p)})")
            else:
                r = q.add_file(conn, key, tolerance_s=tolerance_s, expected_subbands=expected_subbands)
                added += r.status == "added"
        except Exception as exc:  # noqa: BLE001 - one bad file never stops the scan
            if classify(exc) == ENVIRONMENT:
                raise
            log.error("%s: not registered: %s: %s", p.name, type(exc).__name__, exc)
        seen.add(key)
    return added


def compare_duplicates(conn) -> list[tuple[str, str]]:
    """Compare every duplicate not yet checked with the file registered for its subband.

    Returns ``(path, kind)`` per decision: ``'duplicate'`` (identical, dropped) or
    ``'conflict'`` (different content or not comparable: the group is held for an operator).
    """
    out = []
    for extra, registered in q.unchecked_duplicates(conn):
        try:
            same = (registered is not None and is_regular_file(extra.path) and is_regular_file(registered)
                    and filecmp.cmp(registered, extra.path, shallow=False))
        except OSError as exc:
            log.error("%s: cannot compare with %s: %s", extra.name, registered, exc)
            same = False
        out.append((extra.path, q.decide_duplicate(conn, extra.path, identical=same)))
    return out


def start_watcher(folder: Path, wake):
    """inotify watcher (watchdog) that sets the event ``wake`` when a file lands in ``folder``.

    It only wakes the daemon's loop early; the periodic scan is the source of truth, so a
    network filesystem without inotify (or a missed event) loses nothing.  ``None`` when
    the folder cannot be watched.
    """
    from watchdog.events import FileSystemEventHandler
    from watchdog.observers import Observer

    class _Handler(FileSystemEventHandler):
        def on_moved(self, event):
            wake.set()

        def on_closed(self, event):
            wake.set()

    obs = Observer()
    try:
        obs.schedule(_Handler(), str(folder), recursive=False)
        obs.start()
    except OSError as exc:
        log.warning("cannot watch %s with inotify (%s); polling only", folder, exc)
        return None
    return obs
