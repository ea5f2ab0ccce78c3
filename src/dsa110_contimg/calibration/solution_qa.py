"""QA of calibration solutions: metrics and PNG plots read from CASA tables."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class CalSolutions:
    """Solutions of one CASA calibration table."""

    kind: str
    """'K', 'B' or 'G'."""
    antenna: np.ndarray
    """ANTENNA1 per row."""
    time: np.ndarray
    """TIME per row (MJD s)."""
    values: np.ndarray
    """CPARAM (complex) or FPARAM (float, ns for K), shape (Nrow, Nchan, Npol)."""
    flags: np.ndarray
    """FLAG, same shape."""
    snr: np.ndarray
    """SNR, same shape."""
    freqs_hz: np.ndarray
    """Channel frequencies of the solutions."""
    antenna_names: list[str]
    """ANTENNA::NAME of the table."""


def read_solutions(path: str | Path, kind: str) -> CalSolutions:
    """Read a CASA calibration table."""
    from casacore.tables import table

    path = str(path)
    with table(path, ack=False) as t:
        col = "FPARAM" if "FPARAM" in t.colnames() and kind == "K" else "CPARAM"
        vals = t.getcol(col)
        flags = t.getcol("FLAG")
        snr = t.getcol("SNR")
        ant = t.getcol("ANTENNA1")
        tm = t.getcol("TIME")
    with table(f"{path}/SPECTRAL_WINDOW", ack=False) as t:
        freqs = t.getcell("CHAN_FREQ", 0)
    with table(f"{path}/ANTENNA", ack=False) as t:
        names = list(t.getcol("NAME"))
    return CalSolutions(kind, ant, tm, vals, flags, snr, freqs, names)


def solution_metrics(path: str | Path, kind: str, expected_antennas: list[str] | None = None) -> dict:
    """Flagged fraction, median SNR, phase scatter and dropped antennas of a table.

    ``phase_scatter_deg`` is the median over antennas of the standard deviation of
    the solution phase over time (G) or over frequency (B); for K it is the median
    absolute delay (ns) instead (``delay_median_abs_ns``).  ``antennas_dropped`` lists the
    ``expected_antennas`` (those with data) whose solutions are all flagged.
    """
    s = read_solutions(path, kind)
    good = ~s.flags
    out = {"table": str(path), "type": kind, "flagged_fraction": float(s.flags.mean()),
           "snr_median": float(np.median(s.snr[good])) if good.any() else 0.0}
    ants = np.unique(s.antenna)
    expected = set(expected_antennas) if expected_antennas is not None else {s.antenna_names[a] for a in ants}
    dropped = [s.antenna_names[a] for a in ants
               if s.antenna_names[a] in expected and s.flags[s.antenna == a].all()]
    out["antennas_solved"] = int(len(expected) - len(dropped))
    out["antennas_dropped"] = dropped
    if kind == "K":
        v = s.values[good]
        out["delay_median_abs_ns"] = float(np.median(np.abs(v))) if v.size else 0.0
    else:
        scat = []
        for a in [a for a in ants if not s.flags[s.antenna == a].all()]:
            sel = s.antenna == a
            ph = np.angle(s.values[sel])
            fl = s.flags[sel]
            for p in range(ph.shape[-1]):
                x = ph[..., p][~fl[..., p]]
                if x.size > 1:
                    z = np.exp(1j * x)
                    scat.append(np.degrees(np.sqrt(-2 * np.log(max(abs(z.mean()), 1e-12)))))
        out["phase_scatter_deg"] = float(np.median(scat)) if scat else 0.0
    return out


def solution_plots(tables: dict[str, Path], out_dir: Path, max_antennas: int = 24) -> list[Path]:
    """PNG plots: delay per antenna (K), bandpass amplitude and phase vs frequency (B), gain phase vs time (G)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for kind, path in tables.items():
        s = read_solutions(path, kind)
        ants = np.unique(s.antenna)
        if kind == "K":
            fig, ax = plt.subplots(figsize=(9, 3.5))
            for p, mk in zip(range(s.values.shape[-1]), "ox"):
                v = np.where(s.flags[:, 0, p], np.nan, s.values[:, 0, p])
                ax.plot([int(s.antenna_names[a]) if s.antenna_names[a].isdigit() else a for a in s.antenna], v, mk,
                        label=["X", "Y"][p])
            ax.set_xlabel("antenna")
            ax.set_ylabel("delay (ns)")
            ax.legend()
            ax.set_title(f"Delays: {Path(path).name}")
        elif kind == "B":
            fig, (a1, a2) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
            f = s.freqs_hz / 1e6
            for a in ants[:max_antennas]:
                row = np.where(s.antenna == a)[0][0]
                v = np.where(s.flags[row, :, 0], np.nan, s.values[row, :, 0])
                a1.plot(f, np.abs(v), lw=0.7)
                a2.plot(f, np.degrees(np.angle(v)), lw=0.7)
            a1.set_ylabel("amplitude")
            a2.set_ylabel("phase (deg)")
            a2.set_xlabel("frequency (MHz)")
            a1.set_title(f"Bandpass (X, first {min(len(ants), max_antennas)} antennas): {Path(path).name}")
        else:
            fig, ax = plt.subplots(figsize=(9, 3.5))
            t = (s.time - s.time.min()) / 60.0
            for a in ants[:max_antennas]:
                sel = s.antenna == a
                v = np.where(s.flags[sel, 0, 0], np.nan, s.values[sel, 0, 0])
                ax.plot(t[sel], np.degrees(np.angle(v)), ".-", lw=0.7)
            ax.set_xlabel("minutes")
            ax.set_ylabel("gain phase (deg)")
            ax.set_title(f"Gain phase (X): {Path(path).name}")
        png = out_dir / f"{Path(path).name}.png"
        fig.tight_layout()
        fig.savefig(png, dpi=80)
        plt.close(fig)
        written.append(png)
    return written
