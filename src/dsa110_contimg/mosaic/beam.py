"""The drift-scan primary beam of one snapshot image, as the mosaic needs it.

:class:`DriftBeam` holds what the package's one drift-scan beam model,
:func:`dsa110_contimg.imaging.fits_products.drift_scan_pb`, reads from an MS
(integration times, band edges, pointing declination, fringe-stop meridian), so
the beam of an image can be rebuilt from its MS (:meth:`DriftBeam.from_msinfo`)
or from the ``PB*`` keywords the imager writes into every image
(:meth:`DriftBeam.from_header`, :data:`~dsa110_contimg.imaging.fits_products.PB_KEYWORDS`).
It does not model the beam itself: :meth:`DriftBeam.power` is ``drift_scan_pb``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import BadInputError
from ..imaging.fits_products import PB_KEYWORDS, drift_scan_pb
from ..ms import MSInfo


@dataclass(frozen=True)
class DriftBeam:
    """The drift-scan primary beam of one snapshot (a 309 s group)."""

    first_mjd: float
    """First integration centre (UTC MJD)."""
    last_mjd: float
    """Last integration centre (UTC MJD)."""
    n_times: int
    """Integrations (evenly spaced between the first and the last)."""
    freq_min_hz: float
    """Lowest channel (Hz)."""
    freq_max_hz: float
    """Highest channel (Hz)."""
    pointing_dec_deg: float
    """Apparent declination of the drift-scan pointing (deg)."""
    fringestop_lon_deg: float
    """East longitude of the fringe-stop meridian (deg)."""

    @classmethod
    def from_msinfo(cls, info: MSInfo) -> "DriftBeam":
        """The beam of an MS.

        Raises
        ------
        ValueError
            The MS carries no drift-scan pointing keywords.
        """
        dec, lon = info.pointing()
        t = info.times_mjd
        return cls(float(t[0]), float(t[-1]), int(t.size), float(info.freqs_hz.min()), float(info.freqs_hz.max()),
                   math.degrees(dec), math.degrees(lon))

    @classmethod
    def from_header(cls, header, name: str = "image") -> "DriftBeam":
        """The beam from the ``PB*`` keywords of an image header (written by the imaging stage).

        Raises
        ------
        BadInputError
            A keyword is missing or not a number; the message names ``name`` and the keywords.
        """
        missing = [k for k in PB_KEYWORDS if k not in header]
        if missing:
            raise BadInputError(f"{name}: no drift-scan beam keywords {', '.join(missing)} in the header "
                                "(not imaged by this pipeline version)")
        try:
            dec, lon, t0, t1, n, fmin, fmax = (float(header[k]) for k in PB_KEYWORDS)
        except (TypeError, ValueError) as exc:
            raise BadInputError(f"{name}: unreadable drift-scan beam keywords ({exc})") from None
        return cls(t0, t1, max(1, int(round(n))), fmin, fmax, dec, lon)

    @property
    def times_mjd(self) -> np.ndarray:
        """Integration centres (UTC MJD), as :attr:`dsa110_contimg.ms.MSInfo.times_mjd`."""
        return np.linspace(self.first_mjd, self.last_mjd, max(1, self.n_times))

    @property
    def freqs_hz(self) -> np.ndarray:
        """The band edges (Hz): all :func:`drift_scan_pb` reads of the channel frequencies."""
        return np.array([self.freq_min_hz, self.freq_max_hz])

    @property
    def pointing_dec_rad(self) -> float:
        """Apparent pointing declination (rad)."""
        return math.radians(self.pointing_dec_deg)

    @property
    def fringestop_lon_rad(self) -> float:
        """Fringe-stop meridian longitude (rad)."""
        return math.radians(self.fringestop_lon_deg)

    @property
    def mid_mjd(self) -> float:
        """Mid-time (UTC MJD)."""
        return 0.5 * (self.first_mjd + self.last_mjd)

    def power(self, ra_deg, dec_deg) -> np.ndarray:
        """Primary-beam power towards J2000 ``(ra, dec)`` (deg, any shape), averaged over the group's times
        and band: :func:`~dsa110_contimg.imaging.fits_products.drift_scan_pb`."""
        ra, dec = np.asarray(ra_deg, dtype=float), np.asarray(dec_deg, dtype=float)
        if ra.size == 0:
            return np.zeros(ra.shape)
        return drift_scan_pb(ra, dec, self)
