"""Calibration sets: register a solve in the registry, and apply the set valid at an MS's time.

The glue between the calibration stage (:mod:`dsa110_contimg.calibration`, which
knows tables) and the calibration registry (:mod:`dsa110_contimg.db.cal_registry`,
which knows which set is valid when).  Used by the streaming daemon, ``contimg
calibrate`` and ``contimg apply``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from ..calibration.apply import APPLY_ORDER, ApplyResult, NoValidCalibrationError, apply_tables, refuse_apply
from ..calibration.solve import CalibrateResult, CalibrationError
from ..db import cal_registry as reg
from ..ms import read_ms_info

log = logging.getLogger(__name__)


def register_solution(res: CalibrateResult, registry_db: str | Path, span_hours: float = 12.0,
                      set_name: str | None = None, replace: bool = True) -> str:
    """Register the tables of one solve as a set valid from the calibrator transit for ``span_hours``.

    The window also covers the calibrator group itself (it starts at the earlier of the
    transit and the group's start).  A set of the same name (an earlier solve of the same
    MS, whose tables were just overwritten) is replaced when ``replace`` is True.

    Returns
    -------
    str
        The set name.
    """
    name = set_name or f"{res.ms_path.stem}_{res.calibrator}"
    plots = {Path(p).stem: p for p in res.plots}  # solution_plots names each plot after its table
    entries = [reg.CalTableEntry(path=str(p), table_type=k, order_index=APPLY_ORDER[k],
                                 quality_metrics=res.metrics.get(k, {}), solver_params=res.solver_params,
                                 qa_plot_path=str(plots[Path(p).name]) if Path(p).name in plots else None)
               for k, p in res.tables.items()]
    # valid from the calibrator transit (and for the calibrator group itself) for span_hours
    start = min(res.transit_mjd, read_ms_info(res.ms_path).start_mjd)
    conn = reg.connect(registry_db)
    try:
        if replace and reg.delete_set(conn, name):
            log.info("replaced the earlier calibration set %s", name)
        reg.register_set(conn, name, entries, valid_start_mjd=start,
                         valid_end_mjd=res.transit_mjd + span_hours / 24.0, cal_field=res.calibrator,
                         refant=res.refant, source_ms_path=str(res.ms_path),
                         solver_command="casatasks gaincal(K)/bandpass(B)/gaincal(G)",
                         solver_version=str(res.solver_params.get("casatasks", "")),
                         notes=res.refant_note)
    finally:
        conn.close()
    return name


def apply_calibration(ms_path: str | Path, registry_db: str | Path) -> ApplyResult:
    """Apply the active calibration set valid at the MS mid-time; fills CORRECTED_DATA.

    Raises
    ------
    NoValidCalibrationError
        No set is valid (recorded in the log and in the MS HISTORY; DATA is never copied silently).
    CalibrationError
        A table of the set is missing on disk.
    """
    t_all = time.perf_counter()
    ms_path = Path(ms_path)
    mid = read_ms_info(ms_path).mid_mjd
    conn = reg.connect(registry_db)
    try:
        cs = reg.active_set_at(conn, mid)
    finally:
        conn.close()
    if cs is None:
        refuse_apply(ms_path, f"{ms_path.name}: no active calibration set valid at MJD {mid:.5f} in {registry_db}",
                     NoValidCalibrationError)
    missing = reg.verify_set_on_disk(cs)
    if missing:
        refuse_apply(ms_path, f"{ms_path.name}: calibration set {cs.set_name} has table(s) missing on disk: "
                              f"{', '.join(missing)}", CalibrationError)
    entries = sorted(cs.entries, key=lambda e: e.order_index)
    return apply_tables(ms_path, cs.set_name, [(e.table_type, e.path) for e in entries], t_start=t_all)
