"""Self-calibration (issue 16): the gain solver against injected truth and pinned to CASA gaincal, and the round
loop on a small group whose CORRECTED_DATA carries residual antenna phase errors (injected, known)."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from dsa110_contimg.calibration import gainsolve as gs

PHASE_SIGMA_DEG, DRIFT_SIGMA_DEG = 35.0, 25.0
"""Residual phase errors injected per antenna and polarization: an offset, and a drift over the group."""


def _random_problem(rng, n_ant=12, n_slot=3, npol=2, amp_sigma=0.0):
    g = np.exp(1j * rng.uniform(-np.pi, np.pi, (n_slot, npol, n_ant))) * \
        (1 + amp_sigma * rng.standard_normal((n_slot, npol, n_ant)))
    m = rng.standard_normal((n_ant, n_ant)) + 1j * rng.standard_normal((n_ant, n_ant))
    m = m + np.conj(m.T)
    np.fill_diagonal(m, 0)
    v = g[..., :, None] * np.conj(g[..., None, :]) * m  # (slot, pol, ant, ant)
    x = v * np.conj(m)
    y = np.broadcast_to((m * np.conj(m)).real, x.shape).copy()
    return g, x, y


@pytest.mark.parametrize("phase_only", [True, False])
def test_solver_recovers_exact_gains(phase_only):
    rng = np.random.default_rng(1)
    g, x, y = _random_problem(rng, amp_sigma=0.0 if phase_only else 0.2)
    sol, ok = gs.solve_gains(x, y, phase_only, refant=3)
    assert ok.all()
    want = g * np.conj(g[..., 3:4]) / np.abs(g[..., 3:4])  # referred to antenna 3
    np.testing.assert_allclose(sol, want, atol=1e-8)
    assert np.allclose(np.angle(sol[..., 3]), 0)


def test_solint_parsing_and_slots():
    assert gs.parse_solint("inf") is None and gs.parse_solint("int") == 0.0
    assert gs.parse_solint("2min") == 120.0 and gs.parse_solint("45s") == 45.0 and gs.parse_solint("30") == 30.0
    with pytest.raises(ValueError, match="solution interval"):
        gs.parse_solint("soon")
    t = np.repeat(np.arange(24) * 12.884902, 3)  # 24 integrations, 3 rows each
    s, n = gs.slot_index(t, 60.0)
    assert n == 5 and s[0] == 0 and s[-1] == 4  # 309 s in 60 s: the 9 s sliver joins the last interval
    assert gs.slot_index(t, 0.0)[1] == 24 and gs.slot_index(t, None)[1] == 1


def test_apply_then_unapply_is_exact():
    rng = np.random.default_rng(2)
    n_ant, nrow = 6, 40
    a1, a2 = rng.integers(0, n_ant, nrow), rng.integers(0, n_ant, nrow)
    slot = rng.integers(0, 2, nrow)
    gains = np.exp(1j * rng.uniform(-3, 3, (2, 2, n_ant))) * rng.uniform(0.5, 1.5, (2, 2, n_ant))
    vis = rng.standard_normal((nrow, 4, 2)) + 1j * rng.standard_normal((nrow, 4, 2))
    back = gs.unapply_gains(gs.apply_gains(vis, gains, a1, a2, slot), gains, a1, a2, slot)
    np.testing.assert_allclose(back, vis, rtol=1e-12)
    one = gs.apply_gains(vis, gains, a1, a2, slot)[0, 0, 1]
    assert one == pytest.approx(vis[0, 0, 1] / (gains[slot[0], 1, a1[0]] * np.conj(gains[slot[0], 1, a2[0]])))


# --------------------------------------------------------------------------- on a Measurement Set


@pytest.fixture(scope="module")
def group(tmp_path_factory, antpos_csv):
    """A small target group (unit gains, noise) whose CORRECTED_DATA = DATA x injected residual phase errors,
    marked calibrated; the injected phases per (integration, pol, antenna)."""
    from casacore.tables import table

    from dsa110_contimg.conversion.convert import ConvertOptions, convert_group
    from dsa110_contimg.conversion.grouping import discover_groups
    from dsa110_contimg.ms import mark_corrected
    from dsa110_contimg.simulate.core import SimulateOptions, simulate
    from dsa110_contimg.simulate.sky import SkySource, write_sources_csv
    from dsa110_contimg.simulate.truth import GroupTruth

    from imaging_helpers import meridian_centre

    root = tmp_path_factory.mktemp("selfcal")
    start = "2025-10-02T10:00:00"
    dec0 = 54.57
    ra0 = meridian_centre(start, dec0)
    rng = np.random.default_rng(5)
    srcs = [SkySource(ra0 + dx / math.cos(math.radians(dec0)), dec0 + dy, f, -0.7, f"s{i}")
            for i, (dx, dy, f) in enumerate(zip(rng.uniform(-0.5, 0.5, 5), rng.uniform(-0.5, 0.5, 5),
                                                [3.0, 2.0, 1.5, 1.0, 0.8]))]
    write_sources_csv(srcs, root / "sky.csv")
    sim = simulate(SimulateOptions(output_dir=root / "incoming", preset="small", sources_csv=root / "sky.csv",
                                   gains=False, sefd_jy=1500.0, antpos_csv=antpos_csv, seed=8, start=start,
                                   dec_deg=dec0, jitter_s=0))
    ms = convert_group(discover_groups(root / "incoming")[0],
                       ConvertOptions(output_dir=root / "ms", antpos_csv=antpos_csv, stage_dir=root / "stage")).ms_path
    with table(str(ms), readonly=False, ack=False) as t:
        n_ant = table(str(ms / "ANTENNA"), ack=False).nrows()
        times = t.getcol("TIME")
        uniq, it = np.unique(times, return_inverse=True)
        frac = (uniq - uniq[0]) / max(uniq[-1] - uniq[0], 1.0) - 0.5
        off = np.radians(PHASE_SIGMA_DEG) * rng.standard_normal((2, n_ant))
        drift = np.radians(DRIFT_SIGMA_DEG) * rng.standard_normal((2, n_ant))
        phase = off[None] + drift[None] * frac[:, None, None]  # (time, pol, ant)
        g = np.exp(1j * phase)
        a1, a2 = t.getcol("ANTENNA1"), t.getcol("ANTENNA2")
        data = t.getcol("DATA")
        t.putcol("CORRECTED_DATA", gs.unapply_gains(data, g, a1, a2, it).astype(data.dtype))
        mark_corrected(t, True, "test-residual-phases")
    return {"ms": ms, "truth": GroupTruth.from_json(sim.groups[0].truth_path), "phase": phase, "root": root}


def test_ms_solver_pinned_to_casa_gaincal(group, tmp_path):
    """DATA = the injected gains x MODEL_DATA exactly: our per-integration phases equal gaincal's (calmode 'p')."""
    from casacore.tables import table
    from casatasks import gaincal

    from dsa110_contimg.selfcal.msgains import solve_ms

    ms = tmp_path / "pin.ms"
    shutil.copytree(group["ms"], ms)
    with table(str(ms), readonly=False, ack=False) as t:
        if "MODEL_DATA" not in t.colnames():
            from casacore.tables import makecoldesc

            t.addcols(makecoldesc("MODEL_DATA", t.getcoldesc("DATA")))
        t.putcol("MODEL_DATA", t.getcol("DATA"))
        t.putcol("DATA", t.getcol("CORRECTED_DATA"))
        names = table(str(ms / "ANTENNA"), ack=False).getcol("NAME")
    ours = solve_ms(ms, "int", True, data_column="DATA")  # its reference: the antenna with the most data
    refant = ours.refant
    caltable = tmp_path / "p.G"
    gaincal(vis=str(ms), caltable=str(caltable), solint="int", calmode="p", refant=names[refant], gaintype="G",
            minsnr=0.0, minblperant=4, uvrange=">1m")
    with table(str(caltable), ack=False) as ct:
        cparam, ant, ctime, flag = ct.getcol("CPARAM"), ct.getcol("ANTENNA1"), ct.getcol("TIME"), ct.getcol("FLAG")
    slot = np.abs(ours.times_s[None, :] - ctime[:, None]).argmin(axis=1)  # the solution's integration
    compared = 0
    for pol in range(2):
        good = ~flag[:, 0, pol] & ours.ok[slot, pol, ant]
        d = np.angle(cparam[good, 0, pol] * np.conj(ours.gains[slot[good], pol, ant[good]]), deg=True)
        assert np.abs(d).max() < 0.5, np.abs(d).max()
        compared += int(good.sum())
    assert compared == ours.n_solved == 6 * 2 * 24  # every integration, polarization and active antenna
    # and both are the injected phases referred to the reference antenna
    inj = np.exp(1j * group["phase"])
    want = inj * np.conj(inj[..., refant:refant + 1])
    assert np.abs(np.angle(ours.gains * np.conj(want), deg=True)[ours.ok]).max() < 0.5


def test_selfcal_removes_residual_phase_errors(group, tmp_path):
    from casacore.tables import table

    from dsa110_contimg.selfcal.run import SelfcalOptions, selfcal_ms

    from astropy.io import fits

    from dsa110_contimg.qa.sources import robust_rms
    from imaging_helpers import fit_point_source, offset_arcsec

    ms = tmp_path / "sc.ms"
    shutil.copytree(group["ms"], ms)
    res = selfcal_ms(ms, SelfcalOptions(phase_solints=("inf", "60s", "int", "int", "int"), imsize=768, niter=3000,
                                        keep_images=True), work_dir=tmp_path / "work")
    r = res.rounds
    print(res.summary(), [(x.solint, x.accepted, round(1e3 * x.rms_jy, 2), x.reason) for x in r])
    assert r[0].accepted and res.n_accepted >= 2 and res.reference_origin == "peaks" and res.n_references >= 3
    assert res.rms_after_jy < 0.5 * res.rms_before_jy
    assert all(x.flux_ratio is None or x.flux_ratio > 0.97 for x in r if x.accepted)
    # the data: CORRECTED_DATA / DATA is now nearly free of antenna phases
    with table(str(ms), ack=False) as t:
        corr, data = t.getcol("CORRECTED_DATA"), t.getcol("DATA")
        a1, a2 = t.getcol("ANTENNA1"), t.getcol("ANTENNA2")
        times = t.getcol("TIME")
    cross = a1 != a2
    resid = np.angle(np.sum(corr[cross] * np.conj(data[cross]), axis=1), deg=True)  # (row, pol)
    it = np.unique(times, return_inverse=True)[1][cross]
    ph = group["phase"]  # (time, pol, ant)
    injected = np.degrees(np.angle(np.exp(1j * (ph[it, :, a1[cross]] - ph[it, :, a2[cross]]))))
    rms_in, rms_out = np.sqrt(np.mean(injected ** 2)), np.sqrt(np.mean(resid ** 2))
    print(f"baseline phase errors: injected rms {rms_in:.1f} deg, after self-calibration {rms_out:.1f} deg")
    assert rms_in > 40 and rms_out < 0.4 * rms_in
    # the reference: the same group imaged with the same settings without the injected errors (ideal calibration)
    from dsa110_contimg.imaging.wsclean import WSCleanOptions, run_wsclean

    ideal_ms = tmp_path / "ideal.ms"
    shutil.copytree(group["ms"], ideal_ms)
    with table(str(ideal_ms), readonly=False, ack=False) as t:
        t.putcol("CORRECTED_DATA", t.getcol("DATA"))
    opts = SelfcalOptions()
    cell = fits.getheader(tmp_path / "work" / "round0-image.fits")["CDELT2"] * 3600
    ideal = run_wsclean(ideal_ms, tmp_path / "ideal", WSCleanOptions(
        size=768, scale_arcsec=cell, niter=3000, weight=opts.weight, data_column="CORRECTED_DATA",
        auto_threshold=opts.auto_threshold, auto_mask=opts.auto_mask))
    last = [x for x in r if x.accepted][-1]
    images = {"before": tmp_path / "work" / "round0-image.fits", "after": tmp_path / "work" / f"round{last.index}-image.fits",
              "ideal": ideal.image}
    ideal_rms = robust_rms(fits.getdata(ideal.residual).squeeze())
    print(f"residual rms (mJy/beam): before {1e3 * res.rms_before_jy:.2f}, after {1e3 * res.rms_after_jy:.2f}, "
          f"ideal {1e3 * ideal_rms:.2f}")
    assert res.rms_after_jy < 1.2 * ideal_rms  # the yardstick
    checked = 0
    for s in group["truth"].sources:
        if s["apparent_flux_jy"] < 0.5:
            continue
        fit = {k: _fit(p, s) for k, p in images.items()}
        if fit["before"] is None:  # imfit finds no component: the errors smeared the source out
            fit["before"] = {"peak": 0.0}
        beam = math.sqrt(fit["ideal"]["bmaj_arcsec"] * fit["ideal"]["bmin_arcsec"])
        off = offset_arcsec(fit["after"]["ra_deg"], fit["after"]["dec_deg"], fit["ideal"]["ra_deg"],
                            fit["ideal"]["dec_deg"])
        print(s["name"], {k: round(f["peak"], 3) for k, f in fit.items()}, f"offset {off:.1f}\" (beam {beam:.0f}\")")
        assert fit["after"]["peak"] == pytest.approx(fit["ideal"]["peak"], rel=0.03), s["name"]
        assert off < beam / 5, s["name"]  # phase-only self-calibration keeps the first image's astrometry
        assert fit["before"]["peak"] < 0.9 * fit["ideal"]["peak"], s["name"]  # the errors mattered
        checked += 1
    assert checked >= 3


def _fit(image, s):
    """imfit of the source (None when imfit finds no component in a box of 6, 10 or 16 pixels)."""
    from imaging_helpers import fit_point_source

    for box in (10, 6, 16):
        try:
            return fit_point_source(image, s["ra_deg"], s["dec_deg"], box_pix=box)
        except KeyError:
            continue
    return None


def test_selfcal_refuses_uncalibrated_data(group, tmp_path):
    from casacore.tables import table

    from dsa110_contimg.ms import mark_corrected
    from dsa110_contimg.selfcal.run import SelfcalError, selfcal_ms

    ms = tmp_path / "raw.ms"
    shutil.copytree(group["ms"], ms)
    with table(str(ms), readonly=False, ack=False) as t:
        mark_corrected(t, False)
    with pytest.raises(SelfcalError, match="no applied calibration"):
        selfcal_ms(ms)


def test_selfcal_command(group, tmp_path, monkeypatch):
    """``contimg selfcal MS --phase-solint inf --json F``: prints the rounds, writes them, leaves the MS improved."""
    import json

    from click.testing import CliRunner

    from dsa110_contimg.cli.selfcal import selfcal_cmd

    monkeypatch.setenv("PIPELINE_STATE_DIR", str(tmp_path / "state"))
    ms = tmp_path / "cli.ms"
    shutil.copytree(group["ms"], ms)
    out = tmp_path / "rounds.json"
    r = CliRunner().invoke(selfcal_cmd, [str(ms), "--phase-solint", "inf", "--phase-solint", "int", "--imsize", "512",
                                         "--niter", "1000", "--json", str(out)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert "round 0" in r.output and "round 1 p    inf" in r.output and "self-calibrated cli.ms" in r.output
    rounds = json.loads(out.read_text())["rounds"]
    assert [x["solint"] for x in rounds] == [None, "inf", "int"][:len(rounds)] and rounds[1]["accepted"]
    assert rounds[1]["rms_jy"] < 0.8 * rounds[0]["rms_jy"]
    bad = CliRunner().invoke(selfcal_cmd, [str(ms), "--phase-solint", "soon"])
    assert bad.exit_code != 0 and "solution interval" in bad.output


def test_solution_slots_follow_the_averaged_rows():
    from dsa110_contimg.selfcal.msgains import GainSolution, solution_slots

    full = np.repeat(1e9 + np.arange(24) * 12.884902, 5)
    avg = np.unique(full).reshape(12, 2).mean(axis=1)
    for solint in ("60s", "int", "inf"):
        slot_avg, n = gs.slot_index(avg, gs.parse_solint(solint))
        sol = GainSolution(solint, True, np.ones((n, 2, 3), complex), np.ones((n, 2, 3), bool), avg, 0)
        got = solution_slots(full, sol)
        assert np.array_equal(got, np.repeat(np.repeat(slot_avg, 2), 5))  # each integration: its averaged row's
        same = GainSolution(solint, True, sol.gains, sol.ok, np.unique(full), 0)
        assert np.array_equal(solution_slots(full, same), gs.slot_index(full, gs.parse_solint(solint))[0])


@pytest.mark.parametrize("time_bin", [1, 2])
def test_averaged_rounds_match_full_resolution(group, tmp_path, time_bin):
    """Rounds on the data averaged 4x in frequency, and also 2x in time (how a full-size group is
    self-calibrated), correct the full-resolution MS as rounds on the full resolution do: residual rms within
    10%, gains within 3 deg."""
    from casacore.tables import table

    from dsa110_contimg.selfcal.run import SelfcalOptions, selfcal_ms

    out = {}
    for label, channels, tbin in (("full", None, 1), ("avg", 24, time_bin)):
        ms = tmp_path / f"{label}.ms"
        shutil.copytree(group["ms"], ms)
        res = selfcal_ms(ms, SelfcalOptions(phase_solints=("inf", "int"), imsize=512, niter=1000, channels=channels,
                                            time_bin=tbin), work_dir=tmp_path / f"work_{label}")
        assert res.n_accepted >= 1 and not (tmp_path / f"work_{label}" / f"{ms.stem}.avg.ms").exists()
        with table(str(ms), ack=False) as t:
            assert t.getcell("CORRECTED_DATA", 0).shape[0] == t.getcell("DATA", 0).shape[0]  # still full resolution
            out[label] = (res, t.getcol("CORRECTED_DATA"), t.getcol("ANTENNA1") != t.getcol("ANTENNA2"))
    (r_full, c_full, cross), (r_avg, c_avg, _) = out["full"], out["avg"]
    assert r_avg.rms_after_jy == pytest.approx(r_full.rms_after_jy, rel=0.1)
    assert r_avg.timings.get("apply_full", 0) > 0 and "apply_full" not in r_full.timings
    dphi = np.degrees(np.abs(np.angle(c_avg[cross] / c_full[cross])))
    assert np.nanmedian(dphi) < 3.0, np.nanmedian(dphi)


def test_image_stage_self_calibrates_target_groups_only(group, tmp_path, antpos_csv):
    """The chain has self-calibration options by default (PIPELINE_SELFCAL=0 removes them); the image stage then self-calibrates a target
    group before imaging (its rounds in the image's QA, its time in the stage's timings), not a calibrator group."""
    from dsa110_contimg.config import ConfigError, load_settings
    from dsa110_contimg.pipeline.chain import ChainConfig, StageJob, run_image, selfcal_options
    from dsa110_contimg.selfcal.run import SelfcalOptions
    from imaging_helpers import pipeline_env

    env = pipeline_env(tmp_path / "site", antpos_csv)
    assert isinstance(selfcal_options(load_settings(env, create_dirs=False)), SelfcalOptions)  # on by default
    assert selfcal_options(load_settings({**env, "PIPELINE_SELFCAL": "0"}, create_dirs=False)) is None
    with pytest.raises(ConfigError, match="PIPELINE_SELFCAL"):
        load_settings({**env, "PIPELINE_SELFCAL": "maybe"}, create_dirs=False)
    cfg = ChainConfig(output_dir=tmp_path, stage_dir=tmp_path, antpos_csv=None, telescope_name="OVRO_DSA",
                      cal_registry_db=tmp_path / "cal.sqlite3",
                      selfcal=SelfcalOptions(phase_solints=("inf",), imsize=512, niter=1000))
    ms = tmp_path / "target.ms"
    shutil.copytree(group["ms"], ms)
    out = run_image(StageJob("2025-10-02T10:00:00", {}, ms, cfg))
    sc = out.payload.qa.selfcal
    assert sc is not None and len(sc["rounds"]) == 2 and sc["rounds"][1]["solint"] == "inf"
    assert out.timings["selfcal"] > 0 and out.timings["image"] > 0
    cal = tmp_path / "calgroup.ms"
    shutil.copytree(group["ms"], cal)
    out_cal = run_image(StageJob("2025-10-02T10:00:00", {}, cal, cfg, calibrator="3C147"))
    assert out_cal.payload.qa.selfcal is None and "selfcal" not in out_cal.timings
