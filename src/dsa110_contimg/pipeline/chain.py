"""The per-group chain: convert -> (solve + register when a calibrator transits) -> apply -> image + QA.

Each stage is a plain function that computes and returns a result; the caller
(the streaming daemon) records results in the databases, so that stages can run
on remote workers.  Stages are idempotent: their outputs are written under
temporary names and moved into place, and a stage whose output exists is not
redone when the chain resumes from a checkpoint.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

STAGES = ("converted", "calibrated", "applied", "imaged")
"""Checkpoints, in order; ``processing_stage`` holds the last one finished."""


@dataclass
class ChainConfig:
    """What every stage needs (picklable, sent to workers)."""

    output_dir: Path
    """Folder of the Measurement Sets and images."""
    stage_dir: Path
    """Scratch folder for conversion."""
    antpos_csv: Path | None
    """Station coordinates CSV."""
    telescope_name: str
    """Telescope name stamped into the MS."""
    cal_registry_db: Path
    """Calibration registry (read by workers, written by the daemon)."""
    expected_subbands: int = 16
    """Subbands of a complete group."""
    allow_partial: bool = True
    """Convert groups that timed out with missing subbands (flagged)."""
    quick_image: bool = True
    """Quick imaging (1024 px, 500 iterations, 96 channels)."""
    catalog_path: Path | None = None
    """Master catalog for the QA crossmatch."""


@dataclass
class StageOutcome:
    """The result of one stage for one group."""

    group_id: str
    """Group."""
    stage: str
    """Stage finished."""
    ms_path: Path | None = None
    """The group's MS."""
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds spent."""
    payload: object = None
    """Stage-specific result (ConvertResult, CalibrateResult, ApplyResult, ImageResult + QA)."""
    calibrator: str | None = None
    """Calibrator transiting in the group, if any."""


def _group_from_files(group_id: str, files: dict[int, str]):
    from ..conversion.grouping import SubbandGroup, parse_subband_name

    parsed = {int(k): parse_subband_name(v) for k, v in files.items()}
    return SubbandGroup(group_id=group_id, files={k: v for k, v in parsed.items() if v is not None})


def calibrator_in_group(files: dict[int, str]):
    """The brightest calibrator transiting during the group (from a file header), or None."""
    from ..conversion.reader import read_meta
    from ..calibration.transits import find_calibrators

    meta = read_meta(next(iter(files.values())))
    jd = meta.time_jd
    half = float(meta.int_time_s.max()) / 2 / 86400.0
    t0, t1 = jd.min() - 2400000.5 - half, jd.max() - 2400000.5 + half
    import numpy as np

    found = [t for t in find_calibrators(t0, t1, float(np.degrees(meta.dec_rad))) if t.in_group]
    return found[0].calibrator if found else None


def stage_convert(group_id: str, files: dict[int, str], cfg: ChainConfig, force: bool = False) -> StageOutcome:
    """Convert the group (phased to a transiting calibrator when there is one); ``force`` rebuilds an existing MS."""
    from ..conversion.convert import ConvertOptions, convert_group, ms_name

    t0 = time.perf_counter()
    cal = calibrator_in_group(files)
    final = Path(cfg.output_dir) / ms_name(group_id)
    opts = ConvertOptions(output_dir=Path(cfg.output_dir), stage_dir=Path(cfg.stage_dir), antpos_csv=cfg.antpos_csv,
                          telescope_name=cfg.telescope_name, expected_subbands=cfg.expected_subbands,
                          allow_partial=cfg.allow_partial, skip_existing=not force)
    if cal is not None:
        opts.phase_center_deg, opts.field_name = (cal.ra_deg, cal.dec_deg), cal.name
    res = convert_group(_group_from_files(group_id, files), opts)
    return StageOutcome(group_id, "converted", final, {"convert": time.perf_counter() - t0, **res.timings}, res,
                        cal.name if cal else None)


def stage_calibrate(group_id: str, ms_path: Path, calibrator: str) -> StageOutcome:
    """Solve K, B and G on a calibrator group (the daemon registers the set)."""
    from ..calibration.solve import CalibrateOptions, calibrate_ms

    t0 = time.perf_counter()
    res = calibrate_ms(ms_path, CalibrateOptions(do_k=True, calibrator=calibrator))
    return StageOutcome(group_id, "calibrated", ms_path, {"calibrate": time.perf_counter() - t0, **res.timings},
                        res, calibrator)


def stage_apply(group_id: str, ms_path: Path, cfg: ChainConfig) -> StageOutcome:
    """Apply the set valid at the group's time (raises NoValidCalibrationError: the group is held)."""
    from ..calibration.apply import apply_calibration

    res = apply_calibration(ms_path, cfg.cal_registry_db)
    return StageOutcome(group_id, "applied", ms_path, {"apply": res.timings.get("total", 0.0)}, res)


def stage_image(group_id: str, ms_path: Path, cfg: ChainConfig) -> StageOutcome:
    """Image and run QA (the daemon records the products)."""
    from ..imaging.image import ImageOptions, image_ms
    from ..qa.image_qa import ImageQAOptions, run_image_qa

    t0 = time.perf_counter()
    img = image_ms(ms_path, ImageOptions(quick=cfg.quick_image))
    t1 = time.perf_counter()
    qa = run_image_qa(img.images.image, img.images.image.parent, ImageQAOptions(catalog_path=cfg.catalog_path),
                      pbcor_fits=img.images.pbcor)
    return StageOutcome(group_id, "imaged", ms_path, {"image": t1 - t0, "qa": time.perf_counter() - t1},
                        (img, qa))
