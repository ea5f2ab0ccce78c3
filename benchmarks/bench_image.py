"""Benchmark: image one full-size group with WSClean (--quick) and with tclean at the same size and
iterations, side by side; prints wall time, peak memory and the ratio.

Targets on 2 cores: WSClean quick image <= 30 s and >= 5x faster than tclean.

The group is simulated with unit gains (i.e. perfectly calibrated data) and 20 sources, unless --input
gives an MS.  Each imager runs in its own subprocess (peak memory per run).
Usage: .venv/bin/python benchmarks/bench_image.py [--input MS]
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

from bench_common import full_group_ms, run_child, work_dir

CHILD = r"""
import json, os, resource, sys, time
from pathlib import Path
from dsa110_contimg.casa_env import prepare_casa
prepare_casa(os.environ["PIPELINE_STATE_DIR"])
from dsa110_contimg.imaging.image import ImageOptions, image_ms
ms, backend, out = sys.argv[1:4]
t0 = time.perf_counter()
res = image_ms(ms, ImageOptions(backend=backend, quick=True, out_dir=Path(out)))
print(json.dumps({"wall": time.perf_counter() - t0, "timings": res.timings, "size": res.imsize,
                  "cell": res.cell_arcsec, "niter": res.niter,
                  "rss_gb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2,
                  "rss_self_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--input", type=Path, default=None, help="a full-size MS")
    args = ap.parse_args()
    work, env = work_dir("bench_img_")
    try:
        ms = args.input or full_group_ms(work, seed=3, n_sources=20, gains=False)
        print(f"bench_image: full-size group {ms.name}, {os.cpu_count()} cores, quick imaging (same size and niter)")
        walls = {}
        for backend in ("wsclean", "tclean"):
            r = run_child(CHILD, [str(ms), backend, str(work / backend)], env, backend)
            walls[backend] = r["timings"]["image"]
            rss = max(r["rss_gb"], r["rss_self_gb"])
            print(f"  {backend:8s}: image {r['timings']['image']:6.1f} s, whole stage {r['wall']:6.1f} s "
                  f"({r['size']} px x {r['cell']}\", niter {r['niter']}), peak RSS {rss:.2f} GB")
        print(f"  ratio tclean/wsclean: {walls['tclean'] / walls['wsclean']:.1f}x  "
              "(targets: wsclean quick <= 30 s, >= 5x)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
