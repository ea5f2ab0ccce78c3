"""FITS products: complete headers, and primary-beam correction with the package's beam model.

What they need to know about the observation is the MS's :class:`~dsa110_contimg.ms.MSInfo`.
"""

from __future__ import annotations

import math
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


PB_KEYWORDS = ("PBDEC", "PBLON", "PBMJD0", "PBMJD1", "PBNTIME", "PBFMIN", "PBFMAX")
"""FITS keywords of an image's drift-scan primary beam (:func:`pb_keywords`), in the order of
:class:`dsa110_contimg.mosaic.beam.DriftBeam`'s fields."""


def pb_keywords(info: MSInfo) -> dict[str, tuple[float | int, str]]:
    """The header cards (value, comment) from which :func:`drift_scan_pb` of an image can be rebuilt
    without its MS: pointing, fringe-stop meridian, first/last integration, integrations, band edges.

    Raises
    ------
    ValueError
        The MS carries no drift-scan pointing (see :meth:`~dsa110_contimg.ms.MSInfo.pointing`).
    """
    dec, lon = info.pointing()
    t = info.times_mjd
    values = (math.degrees(dec), math.degrees(lon), float(t[0]), float(t[-1]), int(t.size),
              float(info.freqs_hz.min()), float(info.freqs_hz.max()))
    comments = ("[deg] apparent dec of the drift-scan pointing", "[deg] E longitude of the fringe-stop meridian",
                "[d] first integration centre (UTC MJD)", "[d] last integration centre (UTC MJD)",
                "integrations averaged in the primary beam", "[Hz] lowest channel", "[Hz] highest channel")
    return {k: (v, c) for k, v, c in zip(PB_KEYWORDS, values, comments)}


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
        Times, frequencies and pointing of the observation: an :class:`~dsa110_contimg.ms.MSInfo`
        or anything with its ``times_mjd``, ``freqs_hz``, ``pointing_dec_rad`` and
        ``fringestop_lon_rad`` (e.g. :class:`dsa110_contimg.mosaic.beam.DriftBeam`).
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


def grid_interp(coarse: np.ndarray, gy: np.ndarray, gx: np.ndarray, ny: int, nx: int) -> np.ndarray:
    """Bilinear interpolation of values on a coarse tensor grid onto every pixel of an ``(ny, nx)`` grid.

    Separable (one pass along x, one along y), so it costs a few array operations per pixel; the
    same values as ``scipy.interpolate.RegularGridInterpolator`` (linear) on that grid.

    Parameters
    ----------
    coarse
        Values at rows ``gy`` and columns ``gx``, shape ``(len(gy), len(gx))``.
    gy, gx
        Ascending pixel coordinates of the coarse rows and columns (at least two each), spanning
        ``0 .. ny - 1`` and ``0 .. nx - 1``.
    ny, nx
        Shape of the output grid.
    """
    def axis(g, n):
        p = np.arange(n, dtype=float)
        i = np.clip(np.searchsorted(g, p, side="right") - 1, 0, len(g) - 2)
        return i, (p - g[i]) / (g[i + 1] - g[i])

    iy, fy = axis(np.asarray(gy, float), ny)
    ix, fx = axis(np.asarray(gx, float), nx)
    rows = coarse[:, ix] * (1.0 - fx) + coarse[:, ix + 1] * fx
    return rows[iy] * (1.0 - fy)[:, None] + rows[iy + 1] * fy[:, None]


def pb_image(fits_path: str | Path, info: MSInfo, grid: int = 64) -> np.ndarray:
    """Drift-scan primary beam on the pixel grid of an image (evaluated on a coarse grid, interpolated)."""
    from astropy.io import fits
    from astropy.wcs import WCS

    with fits.open(fits_path) as hdul:
        h = hdul[0].header
    wcs = WCS(h).celestial
    ny, nx = h["NAXIS2"], h["NAXIS1"]
    gy, gx = np.linspace(0, ny - 1, max(2, min(grid, ny))), np.linspace(0, nx - 1, max(2, min(grid, nx)))
    xx, yy = np.meshgrid(gx, gy)
    ra, dec = wcs.pixel_to_world_values(xx, yy)
    return grid_interp(drift_scan_pb(np.asarray(ra), np.asarray(dec), info), gy, gx, ny, nx)


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
