"""Prepare CASA and python-casacore to run offline, before casatools or casatasks is first imported.

CASA 6 reads a site config named by ``CASASITECONFIG``.  We write one into the
state folder that points ``measurespath`` at a local measures folder (no
download ever), turns auto-updates off and sends CASA's log to the state
folder.  :func:`prepare_casa` must run before the first ``import casatools``;
every pipeline function that imports CASA calls it first.

The measures folder
-------------------
casacore (in CASA and in python-casacore alike) logs SEVERE "Leap second table
TAI_UTC seems out-of-date" the first time it converts a UTC time when the
table's ``VS_DATE`` keyword is more than 180 days before the machine's clock
(``MeasTable::dUTC``).  python-casacore's bundled ``casacore/data`` is frozen at
its release, so that message appears half a year after each release even though
no leap second was announced.

The ``astropy-iers-data`` package (a registry package, refreshed weekly and
upgraded by ``scripts/setup.sh``) carries IERS's current ``Leap_Second.dat``.
:func:`casacore_data_dir` turns it into a casacore ``geodetic/TAI_UTC`` table in
a folder whose other tables are links into the bundled data, once per data
version (``<venv>/share/dsa110-contimg/measures-<key>``, else
``~/.cache/dsa110-contimg``), and uses that folder when its table is newer than
the bundled one; otherwise the bundled data are used as they are.  The new
table's ``VS_DATE`` is the date the package's data were fetched from IERS (its
version), capped at the leap-second file's expiry minus 180 days, so casacore's
warning comes back exactly when the data may really be stale.
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import importlib.util
import logging
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

_PREPARED: Path | None = None

STALE_AFTER_DAYS = 180
"""casacore's ``MeasTable::dUTC`` logs SEVERE when ``today - VS_DATE`` of TAI_UTC exceeds this."""

_FORMAT = "1"  # bump when the layout of a built measures folder changes
_MONTHS = {m: i for i, m in enumerate(("january", "february", "march", "april", "may", "june", "july", "august",
                                       "september", "october", "november", "december"), start=1)}


def bundled_casacore_data_dir() -> Path:
    """Return python-casacore's bundled measures data folder.

    Raises
    ------
    RuntimeError
        If python-casacore is not installed or ships no data folder.
    """
    spec = importlib.util.find_spec("casacore")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("python-casacore is not installed: cannot locate measures data")
    data = Path(list(spec.submodule_search_locations)[0]) / "data"
    if not (data / "geodetic").is_dir():
        raise RuntimeError(f"python-casacore measures data not found at {data}")
    return data


def casacore_data_dir() -> Path:
    """Return the measures folder CASA and python-casacore are pointed at.

    A folder with a current ``geodetic/TAI_UTC`` built from ``astropy-iers-data``
    (see the module notes) when that is newer than python-casacore's bundled
    table, else python-casacore's bundled data folder.

    Raises
    ------
    RuntimeError
        If python-casacore is not installed or ships no data folder.
    """
    bundled = bundled_casacore_data_dir()
    fresh = fresh_measures_dir()
    return fresh if fresh is not None else bundled


def table_vs_date(table_dir: str | Path) -> _dt.date | None:
    """The ``VS_DATE`` keyword of a casacore IERS table (the date casacore checks), or None."""
    from casacore.tables import table

    try:
        with table(str(table_dir), ack=False) as t:
            text = str(t.getkeyword("VS_DATE"))
    except RuntimeError:
        return None
    m = re.match(r"(\d{4})/(\d{1,2})/(\d{1,2})", text)
    return _dt.date(int(m[1]), int(m[2]), int(m[3])) if m else None


@dataclass(frozen=True)
class LeapSeconds:
    """IERS ``Leap_Second.dat`` as carried by ``astropy-iers-data``."""

    path: Path
    """The file read."""
    rows: tuple[tuple[float, float], ...]
    """(MJD, TAI-UTC in s) from 1972 on."""
    expires: _dt.date | None
    """'File expires on' date of the header."""
    bulletin: str
    """'Updated through IERS Bulletin ...' line of the header."""
    package_version: str
    """Version of astropy-iers-data."""
    fetched: _dt.date | None
    """Date the package's data were fetched from IERS (its version), or None."""

    @property
    def vs_date(self) -> _dt.date | None:
        """``VS_DATE`` for a table made from this file: the fetch date, capped at expiry - 180 days."""
        date = self.fetched
        if date is None and (m := re.search(r"issued in (\w+) (\d{4})", self.bulletin)) and m[1].lower() in _MONTHS:
            date = _dt.date(int(m[2]), _MONTHS[m[1].lower()], 1)
        if date is not None and self.expires is not None:
            date = min(date, self.expires - _dt.timedelta(days=STALE_AFTER_DAYS))
        return date


def read_leap_seconds() -> LeapSeconds | None:
    """Read ``Leap_Second.dat`` from the installed ``astropy-iers-data``; None if missing or unreadable."""
    try:
        import astropy_iers_data
        from importlib.metadata import version

        path = Path(astropy_iers_data.IERS_LEAP_SECOND_FILE)
        text = path.read_text()
        pkg_version = version("astropy-iers-data")
    except Exception as exc:  # noqa: BLE001 - any failure means: no fresher data, use the bundled table
        log.debug("no leap-second data from astropy-iers-data: %s", exc)
        return None
    rows, expires, bulletin = [], None, ""
    for line in text.splitlines():
        s = line.strip()
        if not s:
            continue
        if s.startswith("#"):
            if m := re.search(r"expires on\s+(\d{1,2})\s+(\w+)\s+(\d{4})", s, re.IGNORECASE):
                if m[2].lower() in _MONTHS:
                    expires = _dt.date(int(m[3]), _MONTHS[m[2].lower()], int(m[1]))
            elif "Updated through" in s:
                bulletin = s.lstrip("# ").strip()
            continue
        parts = s.split()
        try:
            rows.append((float(parts[0]), float(parts[4])))
        except (IndexError, ValueError):
            log.warning("unreadable line in %s: %r", path, line)
            return None
    m = re.match(r"0\.(\d{4})\.(\d{1,2})\.(\d{1,2})", pkg_version)
    fetched = _dt.date(int(m[1]), int(m[2]), int(m[3])) if m else None
    return LeapSeconds(path, tuple(rows), expires, bulletin, pkg_version, fetched)


def _cache_roots() -> list[Path]:
    home_cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return [Path(sys.prefix) / "share" / "dsa110-contimg", home_cache / "dsa110-contimg"]


@functools.lru_cache(maxsize=None)
def fresh_measures_dir() -> Path | None:
    """The measures folder with a TAI_UTC table newer than the bundled one, built if needed; else None."""
    bundled = bundled_casacore_data_dir()
    leap = read_leap_seconds()
    if leap is None or leap.vs_date is None or len(leap.rows) < 20:
        return None
    bundled_date = table_vs_date(bundled / "geodetic" / "TAI_UTC")
    if bundled_date is not None and leap.vs_date <= bundled_date:
        return None
    key = hashlib.sha256("\n".join([_FORMAT, str(bundled), leap.package_version, leap.vs_date.isoformat(),
                                    leap.path.read_text()]).encode()).hexdigest()[:12]
    name = f"measures-{key}"
    roots = _cache_roots()
    for root in roots:
        if (root / name / "geodetic" / "TAI_UTC" / "table.dat").is_file():
            return root / name
    for root in roots:
        try:
            return _build_measures_dir(root / name, bundled, leap)
        except OSError as exc:
            log.debug("cannot build measures folder under %s: %s", root, exc)
        except RuntimeError as exc:  # the leap-second file disagrees with the bundled table: keep the bundled one
            log.warning("not using %s: %s", leap.path, exc)
            return None
    return None


def _build_measures_dir(final: Path, bundled: Path, leap: LeapSeconds) -> Path:
    """Build ``final``: links to every bundled table except geodetic/TAI_UTC, which is made from ``leap``."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; the folder is shared data
    try:
        for entry in sorted(bundled.iterdir()):
            if entry.is_dir() and entry.name in ("geodetic", "ephemerides"):
                (tmp / entry.name).mkdir()
                for table_dir in sorted(entry.iterdir()):
                    if entry.name == "geodetic" and table_dir.name.startswith("TAI_UTC"):
                        continue
                    (tmp / entry.name / table_dir.name).symlink_to(table_dir)
            else:
                (tmp / entry.name).symlink_to(entry)
        _write_tai_utc(tmp / "geodetic" / "TAI_UTC", bundled / "geodetic" / "TAI_UTC", leap)
        (tmp / "SOURCE.txt").write_text(
            "Written by dsa110_contimg.casa_env: every table links to python-casacore's bundled data\n"
            f"({bundled}) except geodetic/TAI_UTC, made from {leap.path}\n"
            f"(astropy-iers-data {leap.package_version}; {leap.bulletin}; expires {leap.expires}).\n")
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / "geodetic" / "TAI_UTC" / "table.dat").is_file():
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # another process built it first
        return final
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _write_tai_utc(path: Path, bundled_table: Path, leap: LeapSeconds) -> None:
    """Write a casacore TAI_UTC table: pre-1972 drift rows from the bundled table, then IERS's leap seconds.

    Raises
    ------
    RuntimeError
        If a leap second of the bundled table is missing from, or differs in, ``leap``.
    """
    import numpy as np
    from casacore.tables import makescacoldesc, maketabdesc, table

    with table(str(bundled_table), ack=False) as t:
        old = [tuple(float(t.getcell(c, i)) for c in ("MJD", "dUTC", "Offset", "Multiplier"))
               for i in range(t.nrows())]
        mjd0 = float(t.getkeyword("MJD0"))
    first = leap.rows[0][0]
    rows = [r for r in old if r[0] < first] + [(mjd, d, first, 0.0) for mjd, d in leap.rows]
    new = {r[0]: r[1] for r in rows}
    for mjd, d, _, _ in old:
        if mjd not in new or abs(new[mjd] - d) > 1e-9:
            raise RuntimeError(f"leap second at MJD {mjd} of the bundled table is not in {leap.path}")
    if len(rows) < 35:  # casacore refuses shorter tables as corrupted
        raise RuntimeError(f"{leap.path} has only {len(leap.rows)} leap seconds")
    desc = maketabdesc([makescacoldesc(name, 0.0, valuetype="double", keywords={"UNIT": unit})
                        for name, unit in (("MJD", "d"), ("dUTC", "s"), ("Offset", "d"), ("Multiplier", "s"))])
    created = _dt.datetime.now(_dt.timezone.utc).strftime("%Y/%m/%d/%H:%M")
    with table(str(path), desc, nrow=len(rows), ack=False) as t:
        for i, name in enumerate(("MJD", "dUTC", "Offset", "Multiplier")):
            t.putcol(name, np.array([r[i] for r in rows], dtype=float))
        t.putinfo({"type": "IERS", "subType": "leapSecond",
                   "readme": f"TAI-UTC from IERS Leap_Second.dat ({leap.bulletin}) via astropy-iers-data "
                             f"{leap.package_version}; the file expires on {leap.expires}"})
        t.putkeywords({"MJD0": mjd0, "dMJD": 0.0, "TAB_VERSION": "0001.0000",
                       "VS_TYPE": "TAI_UTC difference obtained from IERS Leap_Second.dat (astropy-iers-data)",
                       "VS_VERSION": f"{len(rows):04d}.0000", "VS_CREATE": created,
                       "VS_DATE": leap.vs_date.strftime("%Y/%m/%d/00:00")})


def _casadata_dir() -> Path | None:
    """Folder of the optional ``casadata`` package (flux standards), if installed."""
    spec = importlib.util.find_spec("casadata")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(list(spec.submodule_search_locations)[0])
    for cand in (root / "__data__", root / "data"):
        if cand.is_dir():
            return cand
    return None


def _point_python_casacore_at(measures: Path) -> None:
    """Make python-casacore read ``measures`` (its ``.aipsrc`` says ``measures.directory: ${CASACORE_DATADIR}``).

    python-casacore sets ``AIPSPATH`` to its package folder and ``CASACORE_DATADIR``
    to its bundled data on import, unless ``AIPSPATH`` is set already; we set
    both the same way, so the order of imports does not matter.  casacore expands
    the variable when it looks a table up, so this works after ``import casacore``
    too, as long as no UTC conversion has run yet.  An operator's own
    ``~/.casarc`` or ``AIPSPATH`` still comes first.
    """
    pkg = bundled_casacore_data_dir().parent
    if "AIPSPATH" not in os.environ and (pkg / ".aipsrc").is_file():
        os.environ["AIPSPATH"] = str(pkg)
    os.environ["CASACORE_DATADIR"] = str(measures)


def prepare_casa(state_dir: str | Path | None = None) -> Path:
    """Write the offline CASA site config and point ``CASASITECONFIG`` (and python-casacore) at it.

    Parameters
    ----------
    state_dir
        Folder for the config and CASA's log; default: the settings' state dir.

    Returns
    -------
    pathlib.Path
        Path of the site config written.

    Raises
    ------
    RuntimeError
        If casatools was imported before this call with another configuration.
    """
    global _PREPARED
    if _PREPARED is not None and state_dir is None:
        return _PREPARED
    if state_dir is None:
        from .config import get_settings

        state_dir = get_settings().state_dir
    state = Path(state_dir).absolute()
    casa_dir = state / "casa"
    casa_dir.mkdir(parents=True, exist_ok=True)
    measures = casacore_data_dir()
    _point_python_casacore_at(measures)
    datapath = [str(measures)]
    extra = _casadata_dir()
    if extra is not None:
        datapath.append(str(extra))
    cfg = casa_dir / "config.py"
    text = (
        "# written by dsa110_contimg.casa_env.prepare_casa: CASA runs offline\n"
        f"measurespath = {str(measures)!r}\n"
        f"datapath = {datapath!r}\n"
        "measures_auto_update = False\n"
        "data_auto_update = False\n"
        "skipnetworkcheck = True\n"
        f"logfile = {str(casa_dir / 'casa.log')!r}\n"
        "nologger = True\n"
        "log2term = False\n"
        "# the measures folder is ours, not casaconfig's casarundata: its 5-line SEVERE notice at every\n"
        "# casatools import says only that (measures are checked by tests/test_casa_measures.py)\n"
        "casaconfig_verbose = 0\n"
    )
    if not cfg.exists() or cfg.read_text() != text:
        cfg.write_text(text)
    if "casatools" in sys.modules and os.environ.get("CASASITECONFIG") not in (None, str(cfg)):
        # casatools keeps the configuration of its first import; a second state dir is not honoured.
        return Path(os.environ["CASASITECONFIG"])
    os.environ["CASASITECONFIG"] = str(cfg)
    _PREPARED = cfg
    return cfg


def casa_log_path() -> Path | None:
    """Return the CASA log file of the prepared configuration, if any."""
    if _PREPARED is None:
        return None
    return _PREPARED.parent / "casa.log"


def describe_measures() -> str:
    """One line: the measures folder in use and the age of its TAI_UTC table."""
    measures = casacore_data_dir()
    date = table_vs_date(measures / "geodetic" / "TAI_UTC")
    age = (_dt.date.today() - date).days if date else None
    src = "built from astropy-iers-data" if measures != bundled_casacore_data_dir() else "python-casacore's bundled data"
    state = "current" if age is not None and age <= STALE_AFTER_DAYS else "STALE (casacore will log SEVERE)"
    return f"measures: {measures} ({src}); TAI_UTC VS_DATE {date}, {age} days old: {state}"


if __name__ == "__main__":  # scripts/setup.sh: build the measures folder at setup time
    print(describe_measures())
