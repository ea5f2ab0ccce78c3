"""Numerical kernels of the converter: small pure numpy functions."""

from __future__ import annotations

import numpy as np

from ..beam import SPEED_OF_LIGHT


def rephase(vis: np.ndarray, delta_w_m: np.ndarray, freqs_hz: np.ndarray) -> np.ndarray:
    """Move the phase centre: multiply by ``exp(-2 pi i (w_new - w_old) f / c)`` in place.

    Parameters
    ----------
    vis
        complex64, shape (Nrec, Nchan, Npol), pyuvdata/UVH5 sign convention.
    delta_w_m
        ``w_new - w_old`` per record (m), shape (Nrec,).
    freqs_hz
        Channel frequencies, shape (Nchan,).

    Returns
    -------
    numpy.ndarray
        ``vis``, modified in place.
    """
    f = np.asarray(freqs_hz, dtype=float)
    k = (-2.0 * np.pi / SPEED_OF_LIGHT) * delta_w_m
    if f.size > 2 and np.allclose(np.diff(f), f[1] - f[0], rtol=1e-9, atol=0):
        # evenly spaced channels: phasor recurrence along the channel axis (exact to ~1e-13)
        rot = np.empty((delta_w_m.size, f.size), dtype=np.complex128)
        rot[:, 0] = np.exp(1j * k * f[0])
        rot[:, 1:] = np.exp(1j * k * (f[1] - f[0]))[:, None]
        np.cumprod(rot, axis=1, out=rot)
    else:
        rot = np.exp(1j * k[:, None] * f[None, :])
    vis *= rot.astype(np.complex64)[:, :, None]
    return vis


def to_ms_orientation(vis: np.ndarray, swapped: np.ndarray) -> np.ndarray:
    """Convert UVH5-convention visibilities to the MS convention with ANTENNA1 < ANTENNA2.

    A record whose file orientation is (ant_1 < ant_2) is conjugated; a record
    stored the other way round keeps its value once its antennas are swapped.
    (Equivalent to pyuvdata's ``conjugate_bls('ant1<ant2')`` plus ``write_ms``.)
    """
    keep = ~swapped
    vis[keep] = np.conj(vis[keep])
    return vis


def weights_from_nsamples(nsamples: np.ndarray, flags: np.ndarray) -> np.ndarray:
    """Row weights per polarization: mean nsamples over unflagged channels (0 when all are flagged).

    With the correlator's nsamples (96 x 0.134217728 s samples = the 12.884902 s
    integration) this is 96 for every good row.
    """
    good = ~flags
    n = good.sum(axis=1)
    s = np.where(good, nsamples, 0).sum(axis=1, dtype=np.float64)
    return np.divide(s, n, out=np.zeros_like(s), where=n > 0).astype(np.float32)
