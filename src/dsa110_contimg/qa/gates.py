"""Image quality gates: pass / warn / fail per image, from its QA, its MS's weights and the catalog.

Stage function :func:`assess_image` (an image's QA and its MS in, a :class:`QualityResult`
out); :func:`evaluate_gates` is the pure part.  Every gate has a value, a ``(warn, fail)``
threshold pair and a state; a gate whose value is unknown (no catalog references, no
MS) is ``'n/a'`` and does not count; the image's state is the worst of the others.

==================  ==========================================  ============  ============
gate                value                                       warn          fail
==================  ==========================================  ============  ============
``rms_thermal``     image rms / predicted thermal noise         > 3           > 10
``dynamic_range``   peak / rms                                  < 8           < 4
``beam_axis_ratio`` restoring beam major / minor axis           > 3           > 5
``beam_size``       sqrt(bmaj bmin) vs the expected beam's,     > 1.5         > 2
                    as a factor >= 1 (too big or too small)
``flux_scale``      abs(flux ratio - 1), compact references     > 0.1         > 0.25
``astrometry``      median reference offset / beam major axis   > 0.15        > 0.3
==================  ==========================================  ============  ============

Why these numbers: on the simulator's ideal skies the rms is 0.95-1.05 of the thermal
prediction (:mod:`.thermal`) and real DSA-110 tiles so far are ~50 times it (calibration-
and sky-limited, which the fail level is meant to catch); a noise-only image has a peak of
~5 rms, so a dynamic range below 4 means a broken image and below 8 an image with nothing
to check; the expected beam (half-power contour of the dirty beam from the same weights)
agrees with the imager's fitted beam within 10% for natural and uniform weighting and
within 1.35x (geometric mean) for Briggs 0 on the small preset's snapshot PSF, whose
strong near sidelobes the imager's fit partly includes; 10% in flux scale is VAST's
usual tolerance; a fifth of a beam in position is the issue's target.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .flux_scale import FluxScaleOptions, FluxScaleResult, measure_flux_scale
from .thermal import ThermalOptions, ThermalResult, predict_thermal_noise

log = logging.getLogger(__name__)

PASS, WARN, FAIL, NA = "pass", "warn", "fail", "n/a"
"""Gate states (``NA``: the value is unknown and the gate does not count)."""
_RANK = {NA: -1, PASS: 0, WARN: 1, FAIL: 2}


@dataclass
class GateOptions:
    """Thresholds ``(warn, fail)`` of the gates (see the module docstring for why)."""

    rms_thermal: tuple[float, float] = (3.0, 10.0)
    """Image rms over the predicted thermal noise: warn / fail above."""
    dynamic_range: tuple[float, float] = (8.0, 4.0)
    """Peak over rms: warn / fail below."""
    beam_axis_ratio: tuple[float, float] = (3.0, 5.0)
    """Restoring beam major over minor axis: warn / fail above."""
    beam_size: tuple[float, float] = (1.5, 2.0)
    """Geometric-mean beam size against the expected, as a factor >= 1: warn / fail above."""
    flux_scale: tuple[float, float] = (0.1, 0.25)
    """|flux-scale ratio - 1|: warn / fail above."""
    astrometry_beams: tuple[float, float] = (0.15, 0.3)
    """Median reference offset in restoring-beam major axes: warn / fail above."""


@dataclass
class QualityOptions:
    """Options of :func:`assess_image`."""

    gates: GateOptions = field(default_factory=GateOptions)
    """Thresholds."""
    thermal: ThermalOptions = field(default_factory=ThermalOptions)
    """Thermal prediction: the imaging weighting and grid of the image."""
    flux_scale: FluxScaleOptions = field(default_factory=FluxScaleOptions)
    """Reference selection of the flux scale."""


@dataclass
class Gate:
    """One gate of one image."""

    name: str
    """Gate (see :class:`GateOptions`)."""
    value: float | None
    """Measured value; None when unknown."""
    warn: float
    """Warn threshold."""
    fail: float
    """Fail threshold."""
    state: str
    """'pass', 'warn', 'fail' or 'n/a'."""
    higher_is_worse: bool = True
    """Direction of the thresholds (False: below ``warn``/``fail`` is bad)."""


@dataclass
class QualityResult:
    """The gates of one image and what they were computed from."""

    state: str
    """Worst gate state ('pass' when every gate is 'n/a')."""
    gates: list[Gate]
    """Every gate, in the order of :class:`GateOptions`."""
    flux_scale: FluxScaleResult
    """Flux scale against the catalog references."""
    thermal: ThermalResult | None = None
    """Thermal prediction (None when the MS was not available)."""
    rms_over_thermal: float | None = None
    """Image rms over the predicted thermal noise."""

    def gate(self, name: str) -> Gate:
        """The gate called ``name`` (KeyError if none)."""
        for g in self.gates:
            if g.name == name:
                return g
        raise KeyError(name)

    def reasons(self) -> list[str]:
        """One phrase per gate that warns or fails, e.g. ``'rms_thermal 12.3 > 10 (fail)'``."""
        out = []
        for g in self.gates:
            if g.state in (WARN, FAIL):
                lim = g.fail if g.state == FAIL else g.warn
                out.append(f"{g.name} {g.value:.3g} {'>' if g.higher_is_worse else '<'} {lim:g} ({g.state})")
        return out

    def gates_dict(self) -> list[dict]:
        """The gates as JSON-ready dicts."""
        return [asdict(g) for g in self.gates]


def gate_state(value: float | None, warn: float, fail: float, higher_is_worse: bool = True) -> str:
    """'pass', 'warn' or 'fail' of ``value`` against its thresholds; 'n/a' when unknown or not finite."""
    if value is None or not math.isfinite(value):
        return NA
    bad = (lambda lim: value > lim) if higher_is_worse else (lambda lim: value < lim)
    return FAIL if bad(fail) else WARN if bad(warn) else PASS


def worst(states) -> str:
    """Worst of the states, 'n/a' ignored ('pass' when nothing counts)."""
    ranked = [s for s in states if s != NA]
    return max(ranked, key=_RANK.__getitem__) if ranked else PASS


def _gate(name: str, value, limits: tuple[float, float], higher_is_worse: bool = True) -> Gate:
    v = None if value is None or not math.isfinite(value) else float(value)
    return Gate(name, v, limits[0], limits[1], gate_state(v, *limits, higher_is_worse), higher_is_worse)


def _ratio(a, b) -> float | None:
    return a / b if a is not None and b is not None and math.isfinite(a) and math.isfinite(b) and b > 0 else None


def evaluate_gates(qa, flux: FluxScaleResult, thermal: ThermalResult | None,
                   opts: GateOptions | None = None) -> QualityResult:
    """The gates of an image from its QA, flux scale and thermal prediction (pure; see the module docstring).

    Parameters
    ----------
    qa : dsa110_contimg.qa.image_qa.ImageQAResult
        Its rms, peak, dynamic range and restoring beam are used.
    flux
        From :func:`~dsa110_contimg.qa.flux_scale.measure_flux_scale`.
    thermal
        From :func:`~dsa110_contimg.qa.thermal.predict_thermal_noise`, or None (rms and beam-size gates 'n/a').
    opts
        Thresholds (defaults of :class:`GateOptions` when None).
    """
    g = opts or GateOptions()
    rms_t = _ratio(qa.rms_jy, thermal.noise_jy if thermal else None)
    size = None
    if thermal is not None:
        size = _ratio(math.sqrt(qa.bmaj_arcsec * qa.bmin_arcsec),
                      math.sqrt(thermal.beam_major_arcsec * thermal.beam_minor_arcsec))
        size = None if size is None or size <= 0 else max(size, 1.0 / size)
    gates = [
        _gate("rms_thermal", rms_t, g.rms_thermal),
        _gate("dynamic_range", qa.dynamic_range, g.dynamic_range, higher_is_worse=False),
        _gate("beam_axis_ratio", _ratio(qa.bmaj_arcsec, qa.bmin_arcsec), g.beam_axis_ratio),
        _gate("beam_size", size, g.beam_size),
        _gate("flux_scale", None if flux.ratio is None else abs(flux.ratio - 1.0), g.flux_scale),
        _gate("astrometry", _ratio(flux.offset_arcsec, qa.bmaj_arcsec), g.astrometry_beams),
    ]
    return QualityResult(worst(x.state for x in gates), gates, flux, thermal, rms_t)


def assess_image(qa, ms_path: str | Path | None, opts: QualityOptions | None = None) -> QualityResult:
    """Quality gates of one image: flux scale from its QA crossmatch, thermal prediction from its MS, the gates.

    Parameters
    ----------
    qa : dsa110_contimg.qa.image_qa.ImageQAResult
        QA of the image (:func:`~dsa110_contimg.qa.image_qa.run_image_qa`).
    ms_path
        The MS imaged (its weights and flags); None or unreadable: no thermal prediction
        (logged), and the gates that need it are 'n/a'.
    opts
        Options (defaults of :class:`QualityOptions` when None); ``opts.thermal`` must
        describe the image's weighting and grid.

    Returns
    -------
    QualityResult
    """
    opts = opts or QualityOptions()
    flux = measure_flux_scale(qa, opts.flux_scale)
    thermal = None
    if ms_path is not None:
        try:
            thermal = predict_thermal_noise(ms_path, opts.thermal)
        except (OSError, RuntimeError, ValueError) as exc:  # casacore raises RuntimeError for a bad table
            log.warning("%s: no thermal-noise prediction: %s", ms_path, exc)
    res = evaluate_gates(qa, flux, thermal, opts.gates)
    log.info("quality %s: %s%s", Path(str(qa.fits_path)).name, res.state,
             f" ({'; '.join(res.reasons())})" if res.reasons() else "")
    return res
