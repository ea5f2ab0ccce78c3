"""The dashboard: server-rendered pages (Jinja2) over the same data as the JSON API.

Pages: overview (``/``), groups (``/groups``, ``/groups/{id}``), images
(``/images``, ``/images/{id}``) and calibration sets (``/caltables``).  A little
plain JavaScript (``static/refresh.js``) reloads the content of the live pages
every few seconds while the pipeline runs.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from ..telescope import GROUP_SECONDS
from . import data
from .charts import bar_chart
from .params import ImageId, Offset, State, page_limit
from .routes import Ctx

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
router = APIRouter(include_in_schema=False)
GroupsLimit = page_limit(500)
"""Rows of the groups page."""
GalleryLimit = page_limit(200)
"""Images of the gallery, calibration sets of the calibration page."""


def _fmt(value, fmt: str = ".3g", scale: float = 1.0, none: str = "–") -> str:
    """Number formatter for the templates (``None`` -> dash)."""
    return none if value is None else format(value * scale, fmt)


def _bytes(n) -> str:
    if n is None:
        return "–"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024


templates.env.filters["fmt"] = _fmt
templates.env.filters["bytes"] = _bytes


def _render(request: Request, name: str, refresh: bool, **context) -> HTMLResponse:
    seconds = request.app.state.ctx.refresh_s if refresh else 0
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return templates.TemplateResponse(request, name, {"refresh_s": seconds, "now": now, **context})


async def http_error(request: Request, exc) -> HTMLResponse:
    """Errors of the dashboard's pages as a page (the JSON API keeps FastAPI's ``{"detail": ...}``)."""
    from fastapi.exception_handlers import http_exception_handler

    if request.url.path.startswith(("/api", "/static", "/docs", "/openapi")):
        return await http_exception_handler(request, exc)
    return templates.TemplateResponse(request, "error.html", {"refresh_s": 0, "now": "", "status": exc.status_code,
                                                               "detail": exc.detail}, status_code=exc.status_code)


def _charts(perf: dict) -> dict[str, Markup]:
    groups = list(reversed(perf["groups"][:48]))  # oldest first
    labels = [g["group_id"] for g in groups]
    stages = {k: [g[f"{k}_s"] for g in groups] for k in ("convert", "calibrate", "apply", "image", "qa")}
    bins = perf["throughput"]
    return {
        "stages": Markup(bar_chart(labels, stages, "Where the time went, per group", "s", limit_line=GROUP_SECONDS,
                                   limit_label="309 s cadence", width=1290, height=240)),
        "latency": Markup(bar_chart(labels, {"latency": [g["latency_s"] for g in groups]},
                                    "Latency: last file landed to image recorded", "s")),
        "throughput": Markup(bar_chart([b["start"][11:16] for b in bins], {"completed": [b["completed"] for b in bins]},
                                       f"Groups finished per {bins[0]['width_s']:.0f} s" if bins
                                       else "Groups finished", "groups", limit_line=1.0 if bins else None,
                                       limit_label="keeping up")),
    }


@router.get("/", response_class=HTMLResponse)
async def overview(request: Request, c: Ctx):
    """Queue by state, heartbeat, disks, charts, recent groups and images, active calibration."""
    perf = data.performance(c, limit=200)
    return _render(request, "overview.html", True, status=data.status(c), system=data.system(c), perf=perf,
                   charts=_charts(perf), images=data.list_images(c, 8, 0, type="image")["items"])


@router.get("/groups", response_class=HTMLResponse)
async def groups_page(request: Request, c: Ctx, state: State | None = None,
                limit: GroupsLimit = 50, offset: Offset = 0):
    """All groups with state filter and paging."""
    from ..db.queue_schema import STATES

    return _render(request, "groups.html", True, page=data.list_groups(c, state, limit, offset), state=state,
                   states=STATES, counts=data.status(c)["queue"])


@router.get("/groups/{group_id}", response_class=HTMLResponse)
async def group_page(request: Request, c: Ctx, group_id: str):
    """One group: files, stages with timings, error, MS and images."""
    g = data.group_detail(c, group_id)
    if g is None:
        raise HTTPException(status_code=404, detail=f"group {group_id!r} not found")
    return _render(request, "group.html", g["state"] not in ("completed", "failed"), g=g, writes=c.writes_enabled)


@router.get("/images", response_class=HTMLResponse)
async def images_page(request: Request, c: Ctx, limit: GalleryLimit = 24, offset: Offset = 0):
    """Gallery of the latest images with their QA numbers."""
    return _render(request, "images.html", offset == 0, page=data.list_images(c, limit, offset, type="image"))


@router.get("/images/{image_id}", response_class=HTMLResponse)
async def image_page(request: Request, c: Ctx, image_id: ImageId):
    """One image: picture, QA, FITS download and detections matched to the catalog."""
    img = data.image_detail(c, image_id)
    if img is None:
        raise HTTPException(status_code=404, detail=f"image {image_id} not found")
    return _render(request, "image.html", False, img=img)


@router.get("/caltables", response_class=HTMLResponse)
async def caltables_page(request: Request, c: Ctx, limit: GalleryLimit = 10, offset: Offset = 0):
    """Calibration sets (newest first, a page at a time) with their solution plots."""
    return _render(request, "caltables.html", offset == 0, page=data.calibration_sets(c, None, limit, offset))
