"""The demo run by ``make demo``: the pipeline on an embedded default (simulated data)."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..config import Settings


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
    """Simulate a group into ``<state>/demo/incoming`` and summarise it.

    Parameters
    ----------
    settings
        Effective settings (state dir, antenna CSV).
    preset
        Simulator preset.
    fresh
        Remove an earlier demo's files first.
    """
    from ..simulate.core import SimulateOptions, simulate

    root = settings.state_dir / "demo"
    incoming = root / "incoming"
    if fresh and root.exists():
        shutil.rmtree(root)
    incoming.mkdir(parents=True, exist_ok=True)
    out = DemoResult(incoming_dir=incoming)
    t0 = time.perf_counter()
    sim = simulate(SimulateOptions(output_dir=incoming, preset=preset, groups=1, n_sources=10, seed=11,
                                   antpos_csv=settings.antpos_csv))
    out.groups = sim.groups
    g = sim.groups[0]
    out.lines.append(f"simulated group {g.start_iso}: {len(g.files)} subband files, "
                     f"{sim.bytes_written / 1e6:.1f} MB in {time.perf_counter() - t0:.1f} s -> {incoming}")
    out.lines.append(f"truth: {g.truth_path}")

    from ..casa_env import prepare_casa
    from ..conversion.convert import ConvertOptions, convert_directory

    prepare_casa(settings.state_dir)
    ms_dir = root / "ms"
    results = convert_directory(incoming, ConvertOptions(output_dir=ms_dir, stage_dir=settings.stage_dir,
                                                         antpos_csv=settings.antpos_csv,
                                                         expected_subbands=settings.expected_subbands,
                                                         telescope_name=settings.telescope_name))
    for r in results:
        if isinstance(r, Exception):
            out.lines.append(f"conversion failed: {r}")
            continue
        out.ms_paths.append(r.ms_path)
        out.lines.append(f"converted {r.group_id} with the {r.writer} writer in {r.timings['total']:.1f} s -> "
                         f"{r.ms_path}")
        out.lines.append("  " + ms_summary(r.ms_path))
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
    return (f"{nrows} rows, {ntimes} integrations, {ants} antennas with data, {f.size} channels "
            f"{f[0] / 1e6:.3f}-{f[-1] / 1e6:.3f} MHz, field {name} at RA {ra % 360:.4f} Dec {dec:.4f} deg, "
            f"telescope {tel}")
