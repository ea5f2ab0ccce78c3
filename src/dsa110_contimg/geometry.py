"""Interferometer geometry shared by the simulator and the converter.

All sky-to-Earth transformations go through casacore measures (the same
library and the same measures data CASA uses), so that simulated delays,
recomputed UVW and CASA's own view of the MS agree to well below a millimetre.

Conventions
-----------
* Baseline vector ``b = x(ant2) - x(ant1)`` in ITRF (metres).
* Visibility of a point source of flux ``S`` in direction ``s`` (unit vector,
  ITRF, apparent) after fringe-stopping to direction ``s0``::

      V = S * exp(+2j * pi * b . (s - s0) * f / c)

  This is pyuvdata's UVH5 convention (its ``phase`` multiplies by
  ``exp(-2 pi i (w_new - w_old) / lambda)``); pyuvdata's MS writer and our
  direct MS writer translate it to the Measurement Set convention.  Checked
  end to end by imaging simulated sources with CASA at their true positions.
* The correlator fringe-stops every integration to the meridian (HA = 0) at the
  pointing declination, a direction fixed in the Earth frame:
  :func:`meridian_itrf_direction`.
"""

from __future__ import annotations

import numpy as np

from .telescope import site_ecef

SIDEREAL_DEG_PER_DAY = 360.98564736629
"""Rotation of the Earth relative to the stars (deg per UTC day): how fast the sky drifts through the beam."""


def _measures():
    from casacore.measures import measures

    return measures()


def _position_measure(dm, ecef):
    from casacore import quanta as qa

    x, y, z = (float(v) for v in ecef)
    return dm.position("ITRF", qa.quantity(x, "m"), qa.quantity(y, "m"), qa.quantity(z, "m"))


def _site_frame(site):
    """A casacore measures server with the observer position set; returns (server, site ECEF)."""
    site = site_ecef() if site is None else np.asarray(site, dtype=float)
    dm = _measures()
    dm.do_frame(_position_measure(dm, site))
    return dm, site


def hadec_to_itrf(ha_rad, dec_rad, lon_rad) -> np.ndarray:
    """Unit vector in ITRF of a direction given by hour angle and declination.

    Parameters
    ----------
    ha_rad, dec_rad : array_like
        Hour angle (west positive) and declination (rad).
    lon_rad : float
        East longitude (rad) of the meridian the hour angle refers to.

    Returns
    -------
    numpy.ndarray
        Shape ``(..., 3)``.
    """
    ha = np.asarray(ha_rad, dtype=float)
    dec = np.asarray(dec_rad, dtype=float)
    az = lon_rad - ha
    return np.stack([np.cos(dec) * np.cos(az), np.cos(dec) * np.sin(az), np.sin(dec) * np.ones_like(az)], axis=-1)


def meridian_itrf_direction(dec_rad: float, lon_rad: float) -> np.ndarray:
    """ITRF unit vector of the meridian (HA = 0) at declination ``dec_rad``."""
    return hadec_to_itrf(0.0, dec_rad, lon_rad)


def apparent_itrf_directions(ra_rad, dec_rad, mjd_utc, site=None) -> np.ndarray:
    """Apparent directions of J2000 (ICRS) sources as ITRF unit vectors.

    Includes precession, nutation, aberration and Earth rotation (casacore
    ``J2000 -> HADEC`` conversion for an observer at ``site``).

    Parameters
    ----------
    ra_rad, dec_rad : array_like
        J2000 source coordinates (rad), shape ``(Nsrc,)``.
    mjd_utc : array_like
        UTC times (MJD days), shape ``(Ntime,)``.
    site : array_like, optional
        Observer ECEF position (m); default: the pipeline's site.

    Returns
    -------
    numpy.ndarray
        Shape ``(Ntime, Nsrc, 3)``.
    """
    from casacore import quanta as qa

    ra = np.atleast_1d(np.asarray(ra_rad, dtype=float))
    dec = np.atleast_1d(np.asarray(dec_rad, dtype=float))
    times = np.atleast_1d(np.asarray(mjd_utc, dtype=float))
    dm, site = _site_frame(site)
    lon = float(np.arctan2(site[1], site[0]))
    out = np.empty((times.size, ra.size, 3))
    for it, t in enumerate(times):
        dm.do_frame(dm.epoch("UTC", qa.quantity(float(t), "d")))
        for isrc in range(ra.size):
            d = dm.direction("J2000", qa.quantity(float(ra[isrc]), "rad"), qa.quantity(float(dec[isrc]), "rad"))
            h = dm.measure(d, "HADEC")
            out[it, isrc] = hadec_to_itrf(h["m0"]["value"], h["m1"]["value"], lon)
    return out


def j2000_uvw_matrices(ra_rad: float, dec_rad: float, mjd_utc, site=None) -> np.ndarray:
    """Rotation matrices taking ITRF baselines to J2000 UVW for a phase centre.

    ``uvw = M[t] @ b`` reproduces casacore's ``MBaseline -> Muvw`` conversion,
    the one CASA uses to fill the UVW column.

    Parameters
    ----------
    ra_rad, dec_rad
        J2000 phase centre (rad).
    mjd_utc : array_like
        UTC times (MJD days), shape ``(Ntime,)``.
    site : array_like, optional
        Observer ECEF position (m); default: the pipeline's site.

    Returns
    -------
    numpy.ndarray
        Shape ``(Ntime, 3, 3)``.
    """
    from casacore import quanta as qa

    times = np.atleast_1d(np.asarray(mjd_utc, dtype=float))
    dm, site = _site_frame(site)
    dm.do_frame(dm.direction("J2000", qa.quantity(float(ra_rad), "rad"), qa.quantity(float(dec_rad), "rad")))
    unit = dm.baseline("ITRF", qa.quantity([1.0, 0.0, 0.0], "m"), qa.quantity([0.0, 1.0, 0.0], "m"),
                       qa.quantity([0.0, 0.0, 1.0], "m"))
    out = np.empty((times.size, 3, 3))
    for it, t in enumerate(times):
        dm.do_frame(dm.epoch("UTC", qa.quantity(float(t), "d")))
        xyz = np.asarray(dm.to_uvw(unit)["xyz"].get_value("m"), dtype=float).reshape(3, 3)
        out[it] = xyz.T
    return out


def meridian_uvw_matrix(dec_rad: float, lon_rad: float) -> np.ndarray:
    """Rotation taking ITRF baselines to UVW towards the meridian at ``dec_rad``.

    ``u`` points east, ``v`` towards the north celestial pole projected on the
    sky, ``w`` towards (HA = 0, dec).  This is the single reference-time UVW the
    correlator writes and repeats for every integration.
    """
    w = meridian_itrf_direction(dec_rad, lon_rad)
    u = np.array([-np.sin(lon_rad), np.cos(lon_rad), 0.0])
    v = np.cross(w, u)
    return np.stack([u, v, w])


def meridian_j2000(dec_rad: float, mjd_utc, lon_rad: float, site=None) -> np.ndarray:
    """J2000 coordinates of the meridian direction (HA = 0, apparent dec) at given times.

    Parameters
    ----------
    dec_rad
        Apparent declination of the meridian direction (the pointing, rad).
    mjd_utc : array_like
        UTC times (MJD days).
    lon_rad
        East longitude (rad) of the meridian.
    site : array_like, optional
        Observer ECEF position (m) for aberration; default: the pipeline's site.

    Returns
    -------
    numpy.ndarray
        Shape ``(Ntime, 2)``: J2000 RA in [0, 2 pi) and Dec (rad).
    """
    from casacore import quanta as qa

    times = np.atleast_1d(np.asarray(mjd_utc, dtype=float))
    dm, site = _site_frame(site)
    site_lon = float(np.arctan2(site[1], site[0]))
    out = np.empty((times.size, 2))
    for i, t in enumerate(times):
        dm.do_frame(dm.epoch("UTC", qa.quantity(float(t), "d")))
        # HA relative to the observer's meridian of the direction on the given meridian.
        ha = site_lon - lon_rad
        d = dm.direction("HADEC", qa.quantity(ha, "rad"), qa.quantity(float(dec_rad), "rad"))
        j = dm.measure(d, "J2000")
        out[i] = (j["m0"]["value"] % (2 * np.pi), j["m1"]["value"])
    return out
