"""The dashboard in a real headless Chromium (Selenium + Debian's chromium-driver), served by ``contimg api``.

Screenshots are saved to ``test-artifacts/`` (or ``$CONTIMG_TEST_ARTIFACTS``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from api_helpers import copy_state, photometer_again

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("CONTIMG_TEST_ARTIFACTS", REPO / "test-artifacts"))


def _chromium() -> tuple[str, str]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    assert browser and driver, ("headless Chromium is needed: install the Debian packages 'chromium' and "
                                "'chromium-driver' (scripts/setup.sh does when run as root)")
    return browser, driver


@pytest.fixture(scope="module")
def server(pipeline_run, tmp_path_factory):
    """``contimg api`` on a loopback port over a copy of the run's databases, with a write token; the calibrator
    group's image photometered too (the stream does only the target's), so that sources have two measurements."""
    from dsa110_contimg.api.cli import free_port, settings_env

    s = copy_state(pipeline_run, tmp_path_factory.mktemp("browser_state"))
    photometer_again(s, 1)
    env = dict(os.environ, PIPELINE_API_TOKEN="browser-token", **settings_env(s))
    port = free_port("127.0.0.1", 0)
    proc = subprocess.Popen([sys.executable, "-m", "dsa110_contimg.cli", "api", "--port", str(port), "--refresh", "1",
                             "--log-level", "warning"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    t0 = time.monotonic()
    while True:
        try:
            if httpx.get(base + "/api/status", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() - t0 > 60:
            proc.kill()
            pytest.fail("contimg api did not start: " + proc.stdout.read().decode(errors="replace"))
        time.sleep(0.2)
    yield base
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver = _chromium()
    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1800"):
        opts.add_argument(arg)
    b = webdriver.Chrome(service=Service(driver), options=opts)
    b.set_page_load_timeout(60)
    yield b
    b.quit()


def _wait(cond, timeout=20.0, what="condition"):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        value = cond()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _loaded(browser, css: str) -> list[int]:
    """Natural widths of the images matching ``css`` (0 = not loaded / broken)."""
    return browser.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0])).map(i => i.complete ? i.naturalWidth : 0)", css)


def test_dashboard_in_chromium(server, browser):
    from selenium.webdriver.common.by import By

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    api = httpx.Client(base_url=server, timeout=10)
    groups = api.get("/api/groups").json()["items"]
    images = api.get("/api/images?type=image").json()["items"]
    calset = api.get("/api/caltables").json()["items"][0]
    assert len(groups) == 3 and len(images) == 2

    # overview: every group, the queue counts, the daemon's heartbeat, the calibration set in use
    browser.get(server + "/")
    body = browser.find_element(By.TAG_NAME, "body").text
    assert all(g["group_id"] in body for g in groups)
    assert browser.find_element(By.CSS_SELECTOR, "#count-completed .n").text == "2"
    assert browser.find_element(By.CSS_SELECTOR, "#count-failed .n").text == "1"
    assert "daemon on" in browser.find_element(By.ID, "heartbeat").text and calset["set_name"] in body
    assert len(browser.find_elements(By.CSS_SELECTOR, "svg.chart")) == 3
    _wait(lambda: _loaded(browser, ".gallery img") and all(_loaded(browser, ".gallery img")), what="thumbnails")
    browser.save_screenshot(str(ARTIFACTS / "dashboard_overview.png"))

    # calibration: the set and its three solution plots, loaded
    browser.find_element(By.ID, "nav-caltables").click()
    _wait(lambda: "/caltables" in browser.current_url, what="calibration page")
    assert calset["set_name"] in browser.find_element(By.TAG_NAME, "body").text
    _wait(lambda: _loaded(browser, ".plots img") == [w for w in _loaded(browser, ".plots img") if w > 0]
          and len(_loaded(browser, ".plots img")) == 3, what="calibration plots")
    browser.save_screenshot(str(ARTIFACTS / "dashboard_caltables.png"))

    # gallery -> follow the link of an image to its page
    browser.find_element(By.ID, "nav-images").click()
    cards = _wait(lambda: browser.find_elements(By.CSS_SELECTOR, ".image-card"), what="gallery")
    assert len(cards) == 2
    link = browser.find_element(By.CSS_SELECTOR, ".image-card a.image-link")
    href = link.get_attribute("href")
    link.click()
    _wait(lambda: browser.current_url == href, what="image page")
    image_id = int(href.rstrip("/").rsplit("/", 1)[1])
    detail = api.get(f"/api/images/{image_id}").json()
    assert browser.find_element(By.ID, "image-title").text == detail["name"]
    fits_link = browser.find_element(By.ID, "fits-download").get_attribute("href")
    assert fits_link == server + f"/api/images/{image_id}/fits"
    assert api.get(fits_link).content[:6] == b"SIMPLE"
    rows = browser.find_elements(By.CSS_SELECTOR, "#detections tbody tr")
    assert len(rows) == detail["n_detections"] > 0
    _wait(lambda: all(_loaded(browser, "img.big")), what="image and QA plot")
    browser.save_screenshot(str(ARTIFACTS / "dashboard_image.png"))

    # mosaics: the daemon built its window's mosaic (issue 15); gallery -> the mosaic's page with its preview
    browser.find_element(By.ID, "nav-mosaics").click()
    _wait(lambda: browser.find_elements(By.CSS_SELECTOR, ".mosaic-card"), what="mosaics gallery")
    # the three groups fall in two of the daemon's windows: the calibrator and target groups' (built) and the
    # failed group's (recorded as failed: nothing to combine)
    items = {m["status"]: m for m in api.get("/api/mosaics").json()["items"]}
    mosaic, failed = items["ok"], items["failed"]
    assert mosaic["n_used"] == mosaic["n_inputs"] == 2 and "no image to combine" in failed["error"]
    _wait(lambda: all(_loaded(browser, ".mosaic-card img")), what="mosaic previews")
    link = browser.find_element(By.CSS_SELECTOR, f'.mosaic-card[data-mosaic="{mosaic["id"]}"] a.mosaic-link')
    href = link.get_attribute("href")
    link.click()
    _wait(lambda: browser.current_url == href, what="mosaic page")
    _wait(lambda: all(_loaded(browser, "#mosaic-preview")), what="mosaic preview")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#mosaic-inputs tbody tr.matched")) == 2
    assert browser.find_element(By.ID, "mosaic-fits").get_attribute("href") == server + mosaic["urls"]["fits"]
    browser.save_screenshot(str(ARTIFACTS / "dashboard_mosaic.png"))

    # an operator reprocesses a group from its page: a wrong token is refused, the right one queues it again
    ui_gid = [g["group_id"] for g in groups if g["state"] == "completed"][-1]
    browser.get(server + f"/groups/{ui_gid}")
    browser.find_element(By.ID, "reprocess-token").send_keys("wrong")
    browser.find_element(By.ID, "reprocess-button").click()
    _wait(lambda: "refused (401)" in browser.find_element(By.ID, "reprocess-result").text, what="401 shown")
    box = browser.find_element(By.ID, "reprocess-token")
    box.clear()
    box.send_keys("browser-token")
    browser.find_element(By.ID, "reprocess-button").click()
    _wait(lambda: api.get(f"/api/groups/{ui_gid}").json()["state"] == "pending", what="group queued again")
    _wait(lambda: "pending" in browser.find_element(By.CSS_SELECTOR, "h1 .badge").text, what="page reloaded")
    assert "reprocess requested by api" in api.get(f"/api/groups/{ui_gid}").json()["notes"]
    browser.save_screenshot(str(ARTIFACTS / "dashboard_group_reprocessed.png"))

    # the overview refreshes itself: a group queued again shows up as pending without reloading the page
    browser.get(server + "/")
    browser.execute_script("window.__notReloaded = true")
    gid = next(g["group_id"] for g in groups if g["state"] == "completed" and g["group_id"] != ui_gid)
    r = api.post(f"/api/reprocess/{gid}", headers={"Authorization": "Bearer browser-token"})
    assert r.status_code == 200

    def row_state():
        cells = browser.find_elements(By.CSS_SELECTOR, f'tr[data-group="{gid}"] td')
        return len(cells) > 1 and cells[1].text.startswith("pending")

    _wait(row_state, timeout=15, what="auto-refresh to show the reprocessed group")
    assert browser.execute_script("return window.__notReloaded === true")
    assert browser.find_element(By.CSS_SELECTOR, "#count-pending .n").text == "2"
    browser.save_screenshot(str(ARTIFACTS / "dashboard_refreshed.png"))


def test_sources_pages_in_chromium(server, browser):
    """The sources page (eta-V plane with its thresholds and links, the table) and a source's page (light curve and
    cutouts loaded), reached by the links."""
    from selenium.webdriver.common.by import By

    from dsa110_contimg.api.source_cutouts import PANEL_PX

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    api = httpx.Client(base_url=server, timeout=10)
    listing = api.get("/api/sources?order=eta&limit=100").json()
    two = [x for x in listing["items"] if x["eta"] is not None]
    assert listing["total"] > 0 and two, "the run's sources need two measurements for the eta-V plane"

    browser.get(server + "/sources")
    plane = browser.find_element(By.CSS_SELECTOR, "#eta-v-plane svg.eta-v")
    assert {t.get_attribute("data-threshold") for t in plane.find_elements(By.CSS_SELECTOR, ".threshold")} == \
        {"eta_min", "v_min"}
    points = plane.find_elements(By.CSS_SELECTOR, "a.source-point")
    assert len(points) == len(two)
    rows = browser.find_elements(By.CSS_SELECTOR, "#sources tbody tr.source-row")
    assert [int(r.get_attribute("data-source")) for r in rows] == [x["id"] for x in listing["items"]]
    browser.save_screenshot(str(ARTIFACTS / "dashboard_sources.png"))

    # a point of the plane is a link to its source's page
    target = two[0]["id"]
    point = next(p for p in points if p.get_dom_attribute("href") == f"/sources/{target}")
    browser.execute_script("arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}))", point)
    _wait(lambda: browser.current_url == f"{server}/sources/{target}", what="source page from the plane")

    # the table's link too; the source page shows its light curve and its cutouts (one panel per measurement)
    browser.back()
    link = _wait(lambda: browser.find_elements(By.CSS_SELECTOR, f'tr[data-source="{target}"] a'), what="table")[0]
    link.click()
    _wait(lambda: browser.current_url == f"{server}/sources/{target}", what="source page from the table")
    detail = api.get(f"/api/sources/{target}").json()
    assert browser.find_element(By.ID, "source-title").text == detail["name"]
    assert len(browser.find_elements(By.CSS_SELECTOR, "#measurements tr.measurement")) == detail["n_measurements"]
    _wait(lambda: all(w > 0 for w in _loaded(browser, "#lightcurve, #cutouts")) and
          len(_loaded(browser, "#lightcurve, #cutouts")) == 2, what="light curve and cutouts")
    widths = dict(zip(("lightcurve", "cutouts"), _loaded(browser, "#lightcurve, #cutouts")))
    assert widths["cutouts"] == min(6, detail["n_measurements"]) * PANEL_PX and widths["lightcurve"] > 0
    browser.save_screenshot(str(ARTIFACTS / "dashboard_source.png"))
