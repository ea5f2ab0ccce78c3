"""Bright sources outside the imaged field: fitted and subtracted from CORRECTED_DATA before imaging.

A source of tens of Jy in a sidelobe of the 4.65 m dish appears at a few hundred mJy, outside the
image, where CLEAN cannot model it: its sidelobes (tens of mJy across the field) stay in every
image.  A larger image would have to reach 5-10 deg (several times the pixels, for a source that
is then imaged through the least known part of the beam); instead, as in peeling, the source is
subtracted from the visibilities.  The primary beam there is known poorly (the sidelobe
response depends on frequency, on each dish's pointing, and on time as the sky drifts), so its
apparent flux is not predicted from the catalog but *fitted*: for each integration and
polarization, the complex apparent flux of each outlier as a polynomial in frequency
(``n_freq_terms`` Legendre terms over the band) times its catalog spectrum,

    V(b, c) ~ sum_k [ sum_j a_kj P_j(x_c) ] S_k(f_c) exp(2 pi i (u l_k + v m_k + w (n_k - 1)) f_c / c),

a linear least-squares problem with ``K * n_freq_terms`` unknowns per integration and polarization
(the other sources of the sky average out over the band and the baselines; the autocorrelations
and flagged samples are left out), then the fitted model is subtracted.  Direction-dependent
antenna gains towards the outlier (the ionosphere, each dish's own sidelobe) are not fitted; what
they leave is a few percent of the outlier's apparent flux.

Candidates: master-catalog sources (NVSS flux, spectral index -0.7 unless known) whose apparent
flux (catalog flux times the primary-beam power at the group's mid-time, the largest over the
band) reaches ``min_apparent_jy``, outside the imaged field and within ``max_radius_deg``; at most
``max_sources``, brightest first.  Stage function :func:`subtract_outliers`.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


@dataclass
class OutlierOptions:
    """Options of :func:`subtract_outliers`."""

    min_apparent_jy: float = 0.1
    """Subtract catalog sources whose apparent (beam-attenuated) flux reaches this (Jy)."""
    max_radius_deg: float = 12.0
    """Look this far from the phase centre (deg; the third sidelobe at 1.3 GHz is at ~9 deg)."""
    max_sources: int = 5
    """At most this many outliers, brightest (apparent) first."""
    n_freq_terms: int = 3
    """Legendre terms in frequency of each outlier's fitted apparent flux."""
    data_column: str = "CORRECTED_DATA"
    """Column fitted and subtracted."""
    chunk_rows: int = 20000
    """Rows read at a time."""
    chan_block: int = 96
    """Channels per block of the model computation (memory)."""


@dataclass
class Outlier:
    """One outlier source."""

    ra_deg: float
    """J2000 right ascension (deg)."""
    dec_deg: float
    """J2000 declination (deg)."""
    flux_jy: float
    """Catalog flux density at 1.4 GHz (Jy)."""
    alpha: float = -0.7
    """Spectral index of the model spectrum."""
    sep_deg: float = float("nan")
    """Distance from the phase centre (deg)."""
    predicted_apparent_jy: float = float("nan")
    """Catalog flux times the beam model's power (band centre, mid-time) (Jy)."""
    fitted_apparent_jy: float = float("nan")
    """Median over integrations and polarizations of the fitted apparent flux at band centre (Jy)."""


@dataclass
class OutlierResult:
    """What :func:`subtract_outliers` did."""

    ms_path: Path
    """The MS (its ``data_column`` now without the outliers)."""
    outliers: list[Outlier] = field(default_factory=list)
    """The sources subtracted (empty: nothing to do)."""
    power_removed: float = 0.0
    """Fraction of the cross-correlation power removed."""
    seconds: float = 0.0
    """Wall time."""

    def to_dict(self) -> dict:
        """JSON-ready summary (stored with the image's QA)."""
        from dataclasses import asdict

        return {"outliers": [asdict(o) for o in self.outliers], "power_removed": self.power_removed,
                "seconds": self.seconds}


def legendre_basis(freqs_hz: np.ndarray, n_terms: int) -> np.ndarray:
    """Legendre polynomials P_0..P_{n-1} over the band (frequencies mapped onto [-1, 1]), shape (n, Nchan)."""
    from numpy.polynomial import legendre

    f = np.asarray(freqs_hz, dtype=float)
    x = np.zeros_like(f) if f.size < 2 or f.max() == f.min() else 2 * (f - f.min()) / (f.max() - f.min()) - 1
    return np.stack([legendre.legval(x, np.eye(n_terms)[j]) for j in range(n_terms)])


def outlier_models(uvw: np.ndarray, lmn: np.ndarray, spectra: np.ndarray, freqs_hz: np.ndarray) -> np.ndarray:
    """Unit-amplitude model visibilities of each outlier, shape (K, Nrow, Nchan), MS sign convention.

    Parameters
    ----------
    uvw
        (Nrow, 3) metres.
    lmn
        (K, 3) direction cosines relative to the phase centre.
    spectra
        (K, Nchan) relative spectrum of each source.
    freqs_hz
        (Nchan,).
    """
    from ..beam import SPEED_OF_LIGHT

    delay = (uvw @ np.stack([lmn[:, 0], lmn[:, 1], lmn[:, 2] - 1.0])) / SPEED_OF_LIGHT  # (Nrow, K)
    ph = np.exp(2j * np.pi * delay.T[:, :, None] * np.asarray(freqs_hz)[None, None, :])
    return (ph * spectra[:, None, :]).astype(np.complex128)


def accumulate_normal(models: np.ndarray, vis: np.ndarray, weight: np.ndarray, basis: np.ndarray):
    """Normal equations of the fit for one set of rows (one integration), per polarization.

    Parameters
    ----------
    models
        (K, Nrow, Nchan) unit models.
    vis
        (Nrow, Nchan, Npol) data.
    weight
        (Nrow, Nchan, Npol) 1 for a sample used, 0 otherwise.
    basis
        (J, Nchan) frequency basis.

    Returns
    -------
    tuple
        ``(N, b)``: (Npol, K*J, K*J) and (Npol, K*J).
    """
    k, j = models.shape[0], basis.shape[0]
    g = np.einsum("knc,lnc,ncp->pklc", np.conj(models), models, weight, optimize=True)  # (P, K, K, C)
    h = np.einsum("knc,ncp->pkc", np.conj(models), np.where(weight > 0, vis, 0.0), optimize=True)  # (P, K, C)
    n = np.einsum("pklc,ic,jc->pkilj", g, basis, basis, optimize=True).reshape(-1, k * j, k * j)
    b = np.einsum("pkc,ic->pki", h, basis, optimize=True).reshape(-1, k * j)
    return n, b


def solve_normal(n: np.ndarray, b: np.ndarray, rcond: float = 1e-9) -> np.ndarray:
    """Least-squares coefficients of each (slot, pol) system; zero where there are no data, shape b.shape."""
    out = np.zeros_like(b)
    for idx in np.ndindex(b.shape[:-1]):
        if np.abs(n[idx]).max() > 0:
            out[idx] = np.linalg.lstsq(n[idx], b[idx], rcond=rcond)[0]
    return out


def find_outliers(ms_path: str | Path, catalog_path: str | Path, field_half_width_deg: float,
                  opts: OutlierOptions | None = None) -> list[Outlier]:
    """Master-catalog sources bright enough, outside the imaged field (a square of ``field_half_width_deg``)."""
    from ..beam import airy_power, angular_separation
    from ..catalog.query import cone_search
    from ..ms import read_ms_info

    opts = opts or OutlierOptions()
    info = read_ms_info(ms_path)
    ra0, dec0 = (math.degrees(v) for v in info.phase_centre_rad)
    cat = cone_search(catalog_path, ra0 % 360, dec0, opts.max_radius_deg, columns=("ra_deg", "dec_deg", "s_nvss"),
                      min_flux_jy=opts.min_apparent_jy)
    if not len(cat):
        return []
    f_mid = float(np.median(info.freqs_hz))
    ra, dec = np.radians(cat["ra_deg"]), np.radians(cat["dec_deg"])
    dra = (ra - math.radians(ra0) + np.pi) % (2 * np.pi) - np.pi
    x, y = np.degrees(np.cos(dec) * np.sin(dra)), np.degrees(dec) - dec0
    outside = (np.abs(x) > field_half_width_deg) | (np.abs(y) > field_half_width_deg)
    theta = angular_separation(ra, dec, math.radians(ra0), math.radians(dec0))
    fl = np.asarray(info.freqs_hz, dtype=float)
    beam = np.max(airy_power(theta[:, None], fl[None, :]) * (fl[None, :] / 1.4e9) ** -0.7, axis=1)
    app = cat["s_nvss"] * beam
    keep = np.flatnonzero(outside & (app >= opts.min_apparent_jy))
    keep = keep[np.argsort(app[keep])[::-1]][:opts.max_sources]
    return [Outlier(float(cat["ra_deg"][i]), float(cat["dec_deg"][i]), float(cat["s_nvss"][i]),
                    sep_deg=float(cat["sep_deg"][i]),
                    predicted_apparent_jy=float(cat["s_nvss"][i] * airy_power(theta[i], f_mid) * (f_mid / 1.4e9) ** -0.7))
            for i in keep]


def subtract_outliers(ms_path: str | Path, outliers: list[Outlier], opts: OutlierOptions | None = None
                      ) -> OutlierResult:
    """Fit and subtract ``outliers`` from the MS's ``data_column`` in place (see the module docstring)."""
    from casacore.tables import table

    from ..calibration.model import lmn as lmn_of
    from ..ms import read_ms_info

    opts = opts or OutlierOptions()
    t0 = time.perf_counter()
    ms = Path(ms_path)
    res = OutlierResult(ms_path=ms, outliers=list(outliers))
    if not outliers:
        return res
    info = read_ms_info(ms)
    ra0, dec0 = info.phase_centre_rad
    freqs = np.asarray(info.freqs_hz, dtype=float)
    lmn = np.array([lmn_of(math.radians(o.ra_deg), math.radians(o.dec_deg), ra0, dec0) for o in outliers])
    spectra = np.array([(freqs / 1.4e9) ** o.alpha for o in outliers])
    basis = legendre_basis(freqs, opts.n_freq_terms)
    blocks = [slice(c, min(c + opts.chan_block, freqs.size)) for c in range(0, freqs.size, opts.chan_block)]
    k, nj = len(outliers), opts.n_freq_terms
    with table(str(ms), readonly=False, ack=False) as t:
        times = np.unique(t.getcol("TIME"))
        first = t.getcell(opts.data_column, 0)
        npol, dtype = first.shape[-1], first.dtype
        n_eq = np.zeros((times.size, npol, k * nj, k * nj), dtype=np.complex128)
        b_eq = np.zeros((times.size, npol, k * nj), dtype=np.complex128)
        for r0, n, slot, uvw, vis, w in _chunks(t, times, opts):
            for s in np.unique(slot):
                m = slot == s
                for cb in blocks:
                    mod = outlier_models(uvw[m], lmn, spectra[:, cb], freqs[cb])
                    ne, be = accumulate_normal(mod, vis[m][:, cb], w[m][:, cb], basis[:, cb])
                    n_eq[s] += ne
                    b_eq[s] += be
        coef = solve_normal(n_eq, b_eq).reshape(times.size, npol, k, nj)  # (slot, pol, K, J)
        p_before = p_after = 0.0
        for r0, n, slot, uvw, vis, w in _chunks(t, times, opts):
            out = vis.copy()
            for s in np.unique(slot):
                m = np.flatnonzero(slot == s)
                for cb in blocks:
                    mod = outlier_models(uvw[m], lmn, spectra[:, cb], freqs[cb])  # (K, n, C)
                    amp = np.einsum("pkj,jc->kcp", coef[s], basis[:, cb])  # (K, C, P)
                    out[m[:, None], np.arange(cb.start, cb.stop)[None, :]] -= np.einsum("knc,kcp->ncp", mod, amp)
            used = w > 0
            p_before += float(np.sum(np.abs(vis[used]) ** 2))
            p_after += float(np.sum(np.abs(out[used]) ** 2))
            t.putcol(opts.data_column, out.astype(dtype), r0, n)
    mid = basis[:, freqs.size // 2]
    for i, o in enumerate(outliers):
        a_mid = np.abs(np.einsum("tpj,j->tp", coef[:, :, i, :], mid)) * spectra[i, freqs.size // 2]
        o.fitted_apparent_jy = float(np.median(a_mid[np.abs(n_eq[:, :, 0, 0]) > 0]))
    res.power_removed = 1.0 - p_after / p_before if p_before > 0 else 0.0
    res.seconds = time.perf_counter() - t0
    log.info("subtracted %d outlier(s) from %s: %s (%.1f%% of the power) in %.1f s", k, ms.name,
             ", ".join(f"{o.flux_jy:.1f} Jy at {o.sep_deg:.1f} deg -> {o.fitted_apparent_jy:.3f} Jy apparent"
                       for o in outliers), 100 * res.power_removed, res.seconds)
    return res


def _chunks(t, times: np.ndarray, opts: OutlierOptions):
    """(start, n, slot, uvw, vis, weight) per chunk of rows; weight 0 on flags, autocorrelations and NaNs."""
    for r0 in range(0, t.nrows(), opts.chunk_rows):
        n = min(opts.chunk_rows, t.nrows() - r0)
        vis = t.getcol(opts.data_column, r0, n).astype(np.complex128)
        w = (~t.getcol("FLAG", r0, n)).astype(float)
        w[t.getcol("ANTENNA1", r0, n) == t.getcol("ANTENNA2", r0, n)] = 0.0
        w[~np.isfinite(vis)] = 0.0
        yield r0, n, np.searchsorted(times, t.getcol("TIME", r0, n)), t.getcol("UVW", r0, n), vis, w
