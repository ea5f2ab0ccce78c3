"""The group's headers and the geometry both writers derive from them.

:func:`read_group_metas` reads and cross-checks the headers of a group;
:func:`group_geometry` turns them into the antenna table, the record times and
the phase centre(s) of the MS.
"""

from __future__ import annotations

import numpy as np

from .. import telescope as tel
from ..geometry import meridian_j2000
from ..timeconv import jd_to_mjd, mjd_to_datetime
from .grouping import SubbandGroup, check_headers_agree
from .reader import read_meta


def read_group_metas(group: SubbandGroup):
    """Read and cross-check the headers of a group (sorted by subband)."""
    metas = [read_meta(p) for p in group.paths()]
    check_headers_agree(metas)
    return metas


def group_geometry(metas, opts):
    """Antenna table, record times and phase centres shared by both writers.

    ``opts`` is the :class:`~dsa110_contimg.conversion.convert.ConvertOptions` of the conversion.

    Returns
    -------
    tuple
        (antennas, fringe-stop longitude (rad), distinct MJDs, time index of every record,
        mid MJD, J2000 centres (Nfield, 2) rad, field names).
    """
    m0 = metas[0]
    if opts.antpos_csv is not None:
        ants = tel.read_station_csv(opts.antpos_csv)
    else:
        site = tel.geodetic_to_ecef(m0.site_lat_deg, m0.site_lon_deg, m0.site_alt_m)
        ants = tel.antenna_table_from_header(m0.antenna_names, m0.antenna_numbers, m0.antenna_positions, site)
    lon_fs = np.radians(opts.fringestop_lon_deg if opts.fringestop_lon_deg is not None else tel.FRINGESTOP_LON_DEG)
    jd, tidx = np.unique(m0.time_jd, return_inverse=True)
    mjd = jd_to_mjd(jd)
    mid = float(mjd.mean())
    if opts.phase_center_deg is not None:
        if opts.phase_per_integration:
            raise ValueError("phase_center_deg and phase_per_integration exclude each other")
        centres = np.radians([list(opts.phase_center_deg)])
        names = [opts.field_name or "phase_center"]
    elif opts.phase_per_integration:
        centres = meridian_j2000(m0.dec_rad, mjd, lon_fs)
        names = [f"meridian_icrs_t{i}" for i in range(len(mjd))]
    else:
        centres = meridian_j2000(m0.dec_rad, [mid], lon_fs)
        names = [f"meridian_{mjd_to_datetime(mid).strftime('%Y-%m-%dT%H:%M:%S')}"]
    return ants, lon_fs, mjd, tidx, mid, centres, names
