"""Monitoring API and web dashboard (FastAPI).

``create_app()`` builds the application; the module attribute ``app`` (built on
first access from the environment's settings) lets ``uvicorn dsa110_contimg.api:app``
serve it.  ``contimg api`` runs it.
"""

from __future__ import annotations

from typing import Any


def create_app(settings=None, refresh_s: float = 10.0):
    """Build the FastAPI app (see :func:`dsa110_contimg.api.app.create_app`)."""
    from .app import create_app as _create

    return _create(settings, refresh_s)


def __getattr__(name: str) -> Any:
    if name == "app":
        app = create_app()
        globals()["app"] = app
        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
