"""The direct-subband writer: h5py reads, numpy rephasing, python-casacore writes."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..geometry import apparent_itrf_directions, j2000_uvw_matrices, meridian_itrf_direction
from ..ms import mark_corrected, stamp_pointing
from ..telescope import site_ecef
from ..timeconv import mjd_to_ms_seconds
from .group_meta import group_geometry, read_group_metas
from .grouping import SubbandGroup
from .kernels import combine_nsample_sums, nsample_sums, rephase, to_ms_orientation
from .ms_writer import CORR_XX, CORR_YY, MSLayout, create_ms
from .reader import flag_nonfinite_subband, read_data

MODEL_CHUNK_ROWS = 16384


def write_direct(group: SubbandGroup, ms_path: Path, opts, metas: list | None = None) -> dict:
    """Write one group as an MS with one 768-channel spectral window.

    NaN/Inf visibilities are flagged and set to 0 (counted per subband).

    Parameters
    ----------
    group
        The subband files.
    ms_path
        MS to create (in the staging area).
    opts : ConvertOptions
        Conversion options.
    metas
        The group's headers from :func:`~dsa110_contimg.conversion.group_meta.read_group_metas` (``None``: read them).

    Returns
    -------
    dict
        ``timings``, ``phase_center_deg``, ``mid_mjd``, ``nonfinite`` (subband -> NaN/Inf samples flagged).

    Raises
    ------
    ConversionInputError
        A subband file that cannot be read or whose visibilities are all NaN/Inf.
    """
    timings = {"load": 0.0, "phase": 0.0, "write": 0.0, "combine": 0.0}
    t0 = time.perf_counter()
    metas = metas if metas is not None else read_group_metas(group)
    m0 = metas[0]
    ants, lon_fs, mjd, tidx, mid, centres, names = group_geometry(metas, opts)
    timings["load"] += time.perf_counter() - t0

    # --- geometry: w-terms of the correlator's meridian and of the new phase centre(s), UVW per integration
    t0 = time.perf_counter()
    a1, a2 = m0.ant_1.astype(int), m0.ant_2.astype(int)
    num_to_idx = np.full(int(max(ants.numbers.max(), a1.max(), a2.max())) + 1, -1)
    num_to_idx[ants.numbers] = np.arange(len(ants))
    i1, i2 = num_to_idx[a1], num_to_idx[a2]
    b_file = ants.ecef[i2] - ants.ecef[i1]
    w_old = b_file @ meridian_itrf_direction(m0.dec_rad, lon_fs)
    swapped = i1 > i2
    ms_a1, ms_a2 = np.minimum(i1, i2), np.maximum(i1, i2)
    b_ms = ants.ecef[ms_a1] - ants.ecef[ms_a2]
    nrec = len(a1)
    uvw = np.empty((nrec, 3))
    delta_w = np.empty(nrec)
    field_id = np.zeros(nrec, dtype=np.int32)
    for it in range(len(mjd)):
        sel = tidx == it
        k = it if opts.phase_per_integration else 0
        ra, dec = centres[k]
        s_app = apparent_itrf_directions([ra], [dec], [mjd[it]])[0, 0]
        delta_w[sel] = b_file[sel] @ s_app - w_old[sel]
        uvw[sel] = b_ms[sel] @ j2000_uvw_matrices(ra, dec, [mjd[it]])[0].T
        field_id[sel] = k
    timings["phase"] += time.perf_counter() - t0

    # --- frequency grid of the full group (missing subbands keep their place, flagged)
    nchan_sb = m0.nfreqs
    width = m0.channel_width_hz
    ref_sb = min(group.files)
    ref_first = metas[0].freqs_hz.max()
    nsb = max(opts.expected_subbands, max(group.files) + 1)
    npol = m0.npols
    sb_top = {sb: ref_first - (sb - ref_sb) * nchan_sb * width for sb in range(nsb)}
    freqs = np.sort(np.concatenate([sb_top[sb] - np.arange(nchan_sb) * width for sb in range(nsb)]))
    vis_all = np.zeros((nrec, freqs.size, npol), dtype=np.complex64)
    flags_all = np.ones((nrec, freqs.size, npol), dtype=bool)
    sums = {sb: None for sb in group.files}  # per subband: (sum of good nsamples, good count, all flagged)
    nonfinite = {sb: 0 for sb in group.files}

    def work(sb: int) -> float:
        ts = time.perf_counter()
        vis, flags, nsamples = read_data(group.files[sb].path)
        nonfinite[sb] = flag_nonfinite_subband(group.files[sb].path, vis, flags)
        meta_f = metas[sorted(group.files).index(sb)].freqs_hz
        order = slice(None, None, -1) if np.all(np.diff(meta_f) < 0) else np.argsort(meta_f)
        f_sb = meta_f[order]
        vis, flags, nsamples = vis[:, order], flags[:, order], nsamples[:, order]
        tl = time.perf_counter() - ts
        rephase(vis, delta_w, f_sb)
        to_ms_orientation(vis, swapped)
        c0 = int(np.searchsorted(freqs, f_sb[0] - width / 4))
        vis_all[:, c0:c0 + nchan_sb] = vis
        flags_all[:, c0:c0 + nchan_sb] = flags
        sums[sb] = nsample_sums(nsamples, flags)
        return tl

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=max(1, opts.threads)) as pool:
        load_parts = list(pool.map(work, sorted(group.files)))
    elapsed = time.perf_counter() - t0
    load = min(sum(load_parts) / max(1, opts.threads), elapsed)
    timings["load"] += load
    timings["phase"] += elapsed - load

    # --- write the MS
    t0 = time.perf_counter()
    weights, flag_row = combine_nsample_sums(list(sums.values()), nrec, npol)
    t_sec = mjd_to_ms_seconds(mjd)
    int_time = float(np.median(m0.int_time_s))
    corr = [CORR_XX, CORR_YY][:npol] if list(m0.pols[:2]) == [-5, -6] else [CORR_XX + i for i in range(npol)]
    layout = MSLayout(
        antennas=ants, telescope_name=opts.telescope_name, array_position=site_ecef(),
        freqs_hz=freqs, channel_width_hz=width, corr_types=corr, field_names=names,
        field_dirs_rad=centres,
        field_times_s=t_sec if opts.phase_per_integration else np.array([mjd_to_ms_seconds(mid)]),
        time_range_s=(float(t_sec[0] - int_time / 2), float(t_sec[-1] + int_time / 2)),
        history=f"converted from {len(group.files)} subband files of group {group.group_id}",
    )
    ms = create_ms(ms_path, nrec, layout)
    try:
        ms.putcol("TIME", t_sec[tidx])
        ms.putcol("TIME_CENTROID", t_sec[tidx])
        ms.putcol("INTERVAL", m0.int_time_s)
        ms.putcol("EXPOSURE", m0.int_time_s)
        ms.putcol("ANTENNA1", ms_a1.astype(np.int32))
        ms.putcol("ANTENNA2", ms_a2.astype(np.int32))
        ms.putcol("FEED1", np.zeros(nrec, np.int32))
        ms.putcol("FEED2", np.zeros(nrec, np.int32))
        ms.putcol("DATA_DESC_ID", np.zeros(nrec, np.int32))
        ms.putcol("FIELD_ID", field_id)
        ms.putcol("SCAN_NUMBER", np.ones(nrec, np.int32))
        ms.putcol("ARRAY_ID", np.zeros(nrec, np.int32))
        ms.putcol("OBSERVATION_ID", np.zeros(nrec, np.int32))
        ms.putcol("PROCESSOR_ID", np.zeros(nrec, np.int32))
        ms.putcol("STATE_ID", np.full(nrec, -1, np.int32))
        ms.putcol("UVW", uvw)
        ms.putcol("WEIGHT", weights)
        ms.putcol("SIGMA", np.divide(1.0, np.sqrt(weights), out=np.zeros_like(weights), where=weights > 0))
        ms.putcol("FLAG_ROW", flag_row)
        ms.putcol("FLAG", flags_all)
        ms.putcol("DATA", vis_all)
        ms.putcol("CORRECTED_DATA", vis_all)
        ms.putcolkeyword("DATA", "QuantumUnits", ["Jy"])
        stamp_pointing(ms, m0.dec_rad, lon_fs)
        mark_corrected(ms, False)  # CORRECTED_DATA is a copy of DATA until the apply stage
        ones = np.ones((min(MODEL_CHUNK_ROWS, nrec), freqs.size, npol), dtype=np.complex64)
        for r0 in range(0, nrec, MODEL_CHUNK_ROWS):
            n = min(MODEL_CHUNK_ROWS, nrec - r0)
            ms.putcol("MODEL_DATA", ones[:n], startrow=r0, nrow=n)
    finally:
        ms.close()
    timings["write"] += time.perf_counter() - t0
    ra, dec = centres[len(centres) // 2]
    return {"timings": timings, "phase_center_deg": (float(np.degrees(ra)), float(np.degrees(dec))),
            "mid_mjd": mid, "nonfinite": nonfinite}
