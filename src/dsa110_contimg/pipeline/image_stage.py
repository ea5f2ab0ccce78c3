"""Imaging stage wiring: image an MS, run QA, record MS, image and detections in the products DB."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ..db import products as pdb
from ..imaging.image import ImageOptions, image_ms
from ..ms import read_ms_info
from ..qa.gates import QualityOptions, QualityResult, assess_image
from ..qa.image_qa import ImageQAOptions, run_image_qa
from ..qa.thermal import ThermalOptions

log = logging.getLogger(__name__)


@dataclass
class ImagedProduct:
    """Result of :func:`image_and_record`."""

    ms_path: Path
    """The MS imaged."""
    image: object
    """:class:`~dsa110_contimg.imaging.image.ImageResult`."""
    qa: object | None
    """:class:`~dsa110_contimg.qa.image_qa.ImageQAResult` (None with --skip-fits)."""
    image_id: int | None
    """Row id in ``images``."""
    quality: QualityResult | None = None
    """Quality gates of the image (None with --skip-fits)."""
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds: image, qa, record, total."""


def image_and_record(ms_path: str | Path, products_db: str | Path, opts=None, catalog_path: Path | None = None,
                     cal_applied: bool | None = None) -> ImagedProduct:
    """Image one MS, run image QA, and upsert ``ms_index``, ``images`` and ``detections``.

    Errors of the imaging stage are recorded in ``ms_index`` (status 'failed',
    stage 'imaging') before they are raised.
    """
    t_all = time.perf_counter()
    ms_path = Path(ms_path).absolute()
    opts = opts or ImageOptions()
    conn = pdb.connect(products_db)
    try:
        record_ms(conn, ms_path, "imaging", "in_progress", cal_applied)
        try:
            res = image_ms(ms_path, opts)
        except Exception as exc:
            pdb.upsert_ms(conn, pdb.MSRecord(path=str(ms_path), status="failed", stage="imaging"))
            log.debug("imaging %s failed: %s", ms_path.name, exc)  # the caller reports it, once
            raise
        timings = {"image": res.timings.get("total", 0.0)}
        qa = None
        image_id = None
        if res.images.image is not None and res.images.image.suffix == ".fits":
            tq = time.perf_counter()
            qa, quality = run_qa(ms_path, res, opts, catalog_path)
            timings["qa"] = time.perf_counter() - tq
            tr = time.perf_counter()
            image_id = record_image(conn, ms_path, res, qa, quality)
            timings["record"] = time.perf_counter() - tr
        record_ms(conn, ms_path, "imaged", "completed", imagename=str(res.images.prefix))
    finally:
        conn.close()
    timings["total"] = time.perf_counter() - t_all
    return ImagedProduct(ms_path, res, qa, image_id, quality, timings)


def run_qa(ms_path: Path, res, opts: ImageOptions, catalog_path: Path | None):
    """Image QA (:func:`~dsa110_contimg.qa.image_qa.run_image_qa`) and quality gates
    (:func:`~dsa110_contimg.qa.gates.assess_image`, thermal noise for the weighting and grid imaged) of an image."""
    qa = run_image_qa(res.images.image, res.images.image.parent, ImageQAOptions(catalog_path=catalog_path),
                      pbcor_fits=res.images.pbcor)
    thermal = ThermalOptions(weighting=opts.weighting, robust=opts.robust, imsize=res.imsize,
                             cell_arcsec=res.cell_arcsec)
    return qa, assess_image(qa, ms_path, QualityOptions(thermal=thermal))


def quality_fields(quality: QualityResult | None) -> dict:
    """The ``images`` fields of the quality gates (empty when not assessed)."""
    if quality is None:
        return {}
    fs, th = quality.flux_scale, quality.thermal
    return {"flux_scale_ratio": fs.ratio, "flux_scale_err": fs.ratio_err, "flux_scale_n": fs.n_refs,
            "thermal_noise_jy": th.noise_jy if th is not None and math.isfinite(th.noise_jy) else None,
            "rms_over_thermal": quality.rms_over_thermal, "ref_offset_arcsec": fs.offset_arcsec,
            "quality_state": quality.state,
            "gates": {"state": quality.state, "gates": quality.gates_dict(), "reasons": quality.reasons(),
                      "flux_scale": fs.to_dict(), "thermal": asdict(th) if th is not None else None}}


def record_image(conn, ms_path: Path, res, qa, quality: QualityResult | None = None) -> int:
    """Upsert the image (and its pbcor twin) with its QA and quality gates, and replace its detections;
    returns the image id."""
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    qa_dict = qa.to_dict()
    qa_dict["warnings"] = res.warnings
    image_id = pdb.upsert_image(conn, pdb.ImageRecord(
        path=str(res.images.image), ms_path=str(ms_path), created_at=now, type="image",
        beam_major_arcsec=qa.bmaj_arcsec, beam_minor_arcsec=qa.bmin_arcsec, beam_pa_deg=qa.bpa_deg,
        noise_jy=qa.rms_jy, peak_jy=qa.peak_jy, dynamic_range=qa.dynamic_range, pbcor=False,
        backend=res.images.backend, freq_hz=qa_dict.get("freq_hz"),
        thumbnail_path=str(qa.thumbnail_path) if qa.thumbnail_path else None,
        qa_plot_path=str(qa.qa_plot_path) if qa.qa_plot_path else None,
        fits_path=str(res.images.image), flux_ratio_median=qa.flux_ratio_median,
        astrometry_offset_arcsec=qa.astrometry_offset_arcsec, qa=_jsonable(qa_dict),
        timings=res.timings, status="ok", **quality_fields(quality)))
    if res.images.pbcor is not None:
        pdb.upsert_image(conn, pdb.ImageRecord(
            path=str(res.images.pbcor), ms_path=str(ms_path), created_at=now, type="pbcor",
            beam_major_arcsec=qa.bmaj_arcsec, beam_minor_arcsec=qa.bmin_arcsec, pbcor=True,
            backend=res.images.backend, fits_path=str(res.images.pbcor), status="ok"))
    pdb.replace_detections(conn, image_id, [_detection(s, m) for s, m in zip(qa.sources, qa.matches)])
    return image_id


def record_ms(conn, ms_path: Path, stage: str, status: str, cal_applied: bool | None = None,
              imagename: str | None = None) -> None:
    """Upsert the MS row with its times, phase centre, stage and status."""
    info = read_ms_info(ms_path)
    ra, dec = np.degrees(info.phase_centre_rad)
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    pdb.upsert_ms(conn, pdb.MSRecord(path=str(ms_path), start_mjd=info.start_mjd, end_mjd=info.end_mjd,
                                     ra_deg=float(ra % 360), dec_deg=float(dec),
                                     stage=stage, status=status, cal_applied=cal_applied, imagename=imagename,
                                     processed_at=now if status == "completed" else None))


def _jsonable(d: dict) -> dict:
    """Drop the per-source lists (they live in ``detections``) from the QA dict stored per image."""
    return {k: v for k, v in d.items() if k not in ("sources", "matches")}


def _detection(src, match):
    m = match or {}
    ratio = m.get("flux_ratio")
    return pdb.Detection(ra_deg=src.ra_deg, dec_deg=src.dec_deg, ra_err_arcsec=src.ra_err_arcsec,
                     dec_err_arcsec=src.dec_err_arcsec, peak_jy=src.peak_jy, peak_err_jy=src.peak_err_jy,
                     int_jy=src.int_jy, int_err_jy=src.int_err_jy, snr=src.snr,
                     catalog_source_id=m.get("catalog_source_id"), catalog_sep_arcsec=m.get("catalog_sep_arcsec"),
                     catalog_flux_jy=m.get("catalog_flux_jy"), flux_ratio=ratio if ratio is not None and math.isfinite(ratio) else None)
