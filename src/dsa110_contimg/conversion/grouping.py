"""Group correlator subband files into observations, and validate their headers."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

FILENAME_RE = re.compile(r"^(?P<ts>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})_sb(?P<sb>\d{2})\.hdf5$")


class ConversionInputError(ValueError):
    """Bad input: the message names the file(s) and the reason, on one line."""

    def __init__(self, message: str, files: list[Path] | None = None):
        super().__init__(message)
        self.files = [Path(f) for f in (files or [])]


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


def parse_subband_name(path: str | Path) -> SubbandFile | None:
    """Parse a subband file name; ``None`` for other names (including ``_incomplete`` files)."""
    path = Path(path)
    m = FILENAME_RE.match(path.name)
    if not m:
        return None
    return SubbandFile(path=path, timestamp=datetime.strptime(m["ts"], "%Y-%m-%dT%H:%M:%S"), subband=int(m["sb"]))


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


def discover_groups(input_dir: str | Path, start: str | None = None, end: str | None = None,
                    tolerance_s: float = 30.0) -> list[SubbandGroup]:
    """Find subband files in ``input_dir`` and group them, within an optional time range.

    ``_incomplete`` files and other names are ignored.
    """
    t0 = datetime.fromisoformat(start) if start else None
    t1 = datetime.fromisoformat(end) if end else None
    parsed = [p for p in (parse_subband_name(x) for x in Path(input_dir).iterdir()) if p is not None]
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
