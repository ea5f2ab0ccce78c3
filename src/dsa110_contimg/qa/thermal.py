"""Predicted thermal noise (and synthesized beam) of a Stokes-I image, from the MS's own weights and flags.

The prediction is the noise of the weighted sum the imager forms.  With
``sigma_k`` the noise of the real part of the Stokes-I visibility ``k`` and
``u_k`` its imaging weight,

    sigma_image**2 = sum(u_k**2 sigma_k**2) / sum(u_k)**2,

over the unflagged cross-correlation samples.  Natural weighting
(``u_k = 1 / sigma_k**2``) gives ``sigma_image = 1 / sqrt(sum(1 / sigma_k**2))``.

* **Stokes I** = (XX + YY) / 2: ``sigma_I**2 = (sigma_XX**2 + sigma_YY**2) / 4``, so
  its inverse-variance weight is ``4 / (1 / w_XX + 1 / w_YY)`` (twice the weight of one
  polarization when they are equal).  A sample counts only when both are unflagged
  (WSClean's rule for Stokes I).
* **Weights in Jy**: with ``weight_convention='nsamples'`` (this pipeline's MSs: WEIGHT
  is the correlator's nsamples, 96 samples of 0.134 s per 12.88 s integration, and
  applycal runs with ``calwt=False``), ``sigma_k = SEFD / sqrt(2 dnu w_k t_sample)``
  (the radiometer equation for one polarization product, real part); with
  ``'inverse_variance'`` (CASA's convention after ``statwt``) ``sigma_k**2 = 1 / w_k``.
  WEIGHT_SPECTRUM is used when present, else WEIGHT (else ``1 / SIGMA**2``) for every
  channel of the row.
* **Briggs / uniform**: the density weighting is recomputed the way WSClean does it:
  natural weights gridded on the image's uv grid (cell ``1 / (imsize * cell)``
  wavelengths, the half plane ``v >= 0``), ``W_j`` the sum in cell ``j``; uniform
  ``u_k = w_k / W_j``; Briggs ``u_k = w_k / (1 + W_j f**2)`` with
  ``f**2 = (5 * 10**-robust)**2 / (sum_j W_j**2 / sum_k w_k)``.  Approximations: the
  channels are gridded in blocks of ``n_channels / max_channels`` at the block's mean
  frequency (what ``--quick`` imaging does to the data), and WSClean's optional weight
  rank filter and tapers are not modelled.
* **Expected beam**: the half-power contour of the dirty beam made from the same
  imaging weights (FFT of the gridded weights, pixels ``psf_oversample`` times finer than
  the image's), taken as an ellipse (:func:`psf_beam`).  The second moments of (u, v)
  would give the curvature at the peak, which the dense core of the array makes up to
  twice narrower than the main lobe the imager fits.

:func:`thermal_noise` (numpy only) is the kernel; :func:`predict_thermal_noise` reads the MS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..beam import SPEED_OF_LIGHT
from ..telescope import SEFD_JY as DEFAULT_SEFD_JY

SAMPLE_S = 0.134217728
"""Duration of one correlator sample (s): a weight of 96 nsamples is the 12.884902 s integration."""
_CORR_PAIRS = ((9, 12), (5, 8))
"""(XX, YY) and (RR, LL) in the CORR_TYPE codes of casacore's Stokes enum."""


@dataclass
class ThermalOptions:
    """Options of :func:`predict_thermal_noise`."""

    weighting: str = "briggs"
    """Imaging weighting: 'natural', 'uniform' or 'briggs' (the imaging stage's default)."""
    robust: float = 0.0
    """Briggs robust parameter."""
    imsize: int = 1024
    """Image size (pixels): sets the uv cell of the density weighting."""
    cell_arcsec: float = 4.0
    """Pixel size (arcsec): sets the uv cell of the density weighting."""
    weight_convention: str = "nsamples"
    """'nsamples' (WEIGHT counts correlator samples; radiometer equation) or 'inverse_variance' (1 / Jy**2)."""
    sefd_jy: float = DEFAULT_SEFD_JY
    """SEFD of one dish (Jy), for 'nsamples' weights."""
    sample_s: float = SAMPLE_S
    """Seconds of one unit of weight, for 'nsamples' weights."""
    max_channels: int = 96
    """Channels are gridded in at most this many blocks (density weighting and beam only)."""
    psf_oversample: float = 4.0
    """The expected beam is measured on a dirty beam with pixels this many times finer than the image's."""
    chunk_rows: int = 20000
    """Rows read at a time."""


@dataclass
class ThermalResult:
    """Predicted noise and beam of one Stokes-I image."""

    noise_jy: float
    """Predicted image noise (Jy/beam); NaN when nothing is unflagged."""
    natural_noise_jy: float
    """The natural-weighting noise of the same data (Jy/beam): the best achievable."""
    n_samples: int
    """Unflagged Stokes-I cross-correlation samples (row x channel)."""
    beam_major_arcsec: float
    """Expected synthesized-beam FWHM major axis (arcsec)."""
    beam_minor_arcsec: float
    """Expected synthesized-beam FWHM minor axis (arcsec)."""
    beam_pa_deg: float
    """Expected beam position angle (deg east of north)."""
    weight_column: str
    """Column the weights came from: 'WEIGHT_SPECTRUM', 'WEIGHT' or 'SIGMA'."""
    weighting: str
    """Weighting the prediction is for (e.g. 'briggs 0')."""


def stokes_i_weights(w_a, w_b, flag_a, flag_b) -> np.ndarray:
    """Inverse-variance weight of Stokes I = (A + B) / 2 from the weights of the two parallel hands.

    Parameters
    ----------
    w_a, w_b : array_like
        Inverse-variance weights of XX and YY (or RR and LL), any common shape.
    flag_a, flag_b : array_like of bool
        Their flags.

    Returns
    -------
    numpy.ndarray
        ``4 / (1 / w_a + 1 / w_b)``; 0 where either hand is flagged or has no weight.
    """
    w_a, w_b = np.asarray(w_a, dtype=float), np.asarray(w_b, dtype=float)
    good = ~np.asarray(flag_a, dtype=bool) & ~np.asarray(flag_b, dtype=bool) & (w_a > 0) & (w_b > 0)
    out = np.zeros(np.broadcast(w_a, w_b, good).shape)
    wa, wb = np.broadcast_to(w_a, out.shape)[good], np.broadcast_to(w_b, out.shape)[good]
    out[good] = 4.0 * wa * wb / (wa + wb)
    return out


def density_factors(u_l, v_l, w, weighting: str, robust: float, n_cells: int, cell_l: float) -> np.ndarray:
    """Imaging weight per unit natural weight (``u_k / w_k``) of uniform or Briggs weighting.

    Parameters
    ----------
    u_l, v_l : numpy.ndarray
        uv coordinates of the samples (wavelengths), 1-D.
    w : numpy.ndarray
        Natural (inverse-variance) weights, same shape; 0 for flagged samples.
    weighting
        'natural' (all ones), 'uniform' or 'briggs'.
    robust
        Briggs robust parameter.
    n_cells
        Grid side (the image size in pixels).
    cell_l
        uv cell (wavelengths): ``1 / (imsize * cell_rad)``.
    """
    w = np.asarray(w, dtype=float)
    if weighting == "natural":
        return np.ones_like(w)
    if weighting not in ("uniform", "briggs"):
        raise ValueError(f"unknown weighting {weighting!r}")
    flip = v_l < 0
    u = np.where(flip, -u_l, u_l)
    v = np.abs(v_l)
    iu = np.rint(u / cell_l).astype(np.int64) + n_cells // 2
    iv = np.rint(v / cell_l).astype(np.int64)
    inside = (iu >= 0) & (iu < n_cells) & (iv < n_cells // 2 + 1) & (w > 0)
    idx = np.where(inside, iv * n_cells + iu, 0)
    grid = np.bincount(idx[inside], weights=w[inside], minlength=n_cells * (n_cells // 2 + 1))
    cell_w = np.where(inside, grid[idx], 0.0)
    out = np.zeros_like(w)
    if weighting == "uniform":
        np.divide(1.0, cell_w, out=out, where=cell_w > 0)
        return out
    f2 = (5.0 * 10.0 ** (-robust)) ** 2 / (np.sum(grid ** 2) / np.sum(w[inside]))
    out[inside] = 1.0 / (1.0 + cell_w[inside] * f2)
    return out


def thermal_noise(w, factors=None) -> float:
    """Noise of the weighted mean of samples of inverse-variance weights ``w`` with imaging weights ``w * factors``.

    ``sqrt(sum(w f**2)) / sum(w f)``: natural weighting (``factors`` None) gives ``1 / sqrt(sum(w))``.
    Samples of weight 0 (flagged) do not count; NaN when none is left.
    """
    w = np.asarray(w, dtype=float).ravel()
    f = np.ones_like(w) if factors is None else np.asarray(factors, dtype=float).ravel()
    s1 = float(np.sum(w * f))
    return math.sqrt(float(np.sum(w * f * f))) / s1 if s1 > 0 else float("nan")


def psf_beam(u_l, v_l, imaging_w, pixel_arcsec: float, n: int = 1024) -> tuple[float, float, float]:
    """Expected beam ``(bmaj_arcsec, bmin_arcsec, bpa_deg)``: the half-power contour of the dirty beam.

    The imaging weights (and their Hermitian twins) are gridded to the nearest cell of an
    ``n x n`` uv grid whose FFT has pixels of ``pixel_arcsec``; the main lobe above half
    the peak (connected to the centre) is taken as an ellipse: its second moments along
    the principal axes are ``(FWHM / 2)**2 / 4``.
    """
    from scipy import ndimage

    w = np.asarray(imaging_w, dtype=float)
    ok = w > 0
    if not ok.any():
        return float("nan"), float("nan"), float("nan")
    pix_rad = math.radians(pixel_arcsec / 3600.0)
    du = 1.0 / (n * pix_rad)
    iu = np.rint(u_l[ok] / du).astype(np.int64) % n
    iv = np.rint(v_l[ok] / du).astype(np.int64) % n
    grid = np.bincount(iv * n + iu, weights=w[ok], minlength=n * n)
    grid += np.bincount(((-iv) % n) * n + (-iu) % n, weights=w[ok], minlength=n * n)
    psf = np.fft.fftshift(np.fft.ifft2(grid.reshape(n, n)).real)
    psf /= psf[n // 2, n // 2]
    labels, _ = ndimage.label(psf >= 0.5)
    jm, jl = np.nonzero(labels == labels[n // 2, n // 2])
    dl, dm = (jl - n // 2).astype(float), (jm - n // 2).astype(float)
    cov = np.cov(np.vstack([dl, dm]), bias=True) + np.eye(2) / 12.0  # + the pixel's own extent
    vals, vecs = np.linalg.eigh(cov)
    pa = math.degrees(math.atan2(vecs[0, 1], vecs[1, 1])) % 180.0  # l east (axis 1), m north (axis 0)
    return 4.0 * math.sqrt(vals[1]) * pixel_arcsec, 4.0 * math.sqrt(max(vals[0], 0.0)) * pixel_arcsec, pa


def _inverse_variance(w, chan_width_hz, opts: ThermalOptions):
    """Weights (rows, chans, 2) in 1 / Jy**2 of one polarization's real part."""
    if opts.weight_convention == "inverse_variance":
        return w
    if opts.weight_convention != "nsamples":
        raise ValueError(f"unknown weight convention {opts.weight_convention!r}")
    return w * (2.0 * chan_width_hz[None, :, None] * opts.sample_s) / opts.sefd_jy ** 2


def predict_thermal_noise(ms_path: str | Path, opts: ThermalOptions | None = None) -> ThermalResult:
    """Predicted thermal noise and beam of a Stokes-I image of the MS (see the module docstring).

    Parameters
    ----------
    ms_path
        Measurement Set (one spectral window; the parallel hands XX/YY or RR/LL).
    opts
        Options (defaults of :class:`ThermalOptions` when None): the imaging weighting and grid.

    Returns
    -------
    ThermalResult

    Raises
    ------
    ValueError
        No parallel-hand pair in the polarization table, or an unknown weighting or convention.
    """
    from casacore.tables import table

    opts = opts or ThermalOptions()
    ms_path = str(ms_path)
    with table(f"{ms_path}::POLARIZATION", ack=False) as tp:
        corr = [int(c) for c in tp.getcell("CORR_TYPE", 0)]
    pair = next(((corr.index(a), corr.index(b)) for a, b in _CORR_PAIRS if a in corr and b in corr), None)
    if pair is None:
        raise ValueError(f"{ms_path}: no XX/YY or RR/LL correlations (CORR_TYPE {corr})")
    with table(f"{ms_path}::SPECTRAL_WINDOW", ack=False) as ts:
        freqs = np.asarray(ts.getcell("CHAN_FREQ", 0), dtype=float)
        widths = np.abs(np.asarray(ts.getcell("CHAN_WIDTH", 0), dtype=float))
    nchan = freqs.size
    block = max(1, math.ceil(nchan / max(1, opts.max_channels)))
    edges = np.arange(0, nchan, block)
    block_freq = np.add.reduceat(freqs, edges) / np.diff(np.append(edges, nchan))
    us, vs, ws = [], [], []
    n_samples = 0
    with table(ms_path, ack=False) as t:
        cols = t.colnames()
        column = "WEIGHT_SPECTRUM" if "WEIGHT_SPECTRUM" in cols and t.iscelldefined("WEIGHT_SPECTRUM", 0) else \
            ("WEIGHT" if "WEIGHT" in cols else "SIGMA")
        for r0 in range(0, t.nrows(), opts.chunk_rows):
            n = min(opts.chunk_rows, t.nrows() - r0)
            cross = t.getcol("ANTENNA1", r0, n) != t.getcol("ANTENNA2", r0, n)
            cross &= ~t.getcol("FLAG_ROW", r0, n)
            if not cross.any():
                continue
            flag = t.getcol("FLAG", r0, n)[cross][..., list(pair)]
            raw = t.getcol(column, r0, n)[cross]
            if column == "SIGMA":
                raw = np.divide(1.0, raw.astype(float) ** 2, out=np.zeros(raw.shape), where=raw > 0)
            raw = raw[..., list(pair)].astype(float)
            if raw.ndim == 2:
                raw = np.broadcast_to(raw[:, None, :], flag.shape)
            w = _inverse_variance(raw, widths, opts)
            wi = stokes_i_weights(w[..., 0], w[..., 1], flag[..., 0], flag[..., 1])  # (rows, chans)
            n_samples += int(np.count_nonzero(wi))
            uvw = t.getcol("UVW", r0, n)[cross]
            wb = np.add.reduceat(wi, edges, axis=1)  # (rows, blocks)
            us.append((uvw[:, 0:1] * block_freq[None, :] / SPEED_OF_LIGHT).ravel())
            vs.append((uvw[:, 1:2] * block_freq[None, :] / SPEED_OF_LIGHT).ravel())
            ws.append(wb.ravel())
    if not ws:
        nan = float("nan")
        return ThermalResult(nan, nan, 0, nan, nan, nan, column, opts.weighting)
    u, v, w = np.concatenate(us), np.concatenate(vs), np.concatenate(ws)
    cell_l = 1.0 / (opts.imsize * math.radians(opts.cell_arcsec / 3600.0))
    f = density_factors(u, v, w, opts.weighting, opts.robust, opts.imsize, cell_l)
    bmaj, bmin, bpa = psf_beam(u, v, w * f, opts.cell_arcsec / opts.psf_oversample)
    label = f"briggs {opts.robust:g}" if opts.weighting == "briggs" else opts.weighting
    return ThermalResult(noise_jy=thermal_noise(w, f), natural_noise_jy=thermal_noise(w), n_samples=n_samples,
                         beam_major_arcsec=bmaj, beam_minor_arcsec=bmin, beam_pa_deg=bpa, weight_column=column,
                         weighting=label)
