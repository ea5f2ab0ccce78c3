"""Light curves of simulated sources: how a source's 1.4 GHz flux density changes with time.

A light curve is given as text in the sources CSV (column ``lightcurve``):

``steady``
    Constant flux (the default).
``sine:PERIOD_DAYS:FRACTION[:T0_ISO]``
    ``S(t) = S0 (1 + FRACTION sin(2 pi (t - T0) / PERIOD))``; ``T0`` defaults to J2000.0
    (MJD 51544.5).
``flare:T0_ISO:RISE_DAYS:DECAY_DAYS:PEAK_JY``
    ``PEAK_JY`` added to ``S0`` (often 0): nothing before the onset ``T0``, a linear rise
    over ``RISE_DAYS`` (0: instantaneous), then an exponential decay with e-folding time
    ``DECAY_DAYS``.
``step:T_ISO:FACTOR``
    ``S0`` before ``T``, ``FACTOR * S0`` from ``T`` on.

:func:`parse_lightcurve` turns the text into a :class:`LightCurve`; :func:`evaluate`
(pure numpy) gives the multiplier and the added flux at any MJD, so that
``S(t) = S0 * multiplier(t) + added_jy(t)``.

Examples
--------
>>> lc = parse_lightcurve("step:2025-10-04T00:00:00:1.5")
>>> mult, add = evaluate(lc, [60950.0, 60953.0])
>>> mult.tolist(), add.tolist()
([1.0, 1.5], [0.0, 0.0])
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..errors import BadInputError

J2000_MJD = 51544.5
"""Default phase reference of ``sine`` light curves (MJD)."""
KINDS = ("steady", "sine", "flare", "step")
"""Known light-curve kinds."""
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?)?Z?")


class LightCurveError(BadInputError):
    """A light-curve specification cannot be parsed; the message quotes it."""


@dataclass(frozen=True)
class LightCurve:
    """A parsed light curve (see the module docstring for the kinds)."""

    kind: str = "steady"
    """'steady', 'sine', 'flare' or 'step'."""
    period_days: float = 0.0
    """Period of a sine (days)."""
    fraction: float = 0.0
    """Relative amplitude of a sine."""
    t0_mjd: float = J2000_MJD
    """Phase reference of a sine, onset of a flare, time of a step (MJD)."""
    rise_days: float = 0.0
    """Linear rise time of a flare (days)."""
    decay_days: float = 1.0
    """Exponential decay time of a flare (days)."""
    peak_jy: float = 0.0
    """Flux added at the peak of a flare (Jy at 1.4 GHz)."""
    factor: float = 1.0
    """Multiplier after a step."""

    @property
    def spec(self) -> str:
        """The text form (round-trips through :func:`parse_lightcurve`)."""
        t0 = _iso(self.t0_mjd)
        if self.kind == "sine":
            return f"sine:{self.period_days:.10g}:{self.fraction:.10g}:{t0}"
        if self.kind == "flare":
            return f"flare:{t0}:{self.rise_days:.10g}:{self.decay_days:.10g}:{self.peak_jy:.10g}"
        if self.kind == "step":
            return f"step:{t0}:{self.factor:.10g}"
        return "steady"


def _iso(mjd: float) -> str:
    from ..timeconv import mjd_to_datetime

    return mjd_to_datetime(mjd).strftime("%Y-%m-%dT%H:%M:%S.%f").rstrip("0").rstrip(".")


def _mjd(text: str, spec: str) -> float:
    from datetime import datetime

    from ..timeconv import datetime_to_mjd

    try:
        return float(datetime_to_mjd(datetime.fromisoformat(text.strip().replace("Z", "")).replace(tzinfo=None)))
    except ValueError:
        raise LightCurveError(f"light curve {spec!r}: {text!r} is not an ISO time (YYYY-mm-ddTHH:MM:SS)") from None


def _split_time(rest: str, n_after: int, spec: str) -> tuple[str, list[str]]:
    """Split ``ISO:a:b..`` into the ISO time (``YYYY-mm-dd[THH:MM:SS[.f]]``) and exactly ``n_after`` fields."""
    m = _ISO.match(rest.strip())
    fields = rest.strip()[m.end():].split(":")[1:] if m else []
    if m is None or len(fields) != n_after or not rest.strip()[m.end():].startswith(":"):
        raise LightCurveError(f"light curve {spec!r}: expected an ISO time (YYYY-mm-ddTHH:MM:SS) and "
                              f"{n_after} number(s)")
    return m.group(0), fields


def _numbers(fields: list[str], spec: str) -> list[float]:
    try:
        vals = [float(f) for f in fields]
    except ValueError:
        raise LightCurveError(f"light curve {spec!r}: {fields} are not all numbers") from None
    if not all(np.isfinite(vals)):
        raise LightCurveError(f"light curve {spec!r}: non-finite number")
    return vals


def parse_lightcurve(text: str | None) -> LightCurve:
    """Parse a light-curve specification (empty or None: ``steady``).

    Raises
    ------
    LightCurveError
        Unknown kind, wrong number of fields, a bad time or number, a non-positive
        period or decay time, a negative rise time.
    """
    spec = (text or "").strip()
    if not spec or spec.lower() == "steady":
        return LightCurve()
    kind, _, rest = spec.partition(":")
    kind = kind.strip().lower()
    if kind == "sine":
        fields = rest.split(":")
        if len(fields) < 2 or (len(fields) > 2 and not _ISO.fullmatch(":".join(fields[2:]).strip())):
            raise LightCurveError(f"light curve {spec!r}: expected sine:PERIOD_DAYS:FRACTION[:T0_ISO]")
        period, frac = _numbers(fields[:2], spec)
        t0 = _mjd(":".join(fields[2:]), spec) if len(fields) > 2 else J2000_MJD
        if period <= 0:
            raise LightCurveError(f"light curve {spec!r}: the period must be positive")
        return LightCurve("sine", period_days=period, fraction=frac, t0_mjd=t0)
    if kind == "flare":
        when, fields = _split_time(rest, 3, spec)
        rise, decay, peak = _numbers(fields, spec)
        if rise < 0 or decay <= 0:
            raise LightCurveError(f"light curve {spec!r}: rise must be >= 0 and decay > 0 (days)")
        return LightCurve("flare", t0_mjd=_mjd(when, spec), rise_days=rise, decay_days=decay, peak_jy=peak)
    if kind == "step":
        when, fields = _split_time(rest, 1, spec)
        (factor,) = _numbers(fields, spec)
        return LightCurve("step", t0_mjd=_mjd(when, spec), factor=factor)
    raise LightCurveError(f"light curve {spec!r}: unknown kind {kind!r}; expected one of {', '.join(KINDS)}")


def evaluate(lc: LightCurve, mjd) -> tuple[np.ndarray, np.ndarray]:
    """Multiplier and added flux (Jy at 1.4 GHz) of a light curve at times ``mjd``.

    Parameters
    ----------
    lc
        The light curve.
    mjd : array_like
        Times (UTC MJD).

    Returns
    -------
    tuple of numpy.ndarray
        ``(multiplier, added_jy)``, each of the shape of ``mjd``: the flux is
        ``flux_jy * multiplier + added_jy``.
    """
    t = np.asarray(mjd, dtype=float)
    one, zero = np.ones_like(t), np.zeros_like(t)
    if lc.kind == "sine":
        return 1.0 + lc.fraction * np.sin(2.0 * np.pi * (t - lc.t0_mjd) / lc.period_days), zero
    if lc.kind == "step":
        return np.where(t >= lc.t0_mjd, lc.factor, 1.0), zero
    if lc.kind == "flare":
        dt = t - lc.t0_mjd
        rise = np.clip(dt / lc.rise_days, 0.0, 1.0) if lc.rise_days > 0 else (dt >= 0).astype(float)
        decay = np.exp(-np.clip(dt - lc.rise_days, 0.0, None) / lc.decay_days)
        return one, np.where(dt >= 0, lc.peak_jy * rise * decay, 0.0)
    return one, zero
