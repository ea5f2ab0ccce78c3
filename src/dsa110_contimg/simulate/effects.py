"""Time-variable gains and the ionospheric phase screen of the simulator.

Gain variation (:func:`gain_variation_factors`): per antenna and polarization, a multiplicative factor
``(1 + sigma_a n_a(t)) exp(i sigma_p n_p(t))`` on the gains of :mod:`.instrument`, ``n_a``, ``n_p``
independent zero-mean unit-variance Gaussian processes with the squared-exponential covariance
``exp(-dt**2 / (2 tau**2))`` (random Fourier features: 64 cosines with frequencies drawn from
N(0, 1/tau**2) and random phases).  Defaults 3% and 30 deg with tau = 300 s: the phase changes by
~27 deg rms over 5 minutes.  The process is drawn once per run and evaluated at every integration, so
it is continuous across groups; the factors at each integration are written into the truth.

Ionosphere (:class:`PhaseScreen`): a thin screen at 300 km, frozen and drifting at ``velocity``; the
phase at 1.4 GHz (scaled as 1/f) at a pierce point ``x`` is ``g . x + sum_j a_j cos(k_j . x + psi_j)``:
a TEC gradient (default 2 mTECU/km, 6.03 rad per TECU at 1.4 GHz) plus 24 Fourier modes with
wavelengths log-spaced from 5 to 200 km in random directions and amplitudes ``~ k**(-5/6)``
(Kolmogorov: phase structure function ~ r**(5/3)), scaled so that the rms phase difference between
points 10 km apart is ``rms_deg_10km``.  Pierce point of antenna ``p`` towards tangent-plane offset
``(l, m)`` from the pointing: ``x = (p . east, p . north) + h (l, m) - v t``.  The phase is evaluated per
facet (squares of ``facet_deg`` in (l, m)), at the facet's centre.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

RAD_PER_TECU_1P4 = 8.44797e9 / 1.4e9
"""Ionospheric phase (rad) of 1 TECU at 1.4 GHz."""


def gain_variation_factors(n_ant: int, n_pol: int, rng: np.random.Generator, amp_sigma: float,
                           phase_sigma_deg: float, corr_time_s: float, n_features: int = 64):
    """Draw the gain-variation process once; return a function of time evaluating it.

    Parameters
    ----------
    n_ant, n_pol
        Antennas (all stations) and polarizations.
    rng
        Random generator.
    amp_sigma
        Rms fractional amplitude variation.
    phase_sigma_deg
        Rms phase variation (deg).
    corr_time_s
        Correlation time ``tau`` of the squared-exponential covariance (s).
    n_features
        Cosines per process.

    Returns
    -------
    callable
        ``factors(t_s)`` -> complex array (Nant, Ntime, Npol) at times ``t_s`` (seconds from any fixed origin).
    """
    omega = rng.standard_normal((2, n_ant, n_pol, n_features)) / corr_time_s
    psi = rng.uniform(0, 2 * np.pi, (2, n_ant, n_pol, n_features))
    norm = np.sqrt(2.0 / n_features)

    def factors(t_s) -> np.ndarray:
        t = np.asarray(t_s, dtype=float)
        n = norm * np.cos(omega[..., None] * t + psi[..., None]).sum(axis=3)  # (2, Nant, Npol, Nt)
        g = (1.0 + amp_sigma * n[0]) * np.exp(1j * np.radians(phase_sigma_deg) * n[1])
        return np.transpose(g, (0, 2, 1))

    return factors


@dataclass
class PhaseScreen:
    """A frozen thin-screen ionosphere (see the module docstring)."""

    height_m: float
    """Screen height (m)."""
    velocity_mps: list[float]
    """Drift velocity (east, north) (m/s)."""
    gradient_rad_per_m: list[float]
    """Linear phase gradient at 1.4 GHz (east, north) (rad/m)."""
    k_rad_per_m: list[list[float]]
    """Wave vectors of the Fourier modes (rad/m), (Nmodes, 2)."""
    amp_rad: list[float]
    """Amplitudes of the modes at 1.4 GHz (rad)."""
    phase_rad: list[float]
    """Phases of the modes (rad)."""
    facet_deg: float
    """Side of the square facets in the tangent plane (deg)."""
    t0_mjd: float
    """Time origin of the drift (MJD)."""
    f_ref_hz: float = 1.4e9
    """Frequency of the phases; they scale as f_ref / f."""

    def phase(self, xy_m: np.ndarray, t_s) -> np.ndarray:
        """Screen phase (rad at ``f_ref_hz``) at pierce points ``xy_m`` (..., 2) at time ``t_s`` (s since t0)."""
        p = np.asarray(xy_m, dtype=float) - np.asarray(self.velocity_mps) * t_s
        k = np.asarray(self.k_rad_per_m)
        ph = p @ np.asarray(self.gradient_rad_per_m)
        return ph + (np.asarray(self.amp_rad) * np.cos(p @ k.T + np.asarray(self.phase_rad))).sum(axis=-1)

    def facet_of(self, lm: np.ndarray) -> np.ndarray:
        """Integer facet indices (i, j) of tangent-plane offsets ``lm`` (rad), shape (N, 2)."""
        return np.floor(np.degrees(lm) / self.facet_deg + 0.5).astype(int)

    def antenna_phases(self, ant_xy_m: np.ndarray, facets: np.ndarray, t_s: float) -> np.ndarray:
        """Phase (rad at f_ref) of every antenna towards each facet centre, shape (Nant, Nfacet)."""
        lm = np.radians(np.asarray(facets, dtype=float) * self.facet_deg)  # facet centres
        xy = ant_xy_m[:, None, :] + self.height_m * lm[None, :, :]
        return self.phase(xy, t_s)

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return asdict(self)


def random_screen(rng: np.random.Generator, t0_mjd: float, rms_deg_10km: float = 10.0, speed_mps: float = 150.0,
                  gradient_mtecu_per_km: float = 2.0, facet_deg: float = 0.5, height_m: float = 300e3,
                  n_modes: int = 24, wavelengths_km: tuple[float, float] = (5.0, 200.0)) -> PhaseScreen:
    """Draw a :class:`PhaseScreen` (the model and defaults are in the module docstring)."""
    from scipy.special import j0

    lam = np.geomspace(wavelengths_km[0], wavelengths_km[1], n_modes) * 1e3
    kmag = 2 * np.pi / lam
    ang = rng.uniform(0, 2 * np.pi, n_modes)
    k = np.stack([kmag * np.cos(ang), kmag * np.sin(ang)], axis=1)
    amp = kmag ** (-5.0 / 6.0) * np.abs(1.0 + 0.3 * rng.standard_normal(n_modes))
    d10 = np.sum(amp ** 2 * (1.0 - j0(kmag * 10e3)))  # structure function at 10 km, averaged over directions
    amp *= np.radians(rms_deg_10km) / np.sqrt(d10)
    g_ang = rng.uniform(0, 2 * np.pi)
    g = gradient_mtecu_per_km * 1e-3 / 1e3 * RAD_PER_TECU_1P4
    v_ang = rng.uniform(0, 2 * np.pi)
    return PhaseScreen(height_m=height_m, velocity_mps=[speed_mps * np.cos(v_ang), speed_mps * np.sin(v_ang)],
                       gradient_rad_per_m=[g * np.cos(g_ang), g * np.sin(g_ang)], k_rad_per_m=k.tolist(),
                       amp_rad=amp.tolist(), phase_rad=rng.uniform(0, 2 * np.pi, n_modes).tolist(),
                       facet_deg=facet_deg, t0_mjd=t0_mjd)
