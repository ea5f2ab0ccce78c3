"""Facts of a Measurement Set, read once: :class:`MSInfo` and :func:`read_ms_info`.

Every stage that needs an MS's times, frequencies, phase centre or drift-scan
pointing reads them here, with python-casacore, in one pass over the main table
and its subtables.  The module also owns the main-table keywords the pipeline
writes into its Measurement Sets:

* ``DSA110_POINTING_DEC_RAD``, ``DSA110_FRINGESTOP_LON_RAD``: the drift-scan
  pointing (apparent declination and the meridian the correlator fringe-stopped
  to), written by the converter (:func:`stamp_pointing`), read by
  :func:`read_pointing`.
* ``DSA110_CORRECTED_IS_CALIBRATED`` (bool) and ``DSA110_CALIBRATION_SET``
  (name): whether CORRECTED_DATA holds calibrated data.  The converter writes
  False (its CORRECTED_DATA is a copy of DATA), the apply stage True once
  applycal has succeeded (:func:`mark_corrected`).  An MS without the keyword
  (not written by this pipeline) counts as not calibrated.

casacore and astropy are imported by the functions that need them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .timeconv import SECONDS_PER_DAY, ms_seconds_to_time

if TYPE_CHECKING:  # pragma: no cover
    from astropy.time import Time

POINTING_DEC_KEY = "DSA110_POINTING_DEC_RAD"
"""Main-table keyword: apparent declination of the drift-scan pointing (rad)."""
FRINGESTOP_LON_KEY = "DSA110_FRINGESTOP_LON_RAD"
"""Main-table keyword: east longitude of the fringe-stop meridian (rad)."""
CORRECTED_KEY = "DSA110_CORRECTED_IS_CALIBRATED"
"""Main-table keyword: True when CORRECTED_DATA holds applied calibration."""
CALSET_KEY = "DSA110_CALIBRATION_SET"
"""Main-table keyword: name of the calibration set applied ('' when none)."""


@dataclass(frozen=True, eq=False)
class MSInfo:
    """What the stages need to know about one Measurement Set (see :func:`read_ms_info`)."""

    path: Path
    """The MS."""
    times: "Time"
    """Distinct integration centres (UTC), ascending."""
    integration_s: float
    """Integration time (median INTERVAL, s)."""
    freqs_hz: np.ndarray
    """Channel frequencies of the first spectral window (Hz)."""
    channel_width_hz: float
    """Channel width (Hz)."""
    field_names: tuple[str, ...]
    """FIELD::NAME per field."""
    field_dirs_rad: np.ndarray
    """J2000 phase centre (ra, dec) per field, shape (Nfield, 2), rad."""
    pointing_dec_rad: float | None
    """Apparent declination of the drift-scan pointing (None: not written by this pipeline)."""
    fringestop_lon_rad: float | None
    """Longitude of the fringe-stop meridian (None: not written by this pipeline)."""
    telescope: str
    """OBSERVATION::TELESCOPE_NAME."""
    n_rows: int
    """Rows of the main table."""
    n_antennas: int
    """Rows of the ANTENNA table."""
    n_pols: int
    """Correlations per visibility."""
    corrected_is_calibrated: bool
    """CORRECTED_DATA holds applied calibration (the explicit keyword, never a comparison of columns)."""
    calibration_set: str = ""
    """Calibration set applied ('' when none)."""

    @property
    def n_channels(self) -> int:
        """Channels of the first spectral window."""
        return int(self.freqs_hz.size)

    @property
    def n_times(self) -> int:
        """Distinct integrations."""
        return len(self.times)

    @property
    def times_mjd(self) -> np.ndarray:
        """Integration centres (UTC MJD)."""
        return np.atleast_1d(self.times.mjd)

    @property
    def start_mjd(self) -> float:
        """Start of the data: first integration centre minus half an integration (UTC MJD)."""
        return float(self.times_mjd[0] - self.integration_s / 2 / SECONDS_PER_DAY)

    @property
    def end_mjd(self) -> float:
        """End of the data: last integration centre plus half an integration (UTC MJD)."""
        return float(self.times_mjd[-1] + self.integration_s / 2 / SECONDS_PER_DAY)

    @property
    def mid_mjd(self) -> float:
        """Mid-time of the data (UTC MJD)."""
        return float(0.5 * (self.times_mjd[0] + self.times_mjd[-1]))

    @property
    def start(self) -> "Time":
        """Start of the data as a ``Time``."""
        from astropy.time import Time

        return Time(self.start_mjd, format="mjd", scale="utc")

    @property
    def date_obs(self) -> str:
        """Start of the data, ISO UTC (FITS ``DATE-OBS``)."""
        return self.start.isot

    @property
    def phase_centre_rad(self) -> tuple[float, float]:
        """J2000 (ra, dec) of the first field (rad)."""
        return float(self.field_dirs_rad[0, 0]), float(self.field_dirs_rad[0, 1])

    def pointing(self) -> tuple[float, float]:
        """(apparent pointing dec, fringe-stop longitude) in rad.

        Raises
        ------
        ValueError
            The MS carries no pointing keywords (not written by dsa110-contimg).
        """
        return _require_pointing(self.path, self.pointing_dec_rad, self.fringestop_lon_rad)


def read_ms_info(path: str | Path) -> MSInfo:
    """Read the facts of an MS in one pass (python-casacore, read-only).

    Raises
    ------
    RuntimeError
        casacore cannot open the MS or one of its subtables.
    """
    from casacore.tables import table

    path = Path(path)
    with table(str(path), ack=False) as t:
        times = np.unique(t.getcol("TIME"))
        interval = float(np.median(t.getcol("INTERVAL")))
        n_rows = t.nrows()
        kw = t.getkeywords()
    with table(f"{path}/ANTENNA", ack=False) as t:
        n_ant = t.nrows()
    with table(f"{path}/SPECTRAL_WINDOW", ack=False) as t:
        freqs = np.asarray(t.getcell("CHAN_FREQ", 0), dtype=float)
        width = float(t.getcell("CHAN_WIDTH", 0)[0])
    with table(f"{path}/POLARIZATION", ack=False) as t:
        n_pols = int(t.getcell("NUM_CORR", 0))
    with table(f"{path}/FIELD", ack=False) as t:
        names = tuple(str(n) for n in t.getcol("NAME"))
        dirs = np.asarray(t.getcol("PHASE_DIR")[:, 0, :], dtype=float)
    with table(f"{path}/OBSERVATION", ack=False) as t:
        tel = str(t.getcell("TELESCOPE_NAME", 0))
    dec = float(kw[POINTING_DEC_KEY]) if POINTING_DEC_KEY in kw else None
    lon = float(kw[FRINGESTOP_LON_KEY]) if FRINGESTOP_LON_KEY in kw else None
    return MSInfo(path=path, times=ms_seconds_to_time(times), integration_s=interval, freqs_hz=freqs,
                  channel_width_hz=width, field_names=names, field_dirs_rad=dirs, pointing_dec_rad=dec,
                  fringestop_lon_rad=lon, telescope=tel, n_rows=n_rows, n_antennas=n_ant, n_pols=n_pols,
                  corrected_is_calibrated=bool(kw.get(CORRECTED_KEY, False)),
                  calibration_set=str(kw.get(CALSET_KEY, "")))


def stamp_pointing(ms, dec_rad: float, lon_rad: float) -> None:
    """Record the drift-scan pointing (apparent dec, fringe-stop meridian) as main-table keywords of the
    open, writable table ``ms``."""
    ms.putkeyword(POINTING_DEC_KEY, float(dec_rad))
    ms.putkeyword(FRINGESTOP_LON_KEY, float(lon_rad))


def read_pointing(ms_path) -> tuple[float, float]:
    """(apparent pointing dec, fringe-stop longitude) in rad, as written by the converter.

    Raises
    ------
    ValueError
        The MS carries no pointing keywords (not written by dsa110-contimg).
    """
    from casacore.tables import table

    with table(str(ms_path), ack=False) as t:
        kw = t.getkeywords()
    return _require_pointing(ms_path, kw.get(POINTING_DEC_KEY), kw.get(FRINGESTOP_LON_KEY))


def _require_pointing(path, dec, lon) -> tuple[float, float]:
    if dec is None or lon is None:
        raise ValueError(f"{path}: no {POINTING_DEC_KEY} keyword (not written by dsa110-contimg)")
    return float(dec), float(lon)


def mark_corrected(ms, calibrated: bool, set_name: str = "") -> None:
    """Record in the open, writable table ``ms`` whether its CORRECTED_DATA holds calibrated data
    (and from which calibration set)."""
    ms.putkeyword(CORRECTED_KEY, bool(calibrated))
    ms.putkeyword(CALSET_KEY, str(set_name) if calibrated else "")


def flagged_fraction(ms_path: str | Path) -> float:
    """Fraction of flagged visibilities of an MS (now: it changes as stages flag)."""
    from casacore.tables import table, taql

    with table(str(ms_path), ack=False) as ms:  # noqa: F841 - used by TaQL as $ms
        r = taql("SELECT gsum(ntrue(FLAG)) AS NF, gsum(nelements(FLAG)) AS NE FROM $ms")
        nf, ne = float(r.getcol("NF")[0]), float(r.getcol("NE")[0])
    return nf / ne if ne else 0.0
