"""Telescope identity of the DSA-110 in one place: name, site, dish and antenna table.

The antenna table is read from a station-coordinates CSV in the format of
``DSA110_Station_Coordinates.csv`` (five preamble rows, then
``,Station Number,Latitude,Longitude,Elevation (meters)``).  Station
``DSA-001`` .. ``DSA-117`` becomes antenna name ``'1'`` .. ``'117'`` with antenna
number 0 .. 116.  A blank elevation falls back to :data:`DEFAULT_ELEVATION_M`.
The real table (public instrument data) ships with the package:
:func:`packaged_station_csv` is its path, :func:`resolve_station_csv` picks an
override (``PIPELINE_ANTPOS_CSV``, ``--antpos-csv``) or that default.
"""

from __future__ import annotations

import atexit
import csv
from contextlib import ExitStack
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from .errors import ContimgError

TELESCOPE_NAME = "OVRO_DSA"
"""Name the pipeline writes into its products."""
SITE_LON_DEG = -118.2817
"""Pipeline site longitude (deg, east positive)."""
SITE_LAT_DEG = 37.2314
"""Pipeline site geodetic latitude (deg)."""
SITE_ALT_M = 1222.0
"""Pipeline site altitude above the WGS84 ellipsoid (m)."""
DISH_DIAMETER_M = 4.65
"""Dish diameter of every DSA-110 antenna (m)."""
SEFD_JY = 5800.0
"""System-equivalent flux density of one dish (Jy; Tsys 25 K, 4.65 m, aperture efficiency 0.7)."""
DEFAULT_ELEVATION_M = 1182.6
"""Elevation used for a station whose CSV elevation is blank (m)."""
N_STATIONS = 117
"""Number of stations in the antenna table."""
INACTIVE_ANTENNAS = (10, 21, 22, 23, *range(52, 68), 117)
"""Antenna names (1-based) inactive in recent real data: 96 of 117 remain active."""

# Header site and fringe-stop longitude the correlator writes (see shared facts).
CORRELATOR_LAT_DEG = 37.233386982
CORRELATOR_LON_DEG = -118.283405115
CORRELATOR_ALT_M = 1188.0519
FRINGESTOP_LON_DEG = -118.283
"""Longitude of the meridian the correlator fringe-stops to (deg)."""
GROUP_SECONDS = 309.24
"""Cadence of the observation groups: time between the starts of consecutive groups (s)."""
INTEGRATION_S = 12.884902
"""Integration time of the correlator (96 x 0.134217728 s)."""

_WGS84_A = 6378137.0
_WGS84_F = 1.0 / 298.257223563


def geodetic_to_ecef(lat_deg, lon_deg, height_m) -> np.ndarray:
    """Convert WGS84 geodetic coordinates to Earth-centred Earth-fixed XYZ.

    Parameters
    ----------
    lat_deg, lon_deg, height_m : array_like
        Geodetic latitude and longitude (deg) and ellipsoidal height (m).

    Returns
    -------
    numpy.ndarray
        Shape ``(..., 3)`` ECEF (ITRF) coordinates in metres.
    """
    lat = np.radians(np.asarray(lat_deg, dtype=float))
    lon = np.radians(np.asarray(lon_deg, dtype=float))
    h = np.asarray(height_m, dtype=float)
    e2 = _WGS84_F * (2.0 - _WGS84_F)
    n = _WGS84_A / np.sqrt(1.0 - e2 * np.sin(lat) ** 2)
    x = (n + h) * np.cos(lat) * np.cos(lon)
    y = (n + h) * np.cos(lat) * np.sin(lon)
    z = (n * (1.0 - e2) + h) * np.sin(lat)
    return np.stack([x, y, z], axis=-1)


def site_ecef() -> np.ndarray:
    """ECEF position (m) of the pipeline's array reference position."""
    return geodetic_to_ecef(SITE_LAT_DEG, SITE_LON_DEG, SITE_ALT_M)


@dataclass(frozen=True)
class AntennaTable:
    """Antenna names, numbers and absolute ECEF positions."""

    names: tuple[str, ...]
    """Antenna names '1'..'117'."""
    numbers: np.ndarray
    """Antenna numbers 0..116 (as in the UVH5 files)."""
    stations: tuple[str, ...]
    """Station names 'DSA-001'..'DSA-117'."""
    ecef: np.ndarray
    """Absolute ECEF positions, shape (Nant, 3), metres."""
    source: str
    """Where the positions came from (CSV path or 'uvh5-header')."""

    def __len__(self) -> int:
        return len(self.names)

    def position_of(self, name: str) -> np.ndarray:
        """Return the ECEF position of antenna ``name``."""
        return self.ecef[self.names.index(str(name))]


class AntennaTableError(ContimgError, ValueError):
    """The station CSV is malformed; the message names the file and the row."""


def read_station_csv(path: str | Path) -> AntennaTable:
    """Read a DSA-110 station-coordinates CSV.

    Parameters
    ----------
    path
        CSV with five preamble rows, a header row containing ``Station Number``,
        ``Latitude``, ``Longitude`` and ``Elevation``, then one row per station.

    Returns
    -------
    AntennaTable
        Stations sorted by number, antenna ``DSA-NNN`` named ``str(NNN)``.

    Raises
    ------
    AntennaTableError
        When the header row is missing or a row cannot be parsed.
    """
    path = Path(path)
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    header_idx = None
    for i, row in enumerate(rows):
        cells = [c.strip().lower() for c in row]
        if any(c.startswith("station") for c in cells) and "latitude" in cells:
            header_idx = i
            break
    if header_idx is None:
        raise AntennaTableError(f"{path}: no header row with 'Station Number' and 'Latitude' found")
    cells = [c.strip().lower() for c in rows[header_idx]]
    i_st = next(i for i, c in enumerate(cells) if c.startswith("station"))
    i_lat = cells.index("latitude")
    i_lon = cells.index("longitude")
    i_el = next(i for i, c in enumerate(cells) if c.startswith("elevation"))
    entries = []
    for lineno, row in enumerate(rows[header_idx + 1:], start=header_idx + 2):
        if len(row) <= i_st or not row[i_st].strip():
            continue
        station = row[i_st].strip()
        try:
            number = int(station.split("-")[-1])
            lat = float(row[i_lat])
            lon = float(row[i_lon])
            el_text = row[i_el].strip() if len(row) > i_el else ""
            el = float(el_text) if el_text else DEFAULT_ELEVATION_M
        except (ValueError, IndexError) as exc:
            raise AntennaTableError(f"{path}: line {lineno}: cannot parse station row {row!r} ({exc})") from exc
        entries.append((number, station, lat, lon, el))
    if not entries:
        raise AntennaTableError(f"{path}: no station rows after the header")
    entries.sort()
    numbers = np.array([e[0] for e in entries])
    ecef = geodetic_to_ecef([e[2] for e in entries], [e[3] for e in entries], [e[4] for e in entries])
    return AntennaTable(
        names=tuple(str(n) for n in numbers),
        numbers=numbers - 1,
        stations=tuple(e[1] for e in entries),
        ecef=ecef,
        source=str(path),
    )


STATION_CSV_NAME = "DSA110_Station_Coordinates.csv"
"""File name of the station table shipped in ``dsa110_contimg/data``."""

_RESOURCES = ExitStack()
atexit.register(_RESOURCES.close)


@lru_cache(maxsize=1)
def packaged_station_csv() -> Path:
    """Path of the DSA-110 station table shipped with the package (``data/DSA110_Station_Coordinates.csv``).

    Found through :mod:`importlib.resources`, so it resolves in a source checkout, an editable install and an
    installed wheel alike (a zipped install gets a temporary copy that lives as long as the process).

    Raises
    ------
    AntennaTableError
        The installation lacks the file (a broken build that dropped the package data).
    """
    ref = resources.files("dsa110_contimg") / "data" / STATION_CSV_NAME
    path = Path(_RESOURCES.enter_context(resources.as_file(ref)))
    if not path.is_file():
        raise AntennaTableError(f"{path}: the packaged station table is missing from this installation")
    return path


def resolve_station_csv(override: str | Path | None = None) -> Path:
    """The station table to read: ``override`` when given (``PIPELINE_ANTPOS_CSV``, ``--antpos-csv``), else the
    packaged one (:func:`packaged_station_csv`)."""
    return Path(override) if override is not None else packaged_station_csv()


def antenna_table_from_header(names, numbers, rel_positions, telescope_ecef) -> AntennaTable:
    """Build an :class:`AntennaTable` from UVH5 header arrays.

    Parameters
    ----------
    names : sequence of str
        ``antenna_names``.
    numbers : array_like
        ``antenna_numbers``.
    rel_positions : array_like
        ``antenna_positions`` relative to the telescope location (m, ECEF axes).
    telescope_ecef : array_like
        Telescope location in ECEF (m).
    """
    names = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)
    return AntennaTable(
        names=names,
        numbers=np.asarray(numbers, dtype=int),
        stations=tuple(f"DSA-{int(n):03d}" if n.isdigit() else n for n in names),
        ecef=np.asarray(rel_positions, dtype=float) + np.asarray(telescope_ecef, dtype=float),
        source="uvh5-header",
    )
