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
    """Convert UVH5-convention visibilities to the MS convention with ANTENNA1 < ANTENNA2, in place.

    A record whose file orientation is (ant_1 < ant_2) is conjugated; a record
    stored the other way round keeps its value once its antennas are swapped.
    (Equivalent to pyuvdata's ``conjugate_bls('ant1<ant2')`` plus ``write_ms``.)
    """
    np.conjugate(vis, out=vis, where=~swapped[:, None, None])
    return vis


def flag_nonfinite(vis: np.ndarray, flags: np.ndarray) -> int:
    """Flag non-finite visibilities and set them to 0, in place.

    A sample is non-finite when its real or imaginary part is NaN or +-Inf;
    it is counted whether or not it was already flagged.

    Parameters
    ----------
    vis
        Complex visibilities, any shape; modified in place.
    flags
        Boolean flags of the same shape; non-finite samples are set True in place.

    Returns
    -------
    int
        Number of non-finite samples (0: nothing changed).
    """
    bad = ~np.isfinite(vis)
    n = int(np.count_nonzero(bad))
    if n:
        vis[bad] = 0
        flags |= bad
    return n


def nsample_sums(nsamples: np.ndarray, flags: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per record and polarization: sum of unflagged nsamples, count of unflagged channels, all-flagged."""
    nrec, nchan, npol = nsamples.shape
    if not flags.any():  # the usual case: nothing flagged
        return (nsamples.sum(axis=1, dtype=np.float64), np.full((nrec, npol), nchan), np.zeros(nrec, dtype=bool))
    good = ~flags
    return (np.einsum("rcp,rcp->rp", nsamples, good, dtype=np.float64), good.sum(axis=1),
            flags.all(axis=(1, 2)))


def combine_nsample_sums(parts, nrec: int, npol: int) -> tuple[np.ndarray, np.ndarray]:
    """Row weights (mean nsamples over unflagged channels, 0 when none) and FLAG_ROW from subband sums.

    With the correlator's nsamples (96 x 0.134217728 s samples = the 12.884902 s
    integration) the weight is 96 for every good row.
    """
    total = np.zeros((nrec, npol))
    count = np.zeros((nrec, npol))
    flag_row = np.ones(nrec, dtype=bool)
    for s, n, fr in parts:
        total += s
        count += n
        flag_row &= fr
    w = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
    return w.astype(np.float32), flag_row
