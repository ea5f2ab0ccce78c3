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
    return out
