"""The realistic sky of the simulator: drawn from the 1.4 GHz source counts, or read from a catalog.

Counts: the Euclidean-normalised differential counts of Hopkins et al. (2003, AJ 125, 465, eq. 1),
the sixth-order polynomial fit to the 1.4 GHz counts from 0.05 mJy to ~1 Jy::

    log10(S**2.5 dN/dS / (Jy**1.5 sr**-1)) = sum_i a_i log10(S / mJy)**i,
    a = (0.859, 0.508, 0.376, -0.049, -0.121, 0.057, -0.008)

(about 3e5 sources per sr above 1 mJy).  Fluxes are drawn between ``min_flux_jy`` (default 1 mJy) and
1 Jy (the fit's range; brighter sources come from ``--bright-sidelobe`` or a calibrator), positions
uniform on the sphere.  Spectral indices: Gaussian, mean -0.7, sigma 0.35, clipped to [-2, 1] (the
steep-spectrum majority and a flat tail, cf. de Zotti et al. 2010, A&ARv 18, 1).  A fraction
``resolved_fraction`` (default 1%) of the sources above 20 mJy are elliptical Gaussians: major-axis
FWHM log-uniform in 30-180 arcsec, axis ratio uniform in 0.3-1, position angle uniform.  Bright
sidelobe sources: ``n_bright`` of 20-50 Jy (alpha -0.8) at the first-sidelobe peak of the 4.65 m dish
(x = 5.136, 4.3 deg at 1.4 GHz) from the first group's centre, at a random position angle.

The sky is drawn once per run over the strip every group of the run sees (:func:`strip_box`); each
group takes the sources within the sky radius of its centre (:func:`select_sources`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..beam import SPEED_OF_LIGHT, separation_deg
from ..telescope import DISH_DIAMETER_M
from .sky import SkySource, offset_position

HOPKINS03 = (0.859, 0.508, 0.376, -0.049, -0.121, 0.057, -0.008)
"""Hopkins et al. (2003) polynomial coefficients a_0..a_6 (S in mJy, counts in Jy**1.5 sr**-1)."""
MAX_FLUX_JY = 1.0
"""Upper end of the drawn fluxes: the range of the Hopkins et al. fit."""
SPECTRAL_INDEX = (-0.7, 0.35)
"""Mean and sigma of the spectral-index distribution."""
FIRST_SIDELOBE_X = 5.1356
"""``x = pi D sin(theta) / lambda`` of the first sidelobe peak of ``(2 J1(x)/x)**2``."""


def euclidean_counts(s_jy) -> np.ndarray:
    """``S**2.5 dN/dS`` (Jy**1.5 sr**-1) of Hopkins et al. (2003) at flux densities ``s_jy`` (Jy)."""
    x = np.log10(np.asarray(s_jy, dtype=float) * 1e3)
    return 10.0 ** np.polynomial.polynomial.polyval(x, HOPKINS03)


def differential_counts(s_jy) -> np.ndarray:
    """``dN/dS`` (Jy**-1 sr**-1)."""
    s = np.asarray(s_jy, dtype=float)
    return euclidean_counts(s) / s ** 2.5


def _cumulative(s_min: float, s_max: float, n: int = 4000) -> tuple[np.ndarray, np.ndarray]:
    """Log-flux grid and the number per sr above ``s_min`` up to each grid point."""
    lns = np.linspace(np.log(s_min), np.log(s_max), n)
    dn_dlns = differential_counts(np.exp(lns)) * np.exp(lns)
    cum = np.concatenate([[0.0], np.cumsum(0.5 * (dn_dlns[1:] + dn_dlns[:-1]) * np.diff(lns))])
    return lns, cum


def expected_number(area_sr: float, s_min: float, s_max: float = MAX_FLUX_JY) -> float:
    """Expected number of sources in ``area_sr`` between ``s_min`` and ``s_max`` (Jy)."""
    return float(area_sr * _cumulative(s_min, s_max)[1][-1])


def draw_fluxes(n: int, s_min: float, s_max: float, rng: np.random.Generator) -> np.ndarray:
    """``n`` flux densities (Jy) drawn from :func:`differential_counts` between ``s_min`` and ``s_max``."""
    lns, cum = _cumulative(s_min, s_max)
    return np.exp(np.interp(rng.uniform(0, cum[-1], n), cum, lns))


@dataclass(frozen=True)
class SkyBox:
    """An RA-Dec box on the sphere: RA from ``ra_lo_deg`` over ``ra_span_deg``, Dec between the limits."""

    ra_lo_deg: float
    """Start of the RA range (deg)."""
    ra_span_deg: float
    """Width of the RA range (deg, at most 360)."""
    dec_lo_deg: float
    """Lower declination (deg)."""
    dec_hi_deg: float
    """Upper declination (deg)."""

    @property
    def area_sr(self) -> float:
        """Solid angle (sr)."""
        return np.radians(self.ra_span_deg) * (np.sin(np.radians(self.dec_hi_deg)) - np.sin(np.radians(self.dec_lo_deg)))

    def contains(self, ra_deg, dec_deg) -> np.ndarray:
        """True for directions inside the box."""
        dra = (np.asarray(ra_deg) - self.ra_lo_deg) % 360.0
        return (dra <= self.ra_span_deg) & (np.asarray(dec_deg) >= self.dec_lo_deg) & (
            np.asarray(dec_deg) <= self.dec_hi_deg)


def strip_box(ra_centres_deg, dec_deg: float, radius_deg: float) -> SkyBox:
    """The box covering circles of ``radius_deg`` around every group centre (at one declination)."""
    ra = np.degrees(np.unwrap(np.radians(np.asarray(ra_centres_deg, dtype=float))))
    dec_lo, dec_hi = max(dec_deg - radius_deg, -90.0), min(dec_deg + radius_deg, 90.0)
    cos_min = np.cos(np.radians(max(abs(dec_lo), abs(dec_hi))))
    half = 360.0 if cos_min < 1e-3 else min(180.0, np.degrees(np.arcsin(min(1.0, np.sin(np.radians(radius_deg))
                                                                             / cos_min))) + 0.5)
    span = min(360.0, ra.max() - ra.min() + 2 * half)
    return SkyBox(float((ra.min() - half) % 360.0) if span < 360 else 0.0, float(span), dec_lo, dec_hi)


def _uniform_positions(box: SkyBox, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    ra = (box.ra_lo_deg + box.ra_span_deg * rng.uniform(size=n)) % 360.0
    sin_dec = rng.uniform(np.sin(np.radians(box.dec_lo_deg)), np.sin(np.radians(box.dec_hi_deg)), n)
    return ra, np.degrees(np.arcsin(sin_dec))


def _spectral_indices(n: int, rng: np.random.Generator) -> np.ndarray:
    return np.clip(rng.normal(SPECTRAL_INDEX[0], SPECTRAL_INDEX[1], n), -2.0, 1.0)


def realistic_sky(box: SkyBox, rng: np.random.Generator, min_flux_jy: float = 1e-3, resolved_fraction: float = 0.01,
                  n_bright: int = 0, bright_centre_deg: tuple[float, float] | None = None) -> list[SkySource]:
    """Draw the realistic sky over ``box`` (model and parameters in the module docstring).

    Parameters
    ----------
    box
        Region to fill.
    rng
        Random generator (the run's seed).
    min_flux_jy
        Faintest flux density at 1.4 GHz (Jy).
    resolved_fraction
        Fraction of the sources above 20 mJy that are Gaussians.
    n_bright
        Bright (20-50 Jy) sources placed in the first sidelobe of ``bright_centre_deg``.
    bright_centre_deg
        (RA, Dec) of the field whose sidelobe gets the bright sources.

    Returns
    -------
    list of SkySource
        Sorted by decreasing flux.
    """
    n = int(rng.poisson(expected_number(box.area_sr, min_flux_jy)))
    flux = np.sort(draw_fluxes(n, min_flux_jy, MAX_FLUX_JY, rng))[::-1]
    ra, dec = _uniform_positions(box, n, rng)
    alpha = _spectral_indices(n, rng)
    res = (flux >= 0.02) & (rng.uniform(size=n) < resolved_fraction)
    maj = np.where(res, np.exp(rng.uniform(np.log(30.0), np.log(180.0), n)), 0.0)
    mnr = maj * rng.uniform(0.3, 1.0, n)
    pa = rng.uniform(0.0, 180.0, n)
    out = [SkySource(float(ra[i]), float(dec[i]), float(flux[i]), float(alpha[i]), f"sky{i:06d}",
                     major_arcsec=float(maj[i]), minor_arcsec=float(mnr[i]), pa_deg=float(pa[i]) if res[i] else 0.0)
           for i in range(n)]
    if n_bright and bright_centre_deg is not None:
        r = np.arcsin(FIRST_SIDELOBE_X * SPEED_OF_LIGHT / (np.pi * DISH_DIAMETER_M * 1.4e9))
        for j in range(n_bright):
            b_ra, b_dec = offset_position(bright_centre_deg[0], bright_centre_deg[1], r, rng.uniform(0, 2 * np.pi))
            out.insert(j, SkySource(b_ra, b_dec, float(rng.uniform(20.0, 50.0)), float(rng.normal(-0.8, 0.1)),
                                    f"bright_sidelobe{j}"))
    return out


def catalog_sky(path: str | Path, box: SkyBox, rng: np.random.Generator, min_flux_jy: float = 1e-3,
                min_size_arcsec: float = 45.0) -> list[SkySource]:
    """Sources of a real catalog in NVSS layout (as :func:`dsa110_contimg.catalog.readers.read_survey` reads it).

    Positions and 1.4 GHz fluxes (``S1.4``, mJy) from the file; spectral indices drawn as for the
    realistic sky (NVSS has none); sources whose deconvolved major axis (``MajAxis``) is at least
    ``min_size_arcsec`` become Gaussians with the catalog's ``MajAxis``, ``MinAxis`` and ``PA``.
    """
    from ..catalog.readers import NVSS, read_survey

    table = read_survey(Path(path), NVSS, flux_unit="mjy")
    c = table.columns
    ra, dec, flux = c["ra"], c["dec"], c["flux"]
    keep = np.isfinite(ra) & np.isfinite(dec) & np.isfinite(flux) & (flux >= min_flux_jy) & box.contains(ra, dec)
    idx = np.flatnonzero(keep)
    idx = idx[np.argsort(-flux[idx])]
    alpha = _spectral_indices(idx.size, rng)
    nan = np.full(len(ra), np.nan)
    maj, mnr, pa = (np.nan_to_num(c.get(k, nan)) for k in ("maj", "min", "pa"))
    out = []
    for j, i in enumerate(idx):
        res = maj[i] >= min_size_arcsec
        out.append(SkySource(float(ra[i]), float(dec[i]), float(flux[i]), float(alpha[j]), f"cat{i:07d}",
                             major_arcsec=float(maj[i]) if res else 0.0,
                             minor_arcsec=float(max(mnr[i], 1.0)) if res else 0.0,
                             pa_deg=float(pa[i]) if res else 0.0))
    return out


def select_sources(sky: list[SkySource], ra_deg: float, dec_deg: float, radius_deg: float) -> list[SkySource]:
    """The sources of ``sky`` within ``radius_deg`` of (ra, dec)."""
    if not sky:
        return []
    ra = np.array([s.ra_deg for s in sky])
    dec = np.array([s.dec_deg for s in sky])
    near = separation_deg(ra, dec, ra_deg, dec_deg) <= radius_deg
    return [s for s, k in zip(sky, near) if k]
