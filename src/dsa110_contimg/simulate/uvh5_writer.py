"""Write one subband file in the exact layout of the DSA-110 correlator's UVH5 writer.

The layout mirrors the meridian fringe-stopping writer: resizable chunked
datasets, ``freq_array`` of shape (1, Nfreqs) with descending channels and a
positive scalar ``channel_width``, ``visdata`` of shape (Nblts, 1, Nfreqs, Npols)
complex64, float32 ``uvw_array`` (one reference-time UVW repeated), float32
``nsamples``, ``phase_type = 'drift'``, the Header dataset ``phase_center_app_dec``
(the pointing declination, radians, a scalar) and the extra keywords
``phase_center_dec``, ``ha_phase_center``, ``phase_center_epoch``,
``applied_delays_ns`` and ``fs_table``.  The file is written as
``<name>_incomplete.hdf5`` and renamed when complete.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

FS_TABLE = "fringestopping_table.npz"
"""``fs_table`` the simulator records: the real writer stores the path of the table of its meridian fringe-stopping
model (``fringestopping_table.npz``, in its output folder when it has one); the simulator computes the same model
directly and keeps no table, so it records that name."""


@dataclass
class SubbandHeader:
    """Header values of one subband file."""

    latitude_deg: float
    longitude_deg: float
    altitude_m: float
    antenna_names: list[str]
    antenna_numbers: np.ndarray
    antenna_positions: np.ndarray
    """Positions relative to the header site, ECEF axes (m), shape (Nants_telescope, 3)."""
    ant_1_array: np.ndarray
    ant_2_array: np.ndarray
    uvw_array: np.ndarray
    time_array: np.ndarray
    """Julian dates, one per baseline-time."""
    integration_time: np.ndarray
    freq_array: np.ndarray
    """Shape (Nfreqs,), in file order (descending)."""
    channel_width: float
    nants_data: int
    ntimes: int
    phase_center_dec_rad: float
    applied_delays_ns: np.ndarray
    """Integer delays, shape (Nants_telescope, 2)."""
    history: str = ""
    fs_table: str = FS_TABLE
    """Path of the fringe-stopping table (extra keyword ``fs_table``)."""


def _create(group, name, data, dtype=None):
    data = np.asarray(data, dtype=dtype)
    maxshape = (None,) + data.shape[1:]
    group.create_dataset(name, data=data, maxshape=maxshape, chunks=True)


def write_subband_file(path: str | Path, hdr: SubbandHeader, visdata: np.ndarray, flags: np.ndarray,
                       nsamples: np.ndarray) -> Path:
    """Write one correlator-style UVH5 file, via a ``_incomplete`` name.

    Parameters
    ----------
    path
        Final path ``.../YYYY-mm-ddTHH:MM:SS_sbNN.hdf5``.
    hdr
        Header values.
    visdata
        complex64, shape (Nblts, Nfreqs, Npols).
    flags
        bool, same shape.
    nsamples
        float32, same shape.

    Returns
    -------
    pathlib.Path
        The final path.
    """
    import h5py

    path = Path(path)
    tmp = path.with_name(path.stem + "_incomplete.hdf5")
    nblts, nfreqs, npols = visdata.shape
    nants_tel = len(hdr.antenna_names)
    with h5py.File(tmp, "w") as f:
        h = f.create_group("Header")
        d = f.create_group("Data")
        h["latitude"] = np.float64(hdr.latitude_deg)
        h["longitude"] = np.float64(hdr.longitude_deg)
        h["altitude"] = np.float64(hdr.altitude_m)
        h["telescope_name"] = np.bytes_("OVRO_MMA")
        h["instrument"] = np.bytes_("DSA")
        h["object_name"] = np.bytes_("search")
        h["history"] = np.bytes_(hdr.history or "written by dsa110-meridian-fringestopping on "
                                 + datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"))
        h["phase_type"] = np.bytes_("drift")
        h["Nants_data"] = np.int64(hdr.nants_data)
        h["Nants_telescope"] = np.int64(nants_tel)
        h["antenna_diameters"] = np.full(nants_tel, 4.65)
        _create(h, "ant_1_array", hdr.ant_1_array, np.int64)
        _create(h, "ant_2_array", hdr.ant_2_array, np.int64)
        h.create_dataset("antenna_names", (nants_tel,), dtype="S4",
                         data=np.array(hdr.antenna_names, dtype="S4"))
        h["antenna_numbers"] = np.asarray(hdr.antenna_numbers, dtype=np.int64)
        h["Nbls"] = np.int64(nblts // hdr.ntimes)
        h["Nblts"] = np.int64(nblts)
        h["Nfreqs"] = np.int64(nfreqs)
        h["Npols"] = np.int64(npols)
        h["Ntimes"] = np.int64(hdr.ntimes)
        h["Nspws"] = np.int64(1)
        _create(h, "uvw_array", hdr.uvw_array, np.float32)
        _create(h, "time_array", hdr.time_array, np.float64)
        _create(h, "integration_time", hdr.integration_time, np.float64)
        h["freq_array"] = np.asarray(hdr.freq_array, dtype=np.float64)[np.newaxis, :]
        h["channel_width"] = np.float64(abs(hdr.channel_width))
        h["spw_array"] = np.array([1], dtype=np.int64)
        h["polarization_array"] = np.array([-5, -6], dtype=np.int64)[:npols]
        h["antenna_positions"] = np.asarray(hdr.antenna_positions, dtype=np.float64)
        h["phase_center_app_dec"] = np.float64(hdr.phase_center_dec_rad)
        ek = h.create_group("extra_keywords")
        ek["phase_center_dec"] = np.float64(hdr.phase_center_dec_rad)
        ek["ha_phase_center"] = np.float64(0.0)
        ek["phase_center_epoch"] = np.bytes_("HADEC")
        ek["applied_delays_ns"] = np.bytes_(" ".join(str(int(x)) for x in np.asarray(hdr.applied_delays_ns).ravel()))
        ek["fs_table"] = np.bytes_(hdr.fs_table)
        _create(d, "visdata", visdata.reshape(nblts, 1, nfreqs, npols), np.complex64)
        _create(d, "flags", flags.reshape(nblts, 1, nfreqs, npols), bool)
        _create(d, "nsamples", nsamples.reshape(nblts, 1, nfreqs, npols), np.float32)
    os.replace(tmp, path)
    return path
