"""Numerical kernels of image QA: robust noise, beam area, source finding (the crossmatch is in :mod:`.catalog_match`).

Source finding uses photutils (pure-Python wheels, no compiler or boost, enough for
the mostly unresolved sources of DSA-110 continuum images) rather than PyBDSF:

1. islands: :func:`photutils.segmentation.detect_sources` above ``snr_min * rms``;
2. components: local maxima inside the islands (:func:`photutils.detection.find_peaks`,
   box about one beam minor axis FWHM);
3. each component: a 2-D elliptical Gaussian fitted with
   :func:`scipy.optimize.least_squares` in a box of about three beam FWHM (pixels
   closer to another component are left out), giving sub-pixel position, peak,
   shape and integrated flux ``peak * (fitted area / beam area)``; when a fit fails
   (or rails at a bound) the peak pixel and the beam shape are kept (``fit_ok`` False).

Errors are the covariance of the least-squares fit for noise *correlated over the
restoring beam* (its autocorrelation taken to be the beam, as in a CLEAN image):
``Cov = (J^T J)^-1 J^T R J (J^T J)^-1`` with ``J`` the Jacobian of the residuals in
units of the rms and ``R`` the pixel-to-pixel noise correlation (beam-shaped).  The
plain ``rms**2 (J^T J)^-1`` would assume independent pixels and underestimate the
errors by ~sqrt(beam area); the Condon (1997, PASP 109, 166) formulas (eq. 21 with
eq. 41, ``theta_N = beam``), kept in :func:`condon_errors` and used when a fit
fails, underestimate the position errors by 20-35% for beam-correlated noise
(measured on simulations).  All errors are thermal only (no calibration term).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))
"""Gaussian sigma per FWHM."""
MAD_TO_SIGMA = 1.4826
"""Gaussian sigma per median absolute deviation."""


def robust_rms(data, mask=None, n_iter: int = 5, clip: float = 3.0) -> float:
    """Noise of an image: 1.4826 x median absolute deviation about the median.

    Parameters
    ----------
    data : array_like
        Pixel values; non-finite pixels are ignored.
    mask : array_like of bool, optional
        Pixels to exclude (True = excluded), e.g. those near bright sources.
    n_iter
        Maximum number of ``clip``-sigma clipping iterations about the median.
    clip
        Clipping threshold in units of the current estimate.

    Returns
    -------
    float
        The rms estimate, NaN when no pixel is usable.
    """
    a = np.asarray(data, dtype=float)
    ok = np.isfinite(a)
    if mask is not None:
        ok &= ~np.asarray(mask, dtype=bool)
    v = a[ok]
    if v.size == 0:
        return float("nan")
    rms = float("nan")
    for _ in range(max(1, n_iter)):
        med = np.median(v)
        rms = MAD_TO_SIGMA * float(np.median(np.abs(v - med)))
        if not rms > 0:
            return rms
        keep = np.abs(v - med) <= clip * rms
        if keep.all():
            break
        v = v[keep]
    return rms


def local_rms_map(data, beam_px: float, rms: float, box_beams: float = 8.0):
    """Noise map for the detection threshold: the sigma-clipped rms in boxes of ``box_beams`` beams,
    never below the global ``rms``.

    Near a bright source the residual sidelobes raise the local rms, so they are not taken
    for sources (the adaptive threshold of PyBDSF-like finders); elsewhere the map is the
    global rms and nothing changes.

    Parameters
    ----------
    data : numpy.ndarray
        2-D image (Jy/beam); non-finite pixels are masked.
    beam_px
        Beam FWHM (major axis) in pixels.
    rms
        Global robust rms (Jy/beam), the floor of the map.
    box_beams
        Box side in beams (at least 16 pixels).

    Returns
    -------
    numpy.ndarray
        Same shape as ``data``; just ``rms`` everywhere when the image is too small for boxes.
    """
    from astropy.stats import SigmaClip
    from photutils.background import Background2D, MADStdBackgroundRMS, MedianBackground

    data = np.asarray(data, dtype=float)
    box = int(max(16, round(box_beams * beam_px)))
    if min(data.shape) < 2 * box or not (rms > 0 and math.isfinite(rms)):
        return np.full(data.shape, rms)
    bkg = Background2D(data, box, filter_size=3, mask=~np.isfinite(data), sigma_clip=SigmaClip(sigma=3.0),
                       bkg_estimator=MedianBackground(), bkg_rms_estimator=MADStdBackgroundRMS())
    return np.maximum(np.nan_to_num(bkg.background_rms, nan=rms), rms)


def beam_area_pixels(bmaj_deg: float, bmin_deg: float, cdelt_deg: float) -> float:
    """Area of a Gaussian beam, ``2 pi sigma_maj sigma_min``, in pixels.

    Parameters
    ----------
    bmaj_deg, bmin_deg
        Beam FWHM axes (deg).
    cdelt_deg
        Pixel size (deg; the sign is ignored).
    """
    c = abs(cdelt_deg)
    return 2.0 * math.pi * (bmaj_deg * FWHM_TO_SIGMA / c) * (bmin_deg * FWHM_TO_SIGMA / c)


@dataclass
class DetectedSource:
    """One component found in an image."""

    x: float
    """Pixel column of the fitted centre (0-based)."""
    y: float
    """Pixel row of the fitted centre (0-based)."""
    ra_deg: float
    """Right ascension of the centre (deg, frame of the image)."""
    dec_deg: float
    """Declination of the centre (deg)."""
    ra_err_arcsec: float
    """1-sigma error of RA, on the sky (arcsec, i.e. times cos dec)."""
    dec_err_arcsec: float
    """1-sigma error of Dec (arcsec)."""
    peak_jy: float
    """Fitted peak brightness (Jy/beam)."""
    peak_err_jy: float
    """1-sigma error of the peak (Jy/beam)."""
    int_jy: float
    """Integrated flux density, peak times fitted area over beam area (Jy)."""
    int_err_jy: float
    """1-sigma error of the integrated flux (Jy)."""
    snr: float
    """Fitted peak over image rms."""
    maj_arcsec: float = float("nan")
    """Fitted FWHM major axis, not deconvolved (arcsec)."""
    min_arcsec: float = float("nan")
    """Fitted FWHM minor axis, not deconvolved (arcsec)."""
    pa_deg: float = float("nan")
    """Fitted position angle east of north (deg, [0, 180))."""
    fit_ok: bool = True
    """False when the fit failed and the peak pixel with the beam shape was used."""


def _axes_signs(wcs) -> tuple[float, float]:
    """(+1 or -1) for the east direction along x and the north direction along y."""
    m = wcs.celestial.pixel_scale_matrix
    return (1.0 if m[0, 0] > 0 else -1.0), (1.0 if m[1, 1] >= 0 else -1.0)


def _gauss2d(p, x, y):
    amp, x0, y0, sa, sb, th = p
    c, s = math.cos(th), math.sin(th)
    dx, dy = x - x0, y - y0
    u = dx * c + dy * s
    v = -dx * s + dy * c
    return amp * np.exp(-0.5 * ((u / sa) ** 2 + (v / sb) ** 2))


def condon_errors(peak, rms, maj_fwhm, min_fwhm, beam_maj_fwhm, beam_min_fwhm):
    """Condon (1997) 1-sigma errors of an elliptical Gaussian fit.

    Parameters
    ----------
    peak
        Fitted peak (Jy/beam).
    rms
        Image rms (Jy/beam).
    maj_fwhm, min_fwhm
        Fitted FWHM axes (any angular unit, same as the beam's).
    beam_maj_fwhm, beam_min_fwhm
        Restoring beam FWHM axes; ``theta_N**2 = beam_maj * beam_min``.

    Returns
    -------
    tuple
        ``(peak_err, int_rel_err, sigma_major_axis, sigma_minor_axis)``: peak error
        (Jy/beam), relative error of the integrated flux, and position errors along
        the fitted major and minor axes (unit of the axes).
    """
    tn2 = beam_maj_fwhm * beam_min_fwhm
    snr = peak / rms

    def rho2(a_maj, a_min):
        return (maj_fwhm * min_fwhm / (4.0 * tn2) * (1.0 + tn2 / maj_fwhm ** 2) ** a_maj
                * (1.0 + tn2 / min_fwhm ** 2) ** a_min * snr ** 2)

    rel_peak = math.sqrt(2.0 / rho2(1.5, 1.5))
    r_maj, r_min = math.sqrt(2.0 / rho2(2.5, 0.5)), math.sqrt(2.0 / rho2(0.5, 2.5))
    rel_int = math.sqrt(rel_peak ** 2 + tn2 / (maj_fwhm * min_fwhm) * (r_maj ** 2 + r_min ** 2))
    return (abs(peak) * rel_peak, rel_int, r_maj * maj_fwhm * FWHM_TO_SIGMA, r_min * min_fwhm * FWHM_TO_SIGMA)


def _fit_component(data, ok, x_pk, y_pk, others, beam_p, half, rms):
    """Fit one Gaussian around (x_pk, y_pk); ``others`` = (n, 2) positions of other peaks."""
    from scipy.optimize import least_squares

    ny, nx = data.shape
    x0, x1 = max(0, x_pk - half), min(nx, x_pk + half + 1)
    y0, y1 = max(0, y_pk - half), min(ny, y_pk + half + 1)
    yy, xx = np.mgrid[y0:y1, x0:x1]
    sel = ok[y0:y1, x0:x1].copy()
    if len(others):
        d_self = (xx - x_pk) ** 2 + (yy - y_pk) ** 2
        near = (others[:, 0] >= x0 - half) & (others[:, 0] < x1 + half) & \
               (others[:, 1] >= y0 - half) & (others[:, 1] < y1 + half)
        for ox, oy in others[near]:
            sel &= d_self <= (xx - ox) ** 2 + (yy - oy) ** 2
    if sel.sum() < 12:
        return None
    xs, ys, zs = xx[sel].astype(float), yy[sel].astype(float), data[y0:y1, x0:x1][sel]
    amp0 = float(data[y_pk, x_pk])
    sa0, sb0, th0 = beam_p
    p0 = np.array([amp0, x_pk, y_pk, sa0, sb0, th0])
    smin = 0.3 * sb0
    lo = [0.0, x_pk - 2.0, y_pk - 2.0, smin, smin, -np.inf]
    hi = [np.inf, x_pk + 2.0, y_pk + 2.0, float(half), float(half), np.inf]
    try:
        res = least_squares(lambda p: (_gauss2d(p, xs, ys) - zs) / rms, p0, bounds=(lo, hi), x_scale="jac",
                            max_nfev=200)
    except (ValueError, np.linalg.LinAlgError):
        return None
    p = res.x
    if not res.success or not np.all(np.isfinite(p)):
        return None
    # a fit railing at a bound is not trusted
    if not p[0] > 0 or abs(p[1] - x_pk) > 1.99 or abs(p[2] - y_pk) > 1.99 or min(p[3], p[4]) <= smin * 1.001 \
            or max(p[3], p[4]) >= half * 0.999:
        return None
    cov = _correlated_cov(res.jac, sel, beam_p)
    if cov is None:
        return None
    amp, xc, yc, sa, sb, th = p
    if sb > sa:
        sa, sb, th = sb, sa, th + math.pi / 2
        cov = cov[[0, 1, 2, 4, 3, 5]][:, [0, 1, 2, 4, 3, 5]]
    return (amp, xc, yc, sa, sb, th), cov


def _correlated_cov(jac, sel, beam_p):
    """Parameter covariance of an unweighted fit with beam-correlated noise (sandwich form).

    ``jac`` (npix, npar) is the Jacobian of the residuals in units of the rms over the
    pixels ``sel`` (bool box); the noise correlation is the beam ``(sa, sb, theta)``
    in pixels, applied by FFT convolution of each Jacobian column laid on the box.
    """
    from scipy.signal import fftconvolve

    sa, sb, th = beam_p
    k = int(math.ceil(5.0 * sa))
    dy, dx = np.mgrid[-k:k + 1, -k:k + 1].astype(float)
    c, s = math.cos(th), math.sin(th)
    kern = np.exp(-0.5 * (((dx * c + dy * s) / sa) ** 2 + ((-dx * s + dy * c) / sb) ** 2))
    jac = np.asarray(jac, dtype=float)
    grids = np.zeros((jac.shape[1],) + sel.shape)
    grids[:, sel] = jac.T
    rj = np.stack([fftconvolve(g, kern, mode="same")[sel] for g in grids], axis=1)
    try:
        inv = np.linalg.inv(jac.T @ jac)
    except np.linalg.LinAlgError:
        return None
    cov = inv @ (jac.T @ rj) @ inv
    if not np.all(np.isfinite(np.diag(cov))) or np.any(np.diag(cov) < 0):
        return None
    return cov


def find_sources(data, wcs, bmaj_deg: float, bmin_deg: float, bpa_deg: float, rms, snr_min: float = 5.0,
                 max_sources: int = 500) -> list[DetectedSource]:
    """Find and fit the compact sources of a 2-D image.

    Parameters
    ----------
    data : numpy.ndarray
        2-D image (Jy/beam), shape ``(ny, nx)``; non-finite pixels are ignored.
    wcs : astropy.wcs.WCS
        WCS of the image (its celestial part is used; extra axes are fine).
    bmaj_deg, bmin_deg, bpa_deg
        Restoring beam FWHM axes (deg) and position angle (deg east of north).
    rms : float or numpy.ndarray
        Image noise (Jy/beam): a number (e.g. :func:`robust_rms`) or a map of the image's
        shape (e.g. :func:`local_rms_map`); a source's S/N, fit weights and errors use the
        value at its peak.
    snr_min
        Detection threshold: islands and peaks above ``snr_min * rms``.
    max_sources
        Keep at most this many components (the brightest peaks).

    Returns
    -------
    list of DetectedSource
        Brightest (fitted peak) first.  Positions use the celestial WCS; errors are
        the fit covariance for beam-correlated noise (see the module docstring).  The
        pixel axes are assumed to be aligned with RA/Dec (as in WSClean and CASA
        images) when converting position angles.
    """
    from astropy.wcs.utils import proj_plane_pixel_scales
    from photutils.detection import find_peaks
    from photutils.segmentation import detect_sources
    from photutils.utils.exceptions import NoDetectionsWarning

    data = np.asarray(data, dtype=float)
    if data.ndim != 2:
        raise ValueError(f"find_sources needs a 2-D image, got shape {data.shape}")
    rms_map = np.broadcast_to(np.asarray(rms, dtype=float), data.shape)
    if not (np.all(rms_map > 0) and np.all(np.isfinite(rms_map))):
        return []
    cel = wcs.celestial
    scales = proj_plane_pixel_scales(cel)  # deg/pixel along x, y
    pix_deg = float(math.sqrt(scales[0] * scales[1]))
    pix_arcsec = pix_deg * 3600.0
    ex, ny_sign = _axes_signs(wcs)
    bsa, bsb = bmaj_deg * FWHM_TO_SIGMA / pix_deg, bmin_deg * FWHM_TO_SIGMA / pix_deg
    pa = math.radians(bpa_deg)
    bth = math.atan2(ny_sign * math.cos(pa), ex * math.sin(pa))
    beam_fwhm_maj, beam_fwhm_min = bmaj_deg * 3600.0, bmin_deg * 3600.0

    ok = np.isfinite(data)
    filled = np.where(ok, data, 0.0)
    thr = snr_min * rms_map
    n_pix = max(3, int(round(0.1 * 2.0 * math.pi * bsa * bsb)))
    with warnings.catch_warnings():  # no island: an empty list, not a warning
        warnings.simplefilter("ignore", NoDetectionsWarning)
        segm = detect_sources(filled, thr, n_pixels=n_pix, mask=~ok)
    if segm is None:
        return []
    box = max(3, int(round(bmin_deg / pix_deg)) | 1)
    peaks = find_peaks(filled, thr, box_size=box, mask=(segm.data == 0) | ~ok)
    if peaks is None or len(peaks) == 0:
        return []
    order = np.argsort(-np.asarray(peaks["peak_value"], dtype=float), kind="stable")
    px = np.asarray(peaks["x_peak"], dtype=int)[order]
    py = np.asarray(peaks["y_peak"], dtype=int)[order]
    all_xy = np.column_stack([px, py]).astype(float)  # every peak shares out the pixels
    px, py = px[:max_sources], py[:max_sources]
    half = int(math.ceil(1.5 * bmaj_deg / pix_deg)) + 1
    labels = segm.data
    out: list[DetectedSource] = []
    for i, (x_pk, y_pk) in enumerate(zip(px, py)):
        lab = labels[y_pk, x_pk]
        h = half
        if lab:
            sl = segm.slices[segm.get_index(lab)]
            ext = max(sl[0].stop - sl[0].start, sl[1].stop - sl[1].start)
            h = int(min(max(half, ext // 2 + 2), 4 * half))
        others = np.delete(all_xy, i, axis=0)
        rms_pk = float(rms_map[y_pk, x_pk])
        fit = _fit_component(filled, ok, int(x_pk), int(y_pk), others, (bsa, bsb, bth), h, rms_pk)
        fit_ok = fit is not None
        if fit is not None:
            (amp, xc, yc, sa, sb, th), cov = fit
            integ = amp * (sa * sb) / (bsa * bsb)
            grad = np.array([1.0 / amp, 0.0, 0.0, 1.0 / sa, 1.0 / sb, 0.0]) * integ
            peak_err, int_err = math.sqrt(cov[0, 0]), math.sqrt(max(0.0, float(grad @ cov @ grad)))
            ex_err, ey_err = math.sqrt(cov[1, 1]) * scales[0] * 3600.0, math.sqrt(cov[2, 2]) * scales[1] * 3600.0
        else:  # peak pixel, beam shape, Condon errors
            amp, xc, yc, sa, sb, th = float(filled[y_pk, x_pk]), float(x_pk), float(y_pk), bsa, bsb, bth
            integ = amp
            peak_err, rel_int, e_maj, e_min = condon_errors(amp, rms_pk, beam_fwhm_maj, beam_fwhm_min, beam_fwhm_maj,
                                                            beam_fwhm_min)
            int_err = abs(integ) * rel_int
            c, s = math.cos(th), math.sin(th)
            ex_err = math.sqrt((e_maj * c) ** 2 + (e_min * s) ** 2)
            ey_err = math.sqrt((e_maj * s) ** 2 + (e_min * c) ** 2)
        maj, mnr = sa / FWHM_TO_SIGMA * pix_arcsec, sb / FWHM_TO_SIGMA * pix_arcsec
        c, s = math.cos(th), math.sin(th)
        ra, dec = cel.pixel_to_world_values(xc, yc)
        pa_fit = math.degrees(math.atan2(ex * c, ny_sign * s)) % 180.0
        out.append(DetectedSource(
            x=float(xc), y=float(yc), ra_deg=float(ra) % 360.0, dec_deg=float(dec),
            ra_err_arcsec=ex_err, dec_err_arcsec=ey_err, peak_jy=float(amp), peak_err_jy=float(peak_err),
            int_jy=float(integ), int_err_jy=float(int_err), snr=float(amp / rms_pk),
            maj_arcsec=float(maj), min_arcsec=float(mnr), pa_deg=float(pa_fit), fit_ok=fit_ok))
    out.sort(key=lambda d: -d.peak_jy)
    return out
