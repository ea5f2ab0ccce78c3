"""Benchmark: simulate one full-size group (16 x ~145 MB) with 20 sources.

Prints wall time, peak memory (max RSS) and bytes written.  Target: < 2 minutes on 2 cores.

Usage: .venv/bin/python benchmarks/bench_simulate.py [--out DIR] [--keep]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=None, help="output folder (default: a temporary folder)")
    ap.add_argument("--keep", action="store_true", help="keep the files")
    ap.add_argument("--antpos-csv", type=Path, default=REPO.parent / "shared/data/DSA110_Station_Coordinates.csv")
    args = ap.parse_args()
    os.environ.setdefault("PIPELINE_STATE_DIR", str(REPO / "state"))
    from dsa110_contimg.simulate.core import SimulateOptions, simulate

    out = args.out or Path(tempfile.mkdtemp(prefix="bench_sim_", dir="/dev/shm" if Path("/dev/shm").is_dir() else None))
    t0 = time.perf_counter()
    res = simulate(SimulateOptions(output_dir=out, preset="full", n_sources=20, antpos_csv=args.antpos_csv, seed=1))
    wall = time.perf_counter() - t0
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(f"bench_simulate: full preset, 1 group, 20 sources, {os.cpu_count()} cores")
    print(f"  wall time      {wall:8.1f} s   (target < 120 s)")
    print(f"  peak memory    {peak_gb:8.2f} GB (max RSS)")
    print(f"  bytes written  {res.bytes_written:,d} ({res.bytes_written / 16:,.0f} per file)")
    print("  steps          " + ", ".join(f"{k} {v:.1f} s" for k, v in res.timings.items()))
    if not args.keep and args.out is None:
        shutil.rmtree(out)


if __name__ == "__main__":
    main()
