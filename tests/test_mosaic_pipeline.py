"""Mosaics in the pipeline (issue 15): windows of groups, the daemon's scheduler, ``contimg mosaic``, the API.

Real queue and products databases and real FITS images (synthesized as the imager writes them,
:mod:`dsa110_contimg.mosaic.synth`, small: 60" cells and a 4' beam); the builder itself is tested against
injected truth in ``test_mosaic.py``.
"""

from __future__ import annotations

import math
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.time import Time
from click.testing import CliRunner
from fastapi.testclient import TestClient

from dsa110_contimg.db import mosaics as mdb
from dsa110_contimg.db import products as pdb
from dsa110_contimg.db import queue as q
from dsa110_contimg.imaging.defaults import good_size, pb_radius_rad
from dsa110_contimg.mosaic.synth import SnapshotSpec, group_beam, meridian_centre, write_snapshots
from dsa110_contimg.pipeline.mosaic_daemon import MosaicScheduler
from dsa110_contimg.pipeline.mosaic_windows import window_of
from dsa110_contimg.telescope import GROUP_SECONDS

N = 3  # groups per window in these tests


def _spec() -> SnapshotSpec:
    drift = GROUP_SECONDS * 15.041 / 3600 * math.cos(math.radians(55.6))
    n = good_size(int(math.ceil(2 * (math.degrees(pb_radius_rad(0.1, 1.3113873e9)) + drift / 2) * 3600 / 60.0)))
    return SnapshotSpec(n_px=n, cell_arcsec=60.0, beam_arcsec=240.0, rms_jy=1e-3)


class State:
    """A self-contained pipeline state: settings, and the groups of two windows with their images."""

    def __init__(self, root: Path, settings):
        self.root, self.s = root, settings
        w = window_of("2025-10-02T06:00:00", N)
        # the first window's three groups, then one group of the next window (closes the first)
        self.starts = [w.start_unix + 20 + k * GROUP_SECONDS for k in range(N + 1)]
        self.ids = [Time(t, format="unix").strftime("%Y-%m-%dT%H:%M:%S") for t in self.starts]
        self.window = w
        spec = _spec()
        mjd = [Time(t, format="unix").mjd for t in self.starts]
        cen = [meridian_centre(spec, group_beam(spec, t)) for t in mjd]
        # one source at the centre of group 1 (between the edges of groups 0 and 2)
        self.truth = (cen[1][0], cen[1][1] + 0.1, 0.5)
        paths = write_snapshots(root / "img", spec, mjd[:N], [self.truth[0]], [self.truth[1]], [self.truth[2]],
                                seed=4)
        self.images = []
        for gid, p in zip(self.ids, paths):
            dest = settings.output_dir / f"{gid}-image.fits"
            p.rename(dest)
            self.images.append(dest)

    def queue_groups(self, ids, state=q.COMPLETED):
        conn = q.connect(self.s.queue_db)
        try:
            for gid in ids:
                for sb in range(2):
                    q.add_file(conn, self.s.incoming_dir / f"{gid}_sb{sb:02d}.hdf5")
            conn.execute("UPDATE ingest_queue SET state = ? WHERE group_id IN (%s)" % ",".join("?" * len(ids)),
                         [state, *ids])
            conn.commit()
        finally:
            conn.close()

    def register_images(self, which=range(N), rms=1e-3):
        conn = pdb.connect(self.s.products_db)
        try:
            for k in which:
                ms = self.s.output_dir / f"{self.ids[k]}.ms"
                pdb.upsert_image(conn, pdb.ImageRecord(path=str(self.images[k]), ms_path=str(ms), type="image",
                                                       noise_jy=rms, dynamic_range=300.0, pbcor=False,
                                                       fits_path=str(self.images[k]), status="ok"))
        finally:
            conn.close()

    def schedule_once(self):
        """A fresh scheduler (as after a restart) looks at the queue, builds what is ready; the mosaics."""
        sched = MosaicScheduler(self.s, self.s.output_dir, None, inline=True)
        qc = q.connect(self.s.queue_db)
        try:
            sched.start(qc)
            sched.poll(qc)
            sched.close()
        finally:
            qc.close()
        return self.mosaics()

    def mosaics(self):
        conn = pdb.connect(self.s.products_db)
        try:
            return mdb.list_mosaics(conn)
        finally:
            conn.close()


@pytest.fixture
def state(tmp_path):
    from dsa110_contimg.config import load_settings

    env = {"PIPELINE_STATE_DIR": str(tmp_path / "state"), "PIPELINE_OUTPUT_DIR": str(tmp_path / "out"),
           "PIPELINE_INCOMING_DIR": str(tmp_path / "in"), "PIPELINE_STAGE_DIR": str(tmp_path / "stage"),
           "PIPELINE_MOSAIC_GROUPS": str(N)}
    s = load_settings(env)
    st = State(tmp_path, s)
    st.env = env
    return st


def _measure(path, ra, dec):
    """Peak flux of the fitted source nearest (ra, dec) (the package's source finder: a Gaussian fit)."""
    from astropy.wcs import WCS

    from dsa110_contimg.beam import separation_deg
    from dsa110_contimg.qa.sources import find_sources, robust_rms

    with fits.open(path) as h:
        data, hdr = np.squeeze(h[0].data), h[0].header
    wcs = WCS(hdr).celestial
    found = find_sources(np.nan_to_num(data), wcs, hdr["BMAJ"], hdr["BMIN"], hdr["BPA"],
                         robust_rms(data[np.isfinite(data)]), snr_min=10)
    best = min(found, key=lambda d: separation_deg(d.ra_deg, d.dec_deg, ra, dec))
    assert separation_deg(best.ra_deg, best.dec_deg, ra, dec) * 3600 < hdr["BMAJ"] * 3600 / 10
    return best.peak_jy


def test_window_math():
    w = window_of("2025-10-02T06:00:00", 12)
    assert w.contains("2025-10-02T06:00:00") and w.end_unix - w.start_unix == pytest.approx(12 * GROUP_SECONDS)
    nxt = window_of(w.end_id, 12)
    assert nxt.index == w.index + 1 and not w.contains(w.end_id)
    with pytest.raises(ValueError):
        window_of("2025-10-02T06:00:00", 0)


def test_scheduler_builds_when_the_window_is_done_and_closed(state):
    """Nothing while a group is running or the window is open; then one mosaic, the source at its true flux;
    the same inputs are not rebuilt; a changed input rebuilds the window in place (same id, new files)."""
    st = state
    st.queue_groups(st.ids[:N - 1])
    st.queue_groups(st.ids[N - 1:N], state=q.IN_PROGRESS)
    st.register_images()
    sched = MosaicScheduler(st.s, st.s.output_dir, None, inline=True)
    qc = q.connect(st.s.queue_db)
    try:
        sched.start(qc)
        assert not sched.poll(qc) and st.mosaics() == []  # a group still in progress
        qc.execute("UPDATE ingest_queue SET state = ? WHERE group_id = ?", (q.COMPLETED, st.ids[N - 1]))
        qc.commit()
        sched.group_done(st.ids[N - 1])
        assert not sched.poll(qc) and st.mosaics() == []  # done, but no later group: the window is open
        st.queue_groups(st.ids[N:], state=q.PENDING)  # a group of the next window arrives
        sched.poll(qc)
        sched.close()
        (m,) = st.mosaics()
        assert m.status == "ok" and m.name == st.window.name and m.n_used == N, m.error
        assert Path(m.path).is_file() and Path(m.noise_path).is_file() and Path(m.preview_path).is_file()
        with fits.open(m.path) as h:
            hdr = h[0].header
        assert sum(k.startswith("HISTORY") or k.startswith("IMG") for k in hdr.keys()) >= N  # inputs listed
        ra, dec, flux = st.truth
        assert _measure(m.path, ra, dec) == pytest.approx(flux, rel=0.03)
        sched.group_done(st.ids[0])
        assert not sched.poll(qc, draining=True) and st.mosaics()[0].updated_at == m.updated_at  # unchanged
        # group 2 reprocessed: its image is rewritten, the window is rebuilt and replaced
        os.utime(st.images[2], ns=(os.stat(st.images[2]).st_atime_ns, os.stat(st.images[2]).st_mtime_ns + 10**9))
        sched.group_done(st.ids[2])
        sched.poll(qc)
        sched.close()
        (m2,) = st.mosaics()
        assert m2.id == m.id and m2.fingerprint != m.fingerprint and m2.status == "ok"
    finally:
        qc.close()


def test_window_lists_what_it_left_out(state):
    """A group without an image is listed with its reason; the others make the mosaic."""
    st = state
    st.queue_groups(st.ids[:N])
    st.queue_groups(st.ids[N:], state=q.PENDING)
    st.register_images(which=[0, 1])
    (m,) = st.schedule_once()
    reasons = {i["group_id"]: i.get("reason") for i in m.inputs}
    assert m.status == "ok" and m.n_used == 2 and m.n_inputs == N
    assert reasons[st.ids[2]] == "no image (group completed)"


def test_relative_rms_cut():
    """An image far noisier than the window's median is left out, with both numbers in the reason."""
    from dsa110_contimg.pipeline.mosaic_stage import select_inputs
    from dsa110_contimg.pipeline.mosaic_windows import WindowInput

    ins = tuple(WindowInput(f"g{k}", f"/x/g{k}.fits", f"/x/g{k}.ms", r, 100.0)
                for k, r in enumerate([1e-3, 1.1e-3, 0.9e-3, 5e-3]))
    keep, out = select_inputs(ins, 3.0)
    assert [i.group_id for i in keep] == ["g0", "g1", "g2"]
    assert out[0]["group_id"] == "g3" and "5 mJy/beam above 3 x the window median 1.05 mJy/beam" in out[0]["reason"]
    assert len(select_inputs(ins, None)[0]) == 4


def test_bad_window_is_recorded_as_failed(state):
    """Images at mismatched frequencies: no mosaic, the window is failed with the file named; nothing raised."""
    st = state
    st.queue_groups(st.ids[:N])
    st.queue_groups(st.ids[N:], state=q.PENDING)
    st.register_images()
    with fits.open(st.images[1], mode="update") as h:
        h[0].header["CRVAL3"] = 0.7e9
    (m,) = st.schedule_once()
    assert m.status == "failed" and st.images[1].name in m.error and m.path is None


def test_cli_mosaic_and_api(state, monkeypatch):
    """``contimg mosaic GROUP...`` builds and records; the API lists it, serves its FITS and preview (registered
    files only), 404 for an unknown id, 422 for a bad one; the dashboard pages render."""
    from dsa110_contimg.api.app import create_app
    from dsa110_contimg.cli import main
    from dsa110_contimg.config import reset_settings_cache

    st = state
    st.queue_groups(st.ids[:N])
    st.register_images()
    for k, v in st.env.items():
        monkeypatch.setenv(k, v)
    reset_settings_cache()
    try:
        r = CliRunner().invoke(main, ["mosaic", *st.ids[:N], "--name", "strip", "--projection", "SIN"])
        assert r.exit_code == 0, r.output
        assert "mosaic strip: 3/3 images, SIN" in r.output
        bad = CliRunner().invoke(main, ["mosaic"])
        assert bad.exit_code != 0 and "GROUP_IDs or --start/--end" in bad.output
    finally:
        reset_settings_cache()
    (m,) = st.mosaics()
    client = TestClient(create_app(st.s))
    lst = client.get("/api/mosaics").json()
    assert lst["total"] == 1 and lst["items"][0]["name"] == "strip"
    d = client.get(f"/api/mosaics/{m.id}").json()
    assert d["n_used"] == 3 and len(d["inputs"]) == 3 and all(i["used"] for i in d["inputs"])
    f = client.get(d["urls"]["fits"])
    assert f.status_code == 200 and f.content[:6] == b"SIMPLE"
    p = client.get(d["urls"]["preview"])
    assert p.status_code == 200 and p.content[:4] == b"\x89PNG"
    assert client.get("/api/mosaics/999").status_code == 404
    assert client.get("/api/mosaics/0").status_code == 422
    page = client.get("/mosaics")
    assert page.status_code == 200 and f'href="/mosaics/{m.id}"' in page.text
    one = client.get(f"/mosaics/{m.id}")
    assert one.status_code == 200 and "strip" in one.text and st.ids[0] in one.text
