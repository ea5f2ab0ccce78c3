"""Photometry of one image (worker side): forced fluxes of the known and catalog sources inside the 20% beam
contour, association of the image's blind detections, new sources and their earlier upper limits.

:func:`photometer_image` reads what it needs of the products database through a
:class:`~.models.SurveyReader` (the survey's sources, the image's detections, the earlier
photometered images; the pipeline stage hands it one over a read-only connection) and the
master catalog, and returns a :class:`~.models.PhotometryResult`; only the daemon writes
(:func:`dsa110_contimg.db.sources.record_photometry`).
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import numpy as np

from ..errors import ContimgError
from . import kernels as k
from .image import PhotImage, footprint, load_image, measure, pb_at
from .models import ImageRun, Measurement, NewSource, PhotometryOptions, PhotometryResult, SurveyReader

log = logging.getLogger(__name__)


class PhotometryError(ContimgError, RuntimeError):
    """Photometry cannot run on an image; the message names the image or MS."""


def image_run(image_row, pbcor_path: str | Path, info, group_id: str, img: PhotImage) -> ImageRun:
    """The :class:`~.models.ImageRun` of an image from its ``images`` row, its MS's ``MSInfo`` and pixels."""
    from ..qa.sources import robust_rms

    dec_rad, lon_rad = info.pointing()
    ra0, dec0, radius = footprint(img)
    t = info.times_mjd
    rms = image_row.noise_jy if image_row.noise_jy else robust_rms(img.raw)
    return ImageRun(image_id=int(image_row.id), group_id=group_id, ms_path=str(image_row.ms_path),
                    image_path=str(image_row.path), pbcor_path=str(pbcor_path), mid_mjd=float(info.mid_mjd),
                    first_time_mjd=float(t[0]), last_time_mjd=float(t[-1]), n_times=int(t.size),
                    pointing_dec_deg=math.degrees(dec_rad), fringestop_lon_deg=math.degrees(lon_rad),
                    freq_min_hz=float(info.freqs_hz.min()), freq_max_hz=float(info.freqs_hz.max()), ra_deg=ra0,
                    dec_deg=dec0, radius_deg=radius, rms_jy=float(rms), beam_major_arcsec=img.bmaj_arcsec,
                    beam_minor_arcsec=img.bmin_arcsec, beam_pa_deg=img.bpa_deg)


def _catalog(catalog_path, ra, dec, radius, min_flux):
    from ..catalog.query import cone_search

    if catalog_path is None or not Path(catalog_path).is_file():
        return None
    return cone_search(catalog_path, ra, dec, radius, columns=("source_id", "ra_deg", "dec_deg", "s_nvss"),
                       min_flux_jy=min_flux)


def photometer_image(reader: SurveyReader, image_row, pbcor_path: str | Path, info, group_id: str,
                     catalog_path: Path | None = None, opts: PhotometryOptions | None = None) -> PhotometryResult:
    """Forced photometry and association on one image.

    Parameters
    ----------
    reader
        What the products database holds (read-only).
    image_row
        The restored image's row (``id``, ``path``, ``ms_path``, ``noise_jy``, as
        :class:`~dsa110_contimg.db.products.ImageRecord`); its detections are read.
    pbcor_path
        Its primary-beam-corrected FITS.
    info
        :class:`~dsa110_contimg.ms.MSInfo` of its MS (times, band, pointing).
    group_id
        Queue group.
    catalog_path
        Master catalog (None or missing: no catalog sources, no counterparts).
    opts
        Options (defaults when None).
    """
    opts = opts or PhotometryOptions()
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    img = load_image(image_row.path, pbcor_path)
    run = image_run(image_row, pbcor_path, info, group_id, img)
    sys_err = opts.astrometric_sys_arcsec if opts.astrometric_sys_arcsec is not None else 0.1 * img.bmaj_arcsec
    cap = opts.cap_beams * img.bmaj_arcsec
    timings["read"] = time.perf_counter() - t0

    snapshot = reader.max_source_id()
    known = reader.sources_in_cone(run.ra_deg, run.dec_deg, run.radius_deg + cap / 3600.0)
    known = {**known, "ra_err_arcsec": _err(known["ra_err_arcsec"], sys_err),
             "dec_err_arcsec": _err(known["dec_err_arcsec"], sys_err)}
    cat = _catalog(catalog_path, run.ra_deg, run.dec_deg, run.radius_deg, opts.catalog_min_flux_jy)
    seeds = _seeds(cat, known, run, opts, cap)
    dets = list(reader.detections(run.image_id))
    dpb = pb_at(run, [d.ra_deg for d in dets], [d.dec_deg for d in dets])
    dets = [d for d, p in zip(dets, dpb) if p >= opts.pb_min]
    timings["select"] = time.perf_counter() - t0 - timings["read"]

    # candidates: the known sources, then the catalog seeds
    c_ra = np.concatenate([known["ra_deg"], seeds["ra_deg"]])
    c_dec = np.concatenate([known["dec_deg"], seeds["dec_deg"]])
    c_err = np.full(len(seeds["ra_deg"]), sys_err)
    c_era = np.concatenate([known["ra_err_arcsec"], c_err])
    c_edec = np.concatenate([known["dec_err_arcsec"], c_err])
    d_ra, d_dec = np.array([d.ra_deg for d in dets], float), np.array([d.dec_deg for d in dets], float)
    d_era = _err(np.array([d.ra_err_arcsec if d.ra_err_arcsec is not None else np.nan for d in dets], float), sys_err)
    d_edec = _err(np.array([d.dec_err_arcsec if d.dec_err_arcsec is not None else np.nan for d in dets], float),
                  sys_err)
    assoc = k.associate(d_ra, d_dec, d_era, d_edec, c_ra, c_dec, c_era, c_edec, opts.de_ruiter_radius, cap)
    unmatched = np.flatnonzero(assoc.source < 0)
    timings["associate"] = time.perf_counter() - t0 - sum(timings.values())

    # one forced fit of everything (blends together): candidates, then the unmatched detections
    nk = len(known["id"])
    p_ra, p_dec = np.concatenate([c_ra, d_ra[unmatched]]), np.concatenate([c_dec, d_dec[unmatched]])
    forced = measure(img, run, p_ra, p_dec, opts, run.rms_jy)
    timings["forced"] = time.perf_counter() - t0 - sum(timings.values())

    by_cand = {int(assoc.source[i]): i for i in range(len(dets)) if assoc.source[i] >= 0}
    measurements: list[Measurement] = []
    new_sources: list[NewSource] = []
    for j in np.flatnonzero(forced.ok[:len(c_ra)]):
        j = int(j)
        if j < nk:
            ref = {"source_id": int(known["id"][j])}
        else:
            s = j - nk
            ref = {"new_index": len(new_sources)}
            new_sources.append(NewSource(float(c_ra[j]), float(c_dec[j]), sys_err, sys_err, "catalog",
                                         int(seeds["source_id"][s]), float(seeds["sep_arcsec"][s]),
                                         float(seeds["s_nvss"][s])))
        det = {}
        if j in by_cand:
            i = by_cand[j]
            det = _det_fields(dets[i], d_era[i], d_edec[i], forced.pb[j], assoc, i)
        measurements.append(_measurement(run, forced, j, p_ra, p_dec, **ref, **det))
    timings["build"] = time.perf_counter() - t0 - sum(timings.values())

    todo = [(len(c_ra) + u, int(i)) for u, i in enumerate(unmatched) if forced.ok[len(c_ra) + u]]
    prevs = _backfill(reader, run, [(float(d_ra[i]), float(d_dec[i])) for _, i in todo], opts, len(new_sources))
    for (j, i), prev in zip(todo, prevs):
        d = dets[i]
        cid, csep, cflux = _counterpart(catalog_path, d, cap)
        sig = k.new_significance(float(forced.flux_jy[j]), float(forced.err_jy[j]), [m.flux_jy for m in prev],
                                 [m.flux_err_jy for m in prev])
        measurements.append(_measurement(run, forced, j, p_ra, p_dec, new_index=len(new_sources),
                                         **_det_fields(d, d_era[i], d_edec[i], forced.pb[j], assoc, int(i))))
        measurements.extend(prev)
        new_sources.append(NewSource(float(d_ra[i]), float(d_dec[i]), float(d_era[i]), float(d_edec[i]), "detection",
                                     cid, csep, cflux, None if math.isnan(sig) else sig, len(prev)))
    timings["new_sources"] = time.perf_counter() - t0 - sum(timings.values())
    timings["total"] = time.perf_counter() - t0
    n_amb = sum(1 for o in assoc.others if o)
    log.info("photometry of group %s: %d measurements, %d detections (%d associated, %d ambiguous), %d new sources "
             "in %.2f s", group_id, len(measurements), len(dets), len(by_cand), n_amb, len(new_sources),
             timings["total"])
    return PhotometryResult(run, tuple(measurements), tuple(new_sources), snapshot, cap, len(dets), len(by_cand),
                            n_amb, timings)


def _err(e, sys_err: float) -> np.ndarray:
    """Position errors with the systematic added in quadrature (unknown: the systematic alone)."""
    e = np.asarray(e, dtype=float)
    return np.hypot(np.where(np.isfinite(e), e, 0.0), sys_err)


def _seeds(cat, known: dict, run: ImageRun, opts: PhotometryOptions, cap: float) -> dict:
    """Catalog sources to measure that are not survey sources yet (none within the cap of a known source)."""
    empty = {"ra_deg": np.empty(0), "dec_deg": np.empty(0), "source_id": np.empty(0, np.int64),
             "s_nvss": np.empty(0), "sep_arcsec": np.empty(0)}
    if cat is None or not len(cat):
        return empty
    keep = ~np.isin(cat["source_id"], known["catalog_source_id"])
    keep &= pb_at(run, cat["ra_deg"], cat["dec_deg"]) >= opts.pb_min
    if len(known["id"]) and keep.any():
        from ..catalog.crossmatch import crossmatch

        m = crossmatch(cat["ra_deg"], cat["dec_deg"], known["ra_deg"], known["dec_deg"], cap)
        keep &= m.index < 0
    c = cat[keep]
    return {"ra_deg": c["ra_deg"], "dec_deg": c["dec_deg"], "source_id": c["source_id"], "s_nvss": c["s_nvss"],
            "sep_arcsec": np.zeros(len(c))}


def _counterpart(catalog_path, det, cap: float):
    """Nearest master-catalog source (any flux) within the cap of a detection, else the QA's match, else None."""
    rows = _catalog(catalog_path, det.ra_deg, det.dec_deg, cap / 3600.0, None)
    if rows is not None and len(rows):
        return int(rows["source_id"][0]), float(rows["sep_deg"][0] * 3600.0), float(rows["s_nvss"][0])
    if det.catalog_source_id is not None:
        return int(det.catalog_source_id), det.catalog_sep_arcsec, det.catalog_flux_jy
    return None, None, None


def _note(assoc, i: int) -> str:
    parts = []
    if assoc.others[i]:
        parts.append(f"also matched {len(assoc.others[i])} other source(s); went to the nearer")
    if assoc.taken[i]:
        parts.append(f"its {len(assoc.taken[i])} match(es) went to nearer detections")
    return "; ".join(parts)


def _det_fields(d, era: float, edec: float, pb: float, assoc, i: int) -> dict:
    sep, dr = assoc.sep_arcsec[i], assoc.de_ruiter[i]
    return {"kind": "detection", "detection_id": d.id, "det_ra_deg": float(d.ra_deg), "det_dec_deg": float(d.dec_deg),
            "det_ra_err_arcsec": float(era), "det_dec_err_arcsec": float(edec),
            "det_flux_jy": float(d.peak_jy / pb) if d.peak_jy is not None and pb > 0 else None,
            "sep_arcsec": None if math.isnan(sep) else float(sep), "de_ruiter": None if math.isnan(dr) else float(dr),
            "note": _note(assoc, i)}


def _measurement(run: ImageRun, forced, j: int, ra, dec, **kw) -> Measurement:
    return Measurement(image_id=run.image_id, mjd=run.mid_mjd, flux_jy=float(forced.flux_jy[j]),
                       flux_err_jy=float(forced.err_jy[j]), local_rms_jy=float(forced.local_rms_jy[j]),
                       pb=float(forced.pb[j]), ra_deg=float(ra[j]), dec_deg=float(dec[j]), **kw)


def _backfill(reader: SurveyReader, run: ImageRun, positions: list[tuple[float, float]], opts: PhotometryOptions,
              first_index: int) -> list[list[Measurement]]:
    """Forced fluxes of new sources (``positions``, new indices from ``first_index``) in the earlier images that
    covered each (their FITS still on disk), most recent first: each image is opened once and all the positions
    it covers are measured together."""
    covering = [reader.earlier_images(ra, dec, run.mid_mjd, opts.backfill_images) for ra, dec in positions]
    by_image: dict[int, tuple[ImageRun, list[int]]] = {}
    for p, runs in enumerate(covering):
        for prev in runs:
            by_image.setdefault(prev.image_id, (prev, []))[1].append(p)
    found: dict[tuple[int, int], Measurement] = {}
    for image_id, (prev, ps) in by_image.items():
        try:
            img = load_image(prev.image_path, prev.pbcor_path)
        except (OSError, ValueError) as exc:
            log.warning("earlier image %s cannot be read for backfill: %s", prev.image_path, exc)
            continue
        ra, dec = [positions[p][0] for p in ps], [positions[p][1] for p in ps]
        f = measure(img, prev, ra, dec, opts, prev.rms_jy)
        for q, p in enumerate(ps):
            if f.ok[q]:
                found[(p, image_id)] = _measurement(prev, f, q, ra, dec, new_index=first_index + p, backfilled=True)
    return [[found[(p, r.image_id)] for r in runs if (p, r.image_id) in found] for p, runs in enumerate(covering)]
