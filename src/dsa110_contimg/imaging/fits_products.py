"""FITS products: complete headers, and primary-beam correction with the package's beam model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..beam import airy_power, angular_separation


@dataclass
class ObservationInfo:
    """What the FITS headers and the primary beam need to know about the observation."""

    date_obs: str
    """Start of the data, ISO UTC."""
    times_mjd: np.ndarray
    """Integration times (UTC MJD)."""
    freqs_hz: np.ndarray
    """Channel frequencies."""
    pointing_dec_rad: float
    """Apparent declination of the drift-scan pointing."""
    fringestop_lon_rad: float
    """Meridian longitude of the pointing."""
    telescope: str
    """Telescope name."""


def read_observation_info(ms_path: str | Path) -> ObservationInfo:
    """Read times, frequencies, pointing and telescope name from a converted MS."""
    from casacore.tables import table

    from ..conversion.direct_writer import read_pointing

    with table(str(ms_path), ack=False) as t:
        times = np.unique(t.getcol("TIME")) / 86400.0
        interval = float(t.getcell("INTERVAL", 0))
    with table(f"{ms_path}/SPECTRAL_WINDOW", ack=False) as t:
        freqs = t.getcell("CHAN_FREQ", 0)
    with table(f"{ms_path}/OBSERVATION", ack=False) as t:
        tel = t.getcell("TELESCOPE_NAME", 0)
    dec, lon = read_pointing(ms_path)
    from astropy.time import Time

    start = Time(times[0] - interval / 2 / 86400.0, format="mjd", scale="utc").isot
    return ObservationInfo(start, times, freqs, dec, lon, tel)


def complete_header(fits_path: str | Path, info: ObservationInfo, bunit: str = "JY/BEAM",
                    extra: dict | None = None, require_beam: bool = True) -> None:
    """Make sure a FITS image carries TELESCOP, BUNIT, DATE-OBS, the beam and a frequency axis.

    Raises
    ------
    ValueError
        When the image has no beam and no frequency axis can be found.
    """
    from astropy.io import fits

    with fits.open(fits_path, mode="update") as hdul:
        h = hdul[0].header
        h["TELESCOP"] = info.telescope
        h["INSTRUME"] = "DSA-110"
        h["BUNIT"] = bunit
        h["DATE-OBS"] = info.date_obs
        h["ORIGIN"] = "dsa110-contimg"
        if require_beam and not all(k in h for k in ("BMAJ", "BMIN", "BPA")):
            raise ValueError(f"{fits_path}: no restoring beam (BMAJ/BMIN/BPA) in the header")
        if not any(str(h.get(f"CTYPE{i}", "")).startswith("FREQ") for i in range(1, h.get("NAXIS", 0) + 1)):
            raise ValueError(f"{fits_path}: no frequency axis")
        for k, v in (extra or {}).items():
            h[k] = v


def drift_scan_pb(ra_deg: np.ndarray, dec_deg: np.ndarray, info: ObservationInfo, n_freq: int = 8,
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
    from ..geometry import meridian_j2000

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


def pb_image(fits_path: str | Path, info: ObservationInfo, grid: int = 64) -> np.ndarray:
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


def write_pbcor(image_fits: str | Path, out_fits: str | Path, info: ObservationInfo,
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
