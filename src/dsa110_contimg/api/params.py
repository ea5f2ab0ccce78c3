"""Request parameters, declared once for the JSON API and the dashboard.

Every integer a request carries is range-checked by FastAPI before a handler
runs: a value SQLite cannot bind (beyond a signed 64-bit integer) or that no row
can have is a 422 in FastAPI's validation format, never an ``OverflowError``
(500) at the database.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Path, Query

from ..db.queue_schema import EXTRA_KINDS, STATES

SQLITE_INT_MAX = 2**63 - 1
"""Largest integer SQLite stores (signed 64 bits); larger ones cannot even be bound to a query."""

State = Literal[STATES]  # type: ignore[valid-type]  # the queue's states (a tuple subscript = its members)
ExtraKind = Literal[EXTRA_KINDS]  # type: ignore[valid-type]  # kinds of the files set aside
ImageId = Annotated[int, Path(ge=1, le=SQLITE_INT_MAX, description="Image id (row id of the products database).")]
SourceId = Annotated[int, Path(ge=1, le=SQLITE_INT_MAX, description="Survey source id (``sources.id``).")]
Offset = Annotated[int, Query(ge=0, le=SQLITE_INT_MAX, description="Rows to skip.")]


def page_limit(maximum: int) -> Any:
    """Type of a ``limit`` query parameter: a page of 1 to ``maximum`` rows.

    Parameters
    ----------
    maximum
        Largest page a client may ask for.

    Returns
    -------
    typing.Annotated
        ``int`` with its :func:`fastapi.Query` bounds, for a handler's signature.
    """
    return Annotated[int, Query(ge=1, le=maximum, description=f"Page size (at most {maximum}).")]


Limit = page_limit(1000)
"""Page size of the JSON listings."""
PerformanceLimit = page_limit(5000)
"""Groups in the timings of ``/api/metrics/performance``."""
