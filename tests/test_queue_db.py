"""Tests of the ingest queue database (dsa110_contimg.db.queue) on real SQLite files."""

from __future__ import annotations

import sqlite3
import threading
from datetime import datetime, timedelta

import pytest

from dsa110_contimg.db import queue as q

T0 = datetime(2025, 10, 2, 12, 0, 0)
NOW = 1_760_000_000.0


def name(t: datetime, sb: int, suffix: str = ".hdf5") -> str:
    return f"/data/incoming/{t.strftime('%Y-%m-%dT%H:%M:%S')}_sb{sb:02d}{suffix}"


@pytest.fixture
def db(tmp_path):
    conn = q.connect(tmp_path / "state" / "queue.sqlite3")
    yield conn
    conn.close()


def fill(conn, t=T0, n=16, expected=16, now=NOW, jitter=True):
    """Register subbands 0..n-1 of one observation, timestamps jittered by up to 3 s."""
    res = [q.add_file(conn, name(t + timedelta(seconds=(sb % 4) if jitter else 0), sb),
                      expected_subbands=expected, now=now) for sb in range(n)]
    return res[-1].group_id


def test_grouping_with_jitter_and_separate_groups(db):
    r0 = q.add_file(db, name(T0 + timedelta(seconds=2), 3), now=NOW)
    r1 = q.add_file(db, name(T0, 0), now=NOW)  # earlier timestamp joins the existing group
    r2 = q.add_file(db, name(T0 + timedelta(seconds=5), 7), now=NOW)
    r3 = q.add_file(db, name(T0 + timedelta(minutes=5), 0), now=NOW)
    assert r0.status == r1.status == r2.status == r3.status == "added"
    assert r0.group_id == r1.group_id == r2.group_id == "2025-10-02T12:00:02"
    assert r3.group_id == "2025-10-02T12:05:00"
    g = q.get_group(db, r0.group_id)
    assert g.state == q.COLLECTING and sorted(g.files) == [0, 3, 7]
    assert g.files[0] == "/data/incoming/2025-10-02T12:00:00_sb00.hdf5"
    assert len(g.missing_subbands) == 13
    assert g.received_at.endswith("Z") and g.retry_count == 0 and not g.partial


def test_pending_when_complete(db):
    for sb in range(15):
        assert q.add_file(db, name(T0 + timedelta(seconds=sb % 3), sb), now=NOW).state == q.COLLECTING
    last = q.add_file(db, name(T0, 15), now=NOW)
    assert last.state == q.PENDING
    g = q.get_group(db, last.group_id)
    assert g.state == q.PENDING and len(g.files) == 16 and g.missing_subbands == []


def test_duplicates_and_incomplete_ignored(db):
    first = q.add_file(db, name(T0, 1), now=NOW)
    again = q.add_file(db, name(T0, 1), now=NOW)
    assert again.status == "duplicate-path" and again.group_id == first.group_id and again.subband_idx == 1
    other = q.add_file(db, "/elsewhere/" + name(T0 + timedelta(seconds=1), 1).rsplit("/", 1)[1], now=NOW)
    assert other.status == "duplicate-subband" and other.group_id == first.group_id
    assert q.add_file(db, name(T0, 2, "_incomplete.hdf5"), now=NOW).status == "ignored"
    assert q.add_file(db, "/data/incoming/notes.txt", now=NOW) == q.AddFileResult(None, None, "ignored")
    g = q.get_group(db, first.group_id)
    assert g.files == {1: name(T0, 1)}
    assert db.execute("SELECT COUNT(*) FROM subband_files").fetchone()[0] == 1


def test_timeout_promotes_partial_group(db):
    gid = fill(db, n=10)
    assert q.promote_timed_out(db, now=NOW + 100) == []
    assert q.promote_timed_out(db, now=NOW + 2 * 309.24 + 1) == [gid]
    g = q.get_group(db, gid)
    assert g.state == q.PENDING and g.partial and g.error is None
    assert "10/16" in g.notes and "sb10" in g.notes and "sb15" in g.notes
    # a late subband still joins the pending group; when complete it is no longer partial
    for sb in range(10, 16):
        assert q.add_file(db, name(T0, sb), now=NOW + 700).status == "added"
    g = q.get_group(db, gid)
    assert g.state == q.PENDING and not g.partial and g.notes is None
    # configurable timeout
    gid2 = fill(db, t=T0 + timedelta(minutes=5), n=3, now=NOW)
    assert q.promote_timed_out(db, now=NOW + 61, timeout_s=60) == [gid2]


def test_late_file_for_claimed_group(db):
    gid = fill(db, expected=2, n=2)
    q.claim_next(db, now=NOW)
    late = q.add_file(db, name(T0, 5), now=NOW)
    assert late.status == "late" and late.group_id == gid and late.state == q.IN_PROGRESS
    assert 5 not in q.get_group(db, gid).files


def test_claim_next_order_and_backoff(db):
    g_new = fill(db, t=T0 + timedelta(minutes=5))
    g_old = fill(db)
    assert q.claim_next(db, now=NOW).group_id == g_old
    claimed = q.claim_next(db, now=NOW)
    assert claimed.group_id == g_new and claimed.state == q.IN_PROGRESS and len(claimed.files) == 16
    assert q.claim_next(db, now=NOW) is None


def test_claim_next_exclusive_across_threads(tmp_path):
    path = tmp_path / "queue.sqlite3"
    setup = q.connect(path)
    ids = {fill(setup, t=T0 + timedelta(minutes=5 * i), expected=2, n=2) for i in range(40)}
    setup.close()
    claimed: list[list[str]] = [[], []]
    barrier = threading.Barrier(2)

    def worker(k):
        conn = q.connect(path)
        barrier.wait()
        while (g := q.claim_next(conn, now=NOW)) is not None:
            claimed[k].append(g.group_id)
        conn.close()

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    together = claimed[0] + claimed[1]
    assert len(together) == len(set(together)) == 40 and set(together) == ids


def test_checkpoint_and_reset_stale_keep_stage(db):
    gid = fill(db)
    q.claim_next(db, now=NOW)
    q.checkpoint(db, gid, "converted", "/data/ms/x.ms", now=NOW + 10)
    q.checkpoint(db, gid, "calibrated", now=NOW + 20)
    assert q.reset_stale(db, now=NOW + 30) == [gid]
    g = q.get_group(db, gid)
    assert g.state == q.PENDING and g.processing_stage == "calibrated" and g.checkpoint_path == "/data/ms/x.ms"
    again = q.claim_next(db, now=NOW + 31)
    assert again.group_id == gid and again.processing_stage == "calibrated"
    q.complete(db, gid)
    assert q.get_group(db, gid).state == q.COMPLETED
    with pytest.raises(q.QueueDBError, match="completed"):
        q.checkpoint(db, gid, "imaged")
    with pytest.raises(q.QueueDBError, match="not in the"):
        q.complete(db, "1999-01-01T00:00:00")


def test_fail_with_backoff_then_failed(db):
    gid = fill(db)
    q.claim_next(db, now=NOW)
    assert q.fail(db, gid, "boom 1", max_retries=3, backoff_s=30, now=NOW) == q.PENDING
    g = q.get_group(db, gid)
    assert g.retry_count == 1 and g.error == "boom 1" and g.next_attempt_at == NOW + 30
    assert q.claim_next(db, now=NOW + 29) is None
    assert q.claim_next(db, now=NOW + 30).group_id == gid
    assert q.fail(db, gid, "boom 2", max_retries=3, backoff_s=30, now=NOW + 30) == q.PENDING
    assert q.get_group(db, gid).next_attempt_at == NOW + 30 + 60
    assert q.claim_next(db, now=NOW + 90).group_id == gid
    assert q.fail(db, gid, "boom 3", max_retries=3, backoff_s=30, now=NOW + 90) == q.FAILED
    g = q.get_group(db, gid)
    assert g.state == q.FAILED and g.retry_count == 3 and g.error == "boom 3"
    assert q.claim_next(db, now=NOW + 10_000) is None
    # operator retry
    q.retry(db, gid, now=NOW + 100)
    g = q.get_group(db, gid)
    assert g.state == q.PENDING and g.retry_count == 0 and g.error is None
    assert q.claim_next(db, now=NOW + 100).group_id == gid


def test_fail_permanently_and_retry_restart(db):
    gid = fill(db)
    q.claim_next(db, now=NOW)
    q.checkpoint(db, gid, "converted", "/data/ms/x.ms")
    q.fail_permanently(db, gid, "corrupt header in sb03")
    g = q.get_group(db, gid)
    assert g.state == q.FAILED and g.error == "corrupt header in sb03"
    q.retry(db, gid, restart=True)
    g = q.get_group(db, gid)
    assert g.state == q.PENDING and g.processing_stage is None and g.checkpoint_path is None
    q.claim_next(db)
    with pytest.raises(q.QueueDBError, match="in_progress"):
        q.retry(db, gid)


def test_hold_and_release(db):
    gid = fill(db)
    q.claim_next(db, now=NOW)
    q.hold(db, gid, "no calibration set for Dec +55", retry_after_s=600, now=NOW)
    g = q.get_group(db, gid)
    assert g.state == q.HELD and g.hold_reason.startswith("no calibration") and g.retry_count == 0
    assert q.claim_next(db, now=NOW + 1000) is None  # held groups are not claimed
    assert q.release_held(db, now=NOW + 599) == []
    assert q.release_held(db, now=NOW + 600) == [gid]
    assert q.claim_next(db, now=NOW + 600).group_id == gid


def test_metrics_upsert_idempotent(db):
    gid = fill(db)
    m = {"load_time": 1.5, "phase_time": 2.0, "write_time": 3.0, "total_time": 7.0, "writer_type": "direct",
         "n_baselines": 4656}
    q.record_metrics(db, gid, m, now=NOW)
    q.record_metrics(db, gid, m, now=NOW)
    assert db.execute("SELECT COUNT(*) FROM performance_metrics").fetchone()[0] == 1
    q.record_metrics(db, gid, {"cal_k_time": 4.0, "image_time": 60.0, "latency_s": 900.0, "tclean_niter": 1000})
    got = q.get_metrics(db, gid)
    assert got["load_time"] == 1.5 and got["writer_type"] == "direct" and got["cal_k_time"] == 4.0
    assert got["latency_s"] == 900.0 and got["qa_time"] is None
    assert got["n_baselines"] == 4656 and got["tclean_niter"] == 1000 and got["group_id"] == gid
    assert [r["group_id"] for r in q.list_metrics(db, 10)] == [gid]
    assert q.get_metrics(db, "1999-01-01T00:00:00") is None
    with pytest.raises(q.QueueDBError, match="finite"):
        q.record_metrics(db, gid, {"load_time": float("nan")})


def test_counts_and_listing(db):
    g1 = fill(db)
    g2 = fill(db, t=T0 + timedelta(minutes=5), n=3)
    g3 = fill(db, t=T0 + timedelta(minutes=10))
    q.claim_next(db, now=NOW)
    counts = q.counts_by_state(db)
    assert counts == {"collecting": 1, "pending": 1, "in_progress": 1, "completed": 0, "failed": 0, "held": 0}
    assert [g.group_id for g in q.list_groups(db)] == [g3, g2, g1]
    assert [g.group_id for g in q.list_groups(db, limit=1, offset=1)] == [g2]
    assert [g.group_id for g in q.list_groups(db, state=q.IN_PROGRESS)] == [g1]
    assert len(q.list_groups(db, state=q.COLLECTING)[0].files) == 3
    with pytest.raises(q.QueueDBError, match="unknown state"):
        q.list_groups(db, state="bogus")


def test_heartbeat(db):
    assert q.get_heartbeat(db, "streaming") is None
    q.beat(db, "streaming", {"queue_depth": 3}, now=NOW)
    q.beat(db, "streaming", {"queue_depth": 1}, now=NOW + 10)
    hb = q.get_heartbeat(db, "streaming")
    assert hb.info == {"queue_depth": 1} and hb.pid > 0 and hb.host
    assert hb.age_s(now=NOW + 15) == pytest.approx(5.0)


def test_connect_readonly(tmp_path):
    path = tmp_path / "queue.sqlite3"
    assert q.connect_readonly(path) is None and not path.exists()
    w = q.connect(path)
    gid = fill(w, n=2)
    ro = q.connect_readonly(path)
    assert q.get_group(ro, gid).files.keys() == {0, 1}
    assert q.counts_by_state(ro)["collecting"] == 1
    with pytest.raises(sqlite3.OperationalError):
        ro.execute("DELETE FROM ingest_queue")
    ro.close()
    w.close()
    bad = tmp_path / "bad.sqlite3"
    bad.write_bytes(b"not a database at all" * 10)
    with pytest.raises(q.QueueDBError, match="cannot be read"):
        q.connect_readonly(bad)


def test_schema_version_and_legacy_upgrade(tmp_path):
    path = tmp_path / "legacy.sqlite3"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE ingest_queue (group_id TEXT PRIMARY KEY, state TEXT NOT NULL, received_at REAL, "
                "last_update REAL, expected_subbands INTEGER, retry_count INTEGER, error TEXT)")
    old.execute("INSERT INTO ingest_queue VALUES ('2025-01-01T00:00:00', 'collecting', 1000.0, 1000.0, 16, 0, NULL)")
    old.commit()
    old.close()
    conn = q.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == q.SCHEMA_VERSION
    assert q.promote_timed_out(conn, now=5000.0) == ["2025-01-01T00:00:00"]
    conn.execute(f"PRAGMA user_version = {q.SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(q.QueueDBError, match="newer"):
        q.connect(path)


def test_reprocess_from_any_finished_state_but_not_while_running(db):
    gid = fill(db)
    q.claim_next(db, now=NOW)
    with pytest.raises(q.QueueDBError, match="in_progress"):
        q.reprocess(db, gid)
    q.checkpoint(db, gid, "imaged", "/data/ms/x.ms")
    q.complete(db, gid)
    assert q.reprocess(db, gid, requested_by="ops", now=NOW + 10) == q.COMPLETED
    g = q.get_group(db, gid)
    assert g.state == q.PENDING and g.processing_stage is None and g.checkpoint_path is None and g.error is None
    assert "reprocess requested by ops" in g.notes and "(was completed)" in g.notes
    assert q.claim_next(db, now=NOW + 10).group_id == gid  # claimable at once
    with pytest.raises(q.QueueDBError, match="not in the"):
        q.reprocess(db, "2020-01-01T00:00:00")


def test_cli_queue_reprocess(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from dsa110_contimg.cli import main
    from dsa110_contimg.config import reset_settings_cache

    monkeypatch.setenv("PIPELINE_QUEUE_DB", str(tmp_path / "queue.sqlite3"))
    reset_settings_cache()
    try:
        conn = q.connect(tmp_path / "queue.sqlite3")
        gid = fill(conn)
        q.claim_next(conn)
        q.complete(conn, gid)
        conn.close()
        r = CliRunner().invoke(main, ["queue", "reprocess", gid])
        assert r.exit_code == 0 and "was completed" in r.output
        r = CliRunner().invoke(main, ["queue", "reprocess", "2020-01-01T00:00:00"])
        assert r.exit_code == 1 and "not in the" in r.output
    finally:
        monkeypatch.delenv("PIPELINE_QUEUE_DB")
        reset_settings_cache()
