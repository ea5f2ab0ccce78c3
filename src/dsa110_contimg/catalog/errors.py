"""The one exception of the catalog package."""

from __future__ import annotations

from ..errors import ContimgError


class CatalogError(ContimgError, ValueError):
    """A catalog input or the master catalog is unusable; the message names the file and the problem."""
