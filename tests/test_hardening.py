"""An operator's worst day (issue 18): every kind of bad input arrives at once among good groups.

One module-scoped run streams two good groups (3C147 calibrator, then a target with a few NaN
samples) together with: an impossible date and full-width digits in names (item 1), a FIFO named
like a subband (item 2), a group with an all-NaN subband (item 3), a group with a malformed header
field (item 4), an identical and a different-content duplicate subband (item 6) and an
out-of-range subband (item 7).  The daemon runs until idle, an operator resolves the conflicting
duplicate, and a second run (a restart) finishes.  Each item's test reads that run; the stage
timeout, the queue database at start-up and SIGTERM have runs of their own.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pytest

from dsa110_contimg.config import load_settings

from imaging_helpers import pipeline_env

FULLWIDTH_ONE = "\uff11"  # '１' matches \d but is no ASCII digit


def _shift(path: Path, seconds: int, sb: int | None = None) -> str:
    """The name of ``path`` with its timestamp moved by ``seconds`` (and another subband index)."""
    from datetime import datetime, timedelta

    ts = datetime.strptime(path.name[:19], "%Y-%m-%dT%H:%M:%S") + timedelta(seconds=seconds)
    return f"{ts:%Y-%m-%dT%H:%M:%S}_sb{path.name[22:24] if sb is None else f'{sb:02d}'}.hdf5"


def _copy_group(files, dest: Path) -> dict[int, Path]:
    out = {}
    for p in files:
        shutil.copy(p, dest / p.name)
        out[int(p.name[22:24])] = dest / p.name
    return out


def _make_nan(path: Path, rows: slice) -> int:
    """Overwrite visibilities of ``rows`` (records) with NaN; returns the number of samples made NaN."""
    with h5py.File(path, "r+") as f:
        vis = f["Data"]["visdata"]
        block = vis[rows]
        vis[rows] = np.full(block.shape, np.nan + 1j * np.nan, dtype=block.dtype)
        return int(np.prod(block.shape))


class _Capture(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def _queue(s):
    from dsa110_contimg.db import queue as q

    return q.connect(s.queue_db)


def _run(s, **kw):
    from dsa110_contimg.pipeline.stream import StreamDaemon, StreamOptions

    opts = dict(input_dir=s.incoming_dir, output_dir=s.output_dir, executor="inline", poll_interval_s=0.1,
                hold_retry_s=0.5, use_inotify=False, backoff_s=0.5)
    opts.update(kw)
    return StreamDaemon(StreamOptions(**opts), s).run(max_seconds=600, until_idle=True)


@pytest.fixture(scope="module")
def sims(tmp_path_factory, antpos_csv):
    from dsa110_contimg.simulate.core import SimulateOptions, simulate

    root = tmp_path_factory.mktemp("worst_day_sim")
    return simulate(SimulateOptions(output_dir=root, preset="small", groups=4, calibrator="3C147", n_sources=6,
                                    antpos_csv=antpos_csv, seed=29, jitter_s=2)).groups


@pytest.fixture(scope="module")
def worst_day(sims, tmp_path_factory, antpos_csv):
    from dsa110_contimg.db import queue as q

    root = tmp_path_factory.mktemp("worst_day")
    s = load_settings(pipeline_env(root, antpos_csv))
    inc = s.incoming_dir
    g0, g1, g2, g3 = sims
    cal = _copy_group(g0.files, inc)
    tgt = _copy_group(g1.files, inc)
    nan_samples = _make_nan(tgt[7], slice(0, 40))  # a few NaN records in a good group
    # item 6: an identical copy (1 s later) of the calibrator's sb05, a different copy of the target's sb03
    same = inc / _shift(cal[5], 1)
    shutil.copy(cal[5], same)
    differ = inc / _shift(tgt[3], 1)
    shutil.copy(tgt[3], differ)
    _make_nan(differ, slice(0, 1))
    # item 1: names that match \d-based patterns but are no subband files
    bad_date = inc / "2025-02-30T12:00:00_sb01.hdf5"
    shutil.copy(g0.files[1], bad_date)
    fullwidth = inc / f"{g0.files[0].name[:19]}_sb0{FULLWIDTH_ONE}.hdf5"
    shutil.copy(g0.files[1], fullwidth)
    # item 7: an out-of-range subband with the target's timestamp
    sb16 = inc / _shift(tgt[15], 0, sb=16)
    shutil.copy(tgt[15], sb16)
    # item 2: a FIFO named like a subband of a group of its own
    fifo = inc / "2025-10-02T03:00:00_sb00.hdf5"
    os.mkfifo(fifo)
    # item 3: a group whose sb04 is all NaN
    nan_group = _copy_group(g2.files, inc)
    _make_nan(nan_group[4], slice(None))
    # item 4: a group whose sb02 header has Nblts as a string
    bad_hdr = _copy_group(g3.files, inc)
    with h5py.File(bad_hdr[2], "r+") as f:
        del f["Header"]["Nblts"]
        f["Header"]["Nblts"] = np.bytes_("many")

    run1 = _run(s)
    conn = _queue(s)
    after1 = {g.group_id: g for g in q.list_groups(conn)}
    kept = q.release(conn, next(gid for gid, g in after1.items() if g.operator_hold), keep=tgt[3].name)
    conn.close()

    cap = _Capture()
    logging.getLogger("dsa110_contimg").addHandler(cap)
    try:
        run2 = _run(s)
    finally:
        logging.getLogger("dsa110_contimg").removeHandler(cap)
    conn = _queue(s)
    final = {g.group_id: g for g in q.list_groups(conn)}
    extra = {Path(e.path).name: e for e in q.list_extra_files(conn, limit=1000)}
    metrics = {gid: q.get_metrics(conn, gid) for gid in final}
    conn.close()
    return SimpleNamespace(s=s, run1=run1, run2=run2, after1=after1, final=final, extra=extra, metrics=metrics,
                           cal=cal, tgt=tgt, same=same, differ=differ, bad_date=bad_date, fullwidth=fullwidth,
                           sb16=sb16, fifo=fifo, nan_group=nan_group, bad_hdr=bad_hdr, nan_samples=nan_samples,
                           kept=kept, log2=cap.lines)


def _group_of(run, files: dict[int, Path]):
    name = files[0].name
    return next(g for g in run.final.values() if any(Path(p).name == name for p in g.files.values()))


def _good_completed_once(run):
    """Both good groups completed, each exactly once over the two runs, with one MS and two images each."""
    from dsa110_contimg.db import products as pdb

    cal, tgt = _group_of(run, run.cal), _group_of(run, run.tgt)
    assert cal.state == "completed" and tgt.state == "completed", (cal, tgt)
    done = run.run1.completed + run.run2.completed
    assert sorted(done) == sorted([cal.group_id, tgt.group_id])
    pconn = pdb.connect(run.s.products_db)
    ms = pdb.list_ms(pconn, limit=100)
    images = pdb.list_images(pconn, limit=100)
    pconn.close()
    assert len(ms) == 2 and len(images) == 4


def test_item1_impossible_and_unicode_names_set_aside(worst_day):
    r = worst_day
    assert "impossible date" in r.extra[r.bad_date.name].reason and r.extra[r.bad_date.name].kind == "ignored"
    assert r.extra[r.fullwidth.name].kind == "ignored"
    assert r.bad_date.is_file() and r.fullwidth.is_file()  # set aside, not deleted
    _good_completed_once(r)


def test_set_aside_files_shown_in_the_api(worst_day):
    from fastapi.testclient import TestClient

    from dsa110_contimg.api.app import create_app

    r = worst_day
    client = TestClient(create_app(r.s, refresh_s=0))
    ans = client.get("/api/set_aside", params={"kind": "ignored", "limit": 100})
    assert ans.status_code == 200
    shown = {row["name"]: row["reason"] for row in ans.json()["items"]}
    for p in (r.bad_date, r.fullwidth, r.sb16, r.fifo):
        assert p.name in shown and shown[p.name], (p.name, shown)
    tgt = _group_of(r, r.tgt)
    detail = client.get(f"/api/groups/{tgt.group_id}").json()
    assert {(o["name"], o["kind"]) for o in detail["other_files"]} >= {(r.differ.name, "rejected")}
    page = client.get(f"/groups/{tgt.group_id}")
    assert page.status_code == 200 and r.differ.name in page.text


def test_item1_fuzz_name_parser_never_raises(tmp_path):
    from hypothesis import given, settings, strategies as st

    from dsa110_contimg.conversion.grouping import check_subband_name
    from dsa110_contimg.db import queue as q

    conn = q.connect(tmp_path / "q.sqlite3")
    digits = st.text(alphabet=st.characters(categories=["Nd"]), min_size=1, max_size=4)
    name_like = st.builds(lambda y, mo, d, h, mi, se, sb: f"{y}-{mo}-{d}T{h}:{mi}:{se}_sb{sb}.hdf5",
                          digits, digits, digits, digits, digits, digits, digits)
    surrogate = st.text(alphabet=st.characters(min_codepoint=0xDC80, max_codepoint=0xDCFF), max_size=3)

    @settings(max_examples=300, deadline=None)
    @given(st.one_of(st.text(max_size=40), name_like, st.builds(str.__add__, surrogate, name_like)))
    def check(name):
        name = name.replace("/", "_").replace("\x00", "_") or "x"
        chk = check_subband_name(name, expected_subbands=16)
        if chk.file is not None:  # accepted names are strictly ASCII, a real date, a subband in range
            assert name.isascii() and chk.file.subband < 16
        r = q.add_file(conn, f"/incoming/{name}", expected_subbands=16)
        assert r.status in ("added", "ignored", "known", "duplicate-path", "duplicate-subband", "late")

    check()
    conn.close()


def test_item2_fifo_set_aside_without_opening(worst_day):
    r = worst_day
    e = r.extra[r.fifo.name]
    assert e.kind == "ignored" and "not a regular file (FIFO)" in e.reason
    assert r.fifo.exists()  # left where it is
    assert not any(Path(p).name == r.fifo.name for g in r.final.values() for p in g.files.values())
    _good_completed_once(r)


def test_item3_nan_flagged_or_bad_input(worst_day):
    from casacore.tables import table

    r = worst_day
    g = _group_of(r, r.nan_group)
    assert g.state == "failed" and g.retry_count == 0
    assert r.nan_group[4].name in g.error and "NaN" in g.error
    quarantine = r.s.incoming_dir.parent / "quarantine"
    assert all((quarantine / p.name).is_file() for p in r.nan_group.values())
    # the good target's NaN samples were flagged and counted, nothing non-finite reached the MS
    tgt = _group_of(r, r.tgt)
    assert r.metrics[tgt.group_id]["nonfinite_samples"] == r.nan_samples
    with table(tgt.checkpoint_path, ack=False) as t:
        for col in ("DATA", "CORRECTED_DATA"):
            assert np.isfinite(t.getcol(col)).all(), col
        assert t.getcol("FLAG").sum() >= r.nan_samples
    _good_completed_once(r)


def test_item4_malformed_header_is_bad_input(worst_day):
    r = worst_day
    g = _group_of(r, r.bad_hdr)
    assert g.state == "failed" and g.retry_count == 0, (g.state, g.retry_count, g.error)
    assert r.bad_hdr[2].name in g.error and "Nblts" in g.error
    quarantine = r.s.incoming_dir.parent / "quarantine"
    assert (quarantine / r.bad_hdr[2].name).is_file()
    _good_completed_once(r)


def test_item6_duplicates_recorded_held_and_released(worst_day):
    r = worst_day
    same, differ = r.extra[r.same.name], r.extra[r.differ.name]
    assert same.kind == "duplicate" and same.group_id == _group_of(r, r.cal).group_id
    assert f"identical copy {r.same.name}" in _group_of(r, r.cal).notes
    # the different copy held its group for an operator, naming both files
    tgt_id = _group_of(r, r.tgt).group_id
    held = r.after1[tgt_id]
    assert held.state == "held" and held.operator_hold
    assert r.differ.name in held.hold_reason and r.tgt[3].name in held.hold_reason
    assert "contimg queue release" in held.hold_reason
    # the operator kept the original: the other copy is rejected, kept on disk, never processed
    assert r.kept.endswith(r.tgt[3].name) and differ.kind == "rejected" and r.differ.is_file()
    assert Path(_group_of(r, r.tgt).files[3]).name == r.tgt[3].name
    # the restart neither re-registered nor re-logged any of the files set aside
    assert not [line for line in r.log2 if "set aside" in line or "duplicates subband" in line], r.log2
    _good_completed_once(r)


def test_item7_out_of_range_subband_ignored(worst_day):
    from casacore.tables import table

    r = worst_day
    e = r.extra[r.sb16.name]
    assert e.kind == "ignored" and "out of range" in e.reason
    tgt = _group_of(r, r.tgt)
    assert sorted(tgt.files) == list(range(16))
    with h5py.File(r.tgt[0], "r") as f:
        nchan_sb = int(f["Header"]["Nfreqs"][()])
    with table(f"{tgt.checkpoint_path}/SPECTRAL_WINDOW", ack=False) as t:
        assert t.getcell("NUM_CHAN", 0) == 16 * nchan_sb
    _good_completed_once(r)


def test_everything_at_once(worst_day):
    r = worst_day
    _good_completed_once(r)
    states = sorted(g.state for g in r.final.values())
    assert states == ["completed", "completed", "failed", "failed"], r.final
    quarantine = r.s.incoming_dir.parent / "quarantine"
    q_names = {p.name for p in quarantine.iterdir()}
    assert q_names == {p.name for p in [*r.nan_group.values(), *r.bad_hdr.values()]}
    for p in (r.bad_date, r.fullwidth, r.sb16, r.same, r.differ, *r.cal.values(), *r.tgt.values()):
        assert p.is_file(), p  # nothing good or set aside was lost
    assert r.fifo.exists()
    assert {e.kind for e in r.extra.values()} >= {"ignored", "duplicate", "rejected"}
    assert not list(Path(r.s.stage_dir).glob("contimg-stage-*"))
    assert not list(Path(r.s.output_dir).glob("*contimg-stage*"))
    from dsa110_contimg.db import queue as q

    conn = _queue(r.s)
    hb = q.get_heartbeat(conn, "stream")
    conn.close()
    assert hb is not None and hb.info.get("stopped") is True  # both runs ended cleanly, nothing crashed


# --------------------------------------------------------------------------- item 5


def _state_copy(run, dest: Path):
    """The run's settings with its three databases copied under ``dest`` (products paths unchanged)."""
    env = pipeline_env(dest, Path(os.environ["PIPELINE_ANTPOS_CSV"]))
    env["PIPELINE_INCOMING_DIR"] = str(run.s.incoming_dir)
    s = load_settings(env)
    for a, b in ((run.s.queue_db, s.queue_db), (run.s.products_db, s.products_db),
                 (run.s.cal_registry_db, s.cal_registry_db)):
        src = sqlite3.connect(a)
        dst = sqlite3.connect(b)
        src.backup(dst)
        src.close()
        dst.close()
    return s, env


def test_item5_missing_queue_db_refuses_to_start(worst_day, tmp_path):
    from dsa110_contimg.db import products as pdb
    from dsa110_contimg.db.health import StartupRefused, check_startup
    from dsa110_contimg.pipeline.stream import StreamDaemon, StreamOptions

    s, env = _state_copy(worst_day, tmp_path)
    s.queue_db.unlink()
    daemon = StreamDaemon(StreamOptions(input_dir=s.incoming_dir, output_dir=s.output_dir, executor="inline"), s)
    with pytest.raises(StartupRefused, match="is missing") as err:
        daemon.start()
    assert str(s.queue_db) in str(err.value) and "--init" in str(err.value)
    assert not s.queue_db.exists()  # not silently recreated
    pconn = pdb.connect(s.products_db)
    assert len(pdb.list_ms(pconn, limit=100)) == 2
    pconn.close()
    check_startup(s, init=True)  # an operator who means it can start a new queue
    # the CLI says so on one line, exit code 1, no traceback
    exe = Path(sys.executable).with_name("contimg")
    p = subprocess.run([str(exe), "stream", "--executor", "inline", "--no-inotify", "--until-idle"], env=env,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 1 and str(s.queue_db) in p.stderr and "Traceback" not in p.stderr, p.stderr
    assert not s.queue_db.exists()


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_item5_damaged_queue_db_named(worst_day, tmp_path, damage):
    from dsa110_contimg.db.health import StartupRefused
    from dsa110_contimg.errors import DatabaseFault
    from dsa110_contimg.db import queue as q
    from dsa110_contimg.pipeline.stream import StreamDaemon, StreamOptions

    s, env = _state_copy(worst_day, tmp_path)
    data = s.queue_db.read_bytes()
    s.queue_db.write_bytes(b"this is not sqlite" * 100 if damage == "garbage" else data[: len(data) // 3])
    before = s.queue_db.read_bytes()
    daemon = StreamDaemon(StreamOptions(input_dir=s.incoming_dir, output_dir=s.output_dir, executor="inline"), s)
    with pytest.raises(StartupRefused) as err:
        daemon.start()
    assert str(s.queue_db) in str(err.value)
    if damage == "garbage":
        with pytest.raises(DatabaseFault, match=str(s.queue_db)):
            q.connect(s.queue_db)
    exe = Path(sys.executable).with_name("contimg")
    for args in (["stream", "--executor", "inline", "--no-inotify", "--until-idle"], ["queue", "status"],
                 ["doctor"]):
        p = subprocess.run([str(exe), *args], env=env, capture_output=True, text=True, timeout=120)
        assert p.returncode == 1, (args, p.stdout, p.stderr)
        assert str(s.queue_db) in p.stdout + p.stderr and "Traceback" not in p.stderr, (args, p.stderr)
    assert s.queue_db.read_bytes() == before  # nothing repaired or replaced behind the operator's back


# --------------------------------------------------------------------------- item 2: the stage timeout


def test_item2_stage_timeout_kills_blocked_worker(sims, tmp_path, antpos_csv):
    """A subband replaced by a FIFO after it was queued blocks conversion; the stage is killed at the
    timeout (its Dask worker restarted), the group fails with the reason and the good group completes."""
    from dsa110_contimg.db import queue as q
    from dsa110_contimg.pipeline.stream import StreamDaemon, StreamOptions

    s = load_settings(pipeline_env(tmp_path, antpos_csv))
    _copy_group(sims[0].files, s.incoming_dir)
    blocked = _copy_group(sims[2].files, s.incoming_dir)
    daemon = StreamDaemon(StreamOptions(input_dir=s.incoming_dir, output_dir=s.output_dir, executor="dask",
                                        workers=1, poll_interval_s=0.2, use_inotify=False, max_retries=1,
                                        stage_timeout_s=30.0), s)
    daemon.start()
    try:
        blocked[1].unlink()
        os.mkfifo(blocked[1])  # swapped after the scan registered it
        t0 = time.monotonic()
        while time.monotonic() - t0 < 400:
            daemon.step()
            conn = _queue(s)
            counts = q.counts_by_state(conn)
            conn.close()
            if counts[q.COMPLETED] + counts[q.FAILED] == 2 and not daemon.running:
                break
            time.sleep(0.2)
    finally:
        daemon.stop()
    conn = _queue(s)
    groups = {g.group_id: g for g in q.list_groups(conn)}
    conn.close()
    good, stuck = groups[min(groups)], groups[max(groups)]
    assert good.state == "completed", good
    assert stuck.state == "failed" and "timed out after" in stuck.error and "restarted" in stuck.error, stuck.error
    assert daemon.stats.completed == [good.group_id]


# --------------------------------------------------------------------------- item 10: SIGTERM


def test_item10_sigterm_heartbeat_says_stopped(tmp_path, antpos_csv):
    from dsa110_contimg.db import queue as q

    env = pipeline_env(tmp_path, antpos_csv)
    s = load_settings(env)
    exe = Path(sys.executable).with_name("contimg")
    p = subprocess.Popen([str(exe), "stream", "--executor", "inline", "--no-inotify", "--poll", "0.2"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        t0 = time.monotonic()
        hb = None
        while time.monotonic() - t0 < 60 and hb is None:
            time.sleep(0.5)
            if s.queue_db.exists():
                conn = _queue(s)
                hb = q.get_heartbeat(conn, "stream")
                conn.close()
        assert hb is not None and not hb.info.get("stopped")
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
    conn = _queue(s)
    hb = q.get_heartbeat(conn, "stream")
    conn.close()
    assert hb.info.get("stopped") is True, hb
