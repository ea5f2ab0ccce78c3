"""Solve delay (K), bandpass (B) and gain (G) tables with CASA on a calibrator MS.

Stage function: :func:`calibrate_ms` (:class:`CalibrateOptions` in,
:class:`CalibrateResult` out).  Table names derive from the MS path with
``os.path.splitext``: ``runs.ms`` gives ``runs_kcal``, ``runs_bpcal``, ``runs_gpcal``.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..casa_env import prepare_casa
from ..catalog.calibrators import lookup_calibrator
from ..conversion.average import AveragingNotSupported, average_ms, solint_to_integrations
from ..errors import ContimgError
from ..ms import read_ms_info
from .fieldsel import select_fields, to_casa_field_string
from .model import flag_for_calibration, write_point_model
from .parallel_bandpass import bandpass_parallel
from .solution_qa import solution_metrics, solution_plots
from .transits import find_calibrators, ms_time_range_and_dec

log = logging.getLogger(__name__)


class CalibrationError(ContimgError, RuntimeError):
    """Calibration cannot proceed; the message says why (no calibrator, no usable refant, ...)."""


@dataclass
class CalibrateOptions:
    """Options of the calibration stage (mirrors ``contimg calibrate``)."""

    field: str = ""
    """CASA-style field selection (ids, A~B, comma lists, name globs); '' = all."""
    refant: str = "103"
    """Reference antenna name; falls back to the best unflagged antenna near the array centre."""
    do_k: bool = False
    """Solve a delay (K) table first."""
    gain_calmode: str = "p"
    """Gain solve mode: 'p' (phase) or 'ap' (amplitude and phase)."""
    gain_solint: str = "60s"
    """Gain solution interval."""
    uvrange: str = ""
    """uv range for the solves (CASA syntax)."""
    minsnr: float = 3.0
    """Minimum solution SNR."""
    fast: bool = False
    """Average in time and frequency before solving (mstransform)."""
    fast_chanbin: int = 4
    """Channel averaging of --fast (the data are always pre-averaged in time to the gain interval)."""
    min_baseline_m: float = 50.0
    """Flag baselines shorter than this before solving (m)."""
    calibrator: str | None = None
    """Calibrator name (default: the brightest one transiting in the MS)."""
    write_model: bool = True
    """Write MODEL_DATA from the flux standard / point model (False: keep the MS's model)."""
    plots: bool = True
    """Write QA plots of the solutions."""


@dataclass
class CalibrateResult:
    """Tables and diagnostics of one solve."""

    ms_path: Path
    """The calibrator MS."""
    tables: dict[str, Path]
    """'K', 'B', 'G' -> table path (apply order)."""
    refant: str
    """Reference antenna used."""
    refant_note: str
    """Why it was chosen (fallback reason, if any)."""
    calibrator: str
    """Calibrator solved on."""
    transit_mjd: float
    """Calibrator transit time (MJD)."""
    field: str
    """CASA field selection used."""
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds: model, flag, average, K, B, G, qa, total."""
    metrics: dict[str, dict] = field(default_factory=dict)
    """Quality metrics per table type."""
    plots: list[Path] = field(default_factory=list)
    """QA PNGs."""
    solver_params: dict = field(default_factory=dict)
    """Parameters passed to CASA."""


def table_names(ms_path: str | Path) -> dict[str, Path]:
    """Calibration table paths derived from the MS path (``os.path.splitext``)."""
    base = os.path.splitext(str(ms_path))[0]
    return {"K": Path(base + "_kcal"), "B": Path(base + "_bpcal"), "G": Path(base + "_gpcal")}


def antenna_flag_fractions(ms_path: str | Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Per antenna: names, fraction of flagged cross-correlation data (1 when absent), ECEF positions."""
    from casacore.tables import table, taql

    with table(f"{ms_path}/ANTENNA", ack=False) as t:
        names = list(t.getcol("NAME"))
        pos = t.getcol("POSITION")
    total = np.zeros(len(names))
    flagged = np.zeros(len(names))
    with table(str(ms_path), ack=False) as ms:
        sub = taql("SELECT ANTENNA1, ANTENNA2, ntrue(FLAG) AS NF, nelements(FLAG) AS NE FROM $ms "
                   "WHERE ANTENNA1 != ANTENNA2")
        a1, a2 = sub.getcol("ANTENNA1"), sub.getcol("ANTENNA2")
        nf, ne = sub.getcol("NF").astype(float), sub.getcol("NE").astype(float)
    for a in (a1, a2):
        np.add.at(total, a, ne)
        np.add.at(flagged, a, nf)
    frac = np.where(total > 0, flagged / np.maximum(total, 1), 1.0)
    return names, frac, pos


def choose_refant(ms_path: str | Path, preferred: str = "103", max_flagged: float = 0.5) -> tuple[str, str]:
    """The preferred reference antenna, or the best unflagged antenna near the array centre.

    Returns
    -------
    tuple of str
        (antenna name, note); the note explains a fallback and is empty otherwise.

    Raises
    ------
    CalibrationError
        When no antenna has usable data.
    """
    names, frac, pos = antenna_flag_fractions(ms_path)
    if preferred in names and frac[names.index(preferred)] <= max_flagged:
        return preferred, ""
    good = np.where(frac <= max_flagged)[0]
    if good.size == 0:
        raise CalibrationError(f"{ms_path}: no antenna has more than {1 - max_flagged:.0%} unflagged data")
    centre = np.median(pos[good], axis=0)
    # least flagged first, then nearest to the array centre
    best = min(good, key=lambda i: (round(frac[i], 2), np.linalg.norm(pos[i] - centre)))
    why = "not in the array" if preferred not in names else f"{frac[names.index(preferred)]:.0%} flagged"
    note = f"refant {preferred} unusable ({why}); using {names[best]} ({frac[best]:.0%} flagged, " \
           f"{np.linalg.norm(pos[best] - centre):.0f} m from the array centre)"
    log.warning("%s", note)
    return names[best], note


def _field_selection(ms_path: Path, spec: str) -> str:
    return to_casa_field_string(select_fields(spec, list(read_ms_info(ms_path).field_names)))


def _pick_calibrator(ms_path: Path, name: str | None):
    t0, t1, dec = ms_time_range_and_dec(ms_path)
    if name:
        cal = lookup_calibrator(name)
        transits = [t for t in find_calibrators(t0, t1, dec) if t.calibrator.name == cal.name]
        if not transits:
            raise CalibrationError(f"{ms_path}: calibrator {name} does not transit through the beam near this group")
        return transits[0]
    transits = [t for t in find_calibrators(t0, t1, dec) if t.in_group]
    if not transits:
        raise CalibrationError(f"{ms_path}: no calibrator transits through the primary beam during this group "
                               f"(dec {dec:.2f} deg, MJD {t0:.5f}-{t1:.5f})")
    return transits[0]


def calibrate_ms(ms_path: str | Path, opts: CalibrateOptions | None = None) -> CalibrateResult:
    """Model, flag and solve K (optional), B and G on a calibrator MS.

    Raises
    ------
    CalibrationError
        No calibrator in the beam, no usable reference antenna, or a solve that wrote no table.
    """
    prepare_casa()
    import casatasks
    from casatasks import gaincal

    opts = opts or CalibrateOptions()
    ms_path = Path(ms_path)
    if not (ms_path / "table.dat").exists():
        raise CalibrationError(f"{ms_path}: not a Measurement Set")
    t_all = time.perf_counter()
    timings: dict[str, float] = {}
    transit = _pick_calibrator(ms_path, opts.calibrator)
    cal = transit.calibrator
    field_sel = _field_selection(ms_path, opts.field)
    names = table_names(ms_path)
    pre_phase = Path(os.path.splitext(str(ms_path))[0] + "_g0cal.tmp")
    for p in (*names.values(), pre_phase):
        shutil.rmtree(p, ignore_errors=True)

    t0 = time.perf_counter()
    flag_info = flag_for_calibration(ms_path, opts.min_baseline_m)
    timings["flag"] = time.perf_counter() - t0
    refant, note = choose_refant(ms_path, opts.refant)

    # Solve on a copy averaged to the gain interval.  Its MODEL_DATA is written (and checked)
    # directly; the full-resolution MS gets the same model in a background thread while CASA solves.
    solve_ms, gain_solint = _averaged_copy(ms_path, opts, timings)
    model_args = (cal.name, cal.ra_deg, cal.dec_deg, cal.flux_at, cal.model_name)
    background = None
    if opts.write_model:
        t0 = time.perf_counter()
        write_point_model(solve_ms, *model_args)
        timings["model"] = time.perf_counter() - t0
    if opts.write_model and solve_ms != ms_path:
        background = _Background(write_point_model, ms_path, *model_args)
    if solve_ms != ms_path:
        field_sel = _field_selection(solve_ms, opts.field)
    common = dict(vis=str(solve_ms), field=field_sel, refant=refant, minsnr=opts.minsnr, uvrange=opts.uvrange)
    params = {"refant": refant, "field": field_sel, "minsnr": opts.minsnr, "uvrange": opts.uvrange,
              "gain_calmode": opts.gain_calmode, "gain_solint": opts.gain_solint, "fast": opts.fast,
              "solved_on": "averaged copy" if solve_ms != ms_path else "full resolution",
              "do_k": opts.do_k, "calibrator": cal.name, "model": cal.model_name, **flag_info}
    tables: dict[str, Path] = {}
    try:
        if opts.do_k:
            t0 = time.perf_counter()
            gaincal(caltable=str(names["K"]), gaintype="K", solint="inf", combine="scan", **common)
            timings["K"] = time.perf_counter() - t0
            _require(names["K"], "delay")
            tables["K"] = names["K"]
        # The gain phases wander during a group (tens of degrees in 5 minutes): a bandpass over the whole group
        # from data with those phases in them is the average of a rotating phasor, low in amplitude, and the
        # calibrated data come out high by as much (+2.4% on a full-size realistic group).  A phase-only solve
        # on the gain interval first tracks them; it is applied to the bandpass solve only, then discarded.  It
        # uses the central eighth of the band: over the whole band an uncorrected delay of ~1/bandwidth (5 ns)
        # winds the phase through a turn and the channel average cancels (solution flagged, bandpass lost).
        t0 = time.perf_counter()
        gaincal(caltable=str(pre_phase), gaintype="G", calmode="p", solint=gain_solint, spw=_central_channels(solve_ms),
                gaintable=[str(p) for p in tables.values()], **common)
        _require(pre_phase, "pre-bandpass phase")
        timings["G0"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        bandpass_parallel(caltable=names["B"], solint="inf", combine="scan", bandtype="B", solnorm=False,
                          gaintable=[str(p) for p in tables.values()] + [str(pre_phase)], **common)
        timings["B"] = time.perf_counter() - t0
        _require(names["B"], "bandpass")
        tables["B"] = names["B"]
        t0 = time.perf_counter()
        gaincal(caltable=str(names["G"]), gaintype="G", calmode=opts.gain_calmode, solint=gain_solint,
                gaintable=[str(p) for p in tables.values()], **common)
        timings["G"] = time.perf_counter() - t0
        _require(names["G"], "gain")
        tables["G"] = names["G"]
    except Exception:
        for p in names.values():
            shutil.rmtree(p, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(pre_phase, ignore_errors=True)
        if solve_ms != ms_path:
            shutil.rmtree(solve_ms, ignore_errors=True)
        if background is not None:
            t0 = time.perf_counter()
            background.join()
            timings["model_full_wait"] = time.perf_counter() - t0
    res = CalibrateResult(ms_path=ms_path, tables=tables, refant=refant, refant_note=note, calibrator=cal.name,
                          transit_mjd=transit.transit_mjd, field=opts.field, timings=timings,
                          solver_params={**params, "casatasks": casatasks.version_string()})
    t0 = time.perf_counter()
    names_all, frac, _ = antenna_flag_fractions(ms_path)
    with_data = [n for n, f in zip(names_all, frac) if f < 1.0]
    res.metrics = {k: solution_metrics(p, k, with_data) for k, p in tables.items()}
    if opts.plots:
        res.plots = solution_plots(tables, ms_path.parent / (ms_path.stem + "_calqa"))
    timings["qa"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - t_all
    log.info("calibrated %s on %s (refant %s): %s", ms_path.name, cal.name, refant,
             ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()))
    return res


def _central_channels(ms_path: Path, fraction: float = 0.125) -> str:
    """CASA spw selection of the central ``fraction`` of each spectral window's channels (at least 4)."""
    from casacore.tables import table

    with table(str(ms_path / "SPECTRAL_WINDOW"), ack=False) as t:
        nchan = t.getcol("NUM_CHAN")
    sel = []
    for i, n in enumerate(nchan):
        half = max(2, int(round(n * fraction / 2)))
        lo, hi = max(0, n // 2 - half), min(n - 1, n // 2 + half - 1)
        sel.append(f"{i}:{lo}~{hi}")
    return ",".join(sel)


def _averaged_copy(ms_path: Path, opts: CalibrateOptions, timings: dict) -> tuple[Path, str]:
    """Pre-average to the gain solution interval (and ``fast_chanbin`` channels with --fast).

    CASA averages inside each solution interval anyway, so this gives the solvers the
    same input with far less I/O.  Returns the MS to solve on and the gain solint to use.
    """
    info = read_ms_info(ms_path)
    tbin = solint_to_integrations(opts.gain_solint, info.integration_s, info.n_times)
    cbin = opts.fast_chanbin if opts.fast else 1
    if tbin == 1 and cbin == 1:
        return ms_path, opts.gain_solint
    t0 = time.perf_counter()
    dst = ms_path.with_name(ms_path.name + ".avg.tmp")
    shutil.rmtree(dst, ignore_errors=True)
    try:
        # without --write-model the MS's own MODEL_DATA is averaged with the data
        average_ms(ms_path, dst, tbin, cbin, columns=("DATA",) if opts.write_model else ("DATA", "MODEL_DATA"))
    except AveragingNotSupported as exc:
        log.warning("%s; solving on the full-resolution MS", exc)
        shutil.rmtree(dst, ignore_errors=True)
        return ms_path, opts.gain_solint
    timings["average"] = time.perf_counter() - t0
    return dst, "int"


class _Background:
    """Run a function in a thread; :meth:`join` re-raises its exception."""

    def __init__(self, fn, *args):
        import threading

        self.error: BaseException | None = None

        def run():
            try:
                fn(*args)
            except BaseException as exc:  # re-raised in join()
                self.error = exc

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def join(self) -> None:
        self.thread.join()
        if self.error is not None:
            raise self.error


def _require(path: Path, what: str) -> None:
    if not (path / "table.dat").exists():
        raise CalibrationError(f"CASA wrote no {what} table {path} (see the CASA log for the reason)")
