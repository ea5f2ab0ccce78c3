"""Benchmark: a 12-group linear mosaic of full-size snapshot images (issue 15).

The snapshots are synthesized as in tests/test_mosaic.py (dsa110_contimg.mosaic.synth): SIN images
centred on the meridian at dec +55.6 deg at each group's mid-time (12 consecutive 309 s groups), point
sources times the drift-scan beam convolved with the restoring beam, plus beam-correlated noise of
0.3 mJy/beam (the thermal noise of a 309 s group).  Their geometry is the imager's full-size default,
computed the imager's way (imaging.defaults.default_cell_and_size) from the packaged station table
(96 active antennas, projected baselines towards the meridian at the pointing, the 16-subband band):
a cell of a quarter of lambda_min / B_90 and a field covering the drift-scan beam to 10% at the lowest
frequency -- 3840 px of 6.1" (override with --cell/--size, e.g. --size 4608 --cell 4 for the README's
figure); the restoring beam is four cells.

The build (inputs, grid, reprojection and accumulation, FITS writing, QA with source finding and the
preview) runs in its own process: wall time, CPU seconds (what the wall time would be on two idle cores
when the machine is shared), and peak memory (RSS sampled with psutil; ru_maxrss, which for a child
started by (v)fork can carry its parent's footprint, is printed beside it).
Targets on 2 cores: <= 60 s and <= 4 GB.

Usage: .venv/bin/python benchmarks/bench_mosaic.py [--groups 12] [--cell ARCSEC] [--size PX] [--order bilinear]
       [--exact-coords] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import run_child, work_dir  # noqa: E402

GEOMETRY = r"""
import json
import numpy as np
from dsa110_contimg.geometry import meridian_uvw_matrix
from dsa110_contimg.imaging.defaults import MSGeometry, default_cell_and_size
from dsa110_contimg.simulate.presets import N_INTEGRATIONS, N_SUBBANDS, full_active_antennas, subband_frequencies
from dsa110_contimg.telescope import FRINGESTOP_LON_DEG, INTEGRATION_S, packaged_station_csv, read_station_csv
t = read_station_csv(packaged_station_csv())
x = t.ecef[[t.names.index(str(a)) for a in full_active_antennas()]]
i, j = np.triu_indices(len(x), 1)
dec = np.radians(55.6)
uvw = (x[j] - x[i]) @ meridian_uvw_matrix(dec, np.radians(FRINGESTOP_LON_DEG)).T
uv = np.hypot(uvw[:, 0], uvw[:, 1])
f = np.concatenate([subband_frequencies(s) for s in range(N_SUBBANDS)])
g = MSGeometry(float(uv.max()), float(np.percentile(uv, 90)), float(f.min()), float(f.max()),
               N_INTEGRATIONS * INTEGRATION_S, float(dec))
cell, size = default_cell_and_size(g)
print(json.dumps({"cell": float(cell), "size": int(size), "p90_m": g.p90_uv_m, "fmin": g.freq_min_hz,
                  "fmax": g.freq_max_hz}))
"""

SYNTH = r"""
import json, math, sys, time
from pathlib import Path
import numpy as np
from dsa110_contimg.mosaic.synth import (SnapshotSpec, group_beam, group_starts, meridian_centre, start_for_ra,
                                         write_snapshots)
out, n_groups, cell, size, fmin, fmax = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), \
    float(sys.argv[5]), float(sys.argv[6])
spec = SnapshotSpec(n_px=size, cell_arcsec=cell, beam_arcsec=4 * cell, rms_jy=3e-4, freq_min_hz=fmin,
                    freq_max_hz=fmax)
t0 = time.perf_counter()
starts = group_starts(start_for_ra(spec, 180.0), n_groups)
c0, c1 = meridian_centre(spec, group_beam(spec, starts[0])), meridian_centre(spec, group_beam(spec, starts[-1]))
rng = np.random.default_rng(5)
n_src = 150
ra = c0[0] + rng.uniform(-3.0, (c1[0] - c0[0]) + 3.0, n_src) / 1.0
dec = c0[1] + rng.uniform(-2.5, 2.5, n_src)
flux = 10 ** rng.uniform(-2.3, 0.0, n_src)
paths = write_snapshots(Path(out), spec, starts, ra % 360.0, dec, flux, seed=6)
print(json.dumps({"paths": [str(p) for p in paths], "seconds": time.perf_counter() - t0,
                  "bytes": sum(p.stat().st_size for p in paths)}))
"""

BUILD = r"""
import json, resource, sys, threading, time
from pathlib import Path
import psutil
from dsa110_contimg.mosaic.build import MosaicInput, MosaicOptions, build_mosaic
args = json.loads(sys.argv[1])
me, peak = psutil.Process(), [0]
def sample():
    while True:
        peak[0] = max(peak[0], me.memory_info().rss)
        time.sleep(0.02)
threading.Thread(target=sample, daemon=True).start()
t0 = time.perf_counter()
inputs = [MosaicInput(Path(p), group_id=f"g{i:02d}", rms_jy=3e-4, dynamic_range=1e3)  # rms and DR from image QA
          for i, p in enumerate(args["paths"])]
res = build_mosaic(inputs, MosaicOptions(out=Path(args["out"]), order=args["order"],
                                         exact_coords=args["exact"]))
wall = time.perf_counter() - t0
cpu = sum(getattr(resource.getrusage(resource.RUSAGE_SELF), f) for f in ("ru_utime", "ru_stime"))
time.sleep(0.05)
print(json.dumps({"wall": wall, "cpu": cpu, "peak_gb": peak[0] / 1e9,
                  "maxrss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2,
                  "timings": res.timings, "shape": res.shape, "projection": res.projection,
                  "pix": res.qa.get("image", {}).get("bmaj_arcsec"), "n_used": len(res.used),
                  "noise": res.median_noise_jy, "rms": res.rms_jy, "ratio": res.qa.get("noise_ratio"),
                  "n_sources": res.qa.get("image", {}).get("n_sources"),
                  "bytes": sum(Path(p).stat().st_size for p in (res.mosaic_path, res.weight_path, res.noise_path))}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--groups", type=int, default=12, help="consecutive groups (default 12)")
    ap.add_argument("--cell", type=float, default=None, help="cell (arcsec); default the imager's full-size default")
    ap.add_argument("--size", type=int, default=None, help="image side (px); default the imager's full-size default")
    ap.add_argument("--order", default="bicubic", help="reproject interpolation (default bicubic)")
    ap.add_argument("--exact-coords", action="store_true", help="reproject's exact WCS path (slower)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    args = ap.parse_args()
    work, env = work_dir("bench_mosaic_")
    try:
        geo = run_child(GEOMETRY, [], env, "geometry")
        cell, size = args.cell or geo["cell"], args.size or geo["size"]
        print(f"bench_mosaic: {args.groups} groups of {size} px x {cell}\" (imager default for the full array: "
              f"{geo['size']} px x {geo['cell']}\", B_90 {geo['p90_m']:.0f} m), {os.cpu_count()} cores, "
              f"order {args.order}{', exact coords' if args.exact_coords else ''}")
        syn = run_child(SYNTH, [str(work / "in"), str(args.groups), str(cell), str(size), str(geo["fmin"]),
                                str(geo["fmax"])], env, "synthesis")
        print(f"  synthesized {len(syn['paths'])} snapshots ({syn['bytes'] / 1e9:.2f} GB) in {syn['seconds']:.0f} s")
        r = run_child(BUILD, [json.dumps({"paths": syn["paths"], "out": str(work / "out" / "strip"),
                                          "order": args.order, "exact": args.exact_coords})], env, "build")
        ny, nx = r["shape"]
        print(f"  mosaic: {r['projection']} {nx} x {ny} px ({r['bytes'] / 1e9:.2f} GB of FITS), {r['n_used']} inputs, "
              f"median predicted noise {r['noise'] * 1e6:.0f} uJy/beam, measured {r['rms'] * 1e6:.0f} "
              f"(ratio {r['ratio']:.2f}), {r['n_sources']} sources")
        print("  steps: " + ", ".join(f"{k} {v:.1f} s" for k, v in r["timings"].items()))
        ok_t, ok_m = r["wall"] <= 60.0, r["peak_gb"] <= 4.0
        print(f"  wall {r['wall']:.1f} s (CPU {r['cpu']:.1f} s), peak RSS {r['peak_gb']:.2f} GB "
              f"(ru_maxrss {r['maxrss_gb']:.2f} GB)  targets <= 60 s, <= 4 GB: "
              f"{'PASS' if ok_t and ok_m else 'FAIL'}")
    finally:
        if args.keep:
            print(f"  kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
