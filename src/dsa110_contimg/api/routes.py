"""JSON endpoints under ``/api``: read endpoints open, write endpoints behind a bearer token.

The read endpoints are ``async``: their SQLite reads take a millisecond or two, so they run
on the event loop one at a time instead of in a thread pool, where dozens of threads
contending for the interpreter made the server slower the more clients waited (measured:
350 requests/s with one client, 190 with 32).
"""

from __future__ import annotations

import hmac
import logging
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from fastapi.responses import FileResponse

from . import data
from .context import ApiContext
from .files import registered_file
from .models import (CalSetModel, GroupDetail, GroupSummary, ImageDetail, ImageSummary, MSRow, Page,
                     PerformanceResponse, ReprocessResponse, SetAsideFile, StatusResponse, SystemMetrics)
from .params import ExtraKind, ImageId, Limit, Offset, PerformanceLimit, State

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api")


async def ctx(request: Request) -> ApiContext:
    """The app's :class:`ApiContext`."""
    return request.app.state.ctx


Ctx = Annotated[ApiContext, Depends(ctx)]


def _found(value, what: str):
    if value is None:
        raise HTTPException(status_code=404, detail=f"{what} not found")
    return value


def _serve(c: ApiContext, path, what: str, suffix: str) -> FileResponse:
    """The registered file ``path``, served only from the product folders (see :func:`.files.registered_file`)."""
    return registered_file(path, what, suffix, c.product_dirs)


async def require_token(c: Ctx, authorization: Annotated[str | None, Header()] = None) -> str:
    """Bearer-token check of the write endpoints (403 when writes are disabled, 401 on a bad token)."""
    if not c.writes_enabled:
        raise HTTPException(status_code=403, detail="write endpoints are disabled: PIPELINE_API_TOKEN is not set")
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), c.settings.api_token.encode()):
        raise HTTPException(status_code=401, detail="a valid bearer token is required",
                            headers={"WWW-Authenticate": "Bearer"})
    return "token"


@router.get("/status", response_model=StatusResponse, summary="Queue counts, recent groups, calibration, heartbeat")
async def get_status(c: Ctx):
    """Groups per state, the newest groups, the calibration sets valid now and the streaming daemon's heartbeat."""
    return data.status(c)


@router.get("/metrics/system", response_model=SystemMetrics, summary="CPU, memory, load and disk space")
async def get_system(c: Ctx):
    """Host CPU, memory and load, and the free space of the incoming, output, stage and state folders."""
    return data.system(c)


@router.get("/metrics/performance", response_model=PerformanceResponse, summary="Per-stage timings over time")
async def get_performance(c: Ctx, limit: PerformanceLimit = 200):
    """Stage timings and latency of the newest ``limit`` groups, their median/p90, and groups finished per bin."""
    return data.performance(c, limit)


@router.get("/groups", response_model=Page[GroupSummary], summary="Observation groups of the ingest queue")
async def get_groups(c: Ctx, state: State | None = None, limit: Limit = 50, offset: Offset = 0):
    """Groups newest first, optionally in one state."""
    return data.list_groups(c, state, limit, offset)


@router.get("/groups/{group_id}", response_model=GroupDetail, summary="One group: files, stages, timings, errors")
async def get_group(c: Ctx, group_id: str):
    """A group's subband files, its stages with their timings, its error and its products."""
    return _found(data.group_detail(c, group_id), f"group {group_id!r}")


@router.get("/groups/{group_id}/flags.png", response_class=FileResponse,
            summary="The group's RFI flagging plot (flagged fraction in time x frequency, per antenna)")
async def get_group_flags_plot(c: Ctx, group_id: str):
    from .flags import flag_plot

    return _serve(c, flag_plot(c, group_id), f"flagging plot of group {group_id!r}", ".png")


@router.get("/set_aside", response_model=Page[SetAsideFile], summary="Files the queue set aside, with the reason")
async def get_set_aside(c: Ctx, kind: ExtraKind | None = None, limit: Limit = 50, offset: Offset = 0):
    """Names that are not subband files, files that are not regular, duplicates and late files, newest first."""
    return data.set_aside_files(c, kind, limit, offset)


@router.get("/ms_index", response_model=Page[MSRow], summary="Measurement Sets")
async def get_ms_index(c: Ctx, stage: str | None = None, status: str | None = None, limit: Limit = 50,
                 offset: Offset = 0):
    """Measurement Sets newest data first, filtered by stage (e.g. ``imaged``) and status (e.g. ``completed``)."""
    return data.list_ms(c, stage, status, limit, offset)


@router.get("/images", response_model=Page[ImageSummary], summary="Image products")
async def get_images(c: Ctx, limit: Limit = 50, offset: Offset = 0,
               type: Annotated[str | None, Query(description="image or pbcor")] = None):
    """Images newest first with their QA numbers and file URLs."""
    return data.list_images(c, limit, offset, type)


@router.get("/images/{image_id}", response_model=ImageDetail, summary="One image: metadata, QA, detections")
async def get_image(c: Ctx, image_id: ImageId):
    """An image's metadata, QA numbers, timings and detections with their catalog matches."""
    return _found(data.image_detail(c, image_id), f"image {image_id}")


@router.get("/images/{image_id}/fits", response_class=FileResponse, summary="Download the image's FITS file")
async def get_image_fits(c: Ctx, image_id: ImageId):
    return _serve(c, data.image_file(c, image_id, "fits"), f"FITS file of image {image_id}", ".fits")


@router.get("/images/{image_id}/thumbnail.png", response_class=FileResponse, summary="The image's thumbnail")
async def get_image_thumbnail(c: Ctx, image_id: ImageId):
    return _serve(c, data.image_file(c, image_id, "thumbnail"), f"thumbnail of image {image_id}", ".png")


@router.get("/images/{image_id}/qa.png", response_class=FileResponse, summary="The image's QA plot")
async def get_image_qa_plot(c: Ctx, image_id: ImageId):
    return _serve(c, data.image_file(c, image_id, "qa_plot"), f"QA plot of image {image_id}", ".png")


@router.get("/caltables", response_model=Page[CalSetModel], summary="Calibration sets")
async def get_caltables(c: Ctx, status: Literal["active", "retired", "all"] = "all", limit: Limit = 100,
                        offset: Offset = 0):
    """Calibration sets, newest validity first, with their tables, quality metrics and plot URLs."""
    return data.calibration_sets(c, None if status == "all" else status, limit, offset)


@router.get("/caltables/{set_name}", response_model=CalSetModel, summary="One calibration set")
async def get_caltable(c: Ctx, set_name: str):
    return _found(data.calibration_set(c, set_name), f"calibration set {set_name!r}")


@router.get("/caltables/{set_name}/plots/{table_type}.png", response_class=FileResponse,
            summary="QA plot of one table of a set")
async def get_calplot(c: Ctx, set_name: str, table_type: str):
    """Solution plot (delays, bandpass or gain phases) of the set's table of type ``table_type``."""
    return _serve(c, data.calplot_file(c, set_name, table_type),
                  f"plot of the {table_type} table of set {set_name!r}", ".png")


@router.post("/reprocess/{group_id}", response_model=ReprocessResponse, summary="Queue a group again",
             responses={401: {"description": "Missing or wrong bearer token"},
                        403: {"description": "Write endpoints disabled (PIPELINE_API_TOKEN unset)"},
                        404: {"description": "Unknown group"},
                        409: {"description": "The group is being collected or processed"}})
def post_reprocess(c: Ctx, group_id: str, _: Annotated[str, Depends(require_token)]):
    """Put a completed, failed, held or pending group back in the queue, to run every stage again.

    Needs ``Authorization: Bearer <PIPELINE_API_TOKEN>``.
    """
    from ..db import queue as q

    with c.queue_writer() as conn:
        if conn is None or q.get_group(conn, group_id) is None:
            raise HTTPException(status_code=404, detail=f"group {group_id!r} not found")
        try:
            old = q.reprocess(conn, group_id, requested_by="api")
        except q.QueueDBError as exc:
            raise HTTPException(status_code=409, detail=str(exc)) from None
        g = q.get_group(conn, group_id)
    c.invalidate()
    log.warning("API: group %s queued again for reprocessing (was %s)", group_id, old)
    return {"group_id": group_id, "previous_state": old, "state": g.state}
