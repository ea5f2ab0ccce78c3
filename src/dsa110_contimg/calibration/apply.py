"""Apply a calibration set's tables to an MS (casatasks applycal) and record that CORRECTED_DATA is calibrated.

Which set is valid at an MS's time is the calibration registry's business
(:func:`dsa110_contimg.pipeline.calsets.apply_calibration` looks it up and calls
:func:`apply_tables`); this module only knows the tables it is given.  The MS's
explicit flag (:func:`dsa110_contimg.ms.mark_corrected`) says True only after
applycal succeeded and left CORRECTED_DATA different from DATA; a refused apply
(:func:`refuse_apply`) writes nothing but a HISTORY row.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn, Sequence

import numpy as np

from ..casa_env import prepare_casa
from ..ms import mark_corrected, read_ms_info
from ..timeconv import ms_seconds_to_mjd, now_ms_seconds
from .solve import CalibrationError

log = logging.getLogger(__name__)

APPLY_ORDER = {"K": 0, "B": 1, "G": 2}
"""Order in which the table types are applied."""


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


def _record_history(ms_path: Path, message: str) -> None:
    from casacore.tables import table

    try:
        with table(f"{ms_path}/HISTORY", readonly=False, ack=False) as t:
            t.addrows(1)
            r = t.nrows() - 1
            t.putcell("TIME", r, now_ms_seconds())
            t.putcell("MESSAGE", r, message)
            t.putcell("PRIORITY", r, "SEVERE")
            t.putcell("ORIGIN", r, "dsa110_contimg.calibration.apply")
            t.putcell("APPLICATION", r, "dsa110-contimg")
            t.putcell("CLI_COMMAND", r, [""])
            t.putcell("APP_PARAMS", r, [""])
    except RuntimeError:  # pragma: no cover - best effort
        log.exception("could not record in %s/HISTORY", ms_path)


def refuse_apply(ms_path: str | Path, message: str, error: type[CalibrationError] = CalibrationError) -> NoReturn:
    """Log ``message``, record it in the MS's HISTORY and raise ``error``; the data columns are not touched
    (DATA is never copied silently into CORRECTED_DATA)."""
    log.info("%s", message)  # not an error: the daemon holds the group until a set is registered
    _record_history(Path(ms_path), "applycal not run: " + message)
    raise error(message)


def apply_tables(ms_path: str | Path, set_name: str, tables: Sequence[tuple[str, str | Path]],
                 t_start: float | None = None) -> ApplyResult:
    """Apply ``tables`` ((type 'K'/'B'/'G', path), in apply order) to the MS; fills CORRECTED_DATA.

    Time interpolation is linear inside a table's time range and nearest outside it;
    bandpasses are linear in frequency.  The MS is marked calibrated with ``set_name``
    once applycal has changed CORRECTED_DATA.

    Raises
    ------
    CalibrationError
        applycal left CORRECTED_DATA equal to DATA.
    """
    prepare_casa()
    from casatasks import applycal

    t_all = time.perf_counter() if t_start is None else t_start
    ms_path = Path(ms_path)
    mid = read_ms_info(ms_path).mid_mjd
    ordered = list(tables)
    paths = [Path(p) for _, p in ordered]
    interp = [_interp_for(kind, str(p), mid) for kind, p in ordered]
    _mark(ms_path, False)  # until applycal has finished, CORRECTED_DATA holds no complete calibration
    t0 = time.perf_counter()
    applycal(vis=str(ms_path), gaintable=[str(p) for p in paths], interp=interp, calwt=False, flagbackup=False,
             applymode="calflag")
    dt = time.perf_counter() - t0
    _check_corrected(ms_path)
    _mark(ms_path, True, set_name)
    log.info("applied %s (%s) to %s in %.1f s", set_name, ", ".join(k for k, _ in ordered), ms_path.name, dt)
    return ApplyResult(ms_path, set_name, paths, interp, {"apply": dt, "total": time.perf_counter() - t_all})


def _mark(ms_path: Path, calibrated: bool, set_name: str = "") -> None:
    from casacore.tables import table

    with table(str(ms_path), readonly=False, ack=False) as t:
        mark_corrected(t, calibrated, set_name)


def _interp_for(kind: str, path: str, mid_mjd: float) -> str:
    """Time interpolation: linear inside the table's time range, nearest outside; bandpass linear in frequency."""
    from casacore.tables import table

    with table(path, ack=False) as t:
        tt = ms_seconds_to_mjd(t.getcol("TIME"))
    inside = tt.min() - 1e-6 <= mid_mjd <= tt.max() + 1e-6 and np.unique(tt).size > 1
    t_interp = "linear" if inside else "nearest"
    return f"{t_interp},linear" if kind == "B" else t_interp


def _check_corrected(ms_path: Path) -> None:
    """applycal must have changed CORRECTED_DATA (a sanity check of applycal, not the calibrated flag)."""
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
