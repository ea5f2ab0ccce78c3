"""The daemon's side of :mod:`.sources` (re-exported there): record the photometry of one image and update its
sources incrementally; the position helpers both sides use."""

from __future__ import annotations

import math
import sqlite3
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

import numpy as np

from ..photometry import kernels as k
from ..photometry.models import Measurement, NewSource, PhotometryResult, VariabilityOptions
from . import sqlite_base as _base
from .products_schema import ProductsDBError

DEC_BAND_DEG = 1.0
"""Width of the declination bands of the position indices of ``sources`` and ``photometry_images`` (deg)."""
_SUMS = ("n_measurements", "sum_w", "sum_wf", "sum_wf2", "sum_f", "sum_f2")
_POS = ("pos_w_ra", "pos_wx_ra", "pos_w_dec", "pos_wx_dec")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def dec_band(dec_deg: float) -> int:
    """Band of a declination in the position indices."""
    return int(math.floor((float(dec_deg) + 90.0) / DEC_BAND_DEG))


def _cone_sql(table: str, cols: str, ra: float, dec: float, radius: float, extra: str = "") -> list[tuple[str, list]]:
    from ..catalog.query import ra_ranges

    lo, hi = max(-90.0, dec - radius), min(90.0, dec + radius)
    bands = ",".join(str(b) for b in range(dec_band(lo), dec_band(hi) + 1))
    sql = (f"SELECT {cols} FROM {table} WHERE dec_band IN ({bands}) AND ra_deg >= ? AND ra_deg <= ? "
           f"AND dec_deg >= ? AND dec_deg <= ?{extra}")
    return [(sql, [r0, r1, lo, hi]) for r0, r1 in ra_ranges(ra, dec, radius)]


def sep_deg(ra0, dec0, ra, dec) -> np.ndarray:
    """Separation (deg) of each ``(ra, dec)`` from ``(ra0, dec0)``."""
    from ..beam import separation_deg

    return np.asarray(separation_deg(ra0, dec0, ra, dec), dtype=float)


@dataclass(frozen=True)
class RecordSummary:
    """What :func:`record_photometry` wrote."""

    image_id: int
    """The image."""
    n_measurements: int
    """Measurements stored (the image's and the backfilled ones)."""
    n_replaced: int
    """Rows of an earlier recording of the same image replaced."""
    new_source_ids: tuple[int, ...]
    """Ids of the sources created (or merged into, see :func:`record_photometry`)."""
    n_merged: int
    """New sources found to duplicate one created meanwhile by another image."""


def _name(ra: float, dec: float) -> str:
    h = ra / 15.0
    hh, mm = int(h), int((h * 60) % 60)
    ss = (h * 3600) % 60
    sgn, d = ("+" if dec >= 0 else "-"), abs(dec)
    return f"DSA J{hh:02d}{mm:02d}{ss:04.1f}{sgn}{int(d):02d}{int((d * 60) % 60):02d}{int((d * 3600) % 60):02d}"


def _create_or_merge(conn, ns: NewSource, result: PhotometryResult, now: str) -> tuple[int, bool]:
    if ns.origin == "catalog" and ns.catalog_source_id is not None:
        r = conn.execute("SELECT id FROM sources WHERE catalog_source_id = ? ORDER BY id LIMIT 1",
                         (ns.catalog_source_id,)).fetchone()
        if r is not None:
            return int(r[0]), True
    if ns.origin == "detection":  # another image may have created it since the worker read the table
        cap = result.cap_arcsec / 3600.0
        cand = [r for sql, a in _cone_sql("sources", "id, ra_deg, dec_deg", ns.ra_deg, ns.dec_deg, cap,
                                          f" AND id > {int(result.max_source_id)}") for r in conn.execute(sql, a)]
        if cand:
            sep = sep_deg(ns.ra_deg, ns.dec_deg, [c[1] for c in cand], [c[2] for c in cand])
            if sep.min() <= cap:
                return int(cand[int(np.argmin(sep))][0]), True
    cur = conn.execute(
        "INSERT INTO sources (name, ra_deg, dec_deg, dec_band, ra_err_arcsec, dec_err_arcsec, ref_ra_deg, "
        "ref_dec_deg, origin, catalog_source_id, catalog_sep_arcsec, catalog_flux_jy, created_at, created_image_id, "
        "new_sigma, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (_name(ns.ra_deg, ns.dec_deg), ns.ra_deg % 360.0, ns.dec_deg, dec_band(ns.dec_deg), ns.ra_err_arcsec,
         ns.dec_err_arcsec, ns.ra_deg % 360.0, ns.dec_deg, ns.origin, ns.catalog_source_id, ns.catalog_sep_arcsec,
         ns.catalog_flux_jy, now, result.run.image_id, ns.new_sigma, now))
    return int(cur.lastrowid), False


_M_COLS = ["source_id", "image_id", "mjd", "kind", "flux_jy", "flux_err_jy", "local_rms_jy", "pb", "ra_deg",
           "dec_deg", "detection_id", "det_ra_deg", "det_dec_deg", "det_ra_err_arcsec", "det_dec_err_arcsec",
           "det_flux_jy", "sep_arcsec", "de_ruiter", "backfilled", "note"]
_M_SQL = f"INSERT INTO measurements ({', '.join(_M_COLS)}) VALUES ({', '.join('?' * len(_M_COLS))})"


def _m_values(sid: int, m: Measurement) -> tuple:
    for c in ("flux_jy", "flux_err_jy", "mjd"):
        if not math.isfinite(getattr(m, c)):
            raise ProductsDBError(f"image {m.image_id}: measurement of source {sid} has {c}={getattr(m, c)!r}")
    special = {"source_id": sid, "backfilled": int(m.backfilled), "note": m.note or None}
    return tuple(special[c] if c in special else getattr(m, c) for c in _M_COLS)


def record_photometry(conn: sqlite3.Connection, result: PhotometryResult,
                      opts: VariabilityOptions | None = None) -> RecordSummary:
    """Record the photometry of one image in one transaction (the daemon's side of the stage).

    The image's ``photometry_images`` row is upserted; new sources are created (a
    catalog source already a survey source, or a detection within the cap of a source created
    after the worker's snapshot ``result.max_source_id``, is merged instead); every
    earlier measurement of the image (and of the backfilled ``(source, image)`` keys) is
    replaced; each touched source is updated (incrementally when it just gained one
    measurement, else from its own rows) and its flags set with ``opts``.

    Raises
    ------
    ProductsDBError
        Unknown image id, a non-finite flux; nothing is written.
    """
    opts = opts or VariabilityOptions()
    run, now = result.run, _now()
    with _base.transaction(conn, "sources"):
        if conn.execute("SELECT 1 FROM images WHERE id = ?", (run.image_id,)).fetchone() is None:
            raise ProductsDBError(f"unknown image id {run.image_id}: no such row in images")
        _upsert_run(conn, result, now)
        made = [_create_or_merge(conn, ns, result, now) for ns in result.new_sources]
        rows: dict[tuple[int, int], Measurement] = {}
        for m in result.measurements:
            sid = m.source_id if m.source_id is not None else made[m.new_index][0]
            rows.setdefault((sid, m.image_id), m)
        old_keys = {(r[0], r[1]) for r in conn.execute("SELECT source_id, image_id FROM measurements WHERE image_id = ?",
                                                       (run.image_id,))}
        for key in rows:
            if key[1] != run.image_id and conn.execute("SELECT 1 FROM measurements WHERE source_id = ? AND "
                                                       "image_id = ?", key).fetchone():
                old_keys.add(key)
        conn.executemany("DELETE FROM measurements WHERE source_id = ? AND image_id = ?", sorted(old_keys))
        conn.executemany(_M_SQL, [_m_values(sid, m) for (sid, _), m in rows.items()])
        gained: dict[int, list[Measurement]] = {}
        for (sid, _), m in rows.items():
            gained.setdefault(sid, []).append(m)
        lost = {sid for sid, _ in old_keys}
        ones = []
        for sid in sorted(set(gained) | lost):
            if sid in lost or len(gained.get(sid, [])) != 1:
                _recompute(conn, sid, opts, run.image_id)
            else:
                ones.append((sid, gained[sid][0]))
        _add_each(conn, ones, opts)
    return RecordSummary(run.image_id, len(rows), len(old_keys), tuple(i for i, _ in made),
                         sum(1 for _, merged in made if merged))


def _upsert_run(conn, result: PhotometryResult, now: str) -> None:
    d = asdict(result.run)
    d.update(dec_band=dec_band(result.run.dec_deg), n_forced=len(result.measurements),
             n_detections=result.n_detections, n_associated=result.n_associated,
             n_new_sources=len(result.new_sources), seconds=result.timings.get("total"), created_at=now)
    cols = list(d)
    sets = ", ".join(f"{c} = excluded.{c}" for c in cols if c != "image_id")
    conn.execute(f"INSERT INTO photometry_images ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) "
                 f"ON CONFLICT(image_id) DO UPDATE SET {sets}", [d[c] for c in cols])


_BATCH = 500
"""Sources read per query by :func:`_add_each`."""


def _add_each(conn, items: list[tuple[int, Measurement]], opts: VariabilityOptions) -> None:
    """Sources that gained one measurement each: their rows and earlier fluxes read in a few queries (by id, in
    index order), the new pairs' extrema of all at once, then :func:`_add_one` for each."""
    sids = sorted(sid for sid, _ in items)
    srcs: dict[int, sqlite3.Row] = {}
    prior: dict[int, list[tuple[int, float, float]]] = {sid: [] for sid in sids}
    for i in range(0, len(sids), _BATCH):
        chunk = sids[i:i + _BATCH]
        marks = ", ".join("?" * len(chunk))
        srcs.update((r["id"], r) for r in conn.execute(f"SELECT * FROM sources WHERE id IN ({marks})", chunk))
        for sid, image_id, f, e in conn.execute("SELECT source_id, image_id, flux_jy, flux_err_jy FROM measurements "
                                                f"WHERE source_id IN ({marks})", chunk):
            prior[sid].append((image_id, f, e))
    old = [(i, f, e) for i, (sid, m) in enumerate(items) for image_id, f, e in prior[sid] if image_id != m.image_id]
    of = np.array([o[1] for o in old], dtype=float)
    flux = np.array([m.flux_jy for _, m in items], dtype=float)
    err = k.total_error(flux, [m.flux_err_jy for _, m in items], opts.flux_sys_frac)
    vs, mm = k.pair_extrema_each(flux, err, of, k.total_error(of, [o[2] for o in old], opts.flux_sys_frac),
                                 [o[0] for o in old], opts.vs_min)
    for i, (sid, m) in enumerate(items):
        _add_one(conn, srcs[sid], m, float(err[i]), float(vs[i]), float(mm[i]), opts)


def _add_one(conn, src, m: Measurement, err: float, vs: float, mm: float, opts: VariabilityOptions) -> None:
    """One new measurement ``m`` (total error ``err``) of the source ``src`` (its row): O(1) on the sums; ``vs``
    and ``mm`` are the largest |Vs| and |m| of its new pairs (with the source's other measurements)."""
    s = k.flux_sums(m.flux_jy, err)
    new = {c: src[c] + s[c] for c in _SUMS}
    new.update(vs_max=max(src["vs_max"] or 0.0, vs), m_max=max(src["m_max"] or 0.0, mm),
               flux_max_jy=max(src["flux_max_jy"] if src["flux_max_jy"] is not None else -math.inf, m.flux_jy),
               first_mjd=min(src["first_mjd"] if src["first_mjd"] is not None else math.inf, m.mjd),
               last_mjd=max(src["last_mjd"] if src["last_mjd"] is not None else -math.inf, m.mjd),
               n_detections=src["n_detections"], first_seen_mjd=src["first_seen_mjd"],
               last_seen_mjd=src["last_seen_mjd"], **{c: src[c] for c in _POS})
    if m.kind == "detection":
        p = k.position_sums(src["ref_ra_deg"], src["ref_dec_deg"], m.det_ra_deg, m.det_dec_deg,
                            m.det_ra_err_arcsec, m.det_dec_err_arcsec)
        new.update({c: src[c] + p[c] for c in _POS}, n_detections=src["n_detections"] + 1,
                   first_seen_mjd=min(src["first_seen_mjd"] or math.inf, m.mjd),
                   last_seen_mjd=max(src["last_seen_mjd"] or -math.inf, m.mjd))
    _store(conn, src, new, opts)


def _recompute(conn, sid: int, opts: VariabilityOptions, image_id: int) -> None:
    """Everything of one source from its own rows (after a replacement); an orphan this image created is deleted."""
    src = conn.execute("SELECT * FROM sources WHERE id = ?", (sid,)).fetchone()
    rows = conn.execute("SELECT * FROM measurements WHERE source_id = ? ORDER BY mjd", (sid,)).fetchall()
    if not rows:
        if src["created_image_id"] == image_id:
            conn.execute("DELETE FROM sources WHERE id = ?", (sid,))
            return
    f = np.array([r["flux_jy"] for r in rows], dtype=float)
    e = k.total_error(f, [r["flux_err_jy"] for r in rows], opts.flux_sys_frac)
    new = k.flux_sums(f, e) if rows else {c: 0.0 for c in _SUMS}
    new["vs_max"], new["m_max"] = k.all_pair_extrema(f, e, opts.vs_min)
    det = [r for r in rows if r["kind"] == "detection"]
    p = k.position_sums(src["ref_ra_deg"], src["ref_dec_deg"], [r["det_ra_deg"] for r in det],
                        [r["det_dec_deg"] for r in det], [r["det_ra_err_arcsec"] for r in det],
                        [r["det_dec_err_arcsec"] for r in det]) if det else {c: 0.0 for c in _POS}
    t = [r["mjd"] for r in rows]
    td = [r["mjd"] for r in det]
    new.update(p, n_detections=len(det), flux_max_jy=float(f.max()) if rows else None,
               first_mjd=min(t, default=None), last_mjd=max(t, default=None),
               first_seen_mjd=min(td, default=None), last_seen_mjd=max(td, default=None))
    _store(conn, src, new, opts)


def _store(conn, src, new: dict, opts: VariabilityOptions) -> None:
    """Derived columns and flags from the updated sums, written back."""
    n = int(new["n_measurements"])
    v = k.variability(n, new["sum_w"], new["sum_wf"], new["sum_wf2"], new["sum_f"], new["sum_f2"])
    fin = lambda x: None if x is None or not math.isfinite(x) else float(x)  # noqa: E731
    new.update(n_measurements=n, flux_mean_jy=fin(v.mean), flux_wmean_jy=fin(v.wmean),
               flux_wmean_err_jy=fin(v.wmean_err), eta=fin(v.eta), v_index=fin(v.v), updated_at=_now())
    if new["pos_w_ra"] > 0 and new["pos_w_dec"] > 0:
        ra, dec, era, edec = k.mean_position(src["ref_ra_deg"], src["ref_dec_deg"], *(new[c] for c in _POS))
        new.update(ra_deg=ra, dec_deg=dec, dec_band=dec_band(dec), ra_err_arcsec=era, dec_err_arcsec=edec)
    new["is_variable"] = int(n >= opts.min_measurements and (v.eta or 0) >= opts.eta_min
                             and math.isfinite(v.v) and v.v >= opts.v_min)
    ns = src["new_sigma"]
    new["is_new"] = int(src["origin"] == "detection" and src["catalog_source_id"] is None and ns is not None
                        and ns >= opts.new_sigma_min)
    cols = list(new)
    conn.execute(f"UPDATE sources SET {', '.join(c + ' = ?' for c in cols)} WHERE id = ?",
                 [new[c] for c in cols] + [src["id"]])
