"""The sky visibilities of one simulated group, subband by subband (before RFI, noise and gains).

:class:`SkyPredictor` holds one group's sources and geometry.  Without per-antenna beams, ionosphere or
Gaussians and with the direct predict it sums point sources per subband exactly as the simulator always
did (:func:`.kernels.sum_point_sources`).  Otherwise each integration is predicted by
:func:`predict_integration`: the shared beam (or, with pointing errors, its first-order expansion in
the per-antenna offsets, :mod:`.beams`) times the source spectra, summed by :func:`.predict.nufft_sum`
(point sources, fast) or :func:`.predict.direct_sum` (the reference, and all Gaussians), with the
facet ionospheric phases of :class:`.effects.PhaseScreen`.  With pointing errors and the direct predict
the exact per-antenna sum (:func:`.predict.per_antenna_sum`) is used.
"""

from __future__ import annotations

import numpy as np

from ..beam import airy_power
from .beams import beam_weight_sets, combine_pointing, per_antenna_voltages, tangent_basis
from .effects import PhaseScreen
from .kernels import baseline_delays, sum_point_sources
from .predict import direct_sum, gaussian_q, nufft_sum, per_antenna_sum
from .sky import SkySource

AUTO_NUFFT_SOURCES = 200
"""``predict='auto'`` uses the NUFFT from this many sources."""


class SkyPredictor:
    """Sky visibilities of one group.

    Parameters
    ----------
    sources
        The group's sources.
    dirs
        Apparent ITRF directions, shape (Nt, Nsrc, 3).
    s0
        Pointing and fringe-stop direction (ITRF unit vector).
    times
        Integration centres (MJD), shape (Nt,).
    freqs
        All channels of the group (file order), shape (Nch,).
    baselines
        ITRF baselines ``x(ant2) - x(ant1)``, shape (Nbl, 3).
    a1, a2
        Station indices of each baseline.
    ant_ecef
        Station positions (ITRF, m), shape (Nant, 3).
    method
        'direct', 'nufft' or 'auto'.
    pointing
        Pointing offsets (rad), shape (Nant, Npol, 2), or None.
    screen
        Ionospheric screen, or None.
    min_apparent_jy
        Drop sources whose apparent flux never exceeds this (None: keep all).
    """

    def __init__(self, sources: list[SkySource], dirs, s0, times, freqs, baselines, a1, a2, ant_ecef,
                 method: str = "auto", pointing=None, screen: PhaseScreen | None = None,
                 min_apparent_jy: float | None = None):
        self.freqs = np.asarray(freqs, dtype=float)
        self.times = np.asarray(times, dtype=float)
        f14 = np.array([s.flux_1p4_at_times(self.times) for s in sources]).reshape(len(sources), self.times.size)
        alpha = np.array([s.alpha for s in sources])
        spec = (self.freqs[None, :] / 1.4e9) ** alpha[:, None]
        beam = np.stack([airy_power(np.arccos(np.clip(dirs[it] @ s0, -1, 1))[:, None], self.freqs[None, :])
                         for it in range(self.times.size)], axis=1)  # (Nsrc, Nt, Nch)
        amp = f14[:, :, None] * spec[:, None, :] * beam
        keep = np.ones(len(sources), bool) if min_apparent_jy is None else amp.max(axis=(1, 2)) >= min_apparent_jy
        idx = np.flatnonzero(keep)
        self.sources = [sources[i] for i in idx]
        self.dirs, self.f14, self.spec, self.s0 = dirs[:, idx], f14[idx], spec[idx], s0
        mid = self.times.size // 2
        self.apparent = amp[idx].mean(axis=(1, 2))
        self.intrinsic = (f14[idx, :, None] * spec[idx, None, :]).mean(axis=(1, 2))
        self.beam_mean = beam[idx].mean(axis=(1, 2))
        self.beam_mid = airy_power(np.arccos(np.clip(dirs[mid, idx] @ s0, -1, 1)), 1.4e9)
        self._amp = amp[idx]
        self.bl, self.a1, self.a2 = baselines, a1, a2
        self.pointing, self.screen = pointing, screen
        self.resolved = np.array([s.resolved for s in self.sources], bool)
        if method == "auto":
            method = "nufft" if len(self.sources) >= AUTO_NUFFT_SOURCES else "direct"
        self.method = method
        self.legacy = method == "direct" and pointing is None and screen is None and not self.resolved.any()
        east, north = tangent_basis(s0)
        self.ant_xy = np.stack([(ant_ecef - ant_ecef.mean(axis=0)) @ east, (ant_ecef - ant_ecef.mean(axis=0)) @ north],
                               axis=1)
        self._full = None

    def subband(self, c0: int, nch: int) -> np.ndarray:
        """Sky visibilities of channels ``c0 .. c0 + nch``: complex128, shape (Nt, Nbl, nch, 2)."""
        f = self.freqs[c0:c0 + nch]
        nt, nbl = self.times.size, self.bl.shape[0]
        if self.legacy:
            amp = self._amp[:, :, c0:c0 + nch]
            keep = amp.max(axis=(1, 2)) > 1e-7
            vis = np.empty((nt, nbl, nch), dtype=np.complex128)
            for it in range(nt):
                vis[it] = sum_point_sources(baseline_delays(self.bl, self.dirs[it, keep], self.s0), amp[keep, it, :], f)
            return np.repeat(vis[..., None], 2, axis=-1)
        if self.method == "nufft":
            if self._full is None:
                self._full = np.stack([self.integration(it, 0, self.freqs.size) for it in range(nt)]).astype(
                    np.complex64)
            return self._full[:, :, c0:c0 + nch].astype(np.complex128)
        return np.stack([self.integration(it, c0, nch) for it in range(nt)])

    def iono_phases(self, it: int) -> np.ndarray | None:
        """Ionospheric phase difference per baseline and source at 1.4 GHz, (Nbl, Nsrc), or None."""
        if self.screen is None or not self.sources:
            return None
        east, north = tangent_basis(self.s0)
        lm = np.stack([self.dirs[it] @ east, self.dirs[it] @ north], axis=1)
        facets, inverse = np.unique(self.screen.facet_of(lm), axis=0, return_inverse=True)
        t_s = (self.times[it] - self.screen.t0_mjd) * 86400.0
        ph = self.screen.antenna_phases(self.ant_xy, facets, t_s)[:, inverse.ravel()]  # (Nant, Nsrc)
        return ph[self.a1] - ph[self.a2]

    def integration(self, it: int, c0: int, nch: int) -> np.ndarray:
        """Sky visibilities of integration ``it``, channels ``c0 .. c0 + nch``: shape (Nbl, nch, 2)."""
        return predict_integration(self, it, c0, nch)


def predict_integration(p: SkyPredictor, it: int, c0: int, nch: int) -> np.ndarray:
    """One integration of :class:`SkyPredictor` with the general model (see the module docstring)."""
    f = p.freqs[c0:c0 + nch]
    dirs = p.dirs[it]
    tau = baseline_delays(p.bl, dirs, p.s0)
    flux = p.f14[:, it, None] * p.spec[:, c0:c0 + nch]
    iono = p.iono_phases(it)
    gs = np.flatnonzero(p.resolved)
    pt = np.flatnonzero(~p.resolved)
    q = None
    if gs.size:
        src = [p.sources[i] for i in gs]
        q = gaussian_q(p.bl, dirs[gs], [s.major_arcsec for s in src], [s.minor_arcsec for s in src],
                       [s.pa_deg for s in src])
    sub = (lambda a, i: None if a is None else a[:, i])
    if p.pointing is not None and p.method == "direct":
        volt = per_antenna_voltages(dirs, p.s0, p.pointing, f)
        out = per_antenna_sum(tau[:, pt], flux[pt], volt[:, :, pt], p.a1, p.a2, f, iono=sub(iono, pt))
        if gs.size:
            out += per_antenna_sum(tau[:, gs], flux[gs], volt[:, :, gs], p.a1, p.a2, f, q=q, iono=sub(iono, gs))
        return out
    weights = beam_weight_sets(dirs, p.s0, f, gradient=p.pointing is not None) * flux[None]
    fast = nufft_sum if p.method == "nufft" else direct_sum
    v = fast(tau[:, pt], weights[:, pt], f, iono=sub(iono, pt))
    if gs.size:
        v += direct_sum(tau[:, gs], weights[:, gs], f, q=q, iono=sub(iono, gs))
    if p.pointing is not None:
        return combine_pointing(v, p.pointing, p.a1, p.a2)
    return np.repeat(v[0][..., None], 2, axis=-1)
