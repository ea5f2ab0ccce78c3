"""Numerical kernels of the flagger: small pure numpy functions on (time, baseline, channel, pol) blocks."""

from __future__ import annotations

import warnings

import numpy as np

MAD_TO_SIGMA = 1.4826
"""Standard deviation of a Gaussian per median absolute deviation."""


def base_flags(flags: np.ndarray, data: np.ndarray, autos: np.ndarray, short: np.ndarray) -> np.ndarray:
    """Existing flags plus exact zeros, autocorrelations and short baselines.

    Parameters
    ----------
    flags
        FLAG as read, (time, baseline, channel, pol).
    data
        Visibilities of the same shape.
    autos, short
        Per-baseline booleans, shape (baseline,): flag these baselines whole.
    """
    whole = (autos | short)[None, :, None, None]
    return flags | (data == 0) | whole


def masked_median(x: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Median over the last axis of the ``valid`` samples of ``x`` (NaN where none is valid).

    Invalid samples sort last as +inf; the median is read at the ranks of the
    valid count. A sort of short contiguous rows is several times faster than
    ``np.median``'s partition here.
    """
    s = np.sort(np.where(valid, x, np.array(np.inf, dtype=x.dtype)), axis=-1)
    n = np.count_nonzero(valid, axis=-1)
    lo = np.maximum(n - 1, 0) // 2
    hi = np.maximum(n, 1) // 2 * (n > 1) + lo * (n <= 1)
    med = 0.5 * (np.take_along_axis(s, lo[..., None], -1) + np.take_along_axis(s, hi[..., None], -1))[..., 0]
    return np.where(n > 0, med, np.nan)


def tile_view(a: np.ndarray, n_groups: int) -> np.ndarray:
    """(time, baseline, channel, pol) -> (baseline, pol, group, time x channels of the group) copy."""
    nt, nb, nch, npol = a.shape
    g = n_groups if n_groups > 0 and nch % n_groups == 0 else 1
    v = a.transpose(1, 3, 0, 2).reshape(nb, npol, nt, g, nch // g).transpose(0, 1, 3, 2, 4)
    return v.reshape(nb, npol, g, nt * (nch // g))


def mad_clip(amp: np.ndarray, flags: np.ndarray, threshold: float, n_groups: int = 16,
             stride: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Robust clip over time and frequency per baseline, polarization and subband.

    The centre of each (baseline, pol, subband) tile of amplitudes is its median
    over the unflagged samples, the scale ``1.4826 x`` their median absolute
    deviation; samples more than ``threshold`` scales above the centre are
    flagged (one-sided: interference adds power). Tiles are the ``n_groups`` equal
    channel blocks (the correlator subbands, which carry their own gains), all
    channels when the count does not divide.

    Parameters
    ----------
    amp
        Amplitudes, (time, baseline, channel, pol).
    flags
        Samples not to use (and kept flagged).
    threshold
        Clip level in robust standard deviations.
    n_groups
        Channel blocks with their own statistics.
    stride
        The statistics use every ``stride``-th integration and channel (a quarter of
        the samples for 2: 288 per full-size tile, plenty for a median and a MAD).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        The added flags, and the robust amplitude level per (baseline, pol)
        (median of the tile centres; NaN if all flagged).
    """
    nt, nb, nch, npol = amp.shape
    g = n_groups if n_groups > 0 and nch % n_groups == 0 else 1
    st = max(1, int(stride)) if (nch // g) % max(1, int(stride)) == 0 else 1
    x, valid = tile_view(amp[::st, :, ::st], g), tile_view(~flags[::st, :, ::st], g)
    centre = masked_median(x, valid)  # (bl, pol, group)
    mad = masked_median(np.abs(x - centre[..., None]), valid)
    del x, valid
    scale = MAD_TO_SIGMA * mad
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-flagged tiles give NaN, as intended
        level = np.nanmedian(centre, axis=2)
    per_chan = nch // g
    c_full = np.repeat(centre, per_chan, axis=2).transpose(0, 2, 1)  # (bl, chan, pol)
    cut = c_full + threshold * np.repeat(scale, per_chan, axis=2).transpose(0, 2, 1)
    cut = np.where(np.isfinite(cut), cut, np.inf).astype(amp.dtype)
    added = (amp > cut[None]) & ~flags
    return added, level


def nan_mean_rows(x: np.ndarray) -> np.ndarray:
    """Mean over the last axis ignoring NaN (NaN where a row has no finite value), without warnings."""
    ok = np.isfinite(x)
    n = ok.sum(axis=-1)
    return np.where(n > 0, np.where(ok, x, 0).sum(axis=-1) / np.maximum(n, 1), np.nan)


def extend_pols(flags: np.ndarray) -> np.ndarray:
    """Flag every polarization of a sample where any is flagged (a new array)."""
    anyp = flags[..., 0].copy()
    for p in range(1, flags.shape[-1]):
        anyp |= flags[..., p]
    out = np.empty_like(flags)
    for p in range(flags.shape[-1]):
        out[..., p] = anyp
    return out


def consensus_counts(new: np.ndarray, base: np.ndarray, cross: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per (time, channel, pol): RFI-flagged and usable cross-correlation samples summed over baselines.

    ``new`` are all flags after RFI flagging (a superset of ``base``), ``base`` the
    flags before; a sample is usable when not base-flagged, and RFI-flagged when
    usable and in ``new``. Autocorrelations (``~cross``) are left out.
    """
    rfi = new & ~base
    usable = ~base
    autos = np.flatnonzero(~cross)
    if autos.size:
        rfi[:, autos] = False
        usable[:, autos] = False
    return (np.add.reduce(rfi.view(np.uint8), axis=1, dtype=np.int64),
            np.add.reduce(usable.view(np.uint8), axis=1, dtype=np.int64))


def consensus_flags(hit: np.ndarray, usable: np.ndarray, cell_frac: float, time_frac: float,
                    chan_frac: float) -> np.ndarray:
    """(time, channel, pol) cells to flag on every baseline.

    A cell is flagged when more than ``cell_frac`` of its usable baselines are
    RFI-flagged; a whole integration (channel) when more than ``time_frac``
    (``chan_frac``) of its usable samples are.

    Parameters
    ----------
    hit, usable
        Counts from :func:`consensus_counts` summed over all baselines, (time, channel, pol).
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        cell = np.where(usable > 0, hit / np.maximum(usable, 1), 0.0) > cell_frac
        t_frac = hit.sum(axis=(1, 2)) / np.maximum(usable.sum(axis=(1, 2)), 1)
        c_frac = hit.sum(axis=(0, 2)) / np.maximum(usable.sum(axis=(0, 2)), 1)
    cell = cell | (t_frac > time_frac)[:, None, None] | (c_frac > chan_frac)[None, :, None]
    return cell


def antenna_outliers(level: np.ndarray, frac: np.ndarray, ant1: np.ndarray, ant2: np.ndarray, cross: np.ndarray,
                     n_ant: int, amp_factor: float, max_flagged: float) -> dict[int, str]:
    """Antennas whose data are dead or wildly off, or almost all flagged.

    Parameters
    ----------
    level
        Robust amplitude level per baseline (NaN if no data), shape (baseline,).
    frac
        Flagged fraction per baseline after RFI flagging, shape (baseline,).
    ant1, ant2, cross
        Antenna ids of each baseline and the cross-correlation selector.
    n_ant
        Number of antenna ids.
    amp_factor
        An antenna whose median baseline level is more than this factor above or
        below the array's median is flagged.
    max_flagged
        An antenna with more than this fraction of its cross-correlations flagged is flagged.

    Returns
    -------
    dict
        Antenna id -> reason.
    """
    out: dict[int, str] = {}
    sel = cross & np.isfinite(level) & (level > 0)
    if not sel.any():
        return out
    ref = float(np.median(level[sel]))
    for a in range(n_ant):
        mine = cross & ((ant1 == a) | (ant2 == a))
        if not mine.any():
            continue
        good = mine & sel
        if good.any():
            ratio = float(np.median(level[good])) / ref
            if ratio > amp_factor or ratio < 1.0 / amp_factor:
                out[a] = f"amplitude {ratio:.2g}x the array median"
                continue
        f = float(np.mean(frac[mine]))
        if f > max_flagged and f < 1.0:
            out[a] = f"{100 * f:.0f}% of its data flagged"
    return out


def count_tables(flags: np.ndarray, block: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Flag counts of a (time, baseline, channel, pol) array: per (time, baseline) and per (time, channel, pol).

    The first uses a popcount of the bytes seen as 64-bit words (one set bit per
    True byte), the second sums over baselines in blocks; both are fast on a
    full group (0.17 G samples).
    """
    nt, nbl, nch, npol = flags.shape
    row = nch * npol
    f2 = flags.reshape(nt * nbl, row)
    if row % 8 == 0 and f2.flags.c_contiguous:
        tb = np.bitwise_count(f2.view(np.uint64)).sum(axis=1, dtype=np.int64).reshape(nt, nbl)
    else:
        tb = np.count_nonzero(f2, axis=1).reshape(nt, nbl).astype(np.int64)
    tcp = np.zeros((nt, nch, npol), dtype=np.int64)
    for b0 in range(0, nbl, block):
        tcp += np.add.reduce(flags[:, b0:b0 + block].view(np.uint8), axis=1, dtype=np.int64)
    return tb, tcp
