"""Reference sky of the pipeline: the master source catalog.

Built once from the public NVSS (required), VLASS and FIRST catalogs by
:func:`dsa110_contimg.catalog.build_master.build_master` (``contimg catalog
build-master`` or ``python -m dsa110_contimg.catalog.build_master``) and queried
with :mod:`dsa110_contimg.catalog.query`.  Importing this package is cheap.
"""

from .errors import CatalogError

__all__ = ["CatalogError"]
