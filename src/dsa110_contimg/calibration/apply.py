"""Register solved tables, and apply the set valid at an MS's time (casatasks applycal)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .solve import CalibrateResult, CalibrationError

log = logging.getLogger(__name__)

APPLY_ORDER = {"K": 0, "B": 1, "G": 2}


class NoValidCalibrationError(CalibrationError):
    """No active calibration set is valid at the MS's time."""


@dataclass
class ApplyResult:
    """Outcome of applying a calibration set."""

    ms_path: Path
    """The MS whose CORRECTED_DATA was filled."""
    set_name: str
    """Calibration set applied."""
    tables: list[Path]
    """Tables in apply order."""
    interp: list[str]
    """Interpolation per table."""
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds: apply, total."""


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
    from ..db import cal_registry as reg

    name = set_name or f"{res.ms_path.stem}_{res.calibrator}"
    plots = {Path(p).stem: p for p in res.plots}  # solution_plots names each plot after its table
    entries = [reg.CalTableEntry(path=str(p), table_type=k, order_index=APPLY_ORDER[k],
                                 quality_metrics=res.metrics.get(k, {}), solver_params=res.solver_params,
                                 qa_plot_path=str(plots[Path(p).name]) if Path(p).name in plots else None)
               for k, p in res.tables.items()]
    from .transits import ms_time_range_and_dec

    # valid from the calibrator transit (and for the calibrator group itself) for span_hours
    start = min(res.transit_mjd, ms_time_range_and_dec(res.ms_path)[0])
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


def ms_mid_mjd(ms_path: str | Path) -> float:
    """Mid-time of an MS (UTC MJD)."""
    from casacore.tables import table

    with table(str(ms_path), ack=False) as t:
        times = t.getcol("TIME")
    return float(0.5 * (times.min() + times.max()) / 86400.0)


def _record_history(ms_path: Path, message: str) -> None:
    from casacore.tables import table

    try:
        with table(f"{ms_path}/HISTORY", readonly=False, ack=False) as t:
            t.addrows(1)
            r = t.nrows() - 1
            t.putcell("TIME", r, datetime.now(timezone.utc).timestamp() + 3506716800.0)
            t.putcell("MESSAGE", r, message)
            t.putcell("PRIORITY", r, "SEVERE")
            t.putcell("ORIGIN", r, "dsa110_contimg.calibration.apply")
            t.putcell("APPLICATION", r, "dsa110-contimg")
            t.putcell("CLI_COMMAND", r, [""])
            t.putcell("APP_PARAMS", r, [""])
    except RuntimeError:  # pragma: no cover - best effort
        log.exception("could not record in %s/HISTORY", ms_path)


def apply_calibration(ms_path: str | Path, registry_db: str | Path) -> ApplyResult:
    """Apply the active calibration set valid at the MS mid-time; fills CORRECTED_DATA.

    Raises
    ------
    NoValidCalibrationError
        No set is valid (recorded in the log and in the MS HISTORY; DATA is never copied silently).
    CalibrationError
        A table of the set is missing on disk.
    """
    from ..casa_env import prepare_casa
    from ..db import cal_registry as reg

    prepare_casa()
    from casatasks import applycal

    t_all = time.perf_counter()
    ms_path = Path(ms_path)
    mid = ms_mid_mjd(ms_path)
    conn = reg.connect(registry_db)
    try:
        cs = reg.active_set_at(conn, mid)
    finally:
        conn.close()
    if cs is None:
        msg = f"{ms_path.name}: no active calibration set valid at MJD {mid:.5f} in {registry_db}"
        log.error("%s", msg)
        _record_history(ms_path, "applycal not run: " + msg)
        raise NoValidCalibrationError(msg)
    missing = reg.verify_set_on_disk(cs)
    if missing:
        msg = f"{ms_path.name}: calibration set {cs.set_name} has table(s) missing on disk: {', '.join(missing)}"
        log.error("%s", msg)
        _record_history(ms_path, "applycal not run: " + msg)
        raise CalibrationError(msg)
    entries = sorted(cs.entries, key=lambda e: e.order_index)
    paths = [Path(e.path) for e in entries]
    interp = [_interp_for(e.table_type, e.path, mid) for e in entries]
    t0 = time.perf_counter()
    applycal(vis=str(ms_path), gaintable=[str(p) for p in paths], interp=interp, calwt=False, flagbackup=False,
             applymode="calflag")
    dt = time.perf_counter() - t0
    _check_corrected(ms_path)
    log.info("applied %s (%s) to %s in %.1f s", cs.set_name, ", ".join(e.table_type for e in entries),
             ms_path.name, dt)
    return ApplyResult(ms_path, cs.set_name, paths, interp, {"apply": dt, "total": time.perf_counter() - t_all})


def _interp_for(kind: str, path: str, mid_mjd: float) -> str:
    """Time interpolation: linear inside the table's time range, nearest outside; bandpass linear in frequency."""
    from casacore.tables import table

    with table(path, ack=False) as t:
        tt = t.getcol("TIME") / 86400.0
    inside = tt.min() - 1e-6 <= mid_mjd <= tt.max() + 1e-6 and np.unique(tt).size > 1
    t_interp = "linear" if inside else "nearest"
    return f"{t_interp},linear" if kind == "B" else t_interp


def _check_corrected(ms_path: Path) -> None:
    from casacore.tables import table

    with table(str(ms_path), ack=False) as t:
        n = t.nrows()
        rows = min(n, 2000)
        start = max(0, n // 2 - rows // 2)
        d = t.getcol("DATA", start, rows)
        c = t.getcol("CORRECTED_DATA", start, rows)
        f = t.getcol("FLAG", start, rows)
    good = ~f
    if good.any() and np.allclose(d[good], c[good]):
        raise CalibrationError(f"{ms_path.name}: applycal left CORRECTED_DATA equal to DATA")

