"""QA of one restored continuum image (FITS): noise, peak, dynamic range, beam,
sources, crossmatch with the master catalog, a PNG thumbnail and a QA plot.

Stage function :func:`run_image_qa` (options in, result out); the numerical
kernels live in :mod:`dsa110_contimg.qa.sources`.

Examples
--------
>>> res = run_image_qa("img-MFS-image.fits", "qa/", ImageQAOptions(catalog_path=cat))  # doctest: +SKIP
>>> json.dumps(res.to_dict())                                                          # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..beam import separation_deg
from ..catalog.query import cone_search
from .catalog_match import crossmatch_sources
from .plots import write_qa_plot, write_thumbnail
from .sources import DetectedSource, find_sources, local_rms_map, robust_rms

log = logging.getLogger(__name__)

CATALOG_FREQ_HZ = 1.4e9
"""Frequency of the master-catalog flux ``s_nvss`` (Hz)."""
CATALOG_ALPHA = -0.7
"""Spectral index used to bring catalog fluxes to the image frequency."""
FREQ_TOLERANCE = 0.01
"""Relative frequency difference below which no extrapolation is done."""


@dataclass
class ImageQAOptions:
    """Options of :func:`run_image_qa`."""

    snr_min: float = 5.0
    """Source-finding threshold (peak over the local rms)."""
    rms_box_beams: float | None = 8.0
    """Box of the local rms map for the threshold (beams); None: the global rms everywhere."""
    catalog_path: Path | None = None
    """Master catalog SQLite; no crossmatch when None or missing."""
    match_radius_arcsec: float | None = None
    """Crossmatch radius (arcsec); default half the beam major axis, at least 10"."""
    thumbnail_size: int = 512
    """Largest side of the thumbnail (pixels)."""
    make_plots: bool = True
    """Write the thumbnail and the QA plot."""


@dataclass
class ImageQAResult:
    """QA metrics of one image (:meth:`to_dict` for JSON storage)."""

    rms_jy: float
    """Robust rms of the image (Jy/beam)."""
    peak_jy: float
    """Largest pixel value (Jy/beam)."""
    dynamic_range: float
    """peak_jy / rms_jy."""
    bmaj_arcsec: float
    """Restoring beam FWHM major axis (arcsec)."""
    bmin_arcsec: float
    """Restoring beam FWHM minor axis (arcsec)."""
    bpa_deg: float
    """Restoring beam position angle (deg east of north)."""
    n_sources: int
    """Number of detected components."""
    sources: list[DetectedSource]
    """Detected components, brightest first (fluxes as measured on the image)."""
    n_matched: int = 0
    """Components with a catalog counterpart within the match radius."""
    flux_ratio_median: float | None = None
    """Median of integrated flux / catalog flux at the image frequency; None without match."""
    astrometry_offset_arcsec: float | None = None
    """Median separation to the catalog counterpart (arcsec); None without match."""
    ra_offset_arcsec: float | None = None
    """Median (image - catalog) RA offset on the sky, times cos dec (arcsec)."""
    dec_offset_arcsec: float | None = None
    """Median (image - catalog) Dec offset (arcsec)."""
    matches: list[dict | None] = field(default_factory=list)
    """Per source (same order as ``sources``): the counterpart (see :func:`crossmatch_sources`) or None."""
    thumbnail_path: Path | None = None
    """The thumbnail PNG written, if any."""
    qa_plot_path: Path | None = None
    """The QA plot PNG written, if any."""
    timings: dict[str, float] = field(default_factory=dict)
    """Wall time per step (s)."""
    fits_path: Path | None = None
    """The image analysed."""
    freq_hz: float | None = None
    """Image frequency from the header (Hz); None when absent."""
    catalog_flux_scale: float = 1.0
    """Factor applied to the catalog 1.4 GHz fluxes (spectral extrapolation)."""
    flux_compared: str = "raw"
    """Fluxes compared with the catalog: 'raw' (apparent), 'pbcor_fits' or 'pb_callable'."""
    match_radius_arcsec: float | None = None
    """Crossmatch radius used (arcsec)."""
    selfcal: dict | None = None
    """Self-calibration of the group before this image (:meth:`~dsa110_contimg.selfcal.run.SelfcalResult.to_dict`:
    its rounds, intervals, rms and dynamic range), None without."""
    outliers: dict | None = None
    """Bright sources outside the image subtracted before imaging (:meth:`~dsa110_contimg.selfcal.outliers.OutlierResult.to_dict`)."""

    def to_dict(self) -> dict:
        """JSON-ready dict: paths as strings, non-finite floats as None."""
        return _jsonable(asdict(self))


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    return obj


def read_image(fits_path: str | Path):
    """Read a restored image: ``(data2d, celestial_wcs, header)``.

    The data are squeezed to 2-D (first plane of any extra axis); the header must
    describe a celestial WCS.
    """
    from astropy.io import fits
    from astropy.wcs import WCS

    with fits.open(fits_path, memmap=False) as hdul:
        hdu = next((h for h in hdul if h.data is not None and h.data.ndim >= 2), None)
        if hdu is None:
            raise ValueError(f"{fits_path}: no image HDU")
        header = hdu.header.copy()
        data = np.asarray(hdu.data, dtype=float)
    while data.ndim > 2:
        data = data[0]
    from astropy.wcs import FITSFixedWarning

    with warnings.catch_warnings():  # raw WSClean images lack MJD-OBS: astropy's 'datfix' note is not a problem
        warnings.simplefilter("ignore", FITSFixedWarning)
        wcs = WCS(header, naxis=None).celestial
    if wcs.naxis != 2:
        raise ValueError(f"{fits_path}: no celestial WCS")
    return data, wcs, header


def header_beam(header) -> tuple[float, float, float]:
    """Restoring beam ``(bmaj_arcsec, bmin_arcsec, bpa_deg)`` from BMAJ/BMIN/BPA (deg)."""
    if "BMAJ" not in header or "BMIN" not in header:
        raise ValueError("image header has no BMAJ/BMIN (restoring beam)")
    return float(header["BMAJ"]) * 3600.0, float(header["BMIN"]) * 3600.0, float(header.get("BPA", 0.0))


def header_frequency(header) -> float | None:
    """Frequency (Hz) of the FREQ axis reference value, or None."""
    for i in range(1, int(header.get("NAXIS", 0)) + 1):
        if str(header.get(f"CTYPE{i}", "")).upper().startswith("FREQ"):
            return float(header[f"CRVAL{i}"])
    for key in ("RESTFRQ", "RESTFREQ"):
        if key in header:
            return float(header[key])
    return None


def _footprint(wcs, shape) -> tuple[float, float, float]:
    """Centre (deg) and radius (deg) of a cone covering the image."""
    ny, nx = shape
    xs = np.array([(nx - 1) / 2, 0, nx - 1, 0, nx - 1, (nx - 1) / 2, 0, nx - 1, (nx - 1) / 2])
    ys = np.array([(ny - 1) / 2, 0, 0, ny - 1, ny - 1, 0, (ny - 1) / 2, (ny - 1) / 2, ny - 1])
    ra, dec = wcs.pixel_to_world_values(xs, ys)
    sep = separation_deg(ra[0], dec[0], ra[1:], dec[1:])
    return float(ra[0]) % 360.0, float(dec[0]), float(np.nanmax(sep))


def _pb_factors(sources, data, pbcor_fits, pb) -> tuple[np.ndarray, str]:
    """Multiplicative primary-beam correction per source, and its origin."""
    n = len(sources)
    if pbcor_fits is not None:
        pbdata, _, _ = read_image(pbcor_fits)
        if pbdata.shape != data.shape:
            raise ValueError(f"{pbcor_fits}: shape {pbdata.shape} differs from the image {data.shape}")
        f = np.full(n, np.nan)
        for i, s in enumerate(sources):
            iy, ix = int(round(s.y)), int(round(s.x))
            raw = data[iy, ix]
            if raw != 0 and np.isfinite(raw):
                f[i] = pbdata[iy, ix] / raw  # = 1 / pb exactly: pbcor = image / pb pixel by pixel
        return f, "pbcor_fits"
    if pb is not None:
        ra = np.array([s.ra_deg for s in sources])
        dec = np.array([s.dec_deg for s in sources])
        resp = np.asarray(pb(ra, dec), dtype=float) if n else np.empty(0)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(resp > 0, 1.0 / resp, np.nan), "pb_callable"
    return np.ones(n), "raw"


def run_image_qa(fits_path: str | Path, out_dir: str | Path, opts: ImageQAOptions | None = None, *,
                 pbcor_fits: str | Path | None = None,
                 pb: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None) -> ImageQAResult:
    """QA of one restored image.

    Noise is the robust rms (:func:`~dsa110_contimg.qa.sources.robust_rms`) of the
    whole plane, the peak the largest finite pixel, the beam BMAJ/BMIN/BPA of the
    header.  Sources are found on the image itself (flat noise, not primary-beam
    corrected) with :func:`~dsa110_contimg.qa.sources.find_sources`.

    Crossmatch (only when ``opts.catalog_path`` exists): one cone search of the
    master catalog covering the image, then the nearest catalog source within the
    match radius of each detection.  Catalog fluxes (``s_nvss``, 1.4 GHz) are
    extrapolated to the image frequency (header FREQ axis, CRVAL) with alpha =
    -0.7 when it differs from 1.4 GHz by more than 1%.  The flux compared is the
    fitted *integrated* flux.  The images are not primary-beam corrected by
    default, so without ``pbcor_fits``/``pb`` the comparison uses the raw
    (apparent) fluxes, and the ratio then includes the primary-beam attenuation.
    With ``pbcor_fits`` (the pb-corrected version of the same image) each flux is
    multiplied by pbcor/image at its peak pixel; with ``pb`` by 1 / pb(ra, dec).
    The stored ``sources`` keep the apparent fluxes in both cases; without a
    catalog ``pbcor_fits`` and ``pb`` are not used.

    Parameters
    ----------
    fits_path
        Restored image (WSClean or CASA exportfits), Jy/beam.
    out_dir
        Folder for ``<stem>_thumb.png`` and ``<stem>_qa.png``.
    opts
        Options (defaults of :class:`ImageQAOptions` when None).
    pbcor_fits
        Primary-beam-corrected image with the same grid, optional.
    pb
        ``pb(ra_deg, dec_deg) -> response`` (arrays, response in (0, 1]), optional;
        e.g. a wrapper of :func:`dsa110_contimg.beam.beam_response` for the pointing.

    Returns
    -------
    ImageQAResult

    Raises
    ------
    ValueError
        Unreadable image (no celestial WCS, no BMAJ/BMIN), both ``pbcor_fits`` and
        ``pb`` given, or a ``pbcor_fits`` on another grid.
    dsa110_contimg.catalog.CatalogError
        ``opts.catalog_path`` exists but is not a master catalog.
    """
    opts = opts or ImageQAOptions()
    if pbcor_fits is not None and pb is not None:
        raise ValueError("give either pbcor_fits or pb, not both")
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    tick = [t0]

    def lap(name):
        now = time.perf_counter()
        timings[name] = round(now - tick[0], 3)
        tick[0] = now

    fits_path = Path(fits_path)
    out_dir = Path(out_dir)
    data, wcs, header = read_image(fits_path)
    bmaj, bmin, bpa = header_beam(header)
    freq = header_frequency(header)
    lap("read")
    rms = robust_rms(data)
    finite = np.isfinite(data)
    peak = float(np.max(data[finite])) if finite.any() else float("nan")
    dr = peak / rms if rms > 0 else float("nan")
    lap("stats")
    noise = rms
    if opts.rms_box_beams is not None:  # sidelobes of bright sources raise the local threshold
        from astropy.wcs.utils import proj_plane_pixel_scales

        pix_deg = float(np.sqrt(np.prod(proj_plane_pixel_scales(wcs.celestial))))
        noise = local_rms_map(data, bmaj / 3600.0 / pix_deg, rms, opts.rms_box_beams)
    lap("rms_map")
    sources = find_sources(data, wcs, bmaj / 3600.0, bmin / 3600.0, bpa, noise, snr_min=opts.snr_min)
    lap("find_sources")
    radius = opts.match_radius_arcsec if opts.match_radius_arcsec is not None else max(10.0, 0.5 * bmaj)
    res = ImageQAResult(rms_jy=rms, peak_jy=peak, dynamic_range=dr, bmaj_arcsec=bmaj, bmin_arcsec=bmin,
                        bpa_deg=bpa, n_sources=len(sources), sources=sources, matches=[None] * len(sources),
                        fits_path=fits_path, freq_hz=freq, match_radius_arcsec=radius)
    cat = opts.catalog_path
    if cat is not None and Path(cat).is_file() and sources:
        _crossmatch(res, data, wcs, Path(cat), radius, pbcor_fits, pb)
        lap("crossmatch")
    elif cat is not None and not Path(cat).is_file():
        log.warning("%s: master catalog not found; image QA without crossmatch", cat)
    if opts.make_plots:
        out_dir.mkdir(parents=True, exist_ok=True)
        res.thumbnail_path = write_thumbnail(data, rms, out_dir / f"{fits_path.stem}_thumb.png", opts.thumbnail_size)
        res.qa_plot_path = write_qa_plot(data, rms, res, out_dir / f"{fits_path.stem}_qa.png", fits_path.stem)
        lap("plots")
    timings["total"] = round(time.perf_counter() - t0, 3)
    res.timings = timings
    log.info("image QA %s: rms %.3g Jy/beam, peak %.3g, DR %.0f, %d sources, %d matched", fits_path.name, rms, peak,
             dr, res.n_sources, res.n_matched)
    return res


def _crossmatch(res: ImageQAResult, data, wcs, cat: Path, radius: float, pbcor_fits, pb) -> None:
    ra0, dec0, r_deg = _footprint(wcs, data.shape)
    rows = cone_search(cat, ra0, dec0, r_deg + radius / 3600.0,
                       columns=("source_id", "ra_deg", "dec_deg", "s_nvss"))
    scale = 1.0
    if res.freq_hz is None:
        log.warning("%s: no FREQ axis; catalog fluxes compared without extrapolation", res.fits_path)
    elif abs(res.freq_hz / CATALOG_FREQ_HZ - 1.0) > FREQ_TOLERANCE:
        scale = (res.freq_hz / CATALOG_FREQ_HZ) ** CATALOG_ALPHA
    res.catalog_flux_scale = scale
    factors, res.flux_compared = _pb_factors(res.sources, data, pbcor_fits, pb)
    flux = np.array([s.int_jy for s in res.sources]) * factors
    res.matches = crossmatch_sources(res.sources, rows, radius, flux, scale)
    m = [x for x in res.matches if x is not None]
    res.n_matched = len(m)
    if not m:
        return
    ratios = np.array([x["flux_ratio"] for x in m])
    ratios = ratios[np.isfinite(ratios)]
    res.flux_ratio_median = float(np.median(ratios)) if ratios.size else None
    res.astrometry_offset_arcsec = float(np.median([x["catalog_sep_arcsec"] for x in m]))
    res.ra_offset_arcsec = float(np.median([x["dra_arcsec"] for x in m]))
    res.dec_offset_arcsec = float(np.median([x["ddec_arcsec"] for x in m]))
