"""Benchmark: image one full-size group with WSClean (--quick) and with tclean at the same size and
iterations, side by side; prints wall time, peak memory and the ratio.

Targets on 2 cores: WSClean quick image <= 30 s and >= 5x faster than tclean.

The group is simulated with unit gains (i.e. perfectly calibrated data) and 20 sources, unless --input
gives an MS.  Each imager runs in its own subprocess (peak memory per run).
Usage: .venv/bin/python benchmarks/bench_image.py [--input MS]
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
    work = Path(tempfile.mkdtemp(prefix="bench_img_", dir=str(REPO / "state") if (REPO / "state").is_dir() else None))
    env = dict(os.environ, PIPELINE_STATE_DIR=str(work / "state"))
    os.environ.update(env)
    try:
        ms = args.input
        if ms is None:
            from dsa110_contimg.casa_env import prepare_casa
            from dsa110_contimg.conversion.convert import ConvertOptions, convert_directory
            from dsa110_contimg.simulate.core import SimulateOptions, simulate

            prepare_casa(work / "state")
            simulate(SimulateOptions(output_dir=work / "in", preset="full", n_sources=20, gains=False,
                                     antpos_csv=CSV, seed=3))
            ms = convert_directory(work / "in", ConvertOptions(output_dir=work / "ms", antpos_csv=CSV))[0].ms_path
            shutil.rmtree(work / "in")
        print(f"bench_image: full-size group {ms.name}, {os.cpu_count()} cores, quick imaging (same size and niter)")
        walls = {}
        for backend in ("wsclean", "tclean"):
            p = subprocess.run([sys.executable, "-c", CHILD, str(ms), backend, str(work / backend)],
                               capture_output=True, text=True, env=env)
            if p.returncode != 0:
                raise SystemExit(f"{backend} failed:\n{p.stderr[-3000:]}")
            r = json.loads(p.stdout.strip().splitlines()[-1])
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
