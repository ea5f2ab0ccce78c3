"""Numerical kernels of the simulator: small pure numpy functions."""

from __future__ import annotations

import numpy as np

from ..beam import SPEED_OF_LIGHT


def baseline_delays(baselines_m: np.ndarray, src_dirs: np.ndarray, fs_dir: np.ndarray) -> np.ndarray:
    """Geometric delays (s) of sources relative to the fringe-stop direction.

    Parameters
    ----------
    baselines_m
        ITRF baseline vectors ``x(ant2) - x(ant1)``, shape (Nbl, 3).
    src_dirs
        Apparent source directions as ITRF unit vectors, shape (Nsrc, 3).
    fs_dir
        Fringe-stop direction (ITRF unit vector), shape (3,).

    Returns
    -------
    numpy.ndarray
        Shape (Nbl, Nsrc).
    """
    return baselines_m @ (src_dirs - fs_dir[None, :]).T / SPEED_OF_LIGHT


def sum_point_sources(delays_s: np.ndarray, amp: np.ndarray, freqs_hz: np.ndarray) -> np.ndarray:
    """Sum of point-source visibilities ``sum_k amp[k, c] * exp(+2 pi i tau[:, k] f_c)``.

    Uses a phasor recurrence along the channel axis when channels are evenly
    spaced (exact to ~1e-13), a direct evaluation otherwise.

    Parameters
    ----------
    delays_s
        Shape (Nbl, Nsrc).
    amp
        Apparent flux of each source per channel (Jy), shape (Nsrc, Nchan).
    freqs_hz
        Shape (Nchan,).

    Returns
    -------
    numpy.ndarray
        complex128, shape (Nbl, Nchan).
    """
    f = np.asarray(freqs_hz, dtype=float)
    nbl = delays_s.shape[0]
    out = np.empty((nbl, f.size), dtype=np.complex128)
    if f.size > 2 and np.allclose(np.diff(f), f[1] - f[0], rtol=1e-9, atol=0):
        phasor = np.exp(2j * np.pi * delays_s * f[0])
        step = np.exp(2j * np.pi * delays_s * (f[1] - f[0]))
        for c in range(f.size):
            out[:, c] = phasor @ amp[:, c]
            phasor *= step
    else:
        for c in range(f.size):
            out[:, c] = np.exp(2j * np.pi * delays_s * f[c]) @ amp[:, c]
    return out


def complex_noise(shape: tuple[int, ...], sigma: float | np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Circular complex Gaussian noise with standard deviation ``sigma`` per real/imag part."""
    re = rng.standard_normal(shape, dtype=np.float32)
    im = rng.standard_normal(shape, dtype=np.float32)
    return (re + 1j * im) * np.asarray(sigma, dtype=np.float32)


def per_visibility_sigma(sefd_jy: float, chan_width_hz: float, int_time_s: float) -> float:
    """Thermal noise (Jy) of the real or imaginary part of one cross-correlation.

    ``sigma = SEFD / sqrt(2 * bandwidth * time)`` for one polarization product.
    """
    return float(sefd_jy / np.sqrt(2.0 * chan_width_hz * int_time_s))
