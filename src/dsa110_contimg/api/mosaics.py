"""Mosaics: JSON under ``/api/mosaics`` and the dashboard's ``/mosaics`` gallery and pages.

The rows are the products database's ``mosaics`` (:mod:`dsa110_contimg.db.mosaics`), written by the daemon's
mosaic scheduler and ``contimg mosaic``; their FITS and preview are served with the same rules as images'
(:func:`~.files.registered_file`: a path from the row, inside the product folders, no symbolic link).

Examples
--------
``GET /api/mosaics?limit=20``, ``GET /api/mosaics/3``, ``GET /api/mosaics/3/fits``,
``GET /api/mosaics/3/preview.png``; pages ``/mosaics`` and ``/mosaics/3``.
"""

from __future__ import annotations

from pathlib import Path as FsPath
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.responses import FileResponse, HTMLResponse
from pydantic import BaseModel, Field

from .context import ApiContext, cached
from .data import page
from .files import registered_file
from .models import Page
from .params import SQLITE_INT_MAX, Limit, Offset, page_limit
from .routes import Ctx

router = APIRouter(prefix="/api")
pages = APIRouter(include_in_schema=False)
MosaicId = Annotated[int, Path(ge=1, le=SQLITE_INT_MAX, description="Mosaic id (``mosaics.id``).")]
GalleryLimit = page_limit(200)
"""Mosaics of the gallery page."""


class MosaicInputRow(BaseModel):
    """One image offered to a mosaic."""

    group_id: str | None
    image: str | None = Field(description="The image (before primary-beam correction); None: the group had none.")
    used: bool = False
    reason: str | None = Field(None, description="Why it was left out.")
    rms_jy: float | None = None


class MosaicSummary(BaseModel):
    """One mosaic with its numbers."""

    id: int
    name: str = Field(description="Window name (UTC start) or the name given to ``contimg mosaic``.")
    status: str = Field(description="'ok' or 'failed'.")
    error: str | None
    start_mjd: float | None
    end_mjd: float | None
    n_inputs: int
    n_used: int
    projection: str | None
    ra_deg: float | None
    dec_deg: float | None
    freq_hz: float | None
    beam_major_arcsec: float | None
    beam_minor_arcsec: float | None
    beam_pa_deg: float | None
    rms_jy: float | None = Field(description="Measured robust rms where the weight is high (Jy/beam).")
    noise_median_jy: float | None = Field(description="Median predicted noise over the same pixels (Jy/beam).")
    n_sources: int | None
    flux_ratio_median: float | None
    astrometry_offset_arcsec: float | None
    seconds: float | None
    created_at: str | None
    updated_at: str | None
    urls: dict[str, str | None]


class MosaicDetail(MosaicSummary):
    """One mosaic with its inputs, QA and timings."""

    inputs: list[MosaicInputRow]
    qa: dict[str, Any]
    timings: dict[str, float]


def _summary(rec) -> dict[str, Any]:
    d = {k: v for k, v in vars(rec).items() if k not in ("inputs", "qa", "timings", "fingerprint", "path",
                                                         "weight_path", "noise_path", "preview_path")}
    base = f"/api/mosaics/{rec.id}"
    d["urls"] = {"self": base, "fits": f"{base}/fits" if rec.path else None,
                 "preview": f"{base}/preview.png" if rec.preview_path else None, "page": f"/mosaics/{rec.id}"}
    return d


@cached
def list_mosaics(ctx: ApiContext, limit: int, offset: int) -> dict[str, Any]:
    """A page of mosaics, newest window first."""
    from ..db import mosaics as mdb

    with ctx.products() as conn:
        if conn is None:
            return page([], 0, limit, offset)
        return page([_summary(r) for r in mdb.list_mosaics(conn, limit, offset)], mdb.count(conn), limit, offset)


@cached
def mosaic_detail(ctx: ApiContext, mosaic_id: int) -> dict[str, Any] | None:
    """One mosaic with its inputs (None when unknown)."""
    from ..db import mosaics as mdb

    with ctx.products() as conn:
        rec = mdb.get(conn, mosaic_id) if conn is not None else None
    if rec is None:
        return None
    return {**_summary(rec), "inputs": rec.inputs, "qa": rec.qa, "timings": rec.timings}


def _record(ctx: ApiContext, mosaic_id: int):
    from ..db import mosaics as mdb

    with ctx.products() as conn:
        rec = mdb.get(conn, mosaic_id) if conn is not None else None
    if rec is None:
        raise HTTPException(status_code=404, detail=f"mosaic {mosaic_id} not found")
    return rec


def _found(value, mosaic_id: int):
    if value is None:
        raise HTTPException(status_code=404, detail=f"mosaic {mosaic_id} not found")
    return value


@router.get("/mosaics", response_model=Page[MosaicSummary], summary="Mosaics, newest first")
async def get_mosaics(c: Ctx, limit: Limit = 50, offset: Offset = 0):
    """Linear mosaics of windows of consecutive groups, with their noise, beam and QA numbers."""
    return list_mosaics(c, limit, offset)


@router.get("/mosaics/{mosaic_id}", response_model=MosaicDetail, summary="One mosaic with its inputs")
async def get_mosaic(c: Ctx, mosaic_id: MosaicId):
    """A mosaic's numbers, the images it combined and those left out (with the reason), QA and timings."""
    return _found(mosaic_detail(c, mosaic_id), mosaic_id)


@router.get("/mosaics/{mosaic_id}/fits", response_class=FileResponse, summary="The mosaic's FITS",
            responses={200: {"content": {"application/fits": {}}}})
def get_mosaic_fits(c: Ctx, mosaic_id: MosaicId):
    """The mosaic FITS (Jy/beam, primary-beam corrected), served from the registered path."""
    rec = _record(c, mosaic_id)
    return registered_file(FsPath(rec.path) if rec.path else None, f"FITS file of mosaic {mosaic_id}", ".fits",
                           c.product_dirs)


@router.get("/mosaics/{mosaic_id}/preview.png", response_class=FileResponse, summary="The mosaic's preview",
            responses={200: {"content": {"image/png": {}}}})
def get_mosaic_preview(c: Ctx, mosaic_id: MosaicId):
    """PNG preview with WCS axes and the QA's sources."""
    rec = _record(c, mosaic_id)
    return registered_file(FsPath(rec.preview_path) if rec.preview_path else None,
                           f"preview of mosaic {mosaic_id}", ".png", c.product_dirs)


@pages.get("/mosaics", response_class=HTMLResponse)
async def mosaics_page(request: Request, c: Ctx, limit: GalleryLimit = 24, offset: Offset = 0):
    """Gallery of the mosaics, newest first."""
    from .dashboard import _render

    return _render(request, "mosaics.html", True, page=list_mosaics(c, limit, offset))


@pages.get("/mosaics/{mosaic_id}", response_class=HTMLResponse)
async def mosaic_page(request: Request, c: Ctx, mosaic_id: MosaicId):
    """One mosaic: preview, numbers, the images used and left out."""
    from .dashboard import _render

    return _render(request, "mosaic.html", False, m=_found(mosaic_detail(c, mosaic_id), mosaic_id))
