"""Linear mosaics of consecutive drift-scan snapshots (issue 15), against injected truth.

The snapshots are synthesized as the imager writes them (:mod:`dsa110_contimg.mosaic.synth`): one SIN
image per 309 s group centred on the meridian at the group's mid-time (so they step 1.29 deg of RA
east, 0.73 deg on the sky at dec +55.45), point sources times the package's drift-scan beam
convolved with a Gaussian restoring beam, plus noise correlated like the beam.  To keep the images
small the "array" is compact: 60" cells and a 4' beam (four cells, as the imager's default cell of a
quarter beam), 360 px covering the drift-scan beam down to 10% at the lowest frequency, as the
imager's default size does; the primary beam is the real 4.65 m dish over the real band.  The strip
crosses RA 0.
"""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from dsa110_contimg.beam import separation_deg
from dsa110_contimg.errors import BadInputError
from dsa110_contimg.imaging.defaults import good_size, pb_radius_rad
from dsa110_contimg.imaging.fits_products import complete_header, drift_scan_pb, grid_interp, pb_keywords
from dsa110_contimg.mosaic.beam import DriftBeam
from dsa110_contimg.mosaic.build import MosaicInput, MosaicInputError, MosaicOptions, build_mosaic
from dsa110_contimg.mosaic.grid import GridError, OutputGrid, choose_projection, plan_grid
from dsa110_contimg.mosaic.kernels import (accumulate, beam_cov, convolved_rms_factor, enclosing_cov, finalize,
                                           gaussian_kernel, strip_ra)
from dsa110_contimg.mosaic.synth import (SnapshotSpec, group_beam, group_starts, meridian_centre, start_for_ra,
                                         write_snapshots)
from dsa110_contimg.qa.sources import robust_rms

CELL, BEAM, RMS, N_GROUPS = 60.0, 240.0, 1e-3, 6


def _spec(**kw) -> SnapshotSpec:
    drift = 309.24 * 15.041 / 3600 * math.cos(math.radians(55.6))
    n = good_size(int(math.ceil(2 * (math.degrees(pb_radius_rad(0.1, 1.3113873e9)) + drift / 2) * 3600 / CELL)))
    return SnapshotSpec(**{"n_px": n, "cell_arcsec": CELL, "beam_arcsec": BEAM, "rms_jy": RMS, **kw})


def _sky(spec, starts):
    """Sources along and across the strip: (ra, dec, flux) arrays and names."""
    cen = [meridian_centre(spec, group_beam(spec, t)) for t in starts]
    dec0 = cen[0][1]
    ra = [c[0] for c in cen]
    per_deg = 1.0 / math.cos(math.radians(dec0))  # RA degrees per degree on the sky
    src = {"centre g0": (ra[0], dec0, 0.5), "centre g4, edge g1": (ra[4], dec0 + 0.05, 0.8),
           "between g2 g3, north": (0.5 * (ra[2] + ra[3] + 360 * (ra[3] < ra[2])), dec0 + 1.2, 0.6),
           "south edge": (ra[3], dec0 - 1.5, 1.0), "bright g2": (ra[2], dec0 - 0.4, 2.0),
           "east end": (ra[5] + 1.4 * per_deg, dec0 + 0.3, 2.0), "west end": (ra[0] - 1.4 * per_deg, dec0 - 0.2, 2.0)}
    names = list(src)
    arr = np.array([src[k] for k in names], dtype=float)
    return np.mod(arr[:, 0], 360.0), arr[:, 1], arr[:, 2], names


@pytest.fixture(scope="module")
def strip(tmp_path_factory):
    """Six consecutive snapshots crossing RA 0, their sky, and the mosaic with QA and a catalog match."""
    from test_catalog_support import write_nvss_csv

    from dsa110_contimg.catalog.build_master import BuildMasterOptions, build_master

    tmp = tmp_path_factory.mktemp("mosaic")
    spec = _spec()
    starts = group_starts(start_for_ra(spec, 357.0), N_GROUPS)
    ra, dec, flux, names = _sky(spec, starts)
    paths = write_snapshots(tmp / "in", spec, starts, ra, dec, flux, seed=1)
    rows = [{"ra": float(r), "dec": float(d), "s": float(f) * 1e3, "e": 0.5} for r, d, f in zip(ra, dec, flux)]
    cat = build_master(BuildMasterOptions(nvss=write_nvss_csv(tmp / "nvss.csv", rows), out=tmp / "master.sqlite3")).out
    inputs = [MosaicInput(p, group_id=f"g{i}") for i, p in enumerate(paths)]
    res = build_mosaic(inputs, MosaicOptions(out=tmp / "out" / "strip", catalog_path=cat))
    return {"tmp": tmp, "spec": spec, "starts": starts, "paths": paths, "ra": ra, "dec": dec, "flux": flux,
            "names": names, "res": res, "inputs": inputs, "beams": [group_beam(spec, t) for t in starts]}


def _maps(res):
    m = fits.getdata(res.mosaic_path)[0].astype(float)
    n = fits.getdata(res.noise_path)[0].astype(float)
    w = fits.getdata(res.weight_path)[0].astype(float)
    return m, n, w, WCS(fits.getheader(res.mosaic_path)).celestial


def _matches(strip, res=None):
    """Per injected source: (name, true flux, detection dict or None, separation arcsec)."""
    res = res or strip["res"]
    found = res.qa["image"]["sources"]
    out = []
    for r, d, f, name in zip(strip["ra"], strip["dec"], strip["flux"], strip["names"]):
        seps = [float(separation_deg(r, d, s["ra_deg"], s["dec_deg"])) * 3600 for s in found]
        i = int(np.argmin(seps)) if seps else -1
        out.append((name, f, found[i] if i >= 0 and seps[i] < BEAM else None, seps[i] if i >= 0 else np.inf))
    return out


def _assert_sources_right(strip, res=None, min_covered=6):
    """Every injected source with S/N > 20 in the mosaic at its true flux within 3% and within a tenth
    of the beam; at least ``min_covered`` of them."""
    checked = 0
    for name, f, s, sep in _matches(strip, res):
        if s is None or s["snr"] <= 20:
            continue
        checked += 1
        assert s["int_jy"] / f == pytest.approx(1.0, abs=0.03), (name, s)
        assert s["peak_jy"] / f == pytest.approx(1.0, abs=0.03), (name, s)
        assert sep < BEAM / 10, (name, sep)
    assert checked >= min_covered


def test_sources_at_their_true_flux_and_position(strip):
    _assert_sources_right(strip, min_covered=len(strip["names"]))
    # the test covers a source near the 10% edge of one snapshot and at the centre of another
    k = strip["names"].index("centre g4, edge g1")
    pb = np.array([b.power(strip["ra"][k], strip["dec"][k]) for b in strip["beams"]]).ravel()
    assert pb.max() > 0.95 and ((pb >= 0.1) & (pb <= 0.25)).any(), pb
    assert strip["res"].projection == "SIN" and abs(strip["res"].centre_deg[0] - 0.2) < 1.5  # across RA 0


def test_measured_noise_matches_prediction_and_beats_every_snapshot(strip):
    m, n, w, wcs = _maps(strip["res"])
    yy, xx = np.mgrid[0:m.shape[0], 0:m.shape[1]]
    ra, dec = wcs.pixel_to_world_values(xx, yy)
    near = np.zeros(m.shape, dtype=bool)
    for r, d in zip(strip["ra"], strip["dec"]):
        near |= separation_deg(r, d, ra, dec) < 5 * BEAM / 3600
    free = np.isfinite(m) & ~near
    med = float(np.median(n[free]))
    uniform = free & (np.abs(n - med) <= 0.05 * med)
    assert uniform.sum() > 2000
    measured = robust_rms(m[uniform])
    assert measured / float(np.median(n[uniform])) == pytest.approx(1.0, abs=0.2)
    deep = free & (n <= 1.1 * np.nanmin(n))
    assert deep.sum() > 1000
    best_snapshot = min(robust_rms(fits.getdata(p)[0, 0]) for p in strip["paths"])
    assert robust_rms(m[deep]) < 0.8 * best_snapshot
    assert strip["res"].qa["noise_ratio"] == pytest.approx(1.0, abs=0.2)
    assert np.allclose(n[w > 0], 1 / np.sqrt(w[w > 0]), rtol=1e-5)
    assert np.isnan(m[w == 0]).all() and (w == 0).any()  # blank where no input reaches the cutoff


def test_qa_catalog_match_and_preview(strip):
    qa = strip["res"].qa
    img = qa["image"]
    assert img["n_matched"] >= 6 and img["flux_compared"] == "mosaic"
    assert img["flux_ratio_median"] == pytest.approx(1.0, abs=0.03)
    assert img["astrometry_offset_arcsec"] < BEAM / 10
    png = strip["res"].preview_path
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_header_wcs_beam_inputs_and_atomic_rebuild(strip):
    res, tmp = strip["res"], strip["tmp"]
    h = fits.getheader(res.mosaic_path)
    first = fits.getheader(strip["paths"][0])
    assert h["BUNIT"] == "JY/BEAM" and h["BMAJ"] == pytest.approx(BEAM / 3600) and h["CTYPE3"] == "FREQ"
    assert h["DATE-OBS"] == first["DATE-OBS"] and h["MJD-BEG"] == pytest.approx(first["PBMJD0"])
    assert h["MJD-END"] == pytest.approx(fits.getheader(strip["paths"][-1])["PBMJD1"])
    assert h["NINPUT"] == N_GROUPS and h["IMG001"] == strip["paths"][0].name and h["GRP006"] == "g5"
    history = "".join(h["HISTORY"])  # a long path runs on over several cards
    assert sum(str(p) in history for p in strip["paths"]) == N_GROUPS
    assert fits.getheader(res.weight_path)["MOSMAP"] == "WEIGHT" and fits.getheader(res.noise_path)["BUNIT"] == "JY/BEAM"
    assert [u.group_id for u in res.used] == [f"g{i}" for i in range(N_GROUPS)] and not res.excluded
    d = res.to_dict()
    assert d["mosaic_path"] == str(res.mosaic_path) and d["used"][0]["drift_beam"]["n_times"] == 24
    assert d["qa"]["image"]["n_sources"] == res.qa["image"]["n_sources"] and d["shape"] == list(res.shape)
    # rebuilding replaces the maps atomically and leaves no temporary file
    before = os.stat(res.mosaic_path).st_ino
    again = build_mosaic(strip["inputs"], MosaicOptions(out=res.mosaic_path, qa=False))
    assert again.mosaic_path == res.mosaic_path and os.stat(res.mosaic_path).st_ino != before
    assert sorted(p.name for p in res.mosaic_path.parent.iterdir()) == \
        ["strip.fits", "strip.noise.fits", "strip.png", "strip.weight.fits"]
    np.testing.assert_allclose(fits.getdata(again.mosaic_path), fits.getdata(res.mosaic_path), rtol=1e-5,
                               atol=1e-7, equal_nan=True)


@pytest.mark.filterwarnings("ignore:File may have been truncated")
def test_missing_and_unreadable_inputs_are_listed_and_the_rest_is_right(strip, tmp_path):
    truncated = tmp_path / "truncated-MFS-image.fits"
    truncated.write_bytes(strip["paths"][2].read_bytes()[:40000])
    garbage = tmp_path / "garbage-MFS-image.fits"
    garbage.write_bytes(b"not a FITS file\n" * 100)
    bad = [MosaicInput(tmp_path / "missing-MFS-image.fits", "gm"), MosaicInput(truncated, "gt"),
           MosaicInput(garbage, "gg")]
    res = build_mosaic(strip["inputs"][:3] + bad + strip["inputs"][3:], MosaicOptions(out=tmp_path / "m", qa=False))
    reasons = {e.group_id: e.reason for e in res.excluded}
    assert set(reasons) == {"gm", "gt", "gg"}
    assert "missing" in reasons["gm"] and "unreadable" in reasons["gt"] and "unreadable" in reasons["gg"]
    assert all(str(b.image_path) in reasons[b.group_id] for b in bad)
    assert len(res.used) == N_GROUPS
    np.testing.assert_allclose(fits.getdata(res.mosaic_path), fits.getdata(strip["res"].mosaic_path), rtol=1e-5,
                               atol=1e-7, equal_nan=True)
    with pytest.raises(MosaicInputError, match="no usable mosaic input.*missing"):
        build_mosaic(bad, MosaicOptions(out=tmp_path / "none", qa=False))


def test_mismatched_frequency_raises_naming_the_file(strip, tmp_path):
    odd = tmp_path / "odd-MFS-image.fits"
    shutil.copy(strip["paths"][1], odd)
    with fits.open(odd, mode="update") as hdul:
        hdul[0].header["CRVAL3"] *= 1.05
    inputs = [MosaicInput(p) for p in strip["paths"][:1] + [odd] + strip["paths"][2:]]
    with pytest.raises(MosaicInputError, match=r"mismatched frequencies: .*odd-MFS-image\.fits") as exc:
        build_mosaic(inputs, MosaicOptions(out=tmp_path / "m", qa=False))
    assert isinstance(exc.value, BadInputError) and exc.value.files == [odd]
    assert not (tmp_path / "m.fits").exists()


def test_rms_and_dynamic_range_cuts_exclude_the_noisy_image(strip, tmp_path):
    spec, starts = strip["spec"], strip["starts"]
    noisy = write_snapshots(tmp_path / "noisy", spec, starts[3:4], strip["ra"], strip["dec"], strip["flux"], seed=9,
                            rms_scale=[5.0])[0]
    inputs = [MosaicInput(p) for p in strip["paths"][:3]] + [MosaicInput(noisy, "noisy")] + \
        [MosaicInput(p) for p in strip["paths"][4:]]
    res = build_mosaic(inputs, MosaicOptions(out=tmp_path / "m", qa=False, max_rms_jy=2.5 * RMS))
    assert [e.group_id for e in res.excluded] == ["noisy"] and "max_rms_jy" in res.excluded[0].reason
    assert len(res.used) == N_GROUPS - 1 and all(u.rms_jy == pytest.approx(RMS, rel=0.05) for u in res.used)
    dr = [MosaicInput(p, dynamic_range=(50.0 if p == noisy else 500.0)) for p in [i.image_path for i in inputs]]
    res = build_mosaic(dr, MosaicOptions(out=tmp_path / "m2", qa=False, min_dynamic_range=100.0))
    assert [Path(e.image_path) for e in res.excluded] == [noisy] and "dynamic range" in res.excluded[0].reason


def test_bands_tile_the_output_without_overlap(strip, tmp_path, monkeypatch):
    """Cut into many row bands (as full-size inputs are), the mosaic and its weights are the same."""
    from dsa110_contimg.mosaic import build

    monkeypatch.setattr(build, "BAND_PIXELS", 20_000)
    banded = build_mosaic(strip["inputs"], MosaicOptions(out=tmp_path / "banded", qa=False, threads=1))
    for a, b in ((banded.mosaic_path, strip["res"].mosaic_path), (banded.weight_path, strip["res"].weight_path)):
        np.testing.assert_allclose(fits.getdata(a), fits.getdata(b), rtol=2e-5, atol=1e-6, equal_nan=True)


def test_lattice_mapping_equals_exact_reprojection(strip, tmp_path):
    exact = build_mosaic(strip["inputs"], MosaicOptions(out=tmp_path / "exact", qa=False, exact_coords=True))
    a, n, _, _ = _maps(strip["res"])
    b = fits.getdata(exact.mosaic_path)[0].astype(float)
    assert np.array_equal(np.isnan(a), np.isnan(b))
    ok = np.isfinite(a)
    assert np.max(np.abs(a - b)[ok] / n[ok]) < 0.05  # a twentieth of the noise, sources included


def test_car_projection_gives_the_same_sources(strip, tmp_path):
    res = build_mosaic(strip["inputs"], MosaicOptions(out=tmp_path / "car", projection="CAR"))
    assert res.projection == "CAR"
    _assert_sources_right(strip, res, min_covered=len(strip["names"]))
    h = fits.getheader(res.mosaic_path)
    assert h["CTYPE1"] == "RA---CAR" and h["CRVAL2"] == pytest.approx(res.centre_deg[1])
    assert -h["CDELT1"] == h["CDELT2"] == pytest.approx(CELL / 3600)


def test_long_strip_goes_to_car_across_ra_zero_and_holds_every_footprint():
    centres = [330.0, 345.0, 0.0, 15.0, 30.0]  # 4 h of RA across 0
    wcses, fps = [], []
    t = np.linspace(0, 2 * np.pi, 60)
    for ra in centres:
        w = WCS(naxis=2)
        w.wcs.ctype, w.wcs.crval, w.wcs.crpix, w.wcs.cdelt = ["RA---SIN", "DEC--SIN"], [ra, 55.6], [6, 6], \
            [-0.01, 0.01]
        wcses.append(w)
        d = 55.6 + 2.5 * np.sin(t)
        fps.append(((ra + 2.5 * np.cos(t) / np.cos(np.radians(d))) % 360, d))
    grid = plan_grid(wcses, [(11, 11)] * 5, fps, "auto", pixel_deg=0.02)
    assert grid.projection == "CAR" and grid.ra0_deg == pytest.approx(0.0, abs=1e-6)
    x, y = grid.wcs().world_to_pixel_values(np.concatenate([f[0] for f in fps]), np.concatenate([f[1] for f in fps]))
    ny, nx = grid.shape
    assert x.min() >= 0 and y.min() >= 0 and x.max() <= nx - 1 and y.max() <= ny - 1
    assert 60.0 * 0.57 / 0.02 < nx < (60.0 * 0.57 + 6) / 0.02  # ~34 deg of arc along the strip plus the beams
    with pytest.raises(GridError, match="use CAR"):
        plan_grid(wcses, [(11, 11)] * 5, fps[:-1] + [(np.array([180.0]), np.array([-30.0]))], "SIN", pixel_deg=0.02)


def test_common_beam_and_largest_beam(strip, tmp_path):
    spec, starts = strip["spec"], strip["starts"]
    wide = write_snapshots(tmp_path / "wide", _spec(beam_arcsec=1.25 * BEAM), starts[1::2], strip["ra"], strip["dec"],
                           strip["flux"], seed=4)
    paths = [strip["paths"][0], wide[0], strip["paths"][2], wide[1], strip["paths"][4], wide[2]]
    inputs = [MosaicInput(p) for p in paths]
    plain = build_mosaic(inputs, MosaicOptions(out=tmp_path / "plain", qa=False))
    assert plain.beam_arcsec[0] == pytest.approx(1.25 * BEAM)
    res = build_mosaic(inputs, MosaicOptions(out=tmp_path / "common", common_beam=True))
    assert res.beam_arcsec[0] == pytest.approx(1.25 * BEAM, rel=2e-3) and res.beam_arcsec[1] == pytest.approx(
        1.25 * BEAM, rel=2e-3)
    _assert_sources_right(strip, res, min_covered=6)
    sizes = [s["maj_arcsec"] for _, _, s, _ in _matches(strip, res) if s is not None and s["snr"] > 100]
    assert np.median(sizes) == pytest.approx(1.25 * BEAM, rel=0.03)
    assert res.qa["noise_ratio"] == pytest.approx(1.0, abs=0.2)


def test_kernels():
    # linear mosaic of two estimates: inverse-variance weighting of I / pb
    num, den = np.zeros(3, np.float32), np.zeros(3, np.float32)
    pb1, pb2 = np.array([1.0, 0.5, 0.05]), np.array([0.5, 1.0, 0.05])
    accumulate(num, den, (2.0 * pb1).astype(np.float32), pb1, 1 / 0.1 ** 2, 0.1)
    accumulate(num, den, (2.0 * pb2).astype(np.float32), pb2, 1 / 0.2 ** 2, 0.1)
    m, w, n = finalize(num, den)
    assert m[:2] == pytest.approx([2.0, 2.0]) and np.isnan(m[2]) and np.isnan(n[2])
    assert w[0] == pytest.approx(1 / 0.01 + 0.25 / 0.04) and n[1] == pytest.approx((0.25 / 0.01 + 1 / 0.04) ** -0.5)
    # the lattice interpolation (also pb_image's) is RegularGridInterpolator's bilinear
    from scipy.interpolate import RegularGridInterpolator

    gy, gx, vals = np.linspace(0, 99, 7), np.array([0.0, 16.0, 32.0, 48.0, 64.0]), np.random.default_rng(1).random((7, 5))
    yy, xx = np.mgrid[0:100, 0:50]
    ref = RegularGridInterpolator((gy, gx), vals)(np.stack([yy.ravel(), xx.ravel()], -1)).reshape(100, 50)
    np.testing.assert_allclose(grid_interp(vals, gy, gx, 100, 50), ref, rtol=1e-12)
    # RA across 0 and projection choice
    assert strip_ra([359.5, 0.5, 1.5]) == pytest.approx((0.5, 2.0))
    assert strip_ra([10.0, 350.0, 20.0])[1] == pytest.approx(30.0)
    assert choose_projection("auto", 15.0) == "SIN" and choose_projection("auto", 30.0) == "CAR"
    assert choose_projection("car", 1.0) == "CAR"
    # CAR centred on the strip: the central column is the meridian, the central row the great circle tangent
    # to the strip, equidistant, pixels square on the sky
    g = OutputGrid("CAR", 10.0, 55.6, 0.01, (101, 4001), (2001.0, 51.0)).wcs()
    ra, dec = g.pixel_to_world_values(2000.0, np.array([0.0, 50.0, 100.0]))
    assert np.allclose(ra, 10.0) and np.allclose(dec, [55.1, 55.6, 56.1])
    ra, dec = g.pixel_to_world_values(np.array([2000.0, 2001.0, 0.0]), np.array([50.0, 50.0, 50.0]))
    assert separation_deg(ra[0], dec[0], ra[1], dec[1]) == pytest.approx(0.01, rel=1e-6)
    assert separation_deg(ra[0], dec[0], ra[2], dec[2]) == pytest.approx(20.0, rel=1e-6)
    # a common beam contains each beam; convolving beam-correlated noise scales its rms as predicted
    c1, c2 = beam_cov(40.0, 20.0, 0.0), beam_cov(40.0, 20.0, 90.0)
    c = enclosing_cov([c1, c2])
    assert np.linalg.eigvalsh(c - c1).min() >= 0 and np.linalg.eigvalsh(c - c2).min() >= 0
    assert np.sqrt(np.linalg.eigvalsh(c)) == pytest.approx(np.sqrt(np.linalg.eigvalsh(beam_cov(40, 40, 0))), rel=2e-3)
    from scipy.signal import fftconvolve

    rng = np.random.default_rng(3)
    cin, cout = beam_cov(4.0, 4.0, 0.0), beam_cov(7.0, 5.0, 30.0)  # pixels
    white = rng.standard_normal((768, 768))
    noise = fftconvolve(white, gaussian_kernel(cin / 2), mode="same")[64:-64, 64:-64]
    noise /= noise.std()
    conv = fftconvolve(noise, gaussian_kernel(cout - cin), mode="same")[64:-64, 64:-64]
    conv *= math.sqrt(np.linalg.det(cout) / np.linalg.det(cin))
    assert conv.std() == pytest.approx(convolved_rms_factor(cin, cout), rel=0.05)


def test_drift_beam_from_msinfo_and_header_is_the_package_model(tmp_path):
    from astropy.time import Time

    from dsa110_contimg.ms import MSInfo

    t = 61000.25 + np.arange(24) * 12.884902 / 86400
    f = np.linspace(1.3113873e9, 1.4986432e9, 768)
    info = MSInfo(path=tmp_path / "x.ms", times=Time(t, format="mjd", scale="utc"), integration_s=12.884902,
                  freqs_hz=f, channel_width_hz=f[1] - f[0], field_names=("m",), field_dirs_rad=np.zeros((1, 2)),
                  pointing_dec_rad=math.radians(55.6), fringestop_lon_rad=math.radians(-118.283), telescope="OVRO_DSA",
                  n_rows=1, n_antennas=1, n_pols=2, corrected_is_calibrated=True)
    beam = DriftBeam.from_msinfo(info)
    ra, dec = np.array([[20.0, 21.5], [19.0, 22.0]]), np.array([[55.5, 56.0], [54.0, 57.5]])
    np.testing.assert_allclose(beam.power(ra, dec), drift_scan_pb(ra, dec, info), rtol=1e-12)
    # the imager's header keywords rebuild the same beam
    img = tmp_path / "img.fits"
    h = fits.Header({"CTYPE1": "RA---SIN", "CTYPE2": "DEC--SIN", "CTYPE3": "FREQ", "CRVAL3": 1.4e9, "BMAJ": 0.01,
                     "BMIN": 0.01, "BPA": 0.0})
    fits.PrimaryHDU(np.zeros((1, 4, 4), np.float32), h).writeto(img)
    complete_header(img, info, extra={"IMAGER": "wsclean", **pb_keywords(info)})
    back = DriftBeam.from_header(fits.getheader(img))
    assert back == beam
    with pytest.raises(BadInputError, match="PBDEC"):
        DriftBeam.from_header(h, "old.fits")
