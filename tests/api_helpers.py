"""A real pipeline run for the API and dashboard tests: small simulated groups through the streaming daemon."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from imaging_helpers import staged_groups


@dataclass
class PipelineRun:
    """What the run left: its settings (databases, folders) and the simulated groups."""

    root: Path
    settings: object
    env: dict
    groups: list
    """Simulated groups: [calibrator group, target group, bad group]."""
    bad_file: Path
    """The file of the third group replaced by garbage (the group fails, its files are quarantined)."""


def run_pipeline(root: Path, antpos_csv: Path) -> PipelineRun:
    """Three small groups: 3C147 transiting (solved, registered, imaged), a target (calibrated from the
    registry, imaged) and one with a corrupt subband file (fails, quarantined)."""
    from dsa110_contimg.pipeline.stream import StreamDaemon, StreamOptions

    groups, env, s = staged_groups(root, antpos_csv, groups=3, seed=23, n_sources=6)
    build_truth_catalog(groups, s.state_dir / "catalogs" / "master_sources.sqlite3", root / "nvss_truth.csv")
    bad = s.incoming_dir / groups[2].files[5].name
    bad.write_text("not an HDF5 file")
    daemon = StreamDaemon(StreamOptions(input_dir=s.incoming_dir, output_dir=s.output_dir, executor="inline",
                                        poll_interval_s=0.1, hold_retry_s=0.5, use_inotify=False), s)
    daemon.run(max_seconds=600, until_idle=True)
    return PipelineRun(root, s, env, groups, bad)


def build_truth_catalog(groups, out: Path, csv_path: Path) -> Path:
    """A master catalog (NVSS-style CSV through the real builder) holding the injected sources, so that QA
    matches the detections to it; the daemon uses ``<state>/catalogs/master_sources.sqlite3``."""
    from dsa110_contimg.catalog.build_master import BuildMasterOptions, build_master
    from dsa110_contimg.simulate.truth import GroupTruth
    from test_catalog_support import write_nvss_csv

    rows = [{"ra": t["ra_deg"], "dec": t["dec_deg"], "s": t["flux_jy"] * 1e3, "e": 0.5}
            for g in groups for t in GroupTruth.from_json(g.truth_path).sources]
    write_nvss_csv(csv_path, rows)
    build_master(BuildMasterOptions(nvss=csv_path, out=out))
    return out


def copy_state(run: PipelineRun, dest: Path):
    """Copy the run's three databases into ``dest`` (for tests that write); returns settings using the copies."""
    from dataclasses import replace

    dest.mkdir(parents=True, exist_ok=True)
    out = {}
    for attr in ("queue_db", "products_db", "cal_registry_db"):
        src = Path(getattr(run.settings, attr))
        for suffix in ("", "-wal", "-shm"):
            if Path(str(src) + suffix).exists():
                shutil.copy(str(src) + suffix, dest / (src.name + suffix))
        out[attr] = dest / src.name
    return replace(run.settings, **out)


def photometer_again(settings, image_id: int):
    """Photometry of one more image of the run on the databases of ``settings``, as the stage does it (the worker's
    ``photometer_image`` over the stage's read-only reader, then the daemon's ``record_photometry``): e.g. the
    calibrator group's image, which the stream does not photometer, so that the sources in both fields have two
    measurements (eta and V).  Returns the record summary."""
    from dsa110_contimg.db import products as pdb
    from dsa110_contimg.db import sources as sdb
    from dsa110_contimg.ms import read_ms_info
    from dsa110_contimg.photometry.measure import photometer_image
    from dsa110_contimg.pipeline.photometry_stage import _Reader

    conn = pdb.connect_readonly(settings.products_db)
    try:
        image = pdb.get_image(conn, image_id)
        pbcor = pdb.list_images(conn, ms_path=image.ms_path, type="pbcor", limit=1)[0]
        res = photometer_image(_Reader(conn), image, pbcor.path, read_ms_info(image.ms_path),
                               Path(image.ms_path).stem, settings.catalog_path)
    finally:
        conn.close()
    conn = pdb.connect(settings.products_db)
    try:
        return sdb.record_photometry(conn, res)
    finally:
        conn.close()
