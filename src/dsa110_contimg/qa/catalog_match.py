"""Crossmatch of the detections of an image with the master catalog."""

from __future__ import annotations

import math

import numpy as np

from ..catalog.crossmatch import crossmatch
from .sources import DetectedSource


def crossmatch_sources(sources: list[DetectedSource], catalog: np.ndarray, radius_arcsec: float,
                       image_flux_jy: np.ndarray, flux_scale: float = 1.0) -> list[dict | None]:
    """Nearest catalog neighbour of each detection within ``radius_arcsec`` (the k-d tree
    :func:`~dsa110_contimg.catalog.crossmatch.crossmatch`).

    Parameters
    ----------
    sources
        Detections.
    catalog
        Structured array with ``source_id, ra_deg, dec_deg, s_nvss`` (Jy, 1.4 GHz).
    radius_arcsec
        Match radius (arcsec).
    image_flux_jy
        Flux of each detection compared with the catalog (integrated, pb-corrected
        when available).
    flux_scale
        Factor bringing ``s_nvss`` to the image frequency.

    Returns
    -------
    list
        Per detection None or a dict: ``catalog_source_id``, ``catalog_sep_arcsec``,
        ``catalog_flux_jy`` (at the image frequency), ``catalog_s14_jy``,
        ``image_flux_jy``, ``flux_ratio`` (image / catalog, NaN if catalog flux <= 0),
        ``dra_arcsec``, ``ddec_arcsec`` (image - catalog, RA times cos dec).  A catalog
        source may be the counterpart of several detections.
    """
    out: list[dict | None] = [None] * len(sources)
    if not len(sources) or catalog is None or not len(catalog):
        return out
    cra, cdec = catalog["ra_deg"], catalog["dec_deg"]
    match = crossmatch([s.ra_deg for s in sources], [s.dec_deg for s in sources], cra, cdec, radius_arcsec)
    for i, s in enumerate(sources):
        j = int(match.index[i])
        if j < 0:
            continue
        dra = ((s.ra_deg - cra[j] + 180.0) % 360.0 - 180.0) * math.cos(math.radians(s.dec_deg)) * 3600.0
        cat_flux = float(catalog["s_nvss"][j]) * flux_scale
        img = float(image_flux_jy[i])
        out[i] = {"catalog_source_id": int(catalog["source_id"][j]), "catalog_sep_arcsec": float(match.sep_arcsec[i]),
                  "catalog_flux_jy": cat_flux, "catalog_s14_jy": float(catalog["s_nvss"][j]),
                  "image_flux_jy": img, "flux_ratio": img / cat_flux if cat_flux > 0 else float("nan"),
                  "dra_arcsec": float(dra), "ddec_arcsec": float((s.dec_deg - cdec[j]) * 3600.0)}
    return out
