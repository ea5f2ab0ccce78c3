"""Find calibrators that transit through the drift-scan beam during (or near) a group."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..beam import airy_power
from ..catalog.calibrators import Calibrator, bundled_calibrators
from ..catalog.query import cone_search
from ..geometry import SIDEREAL_DEG_PER_DAY, meridian_j2000
from ..ms import read_ms_info
from ..telescope import FRINGESTOP_LON_DEG


@dataclass
class FindOptions:
    """Options of :func:`find_calibrators` (mirrors ``contimg calibrators find``)."""

    window_minutes: float = 60.0
    """Also accept transits up to half this window before the group's start or after its end."""
    min_pb_response: float = 0.3
    """Minimum primary-beam power response at transit."""
    dec_tolerance_deg: float = 2.0
    """Maximum |dec(calibrator) - dec(pointing)|."""
    freq_hz: float = 1.4e9
    """Frequency of the beam response and flux ranking."""
    catalog_path: Path | None = None
    """Master catalog whose final_references are added to the bundled list (when it exists)."""
    catalog_min_flux_jy: float = 1.0
    """Only catalog references at least this bright."""


@dataclass
class CalibratorTransit:
    """A calibrator and its transit through the beam."""

    calibrator: Calibrator
    """The calibrator."""
    transit_mjd: float
    """Time it crosses the meridian (UTC MJD)."""
    pb_response: float
    """Primary-beam power response at transit."""
    weighted_flux_jy: float
    """Flux density times beam response at ``freq_hz``."""
    in_group: bool
    """Transit inside the group's time range."""
    source: str
    """'bundled' or 'catalog'."""


def _catalog_references(path: Path, ra_deg: float, dec_deg: float, radius_deg: float,
                        min_flux_jy: float) -> list[Calibrator]:
    rows = cone_search(path, ra_deg, dec_deg, radius_deg, table="final_references", min_flux_jy=min_flux_jy)
    out = []
    for r in rows:
        alpha = float(r["alpha"]) if np.isfinite(r["alpha"]) else -0.7
        out.append(Calibrator(name=f"NVSS_{int(r['source_id'])}", alt_name="", ra_deg=float(r["ra_deg"]),
                              dec_deg=float(r["dec_deg"]), flux_jy=float(r["s_nvss"]), alpha=alpha, flux_standard=""))
    return out


def find_calibrators(start_mjd: float, end_mjd: float, dec_deg: float, opts: FindOptions | None = None,
                     lon_deg: float | None = None) -> list[CalibratorTransit]:
    """Calibrators transiting within the group's time range (or the window around it).

    Parameters
    ----------
    start_mjd, end_mjd
        Time range of the group (UTC MJD).
    dec_deg
        Apparent pointing declination (deg), as in the files' ``phase_center_dec``; compared
        with the calibrators after conversion to J2000.
    opts
        Selection options.
    lon_deg
        Longitude of the meridian (default: the fringe-stop meridian).

    Returns
    -------
    list of CalibratorTransit
        Ranked by beam-weighted flux, brightest first.
    """
    opts = opts or FindOptions()
    lon = np.radians(FRINGESTOP_LON_DEG if lon_deg is None else lon_deg)
    mid = 0.5 * (start_mjd + end_mjd)
    ra_mid, dec_j2000 = (float(x) for x in np.degrees(meridian_j2000(np.radians(dec_deg), [mid], lon)[0]))
    half = 0.5 * (end_mjd - start_mjd) + opts.window_minutes / 2 / 1440.0
    cands = [(c, "bundled") for c in bundled_calibrators()]
    if opts.catalog_path is not None and Path(opts.catalog_path).is_file():
        radius = min(180.0, half * SIDEREAL_DEG_PER_DAY + opts.dec_tolerance_deg + 1.0)
        cands += [(c, "catalog") for c in _catalog_references(Path(opts.catalog_path), ra_mid, dec_j2000, radius,
                                                               opts.catalog_min_flux_jy)]
    out = []
    for cal, origin in cands:
        if abs(cal.dec_deg - dec_j2000) > opts.dec_tolerance_deg:
            continue
        dra = (cal.ra_deg - ra_mid + 180.0) % 360.0 - 180.0
        transit = mid + dra / SIDEREAL_DEG_PER_DAY
        if abs(transit - mid) > half:
            continue
        pb = float(airy_power(np.radians(abs(cal.dec_deg - dec_j2000)), opts.freq_hz))
        if pb < opts.min_pb_response:
            continue
        flux = float(cal.flux_at(opts.freq_hz))
        out.append(CalibratorTransit(cal, float(transit), pb, flux * pb, start_mjd <= transit <= end_mjd, origin))
    out.sort(key=lambda t: -t.weighted_flux_jy)
    return out


def ms_time_range_and_dec(ms_path: str | Path) -> tuple[float, float, float]:
    """(start_mjd, end_mjd, pointing dec deg) of an MS written by the converter (from its MSInfo)."""
    info = read_ms_info(ms_path)
    return info.start_mjd, info.end_mjd, float(np.degrees(info.pointing()[0]))
