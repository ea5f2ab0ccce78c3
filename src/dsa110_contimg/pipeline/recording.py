"""The daemon records what a stage returned: products rows, registry sets, queue timings.

Only the daemon's process calls these (it is the only writer of the databases);
stages on workers return :class:`~.chain.StageOutcome` values.
"""

from __future__ import annotations

import time
from pathlib import Path

from . import chain


def record_outcome(conn, settings, outcome: chain.StageOutcome) -> None:
    """Write the result of one finished stage (``conn``: the queue; the other databases are opened here)."""
    from ..calibration.apply import register_solution
    from ..db import products as pdb
    from ..db import queue as q
    from .image_stage import record_image, record_ms

    pconn = pdb.connect(settings.products_db)
    try:
        if outcome.stage == "converted":
            r = outcome.payload
            record_ms(pconn, outcome.ms_path, "converted", "in_progress")
            metrics = {"load_time": r.timings.get("load"), "phase_time": r.timings.get("phase"),
                       "write_time": r.timings.get("write"), "total_time": r.timings.get("total"),
                       "writer_type": r.writer}
            nonfinite = getattr(r, "nonfinite_samples", None)
            if nonfinite:
                metrics["nonfinite_samples"] = int(nonfinite)
            q.record_metrics(conn, outcome.group_id, metrics)
        elif outcome.stage == "calibrated":
            res = outcome.payload
            register_solution(res, settings.cal_registry_db)
            q.record_metrics(conn, outcome.group_id, {"calibrate_time": outcome.timings.get("calibrate"),
                                                      "cal_k_time": res.timings.get("K"),
                                                      "cal_b_time": res.timings.get("B"),
                                                      "cal_g_time": res.timings.get("G")})
        elif outcome.stage == "applied":
            record_ms(pconn, outcome.ms_path, "applied", "in_progress", cal_applied=True)
            q.record_metrics(conn, outcome.group_id, {"apply_time": outcome.timings.get("apply")})
        elif outcome.stage == "imaged":
            img, qa = outcome.payload
            record_image(pconn, outcome.ms_path, img, qa)
            record_ms(pconn, outcome.ms_path, "imaged", "completed", cal_applied=True,
                      imagename=str(img.images.prefix))
            row = q.get_group(conn, outcome.group_id)
            q.record_metrics(conn, outcome.group_id, {"image_time": outcome.timings.get("image"),
                                                      "qa_time": outcome.timings.get("qa"),
                                                      "latency_s": latency_s(row)})
    finally:
        pconn.close()


def latency_s(row) -> float | None:
    """Seconds from the last subband file landing (its mtime) to now."""
    if row is None or not row.files:
        return None
    mtimes = [Path(p).stat().st_mtime for p in row.files.values() if Path(p).exists()]
    return time.time() - max(mtimes) if mtimes else None
