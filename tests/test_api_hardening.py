"""API hardening: integer ranges (422, never an SQLite overflow), symlinked products (404), corrupt databases (503).

The databases are small but real: built through the package's own ``db`` modules
(one group in the queue, one image with its FITS and PNGs, one calibration set
with its plot), every product file inside the output folder as the pipeline
writes them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from dsa110_contimg.api import create_app
from dsa110_contimg.config import load_settings

INT64_MAX = 2**63 - 1
TOO_BIG = ("9223372036854775808", "99999999999999999999999")
GROUP_ID = "2025-10-02T00:00:00"
SECRET = b"outside the output folder: never served"
TOKEN = "t0ken"


@dataclass
class Site:
    """Settings of a small pipeline site and what its databases registered."""

    settings: object
    image_id: int
    files: dict
    """``fits``, ``thumbnail``, ``qa_plot``, ``calplot`` -> the registered file."""
    outside: Path
    """A folder outside the output folder."""

    def client(self) -> TestClient:
        return TestClient(create_app(self.settings), raise_server_exceptions=False)


def _png(text: str) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + text.encode()


def build_site(root: Path) -> Site:
    """Queue, products and registry holding one group, one image and one calibration set."""
    from dsa110_contimg.db import cal_registry as reg
    from dsa110_contimg.db import products as pdb
    from dsa110_contimg.db import queue as q

    env = {"PIPELINE_STATE_DIR": str(root / "state"), "PIPELINE_INCOMING_DIR": str(root / "incoming"),
           "PIPELINE_OUTPUT_DIR": str(root / "out"), "PIPELINE_STAGE_DIR": str(root / "stage")}
    s = replace(load_settings(env), api_cache_s=0.0, api_token=TOKEN)
    out, ms = s.output_dir, s.output_dir / f"{GROUP_ID}.ms"
    conn = q.connect(s.queue_db)
    q.add_file(conn, s.incoming_dir / f"{GROUP_ID}_sb00.hdf5", expected_subbands=1)
    conn.close()
    files = {"fits": out / f"{GROUP_ID}.wsclean-image.fits", "thumbnail": out / f"{GROUP_ID}_thumb.png",
             "qa_plot": out / f"{GROUP_ID}_qa.png", "calplot": out / f"{GROUP_ID}_calqa" / f"{GROUP_ID}.K.png"}
    files["fits"].write_bytes(b"SIMPLE  =                    T" + b" " * 50)
    files["calplot"].parent.mkdir()
    for kind in ("thumbnail", "qa_plot", "calplot"):
        files[kind].write_bytes(_png(kind))
    conn = pdb.connect(s.products_db)
    pdb.upsert_ms(conn, pdb.MSRecord(path=str(ms), stage="imaged", status="completed"))
    image_id = pdb.upsert_image(conn, pdb.ImageRecord(
        path=str(files["fits"]), ms_path=str(ms), type="image", fits_path=str(files["fits"]),
        thumbnail_path=str(files["thumbnail"]), qa_plot_path=str(files["qa_plot"])))
    conn.close()
    (out / f"{GROUP_ID}.K").mkdir()
    conn = reg.connect(s.cal_registry_db)
    reg.register_set(conn, "set1", [reg.CalTableEntry(path=str(out / f"{GROUP_ID}.K"), table_type="K",
                                                      order_index=0, qa_plot_path=str(files["calplot"]))],
                     valid_start_mjd=60950.0)
    conn.close()
    outside = root / "elsewhere"
    outside.mkdir()
    return Site(s, image_id, files, outside)


@pytest.fixture
def site(tmp_path) -> Site:
    return build_site(tmp_path)


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> Site:
    """A site the read-only tests share."""
    return build_site(tmp_path_factory.mktemp("site"))


@pytest.fixture(scope="module")
def client(shared) -> TestClient:
    return shared.client()


# --------------------------------------------------------------------------- 8: integer ranges


IMAGE_ID_ROUTES = ["/api/images/{}", "/api/images/{}/fits", "/api/images/{}/thumbnail.png", "/api/images/{}/qa.png",
                   "/images/{}"]
LISTINGS = ["/api/groups", "/api/ms_index", "/api/images", "/api/caltables", "/groups", "/images", "/caltables"]


@pytest.mark.parametrize("route", IMAGE_ID_ROUTES)
def test_out_of_range_image_id_is_a_422(client, route):
    for bad in (*TOO_BIG, "-1", "0"):
        r = client.get(route.format(bad))
        assert r.status_code == 422, (route, bad, r.status_code, r.text[:200])
        assert r.json()["detail"][0]["loc"] == ["path", "image_id"]
    # the largest SQLite integer is a valid id: not found, not an error
    assert client.get(route.format(INT64_MAX)).status_code == 404


@pytest.mark.parametrize("url", LISTINGS)
def test_out_of_range_offset_and_limit_are_422(client, url):
    for query in [f"offset={v}" for v in (*TOO_BIG, "-1")] + [f"limit={v}" for v in (*TOO_BIG, "0", "-1")]:
        r = client.get(f"{url}?{query}")
        assert r.status_code == 422, (url, query, r.status_code, r.text[:200])
        assert r.json()["detail"][0]["loc"][0] == "query"
    r = client.get(f"{url}?offset={INT64_MAX}")  # the largest offset is valid: an empty page
    assert r.status_code == 200, r.text[:200]
    if url.startswith("/api"):
        assert r.json()["items"] == [] and r.json()["offset"] == INT64_MAX


# --------------------------------------------------------------------------- 9: symlinked products


FILE_URLS = {"fits": "/api/images/{id}/fits", "thumbnail": "/api/images/{id}/thumbnail.png",
             "qa_plot": "/api/images/{id}/qa.png", "calplot": "/api/caltables/set1/plots/K.png"}


def _url(site: Site, kind: str) -> str:
    return FILE_URLS[kind].format(id=site.image_id)


def _assert_refused(c: TestClient, url: str) -> None:
    r = c.get(url)
    assert r.status_code == 404 and SECRET not in r.content, (url, r.status_code)
    assert "not served" in r.json()["detail"], r.json()


def test_products_replaced_by_symlinks_outside_are_refused(site):
    c = site.client()
    for kind, path in site.files.items():  # regular files inside the output folder are served
        r = c.get(_url(site, kind))
        assert r.status_code == 200 and r.content == path.read_bytes(), kind
    for kind, path in site.files.items():
        target = site.outside / f"secret{path.suffix}"
        target.write_bytes(SECRET)
        path.unlink()
        path.symlink_to(target)
        _assert_refused(c, _url(site, kind))


def test_symlink_to_a_file_inside_the_output_folder_is_refused(site):
    c = site.client()
    thumb = site.files["thumbnail"]
    copy = thumb.with_name("copy.png")
    thumb.rename(copy)
    thumb.symlink_to(copy)
    r = c.get(_url(site, "thumbnail"))
    assert r.status_code == 404 and "symbolic link" in r.json()["detail"]


def test_a_parent_folder_symlinked_outside_is_refused(site):
    """The plot folder (``<ms>_calqa``) replaced by a link to a folder outside: refused, though the file
    itself is a regular file."""
    plot = site.files["calplot"]
    (site.outside / plot.parent.name).mkdir()
    (site.outside / plot.parent.name / plot.name).write_bytes(SECRET)
    plot.unlink()
    plot.parent.rmdir()
    plot.parent.symlink_to(site.outside / plot.parent.name)
    assert plot.is_file() and not plot.is_symlink()
    _assert_refused(site.client(), _url(site, "calplot"))


def test_a_registered_file_outside_the_output_folder_is_refused(site):
    import sqlite3

    secret = site.outside / "secret.png"
    secret.write_bytes(SECRET)
    conn = sqlite3.connect(site.settings.products_db)
    conn.execute("UPDATE images SET thumbnail_path = ?, qa_plot_path = ? WHERE id = ?",
                 (str(secret), str(site.settings.output_dir / ".." / "elsewhere" / "secret.png"), site.image_id))
    conn.commit()
    conn.close()
    c = site.client()
    _assert_refused(c, _url(site, "thumbnail"))
    _assert_refused(c, _url(site, "qa_plot"))


# --------------------------------------------------------------------------- 5: unreadable databases


QUEUE_URLS = ["/api/status", "/api/groups", f"/api/groups/{GROUP_ID}", "/api/metrics/performance"]
QUEUE_PAGES = ["/", "/groups", f"/groups/{GROUP_ID}"]
PRODUCTS_URLS = ["/api/ms_index", "/api/images", "/api/images/1", "/api/images/1/fits", "/api/images/1/thumbnail.png",
                 "/api/images/1/qa.png", f"/api/groups/{GROUP_ID}"]
PRODUCTS_PAGES = ["/", "/images", "/images/1", f"/groups/{GROUP_ID}"]
REGISTRY_URLS = ["/api/status", "/api/caltables", "/api/caltables/set1", "/api/caltables/set1/plots/K.png"]
REGISTRY_PAGES = ["/", "/caltables"]
DATABASES = {"queue_db": (QUEUE_URLS, QUEUE_PAGES), "products_db": (PRODUCTS_URLS, PRODUCTS_PAGES),
             "cal_registry_db": (REGISTRY_URLS, REGISTRY_PAGES)}


def corrupt(path: Path, how: str) -> None:
    """``garbage``: the whole file is not SQLite; ``pages``: the header page is intact (the file opens and
    tells its schema version), the pages after it are garbage (the error comes mid-query)."""
    data = path.read_bytes()
    keep = 0 if how == "garbage" else int.from_bytes(data[16:18], "big")  # the page size, from the header
    assert len(data) > keep
    path.write_bytes(data[:keep] + bytes((i * 37 + 11) % 256 for i in range(len(data) - keep)))
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


@pytest.mark.parametrize("how", ["garbage", "pages"])
@pytest.mark.parametrize("db", list(DATABASES))
def test_a_corrupt_database_is_a_503_naming_the_file(site, db, how):
    path = getattr(site.settings, db)
    corrupt(path, how)
    c = site.client()
    urls, pages = DATABASES[db]
    for url in urls:
        r = c.get(url)
        assert r.status_code == 503, (url, r.status_code, r.text[:300])
        assert str(path) in r.json()["detail"], (url, r.json())
    for url in pages:
        r = c.get(url)
        assert r.status_code == 503 and r.headers["content-type"].startswith("text/html"), (url, r.text[:300])
        assert str(path) in r.text and "<html" in r.text, url
    assert c.get("/api/metrics/system").status_code == 200  # no database: unaffected


@pytest.mark.parametrize("how", ["garbage", "pages"])
def test_reprocess_on_a_corrupt_queue_is_a_503(site, how):
    corrupt(site.settings.queue_db, how)
    r = site.client().post(f"/api/reprocess/{GROUP_ID}", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 503 and str(site.settings.queue_db) in r.json()["detail"], r.text[:300]
