"""Imaging: WSClean and tclean recover injected sources; FITS products; products DB; worker; bad input."""

import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from casacore.tables import table

from dsa110_contimg.conversion.convert import ConvertOptions, convert_directory
from dsa110_contimg.imaging.image import ImageOptions, ImagingError, image_ms
from dsa110_contimg.qa.sources import find_sources, robust_rms
from dsa110_contimg.simulate.core import SimulateOptions, simulate
from dsa110_contimg.simulate.sky import SkySource, write_sources_csv
from dsa110_contimg.simulate.truth import GroupTruth

from imaging_helpers import offset_arcsec

REF_FREQ = 1.405e9  # centre of the band: the MFS reference frequency
IMG = dict(weighting="natural", imsize=1536, niter=3000, cell_arcsec=6.0)
PRESET = "medium"  # full-resolution channels and integrations (little smearing), 32 antennas


def _convert(indir, out, antpos_csv):
    return convert_directory(indir, ConvertOptions(output_dir=out, antpos_csv=antpos_csv,
                                                   stage_dir=out / "stage"))[0].ms_path


@pytest.fixture(scope="module")
def field_ms(tmp_path_factory, antpos_csv):
    """A small group with six sources of known flux (unit gains: perfectly calibrated data) and noise."""
    root = tmp_path_factory.mktemp("imaging")
    probe = simulate(SimulateOptions(output_dir=root / "probe", preset=PRESET, n_sources=0, noise=False,
                                     gains=False, antpos_csv=antpos_csv, seed=2))
    t = GroupTruth.from_json(probe.groups[0].truth_path)
    from dsa110_contimg.geometry import meridian_j2000

    ra0, dec0 = np.degrees(meridian_j2000(np.radians(t.pointing_dec_deg), [np.mean(t.times_mjd)],
                                          np.radians(t.fringestop_lon_deg))[0])
    offs = [(0.0, 0.0, 1.5), (0.5, 0.3, 0.8), (-0.6, 0.4, 1.2), (0.3, -0.7, 0.6), (-0.4, -0.5, 2.0),
            (0.9, 0.0, 1.0)]
    srcs = [SkySource(float(ra0 + dx / np.cos(np.radians(dec0))), float(dec0 + dy), f, -0.7, f"s{i}")
            for i, (dx, dy, f) in enumerate(offs)]
    write_sources_csv(srcs, root / "field.csv")
    sim = simulate(SimulateOptions(output_dir=root / "in", preset=PRESET, sources_csv=root / "field.csv",
                                   gains=False, antpos_csv=antpos_csv, seed=2))
    ms = _convert(root / "in", root / "ms", antpos_csv)
    return {"root": root, "ms": ms, "truth": GroupTruth.from_json(sim.groups[0].truth_path)}


def _measure(fits_path, truth):
    with fits.open(fits_path) as h:
        data, hdr = h[0].data[0, 0], h[0].header
    wcs = WCS(hdr)
    rms = robust_rms(np.nan_to_num(data))
    found = find_sources(np.nan_to_num(data), wcs, hdr["BMAJ"], hdr["BMIN"], hdr["BPA"], rms, snr_min=10)
    out = {}
    for s in truth.sources:
        best = min(found, key=lambda d: offset_arcsec(d.ra_deg, d.dec_deg, s["ra_deg"], s["dec_deg"]))
        out[s["name"]] = best
    return out, rms, hdr


@pytest.fixture(scope="module")
def both_images(field_ms):
    ws = image_ms(field_ms["ms"], ImageOptions(backend="wsclean", out_dir=field_ms["root"] / "ws", **IMG))
    tc = image_ms(field_ms["ms"], ImageOptions(backend="tclean", out_dir=field_ms["root"] / "tc", **IMG))
    return ws, tc


@pytest.mark.parametrize("which", [0, 1], ids=["wsclean", "tclean"])
def test_sources_recovered(both_images, field_ms, which):
    res = both_images[which]
    assert res.images.backend == ("wsclean", "tclean")[which]
    truth = field_ms["truth"]
    found, _, hdr = _measure(res.images.pbcor, truth)
    with fits.open(res.images.residual) as h:
        rms = robust_rms(h[0].data[0, 0])
    beam = 3600 * np.sqrt(hdr["BMAJ"] * hdr["BMIN"])
    for s in truth.sources:
        d = found[s["name"]]
        true = s["flux_jy"] * (REF_FREQ / 1.4e9) ** s["alpha"]
        assert s["apparent_flux_jy"] / rms > 50
        assert offset_arcsec(d.ra_deg, d.dec_deg, s["ra_deg"], s["dec_deg"]) < beam / 10, s["name"]
        # integrated flux: the small preset's 1.95 MHz channels and 12.9 s integrations smear off-axis
        # sources (peak down by up to ~10% at 0.9 deg), conserving their flux
        assert d.int_jy == pytest.approx(true, rel=0.03), s["name"]


def test_wsclean_and_tclean_agree(both_images):
    with fits.open(both_images[0].images.image) as a, fits.open(both_images[1].images.image) as b:
        ia, ib = a[0].data[0, 0], b[0].data[0, 0]
    assert np.nanmax(ia) == pytest.approx(np.nanmax(ib), rel=0.02)
    with fits.open(both_images[0].images.residual) as a, fits.open(both_images[1].images.residual) as b:
        ra, rb = robust_rms(a[0].data[0, 0]), robust_rms(b[0].data[0, 0])
    assert ra == pytest.approx(rb, rel=0.2)


def test_fits_headers_and_wcs(both_images, field_ms):
    s = field_ms["truth"].sources[1]
    for res in both_images:
        for p in (res.images.image, res.images.pbcor):
            with fits.open(p) as h:
                hdr = h[0].header
            for key in ("BMAJ", "BMIN", "BPA", "DATE-OBS"):
                assert key in hdr
            assert hdr["BUNIT"].upper() == "JY/BEAM" and hdr["TELESCOP"] == "OVRO_DSA"
            assert hdr["DATE-OBS"].startswith("2025-10-02")
            assert any(str(hdr[f"CTYPE{i}"]).startswith("FREQ") for i in range(1, hdr["NAXIS"] + 1))
            w = WCS(hdr).celestial
            x, y = w.world_to_pixel_values(s["ra_deg"], s["dec_deg"])
            ra, dec = w.pixel_to_world_values(x, y)
            assert offset_arcsec(ra, dec, s["ra_deg"], s["dec_deg"]) < 1e-3


def test_noise_only_rms_matches_thermal(tmp_path, antpos_csv):
    simulate(SimulateOptions(output_dir=tmp_path / "in", preset="small", n_sources=0, gains=False,
                             antpos_csv=antpos_csv, seed=8))
    truth = GroupTruth.from_json(next((tmp_path / "in").glob("*_truth.json")))
    ms = _convert(tmp_path / "in", tmp_path / "ms", antpos_csv)
    res = image_ms(ms, ImageOptions(backend="wsclean", weighting="natural", imsize=512, cell_arcsec=8.0, niter=0,
                                    pbcor=False, out_dir=tmp_path / "img"))
    with table(str(ms), ack=False) as t:
        cross = t.getcol("ANTENNA1") != t.getcol("ANTENNA2")
        n_vis = int((~t.getcol("FLAG")[cross][..., 0]).sum())
    predicted = truth.noise["sigma_per_vis_jy"] / np.sqrt(2 * n_vis)  # Stokes I from XX and YY, natural weights
    with fits.open(res.images.image) as h:
        rms = robust_rms(h[0].data[0, 0])
    assert predicted / 1.3 < rms < 1.3 * predicted


def test_image_and_record(field_ms, tmp_path):
    from dsa110_contimg.db import products as pdb
    from dsa110_contimg.pipeline.image_stage import image_and_record

    ms = tmp_path / "rec.ms"
    shutil.copytree(field_ms["ms"], ms)
    db = tmp_path / "products.sqlite3"
    opts = ImageOptions(backend="wsclean", quick=True, **{**IMG, "imsize": 512, "cell_arcsec": 8.0})
    first = image_and_record(ms, db, opts)
    second = image_and_record(ms, db, opts)
    assert first.image_id == second.image_id
    conn = pdb.connect(db)
    try:
        rec = pdb.get_ms(conn, str(ms.absolute()))
        assert rec.status == "completed" and rec.stage == "imaged" and rec.mid_mjd is not None
        images = pdb.list_images(conn, ms_path=str(ms.absolute()))
        assert sorted(i.type for i in images) == ["image", "pbcor"]
        img = pdb.get_image(conn, first.image_id)
        assert img.noise_jy > 0 and img.beam_major_arcsec > 0 and img.dynamic_range > 50
        assert Path(img.thumbnail_path).is_file() and Path(img.qa_plot_path).is_file()
        dets = pdb.get_detections(conn, first.image_id)
        assert len(dets) >= 5 and img.n_detections == len(dets)
    finally:
        conn.close()


def test_worker_scan(field_ms, tmp_path):
    from dsa110_contimg.pipeline.image_worker import scan_once

    d = tmp_path / "msdir"
    d.mkdir()
    shutil.copytree(field_ms["ms"], d / "a.ms")
    (d / "broken.ms").mkdir()
    (d / "broken.ms" / "table.dat").write_text("not a table")
    opts = ImageOptions(backend="wsclean", quick=True, imsize=256, cell_arcsec=12.0, niter=100)
    db = tmp_path / "p.sqlite3"
    r1 = scan_once(d, db, opts)
    assert [p.name for p in r1.imaged] == ["a.ms"] and list(r1.failed) == [str(d / "broken.ms")]
    r2 = scan_once(d, db, opts)
    assert r2.imaged == [] and r2.skipped == 1


def test_all_flagged_ms(field_ms, tmp_path):
    ms = tmp_path / "flagged.ms"
    shutil.copytree(field_ms["ms"], ms)
    with table(str(ms), readonly=False, ack=False) as t:
        t.putcol("FLAG", np.ones_like(t.getcol("FLAG")))
    with pytest.raises(ImagingError, match="all data are flagged"):
        image_ms(ms, ImageOptions(quick=True))


def test_forced_corrected_without_column(field_ms, tmp_path):
    ms = tmp_path / "nocorr.ms"
    shutil.copytree(field_ms["ms"], ms)
    with table(str(ms), readonly=False, ack=False) as t:
        t.removecols("CORRECTED_DATA")
    with pytest.raises(ImagingError, match="no CORRECTED_DATA"):
        image_ms(ms, ImageOptions(datacolumn="corrected", quick=True))
    res = image_ms(ms, ImageOptions(datacolumn="auto", quick=True, imsize=256, cell_arcsec=12, niter=50,
                                    out_dir=tmp_path / "o"))
    assert res.datacolumn == "DATA" and any("uncalibrated" in w for w in res.warnings)


def test_missing_wsclean_falls_back_to_tclean(field_ms, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no wsclean on PATH
    res = image_ms(field_ms["ms"], ImageOptions(quick=True, imsize=256, cell_arcsec=12.0, niter=50,
                                                out_dir=tmp_path / "fb"))
    assert res.images.backend == "tclean"
    assert any("falling back to CASA tclean" in w for w in res.warnings)
    assert res.images.image.is_file()
