"""Monitoring API against databases filled by a real streaming run (three small simulated groups)."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from dsa110_contimg.api import create_app
from dsa110_contimg.config import load_settings

from api_helpers import copy_state
from imaging_helpers import pipeline_env

ENDPOINTS = ["/api/status", "/api/metrics/system", "/api/groups", "/api/ms_index", "/api/images", "/api/caltables",
             "/api/metrics/performance"]


@pytest.fixture(scope="module")
def client(pipeline_run):
    return TestClient(create_app(pipeline_run.settings))


def test_empty_answers_before_the_pipeline_ran(tmp_path, antpos_csv):
    s = load_settings(pipeline_env(tmp_path / "site", antpos_csv), create_dirs=False)
    c = TestClient(create_app(s))
    for url in ENDPOINTS:
        r = c.get(url)
        assert r.status_code == 200, (url, r.text)
    st = c.get("/api/status").json()
    assert st["total_groups"] == 0 and set(st["queue"].values()) == {0} and st["heartbeat"] is None
    assert st["recent_groups"] == [] and st["active_calibration_sets"] == []
    assert c.get("/api/groups").json() == {"total": 0, "limit": 50, "offset": 0, "items": []}
    assert c.get("/api/images").json()["items"] == [] and c.get("/api/caltables").json()["items"] == []
    assert c.get("/api/groups/2025-10-02T00:00:00").status_code == 404
    assert c.get("/api/images/1").status_code == 404 and c.get("/api/images/1/fits").status_code == 404
    for page in ("/", "/groups", "/images", "/caltables"):
        assert c.get(page).status_code == 200
    # the API never creates a database, nor any folder
    assert not (tmp_path / "site").exists()
    assert {d["name"]: d["exists"] for d in c.get("/api/metrics/system").json()["disks"]} == {
        "incoming": False, "output": False, "stage": False, "state": False}


def test_status(client, pipeline_run):
    from dsa110_contimg.db import queue as q

    st = client.get("/api/status").json()
    assert st["queue"]["completed"] == 2 and st["queue"]["failed"] == 1 and st["total_groups"] == 3
    conn = q.connect_readonly(pipeline_run.settings.queue_db)
    want = [g.group_id for g in q.list_groups(conn)]
    hb = q.get_heartbeat(conn, "stream")
    conn.close()
    assert [g["group_id"] for g in st["recent_groups"]] == want
    assert st["heartbeat"]["pid"] == hb.pid and st["heartbeat"]["updated_at"] == hb.updated_at
    # the run's daemon stopped cleanly: its last beat says so
    assert st["heartbeat"]["state"] == "stopped" and st["heartbeat"]["age_s"] >= 0
    (cal_set,) = st["active_calibration_sets"]
    assert cal_set["cal_field"] == "3C147" and [t["table_type"] for t in cal_set["tables"]] == ["K", "B", "G"]
    assert st["writes_enabled"] is False


def test_heartbeat_alive_stale_stopped(tmp_path, antpos_csv):
    import time

    from dsa110_contimg.db import queue as q

    s = load_settings(pipeline_env(tmp_path, antpos_csv))
    conn = q.connect(s.queue_db)
    c = TestClient(create_app(replace(s, api_cache_s=0)))
    q.beat(conn, "stream", {"running": ["2025-10-02T00:00:00"]})
    hb = c.get("/api/status").json()["heartbeat"]
    assert hb["state"] == "alive" and hb["running"] == ["2025-10-02T00:00:00"] and hb["age_s"] < 5
    assert "running 2025-10-02T00:00:00" in c.get("/").text
    q.beat(conn, "stream", {"running": []}, now=time.time() - 120)
    assert c.get("/api/status").json()["heartbeat"]["state"] == "stale"
    q.beat(conn, "stream", {"stopped": True})
    assert c.get("/api/status").json()["heartbeat"]["state"] == "stopped"
    conn.close()


def test_groups_pagination_and_filters(client, pipeline_run):
    first = client.get("/api/groups?limit=2").json()
    second = client.get("/api/groups?limit=2&offset=2").json()
    assert first["total"] == second["total"] == 3 and len(first["items"]) == 2 and len(second["items"]) == 1
    ids = [g["group_id"] for g in first["items"] + second["items"]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 3
    failed = client.get("/api/groups?state=failed").json()
    assert failed["total"] == 1 and pipeline_run.bad_file.name in failed["items"][0]["error"]
    assert client.get("/api/groups?state=completed").json()["total"] == 2
    assert client.get("/api/groups?state=bogus").status_code == 422
    assert client.get("/api/groups?limit=0").status_code == 422
    assert client.get("/api/groups?offset=-1").status_code == 422
    assert client.get("/api/groups?offset=10").json()["items"] == []


def test_group_detail(client, pipeline_run):
    groups = client.get("/api/groups?state=completed").json()["items"]
    cal, target = sorted(g["group_id"] for g in groups)
    g = client.get(f"/api/groups/{cal}").json()
    assert g["state"] == "completed" and g["processing_stage"] == "imaged" and len(g["files"]) == 16
    assert [f["subband"] for f in g["files"]] == list(range(16)) and all(f["exists"] for f in g["files"])
    stages = {s["stage"]: s for s in g["stages"]}
    assert all(s["done"] and s["seconds"] > 0 for n, s in stages.items() if n != "photometry")
    assert not stages["calibrate"]["skipped"] and stages["photometry"]["skipped"]  # a calibrator group's field
    assert g["ms"]["cal_applied"] and g["ms"]["stage"] == "imaged" and g["latency_s"] > 0
    assert {i["type"] for i in g["images"]} == {"image", "pbcor"}
    t = client.get(f"/api/groups/{target}").json()
    tstages = {s["stage"]: s for s in t["stages"]}
    assert tstages["calibrate"]["skipped"] and tstages["calibrate"]["seconds"] is None
    assert tstages["image"]["seconds"] == pytest.approx(t["metrics"]["image_time"])
    bad_id = client.get("/api/groups?state=failed").json()["items"][0]["group_id"]
    b = client.get(f"/api/groups/{bad_id}").json()
    assert pipeline_run.bad_file.name in b["error"] and b["ms"] is None and b["images"] == []
    # bad input is kept: every file of the failed group is in quarantine
    assert all(not f["exists"] and Path(f["quarantined"]).is_file() for f in b["files"])
    assert client.get("/api/groups/2025-10-02T00:00:00").status_code == 404


def test_group_flagging_report_and_plot(client, pipeline_run):
    """The flag stage's report: fractions in the group detail, the QA plot served and shown on the group page."""
    from dsa110_contimg.db import flag_reports
    from dsa110_contimg.db import products as pdb

    cal, target = sorted(g["group_id"] for g in client.get("/api/groups?state=completed").json()["items"])
    for gid in (cal, target):
        g = client.get(f"/api/groups/{gid}").json()
        f = g["flags"]
        assert f is not None and f["flagger"] == "aoflagger"
        assert f["fraction_base"] <= f["fraction_flagged"] < 1 and len(f["per_subband"]) == 16
        assert f["fraction_rfi"] == pytest.approx(f["fraction_flagged"] - f["fraction_base"])
        stages = {s["stage"]: s for s in g["stages"]}
        assert stages["flag"]["done"] and stages["flag"]["seconds"] > 0
        pconn = pdb.connect(pipeline_run.settings.products_db)
        rep = flag_reports.get_for_group(pconn, gid)
        pconn.close()
        r = client.get(f["plot_url"])
        assert r.status_code == 200 and r.content == Path(rep.plot_path).read_bytes()
        assert f["plot_url"] in client.get(f"/groups/{gid}").text
    assert client.get("/api/groups/2025-10-02T00:00:00/flags.png").status_code == 404


def test_ms_index(client, pipeline_run):
    from dsa110_contimg.db import products as pdb

    page = client.get("/api/ms_index").json()
    conn = pdb.connect_readonly(pipeline_run.settings.products_db)
    rows = pdb.list_ms(conn)
    conn.close()
    assert page["total"] == 2 and [m["path"] for m in page["items"]] == [r.path for r in rows]
    assert all(m["stage"] == "imaged" and m["status"] == "completed" and m["cal_applied"] for m in page["items"])
    assert all(m["start_mjd"] < m["mid_mjd"] < m["end_mjd"] for m in page["items"])
    assert client.get("/api/ms_index?stage=imaged&status=completed").json()["total"] == 2
    assert client.get("/api/ms_index?stage=converted").json()["total"] == 0
    one = client.get("/api/ms_index?limit=1&offset=1").json()
    assert one["total"] == 2 and [m["path"] for m in one["items"]] == [rows[1].path]


def test_images_and_files(client, pipeline_run):
    from astropy.io import fits

    from dsa110_contimg.beam import angular_separation
    from dsa110_contimg.db import products as pdb
    from dsa110_contimg.simulate.truth import GroupTruth

    every = client.get("/api/images").json()
    assert every["total"] == 4 and {i["type"] for i in every["items"]} == {"image", "pbcor"}
    page = client.get("/api/images?type=image").json()
    assert page["total"] == 2 and len(client.get("/api/images?type=image&limit=1&offset=1").json()["items"]) == 1
    target_gid = max(i["group_id"] for i in page["items"])
    img = next(i for i in page["items"] if i["group_id"] == target_gid)
    d = client.get(f"/api/images/{img['id']}").json()
    conn = pdb.connect_readonly(pipeline_run.settings.products_db)
    rec, dets = pdb.get_image(conn, img["id"]), pdb.get_detections(conn, img["id"])
    conn.close()
    assert d["noise_jy"] == rec.noise_jy and d["n_detections"] == len(dets) == len(d["detections"]) > 0
    assert [x["peak_jy"] for x in d["detections"]] == [x.peak_jy for x in dets]
    assert d["qa"]["rms_jy"] == d["noise_jy"] == rec.noise_jy and d["timings"]["total"] == rec.timings["total"] > 0
    # the API's detections hold the injected sources (truth) at their apparent flux (10%) and position (beam/5)
    truth = GroupTruth.from_json(pipeline_run.groups[1].truth_path)
    bright = [t for t in truth.sources if t["apparent_flux_jy"] > 50 * d["noise_jy"]]
    assert bright
    for t in bright:
        sep = [np.degrees(angular_separation(*np.radians([x["ra_deg"], x["dec_deg"], t["ra_deg"], t["dec_deg"]])))
               * 3600 for x in d["detections"]]
        k = int(np.argmin(sep))
        assert sep[k] < d["beam_major_arcsec"] / 5
        assert d["detections"][k]["peak_jy"] == pytest.approx(t["apparent_flux_jy"], rel=0.1)
        # matched to the master catalog (built from the truth): beam-corrected flux / catalog flux near 1
        assert d["detections"][k]["catalog_source_id"] is not None and d["detections"][k]["catalog_sep_arcsec"] < 5
        assert d["detections"][k]["flux_ratio"] == pytest.approx(1.0, abs=0.1)
    assert d["flux_ratio_median"] == pytest.approx(1.0, abs=0.05)
    # files: exactly the registered ones, byte for byte
    r = client.get(d["urls"]["fits"])
    assert r.status_code == 200 and r.content == Path(rec.fits_path).read_bytes()
    assert "attachment" in r.headers["content-disposition"]
    hdr = fits.Header.fromstring(r.content[:2880 * 10].decode("ascii", "replace"))
    assert hdr["BMAJ"] * 3600 == pytest.approx(d["beam_major_arcsec"], rel=1e-3)
    r = client.get(d["urls"]["thumbnail"])
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.content[:8] == b"\x89PNG\r\n\x1a\n" and r.content == Path(rec.thumbnail_path).read_bytes()
    assert client.get(d["urls"]["qa_plot"]).content == Path(rec.qa_plot_path).read_bytes()
    for url in ("/api/images/999999", "/api/images/999999/fits", "/api/images/999999/thumbnail.png"):
        assert client.get(url).status_code == 404
    assert client.get("/api/images/abc").status_code == 422


def test_caltables_and_plots(client, pipeline_run):
    from dsa110_contimg.db import cal_registry as reg

    sets = client.get("/api/caltables").json()["items"]
    conn = reg.connect_readonly(pipeline_run.settings.cal_registry_db)
    (want,) = reg.list_sets(conn)
    conn.close()
    assert [s["set_name"] for s in sets] == [want.set_name]
    s = sets[0]
    assert [t["path"] for t in s["tables"]] == want.paths and s["refant"] == want.refant
    assert s["tables"][1]["quality_metrics"]["antennas_solved"] == 24
    for t, e in zip(s["tables"], want.entries):
        r = client.get(t["plot_url"])
        assert r.status_code == 200 and r.content == Path(e.qa_plot_path).read_bytes()
        assert r.content[:4] == b"\x89PNG"
    assert client.get(f"/api/caltables/{s['set_name']}").json()["tables"] == s["tables"]
    assert client.get("/api/caltables?status=retired").json()["total"] == 0
    assert client.get("/api/caltables?offset=1").json() == {"total": 1, "limit": 100, "offset": 1, "items": []}
    assert client.get("/api/caltables/nope").status_code == 404
    assert client.get(f"/api/caltables/{s['set_name']}/plots/X.png").status_code == 404


def test_performance_and_system(client, pipeline_run):
    from dsa110_contimg.db import queue as q

    perf = client.get("/api/metrics/performance").json()
    conn = q.connect_readonly(pipeline_run.settings.queue_db)
    rows = {m["group_id"]: m for m in q.list_metrics(conn)}
    conn.close()
    assert {g["group_id"] for g in perf["groups"]} == set(rows) and len(rows) == 2
    for g in perf["groups"]:
        m = rows[g["group_id"]]
        assert g["convert_s"] == m["total_time"] and g["image_s"] == m["image_time"] and g["latency_s"] > 0
    assert perf["summary"]["image_s"]["n"] == 2 and perf["summary"]["calibrate_s"]["n"] == 1
    assert sum(b["completed"] for b in perf["throughput"]) == 2
    sysm = client.get("/api/metrics/system").json()
    disks = {d["name"]: d for d in sysm["disks"]}
    assert set(disks) == {"incoming", "output", "stage", "state"}
    assert disks["output"]["exists"] and 0 < disks["output"]["free_bytes"] <= disks["output"]["total_bytes"]
    assert sysm["memory"]["total_bytes"] > 1e9 and len(sysm["load_avg"]) == 3 and sysm["cpu_count"] >= 1


def test_reprocess_token_rules(pipeline_run, tmp_path):
    from dsa110_contimg.db import queue as q

    s = copy_state(pipeline_run, tmp_path / "copy")
    gid = TestClient(create_app(s)).get("/api/groups?state=completed").json()["items"][0]["group_id"]
    # writes disabled without a token configured
    r = TestClient(create_app(s)).post(f"/api/reprocess/{gid}", headers={"Authorization": "Bearer x"})
    assert r.status_code == 403 and "PIPELINE_API_TOKEN" in r.json()["detail"]
    c = TestClient(create_app(replace(s, api_token="s3cret")))
    assert c.post(f"/api/reprocess/{gid}").status_code == 401
    assert c.post(f"/api/reprocess/{gid}", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert c.post(f"/api/reprocess/{gid}", headers={"Authorization": "Basic s3cret"}).status_code == 401
    assert c.get(f"/api/reprocess/{gid}").status_code == 405
    auth = {"Authorization": "Bearer s3cret"}
    assert c.post("/api/reprocess/2025-01-01T00:00:00", headers=auth).status_code == 404
    r = c.post(f"/api/reprocess/{gid}", headers=auth)
    assert r.status_code == 200 and r.json() == {"group_id": gid, "previous_state": "completed", "state": "pending"}
    conn = q.connect(s.queue_db)
    g = q.get_group(conn, gid)
    assert g.state == "pending" and g.processing_stage is None and "reprocess requested by api" in g.notes
    q.claim_next(conn)
    conn.close()
    r = c.post(f"/api/reprocess/{gid}", headers=auth)  # now in progress: refused
    assert r.status_code == 409 and "in_progress" in r.json()["detail"]
    # the session's run is untouched
    assert TestClient(create_app(pipeline_run.settings)).get("/api/status").json()["queue"]["completed"] == 2


def test_files_only_from_registered_paths(pipeline_run, client, tmp_path):
    secret = Path("/etc/passwd").read_bytes()
    image_id = client.get("/api/images?type=image").json()["items"][0]["id"]
    set_name = client.get("/api/caltables").json()["items"][0]["set_name"]
    attempts = [f"/api/images/{image_id}/..%2F..%2F..%2F..%2Fetc%2Fpasswd", "/api/images/..%2F..%2Fetc%2Fpasswd/fits",
                "/static/..%2F..%2F..%2F..%2Fetc%2Fpasswd", "/static/../../../../etc/passwd",
                "/static/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
                f"/api/caltables/{set_name}/plots/..%2F..%2F..%2Fetc%2Fpasswd",
                "/api/caltables/..%2F..%2Fetc%2Fpasswd/plots/B.png"]
    for url in attempts:
        r = client.get(url)
        assert r.status_code in (404, 422) and secret not in r.content, (url, r.status_code)
    # a path in the query is ignored: the registered FITS comes back
    r = client.get(f"/api/images/{image_id}/fits?path=/etc/passwd")
    assert r.status_code == 200 and r.content[:6] == b"SIMPLE" and secret not in r.content
    # even a path registered in the database is served only when it is the kind of file expected
    s = copy_state(pipeline_run, tmp_path / "copy")
    conn = sqlite3.connect(s.products_db)
    conn.execute("UPDATE images SET thumbnail_path = '/etc/passwd', fits_path = '/etc/passwd' WHERE id = ?",
                 (image_id,))
    conn.commit()
    conn.close()
    c = TestClient(create_app(s))
    for url in (f"/api/images/{image_id}/thumbnail.png", f"/api/images/{image_id}/fits"):
        r = c.get(url)
        assert r.status_code == 404 and secret not in r.content


def test_openapi_documents_every_endpoint(client):
    paths = client.get("/openapi.json").json()["paths"]
    for p in ["/api/status", "/api/metrics/system", "/api/metrics/performance", "/api/groups",
              "/api/groups/{group_id}", "/api/ms_index", "/api/images", "/api/images/{image_id}",
              "/api/images/{image_id}/fits", "/api/images/{image_id}/thumbnail.png", "/api/caltables",
              "/api/caltables/{set_name}", "/api/caltables/{set_name}/plots/{table_type}.png",
              "/api/reprocess/{group_id}"]:
        assert p in paths, p
    assert "post" in paths["/api/reprocess/{group_id}"]
    assert paths["/api/status"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert "/" not in paths  # dashboard pages are not API


def test_dashboard_pages_render_the_run(client, pipeline_run):
    groups = client.get("/api/groups").json()["items"]
    home = client.get("/").text
    assert all(g["group_id"] in home for g in groups) and "no heartbeat" not in home and "<svg" in home
    images = client.get("/api/images?type=image").json()["items"]
    gallery = client.get("/images").text
    assert all(f'href="/images/{i["id"]}"' in gallery and i["urls"]["thumbnail"] in gallery for i in images)
    page = client.get(f"/images/{images[0]['id']}").text
    assert f'href="/api/images/{images[0]["id"]}/fits"' in page
    assert page.count('class="matched"') + page.count('class="unmatched"') == images[0]["n_detections"]
    assert page.count('class="matched"') >= 3
    cal = client.get("/caltables").text
    st = client.get("/api/caltables").json()["items"][0]
    assert st["set_name"] in cal and all(t["plot_url"] in cal for t in st["tables"])
    failed = client.get("/groups?state=failed").text
    assert pipeline_run.bad_file.name in failed
    bad_id = client.get("/api/groups?state=failed").json()["items"][0]["group_id"]
    assert "quarantined" in client.get(f"/groups/{bad_id}").text
    assert 'id="reprocess-form"' not in client.get(f"/groups/{bad_id}").text  # writes disabled: no form
    for url in ("/images/999999", "/groups/nope", "/no-such-page"):
        r = client.get(url)
        assert r.status_code == 404 and r.headers["content-type"].startswith("text/html") and "404" in r.text
    assert client.get("/api/nope").json() == {"detail": "Not Found"}


def test_answer_cache_and_invalidation(pipeline_run, tmp_path):
    from dsa110_contimg.db import queue as q

    s = replace(copy_state(pipeline_run, tmp_path / "copy"), api_cache_s=60.0, api_token="t")
    c = TestClient(create_app(s))
    before = c.get("/api/status").json()
    cal, target = sorted(g["group_id"] for g in before["recent_groups"] if g["state"] == "completed")
    conn = q.connect(s.queue_db)
    q.reprocess(conn, cal, requested_by="test")  # the daemon's process writes: the API answers from its cache
    conn.close()
    assert c.get("/api/status").json()["queue"] == before["queue"]
    assert TestClient(create_app(replace(s, api_cache_s=0))).get("/api/status").json()["queue"]["pending"] == 1
    # a write through the API forgets every cached answer
    assert c.post(f"/api/reprocess/{target}", headers={"Authorization": "Bearer t"}).status_code == 200
    assert c.get("/api/status").json()["queue"]["pending"] == 2


def test_unreadable_database_is_a_503_naming_the_file(tmp_path, antpos_csv):
    s = load_settings(pipeline_env(tmp_path, antpos_csv))
    s.products_db.write_text("this is not an SQLite database " * 200)
    c = TestClient(create_app(s))
    r = c.get("/api/images")
    assert r.status_code == 503 and str(s.products_db) in r.json()["detail"]
    assert c.get("/api/groups").status_code == 200  # the other databases still answer


def test_image_page_shows_quality_gates_and_selfcal_rounds(pipeline_run, tmp_path):
    """The pipeline's images carry their gates; a self-calibration record in the QA is drawn round by round."""
    import json

    s = copy_state(pipeline_run, tmp_path / "state")
    conn = sqlite3.connect(s.products_db)
    image_id, qa_json, state = conn.execute(
        "SELECT id, qa_json, quality_state FROM images WHERE quality_state IS NOT NULL ORDER BY id LIMIT 1").fetchone()
    qa = json.loads(qa_json or "{}")
    qa["selfcal"] = {"rounds": [
        {"index": 0, "mode": "", "solint": None, "accepted": True, "rms_jy": 0.0042, "dynamic_range": 310.0,
         "flux_ratio": None, "reason": ""},
        {"index": 1, "mode": "p", "solint": "inf", "accepted": True, "rms_jy": 0.0021, "dynamic_range": 640.0,
         "flux_ratio": 1.01, "reason": ""},
        {"index": 2, "mode": "p", "solint": "60s", "accepted": False, "rms_jy": 0.0021, "dynamic_range": 641.0,
         "flux_ratio": 1.0, "reason": "residual rms 2.1 mJy/beam not 2% below 2.1"}]}
    qa["outliers"] = {"outliers": [{"ra_deg": 1.0, "dec_deg": 58.9, "flux_jy": 31.5, "alpha": -0.7, "sep_deg": 4.3,
                                    "predicted_apparent_jy": 0.5, "fitted_apparent_jy": 0.489}],
                      "power_removed": 0.163, "seconds": 1.0}
    conn.execute("UPDATE images SET qa_json = ? WHERE id = ?", (json.dumps(qa), image_id))
    conn.commit()
    conn.close()
    page = TestClient(create_app(s)).get(f"/images/{image_id}").text
    assert 'id="image-gates"' in page and f"quality-{state}" in page
    assert "31.5 Jy at 4.3° (fitted 0.489 Jy apparent)" in page and "16.3%" in page
    for gate in ("rms_thermal", "dynamic_range", "beam_axis_ratio"):
        assert f"<th>{gate}</th>" in page, gate
    table = page[page.index('id="image-selfcal"'):]
    table = table[:table.index("</table>")]
    assert table.count("<tr") == 4 and "4.200" in table and "2.100" in table and "no: residual rms" in table
