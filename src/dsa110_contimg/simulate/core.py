"""Simulate groups of DSA-110 subband files, plus their truth.

The stage function is :func:`simulate`: :class:`SimulateOptions` in,
:class:`SimulationResult` out.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from .. import telescope as tel
from ..catalog.calibrators import lookup_calibrator
from ..catalog.flux_models import spectral_index_at
from ..geometry import (SIDEREAL_DEG_PER_DAY, apparent_itrf_directions, meridian_itrf_direction, meridian_j2000,
                        meridian_uvw_matrix)
from ..telescope import GROUP_SECONDS, INTEGRATION_S
from ..timeconv import datetime_to_mjd as _mjd
from ..timeconv import mjd_to_datetime as _from_mjd
from .instrument import evaluate_gains, random_gains, unit_gains
from .kernels import complex_noise, per_visibility_sigma
from .options import SIDEREAL_DAY_S, SimulatedGroup, SimulateOptions, SimulationResult  # noqa: F401
from .presets import N_SUBBANDS, NSAMPLES, PRESETS, subband_frequencies
from .realism import setup_effects
from .rfi import make_injector, write_rfi_truth
from .sky import SkySource, default_field, read_sources_csv
from .truth import GroupTruth
from .uvh5_writer import SubbandHeader, write_subband_file
from .visibilities import SkyPredictor

log = logging.getLogger(__name__)

def _resolve_antpos(opts: SimulateOptions) -> Path:
    """``opts.antpos_csv``, else ``PIPELINE_ANTPOS_CSV``, else the station table shipped with the package."""
    if opts.antpos_csv is not None:
        return Path(opts.antpos_csv)
    from ..config import get_settings

    return tel.resolve_station_csv(get_settings().antpos_csv)


def _parse_time(text: str) -> datetime:
    dt = datetime.fromisoformat(text.replace("Z", ""))
    return dt.replace(tzinfo=None)


def _resolve_calibrator(opts: SimulateOptions) -> SkySource | None:
    if not opts.calibrator:
        return None
    spec = opts.calibrator.strip()
    parts = [p for p in spec.replace(" ", ",").split(",") if p]
    try:
        nums = [float(p) for p in parts]
    except ValueError:
        nums = None
    if nums is not None and len(nums) in (2, 3):
        flux = nums[2] if len(nums) == 3 else (opts.calibrator_flux_jy or 10.0)
        return SkySource(nums[0] % 360.0, nums[1], opts.calibrator_flux_jy or flux, -0.7, "calibrator")
    cal = lookup_calibrator(spec)
    if opts.calibrator_flux_jy is None and cal.model_name == "Perley-Butler 2017":
        # the flux standard, as a power law matched at 1.4 GHz (< 0.1% off across the band)
        return SkySource(cal.ra_deg, cal.dec_deg, float(cal.flux_at(1.4e9)), spectral_index_at(cal.name, 1.4e9),
                         cal.name)
    return SkySource(cal.ra_deg, cal.dec_deg, opts.calibrator_flux_jy or cal.flux_jy, cal.alpha, cal.name)


def _transit_start(cal: SkySource, after: datetime, dec_rad: float, lon_rad: float, duration_s: float) -> datetime:
    """Start time such that ``cal`` crosses the meridian at the group mid-time."""
    mid = _mjd(after) + duration_s / 2 / 86400.0
    for _ in range(3):
        ra_mer = np.degrees(meridian_j2000(dec_rad, [mid], lon_rad)[0, 0])
        mid += ((cal.ra_deg - ra_mer + 180.0) % 360.0 - 180.0) / SIDEREAL_DEG_PER_DAY
    if mid - duration_s / 2 / 86400.0 < _mjd(after) - 1e-9:
        mid += 360.0 / SIDEREAL_DEG_PER_DAY
    start = _from_mjd(mid - duration_s / 2 / 86400.0)
    return start.replace(microsecond=0)


def simulate(opts: SimulateOptions) -> SimulationResult:
    """Write ``opts.groups`` groups of 16 correlator-style UVH5 files and their truth, on ``opts.days`` sidereal days.

    Source fluxes follow their light curves (:mod:`.lightcurves`) integration by integration.

    Parameters
    ----------
    opts
        Simulation options.

    Returns
    -------
    SimulationResult
        Paths, timings and bytes written.
    """
    t_all = time.perf_counter()
    preset = PRESETS[opts.preset]
    out_dir = Path(opts.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(opts.seed)
    antpos_path = _resolve_antpos(opts)
    ants = tel.read_station_csv(antpos_path)
    active = list(preset.active_antennas)
    order = list(active)
    if opts.shuffle_antenna_order:
        order = list(np.random.default_rng(opts.seed + 7919).permutation(active))
    # correlator baseline layout: ant_1 = order[j], ant_2 = order[i], j <= i
    a1_names = np.array([order[j] for i in range(len(order)) for j in range(i + 1)])
    a2_names = np.array([order[i] for i in range(len(order)) for j in range(i + 1)])
    a1_idx, a2_idx = a1_names - 1, a2_names - 1
    bl_itrf = ants.ecef[a2_idx] - ants.ecef[a1_idx]
    nbl = len(a1_idx)
    autos = a1_idx == a2_idx

    cal = _resolve_calibrator(opts)
    dec_deg = opts.dec_deg if opts.dec_deg is not None else (cal.dec_deg if cal else 54.5734)
    dec_rad = np.radians(dec_deg)
    lon_fs = np.radians(opts.fringestop_lon_deg)
    s0 = meridian_itrf_direction(dec_rad, lon_fs)
    ntime = preset.n_integrations
    duration_s = ntime * INTEGRATION_S
    start = _parse_time(opts.start)
    if cal is not None:
        start = _transit_start(cal, start, dec_rad, lon_fs, duration_s)

    freqs = [subband_frequencies(sb, preset.channels_per_subband) for sb in range(N_SUBBANDS)]
    all_f = np.concatenate(freqs)
    f_lo = all_f.min() - preset.channel_width_hz / 2
    f_hi = all_f.max() + preset.channel_width_hz / 2
    t_ref = _mjd(start) + duration_s / 2 / 86400.0
    nant_tel = len(ants)
    if opts.gains:
        gm = random_gains(nant_tel, 2, rng, f_ref_hz=1.4e9, f_lo_hz=f_lo, f_hi_hz=f_hi, t_ref_mjd=t_ref,
                          amp_sigma=opts.gain_amp_sigma, delay_sigma_ns=opts.delay_sigma_ns,
                          phase_rate_sigma_deg_per_hour=opts.phase_drift_deg_per_hour)
    else:
        gm = unit_gains(nant_tel, 2, 1.4e9, f_lo, f_hi, t_ref)
    sigma = per_visibility_sigma(opts.sefd_jy, preset.channel_width_hz, INTEGRATION_S)
    hdr_site = tel.geodetic_to_ecef(tel.CORRELATOR_LAT_DEG, tel.CORRELATOR_LON_DEG, tel.CORRELATOR_ALT_M)
    rel_pos = ants.ecef - hdr_site
    uvw_ref = (meridian_uvw_matrix(dec_rad, lon_fs) @ bl_itrf.T).T.astype(np.float32)
    applied_delays = np.zeros((nant_tel, 2), dtype=int)
    if opts.gains:
        applied_delays = np.round(rng.uniform(0, 5000, (nant_tel, 2))).astype(int)

    csv_sources = read_sources_csv(opts.sources_csv) if opts.sources_csv else None
    if isinstance(opts.days, bool) or not isinstance(opts.days, int) or opts.days < 1:
        raise ValueError(f"days={opts.days!r} must be a positive integer")
    day_starts = _day_starts(start, opts.days, cal, dec_rad, lon_fs, duration_s)
    mids = [_mjd(d) + (g * GROUP_SECONDS + duration_s / 2) / 86400.0 for d in day_starts for g in range(opts.groups)]
    centres = np.degrees(meridian_j2000(dec_rad, mids, lon_fs))[:, 0]
    effects = setup_effects(opts, nant_tel, centres, dec_deg, _mjd(start), (float(centres[0]), dec_deg))
    fields: dict[int, list[SkySource]] = {}  # the default random field of each group, the same sky every day
    timings = dict(sky=0.0, visibilities=0.0, gains=0.0, noise=0.0, write=0.0)
    groups: list[SimulatedGroup] = []
    total_bytes = 0
    n_written = N_SUBBANDS if opts.subbands is None else len(opts.subbands)
    progress = _progress(opts.progress, opts.days * opts.groups * n_written)
    try:
        for day, g in ((d, g) for d in range(opts.days) for g in range(opts.groups)):
            gi = day * opts.groups + g
            g_start = day_starts[day] + timedelta(seconds=g * GROUP_SECONDS)
            mjd0 = _mjd(g_start)
            times = mjd0 + (np.arange(ntime) + 0.5) * INTEGRATION_S / 86400.0
            mid = mjd0 + duration_s / 2 / 86400.0
            t0 = time.perf_counter()
            if effects.sky is not None:
                sources = effects.group_sources(float(centres[gi]), dec_deg, opts.sky_radius_deg)
            elif csv_sources is not None:
                sources = list(csv_sources)
            else:
                if g not in fields:
                    ra_mid, _ = np.degrees(meridian_j2000(dec_rad, [mid], lon_fs)[0])
                    fields[g] = default_field(ra_mid, dec_deg, opts.n_sources, rng, prefix=f"g{g}_src")
                sources = list(fields[g])
            if cal is not None and g == 0:
                sources = [cal] + sources
            ra = np.radians([s.ra_deg for s in sources])
            dec = np.radians([s.dec_deg for s in sources])
            dirs = apparent_itrf_directions(ra, dec, times)  # (Nt, Nsrc, 3)
            gm_g = effects.group_gains(gm, times)
            gains_all = evaluate_gains(gm_g, all_f, times)  # (Nant, Nt, Nchan_all, 2)
            sky = SkyPredictor(sources, dirs, s0, times, all_f, bl_itrf, a1_idx, a2_idx, ants.ecef, opts.predict,
                               effects.pointing, effects.screen,
                               opts.sky_min_apparent_jy if effects.sky is not None else None)
            timings["sky"] += time.perf_counter() - t0
            jitter = rng.integers(-int(opts.jitter_s), int(opts.jitter_s) + 1, N_SUBBANDS) if opts.jitter_s else \
                np.zeros(N_SUBBANDS, int)
            files = []
            rfi = make_injector(opts.rfi, opts.seed, gi, ntime, all_f.size, bl_itrf, autos, sigma)
            for sb in range(N_SUBBANDS):
                if opts.subbands is not None and sb not in opts.subbands:
                    continue
                f = freqs[sb]
                t0 = time.perf_counter()
                c0 = sb * f.size
                vis = sky.subband(c0, f.size)  # (Nt, Nbl, Nch, 2), XX = YY = I without per-antenna beams
                if rfi is not None:
                    rfi.inject(vis, sb, c0)
                timings["visibilities"] += time.perf_counter() - t0
                t0 = time.perf_counter()
                if opts.noise:
                    noise = complex_noise(vis.shape, sigma, rng)
                    noise[:, autos] = noise[:, autos].real * np.sqrt(2.0)
                    vis += noise
                vis[:, autos] += opts.sefd_jy
                timings["noise"] += time.perf_counter() - t0
                t0 = time.perf_counter()
                gsb = gains_all[:, :, c0:c0 + f.size, :]
                vis *= gsb[a1_idx].transpose(1, 0, 2, 3) * np.conj(gsb[a2_idx]).transpose(1, 0, 2, 3)
                vis[:, autos] = vis[:, autos].real
                timings["gains"] += time.perf_counter() - t0
                t0 = time.perf_counter()
                visdata = vis.reshape(ntime * nbl, f.size, 2).astype(np.complex64)
                flags = np.zeros(visdata.shape, dtype=bool)
                if opts.flag_fraction > 0:
                    flags = rng.uniform(size=visdata.shape) < opts.flag_fraction
                nsamples = np.full(visdata.shape, NSAMPLES, dtype=np.float32)
                name = (g_start + timedelta(seconds=int(jitter[sb]))).strftime("%Y-%m-%dT%H:%M:%S")
                hdr = SubbandHeader(
                    latitude_deg=tel.CORRELATOR_LAT_DEG, longitude_deg=tel.CORRELATOR_LON_DEG,
                    altitude_m=tel.CORRELATOR_ALT_M, antenna_names=list(ants.names),
                    antenna_numbers=ants.numbers, antenna_positions=rel_pos,
                    ant_1_array=np.tile(a1_idx, ntime), ant_2_array=np.tile(a2_idx, ntime),
                    uvw_array=np.tile(uvw_ref, (ntime, 1)), time_array=np.repeat(times + 2400000.5, nbl),
                    integration_time=np.full(ntime * nbl, INTEGRATION_S), freq_array=f,
                    channel_width=preset.channel_width_hz, nants_data=len(active), ntimes=ntime,
                    phase_center_dec_rad=float(dec_rad), applied_delays_ns=applied_delays,
                )
                path = write_subband_file(out_dir / f"{name}_sb{sb:02d}.hdf5", hdr, visdata, flags, nsamples)
                total_bytes += path.stat().st_size
                files.append(path)
                timings["write"] += time.perf_counter() - t0
                if progress is not None:
                    progress[0].advance(progress[1])
            src_rows = []
            for k, s in enumerate(sky.sources):
                row = s.to_dict()
                row["apparent_flux_jy"] = float(sky.apparent[k])
                row["beam_mid"] = float(sky.beam_mid[k])
                row["intrinsic_flux_jy"] = float(sky.intrinsic[k])
                row["flux_1p4_jy"] = float(sky.f14[k].mean())
                row["beam_mean"] = float(sky.beam_mean[k])
                src_rows.append(row)
            rfi_info, rname = None, f"{g_start.strftime('%Y-%m-%dT%H:%M:%S')}_rfi.npz"
            if rfi is not None:
                write_rfi_truth(out_dir / rname, rfi, a1_idx, a2_idx, {sb: freqs[sb] for sb in rfi.masks}, times)
                rfi_info = rfi.to_dict(all_f, rname)
            truth = GroupTruth(
                group_start_iso=g_start.strftime("%Y-%m-%dT%H:%M:%S"), files=[p.name for p in files],
                preset=preset.name, seed=opts.seed, pointing_dec_deg=float(dec_deg),
                fringestop_lon_deg=opts.fringestop_lon_deg, times_mjd=[float(t) for t in times],
                integration_s=INTEGRATION_S, freqs_hz=[fr.tolist() for fr in freqs],
                channel_width_hz=preset.channel_width_hz, active_antennas=[int(a) for a in active],
                antenna_order=[int(a) for a in order], antpos_source=str(antpos_path), sources=src_rows,
                gains=gm_g.to_dict(), noise={"enabled": opts.noise, "sefd_jy": opts.sefd_jy,
                                           "sigma_per_vis_jy": sigma},
                flag_fraction=opts.flag_fraction, calibrator=cal.to_dict() if (cal and g == 0) else None,
                rfi=rfi_info, effects={**effects.to_dict(opts), "predict": sky.method},
            )
            tpath = truth.to_json(out_dir / f"{g_start.strftime('%Y-%m-%dT%H:%M:%S')}_truth.json")
            if opts.truth_image_like is not None:
                from .truth_image import write_truth_image

                write_truth_image(truth, opts.truth_image_like, out_dir / f"{truth.group_start_iso}_truth_image.fits")
            groups.append(SimulatedGroup(truth.group_start_iso, files, tpath, float(mid)))
    finally:
        if progress is not None:
            progress[0].stop()
    wall = time.perf_counter() - t_all
    log.info("simulated %d group(s), %d files, %.1f MB in %.1f s", len(groups), len(groups) * N_SUBBANDS,
             total_bytes / 1e6, wall)
    return SimulationResult(groups=groups, wall_s=wall, bytes_written=total_bytes, timings=timings)


def _day_starts(start: datetime, days: int, cal: SkySource | None, dec_rad: float, lon_rad: float,
                duration_s: float) -> list[datetime]:
    """Start of the first group of each day: a sidereal day apart, or at that day's calibrator transit."""
    out = [start]
    for d in range(1, days):
        nominal = start + timedelta(seconds=d * SIDEREAL_DAY_S)
        if cal is None:
            out.append((nominal + timedelta(microseconds=500_000)).replace(microsecond=0))
        else:
            out.append(_transit_start(cal, nominal - timedelta(seconds=duration_s), dec_rad, lon_rad, duration_s))
    return out


def _progress(enabled: bool, total: int):
    if not enabled:
        return None
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    p = Progress(TextColumn("simulating"), BarColumn(), TextColumn("{task.completed}/{task.total} files"),
                 TimeRemainingColumn())
    p.start()
    return p, p.add_task("sim", total=total)
