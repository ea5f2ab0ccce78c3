"""Assemble the master catalog's ``sources`` columns from the survey tables (pure numpy, no I/O).

NVSS positions define the sources; VLASS and FIRST counterparts come from
:func:`~dsa110_contimg.catalog.crossmatch.crossmatch` within the match radius.
"""

from __future__ import annotations

import logging

import numpy as np

from . import schema
from .crossmatch import (NVSS_FREQ_HZ, VLASS_FREQ_HZ, crossmatch, dec_band, position_ids, resolved_flag,
                         spectral_index, spectral_index_error, take, vlass_clean_mask, vlass_ql_corrected)
from .errors import CatalogError
from .readers import SurveyTable

log = logging.getLogger(__name__)


def assemble_sources(nvss: SurveyTable, vlass: SurveyTable | None, first: SurveyTable | None,
                     opts) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Crossmatch and derive every column of ``sources`` (pure numpy, no I/O).

    ``opts`` is the :class:`~dsa110_contimg.catalog.build_master.BuildMasterOptions` of the build
    (match radius, VLASS QL scale, resolved threshold).

    Returns
    -------
    columns : dict
        Column name -> array, sorted by ``source_id``; NaN means NULL.
    counts : dict
        ``n_dropped``, ``n_vlass_clean``.
    """
    c = nvss.columns
    s = c["flux"]
    keep = np.isfinite(c["ra"]) & np.isfinite(c["dec"]) & np.isfinite(s)
    ra, dec = c["ra"][keep], c["dec"][keep]
    n = len(ra)
    if n == 0:
        raise CatalogError(f"{nvss.path}: no NVSS row has a position and a flux")
    ids = position_ids(ra, dec)
    order = np.argsort(ids, kind="stable")
    ids_sorted = ids[order]
    unique = np.ones(n, dtype=bool)
    unique[1:] = ids_sorted[1:] != ids_sorted[:-1]
    rows = np.flatnonzero(keep)[order[unique]]  # NVSS rows used, sorted by id
    n_dropped = nvss.n_rows - len(rows)
    if n - len(rows):
        log.warning("NVSS: %d rows share a position (0.1 arcsec) with another row; kept the first", n - len(rows))
    ra, dec = c["ra"][rows], c["dec"][rows]
    m = len(rows)

    def nv(key):
        return c[key][rows] if key in c else np.full(m, np.nan)

    e_s = nv("flux_err")
    with np.errstate(divide="ignore", invalid="ignore"):
        snr = np.where(e_s > 0, nv("flux") / e_s, np.nan)
    out = {"source_id": ids_sorted[unique], "ra_deg": ra, "dec_deg": dec,
           "dec_band": dec_band(dec, schema.DEC_BAND_DEG), "s_nvss": nv("flux"), "e_s_nvss": e_s,
           "snr_nvss": snr, "nvss_maj_arcsec": nv("maj"), "nvss_min_arcsec": nv("min")}
    nan = np.full(m, np.nan)
    n_vlass_clean = 0
    if vlass is not None:
        v = vlass.columns
        clean = vlass_clean_mask(v.get("duplicate_flag"), v.get("quality_flag"))
        clean &= np.isfinite(v["ra"]) & np.isfinite(v["dec"]) & np.isfinite(v["flux"])
        n_vlass_clean = int(clean.sum())
        vc = {k: a[clean] for k, a in v.items()}
        mv = crossmatch(ra, dec, vc["ra"], vc["dec"], opts.match_radius_arcsec)
        corr = vlass_ql_corrected(vc["flux"], vc.get("peak"), opts.vlass_ql_scale)
        out.update(s_vlass=take(vc["flux"], mv.index), e_s_vlass=take(vc.get("flux_err", nan[:0]), mv.index),
                   s_vlass_peak=take(vc.get("peak", nan[:0]), mv.index), s_vlass_corr=take(corr, mv.index),
                   vlass_dc_maj_arcsec=take(vc.get("dc_maj", nan[:0]), mv.index),
                   vlass_sep_arcsec=mv.sep_arcsec, n_vlass=mv.n_within)
    else:
        out.update(s_vlass=nan, e_s_vlass=nan, s_vlass_peak=nan, s_vlass_corr=nan, vlass_dc_maj_arcsec=nan,
                   vlass_sep_arcsec=nan, n_vlass=np.zeros(m, dtype=np.int64))
    if first is not None:
        f = first.columns
        ok = np.isfinite(f["ra"]) & np.isfinite(f["dec"])
        fc = {k: a[ok] for k, a in f.items()}
        mf = crossmatch(ra, dec, fc["ra"], fc["dec"], opts.match_radius_arcsec)
        out.update(s_first_peak=take(fc.get("fpeak", nan[:0]), mf.index),
                   s_first_int=take(fc.get("fint", nan[:0]), mf.index),
                   first_maj_arcsec=take(fc["maj"], mf.index), first_min_arcsec=take(fc.get("min", nan[:0]), mf.index),
                   first_sep_arcsec=mf.sep_arcsec, n_first=mf.n_within)
    else:
        out.update(s_first_peak=nan, s_first_int=nan, first_maj_arcsec=nan, first_min_arcsec=nan,
                   first_sep_arcsec=nan, n_first=np.zeros(m, dtype=np.int64))
    out["alpha"] = spectral_index(out["s_nvss"], NVSS_FREQ_HZ, out["s_vlass_corr"], VLASS_FREQ_HZ)
    out["e_alpha"] = spectral_index_error(out["s_nvss"], e_s, NVSS_FREQ_HZ, out["s_vlass_corr"],
                                          out["e_s_vlass"] / np.where(out["s_vlass"] > 0, out["s_vlass"], np.nan)
                                          * out["s_vlass_corr"], VLASS_FREQ_HZ)
    flag, src = resolved_flag(out["first_maj_arcsec"], out["vlass_dc_maj_arcsec"], opts.resolved_maj_arcsec)
    out["resolved_flag"] = np.where(flag < 0, np.nan, flag.astype(float))
    out["size_source"] = src
    out["confusion_flag"] = ((out["n_vlass"] > 1) | (out["n_first"] > 1)).astype(np.int64)
    return out, {"n_dropped": int(n_dropped), "n_vlass_clean": n_vlass_clean}
