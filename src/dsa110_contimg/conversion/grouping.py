"""Group correlator subband files into observations, and validate their headers."""

from __future__ import annotations

import logging
import os
import re
import stat
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from ..errors import BadInputError

log = logging.getLogger(__name__)

FILENAME_RE = re.compile(r"(?P<ts>[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2})_sb(?P<sb>[0-9]{2})\.hdf5",
                         re.ASCII)
"""Strict ASCII name of a subband file (matched with ``fullmatch``: no trailing newline, no Unicode digits)."""
INCOMPLETE_SUFFIX = "_incomplete.hdf5"
"""Suffix of a file the correlator is still writing (renamed when complete)."""


class ConversionInputError(BadInputError):
    """Bad input: the message names the file(s) and the reason, on one line."""


@dataclass
class SubbandFile:
    """One ``YYYY-mm-ddTHH:MM:SS_sbNN.hdf5`` file."""

    path: Path
    """File path."""
    timestamp: datetime
    """Time stamped in the name."""
    subband: int
    """Subband index NN (sb00 is the highest frequency)."""


@dataclass
class SubbandGroup:
    """The files of one observation."""

    group_id: str
    """Earliest timestamp of the group, ISO (``YYYY-mm-ddTHH:MM:SS``)."""
    files: dict[int, SubbandFile]
    """Subband index -> file."""
    duplicates: list[SubbandFile] = field(default_factory=list)
    """Extra files claiming a subband already present."""

    def missing(self, expected: int) -> list[int]:
        """Subband indices absent from the group."""
        return [i for i in range(expected) if i not in self.files]

    def paths(self) -> list[Path]:
        """Paths ordered by subband index."""
        return [self.files[k].path for k in sorted(self.files)]


@dataclass(frozen=True)
class NameCheck:
    """Verdict on a file name: the parsed file, or why it is set aside."""

    file: SubbandFile | None
    """The parsed subband file, or ``None``."""
    reason: str | None = None
    """Why the name is not a usable subband file (``None`` when it is)."""
    in_progress: bool = False
    """A ``_incomplete`` file still being written (not an error: skipped quietly)."""


def check_subband_name(path: str | Path, expected_subbands: int | None = None) -> NameCheck:
    """Check a subband file name; never raises.

    Parameters
    ----------
    path
        The file (only its name is looked at).
    expected_subbands
        Subbands of a complete group: an index at or above it is out of range (``None``: no check).

    Returns
    -------
    NameCheck
        ``file`` set when the name is ``YYYY-mm-ddTHH:MM:SS_sbNN.hdf5`` in ASCII digits with a
        real calendar date and time and ``NN < expected_subbands``; otherwise ``reason``.
    """
    name = Path(path).name
    if name.endswith(INCOMPLETE_SUFFIX):
        return NameCheck(None, "still being written (_incomplete)", in_progress=True)
    m = FILENAME_RE.fullmatch(name)
    if not m:
        return NameCheck(None, "name is not YYYY-mm-ddTHH:MM:SS_sbNN.hdf5")
    try:
        ts = datetime.strptime(m["ts"], "%Y-%m-%dT%H:%M:%S")
    except ValueError as exc:
        return NameCheck(None, f"impossible date or time in the name ({exc})")
    sb = int(m["sb"])
    if expected_subbands is not None and sb >= expected_subbands:
        return NameCheck(None, f"subband sb{sb:02d} out of range (expected sb00..sb{expected_subbands - 1:02d})")
    return NameCheck(SubbandFile(path=Path(path), timestamp=ts, subband=sb))


def parse_subband_name(path: str | Path, expected_subbands: int | None = None) -> SubbandFile | None:
    """Parse a subband file name; ``None`` for anything else (see :func:`check_subband_name`); never raises."""
    return check_subband_name(path, expected_subbands).file


def group_files(files: list[SubbandFile], tolerance_s: float = 30.0) -> list[SubbandGroup]:
    """Group files by timestamp: a file joins a group whose first file is within ``tolerance_s``.

    Parameters
    ----------
    files
        Parsed subband files, any order.
    tolerance_s
        Maximum spread of timestamps inside a group (s).

    Returns
    -------
    list of SubbandGroup
        In time order; duplicate subbands are kept aside in ``duplicates``.
    """
    groups: list[SubbandGroup] = []
    for f in sorted(files, key=lambda f: (f.timestamp, f.subband, f.path.name)):
        if groups:
            g = groups[-1]
            first = datetime.strptime(g.group_id, "%Y-%m-%dT%H:%M:%S")
            if (f.timestamp - first).total_seconds() <= tolerance_s:
                if f.subband in g.files:
                    g.duplicates.append(f)
                else:
                    g.files[f.subband] = f
                continue
        groups.append(SubbandGroup(group_id=f.timestamp.strftime("%Y-%m-%dT%H:%M:%S"), files={f.subband: f}))
    return groups


def is_regular_file(path: str | Path) -> bool:
    """True for a regular file (not a symlink, FIFO, device or folder); never raises."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except (OSError, ValueError):
        return False


def discover_groups(input_dir: str | Path, start: str | None = None, end: str | None = None,
                    tolerance_s: float = 30.0, expected_subbands: int | None = None) -> list[SubbandGroup]:
    """Find subband files in ``input_dir`` and group them, within an optional time range.

    Only regular files with a valid name (see :func:`check_subband_name`) are
    grouped; ``_incomplete`` files are skipped and other names are logged.
    """
    t0 = datetime.fromisoformat(start) if start else None
    t1 = datetime.fromisoformat(end) if end else None
    parsed = []
    for x in sorted(Path(input_dir).iterdir()):
        chk = check_subband_name(x, expected_subbands)
        if chk.file is None:
            if not chk.in_progress and x.name.endswith(".hdf5"):
                log.warning("%s: set aside: %s", x.name, chk.reason)
            continue
        if not is_regular_file(x):
            log.warning("%s: set aside: not a regular file", x.name)
            continue
        parsed.append(chk.file)
    groups = group_files(parsed, tolerance_s)
    out = []
    for g in groups:
        gt = datetime.strptime(g.group_id, "%Y-%m-%dT%H:%M:%S")
        if (t0 is None or gt >= t0) and (t1 is None or gt <= t1):
            out.append(g)
    return out


def check_group_complete(group: SubbandGroup, expected: int, allow_partial: bool) -> None:
    """Raise :class:`ConversionInputError` for duplicates, or missing subbands without ``allow_partial``."""
    if group.duplicates:
        names = ", ".join(d.path.name for d in group.duplicates)
        raise ConversionInputError(f"group {group.group_id}: duplicate subband file(s) {names}",
                                   [d.path for d in group.duplicates])
    missing = group.missing(expected)
    if missing and not allow_partial:
        present = ", ".join(f.path.name for f in group.files.values())
        raise ConversionInputError(
            f"group {group.group_id}: missing subband(s) {', '.join(f'sb{m:02d}' for m in missing)} "
            f"(present: {present}); use --allow-partial to convert with those channels flagged",
            [f.path for f in group.files.values()])


def check_headers_agree(metas: list) -> None:
    """Raise :class:`ConversionInputError` when subband headers disagree.

    Compares antennas, baseline layout, times, pointing declination and channel count.
    ``metas`` are :class:`~dsa110_contimg.conversion.reader.SubbandMeta`.
    """
    ref = metas[0]
    for m in metas[1:]:
        problems = []
        if m.nfreqs != ref.nfreqs:
            problems.append(f"channel count {m.nfreqs} != {ref.nfreqs}")
        if m.nblts != ref.nblts or not np.array_equal(m.ant_1, ref.ant_1) or not np.array_equal(m.ant_2, ref.ant_2):
            problems.append("antennas/baselines differ")
        elif not np.allclose(m.time_jd, ref.time_jd, rtol=0, atol=1e-8):
            problems.append("integration times differ")
        if abs(m.dec_rad - ref.dec_rad) > 1e-9:
            problems.append(f"declination {np.degrees(m.dec_rad):.4f} != {np.degrees(ref.dec_rad):.4f} deg")
        if m.npols != ref.npols:
            problems.append("polarizations differ")
        if problems:
            raise ConversionInputError(f"{m.path.name}: header disagrees with {ref.path.name}: "
                                       + "; ".join(problems), [m.path, ref.path])
