"""Calibration against injected truth: transit finder, K/B/G solves, registry, apply, images."""

import shutil
from pathlib import Path

import numpy as np
import pytest

from dsa110_contimg.calibration.apply import NoValidCalibrationError
from dsa110_contimg.calibration.solve import (CalibrateOptions, CalibrationError, calibrate_ms, choose_refant,
                                              table_names)
from dsa110_contimg.calibration.solution_qa import read_solutions
from dsa110_contimg.calibration.transits import find_calibrators, ms_time_range_and_dec
from dsa110_contimg.conversion.convert import ConvertOptions, convert_group
from dsa110_contimg.conversion.grouping import discover_groups
from dsa110_contimg.ms import read_ms_info
from dsa110_contimg.pipeline.calsets import apply_calibration, register_solution
from dsa110_contimg.simulate.core import SimulateOptions, simulate
from dsa110_contimg.simulate.instrument import evaluate_gains
from dsa110_contimg.simulate.sky import SkySource, write_sources_csv
from dsa110_contimg.simulate.truth import GroupTruth

from imaging_helpers import fit_point_source, offset_arcsec, tclean_image

SEFD = 1500.0  # "S/N high enough": a quarter of the default SEFD
TARGET_GROUP = 7  # 7 x 309 s = 36 min after the calibrator transit
SIDEREAL = 360.98564736629


@pytest.fixture(scope="module")
def cal_and_target(tmp_path_factory, antpos_csv):
    """Group 0: 3C147 transiting (nothing else in the beam); group 7: a field of sources, same instrument."""
    from dsa110_contimg.catalog.calibrators import lookup_calibrator

    root = tmp_path_factory.mktemp("calib")
    cal = lookup_calibrator("3C147")
    ra_t = cal.ra_deg + TARGET_GROUP * 309.24 / 86400 * SIDEREAL
    rng = np.random.default_rng(12)
    srcs = [SkySource(float(ra_t + dx / np.cos(np.radians(cal.dec_deg))), float(cal.dec_deg + dy), float(f), -0.7,
                      f"t{i}") for i, (dx, dy, f) in enumerate(zip(rng.uniform(-0.8, 0.8, 6), rng.uniform(-0.8, 0.8, 6),
                                                                   rng.uniform(0.3, 2.0, 6)))]
    write_sources_csv(srcs, root / "target.csv")
    sim = simulate(SimulateOptions(output_dir=root / "incoming", preset="small", groups=TARGET_GROUP + 1,
                                   calibrator="3C147", sources_csv=root / "target.csv", sefd_jy=SEFD,
                                   delay_sigma_ns=3.0, antpos_csv=antpos_csv, seed=31, jitter_s=2))
    groups = discover_groups(root / "incoming")
    assert len(groups) == TARGET_GROUP + 1
    ct = GroupTruth.from_json(sim.groups[0].truth_path)
    c = ct.sources[0]
    base = dict(antpos_csv=antpos_csv, stage_dir=root / "stage")
    cal_ms = convert_group(groups[0], ConvertOptions(output_dir=root / "cal", phase_center_deg=(c["ra_deg"], c["dec_deg"]),
                                                     field_name=c["name"], **base)).ms_path
    tgt_ms = convert_group(groups[TARGET_GROUP], ConvertOptions(output_dir=root / "tgt", **base)).ms_path
    return {"root": root, "cal_ms": cal_ms, "tgt_ms": tgt_ms, "cal_truth": ct,
            "tgt_truth": GroupTruth.from_json(sim.groups[TARGET_GROUP].truth_path)}


def _copy(ms: Path, dst: Path) -> Path:
    shutil.copytree(ms, dst)
    return dst


def test_transit_finder(cal_and_target):
    t0, t1, dec = ms_time_range_and_dec(cal_and_target["cal_ms"])
    found = find_calibrators(t0, t1, dec)
    assert found and found[0].calibrator.name == "3C147" and found[0].in_group
    assert t0 <= found[0].transit_mjd <= t1
    names = [f.calibrator.name for f in found]
    assert "3C286" not in names  # dec 30.5: outside the declination tolerance and the beam
    assert "3C196" not in names  # dec 48.2 is within 2 deg but transits 2.5 h later: outside the window
    # the target group has no calibrator transiting inside it
    t0, t1, dec = ms_time_range_and_dec(cal_and_target["tgt_ms"])
    assert not [f for f in find_calibrators(t0, t1, dec) if f.in_group]


def test_table_names_use_splitext(tmp_path):
    names = table_names(tmp_path / "runs.ms")
    assert names["B"].name == "runs_bpcal" and names["G"].name == "runs_gpcal" and names["K"].name == "runs_kcal"


def test_gains_match_truth(cal_and_target, tmp_path):
    ms = _copy(cal_and_target["cal_ms"], tmp_path / "cal.ms")
    res = calibrate_ms(ms, CalibrateOptions())
    assert res.refant == "103" and res.calibrator == "3C147" and set(res.tables) == {"B", "G"}
    assert {"model", "flag", "B", "G", "total"} <= set(res.timings)
    assert res.metrics["B"]["antennas_dropped"] == [] and res.metrics["B"]["antennas_solved"] == 24
    assert all(p.is_file() and p.stat().st_size > 1000 for p in res.plots)
    truth = cal_and_target["cal_truth"]
    gm, ri = truth.gain_model, 102
    b, g = read_solutions(res.tables["B"], "B"), read_solutions(res.tables["G"], "G")
    from casacore.tables import table

    with table(str(ms), ack=False) as t:
        tm = np.unique(t.getcol("TIME"))
    gt = evaluate_gains(gm, b.freqs_hz, tm / 86400.0)
    for p in range(2):
        for a in (x - 1 for x in truth.active_antennas):
            bsol = b.values[b.antenna == a][0, :, p]
            gs, gtimes = g.values[g.antenna == a][:, 0, p], g.time[g.antenna == a]
            sol = gs[np.argmin(np.abs(gtimes[:, None] - tm[None, :]), axis=0)][:, None] * bsol[None, :]
            # CASA's gains are the conjugates of the truth's (UVH5 vs MS orientation), referenced to the refant
            want = np.conj(gt[a, :, :, p]) * gt[ri, :, :, p] / np.abs(gt[ri, :, :, p])
            assert np.degrees(np.abs(np.angle(sol * np.conj(want)))).max() < 1.0
            np.testing.assert_allclose(np.abs(sol), np.abs(gt[a, :, :, p]), rtol=0.01)


def test_delays_match_truth(cal_and_target, tmp_path):
    ms = _copy(cal_and_target["cal_ms"], tmp_path / "calk.ms")
    res = calibrate_ms(ms, CalibrateOptions(do_k=True, plots=False))
    assert "K" in res.tables and "K" in res.timings
    gm = cal_and_target["cal_truth"].gain_model
    k = read_solutions(res.tables["K"], "K")
    ri = 102
    for p in range(2):
        # the delay the data show includes the linear term of the bandpass phase (Legendre P1)
        teff = gm.delay_ns[:, p] + gm.bp_phase[:, p, 0] / (np.pi * (gm.f_hi_hz - gm.f_lo_hz)) * 1e9
        for a in (x - 1 for x in cal_and_target["cal_truth"].active_antennas):
            row = np.where(k.antenna == a)[0][0]
            assert not k.flags[row, 0, p]
            assert k.values[row, 0, p] == pytest.approx(-(teff[a] - teff[ri]), abs=0.1)


@pytest.fixture(scope="module")
def registered(cal_and_target, tmp_path_factory):
    root = tmp_path_factory.mktemp("reg")
    ms = _copy(cal_and_target["cal_ms"], root / "cal.ms")
    res = calibrate_ms(ms, CalibrateOptions(do_k=True, plots=False))
    db = root / "cal_registry.sqlite3"
    name = register_solution(res, db, span_hours=6.0)
    return {"db": db, "set": name, "cal_ms": ms, "result": res}


def test_calibrated_calibrator_image_flux(registered, cal_and_target, tmp_path):
    res = apply_calibration(registered["cal_ms"], registered["db"])
    assert res.set_name == registered["set"] and [p.name[-5:] for p in res.tables] == ["_kcal", "bpcal", "gpcal"]
    info = read_ms_info(registered["cal_ms"])  # the explicit flag, set by the apply stage
    assert info.corrected_is_calibrated and info.calibration_set == registered["set"]
    c = cal_and_target["cal_truth"].sources[0]
    image = tclean_image(registered["cal_ms"], tmp_path / "calimg")
    fit = fit_point_source(image, c["ra_deg"], c["dec_deg"])
    assert fit["peak"] == pytest.approx(c["apparent_flux_jy"], rel=0.02)


def test_target_calibrated_from_registry(registered, cal_and_target, tmp_path):
    ms = _copy(cal_and_target["tgt_ms"], tmp_path / "tgt.ms")
    res = apply_calibration(ms, registered["db"])
    assert res.set_name == registered["set"]
    assert res.interp[-1] == "nearest"  # target outside the gain table's time range
    image = tclean_image(ms, tmp_path / "tgtimg", threshold="5mJy", niter=1000)
    truth = cal_and_target["tgt_truth"]
    sigma_img = truth.noise["sigma_per_vis_jy"] / np.sqrt(6 * 276 * 96 * 2)
    checked = 0
    for s in truth.sources:
        if s["apparent_flux_jy"] / sigma_img < 50:
            continue
        fit = fit_point_source(image, s["ra_deg"], s["dec_deg"])
        beam = np.sqrt(fit["bmaj_arcsec"] * fit["bmin_arcsec"])
        assert fit["peak"] == pytest.approx(s["apparent_flux_jy"], rel=0.05), s["name"]
        assert offset_arcsec(fit["ra_deg"], fit["dec_deg"], s["ra_deg"], s["dec_deg"]) < beam / 5
        checked += 1
    assert checked >= 4


def test_no_calibrator_in_beam(cal_and_target, tmp_path):
    ms = _copy(cal_and_target["tgt_ms"], tmp_path / "nocal.ms")
    with pytest.raises(CalibrationError, match="no calibrator transits"):
        calibrate_ms(ms, CalibrateOptions())
    assert not any(p.exists() for p in table_names(ms).values())


def test_all_flagged_refant_falls_back(cal_and_target, tmp_path):
    from casatasks import flagdata

    ms = _copy(cal_and_target["cal_ms"], tmp_path / "flagref.ms")
    flagdata(vis=str(ms), mode="manual", antenna="103", flagbackup=False)
    ant, note = choose_refant(ms, "103")
    assert ant != "103" and "103" in note and "flagged" in note
    res = calibrate_ms(ms, CalibrateOptions(plots=False))
    assert res.refant == ant and res.refant_note == note


def test_no_valid_set_is_a_recorded_error(cal_and_target, tmp_path):
    """A refused apply writes nothing but a HISTORY row.  CORRECTED_DATA first gets a marker that differs from
    DATA (as the converter leaves it, CORRECTED_DATA equals DATA, so a silent copy of DATA could not be told from
    no write at all); after the refusal it still holds the marker, and the MS does not claim to be calibrated."""
    from casacore.tables import table

    from dsa110_contimg.imaging.image import resolve_datacolumn

    ms = _copy(cal_and_target["tgt_ms"], tmp_path / "noset.ms")
    with table(str(ms), readonly=False, ack=False) as t:
        marker = (t.getcol("DATA") * 0.5 + (1 + 1j)).astype(np.complex64)
        t.putcol("CORRECTED_DATA", marker)
    assert not read_ms_info(ms).corrected_is_calibrated  # as converted
    with pytest.raises(NoValidCalibrationError, match="no active calibration set"):
        apply_calibration(ms, tmp_path / "empty_registry.sqlite3")
    with table(str(ms), ack=False) as t:
        corrected, data = t.getcol("CORRECTED_DATA"), t.getcol("DATA")
    assert np.array_equal(corrected, marker)  # not written at all ...
    assert not np.array_equal(corrected, data)  # ... in particular not a silent copy of DATA
    info = read_ms_info(ms)
    assert not info.corrected_is_calibrated and info.calibration_set == ""
    assert resolve_datacolumn(ms, "auto")[0] == "DATA"  # imaging does not take CORRECTED_DATA for calibrated
    with table(str(ms / "HISTORY"), ack=False) as t:
        assert any("no active calibration set" in m for m in t.getcol("MESSAGE"))


def test_missing_table_on_disk(registered, cal_and_target, tmp_path):
    ms = _copy(cal_and_target["tgt_ms"], tmp_path / "missing.ms")
    db = tmp_path / "reg.sqlite3"
    shutil.copy(registered["db"], db)
    gtab = registered["result"].tables["G"]
    moved = gtab.with_name(gtab.name + ".away")
    gtab.rename(moved)
    try:
        with pytest.raises(CalibrationError, match="missing on disk"):
            apply_calibration(ms, db)
    finally:
        moved.rename(gtab)


def test_cli_find_calibrate_apply(cal_and_target, tmp_path, session_state):
    import os
    import subprocess
    import sys

    exe = Path(sys.executable).with_name("contimg")
    env = dict(os.environ, PIPELINE_STATE_DIR=str(session_state), CAL_REGISTRY_DB=str(tmp_path / "reg.sqlite3"),
               COLUMNS="200")
    cal = _copy(cal_and_target["cal_ms"], tmp_path / "c.ms")
    tgt = _copy(cal_and_target["tgt_ms"], tmp_path / "t.ms")

    def run(*args):
        return subprocess.run([str(exe), *args], capture_output=True, text=True, env=env, timeout=600)

    r = run("calibrators", "find", "--ms", str(cal))
    assert r.returncode == 0 and "3C147" in r.stdout and "Perley-Butler 2017" in r.stdout
    r = run("apply", str(tgt))
    assert r.returncode != 0 and "no active calibration set" in r.stderr
    r = run("calibrate", str(cal), "--field", "0", "--fast")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "registered set c_3C147" in r.stdout and (tmp_path / "c_bpcal").is_dir()
    r = run("caltables", "list")
    assert r.returncode == 0 and "c_3C147" in r.stdout
    r = run("apply", str(tgt))
    assert r.returncode == 0 and "applied c_3C147" in r.stdout, r.stderr[-2000:]
    r = run("caltables", "retire", "c_3C147", "--reason", "test")
    assert r.returncode == 0
    r = run("apply", str(tgt))
    assert r.returncode != 0


def test_parallel_bandpass_matches_single_process(cal_and_target, tmp_path):
    from casacore.tables import table

    from dsa110_contimg.calibration.model import flag_for_calibration, write_point_model
    from dsa110_contimg.catalog.calibrators import lookup_calibrator
    from dsa110_contimg.calibration.parallel_bandpass import bandpass_parallel, channel_ranges

    assert channel_ranges(96, 2) == [(0, 47), (48, 95)] and channel_ranges(10, 3) == [(0, 2), (3, 6), (7, 9)]
    ms = _copy(cal_and_target["cal_ms"], tmp_path / "bp.ms")
    cal = lookup_calibrator("3C147")
    write_point_model(ms, cal.name, cal.ra_deg, cal.dec_deg, cal.flux_at, cal.model_name)
    flag_for_calibration(ms)
    kw = dict(refant="103", solint="inf", combine="scan", solnorm=False, minsnr=3.0)
    one = bandpass_parallel(ms, tmp_path / "one.B", nparts=1, **kw)
    two = bandpass_parallel(ms, tmp_path / "two.B", nparts=2, min_chan_per_part=16, **kw)
    with table(str(one), ack=False) as a, table(str(two), ack=False) as b:
        assert a.getcol("CPARAM").shape == b.getcol("CPARAM").shape == (117, 96, 2)
        fa, fb = a.getcol("FLAG"), b.getcol("FLAG")
        assert np.array_equal(fa, fb)
        np.testing.assert_allclose(b.getcol("CPARAM")[~fb], a.getcol("CPARAM")[~fa], atol=1e-3)
    with table(str(two / "SPECTRAL_WINDOW"), ack=False) as s, table(str(ms / "SPECTRAL_WINDOW"), ack=False) as m:
        assert s.getcell("NUM_CHAN", 0) == 96
        np.testing.assert_allclose(s.getcell("CHAN_FREQ", 0), m.getcell("CHAN_FREQ", 0))
    assert not list(tmp_path.glob("two.B.part*"))
