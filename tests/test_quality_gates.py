"""Image quality gates: thermal-noise kernel (analytic and against a pipeline image), flux-scale fit, gate
thresholds, mosaic exclusion and the products-database migration to schema 8."""

import math
import sqlite3

import numpy as np
import pytest

from dsa110_contimg.qa.flux_scale import FluxScaleResult, fit_flux_ratio
from dsa110_contimg.qa.gates import FAIL, NA, PASS, WARN, GateOptions, evaluate_gates, gate_state, worst
from dsa110_contimg.qa.image_qa import ImageQAResult
from dsa110_contimg.qa.thermal import ThermalResult, density_factors, stokes_i_weights, thermal_noise


def test_thermal_kernel_analytic():
    """N samples of weight w: natural noise 1/sqrt(N w); Stokes I of equal hands has twice the weight; a flag in
    either hand removes the sample; Briggs at robust +5 is natural, uniform on distinct cells weights all equally."""
    w = np.full(1000, 4.0)
    assert thermal_noise(w) == pytest.approx(1 / math.sqrt(1000 * 4.0), rel=1e-12)
    wi = stokes_i_weights(w, w, np.zeros(1000, bool), np.r_[np.ones(10, bool), np.zeros(990, bool)])
    assert np.all(wi[:10] == 0) and np.allclose(wi[10:], 8.0)
    assert thermal_noise(wi) == pytest.approx(1 / math.sqrt(990 * 8.0), rel=1e-12)
    # unequal hands: sigma_I**2 = (1/w_a + 1/w_b) / 4
    assert stokes_i_weights(1.0, 3.0, False, False) == pytest.approx(4 / (1 + 1 / 3))
    rng = np.random.default_rng(1)
    u, v = rng.uniform(-500, 500, 1000), rng.uniform(-500, 500, 1000)
    f = density_factors(u, v, w, "briggs", 5.0, 1024, 1.0)
    assert np.allclose(f, 1.0, rtol=1e-3)
    # uniform: two samples in one cell and one alone -> the alone one gets twice the factor of each pair member
    f = density_factors(np.array([10.0, 10.2, -300.0]), np.array([5.0, 5.1, 40.0]), np.ones(3), "uniform", 0.0,
                        1024, 1.0)
    assert f.tolist() == [0.5, 0.5, 1.0]
    # imaging weights that are not inverse-variance raise the noise: sqrt(sum w f^2) / sum w f
    assert thermal_noise(np.ones(2), np.array([1.0, 3.0])) == pytest.approx(math.sqrt(10) / 4)


def test_thermal_prediction_matches_noise_only_image(tmp_path, antpos_csv):
    """A noise-only small group imaged by the pipeline (Briggs 0, quick, WSClean): rms within 15% of the
    prediction from the MS's weights and flags (and the rms gate passes)."""
    from astropy.io import fits

    from dsa110_contimg.conversion.convert import ConvertOptions, convert_directory
    from dsa110_contimg.imaging.image import ImageOptions, image_ms
    from dsa110_contimg.pipeline.image_stage import run_qa
    from dsa110_contimg.qa.sources import robust_rms
    from dsa110_contimg.qa.thermal import ThermalOptions, predict_thermal_noise
    from dsa110_contimg.simulate.core import simulate
    from dsa110_contimg.simulate.options import SimulateOptions

    simulate(SimulateOptions(output_dir=tmp_path / "in", preset="small", n_sources=0, gains=False,
                             antpos_csv=antpos_csv, seed=8))
    ms = convert_directory(tmp_path / "in", ConvertOptions(output_dir=tmp_path / "ms", antpos_csv=antpos_csv,
                                                           stage_dir=tmp_path / "stage"))[0].ms_path
    opts = ImageOptions(backend="wsclean", quick=True, niter=50, out_dir=tmp_path / "img")
    res = image_ms(ms, opts)
    with fits.open(res.images.image) as h:
        rms = robust_rms(h[0].data[0, 0])
    pred = predict_thermal_noise(ms, ThermalOptions(weighting="briggs", robust=0.0, imsize=res.imsize,
                                                    cell_arcsec=res.cell_arcsec))
    assert pred.weight_column == "WEIGHT" and pred.n_samples > 0
    assert pred.noise_jy > pred.natural_noise_jy  # Briggs 0 gives up sensitivity
    assert pred.noise_jy / 1.15 < rms < 1.15 * pred.noise_jy, (rms, pred)
    natural = predict_thermal_noise(ms, ThermalOptions(weighting="natural"))
    assert natural.noise_jy == pytest.approx(pred.natural_noise_jy, rel=1e-9)
    _, quality = run_qa(ms, res, opts, None)
    g = quality.gate("rms_thermal")
    assert g.state == PASS and 1 / 1.15 < g.value < 1.15
    assert quality.gate("flux_scale").state == NA  # no catalog: no references
    assert quality.gate("beam_size").state in (PASS, WARN)


def test_flux_ratio_fit_recovers_injected_scale():
    """60 references at a true scale of 0.88 with 4% scatter plus 8 gross outliers: the median is within 0.015
    (and within 3 of its errors) of the truth; the error is near the scatter / sqrt(n) times 1.25."""
    rng = np.random.default_rng(7)
    cat = 10 ** rng.uniform(-1.5, 0.5, 68)
    meas = 0.88 * cat * (1 + 0.04 * rng.standard_normal(68))
    meas[:8] *= rng.choice([0.2, 3.0, 5.0], 8)  # mismatches, variables, resolved
    ratio, err, n = fit_flux_ratio(meas, cat)
    assert n == 68
    assert abs(ratio - 0.88) < 0.015 and abs(ratio - 0.88) < 3 * err
    assert 0.004 < err < 0.012
    assert fit_flux_ratio([1.0, np.nan], [0.0, 1.0]) == (None, None, 0)


def _qa(rms=1e-3, peak=1.0, bmaj=30.0, bmin=20.0):
    return ImageQAResult(rms_jy=rms, peak_jy=peak, dynamic_range=peak / rms, bmaj_arcsec=bmaj, bmin_arcsec=bmin,
                         bpa_deg=0.0, n_sources=0, sources=[])


def _thermal(noise=1e-4, bmaj=30.0, bmin=20.0):
    return ThermalResult(noise, noise, 1000, bmaj, bmin, 0.0, "WEIGHT", "briggs 0")


def test_gates_flip_at_their_thresholds():
    """rms/thermal 9.9 warns, 10.1 fails; a flux scale 20% low warns, 30% low fails; the worst gate wins;
    unknown values are n/a and do not count."""
    flux = FluxScaleResult(ratio=None, ratio_err=None, n_refs=0, offset_arcsec=None, marked=False)
    assert evaluate_gates(_qa(rms=9.9e-4), flux, _thermal()).gate("rms_thermal").state == WARN
    res = evaluate_gates(_qa(rms=10.1e-4), flux, _thermal())
    assert res.gate("rms_thermal").state == FAIL and res.state == FAIL
    assert res.reasons() == ["rms_thermal 10.1 > 10 (fail)"]
    assert res.gate("flux_scale").state == NA and res.gate("astrometry").state == NA
    ok = evaluate_gates(_qa(rms=1.2e-4), flux, _thermal())
    assert ok.state == PASS and ok.rms_over_thermal == pytest.approx(1.2)
    low = FluxScaleResult(0.8, 0.01, 12, 2.0, True)
    assert evaluate_gates(_qa(rms=1.2e-4), low, _thermal()).gate("flux_scale").state == WARN
    lower = FluxScaleResult(0.7, 0.01, 12, 2.0, True)
    assert evaluate_gates(_qa(rms=1.2e-4), lower, _thermal()).state == FAIL
    # a wrong beam: twice the expected size fails
    assert evaluate_gates(_qa(rms=1.2e-4, bmaj=61, bmin=41), flux, _thermal()).gate("beam_size").state == FAIL
    # dynamic range: lower is worse
    assert evaluate_gates(_qa(rms=1.2e-4, peak=6e-4), flux, _thermal()).gate("dynamic_range").state == WARN
    # thresholds are options
    assert evaluate_gates(_qa(rms=9.9e-4), flux, _thermal(),
                          GateOptions(rms_thermal=(2.0, 5.0))).state == FAIL
    assert gate_state(float("nan"), 1, 2) == NA and worst([NA, NA]) == PASS and worst([PASS, WARN, NA]) == WARN


def test_mosaic_selection_excludes_failed_image():
    """An image whose gates failed is left out of the mosaic with the failing gate in the reason; a warning is kept."""
    from dsa110_contimg.pipeline.mosaic_stage import select_inputs
    from dsa110_contimg.pipeline.mosaic_windows import WindowInput

    ins = (WindowInput("g0", "/x/g0.fits", "/x/g0.ms", 1e-3, 100.0, quality_state="pass"),
           WindowInput("g1", "/x/g1.fits", "/x/g1.ms", 1e-3, 100.0, quality_state="fail",
                       quality_reasons=("rms_thermal 12 > 10 (fail)", "dynamic_range 6 < 8 (warn)")),
           WindowInput("g2", "/x/g2.fits", "/x/g2.ms", 1e-3, 100.0, quality_state="warn"),
           WindowInput("g3", "/x/g3.fits", "/x/g3.ms", 1e-3, 100.0))
    keep, out = select_inputs(ins, 3.0)
    assert [i.group_id for i in keep] == ["g0", "g2", "g3"]
    assert out == [{"group_id": "g1", "image": "/x/g1.fits",
                    "reason": "quality gates failed: rms_thermal 12 > 10 (fail)"}]


def test_window_inputs_and_migration_to_schema_8(tmp_path):
    """A schema-7 database migrates to 8 keeping its images (not assessed: NULL); the new columns round-trip and
    the mosaic's window inputs carry the state and reasons."""
    from dsa110_contimg.db import products as pdb
    from dsa110_contimg.pipeline.mosaic_windows import images_between

    path = tmp_path / "p.sqlite3"
    conn = sqlite3.connect(path)
    for m in pdb.MIGRATIONS[:7]:
        m(conn)
    conn.execute("PRAGMA user_version = 7")
    conn.execute("INSERT INTO images (id, path, ms_path, type, noise_jy) VALUES (3, '/o/a.fits', '/o/a.ms', 'image', "
                 "0.002)")
    conn.commit()
    conn.close()
    conn = pdb.connect(path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == pdb.SCHEMA_VERSION == 8
        old = pdb.get_image(conn, 3)
        assert old.noise_jy == 0.002 and old.quality_state is None and old.gates is None
        gates = {"state": "fail", "gates": [{"name": "rms_thermal", "value": 12.0, "warn": 3.0, "fail": 10.0,
                                             "state": "fail", "higher_is_worse": True}],
                 "reasons": ["rms_thermal 12 > 10 (fail)"]}
        pdb.upsert_image(conn, pdb.ImageRecord("/o/a.fits", flux_scale_ratio=0.97, flux_scale_err=0.01,
                                               flux_scale_n=9, thermal_noise_jy=1e-4, rms_over_thermal=12.0,
                                               ref_offset_arcsec=1.5, quality_state="fail", gates=gates))
        img = pdb.get_image(conn, 3)
        assert (img.flux_scale_ratio, img.flux_scale_n, img.quality_state, img.gates) == (0.97, 9, "fail", gates)
        assert "idx_images_quality" in {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        pdb.upsert_ms(conn, pdb.MSRecord("/o/a.ms", start_mjd=60000.0, end_mjd=60000.01))
        (inp,) = images_between(conn, 59999.0, 60001.0)
        assert inp.quality_state == "fail" and inp.quality_reasons == ("rms_thermal 12 > 10 (fail)",)
    finally:
        conn.close()
