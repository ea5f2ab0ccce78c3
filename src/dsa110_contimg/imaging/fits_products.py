"""FITS products: complete headers, and primary-beam correction with the package's beam model.

What they need to know about the observation is the MS's :class:`~dsa110_contimg.ms.MSInfo`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..beam import airy_power, angular_separation
from ..geometry import meridian_j2000
from ..ms import MSInfo


def complete_header(fits_path: str | Path, info: MSInfo, bunit: str = "JY/BEAM",
                    extra: dict | None = None, require_beam: bool = True) -> None:
    """Make sure a FITS image carries TELESCOP, BUNIT, DATE-OBS, MJD-OBS, RADESYS, the beam and a frequency axis.

    The header is complete, so astropy's WCS has nothing to fix (no ``FITSFixedWarning``):
    MJD-OBS is DATE-OBS as an MJD, RADESYS is FK5 for the J2000 (EQUINOX 2000)
    coordinates the imagers write without naming the frame.

    Raises
    ------
    ValueError
        When the image has no beam and no frequency axis can be found.
    """
    from astropy.io import fits
    from astropy.time import Time

    with fits.open(fits_path, mode="update") as hdul:
        h = hdul[0].header
        h["TELESCOP"] = info.telescope
        h["INSTRUME"] = "DSA-110"
        h["BUNIT"] = bunit
        h["DATE-OBS"] = info.date_obs
        h["MJD-OBS"] = (float(Time(info.date_obs, scale="utc").mjd), "[d] DATE-OBS as an MJD (UTC)")
        if "RADESYS" not in h:
            h["EQUINOX"] = (float(h.get("EQUINOX", 2000.0)), "[yr] equinox of the celestial coordinates")
            h["RADESYS"] = ("FK5", "frame of the J2000 coordinates")
        h["ORIGIN"] = "dsa110-contimg"
        if require_beam and not all(k in h for k in ("BMAJ", "BMIN", "BPA")):
            raise ValueError(f"{fits_path}: no restoring beam (BMAJ/BMIN/BPA) in the header")
        if not any(str(h.get(f"CTYPE{i}", "")).startswith("FREQ") for i in range(1, h.get("NAXIS", 0) + 1)):
            raise ValueError(f"{fits_path}: no frequency axis")
        for k, v in (extra or {}).items():
            h[k] = v


def drift_scan_pb(ra_deg: np.ndarray, dec_deg: np.ndarray, info: MSInfo, n_freq: int = 8,
                  n_time: int = 12) -> np.ndarray:
    """Primary-beam power of a drift scan, averaged over the group's times and band.

    The dish points at the meridian (HA = 0) at the pointing declination; the sky
    drifts through the beam.  Uses :func:`dsa110_contimg.beam.airy_power`.

    Parameters
    ----------
    ra_deg, dec_deg
        J2000 directions (any shape).
    info
        Times, frequencies and pointing of the observation.
    n_freq, n_time
        Number of frequencies and times sampled for the average.
    """
    times = info.times_mjd
    t_s = times[np.linspace(0, times.size - 1, min(n_time, times.size)).round().astype(int)]
    f_s = np.linspace(info.freqs_hz.min(), info.freqs_hz.max(), n_freq)
    pointings = meridian_j2000(info.pointing_dec_rad, t_s, info.fringestop_lon_rad)
    ra, dec = np.radians(ra_deg), np.radians(dec_deg)
    pb = np.zeros(np.shape(ra_deg))
    for pra, pdec in pointings:
        theta = angular_separation(ra, dec, pra, pdec)
        for f in f_s:
            pb += airy_power(theta, f)
    return pb / (len(pointings) * len(f_s))


def pb_image(fits_path: str | Path, info: MSInfo, grid: int = 64) -> np.ndarray:
    """Drift-scan primary beam on the pixel grid of an image (evaluated on a coarse grid, interpolated)."""
    from astropy.io import fits
    from astropy.wcs import WCS
    from scipy.interpolate import RegularGridInterpolator

    with fits.open(fits_path) as hdul:
        h = hdul[0].header
    wcs = WCS(h).celestial
    ny, nx = h["NAXIS2"], h["NAXIS1"]
    gy, gx = np.linspace(0, ny - 1, min(grid, ny)), np.linspace(0, nx - 1, min(grid, nx))
    xx, yy = np.meshgrid(gx, gy)
    ra, dec = wcs.pixel_to_world_values(xx, yy)
    coarse = drift_scan_pb(np.asarray(ra), np.asarray(dec), info)
    interp = RegularGridInterpolator((gy, gx), coarse)
    py, px = np.mgrid[0:ny, 0:nx]
    return interp(np.stack([py.ravel(), px.ravel()], axis=-1)).reshape(ny, nx)


def write_pbcor(image_fits: str | Path, out_fits: str | Path, info: MSInfo,
                cutoff: float = 0.1) -> Path:
    """Write the primary-beam-corrected image (blank where the beam is below ``cutoff``)."""
    from astropy.io import fits

    pb = pb_image(image_fits, info)
    with fits.open(image_fits) as hdul:
        data = hdul[0].data.astype(np.float32)
        h = hdul[0].header.copy()
    corr = np.where(pb >= cutoff, data / np.maximum(pb, cutoff), np.nan).astype(np.float32)
    h["PBCOR"] = (True, "divided by the drift-scan Airy beam")
    h["PBCUTOFF"] = cutoff
    fits.PrimaryHDU(corr, h).writeto(out_fits, overwrite=True)
    return Path(out_fits)
