"""Reading and checking the inputs of a mosaic (the I/O edge of :mod:`.build`).

Every input is opened once up front: a missing or unreadable image, one without
a restoring beam or drift-scan beam keywords, or one failing the rms or
dynamic-range cut is left out with a reason (and a warning in the log);
mismatched frequencies, or nothing left, raise :class:`~.models.MosaicInputError`.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import BadInputError
from ..qa.image_qa import header_beam, header_frequency
from ..qa.sources import robust_rms
from .beam import DriftBeam
from .kernels import subsample
from .models import ExcludedInput, MosaicInput, MosaicInputError, MosaicOptions

log = logging.getLogger(__name__)

RMS_SAMPLES = 2_000_000
"""The robust rms of an input without a QA rms is measured on at most about this many pixels (a regular subsample)."""


@dataclass
class CheckedInput:
    """An input that passed the checks, with what the build needs (no pixels)."""

    spec: MosaicInput
    """What was asked."""
    wcs: object
    """Celestial WCS."""
    shape: tuple[int, int]
    """(ny, nx)."""
    header: object
    """Its FITS header."""
    beam: DriftBeam
    """Its primary beam."""
    restoring: tuple[float, float, float]
    """BMAJ, BMIN (arcsec), BPA (deg)."""
    freq_hz: float
    """Frequency (Hz)."""
    rms_jy: float
    """Rms for the weights (Jy/beam)."""
    dynamic_range: float
    """Peak / rms."""


def _image_hdu(hdul, path):
    hdu = next((h for h in hdul if h.header.get("NAXIS", 0) >= 2 and h.header.get("NAXIS1", 0) > 0), None)
    if hdu is None:
        raise ValueError(f"{path}: no image HDU")
    return hdu


def _plane(data: np.ndarray) -> np.ndarray:
    while data.ndim > 2:
        data = data[0]
    return data


def load_pixels(path: Path) -> np.ndarray:
    """The image plane as native float32 (first plane of any extra axis)."""
    from astropy.io import fits

    with fits.open(path, memmap=False) as hdul:
        return np.asarray(_plane(_image_hdu(hdul, path).data), dtype=np.float32)


def _stats(data: np.ndarray) -> tuple[float, float]:
    """(robust rms on a regular subsample, peak)."""
    return robust_rms(subsample(data, RMS_SAMPLES)), float(np.nanmax(data))


def _open(path: Path, read_pixels: bool):
    """(header, celestial WCS, (ny, nx), pixels or None); the data are mapped (a truncated file fails here)
    and read only when ``read_pixels``."""
    from astropy.io import fits
    from astropy.wcs import WCS

    with fits.open(path, memmap=True) as hdul:
        hdu = _image_hdu(hdul, path)
        header = hdu.header.copy()
        plane = _plane(hdu.data)
        shape = (int(plane.shape[0]), int(plane.shape[1]))
        data = np.asarray(plane, dtype=np.float32) if read_pixels else None
        del plane
    wcs = WCS(header, naxis=None).celestial
    if wcs.naxis != 2:
        raise ValueError(f"{path}: no celestial WCS")
    return header, wcs, shape, data


def _check_one(spec: MosaicInput, opts: MosaicOptions) -> CheckedInput:
    """Check one input; raises ``BadInputError`` with the reason to leave it out.

    The pixels are read only when the rms or the dynamic range must be measured (otherwise the
    build reads them once, when it adds the input).
    """
    path = Path(spec.image_path)
    if not path.is_file():
        raise BadInputError(f"{path}: missing")
    measure = spec.rms_jy is None or spec.dynamic_range is None
    try:
        header, wcs, shape, data = _open(path, measure)
    except Exception as exc:  # astropy raises OSError, ValueError, TypeError, ... on damaged files
        raise BadInputError(f"{path}: unreadable ({type(exc).__name__}: {exc})") from None
    try:
        restoring = header_beam(header)
    except ValueError:
        raise BadInputError(f"{path}: no restoring beam (BMAJ/BMIN) in the header") from None
    freq = header_frequency(header)
    if freq is None or not freq > 0:
        raise BadInputError(f"{path}: no frequency axis in the header")
    beam = spec.beam or DriftBeam.from_header(header, str(path))
    rms, dr = spec.rms_jy, spec.dynamic_range
    if data is not None:
        if not np.isfinite(data).any():
            raise BadInputError(f"{path}: no finite pixel")
        measured, peak = _stats(data)
        rms = measured if rms is None else rms
        dr = peak / rms if dr is None else dr
    if not (rms > 0 and math.isfinite(rms)):
        raise BadInputError(f"{path}: rms {rms} is not a positive number")
    if opts.max_rms_jy is not None and rms > opts.max_rms_jy:
        raise BadInputError(f"{path}: rms {rms:.3g} Jy/beam above the cut max_rms_jy = {opts.max_rms_jy:.3g}")
    if opts.min_dynamic_range is not None and not dr >= opts.min_dynamic_range:
        raise BadInputError(f"{path}: dynamic range {dr:.3g} below the cut min_dynamic_range = "
                            f"{opts.min_dynamic_range:.3g}")
    return CheckedInput(spec, wcs, shape, header, beam, restoring, float(freq), float(rms), float(dr))


def check_inputs(inputs: list[MosaicInput], opts: MosaicOptions) -> tuple[list[CheckedInput], list[ExcludedInput]]:
    """Check every input: the usable ones, and the excluded ones with their reasons.

    Raises
    ------
    MosaicInputError
        Inputs at frequencies differing from the median by more than ``opts.freq_tolerance``
        (relative; the message names them), or no usable input (the message lists every reason).
    """
    ok: list[CheckedInput] = []
    excluded: list[ExcludedInput] = []
    for spec in inputs:
        try:
            ok.append(_check_one(spec, opts))
        except BadInputError as exc:
            log.warning("mosaic: leaving out %s", exc)
            excluded.append(ExcludedInput(Path(spec.image_path), spec.group_id, str(exc)))
    if ok:
        freqs = np.array([c.freq_hz for c in ok])
        ref = float(np.median(freqs))
        bad = [c for c in ok if abs(c.freq_hz / ref - 1.0) > opts.freq_tolerance]
        if bad:
            names = ", ".join(f"{c.spec.image_path} ({c.freq_hz / 1e6:.3f} MHz)" for c in bad)
            raise MosaicInputError(f"mosaic inputs at mismatched frequencies: {names}; the others are at "
                                   f"{ref / 1e6:.3f} MHz (tolerance {opts.freq_tolerance:.1%})",
                                   files=[c.spec.image_path for c in bad])
    if not ok:
        reasons = "; ".join(e.reason for e in excluded) or "no input given"
        raise MosaicInputError(f"no usable mosaic input: {reasons}", files=[e.image_path for e in excluded])
    return ok, excluded
