"""Benchmark: RFI flagging of one full-size ``--rfi heavy`` group, AOFlagger and CASA side by side.

Simulates one full-size group (16 x ~145 MB, 20 sources, gains, noise, heavy RFI), converts it once
with the package, then flags the same MS with each flagger (FLAG restored in between), each in its
own process: wall time, peak memory (sampled RSS of the stage's process and of its AOFlagger worker),
recall on the injected RFI stronger than 5x the per-visibility noise, and false-flag rate on the
RFI-free samples (both beyond the base flags). CPU seconds (the stage and its worker) tell what the
wall time would be on two idle cores when the machine is shared. Targets: AOFlagger <= 15 s on
2 cores, and >= 3x faster than CASA at equal or better recall.

The flag stage is timed as the streaming chain runs it (`defer_plot`: the QA plot's data saved, the PNG
drawn later by its first reader; that drawing is shown as `plot_later`, outside the wall time).

Usage: .venv/bin/python benchmarks/bench_flag.py [--ms MS --sim-dir DIR] [--flaggers aoflagger,casa] [--keep]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import CSV, run_child, work_dir  # noqa: E402

CHILD = r"""
import json, resource, sys, threading, time
from pathlib import Path
import psutil
from dsa110_contimg.casa_env import prepare_casa
prepare_casa(Path(sys.argv[3]))
from dsa110_contimg.flagging import FlagOptions, flag_ms
# peak RSS sampled (ru_maxrss of a child started by fork + exec carries its parent's footprint)
me, peak = psutil.Process(), {"self": 0, "workers": 0}
def sample():
    while True:
        peak["self"] = max(peak["self"], me.memory_info().rss)
        kids = 0
        for k in me.children(recursive=True):
            try:
                kids += k.memory_info().rss
            except psutil.Error:
                pass
        peak["workers"] = max(peak["workers"], kids)
        time.sleep(0.02)
threading.Thread(target=sample, daemon=True).start()
t0 = time.perf_counter()
strategy = Path(sys.argv[5]) if len(sys.argv) > 5 and sys.argv[5] else None
# as the streaming chain's flag stage runs it: the QA plot's data saved, the PNG drawn by its first reader
res = flag_ms(Path(sys.argv[1]), FlagOptions(flagger=sys.argv[2], qa_dir=Path(sys.argv[4]), strategy=strategy,
                                             defer_plot=True))
wall = time.perf_counter() - t0
cpu = sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
          for f in ("ru_utime", "ru_stime"))
from dsa110_contimg.flagging.qa import render_deferred
t1 = time.perf_counter()
render_deferred(res.qa_png)
res.timings["plot_later"] = time.perf_counter() - t1
time.sleep(0.05)
print(json.dumps({"wall": wall, "cpu": cpu, "peak_gb": peak["self"] / 1e9, "worker_peak_gb": peak["workers"] / 1e9,
                  "fraction_after": res.fraction_after, "fraction_base": res.fraction_base,
                  "timings": res.timings, "steps": res.steps}))
"""


def simulate_and_convert(work: Path, seed: int) -> tuple[Path, Path]:
    """One full-size heavy-RFI group, converted once; returns (MS, folder with the truth)."""
    from dsa110_contimg.casa_env import prepare_casa
    from dsa110_contimg.conversion.convert import ConvertOptions, convert_directory
    from dsa110_contimg.simulate.core import SimulateOptions, simulate

    prepare_casa(work / "state")
    t0 = time.perf_counter()
    simulate(SimulateOptions(output_dir=work / "in", preset="full", rfi="heavy", n_sources=20, antpos_csv=CSV,
                             seed=seed))
    t1 = time.perf_counter()
    [res] = convert_directory(work / "in", ConvertOptions(output_dir=work / "ms", antpos_csv=CSV))
    print(f"  simulated in {t1 - t0:.0f} s, converted in {time.perf_counter() - t1:.0f} s -> {res.ms_path}")
    for f in (work / "in").glob("*.hdf5"):
        f.unlink()  # keep the truth (JSON + _rfi.npz), drop the 2.3 GB of subband files
    return res.ms_path, work / "in"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ms", type=Path, default=None, help="reuse a converted --rfi heavy group (with --sim-dir)")
    ap.add_argument("--sim-dir", type=Path, default=None, help="folder with that group's truth JSON and _rfi.npz")
    ap.add_argument("--flaggers", default="aoflagger,casa", help="comma list (default: aoflagger,casa)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--strategy", type=Path, default=None, help="AOFlagger Lua strategy (default: the shipped one)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    args = ap.parse_args()

    work, env = work_dir("bench_flag_")
    from dsa110_contimg.flagging.evaluate import score_flags, truth_in_ms_order
    from dsa110_contimg.flagging.msio import read_flags, read_layout, write_flags
    from dsa110_contimg.simulate.truth import GroupTruth

    print(f"bench_flag: full-size --rfi heavy group, {os.cpu_count()} cores")
    if args.ms:
        ms, sim_dir = args.ms, args.sim_dir
    else:
        ms, sim_dir = simulate_and_convert(work, args.seed)
    layout = read_layout(ms)
    before = read_flags(ms, layout)
    base = before | layout.autos[None, :, None, None]
    truth = GroupTruth.from_json(next(Path(sim_dir).glob("*_truth.json")))
    mask, amp, sigma = truth_in_ms_order(Path(sim_dir) / truth.rfi["mask_file"], layout)
    print(f"  {layout.n_bl} baselines x {layout.n_time} integrations x {layout.n_chan} channels x {layout.n_pol} "
          f"pol; RFI touches {100 * truth.rfi['fraction']:.1f}% of the cells, {len(truth.rfi['events'])} events")

    rows = {}
    try:
        for flagger in [f.strip() for f in args.flaggers.split(",") if f.strip()]:
            write_flags(ms, layout, before)
            out = run_child(CHILD, [str(ms), flagger, str(work / "state"), str(work / f"qa_{flagger}"),
                                    str(args.strategy.resolve()) if args.strategy else ""], env,
                            f"flag_ms({flagger})")
            after = read_flags(ms, layout)
            sc = score_flags(after, base, mask, amp, sigma)
            rows[flagger] = dict(out, recall=sc.recall, false_rate=sc.false_rate, strong=sc.strong)
    finally:
        write_flags(ms, layout, before)
    print(f"  {'flagger':10s} {'wall s':>7s} {'cpu s':>6s} {'peak GB':>8s} {'worker GB':>9s} {'recall':>7s} "
          f"{'false':>7s} {'flagged':>8s} {'RFI':>6s}")
    for name, r in rows.items():
        rfi = 100 * (r["fraction_after"] - r["fraction_base"])
        print(f"  {name:10s} {r['wall']:7.1f} {r['cpu']:6.1f} {r['peak_gb']:8.2f} {r['worker_peak_gb']:9.2f} "
              f"{r['recall']:7.4f} {r['false_rate']:7.4f} {100 * r['fraction_after']:7.1f}% {rfi:5.1f}%")
    for name, r in rows.items():
        print(f"  {name} steps: " + ", ".join(f"{k} {v:.1f} s" for k, v in r["timings"].items()))
    print(f"  strong RFI samples (> 5 sigma): {next(iter(rows.values()))['strong'] if rows else 0:,d}")
    if "aoflagger" in rows:
        a = rows["aoflagger"]
        print(f"  target AOFlagger <= 15 s: {'met' if a['wall'] <= 15 else 'MISSED'} ({a['wall']:.1f} s)")
        if "casa" in rows:
            c = rows["casa"]
            speed = c["wall"] / a["wall"]
            ok = speed >= 3 and a["recall"] >= c["recall"]
            print(f"  target >= 3x faster than CASA at equal or better recall: {'met' if ok else 'MISSED'} "
                  f"({speed:.1f}x, recall {a['recall']:.4f} vs {c['recall']:.4f})")
    if args.keep:
        print(f"  kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
