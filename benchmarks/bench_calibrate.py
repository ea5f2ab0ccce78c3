"""Benchmark: bandpass + gain solves on a full-size calibrator group, with and without --fast.

Simulates one full-size group with 3C147 transiting (unless --input is given), converts it phased to
the calibrator, then runs `calibrate_ms` (model + flags + B + G, no K) on two fresh copies of the MS,
each in its own subprocess so that peak memory is per run.  Prints wall time of the solves (B + G),
the whole stage, and peak memory.  Targets on 2 cores: B + G <= 20 s, and <= 10 s with --fast.

Usage: .venv/bin/python benchmarks/bench_calibrate.py [--input MS]
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

from bench_common import full_group_ms, run_child, work_dir

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
    work, env = work_dir("bench_cal_")
    try:
        ms = args.input or full_group_ms(work, seed=2, calibrator="3C147", n_sources=0)
        print(f"bench_calibrate: full-size calibrator group {ms.name}, {os.cpu_count()} cores")
        for mode in ("standard", "fast"):
            copy = work / f"{mode}.ms"
            shutil.copytree(ms, copy)
            r = run_child(CHILD, [str(copy), mode], env, mode)
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
