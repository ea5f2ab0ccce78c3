"""Self-calibration of one target group: :class:`SelfcalOptions` in, :class:`SelfcalResult` out.

After the calibrator's solutions are applied (CORRECTED_DATA, marked calibrated), the
group is imaged with WSClean writing its clean components' visibilities to
MODEL_DATA; then each round solves antenna gains of CORRECTED_DATA against that model
(:mod:`.msgains`, one solution per interval over the whole band: the calibrator's
bandpass and delays are already applied, what is left is a slowly varying phase),
divides them out and images again.  Phase-only rounds come first on shortening
intervals, then optionally one amplitude-and-phase round.

A round is accepted only if it lowers the residual image's robust rms by at least
``min_rms_drop`` and does not lower the flux of the reference sources (master-catalog
sources in the field above ``catalog_min_flux_jy``, else the brightest peaks of the
first image) by more than ``max_flux_loss`` (median ratio, measured in the restored
image at the sources' positions).  A rejected round is undone exactly (its gains are
multiplied back in) and self-calibration stops there: a round that did not help gives
no better model for the next.  Every round's interval, mode, rms, dynamic range, flux
ratio and gain scatter is recorded.
"""

from __future__ import annotations

import logging
import math
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ContimgError

log = logging.getLogger(__name__)


class SelfcalError(ContimgError, RuntimeError):
    """Self-calibration cannot run on this MS (the message names it and says why)."""


@dataclass
class SelfcalOptions:
    """Options of :func:`selfcal_ms` (mirrors ``contimg selfcal``)."""

    phase_solints: tuple[str, ...] = ("60s",)
    """Phase-only rounds, one per interval ('inf': the whole group, 'int': each integration, '60s', ...)."""
    amp_solint: str | None = None
    """Interval of a final amplitude-and-phase round (None: none)."""
    min_rms_drop: float = 0.02
    """A round must lower the residual rms by at least this fraction."""
    max_flux_loss: float = 0.03
    """... and may lower the reference sources' median flux by at most this fraction."""
    catalog_min_flux_jy: float = 0.05
    """Master-catalog sources at least this bright (NVSS, Jy) inside ``ref_pb_level`` are the references."""
    ref_pb_level: float = 0.5
    """References are taken within the radius where the primary beam is at least this."""
    n_peak_refs: int = 10
    """Without a catalog: the brightest peaks of the first image (above 20 sigma) are the references."""
    min_baselines: int = 4
    """An antenna's gain needs at least this many baselines with data in the interval."""
    imsize: int | None = None
    """Image size of the rounds (pixels; default: ``field_deg`` at the imaging stage's pixel size)."""
    field_deg: float = 3.4
    """Field of the rounds' images when ``imsize`` is not given (deg; 3.4: the main lobe out to about a quarter of
    the beam at 1.4 GHz; the imaging stage's 6.4 deg field cost 45 s a round at full size, for 1% in the rms)."""
    cell_arcsec: float | None = None
    """Pixel size of the rounds (arcsec; default: as the imaging stage)."""
    niter: int = 5000
    """Clean iterations per round."""
    weight: str = "briggs 0"
    """WSClean weighting of the rounds."""
    auto_mask: float | None = 8.0
    """WSClean -auto-mask of the rounds (clean components into the model only where real emission is)."""
    auto_threshold: float = 3.0
    """WSClean -auto-threshold inside the mask."""
    keep_images: bool = False
    """Keep each round's images (else only the last accepted round's)."""
    channels: int | None = 96
    """Rounds image and solve the data averaged to about this many channels (the gains are one per interval over
    the whole band, so the accepted ones are then applied to the full-resolution MS); None: full resolution."""
    time_bin: int = 2
    """... and averaged over this many integrations (each integration then takes its averaged row's interval)."""


@dataclass
class SelfcalRound:
    """One round (round 0 is the image before self-calibration)."""

    index: int
    """Round number."""
    solint: str | None
    """Solution interval (None for round 0)."""
    mode: str
    """'p' (phase), 'ap' (amplitude and phase), or '' for round 0."""
    accepted: bool
    """Kept (round 0 always)."""
    rms_jy: float
    """Robust rms of the residual image."""
    peak_jy: float
    """Peak of the restored image."""
    dynamic_range: float
    """Peak over rms."""
    flux_ratio: float | None
    """Median flux of the references over round 0's (None for round 0)."""
    phase_rms_deg: float | None = None
    """Rms of the solved gain phases (how much the round changed the data)."""
    n_solved: int = 0
    """Gains solved."""
    n_failed: int = 0
    """Gains left at 1 (too few baselines)."""
    seconds: float = 0.0
    """Wall time of the round (solve, apply, image)."""
    reason: str = ""
    """Why it was rejected (empty when accepted)."""


@dataclass
class SelfcalResult:
    """What :func:`selfcal_ms` did."""

    ms_path: Path
    """The MS (CORRECTED_DATA now self-calibrated by the accepted rounds)."""
    rounds: list[SelfcalRound] = field(default_factory=list)
    """Every round, round 0 first."""
    n_references: int = 0
    """Reference sources of the flux check."""
    reference_origin: str = ""
    """'catalog' or 'peaks'."""
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds: image0, rounds, total."""

    @property
    def n_accepted(self) -> int:
        """Accepted rounds after round 0."""
        return sum(1 for r in self.rounds[1:] if r.accepted)

    @property
    def rms_before_jy(self) -> float:
        """Residual rms before self-calibration."""
        return self.rounds[0].rms_jy

    @property
    def rms_after_jy(self) -> float:
        """Residual rms after the last accepted round."""
        return [r for r in self.rounds if r.accepted][-1].rms_jy

    def to_dict(self) -> dict:
        """JSON-ready summary (stored with the image's QA)."""
        return {"ms_path": str(self.ms_path), "rounds": [asdict(r) for r in self.rounds],
                "n_accepted": self.n_accepted, "rms_before_jy": self.rms_before_jy,
                "rms_after_jy": self.rms_after_jy, "n_references": self.n_references,
                "reference_origin": self.reference_origin, "timings": self.timings}

    def summary(self) -> str:
        """One line for the log."""
        kept = [r for r in self.rounds[1:] if r.accepted]
        solints = ",".join(f"{r.mode}:{r.solint}" for r in kept) or "none"
        return (f"self-calibrated {self.ms_path.name}: {self.n_accepted} of {len(self.rounds) - 1} rounds kept "
                f"({solints}), residual rms {1e3 * self.rms_before_jy:.2f} -> {1e3 * self.rms_after_jy:.2f} mJy/beam")


def _image(ms: Path, prefix: Path, opts: SelfcalOptions, cell: float, size: int):
    """One WSClean run of CORRECTED_DATA that writes MODEL_DATA; the ImageSet."""
    from ..imaging.wsclean import WSCleanOptions, run_wsclean

    return run_wsclean(ms, prefix, WSCleanOptions(
        size=size, scale_arcsec=cell, niter=opts.niter, weight=opts.weight, data_column="CORRECTED_DATA",
        auto_threshold=opts.auto_threshold, auto_mask=opts.auto_mask, update_model=True))


def _measure(images) -> tuple[float, float, np.ndarray, object]:
    """(residual rms, restored peak, restored pixels, wcs) of one round's images."""
    from ..qa.image_qa import read_image
    from ..qa.sources import robust_rms

    data, wcs, _ = read_image(images.image)
    resid, _, _ = read_image(images.residual) if images.residual else (data, None, None)
    return float(robust_rms(resid)), float(np.nanmax(data)), data, wcs


def _values_at(data: np.ndarray, wcs, ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    """Restored-image values at sky positions (nearest pixel; NaN outside)."""
    x, y = wcs.world_to_pixel_values(ra_deg, dec_deg)
    ix, iy = np.rint(np.asarray(x)).astype(int), np.rint(np.asarray(y)).astype(int)
    ok = (ix >= 0) & (iy >= 0) & (ix < data.shape[1]) & (iy < data.shape[0])
    out = np.full(ix.shape, np.nan)
    out[ok] = data[iy[ok], ix[ok]]
    return out


def _references(ms: Path, data: np.ndarray, wcs, rms: float, opts: SelfcalOptions,
                catalog_path: Path | None) -> tuple[np.ndarray, np.ndarray, str]:
    """Positions whose flux a round must not lower: catalog sources in the field, else the image's brightest peaks."""
    from ..imaging.defaults import pb_radius_rad
    from ..ms import read_ms_info

    if catalog_path is not None and Path(catalog_path).is_file():
        from ..catalog.query import cone_search

        info = read_ms_info(ms)
        ra0, dec0 = (math.degrees(v) for v in info.phase_centre_rad)
        radius = math.degrees(pb_radius_rad(opts.ref_pb_level, float(np.max(info.freqs_hz))))
        cat = cone_search(catalog_path, ra0 % 360, dec0, radius, columns=("ra_deg", "dec_deg", "s_nvss"),
                          min_flux_jy=opts.catalog_min_flux_jy)
        if len(cat):
            return np.asarray(cat["ra_deg"], float), np.asarray(cat["dec_deg"], float), "catalog"
    from scipy.ndimage import maximum_filter

    finite = np.where(np.isfinite(data), data, -np.inf)
    peaks = (finite == maximum_filter(finite, size=9)) & (finite > 20 * rms)
    iy, ix = np.nonzero(peaks)
    order = np.argsort(finite[iy, ix])[::-1][:opts.n_peak_refs]
    ra, dec = wcs.pixel_to_world_values(ix[order], iy[order])
    return np.atleast_1d(np.asarray(ra, float)), np.atleast_1d(np.asarray(dec, float)), "peaks"


def _plan(opts: SelfcalOptions) -> list[tuple[str, bool]]:
    from ..calibration.gainsolve import parse_solint

    plan = [(s, True) for s in opts.phase_solints]
    if opts.amp_solint:
        plan.append((opts.amp_solint, False))
    for s, _ in plan:
        parse_solint(s)  # a bad interval fails before any work
    return plan


def selfcal_ms(ms_path: str | Path, opts: SelfcalOptions | None = None, catalog_path: Path | None = None,
               work_dir: str | Path | None = None) -> SelfcalResult:
    """Self-calibrate one group's CORRECTED_DATA in place (see the module docstring).

    Raises
    ------
    SelfcalError
        Not an MS, no CORRECTED_DATA, or CORRECTED_DATA not marked calibrated.
    ValueError
        A bad solution interval.
    """
    from ..calibration.gainsolve import phase_scatter_deg
    from ..imaging.defaults import default_cell_and_size, read_geometry
    from ..ms import read_ms_info
    from .msgains import apply_ms, apply_ms_many, solve_ms

    opts = opts or SelfcalOptions()
    ms = Path(ms_path)
    if not (ms / "table.dat").exists():
        raise SelfcalError(f"{ms}: not a Measurement Set", [ms])
    info = read_ms_info(ms)
    if not info.corrected_is_calibrated:
        raise SelfcalError(f"{ms}: CORRECTED_DATA holds no applied calibration: apply the calibrator's tables "
                           "before self-calibrating", [ms])
    plan = _plan(opts)
    t_all = time.perf_counter()
    cell, size = default_cell_and_size(read_geometry(ms, info))
    cell = opts.cell_arcsec or cell
    size = opts.imsize or min(size, 2 * math.ceil(opts.field_deg * 3600.0 / cell / 2))
    work = Path(work_dir) if work_dir else ms.parent / f".{ms.stem}.selfcal"
    work.mkdir(parents=True, exist_ok=True)
    res = SelfcalResult(ms_path=ms)
    full = ms
    ms = _averaged(full, info, opts, work) or full  # the rounds' MS
    accepted: list = []
    images = _image(ms, work / "round0", opts, cell, size)
    rms, peak, data, wcs = _measure(images)
    ref_ra, ref_dec, res.reference_origin = _references(ms, data, wcs, rms, opts, catalog_path)
    res.n_references = int(ref_ra.size)
    ref0 = _values_at(data, wcs, ref_ra, ref_dec)
    res.rounds.append(SelfcalRound(0, None, "", True, rms, peak, peak / rms if rms > 0 else math.inf, None))
    res.timings["image0"] = time.perf_counter() - t_all
    best, best_rms = images, rms
    for i, (solint, phase_only) in enumerate(plan, start=1):
        t0 = time.perf_counter()
        sol = solve_ms(ms, solint, phase_only, min_baselines=opts.min_baselines)
        apply_ms(ms, sol)
        images = _image(ms, work / f"round{i}", opts, cell, size)
        rms, peak, data, wcs = _measure(images)
        ratio = _flux_ratio(ref0, _values_at(data, wcs, ref_ra, ref_dec))
        reason = ""
        if not rms < (1.0 - opts.min_rms_drop) * best_rms:
            reason = (f"residual rms {1e3 * rms:.3g} mJy/beam not {100 * opts.min_rms_drop:g}% below "
                      f"{1e3 * best_rms:.3g}")
        elif ratio is not None and ratio < 1.0 - opts.max_flux_loss:
            reason = f"reference sources' flux fell to {ratio:.3f} of round 0's"
        rnd = SelfcalRound(i, solint, "p" if phase_only else "ap", not reason, rms, peak,
                           peak / rms if rms > 0 else math.inf, ratio, phase_scatter_deg(sol.gains, sol.ok),
                           sol.n_solved, sol.n_failed, reason=reason)
        if reason:
            apply_ms(ms, sol, inverse=True)  # undo exactly: CORRECTED_DATA as after the last accepted round
        else:
            accepted.append(sol)
            if not opts.keep_images:
                _remove(best)
            best, best_rms = images, rms
        rnd.seconds = time.perf_counter() - t0
        res.rounds.append(rnd)
        log.debug("self-cal round %d (%s %s): rms %.3g Jy, DR %.0f, flux ratio %s: %s", i, rnd.mode, solint, rms,
                  rnd.dynamic_range, f"{ratio:.3f}" if ratio is not None else "-", reason or "accepted")
        if reason:
            if not opts.keep_images:
                _remove(images)
            break
    if ms != full:
        t0 = time.perf_counter()
        if accepted:
            apply_ms_many(full, accepted)
        shutil.rmtree(ms, ignore_errors=True)
        res.timings["apply_full"] = time.perf_counter() - t0
        ms = full
    res.timings["rounds"] = time.perf_counter() - t_all - res.timings["image0"] - res.timings.get("apply_full", 0.0)
    res.timings["total"] = time.perf_counter() - t_all
    log.info("%s", res.summary())
    return res


def _averaged(ms: Path, info, opts: SelfcalOptions, work: Path) -> Path | None:
    """CORRECTED_DATA averaged to about ``opts.channels`` channels in ``work`` (None: not worth it, or not possible)."""
    from ..conversion.average import AveragingNotSupported, average_ms

    cbin = info.n_channels // opts.channels if opts.channels else 1
    tbin = max(1, min(opts.time_bin, info.n_times))
    if cbin < 2 and tbin < 2:
        return None
    dst = work / f"{ms.stem}.avg.ms"
    shutil.rmtree(dst, ignore_errors=True)
    try:
        return average_ms(ms, dst, tbin, max(cbin, 1), columns=("CORRECTED_DATA",),
                          rename={"CORRECTED_DATA": "DATA"})
    except AveragingNotSupported as exc:
        log.warning("%s; self-calibrating at full resolution", exc)
        shutil.rmtree(dst, ignore_errors=True)
        return None


def _flux_ratio(before: np.ndarray, after: np.ndarray) -> float | None:
    ok = np.isfinite(before) & np.isfinite(after) & (before > 0)
    return float(np.median(after[ok] / before[ok])) if ok.any() else None


def _remove(images) -> None:
    """Delete a round's products (its FITS files)."""
    for attr in ("image", "residual", "model", "psf"):
        p = getattr(images, attr, None)
        if p is not None:
            Path(p).unlink(missing_ok=True)
    prefix = Path(images.prefix)
    for p in prefix.parent.glob(prefix.name + "-*"):
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
