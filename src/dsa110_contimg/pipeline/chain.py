"""The per-group chain: convert -> (solve + register when a calibrator transits) -> apply -> image + QA.

Each stage is a plain function ``StageJob -> StageOutcome`` that computes and
returns a result; the caller (the streaming daemon) records results in the
databases, so that stages can run on remote workers.  Stages are idempotent:
their outputs are written under temporary names and moved into place, and a
stage whose output exists is not redone when the chain resumes from a
checkpoint.  The order, the checkpoints and the recording of each stage are in
:mod:`.stages` (the registry).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Union

import numpy as np

from ..calibration.apply import ApplyResult
from ..calibration.solve import CalibrateOptions, CalibrateResult, calibrate_ms
from ..calibration.transits import find_calibrators
from ..conversion.convert import ConvertOptions, ConvertResult, convert_group
from ..conversion.grouping import SubbandGroup, parse_subband_name
from ..conversion.reader import read_meta
from ..imaging.image import ImageOptions, ImageResult, image_grid, image_ms
from ..qa.gates import QualityResult
from ..qa.image_qa import ImageQAResult
from ..selfcal.outliers import OutlierOptions, find_outliers, subtract_outliers
from ..selfcal.run import SelfcalOptions, selfcal_ms
from ..timeconv import SECONDS_PER_DAY, jd_to_mjd
from .calsets import apply_calibration
from .image_stage import run_qa

log = logging.getLogger(__name__)


@dataclass(frozen=True)
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
    flagger: str = "aoflagger"
    """RFI flagger of the flag stage: 'aoflagger', 'casa' or 'none' (no flag stage)."""
    outliers: OutlierOptions | None = field(default_factory=OutlierOptions)
    """Subtract bright master-catalog sources outside the image from target groups before imaging (None: never)."""
    selfcal: object | None = None
    """:class:`~dsa110_contimg.selfcal.run.SelfcalOptions` to self-calibrate target groups before imaging
    (None: no self-calibration)."""
    products_db: Path | None = None
    """Products database (read by workers, e.g. the known sources for photometry; written by the daemon)."""


@dataclass(frozen=True)
class StageJob:
    """One stage of one group, as sent to a worker."""

    group_id: str
    """Group."""
    files: Mapping[int, str]
    """Subband index -> file."""
    ms_path: Path
    """The group's Measurement Set (to be written by conversion)."""
    cfg: ChainConfig
    """Settings of the chain."""
    calibrator: str | None = None
    """Calibrator the MS was phased to (a calibrator group), when known."""
    force: bool = False
    """Redo the stage even if its output exists (an operator swapped a subband file)."""


@dataclass(frozen=True)
class ImageProducts:
    """Result of the image stage: the images and their QA."""

    image: ImageResult
    """Images written (FITS, primary-beam corrected, ...)."""
    qa: ImageQAResult
    """QA of the image."""
    quality: QualityResult | None = None
    """Quality gates of the image."""


StagePayload = Union[ConvertResult, CalibrateResult, ApplyResult, ImageProducts]
"""What a stage returns besides its timings."""


@dataclass(frozen=True)
class StageOutcome:
    """The result of one stage for one group."""

    group_id: str
    """Group."""
    stage: str
    """Checkpoint reached (see :mod:`.stages`)."""
    ms_path: Path | None
    """The group's MS."""
    timings: dict[str, float]
    """Seconds spent."""
    payload: StagePayload
    """The stage's typed result."""
    calibrator: str | None = None
    """Calibrator transiting in the group, if any."""


def _group_from_files(group_id: str, files: Mapping[int, str]):
    parsed = {int(k): parse_subband_name(v) for k, v in files.items()}
    return SubbandGroup(group_id=group_id, files={k: v for k, v in parsed.items() if v is not None})


def calibrator_in_group(files: Mapping[int, str]):
    """The brightest calibrator transiting during the group (from a file header), or None."""
    meta = read_meta(next(iter(files.values())))
    mjd = jd_to_mjd(meta.time_jd)
    half = float(meta.int_time_s.max()) / 2 / SECONDS_PER_DAY
    t0, t1 = mjd.min() - half, mjd.max() + half
    found = [t for t in find_calibrators(t0, t1, float(np.degrees(meta.dec_rad))) if t.in_group]
    return found[0].calibrator if found else None


def run_convert(job: StageJob) -> StageOutcome:
    """Convert the group (phased to a transiting calibrator when there is one); ``job.force`` rebuilds the MS."""
    t0 = time.perf_counter()
    cfg = job.cfg
    cal = calibrator_in_group(job.files)
    extra = {"phase_center_deg": (cal.ra_deg, cal.dec_deg), "field_name": cal.name} if cal is not None else {}
    opts = ConvertOptions(output_dir=Path(cfg.output_dir), stage_dir=Path(cfg.stage_dir), antpos_csv=cfg.antpos_csv,
                          telescope_name=cfg.telescope_name, expected_subbands=cfg.expected_subbands,
                          allow_partial=cfg.allow_partial, skip_existing=not job.force, **extra)
    res = convert_group(_group_from_files(job.group_id, job.files), opts)
    return StageOutcome(job.group_id, "converted", job.ms_path, {"convert": time.perf_counter() - t0, **res.timings},
                        res, cal.name if cal else None)


def run_calibrate(job: StageJob) -> StageOutcome:
    """Solve K, B and G on a calibrator group (the daemon registers the set)."""
    t0 = time.perf_counter()
    res = calibrate_ms(job.ms_path, CalibrateOptions(do_k=True, calibrator=job.calibrator))
    return StageOutcome(job.group_id, "calibrated", job.ms_path,
                        {"calibrate": time.perf_counter() - t0, **res.timings}, res, job.calibrator)


def run_apply(job: StageJob) -> StageOutcome:
    """Apply the set valid at the group's time (raises NoValidCalibrationError: the group is held)."""
    res = apply_calibration(job.ms_path, job.cfg.cal_registry_db)
    return StageOutcome(job.group_id, "applied", job.ms_path, {"apply": res.timings.get("total", 0.0)}, res)


def selfcal_options(settings):
    """The chain's self-calibration options: the defaults when ``settings.selfcal`` (``PIPELINE_SELFCAL``), else None."""
    if not getattr(settings, "selfcal", False):
        return None
    return SelfcalOptions()


def run_image(job: StageJob) -> StageOutcome:
    """Image, run QA and the quality gates (the daemon records the products)."""
    t0 = time.perf_counter()
    timings = {}
    sc = oc = None
    opts = ImageOptions(quick=job.cfg.quick_image)
    target = job.calibrator is None
    if target and job.cfg.outliers is not None and job.cfg.catalog_path is not None:
        cell, size = image_grid(job.ms_path, opts)
        found = find_outliers(job.ms_path, job.cfg.catalog_path, cell * size / 7200.0, job.cfg.outliers)
        oc = subtract_outliers(job.ms_path, found, job.cfg.outliers) if found else None
        timings["outliers"] = time.perf_counter() - t0
    if target and job.cfg.selfcal is not None:
        t_sc = time.perf_counter()
        sc = selfcal_ms(job.ms_path, job.cfg.selfcal, job.cfg.catalog_path)
        timings["selfcal"] = time.perf_counter() - t_sc
    t_img = time.perf_counter()
    img = image_ms(job.ms_path, opts)
    t1 = time.perf_counter()
    qa, quality = run_qa(job.ms_path, img, opts, job.cfg.catalog_path)
    if sc is not None:
        qa.selfcal = sc.to_dict()  # stored with the image's QA
    if oc is not None:
        qa.outliers = oc.to_dict()
    timings.update(image=t1 - t_img, qa=time.perf_counter() - t1)
    return StageOutcome(job.group_id, "imaged", job.ms_path, timings, ImageProducts(img, qa, quality))
