"""Numerical kernels of the mosaic: small pure numpy functions (no I/O, no WCS).

The linear mosaic of images ``I_i`` made *before* primary-beam correction
(apparent flux ``I_i = pb_i * S`` plus noise of rms ``sigma_i``) is the
minimum-variance combination of the estimates ``I_i / pb_i`` of ``S``, whose
variances are ``sigma_i^2 / pb_i^2``::

    M = sum_i (pb_i / sigma_i^2) I_i / sum_i (pb_i^2 / sigma_i^2)
    W = sum_i pb_i^2 / sigma_i^2          (weight map)
    N = 1 / sqrt(W)                        (predicted noise of M, independent noise between inputs)

Each input contributes only where its beam is at least the cutoff (and its pixel
is finite), so ``M`` is blank (NaN) where no input reaches the cutoff.

Beams are handled as 2-D Gaussian covariances in (east, north) sky coordinates:
:func:`beam_cov`, :func:`cov_beam`, :func:`enclosing_cov` (a common beam) and
:func:`convolved_rms_factor`.
"""

from __future__ import annotations

import math

import numpy as np

FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))
"""Gaussian sigma per FWHM."""


def accumulate(num: np.ndarray, den: np.ndarray, image: np.ndarray, pb: np.ndarray, inv_var: float,
               cutoff: float) -> int:
    """Add one input to the sums of the linear mosaic, in place.

    ``num += pb * inv_var * image`` and ``den += pb**2 * inv_var`` where ``pb >= cutoff`` and the
    image pixel is finite.

    Parameters
    ----------
    num, den
        Running sums (same shape as ``image``; views into the mosaic's arrays are fine).
    image
        The input reprojected onto the same pixels (apparent flux, NaN outside the input).
    pb
        The input's primary-beam power on the same pixels.
    inv_var
        ``1 / rms**2`` of the input.
    cutoff
        Smallest beam power that contributes.

    Returns
    -------
    int
        Number of pixels the input contributed to.
    """
    use = (pb >= cutoff) & np.isfinite(image)
    w = np.where(use, pb * inv_var, 0.0).astype(num.dtype, copy=False)
    num += w * np.where(use, image, 0.0)
    den += w * pb
    return int(np.count_nonzero(use))


def finalize(num: np.ndarray, den: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mosaic, weight map and predicted noise from the sums (``num`` is overwritten by the mosaic).

    Returns
    -------
    tuple of numpy.ndarray
        ``(mosaic, weight, noise)``: ``num / den`` (NaN where ``den == 0``), ``den`` itself, and
        ``1 / sqrt(den)`` (NaN where ``den == 0``).
    """
    ok = den > 0
    np.divide(num, den, out=num, where=ok)
    num[~ok] = np.nan
    noise = np.full(den.shape, np.nan, dtype=den.dtype)
    np.sqrt(den, out=noise, where=ok)
    np.divide(1.0, noise, out=noise, where=ok)
    return num, den, noise


def strip_ra(ra_deg) -> tuple[float, float]:
    """Centre and span (deg) of the RA interval covering directions, across the 0/360 wrap.

    The interval is the circle minus its largest empty gap, so a strip crossing RA 0 is one interval.
    """
    ra = np.sort(np.mod(np.asarray(ra_deg, dtype=float).ravel(), 360.0))
    if ra.size == 0:
        raise ValueError("no directions")
    gaps = np.diff(np.concatenate([ra, [ra[0] + 360.0]]))
    i = int(np.argmax(gaps))
    start = ra[(i + 1) % ra.size]
    span = 360.0 - float(gaps[i])
    return float((start + span / 2.0) % 360.0), span


def subsample(a: np.ndarray, max_samples: int) -> np.ndarray:
    """A regular subsample (every k-th row and column) of a 2-D array with at most about ``max_samples``
    elements: for robust statistics of large maps (noise correlated over a few pixels loses little)."""
    stride = max(1, int(math.ceil(math.sqrt(a.size / max(1, max_samples)))))
    return a[::stride, ::stride]


def dilate(mask: np.ndarray) -> np.ndarray:
    """``mask`` grown by one cell in each of the 8 directions."""
    m = np.asarray(mask, dtype=bool)
    out = m.copy()
    out[1:] |= m[:-1]
    out[:-1] |= m[1:]
    grown = out.copy()
    grown[:, 1:] |= out[:, :-1]
    grown[:, :-1] |= out[:, 1:]
    return grown


def beam_cov(bmaj: float, bmin: float, bpa_deg: float) -> np.ndarray:
    """Covariance (2x2, (east, north), unit of the axes squared) of a Gaussian beam of FWHM axes
    ``bmaj``, ``bmin`` at position angle ``bpa_deg`` (east of north)."""
    pa = math.radians(bpa_deg)
    u = np.array([math.sin(pa), math.cos(pa)])   # major axis direction (east, north)
    v = np.array([math.cos(pa), -math.sin(pa)])
    return (bmaj * FWHM_TO_SIGMA) ** 2 * np.outer(u, u) + (bmin * FWHM_TO_SIGMA) ** 2 * np.outer(v, v)


def cov_beam(cov: np.ndarray) -> tuple[float, float, float]:
    """Inverse of :func:`beam_cov`: ``(bmaj, bmin, bpa_deg)`` with the PA in [0, 180)."""
    w, vec = np.linalg.eigh(np.asarray(cov, dtype=float))
    w = np.maximum(w, 0.0)
    major = vec[:, 1]
    pa = math.degrees(math.atan2(major[0], major[1])) % 180.0
    return math.sqrt(w[1]) / FWHM_TO_SIGMA, math.sqrt(w[0]) / FWHM_TO_SIGMA, pa


def enclosing_cov(covs, margin: float = 1e-3) -> np.ndarray:
    """A common beam: a covariance that contains every one of ``covs`` (each ``C - C_i`` positive
    semi-definite), so every input can be convolved to it.

    Starts from the largest-area beam and grows it, one beam at a time, to the smallest ellipse
    containing both (simultaneous diagonalisation; exact for two beams, close to minimal for more),
    then by ``margin`` (relative) so the convolution kernels are not degenerate.
    """
    covs = [np.asarray(c, dtype=float) for c in covs]
    c = max(covs, key=lambda m: float(np.linalg.det(m))).copy()
    for ci in covs:
        w, vec = np.linalg.eigh(c)
        half = vec @ np.diag(np.sqrt(w)) @ vec.T
        inv_half = vec @ np.diag(1.0 / np.sqrt(w)) @ vec.T
        lam, u = np.linalg.eigh(inv_half @ ci @ inv_half)
        c = half @ u @ np.diag(np.maximum(lam, 1.0)) @ u.T @ half
    return c * (1.0 + margin)


def convolved_rms_factor(cov_in: np.ndarray, cov_out: np.ndarray) -> float:
    """Factor on the rms of an image whose noise is correlated like its beam ``cov_in`` when it is
    convolved to the beam ``cov_out`` and rescaled to Jy per ``cov_out`` beam.

    The kernel ``K`` has covariance ``cov_out - cov_in``; the noise autocorrelation becomes the beam
    convolved with ``K`` twice, so the rms scales by ``(|C_in| / |C_in + 2 C_K|)^(1/4)``, and the beam
    area ratio ``sqrt(|C_out| / |C_in|)`` of the unit change multiplies it.
    """
    d_in, d_out = np.linalg.det(cov_in), np.linalg.det(cov_out)
    d_k = np.linalg.det(2.0 * np.asarray(cov_out) - np.asarray(cov_in))
    return float(math.sqrt(d_out / d_in) * (d_in / d_k) ** 0.25)


def gaussian_kernel(cov_pix: np.ndarray, n_sigma: float = 4.0) -> np.ndarray:
    """A unit-sum image of the Gaussian of covariance ``cov_pix`` ((x, y) pixels squared)."""
    cov_pix = np.asarray(cov_pix, dtype=float)
    half = max(1, int(math.ceil(n_sigma * math.sqrt(max(np.linalg.eigvalsh(cov_pix).max(), 1e-12)))))
    y, x = np.mgrid[-half:half + 1, -half:half + 1].astype(float)
    inv = np.linalg.inv(cov_pix)
    k = np.exp(-0.5 * (inv[0, 0] * x * x + 2.0 * inv[0, 1] * x * y + inv[1, 1] * y * y))
    return k / k.sum()


def sky_to_pixel_cov(cov_sky: np.ndarray, cd: np.ndarray) -> np.ndarray:
    """A covariance in (east, north) degrees squared as (x, y) pixels squared, for an image whose
    local Jacobian ``cd`` (2x2, deg per pixel) maps (x, y) to (east, north)."""
    inv = np.linalg.inv(np.asarray(cd, dtype=float))
    return inv @ np.asarray(cov_sky, dtype=float) @ inv.T
