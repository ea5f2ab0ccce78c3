"""Serving product files: only regular files, reached without a symbolic link, inside the product folders.

A path served by the API always comes from a database row, never from the
request.  Even so, a registered file replaced by a symbolic link (or sitting in
a folder replaced by one) could point anywhere on the host; such a file is
refused with a 404, as is any file outside the folders the pipeline writes its
products to (see :attr:`~dsa110_contimg.api.context.ApiContext.product_dirs`).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Iterable

from fastapi import HTTPException
from fastapi.responses import FileResponse

MEDIA = {".png": "image/png", ".fits": "application/fits"}
"""Media type of each kind of file the API serves; nothing else is served."""


def _below(path: Path, root: Path) -> Path | None:
    """``path`` relative to ``root`` (as configured, or with its links resolved), or ``None`` when outside."""
    for base in (Path(os.path.abspath(root)), Path(root).resolve()):
        try:
            return path.relative_to(base)
        except ValueError:
            continue
    return None


def refusal(path: Path, roots: Iterable[Path]) -> str | None:
    """Why the registered file ``path`` must not be served, or ``None`` when it may be.

    Parameters
    ----------
    path
        Registered (absolute) path of the file.
    roots
        Folders the file may live in.  Symbolic links on the way to a root (e.g. a
        mount point) are the operator's configuration and accepted; below it none is.

    Returns
    -------
    str or None
        The reason, phrased to follow "the registered file": ``None`` when ``path`` is a
        regular file, not a symbolic link, inside one of ``roots`` and with no symbolic
        link between that root and it.
    """
    if not path.is_absolute() or ".." in path.parts:
        return "is not an absolute, normalised path"
    try:
        mode = os.lstat(path).st_mode
    except OSError as exc:
        return f"cannot be examined ({exc.strerror})"
    if stat.S_ISLNK(mode):
        return "is a symbolic link"
    if not stat.S_ISREG(mode):
        return "is not a regular file"
    real = path.resolve()
    for root in roots:
        rel = _below(path, root)
        if rel is not None:
            return None if real == Path(root).resolve() / rel else "has a symbolic link among its folders"
    return "is outside the product folders"


def registered_file(path: Path | None, what: str, suffix: str, roots: Iterable[Path]) -> FileResponse:
    """Serve a file whose path came from a database row (never from the request).

    Parameters
    ----------
    path
        The registered path (``None``: nothing registered).
    what
        Name of the file in the 404's detail, e.g. ``"FITS file of image 3"``.
    suffix
        The kind of file expected (a key of :data:`MEDIA`).
    roots
        Folders the file may live in (see :func:`refusal`).

    Raises
    ------
    fastapi.HTTPException
        404 when nothing is registered, the file is gone or not the kind expected, or
        it is refused (a symbolic link, outside ``roots``): the file is never sent then.
    """
    if path is None or path.suffix.lower() != suffix or not os.path.lexists(path):
        raise HTTPException(status_code=404, detail=f"{what} not found")
    reason = refusal(path, roots)
    if reason is not None:
        raise HTTPException(status_code=404, detail=f"{what} is not served: the registered file {reason}")
    return FileResponse(path, media_type=MEDIA[suffix], filename=path.name if suffix == ".fits" else None)
