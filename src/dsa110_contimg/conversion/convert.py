"""Convert one group of subband files into one Measurement Set: the conversion stage.

:func:`convert_group` takes :class:`ConvertOptions` and returns a
:class:`ConvertResult` (MS path, writer used, timings).  Writers:

* ``direct-subband``: subbands are read (h5py) and rephased in parallel threads
  and written straight into their channel slice of one MS with python-casacore;
  UVW come from casacore measures for every integration.
* ``monolithic``: pyuvdata reads all subbands, rephases and writes the MS.
* ``auto``: ``monolithic`` for <= 2 subbands, else ``direct-subband``.

Both writers flag NaN/Inf visibilities (set to 0, counted in the result); a
subband whose visibilities are all NaN/Inf is bad input.  A full or read-only
output / stage folder is an :class:`~dsa110_contimg.errors.EnvironmentFault`
with one line; staging is removed whatever happens.
"""

from __future__ import annotations

import logging
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..config import get_settings
from .direct_writer import write_direct
from .group_meta import read_group_metas
from .grouping import ConversionInputError, SubbandGroup, check_group_complete, discover_groups
from .monolithic import write_monolithic
from .ms_writer import estimate_ms_bytes
from .staging import StagingArea, clean_orphan_staging, disk_faults

log = logging.getLogger(__name__)


@dataclass
class ConvertOptions:
    """Options of the conversion stage (mirrors ``contimg convert``)."""

    output_dir: Path
    """Folder for the Measurement Sets."""
    writer: str = "auto"
    """'auto', 'monolithic' or 'direct-subband'."""
    stage_dir: Path | None = None
    """Scratch folder (default: PIPELINE_STAGE_DIR); used when it has 3x the group size free."""
    tolerance_s: float = 30.0
    """Timestamp tolerance for grouping (s)."""
    expected_subbands: int = 16
    """Subbands of a complete group."""
    allow_partial: bool = False
    """Convert groups with missing subbands (their channels flagged)."""
    skip_existing: bool = False
    """Do not reconvert a group whose MS exists."""
    dry_run: bool = False
    """Only report what would be converted."""
    phase_per_integration: bool = False
    """One field per integration (meridian_icrs_t0..) instead of one phase centre."""
    antpos_csv: Path | None = None
    """Station coordinates CSV (None: UVH5 header positions)."""
    telescope_name: str = "OVRO_DSA"
    """OBSERVATION::TELESCOPE_NAME."""
    fringestop_lon_deg: float | None = None
    """Longitude of the correlator's fringe-stop meridian (default: telescope.FRINGESTOP_LON_DEG)."""
    threads: int = 2
    """Threads reading and rephasing subbands."""
    phase_center_deg: tuple[float, float] | None = None
    """Phase to this J2000 (ra, dec) instead of the meridian (e.g. a transiting calibrator)."""
    field_name: str | None = None
    """FIELD::NAME for ``phase_center_deg`` (e.g. the calibrator's name)."""


@dataclass
class ConvertResult:
    """Outcome of converting one group."""

    group_id: str
    """Group timestamp."""
    ms_path: Path | None
    """The MS written (None for a dry run or a skipped group)."""
    writer: str
    """Writer used."""
    status: str
    """'converted', 'skipped' or 'dry-run'."""
    n_subbands: int
    """Subband files used."""
    missing_subbands: list[int] = field(default_factory=list)
    """Subbands absent (flagged in the MS)."""
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds: load, phase, write, combine, finalize, total."""
    phase_center_deg: tuple[float, float] | None = None
    """J2000 (ra, dec) of the phase centre."""
    mid_mjd: float | None = None
    """Mid-time of the group."""
    nonfinite_samples: int = 0
    """NaN/Inf visibility samples flagged (and set to 0) over the group."""
    nonfinite_by_subband: dict[int, int] = field(default_factory=dict)
    """Subband -> NaN/Inf samples flagged, for every subband converted."""


def ms_name(group_id: str) -> str:
    """MS file name of a group."""
    return f"{group_id}.ms"


def choose_writer(requested: str, n_subbands: int, partial: bool) -> str:
    """Resolve ``auto`` (monolithic for <= 2 subbands) and force direct-subband for partial groups."""
    if requested not in ("auto", "monolithic", "direct-subband"):
        raise ValueError(f"unknown writer {requested!r}")
    if partial:
        return "direct-subband"
    if requested == "auto":
        return "monolithic" if n_subbands <= 2 else "direct-subband"
    return requested


def convert_directory(input_dir: str | Path, opts: ConvertOptions, start: str | None = None,
                      end: str | None = None) -> list[ConvertResult | ConversionInputError]:
    """Convert every group found in ``input_dir``; bad groups are returned as errors, not raised."""
    out: list[ConvertResult | ConversionInputError] = []
    for g in discover_groups(input_dir, start, end, opts.tolerance_s):
        try:
            out.append(convert_group(g, opts))
        except ConversionInputError as exc:
            log.error("%s", exc)
            out.append(exc)
    return out


def convert_group(group: SubbandGroup, opts: ConvertOptions) -> ConvertResult:
    """Convert one group into ``<output_dir>/<group_id>.ms``.

    Raises
    ------
    ConversionInputError
        Duplicate or missing subbands, unreadable or malformed files, disagreeing
        headers, a subband whose visibilities are all NaN/Inf: the message names
        the files; no input file is moved or deleted.
    EnvironmentFault
        The output or stage folder is full or read-only: one line naming the
        folder and its free space; nothing is moved and staging is removed.
    """
    t_total = time.perf_counter()
    check_group_complete(group, opts.expected_subbands, opts.allow_partial)
    missing = group.missing(opts.expected_subbands)
    writer = choose_writer(opts.writer, len(group.files), bool(missing))
    out_dir = Path(opts.output_dir)
    final = out_dir / ms_name(group.group_id)
    res = ConvertResult(group.group_id, final, writer, "converted", len(group.files), missing)
    if opts.skip_existing and final.exists():
        res.status = "skipped"
        return res
    if opts.dry_run:
        res.status, res.ms_path = "dry-run", None
        return res
    t_meta = time.perf_counter()
    metas = read_group_metas(group)
    res.timings["load"] = time.perf_counter() - t_meta
    with disk_faults(group.group_id, out_dir, "output"):
        out_dir.mkdir(parents=True, exist_ok=True)
    size = sum(f.path.stat().st_size for f in group.files.values())
    stage_root = opts.stage_dir
    if stage_root is None:
        stage_root = get_settings().stage_dir
    clean_orphan_staging([Path(stage_root), out_dir])
    previous = install_sigterm_handler()
    try:
        _convert_staged(group, opts, writer, metas, Path(stage_root), out_dir, final, 3 * size, res)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    res.timings["total"] = time.perf_counter() - t_total
    tm = res.timings
    log.info("converted %s [%s, %d sb] load %.1fs phase %.1fs write %.1fs combine %.1fs finalize %.1fs "
             "total %.1fs -> %s", group.group_id, writer, len(group.files), tm.get("load", 0), tm.get("phase", 0),
             tm.get("write", 0), tm.get("combine", 0), tm.get("finalize", 0), tm["total"], final)
    return res


def _convert_staged(group, opts, writer, metas, stage_root, out_dir, final, needed, res) -> None:
    m0 = metas[0]
    nsb = max(opts.expected_subbands, len(group.files), max(group.files) + 1)
    ms_bytes = estimate_ms_bytes(m0.nblts, m0.nfreqs * nsb, m0.npols)
    with StagingArea.choose(stage_root, out_dir, needed, group.group_id, ms_bytes) as stage:
        staged = stage.path / ms_name(group.group_id)
        with disk_faults(group.group_id, stage.path.parent, stage.role):
            if writer == "direct-subband":
                info = write_direct(group, staged, opts, metas)
            else:
                info = write_monolithic(group, staged, opts, metas)
        res.timings.update({k: v + res.timings.get(k, 0.0) for k, v in info["timings"].items()})
        res.phase_center_deg = info["phase_center_deg"]
        res.mid_mjd = info["mid_mjd"]
        _record_nonfinite(group, info["nonfinite"], res)
        t0 = time.perf_counter()
        with disk_faults(group.group_id, out_dir, "output"):
            stage.commit(staged, final)
        res.timings["finalize"] = time.perf_counter() - t0


def _record_nonfinite(group: SubbandGroup, per_subband: dict[int, int], res: ConvertResult) -> None:
    """Store the NaN/Inf counts in ``res`` and log them once (WARNING) when there are any."""
    res.nonfinite_by_subband = {int(sb): int(n) for sb, n in sorted(per_subband.items())}
    res.nonfinite_samples = sum(res.nonfinite_by_subband.values())
    if res.nonfinite_samples:
        parts = ", ".join(f"{group.files[sb].path.name} {n}" for sb, n in res.nonfinite_by_subband.items() if n)
        log.warning("group %s: %d NaN/Inf visibilities flagged and set to 0 (%s)", group.group_id,
                    res.nonfinite_samples, parts)


def install_sigterm_handler():
    """Turn SIGTERM into KeyboardInterrupt so that staging cleanup runs; returns the previous handler."""
    def _raise(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        return signal.signal(signal.SIGTERM, _raise)
    except ValueError:  # not in the main thread
        return None

