"""Images of the truth sky: the simulated sources convolved with a restoring beam on a FITS grid.

Each source (point or elliptical Gaussian) becomes the convolution of its shape with the beam, a
Gaussian of covariance ``C_src + C_beam`` (in the tangent plane, east and north), with peak
``S sqrt(det C_beam / det C)`` Jy/beam, drawn on a cutout of +-6 sigma around its pixel position (the
sky is taken flat across a cutout, through the WCS's local CD matrix).  Fluxes are the truth's
beam-attenuated ``apparent_flux_jy`` (what an image before primary-beam correction shows) or the
intrinsic ``flux_1p4_jy``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .predict import FWHM_TO_SIGMA
from .truth import GroupTruth


def _covariance(maj_deg, min_deg, pa_deg) -> np.ndarray:
    """Covariance (deg**2, east-north) of Gaussians of FWHM ``maj`` x ``min`` at ``pa`` (north through east)."""
    pa = np.radians(np.asarray(pa_deg, dtype=float))
    a = np.stack([np.sin(pa), np.cos(pa)], axis=-1)
    b = np.stack([np.cos(pa), -np.sin(pa)], axis=-1)
    s_a = (np.asarray(maj_deg) * FWHM_TO_SIGMA) ** 2
    s_b = (np.asarray(min_deg) * FWHM_TO_SIGMA) ** 2
    return s_a[..., None, None] * a[..., :, None] * a[..., None, :] + s_b[..., None, None] * b[..., :, None] * b[..., None, :]


def truth_image(truth: GroupTruth, wcs, shape: tuple[int, int], beam: tuple[float, float, float],
                fluxes: str = "apparent") -> np.ndarray:
    """The truth sky convolved with ``beam`` on the grid of ``wcs``.

    Parameters
    ----------
    truth
        A group's truth.
    wcs : astropy.wcs.WCS
        Celestial WCS of the image (only its celestial axes are used).
    shape
        (ny, nx) of the image.
    beam
        Restoring beam (BMAJ, BMIN, BPA) in degrees.
    fluxes
        'apparent' (beam-attenuated, the default) or 'intrinsic' (1.4 GHz).

    Returns
    -------
    numpy.ndarray
        Image in Jy/beam, shape ``shape``.
    """
    if fluxes not in ("apparent", "intrinsic"):
        raise ValueError(f"fluxes={fluxes!r}: expected 'apparent' or 'intrinsic'")
    cel = wcs.celestial
    ny, nx = shape
    img = np.zeros(shape)
    rows = truth.sources
    if not rows:
        return img
    ra = np.array([r["ra_deg"] for r in rows])
    dec = np.array([r["dec_deg"] for r in rows])
    flux = np.array([r["apparent_flux_jy" if fluxes == "apparent" else "flux_1p4_jy"] for r in rows])
    c_beam = _covariance(beam[0], beam[1], beam[2])
    c_src = _covariance(np.array([r.get("major_arcsec", 0.0) for r in rows]) / 3600.0,
                        np.array([r.get("minor_arcsec", 0.0) for r in rows]) / 3600.0,
                        np.array([r.get("pa_deg", 0.0) for r in rows]))
    cov = c_src + c_beam
    peak = flux * np.sqrt(np.linalg.det(c_beam) / np.linalg.det(cov))
    px, py = cel.all_world2pix(ra, dec, 0)
    cd = cel.pixel_scale_matrix  # d(intermediate deg: east, north) / d(pixel)
    cd_inv = np.linalg.inv(cd)
    for k in np.flatnonzero(np.isfinite(px) & np.isfinite(py)):
        cpix = cd_inv @ cov[k] @ cd_inv.T
        half = int(np.ceil(6 * np.sqrt(max(cpix[0, 0], cpix[1, 1])))) + 1
        x0, y0 = int(round(px[k])), int(round(py[k]))
        xs = np.arange(max(x0 - half, 0), min(x0 + half + 1, nx))
        ys = np.arange(max(y0 - half, 0), min(y0 + half + 1, ny))
        if xs.size == 0 or ys.size == 0:
            continue
        dx = xs[None, :] - px[k]
        dy = ys[:, None] - py[k]
        w = np.linalg.inv(cpix)
        img[np.ix_(ys, xs)] += peak[k] * np.exp(-0.5 * (w[0, 0] * dx * dx + 2 * w[0, 1] * dx * dy + w[1, 1] * dy * dy))
    return img


def write_truth_image(truth: GroupTruth, template: str | Path, out: str | Path, fluxes: str = "apparent") -> Path:
    """:func:`truth_image` on the grid and restoring beam (BMAJ, BMIN, BPA) of a FITS image; written to ``out``."""
    from astropy.io import fits
    from astropy.wcs import WCS

    hdr = fits.getheader(template)
    wcs = WCS(hdr).celestial
    shape = (int(hdr["NAXIS2"]), int(hdr["NAXIS1"]))
    beam = (float(hdr["BMAJ"]), float(hdr["BMIN"]), float(hdr.get("BPA", 0.0)))
    img = truth_image(truth, wcs, shape, beam, fluxes)
    out_hdr = wcs.to_header()
    out_hdr["BUNIT"] = "JY/BEAM"
    out_hdr["BMAJ"], out_hdr["BMIN"], out_hdr["BPA"] = beam
    out_hdr["HISTORY"] = f"dsa110_contimg truth sky ({fluxes} fluxes) of group {truth.group_start_iso}"
    fits.PrimaryHDU(img.astype(np.float32), out_hdr).writeto(out, overwrite=True)
    return Path(out)
