"""Instrument model of the simulator: per-antenna, per-polarization complex gains.

Gain of antenna ``a``, polarization ``p`` at time ``t`` and frequency ``f``::

    g = amp * exp(1j * (phase + phase_rate * (t - t_ref)))
        * exp(2j * pi * delay * (f - f_ref))
        * (1 + sum_k bp_amp[k] P_k(x)) * exp(1j * sum_k bp_phase[k] P_k(x))

with ``x`` the frequency mapped linearly onto [-1, 1] over the band and
``P_k`` the Legendre polynomials of degree ``k = 1..K``.  A visibility of
baseline (a1, a2) is ``g[a1] * conj(g[a2]) * V_true`` (CASA's convention).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class GainModel:
    """Random but reproducible antenna gains."""

    amp: np.ndarray
    """Amplitude, shape (Nant, Npol)."""
    phase_rad: np.ndarray
    """Phase at ``t_ref`` (rad), shape (Nant, Npol)."""
    delay_ns: np.ndarray
    """Residual delay (ns), shape (Nant, Npol)."""
    phase_rate_rad_per_s: np.ndarray
    """Slow phase drift (rad/s), shape (Nant, Npol)."""
    bp_amp: np.ndarray
    """Legendre coefficients of the bandpass amplitude, shape (Nant, Npol, K)."""
    bp_phase: np.ndarray
    """Legendre coefficients of the bandpass phase (rad), shape (Nant, Npol, K)."""
    f_ref_hz: float
    """Reference frequency of the delay term (Hz)."""
    f_lo_hz: float
    """Low band edge mapped to x = -1 (Hz)."""
    f_hi_hz: float
    """High band edge mapped to x = +1 (Hz)."""
    t_ref_mjd: float
    """Reference time of the phase drift (MJD)."""
    extra: dict = field(default_factory=dict)
    """Free-form notes stored with the truth."""
    time_mjd: np.ndarray | None = None
    """Times (MJD) of ``time_factor``, shape (Ntime,); None: no time variation beyond the drift."""
    time_factor: np.ndarray | None = None
    """Complex factor multiplying the gains at ``time_mjd`` (interpolated linearly between), (Nant, Ntime, Npol)."""

    def to_dict(self) -> dict:
        """JSON-ready dict (arrays as nested lists)."""
        out = self._base_dict()
        if self.time_factor is not None:
            out["time_mjd"] = np.asarray(self.time_mjd).tolist()
            out["time_factor_re"] = self.time_factor.real.tolist()
            out["time_factor_im"] = self.time_factor.imag.tolist()
        return out

    def _base_dict(self) -> dict:
        return {
            "amp": self.amp.tolist(), "phase_rad": self.phase_rad.tolist(), "delay_ns": self.delay_ns.tolist(),
            "phase_rate_rad_per_s": self.phase_rate_rad_per_s.tolist(), "bp_amp": self.bp_amp.tolist(),
            "bp_phase": self.bp_phase.tolist(), "f_ref_hz": self.f_ref_hz, "f_lo_hz": self.f_lo_hz,
            "f_hi_hz": self.f_hi_hz, "t_ref_mjd": self.t_ref_mjd, "extra": self.extra,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "GainModel":
        """Inverse of :meth:`to_dict`."""
        arr = {k: np.asarray(d[k], dtype=float) for k in
               ("amp", "phase_rad", "delay_ns", "phase_rate_rad_per_s", "bp_amp", "bp_phase")}
        tf = None
        if "time_factor_re" in d:
            tf = np.asarray(d["time_factor_re"], dtype=float) + 1j * np.asarray(d["time_factor_im"], dtype=float)
        return cls(**arr, f_ref_hz=float(d["f_ref_hz"]), f_lo_hz=float(d["f_lo_hz"]), f_hi_hz=float(d["f_hi_hz"]),
                   t_ref_mjd=float(d["t_ref_mjd"]), extra=dict(d.get("extra", {})),
                   time_mjd=np.asarray(d["time_mjd"], dtype=float) if tf is not None else None, time_factor=tf)


def unit_gains(n_ant: int, n_pol: int, f_ref_hz: float, f_lo_hz: float, f_hi_hz: float, t_ref_mjd: float,
               n_bp_terms: int = 3) -> GainModel:
    """Gains of exactly 1 for every antenna, polarization, time and channel."""
    z = np.zeros((n_ant, n_pol))
    return GainModel(amp=np.ones((n_ant, n_pol)), phase_rad=z.copy(), delay_ns=z.copy(),
                     phase_rate_rad_per_s=z.copy(), bp_amp=np.zeros((n_ant, n_pol, n_bp_terms)),
                     bp_phase=np.zeros((n_ant, n_pol, n_bp_terms)), f_ref_hz=f_ref_hz, f_lo_hz=f_lo_hz,
                     f_hi_hz=f_hi_hz, t_ref_mjd=t_ref_mjd)


def random_gains(n_ant: int, n_pol: int, rng: np.random.Generator, f_ref_hz: float, f_lo_hz: float,
                 f_hi_hz: float, t_ref_mjd: float, amp_sigma: float = 0.1, delay_sigma_ns: float = 2.0,
                 phase_rate_sigma_deg_per_hour: float = 0.0, bp_amp_sigma: float = 0.03,
                 bp_phase_sigma_rad: float = 0.05, n_bp_terms: int = 3) -> GainModel:
    """Draw a random, smooth gain model.

    Parameters
    ----------
    amp_sigma
        Standard deviation of the amplitude about 1.
    delay_sigma_ns
        Standard deviation of the residual delays (ns).
    phase_rate_sigma_deg_per_hour
        Standard deviation of the slow phase drift (deg/hour); 0 disables drift.
    bp_amp_sigma, bp_phase_sigma_rad
        Standard deviation of each Legendre coefficient of the bandpass.
    """
    shape = (n_ant, n_pol)
    return GainModel(
        amp=np.clip(1.0 + amp_sigma * rng.standard_normal(shape), 0.3, None),
        phase_rad=rng.uniform(-np.pi, np.pi, shape),
        delay_ns=delay_sigma_ns * rng.standard_normal(shape),
        phase_rate_rad_per_s=np.radians(phase_rate_sigma_deg_per_hour) / 3600.0 * rng.standard_normal(shape),
        bp_amp=bp_amp_sigma * rng.standard_normal((*shape, n_bp_terms)),
        bp_phase=bp_phase_sigma_rad * rng.standard_normal((*shape, n_bp_terms)),
        f_ref_hz=f_ref_hz, f_lo_hz=f_lo_hz, f_hi_hz=f_hi_hz, t_ref_mjd=t_ref_mjd,
    )


def evaluate_gains(model: GainModel, freqs_hz, mjd) -> np.ndarray:
    """Complex gains on a time-frequency grid.

    Parameters
    ----------
    model
        The gain model.
    freqs_hz : array_like
        Channel frequencies, shape (Nchan,).
    mjd : array_like
        Times (MJD), shape (Ntime,).

    Returns
    -------
    numpy.ndarray
        complex128, shape (Nant, Ntime, Nchan, Npol).
    """
    from numpy.polynomial import legendre

    f = np.asarray(freqs_hz, dtype=float)
    t = np.asarray(mjd, dtype=float)
    x = 2.0 * (f - model.f_lo_hz) / (model.f_hi_hz - model.f_lo_hz) - 1.0
    k = model.bp_amp.shape[-1]
    # Legendre basis P_1..P_K at x: shape (K, Nchan)
    basis = np.stack([legendre.legval(x, np.eye(k + 1)[i]) for i in range(1, k + 1)])
    bp = (1.0 + np.einsum("apk,kc->apc", model.bp_amp, basis)) * np.exp(
        1j * np.einsum("apk,kc->apc", model.bp_phase, basis))
    delay = np.exp(2j * np.pi * model.delay_ns[:, :, None] * 1e-9 * (f - model.f_ref_hz)[None, None, :])
    dt = (t - model.t_ref_mjd) * 86400.0
    ph = model.phase_rad[:, None, :] + model.phase_rate_rad_per_s[:, None, :] * dt[None, :, None]
    g_t = model.amp[:, None, :] * np.exp(1j * ph)  # (Nant, Ntime, Npol)
    if model.time_factor is not None:
        g_t = g_t * _interp_time_factor(model, t)
    g_f = bp * delay  # (Nant, Npol, Nchan)
    return g_t[:, :, None, :] * np.transpose(g_f, (0, 2, 1))[:, None, :, :]


def _interp_time_factor(model: GainModel, t: np.ndarray) -> np.ndarray:
    """``model.time_factor`` at times ``t`` (MJD), linear in real and imaginary parts, (Nant, Ntime, Npol)."""
    tm = np.asarray(model.time_mjd, dtype=float)
    tf = np.asarray(model.time_factor)
    if tm.size == 1:
        return np.repeat(tf, t.size, axis=1)
    idx = np.clip(np.searchsorted(tm, t) - 1, 0, tm.size - 2)
    w = ((t - tm[idx]) / (tm[idx + 1] - tm[idx]))[None, :, None]
    return tf[:, idx] * (1.0 - w) + tf[:, idx + 1] * w
