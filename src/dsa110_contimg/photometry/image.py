"""Images for photometry: reading the restored and pb-corrected FITS, the drift-scan beam of an image,
and forced fluxes at sky positions (the I/O around :mod:`.kernels`)."""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .kernels import FWHM_TO_SIGMA, forced_fit, local_fit_rms
from .models import ImageRun, PhotometryOptions


@dataclass(frozen=True)
class PhotImage:
    """A restored image and its primary-beam-corrected twin on the same grid."""

    raw: np.ndarray
    """Restored (apparent) image, Jy/beam, ``(ny, nx)`` (memory-mapped: see :func:`open_image`)."""
    pbcor: np.ndarray
    """Primary-beam-corrected image (NaN below the imager's cutoff; memory-mapped)."""
    wcs: object
    """Celestial :class:`astropy.wcs.WCS`."""
    bmaj_arcsec: float
    """Restoring beam FWHM major axis (arcsec)."""
    bmin_arcsec: float
    """Restoring beam FWHM minor axis (arcsec)."""
    bpa_deg: float
    """Restoring beam position angle (deg east of north)."""
    pix_deg: float
    """Pixel size (deg, geometric mean of the axes)."""
    beam_px: tuple[float, float, float]
    """Beam ``(sigma_major, sigma_minor, theta)`` in pixels and radians from +x."""

    @property
    def fwhm_px(self) -> float:
        """Beam major-axis FWHM in pixels."""
        return self.bmaj_arcsec / 3600.0 / self.pix_deg


def open_image(fits_path: str | Path, with_wcs: bool = True):
    """``(pixels, celestial_wcs, header)`` of a FITS image, the pixels memory-mapped, not read (``with_wcs``
    False: no WCS is made, None in its place).

    The first plane of the first image HDU, as :func:`dsa110_contimg.qa.image_qa.read_image`
    reads it, but left in the file (its own type, e.g. big-endian float32): the photometry
    reads only the boxes around its positions, a cutout only its square.

    Raises
    ------
    ValueError
        No image HDU or no celestial WCS.
    """
    from astropy.io import fits
    from astropy.wcs import WCS

    with fits.open(fits_path, memmap=True) as hdul:  # the map outlives the file object while the array is used
        images = [h for h in hdul if h.is_image and h.header.get("NAXIS", 0) >= 2]
        if not images:
            raise ValueError(f"{fits_path}: no image HDU")
        pixels, header = images[0].data, images[0].header.copy()
    while pixels.ndim > 2:
        pixels = pixels[0]
    if not with_wcs:
        return pixels, None, header
    wcs = WCS(header, naxis=None).celestial
    if wcs.naxis != 2:
        raise ValueError(f"{fits_path}: no celestial WCS")
    return pixels, wcs, header


OPEN_IMAGES = 64
"""Images :func:`load_image` keeps open (memory-mapped: address space, not memory) for the next photometry of the
same process: the earlier images new sources are backfilled in recur from one image to the next."""


def load_image(image_fits: str | Path, pbcor_fits: str | Path) -> PhotImage:
    """Open a restored image and its pb-corrected twin (same grid, BMAJ/BMIN/BPA in the header), memory-mapped
    (:func:`open_image`); the last :data:`OPEN_IMAGES` stay open while their files are unchanged (same size and
    modification time).

    Raises
    ------
    OSError
        A file cannot be read.
    ValueError
        Unreadable image, no beam, or grids that differ.
    """
    stamp = tuple((st.st_size, st.st_mtime_ns) for st in (os.stat(image_fits), os.stat(pbcor_fits)))
    return _load(str(image_fits), str(pbcor_fits), stamp)


@functools.lru_cache(maxsize=OPEN_IMAGES)
def _load(image_fits: str, pbcor_fits: str, stamp: tuple) -> PhotImage:
    from astropy.wcs.utils import proj_plane_pixel_scales

    from ..qa.image_qa import header_beam

    raw, wcs, header = open_image(image_fits)
    pbcor, _, pb_header = open_image(pbcor_fits, with_wcs=False)  # the same grid (its shape is checked)
    if pbcor.shape != raw.shape:
        raise ValueError(f"{pbcor_fits}: shape {pbcor.shape} differs from the image {raw.shape}")
    bmaj, bmin, bpa = header_beam(header if "BMAJ" in header else pb_header)
    scales = proj_plane_pixel_scales(wcs)
    pix = float(math.sqrt(scales[0] * scales[1]))
    m = wcs.pixel_scale_matrix
    ex, ny_sign = (1.0 if m[0, 0] > 0 else -1.0), (1.0 if m[1, 1] >= 0 else -1.0)
    pa = math.radians(bpa)
    theta = math.atan2(ny_sign * math.cos(pa), ex * math.sin(pa))
    beam_px = (bmaj / 3600.0 * FWHM_TO_SIGMA / pix, bmin / 3600.0 * FWHM_TO_SIGMA / pix, theta)
    return PhotImage(raw, pbcor, wcs, bmaj, bmin, bpa, pix, beam_px)


def footprint(img: PhotImage) -> tuple[float, float, float]:
    """Centre ``(ra, dec)`` and radius (deg) of a cone covering the image."""
    from ..beam import separation_deg

    ny, nx = img.raw.shape
    xs = np.array([(nx - 1) / 2, 0, nx - 1, 0, nx - 1])
    ys = np.array([(ny - 1) / 2, 0, 0, ny - 1, ny - 1])
    ra, dec = img.wcs.pixel_to_world_values(xs, ys)
    return float(ra[0]) % 360.0, float(dec[0]), float(np.nanmax(separation_deg(ra[0], dec[0], ra[1:], dec[1:])))


class _BeamInfo:
    """The part of :class:`~dsa110_contimg.ms.MSInfo` the drift-scan beam needs, from an :class:`ImageRun`."""

    def __init__(self, run: ImageRun):
        self.times_mjd = np.linspace(run.first_time_mjd, run.last_time_mjd, max(1, run.n_times))
        self.freqs_hz = np.array([run.freq_min_hz, run.freq_max_hz])
        self.pointing_dec_rad = math.radians(run.pointing_dec_deg)
        self.fringestop_lon_rad = math.radians(run.fringestop_lon_deg)


def pb_at(run: ImageRun, ra_deg, dec_deg) -> np.ndarray:
    """Primary-beam attenuation of the image ``run`` towards ``(ra, dec)``: the package's drift-scan beam
    (:func:`dsa110_contimg.imaging.fits_products.drift_scan_pb`), as used for the pb-corrected image."""
    from ..imaging.fits_products import drift_scan_pb

    ra, dec = np.atleast_1d(np.asarray(ra_deg, float)), np.atleast_1d(np.asarray(dec_deg, float))
    if ra.size == 0:
        return np.empty(0)
    return drift_scan_pb(ra, dec, _BeamInfo(run))


@dataclass(frozen=True)
class Forced:
    """Forced fluxes at sky positions (arrays); ``ok`` False where nothing could be measured."""

    flux_jy: np.ndarray
    """Beam amplitude on the pb-corrected image (Jy)."""
    err_jy: np.ndarray
    """Its 1-sigma error (Jy)."""
    local_rms_jy: np.ndarray
    """Local noise of a single-source beam fit there (Jy), pb-corrected."""
    pb: np.ndarray
    """Primary-beam attenuation."""
    ok: np.ndarray
    """Inside the image, the beam above ``pb_min``, and fitted."""


@functools.lru_cache(maxsize=64)
def _isolated_factor(beam_px: tuple[float, float, float], half: int) -> float:
    """Error factor of the fit of an isolated source (the same for every position of an image)."""
    return float(forced_fit(np.zeros((4 * half + 1, 4 * half + 1)), [2.0 * half], [2.0 * half], beam_px, half,
                            1.0).err_factor[0])


def measure(img: PhotImage, run: ImageRun, ra_deg, dec_deg, opts: PhotometryOptions,
            rms_floor: float) -> Forced:
    """Forced photometry at ``(ra, dec)`` on the pb-corrected image.

    The flux is the least-squares amplitude of the restoring beam at the fixed position
    (:func:`~.kernels.forced_fit`, blends fitted together).  Its error is the local noise
    of such a fit, the robust rms of the fitted amplitude over a box of
    ``opts.rms_box_beams`` beams of the apparent image around the position
    (:func:`~.kernels.local_fit_rms`, the QA's local-rms box), divided by the beam, and
    scaled up for a blend by its fit's error over an isolated source's.  Where that box
    has too few usable pixels, the fit error for beam-correlated noise of ``rms_floor``
    (the image's global rms) is used.
    """
    ra, dec = np.atleast_1d(np.asarray(ra_deg, float)), np.atleast_1d(np.asarray(dec_deg, float))
    n = ra.size
    nan = np.full(n, np.nan)
    if n == 0:
        return Forced(nan, nan, nan, nan, np.zeros(0, dtype=bool))
    ny, nx = img.raw.shape
    x, y = img.wcs.world_to_pixel_values(ra, dec)
    x, y = np.asarray(x, float), np.asarray(y, float)
    pb = pb_at(run, ra, dec)
    inside = np.isfinite(x) & np.isfinite(y) & (x >= 0) & (x <= nx - 1) & (y >= 0) & (y <= ny - 1)
    ix, iy = np.clip(np.round(np.nan_to_num(x)), 0, nx - 1).astype(int), \
        np.clip(np.round(np.nan_to_num(y)), 0, ny - 1).astype(int)
    ok = inside & (pb >= opts.pb_min) & np.isfinite(img.pbcor[iy, ix])
    flux, err, rms = nan.copy(), nan.copy(), nan.copy()
    idx = np.flatnonzero(ok)
    if idx.size:
        fwhm = img.fwhm_px
        half = max(2, int(math.ceil(opts.fit_half_fwhm * fwhm)))
        fit = forced_fit(img.pbcor, x[idx], y[idx], img.beam_px, half, opts.cluster_fwhm * fwhm)
        iso = _isolated_factor(img.beam_px, half)
        noise = local_fit_rms(img.raw, x[idx], y[idx], img.beam_px, half, int(round(opts.rms_box_beams * fwhm)),
                              half + fwhm)
        noise = np.where(np.isfinite(noise), noise, iso * rms_floor)
        flux[idx] = fit.amp
        rms[idx] = noise / pb[idx]
        err[idx] = rms[idx] * fit.err_factor / iso
        ok[idx] = fit.n_pix > 0
    return Forced(flux, err, rms, pb, ok & np.isfinite(flux) & np.isfinite(err))
