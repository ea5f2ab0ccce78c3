"""Conversion: UVH5 subband groups to imaging-ready Measurement Sets."""

import shutil
import subprocess

import numpy as np
import pytest
from casacore.tables import table

from dsa110_contimg.conversion.convert import ConvertOptions, choose_writer, convert_directory
from dsa110_contimg.simulate.presets import subband_frequencies
from dsa110_contimg.simulate.truth import GroupTruth
from dsa110_contimg.telescope import read_station_csv

from imaging_helpers import assert_rigid_phase_offset, fit_point_source, offset_arcsec, tclean_image


def _convert(indir, outdir, writer, antpos_csv, **kw):
    res = convert_directory(indir, ConvertOptions(output_dir=outdir, writer=writer, antpos_csv=antpos_csv,
                                                  stage_dir=outdir / "stage", **kw))
    assert len(res) == 1 and not isinstance(res[0], Exception), res
    return res[0]


@pytest.fixture(scope="module")
def converted(small_cal_group, antpos_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("conv")
    indir = small_cal_group.files[0].parent
    direct = _convert(indir, out / "direct", "direct-subband", antpos_csv)
    mono = _convert(indir, out / "mono", "monolithic", antpos_csv)
    return direct, mono, GroupTruth.from_json(small_cal_group.truth_path)


def test_casa_reads_the_ms(converted, antpos_csv):
    import casatools

    direct, _, truth = converted
    assert direct.writer == "direct-subband" and direct.ms_path.is_dir()
    assert set(direct.timings) >= {"load", "phase", "write", "combine", "finalize", "total"}
    msmd = casatools.msmetadata()
    msmd.open(str(direct.ms_path))
    try:
        freqs = msmd.chanfreqs(0)
        expected = np.sort(np.concatenate([subband_frequencies(sb, 6) for sb in range(16)]))
        assert msmd.nspw() == 1 and freqs.size == 96
        np.testing.assert_allclose(freqs, expected, rtol=0, atol=1e-3)  # exact, ascending
        assert msmd.nantennas() == 117
        assert len(msmd.antennasforscan(1)) == 24  # antennas with data in the small preset
        assert msmd.nrows() == 6 * 24 * 25 // 2  # integrations x baselines incl. autocorrelations
        assert msmd.observatorynames()[0] == "OVRO_DSA"
        pos = msmd.antennaposition(102)  # antenna '103'
        ants = read_station_csv(antpos_csv)
        xyz = casatools.measures().addxvalue(pos)["value"]
        np.testing.assert_allclose(xyz, ants.position_of("103"), atol=1e-3)
    finally:
        msmd.close()
    with table(str(direct.ms_path / "ANTENNA"), ack=False) as t:
        assert list(t.getcol("NAME")[:3]) == ["1", "2", "3"]
        assert t.getcol("STATION")[102] == "DSA-103"
        np.testing.assert_allclose(t.getcol("DISH_DIAMETER"), 4.65)


def test_uvw_match_casa(converted, tmp_path):
    from casatasks import fixplanets

    direct, _, _ = converted
    copy = tmp_path / "uvw.ms"
    shutil.copytree(direct.ms_path, copy)
    with table(str(copy / "FIELD"), ack=False) as t:
        ra, dec = t.getcol("PHASE_DIR")[0, 0]
    before = table(str(copy), ack=False).getcol("UVW")
    fixplanets(vis=str(copy), field="0", fixuvw=True, direction=f"J2000 {ra}rad {dec}rad")
    after = table(str(copy), ack=False).getcol("UVW")
    assert np.abs(after).max() > 100
    assert np.abs(after - before).max() < 1e-3  # CASA's own UVW agree to better than 1 mm


def test_model_and_corrected_every_row(converted):
    for res in converted[:2]:
        with table(str(res.ms_path), ack=False) as t:
            n = t.nrows()
            data, model, corr = t.getcol("DATA"), t.getcol("MODEL_DATA"), t.getcol("CORRECTED_DATA")
            assert model.shape[0] == corr.shape[0] == n
            assert np.all(model == 1) and np.array_equal(corr, data)
            w, interval = t.getcol("WEIGHT"), t.getcol("INTERVAL")
            np.testing.assert_allclose(w[:, 0] * 0.134217728, interval, rtol=1e-6)  # nsamples x sample time
            np.testing.assert_allclose(t.getcol("SIGMA"), 1 / np.sqrt(w), rtol=1e-6)


def test_direct_and_monolithic_equivalent(converted):
    direct, mono, _ = converted
    a, b = table(str(direct.ms_path), ack=False), table(str(mono.ms_path), ack=False)
    ka = list(zip(a.getcol("TIME").round(4), a.getcol("ANTENNA1"), a.getcol("ANTENNA2")))
    kb = {k: i for i, k in enumerate(zip(b.getcol("TIME").round(4), b.getcol("ANTENNA1"), b.getcol("ANTENNA2")))}
    idx = np.array([kb[k] for k in ka])
    assert a.nrows() == b.nrows() == len(set(ka))
    assert np.array_equal(a.getcol("FLAG"), b.getcol("FLAG")[idx])
    np.testing.assert_allclose(a.getcol("WEIGHT"), b.getcol("WEIGHT")[idx])
    da, db = a.getcol("DATA"), b.getcol("DATA")[idx]
    # amplitudes identical to float32 precision
    np.testing.assert_allclose(np.abs(da), np.abs(db), rtol=2e-6, atol=1e-6)
    # Phases.  Both writers rephase to the same J2000 centre, each with its own library's apparent place
    # (casacore measures in the direct writer, astropy/ERFA inside pyuvdata).  The two places differ by a rigid
    # sub-arcsecond offset ds (measured 0.67"), which turns the phase by 2 pi (u dl + v dm + w dn) / lambda: up
    # to 0.12 rad on the 2.6 km baselines at 1.5 GHz, and nothing else.  So instead of a flat tolerance: per
    # integration, one direction offset (< 1") must explain the phase differences of every baseline and channel
    # to float32 precision (1e-5 rad; measured 1.3e-7).
    with table(str(direct.ms_path / "SPECTRAL_WINDOW"), ack=False) as t:
        freqs = t.getcell("CHAN_FREQ", 0)
    assert_rigid_phase_offset(np.angle(da * np.conj(db)), ~a.getcol("FLAG") & (np.abs(da) > 1e-3), a.getcol("UVW"),
                              a.getcol("TIME"), freqs, max_offset_arcsec=1.0, max_residual_rad=1e-5)
    np.testing.assert_allclose(a.getcol("UVW"), b.getcol("UVW")[idx], atol=0.15)
    with table(str(direct.ms_path / "FIELD"), ack=False) as fa, table(str(mono.ms_path / "FIELD"), ack=False) as fb:
        np.testing.assert_allclose(fa.getcol("PHASE_DIR"), fb.getcol("PHASE_DIR"), atol=1e-9)


@pytest.mark.parametrize("which", [0, 1], ids=["direct-subband", "monolithic"])
def test_tclean_recovers_sources(converted, tmp_path, which):
    res, truth = converted[which], converted[2]
    image = tclean_image(res.ms_path, tmp_path / "img")
    for src in truth.sources:
        fit = fit_point_source(image, src["ra_deg"], src["dec_deg"])
        beam = np.sqrt(fit["bmaj_arcsec"] * fit["bmin_arcsec"])
        assert fit["peak"] == pytest.approx(src["apparent_flux_jy"], rel=0.02), src["name"]
        assert offset_arcsec(fit["ra_deg"], fit["dec_deg"], src["ra_deg"], src["dec_deg"]) < beam / 10


def test_wsclean_images_the_ms(converted, tmp_path):
    """WSClean reads the MS: the dirty image has the calibrator at its true position and flux.

    (A dirty image is the exact test of the data and UVW; CLEAN settings for the sparse
    small-preset PSF belong to the imaging stage.)
    """
    from astropy.io import fits
    from astropy.wcs import WCS

    direct, _, truth = converted
    ms = tmp_path / "ws.ms"
    shutil.copytree(direct.ms_path, ms)
    cmd = ["wsclean", "-quiet", "-size", "512", "512", "-scale", "8asec", "-niter", "0", "-weight", "natural",
           "-name", str(tmp_path / "ws"), str(ms)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    with fits.open(tmp_path / "ws-image.fits") as hdul:
        img, hdr = hdul[0].data[0, 0], hdul[0].header
    cal = truth.sources[0]
    wcs = WCS(hdr).celestial
    x, y = (int(round(float(v))) for v in wcs.world_to_pixel_values(cal["ra_deg"], cal["dec_deg"]))
    assert np.unravel_index(np.argmax(img), img.shape) == (y, x)  # brightest pixel at the true position
    assert img[y, x] == pytest.approx(cal["apparent_flux_jy"], rel=0.01)


def test_writer_choice():
    assert choose_writer("auto", 2, False) == "monolithic"
    assert choose_writer("auto", 16, False) == "direct-subband"
    assert choose_writer("monolithic", 16, True) == "direct-subband"  # partial groups keep their gap
    with pytest.raises(ValueError):
        choose_writer("fastest", 16, False)


def test_phase_per_integration(small_cal_group, antpos_csv, tmp_path):
    from dsa110_contimg.geometry import meridian_j2000

    res = _convert(small_cal_group.files[0].parent, tmp_path / "ppi", "direct-subband", antpos_csv,
                   phase_per_integration=True)
    truth = GroupTruth.from_json(small_cal_group.truth_path)
    with table(str(res.ms_path / "FIELD"), ack=False) as t:
        names, dirs = list(t.getcol("NAME")), t.getcol("PHASE_DIR")[:, 0, :]
    assert names == [f"meridian_icrs_t{i}" for i in range(6)]
    want = meridian_j2000(np.radians(truth.pointing_dec_deg), truth.times_mjd, np.radians(truth.fringestop_lon_deg))
    np.testing.assert_allclose(dirs, want, atol=1e-9)
    with table(str(res.ms_path), ack=False) as t:
        fid, tm = t.getcol("FIELD_ID"), t.getcol("TIME")
    for i, tt in enumerate(np.unique(tm)):
        assert np.all(fid[tm == tt] == i)
    # the calibrator (at the meridian mid-group) keeps its flux on the short baselines of its own integration
    with table(str(res.ms_path), ack=False) as t:
        sel = (fid == 3) & (t.getcol("ANTENNA1") != t.getcol("ANTENNA2"))
        amp = np.abs(t.getcol("DATA")[sel]).mean()
    assert amp == pytest.approx(truth.sources[0]["apparent_flux_jy"], rel=0.1)
