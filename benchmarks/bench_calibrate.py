"""Benchmark: bandpass + gain solves on a full-size calibrator group, with and without --fast.

Simulates one full-size group with 3C147 transiting (unless --input is given), converts it phased to
the calibrator, then runs `calibrate_ms` (model + flags + B + G, no K) on two fresh copies of the MS,
each in its own subprocess so that peak memory is per run.  Prints wall time of the solves (B + G),
the whole stage, and peak memory.  Targets on 2 cores: B + G <= 20 s, and <= 10 s with --fast.

Usage: .venv/bin/python benchmarks/bench_calibrate.py [--input MS]
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
from dsa110_contimg.casa_env import prepare_casa
prepare_casa(os.environ["PIPELINE_STATE_DIR"])
from dsa110_contimg.calibration.solve import CalibrateOptions, calibrate_ms
t0 = time.perf_counter()
res = calibrate_ms(sys.argv[1], CalibrateOptions(fast=sys.argv[2] == "fast", plots=False))
print(json.dumps({"wall": time.perf_counter() - t0, "timings": res.timings,
                  "rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--input", type=Path, default=None, help="a full-size calibrator MS (phased to the calibrator)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_cal_", dir=str(REPO / "state") if (REPO / "state").is_dir() else None))
    env = dict(os.environ, PIPELINE_STATE_DIR=str(work / "state"))
    os.environ.update(env)
    try:
        ms = args.input
        if ms is None:
            from dsa110_contimg.casa_env import prepare_casa
            from dsa110_contimg.conversion.convert import ConvertOptions, convert_directory
            from dsa110_contimg.simulate.core import SimulateOptions, simulate
            from dsa110_contimg.simulate.truth import GroupTruth

            prepare_casa(work / "state")
            sim = simulate(SimulateOptions(output_dir=work / "in", preset="full", calibrator="3C147", n_sources=0,
                                           antpos_csv=CSV, seed=2))
            c = GroupTruth.from_json(sim.groups[0].truth_path).sources[0]
            ms = convert_directory(work / "in", ConvertOptions(output_dir=work / "ms", antpos_csv=CSV,
                                                               phase_center_deg=(c["ra_deg"], c["dec_deg"]),
                                                               field_name=c["name"]))[0].ms_path
            shutil.rmtree(work / "in")
        print(f"bench_calibrate: full-size calibrator group {ms.name}, {os.cpu_count()} cores")
        for mode in ("standard", "fast"):
            copy = work / f"{mode}.ms"
            shutil.copytree(ms, copy)
            p = subprocess.run([sys.executable, "-c", CHILD, str(copy), mode], capture_output=True, text=True, env=env)
            if p.returncode != 0:
                raise SystemExit(f"{mode} failed:\n{p.stderr[-3000:]}")
            r = json.loads(p.stdout.strip().splitlines()[-1])
            tm = r["timings"]
            solve = tm.get("B", 0) + tm.get("G", 0) + tm.get("average", 0)
            target = 10 if mode == "fast" else 20
            print(f"  {mode:8s}: B+G solves {solve:6.1f} s (target <= {target} s); whole stage {r['wall']:6.1f} s; "
                  f"peak RSS {r['rss_gb']:.2f} GB; steps " + ", ".join(f"{k} {v:.1f}" for k, v in tm.items()))
            shutil.rmtree(copy)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
