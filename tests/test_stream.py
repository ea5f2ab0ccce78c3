"""Streaming daemon end to end: groups dropped into the incoming folder become calibrated images."""

import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from dsa110_contimg.config import load_settings
from dsa110_contimg.simulate.core import SimulateOptions, simulate
from dsa110_contimg.simulate.truth import GroupTruth

from imaging_helpers import pipeline_env


@pytest.fixture(scope="module")
def sim_groups(tmp_path_factory, antpos_csv):
    root = tmp_path_factory.mktemp("stream_sim")
    res = simulate(SimulateOptions(output_dir=root, preset="small", groups=3, calibrator="3C147", n_sources=6,
                                   antpos_csv=antpos_csv, seed=17, jitter_s=3))
    return res.groups


def _settings(tmp_path, antpos_csv):
    return load_settings(pipeline_env(tmp_path, antpos_csv))


def test_stream_end_to_end(sim_groups, tmp_path, antpos_csv):
    from dsa110_contimg.db import cal_registry as reg
    from dsa110_contimg.db import products as pdb
    from dsa110_contimg.db import queue as q
    from dsa110_contimg.pipeline.stream import StreamDaemon, StreamOptions

    s = _settings(tmp_path, antpos_csv)
    # the first group lands before the daemon starts (picked up by the start-up scan), the others while it runs
    for p in sim_groups[0].files:
        shutil.copy(p, s.incoming_dir / p.name)
    daemon = StreamDaemon(StreamOptions(input_dir=s.incoming_dir, output_dir=s.output_dir, executor="inline",
                                        poll_interval_s=0.2, hold_retry_s=0.5, use_inotify=True), s)
    daemon.start()
    try:
        daemon.step()
        for g in sim_groups[1:]:
            for p in g.files:  # written as _incomplete, then renamed, like the correlator
                tmp = s.incoming_dir / (p.stem + "_incomplete.hdf5")
                shutil.copy(p, tmp)
                tmp.rename(s.incoming_dir / p.name)
            daemon.step()
        t0 = time.monotonic()
        while time.monotonic() - t0 < 600:
            daemon.step()
            conn = q.connect(s.queue_db)
            counts = q.counts_by_state(conn)
            conn.close()
            if counts.get(q.COMPLETED, 0) + counts.get(q.FAILED, 0) == 3 and not daemon.running:
                break
            time.sleep(0.2)
    finally:
        daemon.stop()

    conn = q.connect(s.queue_db)
    groups = q.list_groups(conn)
    assert sorted(g.state for g in groups) == ["completed"] * 3, [(g.group_id, g.state, g.error) for g in groups]
    # the calibrator group ends after imaging (no photometry of a field calibrated on itself), targets after it
    assert sorted(g.processing_stage for g in groups) == ["imaged", "photometered", "photometered"]
    metrics = [q.get_metrics(conn, g.group_id) for g in groups]
    assert all(m and m["total_time"] and m["image_time"] for m in metrics)
    assert q.get_heartbeat(conn, "stream") is not None
    conn.close()
    rconn = reg.connect(s.cal_registry_db)
    sets = reg.list_sets(rconn)
    rconn.close()
    assert len(sets) == 1 and sets[0].cal_field == "3C147"
    pconn = pdb.connect(s.products_db)
    ms_rows = pdb.list_ms(pconn, limit=10)
    images = pdb.list_images(pconn, limit=20)
    assert len(ms_rows) == 3 and all(r.status == "completed" and r.cal_applied for r in ms_rows)
    assert sorted(i.type for i in images) == ["image", "image", "image", "pbcor", "pbcor", "pbcor"]
    # the last group's image holds its injected sources at their true flux
    truth = GroupTruth.from_json(sim_groups[2].truth_path)
    last = [i for i in images if i.type == "image" and Path(i.ms_path).name.startswith(sim_groups[2].start_iso[:15])]
    assert len(last) == 1
    dets = pdb.get_detections(pconn, last[0].id)
    pconn.close()
    from dsa110_contimg.beam import angular_separation

    rms = last[0].noise_jy
    bright = [src for src in truth.sources if src["apparent_flux_jy"] / rms > 50]
    assert len(bright) >= 2
    for src in bright:
        sep = [np.degrees(angular_separation(*np.radians([d.ra_deg, d.dec_deg, src["ra_deg"], src["dec_deg"]]))) * 3600
               for d in dets]
        best = dets[int(np.argmin(sep))]
        assert min(sep) < last[0].beam_major_arcsec / 5
        assert best.peak_jy == pytest.approx(src["apparent_flux_jy"], rel=0.1)
    assert not list(Path(s.stage_dir).glob("contimg-stage-*"))


def test_stream_bad_input_quarantined(sim_groups, tmp_path, antpos_csv):
    from dsa110_contimg.db import queue as q
    from dsa110_contimg.pipeline.stream import StreamDaemon, StreamOptions

    s = _settings(tmp_path, antpos_csv)
    for g in sim_groups[:2]:
        for p in g.files:
            shutil.copy(p, s.incoming_dir / p.name)
    bad = s.incoming_dir / sim_groups[1].files[4].name
    bad.write_text("not an HDF5 file")
    daemon = StreamDaemon(StreamOptions(input_dir=s.incoming_dir, output_dir=s.output_dir, executor="inline",
                                        poll_interval_s=0.1, hold_retry_s=0.5, use_inotify=False), s)
    stats = daemon.run(max_seconds=300, until_idle=True)
    conn = q.connect(s.queue_db)
    groups = {g.group_id: g for g in q.list_groups(conn)}
    conn.close()
    states = sorted(g.state for g in groups.values())
    assert states == ["completed", "failed"], [(g.group_id, g.state, g.error) for g in groups.values()]
    failed = next(g for g in groups.values() if g.state == "failed")
    assert bad.name in failed.error and "HDF5" in failed.error
    quarantine = s.incoming_dir.parent / "quarantine"
    assert (quarantine / bad.name).is_file() and len(list(quarantine.glob("*.hdf5"))) == 16
    assert stats.failed == [failed.group_id]
