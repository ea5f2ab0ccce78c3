"""The ``photometry`` stage (after ``image``): forced photometry, association and light curves of one group.

:func:`run_photometry` runs on a worker: it reads the products database (the group's
image and detections, the survey's sources, earlier images) and the master catalog, and
returns a :class:`~dsa110_contimg.photometry.models.PhotometryResult`; it writes nothing.
:func:`record_photometry` runs in the daemon and writes the measurements and sources
(:func:`dsa110_contimg.db.sources.record_photometry`) and the ``photometry_time``.

Calibrator groups are not photometered (:func:`needed`): their images are limited by the
calibrator's sidelobes (tens of artefacts above 5 sigma in the small preset), and the
calibrator's own solutions, solved on a calibrator-only model, suppress the other sources of
that field (measured 6-40% low in the small preset, against < 2% in the target groups
calibrated with the same tables), which would make every steady source there variable.

An image whose quality gates failed (``images.quality_state = 'fail'``, :mod:`dsa110_contimg.qa.gates`) is not
photometered: the stage returns a :class:`PhotometrySkipped` naming the failing gates, the daemon logs it and
records it in the group's metrics (``photometry_skipped``), and none of the image's fluxes reach the light
curves or their variability metrics (nor is it offered to later new sources' backfill, which only visits
photometered images).

A failure here fails (after the usual retries) the group at this stage, with a message
starting ``photometry:``; the group's image, its QA and its products rows are kept.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import ContimgError
from .chain import StageJob, StageOutcome

log = logging.getLogger(__name__)

CHECKPOINT = "photometered"
"""Queue checkpoint of the stage."""


@dataclass(frozen=True)
class PhotometrySkipped:
    """Payload of a group whose image was not photometered."""

    image_id: int
    """The image."""
    reason: str
    """Why (e.g. ``'quality gates failed: rms_thermal 12.3 > 10 (fail)'``)."""


class PhotometryStageError(ContimgError, RuntimeError):
    """The photometry of a group cannot run (no image recorded, no products database); retried, then failed."""


def needed(job: StageJob) -> bool:
    """Whether a group is photometered: every target group (not the calibrator transits, see the module docstring)."""
    return job.calibrator is None


def _open_products(job: StageJob):
    """A read-only connection to the products database holding the group's image, and its path.

    ``job.cfg.products_db`` when the chain carries it; else the first of the settings'
    ``products_db`` and ``products.sqlite3`` beside the calibration registry (the layout of
    the default state folder and of the demo) that has an image of the group's MS.
    """
    from ..db import products as pdb

    ms = str(Path(job.ms_path).absolute())
    given = getattr(job.cfg, "products_db", None)
    if given is not None:
        candidates = [Path(given)]
    else:
        from ..config import get_settings

        candidates = list(dict.fromkeys([Path(get_settings().products_db),
                                         Path(job.cfg.cal_registry_db).with_name("products.sqlite3")]))
    for path in candidates:
        conn = pdb.connect_readonly(path)
        if conn is None:
            continue
        if given is not None or pdb.count_images(conn, ms_path=ms, type="image"):
            return conn, path
        conn.close()
    raise PhotometryStageError(f"photometry of {job.ms_path.name}: no products database with its image "
                               f"({', '.join(str(c) for c in candidates)})")


class _Reader:
    """:class:`~dsa110_contimg.photometry.models.SurveyReader` over a read-only products connection."""

    def __init__(self, conn):
        self.conn = conn

    def max_source_id(self) -> int:
        from ..db import sources as sdb

        return sdb.max_source_id(self.conn)

    def sources_in_cone(self, ra_deg: float, dec_deg: float, radius_deg: float) -> dict:
        from ..db import sources as sdb

        return sdb.sources_in_cone(self.conn, ra_deg, dec_deg, radius_deg)

    def detections(self, image_id: int):
        from ..db import products as pdb

        return pdb.get_detections(self.conn, image_id)

    def earlier_images(self, ra_deg: float, dec_deg: float, before_mjd: float, limit: int):
        from ..db import sources as sdb

        return sdb.earlier_images(self.conn, ra_deg, dec_deg, before_mjd, limit)


def run_photometry(job: StageJob) -> StageOutcome:
    """Photometry of the group's primary-beam-corrected image (worker side; reads, never writes); a
    :class:`PhotometrySkipped` payload when the image failed its quality gates."""
    from ..db import products as pdb
    from ..ms import read_ms_info
    from ..photometry.measure import photometer_image
    from ..photometry.models import PhotometryOptions

    t0 = time.perf_counter()
    conn, db = _open_products(job)
    try:
        ms = str(Path(job.ms_path).absolute())
        images = pdb.list_images(conn, ms_path=ms, type="image", limit=1)
        pbcor = pdb.list_images(conn, ms_path=ms, type="pbcor", limit=1)
        if not images or not pbcor:
            raise PhotometryStageError(f"photometry of {job.ms_path.name}: no {'image' if not images else 'pbcor'} "
                                       f"image of it recorded in {db}")
        if images[0].quality_state == "fail":
            reasons = [r for r in (images[0].gates or {}).get("reasons", []) if r.endswith("(fail)")]
            skipped = PhotometrySkipped(images[0].id, "quality gates failed: " + ("; ".join(reasons) or "fail"))
            return StageOutcome(job.group_id, CHECKPOINT, job.ms_path, {"photometry": time.perf_counter() - t0},
                                skipped)
        info = read_ms_info(job.ms_path)
        res = photometer_image(_Reader(conn), images[0], pbcor[0].path, info, job.group_id, job.cfg.catalog_path,
                               PhotometryOptions())
    finally:
        conn.close()
    return StageOutcome(job.group_id, CHECKPOINT, job.ms_path, {"photometry": time.perf_counter() - t0, **res.timings},
                        res)


def record_photometry(conn, settings, outcome: StageOutcome) -> None:
    """Write the measurements and sources (daemon side) and the stage's time (``photometry_time``)."""
    from ..db import products as pdb
    from ..db import queue as q
    from ..db import sources as sdb

    res = outcome.payload
    if isinstance(res, PhotometrySkipped):
        log.warning("photometry of %s skipped: image %d %s", outcome.group_id, res.image_id, res.reason)
        q.record_metrics(conn, outcome.group_id, {"photometry_time": outcome.timings.get("photometry"),
                                                  "photometry_skipped": res.reason})
        return
    pconn = pdb.connect(settings.products_db)
    try:
        t0 = time.perf_counter()
        summary = sdb.record_photometry(pconn, res)
        record_s = time.perf_counter() - t0
    finally:
        pconn.close()
    q.record_metrics(conn, outcome.group_id, {
        "photometry_time": outcome.timings.get("photometry"), "photometry_record_s": round(record_s, 3),
        "photometry_measurements": summary.n_measurements, "photometry_new_sources": len(summary.new_source_ids),
        "photometry_detections": res.n_detections, "photometry_associated": res.n_associated})
