"""Staging of Measurement Sets: build in fast scratch space, then move into place atomically.

A staging directory is named ``contimg-stage-<group>-<pid>``; staging files are
removed on success, on failure and on SIGTERM / Ctrl-C.  After a hard crash at
most one such directory remains, and :func:`clean_orphan_staging` removes it on
the next run (its process id is no longer alive).

A full or read-only disk is an :class:`~dsa110_contimg.errors.EnvironmentFault`
with one line naming the folder and its free space.  The room an MS needs is
checked before anything is written: casacore cannot recover from a write error
(closing the half-written table aborts the whole process), so the converter
must not start writing into a folder that cannot hold the MS.  Each staging
directory records the MS size it expects (its reservation), so conversions
running side by side do not count the same free space twice.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path

from ..errors import ContimgError, EnvironmentFault

log = logging.getLogger(__name__)

PREFIX = "contimg-stage-"
_NAME_RE = re.compile(rf"^(?:{PREFIX}.*-|\..*\.ms\.tmp-)(?P<pid>\d+)$")
RESERVATION = ".contimg-ms-bytes"
"""File in a staging directory holding the estimated size of the MS being built there."""
LOW_SPACE_BYTES = 1 << 20
"""A folder with less free space than this when a write fails is taken to be full."""
_ERRNO_REASON = {errno.ENOSPC: "full", errno.EDQUOT: "quota", errno.EROFS: "read-only", errno.EACCES: "denied",
                 errno.EPERM: "denied"}
_TEXT_REASON = {"no space left on device": "full", "disk quota exceeded": "quota", "read-only file system": "read-only"}


def _existing(folder: Path) -> Path:
    """``folder`` or its nearest existing parent."""
    p = Path(folder).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def free_bytes(folder: Path) -> int | None:
    """Free bytes (for unprivileged users) on the filesystem of ``folder``; None when unknown."""
    try:
        return shutil.disk_usage(_existing(folder)).free
    except OSError:
        return None


def is_read_only(folder: Path) -> bool:
    """True when ``folder`` (or its nearest existing parent) is on a read-only filesystem."""
    p = _existing(folder)
    try:
        return bool(os.statvfs(p).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _writable(folder: Path) -> bool:
    return os.access(_existing(folder), os.W_OK)


def _mb(n: int | None) -> str:
    return "unknown space" if n is None else f"{n / 1e6:.1f} MB"


def disk_fault(group_id: str, folder: Path, role: str, reason: str, needed: int | None = None,
               reserved: int = 0) -> EnvironmentFault:
    """The one-line :class:`EnvironmentFault` for a full / read-only ``folder``.

    Parameters
    ----------
    group_id
        The group being converted.
    folder
        The folder written to.
    role
        ``'stage'`` or ``'output'``.
    reason
        ``'full'``, ``'quota'``, ``'read-only'`` or ``'denied'``.
    needed
        Bytes the MS needs, when known.
    reserved
        Bytes of the free space other running conversions still need.
    """
    free = _mb(free_bytes(folder)) + (f" ({_mb(reserved)} of it reserved by running conversions)" if reserved else "")
    need = f", the MS needs ~{_mb(needed)}" if needed else ""
    where = f"the {role} folder {folder}"
    text = {"full": f"disk full: {where} has {free} free{need}",
            "quota": f"disk quota exceeded in {where} ({free} free{need})",
            "read-only": f"{where} is on a read-only file system ({free} free)",
            "denied": f"{where} is not writable: permission denied ({free} free)"}[reason]
    return EnvironmentFault(f"group {group_id}: {text}; nothing was moved, retry once it is cleared")


def fault_reason(exc: BaseException, folder: Path) -> str | None:
    """Why writing into ``folder`` failed with ``exc`` when the disk is to blame, else None.

    Looks at the errno and text of ``exc`` and of the exceptions it wraps
    (casacore raises ``RuntimeError``; ``shutil.move`` an ``Error`` listing one
    ``OSError`` per file), then at the folder itself (read-only, or almost no
    free space left).
    """
    e, seen = exc, 0
    while e is not None and seen < 10:
        if isinstance(e, OSError) and e.errno in _ERRNO_REASON:
            return _ERRNO_REASON[e.errno]
        text = str(e).lower()
        for key, reason in _TEXT_REASON.items():
            if key in text:
                return reason
        e, seen = e.__cause__ or e.__context__, seen + 1
    if isinstance(exc, (OSError, RuntimeError)):
        if is_read_only(folder):
            return "read-only"
        free = free_bytes(folder)
        if free is not None and free < LOW_SPACE_BYTES:
            return "full"
    return None


@contextmanager
def disk_faults(group_id: str, folder: Path, role: str):
    """Turn a failure caused by a full / read-only ``folder`` into one-line :class:`EnvironmentFault`.

    Pipeline errors (:class:`~dsa110_contimg.errors.ContimgError`) and
    failures the disk is not to blame for pass through unchanged.
    """
    try:
        yield
    except ContimgError:
        raise
    except Exception as exc:
        reason = fault_reason(exc, folder)
        if reason is None:
            raise
        raise disk_fault(group_id, folder, role, reason) from exc


def _tree_bytes(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except OSError:
                pass
    return total


def reserved_bytes(root: Path, exclude: Path | None = None) -> int:
    """Bytes that other live conversions staging under ``root`` have yet to write (their reservations)."""
    total = 0
    try:
        entries = list(Path(root).iterdir())
    except OSError:
        return 0
    for p in entries:
        m = _NAME_RE.match(p.name)
        if not m or not p.name.startswith(PREFIX) or p == exclude or not _pid_alive(int(m["pid"])):
            continue
        try:
            expected = int((p / RESERVATION).read_text())
        except (OSError, ValueError):
            continue
        total += max(0, expected - _tree_bytes(p))
    return total


def check_room(group_id: str, folder: Path, role: str, needed: int, exclude: Path | None = None) -> None:
    """Raise :class:`EnvironmentFault` unless ``folder`` is writable with ``needed`` bytes free.

    Space that other running conversions staging in ``folder`` have reserved
    (and not yet written) does not count as free; ``exclude`` is our own staging directory.
    """
    if is_read_only(folder):
        raise disk_fault(group_id, folder, role, "read-only")
    if not _writable(folder):
        raise disk_fault(group_id, folder, role, "denied")
    free = free_bytes(folder)
    reserved = reserved_bytes(folder, exclude) if needed else 0
    if free is not None and free - reserved < needed:
        raise disk_fault(group_id, folder, role, "full", needed, reserved)


def _same_filesystem(a: Path, b: Path) -> bool:
    try:
        return os.stat(_existing(a)).st_dev == os.stat(_existing(b)).st_dev
    except OSError:
        return False


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

    def __init__(self, path: Path, role: str = "stage"):
        self.path = path
        self.role = role
        """``'stage'`` (in the stage root) or ``'output'`` (beside the output)."""

    @classmethod
    def choose(cls, stage_root: Path, output_dir: Path, needed_bytes: int, group_id: str,
               ms_bytes: int = 0) -> "StagingArea":
        """Stage in ``stage_root`` when it is writable with ``needed_bytes`` free, else beside the output.

        Parameters
        ----------
        stage_root
            Preferred scratch folder.
        output_dir
            Folder of the final MS (existing).
        needed_bytes
            Free space ``stage_root`` must have to be used.
        group_id
            Names the staging directory.
        ms_bytes
            Estimated size of the MS: the staging folder, and the output folder when
            on another filesystem, must have that much free (in the staging folder:
            besides what other running conversions reserved there).  Recorded in the
            staging directory as its reservation.

        Raises
        ------
        EnvironmentFault
            A folder is read-only or too full to hold the MS; nothing was written.
        """
        root, role = output_dir, "output"
        try:
            stage_root.mkdir(parents=True, exist_ok=True)
            if shutil.disk_usage(stage_root).free >= needed_bytes and _writable(stage_root) \
                    and not is_read_only(stage_root):
                root, role = stage_root, "stage"
        except OSError:
            pass
        safe = group_id.replace(":", "")
        path = root / f"{PREFIX}{safe}-{os.getpid()}"
        check_room(group_id, root, role, ms_bytes, exclude=path)
        if role == "stage" and not _same_filesystem(root, output_dir):
            check_room(group_id, output_dir, "output", ms_bytes)
        with disk_faults(group_id, root, role):
            shutil.rmtree(path, ignore_errors=True)
            path.mkdir(parents=True)
            (path / RESERVATION).write_text(str(int(ms_bytes)))
        return cls(path, role)

    def commit(self, staged: Path, final: Path) -> Path:
        """Move ``staged`` to ``final``: copy next to it under a temporary name, then rename.

        A failed or interrupted copy removes its temporary copy.
        """
        tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
        try:
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.move(str(staged), str(tmp))
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return final

    def __enter__(self) -> "StagingArea":
        return self

    def __exit__(self, *exc) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
