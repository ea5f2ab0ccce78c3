"""Windows of consecutive groups for the mosaics, and the images that go into them.

A window is a fixed span of ``n_groups`` group lengths of UTC time (``n_groups * 309 s``; 12 groups: 61.8 min),
counted from the Unix epoch, so windows never overlap, a restart finds the same windows, and a group belongs to
the window its start falls in (a window holds ``n_groups`` groups at the correlator's cadence, one more or less
when the cadence jitters).  A window's name is the UTC time of its start.

Inputs are the groups' restored images before primary-beam correction (``images.type = 'image'``), with the QA's
rms, dynamic range and quality-gate state; a group that failed, or has no image, is listed as an exclusion.

Examples
--------
>>> w = window_of("2025-10-02T00:12:00", 12)
>>> w.name, round((w.end_unix - w.start_unix) / 60, 1)
('2025-10-01T23:33:25', 61.8)
>>> w.contains("2025-10-02T00:35:00"), w.contains("2025-10-02T00:36:00")
(True, False)
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from ..telescope import GROUP_SECONDS

GROUP_ID_FORMAT = "%Y-%m-%dT%H:%M:%S"
"""Format of a group id (the UTC time of its first file)."""
UNIX_MJD = 40587.0
"""MJD of the Unix epoch."""


def _unix(group_id: str) -> float:
    return datetime.strptime(group_id, GROUP_ID_FORMAT).replace(tzinfo=timezone.utc).timestamp()


def _iso(unix: float) -> str:
    return datetime.fromtimestamp(unix, tz=timezone.utc).strftime(GROUP_ID_FORMAT)


@dataclass(frozen=True)
class Window:
    """A span of UTC time whose groups make one mosaic."""

    index: int
    """Window number since the Unix epoch."""
    n_groups: int
    """Group lengths per window."""

    @property
    def start_unix(self) -> float:
        """Start (Unix seconds)."""
        return self.index * self.n_groups * GROUP_SECONDS

    @property
    def end_unix(self) -> float:
        """End, exclusive (Unix seconds)."""
        return (self.index + 1) * self.n_groups * GROUP_SECONDS

    @property
    def name(self) -> str:
        """UTC start, as a group id."""
        return _iso(self.start_unix)

    @property
    def first_id(self) -> str:
        """Smallest group id in the window (ids sort as times)."""
        return _iso(math.ceil(self.start_unix))

    @property
    def end_id(self) -> str:
        """Smallest group id after the window."""
        return _iso(math.ceil(self.end_unix))

    def contains(self, group_id: str) -> bool:
        """Whether the group starts in this window."""
        return self.start_unix <= _unix(group_id) < self.end_unix


def window_of(group_id: str, n_groups: int) -> Window:
    """The window the group ``group_id`` starts in."""
    if n_groups < 1:
        raise ValueError(f"n_groups must be >= 1, got {n_groups}")
    return Window(int(math.floor(_unix(group_id) / (n_groups * GROUP_SECONDS))), n_groups)


def group_states(queue_conn: sqlite3.Connection, w: Window) -> dict[str, str]:
    """Queue state of every group of the window (group id -> state)."""
    rows = queue_conn.execute("SELECT group_id, state FROM ingest_queue WHERE group_id >= ? AND group_id < ? "
                              "ORDER BY group_id", (w.first_id, w.end_id)).fetchall()
    return {r[0]: r[1] for r in rows if w.contains(r[0])}


def window_closed(queue_conn: sqlite3.Connection, w: Window) -> bool:
    """A group after the window has arrived: the window will get no more groups (except late ones)."""
    return queue_conn.execute("SELECT 1 FROM ingest_queue WHERE group_id >= ? LIMIT 1",
                              (w.end_id,)).fetchone() is not None


@dataclass(frozen=True)
class WindowInput:
    """One group of a window as the mosaic sees it."""

    group_id: str
    """Queue group."""
    image: str | None
    """Restored image before primary-beam correction (None: the group has none)."""
    ms_path: str
    """The group's Measurement Set (its drift-scan beam when the image header lacks it)."""
    rms_jy: float | None = None
    """QA rms of the image."""
    dynamic_range: float | None = None
    """QA dynamic range of the image."""
    reason: str | None = None
    """Why the group has no image (failed, not imaged)."""
    quality_state: str | None = None
    """Quality-gate state of the image ('pass', 'warn', 'fail'; None: not assessed)."""
    quality_reasons: tuple[str, ...] = ()
    """The gates that warn or fail, one phrase each (``'rms_thermal 12.3 > 10 (fail)'``)."""


_IMAGE_COLUMNS = "i.path, i.noise_jy, i.dynamic_range, i.quality_state, i.gates_json"


def _quality(state, gates_json) -> dict:
    """``quality_state`` and ``quality_reasons`` of a :class:`WindowInput` from the ``images`` columns."""
    try:
        reasons = tuple((json.loads(gates_json) or {}).get("reasons") or ()) if gates_json else ()
    except (TypeError, ValueError):
        reasons = ()
    return {"quality_state": state, "quality_reasons": reasons}


def window_inputs(products_conn: sqlite3.Connection, states: dict[str, str], output_dir: Path) -> list[WindowInput]:
    """The newest image of each group of a window (or why there is none), in time order."""
    from ..conversion.convert import ms_name

    out = []
    for gid, state in sorted(states.items()):
        ms = os.path.abspath(str(Path(output_dir) / ms_name(gid)))
        row = products_conn.execute(f"SELECT {_IMAGE_COLUMNS} FROM images i WHERE ms_path = ? AND "
                                    "type = 'image' ORDER BY id DESC LIMIT 1", (ms,)).fetchone()
        if row is None:
            out.append(WindowInput(gid, None, ms, reason=f"no image (group {state})"))
        else:
            out.append(WindowInput(gid, row[0], ms, row[1], row[2], **_quality(row[3], row[4])))
    return out


def images_between(products_conn: sqlite3.Connection, start_mjd: float, end_mjd: float) -> list[WindowInput]:
    """The newest image of every MS whose mid-time is in ``[start_mjd, end_mjd]``, in time order."""
    rows = products_conn.execute(
        f"SELECT m.path AS ms, {_IMAGE_COLUMNS} FROM ms_index m JOIN images i "
        "ON i.ms_path = m.path AND i.type = 'image' WHERE m.mid_mjd BETWEEN ? AND ? ORDER BY m.mid_mjd, i.id",
        (float(start_mjd), float(end_mjd))).fetchall()
    newest = {r[0]: r for r in rows}  # the last image of each MS wins
    return [WindowInput(Path(ms).stem, r[1], ms, r[2], r[3], **_quality(r[4], r[5])) for ms, r in newest.items()]


def fingerprint(inputs: list[WindowInput]) -> str:
    """Identity of the inputs: their paths, sizes and modification times (a rebuilt image changes it)."""
    h = hashlib.sha1()
    for i in inputs:
        h.update(f"{i.group_id}|{i.image}|".encode())
        if i.image:
            try:
                st = os.stat(i.image)
                h.update(f"{st.st_size}|{st.st_mtime_ns}".encode())
            except OSError:
                h.update(b"missing")
        h.update(b"\n")
    return h.hexdigest()


def unix_to_mjd(unix: float) -> float:
    """Unix seconds as an MJD (UTC)."""
    return UNIX_MJD + unix / 86400.0
