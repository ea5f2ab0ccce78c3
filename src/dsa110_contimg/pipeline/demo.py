"""The demo run by ``make demo``: the streaming pipeline on an embedded default (simulated data).

A few small groups are simulated, the first with 3C147 transiting; their files are
drip-fed into an incoming folder as the correlator writes them (``_incomplete``,
then renamed), and the streaming daemon processes them until every group is
done: convert, solve and register on the calibrator group, apply, image, QA and
record.  The summary table compares the sources found with the injected ones.
"""

from __future__ import annotations

import shutil
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..config import Settings


@dataclass
class DemoResult:
    """What the demo produced."""

    root: Path
    """Folder of the demo (incoming, products, databases)."""
    rows: list[dict] = field(default_factory=list)
    """One summary row per group."""
    failed: int = 0
    """Groups that failed."""
    settings: Settings | None = None
    """The settings the demo ran with (its own databases)."""
    mosaic: object | None = None
    """The mosaic of the target groups (:class:`~dsa110_contimg.db.mosaics.MosaicRecord`), or None."""


def run_demo(settings: Settings, preset: str = "small", n_groups: int = 4, executor: str = "dask",
             workers: int = 2, fresh: bool = True, calibration_wait_s: float = 300.0,
             rfi: str = "light") -> DemoResult:
    """Simulate ``n_groups`` groups, drip-feed them to the streaming daemon, and summarise.

    Parameters
    ----------
    settings
        Effective settings; the demo keeps its data and databases in ``<state>/demo``.
    preset
        Simulator preset.
    n_groups
        Number of consecutive groups (the first has a calibrator transit).
    rfi
        Interference the simulator injects ('none', 'light', 'heavy'); the flag stage removes it.
    executor, workers
        How the daemon runs the stages (an embedded Dask cluster by default).
    fresh
        Remove an earlier demo first.
    calibration_wait_s
        The first (calibrator) group is fed alone; the others follow once it is past its
        calibration, or after this long, as they would in real time (one group every
        5 minutes), so that they find its solutions registered instead of waiting for them.
    """
    from ..casa_env import prepare_casa
    from ..simulate.core import SimulateOptions, simulate
    from .stream import StreamDaemon, StreamOptions

    root = settings.state_dir / "demo"
    if fresh and root.exists():
        shutil.rmtree(root)
    # mosaic_groups=0: the demo's few groups would straddle the daemon's fixed hour-long windows; it builds one
    # mosaic of its target groups at the end instead, with the same stage functions
    s = replace(settings, cal_registry_db=root / "cal_registry.sqlite3", products_db=root / "products.sqlite3",
                queue_db=root / "ingest_queue.sqlite3", incoming_dir=root / "incoming", output_dir=root / "products",
                mosaic_groups=0)
    for d in (s.incoming_dir, s.output_dir, root / "correlator"):
        d.mkdir(parents=True, exist_ok=True)
    prepare_casa(settings.state_dir)
    sim = simulate(SimulateOptions(output_dir=root / "correlator", preset=preset, groups=n_groups, n_sources=8,
                                   calibrator="3C147", seed=11, antpos_csv=settings.antpos_csv, rfi=rfi))

    def drip_feed():
        for i, g in enumerate(sim.groups):
            for p in g.files:
                tmp = s.incoming_dir / (p.stem + "_incomplete.hdf5")
                shutil.copy(p, tmp)
                tmp.rename(s.incoming_dir / p.name)
                time.sleep(0.05)
            if i == 0:  # as in real time (a group every 5 min): the next ones find its calibration registered
                _wait_past_calibration(s, timeout_s=calibration_wait_s)
            time.sleep(1.0)

    feeder = threading.Thread(target=drip_feed, daemon=True)
    feeder.start()
    daemon = StreamDaemon(StreamOptions(input_dir=s.incoming_dir, output_dir=s.output_dir, executor=executor,
                                        workers=workers, poll_interval_s=0.3, hold_retry_s=2.0), s)
    daemon.run(until_idle=True, more_coming=feeder.is_alive)  # the daemon's own loop, until all is done
    out = DemoResult(root=root, settings=s)
    out.rows = summarise(s, sim.groups)
    out.failed = sum(r["state"] != "completed" for r in out.rows)
    out.mosaic = demo_mosaic(s, [r["group"] for r in out.rows[1:]])
    return out


def demo_mosaic(s: Settings, group_ids: list[str]):
    """Build and record the mosaic of the target groups (the calibrator group left out); None without groups."""
    from ..db import products as pdb
    from ..db import queue as q
    from .mosaic_stage import MosaicJob, record_mosaic, run_mosaic
    from .mosaic_windows import fingerprint, window_inputs

    if not group_ids:
        return None
    qconn = q.connect(s.queue_db)
    try:
        states = {g: q.get_group(qconn, g).state for g in group_ids}
    finally:
        qconn.close()
    conn = pdb.connect(s.products_db)
    try:
        inputs = window_inputs(conn, states, s.output_dir)
        catalog = s.catalog_path if s.catalog_path.is_file() else None
        job = MosaicJob("demo", tuple(inputs), s.output_dir / "mosaics", fingerprint(inputs), catalog)
        return record_mosaic(conn, run_mosaic(job))
    finally:
        conn.close()


def _wait_past_calibration(s: Settings, timeout_s: float) -> None:
    """Wait until the first group is past its calibration (registered, failed or held), or ``timeout_s``."""
    import sqlite3

    from ..db import queue as q

    from .stages import REGISTRY, Stage, checkpoints

    order = checkpoints()
    cal = next(i for i, spec in enumerate(REGISTRY) if spec.stage == Stage.CALIBRATE)
    past = set(order[cal:])  # checkpoints from the calibration on
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if s.queue_db.exists():
            try:
                conn = q.connect(s.queue_db)
                try:
                    groups = q.list_groups(conn)
                finally:
                    conn.close()
            except (sqlite3.Error, q.QueueDBError):
                groups = []
            if any(g.state in (q.COMPLETED, q.FAILED, q.HELD) or g.processing_stage in past for g in groups):
                return
        time.sleep(0.3)


def summarise(s: Settings, sim_groups) -> list[dict]:
    """One row per group: state, stages, timings, image, rms, sources found vs injected."""
    import numpy as np

    from ..beam import angular_separation
    from ..db import products as pdb
    from ..db import queue as q
    from ..simulate.truth import GroupTruth

    qconn, pconn = q.connect(s.queue_db), pdb.connect(s.products_db)
    rows = []
    try:
        groups = sorted(q.list_groups(qconn), key=lambda g: g.group_id)
        images = [i for i in pdb.list_images(pconn, limit=1000) if i.type == "image"]
        for g, sg in zip(groups, sorted(sim_groups, key=lambda x: x.start_iso)):
            m = q.get_metrics(qconn, g.group_id) or {}
            img = next((i for i in images if Path(i.ms_path).name == f"{g.group_id}.ms"), None)
            row = {"group": g.group_id, "state": g.state, "stage": g.processing_stage or "",
                   "convert_s": m.get("total_time"), "flag_s": m.get("flag_time"),
                   "flagged_pct": 100 * m["flagged_fraction"] if m.get("flagged_fraction") is not None else None,
                   "calibrate_s": sum(m.get(k) or 0 for k in
                                                                       ("cal_k_time", "cal_b_time", "cal_g_time")),
                   "apply_s": m.get("apply_time"), "image_s": m.get("image_time"), "latency_s": m.get("latency_s"),
                   "image": img.path if img else "", "rms_mjy": img.noise_jy * 1e3 if img else None,
                   "found": 0, "injected": 0, "error": g.error or ""}
            if img is not None:
                truth = GroupTruth.from_json(sg.truth_path)
                dets = pdb.get_detections(pconn, img.id)
                bright = [t for t in truth.sources if t["apparent_flux_jy"] > 10 * img.noise_jy]
                row["injected"] = len(bright)
                for t in bright:
                    seps = [np.degrees(angular_separation(*np.radians([d.ra_deg, d.dec_deg, t["ra_deg"],
                                                                       t["dec_deg"]]))) * 3600 for d in dets]
                    row["found"] += bool(seps) and min(seps) < img.beam_major_arcsec
            rows.append(row)
    finally:
        qconn.close()
        pconn.close()
    return rows
