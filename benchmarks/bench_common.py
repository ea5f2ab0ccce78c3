"""Shared plumbing of the benchmarks: a work folder, a full-size group, a measured child process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CSV = REPO.parent / "shared/data/DSA110_Station_Coordinates.csv"


def work_dir(prefix: str) -> tuple[Path, dict]:
    """A temporary folder (under ./state when it exists) and the environment pointing the pipeline at it."""
    work = Path(tempfile.mkdtemp(prefix=prefix, dir=str(REPO / "state") if (REPO / "state").is_dir() else None))
    env = dict(os.environ, PIPELINE_STATE_DIR=str(work / "state"))
    os.environ.update(env)
    return work, env


def full_group_ms(work: Path, seed: int, calibrator: str | None = None, n_sources: int = 20,
                  gains: bool = True) -> Path:
    """Simulate one full-size group and convert it (phased to ``calibrator`` when given)."""
    import shutil

    from dsa110_contimg.casa_env import prepare_casa
    from dsa110_contimg.conversion.convert import ConvertOptions, convert_directory
    from dsa110_contimg.simulate.core import SimulateOptions, simulate
    from dsa110_contimg.simulate.truth import GroupTruth

    prepare_casa(work / "state")
    sim = simulate(SimulateOptions(output_dir=work / "in", preset="full", calibrator=calibrator,
                                   n_sources=n_sources, gains=gains, antpos_csv=CSV, seed=seed))
    opts = ConvertOptions(output_dir=work / "ms", antpos_csv=CSV)
    if calibrator:
        c = GroupTruth.from_json(sim.groups[0].truth_path).sources[0]
        opts.phase_center_deg, opts.field_name = (c["ra_deg"], c["dec_deg"]), c["name"]
    ms = convert_directory(work / "in", opts)[0].ms_path
    shutil.rmtree(work / "in")
    return ms


def run_child(code: str, args: list[str], env: dict, what: str) -> dict:
    """Run ``python -c code args`` and parse the JSON on its last stdout line (its own peak memory)."""
    p = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise SystemExit(f"{what} failed:\n{p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])
