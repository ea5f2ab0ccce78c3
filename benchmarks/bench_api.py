"""Benchmark of the monitoring API under load: p50/p99 latency of /api/status and /api/images.

Fills an ingest queue, a products database and a calibration registry as a
month of operation leaves them (10,000 groups of 16 subbands, their Measurement
Sets, two images each with ~10 detections, one calibration set per 12 h),
serves ``uvicorn dsa110_contimg.api:app`` on loopback in a separate process,
and drives it with an open-loop load generator (requests start on a fixed
schedule whether or not the earlier ones have answered) at 200 requests/s,
alternating ``/api/status`` and ``/api/images?limit=50`` (every 5th images
request with ``&offset=5000``).  Latency runs from the actual start of a
request to its full body; the lag of that start behind the schedule is shown
too.  Target on 2 cores: p99 < 50 ms.

Usage::

    .venv/bin/python benchmarks/bench_api.py [--groups 10000] [--rate 200] [--duration 30] [--warmup 3]
                                             [--workdir DIR] [--keep] [--json PATH]

Exit status 0 whether or not the target is met; 1 when the server does not
start or more than 1% of the requests fail.  Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from bench_common import REPO
from dsa110_contimg.timeconv import unix_to_mjd

TARGET_P99_MS = 50.0
T0 = datetime(2025, 10, 2, tzinfo=timezone.utc).timestamp()


def _sec(t: float) -> str:
    """ISO UTC to the second, as the imaging stage stamps ``processed_at``/``created_at``."""
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="seconds")


def fill(work: Path, n_groups: int, seed: int = 1) -> dict[str, int]:
    """Create and fill the queue, products and calibration databases under ``work/state``.

    Parameters
    ----------
    work
        Work folder; databases go to ``state/``, (non-existent) files are named under ``incoming/`` and ``output/``.
    n_groups
        Observation groups: all completed but 5 failed, 3 held, 2 in progress, 4 pending, 1 collecting.
    seed
        Seed of the random figures.

    Returns
    -------
    dict
        Row count of every table filled.
    """
    from dsa110_contimg.db import cal_registry, products, queue
    from dsa110_contimg.db.products_schema import MS_COLUMNS
    from dsa110_contimg.db.queue_schema import GROUP_ID_FORMAT, QUEUE_COLUMNS, _iso
    from dsa110_contimg.telescope import GROUP_SECONDS
    from dsa110_contimg.db.sqlite_base import transaction

    rng = np.random.default_rng(seed)
    state, out = work / "state", work / "output"
    states = ["completed"] * n_groups
    states[n_groups - 7:] = ["in_progress"] * 2 + ["pending"] * 4 + ["collecting"]  # the newest
    for i in range(n_groups - 10, n_groups - 31, -10):  # held: recent, waiting for a calibration set
        states[i] = "held"
    for i in rng.choice(n_groups - 40, 5, replace=False):
        states[int(i)] = "failed"
    now = time.time()
    groups, files, metrics, ms_rows, images, dets = [], [], [], [], [], []
    lat = np.clip(rng.normal(75, 10, n_groups), 40, 200)
    for i, st in enumerate(states):
        t = T0 + i * GROUP_SECONDS
        gid = datetime.fromtimestamp(t, timezone.utc).strftime(GROUP_ID_FORMAT)
        recv = t + GROUP_SECONDS + rng.uniform(0, 5)
        n_files = 11 if st == "collecting" else 16
        added = np.sort(recv + rng.uniform(0, 20, n_files))
        files += [(gid, sb, str(work / "incoming" / f"{gid}_sb{sb:02d}.hdf5"), _iso(a))
                  for sb, a in enumerate(added.tolist())]
        ms = str(out / "ms" / f"{gid}.ms")
        done = recv + 20 + lat[i]
        stage = {"completed": "imaged", "failed": "applied", "held": "converted", "in_progress": "converted"}.get(st)
        groups.append((gid, st, _iso(recv), _iso(done if st in ("completed", "failed") else added[-1]), 16,
                       3 if st == "failed" else 0,
                       "imaging failed: wsclean exited with status 1 (see the group log)" if st == "failed" else None,
                       ms if stage else None, stage, GROUP_SECONDS / 60, now + 600 if st == "held" else 0.0, 0,
                       None, "no active calibration set within 24 h of the group" if st == "held" else None))
        if st != "completed":
            continue
        load, phase, write, apply_, image, qa = rng.uniform([8, 2, 6, 3, 25, 3], [14, 5, 12, 6, 40, 7]).tolist()
        metrics.append((gid, "direct-subband", _iso(done), load, phase, write, load + phase + write, None, None,
                        None, apply_, image, qa, float(lat[i]), None))
        ra, dec = (unix_to_mjd(t) * 360.9856) % 360.0, 71.6
        prefix = out / "images" / f"{gid}.wsclean"
        ms_rows.append((ms, unix_to_mjd(t), unix_to_mjd(t + GROUP_SECONDS), unix_to_mjd(t + GROUP_SECONDS / 2),
                        _sec(done), "completed",
                        "imaged", _iso(done), 1, str(prefix), ra, dec))
        iid = len(images) + 1
        noise, peak = rng.uniform(4e-4, 1.5e-3), rng.uniform(0.1, 2.0)
        bmaj, bmin, bpa = rng.uniform(20, 30), rng.uniform(10, 14), rng.uniform(-90, 90)
        n_det = int(rng.poisson(10))
        fits = f"{prefix}-image.fits"
        qa_json = json.dumps({"rms_jy": noise, "peak_jy": peak, "n_sources": n_det, "n_matched": int(0.8 * n_det),
                              "clean_converged": True, "warnings": []}, sort_keys=True)
        images.append((iid, fits, ms, _sec(done), "image", bmaj, noise, 0, bmin, bpa, peak, peak / noise,
                       "wsclean", 1.405e9, f"{prefix}-image_thumb.png", f"{prefix}-image_qa.png", fits, n_det,
                       rng.uniform(0.9, 1.1), rng.uniform(0.5, 3.0), qa_json,
                       json.dumps({"image": image, "qa": qa}), "ok"))
        images.append((iid + 1, f"{prefix}-image-pb.fits", ms, _sec(done), "pbcor", bmaj, None, 1, bmin, None, None,
                       None, "wsclean", None, None, None, f"{prefix}-image-pb.fits", None, None, None, None, None,
                       "ok"))
        d = rng.random((n_det, 10))
        snr = 5 + 100 * d[:, 2] ** 3
        for k in range(n_det):
            matched = d[k, 3] < 0.8
            dets.append((iid, (ra + 3 * (d[k, 0] - 0.5)) % 360.0, dec + 3 * (d[k, 1] - 0.5), 2.0, 2.0,
                         snr[k] * noise, noise, snr[k] * noise * 1.1, 1.5 * noise, snr[k],
                         int(d[k, 4] * 1.8e6) if matched else None, 5 * d[k, 5] if matched else None,
                         snr[k] * noise * (0.8 + 0.4 * d[k, 6]) if matched else None))
    counts = {}
    conn = queue.connect(state / "ingest_queue.sqlite3")
    with transaction(conn, "fill"):
        conn.executemany(f"INSERT INTO ingest_queue ({', '.join(c for c, _ in QUEUE_COLUMNS)}) "
                         f"VALUES ({','.join('?' * len(QUEUE_COLUMNS))})", groups)
        conn.executemany("INSERT INTO subband_files (group_id, subband_idx, path, added_at) VALUES (?,?,?,?)", files)
        conn.executemany("INSERT INTO performance_metrics (group_id, writer_type, recorded_at, load_time, phase_time, "
                         "write_time, total_time, cal_k_time, cal_b_time, cal_g_time, apply_time, image_time, "
                         f"qa_time, latency_s, extra_json) VALUES ({','.join('?' * 15)})", metrics)
    queue.beat(conn, "stream", {"running": 1})
    for table in ("ingest_queue", "subband_files", "performance_metrics", "heartbeat"):
        counts[table] = conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    conn.close()
    conn = products.connect(state / "products.sqlite3")
    with transaction(conn, "fill"):
        conn.executemany(f"INSERT INTO ms_index ({', '.join(c for c, _ in MS_COLUMNS)}) "
                         f"VALUES ({','.join('?' * len(MS_COLUMNS))})", ms_rows)
        conn.executemany("INSERT INTO images (id, path, ms_path, created_at, type, beam_major_arcsec, noise_jy, pbcor, "
                         "beam_minor_arcsec, beam_pa_deg, peak_jy, dynamic_range, backend, freq_hz, thumbnail_path, "
                         "qa_plot_path, fits_path, n_detections, flux_ratio_median, astrometry_offset_arcsec, "
                         f"qa_json, timings_json, status) VALUES ({','.join('?' * 23)})", images)
        conn.executemany("INSERT INTO detections (image_id, ra_deg, dec_deg, ra_err_arcsec, dec_err_arcsec, peak_jy, "
                         "peak_err_jy, int_jy, int_err_jy, snr, catalog_source_id, catalog_sep_arcsec, "
                         f"catalog_flux_jy) VALUES ({','.join('?' * 13)})", dets)
    for table in ("ms_index", "images", "detections"):
        counts[table] = conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    conn.close()
    cal, t_end = [], T0 + n_groups * GROUP_SECONDS
    for k in range(int(np.ceil((t_end - T0) / 43200))):
        t = T0 + k * 43200 + 1800
        name = f"3C147_{datetime.fromtimestamp(t, timezone.utc):%Y-%m-%dT%H:%M}"
        for order, tt in enumerate("KBG"):
            path = str(state / "caltables" / f"{name}.{tt}")
            cal.append((name, path, tt, order, "3C147", "pad103", _iso(t + 900), unix_to_mjd(t),
                        unix_to_mjd(t + 43200), "active",
                        "", str(out / "ms" / f"{name}.ms"), "dsa110 calibrate", "0.1",
                        json.dumps({"solint": "inf", "refant": "pad103"}),
                        json.dumps({"flagged_fraction": round(float(rng.uniform(0.02, 0.1)), 3)}), path + ".png"))
    conn = cal_registry.connect(state / "cal_registry.sqlite3")
    with transaction(conn, "fill"):
        conn.executemany("INSERT INTO caltables (set_name, path, table_type, order_index, cal_field, refant, "
                         "created_at, valid_start_mjd, valid_end_mjd, status, notes, source_ms_path, solver_command, "
                         "solver_version, solver_params, quality_metrics, qa_plot_path) "
                         f"VALUES ({','.join('?' * 17)})", cal)
    counts["caltables"] = conn.execute("SELECT COUNT(*) FROM caltables").fetchone()[0]
    conn.close()
    return counts


def serve(app: str, work: Path, cache_s: float | None = None) -> tuple[subprocess.Popen, str, Path]:
    """Start uvicorn on a free loopback port and wait (30 s at most) until ``/api/status`` answers 200.

    ``cache_s`` sets the API's answer cache (``PIPELINE_API_CACHE_S``; ``None``: its default).
    """
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    st = work / "state"
    env = dict(os.environ, PIPELINE_STATE_DIR=str(st), PIPELINE_QUEUE_DB=str(st / "ingest_queue.sqlite3"),
               PIPELINE_PRODUCTS_DB=str(st / "products.sqlite3"), CAL_REGISTRY_DB=str(st / "cal_registry.sqlite3"),
               PIPELINE_INCOMING_DIR=str(work / "incoming"), PIPELINE_OUTPUT_DIR=str(work / "output"),
               PIPELINE_STAGE_DIR=str(work / "stage"))
    if cache_s is not None:
        env["PIPELINE_API_CACHE_S"] = str(cache_s)
    log = work / "server.log"
    cmd = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT)
    base, deadline, last = f"http://127.0.0.1:{port}", time.monotonic() + 30, "no answer"
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            r = httpx.get(base + "/api/status", timeout=5)
            if r.status_code == 200:
                return proc, base, log
            last = f"HTTP {r.status_code}: {r.text[:300]}"
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(0.2)
    rc = proc.poll()
    stop(proc)
    why = "timed out (30 s)" if rc is None else f"exited with status {rc}"
    raise SystemExit(f"bench_api: server {app} {why}; last /api/status: {last}\n--- server output ---\n"
                     + log.read_text(errors="replace")[-4000:])


def stop(proc: subprocess.Popen) -> None:
    """Terminate the server, then kill it if it is still running after 10 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


PATHS = {"status": "/api/status", "images": "/api/images?limit=50", "images_paged": "/api/images?limit=50&offset=5000"}


async def load(base: str, rate: float, seconds: float, timeout: float = 10.0) -> list[tuple]:
    """Open-loop load: request ``i`` is started at ``i / rate`` s whether or not earlier ones have answered.

    A request not answered within ``timeout`` seconds (waiting for a pooled connection included) fails.

    Returns
    -------
    list of tuple
        ``(kind, scheduled_s, lag_s, latency_s, ok, n_bytes)`` per request; ``scheduled_s`` from the start.
    """
    import httpx

    recs: list[tuple] = []
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=timeout) as client:
        async def one(kind: str, at: float, start: float) -> None:
            t = time.perf_counter()
            try:
                r = await asyncio.wait_for(client.get(PATHS[kind]), timeout)
                ok, size = r.status_code == 200, len(r.content)
            except (httpx.HTTPError, asyncio.TimeoutError):
                ok, size = False, 0
            recs.append((kind, at - start, t - at, time.perf_counter() - t, ok, size))

        tasks, start = [], time.perf_counter() + 0.05
        for i in range(int(seconds * rate)):
            at = start + i / rate
            if (delay := at - time.perf_counter()) > 0:
                await asyncio.sleep(delay)
            kind = "status" if i % 2 == 0 else "images_paged" if (i // 2) % 5 == 4 else "images"
            tasks.append(asyncio.create_task(one(kind, at, start)))
        await asyncio.gather(*tasks)
    return recs


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (Linux ``/proc``; 0 elsewhere)."""
    try:
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def summarize(recs: list[tuple]) -> dict[str, dict]:
    """Per endpoint and overall: requests, achieved rate, latency percentiles (ms), failures, mean body size.

    The achieved rate counts answers per second from the first start to the last answer.
    """
    out = {}
    for name in (*PATHS, "all"):
        sel = [r for r in recs if name in ("all", r[0])]
        if not sel:
            continue
        ms = np.array([r[3] for r in sel]) * 1e3
        span = max(r[1] + r[2] + r[3] for r in sel) - min(r[1] + r[2] for r in sel)
        out[name] = {"path": PATHS.get(name, "all"), "requests": len(sel), "rate_per_s": len(sel) / max(span, 1e-9),
                     "p50_ms": float(np.percentile(ms, 50)), "p90_ms": float(np.percentile(ms, 90)),
                     "p99_ms": float(np.percentile(ms, 99)), "max_ms": float(ms.max()),
                     "failures": sum(not r[4] for r in sel), "mean_bytes": float(np.mean([r[5] for r in sel]))}
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--groups", type=int, default=10_000, help="observation groups in the queue (>= 100)")
    ap.add_argument("--rate", type=float, default=200.0, help="requests per second (open loop)")
    ap.add_argument("--duration", type=float, default=30.0, help="measured seconds")
    ap.add_argument("--warmup", type=float, default=3.0, help="seconds of load before measuring (not counted)")
    ap.add_argument("--workdir", type=Path, help="work folder (kept); default a temporary one under /tmp")
    ap.add_argument("--keep", action="store_true", help="keep the temporary work folder")
    ap.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    ap.add_argument("--cache-s", type=float, help="the API's answer cache, s (PIPELINE_API_CACHE_S; 0 turns it "
                                                   "off; default: the API's own default)")
    ap.add_argument("--app", default="dsa110_contimg.api:app", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.groups < 100 or args.rate <= 0 or args.duration <= 0 or args.warmup < 0:
        ap.error("need --groups >= 100, --rate > 0, --duration > 0, --warmup >= 0")
    temp = args.workdir is None
    work = Path(tempfile.mkdtemp(prefix="bench_api_", dir="/tmp")) if temp else args.workdir.absolute()
    if not temp and any((work / "state" / f).exists() for f in
                        ("ingest_queue.sqlite3", "products.sqlite3", "cal_registry.sqlite3")):
        raise SystemExit(f"bench_api: {work}/state already holds databases; give an empty --workdir")
    proc = None
    try:
        t = time.perf_counter()
        counts = fill(work, args.groups)
        fill_s = time.perf_counter() - t
        print(f"bench_api: filled {work}/state in {fill_s:.1f} s: "
              + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
        proc, base, log = serve(args.app, work, args.cache_s)
        cache = "default" if args.cache_s is None else f"{args.cache_s:g} s"
        print(f"serving {args.app} at {base} (pid {proc.pid}, answer cache {cache}); {args.rate:g} requests/s open loop for "
              f"{args.warmup:g} s warm-up + {args.duration:g} s, {os.cpu_count()} cores")
        cpu0, wall0, own0 = _cpu_s(proc.pid), time.perf_counter(), time.process_time()
        recs = asyncio.run(load(base, args.rate, args.warmup + args.duration))
        wall = time.perf_counter() - wall0
        server_cpu, own_cpu = (_cpu_s(proc.pid) - cpu0) / wall, (time.process_time() - own0) / wall
        if proc.poll() is not None:
            raise SystemExit(f"bench_api: server died during the load\n{log.read_text(errors='replace')[-4000:]}")
    finally:
        if proc is not None:
            stop(proc)
        if temp and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        elif temp:
            print(f"kept {work}")
    measured = [r for r in recs if r[1] >= args.warmup]
    stats = summarize(measured)
    lag = np.array([r[2] for r in measured]) * 1e3
    print(f"{'endpoint':34s} {'requests':>8s} {'rate/s':>7s} {'p50 ms':>7s} {'p90 ms':>7s} {'p99 ms':>7s} "
          f"{'max ms':>7s} {'failed':>6s} {'bytes':>8s}")
    for s in stats.values():
        print(f"{s['path']:34s} {s['requests']:8d} {s['rate_per_s']:7.1f} {s['p50_ms']:7.1f} {s['p90_ms']:7.1f} "
              f"{s['p99_ms']:7.1f} {s['max_ms']:7.1f} {s['failures']:6d} {s['mean_bytes']:8.0f}")
    print(f"start lag behind schedule: p50 {np.percentile(lag, 50):.2f} ms, p99 {np.percentile(lag, 99):.2f} ms, "
          f"max {lag.max():.2f} ms; CPU: server {100 * server_cpu:.0f}% of a core, load generator "
          f"{100 * own_cpu:.0f}%")
    p99, failed = stats["all"]["p99_ms"], stats["all"]["failures"]
    met = p99 < TARGET_P99_MS and failed == 0
    print(f"target p99 < {TARGET_P99_MS:g} ms: {'met' if met else 'NOT met'} (p99 {p99:.1f} ms, {failed} failed)")
    if args.json:
        args.json.write_text(json.dumps({
            "app": args.app, "groups": args.groups, "rate": args.rate, "duration_s": args.duration,
            "warmup_s": args.warmup, "cores": os.cpu_count(), "fill_s": fill_s, "rows": counts, "endpoints": stats,
            "lag_ms": {"p50": float(np.percentile(lag, 50)), "p99": float(np.percentile(lag, 99)),
                       "max": float(lag.max())}, "server_cpu": server_cpu, "loadgen_cpu": own_cpu,
            "target_p99_ms": TARGET_P99_MS, "target_met": met}, indent=2) + "\n")
    if failed > 0.01 * len(measured):
        raise SystemExit(f"bench_api: {failed} of {len(measured)} requests failed (> 1%)")


if __name__ == "__main__":
    main()
