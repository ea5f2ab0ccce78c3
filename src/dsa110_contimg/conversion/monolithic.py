"""The monolithic writer: pyuvdata reads every subband, rephases and writes the MS."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .. import telescope as tel
from ..ms import mark_corrected, stamp_pointing
from .group_meta import group_geometry, read_group_metas
from .grouping import SubbandGroup
from .uvh5_io import declare_meridian_phasing, read_group_pyuvdata, set_antenna_positions


def write_monolithic(group: SubbandGroup, ms_path: Path, opts, metas: list | None = None) -> dict:
    """Write one group as an MS through pyuvdata's ``write_ms``.

    The pipeline's identity (telescope name, site, CSV antenna positions) is
    stamped before writing; MODEL_DATA (1 + 0j) and CORRECTED_DATA (= DATA)
    are added afterwards.  NaN/Inf visibilities are flagged and set to 0.

    Parameters and result as :func:`~dsa110_contimg.conversion.direct_writer.write_direct`.

    Raises
    ------
    ConversionInputError
        A subband file pyuvdata cannot read, or whose visibilities are all NaN/Inf.
    """
    timings = {"load": 0.0, "phase": 0.0, "write": 0.0, "combine": 0.0}
    t0 = time.perf_counter()
    metas = metas if metas is not None else read_group_metas(group)
    ants, lon_fs, mjd, tidx, mid, centres, names = group_geometry(metas, opts)
    per_path: dict = {}
    uv = read_group_pyuvdata(group.paths(), None, nonfinite=per_path)
    nonfinite = {sb: per_path[Path(f.path)] for sb, f in group.files.items()}
    timings["load"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    set_antenna_positions(uv, ants)
    declare_meridian_phasing(uv, np.degrees(lon_fs))
    if opts.phase_per_integration:
        for it, name in enumerate(names):
            sel = tidx == it
            uv.phase(lon=centres[it][0], lat=centres[it][1], epoch="J2000", phase_frame="icrs", cat_name=name,
                     cat_type="sidereal", select_mask=sel)
    else:
        uv.phase(lon=centres[0][0], lat=centres[0][1], epoch="J2000", phase_frame="icrs", cat_name=names[0],
                 cat_type="sidereal")
    _stamp_identity(uv, ants, opts.telescope_name)
    timings["phase"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    uv.write_ms(str(ms_path), run_check=False, clobber=True)
    add_model_corrected(ms_path)
    from casacore.tables import table

    with table(str(ms_path), readonly=False, ack=False) as t:
        stamp_pointing(t, metas[0].dec_rad, lon_fs)
        mark_corrected(t, False)  # CORRECTED_DATA is a copy of DATA until the apply stage
    timings["write"] = time.perf_counter() - t0
    ra, dec = centres[len(centres) // 2]
    return {"timings": timings, "phase_center_deg": (float(np.degrees(ra)), float(np.degrees(dec))),
            "mid_mjd": mid, "nonfinite": nonfinite}


def _stamp_identity(uv, ants, telescope_name: str) -> None:
    """Give the UVData the pipeline's telescope name and site, keeping absolute antenna positions."""
    from astropy.coordinates import EarthLocation
    import astropy.units as u

    uv.telescope.name = telescope_name
    uv.telescope.location = EarthLocation.from_geodetic(tel.SITE_LON_DEG * u.deg, tel.SITE_LAT_DEG * u.deg,
                                                        tel.SITE_ALT_M * u.m)
    set_antenna_positions(uv, ants)
    uv.vis_units = "Jy"


def add_model_corrected(ms_path: str | Path, chunk_rows: int = 16384) -> None:
    """Add MODEL_DATA (1 + 0j, as CASA's clearcal) and CORRECTED_DATA (= DATA) to every row."""
    from casacore.tables import makearrcoldesc, table

    with table(str(ms_path), readonly=False, ack=False) as t:
        shape = t.getcell("DATA", 0).shape
        for name in ("MODEL_DATA", "CORRECTED_DATA"):
            if name not in t.colnames():
                desc = makearrcoldesc(name, 0j, shape=list(shape), valuetype="complex", options=4,
                                      datamanagertype="TiledColumnStMan", datamanagergroup=f"{name}_group")
                t.addcols(desc)
        n = t.nrows()
        for r0 in range(0, n, chunk_rows):
            k = min(chunk_rows, n - r0)
            data = t.getcol("DATA", startrow=r0, nrow=k)
            t.putcol("CORRECTED_DATA", data, startrow=r0, nrow=k)
            t.putcol("MODEL_DATA", np.ones_like(data), startrow=r0, nrow=k)
