"""Survey sources and their light curves in the products database: ``sources``, ``measurements``, ``photometry_images``.

Written only by the daemon (:func:`record_photometry`, one transaction per image);
read by workers (:func:`sources_in_cone`, :func:`earlier_images`, :func:`max_source_id`)
and by the API/CLI (:func:`list_sources`, :func:`count_sources`, :func:`get_source`,
:func:`get_measurements`, :func:`get_image_measurements`).  The schema is migration 5 of
:mod:`~dsa110_contimg.db.products_schema`.

A measurement is keyed by ``(source_id, image_id)``: recording an image again (a
reprocessed group) replaces its measurements instead of adding to them.  Each source
keeps running sums of its measurements (``w = 1/e**2`` with ``e`` the error including
:attr:`~dsa110_contimg.photometry.models.VariabilityOptions.flux_sys_frac`), so one new
measurement updates n, the weighted mean, eta and V in O(1), and the largest two-epoch
|Vs| and m from the new pairs only (that source's rows); a source that lost or replaced
rows is recomputed from its own rows.

Examples
--------
>>> rows = list_sources(conn, variable=True, min_eta=5.0, limit=50)   # doctest: +SKIP
>>> src = get_source(conn, rows[0].id); lc = get_measurements(conn, src.id)   # doctest: +SKIP
"""

from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass, fields

import numpy as np

from ..photometry.models import ImageRun
from .products_schema import ProductsDBError
from .sources_write import DEC_BAND_DEG, RecordSummary, _cone_sql, dec_band, sep_deg, record_photometry  # noqa: F401

ETA_SELECTIVE = 1.0
"""With both ``min_eta`` and ``min_v``, eta's index serves a threshold above this (a steady source's eta is
about 1, so such a threshold leaves few sources), V's index a lower one (see :func:`_filters`)."""
ORDERS = {"id": "id", "eta": "eta DESC, id", "v": "v_index DESC, id", "last": "last_mjd DESC, id",
          "flux": "flux_wmean_jy DESC, id", "n": "n_measurements DESC, id"}
"""Orders of :func:`list_sources`."""


@dataclass(frozen=True)
class SourceRecord:
    """One row of ``sources`` (without the running sums)."""

    id: int
    """Source id."""
    name: str
    """Name from its first position (``DSA Jhhmmss.s+ddmmss``)."""
    ra_deg: float
    """Weighted mean position of its detections (the catalog position before any), deg."""
    dec_deg: float
    """Weighted mean position (deg)."""
    ra_err_arcsec: float | None
    """Error of the position on the sky (arcsec)."""
    dec_err_arcsec: float | None
    """Error of the position (arcsec)."""
    origin: str
    """'catalog' (a master-catalog source) or 'detection'."""
    catalog_source_id: int | None
    """Master-catalog counterpart, if any."""
    catalog_sep_arcsec: float | None
    """Distance to it (arcsec)."""
    catalog_flux_jy: float | None
    """Its ``s_nvss`` (Jy)."""
    n_measurements: int
    """Measurements (forced and detections)."""
    n_detections: int
    """Of which with an associated blind detection."""
    flux_mean_jy: float | None
    """Mean flux (Jy)."""
    flux_wmean_jy: float | None
    """Weighted mean flux (Jy)."""
    flux_wmean_err_jy: float | None
    """Its error (Jy)."""
    flux_max_jy: float | None
    """Largest flux (Jy)."""
    eta: float | None
    """Weighted reduced chi-square about the weighted mean."""
    v_index: float | None
    """Modulation index V (standard deviation over mean)."""
    vs_max: float | None
    """Largest two-epoch |Vs| over pairs of measurements."""
    m_max: float | None
    """Largest two-epoch |m| over the pairs with |Vs| >= ``vs_min`` (0: none)."""
    first_mjd: float | None
    """First measurement (MJD)."""
    last_mjd: float | None
    """Last measurement (MJD)."""
    first_seen_mjd: float | None
    """First detection (MJD)."""
    last_seen_mjd: float | None
    """Last detection (MJD)."""
    new_sigma: float | None
    """How far its first detection exceeded earlier images' forced fluxes (sigma); None: not computed."""
    is_new: bool
    """New source (see :class:`~dsa110_contimg.photometry.models.VariabilityOptions`)."""
    is_variable: bool
    """Variable (eta, V and n at least the thresholds)."""
    created_at: str | None
    """When it was created (UTC ISO)."""
    created_image_id: int | None
    """Image that created it."""


@dataclass(frozen=True)
class MeasurementRecord:
    """One point of a light curve, with its image's group and MS."""

    id: int
    """Measurement id."""
    source_id: int
    """Source."""
    image_id: int
    """Image (``images.id``)."""
    mjd: float
    """Time: the image's mid-time (MJD)."""
    kind: str
    """'detection' or 'forced'."""
    flux_jy: float
    """Beam-corrected forced flux (Jy)."""
    flux_err_jy: float
    """Its error from the local noise (Jy)."""
    local_rms_jy: float | None
    """Local noise of a beam fit there, beam-corrected (Jy)."""
    pb: float | None
    """Beam attenuation."""
    ra_deg: float | None
    """Position measured (deg)."""
    dec_deg: float | None
    """Position measured (deg)."""
    detection_id: int | None
    """The associated ``detections.id`` (as when recorded)."""
    sep_arcsec: float | None
    """Detection - source (arcsec)."""
    de_ruiter: float | None
    """De Ruiter radius of the association."""
    backfilled: bool
    """Measured after the fact in an earlier image."""
    note: str | None
    """Association notes."""
    group_id: str | None
    """The image's group."""
    ms_path: str | None
    """The image's Measurement Set."""
    image_path: str | None
    """The pb-corrected image measured."""


_NAMES: dict[type, tuple[str, ...]] = {}
_M_NAMES = [f.name for f in fields(MeasurementRecord)]
_M_SELECT = ", ".join({"group_id": "p.group_id", "ms_path": "p.ms_path", "image_path": "p.pbcor_path"}.get(n, f"m.{n}")
                      for n in _M_NAMES) + \
    " FROM measurements m LEFT JOIN photometry_images p ON p.image_id = m.image_id"
_M_BOOL = _M_NAMES.index("backfilled")


def _measurements(rows) -> list[MeasurementRecord]:
    """Records from rows of ``SELECT {_M_SELECT}`` (the columns in the fields' order)."""
    out = []
    for r in rows:
        v = list(r)
        v[_M_BOOL] = bool(v[_M_BOOL])
        out.append(MeasurementRecord(*v))
    return out


def _row(cls, row):
    if row is None:
        return None
    names = _NAMES.get(cls) or _NAMES.setdefault(cls, tuple(f.name for f in fields(cls)))
    d = {n: row[n] for n in names}
    for b in ("is_new", "is_variable", "backfilled"):
        if b in d:
            d[b] = bool(d[b])
    return cls(**d)


# --------------------------------------------------------------------------- reads (workers)


def max_source_id(conn: sqlite3.Connection) -> int:
    """Largest ``sources.id`` (0 when empty)."""
    return int(conn.execute("SELECT IFNULL(MAX(id), 0) FROM sources").fetchone()[0])


def sources_in_cone(conn: sqlite3.Connection, ra_deg: float, dec_deg: float, radius_deg: float) -> dict:
    """Sources within ``radius_deg``: arrays ``id, ra_deg, dec_deg, ra_err_arcsec, dec_err_arcsec,
    catalog_source_id`` (-1: none), through the ``(dec_band, ra_deg)`` index."""
    cols = "id, ra_deg, dec_deg, ra_err_arcsec, dec_err_arcsec, IFNULL(catalog_source_id, -1)"
    rows = [r for sql, args in _cone_sql("sources", cols, ra_deg, dec_deg, radius_deg) for r in conn.execute(sql, args)]
    a = np.array([tuple(r) for r in rows], dtype=float).reshape(len(rows), 6)
    keep = sep_deg(ra_deg, dec_deg, a[:, 1], a[:, 2]) <= radius_deg if len(rows) else np.zeros(0, bool)
    a = a[keep]
    return {"id": a[:, 0].astype(np.int64), "ra_deg": a[:, 1], "dec_deg": a[:, 2], "ra_err_arcsec": a[:, 3],
            "dec_err_arcsec": a[:, 4], "catalog_source_id": a[:, 5].astype(np.int64)}


_RUN_FIELDS = [f.name for f in fields(ImageRun)]


def earlier_images(conn: sqlite3.Connection, ra_deg: float, dec_deg: float, before_mjd: float,
                   limit: int = 20, max_radius_deg: float = 6.0) -> list[ImageRun]:
    """Photometered images before ``before_mjd`` whose footprint covers ``(ra, dec)``, most recent first."""
    cols = ", ".join(_RUN_FIELDS)
    out = []
    for sql, args in _cone_sql("photometry_images", cols, ra_deg, dec_deg, max_radius_deg, " AND mid_mjd < ?"):
        out.extend(ImageRun(**dict(zip(_RUN_FIELDS, r))) for r in conn.execute(sql, [*args, before_mjd]))
    out = [r for r in out if float(sep_deg(ra_deg, dec_deg, r.ra_deg, r.dec_deg)) <= r.radius_deg]
    return sorted(out, key=lambda r: -r.mid_mjd)[:limit]


# --------------------------------------------------------------------------- reads (API / CLI)


def _filters(variable, new, min_eta, min_v) -> tuple[str, list]:
    """``" FROM sources ... WHERE ..."`` and its arguments for the filters of :func:`list_sources`.

    With both thresholds SQLite (no statistics) may walk V's index, which most sources pass
    (noise alone gives the faint ones V > 0.1), checking eta row by row, or walk it for the
    order alone: the index is then named, eta's for a threshold above :data:`ETA_SELECTIVE`
    (few sources pass it), else V's.
    """
    where, args = [], []
    if variable is not None:
        where.append("is_variable = ?")
        args.append(int(bool(variable)))
    if new is not None:
        where.append("is_new = ?")
        args.append(int(bool(new)))
    for col, v in (("eta", min_eta), ("v_index", min_v)):
        if v is not None:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ProductsDBError(f"min {col}={v!r} must be a finite number")
            where.append(f"{col} >= ?")
            args.append(float(v))
    table = " FROM sources"
    if min_eta is not None and min_v is not None:
        table += f" INDEXED BY {'idx_sources_eta' if min_eta > ETA_SELECTIVE else 'idx_sources_v'}"
    return table + ((" WHERE " + " AND ".join(where)) if where else ""), args


def list_sources(conn: sqlite3.Connection, variable: bool | None = None, new: bool | None = None,
                 min_eta: float | None = None, min_v: float | None = None, limit: int = 100, offset: int = 0,
                 order: str = "id") -> list[SourceRecord]:
    """Sources, filtered (``variable``/``new`` flags, eta and V at least ``min_eta``/``min_v``) and paged.

    ``order``: one of :data:`ORDERS` (``id`` ascending, ``eta``/``v``/``flux``/``last`` descending).
    """
    for name, v in (("limit", limit), ("offset", offset)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ProductsDBError(f"{name}={v!r} must be a non-negative integer")
    if order not in ORDERS:
        raise ProductsDBError(f"order={order!r}; expected one of {', '.join(ORDERS)}")
    where, args = _filters(variable, new, min_eta, min_v)
    # the page's ids first (through an index alone when one serves the order), then only their rows
    rows = conn.execute(f"SELECT * FROM sources WHERE id IN (SELECT id{where} ORDER BY {ORDERS[order]} "
                        f"LIMIT ? OFFSET ?) ORDER BY {ORDERS[order]}", (*args, limit, offset))
    return [_row(SourceRecord, r) for r in rows]


def count_sources(conn: sqlite3.Connection, variable: bool | None = None, new: bool | None = None,
                  min_eta: float | None = None, min_v: float | None = None) -> int:
    """Number of rows :func:`list_sources` pages through with the same filters."""
    where, args = _filters(variable, new, min_eta, min_v)
    return int(conn.execute(f"SELECT COUNT(*){where}", args).fetchone()[0])


def get_source(conn: sqlite3.Connection, source_id: int) -> SourceRecord | None:
    """One source, or None."""
    return _row(SourceRecord, conn.execute("SELECT * FROM sources WHERE id = ?", (int(source_id),)).fetchone())


def get_measurements(conn: sqlite3.Connection, source_id: int) -> list[MeasurementRecord]:
    """A source's light curve by time, each point with its image's group, MS and image path."""
    return _measurements(conn.execute(f"SELECT {_M_SELECT} WHERE m.source_id = ? ORDER BY m.mjd, m.image_id",
                                      (int(source_id),)))


def get_image_measurements(conn: sqlite3.Connection, image_id: int) -> list[MeasurementRecord]:
    """Every measurement of one image (through the ``image_id`` index), by source."""
    return _measurements(conn.execute(f"SELECT {_M_SELECT} WHERE m.image_id = ? ORDER BY m.source_id",
                                      (int(image_id),)))


def image_measurement_count(conn: sqlite3.Connection, image_id: int) -> int:
    """Measurements of one image."""
    return int(conn.execute("SELECT COUNT(*) FROM measurements WHERE image_id = ?", (int(image_id),)).fetchone()[0])


__all__ = ["SourceRecord", "MeasurementRecord", "RecordSummary", "DEC_BAND_DEG", "ORDERS", "dec_band",
           "max_source_id", "sources_in_cone", "earlier_images", "list_sources", "count_sources", "get_source",
           "get_measurements", "get_image_measurements", "image_measurement_count", "record_photometry"]
