"""Read the pipeline's databases into the plain dicts the API serves and the dashboard renders.

Every function takes an :class:`~dsa110_contimg.api.context.ApiContext`, opens
the databases read-only, and returns JSON-ready values (``None`` for an unknown
id).  File paths are never taken from a request: the ``*_file`` functions look
a product up by its id and return the path the database registered.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..pipeline import stages as registry
from .context import ApiContext, cached

RECENT_GROUPS = 10
"""Groups listed by :func:`status`."""
STAGE_ORDER = registry.checkpoints()
"""Checkpoints of a group, in order (from the stage registry)."""
STAGE_TIMINGS = {t.name: t.columns for t in registry.timings()}
"""Stage name -> ``performance_metrics`` columns whose sum is its time (s)."""
STAGE_TOTALS = {t.name: t.total for t in registry.timings() if t.total}
"""Stage name -> metrics key of the whole stage's time, preferred when recorded (the solves are only part)."""


def page(items: list[Any], total: int, limit: int, offset: int) -> dict[str, Any]:
    """A page of a listing: ``{"total", "limit", "offset", "items"}``."""
    return {"total": total, "limit": limit, "offset": offset, "items": items}


def _now() -> datetime:
    return datetime.now(timezone.utc)


# --------------------------------------------------------------------------- queue


def group_summary(g) -> dict[str, Any]:
    """One queue row (:class:`~dsa110_contimg.db.queue.GroupRow`) without its files."""
    return {"group_id": g.group_id, "state": g.state, "processing_stage": g.processing_stage,
            "received_at": g.received_at, "last_update": g.last_update, "retry_count": g.retry_count,
            "error": g.error, "hold_reason": g.hold_reason, "partial": bool(g.partial), "n_files": len(g.files),
            "expected_subbands": g.expected_subbands}


def stage_seconds(metrics: dict[str, Any] | None) -> dict[str, float | None]:
    """Seconds per stage (``convert``, ``calibrate``, ``apply``, ``image``, ``qa``) from a metrics row."""
    m = metrics or {}
    out: dict[str, float | None] = {}
    for stage, cols in STAGE_TIMINGS.items():
        total = m.get(STAGE_TOTALS.get(stage, ""))
        vals = [total] if total is not None else [m[c] for c in cols if m.get(c) is not None]
        out[stage] = float(sum(vals)) if vals else None
    return out


def heartbeat(ctx: ApiContext, conn, name: str = "stream") -> dict[str, Any] | None:
    """The daemon's last heartbeat with its age and state: ``alive``, ``stale`` (silent too long) or ``stopped``."""
    from ..db import queue as q

    hb = q.get_heartbeat(conn, name) if conn is not None else None
    if hb is None:
        return None
    age = hb.age_s()
    state = "stopped" if hb.info.get("stopped") else "alive" if age <= ctx.heartbeat_stale_s else "stale"
    running = hb.info.get("running")
    return {"name": hb.name, "pid": hb.pid, "host": hb.host, "updated_at": hb.updated_at, "age_s": round(age, 1),
            "state": state, "running": [str(g) for g in running] if isinstance(running, list) else [],
            "info": hb.info}


@cached
def status(ctx: ApiContext) -> dict[str, Any]:
    """Queue counts by state, recent groups, active calibration sets and the daemon's heartbeat."""
    from ..db import queue as q

    out: dict[str, Any] = {"time": _now().isoformat(timespec="seconds"), "queue": dict.fromkeys(q.STATES, 0),
                           "total_groups": 0, "recent_groups": [], "heartbeat": None,
                           "active_calibration_sets": [], "writes_enabled": ctx.writes_enabled}
    with ctx.queue() as conn:
        if conn is not None:
            out["queue"] = q.counts_by_state(conn)
            out["total_groups"] = sum(out["queue"].values())
            out["recent_groups"] = [group_summary(g) for g in q.list_groups(conn, limit=RECENT_GROUPS)]
            out["heartbeat"] = heartbeat(ctx, conn)
    recent = out["recent_groups"]
    out["active_calibration_sets"] = sets_in_use(ctx, recent[0]["group_id"] if recent else None)
    return out


@cached
def list_groups(ctx: ApiContext, state: str | None, limit: int, offset: int) -> dict[str, Any]:
    """A page of groups (newest first), optionally in one state."""
    from ..db import queue as q

    with ctx.queue() as conn:
        if conn is None:
            return page([], 0, limit, offset)
        counts = q.counts_by_state(conn)
        total = counts.get(state, 0) if state else sum(counts.values())
        return page([group_summary(g) for g in q.list_groups(conn, state=state, limit=limit, offset=offset)],
                    total, limit, offset)


@cached
def group_detail(ctx: ApiContext, group_id: str) -> dict[str, Any] | None:
    """One group: files, missing subbands, stages with timings, errors, its MS and images."""
    from ..config import quarantine_dir
    from ..conversion.convert import ms_name
    from ..db import products as pdb
    from ..db import queue as q

    with ctx.queue() as conn:
        g = q.get_group(conn, group_id) if conn is not None else None
        if g is None:
            return None
        metrics = q.get_metrics(conn, group_id)
        others = [set_aside_row(e) for e in q.list_extra_files(conn, group_id=group_id, limit=200)]
    reached = STAGE_ORDER.index(g.processing_stage) if g.processing_stage in STAGE_ORDER else -1
    seconds = stage_seconds(metrics)
    stages = []
    for s in STAGE_TIMINGS:
        at = STAGE_ORDER.index(registry.checkpoint_of_timing(s))
        # a stage a group does not need (calibration of a target, photometry of a calibrator field) is skipped:
        # later ones are done (or the group completed without it) and it has no time
        stages.append({"stage": s, "done": reached >= at, "seconds": seconds[s],
                       "skipped": seconds[s] is None and (reached > at or g.state == "completed")})
    quarantine = quarantine_dir(ctx.settings.incoming_dir)
    files = [{"subband": k, "path": v, "exists": Path(v).is_file(),
              "quarantined": str(quarantine / Path(v).name) if (quarantine / Path(v).name).is_file() else None}
             for k, v in sorted(g.files.items())]
    from .flags import flag_summary

    out = {**group_summary(g), "files": files, "other_files": others, "operator_hold": bool(g.operator_hold),
           "flags": flag_summary(ctx, group_id),
           "missing_subbands": g.missing_subbands, "notes": g.notes, "checkpoint_path": g.checkpoint_path,
           "stages": stages, "metrics": metrics or {}, "latency_s": (metrics or {}).get("latency_s"),
           "ms": None, "images": []}
    ms_path = g.checkpoint_path or str(ctx.settings.output_dir / ms_name(group_id))
    with ctx.products() as pconn:
        if pconn is not None:
            ms = pdb.get_ms(pconn, ms_path)
            out["ms"] = ms_row(ms) if ms is not None else None
            out["images"] = [image_summary(i) for i in pdb.list_images(pconn, limit=20, ms_path=ms_path)]
    return out


def set_aside_row(e) -> dict[str, Any]:
    """One :class:`~dsa110_contimg.db.queue_files.ExtraFile` as the API shows it."""
    return {"path": e.path, "name": e.name, "kind": e.kind, "reason": e.reason, "group_id": e.group_id,
            "subband": e.subband_idx, "added_at": e.added_at, "resolved_at": e.resolved_at}


@cached
def set_aside_files(ctx: ApiContext, kind: str | None, limit: int, offset: int) -> dict[str, Any]:
    """A page of the files set aside by the queue (newest first), optionally of one kind."""
    from ..db import queue as q

    kinds = (kind,) if kind else None
    with ctx.queue() as conn:
        if conn is None:
            return page([], 0, limit, offset)
        rows = q.list_extra_files(conn, kinds=kinds, limit=limit, offset=offset)
        return page([set_aside_row(e) for e in rows], q.count_extra_files(conn, kinds), limit, offset)


# --------------------------------------------------------------------------- products


def ms_row(ms) -> dict[str, Any]:
    """One ``ms_index`` row, with its file name and group."""
    return {**asdict(ms), "name": Path(ms.path).name, "group_id": Path(ms.path).stem}


@cached
def list_ms(ctx: ApiContext, stage: str | None, status: str | None, limit: int, offset: int) -> dict[str, Any]:
    """A page of ``ms_index`` (newest data first)."""
    from ..db import products as pdb

    with ctx.products() as conn:
        if conn is None:
            return page([], 0, limit, offset)
        return page([ms_row(m) for m in pdb.list_ms(conn, stage=stage, status=status, limit=limit, offset=offset)],
                    pdb.count_ms(conn, stage=stage, status=status), limit, offset)


def image_summary(img) -> dict[str, Any]:
    """One image row with the URLs of its files (only those the database registered)."""
    base = f"/api/images/{img.id}"
    fits = img.fits_path or (img.path if img.path.endswith(".fits") else None)
    return {"id": img.id, "name": Path(img.path).name, "path": img.path, "ms_path": img.ms_path,
            "group_id": Path(img.ms_path).stem if img.ms_path else None, "created_at": img.created_at,
            "type": img.type, "backend": img.backend, "status": img.status, "pbcor": img.pbcor,
            "freq_hz": img.freq_hz, "noise_jy": img.noise_jy, "peak_jy": img.peak_jy,
            "dynamic_range": img.dynamic_range, "beam_major_arcsec": img.beam_major_arcsec,
            "beam_minor_arcsec": img.beam_minor_arcsec, "beam_pa_deg": img.beam_pa_deg,
            "n_detections": img.n_detections, "flux_ratio_median": img.flux_ratio_median,
            "astrometry_offset_arcsec": img.astrometry_offset_arcsec, "quality_state": img.quality_state,
            "flux_scale_ratio": img.flux_scale_ratio, "flux_scale_err": img.flux_scale_err,
            "flux_scale_n": img.flux_scale_n, "thermal_noise_jy": img.thermal_noise_jy,
            "rms_over_thermal": img.rms_over_thermal, "ref_offset_arcsec": img.ref_offset_arcsec,
            "urls": {"self": base, "page": f"/images/{img.id}",
                     "fits": f"{base}/fits" if fits else None,
                     "thumbnail": f"{base}/thumbnail.png" if img.thumbnail_path else None,
                     "qa_plot": f"{base}/qa.png" if img.qa_plot_path else None}}


@cached
def list_images(ctx: ApiContext, limit: int, offset: int, type: str | None = None) -> dict[str, Any]:
    """A page of images (newest first), optionally of one type."""
    from ..db import products as pdb

    with ctx.products() as conn:
        if conn is None:
            return page([], 0, limit, offset)
        return page([image_summary(i) for i in pdb.list_images(conn, limit=limit, offset=offset, type=type)],
                    pdb.count_images(conn, type=type), limit, offset)


def detection_row(d) -> dict[str, Any]:
    """One detection with its catalog match (``catalog_*`` and ``flux_ratio`` are ``None`` when unmatched)."""
    return {k: v for k, v in asdict(d).items() if k != "image_id"}


@cached
def image_detail(ctx: ApiContext, image_id: int) -> dict[str, Any] | None:
    """One image: metadata, QA numbers, timings and detections."""
    from ..db import products as pdb

    with ctx.products() as conn:
        img = pdb.get_image(conn, image_id) if conn is not None else None
        if img is None:
            return None
        dets = pdb.get_detections(conn, image_id)
    return {**image_summary(img), "qa": img.qa or {}, "timings": img.timings or {},
            "gates": (img.gates or {}).get("gates", []), "detections": [detection_row(d) for d in dets]}


def image_file(ctx: ApiContext, image_id: int, kind: str) -> Path | None:
    """Registered path of an image's ``'fits'``, ``'thumbnail'`` or ``'qa_plot'`` file, or ``None``."""
    from ..db import products as pdb

    with ctx.products() as conn:
        img = pdb.get_image(conn, image_id) if conn is not None else None
    if img is None:
        return None
    path = {"fits": img.fits_path or (img.path if img.path.endswith(".fits") else None),
            "thumbnail": img.thumbnail_path, "qa_plot": img.qa_plot_path}[kind]
    return Path(path) if path else None


# --------------------------------------------------------------------------- calibration


def calset_dict(s) -> dict[str, Any]:
    """One calibration set with its tables and the URLs of their plots."""
    from ..timeconv import mjd_to_iso

    name = quote(s.set_name, safe="")
    return {"set_name": s.set_name, "status": s.status, "cal_field": s.cal_field, "refant": s.refant,
            "valid_start_mjd": s.valid_start_mjd, "valid_end_mjd": s.valid_end_mjd,
            "valid_start": mjd_to_iso(s.valid_start_mjd), "valid_end": mjd_to_iso(s.valid_end_mjd),
            "source_ms_path": s.source_ms_path, "created_at": s.created_at, "solver_command": s.solver_command,
            "solver_version": s.solver_version, "notes": s.notes,
            "tables": [{"table_type": e.table_type, "path": e.path, "name": Path(e.path).name,
                        "order_index": e.order_index, "quality_metrics": e.quality_metrics or {},
                        "plot_url": (f"/api/caltables/{name}/plots/{quote(e.table_type, safe='')}.png"
                                     if e.qa_plot_path else None)} for e in s.entries]}


@cached
def calibration_sets(ctx: ApiContext, status: str | None = None, limit: int = 100, offset: int = 0) -> dict[str, Any]:
    """A page of calibration sets, newest validity first (``status``: ``'active'``, ``'retired'`` or ``None``)."""
    from ..db import cal_registry as reg

    with ctx.registry() as conn:
        if conn is None:
            return page([], 0, limit, offset)
        sets = list(reversed(reg.list_sets(conn, status=status)))
    return page([calset_dict(s) for s in sets[offset:offset + limit]], len(sets), limit, offset)


def sets_in_use(ctx: ApiContext, newest_group_id: str | None) -> list[dict[str, Any]]:
    """The active sets valid at the newest group's time (the data's time, not the wall clock: a
    reprocessing run or a simulation is calibrated by its own era), or now when there is no group."""
    from ..db import cal_registry as reg
    from ..db.queue_schema import GROUP_ID_FORMAT
    from ..timeconv import unix_to_mjd

    when = (datetime.strptime(newest_group_id, GROUP_ID_FORMAT).replace(tzinfo=timezone.utc) if newest_group_id
            else _now())
    with ctx.registry() as conn:
        if conn is None:
            return []
        return [calset_dict(s) for s in reg.sets_valid_at(conn, unix_to_mjd(when.timestamp()))]


@cached
def calibration_set(ctx: ApiContext, set_name: str) -> dict[str, Any] | None:
    """One calibration set by name, or ``None``."""
    from ..db import cal_registry as reg

    with ctx.registry() as conn:
        if conn is None:
            return None
        try:
            return calset_dict(reg.get_set(conn, set_name))
        except reg.CalRegistryError:
            return None


def calplot_file(ctx: ApiContext, set_name: str, table_type: str) -> Path | None:
    """Registered plot of table ``table_type`` of set ``set_name``, or ``None``."""
    from ..db import cal_registry as reg

    with ctx.registry() as conn:
        if conn is None:
            return None
        try:
            s = reg.get_set(conn, set_name)
        except reg.CalRegistryError:
            return None
    e = next((e for e in s.entries if e.table_type == table_type and e.qa_plot_path), None)
    return Path(e.qa_plot_path) if e is not None else None


# --------------------------------------------------------------------------- metrics


def _quantile(values: list[float], q: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(round(q * (len(v) - 1))))]


@cached
def performance(ctx: ApiContext, limit: int) -> dict[str, Any]:
    """Per-group stage timings over time (newest first), per-stage median/p90, and throughput per bin."""
    from ..db import queue as q

    rows: list[dict[str, Any]] = []
    with ctx.queue() as conn:
        if conn is not None:
            rows = q.list_metrics(conn, limit=limit)
    groups = [{"group_id": m["group_id"], "recorded_at": m.get("recorded_at"), "writer_type": m.get("writer_type"),
               **{f"{k}_s": v for k, v in stage_seconds(m).items()}, "latency_s": m.get("latency_s")}
              for m in rows]
    summary = {}
    for key in [f"{k}_s" for k in STAGE_TIMINGS] + ["latency_s"]:
        vals = [g[key] for g in groups if g[key] is not None]
        summary[key] = ({"n": len(vals), "median": statistics.median(vals), "p90": _quantile(vals, 0.9),
                         "max": max(vals)} if vals else {"n": 0, "median": None, "p90": None, "max": None})
    return {"groups": groups, "summary": summary, "throughput": throughput(groups)}


def throughput(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Groups finished per time bin (one group cadence, :data:`~dsa110_contimg.telescope.GROUP_SECONDS`, when the
    span is under 2 h, else 1 h)."""
    from ..telescope import GROUP_SECONDS

    times = sorted(datetime.fromisoformat(g["recorded_at"].replace("Z", "+00:00")).timestamp()
                   for g in groups if g.get("recorded_at") and g.get("latency_s") is not None)
    if not times:
        return []
    width = GROUP_SECONDS if times[-1] - times[0] < 7200 else 3600.0
    t0 = times[0] - times[0] % width
    bins: dict[int, int] = {}
    for t in times:
        bins[int((t - t0) // width)] = bins.get(int((t - t0) // width), 0) + 1
    n = max(bins) + 1
    return [{"start": datetime.fromtimestamp(t0 + i * width, timezone.utc).isoformat(timespec="seconds"),
             "width_s": width, "completed": bins.get(i, 0)} for i in range(max(0, n - 48), n)]


def system(ctx: ApiContext) -> dict[str, Any]:
    """CPU, memory, load and the free space of the pipeline's folders."""
    import os

    import psutil

    s = ctx.settings
    vm = psutil.virtual_memory()
    disks = []
    for name, path in (("incoming", s.incoming_dir), ("output", s.output_dir), ("stage", s.stage_dir),
                       ("state", s.state_dir)):
        row: dict[str, Any] = {"name": name, "path": str(path), "exists": Path(path).is_dir()}
        if row["exists"]:
            du = psutil.disk_usage(str(path))
            row.update(total_bytes=du.total, free_bytes=du.free, used_percent=du.percent)
        disks.append(row)
    return {"time": _now().isoformat(timespec="seconds"), "cpu_percent": psutil.cpu_percent(interval=None),
            "cpu_count": psutil.cpu_count(), "load_avg": list(os.getloadavg()),
            "memory": {"total_bytes": vm.total, "available_bytes": vm.available, "used_percent": vm.percent},
            "disks": disks}
