"""Cutouts of a survey source from the images that measured it: ``GET /api/sources/{id}/cutouts.png``.

A strip of ``n`` panels (oldest on the left), one per image among the most recent ``n``
that measured the source: a square of ``size_arcsec`` around the source's position,
cut (:class:`astropy.nddata.Cutout2D`, memory-mapped, so only those pixels are read)
from the primary-beam-corrected FITS the flux was measured on, each labelled with the
image's time and the flux (``D`` a detection, ``F`` forced, ``F*`` a backfilled upper
limit), all on one brightness scale (so that a change of flux shows).  The file is the
one the products database registered for the image (``photometry_images.pbcor_path``),
read only when :func:`.files.refusal` would let it be served (a regular FITS file inside
the output folder, no symbolic link); an image whose file is gone, refused or unreadable
is a grey panel saying so.  Nothing but the source id
and two range-checked numbers comes from the request.

Cache-friendly: the answer carries an ``ETag`` made from what is drawn (the source's
position, the measurements shown, and each file's size and modification time) and
``Cache-Control: max-age=60``; a request whose ``If-None-Match`` matches is a 304 without
drawing, and the last drawings are kept in memory under the same key.

Examples
--------
``GET /api/sources/12/cutouts.png?n=4&size_arcsec=300``
"""

from __future__ import annotations

import functools
import hashlib
import io
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Sequence

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response

from .context import ApiContext
from .files import refusal
from .params import SourceId
from .routes import Ctx

router = APIRouter(prefix="/api")

PANEL_PX = 160
"""Width of one panel in the PNG (pixels); the cutout itself is ``PANEL_PX - 2 * PAD_PX`` square."""
PAD_PX = 4
"""Margin around each cutout (pixels)."""
LABEL_PX = 18
"""Height of the label rows above (time) and below (flux) the cutouts (pixels)."""
HEIGHT_PX = PANEL_PX - 2 * PAD_PX + 2 * LABEL_PX
"""Height of the PNG (pixels)."""
DPI = 100
MAX_PANELS = 12
"""Most panels one request may ask for."""
CACHE_S = 60
"""``Cache-Control: max-age`` of the answer (s): about the cadence at which a new image can add a panel."""

Panels = Annotated[int, Query(ge=1, le=MAX_PANELS, description=f"Most recent images shown (1 to {MAX_PANELS}).")]
SizeArcsec = Annotated[float, Query(ge=20.0, le=3600.0, allow_inf_nan=False,
                                    description="Side of each cutout on the sky (arcsec, 20 to 3600).")]


@dataclass(frozen=True)
class Panel:
    """One image of the strip: the measurement shown and the file to cut from (or why there is none)."""

    image_id: int
    """Image measured (``images.id``)."""
    mjd: float
    """Its time (MJD)."""
    flux_jy: float
    """The source's flux in it (Jy)."""
    err_jy: float
    """Its error (Jy)."""
    kind: str
    """'detection' or 'forced'."""
    backfilled: bool
    """Measured after the fact (an upper limit before the source was found)."""
    path: str | None
    """Registered pb-corrected FITS, when it may be read."""
    why: str | None
    """Why the file is not read (None when it is)."""
    stamp: tuple[int, int]
    """The file's size and modification time (ns): a new file is a new drawing."""


def _file(path: str | None, roots: Sequence[Path]) -> tuple[str | None, str | None, tuple[int, int]]:
    """``(path, None, stamp)`` when the registered file may be read, else ``(None, reason, (0, 0))``."""
    if not path:
        return None, "no image registered", (0, 0)
    p = Path(path)
    if p.suffix.lower() != ".fits":
        return None, "not a FITS file", (0, 0)
    reason = refusal(p, roots)
    if reason is not None:
        return None, "file not served" if os.path.lexists(p) else "file gone", (0, 0)
    st = p.stat()
    return str(p), None, (int(st.st_size), int(st.st_mtime_ns))


def plan(ctx: ApiContext, source_id: int, n: int):
    """The source and the panels of its strip (its ``n`` most recent measurements), or None for an unknown source."""
    from ..db import sources as sdb

    with ctx.products() as conn:
        rec = sdb.get_source(conn, source_id) if conn is not None else None
        if rec is None:
            return None
        ms = sdb.get_measurements(conn, source_id)[-n:]
    panels = []
    for m in ms:
        path, why, stamp = _file(m.image_path, ctx.product_dirs)
        panels.append(Panel(m.image_id, m.mjd, m.flux_jy, m.flux_err_jy, m.kind, m.backfilled, path, why, stamp))
    return rec, tuple(panels)


def etag(rec, panels: Sequence[Panel], size_arcsec: float) -> str:
    """Strong validator of a strip: a digest of everything it is drawn from."""
    key = repr((rec.id, rec.name, rec.ra_deg, rec.dec_deg, float(size_arcsec), tuple(panels)))
    return '"' + hashlib.sha256(key.encode()).hexdigest()[:32] + '"'


def _cutout(path: str, ra_deg: float, dec_deg: float, size_arcsec: float):
    """The pixels (a float array, NaN outside the image) around ``(ra, dec)``, or a string saying why there are none."""
    import numpy as np
    from astropy.nddata import Cutout2D, NoOverlapError
    from astropy.wcs.utils import proj_plane_pixel_scales

    from ..photometry.image import open_image

    try:
        data, wcs, _ = open_image(path)  # memory-mapped: only the cutout's pixels are read
        pix = float(np.sqrt(np.prod(proj_plane_pixel_scales(wcs)))) * 3600.0
        npx = max(8, min(1024, int(round(size_arcsec / pix))))
        x, y = wcs.world_to_pixel_values(ra_deg, dec_deg)
        cut = Cutout2D(data, (float(x), float(y)), (npx, npx), wcs=wcs, mode="partial", fill_value=np.nan, copy=True)
        return np.asarray(cut.data, dtype=float)
    except NoOverlapError:
        return "outside the image"
    except (OSError, ValueError, TypeError, KeyError, IndexError) as exc:
        return f"unreadable ({type(exc).__name__})"


def _label(p: Panel) -> tuple[str, str]:
    from ..timeconv import mjd_to_datetime

    kind = "D" if p.kind == "detection" else "F*" if p.backfilled else "F"
    return (mjd_to_datetime(p.mjd).strftime("%Y-%m-%d %H:%M"),
            f"{p.flux_jy * 1e3:.1f} ± {p.err_jy * 1e3:.1f} mJy {kind}")


def _stretch(pixels) -> tuple[float, float] | None:
    """Display range of one cutout: 2 sigma below its median to its brightest inner pixel (at least 5 sigma above);
    None without data."""
    import numpy as np

    from ..qa.sources import robust_rms

    finite = pixels[np.isfinite(pixels)]
    if finite.size < 4:
        return None
    med, rms = float(np.median(finite)), robust_rms(finite)
    rms = rms if math.isfinite(rms) and rms > 0 else float(np.std(finite)) or 1.0
    h, w = pixels.shape
    inner = pixels[h // 3:h - h // 3, w // 3:w - w // 3]
    top = float(np.nanmax(inner)) if np.isfinite(inner).any() else med
    return med - 2 * rms, max(top, med + 5 * rms)


def _show(ax, pixels, vmin: float, vmax: float) -> None:
    """One cutout on the strip's common scale, with two ticks pointing at the source."""
    h, w = pixels.shape
    ax.imshow(pixels, origin="lower", cmap="inferno", interpolation="nearest", vmin=vmin, vmax=vmax)
    for (x0, x1), (y0, y1) in (((0.5 * w, 0.5 * w), (0.62 * h, 0.8 * h)), ((0.2 * w, 0.38 * w), (0.5 * h, 0.5 * h))):
        ax.plot([x0 - 0.5, x1 - 0.5], [y0 - 0.5, y1 - 0.5], color="#7fd1ff", lw=1.2)


@functools.lru_cache(maxsize=32)
def cutouts_png(ra_deg: float, dec_deg: float, panels: tuple[Panel, ...], size_arcsec: float) -> bytes:
    """The strip as PNG bytes: ``len(panels)`` (at least one) panels of :data:`PANEL_PX` by :data:`HEIGHT_PX`.

    Parameters
    ----------
    ra_deg, dec_deg
        Centre of every cutout (the source's position, deg).
    panels
        The images, oldest first (:func:`plan`).
    size_arcsec
        Side of each cutout on the sky.

    Returns
    -------
    bytes
        The PNG; kept for the last 32 distinct arguments (the files' stamps are part of them).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = max(1, len(panels))
    width = n * PANEL_PX
    fig = Figure(figsize=(width / DPI, HEIGHT_PX / DPI), dpi=DPI, facecolor="white")
    FigureCanvasAgg(fig)
    side = PANEL_PX - 2 * PAD_PX
    cuts = [_cutout(p.path, ra_deg, dec_deg, size_arcsec) if p.path else p.why for p in panels]
    ranges = [r for r in (_stretch(c) for c in cuts if not isinstance(c, str)) if r is not None]
    lo, hi = (min(r[0] for r in ranges), max(r[1] for r in ranges)) if ranges else (0.0, 1.0)
    for i in range(n):
        ax = fig.add_axes(((i * PANEL_PX + PAD_PX) / width, LABEL_PX / HEIGHT_PX, side / width, side / HEIGHT_PX))
        ax.set_xticks([])
        ax.set_yticks([])
        cx = (i + 0.5) * PANEL_PX / width
        if not panels:
            ax.set_facecolor("0.8")
            ax.text(0.5, 0.5, "no measurements", ha="center", va="center", fontsize=7, transform=ax.transAxes)
            continue
        p, pixels = panels[i], cuts[i]
        if isinstance(pixels, str) or _stretch(pixels) is None:
            ax.set_facecolor("0.8")
            ax.text(0.5, 0.5, f"image {p.image_id}:\n{pixels if isinstance(pixels, str) else 'no data here'}",
                    ha="center", va="center", fontsize=7, transform=ax.transAxes)
        else:
            _show(ax, pixels, lo, hi)
        when, flux = _label(p)
        fig.text(cx, 1 - (LABEL_PX - 4) / HEIGHT_PX, when, ha="center", va="bottom", fontsize=7)
        fig.text(cx, 4 / HEIGHT_PX, flux, ha="center", va="bottom", fontsize=7,
                 color="#1f5fa8" if p.kind == "detection" else "#555555")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


@router.get("/sources/{source_id}/cutouts.png", response_class=Response,
            summary="Cutouts of the source from the most recent images that measured it",
            responses={200: {"content": {"image/png": {}}}, 304: {"description": "Unchanged (If-None-Match)"},
                       404: {"description": "Unknown source"}})
def get_cutouts(request: Request, c: Ctx, source_id: SourceId, n: Panels = 6, size_arcsec: SizeArcsec = 300.0):
    """A PNG strip of ``n`` panels (the most recent images that measured the source, oldest left): a square of
    ``size_arcsec`` around the source on the pb-corrected image, labelled with the time and the flux (D detection,
    F forced, F* backfilled)."""
    found = plan(c, source_id, n)
    if found is None:
        raise HTTPException(status_code=404, detail=f"source {source_id} not found")
    rec, panels = found
    tag = etag(rec, panels, size_arcsec)
    headers = {"ETag": tag, "Cache-Control": f"max-age={CACHE_S}"}
    if tag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers=headers)
    return Response(content=cutouts_png(rec.ra_deg, rec.dec_deg, panels, float(size_arcsec)), media_type="image/png",
                    headers=headers)
