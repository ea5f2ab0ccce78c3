"""Staging of Measurement Sets: build in fast scratch space, then move into place atomically.

A staging directory is named ``contimg-stage-<group>-<pid>``; staging files are
removed on success, on failure and on SIGTERM / Ctrl-C.  After a hard crash at
most one such directory remains, and :func:`clean_orphan_staging` removes it on
the next run (its process id is no longer alive).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path

log = logging.getLogger(__name__)

PREFIX = "contimg-stage-"
_NAME_RE = re.compile(rf"^(?:{PREFIX}.*-|\..*\.ms\.tmp-)(?P<pid>\d+)$")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_orphan_staging(roots: list[Path]) -> list[Path]:
    """Remove staging directories under ``roots`` whose owning process is gone."""
    removed = []
    for root in roots:
        if not root.is_dir():
            continue
        for p in root.iterdir():
            m = _NAME_RE.match(p.name)
            if m and p.is_dir() and not _pid_alive(int(m["pid"])):
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p)
                log.warning("removed orphan staging directory %s", p)
    return removed


class StagingArea:
    """A staging directory, removed when the ``with`` block ends, whatever happens."""

    def __init__(self, path: Path):
        self.path = path

    @classmethod
    def choose(cls, stage_root: Path, output_dir: Path, needed_bytes: int, group_id: str) -> "StagingArea":
        """Stage in ``stage_root`` when it has ``needed_bytes`` free, else beside the output."""
        root = output_dir
        try:
            stage_root.mkdir(parents=True, exist_ok=True)
            if shutil.disk_usage(stage_root).free >= needed_bytes:
                root = stage_root
        except OSError:
            pass
        safe = group_id.replace(":", "")
        path = root / f"{PREFIX}{safe}-{os.getpid()}"
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return cls(path)

    def commit(self, staged: Path, final: Path) -> Path:
        """Move ``staged`` to ``final``: copy next to it under a temporary name, then rename."""
        tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.move(str(staged), str(tmp))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        return final

    def __enter__(self) -> "StagingArea":
        return self

    def __exit__(self, *exc) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
