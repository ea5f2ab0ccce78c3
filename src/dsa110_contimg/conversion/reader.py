"""Direct h5py reading of correlator subband files (no pyuvdata on the fast path)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .grouping import ConversionInputError


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


def _open(path: Path):
    import h5py

    try:
        return h5py.File(path, "r")
    except OSError as exc:
        reason = "truncated or corrupt HDF5 file" if "truncated" in str(exc).lower() or "signature" in str(exc).lower() \
            else f"not a readable HDF5 file ({exc})"
        raise ConversionInputError(f"{path.name}: {reason}", [path]) from None


def read_meta(path: str | Path) -> SubbandMeta:
    """Read the header of a subband file.

    Raises
    ------
    ConversionInputError
        Naming the file when it is not HDF5, truncated, or lacks a UVH5 field.
    """
    path = Path(path)
    with _open(path) as f:
        try:
            h = f["Header"]
            ek = h["extra_keywords"]
            freqs = np.asarray(h["freq_array"][()], dtype=float).ravel()
            cw = np.asarray(h["channel_width"][()], dtype=float).ravel()
            names = [n.decode() if isinstance(n, bytes) else str(n) for n in h["antenna_names"][()]]
            meta = SubbandMeta(
                path=path, nblts=int(h["Nblts"][()]), nfreqs=int(h["Nfreqs"][()]), npols=int(h["Npols"][()]),
                ant_1=np.asarray(h["ant_1_array"][()]), ant_2=np.asarray(h["ant_2_array"][()]),
                time_jd=np.asarray(h["time_array"][()], dtype=float),
                int_time_s=np.asarray(h["integration_time"][()], dtype=float),
                freqs_hz=freqs, channel_width_hz=float(np.abs(cw[0])), dec_rad=float(ek["phase_center_dec"][()]),
                antenna_names=names, antenna_numbers=np.asarray(h["antenna_numbers"][()]),
                antenna_positions=np.asarray(h["antenna_positions"][()], dtype=float),
                site_lat_deg=float(h["latitude"][()]), site_lon_deg=float(h["longitude"][()]),
                site_alt_m=float(h["altitude"][()]), pols=np.asarray(h["polarization_array"][()]),
            )
            shape = f["Data"]["visdata"].shape
        except KeyError as exc:
            raise ConversionInputError(f"{path.name}: missing UVH5 field {exc}", [path]) from None
        except OSError as exc:
            raise ConversionInputError(f"{path.name}: unreadable header ({exc})", [path]) from None
    if shape[0] != meta.nblts or shape[-2] != meta.nfreqs or shape[-1] != meta.npols:
        raise ConversionInputError(f"{path.name}: visdata shape {shape} does not match the header", [path])
    return meta


def read_data(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read visibilities, flags and nsamples of a subband file.

    Returns
    -------
    tuple of numpy.ndarray
        ``(vis complex64, flags bool, nsamples float32)``, each (Nblts, Nfreqs, Npols), file channel order.

    Raises
    ------
    ConversionInputError
        Naming the file when the data cannot be read (e.g. truncated).
    """
    path = Path(path)
    with _open(path) as f:
        try:
            d = f["Data"]
            vis = d["visdata"][()]
            flags = d["flags"][()]
            nsamples = d["nsamples"][()]
        except (KeyError, OSError) as exc:
            raise ConversionInputError(f"{path.name}: cannot read data ({exc})", [path]) from None
    if vis.ndim == 4:
        vis, flags, nsamples = vis[:, 0], flags[:, 0], nsamples[:, 0]
    return vis.astype(np.complex64, copy=False), flags.astype(bool, copy=False), \
        nsamples.astype(np.float32, copy=False)
