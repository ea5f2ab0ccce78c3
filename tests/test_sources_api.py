"""Survey sources through the API, the dashboard and ``contimg sources``, on a small real products database.

The database is built with the package's own writers (``db.products.connect`` makes
the schema, ``db.sources.record_photometry`` records six images' photometry as the
daemon does), without running the pipeline: a steady catalog source, a source
stepping between two fluxes (variable) and a flare first detected in the last image
with two backfilled upper limits (new, too few measurements to be variable).
"""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest
from fastapi.testclient import TestClient

from dsa110_contimg.api import create_app
from dsa110_contimg.config import load_settings
from dsa110_contimg.photometry.models import ImageRun, Measurement, NewSource, PhotometryResult

MJD0 = 60950.0
STEADY = [0.50, 0.51, 0.49, 0.50, 0.505, 0.495]
STEP = [0.30, 0.30, 0.60, 0.60, 0.30, 0.60]
POS = {"steady": (86.0, 50.0), "var": (86.5, 50.2), "new": (85.5, 49.8)}


def _run(i: int) -> ImageRun:
    mjd = MJD0 + i
    return ImageRun(image_id=i, group_id=f"2025-10-0{i}T00:00:00", ms_path=f"/ms/{i}.ms", image_path=f"/img/{i}.fits",
                    pbcor_path=f"/img/{i}-pb.fits", mid_mjd=mjd, first_time_mjd=mjd, last_time_mjd=mjd, n_times=1,
                    pointing_dec_deg=50.0, fringestop_lon_deg=-118.3, freq_min_hz=1.31e9, freq_max_hz=1.5e9,
                    ra_deg=86.0, dec_deg=50.0, radius_deg=1.5, rms_jy=0.002, beam_major_arcsec=36.0,
                    beam_minor_arcsec=30.0, beam_pa_deg=0.0)


def _m(i: int, which: str, flux: float, kind: str = "forced", **kw) -> Measurement:
    ra, dec = POS[which]
    det = dict(det_ra_deg=ra, det_dec_deg=dec, det_ra_err_arcsec=2.0, det_dec_err_arcsec=2.0,
               detection_id=100 + i) if kind == "detection" else {}
    return Measurement(image_id=i, mjd=MJD0 + i, flux_jy=flux, flux_err_jy=0.01, local_rms_jy=0.01, pb=0.8,
                       ra_deg=ra, dec_deg=dec, kind=kind, **det, **kw)


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
    conn = pdb.connect(s.products_db)
    for i in range(1, 7):
        pdb.upsert_image(conn, pdb.ImageRecord(f"/img/{i}.fits", ms_path=f"/ms/{i}.ms", type="image"))
    first = PhotometryResult(_run(1), (_m(1, "steady", STEADY[0], "detection", new_index=0),
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
        made = sdb.record_photometry(conn, PhotometryResult(_run(i), tuple(ms), new, var, 36.0)).new_source_ids
    conn.close()
    ids = {"steady": steady, "var": var, "new": made[0], "settings": s, "env": env}
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
