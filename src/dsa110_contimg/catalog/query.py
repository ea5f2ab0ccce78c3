"""Queries of the master catalog used by the rest of the pipeline.

* :func:`cone_search`: sources within a radius, via the ``(dec_band, ra_deg)`` index
  (one RA range scan per declination band touched), then an exact great-circle cut.
* :func:`brightest_references`: the compact references near a direction, ranked
  by their primary-beam-weighted flux at a frequency, using the package's one beam
  model :func:`dsa110_contimg.beam.beam_response`.

Both return numpy structured arrays sorted by separation resp. apparent flux.

Examples
--------
>>> conn = open_catalog("state/catalogs/master_sources.sqlite3")  # doctest: +SKIP
>>> rows = cone_search(conn, 129.3, 55.2, 2.0)                    # doctest: +SKIP
>>> refs = brightest_references(conn, 129.3, 55.2, 3.0, freq_hz=1.4e9, n=5)  # doctest: +SKIP
"""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import numpy as np

from ..beam import beam_response, separation_deg
from . import schema
from .crossmatch import NVSS_FREQ_HZ
from .errors import CatalogError

CONE_COLUMNS = ("source_id", "ra_deg", "dec_deg", "s_nvss", "snr_nvss", "s_vlass", "alpha",
                "resolved_flag", "confusion_flag")
"""Columns returned by default (``resolved_flag`` -1 where unknown); all in the covering position index."""
_DTYPES = {name: dt for name, _, dt, _ in schema.SOURCE_COLUMNS}
_INT_NULL = -1
DEFAULT_ALPHA = -0.7
"""Spectral index assumed by :func:`brightest_references` where ``alpha`` is unknown (``table='sources'``)."""


def open_catalog(path: str | Path) -> sqlite3.Connection:
    """Open the master catalog read-only.

    Raises
    ------
    CatalogError
        The file does not exist or is not a master catalog.
    """
    path = Path(path)
    if not path.is_file():
        raise CatalogError(f"{path}: master catalog not found (build it with 'contimg catalog build-master')")
    conn = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True, check_same_thread=False)
    try:
        ok = schema.has_table(conn, "sources")
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise CatalogError(f"{path}: not an SQLite master catalog ({exc})") from None
    if not ok:
        conn.close()
        raise CatalogError(f"{path}: no 'sources' table; not a master catalog")
    return conn


def _conn(db) -> tuple[sqlite3.Connection, bool]:
    if isinstance(db, sqlite3.Connection):
        return db, False
    return open_catalog(db), True


def read_meta(db) -> dict[str, str]:
    """The ``meta`` table as a dict."""
    conn, owned = _conn(db)
    try:
        return dict(conn.execute("SELECT key, value FROM meta").fetchall())
    finally:
        if owned:
            conn.close()


def ra_ranges(ra_deg: float, dec_deg: float, radius_deg: float) -> list[tuple[float, float]]:
    """RA intervals (deg, within [0, 360]) that contain the whole cone.

    The half-width is ``asin(sin r / cos dec)``; a cone touching a pole spans all RA.
    """
    if abs(dec_deg) + radius_deg >= 90.0:
        return [(0.0, 360.0)]
    half = math.degrees(math.asin(min(1.0, math.sin(math.radians(radius_deg)) / math.cos(math.radians(dec_deg)))))
    half += 1e-9
    if half >= 180.0:
        return [(0.0, 360.0)]
    lo, hi = ra_deg % 360.0 - half, ra_deg % 360.0 + half
    if lo < 0:
        return [(0.0, hi), (lo + 360.0, 360.0)]
    if hi > 360:
        return [(lo, 360.0), (0.0, hi - 360.0)]
    return [(lo, hi)]


def _check_table(conn: sqlite3.Connection, table: str) -> None:
    if table not in schema.VIEWS:
        raise CatalogError(f"unknown table {table!r}; expected one of {', '.join(schema.VIEWS)}")
    if not schema.has_table(conn, table):
        raise CatalogError(f"table {table!r} is not in this catalog (build with --materialize-final)")


def cone_search(db, ra_deg: float, dec_deg: float, radius_deg: float, table: str = "sources",
                columns: tuple[str, ...] = CONE_COLUMNS, min_flux_jy: float | None = None) -> np.ndarray:
    """Sources within ``radius_deg`` of ``(ra_deg, dec_deg)``.

    Parameters
    ----------
    db : sqlite3.Connection or path
        Catalog (a connection from :func:`open_catalog` for repeated queries).
    ra_deg, dec_deg
        Cone centre (J2000, deg).
    radius_deg
        Cone radius (deg).
    table
        ``sources``, ``good_references``, ``final_references`` or ``final_references_table``.
    columns
        Columns of ``sources`` to return (``sep_deg`` is always added).
    min_flux_jy
        Only sources with ``s_nvss >= min_flux_jy``.

    Returns
    -------
    numpy.ndarray
        Structured array with ``columns`` + ``sep_deg``, sorted by separation.
        Missing floats are NaN, missing integers -1.
    """
    conn, owned = _conn(db)
    try:
        _check_table(conn, table)
        bad = [c for c in columns if c not in _DTYPES]
        if bad:
            raise CatalogError(f"unknown column(s) {', '.join(bad)}; known: {', '.join(_DTYPES)}")
        cols = tuple(dict.fromkeys(("ra_deg", "dec_deg") + tuple(columns)))
        select = ", ".join(f"IFNULL({c}, {_INT_NULL})" if _DTYPES[c] == "i8" else c for c in cols)
        dec_lo, dec_hi = max(-90.0, dec_deg - radius_deg), min(90.0, dec_deg + radius_deg)
        b_lo = int(math.floor((dec_lo + 90.0) / schema.DEC_BAND_DEG))
        b_hi = int(math.floor((dec_hi + 90.0) / schema.DEC_BAND_DEG))
        bands = ", ".join(str(b) for b in range(b_lo, b_hi + 1))
        extra = "" if min_flux_jy is None else f" AND s_nvss >= {float(min_flux_jy)!r}"
        sql = (f"SELECT {select} FROM {table} WHERE dec_band IN ({bands}) AND ra_deg >= ? AND ra_deg <= ? "
               f"AND dec_deg >= ? AND dec_deg <= ?{extra}")
        rows: list[tuple] = []
        for lo, hi in ra_ranges(ra_deg, dec_deg, radius_deg):
            rows.extend(conn.execute(sql, (lo, hi, dec_lo, dec_hi)).fetchall())
    finally:
        if owned:
            conn.close()
    out = np.empty(0, dtype=[(c, _DTYPES[c]) for c in columns] + [("sep_deg", "f8")])
    if not rows:
        return out
    data = {c: np.array(v, dtype=float if _DTYPES[c] == "f8" else np.int64) for c, v in zip(cols, zip(*rows))}
    sep = separation_deg(ra_deg, dec_deg, data["ra_deg"], data["dec_deg"])
    keep = np.flatnonzero(sep <= radius_deg)
    keep = keep[np.argsort(sep[keep], kind="stable")]
    out = np.empty(len(keep), dtype=out.dtype)
    for c in columns:
        out[c] = data[c][keep]
    out["sep_deg"] = sep[keep]
    return out


def brightest_references(db, ra_deg: float, dec_deg: float, radius_deg: float, freq_hz: float = 1.4e9,
                         n: int = 10, pointing_ra_deg: float | None = None, pointing_dec_deg: float | None = None,
                         table: str = "good_references", min_apparent_jy: float = 0.0) -> np.ndarray:
    """The brightest compact references near a direction, weighted by the primary beam.

    Each reference's flux at ``freq_hz`` is extrapolated from ``s_nvss`` with its
    ``alpha`` (:data:`DEFAULT_ALPHA` where unknown) and multiplied by :func:`dsa110_contimg.beam.beam_response` for the
    pointing; the ``n`` largest apparent fluxes are returned.

    Parameters
    ----------
    db : sqlite3.Connection or path
        Catalog.
    ra_deg, dec_deg
        Search centre (deg).
    radius_deg
        Search radius (deg).
    freq_hz
        Observing frequency (Hz).
    n
        Number of references to return.
    pointing_ra_deg, pointing_dec_deg
        Beam centre (deg); default the search centre.
    table
        Reference set: ``good_references`` (default), ``final_references``,
        ``final_references_table`` or ``sources``.
    min_apparent_jy
        Drop references fainter than this after beam weighting (Jy).

    Returns
    -------
    numpy.ndarray
        Structured array: the cone columns plus ``sep_deg``, ``s_freq_jy`` (flux at
        ``freq_hz``), ``pb_weight`` and ``apparent_jy``, brightest first.
    """
    rows = cone_search(db, ra_deg, dec_deg, radius_deg, table=table)
    p_ra = ra_deg if pointing_ra_deg is None else pointing_ra_deg
    p_dec = dec_deg if pointing_dec_deg is None else pointing_dec_deg
    alpha = np.where(np.isfinite(rows["alpha"]), rows["alpha"], DEFAULT_ALPHA)
    s_freq = rows["s_nvss"] * (freq_hz / NVSS_FREQ_HZ) ** alpha
    weight = beam_response(np.radians(rows["ra_deg"]), np.radians(rows["dec_deg"]),
                           math.radians(p_ra), math.radians(p_dec), freq_hz)
    dtype = rows.dtype.descr + [("s_freq_jy", "f8"), ("pb_weight", "f8"), ("apparent_jy", "f8")]
    out = np.empty(len(rows), dtype=dtype)
    for name in rows.dtype.names:
        out[name] = rows[name]
    out["s_freq_jy"] = s_freq
    out["pb_weight"] = weight
    out["apparent_jy"] = s_freq * weight
    out = out[out["apparent_jy"] >= min_apparent_jy]
    order = np.argsort(-out["apparent_jy"], kind="stable")
    return out[order[:n]]
