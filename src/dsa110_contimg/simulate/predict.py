"""Visibility predicts of the simulator: a direct sum (the reference) and a fast NUFFT sum.

Both evaluate, for every baseline ``b`` and channel ``c``, and for each of ``Nw`` weight sets ``w``::

    V[w, b, c] = sum_k W[w, k, c] * G[b, k, c] * exp(2 pi i tau[b, k] f_c) * exp(i phi[b, k] f_ref / f_c)

``tau`` the geometric delay, ``W`` the apparent flux (or a beam-derivative weight), ``G`` the Fourier
envelope of a Gaussian source (``exp(-q[b, k] f_c**2)``, 1 for point sources) and ``phi`` an optional
ionospheric phase difference at ``f_ref``.

Fast path (:func:`nufft_sum`): on a uniform channel grid ``f_c = f_0 + c df`` the sum over sources of one
baseline is a 1-D type-1 non-uniform FFT (``finufft``) from the points ``x_k = 2 pi tau_k df`` to the
modes ``c``; the channel dependence of ``W`` is expanded in Chebyshev polynomials of ``c`` (fitted to a
relative residual below ``fit_tol``), each term one transform of the same plan.  Point sources only;
Gaussians (a few) go through :func:`direct_sum`.  Its ionospheric phase is linearised in frequency about
the band centre ``f_m`` (an extra delay plus a constant): neglected ``|phi| f_ref/f_m * y**2 / (1 + y)``,
``y = (f - f_m) / f_m`` (<= 0.0048 |phi| over the full band).
"""

from __future__ import annotations

import numpy as np

from ..beam import SPEED_OF_LIGHT

FWHM_TO_SIGMA = 1.0 / np.sqrt(8.0 * np.log(2.0))
"""Gaussian sigma per unit FWHM."""


def _uniform_step(f: np.ndarray) -> float | None:
    """The channel step when ``f`` is evenly spaced (more than 2 channels), else None."""
    if f.size > 2 and np.allclose(np.diff(f), f[1] - f[0], rtol=1e-9, atol=0):
        return float(f[1] - f[0])
    return None


def gaussian_q(baselines_m: np.ndarray, dirs: np.ndarray, major_arcsec, minor_arcsec, pa_deg) -> np.ndarray:
    """Coefficient ``q`` of the Gaussian envelope ``exp(-q f**2)`` of elliptical Gaussian sources.

    The visibility of a Gaussian of FWHM ``major`` x ``minor`` at position angle ``pa`` (north through
    east) is the point visibility times ``exp(-2 pi**2 (s_maj**2 u_maj**2 + s_min**2 u_min**2))``,
    ``u = b . a f / c`` with ``a`` the axis directions on the sky at the source.

    Parameters
    ----------
    baselines_m
        ITRF baselines, shape (Nbl, 3).
    dirs
        Source directions (ITRF unit vectors), shape (Ng, 3).
    major_arcsec, minor_arcsec, pa_deg : array_like
        Shapes, shape (Ng,).

    Returns
    -------
    numpy.ndarray
        ``q`` (s**2), shape (Nbl, Ng).
    """
    east = np.cross([0.0, 0.0, 1.0], dirs)
    east /= np.linalg.norm(east, axis=1, keepdims=True)
    north = np.cross(dirs, east)
    pa = np.radians(np.asarray(pa_deg, dtype=float))[:, None]
    a_maj = np.cos(pa) * north + np.sin(pa) * east
    a_min = -np.sin(pa) * north + np.cos(pa) * east
    s_maj = np.radians(np.asarray(major_arcsec, dtype=float) / 3600.0) * FWHM_TO_SIGMA
    s_min = np.radians(np.asarray(minor_arcsec, dtype=float) / 3600.0) * FWHM_TO_SIGMA
    return 2.0 * np.pi ** 2 / SPEED_OF_LIGHT ** 2 * ((baselines_m @ a_maj.T) ** 2 * s_maj ** 2
                                                     + (baselines_m @ a_min.T) ** 2 * s_min ** 2)


def direct_sum(delays_s: np.ndarray, weights: np.ndarray, freqs_hz: np.ndarray, q: np.ndarray | None = None,
               iono: np.ndarray | None = None, f_ref_hz: float = 1.4e9) -> np.ndarray:
    """The reference: direct sum over sources (phasor recurrence on evenly spaced channels).

    Parameters
    ----------
    delays_s
        Shape (Nbl, Nsrc).
    weights
        Shape (Nw, Nsrc, Nchan).
    freqs_hz
        Shape (Nchan,).
    q
        Gaussian envelope coefficients (s**2), shape (Nbl, Nsrc); None for point sources.
    iono
        Ionospheric phase difference at ``f_ref_hz`` (rad), shape (Nbl, Nsrc), scaled as 1/f.
    f_ref_hz
        Reference frequency of ``iono``.

    Returns
    -------
    numpy.ndarray
        complex128, shape (Nw, Nbl, Nchan).
    """
    f = np.asarray(freqs_hz, dtype=float)
    out = np.empty((weights.shape[0], delays_s.shape[0], f.size), dtype=np.complex128)
    df = _uniform_step(f)
    qq = np.zeros_like(delays_s) if q is None else q
    if df is not None and iono is None:
        phasor = np.exp(2j * np.pi * delays_s * f[0] - qq * f[0] ** 2)
        step = np.exp(2j * np.pi * delays_s * df - qq * (2 * f[0] * df + df * df))
        ratio = np.exp(-2.0 * qq * df * df) if q is not None else None
        for c in range(f.size):
            out[:, :, c] = (phasor @ weights[:, :, c].T).T
            phasor *= step
            if ratio is not None:
                step *= ratio
        return out
    for c in range(f.size):
        arg = 2j * np.pi * delays_s * f[c] - qq * f[c] ** 2
        if iono is not None:
            arg = arg + 1j * iono * (f_ref_hz / f[c])
        out[:, :, c] = (np.exp(arg) @ weights[:, :, c].T).T
    return out


def chebyshev_fit(weights: np.ndarray, fit_tol: float = 1e-8, max_terms: int = 24):
    """Chebyshev expansion of ``weights`` along its last (channel) axis.

    A least-squares fit with ``max_terms`` terms gives the coefficients' decay; the expansion keeps the
    fewest terms ``K`` whose dropped coefficients sum (a bound of the truncation error, ``|T_n| <= 1``)
    below ``fit_tol`` times the largest weight of each weight set (first axis of a 3-D ``weights``), and
    is refitted with ``K`` terms.

    Returns
    -------
    tuple
        ``(coef, basis)``: coefficients, shape ``weights.shape[:-1] + (K,)``, and the basis ``T_n(y_c)``,
        shape (K, Nchan), ``y`` the channel index mapped onto [-1, 1].
    """
    from numpy.polynomial import chebyshev

    n = weights.shape[-1]
    y = np.linspace(-1.0, 1.0, n) if n > 1 else np.zeros(1)
    kmax = min(max_terms, n)
    lead = weights.reshape(weights.shape[0] if weights.ndim > 2 else 1, -1, n)
    scale = np.maximum(np.abs(lead).max(axis=(1, 2)), 1e-300)  # per weight set
    basis = chebyshev.chebvander(y, kmax - 1).T  # (Kmax, Nch)
    coef = lead @ np.linalg.pinv(basis)  # (Nset, Nsrc, Kmax)
    tail = np.cumsum((np.abs(coef).max(axis=1) / scale[:, None])[:, ::-1], axis=1)[:, ::-1]  # sum_{m >= k}
    ok = (tail <= fit_tol).all(axis=0)
    k = int(np.argmax(ok)) if ok.any() else kmax
    k = max(k, 1)
    if k < kmax:
        basis = basis[:k]
        coef = weights @ np.linalg.pinv(basis)
    else:
        coef = coef.reshape(weights.shape[:-1] + (kmax,))
    return coef, basis


def nufft_sum(delays_s: np.ndarray, weights: np.ndarray, freqs_hz: np.ndarray, iono: np.ndarray | None = None,
              f_ref_hz: float = 1.4e9, eps: float = 1e-9, fit_tol: float = 1e-8, nthreads: int = 1) -> np.ndarray:
    """Fast equivalent of :func:`direct_sum` for point sources on evenly spaced channels.

    Parameters
    ----------
    delays_s, weights, freqs_hz, iono, f_ref_hz
        As :func:`direct_sum` (no Gaussians); ``iono`` is linearised about the band centre.
    eps
        Requested NUFFT precision.
    fit_tol
        Relative tolerance of the Chebyshev fit of the weights along frequency.
    nthreads
        Threads of each transform.

    Returns
    -------
    numpy.ndarray
        complex128, shape (Nw, Nbl, Nchan).
    """
    import finufft

    f = np.asarray(freqs_hz, dtype=float)
    df = _uniform_step(f)
    if df is None:
        return direct_sum(delays_s, weights, f, iono=iono, f_ref_hz=f_ref_hz)
    nw, nsrc, nch = weights.shape
    nbl = delays_s.shape[0]
    out = np.empty((nw, nbl, nch), dtype=np.complex128)
    if nsrc == 0:
        out[:] = 0.0
        return out
    coef, basis = chebyshev_fit(weights, fit_tol)  # (Nw, Nsrc, K), (K, Nch)
    k = basis.shape[0]
    coef_t = np.ascontiguousarray(np.transpose(coef, (0, 2, 1)).reshape(nw * k, nsrc)).astype(np.complex128)
    plan = finufft.Plan(1, (nch,), n_trans=nw * k, eps=eps, isign=1, nthreads=nthreads)
    f_m = 0.5 * (f[0] + f[-1])
    half = nch // 2
    for b in range(nbl):
        tau = delays_s[b]
        const = 2.0 * np.pi * tau * f[0]
        if iono is not None:
            tau = tau - iono[b] * f_ref_hz / (2.0 * np.pi * f_m ** 2)
            const = 2.0 * np.pi * tau * f[0] + 2.0 * iono[b] * f_ref_hz / f_m
        x = np.mod(2.0 * np.pi * tau * df + np.pi, 2.0 * np.pi) - np.pi
        plan.setpts(x)
        modes = plan.execute(coef_t * np.exp(1j * (const + half * x))[None, :])  # (Nw*K, Nch)
        out[:, b, :] = np.einsum("wkc,kc->wc", modes.reshape(nw, k, nch), basis)
    return out


def per_antenna_sum(delays_s: np.ndarray, flux: np.ndarray, volt: np.ndarray, a1: np.ndarray, a2: np.ndarray,
                    freqs_hz: np.ndarray, q: np.ndarray | None = None, iono: np.ndarray | None = None,
                    f_ref_hz: float = 1.4e9) -> np.ndarray:
    """Exact direct sum with a different voltage beam per antenna and polarization (the reference).

    Parameters
    ----------
    delays_s
        Shape (Nbl, Nsrc).
    flux
        Intrinsic flux density, shape (Nsrc, Nchan).
    volt
        Voltage patterns, shape (Nant, Npol, Nsrc, Nchan).
    a1, a2
        Antenna index of each baseline, shape (Nbl,).
    freqs_hz, q, iono, f_ref_hz
        As :func:`direct_sum`.

    Returns
    -------
    numpy.ndarray
        complex128, shape (Nbl, Nchan, Npol).
    """
    f = np.asarray(freqs_hz, dtype=float)
    npol = volt.shape[1]
    out = np.empty((delays_s.shape[0], f.size, npol), dtype=np.complex128)
    qq = 0.0 if q is None else q
    for c in range(f.size):
        arg = 2j * np.pi * delays_s * f[c] - qq * f[c] ** 2
        if iono is not None:
            arg = arg + 1j * iono * (f_ref_hz / f[c])
        ph = np.exp(arg) * flux[None, :, c]
        for p in range(npol):
            out[:, c, p] = np.einsum("bk,bk->b", ph, volt[a1, p, :, c] * volt[a2, p, :, c])
    return out
