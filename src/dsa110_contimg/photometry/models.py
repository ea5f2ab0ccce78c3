"""Options and typed results of the photometry stage (plain frozen dataclasses, no heavy imports).

The worker (:func:`dsa110_contimg.photometry.measure.photometer_image`) returns a
:class:`PhotometryResult`; the daemon records it with
:func:`dsa110_contimg.db.sources.record_photometry`, which applies
:class:`VariabilityOptions`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence

DE_RUITER_RADIUS = 5.68
"""Default association radius in de Ruiter units (as the VAST pipeline)."""
ETA_MIN_DEFAULT = 3.7816
"""chi2.ppf(0.99, 3) / 3: eta of a steady source with 4 measurements exceeds it with probability 1%."""


@dataclass(frozen=True)
class PhotometryOptions:
    """Options of forced photometry and association on one image (worker side)."""

    pb_min: float = 0.2
    """Only positions where the primary beam is at least this (the 20% contour)."""
    catalog_min_flux_jy: float = 0.02
    """Master-catalog sources at least this bright (``s_nvss``, Jy) are measured even before they are detected."""
    fit_half_fwhm: float = 1.5
    """Half-size of the fit box around a position, in beam major-axis FWHM."""
    cluster_fwhm: float = 3.0
    """Positions closer than this (beam FWHM) are fitted together (blends)."""
    rms_box_beams: float = 8.0
    """Side of the box of the local noise of a fit (beams), as the QA's local-rms map."""
    de_ruiter_radius: float = DE_RUITER_RADIUS
    """Association radius (de Ruiter units)."""
    cap_beams: float = 1.0
    """Positional cap of the association (beam major-axis FWHM)."""
    astrometric_sys_arcsec: float | None = None
    """Systematic position error added in quadrature to every position (arcsec); None: a tenth of the beam."""
    backfill_images: int = 20
    """A new source is measured in at most this many earlier images covering it (most recent first)."""


@dataclass(frozen=True)
class VariabilityOptions:
    """Thresholds of the per-source flags (daemon side, applied when measurements are recorded).

    ``eta_min`` is the 99th percentile of a reduced chi-square with 3 degrees of freedom:
    a steady source with ``min_measurements`` = 4 Gaussian measurements (correct errors)
    exceeds it with probability 1%, and with more measurements with less (0.05% for 8).
    """

    eta_min: float = ETA_MIN_DEFAULT
    """Variable when eta is at least this (see the class docstring)."""
    v_min: float = 0.1
    """... and the modulation index V is at least this (a 50% step gives V ~ 0.2)."""
    min_measurements: int = 4
    """... and the source has at least this many measurements."""
    vs_min: float = 4.3
    """Two-epoch pairs count for ``m_max`` when their |Vs| is at least this (Mooley et al. 2016)."""
    flux_sys_frac: float = 0.01
    """Fractional flux-scale error added in quadrature to each measurement error in the variability metrics."""
    new_sigma_min: float = 5.0
    """A new source's first detection must exceed earlier images' forced fluxes by this many sigma."""


@dataclass(frozen=True)
class ImageRun:
    """One photometered image: what a later image needs to know about its coverage."""

    image_id: int
    """``images.id`` of the restored image (the row holding the QA detections)."""
    group_id: str
    """Queue group."""
    ms_path: str
    """The group's Measurement Set."""
    image_path: str
    """Restored (apparent) FITS image."""
    pbcor_path: str
    """Primary-beam-corrected FITS image the fluxes are measured on."""
    mid_mjd: float
    """Mid-time of the data (UTC MJD): the time of every measurement of this image."""
    first_time_mjd: float
    """First integration centre (MJD)."""
    last_time_mjd: float
    """Last integration centre (MJD)."""
    n_times: int
    """Integrations."""
    pointing_dec_deg: float
    """Apparent pointing declination (deg)."""
    fringestop_lon_deg: float
    """Longitude of the fringe-stop meridian (deg)."""
    freq_min_hz: float
    """Lowest channel (Hz)."""
    freq_max_hz: float
    """Highest channel (Hz)."""
    ra_deg: float
    """Image centre (deg)."""
    dec_deg: float
    """Image centre (deg)."""
    radius_deg: float
    """Radius of a cone covering the image (deg)."""
    rms_jy: float
    """Global robust rms of the restored image (Jy/beam)."""
    beam_major_arcsec: float
    """Restoring beam FWHM (arcsec)."""
    beam_minor_arcsec: float
    """Restoring beam FWHM (arcsec)."""
    beam_pa_deg: float
    """Restoring beam position angle (deg)."""


@dataclass(frozen=True)
class Measurement:
    """One forced flux of one source in one image (beam-corrected)."""

    image_id: int
    """Image measured."""
    mjd: float
    """Time (the image's mid-time, MJD)."""
    flux_jy: float
    """Fitted amplitude of the restoring beam at the fixed position on the pb-corrected image (Jy)."""
    flux_err_jy: float
    """1-sigma error from the local noise (``local_rms_jy``, larger for a blend), pb-corrected (Jy)."""
    local_rms_jy: float
    """Local noise of a single-source beam fit at the position, divided by the beam (Jy)."""
    pb: float
    """Primary-beam attenuation at the position (the package's drift-scan beam)."""
    ra_deg: float
    """Position measured (deg)."""
    dec_deg: float
    """Position measured (deg)."""
    source_id: int | None = None
    """Known source measured, or None for a source created by this result (``new_index``)."""
    new_index: int | None = None
    """Index into :attr:`PhotometryResult.new_sources`."""
    kind: str = "forced"
    """'detection' when a blind detection of the image was associated with the source, else 'forced'."""
    detection_id: int | None = None
    """``detections.id`` associated (kind 'detection')."""
    det_ra_deg: float | None = None
    """Position of the detection (deg)."""
    det_dec_deg: float | None = None
    """Position of the detection (deg)."""
    det_ra_err_arcsec: float | None = None
    """RA error of the detection on the sky, systematic included (arcsec): its weight in the source position."""
    det_dec_err_arcsec: float | None = None
    """Dec error of the detection, systematic included (arcsec)."""
    det_flux_jy: float | None = None
    """Fitted peak of the detection, pb-corrected (Jy)."""
    sep_arcsec: float | None = None
    """Distance detection - source (arcsec)."""
    de_ruiter: float | None = None
    """De Ruiter radius of the association."""
    backfilled: bool = False
    """Measured in an earlier image after the source was found (its upper limit there)."""
    note: str = ""
    """Association notes (another candidate source, ...)."""


@dataclass(frozen=True)
class NewSource:
    """A source created by this image: a catalog source first measured, or an unmatched detection."""

    ra_deg: float
    """Initial position (deg)."""
    dec_deg: float
    """Initial position (deg)."""
    ra_err_arcsec: float
    """Position error on the sky (arcsec)."""
    dec_err_arcsec: float
    """Position error (arcsec)."""
    origin: str
    """'catalog' or 'detection'."""
    catalog_source_id: int | None = None
    """Master-catalog counterpart, if any."""
    catalog_sep_arcsec: float | None = None
    """Distance to it (arcsec)."""
    catalog_flux_jy: float | None = None
    """Its ``s_nvss`` (Jy)."""
    new_sigma: float | None = None
    """Largest (first flux - earlier forced flux) / combined error over earlier covering images; None: none."""
    n_earlier_images: int = 0
    """Earlier images covering the position that were measured."""


@dataclass(frozen=True)
class PhotometryResult:
    """What the photometry of one image returns to the daemon."""

    run: ImageRun
    """The image."""
    measurements: tuple[Measurement, ...]
    """Its forced fluxes, plus the backfilled ones of its new sources in earlier images."""
    new_sources: tuple[NewSource, ...]
    """Sources to create."""
    max_source_id: int
    """Largest ``sources.id`` when the worker read the table (sources created later are re-checked)."""
    cap_arcsec: float
    """Positional cap used (arcsec), for the daemon's re-check of concurrent new sources."""
    n_detections: int = 0
    """Blind detections of the image inside the contour."""
    n_associated: int = 0
    """Of which associated with a known source."""
    n_ambiguous: int = 0
    """Detections that matched more than one source."""
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds per step."""


class SurveyReader(Protocol):
    """What the photometry of an image reads from the products database (read-only; the pipeline stage provides
    one over :mod:`dsa110_contimg.db.sources`)."""

    def max_source_id(self) -> int:
        """Largest source id so far (0: none)."""

    def sources_in_cone(self, ra_deg: float, dec_deg: float, radius_deg: float) -> dict:
        """Known sources in a cone: arrays ``id, ra_deg, dec_deg, ra_err_arcsec, dec_err_arcsec,
        catalog_source_id`` (-1: none)."""

    def detections(self, image_id: int) -> Sequence:
        """The image's blind detections (``id, ra_deg, dec_deg, ra_err_arcsec, dec_err_arcsec, peak_jy,
        catalog_source_id, catalog_sep_arcsec, catalog_flux_jy``)."""

    def earlier_images(self, ra_deg: float, dec_deg: float, before_mjd: float, limit: int) -> list[ImageRun]:
        """Photometered images before ``before_mjd`` covering a position, most recent first."""
