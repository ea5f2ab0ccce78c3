"""The mosaic stage: snapshot images in, a primary-beam-weighted linear mosaic out.

:func:`build_mosaic` checks the inputs (:mod:`.inputs`), plans the output grid
(:mod:`.grid`), then, one input at a time, reprojects it with ``reproject`` only
onto the rows and columns of the output where its primary beam reaches the
cutoff (bands of at most :data:`BAND_PIXELS` pixels, so memory stays bounded;
:mod:`.reproj`), computes its beam on the same pixels (the package's drift-scan
model, exact on a lattice, bilinear in between) and adds it to the sums of the
linear mosaic (:func:`.kernels.accumulate`).  The maps are written atomically
(:mod:`.fitsio`) and checked (:mod:`.qa`).

Examples
--------
>>> res = build_mosaic([MosaicInput(p) for p in images], MosaicOptions(out=Path("m/strip")))  # doctest: +SKIP
>>> res.mosaic_path, [e.reason for e in res.excluded]                                           # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .grid import OutputGrid, bounding_box, footprint, plan_grid
from .inputs import CheckedInput, check_inputs, load_pixels
from .kernels import (accumulate, beam_cov, convolved_rms_factor, cov_beam, enclosing_cov, finalize, gaussian_kernel,
                      sky_to_pixel_cov)
from .models import (ExcludedInput, MosaicInput, MosaicInputError, MosaicOptions, MosaicResult,  # noqa: F401
                     UsedInput)
from .reproj import make_lattice, reproject_rect

log = logging.getLogger(__name__)

BAND_PIXELS = 4_000_000
"""Largest rectangle reprojected at once (pixels): bounds the memory of reproject's coordinate arrays."""


def output_paths(out: Path) -> tuple[Path, Path, Path, Path]:
    """(mosaic, weight, noise, preview) paths of the prefix ``out`` (a trailing ``.fits`` is dropped)."""
    out = Path(out)
    if out.suffix.lower() == ".fits":
        out = out.with_suffix("")
    return (out.with_name(out.name + ".fits"), out.with_name(out.name + ".weight.fits"),
            out.with_name(out.name + ".noise.fits"), out.with_name(out.name + ".png"))


def convolve_to_beam(data: np.ndarray, wcs, restoring: tuple[float, float, float], target_cov: np.ndarray,
                     rms: float) -> tuple[np.ndarray, float]:
    """Convolve an image (Jy/beam) to the beam ``target_cov`` ((east, north) arcsec^2), keeping Jy/beam:
    the image and its rms in the new beam (:func:`.kernels.convolved_rms_factor`)."""
    from scipy.signal import oaconvolve

    cov_in = beam_cov(*restoring)
    kern_cov = sky_to_pixel_cov((target_cov - cov_in) / 3600.0 ** 2, wcs.pixel_scale_matrix)
    if np.linalg.eigvalsh(kern_cov).max() < 1e-3:
        return data, rms
    kern = gaussian_kernel(kern_cov + np.eye(2) * 1e-6)
    bad = ~np.isfinite(data)
    out = oaconvolve(np.where(bad, 0.0, data), kern, mode="same").astype(np.float32)
    out *= np.float32(math.sqrt(np.linalg.det(target_cov) / np.linalg.det(cov_in)))
    out[bad] = np.nan
    return out, rms * convolved_rms_factor(cov_in, target_cov)


def _add_input(num: np.ndarray, den: np.ndarray, grid: OutputGrid, wcs, c: CheckedInput, data: np.ndarray,
               rms: float, fp, opts: MosaicOptions, lock) -> int:
    """Reproject one input onto the output where its beam reaches the cutoff and add it to the sums
    (under ``lock``); returns the number of pixels it contributed to."""
    step = max(1, int(round(opts.lattice_deg / grid.pix_deg)))
    box = bounding_box(wcs, grid.shape, fp[0], fp[1], pad=2 + step)
    if box is None:
        return 0
    by0, by1, bx0, bx1 = box
    lat = make_lattice(wcs[by0:by1, bx0:bx1], (by1 - by0, bx1 - bx0), step)
    pb_lat = c.beam.power(lat.ra, lat.dec)
    rows_per_band = max(1, BAND_PIXELS // max(1, bx1 - bx0) // step)
    bad = ~np.isfinite(data)
    mask = None
    if bad.any():  # spline prefilters spread NaN: reproject zeros, then blank what touches a NaN pixel
        data, mask = np.where(bad, np.float32(0.0), data), bad.astype(np.float32)
    used = 0
    n_rows = len(lat.gy) - 1
    for i0 in range(0, n_rows, rows_per_band):
        i1 = min(n_rows, i0 + rows_per_band)
        cols = np.flatnonzero((pb_lat[i0:i1 + 1] >= opts.pb_cutoff).any(axis=0))
        if cols.size == 0:
            continue
        j0, j1 = max(0, cols[0] - 1), min(len(lat.gx) - 1, cols[-1] + 1)
        j1 = max(j1, j0 + 1)
        sub, (y0, y1, x0, x1) = lat.sub(i0, i1, j0, j1)
        if y1 <= y0 or x1 <= x0:
            continue
        pb = sub.interp(pb_lat[i0:i1 + 1, j0:j1 + 1]).astype(np.float32)
        rect_wcs = wcs[by0 + y0:by0 + y1, bx0 + x0:bx0 + x1]
        img = reproject_rect(data, c.wcs, rect_wcs, sub, opts.order, opts.exact_coords)
        if mask is not None:
            img[~(reproject_rect(mask, c.wcs, rect_wcs, sub, "bilinear", opts.exact_coords) == 0)] = np.nan
        with lock:
            used += accumulate(num[by0 + y0:by0 + y1, bx0 + x0:bx0 + x1],
                               den[by0 + y0:by0 + y1, bx0 + x0:bx0 + x1], img, pb, 1.0 / rms ** 2, opts.pb_cutoff)
    return used


def _date_obs(c: CheckedInput) -> str:
    from astropy.time import Time

    d = c.header.get("DATE-OBS")
    return str(d) if d else Time(c.beam.first_mjd, format="mjd", scale="utc").isot


def build_mosaic(inputs: list[MosaicInput], opts: MosaicOptions | None = None) -> MosaicResult:
    """Build the primary-beam-weighted linear mosaic of snapshot images.

    Each input ``I_i`` (before primary-beam correction) is weighted by ``pb_i^2 / rms_i^2``:
    ``M = sum(pb_i I_i / rms_i^2) / sum(pb_i^2 / rms_i^2)``, the weight map is the denominator and the
    predicted noise ``1 / sqrt(weight)`` (:mod:`.kernels`); an input contributes where its beam is at
    least ``opts.pb_cutoff``, and the mosaic is blank where none does.

    Parameters
    ----------
    inputs
        The snapshot images (see :class:`~.models.MosaicInput`).
    opts
        Options (defaults of :class:`~.models.MosaicOptions` when None).

    Returns
    -------
    MosaicResult
        Paths of the maps and preview, used and excluded inputs (with reasons), noise, beam, grid, QA.

    Raises
    ------
    MosaicInputError
        Inputs at mismatched frequencies, or no usable input (messages name the files).
    dsa110_contimg.mosaic.grid.GridError
        A grid that cannot be made (a strip too long for a forced SIN, or too large).
    """
    opts = opts or MosaicOptions()
    t_all = time.perf_counter()
    timings: dict[str, float] = {}
    t = time.perf_counter()
    checked, excluded = check_inputs(list(inputs), opts)
    pairs = [(c, footprint(c.wcs, c.shape, c.beam, opts.pb_cutoff)) for c in checked]
    for c, fp in pairs:
        if fp[0].size == 0:
            reason = f"{c.spec.image_path}: primary beam below the cutoff {opts.pb_cutoff} everywhere on the image"
            log.warning("mosaic: leaving out %s", reason)
            excluded.append(ExcludedInput(Path(c.spec.image_path), c.spec.group_id, reason))
    checked, fps = [c for c, fp in pairs if fp[0].size], [fp for c, fp in pairs if fp[0].size]
    if not checked:
        raise MosaicInputError("no usable mosaic input: " + "; ".join(e.reason for e in excluded),
                               files=[e.image_path for e in excluded])
    timings["inputs"] = time.perf_counter() - t
    t = time.perf_counter()
    grid = plan_grid([c.wcs for c in checked], [c.shape for c in checked], fps, opts.projection,
                     opts.pixel_arcsec / 3600.0 if opts.pixel_arcsec else None, opts.sin_max_span_h)
    wcs = grid.wcs()
    covs = [beam_cov(*c.restoring) for c in checked]
    target = enclosing_cov(covs) if opts.common_beam else None
    beam = cov_beam(target) if target is not None else max((c.restoring for c in checked), key=lambda b: b[0] * b[1])
    timings["grid"] = time.perf_counter() - t
    t = time.perf_counter()
    num = np.zeros(grid.shape, dtype=np.float32)
    den = np.zeros(grid.shape, dtype=np.float32)
    lock = threading.Lock()

    def add(c: CheckedInput, fp) -> UsedInput | ExcludedInput:
        path = Path(c.spec.image_path)
        try:
            data = load_pixels(path)
        except Exception as exc:  # changed on disk since the check
            return ExcludedInput(path, c.spec.group_id, f"{path}: unreadable ({type(exc).__name__}: {exc})")
        rms = c.rms_jy
        if target is not None:
            data, rms = convolve_to_beam(data, c.wcs, c.restoring, target, rms)
        n = _add_input(num, den, grid, wcs, c, data, rms, fp, opts, lock)
        if n == 0:
            return ExcludedInput(path, c.spec.group_id, f"{path}: no finite pixel where its beam reaches the cutoff")
        log.debug("mosaic: %s added on %d pixels (rms %.3g)", path, n, rms)
        return UsedInput(path, c.spec.group_id, rms, c.dynamic_range, c.freq_hz, c.restoring, _date_obs(c), c.beam)

    with ThreadPoolExecutor(max(1, opts.threads)) as pool:
        outcomes = list(pool.map(add, checked, fps))
    used = [o for o in outcomes if isinstance(o, UsedInput)]
    for o in outcomes:
        if isinstance(o, ExcludedInput):
            log.warning("mosaic: leaving out %s", o.reason)
            excluded.append(o)
    if not used:
        raise MosaicInputError("no usable mosaic input: " + "; ".join(e.reason for e in excluded),
                               files=[e.image_path for e in excluded])
    maps = list(finalize(num, den))
    del num, den
    timings["accumulate"] = time.perf_counter() - t
    return _write_and_check(grid, wcs, maps, used, excluded, beam, opts, timings, t_all)


def _write_and_check(grid, wcs, maps: list, used, excluded, beam, opts, timings, t_all) -> MosaicResult:
    """Write the three maps (``maps`` = [mosaic, weight, noise], emptied here so that the weight map is
    freed before the QA) atomically, run the QA, and assemble the result."""
    from .fitsio import map_header, write_atomic
    from .qa import run_mosaic_qa

    t = time.perf_counter()
    mpath, wpath, npath, ppath = output_paths(opts.out)
    freq = float(np.mean([u.freq_hz for u in used]))
    band = max(u.drift_beam.freq_max_hz for u in used) - min(u.drift_beam.freq_min_hz for u in used)
    mjd = (min(u.drift_beam.first_mjd for u in used), max(u.drift_beam.last_mjd for u in used))
    date_obs = min(used, key=lambda u: u.drift_beam.first_mjd).date_obs
    extra = {"PROJMODE": (opts.projection, "projection asked (auto: SIN <= 1.5 h, else CAR)"),
             "PBCUTOFF": (opts.pb_cutoff, "inputs contribute where their beam >= this"),
             "WEIGHTNG": ("pb**2/rms**2", "linear mosaic of images before pb correction"),
             "COMMBEAM": (bool(opts.common_beam), "inputs convolved to a common beam")}
    cards = grid.header_cards()
    for kind, data, path in zip(("MOSAIC", "WEIGHT", "NOISE"), maps, (mpath, wpath, npath)):
        h = map_header(cards, kind=kind, freq_hz=freq, bandwidth_hz=band, beam_arcsec=beam, date_obs=date_obs,
                       mjd_range=mjd, inputs=[(str(u.image_path), u.group_id) for u in used], extra=extra)
        write_atomic(path, data, h)
    mosaic, noise = maps[0], maps[2]
    maps.clear()
    timings["write"] = time.perf_counter() - t
    med_noise = float(np.nanmedian(noise)) if np.isfinite(noise).any() else float("nan")
    qa, rms = {}, None
    preview = None
    if opts.qa:
        t = time.perf_counter()
        q = run_mosaic_qa(mosaic, noise, wcs, beam, freq, mpath, ppath, opts.catalog_path, opts.snr_min,
                          title=mpath.stem)
        qa, rms, preview = q.to_dict(), q.rms_jy, q.preview_path
        timings["qa"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t_all
    timings = {k: round(v, 3) for k, v in timings.items()}
    log.info("mosaic %s: %d inputs (%d left out), %s %d x %d px of %.2f\", median noise %.3g Jy/beam: %s",
             mpath.name, len(used), len(excluded), grid.projection, grid.shape[1], grid.shape[0],
             grid.pix_deg * 3600, med_noise, ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()))
    return MosaicResult(mosaic_path=mpath, weight_path=wpath, noise_path=npath, preview_path=preview, used=used,
                        excluded=excluded, rms_jy=rms, median_noise_jy=med_noise, freq_hz=freq,
                        beam_arcsec=tuple(float(b) for b in beam), centre_deg=(grid.ra0_deg, grid.dec0_deg),
                        shape=grid.shape, projection=grid.projection, mjd_range=mjd, timings=timings, qa=qa)
