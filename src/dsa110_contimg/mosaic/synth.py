"""Synthetic drift-scan snapshot images, as the imager writes them, for the mosaic's tests and benchmark.

Each group's image is a SIN grid centred on the meridian at the pointing
declination at the group's mid-time (J2000, as the converter phases the data),
so consecutive images step east by ``GROUP_SECONDS`` x 15.04"/s.  The sky is a
list of point sources; the image is ``sum S * pb(source) * G`` (the drift-scan
beam of the group, :class:`~.beam.DriftBeam`, times the restoring beam ``G``)
plus Gaussian noise correlated like the restoring beam, normalised to a given
rms.  The header carries what the imager's does: WCS with FREQ and STOKES
axes, BMAJ/BMIN/BPA, BUNIT, DATE-OBS, and the ``PB*`` beam keywords.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..geometry import SIDEREAL_DEG_PER_DAY, meridian_j2000
from ..imaging.fits_products import PB_KEYWORDS
from ..telescope import FRINGESTOP_LON_DEG, GROUP_SECONDS, INTEGRATION_S
from ..timeconv import SECONDS_PER_DAY
from .beam import DriftBeam
from .kernels import FWHM_TO_SIGMA


@dataclass(frozen=True)
class SnapshotSpec:
    """Geometry and noise of the synthetic snapshots."""

    n_px: int
    """Image side (pixels)."""
    cell_arcsec: float
    """Pixel (arcsec)."""
    beam_arcsec: float
    """Restoring beam FWHM (arcsec, circular)."""
    rms_jy: float
    """Noise rms (Jy/beam)."""
    dec_deg: float = 55.6
    """Apparent pointing declination (deg)."""
    freq_min_hz: float = 1.3113873e9
    """Lowest channel (Hz): the DSA-110 band."""
    freq_max_hz: float = 1.4986432e9
    """Highest channel (Hz)."""
    n_times: int = 24
    """Integrations per group."""
    lon_deg: float = FRINGESTOP_LON_DEG
    """Fringe-stop meridian (deg)."""

    @property
    def freq_hz(self) -> float:
        """Image frequency (centre of the band)."""
        return 0.5 * (self.freq_min_hz + self.freq_max_hz)


def group_beam(spec: SnapshotSpec, start_mjd: float) -> DriftBeam:
    """The drift-scan beam of a group whose first integration is centred at ``start_mjd``."""
    last = start_mjd + (spec.n_times - 1) * INTEGRATION_S / SECONDS_PER_DAY
    return DriftBeam(start_mjd, last, spec.n_times, spec.freq_min_hz, spec.freq_max_hz, spec.dec_deg, spec.lon_deg)


def group_starts(t0_mjd: float, n_groups: int) -> np.ndarray:
    """First-integration MJDs of consecutive groups."""
    return t0_mjd + np.arange(n_groups) * GROUP_SECONDS / SECONDS_PER_DAY


def start_for_ra(spec: SnapshotSpec, ra_deg: float, near_mjd: float = 61000.0) -> float:
    """A first-integration MJD (after ``near_mjd``) at which the group's centre is at RA ``ra_deg``."""
    for _ in range(3):
        ra = meridian_centre(spec, group_beam(spec, near_mjd))[0]
        near_mjd += ((ra_deg - ra + 180.0) % 360.0 - 180.0) / SIDEREAL_DEG_PER_DAY
    return near_mjd


def meridian_centre(spec: SnapshotSpec, beam: DriftBeam) -> tuple[float, float]:
    """J2000 (RA, Dec) of the meridian at the pointing at the group's mid-time (deg)."""
    ra, dec = meridian_j2000(math.radians(spec.dec_deg), beam.mid_mjd, math.radians(spec.lon_deg))[0]
    return math.degrees(ra), math.degrees(dec)


def snapshot_header(spec: SnapshotSpec, beam: DriftBeam):
    """The FITS header of a group's image (see the module docstring)."""
    from astropy.io import fits
    from astropy.time import Time

    ra, dec = meridian_centre(spec, beam)
    n = spec.n_px
    h = fits.Header()
    for i, (ctype, crval, cdelt, crpix, cunit) in enumerate(
            (("RA---SIN", ra, -spec.cell_arcsec / 3600.0, n / 2 + 1, "deg"),
             ("DEC--SIN", dec, spec.cell_arcsec / 3600.0, n / 2 + 1, "deg"),
             ("FREQ", spec.freq_hz, spec.freq_max_hz - spec.freq_min_hz, 1.0, "Hz"),
             ("STOKES", 1.0, 1.0, 1.0, "")), start=1):
        h[f"CTYPE{i}"], h[f"CRVAL{i}"], h[f"CDELT{i}"], h[f"CRPIX{i}"] = ctype, crval, cdelt, crpix
        if cunit:
            h[f"CUNIT{i}"] = cunit
    h["RADESYS"], h["EQUINOX"] = "FK5", 2000.0
    h["BMAJ"] = h["BMIN"] = spec.beam_arcsec / 3600.0
    h["BPA"] = 0.0
    h["BUNIT"], h["TELESCOP"] = "JY/BEAM", "OVRO_DSA"
    start = beam.first_mjd - INTEGRATION_S / 2 / SECONDS_PER_DAY
    h["DATE-OBS"] = Time(start, format="mjd", scale="utc").isot
    h["MJD-OBS"] = start
    values = (beam.pointing_dec_deg, beam.fringestop_lon_deg, beam.first_mjd, beam.last_mjd, beam.n_times,
              beam.freq_min_hz, beam.freq_max_hz)
    for k, v in zip(PB_KEYWORDS, values):
        h[k] = v
    return h


def render(spec: SnapshotSpec, header, beam: DriftBeam, ra_deg, dec_deg, flux_jy, rng) -> np.ndarray:
    """A group's image (float32, Jy/beam): the apparent point sources plus correlated noise."""
    from astropy.wcs import WCS
    from scipy.ndimage import gaussian_filter

    n = spec.n_px
    sig_px = spec.beam_arcsec * FWHM_TO_SIGMA / spec.cell_arcsec
    img = rng.standard_normal((n, n), dtype=np.float32)
    img = gaussian_filter(img, sig_px / math.sqrt(2.0), mode="wrap")  # autocorrelation = the restoring beam
    img *= np.float32(spec.rms_jy / float(np.std(img)))
    ra, dec, flux = (np.atleast_1d(np.asarray(a, dtype=float)) for a in (ra_deg, dec_deg, flux_jy))
    wcs = WCS(header).celestial
    x, y = (np.asarray(a) for a in wcs.world_to_pixel_values(ra, dec))
    inside = np.isfinite(x) & np.isfinite(y) & (x > -10) & (x < n + 10) & (y > -10) & (y < n + 10)
    apparent = np.zeros(ra.size)
    apparent[inside] = flux[inside] * beam.power(ra[inside], dec[inside])
    half = int(math.ceil(6 * sig_px))
    for xi, yi, s in zip(x[inside], y[inside], apparent[inside]):
        x0, x1 = max(0, int(xi) - half), min(n, int(xi) + half + 2)
        y0, y1 = max(0, int(yi) - half), min(n, int(yi) + half + 2)
        if x0 >= x1 or y0 >= y1:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1]
        img[y0:y1, x0:x1] += (s * np.exp(-0.5 * ((xx - xi) ** 2 + (yy - yi) ** 2) / sig_px ** 2)).astype(np.float32)
    return img


def write_snapshots(out_dir: Path, spec: SnapshotSpec, starts, ra_deg, dec_deg, flux_jy, seed: int = 0,
                    rms_scale=None) -> list[Path]:
    """Write one image per group start (``<out_dir>/g<NN>-MFS-image.fits``); ``rms_scale`` (per group)
    multiplies the noise of each.  Returns the paths."""
    from astropy.io import fits

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for k, t in enumerate(starts):
        beam = group_beam(spec, float(t))
        h = snapshot_header(spec, beam)
        scale = 1.0 if rms_scale is None else float(rms_scale[k])
        sp = spec if scale == 1.0 else SnapshotSpec(**{**spec.__dict__, "rms_jy": spec.rms_jy * scale})
        img = render(sp, h, beam, ra_deg, dec_deg, flux_jy, rng)
        p = out_dir / f"g{k:02d}-MFS-image.fits"
        fits.PrimaryHDU(img.reshape(1, 1, spec.n_px, spec.n_px), h).writeto(p, overwrite=True)
        paths.append(p)
    return paths
