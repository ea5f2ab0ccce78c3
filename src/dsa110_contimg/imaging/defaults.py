"""Imaging defaults derived from the array and the data: cell size and image size."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..beam import SPEED_OF_LIGHT, airy_power
from ..geometry import SIDEREAL_DEG_PER_DAY
from ..ms import MSInfo, read_ms_info
from ..telescope import DISH_DIAMETER_M
from ..timeconv import SECONDS_PER_DAY

GOOD_SIZES = sorted({2**a * 3**b * 5**c for a in range(1, 14) for b in range(3) for c in range(2)
                     if 64 <= 2**a * 3**b * 5**c <= 8192 and (2**a * 3**b * 5**c) % 2 == 0})
"""Even FFT-friendly image sizes."""


@dataclass
class MSGeometry:
    """What the imaging defaults depend on."""

    max_uv_m: float
    """Longest projected baseline (m)."""
    p90_uv_m: float
    """90th percentile of the projected baseline lengths (m): sets the synthesized beam."""
    freq_min_hz: float
    """Lowest channel frequency."""
    freq_max_hz: float
    """Highest channel frequency."""
    duration_s: float
    """Time span of the data."""
    dec_rad: float
    """Declination of the phase centre."""


def read_geometry(ms_path: str | Path, info: MSInfo | None = None) -> MSGeometry:
    """Read the quantities the defaults need from an MS: projected baselines and time span of the unflagged
    cross-correlations; frequencies and phase centre from :func:`~dsa110_contimg.ms.read_ms_info`."""
    from casacore.tables import table, taql

    with table(str(ms_path), ack=False) as t:
        sub = taql("SELECT UVW, TIME, INTERVAL FROM $t WHERE ANTENNA1 != ANTENNA2 AND NOT FLAG_ROW")
        uvw, times, dt = sub.getcol("UVW"), sub.getcol("TIME"), float(np.max(sub.getcol("INTERVAL")))
    uvd = np.hypot(uvw[:, 0], uvw[:, 1])
    uv, p90, t0, t1 = float(uvd.max()), float(np.percentile(uvd, 90)), float(times.min()), float(times.max())
    info = info or read_ms_info(ms_path)
    f = info.freqs_hz
    return MSGeometry(uv, p90, float(f.min()), float(f.max()), t1 - t0 + dt, info.phase_centre_rad[1])


def pb_radius_rad(level: float, freq_hz: float, diameter_m: float = DISH_DIAMETER_M) -> float:
    """Radius at which the primary-beam power falls to ``level`` (first lobe)."""
    from scipy.optimize import brentq

    first_null = 1.2197 * SPEED_OF_LIGHT / freq_hz / diameter_m
    return float(brentq(lambda th: airy_power(th, freq_hz, diameter_m) - level, 1e-6, first_null * 0.999))


def good_size(n: int) -> int:
    """Smallest FFT-friendly even size >= n."""
    for s in GOOD_SIZES:
        if s >= n:
            return s
    return GOOD_SIZES[-1]


def default_cell_and_size(geom: MSGeometry, pb_level: float = 0.1, oversample: float = 4.0,
                          max_size: int | None = None) -> tuple[float, int]:
    """Cell (arcsec) about a quarter of the synthesized beam, and an image size covering the
    drift-scan primary beam down to ``pb_level`` at the lowest frequency.

    The synthesized beam is taken as lambda_min / B_90 with B_90 the 90th percentile of the
    projected baseline lengths (a few long outrigger baselines do not set the beam of the
    weighted image); the field is the primary-beam radius plus half the distance the sky
    drifts through the beam during the group.
    """
    beam = SPEED_OF_LIGHT / geom.freq_max_hz / max(geom.p90_uv_m, 1.0)
    cell = float(np.degrees(beam / oversample) * 3600)
    cell = max(0.1, np.floor(cell * 10) / 10)
    drift = np.radians(geom.duration_s * SIDEREAL_DEG_PER_DAY / SECONDS_PER_DAY) * np.cos(geom.dec_rad)
    radius = pb_radius_rad(pb_level, geom.freq_min_hz) + drift / 2
    size = good_size(int(np.ceil(2 * np.degrees(radius) * 3600 / cell)))
    if max_size is not None:
        size = min(size, max_size)
    return cell, size
