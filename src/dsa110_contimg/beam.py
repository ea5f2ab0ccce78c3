"""The one primary-beam model of the package: an Airy pattern of a 4.65 m dish.

Power response ``(2 J1(x) / x)**2`` with ``x = pi * D * sin(theta) / lambda``
(uniform illumination, FWHM ~= 1.03 lambda / D ~= 2.7 deg at 1.4 GHz).  The
simulator attenuates its sky with it, and the pipeline uses it for calibrator
selection, sky models and primary-beam correction.
"""

from __future__ import annotations

import numpy as np

from .telescope import DISH_DIAMETER_M

SPEED_OF_LIGHT = 299_792_458.0
"""Speed of light (m/s)."""


def airy_power(theta_rad, freq_hz, diameter_m: float = DISH_DIAMETER_M) -> np.ndarray:
    """Primary-beam power response of a uniformly illuminated circular dish.

    Parameters
    ----------
    theta_rad : array_like
        Angular distance from the pointing centre (rad).
    freq_hz : array_like
        Frequency (Hz); broadcast against ``theta_rad``.
    diameter_m
        Dish diameter (m).

    Returns
    -------
    numpy.ndarray
        Response in [0, 1], 1 on axis.
    """
    from scipy.special import j1

    theta = np.asarray(theta_rad, dtype=float)
    freq = np.asarray(freq_hz, dtype=float)
    x = np.pi * diameter_m * np.sin(theta) * freq / SPEED_OF_LIGHT
    x = np.where(np.abs(x) < 1e-9, 1e-9, x)
    return (2.0 * j1(x) / x) ** 2


def angular_separation(ra1_rad, dec1_rad, ra2_rad, dec2_rad) -> np.ndarray:
    """Great-circle distance between two directions (Vincenty formula, rad): the package's one angular separation.

    Accurate at every distance (unlike the haversine near antipodes or the cosine formula near 0);
    :func:`separation_deg` is the same in degrees."""
    dra = np.asarray(ra2_rad) - np.asarray(ra1_rad)
    s1, c1 = np.sin(dec1_rad), np.cos(dec1_rad)
    s2, c2 = np.sin(dec2_rad), np.cos(dec2_rad)
    num = np.hypot(c2 * np.sin(dra), c1 * s2 - s1 * c2 * np.cos(dra))
    den = s1 * s2 + c1 * c2 * np.cos(dra)
    return np.arctan2(num, den)


def separation_deg(ra1_deg, dec1_deg, ra2_deg, dec2_deg) -> np.ndarray:
    """:func:`angular_separation` of directions given in degrees, in degrees (broadcast)."""
    return np.degrees(angular_separation(np.radians(ra1_deg), np.radians(dec1_deg), np.radians(ra2_deg),
                                         np.radians(dec2_deg)))


def beam_response(src_ra_rad, src_dec_rad, point_ra_rad, point_dec_rad, freq_hz,
                  diameter_m: float = DISH_DIAMETER_M) -> np.ndarray:
    """Primary-beam power response towards a source for a given pointing.

    Parameters
    ----------
    src_ra_rad, src_dec_rad : array_like
        Source direction (rad).
    point_ra_rad, point_dec_rad : array_like
        Pointing direction (rad), e.g. the meridian at the pointing declination.
    freq_hz : array_like
        Frequency (Hz).
    diameter_m
        Dish diameter (m).
    """
    theta = angular_separation(src_ra_rad, src_dec_rad, point_ra_rad, point_dec_rad)
    return airy_power(theta, freq_hz, diameter_m)


def fwhm_rad(freq_hz: float, diameter_m: float = DISH_DIAMETER_M) -> float:
    """Full width at half maximum of :func:`airy_power` (rad)."""
    return 1.028993 * SPEED_OF_LIGHT / freq_hz / diameter_m
