"""The streaming daemon: watch the incoming folder, queue groups, run their chains on Dask.

Only this process writes the SQLite databases (queue, registry, products);
stages run on Dask workers (an embedded ``LocalCluster`` by default, an existing
cluster with ``scheduler``) or in-process (``executor='inline'``) and return
results that the daemon records.  Every stage is checkpointed in the queue, so a
restart resumes a group from its last finished stage.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import socket
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

from ..config import quarantine_dir
from . import chain

log = logging.getLogger(__name__)


@dataclass
class StreamOptions:
    """Options of the daemon (mirrors ``contimg stream``)."""

    input_dir: Path
    """Folder the correlator writes to."""
    output_dir: Path
    """Folder of the Measurement Sets and images."""
    workers: int = 1
    """Groups processed at once (Dask workers of the embedded cluster)."""
    scheduler: str | None = None
    """Address of an existing Dask scheduler (tcp://host:8786)."""
    executor: str = "dask"
    """'dask' or 'inline' (in-process, for tests and debugging)."""
    poll_interval_s: float = 1.0
    """Main-loop period; also the polling interval of the fallback watcher."""
    use_inotify: bool = True
    """Watch with inotify (watchdog); False polls (network filesystems)."""
    group_timeout_s: float = 2 * 309.24
    """A group still incomplete after this long is processed as a partial group."""
    tolerance_s: float = 30.0
    """Timestamp tolerance for grouping files."""
    max_retries: int = 3
    """Attempts before a group is failed."""
    backoff_s: float = 30.0
    """First retry delay (doubles every retry)."""
    quick_image: bool = True
    """Quick imaging of every group."""
    hold_retry_s: float = 60.0
    """How long a group waiting for a calibration set is held before it is tried again."""


@dataclass
class DaemonStats:
    """What a run of the loop did."""

    completed: list[str] = field(default_factory=list)
    """Groups completed."""
    failed: list[str] = field(default_factory=list)
    """Groups failed."""


class _Inline:
    """An executor with the Dask ``submit`` interface that runs in-process."""

    def submit(self, fn, *args, pure: bool = False, **kw) -> Future:
        f: Future = Future()
        try:
            f.set_result(fn(*args, **kw))
        except BaseException as exc:  # noqa: BLE001 - delivered through the future
            f.set_exception(exc)
        return f

    def close(self) -> None:
        pass


class StreamDaemon:
    """Watch, queue and process groups; see the module docstring."""

    def __init__(self, opts: StreamOptions, settings):
        self.opts = opts
        self.settings = settings
        self.cfg = chain.ChainConfig(
            output_dir=Path(opts.output_dir), stage_dir=settings.stage_dir, antpos_csv=settings.antpos_csv,
            telescope_name=settings.telescope_name, cal_registry_db=settings.cal_registry_db,
            expected_subbands=settings.expected_subbands, quick_image=opts.quick_image,
            catalog_path=_catalog(settings))
        self.quarantine = quarantine_dir(opts.input_dir)
        self.running: dict[str, tuple[str, Future, dict]] = {}
        self.executor = None
        self._cluster = None
        self.observer = None
        self.stats = DaemonStats()
        self._seen: set[str] = set()  # files already handed to the queue by this process

    # ------------------------------------------------------------------ set-up
    def start(self) -> None:
        """Housekeeping, start the executor and the watcher, scan what arrived while we were down."""
        from ..conversion.staging import clean_orphan_staging
        from ..db import queue as q

        Path(self.opts.output_dir).mkdir(parents=True, exist_ok=True)
        conn = q.connect(self.settings.queue_db)
        try:
            stale = q.reset_stale(conn)
            if stale:
                log.warning("re-queued %d group(s) left in progress by a crash: %s", len(stale), ", ".join(stale))
        finally:
            conn.close()
        clean_orphan_staging([Path(self.settings.stage_dir), Path(self.opts.output_dir)])
        self.executor = self._make_executor()
        self.scan()
        if self.opts.use_inotify:
            self.observer = _start_watcher(Path(self.opts.input_dir))

    def _make_executor(self):
        if self.opts.executor == "inline":
            return _Inline()
        from distributed import Client, LocalCluster

        if self.opts.scheduler:
            return Client(self.opts.scheduler)
        self._cluster = LocalCluster(n_workers=self.opts.workers, threads_per_worker=1, processes=True,
                                     dashboard_address=None)
        return Client(self._cluster)

    def stop(self) -> None:
        """Stop the watcher and the executor; the last heartbeat says the daemon stopped."""
        from ..db import queue as q

        conn = q.connect(self.settings.queue_db)
        try:
            q.beat(conn, "stream", {"pid": os.getpid(), "host": socket.gethostname(), "running": [],
                                    "executor": self.opts.executor, "stopped": True})
        finally:
            conn.close()
        if self.observer is not None:
            self.observer.stop()
            self.observer.join(timeout=5)
        if self.executor is not None:
            self.executor.close()
            self.executor = None
        if self._cluster is not None:  # a client does not close the cluster it was handed
            self._cluster.close()
            self._cluster = None

    # ------------------------------------------------------------------ ingest
    def scan(self) -> int:
        """Register the subband files of the incoming folder not yet handed to the queue.

        Files this process already registered are skipped without a database query, so
        the periodic scan stays cheap while the incoming folder fills up; after a restart
        every file is offered once more and the queue ignores the known ones.
        """
        from ..db import queue as q

        new = [p for p in sorted(Path(self.opts.input_dir).glob("*_sb*.hdf5")) if str(p) not in self._seen]
        if not new:
            return 0
        conn = q.connect(self.settings.queue_db)
        n = 0
        try:
            for p in new:
                r = q.add_file(conn, str(p), tolerance_s=self.opts.tolerance_s,
                               expected_subbands=self.settings.expected_subbands)
                n += r.status == "added"
                self._seen.add(str(p))
        finally:
            conn.close()
        return n

    # ------------------------------------------------------------------ loop
    def step(self) -> None:
        """One pass: ingest, promote, dispatch stages, record the finished ones."""
        from ..db import queue as q

        self.scan()
        conn = q.connect(self.settings.queue_db)
        try:
            q.promote_timed_out(conn, timeout_s=self.opts.group_timeout_s)
            q.release_held(conn)
            self._collect(conn)
            while len(self.running) < max(1, self.opts.workers):
                row = q.claim_next(conn)
                if row is None:
                    break
                self._dispatch(conn, row.group_id, row.files, row.processing_stage)
            q.beat(conn, "stream", {"pid": os.getpid(), "host": socket.gethostname(),
                                    "running": sorted(self.running), "executor": self.opts.executor})
        finally:
            conn.close()

    def run(self, max_seconds: float | None = None, until_idle: bool = False) -> DaemonStats:
        """Loop until interrupted, ``max_seconds``, or (``until_idle``) nothing is left to do."""
        from ..db import queue as q

        self.start()
        t0 = time.monotonic()
        try:
            while True:
                self.step()
                if max_seconds is not None and time.monotonic() - t0 > max_seconds:
                    break
                if until_idle and not self.running:
                    conn = q.connect(self.settings.queue_db)
                    try:
                        counts = q.counts_by_state(conn)
                    finally:
                        conn.close()
                    if not any(counts.get(s, 0) for s in (q.COLLECTING, q.PENDING, q.IN_PROGRESS, q.HELD)):
                        break
                time.sleep(self.opts.poll_interval_s)
        finally:
            self.stop()
        return self.stats

    # ------------------------------------------------------------------ stages
    def _next_stage(self, done: str | None, calibrator: str | None) -> str | None:
        order = list(chain.STAGES)
        i = order.index(done) + 1 if done in order else 0
        if i < len(order) and order[i] == "calibrated" and not calibrator:
            i += 1
        return order[i] if i < len(order) else None

    def _dispatch(self, conn, group_id: str, files: dict, done: str | None) -> None:
        from ..conversion.convert import ms_name

        ms = Path(self.opts.output_dir) / ms_name(group_id)
        calibrator = self._calibrator_of(ms) if done else None
        stage = self._next_stage(done, calibrator)
        if stage is None:
            self._finish(conn, group_id)
            return
        # pure=False: a retried stage (same arguments) must run again, not return Dask's cached failure
        submit = functools.partial(self.executor.submit, pure=False)
        if stage == "converted":
            fut = submit(chain.stage_convert, group_id, files, self.cfg)
        elif stage == "calibrated":
            fut = submit(chain.stage_calibrate, group_id, ms, calibrator)
        elif stage == "applied":
            fut = submit(chain.stage_apply, group_id, ms, self.cfg)
        else:
            fut = submit(chain.stage_image, group_id, ms, self.cfg)
        self.running[group_id] = (stage, fut, files)

    @staticmethod
    def _calibrator_of(ms: Path) -> str | None:
        """Name of the calibrator the MS was phased to (its field name), if it is a bundled calibrator."""
        from casacore.tables import table

        from ..calibration.calibrators import bundled_calibrators

        if not (ms / "FIELD").exists():
            return None
        with table(str(ms / "FIELD"), ack=False) as t:
            name = t.getcol("NAME")[0]
        return name if name in {c.name for c in bundled_calibrators()} else None

    def _collect(self, conn) -> None:
        from ..db import queue as q

        for group_id, (stage, fut, files) in list(self.running.items()):
            if not fut.done():
                continue
            del self.running[group_id]
            try:
                outcome = fut.result()
            except BaseException as exc:  # noqa: BLE001 - classified below
                self._handle_failure(conn, group_id, stage, files, exc)
                continue
            self._record(conn, outcome)
            q.checkpoint(conn, group_id, outcome.stage, str(outcome.ms_path) if outcome.ms_path else None)
            self._dispatch(conn, group_id, files, outcome.stage)

    def _handle_failure(self, conn, group_id: str, stage: str, files: dict, exc: BaseException) -> None:
        from ..calibration.apply import NoValidCalibrationError
        from ..conversion.grouping import ConversionInputError
        from ..db import queue as q

        if isinstance(exc, NoValidCalibrationError):
            q.hold(conn, group_id, str(exc), retry_after_s=self.opts.hold_retry_s)
            log.info("group %s held: %s", group_id, exc)
            return
        if isinstance(exc, ConversionInputError):
            q.fail_permanently(conn, group_id, str(exc))
            self._quarantine(files)
            self.stats.failed.append(group_id)
            log.error("group %s failed (bad input, files quarantined): %s", group_id, exc)
            return
        state = q.fail(conn, group_id, f"{stage}: {type(exc).__name__}: {exc}", max_retries=self.opts.max_retries,
                       backoff_s=self.opts.backoff_s)
        log.error("group %s: %s failed (%s): %s", group_id, stage, state, exc)
        if state == q.FAILED:
            self.stats.failed.append(group_id)

    def _quarantine(self, files: dict) -> None:
        self.quarantine.mkdir(parents=True, exist_ok=True)
        for path in files.values():
            p = Path(path)
            if p.exists():
                shutil.move(str(p), str(self.quarantine / p.name))

    def _record(self, conn, outcome: chain.StageOutcome) -> None:
        from ..calibration.apply import register_solution
        from ..db import products as pdb
        from ..db import queue as q
        from .image_stage import record_image, record_ms

        pconn = pdb.connect(self.settings.products_db)
        try:
            if outcome.stage == "converted":
                r = outcome.payload
                record_ms(pconn, outcome.ms_path, "converted", "in_progress")
                q.record_metrics(conn, outcome.group_id, {
                    "load_time": r.timings.get("load"), "phase_time": r.timings.get("phase"),
                    "write_time": r.timings.get("write"), "total_time": r.timings.get("total"),
                    "writer_type": r.writer})
            elif outcome.stage == "calibrated":
                res = outcome.payload
                register_solution(res, self.settings.cal_registry_db)
                q.record_metrics(conn, outcome.group_id, {"calibrate_time": outcome.timings.get("calibrate"),
                                                          "cal_k_time": res.timings.get("K"),
                                                          "cal_b_time": res.timings.get("B"),
                                                          "cal_g_time": res.timings.get("G")})
            elif outcome.stage == "applied":
                record_ms(pconn, outcome.ms_path, "applied", "in_progress", cal_applied=True)
                q.record_metrics(conn, outcome.group_id, {"apply_time": outcome.timings.get("apply")})
            elif outcome.stage == "imaged":
                img, qa = outcome.payload
                record_image(pconn, outcome.ms_path, img, qa)
                record_ms(pconn, outcome.ms_path, "imaged", "completed", cal_applied=True,
                          imagename=str(img.images.prefix))
                row = q.get_group(conn, outcome.group_id)
                latency = _latency_s(row)
                q.record_metrics(conn, outcome.group_id, {"image_time": outcome.timings.get("image"),
                                                          "qa_time": outcome.timings.get("qa"),
                                                          "latency_s": latency})
        finally:
            pconn.close()

    def _finish(self, conn, group_id: str) -> None:
        from ..db import queue as q

        q.complete(conn, group_id)
        self.stats.completed.append(group_id)
        log.info("group %s completed", group_id)


def _latency_s(row) -> float | None:
    """Seconds from the last subband file landing (its mtime) to now."""
    if row is None or not row.files:
        return None
    mtimes = [Path(p).stat().st_mtime for p in row.files.values() if Path(p).exists()]
    return time.time() - max(mtimes) if mtimes else None


def _catalog(settings) -> Path | None:
    p = settings.state_dir / "catalogs" / "master_sources.sqlite3"
    return p if p.is_file() else None


def _start_watcher(folder: Path):
    """inotify watcher (watchdog); new files are picked up by the next :meth:`StreamDaemon.scan`.

    The watcher only wakes the loop early; the periodic scan is the source of truth, so a
    network filesystem without inotify (or a missed event) loses nothing.
    """
    try:
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer
    except ImportError:  # pragma: no cover - watchdog is a dependency
        return None

    class _Handler(FileSystemEventHandler):
        def on_moved(self, event):
            log.debug("new file %s", getattr(event, "dest_path", event.src_path))

    obs = Observer()
    obs.schedule(_Handler(), str(folder), recursive=False)
    obs.start()
    return obs
