"""CASA-style field selection (``--field``) resolved against FIELD::NAME.

A selection is a comma-separated list of terms:

* ``7`` -- field id 7 (a term of digits is always an id, as in CASA);
* ``2~5`` -- ids 2 to 5 inclusive;
* ``meridian_icrs_t*``, ``3C286``, ``meridian_icrs_t5`` -- names, exact or
  ``fnmatch`` globs (``*``, ``?``, ``[...]``), case-sensitive;
* ``''`` or ``*`` -- every field.

Not supported (rejected or matched as names): CASA's ``<N``/``>N`` comparisons,
negation ``!`` and regular expressions.

Examples
--------
>>> names = ["meridian_icrs_t0", "meridian_icrs_t1", "meridian_icrs_t2", "3C286"]
>>> select_fields("0~1, 3C286", names)
[0, 1, 3]
>>> select_fields("meridian_icrs_t*", names)
[0, 1, 2]
>>> to_casa_field_string([0, 1, 2, 3, 7])
'0~3,7'
"""

from __future__ import annotations

import operator
import re
from fnmatch import fnmatchcase
from typing import Iterable, Sequence

from ..errors import ContimgError

MAX_NAMES_IN_ERROR = 12
"""How many available field names an error message lists before truncating."""

_ID = re.compile(r"^[0-9]+$")
_RANGE = re.compile(r"^([0-9]+)\s*~\s*([0-9]+)$")


class FieldSelectionError(ContimgError, ValueError):
    """A selection term is malformed, out of range, or matches no field."""


def _available(names: Sequence[str]) -> str:
    unique = list(dict.fromkeys(names))
    if not unique:
        return "the MS has no fields"
    shown = ", ".join(unique[:MAX_NAMES_IN_ERROR])
    more = len(unique) - MAX_NAMES_IN_ERROR
    suffix = f", ... ({more} more)" if more > 0 else ""
    return f"available field names: {shown}{suffix} (ids 0~{len(names) - 1})"


def _check_id(fid: int, term: str, n: int) -> None:
    if not 0 <= fid < n:
        valid = f"0~{n - 1}" if n else "none"
        raise FieldSelectionError(f"field id {fid} in term {term!r} is out of range (valid ids: {valid})")


def select_fields(spec: str | None, names: Sequence[str]) -> list[int]:
    """Resolve a CASA-style field selection into sorted unique field ids.

    Parameters
    ----------
    spec
        Selection: comma-separated ids, ``A~B`` ranges and name globs; empty,
        ``None`` or ``'*'`` selects every field.  Whitespace around terms is ignored.
    names
        FIELD::NAME, indexed by field id.

    Returns
    -------
    list of int
        Sorted unique field ids.

    Raises
    ------
    FieldSelectionError
        An empty term, an id or range out of range, ``A > B``, or a name term
        matching no field (the message names the term and lists the available names).
    """
    names = [str(n) for n in names]
    n = len(names)
    text = "" if spec is None else str(spec).strip()
    if text in ("", "*"):
        return list(range(n))
    selected: set[int] = set()
    for raw in text.split(","):
        term = raw.strip()
        if not term:
            raise FieldSelectionError(f"empty term in field selection {spec!r}")
        if _ID.match(term):
            fid = int(term)
            _check_id(fid, term, n)
            selected.add(fid)
            continue
        m = _RANGE.match(term)
        if m:
            a, b = int(m.group(1)), int(m.group(2))
            if a > b:
                raise FieldSelectionError(f"field range {term!r}: start {a} is greater than end {b}")
            _check_id(a, term, n)
            _check_id(b, term, n)
            selected.update(range(a, b + 1))
            continue
        hits = [i for i, name in enumerate(names) if name == term or fnmatchcase(name, term)]
        if not hits:
            raise FieldSelectionError(f"field selection term {term!r} matches no field; {_available(names)}")
        selected.update(hits)
    return sorted(selected)


def to_casa_field_string(ids: Iterable[int]) -> str:
    """Compact CASA field selection for ``ids``: runs become ``A~B``, e.g. ``'0~3,7'``.

    Raises
    ------
    FieldSelectionError
        ``ids`` is empty (an empty string would select *every* field in CASA),
        or holds a negative or non-integer id.
    """
    try:
        values = sorted({operator.index(i) for i in ids})
    except TypeError:
        raise FieldSelectionError(f"field ids must be integers, got {ids!r}") from None
    if not values:
        raise FieldSelectionError("no field ids to select (an empty CASA selection means all fields)")
    if values[0] < 0:
        raise FieldSelectionError(f"negative field id {values[0]}")
    parts: list[str] = []
    start = prev = values[0]
    for v in values[1:] + [None]:
        if v is not None and v == prev + 1:
            prev = v
            continue
        parts.append(str(start) if start == prev else f"{start}~{prev}")
        if v is not None:
            start = prev = v
    return ",".join(parts)
