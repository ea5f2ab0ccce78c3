"""Survey sources and their light curves: JSON under ``/api/sources`` and the dashboard's ``/sources`` pages.

The rows are the products database's ``sources`` and ``measurements``
(:mod:`dsa110_contimg.db.sources`), written by the daemon's photometry stage and
read here read-only.  The light curve PNG and the eta-V plane are drawn on
request (:mod:`.source_plots`).

Examples
--------
``GET /api/sources?variable=true&min_eta=5&limit=50``, ``GET /api/sources/12``,
``GET /api/sources/12/lightcurve.png`` (and ``/cutouts.png``, :mod:`.source_cutouts`); pages
``/sources?order=eta`` and ``/sources/12``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup
from pydantic import BaseModel, Field

from ..db.sources import ORDERS
from ..photometry.models import VariabilityOptions
from .context import ApiContext, cached
from .data import page
from .models import Page
from .params import Limit, Offset, SourceId, page_limit
from .routes import Ctx

router = APIRouter(prefix="/api")
pages = APIRouter(include_in_schema=False)
Order = Literal[tuple(ORDERS)]  # type: ignore[valid-type]  # the orders of db.sources.list_sources
SourcesPageLimit = page_limit(500)
"""Rows of the sources page's table."""
PLANE_SOURCES = 5000
"""Sources drawn at most in the eta-V plane (those of largest eta)."""


# --------------------------------------------------------------------------- models


class SourceSummary(BaseModel):
    """One survey source with its variability numbers."""

    id: int
    name: str = Field(description="Name from its first position (DSA Jhhmmss.s+ddmmss).")
    ra_deg: float
    dec_deg: float
    ra_err_arcsec: float | None
    dec_err_arcsec: float | None
    origin: str = Field(description="'catalog' (a master-catalog source) or 'detection'.")
    catalog_source_id: int | None = Field(description="Master-catalog counterpart, if any.")
    catalog_sep_arcsec: float | None
    catalog_flux_jy: float | None
    n_measurements: int
    n_detections: int
    flux_mean_jy: float | None
    flux_wmean_jy: float | None = Field(description="Weighted mean flux (Jy).")
    flux_wmean_err_jy: float | None
    flux_max_jy: float | None
    eta: float | None = Field(description="Weighted reduced chi-square about the weighted mean.")
    v_index: float | None = Field(description="Modulation index V (standard deviation over mean).")
    vs_max: float | None
    m_max: float | None
    first_mjd: float | None
    last_mjd: float | None
    first_seen_mjd: float | None
    last_seen_mjd: float | None
    new_sigma: float | None
    is_new: bool
    is_variable: bool
    created_at: str | None
    created_image_id: int | None
    url: str = Field(description="This source in the JSON API.")


class MeasurementPoint(BaseModel):
    """One point of a light curve."""

    id: int
    image_id: int
    mjd: float = Field(description="The image's mid-time (MJD).")
    kind: str = Field(description="'detection' or 'forced'.")
    flux_jy: float = Field(description="Beam-corrected forced flux (Jy).")
    flux_err_jy: float
    local_rms_jy: float | None
    pb: float | None = Field(description="Primary-beam attenuation.")
    ra_deg: float | None
    dec_deg: float | None
    detection_id: int | None
    sep_arcsec: float | None
    de_ruiter: float | None
    backfilled: bool
    note: str | None
    group_id: str | None
    ms_path: str | None
    image_path: str | None


class SourceDetail(SourceSummary):
    """One source with its light curve."""

    measurements: list[MeasurementPoint]
    lightcurve_png: str = Field(description="URL of the light curve picture.")
    cutouts_png: str = Field(description="URL of the cutouts from the most recent images that measured it.")
    thresholds: dict[str, float] = Field(description="Variability thresholds of the flags (eta_min, v_min, ...).")


# --------------------------------------------------------------------------- reads


def _summary(rec) -> dict[str, Any]:
    return {**vars(rec), "url": f"/api/sources/{rec.id}"}  # shallow: the fields are scalars (asdict deep-copies)


def _point(m) -> dict[str, Any]:
    return {k: v for k, v in vars(m).items() if k != "source_id"}


def thresholds() -> dict[str, float]:
    """The thresholds of the variable and new flags (:class:`~dsa110_contimg.photometry.models.VariabilityOptions`)."""
    o = VariabilityOptions()
    return {"eta_min": o.eta_min, "v_min": o.v_min, "min_measurements": o.min_measurements,
            "new_sigma_min": o.new_sigma_min}


@cached
def list_sources(ctx: ApiContext, variable: bool | None, new: bool | None, min_eta: float | None,
                 min_v: float | None, limit: int, offset: int, order: str = "id") -> dict[str, Any]:
    """A page of sources with the filters of :func:`dsa110_contimg.db.sources.list_sources`."""
    from ..db import sources as sdb

    with ctx.products() as conn:
        if conn is None:
            return page([], 0, limit, offset)
        total = sdb.count_sources(conn, variable, new, min_eta, min_v)
        rows = sdb.list_sources(conn, variable, new, min_eta, min_v, limit=limit, offset=offset, order=order)
        return page([_summary(r) for r in rows], total, limit, offset)


@cached
def source_detail(ctx: ApiContext, source_id: int) -> dict[str, Any] | None:
    """One source with its measurements by time (None when unknown)."""
    from ..db import sources as sdb

    with ctx.products() as conn:
        rec = sdb.get_source(conn, source_id) if conn is not None else None
        if rec is None:
            return None
        points = [_point(m) for m in sdb.get_measurements(conn, source_id)]
    return {**_summary(rec), "measurements": points, "lightcurve_png": f"/api/sources/{source_id}/lightcurve.png",
            "cutouts_png": f"/api/sources/{source_id}/cutouts.png", "thresholds": thresholds()}


def _lightcurve(ctx: ApiContext, source_id: int) -> bytes | None:
    from ..db import sources as sdb
    from .source_plots import lightcurve_png

    with ctx.products() as conn:
        rec = sdb.get_source(conn, source_id) if conn is not None else None
        if rec is None:
            return None
        ms = sdb.get_measurements(conn, source_id)
    return lightcurve_png(rec.name, ms)


def _found(value, source_id: int):
    if value is None:
        raise HTTPException(status_code=404, detail=f"source {source_id} not found")
    return value


# --------------------------------------------------------------------------- JSON


MinEta = Annotated[float | None, Query(allow_inf_nan=False, description="Only sources with eta at least this.")]
MinV = Annotated[float | None, Query(allow_inf_nan=False, description="Only sources with V at least this.")]
Flag = Annotated[bool | None, Query(description="true: only flagged sources; false: only unflagged ones.")]


@router.get("/sources", response_model=Page[SourceSummary], summary="Survey sources, filtered and paged")
async def get_sources(c: Ctx, variable: Flag = None, new: Flag = None, min_eta: MinEta = None, min_v: MinV = None,
                      limit: Limit = 50, offset: Offset = 0, order: Order = "id"):
    """Sources with their variability numbers: flags ``variable``/``new``, ``min_eta``/``min_v``, ordered by
    ``id`` (ascending) or ``eta``, ``v``, ``flux``, ``n``, ``last`` (descending)."""
    return _validated(Page[SourceSummary], list_sources(c, variable, new, min_eta, min_v, limit, offset, order))


@router.get("/sources/{source_id}", response_model=SourceDetail, summary="One source with its light curve")
async def get_source(c: Ctx, source_id: SourceId):
    """A source's numbers, catalog match and measurements by time (detections and forced fluxes)."""
    return _validated(SourceDetail, _found(source_detail(c, source_id), source_id))


def _validated(model: type[BaseModel], value: dict[str, Any]) -> Response:
    """``value`` validated by ``model`` and written to JSON by pydantic in one pass (returned as the response,
    FastAPI's ``response_model`` would validate it, turn it back into Python objects and encode those again:
    a third of the CPU of a light curve of 100 points)."""
    return Response(model.model_validate(value).model_dump_json(), media_type="application/json")


@router.get("/sources/{source_id}/lightcurve.png", response_class=Response, summary="The source's light curve",
            responses={200: {"content": {"image/png": {}}}})
def get_lightcurve(c: Ctx, source_id: SourceId):
    """The light curve drawn now (matplotlib): detections filled, forced points open, with error bars."""
    return Response(content=_found(_lightcurve(c, source_id), source_id), media_type="image/png")


# --------------------------------------------------------------------------- dashboard pages


ORDER_LABELS = {"eta": "eta", "v": "V", "flux": "mean flux", "n": "measurements", "last": "last seen", "id": "id"}
"""Sortable columns of the sources table."""


@pages.get("/sources", response_class=HTMLResponse)
async def sources_page(request: Request, c: Ctx, order: Order = "eta", variable: Flag = None, new: Flag = None,
                       limit: SourcesPageLimit = 100, offset: Offset = 0):
    """The eta-V plane (thresholds drawn, each point a link) and the table of sources, sortable by ``order``."""
    from .dashboard import _render
    from .source_plots import eta_v_plane

    t = thresholds()
    plane = list_sources(c, variable, new, None, None, PLANE_SOURCES, 0, "eta")["items"]
    svg = Markup(eta_v_plane(plane, t["eta_min"], t["v_min"]))
    extra = "".join(f"&{k}={str(v).lower()}" for k, v in (("variable", variable), ("new", new)) if v is not None)
    return _render(request, "sources.html", False, page=list_sources(c, variable, new, None, None, limit, offset,
                                                                     order),
                   plane=svg, order=order, orders=ORDER_LABELS, thresholds=t, extra=extra, variable=variable,
                   new=new)


@pages.get("/sources/{source_id}", response_class=HTMLResponse)
async def source_page(request: Request, c: Ctx, source_id: SourceId):
    """One source: its light curve, cutouts, measurements and catalog match."""
    from .dashboard import _render

    s = _found(source_detail(c, source_id), source_id)
    return _render(request, "source.html", False, s=s)
