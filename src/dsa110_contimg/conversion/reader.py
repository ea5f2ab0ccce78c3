"""Direct h5py reading of correlator subband files (no pyuvdata on the fast path).

:func:`read_meta` validates every header field it reads (type, shape against
``Nblts`` / ``Nfreqs`` / ``Npols`` / the antenna count, finiteness, sane
ranges): a malformed header is bad input, reported as
:class:`~dsa110_contimg.conversion.grouping.ConversionInputError` naming the
file and the field, never as a stray ``ValueError`` / ``TypeError``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ContimgError, EnvironmentFault, is_environment_oserror
from .grouping import ConversionInputError
from .kernels import flag_nonfinite

_INT, _REAL, _TEXT = "iu", "iuf", "SUO"
"""numpy dtype kinds accepted for integer, real and text fields."""
MAX_ANTENNA_NUMBER = 2047
"""Largest antenna number accepted (pyuvdata's 2048-antenna baseline numbering)."""
JD_RANGE = (2415020.5, 2488069.5)
"""Accepted Julian dates (1900-01-01 .. 2100-01-01)."""


@dataclass
class SubbandMeta:
    """Header of one subband file."""

    path: Path
    nblts: int
    nfreqs: int
    npols: int
    ant_1: np.ndarray
    """Antenna numbers of the first antenna per record."""
    ant_2: np.ndarray
    time_jd: np.ndarray
    """Julian date per record."""
    int_time_s: np.ndarray
    freqs_hz: np.ndarray
    """Channel centres in file order."""
    channel_width_hz: float
    dec_rad: float
    """Pointing (fringe-stop) declination from ``extra_keywords/phase_center_dec``."""
    antenna_names: list[str]
    antenna_numbers: np.ndarray
    antenna_positions: np.ndarray
    """Relative to the header site (m)."""
    site_lat_deg: float
    site_lon_deg: float
    site_alt_m: float
    pols: np.ndarray


class _FieldError(ContimgError):
    """A header field is present but invalid (internal: becomes ConversionInputError)."""


def reraise_if_environment(exc: BaseException, path: Path) -> None:
    """Machine trouble reading ``path`` is not bad input: re-raise ``MemoryError``; an environment
    ``OSError`` (permission denied, too many open files, ...) becomes a one-line :class:`EnvironmentFault`."""
    if isinstance(exc, MemoryError):
        raise exc
    if is_environment_oserror(exc):
        raise EnvironmentFault(f"{Path(path).name}: cannot read the file ({type(exc).__name__}: {exc})") from exc


def _open(path: Path):
    import h5py

    try:
        return h5py.File(path, "r")
    except Exception as exc:  # noqa: BLE001 - any failure to open is bad input, machine trouble aside
        reraise_if_environment(exc, path)
        text = str(exc).lower()
        reason = "truncated or corrupt HDF5 file" if "truncated" in text or "signature" in text \
            else f"not a readable HDF5 file ({exc})"
        raise ConversionInputError(f"{path.name}: {reason}", [path]) from None


def _dataset(group, name: str, kinds: str, shape: tuple | None = None) -> np.ndarray:
    """Read dataset ``name`` of ``group`` as an array of one of the dtype ``kinds``, optionally of ``shape``.

    ``shape`` entries of ``None`` match any length; ``()`` accepts a scalar or a one-element array.
    """
    import h5py

    obj = group[name]
    if not isinstance(obj, h5py.Dataset):
        raise _FieldError("is a group, not a dataset")
    value = np.asarray(obj[()])
    if value.dtype.kind not in kinds:
        want = {_INT: "integer", _REAL: "real", _TEXT: "text"}.get(kinds, kinds)
        raise _FieldError(f"has dtype {value.dtype}, expected {want}")
    if shape == ():
        if value.size != 1:
            raise _FieldError(f"has shape {value.shape}, expected a scalar")
        return value.reshape(())
    if shape is not None and (value.ndim != len(shape)
                              or any(s is not None and s != v for s, v in zip(shape, value.shape))):
        want = "(" + ", ".join("any" if s is None else str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
        raise _FieldError(f"has shape {value.shape}, expected {want}")
    return value


def _finite_in(value: np.ndarray, lo: float, hi: float, what: str = "values") -> np.ndarray:
    """``value`` as float64, checked finite and within ``[lo, hi]``."""
    v = value.astype(np.float64)
    if not np.all(np.isfinite(v)):
        raise _FieldError(f"has non-finite {what}")
    if v.size and (v.min() < lo or v.max() > hi):
        raise _FieldError(f"{what} outside [{lo:g}, {hi:g}] (min {v.min():g}, max {v.max():g})")
    return v


def _count(h, name: str, hi: int) -> int:
    """A positive integer scalar of at most ``hi``."""
    v = _dataset(h, name, _INT, ())
    n = int(v)
    if not 1 <= n <= hi:
        raise _FieldError(f"= {n}, expected 1..{hi}")
    return n


def _names(h) -> list[str]:
    v = _dataset(h, "antenna_names", _TEXT, (None,))
    out = []
    for n in v.tolist():
        if not isinstance(n, (bytes, str)):
            raise _FieldError(f"holds a {type(n).__name__}, expected text")
        out.append(n.decode() if isinstance(n, bytes) else n)
    if not out:
        raise _FieldError("is empty")
    return out


def _antenna_column(h, name: str, nblts: int, known: np.ndarray) -> np.ndarray:
    v = _dataset(h, name, _INT, (nblts,)).astype(np.int64)
    unknown = np.setdiff1d(v, known)
    if unknown.size:
        raise _FieldError(f"holds antenna numbers {unknown[:5].tolist()} absent from antenna_numbers")
    return v


def _read_fields(path: Path, f, state: dict) -> SubbandMeta:
    """Read and validate every header field; ``state['field']`` names the one being read."""

    def field(name):
        state["field"] = name
        return name

    h = f[field("Header")]
    nblts = _count(h, field("Nblts"), 2**31 - 1)
    nfreqs = _count(h, field("Nfreqs"), 2**20)
    npols = _count(h, field("Npols"), 4)
    field("antenna_names")
    names = _names(h)
    nants = len(names)
    numbers = _dataset(h, field("antenna_numbers"), _INT, (nants,)).astype(np.int64)
    if numbers.min() < 0 or numbers.max() > MAX_ANTENNA_NUMBER:
        raise _FieldError(f"values outside 0..{MAX_ANTENNA_NUMBER}")
    if np.unique(numbers).size != nants:
        raise _FieldError("holds repeated antenna numbers")
    positions = _finite_in(_dataset(h, field("antenna_positions"), _REAL, (nants, 3)), -1e7, 1e7, "positions (m)")
    ant_1 = _antenna_column(h, field("ant_1_array"), nblts, numbers)
    ant_2 = _antenna_column(h, field("ant_2_array"), nblts, numbers)
    time_jd = _finite_in(_dataset(h, field("time_array"), _REAL, (nblts,)), *JD_RANGE, "Julian dates")
    int_time = _finite_in(_dataset(h, field("integration_time"), _REAL, (nblts,)), 0.0, 86400.0, "times (s)")
    if int_time.min() <= 0:
        raise _FieldError("has non-positive integration times")
    freqs = _finite_in(_dataset(h, field("freq_array"), _REAL).ravel(), 1.0, 1e13, "frequencies (Hz)")
    if freqs.size != nfreqs:
        raise _FieldError(f"has {freqs.size} channels, Nfreqs is {nfreqs}")
    cw = _finite_in(_dataset(h, field("channel_width"), _REAL).ravel(), -1e12, 1e12, "widths (Hz)")
    if cw.size not in (1, nfreqs) or np.any(cw == 0):
        raise _FieldError(f"must be one non-zero width or one per channel (got {cw.size} values)")
    pols = _dataset(h, field("polarization_array"), _INT, (npols,)).astype(np.int64)
    if np.any((pols < -8) | (pols > 4) | (pols == 0)):
        raise _FieldError(f"holds unknown polarization codes {pols.tolist()}")
    lat = float(_finite_in(_dataset(h, field("latitude"), _REAL, ()), -90.0, 90.0, "latitude (deg)"))
    lon = float(_finite_in(_dataset(h, field("longitude"), _REAL, ()), -360.0, 360.0, "longitude (deg)"))
    alt = float(_finite_in(_dataset(h, field("altitude"), _REAL, ()), -1e4, 1e5, "altitude (m)"))
    dec = float(_finite_in(_dataset(h, field("extra_keywords/phase_center_dec"), _REAL, ()), -np.pi / 2 - 1e-9,
                           np.pi / 2 + 1e-9, "declination (rad)"))
    _check_data_shapes(f, field, nblts, nfreqs, npols)
    return SubbandMeta(path=path, nblts=nblts, nfreqs=nfreqs, npols=npols, ant_1=ant_1, ant_2=ant_2, time_jd=time_jd,
                       int_time_s=int_time, freqs_hz=freqs, channel_width_hz=float(np.abs(cw[0])), dec_rad=dec,
                       antenna_names=names, antenna_numbers=numbers, antenna_positions=positions, site_lat_deg=lat,
                       site_lon_deg=lon, site_alt_m=alt, pols=pols)


def _check_data_shapes(f, field, nblts: int, nfreqs: int, npols: int) -> None:
    """The Data datasets must be (Nblts, [1,] Nfreqs, Npols), visdata complex, flags boolean."""
    import h5py

    for name, kinds in (("visdata", "c"), ("flags", "biu"), ("nsamples", _REAL)):
        ds = f[field(f"Data/{name}")]
        if not isinstance(ds, h5py.Dataset):
            raise _FieldError("is a group, not a dataset")
        shape = ds.shape
        ok = shape == (nblts, nfreqs, npols) or shape == (nblts, 1, nfreqs, npols)
        if not ok:
            raise _FieldError(f"shape {shape} does not match the header (Nblts {nblts}, Nfreqs {nfreqs}, "
                              f"Npols {npols})")
        if ds.dtype.kind not in kinds:
            raise _FieldError(f"has dtype {ds.dtype}")


def read_meta(path: str | Path) -> SubbandMeta:
    """Read and validate the header of a subband file.

    Parameters
    ----------
    path
        A ``*_sbNN.hdf5`` file.

    Returns
    -------
    SubbandMeta

    Raises
    ------
    ConversionInputError
        Naming the file (and the field) when it is not HDF5, truncated, lacks a
        UVH5 field, or a field has the wrong type, shape, a non-finite or
        out-of-range value.
    EnvironmentFault
        Machine trouble (permission denied, too many open files); ``MemoryError`` passes through.
    """
    path = Path(path)
    state = {"field": "Header"}
    with _open(path) as f:
        try:
            return _read_fields(path, f, state)
        except _FieldError as exc:
            raise ConversionInputError(f"{path.name}: header field {state['field']} {exc}", [path]) from None
        except KeyError:
            raise ConversionInputError(f"{path.name}: missing UVH5 field {state['field']}", [path]) from None
        except Exception as exc:  # noqa: BLE001 - anything else while reading the header is a malformed file
            reraise_if_environment(exc, path)
            raise ConversionInputError(f"{path.name}: unreadable header field {state['field']} "
                                       f"({type(exc).__name__}: {exc})", [path]) from None


def read_data(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read visibilities, flags and nsamples of a subband file.

    Returns
    -------
    tuple of numpy.ndarray
        ``(vis complex64, flags bool, nsamples float32)``, each (Nblts, Nfreqs, Npols), file channel order.

    Raises
    ------
    ConversionInputError
        Naming the file when the data cannot be read (e.g. truncated) or disagree in shape.
    """
    path = Path(path)
    with _open(path) as f:
        try:
            d = f["Data"]
            vis = d["visdata"][()]
            flags = d["flags"][()]
            nsamples = d["nsamples"][()]
            if not vis.shape == flags.shape == nsamples.shape or vis.ndim not in (3, 4):
                raise ConversionInputError(f"{path.name}: visdata {vis.shape}, flags {flags.shape} and nsamples "
                                           f"{nsamples.shape} disagree", [path])
            if vis.ndim == 4:
                vis, flags, nsamples = vis[:, 0], flags[:, 0], nsamples[:, 0]
            return vis.astype(np.complex64, copy=False), flags.astype(bool, copy=False), \
                nsamples.astype(np.float32, copy=False)
        except ConversionInputError:
            raise
        except Exception as exc:  # noqa: BLE001 - unreadable data is bad input, machine trouble aside
            reraise_if_environment(exc, path)
            raise ConversionInputError(f"{path.name}: cannot read data ({type(exc).__name__}: {exc})",
                                       [path]) from None


def flag_nonfinite_subband(path: str | Path, vis: np.ndarray, flags: np.ndarray) -> int:
    """Flag and zero the NaN/Inf visibilities of one subband file (in place); all non-finite is bad input.

    Parameters
    ----------
    path
        The file the data came from (named in the error).
    vis, flags
        Visibilities and flags of the file, same shape; modified in place.

    Returns
    -------
    int
        Number of non-finite samples flagged.

    Raises
    ------
    ConversionInputError
        When every sample of the file (flagged or not) is NaN/Inf.
    """
    n = flag_nonfinite(vis, flags)
    if n and n == vis.size:
        path = Path(path)
        raise ConversionInputError(f"{path.name}: all {n} visibilities are NaN/Inf", [path])
    return n
