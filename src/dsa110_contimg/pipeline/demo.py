"""The demo run by ``make demo``: the pipeline on an embedded default (simulated data).

A calibrator group (3C147 transiting) and, 36 minutes later, a target group are
simulated; both are converted, the calibrator group is solved and its tables
registered, the target group is calibrated from the registry, and both are
imaged (quick), checked and recorded in the products database.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..config import Settings

TARGET_GROUP = 7
"""Index of the demo's target group (7 x 309 s = 36 min after the calibrator)."""


@dataclass
class DemoResult:
    """What the demo produced."""

    incoming_dir: Path
    """Where the simulated subband files are."""
    groups: list = field(default_factory=list)
    """Simulated groups."""
    ms_paths: list = field(default_factory=list)
    """Measurement Sets written."""
    lines: list[str] = field(default_factory=list)
    """Summary lines printed at the end."""


def run_demo(settings: Settings, preset: str = "small", fresh: bool = True) -> DemoResult:
    """Simulate, convert, calibrate and apply; returns the summary.

    Parameters
    ----------
    settings
        Effective settings (state dir, antenna CSV, registry).
    preset
        Simulator preset.
    fresh
        Remove an earlier demo's files first.
    """
    from ..casa_env import prepare_casa
    from ..calibration.apply import apply_calibration, register_solution
    from ..calibration.solve import CalibrateOptions, calibrate_ms
    from ..conversion.convert import ConvertOptions, convert_group
    from ..conversion.grouping import discover_groups
    from ..simulate.core import SimulateOptions, simulate
    from ..simulate.truth import GroupTruth

    prepare_casa(settings.state_dir)
    root = settings.state_dir / "demo"
    incoming = root / "incoming"
    if fresh and root.exists():
        shutil.rmtree(root)
    incoming.mkdir(parents=True, exist_ok=True)
    # the demo keeps its databases with its data, so that a rerun starts afresh
    settings = replace(settings, cal_registry_db=root / "cal_registry.sqlite3", products_db=root / "products.sqlite3")
    out = DemoResult(incoming_dir=incoming)
    t0 = time.perf_counter()
    sim = simulate(SimulateOptions(output_dir=incoming, preset=preset, groups=TARGET_GROUP + 1, n_sources=8,
                                   calibrator="3C147", seed=11, antpos_csv=settings.antpos_csv))
    out.groups = sim.groups
    out.lines.append(f"simulated {len(sim.groups)} groups ({len(sim.groups) * 16} subband files, "
                     f"{sim.bytes_written / 1e6:.1f} MB) in {time.perf_counter() - t0:.1f} s -> {incoming}")
    groups = discover_groups(incoming)
    cal = GroupTruth.from_json(sim.groups[0].truth_path).sources[0]
    common = dict(stage_dir=settings.stage_dir, antpos_csv=settings.antpos_csv,
                  expected_subbands=settings.expected_subbands, telescope_name=settings.telescope_name)
    cal_res = convert_group(groups[0], ConvertOptions(output_dir=root / "ms", phase_center_deg=(cal["ra_deg"],
                                                      cal["dec_deg"]), field_name=cal["name"], **common))
    tgt_res = convert_group(groups[TARGET_GROUP], ConvertOptions(output_dir=root / "ms", **common))
    for r in (cal_res, tgt_res):
        out.ms_paths.append(r.ms_path)
        out.lines.append(f"converted {r.group_id} ({r.writer}) in {r.timings['total']:.1f} s -> {r.ms_path.name}: "
                         + ms_summary(r.ms_path))
    cres = calibrate_ms(cal_res.ms_path, CalibrateOptions(do_k=True))
    set_name = register_solution(cres, settings.cal_registry_db)
    out.lines.append(f"calibrated on {cres.calibrator} (refant {cres.refant}): "
                     + ", ".join(f"{k} {v:.1f}s" for k, v in cres.timings.items() if k in ("K", "B", "G", "total"))
                     + f"; registered set {set_name} in {settings.cal_registry_db}")
    out.lines.append("  solution plots: " + ", ".join(str(p) for p in cres.plots))
    for r in (cal_res, tgt_res):
        ares = apply_calibration(r.ms_path, settings.cal_registry_db)
        out.lines.append(f"applied {ares.set_name} to {r.group_id} in {ares.timings['total']:.1f} s "
                         "(CORRECTED_DATA filled)")

    from ..imaging.image import ImageOptions
    from .image_stage import image_and_record

    for ms in (cal_res.ms_path, tgt_res.ms_path):
        prod = image_and_record(ms, settings.products_db, ImageOptions(quick=True), cal_applied=True)
        q, img = prod.qa, prod.image
        out.lines.append(f"imaged {ms.name} with {img.images.backend} ({img.imsize} px x {img.cell_arcsec}\", "
                         f"{img.datacolumn}) in {img.timings['total']:.1f} s: rms {q.rms_jy * 1e3:.2f} mJy/beam, "
                         f"peak {q.peak_jy:.3f} Jy/beam, DR {q.dynamic_range:.0f}, {q.n_sources} sources")
        out.lines.append(f"  FITS {img.images.image.name}, pbcor {img.images.pbcor.name}, thumbnail "
                         f"{q.thumbnail_path.name}, QA plot {q.qa_plot_path.name}")
    from ..db import products as pdb

    conn = pdb.connect(settings.products_db)
    try:
        n_ms, n_img = len(pdb.list_ms(conn, limit=1000)), len(pdb.list_images(conn, limit=1000))
    finally:
        conn.close()
    out.lines.append(f"products DB {settings.products_db}: {n_ms} MS rows, {n_img} image rows")
    return out


def ms_summary(ms_path: Path) -> str:
    """One line describing an MS: rows, channels, antennas, field and telescope."""
    import numpy as np
    from casacore.tables import table

    with table(str(ms_path), ack=False) as t:
        nrows = t.nrows()
        ants = len(set(t.getcol("ANTENNA1")) | set(t.getcol("ANTENNA2")))
        ntimes = len(np.unique(t.getcol("TIME")))
    with table(f"{ms_path}/SPECTRAL_WINDOW", ack=False) as t:
        f = t.getcell("CHAN_FREQ", 0)
    with table(f"{ms_path}/FIELD", ack=False) as t:
        name = t.getcol("NAME")[0]
        ra, dec = np.degrees(t.getcol("PHASE_DIR")[0, 0])
    with table(f"{ms_path}/OBSERVATION", ack=False) as t:
        tel = t.getcol("TELESCOPE_NAME")[0]
    return (f"{nrows} rows, {ntimes} integrations, {ants} antennas, {f.size} channels "
            f"{f[0] / 1e6:.2f}-{f[-1] / 1e6:.2f} MHz, field {name} (RA {ra % 360:.3f}, Dec {dec:.3f}), {tel}")
