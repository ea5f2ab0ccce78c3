"""Time conversions in one place: MS seconds, MJD, JD, Unix time, ``datetime`` and astropy ``Time``.

All times are UTC.  A Measurement Set's TIME column holds seconds since MJD 0
(1858-11-17T00:00 UTC); MJD here is in days.  The functions take floats or numpy
arrays alike.  Only the standard library is imported at module level (the CLI
stays fast); astropy is imported by the two functions that make or read a ``Time``.

>>> ms_seconds_to_mjd(mjd_to_ms_seconds(60000.5))
60000.5
>>> unix_to_mjd(0.0)
40587.0
>>> mjd_to_iso(40587.0)
'1970-01-01T00:00:00Z'
"""

from __future__ import annotations

import time as _time
from datetime import datetime, timedelta, timezone

SECONDS_PER_DAY = 86400.0
"""Seconds in a (UTC) day."""
MJD_UNIX_EPOCH = 40587.0
"""MJD of the Unix epoch 1970-01-01T00:00 UTC."""
JD_MJD_OFFSET = 2400000.5
"""JD - MJD."""
MJD_EPOCH = datetime(1858, 11, 17)
"""MJD 0 as a naive UTC ``datetime``."""


def ms_seconds_to_mjd(seconds):
    """MS TIME (s since MJD 0) -> MJD (days)."""
    return seconds / SECONDS_PER_DAY


def mjd_to_ms_seconds(mjd):
    """MJD (days) -> MS TIME (s since MJD 0)."""
    return mjd * SECONDS_PER_DAY


def jd_to_mjd(jd):
    """Julian date -> MJD."""
    return jd - JD_MJD_OFFSET


def mjd_to_jd(mjd):
    """MJD -> Julian date."""
    return mjd + JD_MJD_OFFSET


def unix_to_mjd(unix_s):
    """Unix time (s since 1970-01-01 UTC) -> MJD."""
    return unix_s / SECONDS_PER_DAY + MJD_UNIX_EPOCH


def unix_to_ms_seconds(unix_s):
    """Unix time -> MS TIME (s since MJD 0)."""
    return unix_s + MJD_UNIX_EPOCH * SECONDS_PER_DAY


def now_ms_seconds() -> float:
    """The current time as MS TIME (e.g. for a HISTORY row)."""
    return unix_to_ms_seconds(_time.time())


def datetime_to_mjd(dt: datetime) -> float:
    """``datetime`` -> MJD; a naive ``datetime`` is taken as UTC."""
    if dt.tzinfo is not None:
        dt = dt.astimezone(timezone.utc).replace(tzinfo=None)
    return (dt - MJD_EPOCH).total_seconds() / SECONDS_PER_DAY


def mjd_to_datetime(mjd: float) -> datetime:
    """MJD -> naive UTC ``datetime``."""
    return MJD_EPOCH + timedelta(days=float(mjd))


def mjd_to_iso(mjd: float | None) -> str:
    """Format an MJD as ``YYYY-MM-DDTHH:MM:SSZ`` (``'-'`` for ``None``)."""
    if mjd is None:
        return "-"
    return mjd_to_datetime(mjd).strftime("%Y-%m-%dT%H:%M:%SZ")


def ms_seconds_to_time(seconds):
    """MS TIME (s, scalar or array) -> astropy ``Time`` (UTC, format ``mjd``)."""
    from astropy.time import Time

    return Time(ms_seconds_to_mjd(seconds), format="mjd", scale="utc")


def time_to_ms_seconds(t):
    """astropy ``Time`` -> MS TIME (s since MJD 0, UTC)."""
    return mjd_to_ms_seconds(t.utc.mjd)
