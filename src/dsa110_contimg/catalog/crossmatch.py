"""Numerical kernels of the master catalog: the crossmatch (k-d tree), spectral index, flags.

All functions are pure numpy (plus a scipy k-d tree for the crossmatch) and
take degrees / Jy / arcsec.  :func:`crossmatch` is the package's one crossmatch:
the catalog build and image QA both use it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..beam import separation_deg

NVSS_FREQ_HZ = 1.4e9
"""NVSS observing frequency (Hz)."""
VLASS_FREQ_HZ = 3.0e9
"""VLASS observing frequency (Hz)."""
VLASS_QL_PEAK_THRESHOLD_JY = 3e-3
"""VLASS Quick Look epoch 1 fluxes are ~15% low above this peak flux density (Jy/beam)."""


def radec_to_xyz(ra_deg, dec_deg) -> np.ndarray:
    """Unit vectors (n, 3) of directions given in degrees."""
    ra = np.radians(np.asarray(ra_deg, dtype=float))
    dec = np.radians(np.asarray(dec_deg, dtype=float))
    cd = np.cos(dec)
    return np.stack([cd * np.cos(ra), cd * np.sin(ra), np.sin(dec)], axis=-1)


@dataclass
class Match:
    """Nearest counterpart in catalog 2 of every source of catalog 1."""

    index: np.ndarray
    """Row of the nearest counterpart within the radius, -1 when none."""
    sep_arcsec: np.ndarray
    """Separation to it (arcsec), NaN when none."""
    n_within: np.ndarray
    """Number of catalog-2 rows within the radius."""


def crossmatch(ra1, dec1, ra2, dec2, radius_arcsec: float, workers: int = -1) -> Match:
    """Match every direction of catalog 1 to its nearest neighbour in catalog 2.

    Parameters
    ----------
    ra1, dec1 : array_like
        Catalog 1 (deg).
    ra2, dec2 : array_like
        Catalog 2 (deg).
    radius_arcsec
        Match radius (arcsec).
    workers
        Threads of the k-d tree queries (-1: all cores).

    Returns
    -------
    Match
        Nearest counterpart, its separation, and the number of counterparts within the radius.
    """
    from scipy.spatial import cKDTree

    n1 = len(ra1)
    if n1 == 0 or len(ra2) == 0:
        return Match(np.full(n1, -1, dtype=np.int64), np.full(n1, np.nan), np.zeros(n1, dtype=np.int64))
    xyz1 = radec_to_xyz(ra1, dec1)
    tree = cKDTree(radec_to_xyz(ra2, dec2), balanced_tree=False, compact_nodes=False)
    chord = 2.0 * np.sin(np.radians(radius_arcsec / 3600.0) / 2.0)
    dist, idx = tree.query(xyz1, k=1, distance_upper_bound=chord, workers=workers)
    found = np.isfinite(dist)
    index = np.where(found, idx, -1).astype(np.int64)
    sep = np.full(n1, np.nan)
    j = index[found]
    sep[found] = separation_deg(np.asarray(ra1)[found], np.asarray(dec1)[found],
                                np.asarray(ra2)[j], np.asarray(dec2)[j]) * 3600.0
    n_within = np.zeros(n1, dtype=np.int64)
    if found.any():  # count only where there is at least one counterpart
        n_within[found] = tree.query_ball_point(xyz1[found], chord, return_length=True, workers=workers)
    return Match(index, sep, n_within)


def take(values: np.ndarray, index: np.ndarray, fill=np.nan) -> np.ndarray:
    """``values[index]`` with ``fill`` where ``index`` is -1."""
    values = np.asarray(values)
    if len(values) == 0:
        return np.full(len(index), fill)
    out = values[np.clip(index, 0, len(values) - 1)]
    if out.dtype.kind in "iub" and isinstance(fill, float):
        out = out.astype(float)
    return np.where(index >= 0, out, fill)


def spectral_index(s1, nu1: float, s2, nu2: float) -> np.ndarray:
    """Two-point spectral index ``alpha`` with ``S ~ nu**alpha``; NaN where a flux is missing or <= 0."""
    s1 = np.asarray(s1, dtype=float)
    s2 = np.asarray(s2, dtype=float)
    ok = (s1 > 0) & (s2 > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ok, np.log(np.where(ok, s2 / s1, 1.0)) / np.log(nu2 / nu1), np.nan)


def spectral_index_error(s1, e1, nu1: float, s2, e2, nu2: float) -> np.ndarray:
    """First-order uncertainty of :func:`spectral_index` from the flux errors (NaN where unknown)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.hypot(np.asarray(e1, float) / np.asarray(s1, float), np.asarray(e2, float) / np.asarray(s2, float))
    return np.abs(rel / np.log(nu2 / nu1))


def vlass_clean_mask(duplicate_flag, quality_flag) -> np.ndarray:
    """VLASS Quick Look clean subset: ``Duplicate_flag < 2`` and ``Quality_flag`` in {0, 4}.

    Either argument may be ``None`` (column absent): that criterion is then not applied.
    Missing (NaN) flag values fail the cut.
    """
    n = len(duplicate_flag) if duplicate_flag is not None else len(quality_flag)
    ok = np.ones(n, dtype=bool)
    if duplicate_flag is not None:
        ok &= np.asarray(duplicate_flag, float) < 2
    if quality_flag is not None:
        q = np.asarray(quality_flag, float)
        ok &= (q == 0) | (q == 4)
    return ok


def vlass_ql_corrected(total_jy, peak_jy, ql_scale: float) -> np.ndarray:
    """Correct VLASS QL epoch 1 integrated fluxes for their known low bias.

    Fluxes of components whose peak exceeds 3 mJy/beam are divided by ``ql_scale``
    (0.85: catalogued fluxes ~15% low); fainter ones are left as catalogued.
    Without a peak column the integrated flux stands in for it.
    """
    total = np.asarray(total_jy, dtype=float)
    peak = total if peak_jy is None else np.asarray(peak_jy, dtype=float)
    return np.where(peak > VLASS_QL_PEAK_THRESHOLD_JY, total / ql_scale, total)


def resolved_flag(first_maj_arcsec, vlass_dc_maj_arcsec, threshold_arcsec: float) -> tuple[np.ndarray, np.ndarray]:
    """Compactness flag from deconvolved major axes.

    FIRST's deconvolved size decides where a FIRST counterpart exists; VLASS's
    (``DC_Maj``) is the fallback elsewhere.  Sources without either are unknown.

    Returns
    -------
    flag : numpy.ndarray
        1 resolved (size > threshold), 0 compact, -1 unknown.
    source : numpy.ndarray
        0 unknown, 1 from FIRST, 2 from VLASS.
    """
    fm = np.asarray(first_maj_arcsec, dtype=float)
    vm = np.asarray(vlass_dc_maj_arcsec, dtype=float)
    has_f = np.isfinite(fm)
    has_v = np.isfinite(vm) & ~has_f
    flag = np.full(fm.shape, -1, dtype=np.int64)
    flag[has_f] = (fm[has_f] > threshold_arcsec).astype(np.int64)
    flag[has_v] = (vm[has_v] > threshold_arcsec).astype(np.int64)
    source = np.where(has_f, 1, np.where(has_v, 2, 0)).astype(np.int64)
    return flag, source


def position_ids(ra_deg, dec_deg) -> np.ndarray:
    """Stable integer ids from positions quantised to 0.1 arcsec (dec-major, then RA).

    ``id = round((dec + 90) * 36000) * 13_000_000 + round(ra * 36000)``; the same
    NVSS position gives the same id in every rebuild, and ids sort by declination.
    """
    dq = np.rint((np.asarray(dec_deg, float) + 90.0) * 36000.0).astype(np.int64)
    rq = np.rint(np.mod(np.asarray(ra_deg, float), 360.0) * 36000.0).astype(np.int64) % 12_960_000
    return dq * 13_000_000 + rq


def dec_band(dec_deg, band_deg: float) -> np.ndarray:
    """Declination band number ``floor((dec + 90) / band_deg)`` of the position index."""
    return np.floor((np.asarray(dec_deg, float) + 90.0) / band_deg).astype(np.int64)
