"""The daemon records what a stage returned: products rows, registry sets, queue timings.

Only the daemon's process calls these (it is the only writer of the databases);
stages on workers return :class:`~.chain.StageOutcome` values.  One function per
stage, named in the stage registry (:mod:`.stages`); each takes the queue
connection, the settings and the outcome.
"""

from __future__ import annotations

import time
from pathlib import Path

from ..db import products as pdb
from ..db import queue as q
from .calsets import register_solution
from .chain import StageOutcome
from .image_stage import record_image as record_products
from .image_stage import record_ms


def _products(settings):
    return pdb.connect(settings.products_db)


def record_convert(conn, settings, outcome: StageOutcome) -> None:
    """The MS row (converted) and the conversion timings (and the non-finite samples flagged)."""
    r = outcome.payload
    pconn = _products(settings)
    try:
        record_ms(pconn, outcome.ms_path, "converted", "in_progress")
    finally:
        pconn.close()
    metrics = {"load_time": r.timings.get("load"), "phase_time": r.timings.get("phase"),
               "write_time": r.timings.get("write"), "total_time": r.timings.get("total"), "writer_type": r.writer}
    nonfinite = getattr(r, "nonfinite_samples", None)
    if nonfinite:
        metrics["nonfinite_samples"] = int(nonfinite)
    q.record_metrics(conn, outcome.group_id, metrics)


def record_calibrate(conn, settings, outcome: StageOutcome) -> None:
    """Register the solved set in the calibration registry; the solve timings."""
    res = outcome.payload
    register_solution(res, settings.cal_registry_db)
    q.record_metrics(conn, outcome.group_id, {"calibrate_time": outcome.timings.get("calibrate"),
                                              "cal_k_time": res.timings.get("K"), "cal_b_time": res.timings.get("B"),
                                              "cal_g_time": res.timings.get("G")})


def record_apply(conn, settings, outcome: StageOutcome) -> None:
    """The MS row (applied, calibrated) and the apply time."""
    pconn = _products(settings)
    try:
        record_ms(pconn, outcome.ms_path, "applied", "in_progress", cal_applied=True)
    finally:
        pconn.close()
    q.record_metrics(conn, outcome.group_id, {"apply_time": outcome.timings.get("apply")})


def record_image(conn, settings, outcome: StageOutcome) -> None:
    """The images, their QA, quality gates and detections, the MS row (completed), image/QA times and the group's latency."""
    prod = outcome.payload
    pconn = _products(settings)
    try:
        record_products(pconn, outcome.ms_path, prod.image, prod.qa, getattr(prod, "quality", None))
        record_ms(pconn, outcome.ms_path, "imaged", "completed", cal_applied=True,
                  imagename=str(prod.image.images.prefix))
    finally:
        pconn.close()
    q.record_metrics(conn, outcome.group_id, {"image_time": outcome.timings.get("image"),
                                              "qa_time": outcome.timings.get("qa"),
                                              "latency_s": latency_s(q.get_group(conn, outcome.group_id))})


def latency_s(row) -> float | None:
    """Seconds from the last subband file landing (its mtime) to now."""
    if row is None or not row.files:
        return None
    mtimes = [Path(p).stat().st_mtime for p in row.files.values() if Path(p).exists()]
    return time.time() - max(mtimes) if mtimes else None
