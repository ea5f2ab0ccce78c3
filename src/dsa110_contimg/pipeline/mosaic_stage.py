"""The mosaic stage: one linear mosaic per window of groups, run on a worker and recorded by the daemon.

:func:`run_mosaic` (a :class:`MosaicJob` in, a :class:`MosaicOutcome` out) builds the mosaic with
:func:`dsa110_contimg.mosaic.build.build_mosaic` and touches no database; :func:`record_mosaic` writes the
``mosaics`` row (replacing the window's earlier one).  ``contimg mosaic`` and the demo use the same two
functions, the daemon runs them through :class:`~.mosaic_daemon.MosaicScheduler`.

Inputs left out are listed with their reason: a group without an image (failed, not imaged), an image whose
quality gates failed (:mod:`dsa110_contimg.qa.gates`, the failing gates named), a missing or
unreadable file (found by the builder), an image whose rms is more than ``rms_factor`` times the window's
median rms (the QA cut: a snapshot hit by RFI or bad calibration would only add noise), or one failing the
builder's absolute rms / dynamic-range cuts.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..db import mosaics as mdb
from ..errors import BadInputError, one_line
from .mosaic_windows import WindowInput

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MosaicJob:
    """What a worker needs to build one mosaic."""

    name: str
    """Window name (or the name given to ``contimg mosaic``)."""
    inputs: tuple[WindowInput, ...]
    """The groups of the window, in time order."""
    out_dir: Path
    """Folder of the mosaic products (``<output_dir>/mosaics``)."""
    fingerprint: str = ""
    """Identity of the inputs (stored with the row; a change rebuilds the window)."""
    catalog_path: Path | None = None
    """Master catalog for the QA crossmatch."""
    rms_factor: float | None = 3.0
    """Leave out images whose rms exceeds this many times the median of the inputs' (None: no cut)."""
    options: dict = field(default_factory=dict)
    """Overrides of :class:`~dsa110_contimg.mosaic.models.MosaicOptions` fields."""
    stem: str | None = None
    """File name stem of the products (None: ``name``)."""


@dataclass
class MosaicOutcome:
    """What :func:`run_mosaic` hands back to be recorded."""

    job: MosaicJob
    """The job."""
    result: object | None
    """:class:`~dsa110_contimg.mosaic.models.MosaicResult`, or None when the build was refused."""
    excluded: list[dict]
    """Inputs left out before the build (no image, rms cut): ``group_id``, ``image``, ``reason``."""
    error: str | None = None
    """Why no mosaic was built (bad input: mismatched frequencies, nothing usable)."""
    seconds: float = 0.0
    """Wall time of the stage."""


def _beam_of(inp: WindowInput):
    """The drift-scan beam from the MS when the image header predates the ``PB*`` keywords; else None."""
    from astropy.io import fits

    from ..imaging.fits_products import PB_KEYWORDS
    from ..mosaic.beam import DriftBeam

    try:
        header = fits.getheader(inp.image)
    except Exception:  # noqa: BLE001 - the builder reports the unreadable file
        return None
    if all(k in header for k in PB_KEYWORDS) or not (Path(inp.ms_path) / "table.dat").exists():
        return None
    from ..ms import read_ms_info

    try:
        return DriftBeam.from_msinfo(read_ms_info(inp.ms_path))
    except Exception:  # noqa: BLE001 - no pointing keywords: the builder says the beam is unknown
        return None


def select_inputs(inputs: tuple[WindowInput, ...], rms_factor: float | None) -> tuple[list[WindowInput], list[dict]]:
    """Split the window's groups into candidate images and exclusions (no image; quality gates failed; rms above
    the relative cut)."""
    out = [{"group_id": i.group_id, "image": None, "reason": i.reason or "no image"} for i in inputs if not i.image]
    out += [{"group_id": i.group_id, "image": i.image,
             "reason": "quality gates failed: " + ("; ".join(r for r in i.quality_reasons if r.endswith("(fail)"))
                                                   or "fail")}
            for i in inputs if i.image and i.quality_state == "fail"]
    have = [i for i in inputs if i.image and i.quality_state != "fail"]
    rms = sorted(i.rms_jy for i in have if i.rms_jy is not None and math.isfinite(i.rms_jy) and i.rms_jy > 0)
    if rms_factor is None or len(rms) < 3:
        return have, out
    median = rms[len(rms) // 2] if len(rms) % 2 else 0.5 * (rms[len(rms) // 2 - 1] + rms[len(rms) // 2])
    keep = []
    for i in have:
        if i.rms_jy is not None and i.rms_jy > rms_factor * median:
            out.append({"group_id": i.group_id, "image": i.image,
                        "reason": f"rms {1e3 * i.rms_jy:.3g} mJy/beam above {rms_factor:g} x the window median "
                                  f"{1e3 * median:.3g} mJy/beam"})
        else:
            keep.append(i)
    return keep, out


def run_mosaic(job: MosaicJob) -> MosaicOutcome:
    """Build the mosaic of one window (on a worker; no database writes).

    Returns
    -------
    MosaicOutcome
        With the builder's result, or with ``error`` when the inputs cannot make a mosaic (bad input is an
        outcome to record, not an exception: the window is marked failed and the daemon goes on).
    """
    from ..mosaic.build import build_mosaic
    from ..mosaic.models import MosaicInput, MosaicOptions

    t0 = time.perf_counter()
    keep, excluded = select_inputs(job.inputs, job.rms_factor)
    opts = replace(MosaicOptions(out=Path(job.out_dir) / (job.stem or job.name), catalog_path=job.catalog_path), **job.options)
    specs = [MosaicInput(Path(i.image), i.group_id, i.rms_jy, i.dynamic_range, _beam_of(i)) for i in keep]
    try:
        if not specs:
            raise BadInputError(f"mosaic {job.name}: no image to combine "
                                f"({len(job.inputs)} group(s): {_reasons(excluded)})")
        Path(job.out_dir).mkdir(parents=True, exist_ok=True)
        result = build_mosaic(specs, opts)
    except BadInputError as exc:
        return MosaicOutcome(job, None, excluded, one_line(str(exc), 1000), time.perf_counter() - t0)
    return MosaicOutcome(job, result, excluded, None, time.perf_counter() - t0)


def _reasons(excluded: list[dict]) -> str:
    return "; ".join(f"{e['group_id']}: {e['reason']}" for e in excluded[:4]) or "none"


def to_record(outcome: MosaicOutcome) -> mdb.MosaicRecord:
    """The ``mosaics`` row of an outcome."""
    job, res = outcome.job, outcome.result
    inputs = list(outcome.excluded)
    if res is None:
        inputs += [{"group_id": i.group_id, "image": i.image, "reason": None} for i in job.inputs if i.image
                   and not any(e["image"] == i.image for e in outcome.excluded)]
        return mdb.MosaicRecord(name=job.name, status=mdb.FAILED, error=outcome.error, fingerprint=job.fingerprint,
                                n_inputs=len(job.inputs), n_used=0, inputs=inputs, seconds=outcome.seconds)
    inputs += [{"group_id": u.group_id, "image": str(u.image_path), "used": True, "rms_jy": u.rms_jy}
               for u in res.used]
    inputs += [{"group_id": e.group_id, "image": str(e.image_path), "reason": e.reason} for e in res.excluded]
    qa = dict(res.to_dict().get("qa") or {})
    img = {k: v for k, v in (qa.pop("image", None) or {}).items() if k not in ("sources", "matches")}
    qa["image"] = img
    ra, dec = res.centre_deg
    ny, nx = res.shape
    bmaj, bmin, bpa = res.beam_arcsec
    pix = _pixel_deg(res.mosaic_path)
    return mdb.MosaicRecord(
        name=job.name, status=mdb.OK, start_mjd=res.mjd_range[0], end_mjd=res.mjd_range[1],
        fingerprint=job.fingerprint, n_inputs=len(job.inputs), n_used=len(res.used),
        inputs=sorted(inputs, key=lambda d: d["group_id"] or ""), path=str(res.mosaic_path),
        weight_path=str(res.weight_path), noise_path=str(res.noise_path),
        preview_path=str(res.preview_path) if res.preview_path else None, projection=res.projection,
        ra_deg=float(ra), dec_deg=float(dec), width_deg=nx * pix if pix else None,
        height_deg=ny * pix if pix else None, freq_hz=res.freq_hz, beam_major_arcsec=bmaj, beam_minor_arcsec=bmin,
        beam_pa_deg=bpa, rms_jy=res.rms_jy, noise_median_jy=qa.get("predicted_noise_jy", res.median_noise_jy),
        n_sources=img.get("n_sources"), flux_ratio_median=img.get("flux_ratio_median"),
        astrometry_offset_arcsec=img.get("astrometry_offset_arcsec"), qa=qa,
        timings=dict(res.timings, stage=outcome.seconds), seconds=outcome.seconds)


def _pixel_deg(path) -> float | None:
    from astropy.io import fits

    try:
        return abs(float(fits.getheader(path)["CDELT2"]))
    except Exception:  # noqa: BLE001 - the extent is informative only
        return None


def record_mosaic(products_conn, outcome: MosaicOutcome) -> mdb.MosaicRecord:
    """Write (or replace) the window's row and log one line; returns the row as stored."""
    rec = to_record(outcome)
    rec.id = mdb.upsert(products_conn, rec)
    if rec.status == mdb.OK:
        noise = f", predicted {1e3 * rec.noise_median_jy:.3g}" if rec.noise_median_jy else ""
        rms = f"rms {1e3 * rec.rms_jy:.3g} mJy/beam{noise}" if rec.rms_jy else "no QA"
        log.info("mosaic %s: %d/%d images, %s, %.1f s -> %s", rec.name, rec.n_used, rec.n_inputs, rms,
                 outcome.seconds, rec.path)
    else:
        log.error("mosaic %s failed: %s", rec.name, rec.error)
    return rec
