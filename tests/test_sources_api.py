"""Survey sources through the API, the dashboard and ``contimg sources``, on a small real products database.

The database is built with the package's own writers (``db.products.connect`` makes
the schema, ``db.sources.record_photometry`` records six images' photometry as the
daemon does), without running the pipeline: a steady catalog source, a source
stepping between two fluxes (variable) and a flare first detected in the last image
with two backfilled upper limits (new, too few measurements to be variable).  Each
image's pb-corrected FITS is real (256 px of 12", the three sources at their fluxes plus
noise) in the output folder, but image 2's registered file is a symbolic link (refused).
"""

from __future__ import annotations

import io
import json
import os
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from dsa110_contimg.api import create_app
from dsa110_contimg.config import load_settings
from dsa110_contimg.photometry.models import ImageRun, Measurement, NewSource, PhotometryResult

MJD0 = 60950.0
STEADY = [0.50, 0.51, 0.49, 0.50, 0.505, 0.495]
STEP = [0.30, 0.30, 0.60, 0.60, 0.30, 0.60]
POS = {"steady": (86.0, 50.0), "var": (86.5, 50.2), "new": (85.5, 49.8)}


def _run(i: int, img: Path) -> ImageRun:
    mjd = MJD0 + i
    return ImageRun(image_id=i, group_id=f"2025-10-0{i}T00:00:00", ms_path=f"/ms/{i}.ms",
                    image_path=str(img / f"{i}.fits"), pbcor_path=str(img / f"{i}-pb.fits"), mid_mjd=mjd,
                    first_time_mjd=mjd, last_time_mjd=mjd, n_times=1,
                    pointing_dec_deg=50.0, fringestop_lon_deg=-118.3, freq_min_hz=1.31e9, freq_max_hz=1.5e9,
                    ra_deg=86.0, dec_deg=50.0, radius_deg=1.5, rms_jy=0.002, beam_major_arcsec=36.0,
                    beam_minor_arcsec=30.0, beam_pa_deg=0.0)


def _m(i: int, which: str, flux: float, kind: str = "forced", **kw) -> Measurement:
    ra, dec = POS[which]
    det = dict(det_ra_deg=ra, det_dec_deg=dec, det_ra_err_arcsec=2.0, det_dec_err_arcsec=2.0,
               detection_id=100 + i) if kind == "detection" else {}
    return Measurement(image_id=i, mjd=MJD0 + i, flux_jy=flux, flux_err_jy=0.01, local_rms_jy=0.01, pb=0.8,
                       ra_deg=ra, dec_deg=dec, kind=kind, **det, **kw)


def _write_pbcor(path: Path, i: int, rng) -> None:
    """Image ``i``'s pb-corrected FITS as WSClean lays it out (4 axes): the three sources at their fluxes, noise."""
    from astropy.io import fits
    from astropy.wcs import WCS

    n, cell = 256, 12.0
    h = fits.Header()
    for k, (ctype, crval, cdelt, crpix) in enumerate([("RA---SIN", 86.0, -cell / 3600, n / 2 + 1),
                                                       ("DEC--SIN", 50.0, cell / 3600, n / 2 + 1),
                                                       ("FREQ", 1.4e9, 1.9e8, 1.0), ("STOKES", 1.0, 1.0, 1.0)], 1):
        h[f"CTYPE{k}"], h[f"CRVAL{k}"], h[f"CDELT{k}"], h[f"CRPIX{k}"] = ctype, crval, cdelt, crpix
    h["BMAJ"], h["BMIN"], h["BPA"], h["BUNIT"] = 36 / 3600, 30 / 3600, 0.0, "JY/BEAM"
    wcs = WCS(h).celestial
    yy, xx = np.mgrid[0:n, 0:n]
    data = rng.normal(0.0, 0.002, (n, n))
    for which, flux in (("steady", STEADY[i - 1]), ("var", STEP[i - 1]), ("new", 0.2 if i == 6 else 0.0)):
        x, y = wcs.world_to_pixel_values(*POS[which])
        data += flux * np.exp(-0.5 * ((xx - x) ** 2 + (yy - y) ** 2) / (33 / 2.355 / cell) ** 2)
    path.parent.mkdir(parents=True, exist_ok=True)
    fits.PrimaryHDU(data[None, None].astype(np.float32), h).writeto(path)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Settings pointing at a products database with three sources (ids in the dict)."""
    from dsa110_contimg.db import products as pdb
    from dsa110_contimg.db import sources as sdb

    root = tmp_path_factory.mktemp("sources")
    env = {"PIPELINE_STATE_DIR": str(root / "state"), "PIPELINE_INCOMING_DIR": str(root / "incoming"),
           "PIPELINE_OUTPUT_DIR": str(root / "out"), "PIPELINE_STAGE_DIR": str(root / "stage"),
           "PIPELINE_PRODUCTS_DB": str(root / "state" / "products.sqlite3")}
    s = replace(load_settings(env), api_cache_s=0.0)
    img = root / "out" / "img"
    rng = np.random.default_rng(5)
    for i in range(1, 7):
        _write_pbcor(img / (f"{i}-pb.fits" if i != 2 else "elsewhere.fits"), i, rng)
    os.symlink(img / "elsewhere.fits", img / "2-pb.fits")  # registered, but a link: never read
    conn = pdb.connect(s.products_db)
    for i in range(1, 7):
        pdb.upsert_image(conn, pdb.ImageRecord(str(img / f"{i}.fits"), ms_path=f"/ms/{i}.ms", type="image"))
    first = PhotometryResult(_run(1, img), (_m(1, "steady", STEADY[0], "detection", new_index=0),
                                       _m(1, "var", STEP[0], "detection", new_index=1)),
                             (NewSource(*POS["steady"], 2.0, 2.0, "catalog", catalog_source_id=77,
                                        catalog_sep_arcsec=1.5, catalog_flux_jy=0.48),
                              NewSource(*POS["var"], 2.0, 2.0, "detection")), 0, 36.0)
    steady, var = sdb.record_photometry(conn, first).new_source_ids
    for i in range(2, 7):
        ms = [_m(i, "steady", STEADY[i - 1], "detection", source_id=steady),
              _m(i, "var", STEP[i - 1], "detection" if STEP[i - 1] > 0.5 else "forced", source_id=var)]
        new = ()
        if i == 6:  # a flare: detected now, forced upper limits measured after the fact in images 4 and 5
            ms += [_m(6, "new", 0.2, "detection", new_index=0), _m(4, "new", 0.001, new_index=0, backfilled=True),
                   _m(5, "new", -0.002, new_index=0, backfilled=True)]
            new = (NewSource(*POS["new"], 2.0, 2.0, "detection", new_sigma=20.0, n_earlier_images=2),)
        made = sdb.record_photometry(conn, PhotometryResult(_run(i, img), tuple(ms), new, var, 36.0)).new_source_ids
    conn.close()
    ids = {"steady": steady, "var": var, "new": made[0], "settings": s, "env": env, "img": img}
    return ids


@pytest.fixture(scope="module")
def client(site):
    with TestClient(create_app(site["settings"]), raise_server_exceptions=False) as c:
        yield c


def _ids(client, query: str) -> list[int]:
    r = client.get(f"/api/sources?{query}")
    assert r.status_code == 200, r.text
    return sorted(s["id"] for s in r.json()["items"])


def test_filters_return_exactly_the_expected_sources(client, site):
    steady, var, new = site["steady"], site["var"], site["new"]
    assert _ids(client, "") == sorted([steady, var, new])
    assert _ids(client, "variable=true") == [var]
    assert _ids(client, "variable=false") == sorted([steady, new])
    assert _ids(client, "new=true") == [new]
    assert _ids(client, "min_eta=100") == sorted([var, new])
    assert _ids(client, "min_v=0.1") == sorted([var, new])
    assert _ids(client, "min_v=1.0") == [new]
    assert _ids(client, "variable=true&min_eta=1e12") == []
    r = client.get("/api/sources?order=n&limit=2").json()
    assert (r["total"], r["limit"], r["offset"], len(r["items"])) == (3, 2, 0, 2)
    assert {s["id"] for s in r["items"]} == {steady, var} and r["items"][0]["n_measurements"] == 6
    last = client.get("/api/sources?order=n&limit=2&offset=2").json()
    assert last["total"] == 3 and [s["id"] for s in last["items"]] == [new]
    for bad in ("min_eta=nan", "min_v=inf", "order=bogus", "limit=0", "limit=100000", "offset=-1",
                "offset=9223372036854775808"):
        assert client.get(f"/api/sources?{bad}").status_code == 422, bad


def test_source_detail_lightcurve_and_errors(client, site):
    d = client.get(f"/api/sources/{site['new']}").json()
    assert d["is_new"] and not d["is_variable"] and d["n_measurements"] == 3 and d["n_detections"] == 1
    assert [(m["image_id"], m["kind"], m["backfilled"]) for m in d["measurements"]] == [
        (4, "forced", True), (5, "forced", True), (6, "detection", False)]
    assert d["measurements"][-1]["group_id"] == "2025-10-06T00:00:00" and d["thresholds"]["eta_min"] > 1
    steady = client.get(f"/api/sources/{site['steady']}").json()
    assert steady["catalog_source_id"] == 77 and steady["eta"] < steady["thresholds"]["eta_min"]
    png = client.get(d["lightcurve_png"])
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG\r\n\x1a\n") and len(png.content) > 5000
    for url in ("/api/sources/999", "/api/sources/999/lightcurve.png", "/sources/999"):
        assert client.get(url).status_code == 404, url
    for bad in ("0", "-3", "9223372036854775808", "99999999999999999999999", "abc"):
        for url in (f"/api/sources/{bad}", f"/api/sources/{bad}/lightcurve.png", f"/sources/{bad}"):
            assert client.get(url).status_code == 422, url
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/sources", "/api/sources/{source_id}", "/api/sources/{source_id}/lightcurve.png"} <= set(paths)
    assert "/sources" not in paths


def _png(content: bytes) -> np.ndarray:
    from matplotlib.image import imread

    assert content.startswith(b"\x89PNG\r\n\x1a\n")
    return imread(io.BytesIO(content), format="png")


def test_cutouts_strip_from_the_registered_fits(client, site):
    from dsa110_contimg.api.source_cutouts import HEIGHT_PX, LABEL_PX, PAD_PX, PANEL_PX

    var = site["var"]
    assert client.get(f"/api/sources/{var}").json()["cutouts_png"] == f"/api/sources/{var}/cutouts.png"
    r = client.get(f"/api/sources/{var}/cutouts.png")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png", r.text
    assert r.headers["etag"].startswith('"') and "max-age" in r.headers["cache-control"]
    px = _png(r.content)
    assert px.shape[:2] == (HEIGHT_PX, 6 * PANEL_PX)  # one panel per image that measured it (6)
    side = PANEL_PX - 2 * PAD_PX
    top = HEIGHT_PX - LABEL_PX - side  # rows of the picture, from the top

    def panel(i):
        return px[top:top + side, i * PANEL_PX + PAD_PX:i * PANEL_PX + PAD_PX + side, :3].mean(axis=2)

    centre = {}
    for i in (0, 2, 3, 4, 5):  # a cutout centred on the source: brightest near the centre
        p = panel(i)
        centre[i] = p[side // 2 - 6:side // 2 + 6, side // 2 - 6:side // 2 + 6].max()
        assert centre[i] > p.mean() + 0.2 and p.std() > 0.05, i
    # one brightness scale for the strip: the 600 mJy epochs (images 3, 4, 6) brighter than the 300 mJy ones (1, 5)
    assert min(centre[2], centre[3], centre[5]) > max(centre[0], centre[4]) + 0.2, centre
    refused = panel(1)  # image 2: a symbolic link, not read: a grey panel with its text
    assert np.median(refused) == pytest.approx(0.8, abs=0.01)
    # the most recent n; the new source has 3 measurements
    assert _png(client.get(f"/api/sources/{var}/cutouts.png?n=2&size_arcsec=120").content).shape[1] == 2 * PANEL_PX
    assert _png(client.get(f"/api/sources/{site['new']}/cutouts.png").content).shape[1] == 3 * PANEL_PX
    # cache: the same ETag is a 304; a file rewritten (new mtime) is a new drawing
    again = client.get(f"/api/sources/{var}/cutouts.png", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and not again.content
    st = (site["img"] / "6-pb.fits").stat()
    os.utime(site["img"] / "6-pb.fits", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    fresh = client.get(f"/api/sources/{var}/cutouts.png", headers={"If-None-Match": r.headers["etag"]})
    assert fresh.status_code == 200 and fresh.headers["etag"] != r.headers["etag"]
    assert client.get(f"/api/sources/{var}/cutouts.png?n=1&size_arcsec=300").headers["etag"] != \
        client.get(f"/api/sources/{var}/cutouts.png?n=1&size_arcsec=600").headers["etag"]
    # errors
    assert client.get("/api/sources/999/cutouts.png").status_code == 404
    for bad in ("n=0", "n=13", "n=two", "size_arcsec=nan", "size_arcsec=inf", "size_arcsec=5", "size_arcsec=1e6",
                "size_arcsec=-300"):
        assert client.get(f"/api/sources/{var}/cutouts.png?{bad}").status_code == 422, bad
    for bad in ("0", "-3", "9223372036854775808", "abc"):
        assert client.get(f"/api/sources/{bad}/cutouts.png").status_code == 422, bad
    assert "/api/sources/{source_id}/cutouts.png" in client.get("/openapi.json").json()["paths"]


def test_dashboard_pages(client, site):
    html = client.get("/sources").text
    plane = html[html.index("<svg"):html.index("</svg>")]
    for sid in (site["steady"], site["var"], site["new"]):
        assert f'href="/sources/{sid}"' in plane and f'data-source="{sid}"' in html
    assert 'data-threshold="eta_min"' in plane and 'data-threshold="v_min"' in plane
    assert 'href="/sources"' in client.get("/").text  # the nav link
    for order in ("eta", "v", "flux", "n"):
        page = client.get(f"/sources?order={order}").text
        rows = [int(x) for x in re.findall(r'data-source="(\d+)"', page)]
        assert rows == [s["id"] for s in client.get(f"/api/sources?order={order}").json()["items"]], order
    assert client.get("/sources?order=bogus").status_code == 422
    one = client.get(f"/sources/{site['var']}").text
    assert f'src="/api/sources/{site["var"]}/lightcurve.png"' in one
    assert f'id="cutouts" src="/api/sources/{site["var"]}/cutouts.png"' in one
    assert len(re.findall(r'<tr class="measurement (detection|forced)"', one)) == 6
    assert 'href="/images/6"' in one and "no catalog counterpart" in one
    cat = client.get(f"/sources/{site['steady']}").text
    assert 'id="catalog-match"' in cat and "77" in cat[cat.index('id="catalog-match"'):]


def test_cli_list_and_show(site):
    from click.testing import CliRunner

    from dsa110_contimg.cli import main

    runner = CliRunner()
    r = runner.invoke(main, ["sources", "list", "--variable", "--json"], env=site["env"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)
    assert [s["id"] for s in rows] == [site["var"]] and rows[0]["is_variable"]
    r = runner.invoke(main, ["sources", "list", "--min-eta", "100", "--order", "eta"], env=site["env"])
    assert r.exit_code == 0 and "of 2" in r.output, r.output
    r = runner.invoke(main, ["sources", "show", str(site["var"]), "--json"], env=site["env"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert [(m["mjd"], m["flux_jy"], m["flux_err_jy"], m["image_id"]) for m in d["measurements"]] == [
        (MJD0 + i, STEP[i - 1], 0.01, i) for i in range(1, 7)]
    assert [m["kind"] for m in d["measurements"]] == ["detection", "forced", "detection", "detection", "forced",
                                                      "detection"]
    r = runner.invoke(main, ["sources", "show", str(site["var"])], env=site["env"])
    assert r.exit_code == 0 and "light curve" in r.output
    r = runner.invoke(main, ["sources", "show", "999"], env=site["env"])
    assert r.exit_code == 1 and "source 999 not found" in r.output
