"""Numerical kernels of survey photometry (pure numpy; scipy imported inside functions).

* :func:`forced_fit`: least-squares amplitude of the restoring beam at fixed positions
  (blends fitted together), errors for beam-correlated noise;
* :func:`local_fit_rms` (and :func:`beam_model`; from :mod:`.boxes`, which computes every position's box
  at once): the local noise of such a fit, from the scatter of the fitted amplitude over a box of a few
  beams around each position;
* :func:`de_ruiter` and :func:`associate`: detections to sources;
* running sums of the light curves: :func:`flux_sums`, :func:`variability` (weighted
  mean, eta, V), :func:`pair_extrema` (two-epoch Vs and m, Mooley et al. 2016),
  :func:`new_significance`, :func:`eta_threshold`;
* :func:`position_sums` / :func:`mean_position`: weighted mean positions.

Angles are degrees unless named ``_arcsec``; RA errors are on the sky (times cos dec).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .boxes import beam_model, fit_isolated, local_fit_rms  # noqa: F401  (beam_model, local_fit_rms re-exported)

FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))
"""Gaussian sigma per FWHM."""


# --------------------------------------------------------------------------- image kernels


def _clusters(x, y, dist: float) -> list[np.ndarray]:
    """Groups of positions linked by separations below ``dist`` (pixels)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    n = len(x)
    if n == 0:
        return []
    pairs = cKDTree(np.column_stack([x, y])).query_pairs(dist, output_type="ndarray")
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n)) if len(pairs) else \
        coo_matrix((n, n))
    _, labels = connected_components(graph, directed=False)
    order = np.argsort(labels, kind="stable")
    return np.split(order, np.flatnonzero(np.diff(labels[order])) + 1)


@dataclass(frozen=True)
class ForcedFit:
    """Result of :func:`forced_fit` (arrays, one entry per position)."""

    amp: np.ndarray
    """Fitted amplitude (image units; Jy for a point source on a Jy/beam image)."""
    err_factor: np.ndarray
    """Error of the amplitude per unit pixel noise: multiply by the local rms."""
    n_pix: np.ndarray
    """Finite pixels in the fit (0: no fit, amp NaN)."""
    cluster: np.ndarray
    """Index of the blend each position was fitted in."""


def forced_fit(data, x, y, beam_px: tuple[float, float, float], half: int, cluster_px: float) -> ForcedFit:
    """Least-squares amplitudes of beam-shaped point sources at fixed pixel positions.

    Positions closer than ``cluster_px`` are fitted together (one amplitude each) on the
    pixels within ``half`` of any of them; non-finite pixels are ignored.  Isolated positions
    (most) are fitted all at once (:func:`.boxes.fit_isolated`); only the pixels near the
    positions are read from ``data`` (it may be a memory-mapped FITS).  The error
    factor is ``sqrt(diag((B^T B)^-1 B^T R B (B^T B)^-1))`` with ``B`` the beam models on the
    fitted pixels and ``R`` the pixel noise correlation, taken as the beam itself (the
    noise of a CLEAN image is correlated over the beam), as in image QA.

    Parameters
    ----------
    data : numpy.ndarray
        2-D image, ``(ny, nx)``.
    x, y : array_like
        Pixel positions (0-based, may be fractional).
    beam_px
        ``(sigma_major, sigma_minor, theta)`` of the beam in pixels / radians.
    half
        Half-size of the fit region (pixels).
    cluster_px
        Blend distance (pixels).
    """
    from scipy.signal import fftconvolve

    data = np.asarray(data)
    x, y = np.asarray(x, float), np.asarray(y, float)
    n = x.size
    amp, fac = np.full(n, np.nan), np.full(n, np.nan)
    npix, clus = np.zeros(n, dtype=int), np.full(n, -1)
    ny, nx = data.shape
    sa = beam_px[0]
    k = int(math.ceil(4.0 * sa))
    ky, kx = np.mgrid[-k:k + 1, -k:k + 1]
    kern = beam_model(kx, ky, 0.0, 0.0, beam_px)
    groups = _clusters(x, y, cluster_px)
    alone = np.array([m[0] for m in groups if len(m) == 1], dtype=int)
    amp[alone], fac[alone], npix[alone] = fit_isolated(data, x[alone], y[alone], beam_px, half, kern)
    for ci, members in enumerate(groups):
        clus[members] = ci
        if len(members) == 1:
            continue
        xm, ym = x[members], y[members]
        x0, x1 = max(0, int(math.floor(xm.min())) - half), min(nx, int(math.ceil(xm.max())) + half + 1)
        y0, y1 = max(0, int(math.floor(ym.min())) - half), min(ny, int(math.ceil(ym.max())) + half + 1)
        if x0 >= x1 or y0 >= y1:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1]
        box = np.asarray(data[y0:y1, x0:x1], dtype=float)
        near = np.zeros(box.shape, dtype=bool)
        for xi, yi in zip(xm, ym):
            near |= (xx - xi) ** 2 + (yy - yi) ** 2 <= half ** 2
        sel = near & np.isfinite(box)
        if sel.sum() < max(4, len(members) + 1):
            continue
        grids = np.stack([beam_model(xx, yy, xi, yi, beam_px) for xi, yi in zip(xm, ym)])  # (m, ny, nx)
        grids[:, ~sel] = 0.0
        b = grids[:, sel].T  # (npix, m)
        btb = b.T @ b
        try:
            inv = np.linalg.inv(btb)
        except np.linalg.LinAlgError:
            continue
        a = inv @ (b.T @ box[sel])
        rb = np.stack([fftconvolve(g, kern, mode="same")[sel] for g in grids], axis=1)
        cov = inv @ (b.T @ rb) @ inv
        amp[members] = a
        fac[members] = np.sqrt(np.clip(np.diag(cov), 0.0, None))
        npix[members] = int(sel.sum())
    return ForcedFit(amp, fac, npix, clus)


# --------------------------------------------------------------------------- association


def _dra_deg(ra1, ra2):
    return (np.asarray(ra1, float) - np.asarray(ra2, float) + 180.0) % 360.0 - 180.0


def de_ruiter(ra1, dec1, era1, edec1, ra2, dec2, era2, edec2) -> np.ndarray:
    """De Ruiter radius between positions 1 and 2 (errors in arcsec, RA errors on the sky; broadcast)."""
    dec1, dec2 = np.asarray(dec1, float), np.asarray(dec2, float)
    dx = _dra_deg(ra1, ra2) * np.cos(np.radians(0.5 * (dec1 + dec2))) * 3600.0
    dy = (dec1 - dec2) * 3600.0
    vx = np.asarray(era1, float) ** 2 + np.asarray(era2, float) ** 2
    vy = np.asarray(edec1, float) ** 2 + np.asarray(edec2, float) ** 2
    return np.sqrt(dx ** 2 / vx + dy ** 2 / vy)


@dataclass(frozen=True)
class Association:
    """Result of :func:`associate`, one entry per detection."""

    source: np.ndarray
    """Index of the source each detection goes to, -1: none (a new source)."""
    sep_arcsec: np.ndarray
    """Distance to that source (NaN for none)."""
    de_ruiter: np.ndarray
    """De Ruiter radius to that source (NaN for none)."""
    others: list[list[int]]
    """Other sources that also matched the detection (it went to the nearer)."""
    taken: list[list[int]]
    """Matching sources already given to a nearer detection of the same image."""


def associate(det_ra, det_dec, det_era, det_edec, src_ra, src_dec, src_era, src_edec,
              radius: float = 5.68, cap_arcsec: float = 30.0) -> Association:
    """Associate the detections of one image with known sources.

    A pair matches when its separation is at most ``cap_arcsec`` and its de Ruiter radius at
    most ``radius``.  Pairs are taken nearest first (by separation), one detection per
    source and one source per detection; a detection that matched several sources goes to
    the nearer one still free (the rest are listed in ``others``); one whose matches all
    went to nearer detections is left unmatched (listed in ``taken``).
    """
    from ..catalog.crossmatch import radec_to_xyz
    from scipy.spatial import cKDTree

    nd, ns = np.size(det_ra), np.size(src_ra)
    source, sep_out, dr_out = np.full(nd, -1), np.full(nd, np.nan), np.full(nd, np.nan)
    others: list[list[int]] = [[] for _ in range(nd)]
    taken: list[list[int]] = [[] for _ in range(nd)]
    if nd == 0 or ns == 0:
        return Association(source, sep_out, dr_out, others, taken)
    chord = 2.0 * math.sin(math.radians(cap_arcsec / 3600.0) / 2.0)
    tree = cKDTree(radec_to_xyz(src_ra, src_dec))
    near = tree.query_ball_point(radec_to_xyz(det_ra, det_dec), chord)
    di = np.array([i for i, js in enumerate(near) for _ in js], dtype=int)
    sj = np.array([j for js in near for j in js], dtype=int)
    if di.size == 0:
        return Association(source, sep_out, dr_out, others, taken)
    from ..beam import separation_deg

    a = lambda v, idx: np.asarray(v, float)[idx]  # noqa: E731
    sep = separation_deg(a(det_ra, di), a(det_dec, di), a(src_ra, sj), a(src_dec, sj)) * 3600.0
    dr = de_ruiter(a(det_ra, di), a(det_dec, di), a(det_era, di), a(det_edec, di),
                   a(src_ra, sj), a(src_dec, sj), a(src_era, sj), a(src_edec, sj))
    ok = (sep <= cap_arcsec) & (dr <= radius)
    di, sj, sep, dr = di[ok], sj[ok], sep[ok], dr[ok]
    used = np.zeros(ns, dtype=bool)
    for k in np.argsort(sep, kind="stable"):
        d, s = int(di[k]), int(sj[k])
        if source[d] >= 0:
            others[d].append(s)
        elif used[s]:
            taken[d].append(s)
        else:
            source[d], sep_out[d], dr_out[d], used[s] = s, sep[k], dr[k], True
    for d in range(nd):
        if source[d] >= 0:
            taken[d] = []
    return Association(source, sep_out, dr_out, others, taken)


# --------------------------------------------------------------------------- light curves


def total_error(flux, err, sys_frac: float) -> np.ndarray:
    """Measurement error with a fractional flux-scale error added in quadrature."""
    return np.hypot(np.asarray(err, float), sys_frac * np.asarray(flux, float))


def flux_sums(flux, err) -> dict[str, float]:
    """Running sums of a set of measurements (errors already total): add or subtract them to update a source."""
    f, e = np.atleast_1d(np.asarray(flux, float)), np.atleast_1d(np.asarray(err, float))
    w = 1.0 / e ** 2
    return {"n_measurements": int(f.size), "sum_w": float(w.sum()), "sum_wf": float((w * f).sum()),
            "sum_wf2": float((w * f * f).sum()), "sum_f": float(f.sum()), "sum_f2": float((f * f).sum())}


@dataclass(frozen=True)
class Variability:
    """Light-curve statistics from the running sums (NaN where undefined)."""

    wmean: float
    """Weighted mean flux (Jy)."""
    wmean_err: float
    """Its error (Jy)."""
    mean: float
    """Unweighted mean flux (Jy)."""
    eta: float
    """Weighted reduced chi-square about the weighted mean (NaN for one measurement)."""
    v: float
    """Modulation index: sample standard deviation over the mean (NaN for one measurement or mean 0)."""


def variability(n: int, sum_w: float, sum_wf: float, sum_wf2: float, sum_f: float, sum_f2: float) -> Variability:
    """Weighted mean, eta and V from the running sums (VAST's definitions)."""
    nan = float("nan")
    if n < 1 or not sum_w > 0:
        return Variability(nan, nan, nan, nan, nan)
    wmean, mean = sum_wf / sum_w, sum_f / n
    if n < 2:
        return Variability(wmean, 1.0 / math.sqrt(sum_w), mean, nan, nan)
    eta = max(0.0, (sum_wf2 - sum_wf * sum_wf / sum_w) / (n - 1))
    var = max(0.0, (sum_f2 - sum_f * sum_f / n) / (n - 1))
    v = math.sqrt(var) / mean if mean != 0 else nan
    return Variability(wmean, 1.0 / math.sqrt(sum_w), mean, eta, v)


def pair_extrema(flux_new, err_new, flux_old, err_old, vs_min: float = 4.3) -> tuple[float, float]:
    """Largest |Vs| over the pairs (new, old), and largest |m| over those with |Vs| >= ``vs_min``.

    ``Vs = (S1 - S2) / sqrt(e1**2 + e2**2)`` and ``m = 2 (S1 - S2) / (S1 + S2)`` (Mooley et al.
    2016); pairs with ``S1 + S2 <= 0`` have no m.  Returns ``(0, 0)`` without pairs.  Adding one
    measurement to a source only forms the new pairs: the running maxima stay exact.
    """
    fn, en = np.atleast_1d(np.asarray(flux_new, float)), np.atleast_1d(np.asarray(err_new, float))
    fo, eo = np.atleast_1d(np.asarray(flux_old, float)), np.atleast_1d(np.asarray(err_old, float))
    if fn.size == 0 or fo.size == 0:
        return 0.0, 0.0
    vs, m = _vs_m(fn[:, None], en[:, None], fo[None, :], eo[None, :], vs_min)
    return float(vs.max()), float(m.max())


def _vs_m(f1, e1, f2, e2, vs_min: float) -> tuple[np.ndarray, np.ndarray]:
    """|Vs| and |m| (0 where |Vs| < ``vs_min`` or ``S1 + S2 <= 0``) of pairs of measurements (broadcast)."""
    d = f1 - f2
    vs = np.abs(d) / np.sqrt(e1 ** 2 + e2 ** 2)
    s = f1 + f2
    with np.errstate(divide="ignore", invalid="ignore"):
        return vs, np.where((s > 0) & (vs >= vs_min), np.abs(2.0 * d / s), 0.0)


def pair_extrema_each(flux_new, err_new, flux_old, err_old, owner, vs_min: float = 4.3) -> tuple[np.ndarray,
                                                                                                  np.ndarray]:
    """:func:`pair_extrema` of many sources at once: source ``i`` has the one new measurement ``flux_new[i]`` and
    the old ones ``flux_old[owner == i]``; arrays of the largest |Vs| and |m| per source (0 without old ones)."""
    fn, en = np.asarray(flux_new, float), np.asarray(err_new, float)
    own = np.asarray(owner, dtype=int)
    vs_max, m_max = np.zeros(fn.size), np.zeros(fn.size)
    if own.size:
        vs, m = _vs_m(fn[own], en[own], np.asarray(flux_old, float), np.asarray(err_old, float), vs_min)
        np.maximum.at(vs_max, own, vs)
        np.maximum.at(m_max, own, m)
    return vs_max, m_max


def all_pair_extrema(flux, err, vs_min: float = 4.3) -> tuple[float, float]:
    """:func:`pair_extrema` over every pair of one light curve."""
    f, e = np.atleast_1d(np.asarray(flux, float)), np.atleast_1d(np.asarray(err, float))
    if f.size < 2:
        return 0.0, 0.0
    i, j = np.triu_indices(f.size, 1)
    vs, m = _vs_m(f[i], e[i], f[j], e[j], vs_min)
    return float(vs.max()), float(m.max())


def eta_threshold(n: int, false_positive: float = 0.01) -> float:
    """Eta exceeded by a steady source with ``n`` Gaussian measurements with probability ``false_positive``:
    ``chi2.ppf(1 - fp, n - 1) / (n - 1)`` (``(n - 1) eta`` is chi-square distributed)."""
    from scipy.stats import chi2

    if n < 2:
        return float("inf")
    return float(chi2.ppf(1.0 - false_positive, n - 1) / (n - 1))


def new_significance(flux: float, err: float, prev_flux, prev_err) -> float:
    """How far a first detection exceeds the forced fluxes of earlier images: the largest
    ``(flux - f_j) / sqrt(err**2 + e_j**2)`` over them (NaN without earlier images)."""
    pf, pe = np.atleast_1d(np.asarray(prev_flux, float)), np.atleast_1d(np.asarray(prev_err, float))
    ok = np.isfinite(pf) & np.isfinite(pe)
    if not ok.any():
        return float("nan")
    return float(np.max((flux - pf[ok]) / np.sqrt(err ** 2 + pe[ok] ** 2)))


# --------------------------------------------------------------------------- positions


def position_sums(ref_ra: float, ref_dec: float, ra, dec, era, edec) -> dict[str, float]:
    """Running sums of detection positions about a reference (offsets in arcsec on the tangent plane;
    weights 1/error**2)."""
    dx = _dra_deg(ra, ref_ra) * math.cos(math.radians(ref_dec)) * 3600.0
    dy = (np.asarray(dec, float) - ref_dec) * 3600.0
    wx, wy = 1.0 / np.asarray(era, float) ** 2, 1.0 / np.asarray(edec, float) ** 2
    return {"pos_w_ra": float(np.sum(wx)), "pos_wx_ra": float(np.sum(wx * dx)),
            "pos_w_dec": float(np.sum(wy)), "pos_wx_dec": float(np.sum(wy * dy))}


def mean_position(ref_ra: float, ref_dec: float, w_ra: float, wx_ra: float, w_dec: float,
                  wx_dec: float) -> tuple[float, float, float, float]:
    """Weighted mean position ``(ra, dec, ra_err_arcsec, dec_err_arcsec)`` from :func:`position_sums`."""
    ra = (ref_ra + wx_ra / w_ra / 3600.0 / math.cos(math.radians(ref_dec))) % 360.0
    dec = ref_dec + wx_dec / w_dec / 3600.0
    return ra, dec, 1.0 / math.sqrt(w_ra), 1.0 / math.sqrt(w_dec)
