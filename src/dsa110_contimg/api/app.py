"""The FastAPI application: JSON API under ``/api``, dashboard pages, static files."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..config import Settings, load_settings
from .context import ApiContext, DatabaseUnavailable

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, refresh_s: float = 10.0) -> FastAPI:
    """Build the app for ``settings`` (default: the environment's, read without creating any folder).

    ``refresh_s`` is the reload interval of the dashboard's live pages (0: off).

    The databases are opened read-only per request and never created; before the
    pipeline has made them the endpoints answer with empty results.  One that cannot
    be read is a 503 naming its file (a page for the dashboard, JSON for the API).
    """
    from ..db.cal_registry_schema import CalRegistryError
    from ..db.products_schema import ProductsDBError
    from ..db.queue_schema import QueueDBError
    from ..errors import DatabaseFault
    from . import dashboard, mosaics, routes, source_cutouts, sources

    settings = settings or load_settings(create_dirs=False)
    app = FastAPI(title="dsa110-contimg monitoring API",
                  description="Status of the DSA-110 continuum imaging pipeline: ingest queue, calibration, "
                              "images and QA, timings. Read endpoints are open; write endpoints need "
                              "`Authorization: Bearer $PIPELINE_API_TOKEN` and are disabled when it is unset.",
                  version=_version())
    app.state.ctx = ApiContext(settings, refresh_s=refresh_s)
    app.include_router(routes.router)
    app.include_router(dashboard.router)
    app.include_router(sources.router)
    app.include_router(source_cutouts.router)
    app.include_router(sources.pages)
    app.include_router(mosaics.router)
    app.include_router(mosaics.pages)
    app.mount("/static", StaticFiles(directory=str(Path(__file__).parent / "static")), name="static")

    for error in (DatabaseUnavailable, DatabaseFault, QueueDBError, ProductsDBError, CalRegistryError,
                  sqlite3.DatabaseError):
        app.add_exception_handler(error, unreadable_database)
    app.add_exception_handler(StarletteHTTPException, dashboard.http_error)
    import psutil

    psutil.cpu_percent(interval=None)  # prime the CPU counter: the first reading is meaningless
    return app


async def unreadable_database(request: Request, exc: Exception) -> Response:
    """A database that cannot be read: 503 naming the file, as a page or as JSON (see :func:`.dashboard.http_error`).

    The database modules' own errors on opening name the file; an SQLite error that
    escaped :func:`.context.readable` (it should not) cannot, and says so.
    """
    from . import dashboard

    log.error("API %s: %s", request.url.path, exc)
    if isinstance(exc, StarletteHTTPException):
        detail = exc.detail
    elif isinstance(exc, sqlite3.DatabaseError):
        detail = f"a database could not be read: {exc}"
    else:
        detail = str(exc)
    return await dashboard.http_error(request, StarletteHTTPException(status_code=503, detail=detail))


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("dsa110-contimg")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0"
