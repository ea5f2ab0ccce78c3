"""Score flags against the simulator's RFI truth (``<start>_rfi.npz``) in MS order.

The truth is per subband file: (time, baseline, channel, pol) in the file's own
baseline order (``ant_1``/``ant_2`` antenna numbers, names = number + 1) and
channel order (descending, sb00 highest). The MS has one ascending spectral
window and its own row order (the converter may swap ANTENNA1/ANTENNA2), so
baselines are matched by antenna-name pair and channels by frequency.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .msio import MsLayout


def truth_in_ms_order(npz_path: str | Path, layout: MsLayout) -> tuple[np.ndarray, np.ndarray, float]:
    """Truth mask and injected amplitude (Jy) on the MS grid (n_time, n_bl, n_chan, n_pol), and sigma (Jy)."""
    from ..simulate.rfi import load_rfi_truth

    truth = load_rfi_truth(npz_path)
    id_of = {str(n): i for i, n in enumerate(layout.antenna_names)}
    ms_bl = {(int(a), int(b)): k for k, (a, b) in enumerate(zip(layout.ant1, layout.ant2))}
    t1 = np.array([id_of[str(int(n) + 1)] for n in truth.ant_1])
    t2 = np.array([id_of[str(int(n) + 1)] for n in truth.ant_2])
    bl_map = np.array([ms_bl.get((min(a, b), max(a, b)), -1) for a, b in zip(t1, t2)])
    if np.any(bl_map < 0):
        raise ValueError(f"{npz_path}: {int(np.sum(bl_map < 0))} truth baselines are not in {layout.path}")
    t_mjd_s = np.asarray(truth.times_mjd) * 86400.0
    t_map = np.array([int(np.argmin(np.abs(layout.times_s - t))) for t in t_mjd_s])
    if np.max(np.abs(layout.times_s[t_map] - t_mjd_s)) > 1.0:
        raise ValueError(f"{npz_path}: integration times do not match {layout.path}")
    mask = np.zeros((layout.n_time, layout.n_bl, layout.n_chan, layout.n_pol), dtype=bool)
    amp = np.zeros(mask.shape, dtype=np.float32)
    width = float(np.median(np.abs(np.diff(layout.freqs_hz)))) if layout.n_chan > 1 else 1.0
    for sb in truth.subbands:
        f = truth.freqs(sb)
        c_map = np.array([int(np.argmin(np.abs(layout.freqs_hz - x))) for x in f])
        if np.max(np.abs(layout.freqs_hz[c_map] - f)) > 0.01 * width:
            raise ValueError(f"{npz_path}: channels of sb{sb:02d} are not in {layout.path}")
        m, a = truth.mask(sb), truth.amplitude(sb)
        idx = np.ix_(t_map, bl_map, c_map, np.arange(layout.n_pol))
        mask[idx] = m
        amp[idx] = a
    return mask, amp, truth.sigma_jy


@dataclass
class FlagScore:
    """How flags compare with the truth, beyond the base flags."""

    recall: float
    """Fraction of the strong RFI samples (amplitude > threshold x sigma, not base-flagged) flagged."""
    false_rate: float
    """Fraction of the RFI-free samples (not base-flagged) flagged."""
    strong: int
    """Strong RFI samples counted."""
    clean: int
    """RFI-free samples counted."""
    threshold_sigma: float
    """Amplitude threshold of 'strong' in units of sigma."""

    def to_dict(self) -> dict:
        """As a dict."""
        return asdict(self)


def score_flags(after: np.ndarray, base: np.ndarray, mask: np.ndarray, amp: np.ndarray, sigma_jy: float,
                threshold_sigma: float = 5.0) -> FlagScore:
    """Recall on strong RFI and false-flag rate on RFI-free samples, both beyond ``base``."""
    usable = ~base
    strong = mask & (amp > threshold_sigma * sigma_jy) & usable
    clean = ~mask & usable
    n_s, n_c = int(strong.sum()), int(clean.sum())
    recall = float((after & strong).sum() / n_s) if n_s else float("nan")
    false_rate = float((after & clean).sum() / n_c) if n_c else float("nan")
    return FlagScore(recall, false_rate, n_s, n_c, threshold_sigma)
