"""Benchmark of survey science at scale: photometry + association per image, and the sources API under load.

Builds a products database as about three weeks of the survey leave it: ``--sources``
(100,000) sources spread uniformly over the declination strip of the 20% primary-beam
contour at ``--dec`` (55 deg), and ``--measurements`` (10 million) measurements in
``photometry_images`` rows at the group cadence (each source measured by the ~6 groups a
day whose contour covers it, ~100 times in all; fluxes, errors, beam attenuations and
detections from a noise model; 2% of the sources variable), in the real schema (made
by the package's ``db.products.connect``), filled through SQLite directly.  A master
catalog of the catalog-origin sources is built with the package's builder.

(a) Photometry: ``--images`` (5) new consecutive groups are synthesised at full size
(``--imsize`` 4600 px of 4", the restoring beam, beam-correlated noise, the database's
sources as point sources at their positions times the drift-scan beam, 3 new transients
per image), their pb-corrected twins written with ``imaging.fits_products.write_pbcor``,
their rows and QA detections recorded, then each is photometered as the stage does it:
``photometry.measure.photometer_image`` over the stage's read-only reader (the worker),
then ``db.sources.record_photometry`` (the daemon), one image after the other.  The
transients are new sources, backfilled in the earlier images that covered them: the FITS
of those database images are written first (the other database images have no files).
Target: at most 2 s per image (worker + daemon, wall clock; CPU seconds shown too) on 2 cores.

(b) API: ``uvicorn dsa110_contimg.api:app`` is started on the built state folder (answer
cache off unless ``--cache-s``, e.g. ``--cache-s 0 1`` for both) and driven open loop (request ``i`` starts at
``i / rate`` whether or not earlier ones answered; asyncio tasks on keep-alive
connections) for ``--duration`` s at ``--rate`` (100) requests/s on ``/api/sources`` with the
dashboard's parameter mix (orders, flags, thresholds, random pages), then as long on
``/api/sources/{id}`` for random ids.  Target: p99 < 50 ms each.

``--with-indices`` first creates :data:`PROPOSED_INDICES`, which no migration makes, to
measure what they would change (labelled so in the output).

Usage::

    .venv/bin/python benchmarks/bench_sources.py [--sources 100000] [--measurements 10000000] [--images 5]
        [--imsize 4600] [--rate 100] [--duration 10] [--with-indices] [--workdir DIR] [--keep] [--json PATH]
    .venv/bin/python benchmarks/bench_sources.py --sources 2000 --measurements 100000   # quick (2000 px images)

Exit status 0 whether or not the targets are met; 1 when the server does not start or
more than 1% of the requests fail.  Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

import numpy as np

from bench_api import _cpu_s, serve, stop

TARGET_S_PER_IMAGE = 2.0
TARGET_P99_MS = 50.0
MJD0 = 60950.0
"""Mid-time of the first photometered group in the database."""
BMAJ_ARCSEC, BMIN_ARCSEC, BPA_DEG = 25.0, 12.0, 0.0
"""Restoring beam of the synthetic images (as the full-size groups of bench_api)."""
RMS_JY = 8e-4
"""Noise of a restored (apparent) image, Jy/beam."""
N_INT = 24
"""Integrations per group."""
PB_MIN = 0.2
"""The photometry's contour (PhotometryOptions.pb_min)."""
PROPOSED_INDICES = [
    ("idx_measurements_pairs", "measurements", "source_id, image_id, flux_jy, flux_err_jy"),
]
"""Indices no migration makes, created by ``--with-indices`` to measure with them: a covering index of the earlier
fluxes the daemon reads for each source an image measured (otherwise one table row per earlier measurement; it
would cost about 0.4 GB at 10 million measurements, and the daemon's step is within its budget without it)."""


def _iso(mjd: float) -> str:
    from dsa110_contimg.timeconv import mjd_to_datetime

    return mjd_to_datetime(mjd).isoformat(timespec="seconds")


def group_info(mid_mjd: float, dec_deg: float, ms_path: Path):
    """An :class:`~dsa110_contimg.ms.MSInfo` of a full-size group (24 integrations, 768 channels) centred on
    ``mid_mjd`` at pointing declination ``dec_deg``: what the stage reads from the group's MS."""
    from astropy.time import Time

    from dsa110_contimg.ms import MSInfo
    from dsa110_contimg.simulate.presets import CHANNEL_WIDTH_HZ, N_SUBBANDS, subband_frequencies
    from dsa110_contimg.telescope import FRINGESTOP_LON_DEG, INTEGRATION_S, TELESCOPE_NAME

    t = mid_mjd + (np.arange(N_INT) - (N_INT - 1) / 2) * INTEGRATION_S / 86400.0
    freqs = np.sort(np.concatenate([subband_frequencies(sb) for sb in range(N_SUBBANDS)]))
    return MSInfo(path=ms_path, times=Time(t, format="mjd", scale="utc"), integration_s=INTEGRATION_S,
                  freqs_hz=freqs, channel_width_hz=CHANNEL_WIDTH_HZ, field_names=("meridian",),
                  field_dirs_rad=np.zeros((1, 2)), pointing_dec_rad=math.radians(dec_deg),
                  fringestop_lon_rad=math.radians(FRINGESTOP_LON_DEG), telescope=TELESCOPE_NAME, n_rows=0,
                  n_antennas=117, n_pols=2, corrected_is_calibrated=True, calibration_set="bench")


class Beam:
    """The drift-scan beam of a group about its meridian centre (the same for every group of the strip),
    tabulated once with the package's ``drift_scan_pb`` and interpolated: ``pb(dx_sky, dy)`` in degrees."""

    def __init__(self, dec_deg: float):
        from scipy.interpolate import RegularGridInterpolator

        from dsa110_contimg.geometry import meridian_j2000
        from dsa110_contimg.imaging.fits_products import drift_scan_pb

        info = group_info(MJD0, dec_deg, Path("beam.ms"))
        ra_c, dec_c = np.degrees(meridian_j2000(info.pointing_dec_rad, [info.mid_mjd], info.fringestop_lon_rad)[0])
        self.dec_c = float(dec_c)
        self.ra_offset = float((ra_c - self.lst_deg(info.mid_mjd)) % 360.0)
        g = np.linspace(-5.0, 5.0, 201)
        yy, xx = np.meshgrid(g, g, indexing="ij")
        pb = drift_scan_pb(ra_c + xx / np.cos(np.radians(dec_c + yy)), dec_c + yy, info)
        self._interp = RegularGridInterpolator((g, g), pb, bounds_error=False, fill_value=0.0)
        inside = pb >= PB_MIN
        self.r_dec = float(np.abs(yy[inside]).max()) + 0.05
        self.r_ra = float(np.abs(xx[inside]).max()) + 0.05

    @staticmethod
    def lst_deg(mjd):
        """Sidereal angle (deg) at ``mjd`` up to a constant: the meridian RA moves at the sidereal rate."""
        from dsa110_contimg.geometry import SIDEREAL_DEG_PER_DAY

        return (np.asarray(mjd, float) - MJD0) * SIDEREAL_DEG_PER_DAY % 360.0

    def centre_ra(self, mjd):
        """J2000 RA (deg) of the meridian centre of a group at ``mjd``."""
        return (self.lst_deg(mjd) + self.ra_offset) % 360.0

    def pb(self, dx_sky, dy):
        """Beam attenuation at offsets (deg) from a group's centre."""
        return self._interp(np.stack([np.asarray(dy, float), np.asarray(dx_sky, float)], axis=-1))


# --------------------------------------------------------------------------- the database


def _insert(conn: sqlite3.Connection, table: str, cols: list[str], rows) -> None:
    conn.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", rows)


def _rows(*cols) -> list[tuple]:
    """Row tuples from column arrays (NaN -> NULL)."""
    out = []
    for c in cols:
        a = np.asarray(c)
        if a.dtype.kind == "f":
            lst = a.tolist()
            out.append([None if v != v else v for v in lst] if np.isnan(a).any() else lst)
        else:
            out.append(a.tolist())
    return list(zip(*out))


def make_sky(n: int, beam: Beam, rng) -> dict[str, np.ndarray]:
    """Sources uniform on the sphere over the strip of the contour, NVSS-like fluxes, 2% variable."""
    lo, hi = np.radians(beam.dec_c - beam.r_dec), np.radians(beam.dec_c + beam.r_dec)
    dec = np.degrees(np.arcsin(rng.uniform(np.sin(lo), np.sin(hi), n)))
    ra = rng.uniform(0.0, 360.0, n)
    order = np.argsort(ra)
    flux = np.minimum(5e-3 * (1 + rng.pareto(1.5, n)), 5.0)
    var = rng.random(n) < 0.02
    return {"ra": ra[order], "dec": dec[order], "flux": flux, "var": var, "period": rng.uniform(1, 20, n),
            "frac": np.where(var, rng.uniform(0.3, 0.6, n), 0.0), "phase": rng.uniform(0, 2 * np.pi, n),
            "origin_det": rng.random(n) < 0.1}


def true_flux(sky, idx, mjd):
    """Flux of sources ``idx`` at ``mjd`` (steady, or sinusoidal for the variable ones)."""
    return sky["flux"][idx] * (1 + sky["frac"][idx] * np.sin(2 * np.pi * (mjd - MJD0) / sky["period"][idx]
                                                             + sky["phase"][idx]))


def covered(sky, beam: Beam, ra_c: float):
    """Indices of the sources inside the contour of a group centred on ``ra_c``, and their beam."""
    from dsa110_contimg.catalog.query import ra_ranges

    idx = []
    for r0, r1 in ra_ranges(ra_c, beam.dec_c, max(beam.r_ra, beam.r_dec) + 0.5):
        idx.append(np.arange(np.searchsorted(sky["ra"], r0), np.searchsorted(sky["ra"], r1, side="right")))
    idx = np.concatenate(idx) if idx else np.zeros(0, int)
    dx = ((sky["ra"][idx] - ra_c + 180.0) % 360.0 - 180.0) * np.cos(np.radians(sky["dec"][idx]))
    pb = beam.pb(dx, sky["dec"][idx] - beam.dec_c)
    keep = pb >= PB_MIN
    return idx[keep], pb[keep]


def build_catalog(work: Path, sky, rng) -> tuple[Path, np.ndarray]:
    """Master catalog (the package's builder on an NVSS CSV) of the catalog-origin sources; their catalog ids."""
    from bench_catalog import _sexa
    from dsa110_contimg.catalog.build_master import BuildMasterOptions, build_master
    from dsa110_contimg.catalog.crossmatch import crossmatch
    from dsa110_contimg.catalog.query import cone_search

    sel = np.flatnonzero(~sky["origin_det"])
    csv, out = work / "nvss_strip.csv", work / "state" / "catalogs" / "master_sources.sqlite3"
    ra_s, dec_s = _sexa(sky["ra"][sel], sky["dec"][sel])
    s_mjy = sky["flux"][sel] * 1e3
    with open(csv, "w") as fh:
        fh.write("RAJ2000,DEJ2000,e_RAJ2000,e_DEJ2000,S1.4,e_S1.4,l_MajAxis,MajAxis,l_MinAxis,MinAxis,PA,"
                 "e_PA,Field,Xpos,Ypos\n")
        fh.writelines(f"{a},{d},0.50,6.1,{f:.2f},{0.45 + 0.005 * f:.2f},<,20.0,<,15.0,,,C0000M00,512.3,511.8\n"
                      for a, d, f in zip(ra_s, dec_s, s_mjy.tolist()))
    build_master(BuildMasterOptions(nvss=csv, out=out))
    csv.unlink()
    cat = cone_search(out, 0.0, 90.0, 90.0, columns=("source_id", "ra_deg", "dec_deg"))
    ids = np.full(len(sky["ra"]), -1, dtype=np.int64)
    m = crossmatch(sky["ra"][sel], sky["dec"][sel], cat["ra_deg"], cat["dec_deg"], 2.0)
    ids[sel[m.index >= 0]] = cat["source_id"][m.index[m.index >= 0]]
    return out, ids


def fill(work: Path, n_sources: int, n_meas: int, dec_deg: float, catalog: bool, seed: int = 1) -> dict:
    """Create ``work/state/products.sqlite3`` (schema by ``db.products.connect``) and fill it.

    Returns
    -------
    dict
        Row counts, the last group's mid-time, the beam, the sky and the catalog path.
    """
    from dsa110_contimg.db import products
    from dsa110_contimg.db.products_schema import MEASUREMENT_COLUMNS, PHOTOMETRY_IMAGE_COLUMNS, SOURCE_COLUMNS
    from dsa110_contimg.db.sources_write import _name, dec_band
    from dsa110_contimg.photometry import kernels as k
    from dsa110_contimg.photometry.models import VariabilityOptions
    from dsa110_contimg.telescope import GROUP_SECONDS

    rng = np.random.default_rng(seed)
    opts = VariabilityOptions()
    beam = Beam(dec_deg)
    sky = make_sky(n_sources, beam, rng)
    cat_path, cat_ids = build_catalog(work, sky, rng) if catalog else (None, np.full(n_sources, -1, np.int64))
    db = work / "state" / "products.sqlite3"
    products.connect(db).close()  # the real schema, every migration
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=OFF")  # a bulk load: no journal; WAL again at the end
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-1000000")
    # the indices of measurements are dropped for the load and made again with their own DDL after it
    ddl = [r[0] for r in conn.execute("SELECT sql FROM sqlite_master WHERE type='index' AND tbl_name='measurements' "
                                      "AND sql IS NOT NULL")]
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='index' AND tbl_name='measurements' "
                                "AND sql IS NOT NULL").fetchall():
        conn.execute(f"DROP INDEX {name}")
    mcols = [c for c, _ in MEASUREMENT_COLUMNS]
    det_cols = ["detection_id", "det_ra_deg", "det_dec_deg", "det_ra_err_arcsec", "det_dec_err_arcsec",
                "det_flux_jy", "sep_arcsec", "de_ruiter"]
    forced_cols = [c for c in mcols if c not in det_cols and c != "note"]
    n = n_sources
    acc = {key: np.zeros(n) for key in ("n", "w", "wf", "wf2", "f", "f2", "nd", "pwx", "pwxx", "pwy", "pwyy")}
    fmax, fmin = np.full(n, -np.inf), np.full(n, np.inf)
    first, last = np.full(n, np.inf), np.full(n, -np.inf)
    seen0, seen1 = np.full(n, np.inf), np.full(n, -np.inf)
    esum = np.zeros(n)
    dt = GROUP_SECONDS / 86400.0
    total, k_img, det_id, pim, imgs = 0, 0, 0, [], []
    t0 = time.perf_counter()
    conn.execute("BEGIN")
    while total < n_meas:
        mjd = MJD0 + k_img * dt
        ra_c = float(beam.centre_ra(mjd))
        idx, pb = covered(sky, beam, ra_c)
        idx, pb = idx[:n_meas - total], pb[:n_meas - total]
        k_img += 1
        iid = 2 * k_img - 1
        gid = f"{_iso(mjd - dt / 2)[:19]}"
        prefix = work / "output" / "images" / f"{gid}.wsclean"
        ms = str(work / "output" / "ms" / f"{gid}.ms")
        rms = RMS_JY * rng.uniform(0.8, 1.25)
        imgs += [(iid, f"{prefix}-image.fits", ms, _iso(mjd + 0.004), "image", BMAJ_ARCSEC, rms, 0),
                 (iid + 1, f"{prefix}-image-pb.fits", ms, _iso(mjd + 0.004), "pbcor", BMAJ_ARCSEC, None, 1)]
        m = idx.size
        if m:
            err = rms / pb * rng.uniform(0.95, 1.1, m)
            f = true_flux(sky, idx, mjd) + err * rng.normal(size=m)
            det = f * pb / rms >= 5.0
            e_pos = np.hypot(0.5 * BMAJ_ARCSEC * rms / np.maximum(f * pb, rms), 0.1 * BMAJ_ARCSEC)
            dra, ddec = rng.normal(size=(2, m)) * e_pos
            cosd = np.cos(np.radians(sky["dec"][idx]))
            base = [idx + 1, np.full(m, iid), np.full(m, mjd), np.where(det, "detection", "forced"), f, err, err, pb,
                    sky["ra"][idx], sky["dec"][idx], np.zeros(m, int)]
            fd = np.flatnonzero(~det)
            _insert(conn, "measurements", forced_cols, _rows(*(c[fd] for c in base)))
            dd = np.flatnonzero(det)
            ids = np.arange(det_id, det_id + dd.size)
            det_id += dd.size
            _insert(conn, "measurements", forced_cols + det_cols, _rows(
                *(c[dd] for c in base), ids, (sky["ra"][idx] + dra / 3600 / cosd)[dd],
                (sky["dec"][idx] + ddec / 3600)[dd], e_pos[dd], e_pos[dd], f[dd], np.hypot(dra, ddec)[dd],
                (np.hypot(dra, ddec) / (np.sqrt(2) * e_pos))[dd]))
            e = k.total_error(f, err, opts.flux_sys_frac)
            w = 1.0 / e ** 2
            for key, v in (("n", 1.0), ("w", w), ("wf", w * f), ("wf2", w * f * f), ("f", f), ("f2", f * f),
                           ("nd", det * 1.0), ("pwx", det / e_pos ** 2), ("pwxx", det * dra / e_pos ** 2),
                           ("pwy", det / e_pos ** 2), ("pwyy", det * ddec / e_pos ** 2)):
                acc[key] += np.bincount(idx, np.broadcast_to(v, m), minlength=n)
            np.maximum.at(fmax, idx, f)
            np.minimum.at(fmin, idx, f)
            np.minimum.at(first, idx, mjd)
            np.maximum.at(last, idx, mjd)
            np.minimum.at(seen0, idx[det], mjd)
            np.maximum.at(seen1, idx[det], mjd)
            esum += np.bincount(idx, e, minlength=n)
        pim.append((iid, gid, ms, f"{prefix}-image.fits", f"{prefix}-image-pb.fits", mjd, mjd - (N_INT - 1) / 2 *
                    12.884902 / 86400, mjd + (N_INT - 1) / 2 * 12.884902 / 86400, N_INT, dec_deg, -118.283, 1.3114e9,
                    1.4986e9, ra_c, beam.dec_c, dec_band(beam.dec_c), 3.62, rms, BMAJ_ARCSEC, BMIN_ARCSEC, BPA_DEG,
                    m, int(det.sum()) if m else 0, int(det.sum()) if m else 0, 0, 1.0, _iso(mjd + 0.005)))
        total += m
        if len(imgs) >= 400:
            _insert(conn, "images", ["id", "path", "ms_path", "created_at", "type", "beam_major_arcsec", "noise_jy",
                                     "pbcor"], imgs)
            imgs = []
            conn.execute("COMMIT")
            conn.execute("BEGIN")
            if k_img % 2000 == 0:
                print(f"  {total:,} measurements in {k_img:,} images, {time.perf_counter() - t0:.0f} s", flush=True)
    _insert(conn, "images", ["id", "path", "ms_path", "created_at", "type", "beam_major_arcsec", "noise_jy", "pbcor"],
            imgs)
    _insert(conn, "photometry_images", [c for c, _ in PHOTOMETRY_IMAGE_COLUMNS], pim)
    conn.execute("COMMIT")
    t_rows = time.perf_counter() - t0
    for sql in ddl:
        conn.execute(sql)
    t_index = time.perf_counter() - t0 - t_rows

    # sources: running sums of the rows above, the statistics and flags derived as the daemon does
    nn = acc["n"].astype(int)
    rows = []
    made = _iso(MJD0)
    for i in range(n):
        v = k.variability(int(nn[i]), acc["w"][i], acc["wf"][i], acc["wf2"][i], acc["f"][i], acc["f2"][i])
        fin = [None if not math.isfinite(x) else float(x) for x in (v.mean, v.wmean, v.wmean_err, v.eta, v.v)]
        emean = esum[i] / max(nn[i], 1)
        vs = float((fmax[i] - fmin[i]) / (math.sqrt(2) * emean)) if nn[i] > 1 else 0.0  # extreme pair, approx.
        mm = float(2 * (fmax[i] - fmin[i]) / (fmax[i] + fmin[i])) if vs >= opts.vs_min and fmax[i] + fmin[i] > 0 \
            else 0.0
        ra, dec = float(sky["ra"][i]), float(sky["dec"][i])
        pos = [acc["pwx"][i], acc["pwxx"][i], acc["pwy"][i], acc["pwyy"][i]]
        if pos[0] > 0:
            ra2, dec2, era, edec = k.mean_position(ra, dec, *pos)
        else:
            ra2, dec2, era, edec = ra, dec, 2.5, 2.5
        is_det = bool(sky["origin_det"][i])
        cid = int(cat_ids[i]) if cat_ids[i] >= 0 else None
        new_sigma = 8.0 if is_det and i % 997 == 0 else None
        is_var = int(nn[i] >= opts.min_measurements and (fin[3] or 0) >= opts.eta_min and fin[4] is not None
                     and fin[4] >= opts.v_min)
        rows.append((i + 1, _name(ra, dec), ra2, dec2, dec_band(dec2), era, edec, ra, dec, *pos,
                     "detection" if is_det else "catalog", cid, 0.5 if cid else None,
                     float(sky["flux"][i]) if cid else None, made, 1, int(nn[i]), int(acc["nd"][i]), acc["w"][i],
                     acc["wf"][i], acc["wf2"][i], acc["f"][i], acc["f2"][i], *fin[:3],
                     float(fmax[i]) if nn[i] else None, fin[3], fin[4], vs, mm,
                     *(float(x) if math.isfinite(x) else None for x in (first[i], last[i], seen0[i], seen1[i])),
                     new_sigma, int(new_sigma is not None), is_var, made))
    scols = ["id"] + [c for c, _ in SOURCE_COLUMNS]
    conn.execute("BEGIN")
    _insert(conn, "sources", scols, rows)
    conn.execute("COMMIT")
    t_sources = time.perf_counter() - t0 - t_rows - t_index
    conn.execute("PRAGMA journal_mode=WAL")
    counts = {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
              for t in ("sources", "measurements", "photometry_images", "images")}
    counts["variable"] = conn.execute("SELECT COUNT(*) FROM sources WHERE is_variable = 1").fetchone()[0]
    conn.close()
    return {"counts": counts, "next_mjd": MJD0 + k_img * dt, "beam": beam, "sky": sky, "catalog": cat_path,
            "cat_ids": cat_ids, "seconds": {"rows": t_rows, "indices": t_index, "sources": t_sources}, "db": db}


def create_indices(db: Path) -> float:
    """Create :data:`PROPOSED_INDICES` in the benchmark's database; the seconds it took."""
    t = time.perf_counter()
    conn = sqlite3.connect(db)
    for name, table, cols in PROPOSED_INDICES:
        conn.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({cols})")
    conn.close()
    return time.perf_counter() - t


# --------------------------------------------------------------------------- new images and their photometry


def _near(sky, ra_c: float, dec_c: float, radius: float) -> np.ndarray:
    """Indices of the sky's sources within ``radius`` (deg) of a position (RA-sorted search)."""
    from dsa110_contimg.beam import separation_deg
    from dsa110_contimg.catalog.query import ra_ranges

    idx = np.concatenate([np.arange(np.searchsorted(sky["ra"], r0), np.searchsorted(sky["ra"], r1, side="right"))
                          for r0, r1 in ra_ranges(ra_c, dec_c, radius)])
    return idx[separation_deg(ra_c, dec_c, sky["ra"][idx], sky["dec"][idx]) <= radius]


def write_images(raw: Path, pbf: Path, fx: dict, info, ra_c: float, imsize: int, cell_arcsec: float, noise,
                 extra=((), (), ()), pb: np.ndarray | None = None) -> dict:
    """Write a restored FITS as WSClean and the package leave it (4 axes, header completed by
    ``complete_header``) and its pb-corrected twin (``write_pbcor``): ``noise`` plus every database source inside it
    at its flux at the group's time times the drift-scan beam, plus the ``extra`` sources ``(ra, dec, flux)``.
    ``pb``: the beam on the pixel grid (the same for every group, about its meridian centre), to divide by it here
    instead of ``write_pbcor`` computing it again.

    Returns
    -------
    dict
        The sources drawn: ``idx`` (into the sky, then the extra ones), ``ra``, ``dec``, apparent flux ``app`` and
        whether each is ``inside`` the image.
    """
    from astropy.io import fits
    from astropy.wcs import WCS

    from dsa110_contimg.imaging.fits_products import complete_header, drift_scan_pb, write_pbcor
    from dsa110_contimg.photometry.kernels import FWHM_TO_SIGMA, beam_model

    sky, dec_c = fx["sky"], fx["beam"].dec_c
    h = fits.Header()
    for i, (ctype, crval, cdelt, crpix) in enumerate(
            [("RA---SIN", ra_c, -cell_arcsec / 3600, imsize / 2 + 1), ("DEC--SIN", dec_c, cell_arcsec / 3600,
                                                                     imsize / 2 + 1),
             ("FREQ", float(info.freqs_hz.mean()), float(np.ptp(info.freqs_hz)), 1.0), ("STOKES", 1.0, 1.0, 1.0)],
            start=1):
        h[f"CTYPE{i}"], h[f"CRVAL{i}"], h[f"CDELT{i}"], h[f"CRPIX{i}"] = ctype, crval, cdelt, crpix
    h["BMAJ"], h["BMIN"], h["BPA"] = BMAJ_ARCSEC / 3600, BMIN_ARCSEC / 3600, BPA_DEG
    h["EQUINOX"] = 2000.0
    wcs = WCS(h).celestial
    data = noise.copy()
    idx = _near(sky, ra_c, dec_c, 0.75 * imsize * cell_arcsec / 3600)
    all_ra, all_dec = np.concatenate([sky["ra"][idx], extra[0]]), np.concatenate([sky["dec"][idx], extra[1]])
    app = np.concatenate([true_flux(sky, idx, info.mid_mjd), extra[2]]) * drift_scan_pb(all_ra, all_dec, info)
    x, y = wcs.world_to_pixel_values(all_ra, all_dec)
    sig = (BMAJ_ARCSEC / cell_arcsec * FWHM_TO_SIGMA, BMIN_ARCSEC / cell_arcsec * FWHM_TO_SIGMA)
    bpx, r = (sig[0], sig[1], math.pi / 2), int(math.ceil(4 * sig[0]))  # PA 0: the major axis along y
    for xi, yi, fi in zip(x, y, app):
        cx, cy = int(round(xi)), int(round(yi))
        if r <= cx < imsize - r and r <= cy < imsize - r:
            yy, xx = np.mgrid[cy - r:cy + r + 1, cx - r:cx + r + 1]
            data[cy - r:cy + r + 1, cx - r:cx + r + 1] += (fi * beam_model(xx, yy, xi, yi, bpx)).astype(np.float32)
    raw.parent.mkdir(parents=True, exist_ok=True)
    fits.PrimaryHDU(data[None, None], h).writeto(raw, overwrite=True)
    complete_header(raw, info)
    if pb is None:
        write_pbcor(raw, pbf, info)
    else:  # as write_pbcor does, with the beam given
        hdr = fits.getheader(raw)
        hdr["PBCOR"], hdr["PBCUTOFF"] = (True, "divided by the drift-scan Airy beam"), 0.1
        corr = np.where(pb >= 0.1, data / np.maximum(pb, 0.1), np.nan).astype(np.float32)
        fits.PrimaryHDU(corr[None, None], hdr).writeto(pbf, overwrite=True)
    return {"idx": idx, "ra": all_ra, "dec": all_dec, "app": app,
            "inside": (x >= 0) & (x < imsize) & (y >= 0) & (y < imsize)}


def make_noise(imsize: int, cell_arcsec: float, rng) -> np.ndarray:
    """Noise of a restored image: white noise smoothed by the beam over sqrt(2) (so correlated as the beam), at
    ``RMS_JY``."""
    from scipy.ndimage import gaussian_filter

    from dsa110_contimg.photometry.kernels import FWHM_TO_SIGMA

    s = FWHM_TO_SIGMA / math.sqrt(2) / cell_arcsec
    data = gaussian_filter(rng.standard_normal((imsize, imsize), dtype=np.float32), (BMAJ_ARCSEC * s, BMIN_ARCSEC * s))
    return data * np.float32(RMS_JY / float(np.std(data[::7, ::7])))


def _gid(mjd: float) -> str:
    return _iso(mjd - 309.24 / 2 / 86400)[:19]


def transients(fx: dict, mjd: float, n: int, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` sources absent from the database, where the beam of the group at ``mjd`` is about a half or more."""
    ra_c, dec_c = float(fx["beam"].centre_ra(mjd)), fx["beam"].dec_c
    return (ra_c + rng.uniform(-1.0, 1.0, n) / np.cos(np.radians(dec_c)), dec_c + rng.uniform(-0.8, 0.8, n),
            rng.uniform(0.05, 0.2, n))


def synth_group(work: Path, fx: dict, mjd: float, dec_deg: float, imsize: int, cell_arcsec: float, new, rng) -> dict:
    """One new full-size group as imaging and QA leave it: its two FITS (:func:`write_images`; beam-correlated noise
    of ``RMS_JY``, the database's sources and the transients ``new``), its ``images`` rows and the QA detections
    (every source above 5 sigma in the restored image, at a position scattered by its error)."""
    from dsa110_contimg.db import products as pdb

    gid = _gid(mjd)
    raw = work / "output" / "images" / f"{gid}.wsclean-image.fits"
    pbf, ms = raw.with_name(f"{gid}.wsclean-image-pb.fits"), work / "output" / "ms" / f"{gid}.ms"
    info = group_info(mjd, dec_deg, ms)
    d = write_images(raw, pbf, fx, info, float(fx["beam"].centre_ra(mjd)), imsize, cell_arcsec,
                     make_noise(imsize, cell_arcsec, rng), new)
    peak = d["app"] + RMS_JY * rng.normal(size=d["app"].size)
    det = np.flatnonzero(d["inside"] & (peak / RMS_JY >= 5.0))
    e_pos = np.hypot(0.5 * BMAJ_ARCSEC * RMS_JY / peak[det], 1.0)
    cat = np.concatenate([fx["cat_ids"][d["idx"]], np.full(len(new[0]), -1)])
    flux = np.concatenate([fx["sky"]["flux"][d["idx"]], new[2]])
    dets = [pdb.Detection(float(d["ra"][i] + rng.normal() * e / 3600 / math.cos(math.radians(d["dec"][i]))),
                          float(d["dec"][i] + rng.normal() * e / 3600), float(e), float(e), float(peak[i]), RMS_JY,
                          float(peak[i]), RMS_JY, float(peak[i] / RMS_JY), int(cat[i]) if cat[i] >= 0 else None,
                          1.0 if cat[i] >= 0 else None, float(flux[i]) if cat[i] >= 0 else None)
            for i, e in zip(det, e_pos)]
    conn = pdb.connect(fx["db"])
    try:
        iid = pdb.upsert_image(conn, pdb.ImageRecord(str(raw), ms_path=str(ms), type="image", noise_jy=RMS_JY,
                                                     beam_major_arcsec=BMAJ_ARCSEC, beam_minor_arcsec=BMIN_ARCSEC,
                                                     beam_pa_deg=BPA_DEG, backend="wsclean", pbcor=False))
        pdb.upsert_image(conn, pdb.ImageRecord(str(pbf), ms_path=str(ms), type="pbcor", pbcor=True))
        pdb.replace_detections(conn, iid, dets)
    finally:
        conn.close()
    return {"group_id": gid, "info": info, "ms": ms, "n_injected": int(d["inside"].sum()), "n_detections": len(dets)}


def earlier_files(fx: dict, groups: list[tuple[float, tuple]], dec_deg: float, imsize: int, cell_arcsec: float,
                  rng) -> int:
    """Write the FITS of the database's images that the backfill of the new groups' transients reads (the
    ``earlier_images`` of each transient, as the photometry asks for them), one noise field for all; the count."""
    from dsa110_contimg.db import products as pdb
    from dsa110_contimg.db import sources as sdb
    from dsa110_contimg.photometry.models import PhotometryOptions

    conn = pdb.connect_readonly(fx["db"])
    try:
        need = {r.image_id: r for mjd, new in groups for ra, dec in zip(new[0], new[1])
                for r in sdb.earlier_images(conn, float(ra), float(dec), mjd, PhotometryOptions().backfill_images)}
    finally:
        conn.close()
    from dsa110_contimg.imaging.fits_products import pb_image

    noise, pb = (make_noise(imsize, cell_arcsec, rng) if need else None), None
    for r in need.values():
        info = group_info(r.mid_mjd, dec_deg, Path(r.ms_path))
        write_images(Path(r.image_path), Path(r.pbcor_path), fx, info, r.ra_deg, imsize, cell_arcsec, noise, pb=pb)
        pb = pb_image(r.image_path, info) if pb is None else pb
    return len(need)


def _warm() -> None:
    """Import what the photometry uses, as a long-running worker has (the first image is not an import benchmark)."""
    import scipy.interpolate  # noqa: F401
    import scipy.signal  # noqa: F401
    import scipy.sparse.csgraph  # noqa: F401
    import scipy.spatial  # noqa: F401
    from astropy.io import fits  # noqa: F401
    from astropy.wcs import WCS  # noqa: F401
    from casacore import measures, quanta  # noqa: F401

    from dsa110_contimg.pipeline import photometry_stage  # noqa: F401


def photometer(fx: dict, g: dict) -> dict:
    """Photometry of one group as the stage runs it: worker (read-only reader, ``photometer_image``), then daemon
    (``record_photometry``); seconds of each, the worker's own steps and what was written."""
    from dsa110_contimg.db import products as pdb
    from dsa110_contimg.db import sources as sdb
    from dsa110_contimg.photometry.measure import photometer_image
    from dsa110_contimg.photometry.models import PhotometryOptions
    from dsa110_contimg.pipeline.photometry_stage import _Reader

    t0, c0 = time.perf_counter(), time.process_time()
    conn = pdb.connect_readonly(fx["db"])
    try:
        ms = str(Path(g["ms"]).absolute())
        image = pdb.list_images(conn, ms_path=ms, type="image", limit=1)[0]
        pbcor = pdb.list_images(conn, ms_path=ms, type="pbcor", limit=1)[0]
        res = photometer_image(_Reader(conn), image, pbcor.path, g["info"], g["group_id"], fx["catalog"],
                               PhotometryOptions())
    finally:
        conn.close()
    t1, c1 = time.perf_counter(), time.process_time()
    conn = pdb.connect(fx["db"])
    try:
        summary = sdb.record_photometry(conn, res)
    finally:
        conn.close()
    t2, c2 = time.perf_counter(), time.process_time()
    return {"group_id": g["group_id"], "worker_s": t1 - t0, "record_s": t2 - t1, "total_s": t2 - t0,
            "worker_cpu_s": c1 - c0, "record_cpu_s": c2 - c1, "cpu_s": c2 - c0,
            "steps": {k: round(v, 3) for k, v in res.timings.items()}, "measurements": summary.n_measurements,
            "detections": res.n_detections, "associated": res.n_associated, "new_sources": len(summary.new_source_ids)}


# --------------------------------------------------------------------------- API load


LIST_QUERIES = ["order=eta&limit=50", "order=eta&limit=50&offset={o}", "variable=true&order=eta&limit=50",
                "new=true&order=last&limit=50", "min_eta=5&min_v=0.1&order=v&limit=50",
                "order=flux&limit=50&offset={o}", "order=n&limit=50", "order=last&limit=50", "limit=50&offset={O}",
                "variable=true&limit=100",
                "min_eta=3.78&order=eta&limit=100&offset={o}", "order=v&limit=50"]
"""``/api/sources`` queries of the dashboard and of scripts: every order, the flags and thresholds, pages near the
top (``{o}``: 0-5000) and anywhere (``{O}``)."""


def list_path(rng, n_sources: int):
    """A random ``/api/sources`` query of :data:`LIST_QUERIES`."""
    q = LIST_QUERIES[int(rng.integers(len(LIST_QUERIES)))]
    return "/api/sources?" + q.format(o=int(rng.integers(0, 5000)), O=int(rng.integers(0, n_sources)))


async def _get(pool: asyncio.Queue, host: str, port: int, path: str, timeout: float) -> tuple[bool, int]:
    """One keep-alive HTTP/1.1 GET (a connection from ``pool``, or a new one): ``(status 200, body bytes)``."""
    try:
        reader, writer = pool.get_nowait()
    except asyncio.QueueEmpty:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        lines = head.decode("latin-1").split("\r\n")
        length = next(int(v) for k, _, v in (x.partition(":") for x in lines[1:]) if k.lower() == "content-length")
        body = await asyncio.wait_for(reader.readexactly(length), timeout)
    except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, StopIteration, ValueError):
        writer.close()
        return False, 0
    pool.put_nowait((reader, writer))
    return lines[0].split()[1] == "200", len(body)


def load(base: str, paths: list[str], rate: float, timeout: float = 10.0) -> list[tuple]:
    """Open loop: ``paths[i]`` is requested at ``i / rate`` s whether or not the earlier requests have answered (one
    asyncio task each, on a pool of keep-alive connections, through a minimal HTTP/1.1 client: httpx cost the
    client several ms of CPU per 50 kB answer, taken from the server's two cores).

    Returns
    -------
    list of tuple
        ``(path, scheduled_s, lag_s, latency_s, ok, n_bytes)`` per request.
    """
    host, port = base.split("//", 1)[1].rsplit(":", 1)

    async def run() -> list[tuple]:
        out: list[tuple] = []
        pool: asyncio.Queue = asyncio.Queue()

        async def one(path: str, at: float, start: float) -> None:
            t = time.perf_counter()
            ok, size = await _get(pool, host, int(port), path, timeout)
            out.append((path, at - start, t - at, time.perf_counter() - t, ok, size))

        start, pending = time.perf_counter() + 0.05, []
        for i, path in enumerate(paths):
            at = start + i / rate
            await asyncio.sleep(max(0.0, at - time.perf_counter()))
            pending.append(asyncio.create_task(one(path, at, start)))
        await asyncio.gather(*pending)
        while not pool.empty():
            pool.get_nowait()[1].close()
        return out

    return asyncio.run(run())


def stats(recs: list[tuple]) -> dict:
    """Requests, achieved rate (answers per second from the first start to the last answer), latency percentiles
    (ms), start lag p99 (ms), failures, mean body size."""
    ms = np.array([r[3] for r in recs]) * 1e3
    span = max(r[1] + r[2] + r[3] for r in recs) - min(r[1] + r[2] for r in recs)
    return {"requests": len(recs), "rate_per_s": len(recs) / max(span, 1e-9),
            **{f"p{q}_ms": float(np.percentile(ms, q)) for q in (50, 95, 99)}, "max_ms": float(ms.max()),
            "lag_p99_ms": float(np.percentile([r[2] * 1e3 for r in recs], 99)),
            "failures": sum(not r[4] for r in recs), "mean_bytes": float(np.mean([r[5] for r in recs]))}


def _drain(base: str, limit_s: float = 120.0) -> None:
    """Wait until the server answers at once again (the requests an overloaded phase gave up on are still being
    answered; the next phase must not queue behind them)."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < limit_s:
        recs = load(base, ["/api/status"] * 3, 10.0)
        if all(r[4] and r[3] < 0.05 for r in recs):
            return
        time.sleep(0.5)


def drive_api(work: Path, n_sources: int, rate: float, duration: float, warmup: float, cache_s: float | None,
              seed: int) -> dict:
    """Serve the app on the state folder and load ``/api/sources`` then ``/api/sources/{id}``."""
    rng = np.random.default_rng(seed)
    proc, base, log = serve("dsa110_contimg.api:app", work, cache_s)
    out = {}
    try:
        n = int((warmup + duration) * rate)
        phases = {"/api/sources": [list_path(rng, n_sources) for _ in range(n)],
                  "/api/sources/{id}": [f"/api/sources/{int(i)}" for i in rng.integers(1, n_sources + 1, n)]}
        for name, paths in phases.items():
            _drain(base)
            cpu0, wall0, own0 = _cpu_s(proc.pid), time.perf_counter(), time.process_time()
            recs = load(base, paths, rate)
            cpu_s, wall = _cpu_s(proc.pid) - cpu0, time.perf_counter() - wall0
            if proc.poll() is not None:
                raise SystemExit(f"bench_sources: server died\n{log.read_text(errors='replace')[-4000:]}")
            out[name] = {**stats([r for r in recs if r[1] >= warmup]), "server_cpu": cpu_s / wall,
                         "server_cpu_ms": 1e3 * cpu_s / len(recs), "client_cpu": (time.process_time() - own0) / wall}
            slow = sorted((r for r in recs if r[1] >= warmup), key=lambda r: -r[3])[:5]
            out[name]["slowest"] = [(r[0], round(r[3] * 1e3, 1)) for r in slow]
    finally:
        stop(proc)
    return out


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sources", type=int, default=100_000, help="sources in the database")
    ap.add_argument("--measurements", type=int, default=10_000_000, help="measurements in the database")
    ap.add_argument("--images", type=int, default=5, help="new groups photometered and timed")
    ap.add_argument("--imsize", type=int, help="pixels on a side of the new images (default: 4600, a full group, "
                                               "or 2000 with fewer than a million --measurements: a quick run)")
    ap.add_argument("--cell-arcsec", type=float, default=4.0, help="pixel size of the new images (arcsec)")
    ap.add_argument("--dec", type=float, default=55.0, help="pointing declination of the strip (deg)")
    ap.add_argument("--new-per-image", type=int, default=3, help="transients injected in each new image")
    ap.add_argument("--no-catalog", action="store_true", help="no master catalog (no catalog seeds, counterparts)")
    ap.add_argument("--no-earlier-files", action="store_true",
                    help="do not write the FITS of the earlier images the transients' backfill reads (it skips them)")
    ap.add_argument("--rate", type=float, default=100.0, help="requests per second (open loop)")
    ap.add_argument("--duration", type=float, default=10.0, help="measured seconds per endpoint")
    ap.add_argument("--warmup", type=float, default=2.0, help="seconds of load before measuring (not counted)")
    ap.add_argument("--cache-s", type=float, nargs="+", default=[0.0], help="the API's answer cache "
                    "(PIPELINE_API_CACHE_S), one server and load per value (the app's default is 1); "
                    "default 0: every request reads the database")
    ap.add_argument("--with-indices", action="store_true",
                    help="create the indices of PROPOSED_INDICES (not made by any migration) before measuring")
    ap.add_argument("--skip-api", action="store_true", help="only the photometry part")
    ap.add_argument("--workdir", type=Path, help="work folder (kept; must not hold a products database)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary work folder")
    ap.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    args.imsize = args.imsize or (4600 if args.measurements >= 1_000_000 else 2000)
    if args.sources < 100 or args.measurements < args.sources or args.images < 1 or args.imsize < 256:
        ap.error("need --sources >= 100, --measurements >= --sources, --images >= 1, --imsize >= 256")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("dsa110_contimg.photometry.measure").setLevel(logging.ERROR)  # backfill of file-less images
    temp = args.workdir is None
    work = Path(tempfile.mkdtemp(prefix="bench_sources_", dir="/tmp")) if temp else args.workdir.absolute()
    if (work / "state" / "products.sqlite3").exists():
        raise SystemExit(f"bench_sources: {work}/state already holds a products database; give an empty --workdir")
    os.environ["PIPELINE_STATE_DIR"] = str(work / "state")
    from dsa110_contimg.casa_env import prepare_casa

    prepare_casa(work / "state")  # casacore's measures offline, as every pipeline process
    _warm()
    report: dict = {"args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                    "cores": os.cpu_count()}
    try:
        t = time.perf_counter()
        fx = fill(work, args.sources, args.measurements, args.dec, not args.no_catalog, args.seed)
        print(f"bench_sources: filled {fx['db']} in {time.perf_counter() - t:.0f} s (rows "
              f"{fx['seconds']['rows']:.0f} s, indices {fx['seconds']['indices']:.0f} s, sources "
              f"{fx['seconds']['sources']:.0f} s; {fx['db'].stat().st_size / 2**30:.2f} GiB): "
              + ", ".join(f"{k} {v:,}" for k, v in fx["counts"].items()))
        report["fill"] = {"counts": fx["counts"], "seconds": fx["seconds"]}
        if args.with_indices:
            print(f"--with-indices: created by this benchmark, NOT by a migration, in "
                  f"{create_indices(fx['db']):.0f} s: "
                  + "; ".join(f"{n} ON {t} ({c})" for n, t, c in PROPOSED_INDICES))
        rng = np.random.default_rng(args.seed + 1)
        rows = []
        print(f"photometry of {args.images} new groups of {args.imsize}x{args.imsize} px of {args.cell_arcsec:g}\" "
              f"(synthesised first, not timed), one after the other as the stream does; load average "
              f"{os.getloadavg()[0]:.1f}:")
        groups = [(mjd, transients(fx, mjd, args.new_per_image, rng))
                  for mjd in fx["next_mjd"] + np.arange(args.images) * 309.24 / 86400]
        if not args.no_earlier_files:
            t = time.perf_counter()
            n = earlier_files(fx, groups, args.dec, args.imsize, args.cell_arcsec, rng)
            print(f"wrote the FITS of the {n} earlier images the transients' backfill reads in "
                  f"{time.perf_counter() - t:.0f} s (the other database images have none)")
        print(f"{'group':20s} {'injected':>8s} {'dets':>5s} {'meas.':>6s} {'assoc':>6s} {'new':>4s} {'worker s':>8s} "
              f"{'record s':>8s} {'total s':>8s} {'CPU s':>6s}  worker steps (s)")
        for mjd, new in groups:
            g = synth_group(work, fx, mjd, args.dec, args.imsize, args.cell_arcsec, new, rng)
            r = photometer(fx, g)
            rows.append({**r, "injected": g["n_injected"]})
            print(f"{r['group_id']:20s} {g['n_injected']:8d} {r['detections']:5d} {r['measurements']:6d} "
                  f"{r['associated']:6d} {r['new_sources']:4d} {r['worker_s']:8.2f} {r['record_s']:8.2f} "
                  f"{r['total_s']:8.2f} {r['cpu_s']:6.2f}  "
                  + " ".join(f"{k} {v:.2f}" for k, v in r["steps"].items() if k != "total"), flush=True)
        per = float(np.mean([r["total_s"] for r in rows]))
        report["photometry"] = {"images": rows, "mean_s": per, "max_s": max(r["total_s"] for r in rows)}
        if not args.skip_api:
            print(f"API: {args.rate:g} requests/s open loop, {args.warmup:g} s warm-up + {args.duration:g} s per "
                  f"endpoint, answer cache {', '.join(f'{c:g}' for c in args.cache_s)} s, {os.cpu_count()} cores, "
                  f"load average {os.getloadavg()[0]:.1f}")
            api = {f"{name} cache {c:g} s": v for c in args.cache_s
                   for name, v in drive_api(work, args.sources, args.rate, args.duration, args.warmup, c,
                                            args.seed).items()}
            report["api"] = api
            print(f"{'endpoint':30s} {'requests':>8s} {'rate/s':>7s} {'p50 ms':>7s} {'p95 ms':>7s} {'p99 ms':>7s} "
                  f"{'max ms':>7s} {'lag p99':>7s} {'failed':>6s} {'bytes':>7s} {'server CPU':>10s} {'ms/req':>6s} "
                  f"{'client CPU':>10s}")
            for name, s in api.items():
                print(f"{name:30s} {s['requests']:8d} {s['rate_per_s']:7.1f} {s['p50_ms']:7.1f} {s['p95_ms']:7.1f} "
                      f"{s['p99_ms']:7.1f} {s['max_ms']:7.1f} {s['lag_p99_ms']:7.1f} {s['failures']:6d} "
                      f"{s['mean_bytes']:7.0f} {100 * s['server_cpu']:9.0f}% {s['server_cpu_ms']:6.1f} "
                      f"{100 * s['client_cpu']:9.0f}%")
                print(f"{'':30s} slowest: " + ", ".join(f"{p} {v} ms" for p, v in s["slowest"][:3]))
    finally:
        if temp and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        elif temp:
            print(f"kept {work}")
    verdicts = [(f"photometry + association <= {TARGET_S_PER_IMAGE:g} s per image", per <= TARGET_S_PER_IMAGE,
                 f"mean {per:.2f} s, max {report['photometry']['max_s']:.2f} s over {len(rows)} images")]
    for name, s in report.get("api", {}).items():
        verdicts.append((f"{name} p99 < {TARGET_P99_MS:g} ms at {args.rate:g}/s",
                         s["p99_ms"] < TARGET_P99_MS and s["failures"] == 0 and s["rate_per_s"] >= 0.95 * args.rate,
                         f"p99 {s['p99_ms']:.1f} ms, {s['rate_per_s']:.1f}/s achieved, {s['failures']} failed"))
    label = " [with the benchmark's own PROPOSED_INDICES]" if args.with_indices else ""
    for what, ok, detail in verdicts:
        print(f"{'PASS' if ok else 'FAIL'}  {what} ({detail}){label}")
    report["verdicts"] = [{"target": w, "pass": ok, "detail": d} for w, ok, d in verdicts]
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
    failed = sum(s["failures"] for s in report.get("api", {}).values())
    total = sum(s["requests"] for s in report.get("api", {}).values())
    if total and failed > 0.01 * total:
        raise SystemExit(f"bench_sources: {failed} of {total} requests failed (> 1%)")


if __name__ == "__main__":
    main()
