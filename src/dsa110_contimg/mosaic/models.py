"""Options, inputs and typed results of the mosaic stage (plain dataclasses, no heavy imports).

:func:`dsa110_contimg.mosaic.build.build_mosaic` takes a list of :class:`MosaicInput`
and a :class:`MosaicOptions` and returns a :class:`MosaicResult`; the fields of
:class:`MosaicOptions` are the flags of ``contimg mosaic``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import BadInputError
from ..qa.image_qa import _jsonable
from .beam import DriftBeam


class MosaicInputError(BadInputError):
    """The inputs cannot make a mosaic (mismatched frequencies, no usable image); the message names the
    files and the problem, :attr:`files` lists them."""


@dataclass
class MosaicOptions:
    """Options of :func:`~dsa110_contimg.mosaic.build.build_mosaic` (mirrors ``contimg mosaic``)."""

    out: Path = Path("mosaic")
    """Output path prefix: writes ``<out>.fits``, ``<out>.weight.fits``, ``<out>.noise.fits``, ``<out>.png``."""
    projection: str = "auto"
    """'auto' (SIN up to ``sin_max_span_h`` of RA, CAR beyond), 'SIN' or 'CAR'."""
    pixel_arcsec: float | None = None
    """Output pixel (arcsec); None: the finest input pixel."""
    pb_cutoff: float = 0.1
    """Each input contributes where its primary beam is at least this; blank where none does."""
    max_rms_jy: float | None = None
    """Leave out inputs whose rms (Jy/beam) is above this; None: no cut."""
    min_dynamic_range: float | None = None
    """Leave out inputs whose dynamic range (peak / rms) is below this; None: no cut."""
    common_beam: bool = False
    """Convolve the inputs to a common restoring beam; else the header gets the largest input beam."""
    freq_tolerance: float = 0.01
    """Largest relative difference of an input's frequency from the median before the build refuses."""
    sin_max_span_h: float = 1.5
    """'auto' uses SIN when the inputs' centres span at most this many hours of RA."""
    order: str = "bicubic"
    """Interpolation of the reprojection (reproject's 'bicubic' or 'bilinear', which smooths a 4-pixel beam:
    peaks 3-8% low)."""
    lattice_deg: float = 0.05
    """Spacing (deg) of the exact evaluations of the beam and of each input's pixel mapping, bilinear in between."""
    exact_coords: bool = False
    """Evaluate the WCS at every output pixel (reproject's own path, about 5x slower) instead of on the lattice."""
    threads: int = 2
    """Inputs reprojected at the same time (each thread holds one input and one band of the output)."""
    qa: bool = True
    """Run the mosaic QA (sources, catalog match, noise) and write the preview PNG."""
    catalog_path: Path | None = None
    """Master catalog for the QA's crossmatch; None or missing: no crossmatch."""
    snr_min: float = 5.0
    """QA source-finding threshold (peak over the predicted noise, scaled by the measured/predicted ratio)."""


@dataclass
class MosaicInput:
    """One snapshot image offered to the mosaic."""

    image_path: Path
    """Restored image FITS, before primary-beam correction (apparent flux)."""
    group_id: str = ""
    """Queue group of the image ('' when unknown)."""
    rms_jy: float | None = None
    """Image rms from its QA (Jy/beam); None: measured here (robust rms)."""
    dynamic_range: float | None = None
    """Dynamic range from its QA; None: measured here (peak / rms)."""
    beam: DriftBeam | None = None
    """Its primary beam; None: from the image's ``PB*`` header keywords."""


@dataclass(frozen=True)
class ExcludedInput:
    """An input left out of the mosaic, and why."""

    image_path: Path
    """The image."""
    group_id: str
    """Its group."""
    reason: str
    """One line: missing, unreadable, no beam keywords, rms or dynamic-range cut."""


@dataclass(frozen=True)
class UsedInput:
    """An input of the mosaic with the numbers it was weighted with."""

    image_path: Path
    """The image."""
    group_id: str
    """Its group."""
    rms_jy: float
    """Rms used for its weight (Jy/beam; after convolution to the common beam when asked)."""
    dynamic_range: float
    """Its dynamic range."""
    freq_hz: float
    """Its frequency (Hz)."""
    beam_arcsec: tuple[float, float, float]
    """Its restoring beam (major, minor FWHM arcsec, PA deg)."""
    date_obs: str
    """Its DATE-OBS."""
    drift_beam: DriftBeam
    """Its primary beam."""


@dataclass
class MosaicResult:
    """What :func:`~dsa110_contimg.mosaic.build.build_mosaic` made."""

    mosaic_path: Path
    """Linear mosaic (Jy/beam, primary-beam corrected; NaN where no input reaches the cutoff)."""
    weight_path: Path
    """Weight map, sum of pb^2 / rms^2 (1/(Jy/beam)^2)."""
    noise_path: Path
    """Predicted noise map, 1 / sqrt(weight) (Jy/beam)."""
    preview_path: Path | None
    """PNG preview with WCS axes (None without QA)."""
    used: list[UsedInput]
    """Inputs in the mosaic, in the order given."""
    excluded: list[ExcludedInput]
    """Inputs left out, each with its reason."""
    rms_jy: float | None
    """Measured robust rms of the mosaic where the weight is near its median (None without QA)."""
    median_noise_jy: float
    """Median of the predicted noise map (Jy/beam)."""
    freq_hz: float
    """Frequency (Hz): the mean of the inputs'."""
    beam_arcsec: tuple[float, float, float]
    """Restoring beam in the header (major, minor FWHM arcsec, PA deg)."""
    centre_deg: tuple[float, float]
    """Projection centre (RA, Dec) (deg)."""
    shape: tuple[int, int]
    """(ny, nx) of the maps."""
    projection: str
    """'SIN' or 'CAR'."""
    mjd_range: tuple[float, float]
    """First and last integration centre of the inputs (UTC MJD)."""
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds per step (inputs, grid, accumulate, write, qa, total)."""
    qa: dict = field(default_factory=dict)
    """QA numbers (:meth:`dsa110_contimg.mosaic.qa.MosaicQA.to_dict`); empty without QA."""

    def to_dict(self) -> dict:
        """JSON-ready dict (paths as strings, non-finite floats as None)."""
        return _jsonable(asdict(self))
