"""Per-antenna primary beams of the simulator: pointing errors and the first-order beam expansion.

The shared power pattern is :func:`dsa110_contimg.beam.airy_power`, ``B = E**2`` with the voltage
pattern ``E = 2 J1(x) / x``, ``x = pi D sin(theta) f / c``.  Antenna ``p``, polarization ``P``, points
at ``s0 + d_pP`` (``d`` a small offset in the tangent plane, east and north components), so a
baseline responds with ``E_p E_q``.  To first order in the offsets::

    E_p E_q = B + (d_p + d_q) . grad_d B / 2 + O(|d|**2 * B'')

with ``grad_d B`` the change of ``B`` when the pointing moves, computed analytically
(:func:`beam_weight_sets`).  The neglected second-order term is of relative size
``(|d| / FWHM)**2`` ~ 1e-3 for a 3 arcmin error and the 2.7 deg beam (larger near the nulls).
"""

from __future__ import annotations

import numpy as np

from ..beam import SPEED_OF_LIGHT
from ..telescope import DISH_DIAMETER_M

ARCMIN = np.pi / 180.0 / 60.0
"""One arcminute in radians."""


def tangent_basis(s0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """East and north unit vectors of the tangent plane at the pointing ``s0`` (ITRF unit vector).

    Parameters
    ----------
    s0
        Pointing direction, shape (3,).

    Returns
    -------
    tuple of numpy.ndarray
        ``(east, north)``, each shape (3,); east = z x s0 normalised, north = s0 x east.
    """
    east = np.cross([0.0, 0.0, 1.0], s0)
    east /= np.linalg.norm(east)
    return east, np.cross(s0, east)


def airy_voltage(theta_rad, freq_hz, diameter_m: float = DISH_DIAMETER_M) -> np.ndarray:
    """Voltage pattern ``2 J1(x) / x`` whose square is :func:`dsa110_contimg.beam.airy_power` (signed)."""
    from scipy.special import j1

    x = np.pi * diameter_m * np.sin(np.asarray(theta_rad, dtype=float)) * np.asarray(freq_hz) / SPEED_OF_LIGHT
    x = np.where(np.abs(x) < 1e-9, 1e-9, x)
    return 2.0 * j1(x) / x


def beam_weight_sets(dirs: np.ndarray, s0: np.ndarray, freqs_hz: np.ndarray, gradient: bool,
                     diameter_m: float = DISH_DIAMETER_M) -> np.ndarray:
    """Power beam and (optionally) its derivatives with respect to the pointing offset.

    Parameters
    ----------
    dirs
        Source directions (ITRF unit vectors), shape (Nsrc, 3).
    s0
        Nominal pointing (ITRF unit vector), shape (3,).
    freqs_hz
        Shape (Nchan,).
    gradient
        Also return ``dB/dd_east`` and ``dB/dd_north``.
    diameter_m
        Dish diameter (m).

    Returns
    -------
    numpy.ndarray
        Shape (1 or 3, Nsrc, Nchan): ``B``, then ``dB/dd_e``, ``dB/dd_n`` (per radian of offset):
        ``4 E J2(x) / x**2 k**2 cos(theta) (s . e)``, ``k = pi D f / c``.
    """
    from scipy.special import j1, jv

    cos_t = np.clip(dirs @ s0, -1.0, 1.0)
    sin_t = np.sqrt(1.0 - cos_t ** 2)
    k = np.pi * diameter_m * np.asarray(freqs_hz, dtype=float) / SPEED_OF_LIGHT  # (Nch,)
    x = np.maximum(sin_t[:, None] * k[None, :], 1e-9)
    e = 2.0 * j1(x) / x
    if not gradient:
        return (e * e)[None]
    east, north = tangent_basis(s0)
    core = 4.0 * e * jv(2, x) / x ** 2 * k[None, :] ** 2 * cos_t[:, None]
    return np.stack([e * e, core * (dirs @ east)[:, None], core * (dirs @ north)[:, None]])


def draw_pointing_errors(n_ant: int, n_pol: int, sigma_arcmin: float, rng: np.random.Generator) -> np.ndarray:
    """Static pointing offsets, Gaussian with ``sigma_arcmin`` per axis, per antenna and polarization.

    Returns
    -------
    numpy.ndarray
        Offsets (rad), shape (Nant, Npol, 2): east and north components.
    """
    return sigma_arcmin * ARCMIN * rng.standard_normal((n_ant, n_pol, 2))


def combine_pointing(v: np.ndarray, offsets: np.ndarray, a1: np.ndarray, a2: np.ndarray) -> np.ndarray:
    """Per-polarization visibilities from the three weight-set sums of :func:`beam_weight_sets`.

    Parameters
    ----------
    v
        Sums with the weights ``B``, ``dB/dd_e``, ``dB/dd_n``: shape (3, Nbl, Nchan).
    offsets
        Pointing offsets (rad), shape (Nant, Npol, 2).
    a1, a2
        Antenna indices of each baseline, shape (Nbl,).

    Returns
    -------
    numpy.ndarray
        Shape (Nbl, Nchan, Npol): ``V0 + (d_p + d_q) . (Ve, Vn) / 2``.
    """
    d = offsets[a1] + offsets[a2]  # (Nbl, Npol, 2)
    out = v[0][:, :, None] + 0.5 * (d[:, None, :, 0] * v[1][:, :, None] + d[:, None, :, 1] * v[2][:, :, None])
    return out


def per_antenna_voltages(dirs: np.ndarray, s0: np.ndarray, offsets: np.ndarray, freqs_hz: np.ndarray,
                         diameter_m: float = DISH_DIAMETER_M) -> np.ndarray:
    """Exact voltage pattern of every antenna and polarization towards every source (the reference).

    Returns
    -------
    numpy.ndarray
        Shape (Nant, Npol, Nsrc, Nchan).
    """
    east, north = tangent_basis(s0)
    p = s0[None, None, :] + offsets[..., 0:1] * east + offsets[..., 1:2] * north  # (Nant, Npol, 3)
    p /= np.linalg.norm(p, axis=-1, keepdims=True)
    theta = np.arccos(np.clip(np.einsum("apk,sk->aps", p, dirs), -1.0, 1.0))
    return airy_voltage(theta[..., None], np.asarray(freqs_hz)[None, None, None, :], diameter_m)
