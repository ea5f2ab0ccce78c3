"""The ``flag`` stage (after ``convert``, before calibration and imaging): RFI flagging of a group's MS.

:func:`run_flag` runs on a worker (:func:`dsa110_contimg.flagging.flag_ms`, AOFlagger then a
MAD clip by default) and returns the :class:`~dsa110_contimg.flagging.FlagResult`;
:func:`record_flag` runs in the daemon and stores the report with the group (the products
database's ``flag_reports``) and its time and flagged fraction in the queue's metrics.

A group whose data are all flagged afterwards is bad input (the flagger raises a
:class:`~dsa110_contimg.errors.BadInputError` naming the MS and the fraction); a flagger
crash fails the stage with its message (retried, then failed); nothing is deleted.
"""

from __future__ import annotations

import time

from .chain import StageJob, StageOutcome

CHECKPOINT = "flagged"
"""Queue checkpoint of the stage."""


def needed(job: StageJob) -> bool:
    """Every group is flagged (unless the chain is configured without RFI flagging)."""
    return job.cfg.flagger != "none"


def run_flag(job: StageJob) -> StageOutcome:
    """Flag RFI in the group's MS with the chain's flagger."""
    from ..flagging import FlagOptions, flag_ms

    t0 = time.perf_counter()
    res = flag_ms(job.ms_path, FlagOptions(flagger=job.cfg.flagger, defer_plot=True))
    return StageOutcome(job.group_id, CHECKPOINT, job.ms_path, {"flag": time.perf_counter() - t0}, res)


def record_flag(conn, settings, outcome: StageOutcome) -> None:
    """The flagging report with the group (products database) and ``flag_time``/``flagged_fraction`` (queue)."""
    from ..db import flag_reports
    from ..db import products as pdb
    from ..db import queue as q

    res = outcome.payload
    pconn = pdb.connect(settings.products_db)
    try:
        flag_reports.upsert(pconn, outcome.group_id, res)
    finally:
        pconn.close()
    q.record_metrics(conn, outcome.group_id, {"flag_time": outcome.timings.get("flag"),
                                              "flagged_fraction": res.fraction_after,
                                              "rfi_fraction": res.fraction_rfi})
