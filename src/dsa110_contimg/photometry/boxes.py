"""Batched pixel-box kernels of forced photometry (pure numpy; scipy inside functions): every position's box at once.

* :func:`beam_model`: the restoring beam on a pixel grid;
* :func:`windows`: the same-size windows of an image around many positions (NaN outside it), read only there
  (an image may be a memory-mapped FITS);
* :func:`robust_rms_rows`: :func:`dsa110_contimg.qa.sources.robust_rms` of every row of an array at once;
* :func:`fit_isolated`: the single-source case of :func:`~.kernels.forced_fit` for many positions at once;
* :func:`local_fit_rms`: the local noise of such fits.

Each gives the numbers of the per-position computation it replaces (up to the rounding
of FFTs of another size): one FFT over a stack of boxes instead of one per position.
"""

from __future__ import annotations

import math

import numpy as np

CHUNK = 256
"""Positions per stack (bounds the memory of a batch: ``CHUNK`` boxes)."""
FEW_ROWS = 24
"""Below this many rows :func:`robust_rms_rows` calls ``robust_rms`` on each."""


def beam_model(x, y, x0, y0, beam_px: tuple[float, float, float]) -> np.ndarray:
    """Restoring beam of peak 1 centred on ``(x0, y0)`` (broadcast); ``beam_px = (sigma_major, sigma_minor, theta)``
    in pixels and radians (major axis angle from +x)."""
    sa, sb, th = beam_px
    c, s = math.cos(th), math.sin(th)
    dx, dy = np.asarray(x, float) - x0, np.asarray(y, float) - y0
    return np.exp(-0.5 * (((dx * c + dy * s) / sa) ** 2 + ((-dx * s + dy * c) / sb) ** 2))


def windows(data, x0, y0, height: int, width: int) -> np.ndarray:
    """Stack ``(n, height, width)`` (float64) of the windows of ``data`` whose lower corners are the integer
    pixels ``(x0, y0)``; NaN where a window leaves the image.  Only the windows are read from ``data``."""
    ny, nx = np.shape(data)
    out = np.full((np.size(x0), height, width), np.nan)
    for i, (xa, ya) in enumerate(zip(np.atleast_1d(x0).tolist(), np.atleast_1d(y0).tolist())):
        x1, x2, y1, y2 = max(0, xa), min(nx, xa + width), max(0, ya), min(ny, ya + height)
        if x1 < x2 and y1 < y2:
            out[i, y1 - ya:y2 - ya, x1 - xa:x2 - xa] = data[y1:y2, x1:x2]
    return out


def _first_true(pred, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Per row, the first index ``i`` in ``[lo, hi)`` where ``pred(i)`` holds (``hi`` when none), for a predicate
    false then true along each row; ``pred`` is called with one index per row."""
    lo, hi = lo.copy(), hi.copy()
    while True:
        act = lo < hi
        if not act.any():
            return lo
        mid = np.where(act, (lo + hi) // 2, lo)
        t = pred(mid)
        lo, hi = np.where(act & ~t, mid + 1, lo), np.where(act & t, mid, hi)


def robust_rms_rows(values, n_iter: int = 5, clip: float = 3.0) -> np.ndarray:
    """:func:`dsa110_contimg.qa.sources.robust_rms` of each row of ``values`` (NaN: not a value), the same numbers.

    Each row is sorted once.  The values a clipping about the median keeps are a run of
    it, so each iteration's median is read off the run, the median absolute deviation is
    the middle of the merge of the run's two halves (below and above the median: both sorted
    by deviation) and the next run is found by bisection: O(log n) per row and iteration.
    """
    from ..qa.sources import MAD_TO_SIGMA, robust_rms

    values = np.asarray(values, dtype=float)
    if len(values) < FEW_ROWS:  # the bisections' per-call overhead exceeds a few rows' own medians
        return np.array([robust_rms(v, n_iter=n_iter, clip=clip) for v in values], dtype=float)
    s = np.sort(values, axis=1)  # NaN last
    n, width = s.shape
    rows = np.arange(n)

    def at(i):
        return s[rows, np.clip(i, 0, width - 1)]

    lo, hi = np.zeros(n, dtype=int), np.isfinite(s).sum(axis=1)
    rms = np.full(n, np.nan)
    for _ in range(max(1, n_iter)):
        c = hi - lo
        live = c > 0
        med = np.where(live, (at(lo + (c - 1) // 2) + at(lo + c // 2)) / 2, np.nan)
        p = _first_true(lambda i: ~(at(i) < med), lo, hi)  # [lo, p) below the median, [p, hi) not
        nl, nr = p - lo, hi - p

        def kth(k):  # k-th smallest deviation: med - s[p-1-i] (i < nl) merged with s[p+j] - med (j < nr)
            take = _first_true(lambda i: ~(med - at(p - 1 - i) <= at(p + k - i) - med) | (k - i >= nr),
                               np.maximum(0, k + 1 - nr), np.minimum(k + 1, nl))
            last_a = np.where(take > 0, med - at(p - take), -np.inf)
            last_b = np.where(k - take >= 0, at(p + k - take) - med, -np.inf)
            return np.maximum(last_a, last_b)

        mad = (kth(np.maximum((c - 1) // 2, 0)) + kth(c // 2)) / 2
        rms = np.where(live, MAD_TO_SIGMA * mad, np.nan)
        go = live & (rms > 0)
        t = clip * rms
        new_lo = _first_true(lambda i: np.abs(at(i) - med) <= t, lo, p)
        new_hi = _first_true(lambda i: ~(np.abs(at(i) - med) <= t), p, hi)
        lo, hi = np.where(go, new_lo, lo), np.where(go, new_hi, hi)
    return rms


def fit_isolated(data, x, y, beam_px: tuple[float, float, float], half: int, kern: np.ndarray):
    """:func:`~.kernels.forced_fit` of single sources at many positions (each alone in its fit region).

    Returns
    -------
    tuple of numpy.ndarray
        ``(amp, err_factor, n_pix)``: NaN, NaN, 0 where fewer than 4 finite pixels are within ``half``.
    """
    from scipy.signal import fftconvolve

    x, y = np.asarray(x, float), np.asarray(y, float)
    amp, fac, npix = np.full(x.size, np.nan), np.full(x.size, np.nan), np.zeros(x.size, dtype=int)
    w = 2 * half + 2
    gy, gx = np.mgrid[0:w, 0:w]
    for s in range(0, x.size, CHUNK):
        xs, ys = x[s:s + CHUNK, None, None], y[s:s + CHUNK, None, None]
        x0, y0 = np.floor(xs).astype(int) - half, np.floor(ys).astype(int) - half
        box = windows(data, x0.ravel(), y0.ravel(), w, w)
        xx, yy = x0 + gx, y0 + gy
        sel = ((xx - xs) ** 2 + (yy - ys) ** 2 <= half ** 2) & np.isfinite(box)
        g = np.where(sel, beam_model(xx, yy, xs, ys, beam_px), 0.0)
        btb = (g * g).sum(axis=(1, 2))
        n = sel.sum(axis=(1, 2))
        ok = (n >= 4) & (btb > 0)
        rb = fftconvolve(g, kern[None], mode="same", axes=(1, 2))
        with np.errstate(divide="ignore", invalid="ignore"):
            a = (g * np.where(sel, box, 0.0)).sum(axis=(1, 2)) / btb
            cov = (g * rb).sum(axis=(1, 2)) / btb ** 2
        amp[s:s + CHUNK] = np.where(ok, a, np.nan)
        fac[s:s + CHUNK] = np.where(ok, np.sqrt(np.clip(cov, 0.0, None)), np.nan)
        npix[s:s + CHUNK] = np.where(ok, n, 0)
    return amp, fac, npix


def _valid_conv(stack: np.ndarray, kern: np.ndarray) -> np.ndarray:
    """``fftconvolve(stack, kern[None], mode="valid", axes=(1, 2))`` with FFTs of the boxes' own size (the
    circular wrap-around reaches only the outputs 'valid' drops): a third of the work of the linear size."""
    from scipy import fft

    _, h, w = stack.shape
    kh, kw = kern.shape
    size = (fft.next_fast_len(h, real=True), fft.next_fast_len(w, real=True))
    full = fft.irfft2(fft.rfft2(stack, s=size) * fft.rfft2(kern, s=size), s=size)
    return full[:, kh - 1:h, kw - 1:w]


def local_fit_rms(data, x, y, beam_px: tuple[float, float, float], half: int, box: int,
                  exclude: float) -> np.ndarray:
    """Noise of a beam fit near each position: the robust rms of the fitted amplitude at every pixel of a box of
    side ``box`` around it (those within ``exclude`` of it left out).

    The amplitude map is the image correlated with the beam (truncated at ``half``, as in
    :func:`~.kernels.forced_fit`) over the beam's sum of squares: the amplitude a
    single-source fit would find there.  Its scatter is the error of that fit for whatever
    the noise's correlation (weighting, PSF) and local artefacts are.  NaN where fewer than
    16 amplitudes could be computed (non-finite pixels, or the image's edge, in their footprint).
    """
    ky, kx = np.mgrid[-half:half + 1, -half:half + 1]
    inside = kx ** 2 + ky ** 2 <= half ** 2
    kern = np.where(inside, beam_model(kx, ky, 0.0, 0.0, beam_px), 0.0)
    norm = float((kern ** 2).sum())
    h = max(4, int(box) // 2)
    side = 2 * (h + half) + 1
    oy, ox = np.mgrid[-h:h + 1, -h:h + 1]
    x, y = np.atleast_1d(np.asarray(x, float)), np.atleast_1d(np.asarray(y, float))
    out = np.full(x.size, np.nan)
    for s in range(0, x.size, CHUNK):
        xs, ys = x[s:s + CHUNK], y[s:s + CHUNK]
        cx, cy = np.rint(xs).astype(int), np.rint(ys).astype(int)
        sub = windows(data, cx - h - half, cy - h - half, side, side)
        bad = ~np.isfinite(sub)
        amp = _valid_conv(np.where(bad, 0.0, sub), kern) / norm
        hit = np.zeros(amp.shape, dtype=bool)
        some = np.flatnonzero(bad.any(axis=(1, 2)))  # amplitudes whose footprint has a bad pixel (few boxes)
        if some.size:
            hit[some] = _valid_conv(bad[some].astype(float), inside.astype(float)) > 0.5
        far = ((cx[:, None, None] + ox - xs[:, None, None]) ** 2 + (cy[:, None, None] + oy - ys[:, None, None]) ** 2
               > exclude ** 2)
        use = (~hit & far).reshape(len(xs), -1)
        rms = robust_rms_rows(np.where(use, amp.reshape(len(xs), -1), np.nan))
        out[s:s + CHUNK] = np.where(use.sum(axis=1) >= 16, rms, np.nan)
    return out
