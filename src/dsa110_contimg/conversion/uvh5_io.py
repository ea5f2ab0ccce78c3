"""pyuvdata-based reading of DSA-110 subband files, and meridian-aware phasing.

The correlator's files say ``phase_type = 'drift'`` but every integration is
fringe-stopped to the meridian at the pointing declination.  pyuvdata would
treat them as zenith-phased, so :func:`declare_meridian_phasing` first tells
pyuvdata the truth (one ephemeris phase centre tracking the meridian, with the
correlator's w-terms), after which :func:`phase_to_icrs` rephases correctly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..geometry import meridian_j2000, meridian_uvw_matrix
from ..telescope import FRINGESTOP_LON_DEG, AntennaTable
from ..timeconv import jd_to_mjd
from .grouping import ConversionInputError
from .reader import flag_nonfinite_subband, reraise_if_environment


def read_subband_pyuvdata(path: str | Path):
    """Read one subband file with pyuvdata, tolerating the real files' float32 UVW.

    Parameters
    ----------
    path
        A ``*_sbNN.hdf5`` file.

    Returns
    -------
    pyuvdata.UVData
        With ``uvw_array`` cast to float64.

    Raises
    ------
    ConversionInputError
        Naming the file when pyuvdata cannot read it (malformed header or data).
    EnvironmentFault
        Machine trouble (permission denied, too many open files); ``MemoryError`` passes through.
    """
    from pyuvdata import UVData

    path = Path(path)
    uv = UVData()
    try:
        uv.read(str(path), file_type="uvh5", run_check=False)
        uv.uvw_array = np.asarray(uv.uvw_array, dtype=np.float64)
    except Exception as exc:  # noqa: BLE001 - whatever pyuvdata raises on a malformed file is bad input
        reraise_if_environment(exc, path)
        raise ConversionInputError(f"{path.name}: pyuvdata cannot read the file ({type(exc).__name__}: {exc})",
                                   [path]) from exc
    return uv


def read_group_pyuvdata(paths: Sequence[str | Path], antennas: AntennaTable | None = None,
                        nonfinite: dict | None = None):
    """Read the subband files of one group into one ascending-frequency UVData.

    NaN/Inf visibilities are flagged and set to 0 in each file (see
    :func:`~dsa110_contimg.conversion.reader.flag_nonfinite_subband`).

    Parameters
    ----------
    paths
        Subband files of one group (any order).
    antennas
        Antenna table whose positions replace the header's (``None``: keep header).
    nonfinite
        When given, filled with ``{path: number of non-finite samples}``.

    Returns
    -------
    pyuvdata.UVData

    Raises
    ------
    ConversionInputError
        A file pyuvdata cannot read, or whose visibilities are all NaN/Inf.
    """
    uvs = []
    for p in paths:
        uv = read_subband_pyuvdata(p)
        n = flag_nonfinite_subband(p, uv.data_array, uv.flag_array)
        if nonfinite is not None:
            nonfinite[Path(p)] = n
        uvs.append(uv)
    uv = uvs[0]
    if len(uvs) > 1:
        uv.fast_concat(uvs[1:], "freq", inplace=True, run_check=False)
    uv.reorder_freqs(channel_order="freq", run_check=False)
    if antennas is not None:
        set_antenna_positions(uv, antennas)
    return uv


def telescope_xyz(uv) -> np.ndarray:
    """ECEF position (m) of the UVData telescope location."""
    loc = uv.telescope.location
    return np.array([loc.x.to_value("m"), loc.y.to_value("m"), loc.z.to_value("m")])


def set_antenna_positions(uv, antennas: AntennaTable) -> None:
    """Replace the UVData antenna positions by those of ``antennas`` (matched by name)."""
    tel_xyz = telescope_xyz(uv)
    names = [str(n) for n in uv.telescope.antenna_names]
    pos = np.array(uv.telescope.antenna_positions, dtype=float)
    for i, n in enumerate(names):
        if n in antennas.names:
            pos[i] = antennas.position_of(n) - tel_xyz
    uv.telescope.antenna_positions = pos


def declare_meridian_phasing(uv, fringestop_lon_deg: float = FRINGESTOP_LON_DEG) -> None:
    """Declare the data as phased, per integration, to the meridian at the pointing declination.

    Adds an ephemeris phase centre ``meridian_fs`` whose ICRS track is the
    meridian direction at every integration, and sets ``uvw_array`` to the
    UVW towards that direction (the w-terms the correlator applied).

    Parameters
    ----------
    uv : pyuvdata.UVData
        Freshly read correlator data (``phase_type = 'drift'``).
    fringestop_lon_deg
        Longitude of the meridian the correlator fringe-stopped to (deg).
    """
    dec = float(uv.extra_keywords["phase_center_dec"])
    lon = np.radians(fringestop_lon_deg)
    jd = np.unique(uv.time_array)
    radec = meridian_j2000(dec, jd_to_mjd(jd), lon)
    ra_track = np.unwrap(radec[:, 0])
    tel_xyz = telescope_xyz(uv)
    ant_xyz = np.array(uv.telescope.antenna_positions, dtype=float) + tel_xyz
    idx = {int(n): i for i, n in enumerate(uv.telescope.antenna_numbers)}
    b = ant_xyz[[idx[a] for a in uv.ant_2_array]] - ant_xyz[[idx[a] for a in uv.ant_1_array]]
    uv.uvw_array = (meridian_uvw_matrix(dec, lon) @ b.T).T
    old_ids = list(uv.phase_center_catalog.keys())
    cat_id = uv._add_phase_center("meridian_fs", cat_type="ephem", cat_lon=ra_track, cat_lat=radec[:, 1],
                                  cat_frame="icrs", cat_epoch=2000.0, cat_times=jd)
    uv.phase_center_id_array = np.full(uv.Nblts, cat_id, dtype=int)
    for old in old_ids:
        if old != cat_id:
            uv._remove_phase_center(old)
    uv._set_app_coords_helper()


def phase_to_icrs(uv, ra_deg: float, dec_deg: float, name: str) -> None:
    """Rephase meridian-declared data to one ICRS direction with pyuvdata."""
    uv.phase(lon=np.radians(ra_deg), lat=np.radians(dec_deg), epoch="J2000", phase_frame="icrs", cat_name=name,
             cat_type="sidereal")
