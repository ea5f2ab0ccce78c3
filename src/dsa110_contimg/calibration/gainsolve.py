"""Antenna-gain solver of self-calibration: small pure numpy kernels (no I/O).

The data model is CASA's: a visibility of baseline ``(p, q)`` is
``V_pq = g_p conj(g_q) M_pq`` with ``M`` the model visibility.  Per solution
interval and polarization the data enter only through two baseline sums over the
interval's integrations and channels (:func:`baseline_sums`)::

    X_pq = sum w V_pq conj(M_pq),    Y_pq = sum w |M_pq|^2

and the least-squares gains solve ``g_p = sum_q X_pq g_q / sum_q Y_pq |g_q|^2``
(StEFCal, Salvini & Wijnholds 2014: the update of every antenna at once, averaged
with the previous iterate every second step), with the phase alone kept for
phase-only solutions (``arg sum_q X_pq g_q``, the exact least-squares phase given
the others).  Phases are referred to a reference antenna (its phase 0).

* :func:`parse_solint` and :func:`slot_index`: solution intervals;
* :func:`baseline_sums`: ``X`` and ``Y`` of each interval;
* :func:`solve_gains`: the gains of each interval and polarization;
* :func:`apply_gains` / :func:`unapply_gains`: divide them out of (or back into) visibilities.
"""

from __future__ import annotations

import math
import re

import numpy as np


def parse_solint(solint: str) -> float | None:
    """Seconds of a CASA-style solution interval: ``'inf'`` (None: the whole group), ``'int'`` (0: each
    integration), ``'60s'``, ``'2min'``, or a number of seconds.

    Raises
    ------
    ValueError
        Not one of these forms.
    """
    text = str(solint).strip().lower()
    if text == "inf":
        return None
    if text == "int":
        return 0.0
    m = re.fullmatch(r"([0-9]*\.?[0-9]+)\s*(s|sec|min|m|h)?", text)
    if not m:
        raise ValueError(f"solution interval {solint!r}: use 'inf', 'int', '60s', '2min' or seconds")
    value = float(m.group(1)) * {"s": 1.0, "sec": 1.0, None: 1.0, "min": 60.0, "m": 60.0, "h": 3600.0}[m.group(2)]
    if value < 0:
        raise ValueError(f"solution interval {solint!r} is negative")
    return value


def slot_index(times_s: np.ndarray, solint_s: float | None) -> tuple[np.ndarray, int]:
    """Solution interval of each row: ``(index per row, number of intervals)``.

    ``None`` puts every row in one interval; 0 gives each distinct time its own;
    otherwise intervals of ``solint_s`` seconds from the first time.  An
    interval's last partial piece shorter than half an interval joins the one
    before (as CASA does), so no solution rests on a sliver of data.
    """
    t = np.asarray(times_s, dtype=float)
    if t.size == 0:
        return np.zeros(0, dtype=int), 0
    if solint_s is None:
        return np.zeros(t.size, dtype=int), 1
    uniq, inverse = np.unique(t, return_inverse=True)
    if solint_s <= 0:
        return inverse.astype(int), int(uniq.size)
    step = float(np.median(np.diff(uniq))) if uniq.size > 1 else 0.0
    per_time = np.floor((uniq - uniq[0] + 0.5 * step) / solint_s).astype(int)
    n = int(per_time.max()) + 1
    if n > 1 and (uniq[-1] - uniq[0] + step) - (n - 1) * solint_s < 0.5 * solint_s:
        per_time = np.minimum(per_time, n - 2)
        n -= 1
    return per_time[inverse].astype(int), n


def baseline_sums(vis: np.ndarray, model: np.ndarray, weight: np.ndarray, flags: np.ndarray, ant1: np.ndarray,
                  ant2: np.ndarray, slot: np.ndarray, n_ant: int, n_slot: int) -> tuple[np.ndarray, np.ndarray]:
    """The sums ``X`` and ``Y`` of the module docstring per interval, polarization and antenna pair.

    Parameters
    ----------
    vis, model
        Visibilities and model, ``(row, channel, pol)``.
    weight
        Weights, broadcastable to ``vis`` (e.g. ``(row, 1, pol)`` from WEIGHT).
    flags
        True where a sample is not used.
    ant1, ant2
        Antenna indices per row; autocorrelations are ignored.
    slot
        Solution interval per row (:func:`slot_index`).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        ``X`` complex and ``Y`` real, shape ``(slot, pol, ant, ant)``, Hermitian in the antenna axes, zero
        on the diagonal.
    """
    npol = vis.shape[-1]
    w = np.where(flags | ~np.isfinite(vis) | ~np.isfinite(model), 0.0,
                 np.broadcast_to(np.asarray(weight, dtype=np.float64), vis.shape))
    v = np.where(w > 0, vis, 0)
    m = np.where(w > 0, model, 0)
    xr = np.einsum("rcp,rcp->rp", w * v, np.conj(m))  # (row, pol)
    yr = np.einsum("rcp,rcp->rp", w, (m * np.conj(m)).real)
    cross = np.asarray(ant1) != np.asarray(ant2)
    a1, a2, s = np.asarray(ant1)[cross], np.asarray(ant2)[cross], np.asarray(slot)[cross]
    x = np.zeros((n_slot, npol, n_ant, n_ant), dtype=np.complex128)
    y = np.zeros((n_slot, npol, n_ant, n_ant), dtype=np.float64)
    for p in range(npol):
        np.add.at(x, (s, p, a1, a2), xr[cross, p])
        np.add.at(y, (s, p, a1, a2), yr[cross, p])
    x = x + np.conj(np.swapaxes(x, -1, -2))
    y = y + np.swapaxes(y, -1, -2)
    return x, y


def solve_gains(x: np.ndarray, y: np.ndarray, phase_only: bool, refant: int = 0, min_baselines: int = 4,
                n_iter: int = 200, tol: float = 1e-10) -> tuple[np.ndarray, np.ndarray]:
    """Gains from the sums of :func:`baseline_sums` (any leading axes, then ``(ant, ant)``).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Gains (complex, leading axes + ``(ant,)``; 1 where there is no solution) and a boolean array of
        which antennas have a solution (at least ``min_baselines`` baselines with data).  The reference
        antenna's phase is 0 wherever it has a solution (elsewhere the first antenna with one is the reference).
    """
    x = np.asarray(x, dtype=np.complex128)
    y = np.asarray(y, dtype=np.float64)
    ok = (y > 0).sum(axis=-1) >= min_baselines
    g = np.ones(x.shape[:-1], dtype=np.complex128)
    for it in range(n_iter):
        num = np.einsum("...pq,...q->...p", x, g)
        den = np.einsum("...pq,...q->...p", y, (g * np.conj(g)).real)
        with np.errstate(divide="ignore", invalid="ignore"):
            new = np.where(ok & (den > 0), num / den, 1.0)
        if phase_only:
            mag = np.abs(new)
            new = np.where(mag > 0, new / np.where(mag > 0, mag, 1.0), 1.0)
        if it % 2 == 1:
            new = 0.5 * (new + g)
            if phase_only:
                mag = np.abs(new)
                new = np.where(mag > 0, new / np.where(mag > 0, mag, 1.0), 1.0)
        change = float(np.max(np.abs(new - g))) if g.size else 0.0
        g = new
        if change < tol:
            break
    # the reference antenna, or where it has no solution the first antenna that has one
    ref_idx = np.where(ok[..., refant], refant, np.argmax(ok, axis=-1))[..., None]
    ref = np.take_along_axis(g, ref_idx, axis=-1)
    rot = np.conj(ref) / np.where(np.abs(ref) > 0, np.abs(ref), 1.0)
    g = np.where(ok, g * rot, 1.0)
    return g, ok


def apply_gains(vis: np.ndarray, gains: np.ndarray, ant1: np.ndarray, ant2: np.ndarray,
                slot: np.ndarray) -> np.ndarray:
    """``V / (g_p conj(g_q))`` per row; ``gains`` of shape ``(slot, pol, ant)`` (:func:`solve_gains`)."""
    gp = gains[slot, :, ant1]  # (row, pol)
    gq = gains[slot, :, ant2]
    return vis / (gp * np.conj(gq))[:, None, :]


def unapply_gains(vis: np.ndarray, gains: np.ndarray, ant1: np.ndarray, ant2: np.ndarray,
                  slot: np.ndarray) -> np.ndarray:
    """Inverse of :func:`apply_gains`: ``V g_p conj(g_q)``."""
    gp = gains[slot, :, ant1]
    gq = gains[slot, :, ant2]
    return vis * (gp * np.conj(gq))[:, None, :]


def phase_scatter_deg(gains: np.ndarray, ok: np.ndarray) -> float:
    """Rms of the solved phases (deg) over antennas with a solution: how much a round changed the data."""
    ph = np.degrees(np.angle(gains[ok]))
    return float(math.sqrt(np.mean(ph ** 2))) if ph.size else 0.0
