"""QA of a mosaic: measured against predicted noise, source finding, catalog match, a PNG preview.

Reuses the per-image QA (:mod:`dsa110_contimg.qa`): the robust rms and the source
finder of :mod:`~dsa110_contimg.qa.sources`, the catalog crossmatch of
:mod:`~dsa110_contimg.qa.image_qa` (into an :class:`~dsa110_contimg.qa.image_qa.ImageQAResult`)
and the stretch and block averaging of :mod:`~dsa110_contimg.qa.plots`.  The
mosaic is primary-beam corrected, so its fluxes are compared with the catalog as
they are.  Sources are found above ``snr_min`` times the predicted noise map,
scaled up by the measured/predicted ratio when the noise is higher than predicted.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..qa.image_qa import ImageQAResult, _crossmatch, _jsonable
from ..qa.plots import _downsample, _stretch
from ..qa.sources import find_sources, robust_rms
from .kernels import subsample

log = logging.getLogger(__name__)

QA_SAMPLES = 4_000_000
"""Robust statistics of the maps use a regular subsample of at most about this many pixels."""
UNIFORM_BAND = 0.1
"""The 'uniform weight' region: predicted noise within this fraction of its median."""


@dataclass
class MosaicQA:
    """QA numbers of a mosaic (:meth:`to_dict` for JSON)."""

    rms_jy: float
    """Robust rms of the mosaic where the predicted noise is within 10% of its median (Jy/beam)."""
    predicted_noise_jy: float
    """Median predicted noise over the same pixels (Jy/beam)."""
    noise_ratio: float
    """Robust rms of mosaic / predicted noise over every finite pixel (1 when the noise map is right)."""
    image: ImageQAResult
    """Sources, catalog matches, flux ratio and astrometry (the per-image QA's result type)."""
    preview_path: Path | None = None
    """The PNG preview."""
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds per step."""

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return _jsonable(asdict(self))


def noise_stats(mosaic: np.ndarray, noise: np.ndarray) -> tuple[float, float, float]:
    """``(rms_jy, predicted_noise_jy, noise_ratio)`` of :class:`MosaicQA`."""
    ok = np.isfinite(mosaic) & np.isfinite(noise)
    if not ok.any():
        return float("nan"), float("nan"), float("nan")
    med = float(np.median(subsample(noise, QA_SAMPLES)[subsample(ok, QA_SAMPLES)]))
    band = ok & (np.abs(noise - med) <= UNIFORM_BAND * med)
    rms = robust_rms(subsample(mosaic, QA_SAMPLES), mask=~subsample(band, QA_SAMPLES))
    pred = float(np.median(subsample(noise, QA_SAMPLES)[subsample(band, QA_SAMPLES)]))
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = robust_rms(subsample(mosaic, QA_SAMPLES) / subsample(noise, QA_SAMPLES))
    return rms, pred, ratio


def run_mosaic_qa(mosaic: np.ndarray, noise: np.ndarray, wcs, beam_arcsec: tuple[float, float, float],
                  freq_hz: float, fits_path: Path, preview_path: Path | None, catalog_path: Path | None = None,
                  snr_min: float = 5.0, title: str = "") -> MosaicQA:
    """QA of a mosaic held in memory.

    Parameters
    ----------
    mosaic, noise
        The mosaic and its predicted noise map (2-D, NaN where blank).
    wcs
        Celestial WCS of the maps.
    beam_arcsec
        Restoring beam of the mosaic (BMAJ, BMIN arcsec, BPA deg).
    freq_hz
        Frequency (for the catalog's spectral extrapolation).
    fits_path
        The mosaic FITS (recorded in the result).
    preview_path
        Where to write the PNG preview; None: no preview.
    catalog_path
        Master catalog; None or missing: no crossmatch.
    snr_min
        Source-finding threshold.
    title
        Title of the preview.
    """
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    rms, pred, ratio = noise_stats(mosaic, noise)
    timings["noise"] = time.perf_counter() - t0
    scale = max(1.0, ratio) if math.isfinite(ratio) else 1.0
    rms_map = np.where(np.isfinite(noise), noise * scale, np.nanmax(noise) * scale)
    bmaj, bmin, bpa = beam_arcsec
    t = time.perf_counter()
    sources = find_sources(mosaic, wcs, bmaj / 3600.0, bmin / 3600.0, bpa, rms_map, snr_min=snr_min)
    del rms_map
    timings["find_sources"] = time.perf_counter() - t
    peak = float(np.nanmax(mosaic)) if np.isfinite(mosaic).any() else float("nan")
    res = ImageQAResult(rms_jy=rms, peak_jy=peak, dynamic_range=peak / rms if rms > 0 else float("nan"),
                        bmaj_arcsec=bmaj, bmin_arcsec=bmin, bpa_deg=bpa, n_sources=len(sources), sources=sources,
                        matches=[None] * len(sources), fits_path=Path(fits_path), freq_hz=freq_hz,
                        match_radius_arcsec=max(10.0, 0.5 * bmaj))
    if catalog_path is not None and Path(catalog_path).is_file() and sources:
        t = time.perf_counter()
        _crossmatch(res, mosaic, wcs, Path(catalog_path), res.match_radius_arcsec, None, None)
        res.flux_compared = "mosaic"  # primary-beam corrected by construction
        timings["crossmatch"] = time.perf_counter() - t
    elif catalog_path is not None:
        log.warning("%s: master catalog not found; mosaic QA without crossmatch", catalog_path)
    qa = MosaicQA(rms, pred, ratio, res)
    if preview_path is not None:
        t = time.perf_counter()
        qa.preview_path = write_preview(mosaic, wcs, pred, sources, Path(preview_path), title)
        timings["preview"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    qa.timings = {k: round(v, 3) for k, v in timings.items()}
    res.timings = dict(qa.timings)
    log.info("mosaic QA %s: rms %.3g Jy/beam (predicted %.3g, ratio %.2f), %d sources, %d matched",
             Path(fits_path).name, rms, pred, ratio, len(sources), res.n_matched)
    return qa


def write_preview(mosaic: np.ndarray, wcs, rms: float, sources, path: Path, title: str = "",
                  size: int = 1600) -> Path:
    """PNG of the mosaic (arcsinh stretch, block-averaged to at most ``size`` pixels a side) with RA/Dec
    axes and a coordinate grid (matplotlib WCSAxes, Agg), detections circled."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    small = _downsample(np.asarray(mosaic, dtype=np.float32), size)
    f = max(1, int(math.ceil(max(mosaic.shape) / max(1, size))))  # _downsample's block size
    swcs = wcs[::f, ::f] if f > 1 else wcs
    ny, nx = small.shape
    fig = plt.figure(figsize=(min(16.0, 3.0 + 11.0 * nx / max(nx, ny)), min(12.0, 2.5 + 9.0 * ny / max(nx, ny))))
    ax = fig.add_subplot(projection=swcs)
    ax.imshow(_stretch(small, rms), cmap="inferno", origin="lower", vmin=0.0, vmax=1.0, interpolation="nearest")
    if sources:
        xs = np.array([(s.x - (f - 1) / 2.0) / f for s in sources])
        ys = np.array([(s.y - (f - 1) / 2.0) / f for s in sources])
        ax.scatter(xs, ys, s=40, facecolors="none", edgecolors="cyan", linewidths=0.7)
    ax.coords.grid(color="white", alpha=0.3, linestyle="dotted")
    ax.coords[0].set_axislabel("RA (J2000)")
    ax.coords[1].set_axislabel("Dec (J2000)")
    ax.set_title(f"{title}  {len(sources)} sources, noise {rms * 1e3:.3g} mJy/beam", fontsize=10)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return Path(path)
