"""Values of catalog columns: sexagesimal or decimal positions, numbers with blanks (NaN), clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import CatalogError

_SEXA_SEPARATORS = str.maketrans({c: " " for c in ":hdmsHDMS\u00b0'\"+-"})


def sexagesimal_to_deg(values, hours: bool) -> np.ndarray:
    """Convert sexagesimal strings to degrees.

    Parameters
    ----------
    values : array_like of str
        ``"hh mm ss.ss"`` / ``"+dd mm ss.s"`` (``:`` separators and ``h m s``/``d m s``
        letters accepted); plain decimal numbers pass through as degrees.
    hours
        The first field is hours (RA) rather than degrees.

    Returns
    -------
    numpy.ndarray
        Degrees; NaN for blank entries.

    Raises
    ------
    ValueError
        An entry cannot be parsed.
    """
    arr = np.asarray(values).astype(str)
    arr = np.strings.strip(arr)
    blank = arr == ""
    try:  # already decimal degrees stored as text
        return np.where(blank, "nan", arr).astype(float)
    except ValueError:
        pass
    neg = np.strings.startswith(arr, "-")
    items = np.where(blank, "nan 0 0", arr).tolist()
    text = " ".join(items).translate(_SEXA_SEPARATORS)
    parts = text.split()
    if len(parts) == 3 * arr.size:
        dms = np.array(parts, dtype=float).reshape(-1, 3)
    else:  # uneven field counts ("12 30", "12 30 00.0"): row by row
        dms = np.zeros((arr.size, 3))
        for i, item in enumerate(items):
            f = [float(x) for x in item.translate(_SEXA_SEPARATORS).split()]
            if not 1 <= len(f) <= 3:
                raise ValueError(f"cannot parse sexagesimal value {item!r}")
            dms[i, :len(f)] = f
    deg = dms[:, 0] + dms[:, 1] / 60.0 + dms[:, 2] / 3600.0
    deg = np.where(neg, -deg, deg)
    return deg * 15.0 if hours else deg


def _to_float(values, path: Path, col: str) -> np.ndarray:
    """Masked/blank -> NaN float array; a clear error for non-numeric text."""
    arr = values
    if np.ma.isMaskedArray(arr):
        if arr.dtype.kind in "fiub":
            return np.ma.filled(arr.astype(float), np.nan)
        arr = np.ma.filled(arr.astype(str), "")
    arr = np.asarray(arr)
    if arr.dtype.kind in "fiub":
        return arr.astype(float)
    if arr.dtype.kind == "S":
        arr = arr.astype(str)
    s = np.strings.strip(arr.astype(str))
    try:
        return np.where(s == "", "nan", s).astype(float)
    except ValueError:
        bad = next(v for v in s.tolist() if v != "" and not _is_float(v))
        raise CatalogError(f"{path}: column {col!r} is not numeric (e.g. {bad!r})") from None


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _position(values, path: Path, col: str, hours: bool) -> np.ndarray:
    """Positions in degrees from a decimal or sexagesimal column (NaN where blank)."""
    if np.ma.isMaskedArray(values) and values.dtype.kind in "fiub":
        return np.ma.filled(values.astype(float), np.nan)
    arr = np.asarray(values)
    if arr.dtype.kind in "fiub":
        return arr.astype(float)
    if np.ma.isMaskedArray(values):
        arr = np.ma.filled(values.astype(str), "")
    try:
        return sexagesimal_to_deg(arr, hours=hours)
    except ValueError as exc:
        raise CatalogError(f"{path}: column {col!r}: neither degrees nor sexagesimal ({exc})") from None
