"""Self-calibration gains on a Measurement Set: solve against MODEL_DATA, apply to CORRECTED_DATA (the I/O around
:mod:`dsa110_contimg.calibration.gainsolve`), in row chunks so that a full group stays within memory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..calibration import gainsolve as gs

CHUNK_ROWS = 20000
"""Rows read at a time (a full-size chunk: 20,000 x 768 x 2 complex64 = 0.25 GB per column)."""


@dataclass
class GainSolution:
    """Gains of one self-calibration round."""

    solint: str
    """The solution interval asked for."""
    phase_only: bool
    """Phase-only (True) or amplitude and phase."""
    gains: np.ndarray
    """Complex gains, ``(interval, pol, antenna)``."""
    ok: np.ndarray
    """Which gains were solved (others are 1), same shape."""
    times_s: np.ndarray
    """Row times the intervals were made from (distinct, s)."""
    refant: int
    """Reference antenna index (phase 0)."""

    @property
    def n_solved(self) -> int:
        """Gains solved."""
        return int(self.ok.sum())

    @property
    def n_failed(self) -> int:
        """Gains of antennas with data in the interval but too few baselines (left at 1)."""
        return int((~self.ok).sum())


def _chunks(n_rows: int):
    for start in range(0, n_rows, CHUNK_ROWS):
        yield start, min(CHUNK_ROWS, n_rows - start)


def solve_ms(ms_path: str | Path, solint: str, phase_only: bool, data_column: str = "CORRECTED_DATA",
             min_baselines: int = 4, refant: int | None = None) -> GainSolution:
    """Solve per-antenna, per-polarization gains of ``data_column`` against MODEL_DATA, one per interval and
    over all channels (unflagged samples, WEIGHT as the weights).

    Raises
    ------
    ValueError
        A bad ``solint``, or the MS has no MODEL_DATA.
    """
    from casacore.tables import table

    solint_s = gs.parse_solint(solint)
    with table(str(ms_path), ack=False) as t:
        if "MODEL_DATA" not in t.colnames():
            raise ValueError(f"{ms_path}: no MODEL_DATA to self-calibrate against")
        with table(str(Path(ms_path) / "ANTENNA"), ack=False) as ants:
            n_ant = ants.nrows()
        times = t.getcol("TIME")
        slot, n_slot = gs.slot_index(times, solint_s)
        npol = t.getcell(data_column, 0).shape[-1]
        x = np.zeros((n_slot, npol, n_ant, n_ant), dtype=np.complex128)
        y = np.zeros((n_slot, npol, n_ant, n_ant), dtype=np.float64)
        for start, n in _chunks(t.nrows()):
            sl = slice(start, start + n)
            vis = t.getcol(data_column, start, n)
            model = t.getcol("MODEL_DATA", start, n)
            flags = t.getcol("FLAG", start, n) | t.getcol("FLAG_ROW", start, n)[:, None, None]
            weight = t.getcol("WEIGHT", start, n)[:, None, :]
            dx, dy = gs.baseline_sums(vis, model, weight, flags, t.getcol("ANTENNA1", start, n),
                                      t.getcol("ANTENNA2", start, n), slot[sl], n_ant, n_slot)
            x += dx
            y += dy
    if refant is None:  # the antenna with the most weight of model power
        refant = int(np.argmax(y.sum(axis=(0, 1, 3))))
    gains, ok = gs.solve_gains(x, y, phase_only, refant=refant, min_baselines=min_baselines)
    return GainSolution(solint, phase_only, gains, ok, np.unique(times), refant)


def solution_slots(times_s: np.ndarray, sol: GainSolution) -> np.ndarray:
    """Solution interval of each row time: that of the nearest time the solution was made from.

    On the MS the gains were solved on this is :func:`~dsa110_contimg.calibration.gainsolve.slot_index`
    itself; on the full-resolution MS behind a time-averaged copy, each integration takes the interval of the
    averaged row it went into.
    """
    slot_sol, _ = gs.slot_index(sol.times_s, gs.parse_solint(sol.solint))
    uniq, inverse = np.unique(np.asarray(times_s, dtype=float), return_inverse=True)
    nearest = np.abs(uniq[:, None] - np.asarray(sol.times_s, dtype=float)[None, :]).argmin(axis=1)
    return slot_sol[nearest][inverse].astype(int)


def apply_ms(ms_path: str | Path, sol: GainSolution, inverse: bool = False) -> None:
    """Divide the gains out of CORRECTED_DATA in place (``inverse``: multiply them back, undoing a rejected
    round exactly)."""
    from casacore.tables import table

    with table(str(ms_path), readonly=False, ack=False) as t:
        slot = solution_slots(t.getcol("TIME"), sol)
        fn = gs.unapply_gains if inverse else gs.apply_gains
        for start, n in _chunks(t.nrows()):
            vis = t.getcol("CORRECTED_DATA", start, n)
            out = fn(vis, sol.gains, t.getcol("ANTENNA1", start, n), t.getcol("ANTENNA2", start, n),
                     slot[start:start + n])
            t.putcol("CORRECTED_DATA", out.astype(vis.dtype), start, n)


def apply_ms_many(ms_path: str | Path, sols: list[GainSolution]) -> None:
    """Divide several rounds' gains out of CORRECTED_DATA in one pass (as :func:`apply_ms` one after the other)."""
    from casacore.tables import table

    with table(str(ms_path), readonly=False, ack=False) as t:
        times = t.getcol("TIME")
        slots = [solution_slots(times, sol) for sol in sols]
        for start, n in _chunks(t.nrows()):
            vis = t.getcol("CORRECTED_DATA", start, n)
            a1, a2 = t.getcol("ANTENNA1", start, n), t.getcol("ANTENNA2", start, n)
            out = vis
            for sol, slot in zip(sols, slots):
                out = gs.apply_gains(out, sol.gains, a1, a2, slot[start:start + n])
            t.putcol("CORRECTED_DATA", out.astype(vis.dtype), start, n)
