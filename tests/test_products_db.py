"""Products database: schema/migrations, idempotent upserts, listing, detections, WAL concurrent reads."""

from __future__ import annotations

import doctest
import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest

from dsa110_contimg.db import products as pdb
from dsa110_contimg.db.products import (
    Detection,
    ImageRecord,
    MSRecord,
    ProductsDBError,
    connect,
    connect_readonly,
    get_detections,
    get_image,
    get_image_by_path,
    get_ms,
    list_images,
    list_ms,
    ms_paths_with_images,
    replace_detections,
    update_ms_stage,
    upsert_image,
    upsert_ms,
)

T0 = 60950.0
FIVE_MIN = 5.0 / 1440.0


@pytest.fixture()
def db_path(tmp_path) -> Path:
    return tmp_path / "state" / "products.sqlite3"


@pytest.fixture()
def db(db_path):
    conn = connect(db_path)
    yield conn
    conn.close()


def ms_rec(i: int, root: str = "/data/ms", **kw) -> MSRecord:
    start = T0 + i * FIVE_MIN
    return MSRecord(f"{root}/obs_{i:03d}.ms", start_mjd=start, end_mjd=start + FIVE_MIN, **kw)


def count(conn, table: str) -> int:
    return conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


def dump(conn, table: str) -> list[tuple]:
    return [tuple(r) for r in conn.execute(f"SELECT * FROM {table} ORDER BY 1")]


# --------------------------------------------------------------------------- schema


def test_connect_creates_schema_wal_and_indices(db, db_path):
    assert db_path.is_file()
    assert db.execute("PRAGMA user_version").fetchone()[0] == pdb.SCHEMA_VERSION == len(pdb.MIGRATIONS) >= 4
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    ms_cols = [r[1] for r in db.execute("PRAGMA table_info(ms_index)")]
    assert ms_cols == ["path", "start_mjd", "end_mjd", "mid_mjd", "processed_at", "status", "stage",
                       "stage_updated_at", "cal_applied", "imagename", "ra_deg", "dec_deg"]
    img_cols = {r[1] for r in db.execute("PRAGMA table_info(images)")}
    assert {"id", "path", "ms_path", "created_at", "type", "beam_major_arcsec", "noise_jy", "pbcor",
            "beam_minor_arcsec", "beam_pa_deg", "peak_jy", "dynamic_range", "backend", "freq_hz",
            "thumbnail_path", "qa_plot_path", "fits_path", "n_detections", "flux_ratio_median",
            "astrometry_offset_arcsec", "qa_json", "timings_json", "status", "flux_scale_ratio", "flux_scale_err",
            "flux_scale_n", "thermal_noise_jy", "rms_over_thermal", "ref_offset_arcsec", "quality_state",
            "gates_json"} == img_cols
    indices = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {name for name, _, _ in pdb.INDICES} <= indices
    # reconnecting is a no-op
    again = connect(db_path)
    assert again.execute("PRAGMA user_version").fetchone()[0] == pdb.SCHEMA_VERSION
    again.close()


V1_SQL = """
CREATE TABLE ms_index (path TEXT PRIMARY KEY, start_mjd REAL, end_mjd REAL, mid_mjd REAL, processed_at TEXT,
                       status TEXT, stage TEXT, stage_updated_at TEXT, cal_applied INTEGER, imagename TEXT,
                       ra_deg REAL, dec_deg REAL);
CREATE TABLE images (id INTEGER PRIMARY KEY, path TEXT UNIQUE NOT NULL, ms_path TEXT, created_at TEXT, type TEXT,
                     beam_major_arcsec REAL, noise_jy REAL, pbcor INTEGER);
CREATE TABLE detections (id INTEGER PRIMARY KEY, image_id INTEGER REFERENCES images(id) ON DELETE CASCADE,
                         ra_deg REAL, dec_deg REAL, ra_err_arcsec REAL, dec_err_arcsec REAL, peak_jy REAL,
                         peak_err_jy REAL, int_jy REAL, int_err_jy REAL, snr REAL, catalog_source_id INTEGER,
                         catalog_sep_arcsec REAL, catalog_flux_jy REAL);
INSERT INTO ms_index VALUES ('/old/a.ms', 60900.0, 60900.1, 60900.05, '2025-08-13T01:00:00Z', 'ok', 'imaged',
                             '2025-08-13T01:10:00Z', 1, '/old/a', 129.0, 55.5);
INSERT INTO images VALUES (7, '/old/a-image.fits', '/old/a.ms', '2025-08-13T01:20:00Z', 'image', 40.0, 0.002, 0);
INSERT INTO detections (image_id, ra_deg, dec_deg, peak_jy) VALUES (7, 129.1, 55.4, 0.5), (7, 129.2, 55.6, 0.3);
PRAGMA user_version = 1;
"""


def test_migration_from_v1_keeps_rows(tmp_path):
    path = tmp_path / "old.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(V1_SQL)
    old.close()

    conn = connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == pdb.SCHEMA_VERSION
    ms = get_ms(conn, "/old/a.ms")
    assert ms == MSRecord("/old/a.ms", 60900.0, 60900.1, 60900.05, "2025-08-13T01:00:00Z", "ok", "imaged",
                          "2025-08-13T01:10:00Z", True, "/old/a", 129.0, 55.5)
    img = get_image(conn, 7)
    assert (img.path, img.ms_path, img.type, img.beam_major_arcsec, img.noise_jy, img.pbcor) == \
        ("/old/a-image.fits", "/old/a.ms", "image", 40.0, 0.002, False)
    assert img.beam_minor_arcsec is None and img.qa is None and img.timings is None and img.status is None
    assert img.n_detections == 2  # backfilled by the migration
    assert [d.peak_jy for d in get_detections(conn, 7)] == [0.5, 0.3]
    indices = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {name for name, _, _ in pdb.INDICES} <= indices

    # the new columns are usable on the old row, and the id is kept
    assert upsert_image(conn, ImageRecord("/old/a-image.fits", beam_minor_arcsec=30.0, qa={"rms": 0.002})) == 7
    img = get_image(conn, 7)
    assert img.beam_minor_arcsec == 30.0 and img.qa == {"rms": 0.002} and img.noise_jy == 0.002
    conn.close()


def test_migration_is_atomic_and_refuses_newer_schema(tmp_path):
    path = tmp_path / "new.sqlite3"
    c = sqlite3.connect(path)
    c.execute("CREATE TABLE future (x)")
    c.execute(f"PRAGMA user_version = {pdb.SCHEMA_VERSION + 1}")
    c.commit()
    c.close()
    with pytest.raises(ProductsDBError, match=rf"products database schema version {pdb.SCHEMA_VERSION + 1} is newer"):
        connect(path)
    c = sqlite3.connect(path)
    assert c.execute("PRAGMA user_version").fetchone()[0] == pdb.SCHEMA_VERSION + 1
    assert c.execute("SELECT name FROM sqlite_master WHERE name = 'ms_index'").fetchone() is None
    c.close()


def test_readonly_missing_file_is_none_and_not_created(tmp_path):
    path = tmp_path / "nowhere" / "products.sqlite3"
    assert connect_readonly(path) is None
    assert not path.exists() and not path.parent.exists()
    # an empty, never-initialised file counts as "no products yet"
    empty = tmp_path / "empty.sqlite3"
    empty.touch()
    assert connect_readonly(empty) is None
    # not a database at all
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ProductsDBError, match="junk.sqlite3 cannot be read"):
        connect_readonly(junk)


def test_readonly_connection_reads_but_cannot_write(db, db_path):
    upsert_ms(db, ms_rec(1, stage="converted"))
    ro = connect_readonly(db_path)
    assert ro is not None
    assert get_ms(ro, "/data/ms/obs_001.ms").stage == "converted"
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        upsert_ms(ro, ms_rec(2))
    ro.close()


# --------------------------------------------------------------------------- ms_index


def test_upsert_ms_idempotent_updates_and_none_keeps(db):
    rec = ms_rec(0, status="ok", stage="converted", ra_deg=128.0, dec_deg=55.0, cal_applied=False)
    first = upsert_ms(db, rec)
    assert first.mid_mjd == pytest.approx(T0 + FIVE_MIN / 2)
    assert first.stage_updated_at is not None and first.stage_updated_at.endswith("Z")
    snapshot = dump(db, "ms_index")
    second = upsert_ms(db, rec)
    assert count(db, "ms_index") == 1
    assert dump(db, "ms_index") == snapshot  # same record twice: nothing changes, not even the stage time
    assert second == first

    # a change overwrites; None fields do not erase
    upd = upsert_ms(db, MSRecord(rec.path, status="failed", cal_applied=True))
    assert count(db, "ms_index") == 1
    assert upd.status == "failed" and upd.cal_applied is True
    assert (upd.start_mjd, upd.end_mjd, upd.mid_mjd, upd.ra_deg, upd.dec_deg, upd.stage) == \
        (first.start_mjd, first.end_mjd, first.mid_mjd, 128.0, 55.0, "converted")
    assert upd.stage_updated_at == first.stage_updated_at  # stage unchanged

    # a new stage re-stamps; an explicit stamp wins
    later = upsert_ms(db, MSRecord(rec.path, stage="calibrated"))
    assert later.stage == "calibrated" and later.stage_updated_at > first.stage_updated_at
    fixed = upsert_ms(db, MSRecord(rec.path, stage="imaged", stage_updated_at="2030-01-01T00:00:00Z"))
    assert fixed.stage_updated_at == "2030-01-01T00:00:00Z"


def test_upsert_ms_paths_are_absolute_and_input_checked(db, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rec = upsert_ms(db, MSRecord("rel/x.ms", start_mjd=T0))
    assert rec.path == str(tmp_path / "rel" / "x.ms")
    assert get_ms(db, "rel/x.ms") == get_ms(db, tmp_path / "rel" / "x.ms") == rec
    assert get_ms(db, "/no/such.ms") is None
    with pytest.raises(ProductsDBError, match="end_mjd .* is before start_mjd"):
        upsert_ms(db, MSRecord("/a.ms", start_mjd=T0, end_mjd=T0 - 1))
    with pytest.raises(ProductsDBError, match=r"ra_deg=nan is not finite"):
        upsert_ms(db, MSRecord("/a.ms", ra_deg=float("nan")))
    with pytest.raises(ProductsDBError, match="start_mjd='soon' is not a number"):
        upsert_ms(db, MSRecord("/a.ms", start_mjd="soon"))
    with pytest.raises(ProductsDBError, match="non-empty path"):
        upsert_ms(db, MSRecord(""))
    assert count(db, "ms_index") == 1


def test_update_ms_stage(db):
    rec = upsert_ms(db, ms_rec(3, stage="converted", status="ok", stage_updated_at="2020-01-01T00:00:00Z"))
    out = update_ms_stage(db, rec.path, "calibrated")
    assert out.stage == "calibrated" and out.status == "ok"
    assert out.stage_updated_at > "2020-01-01T00:00:00Z"
    out2 = update_ms_stage(db, Path(rec.path), "imaged", status="running")
    assert (out2.stage, out2.status) == ("imaged", "running")
    assert out2.stage_updated_at >= out.stage_updated_at
    assert get_ms(db, rec.path) == out2
    with pytest.raises(ProductsDBError, match=r"MS /data/ms/missing.ms is not in the products database"):
        update_ms_stage(db, "/data/ms/missing.ms", "imaged")
    with pytest.raises(ProductsDBError, match="stage of MS"):
        update_ms_stage(db, rec.path, "  ")


def test_list_ms_order_filters_and_pagination(db):
    for i in (4, 0, 2, 1, 3):
        upsert_ms(db, ms_rec(i, stage="imaged" if i % 2 == 0 else "converted",
                             status="failed" if i == 4 else "ok"))
    upsert_ms(db, MSRecord("/data/ms/undated.ms", stage="imaged"))
    all_ms = list_ms(db)
    assert [r.path.rsplit("/", 1)[1] for r in all_ms] == \
        ["obs_004.ms", "obs_003.ms", "obs_002.ms", "obs_001.ms", "obs_000.ms", "undated.ms"]
    assert [r.path for r in list_ms(db, limit=2, offset=1)] == [r.path for r in all_ms[1:3]]
    assert list_ms(db, limit=10, offset=10) == []
    assert [r.path[-6:] for r in list_ms(db, stage="imaged")] == ["004.ms", "002.ms", "000.ms", "ted.ms"]
    assert [r.path[-6:] for r in list_ms(db, stage="imaged", status="ok")] == ["002.ms", "000.ms"]
    assert [r.path[-6:] for r in list_ms(db, status="failed")] == ["004.ms"]
    with pytest.raises(ProductsDBError, match="limit=-1"):
        list_ms(db, limit=-1)


# --------------------------------------------------------------------------- images


def full_image(path="/data/img/obs_000-image.fits", **kw) -> ImageRecord:
    base = dict(ms_path="/data/ms/obs_000.ms", type="image", beam_major_arcsec=45.0, noise_jy=1.5e-3, pbcor=False,
                beam_minor_arcsec=30.0, beam_pa_deg=-12.0, peak_jy=2.1, dynamic_range=1400.0, backend="wsclean",
                freq_hz=1.405e9, thumbnail_path="/data/img/obs_000.png", qa_plot_path="/data/img/obs_000-qa.png",
                flux_ratio_median=0.97, astrometry_offset_arcsec=3.2, qa={"rms": 1.5e-3, "n_matched": 12},
                timings={"image": 42.0}, status="ok")
    base.update(kw)
    return ImageRecord(path, **base)


def test_upsert_image_idempotent_and_roundtrip(db):
    rec = full_image()
    iid = upsert_image(db, rec)
    snapshot = dump(db, "images")
    assert upsert_image(db, rec) == iid
    assert count(db, "images") == 1 and dump(db, "images") == snapshot

    got = get_image(db, iid)
    assert got.id == iid and got.created_at.endswith("Z")
    expected = full_image(id=iid, created_at=got.created_at)
    assert got == expected
    assert get_image_by_path(db, rec.path) == got
    assert get_image(db, iid + 100) is None

    # change some values, None keeps the rest; dicts replace as a whole; created_at is kept
    assert upsert_image(db, ImageRecord(rec.path, noise_jy=2e-3, qa={"rms": 2e-3}, pbcor=True)) == iid
    got2 = get_image(db, iid)
    assert (got2.noise_jy, got2.qa, got2.pbcor) == (2e-3, {"rms": 2e-3}, True)
    assert got2.timings == {"image": 42.0} and got2.beam_major_arcsec == 45.0
    assert got2.created_at == got.created_at
    assert count(db, "images") == 1


def test_upsert_image_json_and_checks(db):
    iid = upsert_image(db, ImageRecord("/i.fits", qa={"rms": np.float32(0.5), "hist": np.arange(3),
                                                      "bad": float("inf"), "file": Path("/x.png")}))
    assert get_image(db, iid).qa == {"rms": 0.5, "hist": [0, 1, 2], "bad": None, "file": "/x.png"}
    with pytest.raises(ProductsDBError, match=r"image '/j.fits'.qa must be a dict"):
        upsert_image(db, ImageRecord("/j.fits", qa=[1, 2]))
    with pytest.raises(ProductsDBError, match="not JSON-serialisable"):
        upsert_image(db, ImageRecord("/j.fits", timings={"t": object()}))
    with pytest.raises(ProductsDBError, match="noise_jy=nan is not finite"):
        upsert_image(db, ImageRecord("/j.fits", noise_jy=np.nan))
    with pytest.raises(ProductsDBError, match="upsert_image needs an ImageRecord"):
        upsert_image(db, MSRecord("/j.fits"))
    assert count(db, "images") == 1


def test_list_images_order_pagination_and_ms_filter(db):
    ids = []
    for i in range(5):
        ids.append(upsert_image(db, ImageRecord(f"/img/{i}.fits", ms_path=f"/ms/{i % 2}.ms",
                                                created_at=f"2025-10-02T00:0{i}:00Z")))
    # same created_at: newest id first
    ids.append(upsert_image(db, ImageRecord("/img/5.fits", ms_path="/ms/0.ms", created_at="2025-10-02T00:04:00Z")))
    assert [r.id for r in list_images(db)] == [ids[5], ids[4], ids[3], ids[2], ids[1], ids[0]]
    assert [r.id for r in list_images(db, limit=2, offset=2)] == [ids[3], ids[2]]
    assert [r.path for r in list_images(db, ms_path="/ms/1.ms")] == ["/img/3.fits", "/img/1.fits"]
    assert [r.id for r in list_images(db, limit=1, ms_path="/ms/0.ms")] == [ids[5]]
    assert ms_paths_with_images(db) == {"/ms/0.ms", "/ms/1.ms"}
    upsert_image(db, ImageRecord("/img/orphan.fits"))
    assert ms_paths_with_images(db) == {"/ms/0.ms", "/ms/1.ms"}


# --------------------------------------------------------------------------- detections


def dets(n: int, flux0: float = 1.0) -> list[Detection]:
    return [Detection(ra_deg=128.0 + 0.1 * k, dec_deg=55.0, ra_err_arcsec=1.0, dec_err_arcsec=1.2,
                      peak_jy=flux0 / (k + 1), peak_err_jy=1e-3, int_jy=flux0 / (k + 1) * 1.1, int_err_jy=2e-3,
                      snr=100.0 / (k + 1), catalog_source_id=1000 + k if k % 2 == 0 else None,
                      catalog_sep_arcsec=2.0 if k % 2 == 0 else None,
                      catalog_flux_jy=flux0 if k % 2 == 0 else None) for k in range(n)]


def test_replace_detections_semantics(db):
    iid = upsert_image(db, full_image())
    other = upsert_image(db, full_image("/data/img/other.fits"))
    assert replace_detections(db, other, dets(2, 5.0)) == 2

    assert replace_detections(db, iid, dets(3)) == 3
    stored = get_detections(db, iid)
    assert [(d.image_id, d.peak_jy, d.catalog_source_id) for d in stored] == \
        [(iid, 1.0, 1000), (iid, 0.5, None), (iid, pytest.approx(1 / 3), 1002)]
    assert stored[0] == Detection(**{**dets(1)[0].__dict__, "image_id": iid, "id": stored[0].id})
    assert get_image(db, iid).n_detections == 3

    # replacing (even with the same list) never accumulates
    replace_detections(db, iid, dets(3))
    assert len(get_detections(db, iid)) == 3
    assert replace_detections(db, iid, dets(1, 9.0)) == 1
    assert [d.peak_jy for d in get_detections(db, iid)] == [9.0]
    assert get_image(db, iid).n_detections == 1
    assert replace_detections(db, iid, []) == 0
    assert get_detections(db, iid) == [] and get_image(db, iid).n_detections == 0
    # the other image is untouched
    assert [d.peak_jy for d in get_detections(db, other)] == [5.0, 2.5]
    # a later image upsert without n_detections keeps the count
    upsert_image(db, ImageRecord("/data/img/other.fits", noise_jy=1e-3))
    assert get_image(db, other).n_detections == 2


def test_replace_detections_errors_leave_db_unchanged(db):
    iid = upsert_image(db, full_image())
    replace_detections(db, iid, dets(2))
    before = dump(db, "detections")
    with pytest.raises(ProductsDBError, match="unknown image id 999"):
        replace_detections(db, 999, dets(1))
    bad = dets(3)
    bad[2].dec_deg = 95.0
    with pytest.raises(ProductsDBError, match=rf"image {iid} detection 2: dec_deg=95.0 is outside"):
        replace_detections(db, iid, bad)
    bad = dets(2)
    bad[1].peak_jy = float("nan")
    with pytest.raises(ProductsDBError, match=rf"image {iid} detection 1.peak_jy=nan is not finite"):
        replace_detections(db, iid, bad)
    with pytest.raises(ProductsDBError, match="detection 0 is a dict"):
        replace_detections(db, iid, [{"ra_deg": 1, "dec_deg": 2}])
    assert dump(db, "detections") == before and get_image(db, iid).n_detections == 2
    assert get_detections(db, 999) == []


def test_detections_cascade_on_image_delete(db):
    iid = upsert_image(db, full_image())
    keep = upsert_image(db, full_image("/data/img/keep.fits"))
    replace_detections(db, iid, dets(4))
    replace_detections(db, keep, dets(2))
    assert count(db, "detections") == 6
    db.execute("DELETE FROM images WHERE id = ?", (iid,))
    assert count(db, "detections") == 2
    assert get_detections(db, iid) == [] and len(get_detections(db, keep)) == 2
    # foreign keys are enforced on connections from connect()
    with pytest.raises(sqlite3.IntegrityError):
        db.execute("INSERT INTO detections (image_id, ra_deg, dec_deg) VALUES (?, 1, 2)", (iid,))


def test_writes_join_an_open_transaction(db):
    """Inside a caller's transaction the writes use a savepoint and roll back with it."""
    db.execute("BEGIN IMMEDIATE")
    upsert_ms(db, ms_rec(0))
    iid = upsert_image(db, full_image())
    replace_detections(db, iid, dets(2))
    db.execute("ROLLBACK")
    assert count(db, "ms_index") == count(db, "images") == count(db, "detections") == 0


# --------------------------------------------------------------------------- concurrency


def test_reader_during_uncommitted_write_sees_committed_state(db, db_path):
    upsert_ms(db, ms_rec(0, stage="imaged"))
    iid = upsert_image(db, full_image())
    replace_detections(db, iid, dets(2))
    reader = connect_readonly(db_path)
    assert reader is not None

    db.execute("BEGIN IMMEDIATE")  # the writer holds the write lock with uncommitted rows
    for i in range(1, 4):
        upsert_ms(db, ms_rec(i, stage="imaged"))
    replace_detections(db, iid, dets(5))
    # the reader is not blocked and sees exactly the last committed state
    assert [r.path[-6:] for r in list_ms(reader)] == ["000.ms"]
    assert len(get_detections(reader, iid)) == 2 and get_image(reader, iid).n_detections == 2
    db.execute("COMMIT")

    assert [r.path[-6:] for r in list_ms(reader)] == ["003.ms", "002.ms", "001.ms", "000.ms"]
    assert len(get_detections(reader, iid)) == 5 and get_image(reader, iid).n_detections == 5
    reader.close()


def test_reader_in_other_thread_while_writer_thread_holds_lock(db, db_path):
    upsert_ms(db, ms_rec(0))
    holding, release, done = threading.Event(), threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def writer():
        w = connect(db_path)
        try:
            w.execute("BEGIN IMMEDIATE")
            upsert_ms(w, ms_rec(1))
            holding.set()
            release.wait(10)
            w.execute("COMMIT")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            w.close()
            done.set()

    t = threading.Thread(target=writer)
    t.start()
    assert holding.wait(10)
    reader = connect_readonly(db_path)
    reader.execute("PRAGMA busy_timeout = 0")  # would fail at once if the read were blocked
    assert [r.path[-6:] for r in list_ms(reader)] == ["000.ms"]
    release.set()
    assert done.wait(10)
    t.join()
    assert not errors
    assert [r.path[-6:] for r in list_ms(reader)] == ["001.ms", "000.ms"]
    reader.close()


def test_module_doctest():
    assert doctest.testmod(pdb).failed == 0


def test_newest_first_listings_page_through_an_index(db):
    """The API pages images newest first: SQLite must walk an index, not sort the whole table per request."""
    for kind in (None, "image"):
        where = "" if kind is None else " WHERE type = 'image'"
        plan = " ".join(r[3] for r in db.execute(
            f"EXPLAIN QUERY PLAN SELECT * FROM images{where} ORDER BY created_at DESC, id DESC LIMIT 50 OFFSET 10"))
        assert "TEMP B-TREE" not in plan and "USING INDEX" in plan, plan
    pdb.upsert_image(db, pdb.ImageRecord(path="/d/old.fits", created_at="2025-01-01T00:00:00"))
    pdb.upsert_image(db, pdb.ImageRecord(path="/d/new.fits", created_at="2025-02-01T00:00:00"))
    db.execute("UPDATE images SET created_at = NULL WHERE path = '/d/old.fits'")
    names = [Path(i.path).name for i in pdb.list_images(db)]
    assert names[0] == "new.fits" and names[-1] == "old.fits"  # unknown times last
