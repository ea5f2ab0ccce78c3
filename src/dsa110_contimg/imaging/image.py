"""The imaging stage: one MS in, FITS images (and a primary-beam-corrected one) out.

WSClean is the fast path and the default when installed; CASA tclean is the
reference (and the fallback, with a recorded warning, when WSClean is missing).
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..conversion.average import AveragingNotSupported, average_ms
from ..errors import ContimgError
from ..ms import MSInfo, flagged_fraction, read_ms_info
from .defaults import default_cell_and_size, read_geometry
from .fits_products import complete_header, pb_keywords, write_pbcor
from .products import ImageSet
from .tclean import TcleanOptions, run_tclean
from .wsclean import WSCleanError, WSCleanOptions, run_wsclean, wsclean_binary

log = logging.getLogger(__name__)


class ImagingError(ContimgError, RuntimeError):
    """The MS cannot be imaged as asked; the message names the MS and the reason."""


@dataclass
class ImageOptions:
    """Options of the imaging stage (mirrors ``contimg image``)."""

    backend: str | None = None
    """'wsclean' or 'tclean'; default WSClean when installed, else tclean."""
    quick: bool = False
    """Cap the image size and iterations for a fast look."""
    skip_fits: bool = False
    """Keep the native products only (no FITS export, no pbcor FITS)."""
    imsize: int | None = None
    """Image size (pixels); default covers the primary beam to 10%."""
    cell_arcsec: float | None = None
    """Pixel size (arcsec); default a quarter of the synthesized beam."""
    niter: int | None = None
    """Clean iterations (default 5000, 500 with --quick)."""
    weighting: str = "briggs"
    """'natural', 'uniform' or 'briggs'."""
    robust: float = 0.0
    """Briggs robust parameter."""
    threshold_jy: float | None = None
    """Absolute stopping threshold (Jy); default 3 sigma of the residual."""
    datacolumn: str = "auto"
    """'auto' (CORRECTED_DATA when the MS says it is calibrated, else DATA with a warning), 'data' or 'corrected'."""
    pbcor: bool = True
    """Also write a primary-beam-corrected FITS."""
    out_dir: Path | None = None
    """Folder for the products (default: beside the MS)."""
    quick_max_size: int = 1024
    """Image size cap of --quick."""
    quick_niter: int = 500
    """Iteration cap of --quick."""
    quick_channels: int = 96
    """--quick images the data averaged to this many channels (bandwidth smearing is acceptable for a look)."""


@dataclass
class ImageResult:
    """What the imaging stage made."""

    ms_path: Path
    """The MS imaged."""
    images: ImageSet
    """Products."""
    datacolumn: str
    """Column imaged."""
    cell_arcsec: float
    """Pixel size used."""
    imsize: int
    """Image size used."""
    niter: int
    """Iteration limit used."""
    warnings: list[str] = field(default_factory=list)
    """Warnings recorded (fallbacks, uncalibrated data)."""
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds: prepare, image, fits, pbcor, total."""


def resolve_datacolumn(ms_path: str | Path, requested: str, info: MSInfo | None = None) -> tuple[str, str | None]:
    """Which column to image, and a warning when it is uncalibrated DATA.

    'auto' images CORRECTED_DATA when the MS's explicit flag says it holds applied calibration
    (:attr:`~dsa110_contimg.ms.MSInfo.corrected_is_calibrated`, set by the apply stage), else DATA.

    Raises
    ------
    ImagingError
        'corrected' was forced but the MS has no CORRECTED_DATA.
    """
    from casacore.tables import table

    with table(str(ms_path), ack=False) as t:
        has_corr = "CORRECTED_DATA" in t.colnames()
    if requested == "corrected":
        if not has_corr:
            raise ImagingError(f"{ms_path}: datacolumn 'corrected' forced but the MS has no CORRECTED_DATA")
        return "CORRECTED_DATA", None
    if requested == "data":
        return "DATA", None
    if requested != "auto":
        raise ImagingError(f"{ms_path}: unknown datacolumn {requested!r}")
    info = info or read_ms_info(ms_path)
    if has_corr and info.corrected_is_calibrated:
        return "CORRECTED_DATA", None
    return "DATA", f"{Path(ms_path).name}: no applied calibration in CORRECTED_DATA; imaging uncalibrated DATA"


def _check_not_all_flagged(ms_path: Path) -> None:
    if flagged_fraction(ms_path) >= 1.0:
        raise ImagingError(f"{ms_path}: all data are flagged; nothing to image")


def choose_backend(requested: str | None) -> tuple[str, str | None]:
    """Backend to use and a warning when WSClean was wanted but is missing."""
    if requested not in (None, "wsclean", "tclean"):
        raise ImagingError(f"unknown imaging backend {requested!r}")
    if requested == "tclean":
        return "tclean", None
    if wsclean_binary() is None:
        return "tclean", "wsclean is not installed: falling back to CASA tclean"
    return "wsclean", None


def _quick_average(ms_path: Path, info: MSInfo, column: str, channels: int, out_dir: Path) -> Path | None:
    """Average ``column`` to about ``channels`` channels in a temporary MS (None when not worth it)."""
    chan_bin = info.n_channels // channels
    if chan_bin < 2:
        return None
    dst = out_dir / f".{ms_path.stem}.quick.tmp.ms"
    shutil.rmtree(dst, ignore_errors=True)
    try:
        return average_ms(ms_path, dst, 1, chan_bin, columns=(column,), rename={column: "DATA"})
    except AveragingNotSupported as exc:
        log.warning("%s; quick imaging at full resolution", exc)
        shutil.rmtree(dst, ignore_errors=True)
        return None


def _run_backend(backend: str, ms: Path, column: str, prefix: Path, size: int, cell: float, niter: int,
                 opts: ImageOptions) -> ImageSet:
    if backend == "wsclean":
        weight = f"briggs {opts.robust}" if opts.weighting == "briggs" else opts.weighting
        try:
            return run_wsclean(ms, prefix, WSCleanOptions(size=size, scale_arcsec=cell, niter=niter, weight=weight,
                                                          threshold_jy=opts.threshold_jy, data_column=column))
        except WSCleanError as exc:
            raise ImagingError(str(exc)) from None
    return run_tclean(ms, prefix, TcleanOptions(
        imsize=size, cell_arcsec=cell, niter=niter, weighting=opts.weighting, robust=opts.robust,
        threshold=f"{opts.threshold_jy}Jy" if opts.threshold_jy else "0mJy",
        datacolumn="corrected" if column == "CORRECTED_DATA" else "data"), export_fits=not opts.skip_fits)


def image_grid(ms_path: str | Path, opts: ImageOptions, info: MSInfo | None = None) -> tuple[float, int]:
    """Cell (arcsec) and size (pixels) :func:`image_ms` uses for ``opts`` on this MS."""
    cell, size = default_cell_and_size(read_geometry(ms_path, info), max_size=opts.quick_max_size if opts.quick else None)
    cell = opts.cell_arcsec or cell
    size = opts.imsize or size
    return cell, (min(size, opts.quick_max_size) if opts.quick else size)


def image_ms(ms_path: str | Path, opts: ImageOptions | None = None) -> ImageResult:
    """Image one MS.

    Raises
    ------
    ImagingError
        All data flagged, a forced CORRECTED_DATA that does not exist, or a failed imager.
    """
    opts = opts or ImageOptions()
    t_all = time.perf_counter()
    ms_path = Path(ms_path)
    if not (ms_path / "table.dat").exists():
        raise ImagingError(f"{ms_path}: not a Measurement Set")
    timings: dict[str, float] = {}
    warnings: list[str] = []
    t0 = time.perf_counter()
    _check_not_all_flagged(ms_path)
    info = read_ms_info(ms_path)
    column, warn = resolve_datacolumn(ms_path, opts.datacolumn, info)
    if warn:
        warnings.append(warn)
    backend, warn = choose_backend(opts.backend)
    if warn:
        warnings.append(warn)
    cell, size = image_grid(ms_path, opts, info)
    niter = opts.niter if opts.niter is not None else (opts.quick_niter if opts.quick else 5000)
    if opts.quick:
        niter = min(niter, opts.quick_niter)
    out_dir = Path(opts.out_dir) if opts.out_dir else ms_path.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    prefix = out_dir / f"{ms_path.stem}.{backend}"
    timings["prepare"] = time.perf_counter() - t0
    for w in warnings:
        log.warning("%s", w)

    image_src, image_col = ms_path, column
    averaged = None
    if opts.quick:
        averaged = _quick_average(ms_path, info, column, opts.quick_channels, out_dir)
        if averaged is not None:
            image_src, image_col = averaged, "DATA"
            timings["average"] = time.perf_counter() - t0 - timings["prepare"]
    t0 = time.perf_counter()
    try:
        images = _run_backend(backend, image_src, image_col, prefix, size, cell, niter, opts)
    finally:
        if averaged is not None:
            shutil.rmtree(averaged, ignore_errors=True)
    timings["image"] = time.perf_counter() - t0

    if not opts.skip_fits:
        t0 = time.perf_counter()
        info.pointing()  # the primary beam needs the drift-scan pointing: an MS from elsewhere fails here
        extra = {"DATACOL": column, "IMAGER": backend, **pb_keywords(info)}  # PB*: the beam, for mosaics
        for p, restored in ((images.image, True), (images.residual, False)):
            if p is not None:
                complete_header(p, info, extra=extra, require_beam=restored)
        timings["fits"] = time.perf_counter() - t0
        if opts.pbcor:
            t0 = time.perf_counter()
            images.pbcor = write_pbcor(images.image, prefix.with_name(prefix.name + "-image-pb.fits"), info)
            timings["pbcor"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - t_all
    log.info("imaged %s with %s (%d px x %.1f\", niter %d, %s): %s", ms_path.name, backend, size, cell, niter,
             column, ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()))
    return ImageResult(ms_path, images, column, cell, size, niter, warnings, timings)
