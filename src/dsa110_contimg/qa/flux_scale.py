"""Flux scale of one image against the master catalog's compact, bright, isolated references.

As the VAST pipeline does, the scale is the **median** of measured / catalog flux over
the references, with the error of a median of a roughly Gaussian scatter,
``1.2533 * 1.4826 * MAD / sqrt(n)`` (1.4826 MAD: the scatter; sqrt(pi/2) = 1.2533:
the median's efficiency).  The median ignores a minority of outliers (a mismatched
counterpart, a variable source, a resolved one the compactness cut missed) where a
least-squares ratio would follow them.

References are the detections crossmatched by the image QA
(:func:`~dsa110_contimg.qa.catalog_match.crossmatch_sources`) that are

* bright: fitted peak above ``snr_min`` times the local rms, catalog flux at least
  ``min_catalog_flux_jy``;
* compact: fitted area (not deconvolved) at most ``max_area_ratio`` times the
  restoring beam's, and a successful fit;
* isolated: no other detection within ``isolation_beams`` restoring-beam major axes
  and the only detection matched to its catalog source.

The measured flux is the integrated flux the QA compared (primary-beam corrected when
the QA had the pbcor image, see :attr:`~dsa110_contimg.qa.image_qa.ImageQAResult.flux_compared`),
the catalog flux NVSS at 1.4 GHz brought to the image frequency with alpha = -0.7.
The same references give the image's astrometric offset (median separation).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from ..beam import separation_deg
from .sources import MAD_TO_SIGMA

MEDIAN_EFFICIENCY = math.sqrt(math.pi / 2.0)
"""Standard error of the median over that of the mean, for Gaussian scatter."""


@dataclass
class FluxScaleOptions:
    """Options of :func:`measure_flux_scale`."""

    snr_min: float = 10.0
    """References: fitted peak over local rms at least this."""
    min_catalog_flux_jy: float = 0.01
    """References: catalog flux (at the image frequency) at least this (Jy)."""
    max_area_ratio: float = 1.5
    """References: fitted area / beam area at most this (compact)."""
    isolation_beams: float = 3.0
    """References: no other detection within this many beam major axes."""
    min_refs: int = 3
    """Fewer references than this: no ratio (None)."""
    max_deviation: float = 0.1
    """An image is marked when |ratio - 1| exceeds this."""


@dataclass
class FluxScaleResult:
    """Flux scale of one image."""

    ratio: float | None
    """Median measured / catalog flux of the references; None with fewer than ``min_refs``."""
    ratio_err: float | None
    """1-sigma error of the ratio (1.2533 x 1.4826 MAD / sqrt(n))."""
    n_refs: int
    """References used."""
    offset_arcsec: float | None
    """Median separation of the references from their catalog positions (arcsec); None with fewer than ``min_refs``."""
    marked: bool
    """|ratio - 1| above ``max_deviation``."""
    method: str = "median"
    """Estimator of the ratio."""

    def to_dict(self) -> dict:
        """Plain dict for JSON."""
        return asdict(self)


def fit_flux_ratio(measured, catalog) -> tuple[float | None, float | None, int]:
    """Robust flux ratio: median of ``measured / catalog`` and its error.

    Parameters
    ----------
    measured, catalog : array_like
        Fluxes of the same references (any unit, the same for both); pairs with a
        non-finite value or a catalog flux <= 0 are dropped.

    Returns
    -------
    tuple
        ``(ratio, error, n)``: the median, ``1.2533 * 1.4826 * MAD / sqrt(n)`` (None
        for n < 2), and the number of pairs used; ``(None, None, 0)`` when none is left.
    """
    m, c = np.asarray(measured, dtype=float), np.asarray(catalog, dtype=float)
    ok = np.isfinite(m) & np.isfinite(c) & (c > 0)
    r = m[ok] / c[ok]
    if r.size == 0:
        return None, None, 0
    med = float(np.median(r))
    if r.size < 2:
        return med, None, 1
    mad = float(np.median(np.abs(r - med)))
    return med, MEDIAN_EFFICIENCY * MAD_TO_SIGMA * mad / math.sqrt(r.size), int(r.size)


def select_references(sources, matches, bmaj_arcsec: float, bmin_arcsec: float,
                      opts: FluxScaleOptions) -> list[int]:
    """Indices of the detections that are compact, bright, isolated catalog references (see the module docstring)."""
    n = len(sources)
    if n == 0:
        return []
    ra = np.array([s.ra_deg for s in sources])
    dec = np.array([s.dec_deg for s in sources])
    ids = [m["catalog_source_id"] if m else None for m in matches]
    shared = {i for i in ids if i is not None and ids.count(i) > 1}
    iso_deg = opts.isolation_beams * bmaj_arcsec / 3600.0
    keep = []
    for i, (s, m) in enumerate(zip(sources, matches)):
        if m is None or ids[i] in shared or not s.fit_ok or s.snr < opts.snr_min:
            continue
        if not m["catalog_flux_jy"] >= opts.min_catalog_flux_jy:
            continue
        if not s.maj_arcsec * s.min_arcsec <= opts.max_area_ratio * bmaj_arcsec * bmin_arcsec:
            continue
        sep = separation_deg(s.ra_deg, s.dec_deg, ra, dec)
        sep[i] = np.inf
        if np.any(sep < iso_deg):
            continue
        keep.append(i)
    return keep


def measure_flux_scale(qa, opts: FluxScaleOptions | None = None) -> FluxScaleResult:
    """Flux scale and reference astrometry of an image from its QA.

    Parameters
    ----------
    qa : dsa110_contimg.qa.image_qa.ImageQAResult
        QA with its crossmatch (``matches``); without one, no references.
    opts
        Options (defaults of :class:`FluxScaleOptions` when None).

    Returns
    -------
    FluxScaleResult
    """
    opts = opts or FluxScaleOptions()
    refs = select_references(qa.sources, qa.matches or [None] * len(qa.sources), qa.bmaj_arcsec, qa.bmin_arcsec,
                             opts)
    measured = [qa.matches[i]["image_flux_jy"] for i in refs]
    catalog = [qa.matches[i]["catalog_flux_jy"] for i in refs]
    ratio, err, n = fit_flux_ratio(measured, catalog)
    offset = float(np.median([qa.matches[i]["catalog_sep_arcsec"] for i in refs])) if refs else None
    if n < opts.min_refs:
        ratio = err = offset = None
    marked = ratio is not None and abs(ratio - 1.0) > opts.max_deviation
    return FluxScaleResult(ratio=ratio, ratio_err=err, n_refs=n, offset_arcsec=offset, marked=marked)
