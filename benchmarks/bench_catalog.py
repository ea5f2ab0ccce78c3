"""Benchmark of the master catalog: full-size build and cone queries.

Generates synthetic NVSS (1.8M rows, VizieR CSV with sexagesimal positions),
FIRST (0.95M rows, VizieR TSV with units/dash lines) and VLASS (1.9M rows, CIRADA
CSV layout) catalogs, times ``python -m dsa110_contimg.catalog.build_master`` in
a child process (wall time; peak RSS of the child via ``resource.getrusage``),
then times 10,000 cone queries of 2 deg radius and 1,000 brightest-reference
queries.  Targets: build <= 60 s and <= 4 GB on 2 cores; cone < 5 ms each.

Usage::

    .venv/bin/python benchmarks/bench_catalog.py [--workdir DIR] [--scale 1.0] [--queries 10000]

Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

N_NVSS, N_FIRST, N_VLASS = 1_800_000, 950_000, 1_900_000


def _sexa(ra_deg: np.ndarray, dec_deg: np.ndarray) -> tuple[list[str], list[str]]:
    h = ra_deg / 15.0
    hh = np.floor(h)
    mm = np.floor((h - hh) * 60)
    ss = np.round(((h - hh) * 60 - mm) * 60, 2)
    ad = np.abs(dec_deg)
    dd = np.floor(ad)
    dm = np.floor((ad - dd) * 60)
    ds = np.round(((ad - dd) * 60 - dm) * 60, 1)
    sign = np.where(dec_deg < 0, "-", "+")
    ra_s = [f"{a:02d} {b:02d} {c:05.2f}" for a, b, c in zip(hh.astype(int).tolist(), mm.astype(int).tolist(),
                                                             ss.tolist())]
    dec_s = [f"{s}{a:02d} {b:02d} {c:04.1f}" for s, a, b, c in zip(sign.tolist(), dd.astype(int).tolist(),
                                                                    dm.astype(int).tolist(), ds.tolist())]
    return ra_s, dec_s


def _offset(rng, ra, dec, sigma_arcsec):
    d = rng.normal(0, sigma_arcsec / 3600.0, (2, len(ra)))
    return np.mod(ra + d[0] / np.cos(np.radians(dec)), 360.0), np.clip(dec + d[1], -89.999, 89.999)


def generate(workdir: Path, scale: float = 1.0, seed: int = 1) -> dict[str, Path]:
    """Write the three synthetic catalogs (reused when already present)."""
    paths = {"nvss": workdir / "nvss.csv", "first": workdir / "first.tsv", "vlass": workdir / "vlass.csv"}
    if all(p.exists() for p in paths.values()):
        return paths
    rng = np.random.default_rng(seed)
    n_nvss, n_first, n_vlass = int(N_NVSS * scale), int(N_FIRST * scale), int(N_VLASS * scale)
    ra = rng.uniform(0, 360, n_nvss)
    dec = np.degrees(np.arcsin(rng.uniform(np.sin(np.radians(-40)), 1, n_nvss)))
    s = 2.5 * (1 + rng.pareto(0.9, n_nvss))  # mJy
    es = np.round(0.45 + 0.005 * s, 1)
    alpha = rng.normal(-0.7, 0.35, n_nvss)
    ra_s, dec_s = _sexa(ra, dec)
    with open(paths["nvss"], "w") as fh:
        fh.write("RAJ2000,DEJ2000,e_RAJ2000,e_DEJ2000,S1.4,e_S1.4,l_MajAxis,MajAxis,l_MinAxis,MinAxis,PA,"
                 "e_PA,Field,Xpos,Ypos\n")
        fh.writelines(f"{a},{d},0.50,6.1,{f:.1f},{e:.1f},<,{mj:.1f},<,{mn:.1f},,,C0000M00,512.3,511.8\n"
                      for a, d, f, e, mj, mn in zip(ra_s, dec_s, s.tolist(), es.tolist(),
                                                    rng.uniform(10, 60, n_nvss).tolist(),
                                                    rng.uniform(5, 30, n_nvss).tolist()))
    # FIRST: counterparts of NVSS sources at dec > -10 (plus faint extras), with deconvolved sizes
    in_first = np.flatnonzero(dec > -10)
    n_cp = min(len(in_first), int(0.6 * n_first))
    cp = rng.choice(in_first, n_cp, replace=False)
    fra, fdec = _offset(rng, ra[cp], dec[cp], 1.0)
    n_extra = n_first - n_cp
    fra = np.concatenate([fra, rng.uniform(0, 360, n_extra)])
    fdec = np.concatenate([fdec, np.degrees(np.arcsin(rng.uniform(np.sin(np.radians(-10)), 1, n_extra)))])
    fint = np.concatenate([s[cp] * rng.normal(1, 0.05, n_cp), 1 + rng.pareto(1.2, n_extra)])
    fmaj = np.where(rng.random(n_first) < 0.6, 0.0, rng.uniform(0.5, 12, n_first))
    fra_s, fdec_s = _sexa(fra, fdec)
    with open(paths["first"], "w") as fh:
        fh.write("#\n# VizieR Astronomical Server: FIRST (VIII/92) -- synthetic\n#\n")
        fh.write("RAJ2000\tDEJ2000\tp(S)\tFpeak\tFint\tRms\tMaj\tMin\tPA\tfMaj\tfMin\tfPA\tFld\n")
        fh.write("\"h:m:s\"\t\"d:m:s\"\t\tmJy\tmJy\tmJy\tarcsec\tarcsec\tdeg\tarcsec\tarcsec\tdeg\t\n")
        fh.write("-----------\t-----------\t----\t------\t------\t-----\t----\t----\t----\t----\t----\t----\t----\n")
        fh.writelines(f"{a}\t{d}\t0.014\t{f * 0.9:.2f}\t{f:.2f}\t0.145\t{mj:.2f}\t{mj * 0.6:.2f}\t45.0\t"
                      f"{mj + 5.4:.2f}\t{0.6 * mj + 5.4:.2f}\t45.0\t15000+50000\n"
                      for a, d, f, mj in zip(fra_s, fdec_s, fint.tolist(), fmaj.tolist()))
    # VLASS: counterparts of 75% of NVSS sources (some double), plus faint extras
    n_cp = min(int(0.75 * n_nvss), n_vlass)
    cp = rng.choice(n_nvss, n_cp, replace=False)
    vra, vdec = _offset(rng, ra[cp], dec[cp], 0.7)
    n_double = n_cp // 20  # second component 3-4 arcsec away (confused)
    dra, ddec = _offset(rng, vra[:n_double], vdec[:n_double], 2.5)
    n_extra = n_vlass - n_cp - n_double
    vra = np.concatenate([vra, dra, rng.uniform(0, 360, n_extra)])
    vdec = np.concatenate([vdec, ddec, np.degrees(np.arcsin(rng.uniform(np.sin(np.radians(-40)), 1, n_extra)))])
    vtot = np.concatenate([s[cp] * (3.0 / 1.4) ** alpha[cp] * 0.85, 0.3 * s[cp[:n_double]],
                           1 + rng.pareto(1.2, n_extra)])
    vpeak = vtot * rng.uniform(0.6, 1.0, n_vlass)
    dcmaj = np.where(rng.random(n_vlass) < 0.5, 0.0, rng.uniform(0.3, 8, n_vlass))
    dup = rng.choice([0, 1, 2], n_vlass, p=[0.85, 0.1, 0.05])
    qual = rng.choice([0, 1, 2, 4], n_vlass, p=[0.8, 0.05, 0.05, 0.1])
    code = rng.choice(["S", "M", "C"], n_vlass, p=[0.8, 0.15, 0.05])
    with open(paths["vlass"], "w") as fh:
        fh.write("Component_name,Component_id,Island_id,RA,DEC,E_RA,E_DEC,Total_flux,E_Total_flux,Peak_flux,"
                 "E_Peak_flux,Maj,E_Maj,Min,E_Min,PA,E_PA,Isl_Total_flux,E_Isl_Total_flux,Isl_rms,Isl_mean,"
                 "Resid_Isl_rms,Resid_Isl_mean,RA_max,DEC_max,E_RA_max,E_DEC_max,S_Code,DC_Maj,E_DC_Maj,DC_Min,"
                 "E_DC_Min,DC_PA,E_DC_PA,Tile,Subtile,NVSS_distance,FIRST_distance,Peak_to_ring,Duplicate_flag,"
                 "Quality_flag,Source_name,Source_type\n")
        fh.writelines(f"VLASS1QLCIR J000000+000000,{i},{i},{a:.6f},{d:.6f},0.1,0.1,{t:.3f},{0.02 * t + 0.12:.3f},"
                      f"{p:.3f},0.12,2.6,0.1,2.3,0.1,40,5,{t:.3f},0.2,0.12,0.0,0.12,0.0,{a:.6f},{d:.6f},0.1,0.1,"
                      f"{c},{mj:.2f},0.1,{mj * 0.5:.2f},0.1,30,5,T01t01,J000000+000000,3.2,2.1,5.0,{du},{q},"
                      f"J000000+000000,C\n"
                      for i, (a, d, t, p, c, mj, du, q) in enumerate(zip(
                          vra.tolist(), vdec.tolist(), vtot.tolist(), vpeak.tolist(), code.tolist(),
                          dcmaj.tolist(), dup.tolist(), qual.tolist())))
    return paths


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "dsa110_bench_catalog")
    ap.add_argument("--scale", type=float, default=1.0, help="Fraction of the real catalog sizes.")
    ap.add_argument("--queries", type=int, default=10_000)
    args = ap.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)

    t = time.perf_counter()
    paths = generate(args.workdir, args.scale)
    print(f"inputs ({time.perf_counter() - t:.1f} s): " + ", ".join(
        f"{k} {p} ({p.stat().st_size / 1e6:.0f} MB)" for k, p in paths.items()))

    out = args.workdir / "master_sources.sqlite3"
    cmd = [sys.executable, "-m", "dsa110_contimg.catalog.build_master", "--nvss", str(paths["nvss"]),
           "--vlass", str(paths["vlass"]), "--first", str(paths["first"]), "--out", str(out)]
    print("build:", " ".join(cmd))
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    sys.stdout.write(proc.stdout)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"build failed (exit {proc.returncode})")
    print(f"BUILD wall {wall:.1f} s, peak RSS {peak_kb / 1024 ** 2:.2f} GB, cores {os.cpu_count()}, "
          f"file {out.stat().st_size / 1e6:.0f} MB  (targets: <= 60 s, <= 4 GB)")

    from dsa110_contimg.catalog.query import brightest_references, cone_search, open_catalog

    conn = open_catalog(out)
    rng = np.random.default_rng(7)
    n = args.queries
    ras = rng.uniform(0, 360, n)
    decs = np.degrees(np.arcsin(rng.uniform(np.sin(np.radians(-40)), 1, n)))
    times = np.empty(n)
    counts = np.empty(n, dtype=int)
    for i in range(n):
        t = time.perf_counter()
        counts[i] = len(cone_search(conn, ras[i], decs[i], 2.0))
        times[i] = time.perf_counter() - t
    ms = times * 1e3
    print(f"CONE {n} queries r=2 deg: mean {ms.mean():.2f} ms, median {np.median(ms):.2f} ms, "
          f"p95 {np.percentile(ms, 95):.2f} ms, max {ms.max():.2f} ms, mean {counts.mean():.0f} sources/query "
          f"(target < 5 ms)")
    m = min(n, 1000)
    t = time.perf_counter()
    for i in range(m):
        brightest_references(conn, ras[i], decs[i], 2.0, freq_hz=1.4e9, n=10)
    print(f"REFS {m} brightest_references r=2 deg: mean {(time.perf_counter() - t) / m * 1e3:.2f} ms")
    conn.close()


if __name__ == "__main__":
    main()
