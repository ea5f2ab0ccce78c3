"""Reading survey tables: format detection, column detection, positions and units.

Each survey has a :class:`SurveySpec` that lists its canonical fields (``ra``,
``dec``, ``flux`` ...) and, for each, the column names the distributed catalogs
actually use (matched case-insensitively).  An explicit mapping
(``--nvss-col flux=S1.4``) overrides the detection.  :func:`read_survey` returns
float arrays keyed by canonical field: positions in degrees (sexagesimal strings
accepted), flux densities in Jy, sizes in arcsec.

Tables may be FITS (first binary table; detected from the file's first bytes),
CSV or TSV (VizieR TSV exports with ``#`` comments and unit/dash lines accepted).
Text tables are read with astropy's fast C reader, only the needed columns.
"""

from __future__ import annotations

import gzip
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import CatalogError
from .values import _position, _to_float

log = logging.getLogger(__name__)

FLUX_UNITS: dict[str, float] = {"jy": 1.0, "mjy": 1e-3, "ujy": 1e-6}
"""Accepted flux-unit strings and their factor to Jy."""


@dataclass(frozen=True)
class SurveySpec:
    """Column layout of one survey catalog."""

    name: str
    """Survey name as used in messages and meta keys ('nvss', 'vlass', 'first')."""
    candidates: dict[str, tuple[str, ...]]
    """Canonical field -> column names to look for, in order of preference."""
    required: tuple[str, ...]
    """Canonical fields that must be found."""
    flux_fields: tuple[str, ...] = ()
    """Canonical fields converted from the survey's flux unit to Jy."""
    text_fields: tuple[str, ...] = ()
    """Canonical fields kept as strings (e.g. VLASS ``S_Code``)."""


_RA = ("RAJ2000", "_RAJ2000", "RA", "RA_deg", "RAdeg", "RA_J2000", "RAJ2000_deg", "ra_j2000")
_DEC = ("DEJ2000", "_DEJ2000", "DEC", "DE", "Dec_deg", "DEC_deg", "DEdeg", "DEC_J2000", "DECJ2000")

NVSS = SurveySpec(
    name="nvss",
    candidates={
        "ra": _RA, "dec": _DEC,
        "flux": ("S1.4", "S1_4", "S14", "S_1.4", "S1400", "Flux", "Sint", "Total_flux"),
        "flux_err": ("e_S1.4", "e_S1_4", "e_S14", "E_S1.4", "e_Flux", "Flux_err", "e_Sint", "E_Total_flux"),
        "maj": ("MajAxis", "Maj", "Major"),
        "min": ("MinAxis", "Min", "Minor"),
        "pa": ("PA",),
    },
    required=("ra", "dec", "flux", "flux_err"),
    flux_fields=("flux", "flux_err"),
)
"""NVSS (VizieR VIII/65): ``RAJ2000``, ``DEJ2000``, ``S1.4``, ``e_S1.4`` (mJy), ``MajAxis``, ``MinAxis``."""

FIRST = SurveySpec(
    name="first",
    candidates={
        "ra": _RA, "dec": _DEC,
        "maj": ("Maj", "Deconv_Maj", "MajAxis"),
        "min": ("Min", "Deconv_Min", "MinAxis"),
        "pa": ("PA",),
        "fpeak": ("Fpeak", "Peak_flux", "FPEAK"),
        "fint": ("Fint", "Total_flux", "FINT"),
        "rms": ("Rms", "RMS", "Isl_rms"),
    },
    required=("ra", "dec", "maj"),
    flux_fields=("fpeak", "fint", "rms"),
)
"""FIRST (VizieR VIII/92): ``RAJ2000``, ``DEJ2000``, ``Fpeak``, ``Fint``, ``Rms`` (mJy), deconvolved ``Maj``/``Min``."""

VLASS = SurveySpec(
    name="vlass",
    candidates={
        "ra": _RA, "dec": _DEC,
        "flux": ("Total_flux", "Flux", "Sint", "S3.0", "Ftot"),
        "flux_err": ("E_Total_flux", "e_Total_flux", "Total_flux_err", "e_Flux", "e_Ftot"),
        "peak": ("Peak_flux", "Fpeak", "Speak"),
        "peak_err": ("E_Peak_flux", "e_Peak_flux", "Peak_flux_err", "e_Fpeak"),
        "isl_rms": ("Isl_rms", "Rms"),
        "dc_maj": ("DC_Maj", "DCMaj"),
        "dc_min": ("DC_Min", "DCMin"),
        "s_code": ("S_Code", "SCode"),
        "duplicate_flag": ("Duplicate_flag", "DupFlag"),
        "quality_flag": ("Quality_flag", "QualFlag"),
    },
    required=("ra", "dec", "flux"),
    flux_fields=("flux", "flux_err", "peak", "peak_err", "isl_rms"),
    text_fields=("s_code",),
)
"""VLASS Quick Look epoch 1 (CIRADA): ``RA``, ``DEC`` (deg), ``Total_flux``, ``Peak_flux`` ... (mJy), flags."""

SURVEYS: dict[str, SurveySpec] = {s.name: s for s in (NVSS, FIRST, VLASS)}


@dataclass
class SurveyTable:
    """Columns of one survey read into memory."""

    survey: str
    """Survey name."""
    path: Path
    """File read."""
    n_rows: int
    """Rows in the file."""
    mapping: dict[str, str]
    """Canonical field -> column name used."""
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    """Canonical field -> values (deg, Jy, arcsec; NaN where blank)."""


def flux_factor(unit: str, *, what: str) -> float:
    """Factor converting ``unit`` to Jy.

    Parameters
    ----------
    unit
        One of ``jy``, ``mjy``, ``ujy`` (case-insensitive).
    what
        Name of the option, used in the error message.

    Raises
    ------
    CatalogError
        Unknown unit string.
    """
    key = str(unit).strip().lower().replace("µ", "u")
    if key not in FLUX_UNITS:
        raise CatalogError(f"{what}: unknown flux unit {unit!r}; expected one of {', '.join(FLUX_UNITS)}")
    return FLUX_UNITS[key]


def parse_column_mapping(items, spec: SurveySpec) -> dict[str, str]:
    """Parse ``key=COLUMN`` strings into a mapping and check the keys.

    Parameters
    ----------
    items : iterable of str or mapping
        ``["ra=RAJ2000", ...]`` (as given on the command line) or an already-built dict.
    spec
        Survey whose canonical fields are the valid keys.
    """
    if isinstance(items, dict):
        pairs = list(items.items())
    else:
        pairs = []
        for item in items or ():
            key, sep, value = str(item).partition("=")
            if not sep or not key.strip() or not value.strip():
                raise CatalogError(f"--{spec.name}-col {item!r}: expected FIELD=COLUMN, e.g. ra=RAJ2000")
            pairs.append((key.strip(), value.strip()))
    out = {}
    for key, value in pairs:
        if key.lower() not in spec.candidates:
            raise CatalogError(f"--{spec.name}-col {key}={value}: unknown field {key!r}; "
                               f"valid fields: {', '.join(spec.candidates)}")
        out[key.lower()] = value
    return out


def detect_columns(names: list[str], spec: SurveySpec, path: Path,
                   overrides: dict[str, str] | None = None) -> dict[str, str]:
    """Map canonical fields of ``spec`` to columns of a table.

    Parameters
    ----------
    names
        Column names found in the file.
    spec
        Survey layout.
    path
        File (for error messages).
    overrides
        Canonical field -> column name, taking precedence over detection.

    Returns
    -------
    dict
        Canonical field -> exact column name in the file (fields not found are absent).

    Raises
    ------
    CatalogError
        A required field (or an explicitly mapped column) is missing; the message
        names the file, the column and the columns found.
    """
    lower = {n.strip().lower(): n for n in names}
    found_list = ", ".join(names)
    mapping: dict[str, str] = {}
    for key, col in (overrides or {}).items():
        if col.lower() not in lower:
            raise CatalogError(f"{path}: column {col!r} (mapped to {spec.name} field {key!r}) not found; "
                               f"columns found: {found_list}")
        mapping[key] = lower[col.lower()]
    for key, cands in spec.candidates.items():
        if key in mapping:
            continue
        for cand in cands:
            if cand.lower() in lower:
                mapping[key] = lower[cand.lower()]
                break
    for key in spec.required:
        if key not in mapping:
            raise CatalogError(f"{path}: missing required {spec.name.upper()} column for {key!r} "
                               f"(looked for {', '.join(spec.candidates[key])}); columns found: {found_list}")
    return mapping


def _is_fits(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(9)
    if head[:2] == b"\x1f\x8b":
        if ".fit" not in path.name.lower():
            return False
        with gzip.open(path, "rb") as fh:
            head = fh.read(9)
    return head == b"SIMPLE  ="


def _text_layout(path: Path) -> tuple[list[str], str, int, bool]:
    """Header names, delimiter, data start (in non-comment lines) and whether data follow, of a CSV/TSV file."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    lines: list[str] = []
    with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if line.startswith("#") or not line.strip():
                continue
            lines.append(line.rstrip("\r\n"))
            if len(lines) >= 4:
                break
    if not lines:
        raise CatalogError(f"{path}: empty file (no header line)")
    header = lines[0]
    name = path.name.lower().removesuffix(".gz")
    if name.endswith((".tsv", ".tab")) or ("\t" in header and not name.endswith(".csv")):
        delim = "\t"
    elif "," in header or name.endswith(".csv"):
        delim = ","
    else:
        raise CatalogError(f"{path}: cannot tell the table format (expected FITS, CSV or TSV)")
    names = [n.strip().strip('"') for n in header.split(delim)]
    data_start = 1
    for i, line in enumerate(lines[1:3], start=1):  # VizieR: header, units line, dashes line
        if line.strip() and set(line.replace(delim, "").strip()) <= {"-", " "}:
            data_start = i + 1
            break
    return names, delim, data_start, len(lines) > data_start


def read_columns(path: Path, spec: SurveySpec, overrides: dict[str, str] | None = None
                 ) -> tuple[dict[str, str], dict[str, np.ndarray], int]:
    """Read the columns of ``spec`` from a FITS, CSV or TSV table.

    Returns
    -------
    mapping : dict
        Canonical field -> column name.
    raw : dict
        Canonical field -> column values as read (possibly masked).
    n_rows : int
        Number of rows.

    Raises
    ------
    CatalogError
        The file is missing, unreadable, of unknown format, empty, or lacks a required column.
    """
    path = Path(path)
    if not path.is_file():
        raise CatalogError(f"{path}: {spec.name.upper()} catalog file not found")
    try:
        fits = _is_fits(path)
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read file ({exc.strerror or exc})") from None
    try:
        if fits:
            return _read_fits(path, spec, overrides)
        return _read_text(path, spec, overrides)
    except CatalogError:
        raise
    except (OSError, ValueError, UnicodeDecodeError, IndexError) as exc:
        raise CatalogError(f"{path}: cannot read {spec.name.upper()} table ({type(exc).__name__}: {exc})") from None


def _read_fits(path, spec, overrides):
    from astropy.io import fits

    with fits.open(path, memmap=True) as hdul:
        hdu = next((h for h in hdul if isinstance(h, (fits.BinTableHDU, fits.TableHDU))), None)
        if hdu is None:
            raise CatalogError(f"{path}: FITS file has no table extension")
        names = list(hdu.columns.names)
        mapping = detect_columns(names, spec, path, overrides)
        data = hdu.data
        n = 0 if data is None else len(data)
        raw = {k: (np.array(data[c]) if n else np.array([])) for k, c in mapping.items()}
    return mapping, raw, n


def _read_text(path, spec, overrides):
    from astropy.io import ascii

    names, delim, data_start, has_data = _text_layout(path)
    mapping = detect_columns(names, spec, path, overrides)
    if not has_data:
        return mapping, {}, 0
    wanted = sorted(set(mapping.values()))
    tab = ascii.read(path, format="basic", delimiter=delim, guess=False, fast_reader=True,
                     header_start=0, data_start=data_start, comment="#", include_names=wanted)
    n = len(tab)
    raw = {k: tab[c] for k, c in mapping.items()}
    return mapping, raw, n


def read_survey(path: Path, spec: SurveySpec, flux_unit: str = "mjy",
                overrides: dict[str, str] | None = None) -> SurveyTable:
    """Read one survey catalog into canonical columns.

    Parameters
    ----------
    path
        FITS, CSV or TSV table.
    spec
        Survey layout (:data:`NVSS`, :data:`FIRST`, :data:`VLASS`).
    flux_unit
        Unit of the file's flux columns (``jy``, ``mjy``, ``ujy``).
    overrides
        Canonical field -> column name, overriding detection.

    Returns
    -------
    SurveyTable
        Positions in degrees, fluxes in Jy, sizes in arcsec, flags as floats.

    Raises
    ------
    CatalogError
        Unreadable file, missing column, bad unit, no rows, or positions out of range.
    """
    path = Path(path)
    factor = flux_factor(flux_unit, what=f"--{spec.name}-flux-unit")
    mapping, raw, n = read_columns(path, spec, overrides)
    if n == 0:
        raise CatalogError(f"{path}: {spec.name.upper()} catalog contains no rows")
    cols: dict[str, np.ndarray] = {}
    for key, col in mapping.items():
        values = raw[key]
        if key == "ra":
            cols[key] = _position(values, path, col, hours=True)
        elif key == "dec":
            cols[key] = _position(values, path, col, hours=False)
        elif key in spec.text_fields:
            cols[key] = np.ma.filled(values.astype(str), "") if np.ma.isMaskedArray(values) \
                else np.asarray(values).astype(str)
        else:
            cols[key] = _to_float(values, path, col)
            if key in spec.flux_fields:
                cols[key] = cols[key] * factor
    ra, dec = cols["ra"], cols["dec"]
    ok = np.isfinite(ra) & np.isfinite(dec)
    if ok.any() and (np.nanmin(dec) < -90 or np.nanmax(dec) > 90 or np.nanmin(ra) < -1e-9 or np.nanmax(ra) > 360):
        raise CatalogError(f"{path}: positions out of range (RA {np.nanmin(ra):.3f}..{np.nanmax(ra):.3f}, "
                           f"Dec {np.nanmin(dec):.3f}..{np.nanmax(dec):.3f} deg) in columns "
                           f"{mapping['ra']!r}/{mapping['dec']!r}; check the column mapping")
    cols["ra"] = np.mod(ra, 360.0)
    log.info("%s: %d rows from %s (columns %s)", spec.name.upper(), n, path,
             ", ".join(f"{k}={v}" for k, v in mapping.items()))
    return SurveyTable(survey=spec.name, path=path, n_rows=n, mapping=mapping, columns=cols)
