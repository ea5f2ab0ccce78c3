"""Kernels of survey photometry with injected truth; the sources/measurements tables (db.sources)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dsa110_contimg.photometry import kernels as k
from dsa110_contimg.photometry.models import (ETA_MIN_DEFAULT, ImageRun, Measurement, NewSource, PhotometryResult,
                                              VariabilityOptions)

BEAM = (2.2, 1.6, 0.4)  # sigma major, sigma minor (px), angle (rad)


def _correlated_noise(shape, rng, beam=BEAM):
    """Unit-rms noise whose pixel correlation is the beam (white noise convolved with the beam of sigma / sqrt 2)."""
    from scipy.signal import fftconvolve

    sa, sb, th = beam
    half = (sa / math.sqrt(2), sb / math.sqrt(2), th)
    yy, xx = np.mgrid[-12:13, -12:13]
    n = fftconvolve(rng.normal(size=shape), k.beam_model(xx, yy, 0, 0, half), mode="same")
    return n / n[20:-20, 20:-20].std()


def test_forced_fit_recovers_injected_fluxes_with_right_errors():
    rng = np.random.default_rng(1)
    ny = nx = 600
    sigma = 0.002
    xs, ys = np.meshgrid(np.arange(30, 570, 30.0), np.arange(30, 570, 30.0))
    xs, ys = xs.ravel() + rng.uniform(-0.5, 0.5, xs.size), ys.ravel() + rng.uniform(-0.5, 0.5, xs.size)
    flux = rng.uniform(0.005, 0.5, xs.size)
    yy, xx = np.mgrid[0:ny, 0:nx]
    pulls = []
    for _ in range(3):
        img = sigma * _correlated_noise((ny, nx), rng)
        for x, y, f in zip(xs, ys, flux):
            sl = (slice(int(y) - 15, int(y) + 16), slice(int(x) - 15, int(x) + 16))
            img[sl] += f * k.beam_model(xx[sl], yy[sl], x, y, BEAM)
        fit = k.forced_fit(img, xs, ys, BEAM, half=8, cluster_px=15.0)
        assert (fit.n_pix > 100).all()
        pulls.append((fit.amp - flux) / (fit.err_factor * sigma))
    pulls = np.concatenate(pulls)
    assert abs(pulls.mean()) < 0.15
    assert 0.85 < pulls.std() < 1.15, pulls.std()
    # a blend: two sources one FWHM apart are fitted together and both recovered
    img = np.zeros((80, 80))
    for x, f in ((35.0, 1.0), (35.0 + 2.355 * BEAM[0], 0.3)):
        img += f * k.beam_model(xx[:80, :80], yy[:80, :80], x, 40.0, BEAM)
    fit = k.forced_fit(img, [35.0, 35.0 + 2.355 * BEAM[0]], [40.0, 40.0], BEAM, half=8, cluster_px=15.0)
    np.testing.assert_allclose(fit.amp, [1.0, 0.3], atol=1e-9)
    assert fit.cluster[0] == fit.cluster[1]
    nan_img = img.copy()
    nan_img[:, :] = np.nan
    assert np.isnan(k.forced_fit(nan_img, [35.0], [40.0], BEAM, 8, 15.0).amp[0])


def test_local_fit_rms_is_the_scatter_of_the_fit_and_ignores_the_source():
    """On beam-correlated noise the local noise of a fit equals the fit's error (err_factor x pixel rms), near a
    bright source too; on white noise it is much smaller (the pixel rms alone would overestimate it)."""
    rng = np.random.default_rng(2)
    sigma = 0.003
    img = sigma * _correlated_noise((300, 300), rng)
    yy, xx = np.mgrid[0:300, 0:300]
    img += 5.0 * k.beam_model(xx, yy, 150.0, 150.0, BEAM)
    fac = k.forced_fit(np.zeros((41, 41)), [20.0], [20.0], BEAM, 8, 1.0).err_factor[0]
    xs = np.array([150.0, 60.0, 240.0, 60.0])
    ys = np.array([150.0, 60.0, 90.0, 230.0])
    r = k.local_fit_rms(img, xs, ys, BEAM, half=8, box=60, exclude=14)
    np.testing.assert_allclose(r, fac * sigma, rtol=0.2)
    white = sigma * rng.normal(size=(300, 300))
    w = k.local_fit_rms(white, xs, ys, BEAM, half=8, box=60, exclude=14)
    np.testing.assert_allclose(w, sigma / math.sqrt(math.pi * BEAM[0] * BEAM[1]), rtol=0.2)
    assert np.isnan(k.local_fit_rms(np.full((50, 50), np.nan), [25.0], [25.0], BEAM, 8, 40, 10)[0])


def test_de_ruiter_and_association_rules():
    dec = 50.0
    d_arcsec = 3.0
    r = k.de_ruiter(10.0, dec, 1.0, 1.0, 10.0 + d_arcsec / 3600 / math.cos(math.radians(dec)), dec, 1.0, 1.0)
    assert r == pytest.approx(d_arcsec / math.sqrt(2), rel=1e-4)
    # sources A, B; detection 0 near A (and within reach of B), detection 1 also near A but farther, detection 2 alone
    off = lambda a: a / 3600.0  # noqa: E731
    src_ra, src_dec = np.array([10.0, 10.0]), np.array([dec, dec + off(8)])
    det_ra = np.array([10.0, 10.0, 11.0])
    det_dec = np.array([dec + off(2), dec - off(4), dec])
    e = np.full(3, 1.0)
    a = k.associate(det_ra, det_dec, e, e, src_ra, src_dec, np.full(2, 1.0), np.full(2, 1.0), 5.68, 30.0)
    assert a.source.tolist() == [0, -1, -1]
    assert a.others[0] == [1]  # also matched B, went to the nearer A
    assert a.taken[1] == [0]  # A went to the nearer detection 0
    assert a.sep_arcsec[0] == pytest.approx(2.0, rel=1e-3)
    # the cap: a match in de Ruiter units beyond the positional cap is refused
    a = k.associate([10.0], [dec + off(20)], [30.0], [30.0], [10.0], [dec], [30.0], [30.0], 5.68, 15.0)
    assert a.source.tolist() == [-1]


def test_running_sums_and_pairs_match_batch():
    rng = np.random.default_rng(3)
    f, e = rng.normal(1.0, 0.1, 12), rng.uniform(0.02, 0.1, 12)
    sums = {key: 0.0 for key in ("n_measurements", "sum_w", "sum_wf", "sum_wf2", "sum_f", "sum_f2")}
    vs = mm = 0.0
    for i in range(f.size):
        s = k.flux_sums(f[i], e[i])
        sums = {key: sums[key] + s[key] for key in sums}
        a, b = k.pair_extrema(f[i], e[i], f[:i], e[:i], 2.0)
        vs, mm = max(vs, a), max(mm, b)
    v = k.variability(int(sums["n_measurements"]), sums["sum_w"], sums["sum_wf"], sums["sum_wf2"], sums["sum_f"],
                      sums["sum_f2"])
    w = 1 / e ** 2
    wmean = (w * f).sum() / w.sum()
    assert v.wmean == pytest.approx(wmean)
    assert v.eta == pytest.approx((w * (f - wmean) ** 2).sum() / (f.size - 1))
    assert v.v == pytest.approx(f.std(ddof=1) / f.mean())
    assert (vs, mm) == pytest.approx(k.all_pair_extrema(f, e, 2.0))
    i, j = np.triu_indices(f.size, 1)
    assert vs == pytest.approx(np.max(np.abs(f[i] - f[j]) / np.hypot(e[i], e[j])))
    assert math.isnan(k.variability(1, 1.0, 1.0, 1.0, 1.0, 1.0).eta)


def test_steady_false_positive_rate_at_most_one_percent():
    """The stated thresholds: eta >= chi2.ppf(0.99, 3)/3 = 3.78 and V >= 0.1 with n >= 4 flag at most 1% of steady
    sources with correct Gaussian errors, at any brightness and any number of measurements."""
    opts = VariabilityOptions()
    assert opts.eta_min == pytest.approx(k.eta_threshold(opts.min_measurements, 0.01), rel=1e-4)
    assert ETA_MIN_DEFAULT == opts.eta_min
    rng = np.random.default_rng(4)
    for n in (4, 6, 10, 30):
        for snr in (5.0, 30.0, 1000.0):
            flux = 1.0
            e = np.full((20000, n), flux / snr) * rng.uniform(0.7, 1.3, (20000, 1))
            f = flux + e * rng.normal(size=e.shape)
            w = 1 / e ** 2
            wm = (w * f).sum(1) / w.sum(1)
            eta = (w * (f - wm[:, None]) ** 2).sum(1) / (n - 1)
            vv = f.std(1, ddof=1) / f.mean(1)
            fp = np.mean((eta >= opts.eta_min) & (vv >= opts.v_min))
            assert fp <= 0.01 + 3 * math.sqrt(0.01 * 0.99 / 20000), (n, snr, fp)  # exactly 1% at n = 4 by design
    # a source varying by 50% (a step of 1.5 halfway) is flagged at modest S/N
    f = np.r_[np.ones(4), np.full(4, 1.5)] + 0.02 * rng.normal(size=8)
    s = k.flux_sums(f, k.total_error(f, np.full(8, 0.02), opts.flux_sys_frac))
    v = k.variability(**{"n": 8, **{key: s[key] for key in s if key != "n_measurements"}})
    assert v.eta > opts.eta_min and v.v > opts.v_min


def test_new_significance():
    assert k.new_significance(0.5, 0.01, [0.0, 0.02], [0.01, 0.01]) == pytest.approx(0.5 / math.sqrt(2e-4))
    assert math.isnan(k.new_significance(0.5, 0.01, [], []))


# --------------------------------------------------------------------------- database


def _run(image_id, mjd):
    return ImageRun(image_id=image_id, group_id=f"g{image_id}", ms_path=f"/ms/{image_id}.ms",
                    image_path=f"/img/{image_id}.fits", pbcor_path=f"/img/{image_id}-pb.fits", mid_mjd=mjd,
                    first_time_mjd=mjd, last_time_mjd=mjd, n_times=1, pointing_dec_deg=50.0, fringestop_lon_deg=-118.3,
                    freq_min_hz=1.31e9, freq_max_hz=1.5e9, ra_deg=86.0, dec_deg=50.0, radius_deg=1.5, rms_jy=0.002,
                    beam_major_arcsec=36.0, beam_minor_arcsec=30.0, beam_pa_deg=0.0)


def _m(image_id, mjd, flux, err=0.01, kind="forced", **kw):
    det, dra = {}, kw.pop("dra", 0.0)
    if kind == "detection":
        det = dict(det_ra_deg=86.0 + dra, det_dec_deg=50.0, det_ra_err_arcsec=2.0,
                   det_dec_err_arcsec=2.0, detection_id=1)
    return Measurement(image_id=image_id, mjd=mjd, flux_jy=flux, flux_err_jy=err, local_rms_jy=err, pb=0.8,
                       ra_deg=86.0, dec_deg=50.0, kind=kind, **det, **kw)


@pytest.fixture
def db(tmp_path):
    from dsa110_contimg.db import products as pdb

    conn = pdb.connect(tmp_path / "products.sqlite3")
    for i in range(1, 9):
        pdb.upsert_image(conn, pdb.ImageRecord(f"/img/{i}.fits", ms_path=f"/ms/{i}.ms", type="image"))
    yield conn
    conn.close()


def test_record_light_curve_incremental_equals_recompute_and_no_duplicates(db):
    from dsa110_contimg.db import sources as sdb

    flux = [0.50, 0.52, 0.49, 0.75, 0.76, 0.74, 0.51, 0.50]
    first = PhotometryResult(_run(1, 60950.0), (_m(1, 60950.0, flux[0], kind="detection", new_index=0),),
                             (NewSource(86.0, 50.0, 2.0, 2.0, "detection", new_sigma=None),), 0, 36.0, 1, 0, 0)
    sid = sdb.record_photometry(db, first).new_source_ids[0]
    for i in range(2, 9):
        kind = "detection" if i % 2 else "forced"
        res = PhotometryResult(_run(i, 60949.0 + i), (_m(i, 60949.0 + i, flux[i - 1], kind=kind, source_id=sid,
                                                         dra=1e-4 * i),), (), sid, 36.0)
        sdb.record_photometry(db, res)
    inc = sdb.get_source(db, sid)
    assert inc.n_measurements == 8 and inc.n_detections == 4 and inc.is_variable
    assert inc.first_mjd == 60950.0 and inc.last_mjd == 60957.0 and inc.last_seen_mjd == 60956.0
    # reprocessing image 5 with the same flux: same numbers, no duplicate
    again = PhotometryResult(_run(5, 60954.0), (_m(5, 60954.0, flux[4], kind="detection", source_id=sid,
                                                  dra=5e-4),), (), sid, 36.0)
    summary = sdb.record_photometry(db, again)
    assert summary.n_replaced == 1 and sdb.image_measurement_count(db, 5) == 1
    rec = sdb.get_source(db, sid)
    assert len(sdb.get_measurements(db, sid)) == 8
    for field in ("eta", "v_index", "flux_wmean_jy", "vs_max", "m_max", "ra_deg", "dec_deg", "ra_err_arcsec"):
        assert getattr(rec, field) == pytest.approx(getattr(inc, field), rel=1e-9), field
    opts = VariabilityOptions()
    f = np.array(flux)
    e = k.total_error(f, 0.01, opts.flux_sys_frac)
    w = 1 / e ** 2
    assert rec.eta == pytest.approx((w * (f - (w * f).sum() / w.sum()) ** 2).sum() / 7)
    assert rec.vs_max == pytest.approx(k.all_pair_extrema(f, e)[0])
    lc = sdb.get_measurements(db, sid)
    assert [m.mjd for m in lc] == sorted(m.mjd for m in lc) and lc[0].group_id == "g1"
    # filters and paging
    assert [s.id for s in sdb.list_sources(db, variable=True)] == [sid]
    assert sdb.count_sources(db, min_eta=1e9) == 0 and sdb.count_sources(db, min_v=0.1) == 1
    assert sdb.list_sources(db, new=True) == [] and sdb.list_sources(db, offset=1) == []
    with pytest.raises(Exception, match="order"):
        sdb.list_sources(db, order="nope")


def test_new_flag_catalog_merge_and_concurrent_new_sources(db):
    from dsa110_contimg.db import sources as sdb

    # a flare: first detected with 80 sigma over the earlier forced fluxes (backfilled), no catalog counterpart
    res = PhotometryResult(_run(3, 60952.0), (
        _m(3, 60952.0, 0.3, kind="detection", new_index=0), _m(1, 60950.0, 0.001, new_index=0, backfilled=True),
        _m(2, 60951.0, -0.002, new_index=0, backfilled=True),
        _m(3, 60952.0, 0.2, new_index=1)), (
        NewSource(86.0, 50.0, 2.0, 2.0, "detection", new_sigma=20.0, n_earlier_images=2),
        NewSource(86.5, 50.2, 3.0, 3.0, "catalog", catalog_source_id=77, catalog_flux_jy=0.2)), 0, 36.0)
    ids = sdb.record_photometry(db, res).new_source_ids
    flare, cat = sdb.get_source(db, ids[0]), sdb.get_source(db, ids[1])
    assert flare.is_new and flare.n_measurements == 3 and flare.first_mjd == 60950.0 and flare.first_seen_mjd == 60952.0
    assert not cat.is_new and cat.catalog_source_id == 77 and cat.origin == "catalog"
    # image 4 (a concurrent worker with the old snapshot) finds the same two "new": both merged, no duplicates
    res4 = PhotometryResult(_run(4, 60953.0), (_m(4, 60953.0, 0.28, kind="detection", new_index=0),
                                                _m(4, 60953.0, 0.21, new_index=1)),
                            (NewSource(86.0 + 2e-4, 50.0, 2.0, 2.0, "detection", new_sigma=30.0),
                             NewSource(86.5, 50.2, 3.0, 3.0, "catalog", catalog_source_id=77)), 0, 36.0)
    s4 = sdb.record_photometry(db, res4)
    assert s4.n_merged == 2 and set(s4.new_source_ids) == set(ids) and sdb.count_sources(db) == 2
    assert sdb.get_source(db, ids[0]).n_detections == 2
    assert [s.id for s in sdb.list_sources(db, new=True)] == [ids[0]]
    near = sdb.sources_in_cone(db, 86.0, 50.0, 0.1)
    assert near["id"].tolist() == [ids[0]]
    assert [r.image_id for r in sdb.earlier_images(db, 86.0, 50.0, 60953.5)] == [4, 3]
    with pytest.raises(Exception, match="unknown image id"):
        sdb.record_photometry(db, PhotometryResult(_run(99, 1.0), (), (), 0, 36.0))


def test_stage_registered_after_image_and_fails_clearly_without_an_image(tmp_path):
    from dsa110_contimg.pipeline import stages
    from dsa110_contimg.pipeline.chain import ChainConfig, StageJob
    from dsa110_contimg.pipeline.photometry_stage import PhotometryStageError, run_photometry

    assert stages.checkpoints()[-2:] == ("imaged", "photometered")
    spec = stages.by_checkpoint("photometered")
    assert spec.stage == stages.Stage.PHOTOMETRY and stages.checkpoint_of_timing("photometry") == "photometered"
    cfg = ChainConfig(output_dir=tmp_path, stage_dir=tmp_path, antpos_csv=None, telescope_name="OVRO_DSA",
                      cal_registry_db=tmp_path / "cal_registry.sqlite3")
    job = StageJob("2025-10-02T00:00:00", {}, tmp_path / "2025-10-02T00:00:00.ms", cfg)
    assert spec.needed(job) and not spec.needed(StageJob(job.group_id, {}, job.ms_path, cfg, calibrator="3C147"))
    assert stages.next_stage("imaged", job) is spec
    with pytest.raises(PhotometryStageError, match="photometry of 2025-10-02T00:00:00.ms: no products database"):
        run_photometry(job)
