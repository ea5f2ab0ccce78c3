"""Benchmark: convert one full-size simulated group with the `auto` writer and with the monolithic
pyuvdata path, side by side in the same run.  Prints wall time, peak memory and the ratio.

Targets on 2 cores: auto <= 30 s and >= 10x faster than monolithic; peak memory <= 8 GB.

Each conversion runs in its own subprocess so that peak memory (max RSS) is measured per writer.
Usage: .venv/bin/python benchmarks/bench_convert.py [--input DIR]   (default: simulate a group first)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CSV = REPO.parent / "shared/data/DSA110_Station_Coordinates.csv"

CHILD = r"""
import json, os, resource, sys, time
from pathlib import Path
from dsa110_contimg.casa_env import prepare_casa
prepare_casa(os.environ["PIPELINE_STATE_DIR"])
from dsa110_contimg.conversion.convert import ConvertOptions, convert_directory
inp, out, writer, stage, csv = sys.argv[1:6]
t0 = time.perf_counter()
res = convert_directory(inp, ConvertOptions(output_dir=Path(out), writer=writer, stage_dir=Path(stage),
                                            antpos_csv=Path(csv)))
wall = time.perf_counter() - t0
r = res[0]
print(json.dumps({"wall": wall, "writer": r.writer, "timings": r.timings,
                  "rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2}))
"""


def run(inp: Path, writer: str, work: Path) -> dict:
    out = work / f"out_{writer}"
    stage = Path("/dev/shm") if Path("/dev/shm").is_dir() else work / "stage"
    env = dict(os.environ, PIPELINE_STATE_DIR=str(work / "state"))
    p = subprocess.run([sys.executable, "-c", CHILD, str(inp), str(out), writer, str(stage), str(CSV)],
                       capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise SystemExit(f"{writer} failed:\n{p.stderr[-3000:]}")
    shutil.rmtree(out, ignore_errors=True)
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--input", type=Path, default=None, help="folder with one full-size group")
    ap.add_argument("--skip-monolithic", action="store_true", help="only time the auto writer")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_convert_", dir=str(REPO / "state") if (REPO / "state").is_dir()
                                 else None))
    inp = args.input
    if inp is None:
        os.environ.setdefault("PIPELINE_STATE_DIR", str(work / "state"))
        from dsa110_contimg.simulate.core import SimulateOptions, simulate

        inp = work / "incoming"
        simulate(SimulateOptions(output_dir=inp, preset="full", n_sources=20, antpos_csv=CSV, seed=1))
    try:
        auto = run(inp, "auto", work)
        print(f"bench_convert: one full-size group (16 x 145 MB), {os.cpu_count()} cores")
        print(f"  auto ({auto['writer']}): wall {auto['wall']:.1f} s, peak RSS {auto['rss_gb']:.2f} GB; steps "
              + ", ".join(f"{k} {v:.1f}" for k, v in auto["timings"].items()))
        if not args.skip_monolithic:
            mono = run(inp, "monolithic", work)
            print(f"  monolithic (pyuvdata): wall {mono['wall']:.1f} s, peak RSS {mono['rss_gb']:.2f} GB; steps "
                  + ", ".join(f"{k} {v:.1f}" for k, v in mono["timings"].items()))
            print(f"  ratio monolithic/auto: {mono['wall'] / auto['wall']:.1f}x   (targets: auto <= 30 s, >= 10x, "
                  f"peak <= 8 GB)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
