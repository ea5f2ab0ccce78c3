"""Records of the products database (one dataclass a table) and their conversion to and from rows.

Each record field has a *kind* (``_MS_KINDS``, ``_IMAGE_KINDS``,
``_DETECTION_KINDS``) saying how its value is checked and converted for the
database (:func:`_to_db`) and back (:func:`_from_db`).  Everything here is
re-exported by :mod:`dsa110_contimg.db.products`.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any, Sequence

from .products_schema import ProductsDBError
from .sqlite_base import finite_float

@dataclass
class MSRecord:
    """One Measurement Set in ``ms_index``; ``None`` fields are unknown (and left unchanged by upserts)."""

    path: str
    """Path of the Measurement Set (the key); stored absolute."""
    start_mjd: float | None = None
    """Start of the data (MJD UTC)."""
    end_mjd: float | None = None
    """End of the data (MJD UTC)."""
    mid_mjd: float | None = None
    """Middle of the data (MJD UTC); derived from start and end when not given."""
    processed_at: str | None = None
    """When the pipeline processed the MS (ISO 8601 UTC)."""
    status: str | None = None
    """Outcome of the current stage, e.g. ``'ok'``, ``'running'``, ``'failed'``."""
    stage: str | None = None
    """Pipeline stage reached, e.g. ``'converted'``, ``'calibrated'``, ``'imaged'``."""
    stage_updated_at: str | None = None
    """When ``stage`` last changed (ISO 8601 UTC); stamped automatically."""
    cal_applied: bool | None = None
    """Whether calibration tables were applied to the MS."""
    imagename: str | None = None
    """Image name (prefix) of the products made from the MS."""
    ra_deg: float | None = None
    """Pointing/phase-centre right ascension (deg, ICRS)."""
    dec_deg: float | None = None
    """Pointing/phase-centre declination (deg, ICRS)."""


@dataclass
class ImageRecord:
    """One image product in ``images``; ``None`` fields are unknown (and left unchanged by upserts)."""

    path: str
    """Path of the image (the key); stored absolute."""
    ms_path: str | None = None
    """Measurement Set the image was made from; stored absolute."""
    created_at: str | None = None
    """Creation time (ISO 8601 UTC); set to now when first inserted without one."""
    type: str | None = None
    """Kind of product, e.g. ``'image'``, ``'pbcor'``, ``'residual'``, ``'model'``, ``'psf'``."""
    beam_major_arcsec: float | None = None
    """Restoring beam major axis FWHM (arcsec)."""
    noise_jy: float | None = None
    """Robust (MAD-based) image rms (Jy/beam)."""
    pbcor: bool | None = None
    """Whether the image is primary-beam corrected."""
    beam_minor_arcsec: float | None = None
    """Restoring beam minor axis FWHM (arcsec)."""
    beam_pa_deg: float | None = None
    """Restoring beam position angle (deg, east of north)."""
    peak_jy: float | None = None
    """Brightest pixel (Jy/beam)."""
    dynamic_range: float | None = None
    """Peak over robust rms."""
    backend: str | None = None
    """Imager that made it, e.g. ``'wsclean'`` or ``'tclean'``."""
    freq_hz: float | None = None
    """Reference frequency (Hz)."""
    thumbnail_path: str | None = None
    """PNG thumbnail; stored absolute."""
    qa_plot_path: str | None = None
    """QA plot (PNG); stored absolute."""
    fits_path: str | None = None
    """FITS export of the image when ``path`` is not FITS; stored absolute."""
    n_detections: int | None = None
    """Number of detections; maintained by :func:`replace_detections`."""
    flux_ratio_median: float | None = None
    """Median measured/catalog flux ratio of the crossmatched detections."""
    astrometry_offset_arcsec: float | None = None
    """Median astrometric offset of the crossmatched detections from the catalog (arcsec)."""
    qa: dict[str, Any] | None = None
    """Further QA numbers (stored as JSON in ``qa_json``); replaced as a whole on upsert."""
    timings: dict[str, Any] | None = None
    """Processing times per step, seconds (stored as JSON in ``timings_json``); replaced as a whole."""
    status: str | None = None
    """QA verdict or product state, e.g. ``'ok'``, ``'warn'``, ``'failed'``."""
    flux_scale_ratio: float | None = None
    """Median measured/catalog flux of the compact, bright, isolated references (schema 8)."""
    flux_scale_err: float | None = None
    """1-sigma error of ``flux_scale_ratio``."""
    flux_scale_n: int | None = None
    """Number of references of the flux scale."""
    thermal_noise_jy: float | None = None
    """Thermal noise predicted from the MS's weights, flags and the imaging weighting (Jy/beam)."""
    rms_over_thermal: float | None = None
    """``noise_jy`` over ``thermal_noise_jy``."""
    ref_offset_arcsec: float | None = None
    """Median offset of the flux-scale references from their catalog positions (arcsec)."""
    quality_state: str | None = None
    """Worst quality-gate state: ``'pass'``, ``'warn'`` or ``'fail'``; None: not assessed."""
    gates: dict[str, Any] | None = None
    """``{"state": ..., "gates": [{name, value, warn, fail, state, higher_is_worse}, ...], ...}`` (``gates_json``)."""
    id: int | None = None
    """Row id (set by the database; ignored by :func:`upsert_image`)."""


@dataclass
class Detection:
    """One source detected in an image, with its catalog match (``catalog_*`` are ``None`` when unmatched)."""

    ra_deg: float
    """Right ascension (deg, ICRS)."""
    dec_deg: float
    """Declination (deg, ICRS)."""
    ra_err_arcsec: float | None = None
    """1-sigma error of the right ascension (arcsec)."""
    dec_err_arcsec: float | None = None
    """1-sigma error of the declination (arcsec)."""
    peak_jy: float | None = None
    """Peak flux density (Jy/beam)."""
    peak_err_jy: float | None = None
    """1-sigma error of the peak flux density (Jy/beam)."""
    int_jy: float | None = None
    """Integrated flux density (Jy)."""
    int_err_jy: float | None = None
    """1-sigma error of the integrated flux density (Jy)."""
    snr: float | None = None
    """Signal-to-noise ratio (peak over local rms)."""
    catalog_source_id: int | None = None
    """Id of the matched master-catalog source."""
    catalog_sep_arcsec: float | None = None
    """Separation from the matched catalog source (arcsec)."""
    catalog_flux_jy: float | None = None
    """Catalog flux density of the match, at the image frequency (Jy)."""
    flux_ratio: float | None = None
    """Measured (primary-beam corrected when QA had the pbcor image) over catalog flux density."""
    image_id: int | None = None
    """Image the detection belongs to (set by :func:`replace_detections`)."""
    id: int | None = None
    """Row id (set by the database)."""


# column kinds: how a dataclass value is checked/converted for the database and back
_TEXT, _REAL, _BOOL, _INT, _JSON, _PATH = "text", "real", "bool", "int", "json", "path"

_MS_KINDS: dict[str, str] = {
    "path": _PATH, "start_mjd": _REAL, "end_mjd": _REAL, "mid_mjd": _REAL, "processed_at": _TEXT,
    "status": _TEXT, "stage": _TEXT, "stage_updated_at": _TEXT, "cal_applied": _BOOL, "imagename": _TEXT,
    "ra_deg": _REAL, "dec_deg": _REAL,
}
_IMAGE_KINDS: dict[str, str] = {
    "path": _PATH, "ms_path": _PATH, "created_at": _TEXT, "type": _TEXT, "beam_major_arcsec": _REAL,
    "noise_jy": _REAL, "pbcor": _BOOL, "beam_minor_arcsec": _REAL, "beam_pa_deg": _REAL, "peak_jy": _REAL,
    "dynamic_range": _REAL, "backend": _TEXT, "freq_hz": _REAL, "thumbnail_path": _PATH,
    "qa_plot_path": _PATH, "fits_path": _PATH, "n_detections": _INT, "flux_ratio_median": _REAL,
    "astrometry_offset_arcsec": _REAL, "qa": _JSON, "timings": _JSON, "status": _TEXT,
    "flux_scale_ratio": _REAL, "flux_scale_err": _REAL, "flux_scale_n": _INT, "thermal_noise_jy": _REAL,
    "rms_over_thermal": _REAL, "ref_offset_arcsec": _REAL, "quality_state": _TEXT, "gates": _JSON,
}
_IMAGE_DB_NAME = {"qa": "qa_json", "timings": "timings_json", "gates": "gates_json"}
_DETECTION_KINDS: dict[str, str] = {
    "ra_deg": _REAL, "dec_deg": _REAL, "ra_err_arcsec": _REAL, "dec_err_arcsec": _REAL, "peak_jy": _REAL,
    "peak_err_jy": _REAL, "int_jy": _REAL, "int_err_jy": _REAL, "snr": _REAL, "catalog_source_id": _INT,
    "catalog_sep_arcsec": _REAL, "catalog_flux_jy": _REAL, "flux_ratio": _REAL,
}


# --------------------------------------------------------------------------- conversion helpers


def _abspath(path: str | os.PathLike[str], what: str) -> str:
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path).strip():
        raise ProductsDBError(f"{what} must be a non-empty path, got {path!r}")
    return os.path.abspath(os.path.expanduser(os.fspath(path)))


def _jsonable(value: Any) -> Any:
    """Plain JSON types: numpy scalars/arrays unwrapped, paths as text, non-finite floats as ``None``."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "tolist") and callable(value.tolist):  # numpy scalar or array
        return _jsonable(value.tolist())
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _to_db(kind: str, value: Any, what: str) -> Any:
    """Check and convert one value for the database (``None`` passes through)."""
    if value is None:
        return None
    if kind == _PATH:
        return _abspath(value, what)
    if kind == _TEXT:
        if not isinstance(value, str):
            raise ProductsDBError(f"{what}={value!r} must be a string")
        return value
    if kind == _BOOL:
        if isinstance(value, (bool, int)) or type(value).__name__ == "bool_":
            return 1 if bool(value) else 0
        raise ProductsDBError(f"{what}={value!r} must be a bool")
    if kind == _INT:
        if isinstance(value, bool):
            raise ProductsDBError(f"{what}={value!r} must be an integer")
        try:
            i = int(value)
        except (TypeError, ValueError):
            raise ProductsDBError(f"{what}={value!r} is not an integer") from None
        if i != value:
            raise ProductsDBError(f"{what}={value!r} is not an integer")
        return i
    if kind == _REAL:
        return finite_float(value, what, ProductsDBError, reject_bool=True, hint=" (use None for unknown)")
    if kind == _JSON:
        if not isinstance(value, dict):
            raise ProductsDBError(f"{what} must be a dict, got {type(value).__name__}")
        try:
            return json.dumps(_jsonable(value), sort_keys=True, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ProductsDBError(f"{what} is not JSON-serialisable: {exc}") from None
    raise AssertionError(kind)


def _from_db(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == _BOOL:
        return bool(value)
    if kind == _JSON:
        try:
            out = json.loads(value)
        except ValueError:
            return {"_unparsed": value}
        return out if isinstance(out, dict) else {"_value": out}
    return value


def _record_values(rec: Any, kinds: dict[str, str], db_name: dict[str, str], label: str) -> dict[str, Any]:
    """Column name -> database value for every field of ``rec`` in ``kinds``."""
    return {db_name.get(n, n): _to_db(k, getattr(rec, n), f"{label}.{n}") for n, k in kinds.items()}


def _row_to(cls: type, row: sqlite3.Row | None, kinds: dict[str, str], db_name: dict[str, str],
            extra: Sequence[str] = ()) -> Any:
    """Build a record from a row; columns an older schema lacks come back as ``None``."""
    if row is None:
        return None
    keys = set(row.keys())
    kwargs = {n: _from_db(k, row[db_name.get(n, n)]) if db_name.get(n, n) in keys else None
              for n, k in kinds.items()}
    for n in extra:
        kwargs[n] = row[n] if n in keys else None
    return cls(**kwargs)


# --------------------------------------------------------------------------- SQL and argument helpers


def _upsert_sql(table: str, key: str, columns: Sequence[str], special: dict[str, str] | None = None) -> str:
    """``INSERT .. ON CONFLICT(key) DO UPDATE`` keeping the stored value of every column given as NULL."""
    special = special or {}
    sets = [f"{c} = {special.get(c, f'COALESCE(excluded.{c}, {table}.{c})')}" for c in columns if c != key]
    return (f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)}) "
            f"ON CONFLICT({key}) DO UPDATE SET {', '.join(sets)}")


def _page(limit: int, offset: int) -> tuple[int, int]:
    for name, v in (("limit", limit), ("offset", offset)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ProductsDBError(f"{name}={v!r} must be a non-negative integer")
    return limit, offset


def _check_name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ProductsDBError(f"{what} must be a non-empty string, got {value!r}")
    return value.strip()
